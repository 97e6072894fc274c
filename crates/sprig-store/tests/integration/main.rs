//! Integration tests for sprig-store against the real OS keystore and real processes.
//!
//! Run them under `scripts/with-keystore.sh` (e.g. `scripts/with-keystore.sh cargo test -p
//! sprig-store`), which provides a Secret Service and a kernel session keyring on machines
//! without a desktop session. Without a reachable keystore they fail; they never skip.

mod crash;
mod keystore;
mod streaming;
mod wipe;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use sprig_store::{DbKey, KeyStore, KeyringKeyStore, Store};

/// The keyring service name used by these tests (the app uses its own).
pub const SERVICE: &str = "sprig-store-tests";

/// A real keystore entry for the store in `dir`, keyed by the canonical directory as the app
/// does. Panics with instructions when no OS keystore is reachable.
pub fn real_keystore(dir: &Path) -> KeyringKeyStore {
    require_keystore();
    let account = dir.canonicalize().unwrap().display().to_string();
    KeyringKeyStore::new(SERVICE, &account)
}

/// Fails the test (never skips it) when the OS keystore cannot store and read back a key.
pub fn require_keystore() {
    // Tests run in parallel threads: each probe needs its own entry.
    static PROBES: AtomicUsize = AtomicUsize::new(0);
    let n = PROBES.fetch_add(1, Ordering::Relaxed);
    let probe = KeyringKeyStore::new(SERVICE, &format!("probe-{}-{n}", std::process::id()));
    let key = DbKey::generate();
    let result = probe.store(&key).and_then(|()| probe.load());
    probe.destroy().ok();
    match result {
        Ok(Some(loaded)) if loaded == key => {}
        Ok(other) => panic!(
            "the OS keystore stored a key but read back {}; run these tests under \
             scripts/with-keystore.sh (make test)",
            if other.is_some() {
                "a different key"
            } else {
                "nothing"
            }
        ),
        Err(e) => panic!(
            "no OS keystore reachable ({e}).\nRun the integration tests under \
             scripts/with-keystore.sh (make test), e.g.\n  scripts/with-keystore.sh cargo test -p sprig-store"
        ),
    }
}

/// A temporary data directory with the store path inside it.
#[derive(Debug)]
pub struct DataDir {
    pub dir: tempfile::TempDir,
    pub path: PathBuf,
}

pub fn data_dir() -> DataDir {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("device.db");
    DataDir { dir, path }
}

/// Every file in `dir`, sorted.
pub fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// This test binary, set up to run exactly one `#[ignore]`d child test.
pub fn child_test(name: &str) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        name,
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::inherit());
    cmd
}

/// The index agrees with the documents for every journal in the store.
pub fn assert_index_matches(store: &Store) {
    for child in store.journal_children().unwrap() {
        let mut expected = store.journal(&child).unwrap().entries();
        expected.reverse();
        let indexed = store.timeline(&child, usize::MAX, None).unwrap();
        assert_eq!(
            indexed, expected,
            "index of {child} differs from its journal"
        );
    }
}

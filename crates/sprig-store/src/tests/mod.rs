//! Unit tests against real SQLCipher files in temporary directories, keyed from the in-memory
//! key store (the real OS keystore is exercised by the integration tests).

mod docs;
mod media;
mod open;

use std::path::{Path, PathBuf};

use sha2::Digest;

use crate::{MemoryKeyStore, Store};

pub(crate) struct TestDb {
    pub dir: tempfile::TempDir,
    pub path: PathBuf,
    pub keys: MemoryKeyStore,
}

pub(crate) fn test_db() -> TestDb {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("device.db");
    TestDb {
        dir,
        path,
        keys: MemoryKeyStore::new(),
    }
}

pub(crate) fn new_store() -> (TestDb, Store) {
    let db = test_db();
    let store = Store::create(&db.path, &db.keys).unwrap();
    (db, store)
}

pub(crate) fn file_hash(path: &Path) -> [u8; 32] {
    sha2::Sha256::digest(std::fs::read(path).unwrap()).into()
}

pub(crate) fn dir_entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

pub(crate) fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// Reads a file, or nothing if it does not exist.
pub(crate) fn read_or_empty(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_default()
}

//! Sprig end to end across processes: a real `sprig-server serve` process and several
//! `sprig-device` processes on loopback, each test with its own temporary directories and port.
//! Run under `scripts/with-keystore.sh` (the devices keep their database keys in the OS
//! keystore); `make test` does. Randomised tests print their seed; replay one with
//! `SPRIG_E2E_SEED=<seed> scripts/with-keystore.sh cargo test -p sprig-e2e -- <name>`; the fault
//! schedules (`faults`) take `SPRIG_FAULT_SEED=<seed>` instead (see docs/TESTING.md).

mod converge;
mod crash;
mod faults;
mod hosted;
mod lifecycle;
mod privacy;
mod refusals;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha2::Digest;
use sprig_core::{ChildId, Journal};
use sprig_server::ServerStore;
use sprig_server::store::StoredDoc;

/// One entry as compared across replicas: id, text, children (group) and photo hashes.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Seen {
    pub id: String,
    pub text: String,
    pub media: Vec<String>,
}

/// A child's journal from `sprig-device journal --json`, keyed by entry id.
pub fn device_view(items: &[serde_json::Value]) -> BTreeMap<String, Seen> {
    items
        .iter()
        .map(|i| {
            let seen = Seen {
                id: i["id"].as_str().unwrap().to_owned(),
                text: i["text"].as_str().unwrap().to_owned(),
                media: i["media"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|m| m["sha256"].as_str().unwrap().to_owned())
                    .collect(),
            };
            (seen.id.clone(), seen)
        })
        .collect()
}

/// A child's journal as the server stores it (read through the server's library from its data
/// directory; call only while `serve` is stopped or killed), keyed by entry id.
pub fn server_view(data: &Path, child: &str) -> BTreeMap<String, Seen> {
    let store = sprig_server::DataDir::new(data).open_store().unwrap();
    let child = ChildId::parse(child).unwrap();
    let Some(StoredDoc {
        snapshot, chunks, ..
    }) = store
        .load_doc(&sprig_proto::DocId::Journal(child.clone()))
        .unwrap()
    else {
        return BTreeMap::new();
    };
    let mut journal = Journal::load(&snapshot).unwrap();
    for c in &chunks {
        journal.apply_incremental(c).unwrap();
    }
    assert_eq!(journal.child(), &child);
    journal
        .entries()
        .into_iter()
        .map(|e| {
            let seen = Seen {
                id: e.id.as_str().to_owned(),
                text: e.text,
                media: e.media.iter().map(|m| m.sha256.to_hex()).collect(),
            };
            (seen.id.clone(), seen)
        })
        .collect()
}

/// Whether the server durably holds `sha` (hex): a file under `media/` with exactly that
/// SHA-256 and a record in its database. Call while `serve` is stopped or killed.
pub fn server_holds(data: &Path, sha: &str) -> bool {
    let file = data.join("media").join(&sha[..2]).join(sha);
    let Ok(bytes) = std::fs::read(&file) else {
        return false;
    };
    assert_eq!(
        hex::encode(sha2::Sha256::digest(&bytes)),
        sha,
        "{} holds other bytes than its name says",
        file.display()
    );
    let store = sprig_server::DataDir::new(data).open_store().unwrap();
    store.media(sha).unwrap().is_some()
}

/// A camera-like JPEG (EXIF with GPS) written to `dir/name`; `variant` changes its size, so
/// the processed photo (and its SHA-256) differs per variant.
pub fn photo(dir: &Path, name: &str, variant: u32) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(
        &path,
        sprig_testkit::images::jpeg_with_exif(
            480 + variant * 8,
            360,
            1,
            sprig_testkit::images::ByteOrder::Little,
        ),
    )
    .unwrap();
    path
}

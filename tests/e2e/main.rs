//! Sprig end to end across processes: a real `sprig-server serve` process and several
//! `sprig-device` processes on loopback, each test with its own temporary directories and port.
//! Run under `scripts/with-keystore.sh` (the devices keep their database keys in the OS
//! keystore); `make test` does. Randomised tests print their seed; replay one with
//! `SPRIG_E2E_SEED=<seed> scripts/with-keystore.sh cargo test --workspace --all-features --test
//! e2e -- <name>`; the fault schedules (`faults`) take `SPRIG_FAULT_SEED=<seed>` instead (see
//! docs/TESTING.md).

mod converge;
mod crash;
mod faults;
mod hosted;
mod lifecycle;
mod privacy;
mod refusals;
mod replicas;

use std::collections::{BTreeMap, BTreeSet};
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
    stored_journal(
        &sprig_server::DataDir::new(data).open_store().unwrap(),
        child,
    )
}

/// A child's journal as `store` holds it, keyed by entry id.
pub fn stored_journal(store: &dyn ServerStore, child: &str) -> BTreeMap<String, Seen> {
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

/// A camera-like photo of a few hundred KiB after the tablet processes it, written to
/// `dir/big<variant>.jpg`; `variant` makes it unique.
pub fn big_photo(dir: &Path, variant: u32) -> PathBuf {
    let path = dir.join(format!("big{variant}.jpg"));
    std::fs::write(
        &path,
        sprig_testkit::images::photo_like(1400 + variant * 4, 1000),
    )
    .unwrap();
    path
}

/// One observation as a test recorded it, to check every copy against.
#[derive(Debug)]
pub struct Recorded {
    pub id: String,
    pub text: String,
    pub children: BTreeSet<String>,
    pub photo: bool,
    /// The tablet that recorded it.
    pub device: usize,
}

/// The children an item of `journal --json` is tagged with.
pub fn tagged(item: &serde_json::Value) -> BTreeSet<String> {
    item["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect()
}

/// Checks one item of tablet `d`'s `journal --json` against `recorded`: a known entry, tagged
/// with the recorded children, its photos purged on the tablet that took them and remote on
/// the others. `ctx` prefixes every failure.
pub fn check_item(ctx: &str, recorded: &[Recorded], d: usize, item: &serde_json::Value) {
    let id = item["id"].as_str().unwrap();
    let rec = recorded
        .iter()
        .find(|r| r.id == id)
        .unwrap_or_else(|| panic!("{ctx}: tablet {d} holds unknown entry {id}"));
    assert_eq!(
        tagged(item),
        rec.children,
        "{ctx}: children of {id} on tablet {d}"
    );
    for m in item["media"].as_array().unwrap() {
        let want = if rec.device == d { "purged" } else { "remote" };
        assert_eq!(m["state"], want, "{ctx}: tablet {d}, {id}: {m}");
    }
}

/// Nothing lost or duplicated: every recorded observation is in each tagged child's journal of
/// `journals` (child → entry id → entry) with its text and photo, and in no other.
pub fn check_nothing_lost(
    ctx: &str,
    recorded: &[Recorded],
    journals: &BTreeMap<String, BTreeMap<String, Seen>>,
) {
    for rec in recorded {
        for child in &rec.children {
            let got = journals[child]
                .get(&rec.id)
                .unwrap_or_else(|| panic!("{ctx}: {} lost from {child}'s journal", rec.id));
            assert_eq!(got.text, rec.text, "{ctx}: text of {}", rec.id);
            assert_eq!(
                got.media.len(),
                usize::from(rec.photo),
                "{ctx}: photos of {}",
                rec.id
            );
        }
        let in_journals = journals
            .values()
            .filter(|j| j.contains_key(&rec.id))
            .count();
        assert_eq!(in_journals, rec.children.len(), "{ctx}: {}", rec.id);
    }
}

//! Wiping: key first, then every file; idempotent.

use std::cell::RefCell;
use std::path::PathBuf;

use sprig_store::{DbKey, KeyStore, MemoryKeyStore, Result, Store, StoreError, wipe};

use crate::{data_dir, files_in, real_keystore};

#[test]
fn wipe_with_the_real_keystore_leaves_nothing_and_is_idempotent() {
    let d = data_dir();
    let ks = real_keystore(d.dir.path());
    let mut store = Store::create(&d.path, &ks).unwrap();
    store.put_media("video/mp4", &vec![7u8; 600_000]).unwrap();
    store.close().unwrap();
    // Side files as a crash would leave them.
    for side in ["-wal", "-shm", "-journal"] {
        std::fs::write(d.dir.path().join(format!("device.db{side}")), b"stale").unwrap();
    }
    wipe(&d.path, &ks).unwrap();
    assert!(
        files_in(d.dir.path()).is_empty(),
        "{:?}",
        files_in(d.dir.path())
    );
    assert!(
        ks.load().unwrap().is_none(),
        "the key is gone from the keystore"
    );
    assert!(matches!(
        Store::open(&d.path, &ks),
        Err(StoreError::DatabaseMissing { .. })
    ));
    wipe(&d.path, &ks).unwrap();
}

#[test]
fn wipe_while_the_store_is_still_open_leaves_nothing_after_it_closes() {
    let d = data_dir();
    let ks = real_keystore(d.dir.path());
    let mut store = Store::create(&d.path, &ks).unwrap();
    store.put_media("video/mp4", &vec![7u8; 600_000]).unwrap();
    assert!(files_in(d.dir.path()).iter().any(|f| f.ends_with("-wal")));
    wipe(&d.path, &ks).unwrap();
    drop(store);
    assert!(
        files_in(d.dir.path()).is_empty(),
        "{:?}",
        files_in(d.dir.path())
    );
    assert!(ks.load().unwrap().is_none());
}

#[test]
fn store_wipe_closes_and_removes_everything() {
    let d = data_dir();
    let ks = real_keystore(d.dir.path());
    let mut store = Store::create(&d.path, &ks).unwrap();
    store.put_media("image/jpeg", b"photo").unwrap();
    store.wipe(&ks).unwrap();
    assert!(
        files_in(d.dir.path()).is_empty(),
        "{:?}",
        files_in(d.dir.path())
    );
    assert!(ks.load().unwrap().is_none());
    // A new store can be created in its place.
    Store::create(&d.path, &ks).unwrap().wipe(&ks).unwrap();
}

#[test]
fn wiping_nothing_succeeds() {
    let d = data_dir();
    let ks = real_keystore(d.dir.path());
    wipe(&d.path, &ks).unwrap();
    wipe(&d.path, &MemoryKeyStore::new()).unwrap();
}

/// Records whether the database file still existed when the key was destroyed.
struct Recording {
    inner: MemoryKeyStore,
    path: PathBuf,
    file_existed_at_destroy: RefCell<Option<bool>>,
}

impl KeyStore for Recording {
    fn load(&self) -> Result<Option<DbKey>> {
        self.inner.load()
    }
    fn store(&self, key: &DbKey) -> Result<()> {
        self.inner.store(key)
    }
    fn destroy(&self) -> Result<()> {
        self.file_existed_at_destroy
            .replace(Some(self.path.exists()));
        self.inner.destroy()
    }
}

#[test]
fn wipe_destroys_the_key_before_the_files() {
    let d = data_dir();
    let ks = Recording {
        inner: MemoryKeyStore::new(),
        path: d.path.clone(),
        file_existed_at_destroy: RefCell::new(None),
    };
    Store::create(&d.path, &ks).unwrap().close().unwrap();
    wipe(&d.path, &ks).unwrap();
    assert_eq!(
        *ks.file_existed_at_destroy.borrow(),
        Some(true),
        "key destroyed first"
    );
    assert!(!d.path.exists());
}

/// A keystore that cannot be reached.
struct Unreachable;

impl KeyStore for Unreachable {
    fn load(&self) -> Result<Option<DbKey>> {
        Err(StoreError::Keystore {
            message: "test: no keystore".into(),
        })
    }
    fn store(&self, _: &DbKey) -> Result<()> {
        self.load().map(drop)
    }
    fn destroy(&self) -> Result<()> {
        self.load().map(drop)
    }
}

#[test]
fn wipe_still_deletes_the_files_when_the_keystore_fails_and_says_so() {
    let d = data_dir();
    let ks = MemoryKeyStore::new();
    Store::create(&d.path, &ks).unwrap().close().unwrap();
    let err = wipe(&d.path, &Unreachable).unwrap_err();
    assert!(matches!(err, StoreError::Keystore { .. }), "{err:?}");
    assert!(err.is_retryable());
    assert!(files_in(d.dir.path()).is_empty());
}

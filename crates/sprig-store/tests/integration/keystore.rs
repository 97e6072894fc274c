//! The real OS keystore backend (Secret Service + kernel keyring on Linux).

use sprig_store::{DbKey, KeyStore, KeyringKeyStore, Store, StoreError};

use crate::{SERVICE, data_dir, files_in, real_keystore, require_keystore};

#[test]
fn keyring_stores_loads_and_destroys_idempotently() {
    require_keystore();
    let ks = KeyringKeyStore::new(SERVICE, &format!("roundtrip-{}", std::process::id()));
    ks.destroy().unwrap();
    assert!(ks.load().unwrap().is_none());
    let key = DbKey::generate();
    ks.store(&key).unwrap();
    assert_eq!(ks.load().unwrap(), Some(key.clone()));
    // A second handle on the same entry sees the same key (as a restarted app would).
    assert_eq!(
        KeyringKeyStore::new(SERVICE, &format!("roundtrip-{}", std::process::id()))
            .load()
            .unwrap(),
        Some(key)
    );
    ks.destroy().unwrap();
    ks.destroy().unwrap();
    assert!(ks.load().unwrap().is_none());
}

#[test]
fn stores_on_one_machine_have_separate_keys() {
    let a = data_dir();
    let b = data_dir();
    let ka = real_keystore(a.dir.path());
    let kb = real_keystore(b.dir.path());
    let sa = Store::create(&a.path, &ka).unwrap();
    let sb = Store::create(&b.path, &kb).unwrap();
    sa.close().unwrap();
    sb.close().unwrap();
    assert_ne!(ka.load().unwrap(), kb.load().unwrap());
    // Each store opens with its own entry and not with the other's.
    Store::open(&a.path, &ka).unwrap();
    Store::open(&b.path, &kb).unwrap();
    assert!(matches!(
        Store::open(&a.path, &kb),
        Err(StoreError::WrongKey { .. })
    ));
    ka.destroy().unwrap();
    kb.destroy().unwrap();
}

#[test]
fn create_and_reopen_with_the_real_keystore_and_no_key_on_disk() {
    let d = data_dir();
    let ks = real_keystore(d.dir.path());
    let mut store = Store::create(&d.path, &ks).unwrap();
    let sha = store.put_media("image/jpeg", b"a photo").unwrap();
    store.close().unwrap();
    let key = ks.load().unwrap().expect("the key lives in the keystore");
    let hex = hex::encode(key.expose_secret());
    for name in files_in(d.dir.path()) {
        let bytes = std::fs::read(d.dir.path().join(&name)).unwrap();
        assert!(
            !bytes.windows(hex.len()).any(|w| w == hex.as_bytes()),
            "hex key in {name}"
        );
        assert!(
            !bytes.windows(32).any(|w| w == key.expose_secret()),
            "raw key in {name}"
        );
    }
    let store = Store::open(&d.path, &ks).unwrap();
    assert_eq!(store.media_info(&sha).unwrap().size, 7);
    store.wipe(&ks).unwrap();
}

#[test]
fn open_without_the_key_in_the_keystore_is_key_missing() {
    let d = data_dir();
    let ks = real_keystore(d.dir.path());
    Store::create(&d.path, &ks).unwrap().close().unwrap();
    ks.destroy().unwrap();
    let err = Store::open(&d.path, &ks).unwrap_err();
    assert!(matches!(err, StoreError::KeyMissing), "{err:?}");
    assert!(err.to_string().contains("re-enrol"), "{err}");
}

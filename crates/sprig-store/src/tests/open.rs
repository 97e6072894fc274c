//! Creating and opening: encryption, refusals that touch nothing, pragmas, schema versions.

use rusqlite::Connection;

use super::{dir_entries, file_hash, new_store, test_db};
use crate::migrate::{self, MIGRATIONS};
use crate::store::PLAINTEXT_HEADER;
use crate::{DbKey, KeyStore, MemoryKeyStore, Store, StoreError};

#[test]
fn create_then_open_reads_back_data() {
    let (db, mut store) = new_store();
    let sha = store.put_media("image/jpeg", b"tiny photo").unwrap();
    store.close().unwrap();
    let store = Store::open(&db.path, &db.keys).unwrap();
    assert_eq!(store.media_info(&sha).unwrap().size, 10);
}

#[test]
fn created_file_is_encrypted_not_plaintext_sqlite() {
    let (db, mut store) = new_store();
    store
        .put_media("text/plain", b"unmistakable-marker-text")
        .unwrap();
    store.checkpoint().unwrap();
    let bytes = std::fs::read(&db.path).unwrap();
    assert_ne!(&bytes[..16], PLAINTEXT_HEADER);
    assert!(!super::contains(&bytes, b"unmistakable-marker-text"));
    // Without the key, SQLite cannot read it at all.
    let plain = Connection::open(&db.path).unwrap();
    let err = plain.query_row("SELECT count(*) FROM sqlite_schema", [], |r| {
        r.get::<_, i64>(0)
    });
    assert!(err.is_err());
}

#[test]
fn key_is_stored_in_the_keystore_and_never_in_a_file() {
    let (db, store) = new_store();
    let key = db.keys.load().unwrap().expect("create stores the key");
    store.close().unwrap();
    let hex = hex::encode(key.expose_secret());
    for name in dir_entries(db.dir.path()) {
        let bytes = std::fs::read(db.dir.path().join(&name)).unwrap();
        assert!(
            !super::contains(&bytes, hex.as_bytes()),
            "hex key found in {name}"
        );
        assert!(
            !super::contains(&bytes, key.expose_secret()),
            "raw key found in {name}"
        );
    }
}

#[test]
fn store_debug_output_shows_no_key() {
    let (db, store) = new_store();
    let key = db.keys.load().unwrap().unwrap();
    let shown = format!("{store:?} {:?}", db.keys);
    assert!(
        !shown.contains(&hex::encode(key.expose_secret())),
        "{shown}"
    );
    assert!(shown.contains("device.db"), "{shown}");
}

#[test]
fn create_refuses_an_existing_file_and_leaves_it_alone() {
    let db = test_db();
    std::fs::write(&db.path, b"precious").unwrap();
    let err = Store::create(&db.path, &db.keys).unwrap_err();
    assert!(matches!(err, StoreError::AlreadyExists { .. }), "{err:?}");
    assert_eq!(std::fs::read(&db.path).unwrap(), b"precious");
    assert!(
        db.keys.load().unwrap().is_none(),
        "no key is made for a refused create"
    );
}

#[test]
fn create_refuses_an_existing_store() {
    let (db, store) = new_store();
    store.close().unwrap();
    let key_before = db.keys.load().unwrap();
    let before = file_hash(&db.path);
    assert!(matches!(
        Store::create(&db.path, &db.keys),
        Err(StoreError::AlreadyExists { .. })
    ));
    assert_eq!(file_hash(&db.path), before);
    assert_eq!(
        db.keys.load().unwrap(),
        key_before,
        "the existing store's key is kept"
    );
}

#[test]
fn open_refuses_a_missing_file_without_creating_one() {
    let db = test_db();
    let err = Store::open(&db.path, &db.keys).unwrap_err();
    assert!(matches!(err, StoreError::DatabaseMissing { .. }), "{err:?}");
    assert!(err.is_not_found());
    assert!(dir_entries(db.dir.path()).is_empty());
}

#[test]
fn open_refuses_plaintext_sqlite_and_touches_nothing() {
    let db = test_db();
    {
        let plain = Connection::open(&db.path).unwrap();
        plain
            .execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES ('child data');")
            .unwrap();
    }
    assert_eq!(&std::fs::read(&db.path).unwrap()[..16], PLAINTEXT_HEADER);
    db.keys.store(&DbKey::generate()).unwrap();
    let before = file_hash(&db.path);
    let files = dir_entries(db.dir.path());
    let err = Store::open(&db.path, &db.keys).unwrap_err();
    assert!(matches!(err, StoreError::Plaintext { .. }), "{err:?}");
    assert!(err.to_string().contains("unencrypted"), "{err}");
    assert_eq!(file_hash(&db.path), before);
    assert_eq!(dir_entries(db.dir.path()), files);
}

#[test]
fn wrong_key_is_refused_distinctly_and_touches_nothing() {
    let (db, store) = new_store();
    store.close().unwrap();
    let other = MemoryKeyStore::new();
    other.store(&DbKey::generate()).unwrap();
    let before = file_hash(&db.path);
    let files = dir_entries(db.dir.path());
    let err = Store::open(&db.path, &other).unwrap_err();
    assert!(matches!(err, StoreError::WrongKey { .. }), "{err:?}");
    assert!(!err.is_retryable());
    assert_eq!(file_hash(&db.path), before);
    assert_eq!(dir_entries(db.dir.path()), files);
    // And the right key still works afterwards.
    Store::open(&db.path, &db.keys).unwrap();
}

#[test]
fn missing_key_is_refused_distinctly_and_touches_nothing() {
    let (db, store) = new_store();
    store.close().unwrap();
    let before = file_hash(&db.path);
    let files = dir_entries(db.dir.path());
    let err = Store::open(&db.path, &MemoryKeyStore::new()).unwrap_err();
    assert!(matches!(err, StoreError::KeyMissing), "{err:?}");
    assert!(!err.is_not_found(), "a missing key is not an absent record");
    assert_eq!(file_hash(&db.path), before);
    assert_eq!(dir_entries(db.dir.path()), files);
}

#[test]
fn empty_file_is_refused_as_damaged() {
    let db = test_db();
    std::fs::write(&db.path, b"").unwrap();
    db.keys.store(&DbKey::generate()).unwrap();
    let err = Store::open(&db.path, &db.keys).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    assert_eq!(std::fs::metadata(&db.path).unwrap().len(), 0);
}

#[test]
fn pragmas_are_set_on_create_and_open() {
    let (db, store) = new_store();
    let check = |store: &Store| {
        let q = |p: &str| -> String {
            store
                .conn
                .query_row(&format!("PRAGMA {p}"), [], |r| {
                    r.get::<_, rusqlite::types::Value>(0)
                })
                .map(|v| match v {
                    rusqlite::types::Value::Integer(i) => i.to_string(),
                    rusqlite::types::Value::Text(t) => t,
                    other => format!("{other:?}"),
                })
                .unwrap()
        };
        assert_eq!(q("secure_delete"), "1");
        assert_eq!(q("journal_mode"), "wal");
        assert_eq!(q("auto_vacuum"), "2", "INCREMENTAL");
        assert_eq!(q("foreign_keys"), "1");
        assert_eq!(q("synchronous"), "1", "NORMAL");
        assert_eq!(q("cipher_memory_security"), "0");
        assert_eq!(q("cipher_status"), "1");
        assert_eq!(q("cipher_hmac_algorithm"), "HMAC_SHA256");
        assert_eq!(store.schema_version().unwrap(), migrate::latest(MIGRATIONS));
    };
    check(&store);
    store.close().unwrap();
    check(&Store::open(&db.path, &db.keys).unwrap());
}

#[test]
fn database_from_a_newer_sprig_is_refused_untouched() {
    let (db, store) = new_store();
    store.conn.pragma_update(None, "user_version", 999).unwrap();
    store.close().unwrap();
    let before = file_hash(&db.path);
    let err = Store::open(&db.path, &db.keys).unwrap_err();
    assert!(
        matches!(err, StoreError::TooNew { found: 999, .. }),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("made by a newer Sprig; update the app"),
        "{err}"
    );
    assert_eq!(file_hash(&db.path), before);
}

#[test]
fn open_applies_pending_migrations() {
    // A file at schema 0 (as an interrupted first create would leave) is brought up to date.
    let db = test_db();
    let key = DbKey::generate();
    db.keys.store(&key).unwrap();
    {
        let conn = Connection::open(&db.path).unwrap();
        conn.execute_batch(&key.key_pragma()).unwrap();
        conn.execute_batch(crate::store::CIPHER_SETTINGS).unwrap();
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")
            .unwrap();
        conn.execute_batch("CREATE TABLE placeholder (x); DROP TABLE placeholder;")
            .unwrap();
    }
    let store = Store::open(&db.path, &db.keys).unwrap();
    assert_eq!(store.schema_version().unwrap(), migrate::latest(MIGRATIONS));
    store.check_integrity().unwrap();
}

#[test]
fn integrity_check_passes_on_a_fresh_store() {
    let (_db, store) = new_store();
    store.check_integrity().unwrap();
}

#[test]
fn plaintext_mode_is_really_plaintext_and_round_trips() {
    let db = test_db();
    let mut store = Store::create_insecure_plaintext(&db.path).unwrap();
    store.put_media("text/plain", b"visible").unwrap();
    store.close().unwrap();
    assert_eq!(&std::fs::read(&db.path).unwrap()[..16], PLAINTEXT_HEADER);
    let store = Store::open_insecure_plaintext(&db.path).unwrap();
    store.check_integrity().unwrap();
    // The encrypted entry point refuses it.
    assert!(matches!(
        Store::open(&db.path, &db.keys),
        Err(StoreError::Plaintext { .. })
    ));
}

#[test]
fn cipher_settings_are_part_of_the_format() {
    // The same key with SQLCipher's default settings must not open the file: proves the
    // settings are applied, and pins them (changing them would orphan every device's data).
    let (db, store) = new_store();
    store.close().unwrap();
    let key = db.keys.load().unwrap().unwrap();
    let conn = Connection::open(&db.path).unwrap();
    conn.execute_batch(&key.key_pragma()).unwrap();
    assert!(
        conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r
            .get::<_, i64>(0))
            .is_err()
    );
    drop(conn);
    let conn = Connection::open(&db.path).unwrap();
    conn.execute_batch(&key.key_pragma()).unwrap();
    conn.execute_batch(crate::store::CIPHER_SETTINGS).unwrap();
    assert!(
        conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r
            .get::<_, i64>(0))
            .unwrap()
            > 0
    );
}

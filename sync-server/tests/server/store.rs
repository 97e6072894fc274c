//! The shared store suite on the SQLite backend, in memory and on disk.

mod in_memory {
    sprig_server::server_store_tests!(sprig_server::SqliteStore::open_in_memory().unwrap());
}

mod on_disk {
    // Cargo's per-target scratch directory: the file outlives the store without a guard.
    sprig_server::server_store_tests!(
        sprig_server::SqliteStore::open(
            &std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
                .join(format!("store-{}.db", uuid::Uuid::new_v4().simple()))
        )
        .unwrap()
    );
}

/// Two connections to one file (an admin command while `serve` runs) see each other's
/// writes without a restart.
#[test]
fn two_connections_share_the_file() {
    use sprig_server::ServerStore;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sprig.db");
    let a = sprig_server::SqliteStore::open(&path).unwrap();
    let b = sprig_server::SqliteStore::open(&path).unwrap();
    a.set_meta("k", "1").unwrap();
    assert_eq!(b.meta("k").unwrap().as_deref(), Some("1"));
}

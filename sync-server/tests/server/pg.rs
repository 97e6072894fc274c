//! The Postgres backend against a real server (`SPRIG_TEST_DATABASE_URL`, which
//! `scripts/with-postgres.sh` exports): the shared store suite at the default isolation level
//! and at SERIALIZABLE (CockroachDB's only level), each test in a fresh database; two settings
//! in one database never see each other; concurrent writers, serialization failures,
//! migrations, and the store called from every kind of thread. Without a reachable server these
//! tests fail; they never skip.

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use sprig_core::{ChildId, Heads};
use sprig_proto::DocId;
use sprig_server::store::pg_testing::{fresh_database, test_database_url};
use sprig_server::store::{
    DocWrite, EnrolCode, NewDevice, NewSetting, PgOptions, PgPool, PgStore, Redeemed,
};
use sprig_server::{ServerStore, StoreError};

/// `SPRIG_TEST_DATABASE_URL` with `-c` settings for every session.
fn server_url(session_options: &str) -> String {
    let url = test_database_url();
    if session_options.is_empty() {
        return url;
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    let encoded = session_options.replace(' ', "%20").replace('=', "%3D");
    format!("{url}{sep}options={encoded}")
}

const SERIALIZABLE: &str = "-c default_transaction_isolation=serializable";

fn small() -> PgOptions {
    let mut o = PgOptions::default();
    o.max_connections = 8;
    o
}

/// A pool on a fresh, migrated database.
fn fresh_pool(session_options: &str) -> (PgPool, String) {
    let url = fresh_database(&server_url(session_options), true).unwrap();
    (PgPool::connect_with(&url, &small()).unwrap(), url)
}

fn new_setting(pool: &PgPool, name: &str) -> PgStore {
    let host = format!("{}.example.org", uuid::Uuid::new_v4().simple());
    let s = pool
        .create_setting(&NewSetting::new(name, &host), 1)
        .unwrap();
    pool.setting(s.id).unwrap()
}

/// A store of a new setting in a fresh database.
pub fn fresh_store(session_options: &str) -> PgStore {
    let (pool, _) = fresh_pool(session_options);
    // Another setting beside it, so every query must pick its own setting's rows.
    let other = new_setting(&pool, "Other");
    other.set_meta("public_url", "https://other").unwrap();
    new_setting(&pool, "Acorn Pre-School")
}

mod read_committed {
    sprig_server::server_store_tests!(crate::pg::fresh_store(""));
}

mod serializable {
    sprig_server::server_store_tests!(crate::pg::fresh_store(crate::pg::SERIALIZABLE));
}

/// Two settings in one database: no trait method of one sees or touches the other's rows.
#[test]
fn two_settings_in_one_database_never_see_each_other() {
    let (pool, _) = fresh_pool("");
    let a = new_setting(&pool, "A");
    let b = new_setting(&pool, "B");
    sprig_server::store::suite::settings_never_see_each_other(&a, &b);
}

fn heads(n: u8) -> Heads {
    Heads::from_bytes(&[n; 32]).unwrap()
}

fn one_chunk(doc: &DocId, data: Vec<u8>, base_version: u64) -> DocWrite {
    DocWrite {
        doc: doc.clone(),
        chunks: vec![data],
        heads: heads(1),
        base_version,
        media: Vec::new(),
    }
}

/// Eight writers appending to one document at once: every chunk is kept, numbered in turn,
/// at both isolation levels.
#[test]
fn concurrent_appends_to_one_document_lose_nothing() {
    for options in ["", SERIALIZABLE] {
        let (pool, _) = fresh_pool(options);
        let store = Arc::new(new_setting(&pool, "A"));
        let j = DocId::Journal(ChildId::new_random());
        store.create_doc(&j, 0, b"s").unwrap();
        let start = Arc::new(Barrier::new(8));
        let writers: Vec<_> = (0..8u8)
            .map(|w| {
                let (store, j, start) = (store.clone(), j.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    for i in 0..20u8 {
                        store
                            .commit_changes(
                                Some(&format!("dev{w}")),
                                &[one_chunk(&j, vec![w, i], 0)],
                                &[(j.clone(), vec![w, i])],
                                &[],
                            )
                            .unwrap();
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        let d = store.load_doc(&j).unwrap().unwrap();
        assert_eq!((d.chunks.len(), d.last_seq, d.version), (160, 160, 160));
        let mut seen = d.chunks.clone();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 160, "{options}: a chunk was lost or doubled");
        // Each writer's chunks are in its own commit order.
        for w in 0..8u8 {
            let mine: Vec<u8> = d
                .chunks
                .iter()
                .filter(|c| c[0] == w)
                .map(|c| c[1])
                .collect();
            assert_eq!(mine, (0..20).collect::<Vec<_>>());
        }
        println!(
            "{options:?}: {} serialization retries",
            pool.serialization_retries()
        );
    }
}

/// One code redeemed by eight devices at once enrols exactly one.
#[test]
fn a_code_redeemed_at_once_enrols_one_device() {
    for options in ["", SERIALIZABLE] {
        let (pool, _) = fresh_pool(options);
        let store = Arc::new(new_setting(&pool, "A"));
        store
            .insert_enrol_code(&EnrolCode {
                code_hash: "h".into(),
                device_name: "Room 1".into(),
                created_at: 0,
                expires_at: i64::MAX,
            })
            .unwrap();
        let start = Arc::new(Barrier::new(8));
        let tries: Vec<_> = (0..8)
            .map(|i| {
                let (store, start) = (store.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    store
                        .redeem_enrol_code(
                            "h",
                            1,
                            &NewDevice {
                                id: format!("d{i}"),
                                name: String::new(),
                                cert_serial: format!("s{i}"),
                                cert_fingerprint: format!("sha256:{i}"),
                                created_at: 1,
                                app_version: None,
                            },
                        )
                        .unwrap()
                })
            })
            .collect();
        let outcomes: Vec<Redeemed> = tries.into_iter().map(|t| t.join().unwrap()).collect();
        let enrolled = outcomes
            .iter()
            .filter(|o| matches!(o, Redeemed::Enrolled(_)))
            .count();
        let used = outcomes.iter().filter(|o| **o == Redeemed::Used).count();
        assert_eq!((enrolled, used), (1, 7), "{options}: {outcomes:?}");
        assert_eq!(store.list_devices().unwrap().len(), 1);
        assert_eq!(store.enrol_code_attempts("h").unwrap(), Some(8));
    }
}

/// A raw connection to `url` on a runtime of its own, to hold locks from outside the store.
struct Raw {
    rt: tokio::runtime::Runtime,
    client: tokio_postgres::Client,
}

impl Raw {
    fn connect(url: &str) -> Raw {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let client = rt.block_on(async {
            let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(conn);
            client
        });
        Raw { rt, client }
    }

    fn run(&self, sql: &str) {
        self.rt.block_on(self.client.batch_execute(sql)).unwrap();
    }

    fn count(&self, sql: &str) -> i64 {
        self.rt
            .block_on(self.client.query_one(sql, &[]))
            .unwrap()
            .get(0)
    }
}

/// At SERIALIZABLE, a commit whose document row another transaction changed after it began
/// fails with SQLSTATE 40001; the store runs it again and it succeeds, with nothing lost.
#[test]
fn a_serialization_failure_is_retried() {
    let (pool, url) = fresh_pool(SERIALIZABLE);
    let store = Arc::new(new_setting(&pool, "A"));
    let j = DocId::Journal(ChildId::new_random());
    store.create_doc(&j, 0, b"s").unwrap();
    let raw = Raw::connect(&url);
    // Hold the document's row: an append from outside, not yet committed.
    raw.run(&format!(
        "BEGIN ISOLATION LEVEL SERIALIZABLE;
         UPDATE docs SET version = version + 1, next_seq = next_seq + 1
           WHERE setting_id = '{}' AND doc = '{j}';
         INSERT INTO doc_chunks (setting_id, doc, seq, data)
           VALUES ('{}', '{j}', 1, '\\x6f75747369646521');",
        store.setting_id(),
        store.setting_id()
    ));
    let before = pool.serialization_retries();
    let writer = {
        let (store, j) = (store.clone(), j.clone());
        std::thread::spawn(move || {
            store.commit_changes(None, &[one_chunk(&j, b"mine".to_vec(), 0)], &[], &[])
        })
    };
    // Wait until the store's UPDATE is queued behind the held row lock, then let go.
    let deadline = Instant::now() + Duration::from_secs(30);
    while raw.count(
        "SELECT COUNT(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' \
         AND application_name = 'sprig-server'",
    ) == 0
    {
        assert!(Instant::now() < deadline, "the store's commit never waited");
        std::thread::sleep(Duration::from_millis(10));
    }
    raw.run("COMMIT");
    writer.join().unwrap().unwrap();
    assert!(
        pool.serialization_retries() > before,
        "the conflicting commit was not retried"
    );
    let d = store.load_doc(&j).unwrap().unwrap();
    assert_eq!(d.chunks, vec![b"outside!".to_vec(), b"mine".to_vec()]);
    assert_eq!((d.last_seq, d.version), (2, 2));
    // The writer's copy missed the outside change: heads unknown, as on SQLite.
    assert_eq!(d.heads, None);
}

/// An empty database is refused until migrated; migrating twice, or from two processes at
/// once, applies each step once.
#[test]
fn migrations_run_once_even_from_two_migrators() {
    let url = fresh_database(&server_url(""), false).unwrap();
    match PgPool::open(&url) {
        Err(StoreError::NeedsMigration { found: 0, needed }) => assert!(needed >= 1),
        other => panic!("expected NeedsMigration, got {other:?}"),
    }
    let start = Arc::new(Barrier::new(2));
    let migrators: Vec<_> = (0..2)
        .map(|_| {
            let (url, start) = (url.clone(), start.clone());
            std::thread::spawn(move || {
                let pool = PgPool::connect(&url).unwrap();
                start.wait();
                pool.migrate().unwrap()
            })
        })
        .collect();
    let mut applied: Vec<i64> = migrators
        .into_iter()
        .flat_map(|m| m.join().unwrap())
        .collect();
    applied.sort_unstable();
    let pool = PgPool::open(&url).unwrap();
    let latest = pool.schema_version().unwrap();
    // Each step once (numbers may have a gap while another branch holds one), up to the latest.
    assert!(applied.windows(2).all(|w| w[0] < w[1]), "{applied:?}");
    assert_eq!(applied.first(), Some(&1));
    assert_eq!(applied.last(), Some(&latest));
    assert_eq!(PgStore::migrate(&url).unwrap(), Vec::<i64>::new());
    let raw = Raw::connect(&url);
    assert_eq!(
        raw.count("SELECT COUNT(*) FROM schema_migrations"),
        i64::try_from(applied.len()).unwrap()
    );
}

/// Settings: created once per host name, found by host name (any case) and by CA, with
/// their certificates and keys; an unknown setting is not found.
#[test]
fn settings_are_found_by_hostname_and_ca() {
    let (pool, _) = fresh_pool("");
    let a = pool
        .create_setting(&NewSetting::new("Acorns", "Acorns.Example.org"), 5)
        .unwrap();
    assert_eq!(a.hostname, "acorns.example.org");
    assert!(matches!(
        pool.create_setting(&NewSetting::new("Again", "acorns.example.org"), 6),
        Err(StoreError::AlreadyExists(_))
    ));
    let b = pool
        .create_setting(&NewSetting::new("Beeches", "beeches.example.org"), 7)
        .unwrap();
    assert_eq!(pool.settings().unwrap(), vec![a.clone(), b.clone()]);
    assert_eq!(
        pool.setting_by_hostname("ACORNS.example.org").unwrap(),
        Some(a.clone())
    );
    assert!(
        pool.setting_by_hostname("oaks.example.org")
            .unwrap()
            .is_none()
    );
    assert!(pool.setting_tls(a.id).unwrap().is_none());
    let tls = sprig_server::store::SettingTls {
        ca_fingerprint: "sha256:aa".into(),
        ca_cert_pem: "ca cert".into(),
        ca_key_pem: "ca key".to_owned().into(),
        server_cert_pem: "server cert".into(),
        server_key_pem: "server key".to_owned().into(),
    };
    pool.set_setting_tls(a.id, &tls).unwrap();
    assert_eq!(pool.setting_tls(a.id).unwrap(), Some(tls.clone()));
    assert!(matches!(
        pool.set_setting_tls(b.id, &tls),
        Err(StoreError::AlreadyExists(_))
    ));
    assert_eq!(
        pool.setting_by_ca_fingerprint("sha256:aa")
            .unwrap()
            .map(|s| s.id),
        Some(a.id)
    );
    let unknown = uuid::Uuid::new_v4();
    assert!(matches!(
        pool.setting(unknown),
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        pool.set_setting_tls(unknown, &tls),
        Err(StoreError::NotFound(_))
    ));
}

/// A server that is not there is a retryable error that says what to check.
#[test]
fn an_unreachable_database_is_a_clear_retryable_error() {
    // A port nobody listens on: bound, then closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut o = PgOptions::default();
    o.connect_timeout = Duration::from_secs(2);
    let err =
        PgPool::connect_with(&format!("postgres://sprig@127.0.0.1:{port}/x"), &o).unwrap_err();
    assert!(!err.is_permanent(), "{err}");
    assert!(err.to_string().contains("database"), "{err}");
}

/// The blocking store works from a plain thread, a blocking-pool thread, a multi-threaded
/// runtime's worker and a current-thread runtime (where an audit line is written from an
/// async handler), without panicking or stalling.
#[test]
fn the_store_works_from_every_kind_of_thread() {
    let store = Arc::new(fresh_store(""));
    store.set_meta("k", "plain").unwrap();
    let multi = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let s = store.clone();
    multi.block_on(async move {
        // On a worker.
        let worker = tokio::spawn({
            let s = s.clone();
            async move { s.set_meta("k", "worker").unwrap() }
        });
        worker.await.unwrap();
        let blocking = tokio::task::spawn_blocking({
            let s = s.clone();
            move || s.meta("k").unwrap()
        });
        assert_eq!(blocking.await.unwrap().as_deref(), Some("worker"));
    });
    let current = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let s = store.clone();
    current.block_on(async move {
        s.set_meta("k", "current").unwrap();
        let blocking = tokio::task::spawn_blocking({
            let s = s.clone();
            move || s.meta("k").unwrap()
        });
        assert_eq!(blocking.await.unwrap().as_deref(), Some("current"));
    });
}

//! The Postgres backend: many settings (tenants) in one database. A [`PgPool`] is the
//! connection pool; [`PgPool::setting`] gives a [`PgStore`], the [`ServerStore`] of one
//! setting, so every caller keeps taking `&dyn ServerStore`.
//!
//! ```no_run
//! # fn run() -> Result<(), sprig_server::StoreError> {
//! use sprig_server::store::{NewSetting, PgPool};
//! use sprig_server::ServerStore;
//!
//! let pool = PgPool::connect("postgres://sprig@127.0.0.1:5432/sprig")?;
//! pool.migrate()?;
//! let acorns = pool.create_setting(&NewSetting::new("Acorn Pre-School", "acorns.example.org"), 0)?;
//! let store = pool.setting(acorns.id)?;
//! store.set_meta("public_url", "https://acorns.example.org")?;
//! # Ok(()) }
//! ```
//!
//! **Blocking over async.** [`ServerStore`] is blocking and its callers run it on blocking
//! threads (`spawn_blocking`) or in the CLI, while the driver (tokio-postgres, pooled by
//! deadpool) is async. Connections live on one small runtime of their own (two threads named
//! `sprig-pg`, made on first use, for the whole process); a store call waits for its future
//! with that runtime's `Handle::block_on`, which never re-enters the caller's runtime. Called
//! on a worker of a multi-threaded runtime after all (an audit line written from a handler),
//! the wait is wrapped in `block_in_place`, so the worker hands its other tasks on instead of
//! stalling them; on a current-thread runtime the future is polled by a parking loop on the
//! calling thread while the `sprig-pg` threads drive the sockets.
//!
//! **Distributed SQL.** The SQL stays within what CockroachDB and YugabyteDB accept: no
//! sequences (orders are counters updated inside the transaction: a document's `next_seq`, a
//! setting's `audit_seq`), no LISTEN/NOTIFY, no advisory locks. Transactions run at the
//! session's isolation level (Postgres: read committed; CockroachDB: serializable) and never
//! rely on it: a decision read is locked (`SELECT … FOR UPDATE`) or made inside the `UPDATE`
//! that locks the row. Serialization failures and deadlocks (SQLSTATE 40001, 40P01) rerun the
//! whole transaction with jittered exponential back-off ([`PgPool::serialization_retries`]
//! counts them).

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use deadpool_postgres::{
    Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime, Transaction,
};
use sprig_core::Heads;
use sprig_proto::DocId;
use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use uuid::Uuid;
use zeroize::Zeroizing;

use super::{
    AgreementRecord, Attempts, AuditEvent, AuditQuery, CodeState, Contact, DatabaseError, Device,
    DeviceStatus, DocHeads, DocWrite, EnrolCode, Invitation, MediaRecord, NewDevice,
    PinFailureRecord, Quarantine, QuarantineRecord, Redeemed, ServerStore, SessionRow,
    SettingEvent, StatusChange, StoreError, StoreResult, StoredDoc, TotpRecord,
};

/// Schema steps in order: `(version, name, SQL)`. Append new steps; never edit a released one.
/// A step must leave the previous release working (add, then stop using, then drop), since
/// replicas are upgraded one at a time after `migrate`.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "settings and the per-setting tables",
        include_str!("postgres/0001_schema.sql"),
    ),
    (
        2,
        "media references, quarantine, parents' contacts",
        include_str!("postgres/0002_server_authority.sql"),
    ),
    (
        3,
        "setting events and attempt counters",
        include_str!("postgres/0003_hosting.sql"),
    ),
    (
        4,
        "portal sessions and agreements",
        include_str!("postgres/0004_portal.sql"),
    ),
    (
        5,
        "second factors and invitations",
        include_str!("postgres/0005_account_security.sql"),
    ),
    (
        6,
        "staff sign-in addresses and recovery codes",
        include_str!("postgres/0006_staff_sign_in.sql"),
    ),
    (
        7,
        "audit clients and off-site permission",
        include_str!("postgres/0007_console_admin.sql"),
    ),
];

/// The newest schema step this server knows.
fn latest_migration() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.0)
}

/// How often a transaction that keeps hitting serialization failures is tried in all.
const MAX_ATTEMPTS: u32 = 12;

/// How a [`PgPool`] connects.
#[non_exhaustive]
#[derive(Clone, Debug)]
pub struct PgOptions {
    /// The most connections the pool holds open.
    pub max_connections: usize,
    /// How long a call waits for a connection (a free one, or a new one being opened) before
    /// it fails as retryable.
    pub connect_timeout: Duration,
    /// Whether to send NOTIFY after writing an event (a wake-up for other replicas; nothing
    /// depends on it). `None`: yes unless the server says it is CockroachDB or YugabyteDB,
    /// which have no LISTEN/NOTIFY.
    pub notify: Option<bool>,
}

impl Default for PgOptions {
    fn default() -> PgOptions {
        PgOptions {
            max_connections: 16,
            connect_timeout: Duration::from_secs(10),
            notify: None,
        }
    }
}

/// A setting to create ([`PgPool::create_setting`]).
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewSetting {
    /// The setting's name ("Acorn Pre-School").
    pub name: String,
    /// The host name its portal and devices reach it at; unique in the deployment, stored in
    /// lower case.
    pub hostname: String,
}

impl NewSetting {
    /// A setting called `name` at `hostname`.
    #[must_use]
    pub fn new(name: &str, hostname: &str) -> NewSetting {
        NewSetting {
            name: name.to_owned(),
            hostname: hostname.to_owned(),
        }
    }
}

/// A setting (tenant) of a hosted deployment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SettingRecord {
    /// Its id: every per-setting row carries it.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// Its host name (lower case).
    pub hostname: String,
    /// When it was created (ms).
    pub created_at: i64,
    /// `sha256:<hex>` of its CA certificate, once [`PgPool::set_setting_tls`] stored one.
    pub ca_fingerprint: Option<String>,
}

/// A setting's CA and server certificate with their keys, which a hosted deployment keeps in
/// the database instead of the data directory's `ca.*` and `server.*` files.
#[derive(Clone, PartialEq, Eq)]
pub struct SettingTls {
    /// `sha256:<hex>` of the CA certificate's DER (what devices pin).
    pub ca_fingerprint: String,
    /// The CA certificate, PEM.
    pub ca_cert_pem: String,
    /// The CA's private key, PEM.
    pub ca_key_pem: Zeroizing<String>,
    /// The server certificate chain, PEM.
    pub server_cert_pem: String,
    /// The server's private key, PEM.
    pub server_key_pem: Zeroizing<String>,
}

impl fmt::Debug for SettingTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Private keys never reach a log line.
        f.debug_struct("SettingTls")
            .field("ca_fingerprint", &self.ca_fingerprint)
            .field("ca_key_pem", &"<redacted>")
            .field("server_key_pem", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// A pool of connections to one Postgres database holding any number of settings. Cheap to
/// clone; clones share the pool.
#[derive(Clone)]
pub struct PgPool {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    rt: tokio::runtime::Handle,
    retries: AtomicU64,
    /// Whether events are followed by a NOTIFY (see [`PgOptions::notify`]).
    notify: std::sync::atomic::AtomicBool,
    /// How to open a connection of its own (the LISTEN connection). Holds the password: never
    /// shown.
    config: tokio_postgres::Config,
}

impl fmt::Debug for PgPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may carry a password: show the pool's size only.
        let status = self.inner.pool.status();
        f.debug_struct("PgPool")
            .field("max_connections", &status.max_size)
            .field("open", &status.size)
            .finish_non_exhaustive()
    }
}

/// The setting-scoped [`ServerStore`] over a [`PgPool`]: every query names its setting.
#[derive(Clone)]
pub struct PgStore {
    inner: Arc<Inner>,
    setting: Uuid,
}

impl fmt::Debug for PgStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgStore")
            .field("setting", &self.setting)
            .finish_non_exhaustive()
    }
}

/// The process's runtime for database connections (see the module documentation).
fn pg_runtime() -> StoreResult<tokio::runtime::Handle> {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    if let Some(rt) = RT.get() {
        return Ok(rt.handle().clone());
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("sprig-pg")
        .enable_all()
        .build()
        .map_err(|e| {
            StoreError::Database(DatabaseError::new(
                e,
                "the server could not start its database threads",
                true,
            ))
        })?;
    if let Err(lost) = RT.set(rt) {
        // Another thread made one first. `shutdown_background` is safe on any thread.
        lost.shutdown_background();
    }
    Ok(RT
        .get()
        .expect("the runtime was set above")
        .handle()
        .clone())
}

/// Polls `fut` on this thread, parking between wake-ups.
fn park_on<F: Future>(fut: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

impl Inner {
    /// Waits for `fut`, whatever thread this is (see the module documentation).
    fn block_on<F: Future>(&self, fut: F) -> F::Output {
        use tokio::runtime::{Handle, RuntimeFlavor};
        match Handle::try_current().map(|h| h.runtime_flavor()) {
            Err(_) => self.rt.block_on(fut),
            Ok(RuntimeFlavor::CurrentThread) => {
                // That runtime's only thread is this one and is busy here: poll on it, with
                // our runtime as the context the driver's timers and sockets register with.
                let _enter = self.rt.enter();
                park_on(fut)
            }
            // A blocking-pool thread (allowed to block) or a worker (hands its tasks on).
            Ok(_) => tokio::task::block_in_place(|| self.rt.block_on(fut)),
        }
    }

    async fn client(&self) -> Result<Object, Fail> {
        self.pool.get().await.map_err(Fail::Pool)
    }

    /// Runs `attempt` until it succeeds, fails for good, or has met `MAX_ATTEMPTS`
    /// serialization failures.
    async fn retry<T>(&self, mut attempt: impl AsyncFnMut() -> Result<T, Fail>) -> StoreResult<T> {
        let mut tries = 0;
        loop {
            match attempt().await {
                Ok(v) => return Ok(v),
                Err(f) if f.is_serialization_failure() && tries + 1 < MAX_ATTEMPTS => {
                    tries += 1;
                    self.retries.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(backoff(tries)).await;
                }
                Err(f) => return Err(f.into_store_error()),
            }
        }
    }

    /// `op` with a pooled connection, outside any explicit transaction.
    async fn read<T>(&self, mut op: impl AsyncFnMut(&Object) -> Result<T, Fail>) -> StoreResult<T> {
        self.retry(async || {
            let c = self.client().await?;
            op(&c).await
        })
        .await
    }

    /// `op` inside one transaction, committed when it returns `Ok` and rolled back otherwise.
    async fn write<T>(
        &self,
        mut op: impl AsyncFnMut(&Transaction<'_>) -> Result<T, Fail>,
    ) -> StoreResult<T> {
        self.retry(async || {
            let mut c = self.client().await?;
            let tx = c.transaction().await?;
            // On an error `tx` is dropped here, which rolls it back.
            let v = op(&tx).await?;
            tx.commit().await?;
            Ok(v)
        })
        .await
    }
}

/// Full-jitter exponential back-off: up to 2 ms × 2^n, at most 1 s.
fn backoff(attempt: u32) -> Duration {
    let cap_ms = (2u64 << attempt.min(9)).min(1_000);
    Duration::from_micros(rand::random_range(cap_ms * 250..=cap_ms * 1_000))
}

/// Why one attempt failed.
enum Fail {
    Pg(tokio_postgres::Error),
    Pool(PoolError),
    Store(StoreError),
}

impl From<tokio_postgres::Error> for Fail {
    fn from(e: tokio_postgres::Error) -> Fail {
        Fail::Pg(e)
    }
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Fail {
        Fail::Store(e)
    }
}

impl Fail {
    fn pg(&self) -> Option<&tokio_postgres::Error> {
        match self {
            Fail::Pg(e) | Fail::Pool(PoolError::Backend(e)) => Some(e),
            _ => None,
        }
    }

    fn is_serialization_failure(&self) -> bool {
        self.pg()
            .and_then(tokio_postgres::Error::code)
            .is_some_and(|c| {
                *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED
            })
    }

    fn into_store_error(self) -> StoreError {
        match self {
            Fail::Store(e) => e,
            Fail::Pg(e) | Fail::Pool(PoolError::Backend(e)) => pg_error(&e),
            Fail::Pool(PoolError::Timeout(_)) => StoreError::Database(DatabaseError::new(
                "no database connection became free in time",
                "the database is overloaded or unreachable; try again",
                true,
            )),
            Fail::Pool(other) => StoreError::Database(DatabaseError::new(
                other.to_string(),
                "the database pool is closed; restart the server",
                false,
            )),
        }
    }
}

/// A driver error as it may be shown: the server's severity, SQLSTATE and message, never its
/// DETAIL (which can quote a row's values, such as a password hash).
#[derive(Debug)]
struct PgDriverError(String);

impl fmt::Display for PgDriverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PgDriverError {}

/// Maps a driver error: which SQLSTATE classes are worth retrying, and what to tell the
/// operator.
fn pg_error(e: &tokio_postgres::Error) -> StoreError {
    let Some(db) = e.as_db_error() else {
        // No server answer: the connection failed or was lost. The causes (an I/O error) say
        // which.
        let mut message = e.to_string();
        let mut cause = std::error::Error::source(e);
        while let Some(c) = cause {
            message.push_str(&format!(": {c}"));
            cause = c.source();
        }
        return StoreError::Database(DatabaseError::new(
            PgDriverError(message),
            "check that the database server is reachable and try again",
            true,
        ));
    };
    let code = db.code().code();
    let message = PgDriverError(format!("{} {code}: {}", db.severity(), db.message()));
    let (hint, retryable) = match &code[..2] {
        // Connection, transaction rollback, resources, operator intervention, system error.
        "08" | "40" | "53" | "57" | "58" => ("the database is busy or restarting; try again", true),
        "28" => ("check the database URL's user name and password", false),
        "42" if code == "42P01" || code == "42703" => (
            "the database has no Sprig schema or an older one; run `sprig-server migrate`",
            false,
        ),
        _ if code == "55P03" => ("a row stayed locked too long; try again", true),
        _ => (
            "this is a bug in sprig-server or a damaged database; check the server's log",
            false,
        ),
    };
    StoreError::Database(DatabaseError::new(message, hint, retryable))
}

fn u64_col(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn parse_doc(s: &str) -> Result<DocId, Fail> {
    DocId::parse(s).map_err(|e| StoreError::Corrupt(e.to_string()).into())
}

fn parse_heads(bytes: Option<Vec<u8>>) -> Result<Option<Heads>, Fail> {
    bytes
        .map(|b| {
            Heads::from_bytes(&b)
                .map_err(|e| StoreError::Corrupt(format!("document heads: {e}")).into())
        })
        .transpose()
}

fn parse_status(s: &str) -> Result<DeviceStatus, Fail> {
    DeviceStatus::parse(s)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown device status '{s}'")).into())
}

macro_rules! device_select {
    () => {
        "SELECT id, name, status, cert_serial, cert_fingerprint, created_at, last_seen, \
         last_sync, app_version, unsynced_media, unsynced_docs, locked, wipe_requested_at, \
         wipe_delivered_at, wiped_at, \
         (SELECT COUNT(*) FROM pin_failures p \
          WHERE p.setting_id = devices.setting_id AND p.device = devices.id), offsite_until \
         FROM devices WHERE setting_id = $1"
    };
}

fn device_row(r: &tokio_postgres::Row) -> Result<Device, Fail> {
    let status: String = r.try_get(2)?;
    Ok(Device {
        id: r.try_get(0)?,
        name: r.try_get(1)?,
        status: parse_status(&status)?,
        cert_serial: r.try_get(3)?,
        cert_fingerprint: r.try_get(4)?,
        created_at: r.try_get(5)?,
        last_seen: r.try_get(6)?,
        last_sync: r.try_get(7)?,
        app_version: r.try_get(8)?,
        unsynced_media: u64_col(r.try_get(9)?),
        unsynced_docs: u64_col(r.try_get(10)?),
        locked: r.try_get(11)?,
        wipe_requested_at: r.try_get(12)?,
        wipe_delivered_at: r.try_get(13)?,
        wiped_at: r.try_get(14)?,
        pin_failures: u64_col(r.try_get(15)?),
        offsite_until: r.try_get(16)?,
    })
}

fn setting_row(r: &tokio_postgres::Row) -> Result<SettingRecord, Fail> {
    Ok(SettingRecord {
        id: r.try_get(0)?,
        name: r.try_get(1)?,
        hostname: r.try_get(2)?,
        created_at: r.try_get(3)?,
        ca_fingerprint: r.try_get(4)?,
    })
}

const SETTING_SELECT: &str = "SELECT id, name, hostname, created_at, ca_fingerprint FROM settings";

/// Appends one audit row inside the caller's statement or transaction; the setting's counter
/// gives its place in the log (`$1` setting, `$2` at, `$3` actor, `$4` device, `$5` action,
/// `$6` detail, `$7` client).
const AUDIT_INSERT: &str = "
WITH next AS (
    INSERT INTO setting_counters (setting_id, audit_seq) VALUES ($1::UUID, 1)
    ON CONFLICT (setting_id) DO UPDATE SET audit_seq = setting_counters.audit_seq + 1
    RETURNING audit_seq
)
INSERT INTO audit (setting_id, seq, at, actor, device, action, detail, client)
SELECT $1::UUID, audit_seq, $2::BIGINT, $3::TEXT, $4::TEXT, $5::TEXT, $6::TEXT, $7::TEXT FROM next";

/// Appends one event inside the caller's transaction, numbered by the setting's counter, at
/// the database's clock (`$1` setting, `$2` kind, `$3` device, `$4` detail).
const EVENT_INSERT: &str = "
WITH next AS (
    INSERT INTO setting_counters (setting_id, event_seq) VALUES ($1::UUID, 1)
    ON CONFLICT (setting_id) DO UPDATE SET event_seq = setting_counters.event_seq + 1
    RETURNING event_seq
)
INSERT INTO setting_events (setting_id, seq, at, kind, device, detail)
SELECT $1::UUID, event_seq, (EXTRACT(EPOCH FROM now()) * 1000)::BIGINT, $2::TEXT, $3::TEXT,
       $4::TEXT
FROM next";

/// The channel a replica LISTENs on for events; the payload is the setting's id.
pub const EVENT_CHANNEL: &str = "sprig_events";
/// The channel on which a new setting is announced, so replicas serve it at once.
pub const SETTINGS_CHANNEL: &str = "sprig_settings";

/// Records that device `device` of setting `sid` is now `status`, in the caller's transaction.
async fn status_event(
    tx: &Transaction<'_>,
    sid: &Uuid,
    device: &str,
    status: DeviceStatus,
) -> Result<(), Fail> {
    tx.execute(
        EVENT_INSERT,
        &[sid, &SettingEvent::DEVICE_STATUS, &device, &status.as_str()],
    )
    .await?;
    Ok(())
}

/// One LISTEN connection, until it fails or closes.
async fn listen_once(
    config: &tokio_postgres::Config,
    wake: &(impl Fn() + Send + Sync),
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = config.connect(NoTls).await?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    // The connection yields notifications as messages; it must be polled for the client to
    // work at all.
    let driver = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(m) = futures_util::StreamExt::next(&mut messages).await {
            match m {
                Ok(tokio_postgres::AsyncMessage::Notification(_)) => {
                    if tx.send(()).is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    });
    client
        .batch_execute(&format!("LISTEN {EVENT_CHANNEL}"))
        .await?;
    wake();
    while rx.recv().await.is_some() {
        wake();
    }
    drop(client);
    match driver.await {
        Ok(r) => r,
        Err(_) => Ok(()),
    }
}

/// Events of every setting seen by [`PgPool::recent_events`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecentEvents {
    /// The database's clock when they were read (ms): pass it back, less a margin, as the next
    /// `since`.
    pub db_now: i64,
    /// Events at or after `since`, with their setting, oldest first.
    pub events: Vec<(Uuid, SettingEvent)>,
}

impl PgPool {
    /// Connects to the database at `url` (`postgres://user:password@host:port/dbname`, with
    /// the usual `?options=…`) with default [`PgOptions`], and checks that it answers. Does
    /// not check the schema: [`PgPool::migrate`] brings it up to date, [`PgPool::open`]
    /// refuses an old one.
    ///
    /// # Errors
    /// [`StoreError::Database`] when the URL is malformed or the database cannot be reached.
    pub fn connect(url: &str) -> StoreResult<PgPool> {
        Self::connect_with(url, &PgOptions::default())
    }

    /// [`PgPool::connect`] with `options`.
    ///
    /// # Errors
    /// As [`PgPool::connect`].
    pub fn connect_with(url: &str, options: &PgOptions) -> StoreResult<PgPool> {
        let mut config: tokio_postgres::Config = url.parse().map_err(|e| {
            StoreError::Database(DatabaseError::new(
                PgDriverError(format!("{e}")),
                "check the database URL (postgres://user:password@host:port/dbname)",
                false,
            ))
        })?;
        if config.get_application_name().is_none() {
            config.application_name("sprig-server");
        }
        config.connect_timeout(options.connect_timeout);
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.max_connections)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(options.connect_timeout))
            .create_timeout(Some(options.connect_timeout))
            .recycle_timeout(Some(options.connect_timeout))
            .build()
            .map_err(|e| {
                StoreError::Database(DatabaseError::new(
                    e.to_string(),
                    "check the pool options",
                    false,
                ))
            })?;
        let pool = PgPool {
            inner: Arc::new(Inner {
                pool,
                rt: pg_runtime()?,
                retries: AtomicU64::new(0),
                notify: std::sync::atomic::AtomicBool::new(false),
                config,
            }),
        };
        let inner = &pool.inner;
        let version = inner.block_on(inner.read(async |c| {
            let row = c.query_one("SELECT version()", &[]).await?;
            Ok(row.try_get::<_, String>(0)?)
        }))?;
        // CockroachDB and YugabyteDB have no LISTEN/NOTIFY: polling alone carries events there.
        let distributed = version.contains("CockroachDB") || version.contains("-YB-");
        inner
            .notify
            .store(options.notify.unwrap_or(!distributed), Ordering::Relaxed);
        Ok(pool)
    }

    /// Whether the database answers a trivial query now (what `/v1/ready` asks).
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub fn ping(&self) -> StoreResult<()> {
        let inner = &self.inner;
        inner.block_on(inner.read(async |c| {
            c.simple_query("SELECT 1").await?;
            Ok(())
        }))
    }

    /// Connections the pool holds open, and how many of them are idle.
    #[must_use]
    pub fn connections(&self) -> (usize, usize) {
        let s = self.inner.pool.status();
        (s.size, s.available)
    }

    /// Every setting's events at or after `since` (ms, the database's clock), with the
    /// database's clock now: one indexed query per call, however many settings there are. A
    /// replica polls with `since` = the last `db_now` less a margin longer than any write
    /// transaction, and skips events it has already seen (by setting and sequence number), so
    /// nothing committed late is missed.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub fn recent_events(&self, since: i64) -> StoreResult<RecentEvents> {
        let inner = &self.inner;
        inner.block_on(inner.read(async |c| {
            let st = c
                .prepare_cached(
                    "WITH t AS (SELECT (EXTRACT(EPOCH FROM now()) * 1000)::BIGINT AS now_ms)
                     SELECT t.now_ms, e.setting_id, e.seq, e.at, e.kind, e.device, e.detail
                     FROM t LEFT JOIN setting_events e ON e.at >= $1
                     ORDER BY e.at, e.setting_id, e.seq",
                )
                .await?;
            let rows = c.query(&st, &[&since]).await?;
            let mut out = RecentEvents::default();
            for r in &rows {
                out.db_now = r.try_get(0)?;
                let Some(setting) = r.try_get::<_, Option<Uuid>>(1)? else {
                    continue;
                };
                out.events.push((
                    setting,
                    SettingEvent {
                        seq: u64_col(r.try_get(2)?),
                        at: r.try_get(3)?,
                        kind: r.try_get(4)?,
                        device: r.try_get(5)?,
                        detail: r.try_get(6)?,
                    },
                ));
            }
            Ok(out)
        }))
    }

    /// Forgets every setting's attempts and events older than `before` (ms); returns how many
    /// rows went.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub fn prune_transient(&self, before: i64) -> StoreResult<u64> {
        let inner = &self.inner;
        inner.block_on(inner.write(async |tx| {
            let a = tx
                .execute("DELETE FROM attempts WHERE at < $1", &[&before])
                .await?;
            let e = tx
                .execute("DELETE FROM setting_events WHERE at < $1", &[&before])
                .await?;
            Ok(a + e)
        }))
    }

    /// Whether events are followed by a NOTIFY on this database.
    #[must_use]
    pub fn notifies(&self) -> bool {
        self.inner.notify.load(Ordering::Relaxed)
    }

    /// Keeps a connection of its own LISTENing on [`EVENT_CHANNEL`] and calls `wake` for
    /// every notification, reconnecting with back-off when it is lost, until the returned
    /// handle is aborted or dropped with the runtime. Only a wake-up: whoever is woken reads
    /// the events table, which it also polls. Does nothing where the database has no
    /// LISTEN/NOTIFY ([`PgPool::notifies`]).
    pub fn spawn_listener(
        &self,
        wake: impl Fn() + Send + Sync + 'static,
    ) -> Option<tokio::task::JoinHandle<()>> {
        if !self.notifies() {
            return None;
        }
        let config = self.inner.config.clone();
        Some(self.inner.rt.spawn(async move {
            let mut failures = 0u32;
            loop {
                match listen_once(&config, &wake).await {
                    Ok(()) => failures = 0,
                    Err(e) => {
                        failures = failures.saturating_add(1);
                        tracing::warn!(error = %pg_error(&e), "the event listener lost its connection");
                    }
                }
                // Whatever was missed meanwhile is in the table: wake once to read it.
                wake();
                tokio::time::sleep(backoff(failures.clamp(4, 10))).await;
            }
        }))
    }

    /// [`PgPool::connect`], then refuses a database whose schema is older than this server's
    /// ([`StoreError::NeedsMigration`]). What `serve` and admin commands use.
    ///
    /// # Errors
    /// As [`PgPool::connect`], and [`StoreError::NeedsMigration`].
    pub fn open(url: &str) -> StoreResult<PgPool> {
        let pool = Self::connect(url)?;
        pool.check_schema()?;
        Ok(pool)
    }

    /// The newest schema step applied (0 for an empty database).
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub fn schema_version(&self) -> StoreResult<i64> {
        let inner = &self.inner;
        inner.block_on(inner.read(async |c| {
            let exists = c
                .query_one(
                    "SELECT COUNT(*) FROM information_schema.tables \
                     WHERE table_schema = current_schema() AND table_name = 'schema_migrations'",
                    &[],
                )
                .await?
                .try_get::<_, i64>(0)?;
            if exists == 0 {
                return Ok(0);
            }
            let row = c
                .query_one(
                    "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
                    &[],
                )
                .await?;
            Ok(row.try_get::<_, i64>(0)?)
        }))
    }

    /// Refuses a database whose schema is older than this server's. A newer one is accepted:
    /// schema steps keep the previous release working.
    ///
    /// # Errors
    /// [`StoreError::NeedsMigration`], [`StoreError::Database`].
    pub fn check_schema(&self) -> StoreResult<()> {
        let found = self.schema_version()?;
        let needed = latest_migration();
        if found < needed {
            return Err(StoreError::NeedsMigration { found, needed });
        }
        Ok(())
    }

    /// Brings the schema up to date: applies, in order, each step of `MIGRATIONS` not yet
    /// recorded in `schema_migrations`, each in its own transaction with its record. Safe to
    /// run from several processes at once: a second migrator waits on the first one's record
    /// of a step, then finds it applied. Returns the versions it applied.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub fn migrate(&self) -> StoreResult<Vec<i64>> {
        let inner = &self.inner;
        inner.block_on(async {
            // Creating a table concurrently can fail on Postgres's catalog unique index: once
            // it exists, the statement is a no-op, so try again.
            let mut tries = 0;
            loop {
                let made = inner
                    .read(async |c| {
                        c.batch_execute(
                            "CREATE TABLE IF NOT EXISTS schema_migrations (
                                version BIGINT PRIMARY KEY,
                                name TEXT NOT NULL,
                                applied_at BIGINT NOT NULL
                            )",
                        )
                        .await?;
                        Ok(())
                    })
                    .await;
                match made {
                    Ok(()) => break,
                    Err(_) if tries < 5 => {
                        tries += 1;
                        tokio::time::sleep(backoff(tries)).await;
                    }
                    Err(e) => return Err(e),
                }
            }
            let mut applied = Vec::new();
            for &(version, name, sql) in MIGRATIONS {
                let mut tries = 0;
                loop {
                    let step = inner
                        .write(async |tx| {
                            let done = tx
                                .query_opt(
                                    "SELECT 1 FROM schema_migrations WHERE version = $1",
                                    &[&version],
                                )
                                .await?;
                            if done.is_some() {
                                return Ok(false);
                            }
                            // A concurrent migrator blocks here until this one commits, then
                            // fails on the primary key and finds the step applied.
                            tx.execute(
                                "INSERT INTO schema_migrations (version, name, applied_at)
                                 VALUES ($1, $2, $3)",
                                &[&version, &name, &crate::admin::now_ms()],
                            )
                            .await?;
                            tx.batch_execute(sql).await?;
                            Ok(true)
                        })
                        .await;
                    match step {
                        Ok(true) => {
                            tracing::info!(version, name, "schema step applied");
                            applied.push(version);
                            break;
                        }
                        Ok(false) => break,
                        Err(_) if tries < 5 => {
                            tries += 1;
                            tokio::time::sleep(backoff(tries)).await;
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
            Ok(applied)
        })
    }

    /// Creates a setting (a tenant) with a random id.
    ///
    /// # Errors
    /// [`StoreError::AlreadyExists`] when another setting has the host name.
    pub fn create_setting(&self, new: &NewSetting, created_at: i64) -> StoreResult<SettingRecord> {
        self.insert_setting(new, created_at, None)
    }

    /// [`PgPool::create_setting`] with its certificates and keys, in one transaction: a
    /// setting never exists without them.
    ///
    /// # Errors
    /// [`StoreError::AlreadyExists`] when another setting has the host name or the CA.
    pub fn create_setting_with_tls(
        &self,
        new: &NewSetting,
        tls: &SettingTls,
        created_at: i64,
    ) -> StoreResult<SettingRecord> {
        let record = self.insert_setting(new, created_at, Some(tls))?;
        if self.inner.notify.load(Ordering::Relaxed) {
            // Running replicas start serving it at once instead of at their next refresh.
            let inner = &self.inner;
            let _ = inner.block_on(inner.read(async |c| {
                c.execute("SELECT pg_notify($1, $2)", &[&SETTINGS_CHANNEL, &"created"])
                    .await?;
                Ok(())
            }));
        }
        Ok(record)
    }

    fn insert_setting(
        &self,
        new: &NewSetting,
        created_at: i64,
        tls: Option<&SettingTls>,
    ) -> StoreResult<SettingRecord> {
        let id = Uuid::new_v4();
        let hostname = new.hostname.to_ascii_lowercase();
        let inner = &self.inner;
        inner.block_on(inner.write(async |tx| {
            let n = tx
                .execute(
                    "INSERT INTO settings (id, name, hostname, created_at) VALUES ($1, $2, $3, $4)
                     ON CONFLICT DO NOTHING",
                    &[&id, &new.name, &hostname, &created_at],
                )
                .await?;
            if n == 0 {
                return Err(StoreError::AlreadyExists(format!("a setting at {hostname}")).into());
            }
            tx.execute(
                "INSERT INTO setting_counters (setting_id) VALUES ($1)",
                &[&id],
            )
            .await?;
            if let Some(tls) = tls {
                let n = tx
                    .execute(
                        "UPDATE settings SET ca_fingerprint = $2, ca_cert_pem = $3, ca_key_pem = $4,
                                 server_cert_pem = $5, server_key_pem = $6
                         WHERE id = $1
                           AND NOT EXISTS (SELECT 1 FROM settings WHERE ca_fingerprint = $2)",
                        &[
                            &id,
                            &tls.ca_fingerprint,
                            &tls.ca_cert_pem,
                            &tls.ca_key_pem.as_str(),
                            &tls.server_cert_pem,
                            &tls.server_key_pem.as_str(),
                        ],
                    )
                    .await?;
                if n == 0 {
                    return Err(StoreError::AlreadyExists(format!(
                        "a setting with CA {}",
                        tls.ca_fingerprint
                    ))
                    .into());
                }
            }
            Ok(SettingRecord {
                id,
                name: new.name.clone(),
                hostname: hostname.clone(),
                created_at,
                ca_fingerprint: tls.map(|t| t.ca_fingerprint.clone()),
            })
        }))
    }

    /// Every setting, oldest first.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub fn settings(&self) -> StoreResult<Vec<SettingRecord>> {
        let inner = &self.inner;
        inner.block_on(inner.read(async |c| {
            let st = c
                .prepare_cached(&format!("{SETTING_SELECT} ORDER BY created_at, id"))
                .await?;
            c.query(&st, &[]).await?.iter().map(setting_row).collect()
        }))
    }

    fn setting_where(
        &self,
        clause: &str,
        value: &(dyn ToSql + Sync),
    ) -> StoreResult<Option<SettingRecord>> {
        let inner = &self.inner;
        let sql = format!("{SETTING_SELECT} WHERE {clause}");
        inner.block_on(inner.read(async |c| {
            let st = c.prepare_cached(&sql).await?;
            c.query_opt(&st, &[value])
                .await?
                .as_ref()
                .map(setting_row)
                .transpose()
        }))
    }

    /// The setting at `hostname` (any case), if any: how a request finds its tenant.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub fn setting_by_hostname(&self, hostname: &str) -> StoreResult<Option<SettingRecord>> {
        self.setting_where("hostname = $1", &hostname.to_ascii_lowercase())
    }

    /// The setting whose CA has this `sha256:<hex>` fingerprint, if any: how a device
    /// certificate's issuer finds its tenant.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub fn setting_by_ca_fingerprint(
        &self,
        fingerprint: &str,
    ) -> StoreResult<Option<SettingRecord>> {
        self.setting_where("ca_fingerprint = $1", &fingerprint)
    }

    /// Stores a setting's CA and server certificates and keys.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown setting, [`StoreError::AlreadyExists`] when
    /// another setting has this CA.
    pub fn set_setting_tls(&self, id: Uuid, tls: &SettingTls) -> StoreResult<()> {
        let inner = &self.inner;
        inner.block_on(inner.write(async |tx| {
            let exists = tx
                .query_opt("SELECT 1 FROM settings WHERE id = $1 FOR UPDATE", &[&id])
                .await?;
            if exists.is_none() {
                return Err(StoreError::NotFound(format!("setting {id}")).into());
            }
            let taken = tx
                .query_opt(
                    "SELECT 1 FROM settings WHERE ca_fingerprint = $1 AND id <> $2",
                    &[&tls.ca_fingerprint, &id],
                )
                .await?;
            if taken.is_some() {
                return Err(StoreError::AlreadyExists(format!(
                    "a setting with CA {}",
                    tls.ca_fingerprint
                ))
                .into());
            }
            tx.execute(
                "UPDATE settings SET ca_fingerprint = $2, ca_cert_pem = $3, ca_key_pem = $4,
                         server_cert_pem = $5, server_key_pem = $6
                     WHERE id = $1",
                &[
                    &id,
                    &tls.ca_fingerprint,
                    &tls.ca_cert_pem,
                    &tls.ca_key_pem.as_str(),
                    &tls.server_cert_pem,
                    &tls.server_key_pem.as_str(),
                ],
            )
            .await?;
            Ok(())
        }))
    }

    /// A setting's certificates and keys, `None` until stored.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown setting.
    pub fn setting_tls(&self, id: Uuid) -> StoreResult<Option<SettingTls>> {
        let inner = &self.inner;
        inner.block_on(inner.read(async |c| {
            let Some(r) = c
                .query_opt(
                    "SELECT ca_fingerprint, ca_cert_pem, ca_key_pem, server_cert_pem, server_key_pem
                     FROM settings WHERE id = $1",
                    &[&id],
                )
                .await?
            else {
                return Err(StoreError::NotFound(format!("setting {id}")).into());
            };
            let text = |i: usize| r.try_get::<_, Option<String>>(i);
            let parts = (text(0)?, text(1)?, text(2)?, text(3)?, text(4)?);
            Ok(match parts {
                (
                    Some(ca_fingerprint),
                    Some(ca_cert_pem),
                    Some(ca_key),
                    Some(server_cert_pem),
                    Some(server_key),
                ) => Some(SettingTls {
                    ca_fingerprint,
                    ca_cert_pem,
                    ca_key_pem: Zeroizing::new(ca_key),
                    server_cert_pem,
                    server_key_pem: Zeroizing::new(server_key),
                }),
                _ => None,
            })
        }))
    }

    /// The store of setting `id`.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown setting.
    pub fn setting(&self, id: Uuid) -> StoreResult<PgStore> {
        let inner = &self.inner;
        let found = inner.block_on(inner.read(async |c| {
            Ok(c.query_opt("SELECT 1 FROM settings WHERE id = $1", &[&id])
                .await?
                .is_some())
        }))?;
        if !found {
            return Err(StoreError::NotFound(format!("setting {id}")));
        }
        Ok(PgStore {
            inner: self.inner.clone(),
            setting: id,
        })
    }

    /// How many times a transaction was run again after a serialization failure or deadlock,
    /// since the pool was made.
    #[must_use]
    pub fn serialization_retries(&self) -> u64 {
        self.inner.retries.load(Ordering::Relaxed)
    }
}

impl PgStore {
    /// Connects to `url` and brings its schema up to date ([`PgPool::migrate`]): what
    /// `sprig-server migrate --database-url URL` runs. Returns the versions applied.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub fn migrate(url: &str) -> StoreResult<Vec<i64>> {
        PgPool::connect(url)?.migrate()
    }

    /// The setting this store reads and writes.
    #[must_use]
    pub fn setting_id(&self) -> Uuid {
        self.setting
    }

    /// Wakes other replicas after an event was committed. Best effort and outside the
    /// transaction: a lost NOTIFY only means they see the event at their next poll.
    fn notify(&self) {
        if !self.inner.notify.load(Ordering::Relaxed) {
            return;
        }
        let sid = self.setting.to_string();
        let sent = self.read(async |c| {
            c.execute("SELECT pg_notify($1, $2)", &[&EVENT_CHANNEL, &sid])
                .await?;
            Ok(())
        });
        if let Err(e) = sent {
            tracing::debug!(error = %e, "NOTIFY failed; replicas see the event when they poll");
        }
    }

    fn read<T>(&self, op: impl AsyncFnMut(&Object) -> Result<T, Fail>) -> StoreResult<T> {
        self.inner.block_on(self.inner.read(op))
    }

    fn write<T>(&self, op: impl AsyncFnMut(&Transaction<'_>) -> Result<T, Fail>) -> StoreResult<T> {
        self.inner.block_on(self.inner.write(op))
    }

    /// Runs one statement of `sql` with the setting id as `$1` and `params` after it; returns
    /// the rows it changed.
    fn execute(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> StoreResult<u64> {
        let sid = self.setting;
        self.read(async |c| {
            let st = c.prepare_cached(sql).await?;
            let mut all: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(params.len() + 1);
            all.push(&sid);
            all.extend_from_slice(params);
            Ok(c.execute(&st, &all).await?)
        })
    }

    /// The first row of `sql` (setting id as `$1`, then `params`), if any.
    fn query_opt<T>(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        map: impl Fn(&tokio_postgres::Row) -> Result<T, Fail>,
    ) -> StoreResult<Option<T>> {
        let sid = self.setting;
        self.read(async |c| {
            let st = c.prepare_cached(sql).await?;
            let mut all: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(params.len() + 1);
            all.push(&sid);
            all.extend_from_slice(params);
            c.query_opt(&st, &all).await?.as_ref().map(&map).transpose()
        })
    }

    /// Every row of `sql` (setting id as `$1`, then `params`).
    fn query<T>(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        map: impl Fn(&tokio_postgres::Row) -> Result<T, Fail>,
    ) -> StoreResult<Vec<T>> {
        let sid = self.setting;
        self.read(async |c| {
            let st = c.prepare_cached(sql).await?;
            let mut all: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(params.len() + 1);
            all.push(&sid);
            all.extend_from_slice(params);
            c.query(&st, &all).await?.iter().map(&map).collect()
        })
    }
}

/// A table of sign-in addresses and its id column: parents' and staff members'.
type Contacts = (&'static str, &'static str);
const PARENT_CONTACTS: Contacts = ("parent_contacts", "parent_id");
const STAFF_CONTACTS: Contacts = ("staff_contacts", "staff_id");

impl PgStore {
    /// Sets `id`'s sign-in address (lower-case) in the table `own`, unless another login of
    /// `own` or any of `other` has it: an address signs one login in.
    fn set_address(
        &self,
        (table, col): Contacts,
        other: Contacts,
        id: &str,
        email: &str,
        at: i64,
    ) -> StoreResult<()> {
        let sid = self.setting;
        let email = email.trim().to_lowercase();
        let check = format!(
            "SELECT 1 FROM {table} WHERE setting_id = $1 AND email = $2 AND {col} <> $3
             UNION ALL SELECT 1 FROM {} WHERE setting_id = $1 AND email = $2",
            other.0
        );
        let upsert = format!(
            "INSERT INTO {table} (setting_id, {col}, email, updated_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (setting_id, {col})
             DO UPDATE SET email = excluded.email, updated_at = excluded.updated_at"
        );
        self.write(async |tx| {
            // The unique index guards a race within one table; the lock, the one between them.
            lock_addresses(tx, sid).await?;
            let taken = tx.query_opt(check.as_str(), &[&sid, &email, &id]).await?;
            if taken.is_some() {
                return Err(StoreError::AlreadyExists("e-mail address".into()).into());
            }
            tx.execute(upsert.as_str(), &[&sid, &id, &email, &at])
                .await?;
            Ok(())
        })
    }
}

/// Locks the setting's row for the rest of `tx`, so that of two writes of sign-in addresses
/// (a parent's and a staff member's are in two tables, which no one index spans) one sees the
/// other's.
async fn lock_addresses(tx: &Transaction<'_>, sid: Uuid) -> Result<(), Fail> {
    tx.query_opt("SELECT 1 FROM settings WHERE id = $1 FOR UPDATE", &[&sid])
        .await?;
    Ok(())
}

fn invitation_row(r: &tokio_postgres::Row) -> Result<Invitation, Fail> {
    Ok(Invitation {
        token_hash: r.try_get(0)?,
        parent: r.try_get(1)?,
        created_at: r.try_get(2)?,
        expires_at: r.try_get(3)?,
        used_at: r.try_get(4)?,
    })
}

impl ServerStore for PgStore {
    fn meta(&self, key: &str) -> StoreResult<Option<String>> {
        self.query_opt(
            "SELECT value FROM meta WHERE setting_id = $1 AND key = $2",
            &[&key],
            |r| Ok(r.try_get(0)?),
        )
    }

    fn set_meta(&self, key: &str, value: &str) -> StoreResult<()> {
        self.execute(
            "INSERT INTO meta (setting_id, key, value) VALUES ($1, $2, $3)
             ON CONFLICT (setting_id, key) DO UPDATE SET value = excluded.value",
            &[&key, &value],
        )?;
        Ok(())
    }

    fn list_docs(&self) -> StoreResult<Vec<(DocId, u64)>> {
        let mut out = self.query(
            "SELECT doc, epoch FROM docs WHERE setting_id = $1",
            &[],
            |r| {
                let doc: String = r.try_get(0)?;
                Ok((parse_doc(&doc)?, u64_col(r.try_get(1)?)))
            },
        )?;
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    fn list_doc_heads(&self) -> StoreResult<Vec<DocHeads>> {
        let mut out = self.query(
            "SELECT doc, epoch, version, heads FROM docs WHERE setting_id = $1",
            &[],
            |r| {
                let doc: String = r.try_get(0)?;
                Ok(DocHeads {
                    doc: parse_doc(&doc)?,
                    epoch: u64_col(r.try_get(1)?),
                    version: u64_col(r.try_get(2)?),
                    heads: parse_heads(r.try_get(3)?)?,
                })
            },
        )?;
        out.sort_by(|a, b| a.doc.cmp(&b.doc));
        Ok(out)
    }

    fn set_doc_heads(&self, doc: &DocId, version: u64, heads: &Heads) -> StoreResult<bool> {
        let n = self.execute(
            "UPDATE docs SET heads = $4 WHERE setting_id = $1 AND doc = $2 AND version = $3",
            &[&doc.to_string(), &i64_of(version), &heads.to_bytes()],
        )?;
        Ok(n == 1)
    }

    fn load_doc(&self, doc: &DocId) -> StoreResult<Option<StoredDoc>> {
        // One statement, so the snapshot and the chunks are read at one moment on every
        // engine without an explicit transaction: the snapshot is row 0, chunks follow by seq.
        let rows = self.query(
            "SELECT 0::BIGINT AS seq, snapshot AS data, epoch, version, heads
               FROM docs WHERE setting_id = $1 AND doc = $2
             UNION ALL
             SELECT seq, data, NULL, NULL, NULL
               FROM doc_chunks WHERE setting_id = $1 AND doc = $2
             ORDER BY seq",
            &[&doc.to_string()],
            |r| {
                Ok((
                    r.try_get::<_, i64>(0)?,
                    r.try_get::<_, Vec<u8>>(1)?,
                    r.try_get::<_, Option<i64>>(2)?,
                    r.try_get::<_, Option<i64>>(3)?,
                    r.try_get::<_, Option<Vec<u8>>>(4)?,
                ))
            },
        )?;
        let mut rows = rows.into_iter();
        let Some((0, snapshot, Some(epoch), Some(version), heads)) = rows.next() else {
            return Ok(None);
        };
        let mut chunks = Vec::new();
        let mut last_seq = 0;
        for (seq, data, ..) in rows {
            last_seq = seq;
            chunks.push(data);
        }
        Ok(Some(StoredDoc {
            epoch: u64_col(epoch),
            snapshot,
            chunks,
            last_seq,
            version: u64_col(version),
            heads: parse_heads(heads).map_err(Fail::into_store_error)?,
        }))
    }

    fn create_doc(&self, doc: &DocId, epoch: u64, snapshot: &[u8]) -> StoreResult<()> {
        let n = self.execute(
            "INSERT INTO docs (setting_id, doc, epoch, snapshot) VALUES ($1, $2, $3, $4)
             ON CONFLICT DO NOTHING",
            &[&doc.to_string(), &i64_of(epoch), &snapshot],
        )?;
        if n == 0 {
            return Err(StoreError::AlreadyExists(doc.to_string()));
        }
        Ok(())
    }

    fn commit_changes(
        &self,
        device: Option<&str>,
        writes: &[DocWrite],
        sync_states: &[(DocId, Vec<u8>)],
        replaced: &[DocId],
    ) -> StoreResult<()> {
        let sid = self.setting;
        let now = crate::admin::now_ms();
        self.write(async |tx| {
            let bump = tx
                .prepare_cached(
                    // Locks the row until commit: appenders to one document take chunk numbers
                    // in turn, and the version compared is the latest committed one. The heads
                    // are right only when the writer's copy held every stored change.
                    "UPDATE docs SET
                         heads = CASE WHEN version = $3::BIGINT THEN $4::BYTEA ELSE NULL END,
                         version = version + 1,
                         next_seq = next_seq + $5::BIGINT
                     WHERE setting_id = $1 AND doc = $2
                     RETURNING next_seq - $5::BIGINT",
                )
                .await?;
            let append = tx
                .prepare_cached(
                    "INSERT INTO doc_chunks (setting_id, doc, seq, data) VALUES ($1, $2, $3, $4)",
                )
                .await?;
            for w in writes {
                let key = w.doc.to_string();
                let chunks: Vec<&Vec<u8>> = w.chunks.iter().filter(|c| !c.is_empty()).collect();
                let count = i64::try_from(chunks.len()).unwrap_or(i64::MAX);
                let Some(row) = tx
                    .query_opt(
                        &bump,
                        &[&sid, &key, &i64_of(w.base_version), &w.heads.to_bytes(), &count],
                    )
                    .await?
                else {
                    return Err(StoreError::NotFound(key).into());
                };
                let first: i64 = row.try_get(0)?;
                for (seq, chunk) in (first..).zip(chunks) {
                    tx.execute(&append, &[&sid, &key, &seq, chunk]).await?;
                }
                for sha in &w.media {
                    tx.execute(
                        "INSERT INTO media_refs (setting_id, sha256, doc) VALUES ($1, $2, $3)
                         ON CONFLICT DO NOTHING",
                        &[&sid, sha, &key],
                    )
                    .await?;
                }
            }
            if let Some(device) = device {
                let save = tx
                    .prepare_cached(
                        "INSERT INTO sync_states (setting_id, device, doc, state)
                         VALUES ($1, $2, $3, $4)
                         ON CONFLICT (setting_id, device, doc) DO UPDATE SET state = excluded.state",
                    )
                    .await?;
                for (doc, state) in sync_states {
                    tx.execute(&save, &[&sid, &device, &doc.to_string(), state])
                        .await?;
                }
                for doc in replaced {
                    tx.execute(
                        "UPDATE quarantine SET replaced_at = $4
                         WHERE setting_id = $1 AND device = $2 AND doc = $3
                           AND released_at IS NOT NULL AND replaced_at IS NULL",
                        &[&sid, &device, &doc.to_string(), &now],
                    )
                    .await?;
                }
            }
            Ok(())
        })
    }

    fn replace_doc(&self, doc: &DocId, epoch: u64, snapshot: &[u8]) -> StoreResult<()> {
        let sid = self.setting;
        let key = doc.to_string();
        self.write(async |tx| {
            let n = tx
                .execute(
                    "UPDATE docs SET epoch = $3, snapshot = $4, heads = NULL, version = version + 1
                     WHERE setting_id = $1 AND doc = $2",
                    &[&sid, &key, &i64_of(epoch), &snapshot],
                )
                .await?;
            if n == 0 {
                return Err(StoreError::NotFound(key.clone()).into());
            }
            tx.execute(
                "DELETE FROM doc_chunks WHERE setting_id = $1 AND doc = $2",
                &[&sid, &key],
            )
            .await?;
            tx.execute(
                "DELETE FROM sync_states WHERE setting_id = $1 AND doc = $2",
                &[&sid, &key],
            )
            .await?;
            Ok(())
        })
    }

    fn compact_doc(
        &self,
        doc: &DocId,
        snapshot: &[u8],
        upto_seq: i64,
        version: u64,
        heads: &Heads,
    ) -> StoreResult<()> {
        let sid = self.setting;
        let key = doc.to_string();
        self.write(async |tx| {
            // The row lock orders this against appends: chunks numbered after `upto_seq`
            // (appended since the compacting reader looked) are kept.
            let n = tx
                .execute(
                    "UPDATE docs SET snapshot = $3,
                         heads = CASE WHEN version = $4::BIGINT THEN $5::BYTEA ELSE heads END
                     WHERE setting_id = $1 AND doc = $2",
                    &[&sid, &key, &snapshot, &i64_of(version), &heads.to_bytes()],
                )
                .await?;
            if n == 0 {
                return Err(StoreError::NotFound(key.clone()).into());
            }
            tx.execute(
                "DELETE FROM doc_chunks WHERE setting_id = $1 AND doc = $2 AND seq <= $3",
                &[&sid, &key, &upto_seq],
            )
            .await?;
            Ok(())
        })
    }

    fn sync_state(&self, device: &str, doc: &DocId) -> StoreResult<Option<Vec<u8>>> {
        self.query_opt(
            "SELECT state FROM sync_states WHERE setting_id = $1 AND device = $2 AND doc = $3",
            &[&device, &doc.to_string()],
            |r| Ok(r.try_get(0)?),
        )
    }

    fn insert_enrol_code(&self, code: &EnrolCode) -> StoreResult<()> {
        let n = self.execute(
            "INSERT INTO enrol_codes (setting_id, code_hash, device_name, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            &[
                &code.code_hash,
                &code.device_name,
                &code.created_at,
                &code.expires_at,
            ],
        )?;
        if n == 0 {
            return Err(StoreError::AlreadyExists("enrolment code".into()));
        }
        Ok(())
    }

    fn redeem_enrol_code(
        &self,
        code_hash: &str,
        now: i64,
        device: &NewDevice,
    ) -> StoreResult<Redeemed> {
        let sid = self.setting;
        self.write(async |tx| {
            // Locked: two devices redeeming one code at once take turns, and the second
            // finds it used.
            let Some(row) = tx
                .query_opt(
                    "SELECT device_name, expires_at, used_at FROM enrol_codes
                     WHERE setting_id = $1 AND code_hash = $2 FOR UPDATE",
                    &[&sid, &code_hash],
                )
                .await?
            else {
                return Ok(Redeemed::Unknown);
            };
            let name: String = row.try_get(0)?;
            let expires_at: i64 = row.try_get(1)?;
            let used_at: Option<i64> = row.try_get(2)?;
            tx.execute(
                "UPDATE enrol_codes SET attempts = attempts + 1
                 WHERE setting_id = $1 AND code_hash = $2",
                &[&sid, &code_hash],
            )
            .await?;
            if used_at.is_some() {
                return Ok(Redeemed::Used);
            }
            if now >= expires_at {
                return Ok(Redeemed::Expired);
            }
            let inserted = tx
                .execute(
                    "INSERT INTO devices (setting_id, id, name, status, cert_serial,
                         cert_fingerprint, created_at, app_version)
                     VALUES ($1, $2, $3, 'active', $4, $5, $6, $7) ON CONFLICT DO NOTHING",
                    &[
                        &sid,
                        &device.id,
                        &name,
                        &device.cert_serial,
                        &device.cert_fingerprint,
                        &device.created_at,
                        &device.app_version,
                    ],
                )
                .await?;
            if inserted == 0 {
                // Rolled back with the attempt, as on SQLite.
                return Err(StoreError::AlreadyExists(format!("device {}", device.id)).into());
            }
            tx.execute(
                "UPDATE enrol_codes SET used_at = $3, used_by = $4
                 WHERE setting_id = $1 AND code_hash = $2",
                &[&sid, &code_hash, &now, &device.id],
            )
            .await?;
            Ok(Redeemed::Enrolled(Box::new(Device {
                id: device.id.clone(),
                name,
                status: DeviceStatus::Active,
                cert_serial: device.cert_serial.clone(),
                cert_fingerprint: device.cert_fingerprint.clone(),
                created_at: device.created_at,
                last_seen: None,
                last_sync: None,
                app_version: device.app_version.clone(),
                unsynced_media: 0,
                unsynced_docs: 0,
                locked: false,
                pin_failures: 0,
                wipe_requested_at: None,
                wipe_delivered_at: None,
                wiped_at: None,
                offsite_until: None,
            })))
        })
    }

    fn enrol_code_state(&self, code_hash: &str, now: i64) -> StoreResult<CodeState> {
        let row = self.query_opt(
            "SELECT expires_at, used_at FROM enrol_codes WHERE setting_id = $1 AND code_hash = $2",
            &[&code_hash],
            |r| Ok((r.try_get::<_, i64>(0)?, r.try_get::<_, Option<i64>>(1)?)),
        )?;
        Ok(match row {
            None => CodeState::Unknown,
            Some((_, Some(_))) => CodeState::Used,
            Some((expires, None)) if now >= expires => CodeState::Expired,
            Some(_) => CodeState::Valid,
        })
    }

    fn enrol_code_attempts(&self, code_hash: &str) -> StoreResult<Option<u64>> {
        self.query_opt(
            "SELECT attempts FROM enrol_codes WHERE setting_id = $1 AND code_hash = $2",
            &[&code_hash],
            |r| Ok(u64_col(r.try_get(0)?)),
        )
    }

    fn device(&self, id: &str) -> StoreResult<Option<Device>> {
        self.query_opt(
            concat!(device_select!(), " AND id = $2"),
            &[&id],
            device_row,
        )
    }

    fn device_by_fingerprint(&self, fingerprint: &str) -> StoreResult<Option<Device>> {
        self.query_opt(
            concat!(device_select!(), " AND cert_fingerprint = $2"),
            &[&fingerprint],
            device_row,
        )
    }

    fn list_devices(&self) -> StoreResult<Vec<Device>> {
        self.query(
            concat!(device_select!(), " ORDER BY created_at, id"),
            &[],
            device_row,
        )
    }

    fn set_device_status(&self, id: &str, status: DeviceStatus) -> StoreResult<()> {
        let sid = self.setting;
        self.write(async |tx| {
            let n = tx
                .execute(
                    "UPDATE devices SET status = $3 WHERE setting_id = $1 AND id = $2",
                    &[&sid, &id, &status.as_str()],
                )
                .await?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("device {id}")).into());
            }
            status_event(tx, &sid, id, status).await
        })?;
        self.notify();
        Ok(())
    }

    fn change_device_status(
        &self,
        id: &str,
        from: &[DeviceStatus],
        to: DeviceStatus,
        at: i64,
    ) -> StoreResult<StatusChange> {
        let sid = self.setting;
        let requested = matches!(to, DeviceStatus::WipePending | DeviceStatus::RetirePending);
        let wiped = matches!(to, DeviceStatus::Wiped | DeviceStatus::Retired);
        self.write(async |tx| {
            // Locked: the status read decides the write (a revoke racing a wipe request).
            let Some(row) = tx
                .query_opt(
                    "SELECT status FROM devices WHERE setting_id = $1 AND id = $2 FOR UPDATE",
                    &[&sid, &id],
                )
                .await?
            else {
                return Err(StoreError::NotFound(format!("device {id}")).into());
            };
            let current = parse_status(&row.try_get::<_, String>(0)?)?;
            if !from.contains(&current) {
                return Ok(StatusChange::Refused { current });
            }
            tx.execute(
                "UPDATE devices SET status = $3,
                     wipe_requested_at = CASE WHEN $4::BOOLEAN
                         THEN COALESCE(wipe_requested_at, $6::BIGINT) ELSE wipe_requested_at END,
                     wiped_at = CASE WHEN $5::BOOLEAN THEN $6::BIGINT ELSE wiped_at END
                 WHERE setting_id = $1 AND id = $2",
                &[&sid, &id, &to.as_str(), &requested, &wiped, &at],
            )
            .await?;
            status_event(tx, &sid, id, to).await?;
            Ok(StatusChange::Changed { from: current })
        })
        .inspect(|c| {
            if matches!(c, StatusChange::Changed { .. }) {
                self.notify();
            }
        })
    }

    fn quarantine_device(&self, q: &Quarantine) -> StoreResult<StatusChange> {
        let sid = self.setting;
        let id = Uuid::new_v4();
        let detail = format!("doc={} rule={} {}", q.doc, q.rule, q.detail);
        self.write(async |tx| {
            let Some(row) = tx
                .query_opt(
                    "SELECT status FROM devices WHERE setting_id = $1 AND id = $2 FOR UPDATE",
                    &[&sid, &q.device],
                )
                .await?
            else {
                return Err(StoreError::NotFound(format!("device {}", q.device)).into());
            };
            let current = parse_status(&row.try_get::<_, String>(0)?)?;
            let change = if matches!(current, DeviceStatus::Active | DeviceStatus::RetirePending) {
                tx.execute(
                    "UPDATE devices SET status = 'quarantined' WHERE setting_id = $1 AND id = $2",
                    &[&sid, &q.device],
                )
                .await?;
                status_event(tx, &sid, &q.device, DeviceStatus::Quarantined).await?;
                StatusChange::Changed { from: current }
            } else {
                StatusChange::Refused { current }
            };
            tx.execute(
                "INSERT INTO quarantine (setting_id, id, device, doc, rule, detail, at, held)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[
                    &sid,
                    &id,
                    &q.device,
                    &q.doc.to_string(),
                    &q.rule,
                    &q.detail,
                    &q.at,
                    &q.held,
                ],
            )
            .await?;
            tx.execute(
                AUDIT_INSERT,
                &[
                    &sid,
                    &q.at,
                    &"server",
                    &Some(q.device.as_str()),
                    &"quarantine",
                    &detail,
                    &None::<&str>,
                ],
            )
            .await?;
            Ok(change)
        })
        .inspect(|c| {
            if matches!(c, StatusChange::Changed { .. }) {
                self.notify();
            }
        })
    }

    fn quarantines(&self, device: &str) -> StoreResult<Vec<QuarantineRecord>> {
        self.query(
            "SELECT doc, rule, detail, at, held, released_at, replaced_at FROM quarantine
             WHERE setting_id = $1 AND device = $2 ORDER BY at, id",
            &[&device],
            |r| {
                let doc: String = r.try_get(0)?;
                Ok(QuarantineRecord {
                    quarantine: Quarantine {
                        device: device.to_owned(),
                        doc: parse_doc(&doc)?,
                        rule: r.try_get(1)?,
                        detail: r.try_get(2)?,
                        at: r.try_get(3)?,
                        held: r.try_get(4)?,
                    },
                    released_at: r.try_get(5)?,
                    replaced_at: r.try_get(6)?,
                })
            },
        )
    }

    fn release_device(&self, device: &str, at: i64) -> StoreResult<StatusChange> {
        let sid = self.setting;
        self.write(async |tx| {
            let Some(row) = tx
                .query_opt(
                    "SELECT status FROM devices WHERE setting_id = $1 AND id = $2 FOR UPDATE",
                    &[&sid, &device],
                )
                .await?
            else {
                return Err(StoreError::NotFound(format!("device {device}")).into());
            };
            let current = parse_status(&row.try_get::<_, String>(0)?)?;
            if current != DeviceStatus::Quarantined {
                return Ok(StatusChange::Refused { current });
            }
            tx.execute(
                "UPDATE devices SET status = 'active' WHERE setting_id = $1 AND id = $2",
                &[&sid, &device],
            )
            .await?;
            tx.execute(
                "UPDATE quarantine SET released_at = $3
                 WHERE setting_id = $1 AND device = $2 AND released_at IS NULL",
                &[&sid, &device, &at],
            )
            .await?;
            status_event(tx, &sid, device, DeviceStatus::Active).await?;
            Ok(StatusChange::Changed { from: current })
        })
        .inspect(|c| {
            if matches!(c, StatusChange::Changed { .. }) {
                self.notify();
            }
        })
    }

    fn pending_replaces(&self, device: &str) -> StoreResult<Vec<DocId>> {
        self.query(
            "SELECT DISTINCT doc FROM quarantine
             WHERE setting_id = $1 AND device = $2 AND released_at IS NOT NULL
               AND replaced_at IS NULL ORDER BY doc",
            &[&device],
            |r| parse_doc(&r.try_get::<_, String>(0)?),
        )
    }

    fn record_wipe_delivered(&self, id: &str, at: i64) -> StoreResult<()> {
        let n = self.execute(
            "UPDATE devices SET wipe_delivered_at = $3 WHERE setting_id = $1 AND id = $2",
            &[&id, &at],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("device {id}")));
        }
        Ok(())
    }

    fn record_pin_failures(
        &self,
        device: &str,
        failures: &[PinFailureRecord],
        reported_at: i64,
    ) -> StoreResult<u64> {
        let sid = self.setting;
        let actor = format!("device:{device}");
        self.write(async |tx| {
            let insert = tx
                .prepare_cached(
                    "INSERT INTO pin_failures (setting_id, device, staff_id, at, reported_at)
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                )
                .await?;
            let audit = tx.prepare_cached(AUDIT_INSERT).await?;
            let mut new = 0;
            for f in failures {
                let n = tx
                    .execute(&insert, &[&sid, &device, &f.staff_id, &f.at, &reported_at])
                    .await?;
                if n == 1 {
                    new += 1;
                    let detail = format!("staff={} reported_at={reported_at}", f.staff_id);
                    tx.execute(
                        &audit,
                        &[
                            &sid,
                            &f.at,
                            &actor,
                            &Some(device),
                            &"pin_failure",
                            &detail,
                            &None::<&str>,
                        ],
                    )
                    .await?;
                }
            }
            Ok(new)
        })
    }

    fn record_contact(&self, id: &str, c: &Contact) -> StoreResult<()> {
        let n = self.execute(
            "UPDATE devices SET last_seen = $3, app_version = $4, unsynced_media = $5,
                 unsynced_docs = $6,
                 last_sync = CASE WHEN $7::BOOLEAN THEN $3::BIGINT ELSE last_sync END,
                 locked = $8
             WHERE setting_id = $1 AND id = $2",
            &[
                &id,
                &c.at,
                &c.app_version,
                &i64_of(c.unsynced_media),
                &i64_of(c.unsynced_docs),
                &c.synced,
                &c.locked,
            ],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("device {id}")));
        }
        Ok(())
    }

    fn insert_media(&self, m: &MediaRecord) -> StoreResult<bool> {
        let n = self.execute(
            "INSERT INTO media (setting_id, sha256, size, kind, device, stored_at)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            &[&m.sha256, &i64_of(m.size), &m.kind, &m.device, &m.stored_at],
        )?;
        Ok(n == 1)
    }

    fn note_media_acked(&self, device: &str) -> StoreResult<()> {
        self.execute(
            "UPDATE devices SET unsynced_media = GREATEST(unsynced_media - 1, 0)
             WHERE setting_id = $1 AND id = $2",
            &[&device],
        )?;
        Ok(())
    }

    fn add_media_refs(&self, refs: &[(String, DocId)]) -> StoreResult<()> {
        let sid = self.setting;
        self.write(async |tx| {
            let insert = tx
                .prepare_cached(
                    "INSERT INTO media_refs (setting_id, sha256, doc) VALUES ($1, $2, $3)
                     ON CONFLICT DO NOTHING",
                )
                .await?;
            for (sha, doc) in refs {
                tx.execute(&insert, &[&sid, sha, &doc.to_string()]).await?;
            }
            Ok(())
        })
    }

    fn media_referenced(&self, sha256: &str) -> StoreResult<bool> {
        Ok(self
            .query_opt(
                "SELECT 1 FROM media_refs WHERE setting_id = $1 AND sha256 = $2 LIMIT 1",
                &[&sha256],
                |_| Ok(()),
            )?
            .is_some())
    }

    fn media(&self, sha256: &str) -> StoreResult<Option<MediaRecord>> {
        self.query_opt(
            "SELECT sha256, size, kind, device, stored_at FROM media
             WHERE setting_id = $1 AND sha256 = $2",
            &[&sha256],
            |r| {
                Ok(MediaRecord {
                    sha256: r.try_get(0)?,
                    size: u64_col(r.try_get(1)?),
                    kind: r.try_get(2)?,
                    device: r.try_get(3)?,
                    stored_at: r.try_get(4)?,
                })
            },
        )
    }

    fn set_password(&self, principal: &str, phc: &str, at: i64) -> StoreResult<()> {
        self.execute(
            "INSERT INTO passwords (setting_id, principal, phc, updated_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (setting_id, principal)
             DO UPDATE SET phc = excluded.phc, updated_at = excluded.updated_at",
            &[&principal, &phc, &at],
        )?;
        Ok(())
    }

    fn password(&self, principal: &str) -> StoreResult<Option<String>> {
        self.query_opt(
            "SELECT phc FROM passwords WHERE setting_id = $1 AND principal = $2",
            &[&principal],
            |r| Ok(r.try_get(0)?),
        )
    }

    fn set_parent_email(&self, parent: &str, email: &str, at: i64) -> StoreResult<()> {
        self.set_address(PARENT_CONTACTS, STAFF_CONTACTS, parent, email, at)
    }

    fn parent_email(&self, parent: &str) -> StoreResult<Option<String>> {
        self.query_opt(
            "SELECT email FROM parent_contacts WHERE setting_id = $1 AND parent_id = $2",
            &[&parent],
            |r| Ok(r.try_get(0)?),
        )
    }

    fn parent_by_email(&self, email: &str) -> StoreResult<Option<String>> {
        self.query_opt(
            "SELECT parent_id FROM parent_contacts WHERE setting_id = $1 AND email = $2",
            &[&email.trim().to_lowercase()],
            |r| Ok(r.try_get(0)?),
        )
    }

    fn set_staff_email(&self, staff: &str, email: &str, at: i64) -> StoreResult<()> {
        self.set_address(STAFF_CONTACTS, PARENT_CONTACTS, staff, email, at)
    }

    fn staff_email(&self, staff: &str) -> StoreResult<Option<String>> {
        self.query_opt(
            "SELECT email FROM staff_contacts WHERE setting_id = $1 AND staff_id = $2",
            &[&staff],
            |r| Ok(r.try_get(0)?),
        )
    }

    fn staff_by_email(&self, email: &str) -> StoreResult<Option<String>> {
        self.query_opt(
            "SELECT staff_id FROM staff_contacts WHERE setting_id = $1 AND email = $2",
            &[&email.trim().to_lowercase()],
            |r| Ok(r.try_get(0)?),
        )
    }

    fn create_session(&self, s: &SessionRow) -> StoreResult<()> {
        let n = self.execute(
            "INSERT INTO portal_sessions (setting_id, id_hash, principal, data, expires_at)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            &[&s.id_hash, &s.principal, &s.data, &s.expires_at],
        )?;
        if n == 0 {
            return Err(StoreError::AlreadyExists("session".into()));
        }
        Ok(())
    }

    fn update_session(&self, s: &SessionRow) -> StoreResult<bool> {
        let n = self.execute(
            "UPDATE portal_sessions SET principal = $3, data = $4, expires_at = $5
             WHERE setting_id = $1 AND id_hash = $2",
            &[&s.id_hash, &s.principal, &s.data, &s.expires_at],
        )?;
        Ok(n > 0)
    }

    fn load_session(&self, id_hash: &str, now: i64) -> StoreResult<Option<SessionRow>> {
        self.query_opt(
            "SELECT id_hash, principal, data, expires_at FROM portal_sessions
             WHERE setting_id = $1 AND id_hash = $2 AND expires_at > $3",
            &[&id_hash, &now],
            |r| {
                Ok(SessionRow {
                    id_hash: r.try_get(0)?,
                    principal: r.try_get(1)?,
                    data: r.try_get(2)?,
                    expires_at: r.try_get(3)?,
                })
            },
        )
    }

    fn delete_session(&self, id_hash: &str) -> StoreResult<()> {
        self.execute(
            "DELETE FROM portal_sessions WHERE setting_id = $1 AND id_hash = $2",
            &[&id_hash],
        )?;
        Ok(())
    }

    fn sessions_of(&self, principal: &str, now: i64) -> StoreResult<Vec<SessionRow>> {
        self.query(
            "SELECT id_hash, principal, data, expires_at FROM portal_sessions
             WHERE setting_id = $1 AND principal = $2 AND expires_at > $3
             ORDER BY expires_at DESC, id_hash",
            &[&principal, &now],
            |r| {
                Ok(SessionRow {
                    id_hash: r.try_get(0)?,
                    principal: r.try_get(1)?,
                    data: r.try_get(2)?,
                    expires_at: r.try_get(3)?,
                })
            },
        )
    }

    fn delete_expired_sessions(&self, now: i64) -> StoreResult<u64> {
        self.execute(
            "DELETE FROM portal_sessions WHERE setting_id = $1 AND expires_at <= $2",
            &[&now],
        )
    }

    fn put_totp(&self, t: &TotpRecord) -> StoreResult<()> {
        self.execute(
            "INSERT INTO totp (setting_id, principal, secret, enabled, last_step, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (setting_id, principal) DO UPDATE SET secret = excluded.secret,
                 enabled = excluded.enabled, last_step = excluded.last_step,
                 updated_at = excluded.updated_at",
            &[
                &t.principal,
                &t.secret,
                &t.enabled,
                &t.last_step,
                &t.updated_at,
            ],
        )?;
        Ok(())
    }

    fn totp(&self, principal: &str) -> StoreResult<Option<TotpRecord>> {
        self.query_opt(
            "SELECT principal, secret, enabled, last_step, updated_at FROM totp
             WHERE setting_id = $1 AND principal = $2",
            &[&principal],
            |r| {
                Ok(TotpRecord {
                    principal: r.try_get(0)?,
                    secret: r.try_get(1)?,
                    enabled: r.try_get(2)?,
                    last_step: r.try_get(3)?,
                    updated_at: r.try_get(4)?,
                })
            },
        )
    }

    fn use_totp_step(&self, principal: &str, step: i64, enable: bool) -> StoreResult<bool> {
        // One statement: two requests with the same code cannot both see the step unused.
        let n = self.execute(
            "UPDATE totp SET last_step = $3, enabled = (enabled OR $4)
             WHERE setting_id = $1 AND principal = $2 AND (last_step IS NULL OR last_step < $3)",
            &[&principal, &step, &enable],
        )?;
        if n > 0 {
            return Ok(true);
        }
        let exists = self.query_opt(
            "SELECT 1 FROM totp WHERE setting_id = $1 AND principal = $2",
            &[&principal],
            |_| Ok(()),
        )?;
        match exists {
            Some(()) => Ok(false),
            None => Err(StoreError::NotFound("second factor".into())),
        }
    }

    fn delete_totp(&self, principal: &str) -> StoreResult<()> {
        self.execute(
            "DELETE FROM totp WHERE setting_id = $1 AND principal = $2",
            &[&principal],
        )?;
        Ok(())
    }

    fn set_recovery_codes(&self, principal: &str, hashes: &[String], at: i64) -> StoreResult<()> {
        let sid = self.setting;
        self.write(async |tx| {
            tx.execute(
                "DELETE FROM recovery_codes WHERE setting_id = $1 AND principal = $2",
                &[&sid, &principal],
            )
            .await?;
            for h in hashes {
                tx.execute(
                    "INSERT INTO recovery_codes (setting_id, principal, code_hash, created_at)
                     VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                    &[&sid, &principal, h, &at],
                )
                .await?;
            }
            Ok(())
        })
    }

    fn use_recovery_code(&self, principal: &str, hash: &str, at: i64) -> StoreResult<bool> {
        // One statement: of two requests with the same code, one finds it unused.
        let n = self.execute(
            "UPDATE recovery_codes SET used_at = $4
             WHERE setting_id = $1 AND principal = $2 AND code_hash = $3 AND used_at IS NULL",
            &[&principal, &hash, &at],
        )?;
        Ok(n > 0)
    }

    fn recovery_codes_left(&self, principal: &str) -> StoreResult<u64> {
        let n = self.query_opt(
            "SELECT COUNT(*) FROM recovery_codes
             WHERE setting_id = $1 AND principal = $2 AND used_at IS NULL",
            &[&principal],
            |r| Ok(r.try_get::<_, i64>(0)?),
        )?;
        Ok(u64_col(n.unwrap_or(0)))
    }

    fn insert_invitation(&self, i: &Invitation) -> StoreResult<()> {
        let n = self.execute(
            "INSERT INTO invitations
                 (setting_id, token_hash, parent_id, created_at, expires_at, used_at)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            &[
                &i.token_hash,
                &i.parent,
                &i.created_at,
                &i.expires_at,
                &i.used_at,
            ],
        )?;
        if n == 0 {
            return Err(StoreError::AlreadyExists("invitation".into()));
        }
        Ok(())
    }

    fn revoke_invitations(&self, parent: &str, now: i64) -> StoreResult<u64> {
        self.execute(
            "UPDATE invitations SET expires_at = $3
             WHERE setting_id = $1 AND parent_id = $2 AND used_at IS NULL AND expires_at > $3",
            &[&parent, &now],
        )
    }

    fn invitation(&self, token_hash: &str, now: i64) -> StoreResult<Option<Invitation>> {
        self.query_opt(
            "SELECT token_hash, parent_id, created_at, expires_at, used_at FROM invitations
             WHERE setting_id = $1 AND token_hash = $2 AND used_at IS NULL AND expires_at > $3",
            &[&token_hash, &now],
            invitation_row,
        )
    }

    fn use_invitation(&self, token_hash: &str, now: i64) -> StoreResult<Option<Invitation>> {
        self.query_opt(
            "UPDATE invitations SET used_at = $3
             WHERE setting_id = $1 AND token_hash = $2 AND used_at IS NULL AND expires_at > $3
             RETURNING token_hash, parent_id, created_at, expires_at, used_at",
            &[&token_hash, &now],
            invitation_row,
        )
    }

    fn record_agreement(&self, a: &AgreementRecord) -> StoreResult<()> {
        self.execute(
            "INSERT INTO agreements (setting_id, id, principal, version, at, session_hash)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &Uuid::new_v4(),
                &a.principal,
                &a.version,
                &a.at,
                &a.session_hash,
            ],
        )?;
        Ok(())
    }

    fn latest_agreement(&self, principal: &str) -> StoreResult<Option<AgreementRecord>> {
        self.query_opt(
            "SELECT principal, version, at, session_hash FROM agreements
             WHERE setting_id = $1 AND principal = $2 ORDER BY at DESC, id DESC LIMIT 1",
            &[&principal],
            |r| {
                Ok(AgreementRecord {
                    principal: r.try_get(0)?,
                    version: r.try_get(1)?,
                    at: r.try_get(2)?,
                    session_hash: r.try_get(3)?,
                })
            },
        )
    }

    fn audit(&self, e: &AuditEvent) -> StoreResult<()> {
        self.execute(
            AUDIT_INSERT,
            &[&e.at, &e.actor, &e.device, &e.action, &e.detail, &e.client],
        )?;
        Ok(())
    }

    fn audit_log(&self, limit: u32) -> StoreResult<Vec<AuditEvent>> {
        self.audit_query(&AuditQuery {
            limit,
            ..AuditQuery::default()
        })
    }

    fn audit_query(&self, q: &AuditQuery) -> StoreResult<Vec<AuditEvent>> {
        self.query(
            "SELECT at, actor, device, action, detail, client FROM audit
             WHERE setting_id = $1
               AND ($2::TEXT IS NULL OR device = $2)
               AND ($3::TEXT IS NULL OR actor = 'staff:' || $3 OR strpos(detail, 'staff=' || $3) > 0)
               AND ($4::TEXT IS NULL OR strpos(detail, 'child=' || $4) > 0)
               AND ($5::TEXT IS NULL OR action = $5)
               AND ($6::BIGINT IS NULL OR at >= $6)
               AND ($7::BIGINT IS NULL OR at < $7)
             ORDER BY seq DESC LIMIT $8",
            &[
                &q.device,
                &q.staff,
                &q.child,
                &q.action,
                &q.since,
                &q.until,
                &i64::from(q.limit),
            ],
            |r| {
                Ok(AuditEvent {
                    at: r.try_get(0)?,
                    actor: r.try_get(1)?,
                    device: r.try_get(2)?,
                    action: r.try_get(3)?,
                    detail: r.try_get(4)?,
                    client: r.try_get(5)?,
                })
            },
        )
    }

    fn set_device_offsite(&self, id: &str, until: Option<i64>) -> StoreResult<()> {
        let n = self.execute(
            "UPDATE devices SET offsite_until = $3 WHERE setting_id = $1 AND id = $2",
            &[&id, &until],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("device {id}")));
        }
        Ok(())
    }

    fn events_after(&self, after: u64, limit: u32) -> StoreResult<Vec<SettingEvent>> {
        self.query(
            "SELECT seq, at, kind, device, detail FROM setting_events
             WHERE setting_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
            &[&i64_of(after), &i64::from(limit)],
            |r| {
                Ok(SettingEvent {
                    seq: u64_col(r.try_get(0)?),
                    at: r.try_get(1)?,
                    kind: r.try_get(2)?,
                    device: r.try_get(3)?,
                    detail: r.try_get(4)?,
                })
            },
        )
    }

    fn last_event_seq(&self) -> StoreResult<u64> {
        let seq = self.query_opt(
            "SELECT COALESCE(MAX(seq), 0) FROM setting_events WHERE setting_id = $1",
            &[],
            |r| Ok(r.try_get::<_, i64>(0)?),
        )?;
        Ok(u64_col(seq.unwrap_or(0)))
    }

    fn record_attempt(&self, scope: &str, key: &str, at: i64) -> StoreResult<()> {
        self.execute(
            "INSERT INTO attempts (setting_id, scope, key, at, id) VALUES ($1, $2, $3, $4, $5)",
            &[&scope, &key, &at, &Uuid::new_v4()],
        )?;
        Ok(())
    }

    fn attempts_since(&self, scope: &str, key: &str, since: i64) -> StoreResult<Attempts> {
        let row = self.query_opt(
            "SELECT COUNT(*), MIN(at) FROM attempts
             WHERE setting_id = $1 AND scope = $2 AND key = $3 AND at >= $4",
            &[&scope, &key, &since],
            |r| Ok((r.try_get::<_, i64>(0)?, r.try_get::<_, Option<i64>>(1)?)),
        )?;
        let (count, oldest) = row.unwrap_or((0, None));
        Ok(Attempts {
            count: u64_col(count),
            oldest,
        })
    }

    fn prune_transient(&self, before: i64) -> StoreResult<u64> {
        let sid = self.setting;
        self.write(async |tx| {
            let a = tx
                .execute(
                    "DELETE FROM attempts WHERE setting_id = $1 AND at < $2",
                    &[&sid, &before],
                )
                .await?;
            let e = tx
                .execute(
                    "DELETE FROM setting_events WHERE setting_id = $1 AND at < $2",
                    &[&sid, &before],
                )
                .await?;
            Ok(a + e)
        })
    }
}

/// Test support: a fresh, migrated database per test, so tests run in parallel.
#[doc(hidden)]
pub mod testing {
    use super::{PgPool, StoreResult};

    /// The URL of the server the Postgres tests use, from `SPRIG_TEST_DATABASE_URL`.
    ///
    /// # Panics
    /// When it is not set: a test that needs Postgres fails, it never skips.
    #[must_use]
    pub fn test_database_url() -> String {
        std::env::var("SPRIG_TEST_DATABASE_URL").unwrap_or_else(|_| {
            panic!(
                "SPRIG_TEST_DATABASE_URL is not set, and this test needs Postgres: run it under \
                 scripts/with-postgres.sh (as `make test` does), or set it to \
                 postgres://USER@HOST:PORT/DB of a server where USER may create databases"
            )
        })
    }

    /// `url` with its database name replaced by `dbname`.
    #[must_use]
    pub fn with_database(url: &str, dbname: &str) -> String {
        let (base, query) = url
            .split_once('?')
            .map_or((url, None), |(b, q)| (b, Some(q)));
        let authority_end = base.find("://").map_or(0, |i| {
            i + 3 + base[i + 3..].find('/').unwrap_or(base.len() - i - 3)
        });
        let mut out = format!("{}/{dbname}", &base[..authority_end]);
        if let Some(q) = query {
            out.push('?');
            out.push_str(q);
        }
        out
    }

    /// Creates a database with a random name on the server at `url` and returns its URL
    /// (keeping `url`'s options), migrated when `migrate`.
    ///
    /// # Panics
    /// When the server cannot be reached, with a message saying how to start one.
    pub fn fresh_database(url: &str, migrate: bool) -> StoreResult<String> {
        let admin = PgPool::connect(url).unwrap_or_else(|e| {
            panic!(
                "cannot reach the test Postgres at SPRIG_TEST_DATABASE_URL ({e}); run the tests \
                 under scripts/with-postgres.sh"
            )
        });
        let name = format!("sprig_test_{}", uuid::Uuid::new_v4().simple());
        let inner = &admin.inner;
        inner.block_on(inner.read(async |c| {
            c.batch_execute(&format!("CREATE DATABASE {name}")).await?;
            Ok(())
        }))?;
        let fresh = with_database(url, &name);
        if migrate {
            PgPool::connect(&fresh)?.migrate()?;
        }
        Ok(fresh)
    }
}

#[cfg(test)]
mod tests {
    use super::testing::with_database;
    use super::*;

    #[test]
    fn database_names_are_replaced_keeping_options() {
        assert_eq!(
            with_database("postgres://sprig@127.0.0.1:5432/postgres", "t1"),
            "postgres://sprig@127.0.0.1:5432/t1"
        );
        assert_eq!(
            with_database("postgres://u:p@h:1?options=-c%20x%3Dy", "t2"),
            "postgres://u:p@h:1/t2?options=-c%20x%3Dy"
        );
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        for n in 1..20 {
            let d = backoff(n);
            assert!(d <= Duration::from_secs(1), "{d:?}");
        }
        assert!(backoff(1) <= Duration::from_millis(4));
    }

    #[test]
    fn migrations_are_numbered_in_order() {
        // Strictly increasing from 1. A number may be missing while the branch that holds it
        // is not merged yet (3 is the hosting work's); `migrate` applies each step not yet
        // recorded, so a step merged later with a lower number still runs.
        assert_eq!(MIGRATIONS.first().map(|m| m.0), Some(1));
        for w in MIGRATIONS.windows(2) {
            assert!(w[0].0 < w[1].0, "{} then {}", w[0].0, w[1].0);
        }
    }

    #[test]
    fn a_malformed_url_is_a_permanent_error() {
        let err = PgPool::connect("postgres://[::1").unwrap_err();
        assert!(err.is_permanent(), "{err}");
        assert!(err.to_string().contains("check the database URL"), "{err}");
    }

    #[test]
    fn tls_keys_stay_out_of_debug() {
        let tls = SettingTls {
            ca_fingerprint: "sha256:ab".into(),
            ca_cert_pem: "CERT".into(),
            ca_key_pem: Zeroizing::new("CA-KEY-SECRET".into()),
            server_cert_pem: "CERT".into(),
            server_key_pem: Zeroizing::new("SERVER-KEY-SECRET".into()),
        };
        let shown = format!("{tls:?}");
        assert!(!shown.contains("SECRET"), "{shown}");
    }
}

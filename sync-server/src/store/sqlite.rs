//! The embedded SQLite backend: one file in the data directory, WAL journal, `synchronous=FULL`
//! so a committed transaction survives power loss before anything is acknowledged, and a busy
//! timeout so admin commands and `serve` can share the file.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use sprig_core::Heads;
use sprig_proto::DocId;

use super::{
    AgreementRecord, Attempts, AuditEvent, AuditQuery, CodeState, Contact, Device, DeviceStatus,
    DocHeads, DocWrite, EnrolCode, Invitation, MediaRecord, NewDevice, PinFailureRecord,
    Quarantine, QuarantineRecord, Redeemed, ServerStore, SessionRow, SettingEvent, StatusChange,
    StoreError, StoreResult, StoredDoc, TotpRecord,
};

const SCHEMA: &str = r"
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE docs (doc TEXT PRIMARY KEY, epoch INTEGER NOT NULL, snapshot BLOB NOT NULL);
CREATE TABLE doc_chunks (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    doc TEXT NOT NULL REFERENCES docs(doc) ON DELETE CASCADE,
    data BLOB NOT NULL
);
CREATE INDEX doc_chunks_by_doc ON doc_chunks(doc, seq);
CREATE TABLE sync_states (
    device TEXT NOT NULL,
    doc TEXT NOT NULL,
    state BLOB NOT NULL,
    PRIMARY KEY (device, doc)
);
CREATE TABLE devices (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    cert_serial TEXT NOT NULL,
    cert_fingerprint TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    last_seen INTEGER,
    last_sync INTEGER,
    app_version TEXT,
    unsynced_media INTEGER NOT NULL DEFAULT 0,
    unsynced_docs INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE enrol_codes (
    code_hash TEXT PRIMARY KEY,
    device_name TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at INTEGER,
    used_by TEXT,
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE media (
    sha256 TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    kind TEXT NOT NULL,
    device TEXT NOT NULL,
    stored_at INTEGER NOT NULL
);
CREATE TABLE passwords (principal TEXT PRIMARY KEY, phc TEXT NOT NULL, updated_at INTEGER NOT NULL);
CREATE TABLE audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    device TEXT,
    action TEXT NOT NULL,
    detail TEXT NOT NULL
);
";

/// Schema version 2: each document's heads and version beside it (see the `store` module).
/// Heads start unknown (NULL); the next listing fills them in.
const DOCS_HEADS: &str = "
ALTER TABLE docs ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE docs ADD COLUMN heads BLOB;
";

/// Schema steps in order: step `n` (1-based) brings `user_version` from `n - 1` to `n`, in the
/// same transaction. Append new steps; never edit a released one.
const MIGRATIONS: &[&str] = &[
    SCHEMA,
    DOCS_HEADS,
    DEVICE_LIFECYCLE,
    SERVER_AUTHORITY,
    EVENTS_AND_ATTEMPTS,
    PORTAL,
    ACCOUNT_SECURITY,
    STAFF_SIGN_IN,
    CONSOLE_ADMIN,
];

/// Schema version 9: the managers' console. Where a manager's request came from, in the audit
/// log; off-site permission per device; the audit log by time, for its filters.
const CONSOLE_ADMIN: &str = "
ALTER TABLE audit ADD COLUMN client TEXT;
ALTER TABLE devices ADD COLUMN offsite_until INTEGER;
CREATE INDEX audit_by_at ON audit (at);
";

/// Schema version 8: managers' console sign-in. Staff members' sign-in addresses (server
/// only, like parents') and one-time recovery codes, kept as hashes.
const STAFF_SIGN_IN: &str = "
CREATE TABLE staff_contacts (
    staff_id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    updated_at INTEGER NOT NULL
);
CREATE TABLE recovery_codes (
    principal TEXT NOT NULL,
    code_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    used_at INTEGER,
    PRIMARY KEY (principal, code_hash)
);
";

/// Schema version 7: the parent's account security. TOTP second factors (the secret, whether
/// it is on, the newest time step a code was accepted for) and invitations, keyed by the
/// SHA-256 of their token.
const ACCOUNT_SECURITY: &str = "
CREATE TABLE totp (
    principal TEXT PRIMARY KEY,
    secret BLOB NOT NULL,
    enabled INTEGER NOT NULL,
    last_step INTEGER,
    updated_at INTEGER NOT NULL
);
CREATE TABLE invitations (
    token_hash TEXT PRIMARY KEY,
    parent_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at INTEGER
);
CREATE INDEX invitations_by_parent ON invitations (parent_id);
";

/// Schema version 5 (hosting): events that running servers act on (a device's status
/// changed), written with the change, and attempt counters (enrolment throttles, sign-in
/// lock-outs) kept in the database rather than in one process's memory.
const EVENTS_AND_ATTEMPTS: &str = "
CREATE TABLE setting_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    kind TEXT NOT NULL,
    device TEXT,
    detail TEXT NOT NULL
);
CREATE TABLE attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    at INTEGER NOT NULL
);
CREATE INDEX attempts_by_key ON attempts (scope, key, at);
";

/// Schema version 6: the parents' portal. Sessions keyed by the hash of their id, and every
/// acceptance of the agreement.
const PORTAL: &str = "
CREATE TABLE portal_sessions (
    id_hash TEXT PRIMARY KEY,
    principal TEXT,
    data BLOB NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX portal_sessions_by_expiry ON portal_sessions (expires_at);
CREATE INDEX portal_sessions_by_principal ON portal_sessions (principal, expires_at);
CREATE TABLE agreements (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    principal TEXT NOT NULL,
    version TEXT NOT NULL,
    at INTEGER NOT NULL,
    session_hash TEXT NOT NULL
);
CREATE INDEX agreements_by_principal ON agreements (principal, at);
";

/// Schema version 4: the server's authority over what tablets write. Which media entries
/// reference (uploads of anything else are refused), refused changes held with the device
/// they quarantined, and parents' e-mail addresses, which leave the replicated roster.
const SERVER_AUTHORITY: &str = "
CREATE TABLE media_refs (
    sha256 TEXT NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (sha256, doc)
);
CREATE TABLE quarantine (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    device TEXT NOT NULL,
    doc TEXT NOT NULL,
    rule TEXT NOT NULL,
    detail TEXT NOT NULL,
    at INTEGER NOT NULL,
    held BLOB NOT NULL,
    released_at INTEGER,
    replaced_at INTEGER
);
CREATE INDEX quarantine_by_device ON quarantine (device, id);
CREATE TABLE parent_contacts (
    parent_id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    updated_at INTEGER NOT NULL
);
";

/// Schema version 3: the device lifecycle (locked as reported, wipe and retire times, reported
/// wrong-PIN attempts) and the hyphenated status names of the register.
const DEVICE_LIFECYCLE: &str = "
ALTER TABLE devices ADD COLUMN locked INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN wipe_requested_at INTEGER;
ALTER TABLE devices ADD COLUMN wipe_delivered_at INTEGER;
ALTER TABLE devices ADD COLUMN wiped_at INTEGER;
UPDATE devices SET status = 'wipe-pending' WHERE status = 'wipe_pending';
CREATE TABLE pin_failures (
    device TEXT NOT NULL,
    staff_id TEXT NOT NULL,
    at INTEGER NOT NULL,
    reported_at INTEGER NOT NULL,
    PRIMARY KEY (device, staff_id, at)
);
";

/// The SQLite [`ServerStore`]. One connection behind a mutex: SQLite serialises writers
/// anyway, and the server's writes are small transactions.
#[derive(Debug)]
pub struct SqliteStore {
    conn: Mutex<Connection>,
}

impl SqliteStore {
    /// Opens (creating when absent) the database at `path` and brings its schema up to date.
    ///
    /// # Errors
    /// [`StoreError::Database`] when the file cannot be opened, [`StoreError::Corrupt`] when it
    /// was written by a newer version.
    pub fn open(path: &Path) -> StoreResult<SqliteStore> {
        let conn = Connection::open(path)?;
        Self::setup(conn)
    }

    /// Writes a consistent copy of the database to `dest` (a new file) while the server keeps
    /// serving: SQLite's `VACUUM INTO`, one read transaction, so the copy is the database as of
    /// one moment, compacted.
    ///
    /// # Errors
    /// [`StoreError::Database`] (also when `dest` exists).
    pub fn backup_to(&self, dest: &Path) -> StoreResult<()> {
        let dest = dest.to_str().ok_or_else(|| {
            StoreError::Corrupt(format!("{} is not a UTF-8 path", dest.display()))
        })?;
        self.conn().execute("VACUUM INTO ?1", [dest])?;
        Ok(())
    }

    /// An in-memory database, for tests.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub fn open_in_memory() -> StoreResult<SqliteStore> {
        Self::setup(Connection::open_in_memory()?)
    }

    fn setup(mut conn: Connection) -> StoreResult<SqliteStore> {
        // Admin commands and `serve` share the file: wait for the other's transaction.
        conn.busy_timeout(Duration::from_secs(10))?;
        let _mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        conn.execute_batch("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;")?;
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        let latest = i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX);
        if version > latest {
            return Err(StoreError::Corrupt(format!(
                "database schema {version} is newer than this server understands; update sprig-server"
            )));
        }
        if version < latest {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            // Another process may have migrated it while we waited for the lock.
            let again: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
            for (step, sql) in (1_i64..).zip(MIGRATIONS) {
                if step > again {
                    tx.execute_batch(sql)?;
                    tx.execute_batch(&format!("PRAGMA user_version = {step}"))?;
                }
            }
            tx.commit()?;
        }
        Ok(SqliteStore {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (transactions roll back).
        self.conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Records that `device`'s status is now `status`, inside the caller's transaction.
fn status_event(
    tx: &rusqlite::Transaction<'_>,
    device: &str,
    status: DeviceStatus,
    at: i64,
) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO setting_events (at, kind, device, detail) VALUES (?1, ?2, ?3, ?4)",
        params![at, SettingEvent::DEVICE_STATUS, device, status.as_str()],
    )?;
    Ok(())
}

/// A table of sign-in addresses and its id column: parents' and staff members'.
type Contacts = (&'static str, &'static str);
const PARENT_CONTACTS: Contacts = ("parent_contacts", "parent_id");
const STAFF_CONTACTS: Contacts = ("staff_contacts", "staff_id");

/// Sets `id`'s sign-in address (lower-case) in the table `own`, unless another login of `own`
/// (its unique index) or any of `other` has it: an address signs one login in. The caller
/// holds the one connection, so nothing writes between the check and the insert.
fn set_address(
    conn: &Connection,
    (table, col): Contacts,
    other: Contacts,
    id: &str,
    email: &str,
    at: i64,
) -> StoreResult<()> {
    let email = email.trim().to_lowercase();
    let taken = conn
        .query_row(
            &format!("SELECT 1 FROM {} WHERE email = ?1", other.0),
            [&email],
            |_| Ok(()),
        )
        .optional()?;
    if taken.is_some() {
        return Err(StoreError::AlreadyExists("e-mail address".into()));
    }
    match conn.execute(
        &format!(
            "INSERT INTO {table} ({col}, email, updated_at) VALUES (?1, ?2, ?3)
             ON CONFLICT ({col}) DO UPDATE SET email = excluded.email,
                 updated_at = excluded.updated_at"
        ),
        params![id, email, at],
    ) {
        Ok(_) => Ok(()),
        Err(e) if is_constraint(&e) => Err(StoreError::AlreadyExists("e-mail address".into())),
        Err(e) => Err(e.into()),
    }
}

fn u64_col(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn parse_doc(s: &str) -> StoreResult<DocId> {
    DocId::parse(s).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn parse_heads(bytes: Option<Vec<u8>>) -> StoreResult<Option<Heads>> {
    bytes
        .map(|b| {
            Heads::from_bytes(&b).map_err(|e| StoreError::Corrupt(format!("document heads: {e}")))
        })
        .transpose()
}

const DEVICE_COLS: &str = "id, name, status, cert_serial, cert_fingerprint, created_at, \
     last_seen, last_sync, app_version, unsynced_media, unsynced_docs";

/// [`DEVICE_COLS`] and the lifecycle columns, for reading a [`Device`].
const DEVICE_SELECT: &str = "id, name, status, cert_serial, cert_fingerprint, created_at, \
     last_seen, last_sync, app_version, unsynced_media, unsynced_docs, locked, \
     wipe_requested_at, wipe_delivered_at, wiped_at, \
     (SELECT COUNT(*) FROM pin_failures p WHERE p.device = devices.id), offsite_until";

fn device_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(Device, String)> {
    let status: String = r.get(2)?;
    Ok((
        Device {
            id: r.get(0)?,
            name: r.get(1)?,
            status: DeviceStatus::Active,
            cert_serial: r.get(3)?,
            cert_fingerprint: r.get(4)?,
            created_at: r.get(5)?,
            last_seen: r.get(6)?,
            last_sync: r.get(7)?,
            app_version: r.get(8)?,
            unsynced_media: u64_col(r.get(9)?),
            unsynced_docs: u64_col(r.get(10)?),
            locked: r.get(11)?,
            wipe_requested_at: r.get(12)?,
            wipe_delivered_at: r.get(13)?,
            wiped_at: r.get(14)?,
            pin_failures: u64_col(r.get(15)?),
            offsite_until: r.get(16)?,
        },
        status,
    ))
}

fn finish_device((mut d, status): (Device, String)) -> StoreResult<Device> {
    d.status = DeviceStatus::parse(&status)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown device status '{status}'")))?;
    Ok(d)
}

fn invitation_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Invitation> {
    Ok(Invitation {
        token_hash: r.get(0)?,
        parent: r.get(1)?,
        created_at: r.get(2)?,
        expires_at: r.get(3)?,
        used_at: r.get(4)?,
    })
}

fn is_constraint(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation)
}

impl ServerStore for SqliteStore {
    fn meta(&self, key: &str) -> StoreResult<Option<String>> {
        Ok(self
            .conn()
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?)
    }

    fn set_meta(&self, key: &str, value: &str) -> StoreResult<()> {
        self.conn().execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
        Ok(())
    }

    fn list_docs(&self) -> StoreResult<Vec<(DocId, u64)>> {
        let conn = self.conn();
        let mut st = conn.prepare("SELECT doc, epoch FROM docs ORDER BY doc")?;
        let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (doc, epoch) = row?;
            out.push((parse_doc(&doc)?, u64_col(epoch)));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    fn list_doc_heads(&self) -> StoreResult<Vec<DocHeads>> {
        let conn = self.conn();
        let mut st = conn.prepare_cached("SELECT doc, epoch, version, heads FROM docs")?;
        let rows = st.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, Option<Vec<u8>>>(3)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (doc, epoch, version, heads) = row?;
            out.push(DocHeads {
                doc: parse_doc(&doc)?,
                epoch: u64_col(epoch),
                version: u64_col(version),
                heads: parse_heads(heads)?,
            });
        }
        out.sort_by(|a, b| a.doc.cmp(&b.doc));
        Ok(out)
    }

    fn set_doc_heads(&self, doc: &DocId, version: u64, heads: &Heads) -> StoreResult<bool> {
        let n = self.conn().execute(
            "UPDATE docs SET heads = ?3 WHERE doc = ?1 AND version = ?2",
            params![doc.to_string(), i64_of(version), heads.to_bytes()],
        )?;
        Ok(n == 1)
    }

    fn load_doc(&self, doc: &DocId) -> StoreResult<Option<StoredDoc>> {
        let mut conn = self.conn();
        // One read transaction so the snapshot and the chunks are from the same moment.
        let tx = conn.transaction()?;
        let key = doc.to_string();
        let Some((epoch, snapshot, version, heads)) = tx
            .query_row(
                "SELECT epoch, snapshot, version, heads FROM docs WHERE doc = ?1",
                [&key],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, Vec<u8>>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, Option<Vec<u8>>>(3)?,
                    ))
                },
            )
            .optional()?
        else {
            return Ok(None);
        };
        let mut chunks = Vec::new();
        let mut last_seq = 0;
        {
            let mut st =
                tx.prepare("SELECT seq, data FROM doc_chunks WHERE doc = ?1 ORDER BY seq")?;
            let rows = st.query_map([&key], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?))
            })?;
            for row in rows {
                let (seq, data) = row?;
                last_seq = seq;
                chunks.push(data);
            }
        }
        tx.commit()?;
        Ok(Some(StoredDoc {
            epoch: u64_col(epoch),
            snapshot,
            chunks,
            last_seq,
            version: u64_col(version),
            heads: parse_heads(heads)?,
        }))
    }

    fn create_doc(&self, doc: &DocId, epoch: u64, snapshot: &[u8]) -> StoreResult<()> {
        match self.conn().execute(
            "INSERT INTO docs (doc, epoch, snapshot) VALUES (?1, ?2, ?3)",
            params![doc.to_string(), i64_of(epoch), snapshot],
        ) {
            Ok(_) => Ok(()),
            Err(e) if is_constraint(&e) => Err(StoreError::AlreadyExists(doc.to_string())),
            Err(e) => Err(e.into()),
        }
    }

    fn commit_changes(
        &self,
        device: Option<&str>,
        writes: &[DocWrite],
        sync_states: &[(DocId, Vec<u8>)],
        replaced: &[DocId],
    ) -> StoreResult<()> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        for w in writes {
            let key = w.doc.to_string();
            // The heads are right only when the writer's copy held every stored change.
            let n = tx.execute(
                "UPDATE docs SET heads = CASE WHEN version = ?2 THEN ?3 ELSE NULL END,
                     version = version + 1
                 WHERE doc = ?1",
                params![key, i64_of(w.base_version), w.heads.to_bytes()],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound(key));
            }
            for chunk in w.chunks.iter().filter(|c| !c.is_empty()) {
                tx.prepare_cached("INSERT INTO doc_chunks (doc, data) VALUES (?1, ?2)")?
                    .execute(params![key, chunk])?;
            }
            for sha in &w.media {
                tx.prepare_cached(
                    "INSERT INTO media_refs (sha256, doc) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                )?
                .execute(params![sha, key])?;
            }
        }
        if let Some(device) = device {
            for (doc, state) in sync_states {
                tx.execute(
                    "INSERT INTO sync_states (device, doc, state) VALUES (?1, ?2, ?3)
                     ON CONFLICT (device, doc) DO UPDATE SET state = excluded.state",
                    params![device, doc.to_string(), state],
                )?;
            }
            for doc in replaced {
                tx.execute(
                    "UPDATE quarantine SET replaced_at = ?3
                     WHERE device = ?1 AND doc = ?2 AND released_at IS NOT NULL
                       AND replaced_at IS NULL",
                    params![device, doc.to_string(), crate::admin::now_ms()],
                )?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn replace_doc(&self, doc: &DocId, epoch: u64, snapshot: &[u8]) -> StoreResult<()> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let key = doc.to_string();
        let n = tx.execute(
            "UPDATE docs SET epoch = ?2, snapshot = ?3, heads = NULL, version = version + 1
             WHERE doc = ?1",
            params![key, i64_of(epoch), snapshot],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound(key));
        }
        tx.execute("DELETE FROM doc_chunks WHERE doc = ?1", [&key])?;
        tx.execute("DELETE FROM sync_states WHERE doc = ?1", [&key])?;
        tx.commit()?;
        Ok(())
    }

    fn compact_doc(
        &self,
        doc: &DocId,
        snapshot: &[u8],
        upto_seq: i64,
        version: u64,
        heads: &Heads,
    ) -> StoreResult<()> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let key = doc.to_string();
        let n = tx.execute(
            "UPDATE docs SET snapshot = ?2,
                 heads = CASE WHEN version = ?3 THEN ?4 ELSE heads END
             WHERE doc = ?1",
            params![key, snapshot, i64_of(version), heads.to_bytes()],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound(key));
        }
        tx.execute(
            "DELETE FROM doc_chunks WHERE doc = ?1 AND seq <= ?2",
            params![key, upto_seq],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn sync_state(&self, device: &str, doc: &DocId) -> StoreResult<Option<Vec<u8>>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT state FROM sync_states WHERE device = ?1 AND doc = ?2",
                params![device, doc.to_string()],
                |r| r.get(0),
            )
            .optional()?)
    }

    fn insert_enrol_code(&self, code: &EnrolCode) -> StoreResult<()> {
        match self.conn().execute(
            "INSERT INTO enrol_codes (code_hash, device_name, created_at, expires_at)
             VALUES (?1, ?2, ?3, ?4)",
            params![
                code.code_hash,
                code.device_name,
                code.created_at,
                code.expires_at
            ],
        ) {
            Ok(_) => Ok(()),
            Err(e) if is_constraint(&e) => Err(StoreError::AlreadyExists("enrolment code".into())),
            Err(e) => Err(e.into()),
        }
    }

    fn redeem_enrol_code(
        &self,
        code_hash: &str,
        now: i64,
        device: &NewDevice,
    ) -> StoreResult<Redeemed> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let row: Option<(String, i64, Option<i64>)> = tx
            .query_row(
                "SELECT device_name, expires_at, used_at FROM enrol_codes WHERE code_hash = ?1",
                [code_hash],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let Some((name, expires_at, used_at)) = row else {
            return Ok(Redeemed::Unknown);
        };
        tx.execute(
            "UPDATE enrol_codes SET attempts = attempts + 1 WHERE code_hash = ?1",
            [code_hash],
        )?;
        let outcome = if used_at.is_some() {
            Redeemed::Used
        } else if now >= expires_at {
            Redeemed::Expired
        } else {
            let inserted = tx.execute(
                &format!(
                    "INSERT INTO devices ({DEVICE_COLS}) VALUES (?1, ?2, 'active', ?3, ?4, ?5, NULL, NULL, ?6, 0, 0)"
                ),
                params![
                    device.id,
                    name,
                    device.cert_serial,
                    device.cert_fingerprint,
                    device.created_at,
                    device.app_version
                ],
            );
            match inserted {
                Ok(_) => {}
                Err(e) if is_constraint(&e) => {
                    return Err(StoreError::AlreadyExists(format!("device {}", device.id)));
                }
                Err(e) => return Err(e.into()),
            }
            tx.execute(
                "UPDATE enrol_codes SET used_at = ?2, used_by = ?3 WHERE code_hash = ?1",
                params![code_hash, now, device.id],
            )?;
            Redeemed::Enrolled(Box::new(Device {
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
            }))
        };
        tx.commit()?;
        Ok(outcome)
    }

    fn enrol_code_state(&self, code_hash: &str, now: i64) -> StoreResult<CodeState> {
        let row: Option<(i64, Option<i64>)> = self
            .conn()
            .query_row(
                "SELECT expires_at, used_at FROM enrol_codes WHERE code_hash = ?1",
                [code_hash],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        Ok(match row {
            None => CodeState::Unknown,
            Some((_, Some(_))) => CodeState::Used,
            Some((expires, None)) if now >= expires => CodeState::Expired,
            Some(_) => CodeState::Valid,
        })
    }

    fn enrol_code_attempts(&self, code_hash: &str) -> StoreResult<Option<u64>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT attempts FROM enrol_codes WHERE code_hash = ?1",
                [code_hash],
                |r| r.get::<_, i64>(0),
            )
            .optional()?
            .map(u64_col))
    }

    fn device(&self, id: &str) -> StoreResult<Option<Device>> {
        let row = self
            .conn()
            .query_row(
                &format!("SELECT {DEVICE_SELECT} FROM devices WHERE id = ?1"),
                [id],
                device_row,
            )
            .optional()?;
        row.map(finish_device).transpose()
    }

    fn device_by_fingerprint(&self, fingerprint: &str) -> StoreResult<Option<Device>> {
        let row = self
            .conn()
            .query_row(
                &format!("SELECT {DEVICE_SELECT} FROM devices WHERE cert_fingerprint = ?1"),
                [fingerprint],
                device_row,
            )
            .optional()?;
        row.map(finish_device).transpose()
    }

    fn list_devices(&self) -> StoreResult<Vec<Device>> {
        let conn = self.conn();
        let mut st = conn.prepare(&format!(
            "SELECT {DEVICE_SELECT} FROM devices ORDER BY created_at, id"
        ))?;
        let rows = st.query_map([], device_row)?;
        let mut out = Vec::new();
        for row in rows {
            out.push(finish_device(row?)?);
        }
        Ok(out)
    }

    fn set_device_status(&self, id: &str, status: DeviceStatus) -> StoreResult<()> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let n = tx.execute(
            "UPDATE devices SET status = ?2 WHERE id = ?1",
            params![id, status.as_str()],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("device {id}")));
        }
        status_event(&tx, id, status, crate::admin::now_ms())?;
        tx.commit()?;
        Ok(())
    }

    fn change_device_status(
        &self,
        id: &str,
        from: &[DeviceStatus],
        to: DeviceStatus,
        at: i64,
    ) -> StoreResult<StatusChange> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let current: Option<String> = tx
            .query_row("SELECT status FROM devices WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()?;
        let Some(current) = current else {
            return Err(StoreError::NotFound(format!("device {id}")));
        };
        let current = DeviceStatus::parse(&current)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown device status '{current}'")))?;
        if !from.contains(&current) {
            return Ok(StatusChange::Refused { current });
        }
        tx.execute(
            "UPDATE devices SET status = ?2 WHERE id = ?1",
            params![id, to.as_str()],
        )?;
        match to {
            DeviceStatus::WipePending | DeviceStatus::RetirePending => tx.execute(
                "UPDATE devices SET wipe_requested_at = COALESCE(wipe_requested_at, ?2)
                 WHERE id = ?1",
                params![id, at],
            )?,
            DeviceStatus::Wiped | DeviceStatus::Retired => tx.execute(
                "UPDATE devices SET wiped_at = ?2 WHERE id = ?1",
                params![id, at],
            )?,
            _ => 0,
        };
        status_event(&tx, id, to, at)?;
        tx.commit()?;
        Ok(StatusChange::Changed { from: current })
    }

    fn quarantine_device(&self, q: &Quarantine) -> StoreResult<StatusChange> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let current: Option<String> = tx
            .query_row(
                "SELECT status FROM devices WHERE id = ?1",
                [&q.device],
                |r| r.get(0),
            )
            .optional()?;
        let Some(current) = current else {
            return Err(StoreError::NotFound(format!("device {}", q.device)));
        };
        let current = DeviceStatus::parse(&current)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown device status '{current}'")))?;
        let change = if matches!(current, DeviceStatus::Active | DeviceStatus::RetirePending) {
            tx.execute(
                "UPDATE devices SET status = 'quarantined' WHERE id = ?1",
                [&q.device],
            )?;
            status_event(&tx, &q.device, DeviceStatus::Quarantined, q.at)?;
            StatusChange::Changed { from: current }
        } else {
            StatusChange::Refused { current }
        };
        tx.execute(
            "INSERT INTO quarantine (device, doc, rule, detail, at, held)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![q.device, q.doc.to_string(), q.rule, q.detail, q.at, q.held],
        )?;
        tx.execute(
            "INSERT INTO audit (at, actor, device, action, detail)
             VALUES (?1, 'server', ?2, 'quarantine', ?3)",
            params![
                q.at,
                q.device,
                format!("doc={} rule={} {}", q.doc, q.rule, q.detail)
            ],
        )?;
        tx.commit()?;
        Ok(change)
    }

    fn quarantines(&self, device: &str) -> StoreResult<Vec<QuarantineRecord>> {
        let conn = self.conn();
        let mut st = conn.prepare(
            "SELECT doc, rule, detail, at, held, released_at, replaced_at FROM quarantine
             WHERE device = ?1 ORDER BY id",
        )?;
        let rows = st.query_map([device], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, Vec<u8>>(4)?,
                r.get::<_, Option<i64>>(5)?,
                r.get::<_, Option<i64>>(6)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (doc, rule, detail, at, held, released_at, replaced_at) = row?;
            out.push(QuarantineRecord {
                quarantine: Quarantine {
                    device: device.to_owned(),
                    doc: parse_doc(&doc)?,
                    rule,
                    detail,
                    at,
                    held,
                },
                released_at,
                replaced_at,
            });
        }
        Ok(out)
    }

    fn release_device(&self, device: &str, at: i64) -> StoreResult<StatusChange> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let current: Option<String> = tx
            .query_row("SELECT status FROM devices WHERE id = ?1", [device], |r| {
                r.get(0)
            })
            .optional()?;
        let Some(current) = current else {
            return Err(StoreError::NotFound(format!("device {device}")));
        };
        let current = DeviceStatus::parse(&current)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown device status '{current}'")))?;
        if current != DeviceStatus::Quarantined {
            return Ok(StatusChange::Refused { current });
        }
        tx.execute(
            "UPDATE devices SET status = 'active' WHERE id = ?1",
            [device],
        )?;
        tx.execute(
            "UPDATE quarantine SET released_at = ?2 WHERE device = ?1 AND released_at IS NULL",
            params![device, at],
        )?;
        status_event(&tx, device, DeviceStatus::Active, at)?;
        tx.commit()?;
        Ok(StatusChange::Changed { from: current })
    }

    fn pending_replaces(&self, device: &str) -> StoreResult<Vec<DocId>> {
        let conn = self.conn();
        let mut st = conn.prepare(
            "SELECT DISTINCT doc FROM quarantine
             WHERE device = ?1 AND released_at IS NOT NULL AND replaced_at IS NULL ORDER BY doc",
        )?;
        let rows = st.query_map([device], |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for row in rows {
            out.push(parse_doc(&row?)?);
        }
        Ok(out)
    }

    fn record_wipe_delivered(&self, id: &str, at: i64) -> StoreResult<()> {
        let n = self.conn().execute(
            "UPDATE devices SET wipe_delivered_at = ?2 WHERE id = ?1",
            params![id, at],
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
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut new = 0;
        for f in failures {
            let n = tx.execute(
                "INSERT INTO pin_failures (device, staff_id, at, reported_at)
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
                params![device, f.staff_id, f.at, reported_at],
            )?;
            if n == 1 {
                new += 1;
                tx.execute(
                    "INSERT INTO audit (at, actor, device, action, detail)
                     VALUES (?1, ?2, ?3, 'pin_failure', ?4)",
                    params![
                        f.at,
                        format!("device:{device}"),
                        device,
                        format!("staff={} reported_at={reported_at}", f.staff_id)
                    ],
                )?;
            }
        }
        tx.commit()?;
        Ok(new)
    }

    fn record_contact(&self, id: &str, c: &Contact) -> StoreResult<()> {
        let n = self.conn().execute(
            "UPDATE devices SET last_seen = ?2, app_version = ?3, unsynced_media = ?4,
                 unsynced_docs = ?5, last_sync = CASE WHEN ?6 THEN ?2 ELSE last_sync END,
                 locked = ?7
             WHERE id = ?1",
            params![
                id,
                c.at,
                c.app_version,
                i64_of(c.unsynced_media),
                i64_of(c.unsynced_docs),
                c.synced,
                c.locked
            ],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("device {id}")));
        }
        Ok(())
    }

    fn insert_media(&self, m: &MediaRecord) -> StoreResult<bool> {
        let n = self.conn().execute(
            "INSERT INTO media (sha256, size, kind, device, stored_at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (sha256) DO NOTHING",
            params![m.sha256, i64_of(m.size), m.kind, m.device, m.stored_at],
        )?;
        Ok(n == 1)
    }

    fn note_media_acked(&self, device: &str) -> StoreResult<()> {
        self.conn().execute(
            "UPDATE devices SET unsynced_media = MAX(unsynced_media - 1, 0) WHERE id = ?1",
            params![device],
        )?;
        Ok(())
    }

    fn add_media_refs(&self, refs: &[(String, DocId)]) -> StoreResult<()> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        for (sha, doc) in refs {
            tx.prepare_cached(
                "INSERT INTO media_refs (sha256, doc) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
            )?
            .execute(params![sha, doc.to_string()])?;
        }
        tx.commit()?;
        Ok(())
    }

    fn media_referenced(&self, sha256: &str) -> StoreResult<bool> {
        Ok(self
            .conn()
            .query_row(
                "SELECT 1 FROM media_refs WHERE sha256 = ?1 LIMIT 1",
                [sha256],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    fn media(&self, sha256: &str) -> StoreResult<Option<MediaRecord>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT sha256, size, kind, device, stored_at FROM media WHERE sha256 = ?1",
                [sha256],
                |r| {
                    Ok(MediaRecord {
                        sha256: r.get(0)?,
                        size: u64_col(r.get(1)?),
                        kind: r.get(2)?,
                        device: r.get(3)?,
                        stored_at: r.get(4)?,
                    })
                },
            )
            .optional()?)
    }

    fn set_password(&self, principal: &str, phc: &str, at: i64) -> StoreResult<()> {
        self.conn().execute(
            "INSERT INTO passwords (principal, phc, updated_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (principal) DO UPDATE SET phc = excluded.phc, updated_at = excluded.updated_at",
            params![principal, phc, at],
        )?;
        Ok(())
    }

    fn password(&self, principal: &str) -> StoreResult<Option<String>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT phc FROM passwords WHERE principal = ?1",
                [principal],
                |r| r.get(0),
            )
            .optional()?)
    }

    fn set_parent_email(&self, parent: &str, email: &str, at: i64) -> StoreResult<()> {
        set_address(
            &self.conn(),
            PARENT_CONTACTS,
            STAFF_CONTACTS,
            parent,
            email,
            at,
        )
    }

    fn set_staff_email(&self, staff: &str, email: &str, at: i64) -> StoreResult<()> {
        set_address(
            &self.conn(),
            STAFF_CONTACTS,
            PARENT_CONTACTS,
            staff,
            email,
            at,
        )
    }

    fn staff_email(&self, staff: &str) -> StoreResult<Option<String>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT email FROM staff_contacts WHERE staff_id = ?1",
                [staff],
                |r| r.get(0),
            )
            .optional()?)
    }

    fn staff_by_email(&self, email: &str) -> StoreResult<Option<String>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT staff_id FROM staff_contacts WHERE email = ?1",
                [email.trim().to_lowercase()],
                |r| r.get(0),
            )
            .optional()?)
    }

    fn parent_email(&self, parent: &str) -> StoreResult<Option<String>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT email FROM parent_contacts WHERE parent_id = ?1",
                [parent],
                |r| r.get(0),
            )
            .optional()?)
    }

    fn parent_by_email(&self, email: &str) -> StoreResult<Option<String>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT parent_id FROM parent_contacts WHERE email = ?1",
                [email.trim().to_lowercase()],
                |r| r.get(0),
            )
            .optional()?)
    }

    fn create_session(&self, s: &SessionRow) -> StoreResult<()> {
        match self.conn().execute(
            "INSERT INTO portal_sessions (id_hash, principal, data, expires_at)
             VALUES (?1, ?2, ?3, ?4)",
            params![s.id_hash, s.principal, s.data, s.expires_at],
        ) {
            Ok(_) => Ok(()),
            Err(e) if is_constraint(&e) => Err(StoreError::AlreadyExists("session".into())),
            Err(e) => Err(e.into()),
        }
    }

    fn update_session(&self, s: &SessionRow) -> StoreResult<bool> {
        let n = self.conn().execute(
            "UPDATE portal_sessions SET principal = ?2, data = ?3, expires_at = ?4
             WHERE id_hash = ?1",
            params![s.id_hash, s.principal, s.data, s.expires_at],
        )?;
        Ok(n > 0)
    }

    fn load_session(&self, id_hash: &str, now: i64) -> StoreResult<Option<SessionRow>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT id_hash, principal, data, expires_at FROM portal_sessions
                 WHERE id_hash = ?1 AND expires_at > ?2",
                params![id_hash, now],
                |r| {
                    Ok(SessionRow {
                        id_hash: r.get(0)?,
                        principal: r.get(1)?,
                        data: r.get(2)?,
                        expires_at: r.get(3)?,
                    })
                },
            )
            .optional()?)
    }

    fn delete_session(&self, id_hash: &str) -> StoreResult<()> {
        self.conn()
            .execute("DELETE FROM portal_sessions WHERE id_hash = ?1", [id_hash])?;
        Ok(())
    }

    fn sessions_of(&self, principal: &str, now: i64) -> StoreResult<Vec<SessionRow>> {
        let conn = self.conn();
        let mut st = conn.prepare(
            "SELECT id_hash, principal, data, expires_at FROM portal_sessions
             WHERE principal = ?1 AND expires_at > ?2 ORDER BY expires_at DESC, id_hash",
        )?;
        let rows = st.query_map(params![principal, now], |r| {
            Ok(SessionRow {
                id_hash: r.get(0)?,
                principal: r.get(1)?,
                data: r.get(2)?,
                expires_at: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn delete_expired_sessions(&self, now: i64) -> StoreResult<u64> {
        let n = self
            .conn()
            .execute("DELETE FROM portal_sessions WHERE expires_at <= ?1", [now])?;
        Ok(n as u64)
    }

    fn put_totp(&self, t: &TotpRecord) -> StoreResult<()> {
        self.conn().execute(
            "INSERT INTO totp (principal, secret, enabled, last_step, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (principal) DO UPDATE SET secret = excluded.secret,
                 enabled = excluded.enabled, last_step = excluded.last_step,
                 updated_at = excluded.updated_at",
            params![t.principal, t.secret, t.enabled, t.last_step, t.updated_at],
        )?;
        Ok(())
    }

    fn totp(&self, principal: &str) -> StoreResult<Option<TotpRecord>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT principal, secret, enabled, last_step, updated_at FROM totp
                 WHERE principal = ?1",
                [principal],
                |r| {
                    Ok(TotpRecord {
                        principal: r.get(0)?,
                        secret: r.get(1)?,
                        enabled: r.get(2)?,
                        last_step: r.get(3)?,
                        updated_at: r.get(4)?,
                    })
                },
            )
            .optional()?)
    }

    fn use_totp_step(&self, principal: &str, step: i64, enable: bool) -> StoreResult<bool> {
        let conn = self.conn();
        let n = conn.execute(
            "UPDATE totp SET last_step = ?2, enabled = (enabled OR ?3)
             WHERE principal = ?1 AND (last_step IS NULL OR last_step < ?2)",
            params![principal, step, enable],
        )?;
        if n > 0 {
            return Ok(true);
        }
        let exists = conn
            .query_row(
                "SELECT 1 FROM totp WHERE principal = ?1",
                [principal],
                |_| Ok(()),
            )
            .optional()?;
        match exists {
            Some(()) => Ok(false),
            None => Err(StoreError::NotFound("second factor".into())),
        }
    }

    fn delete_totp(&self, principal: &str) -> StoreResult<()> {
        self.conn()
            .execute("DELETE FROM totp WHERE principal = ?1", [principal])?;
        Ok(())
    }

    fn set_recovery_codes(&self, principal: &str, hashes: &[String], at: i64) -> StoreResult<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "DELETE FROM recovery_codes WHERE principal = ?1",
            [principal],
        )?;
        for h in hashes {
            tx.execute(
                "INSERT OR IGNORE INTO recovery_codes (principal, code_hash, created_at)
                 VALUES (?1, ?2, ?3)",
                params![principal, h, at],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    fn use_recovery_code(&self, principal: &str, hash: &str, at: i64) -> StoreResult<bool> {
        let n = self.conn().execute(
            "UPDATE recovery_codes SET used_at = ?3
             WHERE principal = ?1 AND code_hash = ?2 AND used_at IS NULL",
            params![principal, hash, at],
        )?;
        Ok(n > 0)
    }

    fn recovery_codes_left(&self, principal: &str) -> StoreResult<u64> {
        let n: i64 = self.conn().query_row(
            "SELECT COUNT(*) FROM recovery_codes WHERE principal = ?1 AND used_at IS NULL",
            [principal],
            |r| r.get(0),
        )?;
        Ok(u64_col(n))
    }

    fn insert_invitation(&self, i: &Invitation) -> StoreResult<()> {
        match self.conn().execute(
            "INSERT INTO invitations (token_hash, parent_id, created_at, expires_at, used_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                i.token_hash,
                i.parent,
                i.created_at,
                i.expires_at,
                i.used_at
            ],
        ) {
            Ok(_) => Ok(()),
            Err(e) if is_constraint(&e) => Err(StoreError::AlreadyExists("invitation".into())),
            Err(e) => Err(e.into()),
        }
    }

    fn invitation(&self, token_hash: &str, now: i64) -> StoreResult<Option<Invitation>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT token_hash, parent_id, created_at, expires_at, used_at FROM invitations
                 WHERE token_hash = ?1 AND used_at IS NULL AND expires_at > ?2",
                params![token_hash, now],
                invitation_row,
            )
            .optional()?)
    }

    fn use_invitation(&self, token_hash: &str, now: i64) -> StoreResult<Option<Invitation>> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let found = tx
            .query_row(
                "UPDATE invitations SET used_at = ?2
                 WHERE token_hash = ?1 AND used_at IS NULL AND expires_at > ?2
                 RETURNING token_hash, parent_id, created_at, expires_at, used_at",
                params![token_hash, now],
                invitation_row,
            )
            .optional()?;
        tx.commit()?;
        Ok(found)
    }

    fn revoke_invitations(&self, parent: &str, now: i64) -> StoreResult<u64> {
        let n = self.conn().execute(
            "UPDATE invitations SET expires_at = ?2
             WHERE parent_id = ?1 AND used_at IS NULL AND expires_at > ?2",
            params![parent, now],
        )?;
        Ok(n as u64)
    }

    fn record_agreement(&self, a: &AgreementRecord) -> StoreResult<()> {
        self.conn().execute(
            "INSERT INTO agreements (principal, version, at, session_hash) VALUES (?1, ?2, ?3, ?4)",
            params![a.principal, a.version, a.at, a.session_hash],
        )?;
        Ok(())
    }

    fn latest_agreement(&self, principal: &str) -> StoreResult<Option<AgreementRecord>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT principal, version, at, session_hash FROM agreements
                 WHERE principal = ?1 ORDER BY at DESC, id DESC LIMIT 1",
                [principal],
                |r| {
                    Ok(AgreementRecord {
                        principal: r.get(0)?,
                        version: r.get(1)?,
                        at: r.get(2)?,
                        session_hash: r.get(3)?,
                    })
                },
            )
            .optional()?)
    }

    fn audit(&self, e: &AuditEvent) -> StoreResult<()> {
        self.conn().execute(
            "INSERT INTO audit (at, actor, device, action, detail, client)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![e.at, e.actor, e.device, e.action, e.detail, e.client],
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
        let conn = self.conn();
        let mut st = conn.prepare_cached(
            "SELECT at, actor, device, action, detail, client FROM audit
             WHERE (?1 IS NULL OR device = ?1)
               AND (?2 IS NULL OR actor = 'staff:' || ?2 OR instr(detail, 'staff=' || ?2) > 0)
               AND (?3 IS NULL OR instr(detail, 'child=' || ?3) > 0)
               AND (?4 IS NULL OR action = ?4)
               AND (?5 IS NULL OR at >= ?5)
               AND (?6 IS NULL OR at < ?6)
             ORDER BY id DESC LIMIT ?7",
        )?;
        let rows = st.query_map(
            params![
                q.device, q.staff, q.child, q.action, q.since, q.until, q.limit
            ],
            |r| {
                Ok(AuditEvent {
                    at: r.get(0)?,
                    actor: r.get(1)?,
                    device: r.get(2)?,
                    action: r.get(3)?,
                    detail: r.get(4)?,
                    client: r.get(5)?,
                })
            },
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn set_device_offsite(&self, id: &str, until: Option<i64>) -> StoreResult<()> {
        let n = self.conn().execute(
            "UPDATE devices SET offsite_until = ?2 WHERE id = ?1",
            params![id, until],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("device {id}")));
        }
        Ok(())
    }

    fn events_after(&self, after: u64, limit: u32) -> StoreResult<Vec<SettingEvent>> {
        let conn = self.conn();
        let mut st = conn.prepare_cached(
            "SELECT seq, at, kind, device, detail FROM setting_events WHERE seq > ?1
             ORDER BY seq LIMIT ?2",
        )?;
        let rows = st.query_map(params![i64_of(after), limit], |r| {
            Ok(SettingEvent {
                seq: u64_col(r.get(0)?),
                at: r.get(1)?,
                kind: r.get(2)?,
                device: r.get(3)?,
                detail: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn last_event_seq(&self) -> StoreResult<u64> {
        let seq: i64 = self.conn().query_row(
            "SELECT COALESCE(MAX(seq), 0) FROM setting_events",
            [],
            |r| r.get(0),
        )?;
        Ok(u64_col(seq))
    }

    fn record_attempt(&self, scope: &str, key: &str, at: i64) -> StoreResult<()> {
        self.conn().execute(
            "INSERT INTO attempts (scope, key, at) VALUES (?1, ?2, ?3)",
            params![scope, key, at],
        )?;
        Ok(())
    }

    fn attempts_since(&self, scope: &str, key: &str, since: i64) -> StoreResult<Attempts> {
        let (count, oldest): (i64, Option<i64>) = self.conn().query_row(
            "SELECT COUNT(*), MIN(at) FROM attempts WHERE scope = ?1 AND key = ?2 AND at >= ?3",
            params![scope, key, since],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok(Attempts {
            count: u64_col(count),
            oldest,
        })
    }

    fn prune_transient(&self, before: i64) -> StoreResult<u64> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let a = tx.execute("DELETE FROM attempts WHERE at < ?1", [before])?;
        let e = tx.execute("DELETE FROM setting_events WHERE at < ?1", [before])?;
        tx.commit()?;
        Ok(u64::try_from(a + e).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod doc_tests {
    use super::*;

    /// A database written before heads were kept (schema 1) opens, keeps its documents, and
    /// lists them with heads unknown until a listing fills them in.
    #[test]
    fn schema_1_databases_migrate_with_heads_unknown() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(SCHEMA).unwrap();
            conn.execute_batch("PRAGMA user_version = 1").unwrap();
            conn.execute(
                "INSERT INTO docs (doc, epoch, snapshot) VALUES ('roster', 0, x'0102')",
                [],
            )
            .unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        let version: i64 = store
            .conn()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, i64::try_from(MIGRATIONS.len()).unwrap());
        assert_eq!(
            store.list_doc_heads().unwrap(),
            vec![DocHeads {
                doc: DocId::Roster,
                epoch: 0,
                version: 0,
                heads: None,
            }]
        );
        let d = store.load_doc(&DocId::Roster).unwrap().unwrap();
        assert_eq!((d.snapshot, d.heads), (vec![1, 2], None));
        // Opening again runs no step twice.
        drop(store);
        SqliteStore::open(&path).unwrap();
    }
}

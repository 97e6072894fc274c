//! The server's storage: the [`ServerStore`] trait, its value types, and its backends: SQLite
//! ([`SqliteStore`], one setting per data directory, the default) and Postgres ([`PgPool`] of
//! many settings, each seen through a [`PgStore`]). Every backend must pass
//! [`crate::server_store_tests!`].
//!
//! Documents are stored as bytes (a snapshot plus appended change chunks); the store never
//! parses Automerge. Compaction is done by the caller, which loads, merges and saves a
//! document and hands back a snapshot that covers chunks up to a sequence number.
//!
//! Beside each document the store keeps its heads, as the writer computed them, and a
//! version counted up by every append, so a session lists heads without loading documents.
//! A writer says which version its copy was loaded at ([`DocWrite::base_version`]); when
//! another writer appended in between, its heads would miss those changes, so the store
//! records the heads as unknown instead, and the next listing loads that one document once
//! and fills them in ([`ServerStore::set_doc_heads`]).

mod postgres;
mod sqlite;
#[doc(hidden)]
pub mod suite;

use std::fmt;

use sprig_core::Heads;
use sprig_proto::DocId;

#[doc(hidden)]
pub use postgres::testing as pg_testing;
pub use postgres::{
    EVENT_CHANNEL, NewSetting, PgOptions, PgPool, PgStore, RecentEvents, SETTINGS_CHANNEL,
    SettingRecord, SettingTls,
};
pub use sqlite::SqliteStore;

/// A document as stored: a snapshot and the change chunks appended since.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredDoc {
    /// The erasure epoch of the stored copy.
    pub epoch: u64,
    /// The last compacted snapshot.
    pub snapshot: Vec<u8>,
    /// Change chunks appended after the snapshot, oldest first.
    pub chunks: Vec<Vec<u8>>,
    /// Sequence number of the newest chunk read (0 when none): pass it to
    /// [`ServerStore::compact_doc`] with a snapshot that includes every chunk read.
    pub last_seq: i64,
    /// The document's version when read: pass it back as [`DocWrite::base_version`].
    pub version: u64,
    /// Its heads as stored, `None` when unknown.
    pub heads: Option<Heads>,
}

impl StoredDoc {
    /// The snapshot followed by every chunk: valid Automerge input as it is (a load of these
    /// bytes is the document), so it can be sent to a device without loading and re-saving.
    #[must_use]
    pub fn into_bytes(self) -> Vec<u8> {
        let mut bytes = self.snapshot;
        bytes.reserve(self.chunks.iter().map(Vec::len).sum());
        for c in &self.chunks {
            bytes.extend_from_slice(c);
        }
        bytes
    }
}

/// One stored document's epoch, version and heads, listed without reading its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocHeads {
    /// The document.
    pub doc: DocId,
    /// Its erasure epoch.
    pub epoch: u64,
    /// Its version (see [`StoredDoc::version`]).
    pub version: u64,
    /// Its heads, `None` when unknown (just created, written by two sessions at once, or
    /// stored before heads were kept).
    pub heads: Option<Heads>,
}

impl fmt::Debug for StoredDoc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Document bytes are children's journals: lengths only.
        f.debug_struct("StoredDoc")
            .field("epoch", &self.epoch)
            .field("snapshot", &format_args!("<{} bytes>", self.snapshot.len()))
            .field("chunks", &self.chunks.len())
            .field("last_seq", &self.last_seq)
            .field("version", &self.version)
            .field("heads", &self.heads)
            .finish()
    }
}

/// Appended changes to one document, part of one [`ServerStore::commit_changes`].
#[derive(Clone, PartialEq, Eq)]
pub struct DocWrite {
    /// The document.
    pub doc: DocId,
    /// Change chunks (Automerge incremental saves) to append, in order.
    pub chunks: Vec<Vec<u8>>,
    /// The document's heads with these chunks applied.
    pub heads: Heads,
    /// The version the writer's copy holds every stored change of ([`StoredDoc::version`] at
    /// load, plus one per commit since); when the stored version differs, `heads` do not
    /// cover every stored change and are recorded as unknown.
    pub base_version: u64,
    /// Hex SHA-256 of the photos and videos that entries added by these chunks reference: the
    /// only media a device may upload.
    pub media: Vec<String>,
}

impl fmt::Debug for DocWrite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DocWrite")
            .field("doc", &self.doc)
            .field("chunks", &self.chunks.len())
            .field("heads", &self.heads)
            .field("base_version", &self.base_version)
            .field("media", &self.media.len())
            .finish()
    }
}

/// Where an enrolled device stands. (Whether an active device is *locked* is derived from its
/// last check-in and what it reported; see `admin::device_list`.)
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeviceStatus {
    /// May sync.
    Active,
    /// Refused on every connection (lost, stolen); an open session is closed.
    Revoked,
    /// Told to wipe itself at its next connection, before any sync.
    WipePending,
    /// Wiped (the device acknowledged it); refused like a revoked device.
    Wiped,
    /// Told to sync everything, then wipe itself.
    RetirePending,
    /// Synced everything, then wiped (acknowledged); refused like a revoked device.
    Retired,
    /// Sent a change it may not make; refused with its own error until a manager releases or
    /// wipes it.
    Quarantined,
}

impl DeviceStatus {
    /// The stable text form used in storage and JSON.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceStatus::Active => "active",
            DeviceStatus::Revoked => "revoked",
            DeviceStatus::WipePending => "wipe-pending",
            DeviceStatus::Wiped => "wiped",
            DeviceStatus::RetirePending => "retire-pending",
            DeviceStatus::Retired => "retired",
            DeviceStatus::Quarantined => "quarantined",
        }
    }

    /// Parses [`Self::as_str`].
    #[must_use]
    pub fn parse(s: &str) -> Option<DeviceStatus> {
        Some(match s {
            "active" => DeviceStatus::Active,
            "revoked" => DeviceStatus::Revoked,
            "wipe-pending" => DeviceStatus::WipePending,
            "wiped" => DeviceStatus::Wiped,
            "retire-pending" => DeviceStatus::RetirePending,
            "retired" => DeviceStatus::Retired,
            "quarantined" => DeviceStatus::Quarantined,
            _ => return None,
        })
    }

    /// Whether the device's certificate is refused: it may never connect again.
    #[must_use]
    pub fn is_refused(self) -> bool {
        matches!(
            self,
            DeviceStatus::Revoked | DeviceStatus::Wiped | DeviceStatus::Retired
        )
    }
}

/// The outcome of [`ServerStore::change_device_status`].
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusChange {
    /// The status was one of those allowed and is now the new one.
    Changed {
        /// What it was.
        from: DeviceStatus,
    },
    /// The status was not one of those allowed; nothing changed.
    Refused {
        /// What it is.
        current: DeviceStatus,
    },
}

/// A device being enrolled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewDevice {
    /// The device id (UUID), also the certificate's common name.
    pub id: String,
    /// The name the manager gave it.
    pub name: String,
    /// Serial number of its certificate, hex.
    pub cert_serial: String,
    /// `sha256:<hex>` of its certificate's DER: how a TLS connection is mapped to a device.
    pub cert_fingerprint: String,
    /// When it enrolled, ms since the Unix epoch.
    pub created_at: i64,
    /// The app version it reported at enrolment.
    pub app_version: Option<String>,
}

/// A device in the register.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    /// The device id.
    pub id: String,
    /// The name the manager gave it.
    pub name: String,
    /// Where it stands.
    pub status: DeviceStatus,
    /// Serial number of its certificate, hex.
    pub cert_serial: String,
    /// `sha256:<hex>` of its certificate's DER.
    pub cert_fingerprint: String,
    /// When it enrolled (ms).
    pub created_at: i64,
    /// Its last connection (ms).
    pub last_seen: Option<i64>,
    /// Its last completed sync (ms).
    pub last_sync: Option<i64>,
    /// The app version it last reported.
    pub app_version: Option<String>,
    /// Photos and videos it has not yet handed over, as last reported.
    pub unsynced_media: u64,
    /// Documents with local changes not yet synced, as last reported.
    pub unsynced_docs: u64,
    /// Whether it reported itself locked (PIN lock-out, expired lease) at its last contact.
    pub locked: bool,
    /// Wrong-PIN attempts it has reported, in all.
    pub pin_failures: u64,
    /// When a manager asked for it to be wiped or retired (ms).
    pub wipe_requested_at: Option<i64>,
    /// When the wipe command was last sent to it (ms).
    pub wipe_delivered_at: Option<i64>,
    /// When it acknowledged the wipe (ms).
    pub wiped_at: Option<i64>,
    /// Until when a manager lets it sync from outside the setting's allowed networks (ms).
    pub offsite_until: Option<i64>,
}

/// One wrong-PIN attempt a device reported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PinFailureRecord {
    /// The staff member whose PIN was tried.
    pub staff_id: String,
    /// When, by the device's clock (ms).
    pub at: i64,
}

/// What a device reported when it connected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Contact {
    /// When (ms).
    pub at: i64,
    /// Its app version.
    pub app_version: String,
    /// Media not yet acknowledged.
    pub unsynced_media: u64,
    /// Documents with unsynced changes.
    pub unsynced_docs: u64,
    /// Whether a sync completed (sets `last_sync`), or only a connection (sets `last_seen`).
    pub synced: bool,
    /// Whether it reported itself locked.
    pub locked: bool,
}

/// A one-time enrolment code, stored by hash only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnrolCode {
    /// Hex SHA-256 of the normalised code.
    pub code_hash: String,
    /// The name for the device that redeems it.
    pub device_name: String,
    /// When it was made (ms).
    pub created_at: i64,
    /// When it stops working (ms).
    pub expires_at: i64,
}

/// The outcome of [`ServerStore::redeem_enrol_code`].
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Redeemed {
    /// The code was valid: it is now used and the device is registered (under the code's
    /// device name).
    Enrolled(Box<Device>),
    /// No such code.
    Unknown,
    /// The code has expired; nothing changed but its attempt counter.
    Expired,
    /// The code was already used; nothing changed but its attempt counter.
    Used,
}

/// Where an enrolment code stands, read without using it up.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodeState {
    /// It can be redeemed now.
    Valid,
    /// No such code.
    Unknown,
    /// It has expired.
    Expired,
    /// It was already used.
    Used,
}

/// A refused change that quarantined a device: what it broke, and the device's changes to the
/// document, held for a manager to review (never applied).
#[derive(Clone, PartialEq, Eq)]
pub struct Quarantine {
    /// The device.
    pub device: String,
    /// The document the refused change was for.
    pub doc: DocId,
    /// The rule broken (`sprig_core::Violation::rule`).
    pub rule: String,
    /// What broke it, in ids (never observation text).
    pub detail: String,
    /// When (ms).
    pub at: i64,
    /// Every change the device sent for the document in that session (Automerge changes,
    /// loadable on top of the server's copy), kept so honest work among them is not lost.
    pub held: Vec<u8>,
}

impl fmt::Debug for Quarantine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Quarantine")
            .field("device", &self.device)
            .field("doc", &self.doc)
            .field("rule", &self.rule)
            .field("detail", &self.detail)
            .field("at", &self.at)
            .field("held", &format_args!("<{} bytes>", self.held.len()))
            .finish()
    }
}

/// A stored [`Quarantine`] with where it stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuarantineRecord {
    /// What was refused.
    pub quarantine: Quarantine,
    /// When a manager released the device (ms).
    pub released_at: Option<i64>,
    /// When the device's copy of the document was replaced by the server's after release (ms).
    pub replaced_at: Option<i64>,
}

/// A stored media file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaRecord {
    /// Lower-case hex SHA-256 of the bytes.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// `photo` or `video`.
    pub kind: String,
    /// The device that uploaded it first.
    pub device: String,
    /// When it was durably stored (ms).
    pub stored_at: i64,
}

/// One audit log line: who did what, on which device, when. Never observation text or a
/// child's name: ids and counts only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEvent {
    /// When (ms).
    pub at: i64,
    /// Who: `admin`, `device:<id>`, `anonymous`.
    pub actor: String,
    /// The device concerned, if any.
    pub device: Option<String>,
    /// What, as a stable snake_case verb (`enrol`, `sync`, `media_upload`, `staff_add`, …).
    pub action: String,
    /// Ids, counts and outcomes.
    pub detail: String,
    /// Where a manager's request came from (the console's remote address and browser); `None`
    /// for the CLI, devices and the server itself.
    pub client: Option<String>,
}

/// Which audit events [`ServerStore::audit_query`] returns; every part left `None` matches all.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Events about this device.
    pub device: Option<String>,
    /// Events done by this member of staff (actor `staff:<id>`) or naming them (`staff=<id>`).
    pub staff: Option<String>,
    /// Events naming this child (`child=<id>` in the detail).
    pub child: Option<String>,
    /// Events of this action (`device_wipe`, `child_set`, …).
    pub action: Option<String>,
    /// Events at or after this time (ms).
    pub since: Option<i64>,
    /// Events before this time (ms).
    pub until: Option<i64>,
    /// At most this many, newest first.
    pub limit: u32,
}

/// Something running servers must act on, recorded in the same transaction as the change it
/// announces: the durable source of truth that carries a revoke or a wipe to every open session
/// on every replica (a replica polls for new events; LISTEN/NOTIFY, where the database has it,
/// only wakes it sooner).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SettingEvent {
    /// Its place in the setting's order of events (1, 2, …; counted inside the transaction, no
    /// sequence object).
    pub seq: u64,
    /// When (ms; the database's clock on Postgres).
    pub at: i64,
    /// What happened, a stable snake_case word: [`SettingEvent::DEVICE_STATUS`].
    pub kind: String,
    /// The device concerned, if any.
    pub device: Option<String>,
    /// Details: for a device status change, the new status ([`DeviceStatus::as_str`]).
    pub detail: String,
}

impl SettingEvent {
    /// A device's status changed (revoked, to be wiped, quarantined, released, …).
    pub const DEVICE_STATUS: &'static str = "device_status";
}

/// Attempts counted in a time window ([`ServerStore::attempts_since`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Attempts {
    /// How many.
    pub count: u64,
    /// When the oldest of them was made (ms), `None` when there were none.
    pub oldest: Option<i64>,
}

/// A portal session as stored. The row is keyed by the SHA-256 of the session id, never the
/// id itself, so a copy of the database does not hold live cookies.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionRow {
    /// Lower-case hex SHA-256 of the session id as the cookie carries it.
    pub id_hash: String,
    /// Who signed in on it (`parent:<id>`), `None` before sign-in.
    pub principal: Option<String>,
    /// The session's data (JSON, written by the session layer).
    pub data: Vec<u8>,
    /// When it expires (ms); a load at or after this finds nothing.
    pub expires_at: i64,
}

impl fmt::Debug for SessionRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionRow")
            .field("principal", &self.principal)
            .field("data", &format_args!("<{} bytes>", self.data.len()))
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A parent's acceptance of the setting's agreement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgreementRecord {
    /// Who accepted (`parent:<id>`).
    pub principal: String,
    /// The agreement version accepted.
    pub version: String,
    /// When (ms).
    pub at: i64,
    /// The SHA-256 (hex) of the session it was accepted in.
    pub session_hash: String,
}

/// A portal login's TOTP second factor (RFC 6238: SHA-1, 6 digits, 30-second steps).
#[derive(Clone, PartialEq, Eq)]
pub struct TotpRecord {
    /// Whose (`parent:<id>`).
    pub principal: String,
    /// The shared secret (20 random bytes). Never sent to a browser after set-up.
    pub secret: Vec<u8>,
    /// Whether sign-in asks for a code: `false` while set-up waits for its first code.
    pub enabled: bool,
    /// The newest time step (Unix seconds / 30) a code was accepted for: a code of that step or
    /// an earlier one is refused (no replay).
    pub last_step: Option<i64>,
    /// When it was set up or last changed (ms).
    pub updated_at: i64,
}

impl fmt::Debug for TotpRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TotpRecord")
            .field("principal", &self.principal)
            .field("enabled", &self.enabled)
            .field("last_step", &self.last_step)
            .field("updated_at", &self.updated_at)
            .finish_non_exhaustive()
    }
}

/// A one-time invitation to set a portal password. The store keeps only the SHA-256 of the
/// token the link carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invitation {
    /// Lower-case hex SHA-256 of the token.
    pub token_hash: String,
    /// The parent invited (their id in the roster).
    pub parent: String,
    /// When it was made (ms).
    pub created_at: i64,
    /// When it stops working (ms); a look-up at or after this finds nothing.
    pub expires_at: i64,
    /// When the parent used it (ms), `None` while unused.
    pub used_at: Option<i64>,
}

/// A storage operation failed.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The thing asked for does not exist.
    #[error("{0} was not found")]
    NotFound(String),
    /// The thing being created already exists.
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// The stored data is not what this version expects.
    #[error("the server database holds damaged data ({0}); restore it from a backup")]
    Corrupt(String),
    /// The database failed (I/O, locked for too long, disk full, connection lost, a
    /// transaction that kept conflicting). Retrying may help unless
    /// [`DatabaseError::is_retryable`] says otherwise.
    #[error("the server database failed: {0}")]
    Database(DatabaseError),
    /// The database's schema is older than this server: run the migrations first.
    #[error(
        "the database schema is at version {found} but this server needs {needed}; run `sprig-server migrate` first"
    )]
    NeedsMigration {
        /// The newest migration applied to the database.
        found: i64,
        /// The newest migration this server knows.
        needed: i64,
    },
}

impl StoreError {
    /// Whether retrying cannot help.
    #[must_use]
    pub fn is_permanent(&self) -> bool {
        match self {
            StoreError::Database(e) => !e.is_retryable(),
            _ => true,
        }
    }
}

/// A failure of the database itself, from whichever backend: the driver's error, kept as the
/// [`std::error::Error::source`], with what the operator should check.
pub struct DatabaseError {
    source: Box<dyn std::error::Error + Send + Sync + 'static>,
    hint: &'static str,
    retryable: bool,
}

impl DatabaseError {
    /// Wraps a driver error. `hint` finishes the message ("check the disk and try again");
    /// `retryable` says whether the same call may succeed later.
    pub fn new(
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
        hint: &'static str,
        retryable: bool,
    ) -> DatabaseError {
        DatabaseError {
            source: source.into(),
            hint,
            retryable,
        }
    }

    /// Whether the same call may succeed if tried again (a lost connection, a busy or
    /// conflicting database), as opposed to a failure that needs someone to act (a wrong
    /// password, a schema this server does not understand).
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }
}

impl fmt::Display for DatabaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}; {}", self.source, self.hint)
    }
}

impl fmt::Debug for DatabaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Driver errors name tables and constraints, never parameter values, so the source
        // is safe to show.
        f.debug_struct("DatabaseError")
            .field("source", &self.source)
            .field("retryable", &self.retryable)
            .finish_non_exhaustive()
    }
}

impl std::error::Error for DatabaseError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.source)
    }
}

impl From<rusqlite::Error> for StoreError {
    /// Every SQLite failure counts as retryable, as it always has: the file was busy, the disk
    /// full or failing.
    fn from(e: rusqlite::Error) -> StoreError {
        StoreError::Database(DatabaseError::new(e, "check the disk and try again", true))
    }
}

/// Shorthand for store results.
pub type StoreResult<T> = Result<T, StoreError>;

/// Everything the server keeps, behind one interface so a hosted deployment can use another
/// database. Methods are blocking; async callers run them on a blocking thread.
///
/// Durability: a method that returns `Ok` has made its writes durable.
pub trait ServerStore: Send + Sync + fmt::Debug {
    // ---- settings ----

    /// Reads a server setting (e.g. `public_url`).
    ///
    /// # Errors
    /// [`StoreError::Database`].
    fn meta(&self, key: &str) -> StoreResult<Option<String>>;

    /// Writes a server setting.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    fn set_meta(&self, key: &str, value: &str) -> StoreResult<()>;

    // ---- documents ----

    /// Every stored document with its epoch.
    ///
    /// # Errors
    /// [`StoreError::Database`], [`StoreError::Corrupt`].
    fn list_docs(&self) -> StoreResult<Vec<(DocId, u64)>>;

    /// Every stored document with its epoch, version and heads, without reading their bytes.
    ///
    /// # Errors
    /// [`StoreError::Database`], [`StoreError::Corrupt`].
    fn list_doc_heads(&self) -> StoreResult<Vec<DocHeads>>;

    /// Records heads computed from a copy loaded at `version`, unless the document has
    /// changed since (then its heads stay as they are). Returns whether they were recorded.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    fn set_doc_heads(&self, doc: &DocId, version: u64, heads: &Heads) -> StoreResult<bool>;

    /// A document's snapshot and chunks, version and heads, or `None`.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    fn load_doc(&self, doc: &DocId) -> StoreResult<Option<StoredDoc>>;

    /// Stores a new document (version 0, heads unknown until its first write or listing).
    ///
    /// # Errors
    /// [`StoreError::AlreadyExists`] when it exists.
    fn create_doc(&self, doc: &DocId, epoch: u64, snapshot: &[u8]) -> StoreResult<()>;

    /// Appends change chunks to documents, with their new heads and versions and the media
    /// their new entries reference, saves `device`'s sync states, and marks the documents in
    /// `replaced` as replaced on `device` after its release from quarantine, all in one
    /// transaction.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for a document that does not exist (nothing is written).
    fn commit_changes(
        &self,
        device: Option<&str>,
        writes: &[DocWrite],
        sync_states: &[(DocId, Vec<u8>)],
        replaced: &[DocId],
    ) -> StoreResult<()>;

    /// Replaces a document wholesale with `snapshot` at erasure epoch `epoch` (a new epoch
    /// the server rebuilt): its chunks and every device's sync state for it go, its heads
    /// become unknown and its version counts up.
    ///
    /// # Errors
    /// [`StoreError::NotFound`].
    fn replace_doc(&self, doc: &DocId, epoch: u64, snapshot: &[u8]) -> StoreResult<()>;

    /// Replaces a document's snapshot with `snapshot`, which must include every chunk up to
    /// `upto_seq`; those chunks are deleted, later ones kept. `heads` are those of the copy
    /// the snapshot was made from, loaded at `version`: recorded in the same transaction
    /// unless the document changed since.
    ///
    /// # Errors
    /// [`StoreError::NotFound`].
    fn compact_doc(
        &self,
        doc: &DocId,
        snapshot: &[u8],
        upto_seq: i64,
        version: u64,
        heads: &Heads,
    ) -> StoreResult<()>;

    /// The sync state saved for (`device`, `doc`).
    ///
    /// # Errors
    /// [`StoreError::Database`].
    fn sync_state(&self, device: &str, doc: &DocId) -> StoreResult<Option<Vec<u8>>>;

    // ---- devices and enrolment ----

    /// Stores an enrolment code.
    ///
    /// # Errors
    /// [`StoreError::AlreadyExists`] for a hash collision.
    fn insert_enrol_code(&self, code: &EnrolCode) -> StoreResult<()>;

    /// Atomically checks a code and, when it is valid, marks it used and registers `device`
    /// under the code's device name. Any matched code's attempt counter goes up.
    ///
    /// # Errors
    /// [`StoreError::AlreadyExists`] when the device id or fingerprint is taken.
    fn redeem_enrol_code(
        &self,
        code_hash: &str,
        now: i64,
        device: &NewDevice,
    ) -> StoreResult<Redeemed>;

    /// Where a code stands at `now`, without counting an attempt or using it: enrolment checks
    /// the code before it does any certificate work.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    fn enrol_code_state(&self, code_hash: &str, now: i64) -> StoreResult<CodeState>;

    /// How many times a code was tried after it was made (valid or not), or `None`.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    fn enrol_code_attempts(&self, code_hash: &str) -> StoreResult<Option<u64>>;

    /// A device by id.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    fn device(&self, id: &str) -> StoreResult<Option<Device>>;

    /// The device holding the certificate with this `sha256:<hex>` fingerprint.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    fn device_by_fingerprint(&self, fingerprint: &str) -> StoreResult<Option<Device>>;

    /// Every device, oldest enrolment first.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    fn list_devices(&self) -> StoreResult<Vec<Device>>;

    /// Changes a device's status, whatever it was.
    ///
    /// # Errors
    /// [`StoreError::NotFound`].
    fn set_device_status(&self, id: &str, status: DeviceStatus) -> StoreResult<()>;

    /// Atomically changes a device's status to `to` if it is one of `from`, stamping the
    /// lifecycle time that goes with `to` at `at`: `wipe_requested_at` for
    /// [`DeviceStatus::WipePending`] and [`DeviceStatus::RetirePending`] (kept if already set by
    /// an earlier request), `wiped_at` for [`DeviceStatus::Wiped`] and
    /// [`DeviceStatus::Retired`].
    ///
    /// # Errors
    /// [`StoreError::NotFound`].
    fn change_device_status(
        &self,
        id: &str,
        from: &[DeviceStatus],
        to: DeviceStatus,
        at: i64,
    ) -> StoreResult<StatusChange>;

    /// Quarantines a device for a refused change: if it is active (or retire-pending), its
    /// status becomes [`DeviceStatus::Quarantined`]; the refusal is kept with the held changes
    /// and written to the audit log; all in one transaction. Returns the status change (a
    /// device that was already quarantined keeps its status and gains the record).
    ///
    /// # Errors
    /// [`StoreError::NotFound`].
    fn quarantine_device(&self, q: &Quarantine) -> StoreResult<StatusChange>;

    /// The refusals recorded for `device`, oldest first.
    ///
    /// # Errors
    /// [`StoreError::Database`], [`StoreError::Corrupt`].
    fn quarantines(&self, device: &str) -> StoreResult<Vec<QuarantineRecord>>;

    /// Releases a quarantined device: it becomes active, its open refusals are marked
    /// released at `at`, and their documents are to be replaced on the device at its next
    /// sync ([`ServerStore::pending_replaces`]).
    ///
    /// # Errors
    /// [`StoreError::NotFound`].
    fn release_device(&self, device: &str, at: i64) -> StoreResult<StatusChange>;

    /// Documents to send whole to `device` at its next sync, replacing its copies: those of
    /// refusals released but not yet replaced.
    ///
    /// # Errors
    /// [`StoreError::Database`], [`StoreError::Corrupt`].
    fn pending_replaces(&self, device: &str) -> StoreResult<Vec<DocId>>;

    /// Records that the wipe command was sent to the device at `at`.
    ///
    /// # Errors
    /// [`StoreError::NotFound`].
    fn record_wipe_delivered(&self, id: &str, at: i64) -> StoreResult<()>;

    /// Records the wrong-PIN attempts a device reported, each once: an attempt already
    /// recorded (the same staff id and time, reported again after a failed sync) is skipped.
    /// Each new one gets a `pin_failure` audit row, in the same transaction. Returns how many
    /// were new.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    fn record_pin_failures(
        &self,
        device: &str,
        failures: &[PinFailureRecord],
        reported_at: i64,
    ) -> StoreResult<u64>;

    /// Records a connection or a completed sync.
    ///
    /// # Errors
    /// [`StoreError::NotFound`].
    fn record_contact(&self, id: &str, contact: &Contact) -> StoreResult<()>;

    // ---- media ----

    /// Records a durably stored media file; returns `false` when it was already recorded
    /// (the first record is kept).
    ///
    /// # Errors
    /// [`StoreError::Database`].
    fn insert_media(&self, media: &MediaRecord) -> StoreResult<bool>;

    /// Counts one of `device`'s pending media items as delivered (the server acknowledged it),
    /// so the register's `unsynced_media` is right between syncs. Never goes below zero.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    fn note_media_acked(&self, device: &str) -> StoreResult<()>;

    /// Records that documents reference media (hex SHA-256, document), e.g. when building the
    /// index for documents stored before it existed. Idempotent.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    fn add_media_refs(&self, refs: &[(String, DocId)]) -> StoreResult<()>;

    /// Whether an entry in a stored document references this media (hex SHA-256).
    ///
    /// # Errors
    /// [`StoreError::Database`].
    fn media_referenced(&self, sha256: &str) -> StoreResult<bool>;

    /// A media record by hex SHA-256.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    fn media(&self, sha256: &str) -> StoreResult<Option<MediaRecord>>;

    // ---- portal passwords ----

    /// Sets the Argon2id PHC string of a portal login (`staff:<id>`, `parent:<id>`).
    ///
    /// # Errors
    /// [`StoreError::Database`].
    fn set_password(&self, principal: &str, phc: &str, at: i64) -> StoreResult<()>;

    /// The PHC string of a portal login.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    fn password(&self, principal: &str) -> StoreResult<Option<String>>;

    // ---- parents' contact details (server only; tablets never hold them) ----

    /// Sets a parent's login e-mail address (stored lower-case).
    ///
    /// # Errors
    /// [`StoreError::AlreadyExists`] when another parent or a staff member has it.
    fn set_parent_email(&self, parent: &str, email: &str, at: i64) -> StoreResult<()>;

    /// A parent's login e-mail address.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    fn parent_email(&self, parent: &str) -> StoreResult<Option<String>>;

    /// The parent whose login e-mail address this is (any case).
    ///
    /// # Errors
    /// [`StoreError::Database`].
    fn parent_by_email(&self, email: &str) -> StoreResult<Option<String>>;

    // ---- staff members' console sign-in addresses (server only) ----

    /// Sets a staff member's sign-in e-mail address (stored lower-case). An address signs one
    /// login in: it may be neither another staff member's nor a parent's
    /// ([`ServerStore::set_parent_email`] refuses a staff member's likewise).
    ///
    /// # Errors
    /// [`StoreError::AlreadyExists`] when another staff member or a parent has it.
    fn set_staff_email(&self, staff: &str, email: &str, at: i64) -> StoreResult<()>;

    /// A staff member's sign-in e-mail address.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    fn staff_email(&self, staff: &str) -> StoreResult<Option<String>>;

    /// The staff member whose sign-in e-mail address this is (any case).
    ///
    /// # Errors
    /// [`StoreError::Database`].
    fn staff_by_email(&self, email: &str) -> StoreResult<Option<String>>;

    // ---- portal sessions and agreements ----

    /// Stores a new session.
    ///
    /// # Errors
    /// [`StoreError::AlreadyExists`] when a session with this id hash exists.
    fn create_session(&self, session: &SessionRow) -> StoreResult<()>;

    /// Replaces a stored session's principal, data and expiry; returns `false` (and stores
    /// nothing) when it no longer exists, so a request still in flight cannot bring back a
    /// session that was ended meanwhile.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    fn update_session(&self, session: &SessionRow) -> StoreResult<bool>;

    /// The session with this id hash, unless it has expired by `now` (ms).
    ///
    /// # Errors
    /// [`StoreError::Database`].
    fn load_session(&self, id_hash: &str, now: i64) -> StoreResult<Option<SessionRow>>;

    /// Deletes a session (nothing when absent).
    ///
    /// # Errors
    /// [`StoreError::Database`].
    fn delete_session(&self, id_hash: &str) -> StoreResult<()>;

    /// The unexpired sessions signed in as `principal` at `now`, the one expiring last first.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    fn sessions_of(&self, principal: &str, now: i64) -> StoreResult<Vec<SessionRow>>;

    /// Deletes every session that expired before `now`; returns how many.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    fn delete_expired_sessions(&self, now: i64) -> StoreResult<u64>;

    /// Records that a parent accepted an agreement version.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    fn record_agreement(&self, record: &AgreementRecord) -> StoreResult<()>;

    /// The newest acceptance recorded for `principal`.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    fn latest_agreement(&self, principal: &str) -> StoreResult<Option<AgreementRecord>>;

    // ---- second factor and invitations ----

    /// Stores (or replaces) a login's TOTP record: a new secret starts over, so its
    /// `last_step` is what the record says.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    fn put_totp(&self, record: &TotpRecord) -> StoreResult<()>;

    /// A login's TOTP record.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    fn totp(&self, principal: &str) -> StoreResult<Option<TotpRecord>>;

    /// Marks the code of time step `step` as used, atomically, unless that step or a later one
    /// was already used (then nothing changes): returns whether it was marked, i.e. whether the
    /// code may be accepted. Sets `enabled` when `enable` is true (a set-up's first code).
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when the login has no TOTP record.
    fn use_totp_step(&self, principal: &str, step: i64, enable: bool) -> StoreResult<bool>;

    /// Removes a login's TOTP record (nothing when absent).
    ///
    /// # Errors
    /// [`StoreError::Database`].
    fn delete_totp(&self, principal: &str) -> StoreResult<()>;

    /// Replaces a login's recovery codes with `hashes` (lower-case hex SHA-256 of each code
    /// with its login, see `http::portal::account`), all unused; the old ones stop working.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    fn set_recovery_codes(&self, principal: &str, hashes: &[String], at: i64) -> StoreResult<()>;

    /// Uses one of a login's recovery codes, atomically: returns whether `hash` was an unused
    /// code of `principal` (it is used now, at `at`); of two requests with one code, one
    /// succeeds.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    fn use_recovery_code(&self, principal: &str, hash: &str, at: i64) -> StoreResult<bool>;

    /// How many unused recovery codes a login has.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    fn recovery_codes_left(&self, principal: &str) -> StoreResult<u64>;

    /// Stores a new invitation.
    ///
    /// # Errors
    /// [`StoreError::AlreadyExists`] when one with this token hash exists.
    fn insert_invitation(&self, invitation: &Invitation) -> StoreResult<()>;

    /// The invitation with this token hash, if it is unused and has not expired by `now` (ms).
    ///
    /// # Errors
    /// [`StoreError::Database`].
    fn invitation(&self, token_hash: &str, now: i64) -> StoreResult<Option<Invitation>>;

    /// Uses an invitation up, atomically: returns it when it was unused and unexpired at `now`
    /// (it is now used), `None` otherwise (nothing changes).
    ///
    /// # Errors
    /// [`StoreError::Database`].
    fn use_invitation(&self, token_hash: &str, now: i64) -> StoreResult<Option<Invitation>>;

    /// Ends every unused invitation of `parent` at `now` (ms), when a new one replaces them;
    /// returns how many.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    fn revoke_invitations(&self, parent: &str, now: i64) -> StoreResult<u64>;

    // ---- audit ----

    /// Appends to the audit log.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    fn audit(&self, event: &AuditEvent) -> StoreResult<()>;

    /// The newest `limit` audit events, newest first.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    fn audit_log(&self, limit: u32) -> StoreResult<Vec<AuditEvent>>;

    /// The audit events `query` matches, newest first, at most `query.limit`.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    fn audit_query(&self, query: &AuditQuery) -> StoreResult<Vec<AuditEvent>>;

    /// Lets device `id` sync from outside the allowed networks until `until` (ms), or no
    /// longer (`None`).
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown device; [`StoreError::Database`].
    fn set_device_offsite(&self, id: &str, until: Option<i64>) -> StoreResult<()>;

    // ---- events and attempt counters (shared by every process serving the setting) ----

    /// The setting's events with a sequence number above `after`, oldest first, at most
    /// `limit` of them. Every status change ([`ServerStore::set_device_status`],
    /// [`ServerStore::change_device_status`], [`ServerStore::quarantine_device`],
    /// [`ServerStore::release_device`]) writes one in its own transaction.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    fn events_after(&self, after: u64, limit: u32) -> StoreResult<Vec<SettingEvent>>;

    /// The newest event's sequence number, 0 when there is none.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    fn last_event_seq(&self) -> StoreResult<u64>;

    /// Counts one attempt of `scope` (`enrol_ip`, `enrol_all`, later `login`) for `key` (an
    /// address, a principal) at `at` (ms): throttles and lock-outs count in the database, so
    /// every replica sees the same numbers.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    fn record_attempt(&self, scope: &str, key: &str, at: i64) -> StoreResult<()>;

    /// The attempts of `scope` for `key` made at or after `since` (ms).
    ///
    /// # Errors
    /// [`StoreError::Database`].
    fn attempts_since(&self, scope: &str, key: &str, since: i64) -> StoreResult<Attempts>;

    /// Forgets attempts and events older than `before` (ms); returns how many rows went.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    fn prune_transient(&self, before: i64) -> StoreResult<u64>;
}

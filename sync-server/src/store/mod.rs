//! The server's storage: the [`ServerStore`] trait, its value types, and the SQLite backend
//! ([`SqliteStore`]). Every backend must pass [`crate::server_store_tests!`].
//!
//! Documents are stored as bytes (a snapshot plus appended change chunks); the store never
//! parses Automerge. Compaction is done by the caller, which loads, merges and saves a
//! document and hands back a snapshot that covers chunks up to a sequence number.

mod sqlite;
#[doc(hidden)]
pub mod suite;

use std::fmt;

use sprig_proto::DocId;

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
}

impl fmt::Debug for StoredDoc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Document bytes are children's journals: lengths only.
        f.debug_struct("StoredDoc")
            .field("epoch", &self.epoch)
            .field("snapshot", &format_args!("<{} bytes>", self.snapshot.len()))
            .field("chunks", &self.chunks.len())
            .field("last_seq", &self.last_seq)
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
}

impl fmt::Debug for DocWrite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DocWrite")
            .field("doc", &self.doc)
            .field("chunks", &self.chunks.len())
            .finish()
    }
}

/// Where an enrolled device stands.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeviceStatus {
    /// May sync.
    Active,
    /// Refused on every connection (lost, stolen, retired).
    Revoked,
    /// Told to wipe itself at its next connection.
    WipePending,
    /// Wiped (acknowledged or assumed); refused like a revoked device.
    Wiped,
}

impl DeviceStatus {
    /// The stable text form used in storage and JSON.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceStatus::Active => "active",
            DeviceStatus::Revoked => "revoked",
            DeviceStatus::WipePending => "wipe_pending",
            DeviceStatus::Wiped => "wiped",
        }
    }

    /// Parses [`Self::as_str`].
    #[must_use]
    pub fn parse(s: &str) -> Option<DeviceStatus> {
        Some(match s {
            "active" => DeviceStatus::Active,
            "revoked" => DeviceStatus::Revoked,
            "wipe_pending" => DeviceStatus::WipePending,
            "wiped" => DeviceStatus::Wiped,
            _ => return None,
        })
    }
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
    Enrolled(Device),
    /// No such code.
    Unknown,
    /// The code has expired; nothing changed but its attempt counter.
    Expired,
    /// The code was already used; nothing changed but its attempt counter.
    Used,
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
    /// The database failed (I/O, locked for too long, disk full). Retrying may help.
    #[error("the server database failed: {0}; check the disk and try again")]
    Database(#[from] rusqlite::Error),
}

impl StoreError {
    /// Whether retrying cannot help.
    #[must_use]
    pub fn is_permanent(&self) -> bool {
        !matches!(self, StoreError::Database(_))
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

    /// A document's snapshot and chunks, or `None`.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    fn load_doc(&self, doc: &DocId) -> StoreResult<Option<StoredDoc>>;

    /// Stores a new document.
    ///
    /// # Errors
    /// [`StoreError::AlreadyExists`] when it exists.
    fn create_doc(&self, doc: &DocId, epoch: u64, snapshot: &[u8]) -> StoreResult<()>;

    /// Appends change chunks to documents and saves `device`'s sync states, all in one
    /// transaction.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for a document that does not exist (nothing is written).
    fn commit_changes(
        &self,
        device: Option<&str>,
        writes: &[DocWrite],
        sync_states: &[(DocId, Vec<u8>)],
    ) -> StoreResult<()>;

    /// Replaces a document's snapshot with `snapshot`, which must include every chunk up to
    /// `upto_seq`; those chunks are deleted, later ones kept.
    ///
    /// # Errors
    /// [`StoreError::NotFound`].
    fn compact_doc(&self, doc: &DocId, snapshot: &[u8], upto_seq: i64) -> StoreResult<()>;

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

    /// Changes a device's status.
    ///
    /// # Errors
    /// [`StoreError::NotFound`].
    fn set_device_status(&self, id: &str, status: DeviceStatus) -> StoreResult<()>;

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
}

//! The store's error type.

use std::path::PathBuf;

use rusqlite::ErrorCode;

/// Everything that can go wrong in the device store.
///
/// Messages are written for the person holding the tablet (or the engineer reading a support
/// ticket): they say what happened and what to do. Use [`StoreError::is_retryable`] to tell a
/// passing condition (disk full, database busy, keystore locked) from a permanent one (wrong key,
/// corrupt file, made by a newer app), and [`StoreError::is_not_found`] for absent things.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// `open` found no database file at the path.
    #[error("no Sprig database at {path}: this device has no data yet (enrol it) or it was wiped")]
    DatabaseMissing {
        /// Where the database was expected.
        path: PathBuf,
    },

    /// `create` found a file already at the path; it is never overwritten.
    #[error("a file already exists at {path}; open it instead, or wipe the device first")]
    AlreadyExists {
        /// The existing file.
        path: PathBuf,
    },

    /// A document, media item or other record the caller asked for is not in the store.
    #[error("{what} not found on this device")]
    NotFound {
        /// What was looked for, e.g. `journal of child c-…`.
        what: String,
    },

    /// The file is an unencrypted SQLite database. Sprig never opens one as its store, because
    /// that would put children's data on disk in the clear.
    #[error(
        "{path} is an unencrypted SQLite database, not a Sprig store; refusing to use it \
         (remove it or wipe the device)"
    )]
    Plaintext {
        /// The plaintext file.
        path: PathBuf,
    },

    /// The key from the keystore does not decrypt the database (or the file is not a database).
    #[error(
        "the key in the OS keystore does not open {path}: the keystore entry belongs to another \
         store or the file is damaged; wipe and re-enrol this device"
    )]
    WrongKey {
        /// The database that could not be opened.
        path: PathBuf,
    },

    /// The OS keystore holds no key for this store, so the database can never be read again.
    #[error(
        "no database key in the OS keystore for this store (the device was wiped or the keystore \
         was reset); its data cannot be read: wipe and re-enrol this device"
    )]
    KeyMissing,

    /// The OS keystore could not be reached or refused the operation.
    #[error(
        "the OS keystore is not available ({message}); unlock the device's keystore and retry \
         (on Linux without a desktop session, run under scripts/with-keystore.sh)"
    )]
    Keystore {
        /// The keystore's own description of the failure.
        message: String,
    },

    /// The database was written by a newer Sprig with a schema this build does not know.
    #[error(
        "this data was made by a newer Sprig; update the app (data schema {found}, this app \
         knows up to {supported})"
    )]
    TooNew {
        /// The schema version in the file.
        found: u32,
        /// The newest schema version this build knows.
        supported: u32,
    },

    /// `purge` was asked to remove media the server has not acknowledged; that would lose it.
    #[error("media {sha256} has not been acknowledged by the server yet; sync before purging it")]
    NotUploaded {
        /// Hex SHA-256 of the media.
        sha256: String,
    },

    /// Media bytes did not hash to what the caller expected; nothing was stored.
    #[error(
        "media content does not match its expected SHA-256 (expected {expected}, got {actual}); capture it again"
    )]
    HashMismatch {
        /// The hash the caller expected.
        expected: String,
        /// The hash of the bytes written.
        actual: String,
    },

    /// A document could not be loaded or stored (damaged bytes, wrong kind, older epoch…).
    #[error(transparent)]
    Document(#[from] sprig_core::DocError),

    /// The database file is damaged.
    #[error("the database is damaged ({message}); sync what you can and re-enrol this device")]
    Corrupt {
        /// SQLite's description.
        message: String,
    },

    /// The device's storage is full.
    #[error(
        "the device's storage is full; free some space (sync, then purge uploaded media) and retry"
    )]
    DiskFull,

    /// Another process or connection holds the database lock.
    #[error("the database is busy; retry in a moment")]
    Busy,

    /// A file-system operation failed.
    #[error("file error: {0}")]
    Io(#[from] std::io::Error),

    /// Any other SQLite failure (a bug in Sprig rather than a condition of the device).
    #[error("database error: {0}")]
    Sqlite(rusqlite::Error),
}

impl StoreError {
    /// True when retrying the same operation later may succeed (storage full, lock contention,
    /// keystore temporarily unavailable); false for permanent conditions (wrong key, corruption,
    /// newer schema, bad input).
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::DiskFull | Self::Busy | Self::Keystore { .. } => true,
            Self::Io(e) => matches!(
                e.kind(),
                std::io::ErrorKind::Interrupted
                    | std::io::ErrorKind::WouldBlock
                    | std::io::ErrorKind::TimedOut
                    | std::io::ErrorKind::StorageFull
            ),
            _ => false,
        }
    }

    /// True when the thing asked for does not exist (the database file, or a record in it).
    #[must_use]
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::DatabaseMissing { .. } | Self::NotFound { .. })
    }

    pub(crate) fn not_found(what: impl Into<String>) -> Self {
        Self::NotFound { what: what.into() }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(ErrorCode::DiskFull) => Self::DiskFull,
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => Self::Busy,
            Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => Self::Corrupt {
                message: e.to_string(),
            },
            _ => Self::Sqlite(e),
        }
    }
}

impl From<rusqlite::types::FromSqlError> for StoreError {
    fn from(e: rusqlite::types::FromSqlError) -> Self {
        Self::Corrupt {
            message: format!("a stored value has the wrong type ({e})"),
        }
    }
}

/// The store's `Result`.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite_err(code: i32) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None)
    }

    #[test]
    fn disk_full_and_busy_are_retryable_corruption_is_not() {
        let full = StoreError::from(sqlite_err(rusqlite::ffi::SQLITE_FULL));
        assert!(matches!(full, StoreError::DiskFull));
        assert!(full.is_retryable());
        let busy = StoreError::from(sqlite_err(rusqlite::ffi::SQLITE_BUSY));
        assert!(matches!(busy, StoreError::Busy));
        assert!(busy.is_retryable());
        let corrupt = StoreError::from(sqlite_err(rusqlite::ffi::SQLITE_CORRUPT));
        assert!(matches!(corrupt, StoreError::Corrupt { .. }));
        assert!(!corrupt.is_retryable());
        assert!(!StoreError::WrongKey { path: "x".into() }.is_retryable());
        assert!(
            !StoreError::TooNew {
                found: 9,
                supported: 1
            }
            .is_retryable()
        );
    }

    #[test]
    fn not_found_is_separate_from_other_failures() {
        assert!(StoreError::not_found("journal").is_not_found());
        assert!(StoreError::DatabaseMissing { path: "x".into() }.is_not_found());
        assert!(!StoreError::KeyMissing.is_not_found());
        assert!(!StoreError::Busy.is_not_found());
    }

    #[test]
    fn messages_say_what_to_do() {
        let newer = StoreError::TooNew {
            found: 7,
            supported: 1,
        }
        .to_string();
        assert!(
            newer.contains("made by a newer Sprig; update the app"),
            "{newer}"
        );
        assert!(StoreError::DiskFull.to_string().contains("free some space"));
    }
}

//! Creating and opening the encrypted database: [`Store`].

use std::collections::HashSet;
use std::fmt;
use std::fs::OpenOptions;
use std::io::Read;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, ErrorCode, OpenFlags};

use crate::error::{Result, StoreError};
use crate::key::{DbKey, KeyStore};
use crate::migrate::{self, MIGRATIONS};

/// The first 16 bytes of every unencrypted SQLite database.
pub(crate) const PLAINTEXT_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// How often a document's incremental chunks are folded back into its snapshot.
///
/// A document is compacted (its snapshot rewritten, chunks dropped) when it would have more than
/// `max_chunks` chunks, or when its chunks together would be larger than its snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compaction {
    /// The most incremental chunks a document keeps before compaction.
    pub max_chunks: u32,
}

impl Default for Compaction {
    fn default() -> Self {
        Self { max_chunks: 64 }
    }
}

/// Whether the file is encrypted. Plaintext exists only for tests and benchmarks.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Mode {
    Encrypted,
    #[cfg(any(test, feature = "insecure-plaintext"))]
    InsecurePlaintext,
}

/// The device's store: one SQLCipher database holding the journal, roster and setting documents,
/// sync states, the derived index and the media vault.
///
/// Writes take `&mut self` and each is one transaction.
pub struct Store {
    pub(crate) conn: Connection,
    path: PathBuf,
    mode: Mode,
    pub(crate) compaction: Compaction,
    /// Documents whose last write failed after the document marked its changes as saved; their
    /// next write is a full snapshot (see `docs::track_failure`).
    pub(crate) needs_snapshot: HashSet<String>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .field("mode", &self.mode)
            .field("compaction", &self.compaction)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Creates a new encrypted store at `path` with a fresh random key, saved in `keys`
    /// (replacing any stale key there).
    ///
    /// # Errors
    /// [`StoreError::AlreadyExists`] if anything is at `path` (never overwritten);
    /// [`StoreError::Keystore`] if the key cannot be saved (nothing is left behind).
    pub fn create(path: impl AsRef<Path>, keys: &dyn KeyStore) -> Result<Self> {
        let path = path.as_ref();
        claim_new_file(path)?;
        let key = DbKey::generate();
        let result = keys
            .store(&key)
            .and_then(|()| Self::init(path, Some(&key), Mode::Encrypted));
        if result.is_err() {
            // Best effort: leave neither a half-made file nor a key for it.
            remove_db_files(path).ok();
            keys.destroy().ok();
        }
        result
    }

    /// Opens the existing encrypted store at `path` with its key from `keys`, applying any
    /// pending schema migrations.
    ///
    /// Refused without touching the file: a missing file, an unencrypted SQLite file, a missing
    /// or wrong key, a database made by a newer Sprig.
    ///
    /// # Errors
    /// [`StoreError::DatabaseMissing`], [`StoreError::Plaintext`], [`StoreError::KeyMissing`],
    /// [`StoreError::WrongKey`], [`StoreError::TooNew`], [`StoreError::Keystore`].
    pub fn open(path: impl AsRef<Path>, keys: &dyn KeyStore) -> Result<Self> {
        let path = path.as_ref();
        let header = read_header(path)?;
        if &header == PLAINTEXT_HEADER {
            return Err(StoreError::Plaintext { path: path.into() });
        }
        let key = keys.load()?.ok_or(StoreError::KeyMissing)?;
        Self::open_existing(path, Some(&key), Mode::Encrypted)
    }

    /// Creates an **unencrypted** store. Exists only so benchmarks can compare SQLCipher with
    /// plain SQLite on the same code; never use it for children's data.
    ///
    /// # Errors
    /// As [`Store::create`].
    #[cfg(any(test, feature = "insecure-plaintext"))]
    pub fn create_insecure_plaintext(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        claim_new_file(path)?;
        let result = Self::init(path, None, Mode::InsecurePlaintext);
        if result.is_err() {
            remove_db_files(path).ok();
        }
        result
    }

    /// Opens an **unencrypted** store made by [`Store::create_insecure_plaintext`]. Benchmarks
    /// and tests only.
    ///
    /// # Errors
    /// As [`Store::open`].
    #[cfg(any(test, feature = "insecure-plaintext"))]
    pub fn open_insecure_plaintext(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        read_header(path)?;
        Self::open_existing(path, None, Mode::InsecurePlaintext)
    }

    fn init(path: &Path, key: Option<&DbKey>, mode: Mode) -> Result<Self> {
        let mut conn = connect(path, key)?;
        // auto_vacuum only takes effect before the first table is created; WAL is persistent.
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
        let journal: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
        debug_assert_eq!(journal, "wal");
        configure(&conn)?;
        migrate::migrate(&mut conn, MIGRATIONS)?;
        Ok(Self::wrap(conn, path, mode))
    }

    fn open_existing(path: &Path, key: Option<&DbKey>, mode: Mode) -> Result<Self> {
        let mut conn = connect(path, key)?;
        // Read the schema first: with a wrong key this is where SQLCipher fails, before any
        // pragma below could write.
        if let Err(e) = conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| {
            r.get::<_, i64>(0)
        }) {
            return Err(match e.sqlite_error_code() {
                Some(ErrorCode::NotADatabase) => StoreError::WrongKey { path: path.into() },
                _ => e.into(),
            });
        }
        migrate::check_not_newer(&conn, MIGRATIONS)?;
        let journal: String = conn.pragma_query_value(None, "journal_mode", |r| r.get(0))?;
        if !journal.eq_ignore_ascii_case("wal") {
            conn.pragma_update(None, "journal_mode", "WAL")?;
        }
        configure(&conn)?;
        migrate::migrate(&mut conn, MIGRATIONS)?;
        Ok(Self::wrap(conn, path, mode))
    }

    fn wrap(conn: Connection, path: &Path, mode: Mode) -> Self {
        // Index queries, media and document statements together exceed rusqlite's default 16.
        conn.set_prepared_statement_cache_capacity(64);
        Self {
            conn,
            path: path.to_path_buf(),
            mode,
            compaction: Compaction::default(),
            needs_snapshot: HashSet::new(),
        }
    }

    /// The database file's path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Changes when documents are compacted.
    pub fn set_compaction(&mut self, compaction: Compaction) {
        self.compaction = compaction;
    }

    /// The schema version of the open database.
    ///
    /// # Errors
    /// A database failure.
    pub fn schema_version(&self) -> Result<u32> {
        migrate::user_version(&self.conn)
    }

    /// Runs SQLite's `PRAGMA integrity_check`.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] listing the problems found.
    pub fn check_integrity(&self) -> Result<()> {
        let mut stmt = self.conn.prepare("PRAGMA integrity_check")?;
        let problems: Vec<String> = stmt
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        if problems.len() == 1 && problems[0] == "ok" {
            Ok(())
        } else {
            Err(StoreError::Corrupt {
                message: problems.join("; "),
            })
        }
    }

    /// Copies the write-ahead log into the database file and truncates the log to zero bytes.
    ///
    /// # Errors
    /// [`StoreError::Busy`] if another connection is reading.
    pub fn checkpoint(&self) -> Result<()> {
        let busy: i64 = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
        if busy != 0 {
            return Err(StoreError::Busy);
        }
        Ok(())
    }

    /// Returns free pages to the file system (`PRAGMA incremental_vacuum`) and checkpoints, so
    /// the file shrinks after purges.
    ///
    /// # Errors
    /// A database failure.
    pub fn reclaim_space(&self) -> Result<()> {
        // incremental_vacuum returns no rows but must be stepped to completion.
        let mut stmt = self.conn.prepare("PRAGMA incremental_vacuum")?;
        let mut rows = stmt.query([])?;
        while rows.next()?.is_some() {}
        drop(rows);
        self.checkpoint()
    }

    /// Closes the database, reporting any error SQLite has on the way out.
    ///
    /// # Errors
    /// A database failure while closing.
    pub fn close(self) -> Result<()> {
        self.conn.close().map_err(|(_, e)| e.into())
    }
}

/// Cipher settings that differ from SQLCipher 4's defaults; applied right after the key.
pub(crate) const CIPHER_SETTINGS: &str = "PRAGMA cipher_hmac_algorithm = HMAC_SHA256;";

/// Opens the file (never creating it) and keys the connection.
fn connect(path: &Path, key: Option<&DbKey>) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn =
        Connection::open_with_flags(path, flags).map_err(|e| match e.sqlite_error_code() {
            Some(ErrorCode::CannotOpen) if !path.exists() => {
                StoreError::DatabaseMissing { path: path.into() }
            }
            _ => e.into(),
        })?;
    if let Some(key) = key {
        // Memory security (mlock + scrub of every SQLite heap allocation) stays off, as it is
        // by default since SQLCipher 4.5: measured here it made opening the store 18x and a
        // timeline page 16x slower than plain SQLite (≈313 mlock/munlock pairs per page). What
        // it would add — scrubbing the parser's transient copy of the key statement and freed
        // page buffers — guards against reading the app's memory, which on a tablet already
        // means the attacker has the unlocked app. Our own key copies are zeroized.
        conn.execute_batch("PRAGMA cipher_memory_security = OFF;")?;
        // Our copy of the statement is zeroed when `sql` drops.
        let sql = key.key_pragma();
        conn.execute_batch(&sql)?;
        // SQLCipher 4 defaults to HMAC-SHA512 per page. HMAC-SHA256 is as sound for page
        // integrity and has hardware support where SHA-512 often has none (x86 SHA-NI, every
        // ARMv8 tablet SoC): bulk writes (media) spend ~40% less time in crypto here. Not stored
        // in the (encrypted) header, so it is part of the file format: set on every open.
        conn.execute_batch(CIPHER_SETTINGS)?;
    }
    Ok(conn)
}

/// Per-connection settings, applied on every open.
fn configure(conn: &Connection) -> Result<()> {
    conn.pragma_update(None, "secure_delete", "ON")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // In WAL mode NORMAL is durable against a process crash (the OS has the log); only a power
    // cut can lose the last commits, never corrupt the file.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(())
}

/// Creates `path` exclusively (0600 on Unix), so `create` can never clobber a file, and clears
/// stale `-wal`/`-shm`/`-journal` files that would otherwise be replayed into the new database.
fn claim_new_file(path: &Path) -> Result<()> {
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    match opts.open(path) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(StoreError::AlreadyExists { path: path.into() });
        }
        Err(e) => return Err(e.into()),
    }
    for side in SIDE_SUFFIXES {
        remove_if_exists(&side_path(path, side))?;
    }
    Ok(())
}

/// Reads the 16-byte header of an existing database file.
fn read_header(path: &Path) -> Result<[u8; 16]> {
    let mut file = std::fs::File::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => StoreError::DatabaseMissing { path: path.into() },
        _ => e.into(),
    })?;
    let mut header = [0u8; 16];
    file.read_exact(&mut header).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => StoreError::Corrupt {
            message: format!(
                "{} is too short to be a database (its creation was interrupted)",
                path.display()
            ),
        },
        _ => e.into(),
    })?;
    Ok(header)
}

pub(crate) const SIDE_SUFFIXES: [&str; 3] = ["-wal", "-shm", "-journal"];

pub(crate) fn side_path(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

pub(crate) fn remove_if_exists(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Removes the database and its side files; absent files are fine.
pub(crate) fn remove_db_files(path: &Path) -> Result<()> {
    remove_if_exists(path)?;
    for side in SIDE_SUFFIXES {
        remove_if_exists(&side_path(path, side))?;
    }
    Ok(())
}

/// Milliseconds since the Unix epoch, for bookkeeping columns.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

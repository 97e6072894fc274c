//! The device's data directory: `DIR/device.db` (the SQLCipher store) and the OS-keystore entry
//! holding its key, addressed by the canonical directory so several devices on one machine
//! (tests) never share a key.

use std::path::{Path, PathBuf};

use sprig_store::KeyringKeyStore;

use crate::error::{DeviceError, Result};

/// The keystore service name of every device store.
pub const KEYSTORE_SERVICE: &str = "sprig-device";

/// The database file's name inside the data directory.
pub const DB_FILE: &str = "device.db";

/// The plaintext marker a wipe leaves in the data directory, holding only `wiped at <time>`,
/// so `status` can say the device was wiped.
pub const WIPED_MARKER: &str = "WIPED";

/// The plaintext marker written (and synced to disk) before a wipe destroys the key, holding
/// only `wipe started at <time>`: a wipe cut short by a crash is finished at the next open
/// instead of leaving a store whose key is gone.
pub const WIPING_MARKER: &str = "WIPING";

/// A device's data directory. Nothing else than `device.db` (and SQLite's `-wal`/`-shm` side
/// files) is ever written there: photos, videos and the device's private key live inside the
/// encrypted database. After a wipe only [`WIPED_MARKER`] remains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// The existing directory `path`, canonicalised.
    ///
    /// # Errors
    /// [`DeviceError::NotSetUp`] when it does not exist.
    pub fn existing(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let root = std::fs::canonicalize(path).map_err(|_| DeviceError::NotSetUp {
            path: path.to_owned(),
        })?;
        Ok(Self { root })
    }

    /// The directory `path`, created (owner-only on Unix) when absent.
    ///
    /// # Errors
    /// [`DeviceError::ReadFile`] when it cannot be created.
    pub fn create(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let io = |source| DeviceError::ReadFile {
            path: path.to_owned(),
            source,
        };
        if !path.exists() {
            let mut b = std::fs::DirBuilder::new();
            b.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
            b.create(path).map_err(io)?;
        }
        Ok(Self {
            root: std::fs::canonicalize(path).map_err(io)?,
        })
    }

    /// The canonical directory.
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The store's database file.
    #[must_use]
    pub fn db_path(&self) -> PathBuf {
        self.root.join(DB_FILE)
    }

    /// When the device in this directory was wiped (`wiped at <time>` from [`WIPED_MARKER`]),
    /// or `None` when it never was (or has enrolled again since).
    #[must_use]
    pub fn wiped_at(&self) -> Option<String> {
        let text = std::fs::read_to_string(self.root.join(WIPED_MARKER)).ok()?;
        let line = text.lines().next().unwrap_or_default().trim();
        Some(line.strip_prefix("wiped at ").unwrap_or(line).to_owned())
    }

    /// When a wipe was started here and not finished (the process died between destroying the
    /// key and deleting the files), from [`WIPING_MARKER`].
    #[must_use]
    pub fn wipe_started_at(&self) -> Option<String> {
        let text = std::fs::read_to_string(self.root.join(WIPING_MARKER)).ok()?;
        let line = text.lines().next().unwrap_or_default().trim();
        Some(
            line.strip_prefix("wipe started at ")
                .unwrap_or(line)
                .to_owned(),
        )
    }

    /// Writes [`WIPING_MARKER`] durably (file and directory synced) before anything is
    /// destroyed.
    pub(crate) fn begin_wipe(&self, at: &str) -> Result<()> {
        let io = |source| DeviceError::ReadFile {
            path: self.root.clone(),
            source,
        };
        let path = self.root.join(WIPING_MARKER);
        let mut f = std::fs::File::create(&path).map_err(io)?;
        std::io::Write::write_all(&mut f, format!("wipe started at {at}\n").as_bytes())
            .map_err(io)?;
        f.sync_all().map_err(io)?;
        std::fs::File::open(&self.root)
            .and_then(|d| d.sync_all())
            .map_err(io)
    }

    /// Deletes every file the device owns here (`device.db` and anything SQLite or an
    /// interrupted write left beside it) and writes the [`WIPED_MARKER`]. Idempotent.
    pub(crate) fn finish_wipe(&self, at: &str) -> Result<()> {
        let io = |source| DeviceError::ReadFile {
            path: self.root.clone(),
            source,
        };
        for entry in std::fs::read_dir(&self.root).map_err(io)? {
            let entry = entry.map_err(io)?;
            let name = entry.file_name();
            if name.to_string_lossy().starts_with(DB_FILE) {
                match std::fs::remove_file(entry.path()) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io(e)),
                }
            }
        }
        std::fs::write(self.root.join(WIPED_MARKER), format!("wiped at {at}\n")).map_err(io)?;
        match std::fs::remove_file(self.root.join(WIPING_MARKER)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(e)),
            _ => Ok(()),
        }
    }

    /// Removes the [`WIPED_MARKER`] (the device has enrolled again).
    pub(crate) fn clear_wiped_marker(&self) {
        let _ = std::fs::remove_file(self.root.join(WIPED_MARKER));
    }

    /// The OS-keystore entry holding this store's key: service [`KEYSTORE_SERVICE`], account
    /// the canonical directory.
    #[must_use]
    pub fn keystore(&self) -> KeyringKeyStore {
        KeyringKeyStore::new(KEYSTORE_SERVICE, &self.root.to_string_lossy())
    }
}

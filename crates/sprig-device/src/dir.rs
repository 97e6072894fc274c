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

/// A device's data directory. Nothing else than `device.db` (and SQLite's `-wal`/`-shm` side
/// files) is ever written there: photos, videos and the device's private key live inside the
/// encrypted database.
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

    /// The OS-keystore entry holding this store's key: service [`KEYSTORE_SERVICE`], account
    /// the canonical directory.
    #[must_use]
    pub fn keystore(&self) -> KeyringKeyStore {
        KeyringKeyStore::new(KEYSTORE_SERVICE, &self.root.to_string_lossy())
    }
}

//! Wiping a device's store: crypto-shredding first, then the files.

use std::path::Path;

use crate::error::Result;
use crate::key::KeyStore;
use crate::store::{Store, remove_db_files};

/// Destroys the store at `path`: first its key in `keys` (after which the file is unreadable
/// noise even if deleting it fails or is undone), then the database and its `-wal`, `-shm` and
/// `-journal` files. Idempotent: wiping nothing succeeds.
///
/// The files are deleted even when the keystore fails; the keystore's error is then returned so
/// the caller can report that the key may remain.
///
/// # Errors
/// [`crate::StoreError::Keystore`] if the key could not be destroyed; [`crate::StoreError::Io`]
/// if a file could not be removed.
pub fn wipe(path: impl AsRef<Path>, keys: &dyn KeyStore) -> Result<()> {
    let key_result = keys.destroy();
    remove_db_files(path.as_ref())?;
    key_result
}

impl Store {
    /// Closes this store and [`wipe`]s it.
    ///
    /// # Errors
    /// As [`wipe`].
    pub fn wipe(self, keys: &dyn KeyStore) -> Result<()> {
        let path = self.path().to_path_buf();
        // Close first so SQLite does not recreate side files; a close error changes nothing.
        self.close().ok();
        wipe(path, keys)
    }
}

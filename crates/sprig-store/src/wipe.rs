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
    /// [`wipe`]s this store while the caller still holds it (a sync session that was told to
    /// wipe still has the connection to acknowledge on): the key is destroyed first, then the
    /// database connection is swapped for an empty in-memory one and closed, then the files
    /// are deleted. Afterwards this `Store` holds nothing; drop it.
    ///
    /// # Errors
    /// As [`wipe`].
    pub fn wipe_in_place(&mut self, keys: &dyn KeyStore) -> Result<()> {
        let key_result = keys.destroy();
        let old = std::mem::replace(&mut self.conn, rusqlite::Connection::open_in_memory()?);
        // A close error changes nothing: the key is gone and the files go next.
        old.close().ok();
        self.needs_snapshot.clear();
        remove_db_files(self.path())?;
        key_result
    }

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

#[cfg(test)]
mod tests {
    use crate::{KeyStore, MemoryKeyStore, Store};

    #[test]
    fn wipe_in_place_destroys_the_key_and_every_file_while_the_store_is_held() {
        let dir = tempfile::tempdir().unwrap();
        let keys = MemoryKeyStore::new();
        let path = dir.path().join("device.db");
        let mut store = Store::create(&path, &keys).unwrap();
        store
            .put_media("image/jpeg", b"not really a photo")
            .unwrap();
        store.wipe_in_place(&keys).unwrap();
        assert!(keys.load().unwrap().is_none(), "the key must be gone");
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert!(left.is_empty(), "files left: {left:?}");
        // The husk holds nothing and writes nothing to the directory.
        assert!(store.media_in_state(crate::MediaState::Captured).is_err());
        drop(store);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        // Idempotent.
        crate::wipe(&path, &keys).unwrap();
    }
}

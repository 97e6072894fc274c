//! The device's identity from enrolment (device id, server, pinned CA, client certificate and
//! private key) and the time of its last completed sync, kept inside the encrypted database.

use std::fmt;

use rusqlite::{OptionalExtension, params};
use zeroize::Zeroizing;

use crate::error::{Result, StoreError};
use crate::store::Store;

/// Who this device is to its server. Exactly one per store, set at enrolment.
#[derive(Clone, PartialEq, Eq)]
pub struct DeviceIdentity {
    /// The id the server issued (the client certificate's subject).
    pub device_id: String,
    /// `https://host:port` of the server.
    pub server_url: String,
    /// The setting CA (PEM), pinned at enrolment: the only trust anchor for the server.
    pub ca_cert_pem: String,
    /// The device's client certificate (PEM).
    pub client_cert_pem: String,
    /// The device's private key (PEM); zeroed when dropped, never shown by `Debug`.
    pub client_key_pem: Zeroizing<String>,
    /// When the device was enrolled, ms since the Unix epoch.
    pub enrolled_at: i64,
}

impl fmt::Debug for DeviceIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceIdentity")
            .field("device_id", &self.device_id)
            .field("server_url", &self.server_url)
            .field("client_key_pem", &"<redacted>")
            .field("enrolled_at", &self.enrolled_at)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Stores the device's identity, replacing any earlier one (re-enrolment after a wipe
    /// starts from a new store, so replacing is only for recovery); clears the last sync time.
    ///
    /// # Errors
    /// A database failure.
    pub fn set_device_identity(&mut self, id: &DeviceIdentity) -> Result<()> {
        self.conn.execute(
            "INSERT OR REPLACE INTO device_identity (id, device_id, server_url, ca_cert_pem, \
             client_cert_pem, client_key_pem, enrolled_at, last_sync_at) \
             VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, NULL)",
            params![
                id.device_id,
                id.server_url,
                id.ca_cert_pem,
                id.client_cert_pem,
                id.client_key_pem.as_str(),
                id.enrolled_at,
            ],
        )?;
        Ok(())
    }

    /// The device's identity, or `None` before enrolment.
    ///
    /// # Errors
    /// A database failure.
    pub fn device_identity(&self) -> Result<Option<DeviceIdentity>> {
        Ok(self
            .conn
            .query_row(
                "SELECT device_id, server_url, ca_cert_pem, client_cert_pem, client_key_pem, \
                 enrolled_at FROM device_identity WHERE id = 1",
                [],
                |r| {
                    Ok(DeviceIdentity {
                        device_id: r.get(0)?,
                        server_url: r.get(1)?,
                        ca_cert_pem: r.get(2)?,
                        client_cert_pem: r.get(3)?,
                        client_key_pem: Zeroizing::new(r.get(4)?),
                        enrolled_at: r.get(5)?,
                    })
                },
            )
            .optional()?)
    }

    /// Records that a sync completed at `at_ms` (ms since the Unix epoch).
    ///
    /// # Errors
    /// [`StoreError::NotFound`] before enrolment; a database failure.
    pub fn record_sync(&mut self, at_ms: i64) -> Result<()> {
        let n = self.conn.execute(
            "UPDATE device_identity SET last_sync_at = ?1 WHERE id = 1",
            [at_ms],
        )?;
        if n == 0 {
            return Err(StoreError::not_found("device identity (enrol first)"));
        }
        Ok(())
    }

    /// When the last sync completed, ms since the Unix epoch; `None` if never.
    ///
    /// # Errors
    /// A database failure.
    pub fn last_sync(&self) -> Result<Option<i64>> {
        Ok(self
            .conn
            .query_row(
                "SELECT last_sync_at FROM device_identity WHERE id = 1",
                [],
                |r| r.get::<_, Option<i64>>(0),
            )
            .optional()?
            .flatten())
    }

    /// Deletes an item's thumbnail (policy `keep_thumbnails = false` after purge).
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when the item is unknown.
    pub fn remove_thumbnail(&mut self, sha: &sprig_core::Sha256) -> Result<()> {
        let n = self.conn.execute(
            "UPDATE media SET thumbnail = NULL WHERE sha256 = ?1",
            [sha.as_bytes()],
        )?;
        if n == 0 {
            return Err(StoreError::not_found(format!("media {sha}")));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryKeyStore;

    fn identity() -> DeviceIdentity {
        DeviceIdentity {
            device_id: "0b0e5f0e-8d3c-4f47-9d0e-2f3f1f1c7a11".into(),
            server_url: "https://127.0.0.1:8443".into(),
            ca_cert_pem: "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n".into(),
            client_cert_pem: "-----BEGIN CERTIFICATE-----\nME\n-----END CERTIFICATE-----\n".into(),
            // The store keeps the key text opaque; a marker stands in for a generated key.
            client_key_pem: Zeroizing::new("stand-in key material SECRETKEYBYTES".into()),
            enrolled_at: 1_700_000_000_000,
        }
    }

    #[test]
    fn identity_round_trips_and_last_sync_is_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let keys = MemoryKeyStore::new();
        let path = dir.path().join("device.db");
        let mut store = Store::create(&path, &keys).unwrap();
        assert_eq!(store.device_identity().unwrap(), None);
        assert_eq!(store.last_sync().unwrap(), None);
        assert!(store.record_sync(5).unwrap_err().is_not_found());

        store.set_device_identity(&identity()).unwrap();
        store.record_sync(1_700_000_001_000).unwrap();
        store.close().unwrap();

        let store = Store::open(&path, &keys).unwrap();
        assert_eq!(store.device_identity().unwrap(), Some(identity()));
        assert_eq!(store.last_sync().unwrap(), Some(1_700_000_001_000));
    }

    #[test]
    fn debug_never_shows_the_private_key() {
        let shown = format!("{:?}", identity());
        assert!(!shown.contains("SECRETKEYBYTES"), "{shown}");
        assert!(shown.contains("<redacted>"));
    }

    #[test]
    fn the_private_key_is_not_in_the_file_in_plaintext() {
        let dir = tempfile::tempdir().unwrap();
        let keys = MemoryKeyStore::new();
        let path = dir.path().join("device.db");
        let mut store = Store::create(&path, &keys).unwrap();
        store.set_device_identity(&identity()).unwrap();
        store.checkpoint().unwrap();
        store.close().unwrap();
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            assert!(
                !bytes
                    .windows(b"SECRETKEYBYTES".len())
                    .any(|w| w == b"SECRETKEYBYTES")
            );
        }
    }

    #[test]
    fn a_version_1_store_gains_the_identity_table_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let keys = MemoryKeyStore::new();
        let path = dir.path().join("device.db");
        let store = Store::create(&path, &keys).unwrap();
        // Back to what a version-1 build left behind.
        store
            .conn
            .execute_batch("DROP TABLE device_identity; PRAGMA user_version = 1;")
            .unwrap();
        store.close().unwrap();
        let mut store = Store::open(&path, &keys).unwrap();
        assert_eq!(store.schema_version().unwrap(), 2);
        store.set_device_identity(&identity()).unwrap();
        assert!(store.device_identity().unwrap().is_some());
    }
}

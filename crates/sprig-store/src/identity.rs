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

/// An offline lease as the device keeps it: the server's signed terms plus the device clock
/// when it was stored (the last check-in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredLease {
    /// The device the lease is for.
    pub device_id: String,
    /// When the server issued it (server clock, ms since the Unix epoch).
    pub issued_at_ms: i64,
    /// Seconds after the check-in before the device refuses to unlock.
    pub lock_after_secs: u64,
    /// Seconds after the check-in before the device wipes itself.
    pub wipe_after_secs: u64,
    /// Consecutive wrong PINs after which the device locks until it syncs.
    pub max_pin_failures: u32,
    /// The setting CA's signature over the lease.
    pub signature: Vec<u8>,
    /// The device clock when the lease was stored (ms since the Unix epoch).
    pub received_at_ms: i64,
}

/// PIN throttling state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PinState {
    /// Wrong PINs in a row (any staff) since the last correct one or sync.
    pub consecutive: u32,
    /// When the last wrong PIN was entered (device clock, ms).
    pub last_failure_ms: Option<i64>,
    /// Set when the device locked itself after too many wrong PINs; cleared by a sync.
    pub locked_at_ms: Option<i64>,
}

/// One wrong PIN from the failure log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinFailureRecord {
    /// Its position in the log.
    pub seq: i64,
    /// The staff member whose PIN was tried.
    pub staff_id: String,
    /// When (device clock, ms since the Unix epoch).
    pub at_ms: i64,
}

fn put_lease(tx: &rusqlite::Transaction<'_>, l: &StoredLease) -> Result<()> {
    tx.execute(
        "INSERT OR REPLACE INTO device_lease (id, device_id, issued_at_ms, lock_after_secs, \
         wipe_after_secs, max_pin_failures, signature, received_at_ms) \
         VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            l.device_id,
            l.issued_at_ms,
            i64::try_from(l.lock_after_secs).unwrap_or(i64::MAX),
            i64::try_from(l.wipe_after_secs).unwrap_or(i64::MAX),
            i64::from(l.max_pin_failures),
            l.signature,
            l.received_at_ms,
        ],
    )?;
    Ok(())
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

    /// Records that the server quarantined this device at `at_ms` (or clears it with `None`).
    ///
    /// # Errors
    /// [`StoreError::NotFound`] before enrolment; a database failure.
    pub fn set_quarantined(&mut self, at_ms: Option<i64>) -> Result<()> {
        let n = self.conn.execute(
            "UPDATE device_identity SET quarantined_at = ?1 WHERE id = 1",
            [at_ms],
        )?;
        if n == 0 {
            return Err(StoreError::not_found("device identity (enrol first)"));
        }
        Ok(())
    }

    /// When the server quarantined this device, if it is quarantined.
    ///
    /// # Errors
    /// A database failure.
    pub fn quarantined_at(&self) -> Result<Option<i64>> {
        Ok(self
            .conn
            .query_row(
                "SELECT quarantined_at FROM device_identity WHERE id = 1",
                [],
                |r| r.get::<_, Option<i64>>(0),
            )
            .optional()?
            .flatten())
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

    /// Stores the lease the server signed (its signature already verified by the caller),
    /// replacing the previous one.
    ///
    /// # Errors
    /// A database failure.
    pub fn set_lease(&mut self, lease: &StoredLease) -> Result<()> {
        let tx = self.conn.transaction()?;
        put_lease(&tx, lease)?;
        tx.commit()?;
        Ok(())
    }

    /// The last lease stored, or `None` when the device never received one.
    ///
    /// # Errors
    /// A database failure.
    pub fn lease(&self) -> Result<Option<StoredLease>> {
        Ok(self
            .conn
            .query_row(
                "SELECT device_id, issued_at_ms, lock_after_secs, wipe_after_secs, \
                 max_pin_failures, signature, received_at_ms FROM device_lease WHERE id = 1",
                [],
                |r| {
                    Ok(StoredLease {
                        device_id: r.get(0)?,
                        issued_at_ms: r.get(1)?,
                        lock_after_secs: u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
                        wipe_after_secs: u64::try_from(r.get::<_, i64>(3)?).unwrap_or(0),
                        max_pin_failures: u32::try_from(r.get::<_, i64>(4)?).unwrap_or(1),
                        signature: r.get(5)?,
                        received_at_ms: r.get(6)?,
                    })
                },
            )
            .optional()?)
    }

    /// The PIN throttling state.
    ///
    /// # Errors
    /// A database failure.
    pub fn pin_state(&self) -> Result<PinState> {
        Ok(self
            .conn
            .query_row(
                "SELECT consecutive, last_failure_ms, locked_at_ms FROM pin_lock WHERE id = 1",
                [],
                |r| {
                    Ok(PinState {
                        consecutive: u32::try_from(r.get::<_, i64>(0)?).unwrap_or(u32::MAX),
                        last_failure_ms: r.get(1)?,
                        locked_at_ms: r.get(2)?,
                    })
                },
            )
            .optional()?
            .unwrap_or_default())
    }

    /// Records one wrong PIN in one transaction: a row in the failure log (kept until a sync
    /// reports it), the consecutive count plus one, and the lock-out once that count reaches
    /// `lock_at`. Returns the new state.
    ///
    /// Takes `&self` so a shared, read-only device can still count failures: a wrong PIN must
    /// never go unrecorded because the caller only held a reference.
    ///
    /// # Errors
    /// A database failure.
    pub fn record_pin_failure(&self, staff_id: &str, at_ms: i64, lock_at: u32) -> Result<PinState> {
        let tx = self.conn.unchecked_transaction()?;
        tx.execute(
            "INSERT INTO pin_failures (staff_id, at_ms) VALUES (?1, ?2)",
            params![staff_id, at_ms],
        )?;
        tx.execute(
            "INSERT INTO pin_lock (id, consecutive, last_failure_ms) VALUES (1, 1, ?1) \
             ON CONFLICT (id) DO UPDATE SET consecutive = consecutive + 1, last_failure_ms = ?1",
            [at_ms],
        )?;
        tx.execute(
            "UPDATE pin_lock SET locked_at_ms = ?1 \
             WHERE id = 1 AND locked_at_ms IS NULL AND consecutive >= ?2",
            params![at_ms, i64::from(lock_at)],
        )?;
        tx.commit()?;
        self.pin_state()
    }

    /// A correct PIN: the consecutive count starts again (the log and any lock-out stay).
    ///
    /// # Errors
    /// A database failure.
    pub fn reset_pin_failures(&self) -> Result<()> {
        self.conn
            .execute("UPDATE pin_lock SET consecutive = 0 WHERE id = 1", [])?;
        Ok(())
    }

    /// Wrong PINs not yet reported to the server, oldest first, at most `limit`.
    ///
    /// # Errors
    /// A database failure.
    pub fn unreported_pin_failures(&self, limit: usize) -> Result<Vec<PinFailureRecord>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT seq, staff_id, at_ms FROM pin_failures WHERE reported = 0 \
             ORDER BY seq LIMIT ?1",
        )?;
        let rows = stmt
            .query_map([i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
                Ok(PinFailureRecord {
                    seq: r.get(0)?,
                    staff_id: r.get(1)?,
                    at_ms: r.get(2)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Notes that a document changed on this device and the server has not acknowledged it.
    ///
    /// # Errors
    /// A database failure.
    pub fn mark_doc_dirty(&mut self, doc_key: &str) -> Result<()> {
        self.conn
            .execute("INSERT INTO dirty_docs (doc) VALUES (?1)", [doc_key])?;
        Ok(())
    }

    /// Documents changed here since the server last acknowledged them: how many, and the
    /// newest change's sequence number (to clear up to after a completed session).
    ///
    /// # Errors
    /// A database failure.
    pub fn dirty_docs(&self) -> Result<(u64, Option<i64>)> {
        Ok(self.conn.query_row(
            "SELECT count(DISTINCT doc), max(seq) FROM dirty_docs",
            [],
            |r| Ok((u64::try_from(r.get::<_, i64>(0)?).unwrap_or(0), r.get(1)?)),
        )?)
    }

    /// A completed sync session, in one transaction: stores its verified lease, marks the PIN
    /// failures up to `reported_up_to` as reported, clears the PIN lock-out and count, and
    /// clears the dirty-document marks up to `clean_up_to` (marks made during the session stay).
    ///
    /// # Errors
    /// A database failure.
    pub fn record_check_in(
        &mut self,
        lease: &StoredLease,
        reported_up_to: Option<i64>,
        clean_up_to: Option<i64>,
    ) -> Result<()> {
        let tx = self.conn.transaction()?;
        put_lease(&tx, lease)?;
        if let Some(seq) = reported_up_to {
            tx.execute(
                "UPDATE pin_failures SET reported = 1 WHERE reported = 0 AND seq <= ?1",
                [seq],
            )?;
        }
        tx.execute(
            "UPDATE pin_lock SET consecutive = 0, locked_at_ms = NULL WHERE id = 1",
            [],
        )?;
        // A completed session means the server accepted this device again.
        tx.execute(
            "UPDATE device_identity SET quarantined_at = NULL WHERE id = 1",
            [],
        )?;
        if let Some(seq) = clean_up_to {
            tx.execute("DELETE FROM dirty_docs WHERE seq <= ?1", [seq])?;
        }
        tx.commit()?;
        Ok(())
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
    fn a_check_in_clears_only_what_the_hello_reported() {
        let dir = tempfile::tempdir().unwrap();
        let keys = MemoryKeyStore::new();
        let mut store = Store::create(dir.path().join("device.db"), &keys).unwrap();
        assert_eq!(store.record_pin_failure("a", 1, 3).unwrap().consecutive, 1);
        store.record_pin_failure("b", 2, 3).unwrap();
        let locked = store.record_pin_failure("a", 3, 3).unwrap();
        assert_eq!((locked.consecutive, locked.locked_at_ms), (3, Some(3)));
        store.mark_doc_dirty("journal/x").unwrap();
        store.mark_doc_dirty("journal/x").unwrap();
        let reported = store.unreported_pin_failures(2).unwrap();
        assert_eq!(reported.len(), 2, "the limit holds");
        let (dirty, up_to) = store.dirty_docs().unwrap();
        assert_eq!(dirty, 1);
        // Made while the session ran: not covered by the check-in.
        store.record_pin_failure("c", 4, 3).unwrap();
        store.mark_doc_dirty("roster").unwrap();
        let lease = StoredLease {
            device_id: "d".into(),
            issued_at_ms: 10,
            lock_after_secs: 60,
            wipe_after_secs: 600,
            max_pin_failures: 3,
            signature: vec![1, 2, 3],
            received_at_ms: 11,
        };
        store
            .record_check_in(&lease, reported.last().map(|r| r.seq), up_to)
            .unwrap();
        assert_eq!(store.lease().unwrap(), Some(lease));
        assert_eq!(store.pin_state().unwrap().locked_at_ms, None);
        let left: Vec<String> = store
            .unreported_pin_failures(10)
            .unwrap()
            .into_iter()
            .map(|r| r.staff_id)
            .collect();
        assert_eq!(left, ["a", "c"]);
        assert_eq!(store.dirty_docs().unwrap().0, 1);
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
            .execute_batch(
                "DROP TABLE device_identity; DROP TABLE device_lease; DROP TABLE pin_failures; \
                 DROP TABLE pin_lock; DROP TABLE dirty_docs; ALTER TABLE entries DROP COLUMN band; \
                 ALTER TABLE entries DROP COLUMN coel; DROP INDEX entries_by_entry; \
                 DROP INDEX entries_observations; PRAGMA user_version = 1;",
            )
            .unwrap();
        store.close().unwrap();
        let mut store = Store::open(&path, &keys).unwrap();
        assert!(store.schema_version().unwrap() >= 3);
        assert_eq!(store.pin_state().unwrap(), PinState::default());
        store.set_device_identity(&identity()).unwrap();
        assert!(store.device_identity().unwrap().is_some());
    }
}

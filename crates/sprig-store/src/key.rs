//! The database key and where it lives: [`DbKey`], the [`KeyStore`] trait, the OS-backed
//! [`KeyringKeyStore`] and the in-memory [`MemoryKeyStore`] for tests.

use std::fmt;
use std::sync::Mutex;

use rand::RngCore;
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Result, StoreError};

/// Length of a database key in bytes (SQLCipher raw key: AES-256).
pub const KEY_LEN: usize = 32;

/// A 256-bit SQLCipher raw key. Zeroed on drop; never printed.
#[derive(Clone)]
pub struct DbKey(Zeroizing<[u8; KEY_LEN]>);

impl DbKey {
    /// A fresh key from the operating system's CSPRNG (via `rand`'s thread RNG, seeded from it).
    #[must_use]
    pub fn generate() -> Self {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        rand::rng().fill_bytes(key.as_mut());
        Self(key)
    }

    /// Wraps key bytes read from a keystore. The caller should zeroize its own copy.
    #[must_use]
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// Wraps key bytes from a slice; `None` unless it is exactly [`KEY_LEN`] bytes long.
    #[must_use]
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        let arr: [u8; KEY_LEN] = bytes.try_into().ok()?;
        Some(Self(Zeroizing::new(arr)))
    }

    /// The raw key bytes, for a [`KeyStore`] implementation to persist.
    #[must_use]
    pub fn expose_secret(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// `PRAGMA key = "x'<64 hex>'"`, built in a buffer allocated once at its final size (so no
    /// reallocation leaves a copy behind) and zeroed when dropped.
    pub(crate) fn key_pragma(&self) -> Zeroizing<String> {
        const PREFIX: &str = "PRAGMA key = \"x'";
        const SUFFIX: &str = "'\";";
        let mut hex_buf = Zeroizing::new([0u8; KEY_LEN * 2]);
        hex::encode_to_slice(self.0.as_ref(), hex_buf.as_mut())
            .expect("buffer is exactly twice the key length");
        let mut sql = Zeroizing::new(String::with_capacity(
            PREFIX.len() + KEY_LEN * 2 + SUFFIX.len(),
        ));
        sql.push_str(PREFIX);
        for &b in hex_buf.iter() {
            sql.push(char::from(b));
        }
        sql.push_str(SUFFIX);
        sql
    }
}

impl fmt::Debug for DbKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DbKey(<redacted>)")
    }
}

impl PartialEq for DbKey {
    fn eq(&self, other: &Self) -> bool {
        // Not constant-time; keys are only compared in tests.
        self.0[..] == other.0[..]
    }
}

impl Eq for DbKey {}

/// Where a store's database key is kept. One `KeyStore` value addresses one key.
pub trait KeyStore {
    /// The key, or `None` when there is none (never created, or destroyed).
    ///
    /// # Errors
    /// [`StoreError::Keystore`] when the keystore cannot be reached.
    fn load(&self) -> Result<Option<DbKey>>;

    /// Stores `key`, replacing any previous one.
    ///
    /// # Errors
    /// [`StoreError::Keystore`] when the keystore cannot be reached or refuses the write.
    fn store(&self, key: &DbKey) -> Result<()>;

    /// Destroys the key. Destroying an absent key succeeds (idempotent).
    ///
    /// # Errors
    /// [`StoreError::Keystore`] when the keystore cannot be reached.
    fn destroy(&self) -> Result<()>;
}

/// A key held in process memory: for unit tests and benchmarks only (it dies with the process).
#[derive(Default)]
pub struct MemoryKeyStore {
    key: Mutex<Option<DbKey>>,
}

impl MemoryKeyStore {
    /// An empty key store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Option<DbKey>> {
        // A panic while holding the lock cannot leave the Option half-written.
        self.key
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl fmt::Debug for MemoryKeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryKeyStore")
            .field("has_key", &self.slot().is_some())
            .finish()
    }
}

impl KeyStore for MemoryKeyStore {
    fn load(&self) -> Result<Option<DbKey>> {
        Ok(self.slot().clone())
    }

    fn store(&self, key: &DbKey) -> Result<()> {
        *self.slot() = Some(key.clone());
        Ok(())
    }

    fn destroy(&self) -> Result<()> {
        *self.slot() = None;
        Ok(())
    }
}

/// The key in the OS keystore through `keyring`: Secret Service with the kernel keyring as a
/// cache on Linux, Keychain on Apple platforms, Credential Manager on Windows.
///
/// Several stores on one machine share the OS keystore, so `account` must identify the store
/// (use its canonical data directory); `service` names the application.
pub struct KeyringKeyStore {
    service: String,
    account: String,
}

impl KeyringKeyStore {
    /// The entry `(service, account)`. Nothing is contacted until the first operation.
    #[must_use]
    pub fn new(service: &str, account: &str) -> Self {
        Self {
            service: service.to_owned(),
            account: account.to_owned(),
        }
    }

    fn entry(&self) -> Result<keyring::Entry> {
        #[cfg(target_os = "linux")]
        {
            // keyring 3.6's default builder for `linux-native-sync-persistent` builds a plain
            // Secret Service credential; build the persistent one (kernel keyring cache in front
            // of Secret Service) ourselves.
            let cred = keyring::keyutils_persistent::KeyutilsPersistentCredential::new_with_target(
                None,
                &self.service,
                &self.account,
            )
            .map_err(keystore_err)?;
            Ok(keyring::Entry::new_with_credential(Box::new(cred)))
        }
        #[cfg(not(target_os = "linux"))]
        {
            keyring::Entry::new(&self.service, &self.account).map_err(keystore_err)
        }
    }
}

impl fmt::Debug for KeyringKeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyringKeyStore")
            .field("service", &self.service)
            .field("account", &self.account)
            .finish()
    }
}

#[allow(clippy::needless_pass_by_value)] // used as `map_err(keystore_err)`
fn keystore_err(e: keyring::Error) -> StoreError {
    StoreError::Keystore {
        message: e.to_string(),
    }
}

impl KeyStore for KeyringKeyStore {
    fn load(&self) -> Result<Option<DbKey>> {
        match self.entry()?.get_secret() {
            Ok(mut bytes) => {
                let key = DbKey::from_slice(&bytes);
                bytes.zeroize();
                key.map(Some).ok_or_else(|| StoreError::Keystore {
                    message: "the keystore entry is not a 32-byte key".into(),
                })
            }
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(keystore_err(e)),
        }
    }

    fn store(&self, key: &DbKey) -> Result<()> {
        self.entry()?
            .set_secret(key.expose_secret())
            .map_err(keystore_err)
    }

    fn destroy(&self) -> Result<()> {
        match self.entry()?.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(keystore_err(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_key_bytes() {
        let key = DbKey::from_bytes([0xAB; KEY_LEN]);
        let shown = format!("{key:?}");
        assert_eq!(shown, "DbKey(<redacted>)");
        assert!(!shown.to_lowercase().contains("ab"));
        let ks = MemoryKeyStore::new();
        ks.store(&key).unwrap();
        let shown = format!("{ks:?}");
        assert!(!shown.to_lowercase().contains("abab"), "{shown}");
        assert!(!shown.contains("171"), "{shown}");
    }

    #[test]
    fn key_pragma_is_raw_hex_key() {
        let key = DbKey::from_bytes([0x01; KEY_LEN]);
        let sql = key.key_pragma();
        assert_eq!(
            sql.as_str(),
            format!("PRAGMA key = \"x'{}'\";", "01".repeat(KEY_LEN))
        );
        // Built at its final size: no reallocation left a stray copy behind.
        assert_eq!(sql.capacity(), sql.len());
    }

    #[test]
    fn generated_keys_differ() {
        assert_ne!(DbKey::generate(), DbKey::generate());
    }

    #[test]
    fn from_slice_requires_exact_length() {
        assert!(DbKey::from_slice(&[0; 31]).is_none());
        assert!(DbKey::from_slice(&[0; 33]).is_none());
        assert!(DbKey::from_slice(&[0; 32]).is_some());
    }

    #[test]
    fn memory_keystore_roundtrip_and_idempotent_destroy() {
        let ks = MemoryKeyStore::new();
        assert!(ks.load().unwrap().is_none());
        let key = DbKey::generate();
        ks.store(&key).unwrap();
        assert_eq!(ks.load().unwrap(), Some(key));
        ks.destroy().unwrap();
        ks.destroy().unwrap();
        assert!(ks.load().unwrap().is_none());
    }
}

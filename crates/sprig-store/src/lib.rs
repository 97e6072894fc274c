//! Sprig's encrypted device store: one SQLCipher [`Store`] whose random [`DbKey`] lives in the OS
//! keystore ([`KeyringKeyStore`]); it holds the journals, sync state, a query index and the media vault.
//!
//! ```no_run
//! use sprig_store::{KeyringKeyStore, Store};
//! # fn main() -> Result<(), sprig_store::StoreError> {
//! let path = "/var/lib/sprig/device.db";
//! let keys = KeyringKeyStore::new("sprig-device", path);
//! let mut store = match Store::open(path, &keys) {
//!     Err(e) if e.is_not_found() => Store::create(path, &keys)?,
//!     other => other?,
//! };
//! let child = sprig_core::ChildId::new_random();
//! let mut journal = sprig_core::Journal::new(child.clone());
//! store.save_journal(&mut journal)?;
//! let latest = store.timeline(&child, 50, None)?;
//! # drop(latest);
//! sprig_store::wipe(path, &keys)?;
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod docs;
mod error;
mod identity;
mod index;
mod key;
mod media;
mod migrate;
mod store;
mod wipe;

pub use docs::{DocId, DocStats, Received, StoredHeads};
pub use error::{Result, StoreError};
pub use identity::{DeviceIdentity, PinFailureRecord, PinState, StoredLease};
pub use index::{ChildCount, Cursor, ObservationStats};
pub use key::{DbKey, KEY_LEN, KeyStore, KeyringKeyStore, MemoryKeyStore};
pub use media::{MEDIA_CHUNK_SIZE, MediaInfo, MediaReader, MediaState, MediaWriter};
pub use store::{Compaction, Store};
pub use wipe::wipe;

#[cfg(test)]
mod tests;

//! Sprig's device API, shared by the Tauri shell and the headless `sprig-device` command: a
//! [`Device`] over its encrypted store — [`Device::enrol`], PIN [`Device::unlock`],
//! [`Device::observe`], [`Device::journal`], [`Device::status`] and [`Device::sync`].
//!
//! Recording works offline; only enrolment and sync touch the network (rustls with the ring
//! provider, the setting CA as the only trust anchor, mutual TLS after enrolment). Each network
//! call runs its own small tokio runtime, so callers stay synchronous.
//!
//! ```no_run
//! use sprig_device::{Device, Observation};
//! # fn main() -> Result<(), sprig_device::DeviceError> {
//! let mut device = Device::open("/var/lib/sprig")?;
//! let staff = "6f0b7c1e-3c55-4d8e-9b44-0a4c2a1d9f10".parse().unwrap();
//! let who = device.unlock(&staff, "2468")?;
//! let id = device.observe(&who, &Observation {
//!     children: vec!["0d6f8a9e-5a43-4f1b-8c2e-7e1c3b9a4d21".parse().unwrap()],
//!     text: "Built a tower of six bricks".into(),
//!     photos: vec!["tower.jpg".into()],
//!     ..Observation::default()
//! })?;
//! let report = device.sync()?;
//! println!("{id}: {} uploaded", report.media_uploaded);
//! # Ok(()) }
//! ```
//!
//! Lifecycle security lives beside them: the server-signed offline lease (lock past
//! `lock_after`, self-wipe past `wipe_after`), PIN back-off and lock-out, revoke, remote wipe and
//! retire ([`Device::wipe`], [`verify_lease`], [`Clock`]).
//!
//! Invariant: nothing about a child is written outside the encrypted store — photos are
//! processed in memory and only the result enters the vault; videos stream straight into it.
#![warn(missing_docs)]

mod device;
mod dir;
mod docset;
mod enrol;
mod error;
mod journal_ops;
mod lifecycle;
mod net;
mod preview;
mod queries;
mod sync;
mod watch;

pub use device::{
    Device, JournalItem, MediaItem, MediaStatus, Observation, Status, Unlocked, rfc3339,
};
pub use dir::{DB_FILE, DataDir, KEYSTORE_SERVICE, WIPED_MARKER, WIPING_MARKER};
pub use docset::SERVER_PEER;
pub use enrol::{Enrolled, Enrolment};
pub use error::{DeviceError, Result};
pub use journal_ops::Edit;
pub use lifecycle::{
    Clock, LockReason, PIN_BACKOFF_AFTER, PIN_BACKOFF_SECS, SystemClock, verify_lease,
};
pub use preview::{EnrolPreview, preview_enrolment};
pub use queries::{ChildCoverage, ChildSummary, Coverage, StaffCount, StaffTile, initials};
pub use sync::{MediaFailure, SyncReport};
pub use watch::Watch;

//! Lifecycle security on the device: the offline lease (lock past `lock_after`, self-wipe past
//! `wipe_after`, a clock set back counts as expired), PIN throttling and lock-out, and the full
//! wipe (keystore key first, then every file the device owns, leaving only a `wiped at` marker).
//!
//! Time comes from a [`Clock`]: the system clock in the app and the CLI; library tests inject
//! their own. Nothing reads the time any other way, and the shipped binary has no override.

use std::fmt;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use sprig_core::{Policies, Timestamp};
use sprig_proto::{Lease, PinFailure};
use sprig_store::{PinFailureRecord, StoredLease};

use crate::device::Device;
use crate::error::{DeviceError, Result};

/// From this many wrong PINs in a row on, each further attempt must wait [`PIN_BACKOFF_SECS`].
pub const PIN_BACKOFF_AFTER: u32 = 5;

/// The wait between attempts once [`PIN_BACKOFF_AFTER`] wrong PINs were entered in a row.
pub const PIN_BACKOFF_SECS: u64 = 60;

/// The most PIN failures one hello carries; more wait for the next sync.
const MAX_REPORTED_PIN_FAILURES: usize = 500;

/// Where the device reads the time.
pub trait Clock: fmt::Debug + Send + Sync {
    /// Now, in ms since the Unix epoch.
    fn now(&self) -> Timestamp;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        crate::device::now()
    }
}

/// Why the device refuses to unlock until it syncs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockReason {
    /// Too many wrong PINs in a row.
    PinFailures,
    /// No check-in for longer than the lease's `lock_after`.
    LeaseExpired,
    /// The device clock is earlier than the last check-in.
    ClockBehind,
}

impl LockReason {
    /// `pin_failures`, `lease_expired` or `clock_behind`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PinFailures => "pin_failures",
            Self::LeaseExpired => "lease_expired",
            Self::ClockBehind => "clock_behind",
        }
    }
}

/// The lease terms in force: the last verified lease, or (never synced since enrolment) the
/// default policies counted from the enrolment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Terms {
    pub check_in_ms: i64,
    pub lock_after_secs: u64,
    pub wipe_after_secs: u64,
    pub max_pin_failures: u32,
}

/// What the lease says now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LeaseCheck {
    Valid,
    /// Past `lock_after`: `offline_ms` since the check-in.
    Locked {
        offline_ms: i64,
    },
    /// The clock is earlier than the check-in.
    ClockBehind,
    /// Past `wipe_after`.
    WipeDue {
        offline_ms: i64,
        allowed_secs: u64,
    },
}

impl Terms {
    pub(crate) fn check(&self, now: Timestamp) -> LeaseCheck {
        let offline_ms = now.0.saturating_sub(self.check_in_ms);
        let ms = |secs: u64| i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        if offline_ms < 0 {
            LeaseCheck::ClockBehind
        } else if offline_ms >= ms(self.wipe_after_secs) {
            LeaseCheck::WipeDue {
                offline_ms,
                allowed_secs: self.wipe_after_secs,
            }
        } else if offline_ms >= ms(self.lock_after_secs) {
            LeaseCheck::Locked { offline_ms }
        } else {
            LeaseCheck::Valid
        }
    }
}

/// A duration in words for messages: the two largest units, e.g. `13h 5m`, `2d 3h`, `45s`.
#[must_use]
pub(crate) fn human(secs: u64) -> String {
    const UNITS: [(&str, u64); 4] = [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)];
    let first = UNITS
        .iter()
        .position(|(_, size)| secs >= *size)
        .unwrap_or(3);
    let (name, size) = UNITS[first];
    let mut out = format!("{}{name}", secs / size);
    if let Some((next, next_size)) = UNITS.get(first + 1) {
        let n = secs % size / next_size;
        if n > 0 {
            out.push_str(&format!(" {n}{next}"));
        }
    }
    out
}

fn ms_to_secs(ms: i64) -> u64 {
    u64::try_from(ms.max(0) / 1000).unwrap_or(0)
}

/// Checks a lease the server sent: it must be for `device_id` and carry a valid ECDSA P-256 /
/// SHA-256 signature (ASN.1 DER) by the key of the setting CA certificate `ca_cert_pem` (the
/// one pinned at enrolment) over [`Lease::signed_bytes`].
///
/// # Errors
/// [`DeviceError::LeaseRefused`] saying which check failed.
pub fn verify_lease(ca_cert_pem: &str, device_id: &str, lease: &Lease) -> Result<()> {
    if lease.device_id != device_id {
        return Err(DeviceError::LeaseRefused(format!(
            "it is for device {}, not this one",
            lease.device_id
        )));
    }
    let der = CertificateDer::from_pem_slice(ca_cert_pem.as_bytes())
        .map_err(|_| DeviceError::LeaseRefused("the stored CA certificate is damaged".into()))?;
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).map_err(|_| {
        DeviceError::LeaseRefused("the stored CA certificate cannot be read".into())
    })?;
    let public_key = cert.public_key().subject_public_key.data.as_ref();
    let provider = rustls::crypto::ring::default_provider();
    let algs = provider
        .signature_verification_algorithms
        .mapping
        .iter()
        .find(|(scheme, _)| *scheme == rustls::SignatureScheme::ECDSA_NISTP256_SHA256)
        .map(|(_, algs)| *algs)
        .unwrap_or_default();
    let signed = lease.signed_bytes();
    if algs.iter().any(|alg| {
        alg.verify_signature(public_key, &signed, &lease.signature)
            .is_ok()
    }) {
        Ok(())
    } else {
        Err(DeviceError::LeaseRefused(
            "its signature does not verify with the setting's certificate authority".into(),
        ))
    }
}

/// What the next hello reports and what a completed session then clears.
#[derive(Debug, Default)]
pub(crate) struct CheckInMarks {
    pub pin_failures: Vec<PinFailure>,
    pub reported_up_to: Option<i64>,
    pub docs_dirty: u64,
    pub clean_up_to: Option<i64>,
    pub locked: bool,
}

impl Device {
    /// The device's clock.
    pub(crate) fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// The lease terms in force, or `None` for a device that is not enrolled (it has no
    /// setting whose policy could apply).
    pub(crate) fn terms(&self) -> Result<Option<Terms>> {
        if let Some(l) = self.store.lease()? {
            return Ok(Some(Terms {
                check_in_ms: l.received_at_ms,
                lock_after_secs: l.lock_after_secs,
                wipe_after_secs: l.wipe_after_secs,
                max_pin_failures: l.max_pin_failures,
            }));
        }
        let Some(identity) = self.store.device_identity()? else {
            return Ok(None);
        };
        let d = Policies::default();
        Ok(Some(Terms {
            check_in_ms: identity.enrolled_at,
            lock_after_secs: d.lock_after_secs,
            wipe_after_secs: d.wipe_after_secs,
            max_pin_failures: d.max_pin_failures,
        }))
    }

    /// Wrong PINs in a row that lock the device: the lease's limit, else the setting's policy.
    fn max_pin_failures(&self) -> Result<u32> {
        Ok(match self.store.lease()? {
            Some(l) => l.max_pin_failures,
            None => self.policies()?.max_pin_failures,
        }
        .max(1))
    }

    /// Wrong PINs still allowed in a row before the tablet locks until it syncs (0 when it
    /// is locked).
    ///
    /// # Errors
    /// Store failures.
    pub fn pin_attempts_left(&self) -> Result<Option<u32>> {
        let pin = self.store.pin_state()?;
        if pin.locked_at_ms.is_some() {
            return Ok(Some(0));
        }
        Ok(Some(
            self.max_pin_failures()?.saturating_sub(pin.consecutive),
        ))
    }

    /// Why the device refuses to unlock until it syncs, if it does.
    ///
    /// # Errors
    /// Store failures.
    pub fn lock_reason(&self) -> Result<Option<LockReason>> {
        if self.store.pin_state()?.locked_at_ms.is_some() {
            return Ok(Some(LockReason::PinFailures));
        }
        Ok(match self.terms()?.map(|t| t.check(self.now())) {
            Some(LeaseCheck::Locked { .. } | LeaseCheck::WipeDue { .. }) => {
                Some(LockReason::LeaseExpired)
            }
            Some(LeaseCheck::ClockBehind) => Some(LockReason::ClockBehind),
            Some(LeaseCheck::Valid) | None => None,
        })
    }

    /// At open: past `wipe_after` the device wipes itself before anything else happens.
    pub(crate) fn enforce_wipe_after(&mut self) -> Result<()> {
        if let Some(LeaseCheck::WipeDue {
            offline_ms,
            allowed_secs,
        }) = self.terms()?.map(|t| t.check(self.now()))
        {
            tracing::info!(offline_ms, allowed_secs, "lease past wipe_after: wiping");
            self.wipe()?;
            return Err(DeviceError::SelfWiped {
                offline: human(ms_to_secs(offline_ms)),
                allowed: human(allowed_secs),
            });
        }
        Ok(())
    }

    /// Refuses an unlock the lease or the PIN lock-out forbid, and a PIN attempt during the
    /// back-off. Checked before the PIN is looked at, so refused attempts reveal nothing.
    pub(crate) fn check_may_unlock(&self) -> Result<()> {
        self.check_live()?;
        match self.terms()?.map(|t| t.check(self.now())) {
            Some(LeaseCheck::Locked { offline_ms } | LeaseCheck::WipeDue { offline_ms, .. }) => {
                return Err(DeviceError::LeaseExpired {
                    offline: human(ms_to_secs(offline_ms)),
                });
            }
            Some(LeaseCheck::ClockBehind) => return Err(DeviceError::ClockBehind),
            Some(LeaseCheck::Valid) | None => {}
        }
        let pin = self.store.pin_state()?;
        if pin.locked_at_ms.is_some() {
            return Err(DeviceError::PinLocked {
                failures: pin.consecutive,
            });
        }
        if pin.consecutive >= PIN_BACKOFF_AFTER
            && let Some(last) = pin.last_failure_ms
        {
            let window = i64::try_from(PIN_BACKOFF_SECS * 1000).unwrap_or(i64::MAX);
            let elapsed = self.now().0.saturating_sub(last);
            if elapsed < window {
                // A clock set back (elapsed < 0) waits the whole window, never longer.
                let left_ms = (window - elapsed.max(0)).min(window);
                let wait_secs = u64::try_from(left_ms.saturating_add(999) / 1000).unwrap_or(1);
                return Err(DeviceError::PinThrottled { wait_secs });
            }
        }
        Ok(())
    }

    /// Counts a wrong PIN for `staff`; the error to show (wrong PIN, or the lock-out it caused).
    pub(crate) fn wrong_pin(&self, staff: &str) -> DeviceError {
        let now = self.now().0;
        let outcome = self
            .max_pin_failures()
            .and_then(|max| Ok(self.store.record_pin_failure(staff, now, max)?));
        match outcome {
            Ok(state) if state.locked_at_ms.is_some() => DeviceError::PinLocked {
                failures: state.consecutive,
            },
            Ok(_) => DeviceError::WrongPin,
            // Never let a failure to count a wrong PIN turn into an unlock.
            Err(e) => e,
        }
    }

    /// A correct PIN: the consecutive count starts again.
    pub(crate) fn right_pin(&self) -> Result<()> {
        if self.store.pin_state()?.consecutive > 0 {
            self.store.reset_pin_failures()?;
        }
        Ok(())
    }

    /// What the next hello reports: unreported PIN failures, dirty documents, locked.
    pub(crate) fn check_in_marks(&self) -> Result<CheckInMarks> {
        let failures: Vec<PinFailureRecord> = self
            .store
            .unreported_pin_failures(MAX_REPORTED_PIN_FAILURES)?;
        let (docs_dirty, clean_up_to) = self.store.dirty_docs()?;
        Ok(CheckInMarks {
            reported_up_to: failures.last().map(|f| f.seq),
            pin_failures: failures
                .into_iter()
                .map(|f| PinFailure {
                    staff_id: f.staff_id,
                    at_ms: f.at_ms,
                })
                .collect(),
            docs_dirty,
            clean_up_to,
            locked: self.lock_reason()?.is_some(),
        })
    }

    fn verified_lease(&self, lease: &Lease) -> Result<StoredLease> {
        let identity = self
            .store
            .device_identity()?
            .ok_or(DeviceError::NotEnrolled)?;
        verify_lease(&identity.ca_cert_pem, &identity.device_id, lease)?;
        if lease.lock_after_secs == 0 || lease.wipe_after_secs == 0 {
            return Err(DeviceError::LeaseRefused(
                "it allows no time offline".into(),
            ));
        }
        Ok(StoredLease {
            device_id: lease.device_id.clone(),
            issued_at_ms: lease.issued_at_ms,
            lock_after_secs: lease.lock_after_secs,
            wipe_after_secs: lease.wipe_after_secs,
            max_pin_failures: lease.max_pin_failures.max(1),
            signature: lease.signature.clone(),
            received_at_ms: self.now().0,
        })
    }

    /// Verifies a lease the server sent (this device's id, signed by the pinned setting CA)
    /// and stores it with the device clock as the check-in. A refused lease stores nothing.
    ///
    /// # Errors
    /// [`DeviceError::LeaseRefused`], [`DeviceError::NotEnrolled`], store failures.
    pub fn install_lease(&mut self, lease: &Lease) -> Result<()> {
        let stored = self.verified_lease(lease)?;
        self.store.set_lease(&stored)?;
        Ok(())
    }

    /// A completed session: the verified lease, PIN failures reported, lock cleared.
    pub(crate) fn check_in(&mut self, lease: &Lease, marks: &CheckInMarks) -> Result<()> {
        let stored = self.verified_lease(lease)?;
        self.store
            .record_check_in(&stored, marks.reported_up_to, marks.clean_up_to)?;
        Ok(())
    }

    /// Refuses to work on a store this process has already wiped.
    pub(crate) fn check_live(&self) -> Result<()> {
        match &self.wiped {
            Some(at) => Err(DeviceError::Wiped { at: at.clone() }),
            None => Ok(()),
        }
    }

    /// Wipes this device: destroys its key in the OS keystore first (crypto-shredding: the
    /// database is noise from then on), then deletes the database and every other file the
    /// device owns in its directory, leaving only the `wiped at <time>` marker. The `Device`
    /// refuses everything afterwards. Idempotent.
    ///
    /// # Errors
    /// [`DeviceError::Store`] when the keystore could not destroy the key (the files are
    /// deleted all the same); [`DeviceError::ReadFile`] when a file could not be deleted.
    pub fn wipe(&mut self) -> Result<()> {
        let at = crate::device::rfc3339(self.now());
        if self.wiped.is_none() {
            // Durably marked first: if the process dies after the key is gone, the next
            // open finishes the wipe instead of reporting a missing key.
            self.dir.begin_wipe(&at)?;
            let keys = self.dir.keystore();
            let shredded = self.store.wipe_in_place(&keys);
            self.wiped = Some(at.clone());
            self.dir.finish_wipe(&at)?;
            shredded?;
        } else {
            self.dir.finish_wipe(&at)?;
        }
        Ok(())
    }

    /// When this device was wiped, if it was (in this process).
    #[must_use]
    pub fn wiped_at(&self) -> Option<&str> {
        self.wiped.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms() -> Terms {
        Terms {
            check_in_ms: 1_000_000,
            lock_after_secs: 10,
            wipe_after_secs: 100,
            max_pin_failures: 3,
        }
    }

    #[test]
    fn the_lease_locks_then_wipes_and_a_clock_set_back_counts_as_expired() {
        let t = terms();
        assert_eq!(t.check(Timestamp(1_000_000)), LeaseCheck::Valid);
        assert_eq!(t.check(Timestamp(1_009_999)), LeaseCheck::Valid);
        assert_eq!(
            t.check(Timestamp(1_010_000)),
            LeaseCheck::Locked { offline_ms: 10_000 }
        );
        assert_eq!(
            t.check(Timestamp(1_100_000)),
            LeaseCheck::WipeDue {
                offline_ms: 100_000,
                allowed_secs: 100
            }
        );
        assert_eq!(t.check(Timestamp(999_999)), LeaseCheck::ClockBehind);
    }

    #[test]
    fn durations_read_as_two_units() {
        assert_eq!(human(0), "0s");
        assert_eq!(human(45), "45s");
        assert_eq!(human(3 * 3600 + 5 * 60 + 7), "3h 5m");
        assert_eq!(human(13 * 3600), "13h");
        assert_eq!(human(90 * 86_400 + 60), "90d");
        assert_eq!(human(86_400 + 3600), "1d 1h");
    }
}

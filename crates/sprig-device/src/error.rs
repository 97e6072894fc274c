//! The device's error type.

use std::path::PathBuf;

/// Everything the device API can refuse or fail at. Messages speak to the key worker or the
/// manager holding the tablet and say what to do; [`DeviceError::code`] is a stable
/// machine-readable code for the UI; [`DeviceError::is_retryable`] tells a passing condition
/// (network down, storage busy) from a permanent one.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// The data directory holds no device store yet.
    #[error("this device has no Sprig data in {path}: enrol it first")]
    NotSetUp {
        /// The data directory.
        path: PathBuf,
    },

    /// The device has not been enrolled with a server, so it cannot sync.
    #[error("this device is not enrolled yet: enrol it with a code from a manager first")]
    NotEnrolled,

    /// `enrol` was asked on a device that already holds an identity.
    #[error("this device is already enrolled as {device_id}; wipe it before enrolling it again")]
    AlreadyEnrolled {
        /// The existing device id.
        device_id: String,
    },

    /// The device holds no roster yet (it has never synced), so nobody can unlock it.
    #[error("this device has no staff list yet: sync it with the server first")]
    NoRoster,

    /// The PIN does not match.
    #[error("wrong PIN; try again")]
    WrongPin,

    /// The member of staff is not on this device's roster.
    #[error("{0} is not a member of staff on this device; check the staff id or sync first")]
    UnknownStaff(String),

    /// The staff member has no PIN set.
    #[error("no PIN has been set for this member of staff; ask a manager to set one")]
    NoPin,

    /// The staff account has been deactivated.
    #[error("this staff account has been deactivated; ask a manager")]
    InactiveStaff,

    /// The child is not on this device's roster.
    #[error("child {0} is not on this device's roster; check the id or sync first")]
    UnknownChild(String),

    /// A value given on the command line or by the UI is not valid.
    #[error("{0}")]
    InvalidInput(String),

    /// A domain rule refused the action (consent, empty entry, too long…).
    #[error(transparent)]
    Rule(#[from] sprig_core::RuleError),

    /// A photo or video was refused.
    #[error("{file}: {source}")]
    Media {
        /// The file concerned.
        file: String,
        /// Why it was refused.
        #[source]
        source: sprig_media::MediaError,
    },

    /// A photo or video file could not be read.
    #[error("cannot read {path}: {source}")]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// The encrypted store failed.
    #[error(transparent)]
    Store(#[from] sprig_store::StoreError),

    /// The server's TLS certificate does not chain to the CA whose fingerprint was given:
    /// the device may be talking to the wrong server, or the fingerprint was mistyped.
    #[error(
        "the server is not the one the enrolment code belongs to (its certificate authority does \
         not match fingerprint {expected}); check the server address and the fingerprint, nothing was stored"
    )]
    CaMismatch {
        /// The fingerprint that was expected.
        expected: String,
    },

    /// The server could not be reached or the connection broke.
    #[error("cannot reach the server at {url}: {message}; check the network and try again")]
    Network {
        /// The server URL.
        url: String,
        /// What went wrong.
        message: String,
    },

    /// The server refused this device's certificate in the TLS handshake (revoked, wiped or
    /// issued by another setting).
    #[error(
        "the server refused this device's certificate; the device may have been revoked — ask a manager"
    )]
    CertificateRefused,

    /// The server answered with an error (`{code, message}` from the HTTP contract).
    #[error("the server refused: {message} ({code})")]
    Server {
        /// The stable error code, e.g. `device_revoked`, `enrol_code_expired`.
        code: String,
        /// The server's sentence saying what to do.
        message: String,
        /// The HTTP status.
        status: u16,
    },

    /// The server sent something that does not follow the protocol.
    #[error("the server sent an unexpected answer: {0}; update the app or the server")]
    Protocol(String),

    /// The sync session failed.
    #[error("sync failed: {0}")]
    Sync(#[from] sprig_proto::ProtoError),

    /// The server has revoked this device.
    #[error("this device has been revoked by a manager ({reason}); it can no longer sync")]
    Revoked {
        /// The reason given.
        reason: String,
    },

    /// Too many wrong PINs in a row: the next attempt must wait.
    #[error("too many wrong PINs; try again in {wait_secs} s")]
    PinThrottled {
        /// Seconds until the next attempt is accepted.
        wait_secs: u64,
    },

    /// The device locked itself after the setting's limit of wrong PINs; only a sync unlocks it.
    #[error("locked after {failures} wrong PINs; sync to unlock")]
    PinLocked {
        /// The wrong PINs in a row that locked it.
        failures: u32,
    },

    /// The device has not checked in with the server for longer than its lease allows.
    #[error(
        "this tablet has not synced for {offline}; connect to the setting's network and sync before unlocking"
    )]
    LeaseExpired {
        /// How long since the last check-in, e.g. `13h 5m`.
        offline: String,
    },

    /// The device clock is earlier than the last check-in, so the lease cannot be trusted.
    #[error(
        "this tablet's clock is earlier than its last sync; set the date and time, connect to the setting's network and sync before unlocking"
    )]
    ClockBehind,

    /// The device had not checked in for longer than the setting's `wipe_after` and has wiped
    /// itself (everything on it is gone).
    #[error(
        "this tablet had not synced for {offline} (the setting allows {allowed}) and has wiped itself; enrol it again with a fresh code from a manager"
    )]
    SelfWiped {
        /// How long since the last check-in.
        offline: String,
        /// The setting's `wipe_after`.
        allowed: String,
    },

    /// The device was wiped (by a manager's wipe or retire, or by its lease); its data is gone.
    #[error("this tablet was wiped ({at}); enrol it again with a fresh code from a manager")]
    Wiped {
        /// When, as the marker file says it (`wiped at <time>`).
        at: String,
    },

    /// The server sent a lease that does not verify: wrong device or bad signature.
    #[error(
        "the server sent a lease that is not valid ({0}); nothing was stored; ask a manager to check the server"
    )]
    LeaseRefused(String),

    /// The manager asked to retire this device, and the final sync did not complete: nothing
    /// was wiped.
    #[error("retire: final sync failed: {why}; this tablet was not wiped")]
    RetireFailed {
        /// What failed.
        why: String,
    },

    /// The server quarantined this tablet: it sent a change it may not make. It cannot sync,
    /// nor record anything new, until a manager reviews and releases it.
    #[error("{message}")]
    Quarantined {
        /// The server's sentence saying what happened and what to do.
        message: String,
    },

    /// The server refuses to sync from this network (the setting's allow-list).
    #[error(
        "sync refused: this network ({address}) is not on the setting's allowed list; ask the manager"
    )]
    NetworkNotAllowed {
        /// The address the server saw.
        address: String,
    },
}

impl DeviceError {
    /// A stable machine-readable code for the UI (`{code, message}`).
    #[must_use]
    pub fn code(&self) -> String {
        match self {
            Self::NotSetUp { .. } => "not_set_up".into(),
            Self::NotEnrolled => "not_enrolled".into(),
            Self::AlreadyEnrolled { .. } => "already_enrolled".into(),
            Self::NoRoster => "no_roster".into(),
            Self::WrongPin => "wrong_pin".into(),
            Self::UnknownStaff(_) => "unknown_staff".into(),
            Self::NoPin => "no_pin".into(),
            Self::InactiveStaff => "inactive_staff".into(),
            Self::UnknownChild(_) => "unknown_child".into(),
            Self::InvalidInput(_) => "invalid_input".into(),
            Self::Rule(sprig_core::RuleError::ConsentMissing { .. }) => "consent_missing".into(),
            Self::Rule(_) => "rule".into(),
            Self::Media { .. } => "media_refused".into(),
            Self::ReadFile { .. } => "read_file".into(),
            Self::Store(_) => "store".into(),
            Self::CaMismatch { .. } => "ca_mismatch".into(),
            Self::Network { .. } => "network".into(),
            Self::CertificateRefused => "certificate_refused".into(),
            Self::Server { code, .. } => code.clone(),
            Self::Protocol(_) => "protocol".into(),
            // The server ends a session over the device's own standing (quarantined, revoked)
            // with an error frame: its code is what the app must act on.
            Self::Sync(sprig_proto::ProtoError::Peer { code, .. })
                if code.starts_with("device_") =>
            {
                code.clone()
            }
            Self::Sync(e) => format!("sync_{}", e.code()),
            Self::Revoked { .. } => "device_revoked".into(),
            Self::PinThrottled { .. } => "pin_throttled".into(),
            Self::PinLocked { .. } => "pin_locked".into(),
            Self::LeaseExpired { .. } => "lease_expired".into(),
            Self::ClockBehind => "clock_behind".into(),
            Self::SelfWiped { .. } => "self_wiped".into(),
            Self::Wiped { .. } => "wiped".into(),
            Self::LeaseRefused(_) => "lease_refused".into(),
            Self::RetireFailed { .. } => "retire_failed".into(),
            Self::NetworkNotAllowed { .. } => "network_not_allowed".into(),
            Self::Quarantined { .. } => "device_quarantined".into(),
        }
    }

    /// True when trying the same thing again later may succeed.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Network { .. } | Self::PinThrottled { .. } | Self::RetireFailed { .. } => true,
            Self::Store(e) => e.is_retryable(),
            Self::Sync(e) => !e.is_permanent(),
            Self::Server { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }
}

/// The device API's `Result`.
pub type Result<T, E = DeviceError> = std::result::Result<T, E>;

//! Errors as the UI receives them: `{code, message}`, never a string to match on. The code is
//! `sprig-device`'s stable code (or one of the shell's own below); the message is the device's
//! sentence, which says what to do. The UI shows its own translated sentence per code and
//! falls back to this message.

use serde::Serialize;
use sprig_device::DeviceError;
use ts_rs::TS;

/// An error for the UI.
#[derive(Debug, Clone, Serialize, TS, PartialEq, Eq, thiserror::Error)]
#[error("{message} ({code})")]
pub struct AppError {
    /// Stable code, e.g. `wrong_pin`, `consent_missing`, `device_revoked`, `auto_locked`.
    pub code: String,
    /// A sentence a key worker can act on.
    pub message: String,
    /// Seconds to wait (PIN back-off), when the code is `pin_throttled`.
    pub wait_secs: Option<u32>,
    /// The child concerned (consent refusal), when known.
    pub child: Option<String>,
}

impl AppError {
    /// An error of the shell itself.
    pub(crate) fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.to_owned(),
            message: message.into(),
            wait_secs: None,
            child: None,
        }
    }

    /// Nobody is unlocked (or the inactivity lock fired).
    pub(crate) fn locked() -> Self {
        Self::new(
            "auto_locked",
            "the tablet locked itself; unlock it with your PIN",
        )
    }
}

impl From<DeviceError> for AppError {
    fn from(e: DeviceError) -> Self {
        let mut out = Self::new(&e.code(), e.to_string());
        match &e {
            DeviceError::PinThrottled { wait_secs } => {
                out.wait_secs = Some(u32::try_from(*wait_secs).unwrap_or(u32::MAX));
            }
            DeviceError::Rule(sprig_core::RuleError::ConsentMissing { child, .. }) => {
                out.child = Some(child.to_string());
            }
            // A media error names a file path or "photo 1": keep the reason only.
            DeviceError::Media { source, .. } => out.message = source.to_string(),
            _ => {}
        }
        out
    }
}

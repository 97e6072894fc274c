//! The shell's state: the open device, who is unlocked (and when they last did something),
//! photos and videos held in memory until saved, and the background sync's progress. It holds
//! no domain logic: every decision is `sprig-device`'s; this only keeps what the window needs
//! between commands and turns device errors into the full-screen states.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use sprig_device::{Clock, Device, DeviceError, LockReason, SystemClock, Unlocked};
use zeroize::Zeroizing;

use crate::dto::{AppStatus, Blocked, Phase, SessionInfo, SyncStatus, UiPolicies};
use crate::error::AppError;

/// A member of staff's open session.
pub(crate) struct Session {
    pub who: Unlocked,
    pub info: SessionInfo,
    pub last_activity: Instant,
}

/// A photo or video held in memory (never on disk) until its observation is saved.
pub(crate) struct Staged {
    pub kind: String,
    pub bytes: Zeroizing<Vec<u8>>,
}

/// Everything the commands share.
pub struct Shell {
    pub(crate) data_dir: PathBuf,
    pub(crate) clock: Arc<dyn Clock>,
    device: Mutex<Option<Device>>,
    session: Mutex<Option<Session>>,
    pub(crate) staged: Mutex<HashMap<String, Staged>>,
    pub(crate) sync: Mutex<SyncStatus>,
    pub(crate) syncing: AtomicBool,
    blocked: Mutex<Option<Blocked>>,
    /// The `sprig://enrol` link the app was started with.
    pub(crate) enrol_link: Mutex<Option<crate::dto::EnrolLink>>,
    /// Tests shorten the inactivity lock; 0 means "the setting's policy".
    inactivity_override_ms: AtomicU64,
}

impl std::fmt::Debug for Shell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shell")
            .field("data_dir", &self.data_dir)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic in one command must not lock every later one out.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shell {
    /// The shell over the data directory `dir`.
    #[must_use]
    pub fn new(dir: impl AsRef<Path>) -> Self {
        Self::with_clock(dir, Arc::new(SystemClock))
    }

    /// [`Shell::new`] with the device's time from `clock` (tests).
    #[must_use]
    pub fn with_clock(dir: impl AsRef<Path>, clock: Arc<dyn Clock>) -> Self {
        Self {
            data_dir: dir.as_ref().to_owned(),
            clock,
            device: Mutex::new(None),
            session: Mutex::new(None),
            staged: Mutex::new(HashMap::new()),
            sync: Mutex::new(SyncStatus::default()),
            syncing: AtomicBool::new(false),
            blocked: Mutex::new(None),
            inactivity_override_ms: AtomicU64::new(0),
            enrol_link: Mutex::new(None),
        }
    }

    /// Keeps a `sprig://enrol?...` link (from the command line: the OS opens the app with it).
    pub fn set_enrol_link(&self, link: &str) {
        *lock(&self.enrol_link) = crate::dto::parse_enrol_link(link);
    }

    /// Overrides the inactivity lock (tests of the auto-lock).
    pub fn set_inactivity_for_tests(&self, d: Duration) {
        self.inactivity_override_ms.store(
            u64::try_from(d.as_millis()).unwrap_or(u64::MAX),
            Ordering::SeqCst,
        );
    }

    /// Runs `f` on the open device, opening it first. A device error that means the tablet can
    /// no longer be used (revoked, wiped, quarantined, lease expired) sets the full-screen state.
    pub(crate) fn with_device<T>(
        &self,
        f: impl FnOnce(&mut Device) -> Result<T, DeviceError>,
    ) -> Result<T, AppError> {
        let mut guard = lock(&self.device);
        if guard.is_none() {
            match Device::open_with_clock(&self.data_dir, self.clock.clone()) {
                Ok(d) => *guard = Some(d),
                Err(e) => return Err(self.note(e)),
            }
        }
        let device = guard.as_mut().expect("opened above");
        let out = f(device);
        if device.wiped_at().is_some() {
            *guard = None;
        }
        out.map_err(|e| self.note(e))
    }

    /// Closes the device (after a wipe, or so a sync's own connection sees a fresh one).
    pub(crate) fn close_device(&self) {
        *lock(&self.device) = None;
    }

    /// Records what a device error means for the whole app and converts it.
    pub(crate) fn note(&self, e: DeviceError) -> AppError {
        if let Some(b) = blocked_for(&e) {
            if b.kind == "wiped" {
                self.forget_session();
            }
            *lock(&self.blocked) = Some(b);
        }
        e.into()
    }

    /// Sets or clears the full-screen state.
    pub(crate) fn set_blocked(&self, b: Option<Blocked>) {
        *lock(&self.blocked) = b;
    }

    pub(crate) fn blocked(&self) -> Option<Blocked> {
        lock(&self.blocked).clone()
    }

    /// Ends the session and drops every staged photo (their bytes are zeroed).
    pub(crate) fn forget_session(&self) {
        *lock(&self.session) = None;
        lock(&self.staged).clear();
    }

    pub(crate) fn start_session(&self, who: Unlocked, info: SessionInfo) {
        *lock(&self.session) = Some(Session {
            who,
            info,
            last_activity: Instant::now(),
        });
    }

    fn inactivity(&self) -> Duration {
        match self.inactivity_override_ms.load(Ordering::SeqCst) {
            0 => {
                let secs = lock(&self.device)
                    .as_ref()
                    .and_then(|d| d.policies().ok())
                    .map_or(120, |p| p.inactivity_lock_secs);
                Duration::from_secs(secs)
            }
            ms => Duration::from_millis(ms),
        }
    }

    /// The unlocked member of staff, if the session is still live; any command a person makes
    /// counts as activity. Past the inactivity limit the session ends here, whatever the
    /// window shows (the auto-lock is enforced in Rust, not only on screen).
    pub(crate) fn who(&self) -> Result<Unlocked, AppError> {
        let limit = self.inactivity();
        let mut guard = lock(&self.session);
        match guard.as_mut() {
            Some(s) if s.last_activity.elapsed() < limit => {
                s.last_activity = Instant::now();
                Ok(s.who.clone())
            }
            Some(_) => {
                *guard = None;
                drop(guard);
                lock(&self.staged).clear();
                Err(AppError::locked())
            }
            None => Err(AppError::locked()),
        }
    }

    fn session_info(&self) -> Option<SessionInfo> {
        let limit = self.inactivity();
        let guard = lock(&self.session);
        guard
            .as_ref()
            .filter(|s| s.last_activity.elapsed() < limit)
            .map(|s| s.info.clone())
    }

    /// The app's state for the UI.
    pub(crate) fn status(&self) -> AppStatus {
        let mut out = AppStatus {
            phase: Phase::Enrol,
            blocked: None,
            setting_name: None,
            device_id: None,
            session: None,
            policies: UiPolicies {
                inactivity_lock_secs: 120,
                not_observed_days: 14,
            },
            locked_until_sync: None,
            pin_attempts_left: None,
            enrol_link: lock(&self.enrol_link).clone(),
        };
        if let Some(b) = self.blocked() {
            out.phase = Phase::Blocked;
            out.blocked = Some(b);
            return out;
        }
        let read = self.with_device(|d| {
            let status = d.status()?;
            let policies = d.policies()?;
            Ok((status, policies, d.setting_name()?, d.pin_attempts_left()?))
        });
        let (status, policies, name, attempts) = match read {
            Ok(x) => x,
            Err(e) => {
                if let Some(b) = self.blocked() {
                    out.phase = Phase::Blocked;
                    out.blocked = Some(b);
                } else if e.code != "not_set_up" {
                    tracing::warn!(code = %e.code, "reading the device status");
                }
                return out;
            }
        };
        out.setting_name = name;
        out.pin_attempts_left = attempts;
        out.device_id = status.device_id.clone();
        out.policies = UiPolicies {
            inactivity_lock_secs: u32::try_from(policies.inactivity_lock_secs).unwrap_or(120),
            not_observed_days: policies.not_observed_days,
        };
        if !status.enrolled {
            return out;
        }
        match status.locked {
            Some(LockReason::LeaseExpired | LockReason::ClockBehind) => {
                self.forget_session();
                out.phase = Phase::Blocked;
                out.blocked = Some(Blocked {
                    kind: "lease_expired".into(),
                    detail: String::new(),
                    can_sync: true,
                    can_enrol: false,
                });
                return out;
            }
            Some(LockReason::PinFailures) => {
                out.locked_until_sync = Some(LockReason::PinFailures.as_str().to_owned());
            }
            None => {}
        }
        out.session = self.session_info();
        out.phase = if out.session.is_some() {
            Phase::Unlocked
        } else {
            Phase::Locked
        };
        out
    }
}

/// The full-screen state a device error puts the app in, if any.
pub(crate) fn blocked_for(e: &DeviceError) -> Option<Blocked> {
    let detail = e.to_string();
    let b = |kind: &str, can_sync: bool, can_enrol: bool| Blocked {
        kind: kind.to_owned(),
        detail: detail.clone(),
        can_sync,
        can_enrol,
    };
    match e.code().as_str() {
        "device_revoked" | "certificate_refused" => Some(b("revoked", false, false)),
        "wiped" | "self_wiped" => Some(b("wiped", false, true)),
        "device_quarantined" => Some(b("quarantined", true, false)),
        "lease_expired" | "clock_behind" => Some(b("lease_expired", true, false)),
        _ => None,
    }
}

//! A device data directory seeded with a roster and setting, the way a first sync would leave
//! it. The test-only path: the roster is written through `sprig_store` with the device's own
//! keystore entry (`DataDir::keystore`), exactly as `Device` opens it.

use std::path::{Path, PathBuf};

use argon2::password_hash::{PasswordHasher, SaltString};
use sprig_core::{ChildId, SettingDoc, StaffId, Timestamp};
use sprig_device::{DataDir, Device};
use sprig_store::Store;
use sprig_testkit::Fixture;

pub const PIN: &str = "2468";

pub struct Seeded {
    pub _tmp: tempfile::TempDir,
    pub dir: PathBuf,
    pub fx: Fixture,
    /// Has a PIN.
    pub staff: StaffId,
    /// On the roster without a PIN.
    pub no_pin: StaffId,
}

impl Seeded {
    /// Child `i` of the fixture (0 and 1 have photo consent, 2 has not).
    pub fn child(&self, i: usize) -> ChildId {
        self.fx.children[i].clone()
    }

    pub fn open(&self) -> Device {
        Device::open(&self.dir).unwrap()
    }

    /// The store, opened directly (the device must be closed).
    pub fn store(&self) -> Store {
        let dir = DataDir::existing(&self.dir).unwrap();
        Store::open(dir.db_path(), &dir.keystore()).unwrap()
    }
}

pub fn hash_pin(pin: &str) -> String {
    let salt = SaltString::encode_b64(&[7u8; 16]).unwrap();
    argon2::Argon2::default()
        .hash_password(pin.as_bytes(), &salt)
        .unwrap()
        .to_string()
}

/// A new device in a fresh temporary directory holding a three-child roster.
pub fn seeded() -> Seeded {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("device");
    drop(Device::create(&dir).unwrap());
    let mut fx = Fixture::new(3);
    let t = Timestamp(1_700_000_000_000);
    let staff = fx.staff[0].clone();
    fx.roster.set_pin_hash(&staff, &hash_pin(PIN), t).unwrap();
    let no_pin = fx.staff[1].clone();
    let dd = DataDir::existing(&dir).unwrap();
    let mut store = Store::open(dd.db_path(), &dd.keystore()).unwrap();
    store.save_roster(&mut fx.roster).unwrap();
    store
        .save_setting(&mut SettingDoc::new("Acorn Pre-School"))
        .unwrap();
    store.close().unwrap();
    Seeded {
        _tmp: tmp,
        dir,
        fx,
        staff,
        no_pin,
    }
}

/// Every file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// A clock the test moves by hand (the device reads time only through its `Clock`).
#[derive(Debug)]
pub struct ManualClock(std::sync::atomic::AtomicI64);

impl ManualClock {
    /// Starting at `ms` since the Unix epoch.
    pub fn at(ms: i64) -> std::sync::Arc<Self> {
        std::sync::Arc::new(Self(std::sync::atomic::AtomicI64::new(ms)))
    }

    /// Starting at the system clock's now.
    pub fn now() -> std::sync::Arc<Self> {
        Self::at(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis()
                .try_into()
                .unwrap(),
        )
    }

    pub fn advance_secs(&self, secs: i64) {
        self.0
            .fetch_add(secs * 1000, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn ms(&self) -> i64 {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl sprig_device::Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.ms())
    }
}

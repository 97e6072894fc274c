//! PIN unlock against the roster's argon2id hash.

use sprig_core::StaffId;
use sprig_device::DeviceError;

use crate::support::{PIN, seeded};

#[test]
fn the_right_pin_unlocks_and_wrong_ones_are_refused_without_change() {
    let s = seeded();
    let device = s.open();
    let who = device.unlock(&s.staff, PIN).unwrap();
    assert_eq!(who.staff(), &s.staff);

    let before = device.status().unwrap();
    let err = device.unlock(&s.staff, "1357").unwrap_err();
    assert!(matches!(err, DeviceError::WrongPin), "{err:?}");
    assert_eq!(err.to_string(), "wrong PIN; try again");
    // A wrong PIN changes nothing but the failure log kept for the server's audit.
    let after = device.status().unwrap();
    assert_eq!(
        after.unreported_pin_failures,
        before.unreported_pin_failures + 1
    );
    assert_eq!(
        sprig_device::Status {
            unreported_pin_failures: before.unreported_pin_failures,
            ..after
        },
        before,
        "a wrong PIN changes nothing else"
    );

    let err = device.unlock(&s.no_pin, PIN).unwrap_err();
    assert!(matches!(err, DeviceError::NoPin), "{err:?}");
    let stranger = StaffId::new_random();
    let err = device.unlock(&stranger, PIN).unwrap_err();
    assert!(matches!(err, DeviceError::UnknownStaff(_)), "{err:?}");
}

#[test]
fn a_device_without_a_roster_cannot_be_unlocked() {
    let tmp = tempfile::tempdir().unwrap();
    let device = sprig_device::Device::create(tmp.path().join("d")).unwrap();
    let err = device.unlock(&StaffId::new_random(), PIN).unwrap_err();
    assert!(matches!(err, DeviceError::NoRoster), "{err:?}");
    assert!(err.to_string().contains("sync it with the server first"));
}

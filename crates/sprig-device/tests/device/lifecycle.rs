//! Lifecycle security on the device, with an injected clock: PIN back-off and lock-out (cleared
//! by a sync with a real server), the offline lease (lock past `lock_after`, a clock set back,
//! the enrolment counting when the device never synced, self-wipe past `wipe_after`), lease
//! verification, the wipe itself, and an upload the server refuses early.

use std::sync::Arc;

use rcgen::SigningKey as _;
use sprig_core::{Consent, Policies, Role, SettingDoc, Timestamp};
use sprig_device::{
    DataDir, Device, DeviceError, LockReason, Observation, WIPED_MARKER, WIPING_MARKER,
    verify_lease,
};
use sprig_proto::Lease;
use sprig_server::{ServerStore, admin};
use sprig_store::{DeviceIdentity, KeyStore, Store};
use zeroize::Zeroizing;

use crate::e2e::Server;
use crate::support::{ManualClock, PIN, Seeded, files_under, seeded};

const HOUR: i64 = 3600;
const DAY: i64 = 24 * HOUR;
const DEVICE_ID: &str = "5b8f0d52-1d4e-4c3a-9f7e-2a6b0c1d3e4f";

fn wrong(device: &Device, s: &Seeded) -> DeviceError {
    device.unlock(&s.staff, "0000").unwrap_err()
}

/// A setting CA: its key and certificate (PEM).
fn ca() -> (rcgen::KeyPair, String) {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let cert = p.self_signed(&key).unwrap();
    (key, cert.pem())
}

fn lease(key: &rcgen::KeyPair, device: &str, lock: u64, wipe: u64) -> Lease {
    let mut l = Lease {
        device_id: device.into(),
        issued_at_ms: 1_700_000_000_000,
        lock_after_secs: lock,
        wipe_after_secs: wipe,
        max_pin_failures: 4,
        signature: Vec::new(),
    };
    l.signature = key.sign(&l.signed_bytes()).unwrap();
    l
}

/// Makes the seeded device look enrolled at `enrolled_at` under the CA `ca_pem`.
fn enrol_offline(s: &Seeded, ca_pem: &str, enrolled_at: i64) {
    let mut store = s.store();
    store
        .set_device_identity(&DeviceIdentity {
            device_id: DEVICE_ID.into(),
            server_url: "https://127.0.0.1:9".into(),
            ca_cert_pem: ca_pem.into(),
            client_cert_pem: "unused here".into(),
            client_key_pem: Zeroizing::new("unused here".into()),
            enrolled_at,
        })
        .unwrap();
    store.close().unwrap();
}

fn set_max_pin_failures(s: &Seeded, n: u32) {
    let mut store = s.store();
    let mut setting: SettingDoc = store.setting().unwrap();
    let p = Policies {
        max_pin_failures: n,
        ..setting.policies()
    };
    setting
        .set("Acorn Pre-School", &p, Timestamp(1_700_000_000_000))
        .unwrap();
    store.save_setting(&mut setting).unwrap();
    store.close().unwrap();
}

#[test]
fn from_the_fifth_wrong_pin_each_attempt_waits_a_minute_and_a_right_pin_resets_the_count() {
    let s = seeded();
    let clock = ManualClock::now();
    let device = Device::open_with_clock(&s.dir, clock.clone()).unwrap();
    for _ in 0..5 {
        assert!(matches!(wrong(&device, &s), DeviceError::WrongPin));
        clock.advance_secs(1);
    }
    clock.advance_secs(-1);
    // Throttled: even the right PIN is refused, unchecked.
    let err = device.unlock(&s.staff, PIN).unwrap_err();
    assert!(
        matches!(err, DeviceError::PinThrottled { wait_secs: 60 }),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "too many wrong PINs; try again in 60 s");
    clock.advance_secs(59);
    let err = device.unlock(&s.staff, PIN).unwrap_err();
    assert!(
        matches!(err, DeviceError::PinThrottled { wait_secs: 1 }),
        "{err:?}"
    );
    // After the minute, one more try; a sixth wrong PIN waits again.
    clock.advance_secs(1);
    assert!(matches!(wrong(&device, &s), DeviceError::WrongPin));
    assert!(matches!(
        device.unlock(&s.staff, PIN).unwrap_err(),
        DeviceError::PinThrottled { .. }
    ));
    clock.advance_secs(60);
    device.unlock(&s.staff, PIN).unwrap();
    // The right PIN reset the count: four wrong ones do not throttle.
    for _ in 0..4 {
        assert!(matches!(wrong(&device, &s), DeviceError::WrongPin));
    }
    device.unlock(&s.staff, PIN).unwrap();
    // Every failure is kept for the server, and the count survives a restart.
    assert_eq!(device.status().unwrap().unreported_pin_failures, 10);
    drop(device);
    let device = Device::open_with_clock(&s.dir, clock.clone()).unwrap();
    for _ in 0..5 {
        assert!(matches!(wrong(&device, &s), DeviceError::WrongPin));
    }
    drop(device);
    let device = Device::open_with_clock(&s.dir, clock).unwrap();
    assert!(matches!(
        device.unlock(&s.staff, PIN).unwrap_err(),
        DeviceError::PinThrottled { .. }
    ));
}

#[test]
fn at_the_settings_limit_of_wrong_pins_the_device_locks_until_it_syncs() {
    let s = seeded();
    set_max_pin_failures(&s, 3);
    let clock = ManualClock::now();
    let device = Device::open_with_clock(&s.dir, clock.clone()).unwrap();
    assert!(matches!(wrong(&device, &s), DeviceError::WrongPin));
    assert!(matches!(wrong(&device, &s), DeviceError::WrongPin));
    let err = wrong(&device, &s);
    assert!(
        matches!(err, DeviceError::PinLocked { failures: 3 }),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "locked after 3 wrong PINs; sync to unlock");
    // Time does not unlock it, nor the right PIN, nor a restart.
    clock.advance_secs(7 * DAY);
    drop(device);
    let device = Device::open_with_clock(&s.dir, clock).unwrap();
    assert!(matches!(
        device.unlock(&s.staff, PIN).unwrap_err(),
        DeviceError::PinLocked { failures: 3 }
    ));
    assert_eq!(
        device.status().unwrap().locked,
        Some(LockReason::PinFailures)
    );
}

/// An enrolled device with a PIN, synced once with a real server under `clock`.
fn synced_device(
    server: &Server,
    clock: &Arc<ManualClock>,
) -> (tempfile::TempDir, Device, String, sprig_core::ChildId) {
    let store = server.data.open_store().unwrap();
    let staff = admin::staff_add(&store, "Amara Okafor", Role::Practitioner, PIN, None).unwrap();
    let child = admin::child_add(
        &store,
        "Test Child",
        staff.as_str(),
        None,
        Consent::Yes,
        None,
    )
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("tablet");
    Device::enrol(&dir, &server.enrolment(server.code())).unwrap();
    let mut device = Device::open_with_clock(&dir, clock.clone()).unwrap();
    device.sync().unwrap();
    (tmp, device, staff.to_string(), child)
}

#[test]
fn a_pin_lock_out_is_cleared_by_a_sync_that_reports_every_failure() {
    let server = Server::start();
    let clock = ManualClock::now();
    let (_tmp, mut device, staff, _) = synced_device(&server, &clock);
    let staff = staff.parse().unwrap();
    let mut last = None;
    for _ in 0..10 {
        last = Some(device.unlock(&staff, "0000").unwrap_err());
        clock.advance_secs(61);
    }
    let last = last.unwrap();
    assert!(
        matches!(last, DeviceError::PinLocked { failures: 10 }),
        "the lease's default limit is 10: {last:?}"
    );
    assert!(matches!(
        device.unlock(&staff, PIN).unwrap_err(),
        DeviceError::PinLocked { .. }
    ));
    assert_eq!(device.status().unwrap().unreported_pin_failures, 10);

    device.sync().unwrap();
    device.unlock(&staff, PIN).unwrap();
    let status = device.status().unwrap();
    assert_eq!((status.unreported_pin_failures, status.locked), (0, None));
    let id = status.device_id.unwrap();
    let store = server.data.open_store().unwrap();
    let reported = store
        .audit_log(1000)
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "pin_failure" && e.device.as_deref() == Some(id.as_str()))
        .count();
    assert_eq!(reported, 10, "every wrong PIN is one audit row");
    // Reported once: the next sync reports nothing new.
    device.sync().unwrap();
    let again = store
        .audit_log(1000)
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "pin_failure")
        .count();
    assert_eq!(again, 10);
}

#[test]
fn past_lock_after_without_a_sync_unlock_is_refused_until_the_next_sync() {
    let server = Server::start();
    let clock = ManualClock::now();
    let (_tmp, mut device, staff, _) = synced_device(&server, &clock);
    let staff = staff.parse().unwrap();
    // The default policy: 12 hours.
    clock.advance_secs(12 * HOUR - 1);
    device.unlock(&staff, PIN).unwrap();
    clock.advance_secs(1);
    let err = device.unlock(&staff, PIN).unwrap_err();
    assert!(matches!(err, DeviceError::LeaseExpired { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "this tablet has not synced for 12h; connect to the setting's network and sync before unlocking"
    );
    assert_eq!(
        device.status().unwrap().locked,
        Some(LockReason::LeaseExpired)
    );
    device.sync().unwrap();
    device.unlock(&staff, PIN).unwrap();
    assert_eq!(device.status().unwrap().locked, None);
}

#[test]
fn a_clock_set_earlier_than_the_last_check_in_counts_as_expired() {
    let server = Server::start();
    let clock = ManualClock::now();
    let (_tmp, mut device, staff, _) = synced_device(&server, &clock);
    let staff = staff.parse().unwrap();
    clock.advance_secs(-HOUR);
    let err = device.unlock(&staff, PIN).unwrap_err();
    assert!(matches!(err, DeviceError::ClockBehind), "{err:?}");
    assert!(
        err.to_string().contains("earlier than its last sync"),
        "{err}"
    );
    assert_eq!(
        device.status().unwrap().locked,
        Some(LockReason::ClockBehind)
    );
    // A sync is a new check-in at the device's clock.
    device.sync().unwrap();
    device.unlock(&staff, PIN).unwrap();
}

#[test]
fn a_device_that_never_synced_counts_from_its_enrolment_with_the_default_lease() {
    let s = seeded();
    let (_, ca_pem) = ca();
    let t0 = 1_750_000_000_000;
    enrol_offline(&s, &ca_pem, t0);
    let clock = ManualClock::at(t0);
    let device = Device::open_with_clock(&s.dir, clock.clone()).unwrap();
    clock.advance_secs(12 * HOUR - 1);
    device.unlock(&s.staff, PIN).unwrap();
    clock.advance_secs(1);
    assert!(matches!(
        device.unlock(&s.staff, PIN).unwrap_err(),
        DeviceError::LeaseExpired { .. }
    ));
    // Still there a moment before the default 90 days.
    drop(device);
    clock.advance_secs(90 * DAY - 12 * HOUR - 1);
    let device = Device::open_with_clock(&s.dir, clock.clone()).unwrap();
    drop(device);
    // At 90 days, the next start wipes it.
    clock.advance_secs(1);
    let err = Device::open_with_clock(&s.dir, clock).unwrap_err();
    assert!(matches!(err, DeviceError::SelfWiped { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "this tablet had not synced for 90d (the setting allows 90d) and has wiped itself; enrol it again with a fresh code from a manager"
    );
    assert_only_the_marker(&s);
}

fn assert_only_the_marker(s: &Seeded) {
    assert_eq!(files_under(&s.dir), [s.dir.join(WIPED_MARKER)]);
    let marker = std::fs::read_to_string(s.dir.join(WIPED_MARKER)).unwrap();
    assert!(marker.starts_with("wiped at "), "{marker}");
    assert!(marker.len() < 64, "{marker}");
    let dd = DataDir::existing(&s.dir).unwrap();
    assert!(dd.keystore().load().unwrap().is_none(), "the key is gone");
    let status = Device::status_at(&s.dir).unwrap();
    assert!(status.wiped && !status.enrolled, "{status:?}");
    assert!(matches!(
        Device::open(&s.dir).unwrap_err(),
        DeviceError::Wiped { .. }
    ));
}

#[test]
fn past_a_short_wipe_after_the_device_wipes_itself_at_its_next_start() {
    let s = seeded();
    let (key, ca_pem) = ca();
    let clock = ManualClock::now();
    enrol_offline(&s, &ca_pem, clock.ms());
    let mut device = Device::open_with_clock(&s.dir, clock.clone()).unwrap();
    device.install_lease(&lease(&key, DEVICE_ID, 2, 5)).unwrap();
    let who = device.unlock(&s.staff, PIN).unwrap();
    device
        .observe(
            &who,
            &Observation {
                children: vec![s.child(0)],
                text: "Unsynced note".into(),
                ..Observation::default()
            },
        )
        .unwrap();
    drop(device);
    clock.advance_secs(4);
    // Locked (past lock_after) but not yet wiped.
    let device = Device::open_with_clock(&s.dir, clock.clone()).unwrap();
    assert!(matches!(
        device.unlock(&s.staff, PIN).unwrap_err(),
        DeviceError::LeaseExpired { .. }
    ));
    drop(device);
    clock.advance_secs(1);
    let status = Device::status_with_clock(&s.dir, clock).unwrap();
    assert!(
        status.wiped,
        "status opens the device, which wipes itself: {status:?}"
    );
    assert_only_the_marker(&s);
}

#[test]
fn a_lease_for_another_device_or_with_a_bad_signature_is_refused_and_not_stored() {
    let (key, ca_pem) = ca();
    let (other_key, _) = ca();
    let good = lease(&key, DEVICE_ID, 60, 600);
    verify_lease(&ca_pem, DEVICE_ID, &good).unwrap();

    let err = verify_lease(&ca_pem, DEVICE_ID, &lease(&key, "someone-else", 60, 600)).unwrap_err();
    assert!(err.to_string().contains("for device someone-else"), "{err}");
    let mut stretched = good.clone();
    stretched.wipe_after_secs = 10 * 365 * 24 * 3600;
    let err = verify_lease(&ca_pem, DEVICE_ID, &stretched).unwrap_err();
    assert!(
        err.to_string().contains("signature does not verify"),
        "{err}"
    );
    let forged = lease(&other_key, DEVICE_ID, 60, 600);
    let err = verify_lease(&ca_pem, DEVICE_ID, &forged).unwrap_err();
    assert!(matches!(err, DeviceError::LeaseRefused(_)), "{err:?}");

    let s = seeded();
    enrol_offline(&s, &ca_pem, ManualClock::now().ms());
    let mut device = Device::open(&s.dir).unwrap();
    for bad in [&stretched, &forged, &lease(&key, "someone-else", 60, 600)] {
        assert!(device.install_lease(bad).is_err());
    }
    drop(device);
    assert_eq!(s.store().lease().unwrap(), None, "nothing stored");
    let mut device = Device::open(&s.dir).unwrap();
    device.install_lease(&good).unwrap();
    drop(device);
    let stored = s.store().lease().unwrap().unwrap();
    assert_eq!(
        (
            stored.lock_after_secs,
            stored.wipe_after_secs,
            stored.max_pin_failures
        ),
        (60, 600, 4)
    );
}

#[test]
fn a_wipe_destroys_the_key_first_then_every_file_and_is_idempotent() {
    let s = seeded();
    let mut device = s.open();
    let who = device.unlock(&s.staff, PIN).unwrap();
    let src = tempfile::tempdir().unwrap();
    let photo = src.path().join("p.jpg");
    std::fs::write(&photo, sprig_testkit::images::jpeg(640, 480)).unwrap();
    device
        .observe(
            &who,
            &Observation {
                children: vec![s.child(0)],
                text: "Painted with sponges".into(),
                photos: vec![photo],
                ..Observation::default()
            },
        )
        .unwrap();
    assert_eq!(device.status().unwrap().pending_media, 1);
    device.wipe().unwrap();
    assert_only_the_marker(&s);
    // The wiped device refuses everything and the wipe can run again.
    assert!(matches!(
        device.unlock(&s.staff, PIN).unwrap_err(),
        DeviceError::Wiped { .. }
    ));
    assert!(device.status().unwrap().wiped);
    device.wipe().unwrap();
    drop(device);
    assert_only_the_marker(&s);
    // A stray store cannot be reopened with the old key: it no longer exists.
    let dd = DataDir::existing(&s.dir).unwrap();
    assert!(Store::open(dd.db_path(), &dd.keystore()).is_err());
}

/// Regression: a wipe cut short after the key was destroyed but before the files were deleted
/// left a device whose next open reported "key missing"; the next open now finishes the wipe.
#[test]
fn a_wipe_interrupted_after_the_key_is_destroyed_is_finished_at_the_next_open() {
    let s = seeded();
    let device = s.open();
    drop(device);
    let dd = DataDir::existing(&s.dir).unwrap();
    // What the wipe does before it touches any file, then the process "dies".
    std::fs::write(
        s.dir.join(WIPING_MARKER),
        "wipe started at 2026-12-01T10:00:00.000Z\n",
    )
    .unwrap();
    dd.keystore().destroy().unwrap();
    assert!(dd.db_path().exists());
    let err = Device::open(&s.dir).unwrap_err();
    assert!(matches!(err, DeviceError::Wiped { .. }), "{err:?}");
    assert_only_the_marker(&s);
    assert_eq!(
        Device::status_at(&s.dir).unwrap().wiped_at.as_deref(),
        Some("2026-12-01T10:00:00.000Z")
    );
}

/// Regression: when the server refused an upload early (here its disk stops taking files) while
/// the device was still streaming the body, the device reported a connection error instead of
/// the server's answer.
#[test]
fn an_upload_refused_while_still_streaming_reports_the_servers_answer() {
    let server = Server::start();
    let clock = ManualClock::now();
    let (tmp, mut device, staff, child) = synced_device(&server, &clock);
    let staff = staff.parse().unwrap();
    // A video large enough that the server answers long before the body is sent.
    let video = tmp.path().join("v.mp4");
    let mut bytes = sprig_testkit::images::mp4_head();
    bytes.extend(sprig_testkit::images::random_bytes(48 << 20, 7));
    std::fs::write(&video, &bytes).unwrap();
    let who = device.unlock(&staff, PIN).unwrap();
    device
        .observe(
            &who,
            &Observation {
                children: vec![child],
                text: "Long video".into(),
                videos: vec![video],
                ..Observation::default()
            },
        )
        .unwrap();
    // The server can no longer create upload files.
    let tmp_dir = server.data.media().join("tmp");
    std::fs::remove_dir_all(&tmp_dir).unwrap();
    std::fs::write(&tmp_dir, b"not a directory").unwrap();

    let report = device.sync().unwrap();
    assert_eq!(report.media_failed.len(), 1, "{report:?}");
    let error = &report.media_failed[0].error;
    assert!(
        error.contains("(internal)") && !error.contains("cannot reach the server"),
        "{error}"
    );
    assert_eq!(
        device.status().unwrap().pending_media,
        1,
        "the copy is kept"
    );
}

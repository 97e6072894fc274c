//! Device lifecycle security through the real binaries: revoke, wipe (with unsynced photos on
//! the tablet), retire (successful, and with a final sync that fails), a tablet offline past
//! `wipe_after`, wrong PINs reaching the server's audit log, and the network allow-list.
//!
//! Policies of a few seconds are set with the real `sprig-server policy set`; the tests that
//! use them wait real seconds for the lease to run out (the device binary has no clock
//! override). Library tests with an injected clock cover the same rules at exact boundaries
//! (`crates/sprig-device/tests/device/lifecycle.rs`).

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use sprig_e2e::proxy::{Direction, Proxy};
use sprig_e2e::{DeviceDir, Server, files_under};
use sprig_server::ServerStore;
use sprig_store::KeyStore;

use crate::{photo, server_holds, server_view};

const PIN: &str = "2468";

/// A running server with one member of staff and two children, and one enrolled, synced
/// tablet.
struct Setting {
    tmp: tempfile::TempDir,
    server: Server,
    staff: String,
    children: [String; 2],
    tablet: DeviceDir,
    id: String,
    /// The (used) enrolment code.
    code: Value,
}

fn setting() -> Setting {
    let tmp = tempfile::tempdir().unwrap();
    let mut server = Server::init(tmp.path());
    let staff = server.staff("Amara Okafor", "practitioner", PIN);
    let children = [
        server.child("Ada Birchley", &staff, true),
        server.child("Milo Fenwick", &staff, true),
    ];
    server.start();
    let tablet = DeviceDir::new(tmp.path().join("tablet"));
    let code = server.enrol_code("tablet", None);
    let id = tablet.enrol(&server.url(), &code);
    tablet.sync();
    Setting {
        tmp,
        server,
        staff,
        children,
        tablet,
        id,
        code,
    }
}

impl Setting {
    fn row(&self) -> Value {
        self.server
            .devices()
            .into_iter()
            .find(|d| d["id"] == self.id.as_str())
            .expect("the tablet is in the register")
    }

    /// Records an observation with `n` photos on the tablet (offline); returns their hashes.
    fn observe_photos(&self, text: &str, n: u32) -> Vec<String> {
        let photos: Vec<_> = (0..n)
            .map(|i| photo(self.tmp.path(), &format!("{text}-{i}.jpg"), i + 1))
            .collect();
        let refs: Vec<&Path> = photos.iter().map(AsRef::as_ref).collect();
        self.tablet
            .observe(&self.staff, PIN, &[&self.children[0]], text, &refs);
        self.tablet.journal(&self.staff, PIN, &self.children[0])[0]["media"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["sha256"].as_str().unwrap().to_owned())
            .collect()
    }

    fn policy(&self, args: &[&str]) -> Value {
        let mut all = vec!["policy", "set"];
        all.extend(args);
        self.server.admin(&all).json()
    }

    fn audit(&self, action: &str) -> Vec<sprig_server::store::AuditEvent> {
        let store = sprig_server::DataDir::new(&self.server.data)
            .open_store()
            .unwrap();
        store
            .audit_log(10_000)
            .unwrap()
            .into_iter()
            .filter(|e| e.action == action && e.device.as_deref() == Some(self.id.as_str()))
            .collect()
    }
}

fn keystore_holds_key(dir: &Path) -> bool {
    let dd = sprig_device::DataDir::existing(dir).unwrap();
    dd.keystore().load().unwrap().is_some()
}

/// Nothing of the device is left in its directory but the `wiped at <time>` marker, and its key
/// is gone from the OS keystore.
fn assert_wiped(tablet: &DeviceDir) {
    let marker = tablet.dir.join(sprig_device::WIPED_MARKER);
    assert_eq!(files_under(&tablet.dir), std::slice::from_ref(&marker));
    let text = std::fs::read_to_string(&marker).unwrap();
    assert!(
        text.starts_with("wiped at ") && text.lines().count() == 1,
        "{text:?}"
    );
    assert!(!keystore_holds_key(&tablet.dir), "the key is gone");
    let status = tablet.status();
    assert_eq!(
        (&status["enrolled"], &status["wiped"]),
        (&Value::Bool(false), &Value::Bool(true)),
        "{status}"
    );
}

#[test]
fn a_revoked_tablet_is_told_so_and_keeps_its_data() {
    let s = setting();
    s.observe_photos("Built a den", 1);
    let before = s.tablet.journal(&s.staff, PIN, &s.children[0]);
    let _ = s.server.admin(&["device", "revoke", &s.id]).json();
    let err = s.tablet.cmd("sync", &[]).error();
    assert!(err.contains("revoked"), "{err}");
    // Nothing was deleted: the journal, the photo and the enrolment are still there.
    assert_eq!(s.tablet.journal(&s.staff, PIN, &s.children[0]), before);
    let status = s.tablet.status();
    assert_eq!(status["pending_media"], 1, "{status}");
    assert_eq!(status["enrolled"], true);
    assert!(keystore_holds_key(&s.tablet.dir));
    assert_eq!(s.row()["status"], "revoked");
    // Asking again gives the same answer.
    assert!(s.tablet.cmd("sync", &[]).error().contains("revoked"));
}

#[test]
fn a_wipe_reaches_a_tablet_holding_unsynced_photos_before_any_sync() {
    let mut s = setting();
    let shas = s.observe_photos("Splashed in puddles", 2);
    assert!(keystore_holds_key(&s.tablet.dir));
    let _ = s.server.admin(&["device", "wipe", &s.id]).json();
    assert_eq!(s.row()["status"], "wipe-pending");

    let out = s.tablet.sync();
    assert_eq!(out["wiped"], true, "{out}");
    assert_eq!(out["acknowledged"], true, "{out}");
    assert_wiped(&s.tablet);
    let row = s.row();
    assert_eq!(row["status"], "wiped", "{row}");
    // Unsynced data on a lost tablet is lost by design; the register says how much.
    assert_eq!(row["unsynced_media"], 2, "{row}");
    // The wipe came before any sync: the observation never reached the server.
    s.server.kill();
    assert!(
        server_view(&s.server.data, &s.children[0])
            .values()
            .all(|e| e.text != "Splashed in puddles")
    );
    assert!(shas.iter().all(|h| !server_holds(&s.server.data, h)));
    s.server.start();

    // Idempotent: syncing and wiping again change nothing.
    let again = s.tablet.sync();
    assert_eq!(again["wiped"], true, "{again}");
    assert!(s.server.admin(&["device", "wipe", &s.id]).ok());
    assert_eq!(s.row()["status"], "wiped");
    assert_wiped(&s.tablet);
    let err = s
        .tablet
        .cmd(
            "journal",
            &["--staff", &s.staff, "--pin", PIN, "--child", &s.children[0]],
        )
        .error();
    assert!(err.contains("wiped") && err.contains("fresh code"), "{err}");

    // Only a fresh enrolment code brings it back, as a new device.
    let old = s
        .tablet
        .enrol_with(
            &s.server.url(),
            s.code["code"].as_str().unwrap(),
            &s.server.fingerprint,
        )
        .error();
    assert!(old.contains("(enrol_code_used)"), "{old}");
    assert_wiped(&s.tablet);
    let new_id = s
        .tablet
        .enrol(&s.server.url(), &s.server.enrol_code("tablet again", None));
    assert_ne!(new_id, s.id);
    let status = s.tablet.status();
    assert_eq!(
        (&status["enrolled"], &status["wiped"]),
        (&Value::Bool(true), &Value::Bool(false))
    );
    assert!(!s.tablet.dir.join(sprig_device::WIPED_MARKER).exists());
    s.tablet.sync();
    assert_eq!(s.tablet.journal(&s.staff, PIN, &s.children[0]).len(), 0);
}

#[test]
fn a_retired_tablet_hands_everything_over_then_wipes() {
    let mut s = setting();
    let shas = s.observe_photos("Planted beans", 2);
    s.tablet
        .observe(&s.staff, PIN, &[&s.children[1]], "Counted to ten", &[]);
    let _ = s.server.admin(&["device", "retire", &s.id]).json();
    assert_eq!(s.row()["status"], "retire-pending");

    let out = s.tablet.sync();
    assert_eq!(
        (&out["wiped"], &out["retired"]),
        (&Value::Bool(true), &Value::Bool(true)),
        "{out}"
    );
    assert_eq!(out["media_uploaded"], 2, "{out}");
    assert_wiped(&s.tablet);
    assert_eq!(s.row()["status"], "retired");
    s.server.kill();
    for h in &shas {
        assert!(server_holds(&s.server.data, h), "{h} is on the server");
    }
    let texts = |c: &str| -> Vec<String> {
        server_view(&s.server.data, c)
            .into_values()
            .map(|e| e.text)
            .collect()
    };
    assert_eq!(texts(&s.children[0]), ["Planted beans"]);
    assert_eq!(texts(&s.children[1]), ["Counted to ten"]);
}

#[test]
fn a_retire_whose_final_sync_fails_wipes_nothing_and_says_why() {
    let s = setting();
    let shas = s.observe_photos("Rolled a hoop", 1);
    let _ = s.server.admin(&["device", "retire", &s.id]).json();
    // The server's disk stops taking uploads.
    let uploads = s.server.data.join("media").join("tmp");
    std::fs::remove_dir_all(&uploads).unwrap();
    std::fs::write(&uploads, b"not a directory").unwrap();

    let err = s.tablet.cmd("sync", &[]).error();
    assert!(
        err.contains("retire: final sync failed: ")
            && err.contains("(internal)")
            && err.ends_with("; this tablet was not wiped"),
        "{err}"
    );
    let status = s.tablet.status();
    assert_eq!(
        (&status["enrolled"], &status["wiped"]),
        (&Value::Bool(true), &Value::Bool(false))
    );
    assert_eq!(status["pending_media"], 1, "{status}");
    assert!(keystore_holds_key(&s.tablet.dir));
    assert_eq!(
        s.tablet.journal(&s.staff, PIN, &s.children[0])[0]["media"][0]["sha256"],
        shas[0].as_str()
    );
    assert_eq!(s.row()["status"], "retire-pending");

    // Once the server takes uploads again, the retire completes.
    std::fs::remove_file(&uploads).unwrap();
    std::fs::create_dir(&uploads).unwrap();
    let out = s.tablet.sync();
    assert_eq!(out["retired"], true, "{out}");
    assert_wiped(&s.tablet);
    assert_eq!(s.row()["status"], "retired");
}

#[test]
fn a_retire_cut_short_by_the_server_dying_mid_upload_wipes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let mut server = Server::init(tmp.path());
    let staff = server.staff("Amara Okafor", "practitioner", PIN);
    let child = server.child("Ada Birchley", &staff, true);
    server.start();
    // Faults off: the proxy only holds the connection the test arms it for.
    let proxy = Proxy::start(server.addr(), 1);
    let tablet = DeviceDir::new(tmp.path().join("tablet"));
    let id = tablet.enrol(&proxy.url(), &server.enrol_code("tablet", None));
    tablet.sync();
    let pic = tmp.path().join("big.jpg");
    std::fs::write(&pic, sprig_testkit::images::photo_like(1600, 1200)).unwrap();
    tablet.observe(&staff, PIN, &[&child], "Climbed the frame", &[&pic]);
    let media = &tablet.journal(&staff, PIN, &child)[0]["media"][0];
    let sha = media["sha256"].as_str().unwrap().to_owned();
    // The sync session sends far less than this; the photo's upload far more.
    const OFFSET: u64 = 64 * 1024;
    assert!(media["size"].as_u64().unwrap() > 2 * OFFSET, "{media}");
    let _ = server.admin(&["device", "retire", &id]).json();

    proxy.arm(Direction::Up, OFFSET);
    let mut sync = tablet.spawn_sync();
    let start = Instant::now();
    while !proxy.is_holding() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the upload never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The server dies in the middle of the final upload.
    server.kill();
    proxy.release();
    let out = sync
        .wait_timeout(Duration::from_secs(120))
        .expect("sync ends");
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("retire: final sync failed: ")
            && err.contains("cannot reach the server")
            && err.trim_end().ends_with("; this tablet was not wiped"),
        "{err}"
    );
    let status = tablet.status();
    assert_eq!(status["enrolled"], true, "{status}");
    assert_eq!(status["pending_media"], 1, "{status}");
    assert!(keystore_holds_key(&tablet.dir));
    assert!(!server_holds(&server.data, &sha));

    // Back up: the retire completes and the photo is on the server before the wipe.
    server.start();
    let out = tablet.sync();
    assert_eq!(out["retired"], true, "{out}");
    assert_wiped(&tablet);
    server.kill();
    assert!(server_holds(&server.data, &sha));
}

#[test]
fn a_tablet_offline_past_wipe_after_locks_then_wipes_itself_at_its_next_start() {
    let mut s = setting();
    s.tablet
        .observe(&s.staff, PIN, &[&s.children[0]], "Kept offline", &[]);
    let policy = s.policy(&["--lock-after", "2s", "--wipe-after", "8s"]);
    assert_eq!(policy["wipe_after_secs"], 8, "{policy}");
    s.tablet.sync();
    let synced = Instant::now();
    // The tablet leaves the building: no server from now on.
    s.server.kill();
    wait_until(synced + Duration::from_secs(3));
    let err = s
        .tablet
        .cmd(
            "journal",
            &["--staff", &s.staff, "--pin", PIN, "--child", &s.children[0]],
        )
        .error();
    assert!(
        err.contains("has not synced for") && err.contains("sync before unlocking"),
        "{err}"
    );
    assert_eq!(s.tablet.status()["locked"], "lease_expired");
    assert!(keystore_holds_key(&s.tablet.dir), "locked, not yet wiped");

    wait_until(synced + Duration::from_secs(9));
    let err = s
        .tablet
        .cmd(
            "journal",
            &["--staff", &s.staff, "--pin", PIN, "--child", &s.children[0]],
        )
        .error();
    assert!(err.contains("has wiped itself"), "{err}");
    assert_wiped(&s.tablet);
}

fn wait_until(t: Instant) {
    let now = Instant::now();
    if t > now {
        std::thread::sleep(t - now);
    }
}

#[test]
fn wrong_pins_lock_the_tablet_and_reach_the_audit_log_at_the_next_sync() {
    let s = setting();
    s.policy(&["--max-pin-failures", "3"]);
    s.tablet.sync();
    let journal = |pin: &str| {
        s.tablet.cmd(
            "journal",
            &["--staff", &s.staff, "--pin", pin, "--child", &s.children[0]],
        )
    };
    assert!(journal("1111").error().contains("wrong PIN"));
    assert!(journal("2222").error().contains("wrong PIN"));
    let err = journal("3333").error();
    assert!(
        err.contains("locked after 3 wrong PINs; sync to unlock"),
        "{err}"
    );
    let err = journal(PIN).error();
    assert!(err.contains("locked after 3 wrong PINs"), "{err}");
    assert_eq!(s.tablet.status()["locked"], "pin_failures");
    assert!(
        s.audit("pin_failure").is_empty(),
        "not reported before a sync"
    );

    s.tablet.sync();
    let reported = s.audit("pin_failure");
    assert_eq!(reported.len(), 3, "{reported:?}");
    assert!(reported.iter().all(|e| e.detail.contains(&s.staff)));
    assert_eq!(s.row()["pin_failures"], 3);
    // The sync unlocked it; reported failures are not reported twice.
    let _ = journal(PIN).json();
    s.tablet.sync();
    assert_eq!(s.audit("pin_failure").len(), 3);
}

#[test]
fn the_network_allow_list_refuses_other_networks_and_admits_listed_ones() {
    let s = setting();
    s.policy(&[
        "--allow-network",
        "10.0.0.0/8",
        "--allow-network",
        "192.168.0.0/16",
    ]);
    let err = s.tablet.cmd("sync", &[]).error();
    assert_eq!(
        err,
        "sprig-device: sync refused: this network (127.0.0.1) is not on the setting's allowed list; ask the manager"
    );
    s.policy(&["--allow-network", "127.0.0.0/8"]);
    s.tablet.sync();
    s.policy(&["--allow-any-network"]);
    s.tablet.sync();
}

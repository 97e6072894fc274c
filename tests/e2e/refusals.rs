//! Refusals through the real binaries, each with a clear one-line message and no state change:
//! a server whose CA does not match the pinned fingerprint; wrong, expired and used enrolment
//! codes; guessing codes until throttled; a wrong PIN; a group photo including a child without
//! photo consent.
//!
//! Covered in the server's own tests against a real listener, not repeated here: sync without a
//! client certificate and with a certificate from another CA
//! (`sync-server/tests/server/refusals.rs`), a hash-mismatched upload
//! (`sync-server/tests/server/media.rs`), malformed protocol frames
//! (`sync-server/tests/server/sync.rs`); and a revoked device seen by the device API
//! (`crates/sprig-device/tests/device/e2e.rs`).

use sprig_e2e::{DeviceDir, Server};

use crate::photo;

const PIN: &str = "2468";

/// A well-formed code that differs from `code` in its last character.
fn wrong_code(code: &str) -> String {
    let mut c: Vec<char> = code.chars().collect();
    let last = c.last_mut().unwrap();
    *last = if *last == 'Z' { 'Y' } else { 'Z' };
    c.into_iter().collect()
}

#[test]
#[allow(clippy::too_many_lines)] // one server, one story of refusals in throttle order
fn refusals_have_clear_messages_and_change_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let mut server = Server::init(tmp.path());
    let amara = server.staff("Amara Okafor", "practitioner", PIN);
    let ada = server.child("Ada Birchley", &amara, true);
    let dev = server.child("Dev Elmsworth", &amara, false);
    server.start();
    let url = server.url();
    let gone = |d: &DeviceDir| {
        assert!(
            !d.dir.exists(),
            "a refused enrolment left {}",
            d.dir.display()
        );
    };

    // A server whose CA is not the pinned one: refused before the code is sent, so the code
    // stays good.
    let code = server.enrol_code("tablet", None);
    let tablet = DeviceDir::new(tmp.path().join("tablet"));
    let other_ca = format!("sha256:{}", "ab".repeat(32));
    let err = tablet
        .enrol_with(&url, code["code"].as_str().unwrap(), &other_ca)
        .error();
    assert!(
        err.contains("certificate authority does not match") && err.contains("nothing was stored"),
        "{err}"
    );
    gone(&tablet);
    assert!(server.devices().is_empty());
    tablet.enrol(&url, &code);
    assert_eq!(server.devices().len(), 1);
    tablet.sync();

    // Wrong code (failure 1 for the throttle).
    let code = server.enrol_code("second tablet", None);
    let second = DeviceDir::new(tmp.path().join("second"));
    let err = second
        .enrol_with(
            &url,
            &wrong_code(code["code"].as_str().unwrap()),
            &server.fingerprint,
        )
        .error();
    assert!(
        err.contains("enrolment code is not valid") && err.contains("(enrol_code_invalid)"),
        "{err}"
    );
    gone(&second);

    // Expired code (failure 2): a one-second code, used after it expired.
    let short = server.enrol_code("late tablet", Some("1s"));
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let err = second
        .enrol_with(&url, short["code"].as_str().unwrap(), &server.fingerprint)
        .error();
    assert!(err.contains("(enrol_code_expired)"), "{err}");
    assert!(err.to_lowercase().contains("expired"), "{err}");
    gone(&second);

    // Used code (failure 3): the first tablet's code again.
    let used = server.enrol_code("third tablet", None);
    let third = DeviceDir::new(tmp.path().join("third"));
    third.enrol(&url, &used);
    let err = second
        .enrol_with(&url, used["code"].as_str().unwrap(), &server.fingerprint)
        .error();
    assert!(err.contains("(enrol_code_used)"), "{err}");
    gone(&second);
    assert_eq!(server.devices().len(), 2, "no device added by a refusal");

    // A wrong PIN reads nothing and records nothing.
    let before = tablet.journal(&amara, PIN, &ada);
    let err = tablet
        .cmd(
            "journal",
            &["--staff", &amara, "--pin", "0000", "--child", &ada],
        )
        .error();
    assert!(err.contains("wrong PIN"), "{err}");
    let err = tablet
        .observe_run(&amara, "0000", &[&ada], "Painted a rainbow", &[])
        .error();
    assert!(err.contains("wrong PIN"), "{err}");
    assert_eq!(tablet.journal(&amara, PIN, &ada), before);

    // A group photo including a child without photo consent: refused, nothing stored.
    let pic = photo(tmp.path(), "group.jpg", 1);
    let status_before = tablet.status();
    let err = tablet
        .observe_run(&amara, PIN, &[&ada, &dev], "Group painting", &[&pic])
        .error();
    assert!(
        err.contains("Dev Elmsworth does not have photo consent"),
        "{err}"
    );
    assert_eq!(tablet.journal(&amara, PIN, &ada), before);
    assert!(tablet.journal(&amara, PIN, &dev).is_empty());
    assert_eq!(tablet.status(), status_before);
    // The same observation without the photo is fine.
    tablet.observe(&amara, PIN, &[&ada, &dev], "Group painting", &[]);

    // Guessing codes: refused, then throttled; the guesses use no code, and while throttled even
    // a good code is turned away without being used.
    let good = server.enrol_code("fourth tablet", None);
    let fourth = DeviceDir::new(tmp.path().join("fourth"));
    let mut throttled = None;
    for attempt in 0..12 {
        let guess = format!("{:05}-{:05}", 10_000 + attempt, 20_000 + attempt);
        let err = fourth.enrol_with(&url, &guess, &server.fingerprint).error();
        if err.contains("(enrol_throttled)") {
            throttled = Some((attempt, err));
            break;
        }
        assert!(err.contains("(enrol_code_invalid)"), "{err}");
    }
    let (attempt, err) = throttled.expect("guessing codes is throttled within 12 attempts");
    assert!(attempt <= 5, "throttled only after {attempt} guesses");
    assert!(err.contains("wait") && err.contains("seconds"), "{err}");
    let err = fourth
        .enrol_with(&url, good["code"].as_str().unwrap(), &server.fingerprint)
        .error();
    assert!(err.contains("(enrol_throttled)"), "{err}");
    gone(&fourth);
    assert_eq!(server.devices().len(), 2, "no device added by a refusal");
}

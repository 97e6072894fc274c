//! The managers' console over real TLS: a manager's sign-in (TOTP set up at the first one,
//! recovery codes, the shared lockout, their shorter sessions, the end of a session whose
//! manager was deactivated), every `/api/v1/admin/` endpoint's answers and refusals (the fresh
//! second factor of revoke, wipe and retire), and the role matrix from the OpenAPI document:
//! nobody but a signed-in manager of the setting gets anything but 404.

use std::time::Duration;

use hyper::StatusCode;
use serde_json::{Value, json};
use sprig_core::{Role, StaffId, Timestamp};
use sprig_server::admin::{self, StaffLogin};
use sprig_server::docs::edit_roster;
use sprig_server::store::DeviceStatus;
use sprig_server::{ServerStore, SqliteStore};

use crate::portal::{Client, Families, PASSWORD_A, PASSWORD_B, families, record};
use crate::portal_account::{code_at, now_s, wrong};
use crate::support::{TestServer, key_and_csr, post_enrol};

pub(crate) const MANAGER: &str = "morgan.hale@example.org";
pub(crate) const PASSWORD_M: &str = "the manager's long pass phrase";
const PRACTITIONER: &str = "kim.keyworker@example.org";
const PASSWORD_P: &str = "a practitioner's pass phrase";

/// A setting with the two families of the portal tests, a manager and a practitioner who both
/// have a sign-in address and password.
pub(crate) struct Staffed {
    pub(crate) fam: Families,
    pub(crate) manager: StaffId,
    practitioner: StaffId,
}

pub(crate) async fn staffed(server: &TestServer) -> Staffed {
    let fam = families(server).await;
    let store = server.store();
    Staffed {
        manager: add_manager(&store, "Morgan Hale", MANAGER, PASSWORD_M),
        practitioner: admin::staff_add(
            &store,
            "Kim Keyworker",
            Role::Practitioner,
            "1357",
            Some(StaffLogin {
                email: PRACTITIONER,
                password: PASSWORD_P,
            }),
        )
        .unwrap(),
        fam,
    }
}

pub(crate) fn add_manager(
    store: &dyn ServerStore,
    name: &str,
    email: &str,
    password: &str,
) -> StaffId {
    admin::staff_add(
        store,
        name,
        Role::Manager,
        "8642",
        Some(StaffLogin { email, password }),
    )
    .unwrap()
}

/// A manager's authenticator app: the secret, and the newest step a code was taken for (the
/// server takes each step once, and one step either side of now).
pub(crate) struct App {
    secret: String,
    last: u64,
    pub(crate) recovery: Vec<String>,
}

/// Waits out the last seconds of a 30-second step, so a code taken now is still valid when it
/// arrives.
async fn steady() {
    let into = now_s() % 30;
    if into >= 27 {
        tokio::time::sleep(Duration::from_secs(31 - into)).await;
    }
}

impl App {
    /// A code of a step not used before, waiting for one when both valid ahead are used.
    pub(crate) async fn fresh(&mut self) -> String {
        loop {
            steady().await;
            let now = now_s() / 30;
            let step = (self.last + 1).max(now - 1);
            if step <= now + 1 {
                self.last = step;
                return code_at(&self.secret, step * 30);
            }
            tokio::time::sleep(Duration::from_secs(30 - now_s() % 30 + 1)).await;
        }
    }

    /// The code of the step last used: a replay.
    fn used(&self) -> String {
        code_at(&self.secret, self.last * 30)
    }
}

/// Asserts a 200, showing the body when not.
fn ok(r: &crate::support::Reply) {
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
}

async fn mfa(c: &mut Client, code: &str) -> crate::support::Reply {
    c.call("POST", "/api/v1/session/mfa", Some(json!({ "code": code })))
        .await
}

/// A manager's first sign-in: the TOTP set-up, then the first code, which turns it on and
/// gives the recovery codes.
pub(crate) async fn first_sign_in(c: &mut Client, email: &str, password: &str) -> App {
    let r = c.sign_in(email, password).await;
    ok(&r);
    let setup = r.json();
    assert_eq!(setup["mfa_required"], true);
    let uri = setup["totp_setup"].as_str().unwrap();
    assert!(uri.starts_with("otpauth://totp/"), "{uri}");
    let secret = setup["totp_secret"].as_str().unwrap().to_owned();
    assert!(uri.contains(&format!("secret={secret}")), "{uri}");
    let svg = setup["totp_qr_svg"].as_str().unwrap();
    assert!(svg.contains("<svg") && svg.contains("</svg>"));
    // Half signed in: no console yet.
    assert_eq!(
        c.call("GET", "/api/v1/admin/devices", None).await.status,
        StatusCode::NOT_FOUND
    );
    let mut app = App {
        secret,
        last: 0,
        recovery: Vec::new(),
    };
    let code = app.fresh().await;
    let r = mfa(c, &code).await;
    ok(&r);
    let body = r.json();
    assert_eq!(body["mfa_required"], false);
    app.recovery = body["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    app
}

/// Signs in a manager whose TOTP is on, with a fresh code.
async fn sign_in_again(c: &mut Client, app: &mut App) {
    let r = c.sign_in(MANAGER, PASSWORD_M).await;
    assert_eq!(r.json(), json!({"mfa_required": true}));
    let code = app.fresh().await;
    let r = mfa(c, &code).await;
    ok(&r);
    assert_eq!(r.json(), json!({"mfa_required": false}));
}

fn actions(store: &SqliteStore) -> Vec<(String, String)> {
    store
        .audit_log(500)
        .unwrap()
        .into_iter()
        .map(|e| (e.actor, e.action))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_managers_first_sign_in_sets_up_totp_and_gives_recovery_codes() {
    let server = TestServer::start().await;
    let s = staffed(&server).await;
    let mut c = Client::new(&server);
    let r = c.sign_in(MANAGER, "not the manager's pass phrase").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.code(), "wrong_credentials");
    // The set-up is not on until a code from it arrives: a wrong one is refused.
    let r = c.sign_in(" Morgan.Hale@EXAMPLE.org", PASSWORD_M).await;
    let secret = r.json()["totp_secret"].as_str().unwrap().to_owned();
    assert_eq!(
        c.call("GET", "/api/v1/me", None).await.status,
        StatusCode::UNAUTHORIZED
    );
    let r = mfa(&mut c, &wrong(&secret, now_s())).await;
    assert_eq!(r.code(), "wrong_code");
    let mut c = Client::new(&server);
    let mut app = first_sign_in(&mut c, MANAGER, PASSWORD_M).await;
    assert_eq!(app.recovery.len(), 10);
    let mut distinct = app.recovery.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 10);
    for code in &app.recovery {
        assert!(
            code.len() == 9 && code.as_bytes()[4] == b'-',
            "{code} is not xxxx-xxxx"
        );
    }
    let me = c.call("GET", "/api/v1/me", None).await.json();
    assert_eq!(
        me,
        json!({"id": s.manager.to_string(), "name": "Morgan Hale", "role": "manager",
               "totp_enabled": true, "agreement_required": false, "children": []})
    );
    assert_eq!(
        c.call("GET", "/api/v1/admin/devices", None).await.status,
        StatusCode::OK
    );
    // The parent portal is a parent's: a manager has no journal there.
    let r = c
        .call(
            "GET",
            &format!("/api/v1/children/{}/journal", s.fam.child_b),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    // From now on the password alone never signs in, and no set-up is handed out again.
    let mut d = Client::new(&server);
    let r = d.sign_in(MANAGER, PASSWORD_M).await;
    assert_eq!(r.json(), json!({"mfa_required": true}));
    assert!(!String::from_utf8_lossy(&r.body).contains(&app.secret));
    // The code just used is refused; a recovery code works once, in any case and spacing.
    let r = mfa(&mut d, &app.used()).await;
    assert_eq!(r.code(), "code_used");
    let recovery = app.recovery[3].to_uppercase().replace('-', " ");
    let r = mfa(&mut d, &recovery).await;
    ok(&r);
    assert_eq!(r.json(), json!({"mfa_required": false}));
    let mut e = Client::new(&server);
    e.sign_in(MANAGER, PASSWORD_M).await;
    let r = mfa(&mut e, &app.recovery[3]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.code(), "wrong_code");
    // A code from the app still works after that.
    let code = app.fresh().await;
    assert_eq!(mfa(&mut e, &code).await.status, StatusCode::OK);
    // A parent signs in as before, and is told they are a parent.
    let mut p = Client::new(&server);
    assert_eq!(
        p.sign_in("b@example.com", PASSWORD_B).await.json(),
        json!({"mfa_required": false})
    );
    assert_eq!(
        p.call("GET", "/api/v1/me", None).await.json()["role"],
        "parent"
    );

    let log = actions(&server.store());
    let who = format!("staff:{}", s.manager);
    for action in ["console_sign_in", "console_totp_on", "recovery_code_used"] {
        assert!(
            log.iter().any(|(a, x)| a == &who && x == action),
            "{action} by {who} not audited: {log:?}"
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn practitioners_and_former_managers_have_no_console() {
    let server = TestServer::start().await;
    let s = staffed(&server).await;
    // A practitioner's right password gets the answer of a wrong one.
    let mut c = Client::new(&server);
    let right = c.sign_in(PRACTITIONER, PASSWORD_P).await;
    let wrong_pw = c.sign_in(PRACTITIONER, "not the practitioner's").await;
    assert_eq!(right.status, StatusCode::UNAUTHORIZED);
    assert_eq!(right.body, wrong_pw.body);
    assert!(c.cookie.is_none());
    // A second manager, signed in, then deactivated: the session ends at its next request.
    let store = server.store();
    let other = add_manager(&store, "Robin Ash", "robin@example.org", PASSWORD_M);
    let mut m = Client::new(&server);
    first_sign_in(&mut m, "robin@example.org", PASSWORD_M).await;
    let mut n = Client::new(&server);
    let mut app = first_sign_in(&mut n, MANAGER, PASSWORD_M).await;
    edit_roster(
        &store,
        |r| -> Result<(), sprig_server::docs::DocStoreError> {
            r.deactivate_staff(&other, Timestamp(admin::now_ms()))
                .unwrap();
            Ok(())
        },
    )
    .unwrap();
    let r = m.call("GET", "/api/v1/admin/devices", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.code(), "not_found");
    assert_eq!(
        m.call("GET", "/api/v1/me", None).await.status,
        StatusCode::UNAUTHORIZED,
        "the session was ended, not only refused"
    );
    assert!(
        store
            .sessions_of(&format!("staff:{other}"), admin::now_ms())
            .unwrap()
            .is_empty()
    );
    // And they cannot sign in again.
    let r = m.sign_in("robin@example.org", PASSWORD_M).await;
    assert_eq!(r.code(), "wrong_credentials");
    // The other manager is unaffected.
    assert_eq!(
        n.call("GET", "/api/v1/admin/devices", None).await.status,
        StatusCode::OK
    );
    sign_in_again(&mut Client::new(&server), &mut app).await;
    let _ = s.practitioner;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_codes_lock_a_manager_like_wrong_passwords() {
    let server = TestServer::start().await;
    staffed(&server).await;
    let mut c = Client::new(&server);
    let app = first_sign_in(&mut c, MANAGER, PASSWORD_M).await;
    let mut d = Client::new(&server);
    d.sign_in(MANAGER, PASSWORD_M).await;
    for _ in 0..4 {
        let r = mfa(&mut d, &wrong(&app.secret, now_s())).await;
        assert_eq!(r.code(), "wrong_code");
    }
    let r = mfa(&mut d, "zzzz-zzzz").await;
    assert_eq!(r.code(), "locked");
    let r = d.sign_in(MANAGER, PASSWORD_M).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.code(), "locked");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manager_sessions_end_after_their_own_idle_and_absolute_times() {
    let server = TestServer::start_with(|c| {
        c.console_idle = Duration::from_millis(1500);
        c.console_absolute = Duration::from_secs(4);
    })
    .await;
    staffed(&server).await;
    let mut parent = Client::new(&server);
    assert_eq!(
        parent.sign_in("b@example.com", PASSWORD_B).await.status,
        StatusCode::OK
    );
    let mut c = Client::new(&server);
    let mut app = first_sign_in(&mut c, MANAGER, PASSWORD_M).await;
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_millis(3000) {
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert_eq!(
            c.call("GET", "/api/v1/admin/devices", None).await.status,
            StatusCode::OK
        );
    }
    tokio::time::sleep(Duration::from_millis(1400)).await;
    assert_eq!(
        c.call("GET", "/api/v1/admin/devices", None).await.status,
        StatusCode::NOT_FOUND,
        "past the absolute time"
    );
    let mut d = Client::new(&server);
    sign_in_again(&mut d, &mut app).await;
    tokio::time::sleep(Duration::from_millis(1700)).await;
    assert_eq!(
        d.call("GET", "/api/v1/admin/devices", None).await.status,
        StatusCode::NOT_FOUND,
        "idle for too long"
    );
    // A parent's session keeps the parents' times.
    assert_eq!(
        parent.call("GET", "/api/v1/me", None).await.status,
        StatusCode::OK
    );
    server.stop().await;
}

/// Enrols a tablet with a code from the console; returns its id.
pub(crate) async fn enrol_from_console(c: &mut Client, server: &TestServer, name: &str) -> String {
    let r = c
        .call(
            "POST",
            "/api/v1/admin/enrol-codes",
            Some(json!({ "device_name": name })),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let code = r.json();
    assert_eq!(code["ca_fingerprint"], server.ca_fingerprint.as_str());
    assert!(code["qr_svg"].as_str().unwrap().contains("<svg"));
    assert!(code["url"].as_str().unwrap().starts_with("https://"));
    assert!(code["expires_at"].as_str().unwrap().ends_with('Z'));
    let (_, csr) = key_and_csr();
    let r = post_enrol(server, code["code"].as_str().unwrap(), &csr).await;
    ok(&r);
    r.json()["device_id"].as_str().unwrap().to_owned()
}

async fn step(c: &mut Client, id: &str, what: &str, body: Value) -> crate::support::Reply {
    c.call(
        "POST",
        &format!("/api/v1/admin/devices/{id}/{what}"),
        Some(body),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tablets_are_enrolled_listed_and_stepped_with_a_fresh_code() {
    let server = TestServer::start().await;
    let s = staffed(&server).await;
    let mut c = Client::new(&server);
    let mut app = first_sign_in(&mut c, MANAGER, PASSWORD_M).await;
    let r = c
        .call(
            "POST",
            "/api/v1/admin/enrol-codes",
            Some(json!({"device_name": "  "})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let a = enrol_from_console(&mut c, &server, "Room 1 tablet").await;
    let b = enrol_from_console(&mut c, &server, "Room 2 tablet").await;
    let list = c.call("GET", "/api/v1/admin/devices", None).await.json();
    let row = list
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == a.as_str())
        .unwrap()
        .clone();
    assert_eq!(row["name"], "Room 1 tablet");
    assert_eq!(row["status"], "active");
    assert_eq!(row["locked"], false);
    assert_eq!(row["missing"], false);
    assert_eq!(row["unsynced_media"], 0);
    assert!(row["lease_expires_at"].as_str().is_some());
    assert_eq!(row["off_site_until"], Value::Null);
    for key in ["last_seen", "last_sync", "app_version", "unsynced_docs"] {
        assert!(row.get(key).is_some(), "{key} missing from {row}");
    }

    // Revoke, wipe and retire take a fresh second factor: none, a wrong one, a used one.
    for body in [
        json!({}),
        json!({"totp": wrong(&app.secret, now_s())}),
        json!({"totp": app.used()}),
        json!({"totp": "zzzz-zzzz"}),
    ] {
        let r = step(&mut c, &a, "wipe", body.clone()).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{body}");
        assert_eq!(r.code(), "fresh_code_required");
    }
    assert_eq!(server.devices()[0].status, DeviceStatus::Active);
    let code = app.fresh().await;
    let r = step(&mut c, &a, "wipe", json!({ "totp": code })).await;
    ok(&r);
    assert_eq!(
        r.json(),
        json!({"id": a, "status": "wipe-pending", "from": "active", "changed": true})
    );
    // The same code again: a replay.
    let r = step(&mut c, &b, "revoke", json!({ "totp": code })).await;
    assert_eq!(r.code(), "fresh_code_required");
    // A recovery code in its place.
    let r = step(&mut c, &b, "revoke", json!({"totp": app.recovery[0]})).await;
    assert_eq!(r.json()["status"], "revoked");
    let r = step(&mut c, &a, "revoke", json!({"totp": app.recovery[1]})).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.code(), "wrong_state");
    let r = step(
        &mut c,
        "no-such-device",
        "retire",
        json!({"totp": app.recovery[2]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // Release takes no code; only a quarantined tablet is released.
    let r = step(&mut c, &b, "release", json!({})).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let store = server.store();
    let q = enrol_from_console(&mut c, &server, "Quarantined tablet").await;
    store
        .set_device_status(&q, DeviceStatus::Quarantined)
        .unwrap();
    let r = step(&mut c, &q, "release", json!({})).await;
    assert_eq!(
        r.json(),
        json!({"id": q, "status": "active", "from": "quarantined", "changed": true})
    );
    let code = app.fresh().await;
    let r = step(&mut c, &q, "retire", json!({ "totp": code })).await;
    assert_eq!(r.json()["status"], "retire-pending");

    let who = format!("staff:{}", s.manager);
    let log = store.audit_log(500).unwrap();
    for (action, device) in [
        ("wipe_requested", &a),
        ("device_revoke", &b),
        ("device_release", &q),
        ("retire_requested", &q),
    ] {
        assert!(
            log.iter().any(|e| e.actor == who
                && e.action == action
                && e.device.as_deref() == Some(device.as_str())),
            "{action} of {device} by {who} not audited"
        );
    }
    assert!(
        log.iter()
            .any(|e| e.actor == who && e.action == "enrol_code")
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coverage_shows_the_seeded_counts() {
    let server = TestServer::start().await;
    let s = staffed(&server).await;
    let store = server.store();
    let now = admin::now_ms();
    let day = 86_400_000;
    let (a, b) = (&s.fam.child_a, &s.fam.child_b);
    // Families recorded one entry each at the epoch, long ago.
    record(
        &store,
        &s.fam.staff,
        std::slice::from_ref(a),
        "Ran",
        Vec::new(),
        now - 3 * day,
    );
    record(
        &store,
        &s.fam.staff,
        &[a.clone(), b.clone()],
        "Sang",
        Vec::new(),
        now - day,
    );
    record(
        &store,
        &s.fam.staff,
        std::slice::from_ref(a),
        "Read",
        Vec::new(),
        now - 20 * day,
    );
    let mut c = Client::new(&server);
    first_sign_in(&mut c, MANAGER, PASSWORD_M).await;
    let r = c.call("GET", "/api/v1/admin/coverage?days=7", None).await;
    ok(&r);
    let cov = r.json();
    assert_eq!(cov["days"], 7);
    let count = |id: &sprig_core::ChildId| {
        cov["per_child"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["child_id"] == id.to_string())
            .unwrap()["count"]
            .clone()
    };
    assert_eq!((count(a), count(b)), (json!(2), json!(1)));
    assert_eq!(
        cov["per_key_worker"],
        json!([{"staff_id": s.fam.staff.to_string(), "name": "Amara Okafor", "count": 3}])
    );
    assert_eq!(cov["per_day"].as_array().unwrap().len(), 7);
    let per_day: u64 = cov["per_day"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["count"].as_u64().unwrap())
        .sum();
    assert_eq!(per_day, 3);
    assert_eq!(cov["not_observed"], json!([]));
    assert_eq!(cov["waiting_review"], 0);
    let r = c.call("GET", "/api/v1/admin/coverage?days=60", None).await;
    assert_eq!(
        r.json()["per_child"][0]["count"],
        3,
        "Ada's three within 60 days"
    );
    for bad in ["0", "401", "seven"] {
        let r = c
            .call("GET", &format!("/api/v1/admin/coverage?days={bad}"), None)
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
    }
    server.stop().await;
}

async fn contribute(c: &mut Client, child: &sprig_core::ChildId, text: &str) -> String {
    let boundary = "console-test-boundary";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"text\"\r\n\r\n{text}\r\n--{boundary}--\r\n"
    );
    let r = c
        .call_raw(
            "POST",
            &format!("/api/v1/children/{child}/contributions"),
            &format!("multipart/form-data; boundary={boundary}"),
            body.into_bytes(),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    r.json()["id"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_approves_and_rejects_contributions_and_the_parent_sees_why() {
    let server = TestServer::start().await;
    let s = staffed(&server).await;
    let mut parent = Client::new(&server);
    parent.onboard("b@example.com", PASSWORD_B).await;
    let first = contribute(&mut parent, &s.fam.child_b, "We baked bread").await;
    let second = contribute(&mut parent, &s.fam.child_b, "A photo of the cat").await;
    let mut c = Client::new(&server);
    first_sign_in(&mut c, MANAGER, PASSWORD_M).await;
    let queue = c
        .call("GET", "/api/v1/admin/contributions?status=pending", None)
        .await
        .json();
    let queue = queue.as_array().unwrap();
    assert_eq!(queue.len(), 2);
    assert_eq!(queue[0]["id"], first.as_str());
    assert_eq!(queue[0]["child_name"], "Bea Quinn");
    assert_eq!(queue[0]["parent_name"], "Bo Quinn");
    assert_eq!(queue[0]["text"], "We baked bread");
    assert_eq!(queue[0]["status"], "pending");
    assert_eq!(queue[0]["media"], json!([]));

    let path = |id: &str, what: &str| format!("/api/v1/admin/contributions/{id}/{what}");
    let r = c
        .call("POST", &path(&first, "approve"), Some(json!({})))
        .await;
    assert_eq!(r.json(), json!({"id": first, "status": "approved"}));
    let r = c
        .call("POST", &path(&first, "approve"), Some(json!({})))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.code(), "already_reviewed");
    let r = c
        .call(
            "POST",
            &path(&second, "reject"),
            Some(json!({"reason": "  "})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let reason = "Please send photos of Bea only";
    let r = c
        .call(
            "POST",
            &path(&second, "reject"),
            Some(json!({ "reason": reason })),
        )
        .await;
    assert_eq!(r.json(), json!({"id": second, "status": "rejected"}));
    let r = c
        .call(
            "POST",
            &path(&first, "reject"),
            Some(json!({ "reason": reason })),
        )
        .await;
    assert_eq!(r.code(), "already_reviewed");
    let r = c
        .call(
            "POST",
            &path(&s.fam.entry_b.to_string(), "approve"),
            Some(json!({})),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::NOT_FOUND,
        "an observation is no contribution"
    );

    // The parent sees both outcomes, and why the second was turned down.
    let mine = parent
        .call(
            "GET",
            &format!("/api/v1/children/{}/contributions", s.fam.child_b),
            None,
        )
        .await
        .json();
    let outcome = |id: &str| {
        mine.as_array()
            .unwrap()
            .iter()
            .find(|x| x["id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(outcome(&first)["status"], "approved");
    assert_eq!(outcome(&second)["status"], "rejected");
    assert_eq!(outcome(&second)["reason"], reason);
    let all = c
        .call("GET", "/api/v1/admin/contributions?status=all", None)
        .await
        .json();
    assert_eq!(all.as_array().unwrap().len(), 2);
    assert_eq!(
        c.call("GET", "/api/v1/admin/contributions", None)
            .await
            .json(),
        json!([])
    );
    let r = c
        .call("GET", "/api/v1/admin/contributions?status=maybe", None)
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let who = format!("staff:{}", s.manager);
    let log = actions(&server.store());
    for action in ["contribution_approve", "contribution_reject"] {
        assert!(log.contains(&(who.clone(), action.to_owned())), "{action}");
    }
    server.stop().await;
}

/// Every operation under `/api/v1/admin/` in the served OpenAPI document, its `{id}` filled
/// with an id that exists (so a 404 is the role's, not the id's).
pub(crate) async fn admin_operations(c: &mut Client, id: &str) -> Vec<(String, String)> {
    let doc = c.call("GET", "/api/v1/openapi.json", None).await.json();
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        if !path.starts_with("/api/v1/admin/") {
            continue;
        }
        for method in item.as_object().unwrap().keys() {
            ops.push((
                method.to_uppercase(),
                path.replace("{id}", id).replace("{child_id}", id),
            ));
        }
    }
    ops
}

/// A body that any admin operation takes.
pub(crate) fn any_admin_body(fresh: &str) -> Value {
    json!({"totp": fresh, "device_name": "probe", "reason": "probe"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_answers_404_to_everyone_but_a_manager() {
    let server = TestServer::start().await;
    let s = staffed(&server).await;
    let mut manager = Client::new(&server);
    let mut app = first_sign_in(&mut manager, MANAGER, PASSWORD_M).await;
    let device = enrol_from_console(&mut manager, &server, "Room 1 tablet").await;
    let ops = admin_operations(&mut manager, &device).await;
    assert!(ops.len() >= 10, "{ops:?}");

    let mut parent = Client::new(&server);
    parent.onboard("a@example.com", PASSWORD_A).await;
    let mut practitioner = Client::new(&server);
    assert_eq!(
        practitioner.sign_in(PRACTITIONER, PASSWORD_P).await.status,
        StatusCode::UNAUTHORIZED
    );
    let mut half = Client::new(&server);
    assert_eq!(
        half.sign_in(MANAGER, PASSWORD_M).await.json(),
        json!({"mfa_required": true})
    );
    let mut anon = Client::new(&server);
    // Each of them with a code that would be fresh for the manager: still nothing.
    let fresh = app.fresh().await;
    for (who, c) in [
        ("a parent", &mut parent),
        ("a practitioner", &mut practitioner),
        ("a half-signed-in manager", &mut half),
        ("a signed-out client", &mut anon),
    ] {
        for (method, path) in &ops {
            let r = c.call(method, path, Some(any_admin_body(&fresh))).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{method} {path} as {who}");
            assert_eq!(r.code(), "not_found", "{method} {path} as {who}");
        }
    }
    // Nothing happened to the tablet, and the manager's code is still unused.
    assert_eq!(server.devices()[0].status, DeviceStatus::Active);
    let r = step(&mut manager, &device, "revoke", json!({ "totp": fresh })).await;
    assert_eq!(r.json()["status"], "revoked");
    // The parent's and the half-signed-in sessions still hold: a probe ends nothing.
    assert_eq!(
        parent.call("GET", "/api/v1/me", None).await.status,
        StatusCode::OK
    );
    let _ = s.practitioner;
    server.stop().await;
}

//! The parent's account security over real TLS: the TOTP second factor (set-up, the
//! half-signed-in session, wrong and replayed codes, the shared lockout, turning it off) and
//! invitations (the CLI's link and its e-mail to a real SMTP listener, expiry, reuse, the
//! password rule).

use hyper::StatusCode;
use serde_json::{Value, json};
use sprig_server::{ServerStore, admin};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::portal::{Client, PASSWORD_A, PASSWORD_B, families};
use crate::support::TestServer;

pub(crate) fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The code of the app holding `secret` (base32) at `t` (Unix seconds).
pub(crate) fn code_at(secret: &str, t: u64) -> String {
    let bytes = totp_rs::Secret::try_from_base32(secret)
        .unwrap()
        .as_bytes()
        .to_vec();
    let totp = totp_rs::Builder::new().with_secret(bytes).build().unwrap();
    totp.generate(t).to_string()
}

/// A six-digit code that is none of those valid around `t0` (a step before to two after).
pub(crate) fn wrong(secret: &str, t0: u64) -> String {
    let valid: Vec<String> = (0..4).map(|i| code_at(secret, t0 + i * 30 - 30)).collect();
    (0..10)
        .map(|d| format!("{d}{d}{d}{d}{d}{d}"))
        .find(|c| !valid.contains(c))
        .unwrap()
}

/// Signs parent A in and turns TOTP on; returns the secret and the time (Unix seconds) of
/// the code that confirmed it. Later codes are taken at that time plus whole steps, so a test
/// that crosses a step boundary still means what it says.
async fn turn_on(c: &mut Client) -> (String, u64) {
    assert_eq!(
        c.sign_in("a@example.com", PASSWORD_A).await.json(),
        json!({"mfa_required": false})
    );
    let r = c.call("POST", "/api/v1/account/totp", None).await;
    assert_eq!(r.status, StatusCode::OK);
    let setup = r.json();
    let secret = setup["secret"].as_str().unwrap().to_owned();
    let uri = setup["otpauth_uri"].as_str().unwrap();
    assert!(uri.starts_with("otpauth://totp/Sprig:"), "{uri}");
    assert!(uri.contains(&format!("secret={secret}")), "{uri}");
    let svg = setup["qr_svg"].as_str().unwrap();
    assert!(svg.contains("<svg") && svg.contains("</svg>"), "{svg}");
    // Not on until a code confirms it: sign-in still asks for none.
    assert_eq!(
        c.call("GET", "/api/v1/me", None).await.json()["totp_enabled"],
        false
    );
    let t0 = now_s();
    let r = send_code(
        c,
        "POST",
        "/api/v1/account/totp/confirm",
        &wrong(&secret, t0),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.code(), "wrong_code");
    let r = send_code(
        c,
        "POST",
        "/api/v1/account/totp/confirm",
        &code_at(&secret, t0),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        c.call("GET", "/api/v1/me", None).await.json()["totp_enabled"],
        true
    );
    // Never handed out again.
    let r = c.call("POST", "/api/v1/account/totp", None).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(!String::from_utf8_lossy(&r.body).contains(&secret));
    (secret, t0)
}

/// Sends `{code}` to `path` with `method`.
async fn send_code(c: &mut Client, method: &str, path: &str, code: &str) -> crate::support::Reply {
    c.call(method, path, Some(json!({ "code": code }))).await
}

async fn mfa(c: &mut Client, code: &str) -> crate::support::Reply {
    send_code(c, "POST", "/api/v1/session/mfa", code).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn totp_half_signs_in_until_a_fresh_code_and_refuses_replays() {
    let server = TestServer::start().await;
    families(&server).await;
    let mut c = Client::new(&server);
    let (secret, t0) = turn_on(&mut c).await;

    let mut phone = Client::new(&server);
    let r = phone.sign_in("a@example.com", PASSWORD_A).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json(), json!({"mfa_required": true}));
    let half = phone.cookie.clone().unwrap();
    // Half signed in: nothing else is reachable.
    for (method, path) in [
        ("GET", "/api/v1/me"),
        ("GET", "/api/v1/sessions"),
        ("GET", "/api/v1/agreement"),
        ("POST", "/api/v1/account/totp"),
    ] {
        let r = phone.call(method, path, None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{method} {path}");
        assert_eq!(r.code(), "signed_out");
    }
    // A wrong code: 401, still half signed in.
    let r = mfa(&mut phone, &wrong(&secret, t0)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.code(), "wrong_code");
    // The set-up's code (its step) was used: replaying it is refused.
    let r = mfa(&mut phone, &code_at(&secret, t0)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.code(), "code_used");
    // The next step's code (within the drift allowed) signs in, with a new session id.
    let next = code_at(&secret, t0 + 30);
    let r = mfa(&mut phone, &next).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_ne!(phone.cookie.as_deref(), Some(half.as_str()));
    assert_eq!(
        phone.call("GET", "/api/v1/me", None).await.json()["name"],
        "Alex Lovelace"
    );
    // The half-signed-in id is dead.
    let mut old = Client::new(&server);
    old.cookie = Some(half);
    assert_eq!(mfa(&mut old, &next).await.code(), "signed_out");

    // Elsewhere, the same code again: refused.
    let mut laptop = Client::new(&server);
    assert_eq!(
        laptop.sign_in("a@example.com", PASSWORD_A).await.json(),
        json!({"mfa_required": true})
    );
    assert_eq!(mfa(&mut laptop, &next).await.code(), "code_used");
    // Wrong and replayed codes count like wrong passwords (one wrong at set-up, one wrong and
    // one replay at the phone, one replay here): the fifth failure, a code that is not even
    // one, locks the account and ends this half sign-in.
    let n = server
        .store()
        .attempts_since("login_failure", "a@example.com", 0)
        .unwrap();
    assert_eq!(n.count, 4);
    let r = mfa(&mut laptop, "12345x").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.code(), "locked");
    let r = laptop.sign_in("a@example.com", PASSWORD_A).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.code(), "locked");
    // The other family is not.
    assert_eq!(
        laptop.sign_in("b@example.com", PASSWORD_B).await.json(),
        json!({"mfa_required": false})
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_codes_lock_the_account_like_wrong_passwords() {
    let server = TestServer::start().await;
    families(&server).await;
    let mut c = Client::new(&server);
    let (secret, t0) = turn_on(&mut c).await; // one wrong code
    let mut p = Client::new(&server);
    let r = p.sign_in("a@example.com", "not the password at all").await;
    assert_eq!(r.code(), "wrong_credentials"); // two
    assert_eq!(
        p.sign_in("a@example.com", PASSWORD_A).await.json(),
        json!({"mfa_required": true})
    );
    assert_eq!(mfa(&mut p, &wrong(&secret, t0)).await.code(), "wrong_code"); // three
    assert_eq!(mfa(&mut p, "000").await.code(), "wrong_code"); // four
    // The fifth locks the account and ends the half sign-in.
    let r = mfa(&mut p, &wrong(&secret, t0)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.code(), "locked");
    assert_eq!(
        mfa(&mut p, &code_at(&secret, t0 + 30)).await.code(),
        "signed_out"
    );
    assert_eq!(
        p.sign_in("a@example.com", PASSWORD_A).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turning_totp_off_takes_a_current_code() {
    let server = TestServer::start().await;
    let f = families(&server).await;
    let mut c = Client::new(&server);
    let (secret, t0) = turn_on(&mut c).await;
    let r = send_code(
        &mut c,
        "DELETE",
        "/api/v1/account/totp",
        &wrong(&secret, t0),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.code(), "wrong_code");
    // The confirming code (this step) was used: not again.
    let r = send_code(
        &mut c,
        "DELETE",
        "/api/v1/account/totp",
        &code_at(&secret, t0),
    )
    .await;
    assert_eq!(r.code(), "code_used");
    let r = send_code(
        &mut c,
        "DELETE",
        "/api/v1/account/totp",
        &code_at(&secret, t0 + 30),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(
        server
            .store()
            .totp(&format!("parent:{}", f.parent_a))
            .unwrap()
            .is_none()
    );
    assert_eq!(
        c.call("GET", "/api/v1/me", None).await.json()["totp_enabled"],
        false
    );
    let mut p = Client::new(&server);
    assert_eq!(
        p.sign_in("a@example.com", PASSWORD_A).await.json(),
        json!({"mfa_required": false})
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_turns_totp_off_for_a_parent_who_lost_the_phone() {
    let server = TestServer::start().await;
    let f = families(&server).await;
    let mut c = Client::new(&server);
    turn_on(&mut c).await;
    let data = server.data.root().to_str().unwrap().to_owned();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_sprig-server"))
            .args([
                "parent",
                "totp-off",
                "--data",
                &data,
                "--email",
                "A@example.com",
                "--json",
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["id"], f.parent_a.to_string());
    let mut p = Client::new(&server);
    assert_eq!(
        p.sign_in("a@example.com", PASSWORD_A).await.json(),
        json!({"mfa_required": false})
    );
    assert!(
        server
            .store()
            .audit_log(5)
            .unwrap()
            .iter()
            .any(|e| e.action == "parent_totp_off")
    );
    server.stop().await;
}

fn token_of(link: &str) -> String {
    link.rsplit_once("/#/invite/").unwrap().1.to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invitation_sets_a_password_once_by_the_rule() {
    let server = TestServer::start().await;
    let f = families(&server).await;
    let store = server.store();
    let out = admin::parent_invite(
        &store,
        "Cat@Example.com",
        "Cat Lovelace",
        &[f.child_a.to_string()],
        admin::now_ms(),
    )
    .unwrap();
    assert!(out.link.contains("/#/invite/"), "{}", out.link);
    let token = token_of(&out.link);
    assert_eq!(token.len(), 64);
    // The store holds only the token's hash.
    let db = std::fs::read(server.data.db()).unwrap_or_default();
    assert!(!db.windows(token.len()).any(|w| w == token.as_bytes()));
    // Not signed in with no password: a sign-in is refused like any wrong one.
    let mut c = Client::new(&server);
    assert_eq!(
        c.sign_in("cat@example.com", "anything at all here")
            .await
            .code(),
        "wrong_credentials"
    );
    let path = format!("/api/v1/invitations/{token}");
    let r = c.call("GET", &path, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.json(),
        json!({"name": "Cat Lovelace", "email": "cat@example.com"})
    );
    for (pw, why) in [
        ("too short", "password_too_short"),
        ("1qaz2wsx3edc", "password_too_common"),
        ("Q1W2E3R4T5Y6", "password_too_common"),
    ] {
        let r = c.call("POST", &path, Some(json!({ "password": pw }))).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{pw}");
        assert_eq!(r.code(), why);
        assert!(!r.json()["message"].as_str().unwrap().is_empty());
    }
    assert!(
        c.call("POST", &path, Some(json!({"password": "1qaz2wsx3edc"})))
            .await
            .json()["message"]
            .as_str()
            .unwrap()
            .starts_with("This password is too common")
    );
    // Refusals did not use the link up.
    let pw = "tulips in the window box";
    let r = c.call("POST", &path, Some(json!({ "password": pw }))).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    // Used: gone, for reading and for a second use.
    assert_eq!(
        c.call("GET", &path, None).await.status,
        StatusCode::NOT_FOUND
    );
    let r = c
        .call(
            "POST",
            &path,
            Some(json!({"password": "another good pass phrase"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        c.sign_in("cat@example.com", pw).await.json(),
        json!({"mfa_required": false})
    );
    assert_eq!(
        c.call("GET", "/api/v1/me", None).await.json()["name"],
        "Cat Lovelace"
    );
    // Tokens of the wrong form are not looked up; unknown ones are not found.
    for bad in [
        "short",
        &"AB".repeat(32),
        &"ab".repeat(33),
        &"zz".repeat(32),
    ] {
        let r = c
            .call("GET", &format!("/api/v1/invitations/{bad}"), None)
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{bad}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invitation_expires_after_seven_days() {
    let server = TestServer::start().await;
    let f = families(&server).await;
    let store = server.store();
    let day = 24 * 60 * 60 * 1000;
    // Made (by the store's clock) 7 days and a minute ago: expired.
    let old = admin::parent_invite(
        &store,
        "old@example.com",
        "Old Invite",
        &[f.child_a.to_string()],
        admin::now_ms() - 7 * day - 60_000,
    )
    .unwrap();
    // Made 6 days and 23 hours ago: still good.
    let recent = admin::parent_invite(
        &store,
        "recent@example.com",
        "Recent Invite",
        &[f.child_b.to_string()],
        admin::now_ms() - 7 * day + 60 * 60 * 1000,
    )
    .unwrap();
    let mut c = Client::new(&server);
    let path = format!("/api/v1/invitations/{}", token_of(&old.link));
    assert_eq!(
        c.call("GET", &path, None).await.status,
        StatusCode::NOT_FOUND
    );
    let r = c
        .call(
            "POST",
            &path,
            Some(json!({"password": "a perfectly fine phrase"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.json()["message"].as_str().unwrap().contains("expired"));
    let path = format!("/api/v1/invitations/{}", token_of(&recent.link));
    assert_eq!(c.call("GET", &path, None).await.status, StatusCode::OK);
    server.stop().await;
}

/// A minimal SMTP receiver on loopback: takes one message and hands over its DATA.
async fn smtp_sink() -> (u16, tokio::task::JoinHandle<(Vec<String>, String)>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let (sock, _) = listener.accept().await.unwrap();
        let (r, mut w) = sock.into_split();
        let mut r = BufReader::new(r);
        w.write_all(b"220 sink ESMTP\r\n").await.unwrap();
        let (mut commands, mut data) = (Vec::new(), String::new());
        loop {
            let mut line = String::new();
            if r.read_line(&mut line).await.unwrap() == 0 {
                break;
            }
            let cmd = line.trim_end().to_owned();
            let verb = cmd.split(' ').next().unwrap_or_default().to_uppercase();
            commands.push(cmd);
            match verb.as_str() {
                "EHLO" | "HELO" => w.write_all(b"250 sink\r\n").await.unwrap(),
                "DATA" => {
                    w.write_all(b"354 end with .\r\n").await.unwrap();
                    loop {
                        let mut l = String::new();
                        r.read_line(&mut l).await.unwrap();
                        if l == ".\r\n" || l.is_empty() {
                            break;
                        }
                        data.push_str(&l);
                    }
                    w.write_all(b"250 queued\r\n").await.unwrap();
                }
                "QUIT" => {
                    w.write_all(b"221 bye\r\n").await.unwrap();
                    break;
                }
                _ => w.write_all(b"250 ok\r\n").await.unwrap(),
            }
        }
        (commands, data)
    });
    (port, task)
}

/// Quoted-printable soft line breaks and `=3D`, as lettre may encode a long line.
fn unfold(qp: &str) -> String {
    qp.replace("=\r\n", "").replace("=3D", "=")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parent_invite_prints_the_link_and_e_mails_it_through_smtp() {
    let server = TestServer::start().await;
    let f = families(&server).await;
    let (port, sink) = smtp_sink().await;
    let data = server.data.root().to_str().unwrap().to_owned();
    let child = f.child_a.to_string();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_sprig-server"))
            .args([
                "parent",
                "invite",
                "--data",
                &data,
                "--email",
                "dee@example.com",
                "--name",
                "Dee Lovelace",
                "--child",
                &child,
                "--smtp-url",
                &format!("smtp://127.0.0.1:{port}"),
                "--mail-from",
                "Acorns Nursery <sprig@acorns.example>",
                "--json",
            ])
            .env("RUST_LOG", "warn")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["emailed"], true);
    let link = v["link"].as_str().unwrap().to_owned();
    let (commands, data) = tokio::time::timeout(std::time::Duration::from_secs(20), sink)
        .await
        .unwrap()
        .unwrap();
    assert!(
        commands
            .iter()
            .any(|c| c.contains("<sprig@acorns.example>")),
        "{commands:?}"
    );
    assert!(
        commands.iter().any(|c| c.contains("<dee@example.com>")),
        "{commands:?}"
    );
    let body = unfold(&data);
    assert!(body.contains(&link), "{body}");
    assert!(body.contains("Dee Lovelace"), "{body}");
    // It names no child.
    assert!(!body.contains("Ada"), "{body}");
    // The e-mailed link works.
    let mut c = Client::new(&server);
    let r = c
        .call(
            "GET",
            &format!("/api/v1/invitations/{}", token_of(&link)),
            None,
        )
        .await;
    assert_eq!(r.json()["email"], "dee@example.com");

    // Without SMTP it only prints the link; a relay that is not there is a clear error.
    let data = server.data.root().to_str().unwrap().to_owned();
    let child = f.child_b.to_string();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_sprig-server"))
            .args([
                "parent",
                "invite",
                "--data",
                &data,
                "--email",
                "eve@example.com",
                "--name",
                "Eve Quinn",
                "--child",
                &child,
                "--smtp-url",
                "smtp://127.0.0.1:9",
                "--mail-from",
                "sprig@acorns.example",
            ])
            .env("RUST_LOG", "warn")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/#/invite/"), "{err}");
    server.stop().await;
}

//! The parents' portal API over real TLS: sessions and their cookie, the lockout, the
//! agreement and consent gates, the journal projection, media, replies, CSRF, headers, and the
//! isolation matrix generated from the OpenAPI document.

use std::sync::Arc;
use std::time::Duration;

use hyper::StatusCode;
use serde_json::{Value, json};
use sprig_core::{
    Actor, ChildId, Consent, EntryId, MediaRef, NewEntry, ParentId, Role, StaffId, Timestamp,
    plan_entry,
};
use sprig_server::docs::{AnyDoc, edit_journal, edit_roster, load_doc};
use sprig_server::media_store::{FsMediaStore, MediaStore};
use sprig_server::{ServerStore, admin};

use crate::support::{Reply, TestServer, client_config, request, request_to};

pub(crate) const PASSWORD_A: &str = "correct horse battery staple";
pub(crate) const PASSWORD_B: &str = "another long pass phrase";

/// A browser-like client: one cookie jar, same-origin fetches.
pub(crate) struct Client {
    pub(crate) addr: std::net::SocketAddr,
    pub(crate) cfg: Arc<rustls::ClientConfig>,
    pub(crate) cookie: Option<String>,
    set_cookie: Vec<String>,
    /// The host name asked for (TLS server name and `Host`), when not the default.
    host: Option<String>,
}

impl Client {
    pub(crate) fn new(server: &TestServer) -> Client {
        Client {
            addr: server.addr,
            cfg: client_config(&server.ca_pem, None),
            cookie: None,
            set_cookie: Vec::new(),
            host: None,
        }
    }

    /// A client of the setting at `host` on a hosted server, trusting `ca_pem`.
    pub(crate) fn at(addr: std::net::SocketAddr, ca_pem: &str, host: &str) -> Client {
        Client {
            addr,
            cfg: client_config(ca_pem, None),
            cookie: None,
            set_cookie: Vec::new(),
            host: Some(host.to_owned()),
        }
    }

    pub(crate) async fn call(&mut self, method: &str, path: &str, body: Option<Value>) -> Reply {
        self.call_with(method, path, body, &[("sec-fetch-site", "same-origin")])
            .await
    }

    async fn call_with(
        &mut self,
        method: &str,
        path: &str,
        body: Option<Value>,
        extra: &[(&str, &str)],
    ) -> Reply {
        let bytes = body
            .map(|b| serde_json::to_vec(&b).unwrap())
            .unwrap_or_default();
        let mut headers: Vec<(&str, &str)> = vec![("content-type", "application/json")];
        headers.extend_from_slice(extra);
        self.send(method, path, &headers, bytes).await
    }

    /// A same-origin request with a body of any type (a multipart upload).
    pub(crate) async fn call_raw(
        &mut self,
        method: &str,
        path: &str,
        content_type: &str,
        bytes: Vec<u8>,
    ) -> Reply {
        self.try_call_raw(method, path, content_type, bytes)
            .await
            .unwrap()
    }

    /// [`Client::call_raw`], with the transport's failure returned (a server may answer an
    /// oversized upload and close before the client has written all of it).
    pub(crate) async fn try_call_raw(
        &mut self,
        method: &str,
        path: &str,
        content_type: &str,
        bytes: Vec<u8>,
    ) -> Result<Reply, String> {
        let headers = [
            ("content-type", content_type),
            ("sec-fetch-site", "same-origin"),
        ];
        self.try_send(method, path, &headers, bytes).await
    }

    async fn send(
        &mut self,
        method: &str,
        path: &str,
        extra: &[(&str, &str)],
        bytes: Vec<u8>,
    ) -> Reply {
        self.try_send(method, path, extra, bytes).await.unwrap()
    }

    async fn try_send(
        &mut self,
        method: &str,
        path: &str,
        extra: &[(&str, &str)],
        bytes: Vec<u8>,
    ) -> Result<Reply, String> {
        let cookie = self.cookie.clone();
        let mut headers: Vec<(&str, &str)> = Vec::new();
        if let Some(c) = &cookie {
            headers.push(("cookie", c));
        }
        headers.extend_from_slice(extra);
        let r = match &self.host {
            Some(h) => {
                request_to(
                    self.addr,
                    h,
                    self.cfg.clone(),
                    method,
                    path,
                    &headers,
                    bytes,
                )
                .await?
            }
            None => request(self.addr, self.cfg.clone(), method, path, &headers, bytes).await?,
        };
        self.set_cookie = r
            .headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        for c in &self.set_cookie {
            let pair = c.split(';').next().unwrap().to_owned();
            if c.contains("Max-Age=0") || pair.ends_with('=') {
                self.cookie = None;
            } else {
                self.cookie = Some(pair);
            }
        }
        Ok(r)
    }

    pub(crate) async fn sign_in(&mut self, email: &str, password: &str) -> Reply {
        self.call(
            "POST",
            "/api/v1/session",
            Some(json!({"email": email, "password": password})),
        )
        .await
    }

    /// Signs in, accepts the agreement and answers consent for every child.
    pub(crate) async fn onboard(&mut self, email: &str, password: &str) {
        assert_eq!(self.sign_in(email, password).await.status, StatusCode::OK);
        let a = self.call("GET", "/api/v1/agreement", None).await.json();
        let r = self
            .call(
                "POST",
                "/api/v1/agreement",
                Some(json!({"version": a["version"]})),
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let me = self.call("GET", "/api/v1/me", None).await.json();
        for c in me["children"].as_array().unwrap() {
            if c["consent_required"].as_bool().unwrap() {
                let path = format!("/api/v1/children/{}/consent", c["id"].as_str().unwrap());
                let r = self
                    .call("POST", &path, Some(json!({"photo_consent": true})))
                    .await;
                assert_eq!(r.status, StatusCode::NO_CONTENT);
            }
        }
    }
}

/// Two families: A's child Ada (consent not yet asked) and B's child Bea (consent yes).
pub(crate) struct Families {
    pub(crate) staff: StaffId,
    pub(crate) child_a: ChildId,
    pub(crate) child_b: ChildId,
    pub(crate) parent_a: ParentId,
    pub(crate) entry_a: EntryId,
    pub(crate) entry_b: EntryId,
    pub(crate) media_a: String,
    pub(crate) media_b: String,
}

pub(crate) fn photo(bytes: &[u8]) -> (MediaRef, String) {
    use sha2::Digest;
    let sha: [u8; 32] = sha2::Sha256::digest(bytes).into();
    let mut m = sprig_testkit::photo_ref(0);
    m.sha256 = sprig_core::Sha256::from_bytes(sha);
    m.size = bytes.len() as u64;
    (m, hex::encode(sha))
}

pub(crate) async fn store_media(server: &TestServer, bytes: &'static [u8]) {
    let (_, sha) = photo(bytes);
    let media = FsMediaStore::new(server.data.media());
    media.prepare().await.unwrap();
    let body = futures_util::stream::once(async move { Ok(hyper::body::Bytes::from(bytes)) });
    media
        .put(&sha, bytes.len() as u64, Box::pin(body))
        .await
        .unwrap();
}

pub(crate) fn record(
    store: &dyn ServerStore,
    staff: &StaffId,
    children: &[ChildId],
    text: &str,
    media: Vec<MediaRef>,
    at: i64,
) -> EntryId {
    let AnyDoc::Roster(roster) = load_doc(store, &sprig_proto::DocId::Roster).unwrap() else {
        panic!("not a roster");
    };
    let plan = plan_entry(
        &roster,
        &Actor::Staff(staff.clone()),
        NewEntry {
            children: children.to_vec(),
            text: text.into(),
            media,
            ..NewEntry::default()
        },
        Timestamp(at),
    )
    .unwrap();
    for c in children {
        edit_journal(
            store,
            c,
            |j| -> Result<(), sprig_server::docs::DocStoreError> {
                j.apply_entry(&plan).unwrap();
                Ok(())
            },
        )
        .unwrap();
    }
    plan.id
}

const PHOTO_A: &[u8] = b"\xff\xd8\xff\xe0 photo of Ada";
const PHOTO_B: &[u8] = b"\xff\xd8\xff\xe0 photo of Bea";

pub(crate) async fn families(server: &TestServer) -> Families {
    let store = server.store();
    let staff = admin::staff_add(&store, "Amara Okafor", Role::Practitioner, "2468", None).unwrap();
    let child_a = admin::child_add(
        &store,
        "Ada Lovelace",
        staff.as_str(),
        Some("Ladybirds"),
        Consent::NotAsked,
        None,
    )
    .unwrap();
    let child_b = admin::child_add(
        &store,
        "Bea Quinn",
        staff.as_str(),
        Some("Ladybirds"),
        Consent::Yes,
        None,
    )
    .unwrap();
    let parent_a = admin::parent_add(
        &store,
        "a@example.com",
        "Alex Lovelace",
        PASSWORD_A,
        &[child_a.to_string()],
    )
    .unwrap();
    admin::parent_add(
        &store,
        "b@example.com",
        "Bo Quinn",
        PASSWORD_B,
        &[child_b.to_string()],
    )
    .unwrap();
    let (ma, media_a) = photo(PHOTO_A);
    let (mb, media_b) = photo(PHOTO_B);
    store_media(server, PHOTO_A).await;
    store_media(server, PHOTO_B).await;
    let entry_a = record(
        &store,
        &staff,
        std::slice::from_ref(&child_a),
        "Ada built a tower",
        vec![ma],
        1_000,
    );
    let entry_b = record(
        &store,
        &staff,
        std::slice::from_ref(&child_b),
        "Bea painted",
        vec![mb],
        1_000,
    );
    Families {
        staff,
        child_a,
        child_b,
        parent_a,
        entry_a,
        entry_b,
        media_a,
        media_b,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_sets_a_host_only_secure_cookie_and_renews_the_id() {
    let server = TestServer::start().await;
    families(&server).await;
    let mut c = Client::new(&server);
    let r = c.sign_in("A@Example.com ", PASSWORD_A).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(r.json(), json!({"mfa_required": false}));
    let set = c.set_cookie.join("\n");
    assert!(set.starts_with("__Host-sprig-session="), "{set}");
    for flag in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(flag), "{flag} missing from {set}");
    }
    assert!(!set.to_lowercase().contains("domain="), "{set}");
    // 128 random bits, base64url: 22 characters.
    let first = c.cookie.clone().unwrap();
    assert_eq!(first.split_once('=').unwrap().1.len(), 22);
    // The store holds a hash of the id, never the id.
    let id = first.split_once('=').unwrap().1.to_owned();
    let db = std::fs::read(server.data.db()).unwrap_or_default();
    assert!(!db.windows(id.len()).any(|w| w == id.as_bytes()));

    // Signing in again (or after a planted cookie) gives a new id; the old one is dead.
    assert_eq!(
        c.sign_in("a@example.com", PASSWORD_A).await.status,
        StatusCode::OK
    );
    let second = c.cookie.clone().unwrap();
    assert_ne!(first, second);
    let mut old = Client::new(&server);
    old.cookie = Some(first);
    assert_eq!(
        old.call("GET", "/api/v1/me", None).await.status,
        StatusCode::UNAUTHORIZED
    );
    let me = c.call("GET", "/api/v1/me", None).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.json()["name"], "Alex Lovelace");

    // Sign-out ends the session on the server: the cookie no longer works.
    let kept = c.cookie.clone();
    assert_eq!(
        c.call("DELETE", "/api/v1/session", None).await.status,
        StatusCode::NO_CONTENT
    );
    let mut replay = Client::new(&server);
    replay.cookie = kept;
    assert_eq!(
        replay.call("GET", "/api/v1/me", None).await.status,
        StatusCode::UNAUTHORIZED
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_wrong_passwords_lock_the_account_for_fifteen_minutes() {
    let server = TestServer::start().await;
    families(&server).await;
    let mut c = Client::new(&server);
    for _ in 0..5 {
        let r = c.sign_in("a@example.com", "not the password at all").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert_eq!(r.code(), "wrong_credentials");
    }
    // Even the right password is refused now, with when to try again.
    let r = c.sign_in("a@example.com", PASSWORD_A).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((800..=900).contains(&retry), "{retry}");
    // Counted in the database, per address: the other family is not locked.
    let n = server
        .store()
        .attempts_since("login_failure", "a@example.com", 0)
        .unwrap();
    assert_eq!(n.count, 5);
    assert_eq!(
        c.sign_in("b@example.com", PASSWORD_B).await.status,
        StatusCode::OK
    );
    // An unknown address is refused the same way as a wrong password.
    let r = c.sign_in("nobody@example.com", PASSWORD_A).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.code(), "wrong_credentials");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agreement_then_consent_open_the_journal_newest_first_in_pages() {
    let server = TestServer::start().await;
    let f = families(&server).await;
    let store = server.store();
    for i in 0..24 {
        record(
            &store,
            &f.staff,
            std::slice::from_ref(&f.child_a),
            &format!("entry {i}"),
            vec![],
            2_000 + i,
        );
    }
    let mut c = Client::new(&server);
    let journal = format!("/api/v1/children/{}/journal", f.child_a);
    assert_eq!(
        c.call("GET", &journal, None).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        c.sign_in("a@example.com", PASSWORD_A).await.status,
        StatusCode::OK
    );
    let me = c.call("GET", "/api/v1/me", None).await.json();
    assert_eq!(me["agreement_required"], true);
    assert_eq!(
        me["children"],
        json!([{"id": f.child_a.to_string(), "name": "Ada Lovelace", "consent_required": true,
                "photo_consent": null}])
    );
    let r = c.call("GET", &journal, None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.code(), "agreement_required");
    let consent = format!("/api/v1/children/{}/consent", f.child_a);
    let r = c
        .call("POST", &consent, Some(json!({"photo_consent": true})))
        .await;
    assert_eq!(r.code(), "agreement_required");

    let a = c.call("GET", "/api/v1/agreement", None).await.json();
    assert!(a["text"].as_str().unwrap().contains("not download"));
    let r = c
        .call("POST", "/api/v1/agreement", Some(json!({"version": "old"})))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let r = c
        .call(
            "POST",
            "/api/v1/agreement",
            Some(json!({"version": a["version"]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let rec = store
        .latest_agreement(&format!("parent:{}", f.parent_a))
        .unwrap()
        .unwrap();
    assert_eq!(rec.version, a["version"].as_str().unwrap());
    assert_eq!(rec.session_hash.len(), 64);

    let r = c.call("GET", &journal, None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.code(), "consent_required");
    let r = c
        .call("POST", &consent, Some(json!({"photo_consent": false})))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let AnyDoc::Roster(roster) = load_doc(&store, &sprig_proto::DocId::Roster).unwrap() else {
        panic!()
    };
    assert_eq!(roster.child(&f.child_a).unwrap().photo_consent, Consent::No);
    let me = c.call("GET", "/api/v1/me", None).await.json();
    assert_eq!(me["agreement_required"], false);
    assert_eq!(me["children"][0]["consent_required"], false);
    assert_eq!(me["children"][0]["photo_consent"], false);

    let page = c.call("GET", &journal, None).await;
    assert_eq!(page.status, StatusCode::OK);
    let page = page.json();
    assert_eq!(page["child_name"], "Ada Lovelace");
    let texts: Vec<&str> = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts.len(), 20);
    assert_eq!(texts[0], "entry 23");
    assert_eq!(texts[19], "entry 4");
    let next = page["next"].as_str().unwrap();
    let rest = c
        .call("GET", &format!("{journal}?before={next}"), None)
        .await
        .json();
    let texts: Vec<&str> = rest["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        texts,
        [
            "entry 3",
            "entry 2",
            "entry 1",
            "entry 0",
            "Ada built a tower"
        ]
    );
    assert_eq!(rest["next"], Value::Null);
    let first = &rest["entries"][4];
    assert_eq!(first["author"], "Amara Okafor");
    assert_eq!(
        first["media"][0]["url"],
        format!("/api/v1/media/{}", f.media_a)
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_replies_and_group_entries_as_a_parent_sees_them() {
    let server = TestServer::start().await;
    let f = families(&server).await;
    let store = server.store();
    let mut a = Client::new(&server);
    // A answers yes to photo consent, so a group photo of both children may be recorded.
    a.onboard("a@example.com", PASSWORD_A).await;
    let (mg, _) = photo(b"group photo");
    let group = record(
        &store,
        &f.staff,
        &[f.child_a.clone(), f.child_b.clone()],
        "The children made a den",
        vec![mg],
        5_000,
    );

    // Media: inline, never cached, only to an entitled parent.
    let m = a
        .call("GET", &format!("/api/v1/media/{}", f.media_a), None)
        .await;
    assert_eq!(m.status, StatusCode::OK);
    assert_eq!(m.body, PHOTO_A);
    assert_eq!(m.headers["cache-control"], "no-store");
    assert_eq!(m.headers["content-type"], "image/jpeg");
    assert_eq!(m.headers["content-disposition"], "inline");
    let m = a
        .call("GET", &format!("/api/v1/media/{}", f.media_b), None)
        .await;
    assert_eq!(m.status, StatusCode::NOT_FOUND);

    // A group entry never names another child; both children have consent, so the photo shows.
    let page = a
        .call(
            "GET",
            &format!("/api/v1/children/{}/journal", f.child_a),
            None,
        )
        .await;
    let body = String::from_utf8(page.body.clone()).unwrap();
    assert!(!body.contains("Bea"), "{body}");
    assert!(!body.contains(f.child_b.as_str()), "{body}");
    let g = &page.json()["entries"][0];
    assert_eq!(g["id"], group.to_string());
    assert_eq!(g["is_group"], true);
    assert_eq!(g["media"].as_array().unwrap().len(), 1);
    // Bea's parents withdraw consent: A no longer sees the group photo.
    edit_roster(
        &store,
        |r| -> Result<(), sprig_server::docs::DocStoreError> {
            r.set_consent(&f.child_b, Consent::No, Timestamp(admin::now_ms()))
                .unwrap();
            Ok(())
        },
    )
    .unwrap();
    let g = a
        .call(
            "GET",
            &format!("/api/v1/children/{}/journal", f.child_a),
            None,
        )
        .await
        .json()["entries"][0]
        .clone();
    assert_eq!(g["media"], json!([]));
    assert_eq!(g["media_hidden"], true);

    // Replies: attached to the entry, stored in the journal for the tablets, bounded.
    let path = format!("/api/v1/entries/{}/replies", f.entry_a);
    let r = a
        .call("POST", &path, Some(json!({"text": "He loved it!"})))
        .await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert!(!r.json()["id"].as_str().unwrap().is_empty());
    let AnyDoc::Journal(j) =
        load_doc(&store, &sprig_proto::DocId::Journal(f.child_a.clone())).unwrap()
    else {
        panic!()
    };
    let e = j.entry(&f.entry_a).unwrap();
    assert_eq!(e.replies.len(), 1);
    assert_eq!(e.replies[0].text, "He loved it!");
    let page = a
        .call(
            "GET",
            &format!("/api/v1/children/{}/journal", f.child_a),
            None,
        )
        .await
        .json();
    let replied = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == f.entry_a.to_string())
        .unwrap()
        .clone();
    assert_eq!(replied["replies"][0]["author"], "You");
    let r = a
        .call("POST", &path, Some(json!({"text": "x".repeat(2001)})))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = a.call("POST", &path, Some(json!({"text": "  "}))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_origin_posts_are_refused_and_headers_are_strict() {
    let server = TestServer::start().await;
    families(&server).await;
    let mut c = Client::new(&server);
    let r = c
        .call_with(
            "POST",
            "/api/v1/session",
            Some(json!({"email": "a@example.com", "password": PASSWORD_A})),
            &[
                ("origin", "https://evil.example"),
                ("sec-fetch-site", "cross-site"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.code(), "cross_origin");
    assert!(c.cookie.is_none());
    // Same origin by the Origin header alone (an older browser) is let through.
    let r = c
        .call_with(
            "POST",
            "/api/v1/session",
            Some(json!({"email": "a@example.com", "password": PASSWORD_A})),
            &[("origin", "https://localhost")],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = c
        .call_with(
            "DELETE",
            "/api/v1/session",
            None,
            &[("origin", "https://evil.example")],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let me = c.call("GET", "/api/v1/me", None).await;
    assert_eq!(
        me.status,
        StatusCode::OK,
        "the refused sign-out changed nothing"
    );
    let csp = me.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"));
    assert!(!csp.contains("unsafe-inline"));
    assert_eq!(me.headers["cache-control"], "no-store");
    assert_eq!(me.headers["x-content-type-options"], "nosniff");
    server.stop().await;
}

/// A body that is not JSON, sent without its content type, or missing a field is refused
/// like everything else: 400 with a JSON `{code, message}` (axum's own answers are plain text,
/// 415 or 422).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_are_refused_in_json() {
    let server = TestServer::start().await;
    families(&server).await;
    let mut a = Client::new(&server);
    for (content_type, body) in [
        ("text/plain", b"{}".to_vec()),
        ("application/json", b"\x00".to_vec()),
        (
            "application/json",
            br#"{"email": "a@example.com"}"#.to_vec(),
        ),
        (
            "application/json",
            br#"{"email": 5, "password": "x"}"#.to_vec(),
        ),
    ] {
        let r = a
            .call_raw("POST", "/api/v1/session", content_type, body)
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{content_type}");
        assert_eq!(r.code(), "bad_request");
        assert_eq!(r.headers["content-type"], "application/json");
        assert!(!r.json()["message"].as_str().unwrap().is_empty());
    }
    assert_eq!(
        a.sign_in("a@example.com", PASSWORD_A).await.status,
        StatusCode::OK
    );
    let r = a
        .call("POST", "/api/v1/agreement", Some(json!({"version": 3})))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.code(), "bad_request");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_end_after_idle_time_and_after_their_absolute_lifetime() {
    let server = TestServer::start_with(|c| {
        c.portal_idle = Duration::from_millis(1500);
        c.portal_absolute = Duration::from_secs(4);
    })
    .await;
    families(&server).await;
    let mut c = Client::new(&server);
    assert_eq!(
        c.sign_in("a@example.com", PASSWORD_A).await.status,
        StatusCode::OK
    );
    // Activity keeps it alive, up to the absolute limit.
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert_eq!(
            c.call("GET", "/api/v1/me", None).await.status,
            StatusCode::OK
        );
    }
    tokio::time::sleep(Duration::from_millis(1400)).await;
    assert_eq!(
        c.call("GET", "/api/v1/me", None).await.status,
        StatusCode::UNAUTHORIZED
    );
    // Idle for longer than the idle expiry: gone.
    let mut d = Client::new(&server);
    assert_eq!(
        d.sign_in("a@example.com", PASSWORD_A).await.status,
        StatusCode::OK
    );
    tokio::time::sleep(Duration::from_millis(1700)).await;
    assert_eq!(
        d.call("GET", "/api/v1/me", None).await.status,
        StatusCode::UNAUTHORIZED
    );
    server.stop().await;
}

/// One family's ids, for filling path templates.
struct Ids<'a> {
    child: &'a str,
    entry: &'a str,
    media: &'a str,
    session: &'a str,
}

/// Fills a path template from the OpenAPI document with the ids it takes.
fn fill(path: &str, ids: &Ids<'_>) -> String {
    let id = if path.starts_with("/api/v1/children/") {
        ids.child
    } else if path.starts_with("/api/v1/entries/") {
        ids.entry
    } else if path.starts_with("/api/v1/media/") {
        ids.media
    } else if path.starts_with("/api/v1/sessions/") {
        ids.session
    } else if path.starts_with("/api/v1/admin/") {
        // The console's: no parent has any of them (a manager's role matrix is in
        // `console.rs`); any id answers 404.
        ids.child
    } else if path.starts_with("/api/v1/invitations/") {
        // Nobody's invitation: a well-formed token no link carries (and one of each family
        // is never handed to the other). Probing answers 404 like any id.
        return path.replace("{token}", &"ab".repeat(32));
    } else {
        panic!("the isolation matrix does not know what id {path} takes: add it here");
    };
    path.replace("{id}", id)
}

/// Every operation of the OpenAPI document, with a body that satisfies any of them.
async fn operations(c: &mut Client) -> Vec<(String, String)> {
    let doc = c.call("GET", "/api/v1/openapi.json", None).await;
    assert_eq!(doc.status, StatusCode::OK);
    let doc = doc.json();
    assert_eq!(doc["openapi"].as_str().unwrap().chars().next(), Some('3'));
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            ops.push((method.to_uppercase(), path.clone()));
        }
    }
    assert!(ops.len() >= 9, "{ops:?}");
    ops
}

const ANY_BODY: fn() -> Value = || {
    json!({"photo_consent": true, "text": "hello", "version": "x", "code": "123456",
           "email": "a@example.com", "password": "wrong wrong wrong"})
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn isolation_matrix_from_the_openapi_document() {
    let server = TestServer::start().await;
    let f = families(&server).await;
    let mut a = Client::new(&server);
    a.onboard("a@example.com", PASSWORD_A).await;
    let mut b = Client::new(&server);
    assert_eq!(
        b.sign_in("b@example.com", PASSWORD_B).await.status,
        StatusCode::OK
    );
    let b_session = b.call("GET", "/api/v1/sessions", None).await.json()[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let a_session = a.call("GET", "/api/v1/sessions", None).await.json()[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (child_a, entry_a, child_b, entry_b) = (
        f.child_a.to_string(),
        f.entry_a.to_string(),
        f.child_b.to_string(),
        f.entry_b.to_string(),
    );
    let ids_a = Ids {
        child: &child_a,
        entry: &entry_a,
        media: &f.media_a,
        session: &a_session,
    };
    let ids_b = Ids {
        child: &child_b,
        entry: &entry_b,
        media: &f.media_b,
        session: &b_session,
    };
    let unknown_child = ChildId::new_random().to_string();
    let zeros = "0".repeat(64);
    let ids_unknown = Ids {
        child: &unknown_child,
        entry: "nonsense",
        media: &zeros,
        session: &zeros,
    };
    let ops = operations(&mut a).await;
    let with_id: Vec<_> = ops.iter().filter(|(_, p)| p.contains('{')).collect();
    assert!(with_id.len() >= 4, "{with_id:?}");

    // Parent A with family B's ids: 404 on every path that takes an id.
    for (method, path) in &with_id {
        let url = fill(path, &ids_b);
        let r = a.call(method, &url, Some(ANY_BODY())).await;
        assert_eq!(
            r.status,
            StatusCode::NOT_FOUND,
            "{method} {url} as parent A"
        );
        assert_eq!(r.code(), "not_found");
    }
    // And with ids that do not exist at all, or are not ids.
    for (method, path) in &with_id {
        let url = fill(path, &ids_unknown);
        let r = a.call(method, &url, Some(ANY_BODY())).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{method} {url}");
    }
    // A's own ids work (so the matrix above tests the ids, not broken routes).
    let own = a
        .call("GET", &format!("/api/v1/media/{}", f.media_a), None)
        .await;
    assert_eq!(own.status, StatusCode::OK);
    // B's session was not ended by A's attempt.
    assert_eq!(
        b.call("GET", "/api/v1/me", None).await.status,
        StatusCode::OK
    );

    // Signed out: 401 everywhere but the sign-in itself and sign-out.
    let mut anon = Client::new(&server);
    for (method, path) in &ops {
        let url = if path.contains('{') {
            fill(path, &ids_a)
        } else {
            path.clone()
        };
        let r = anon.call(method, &url, Some(ANY_BODY())).await;
        // Sign-out answers 204 even when signed out; everything else (the sign-in itself with
        // a wrong password) 401.
        let expected = if (method.as_str(), path.as_str()) == ("DELETE", "/api/v1/session") {
            StatusCode::NO_CONTENT
        } else if path.starts_with("/api/v1/invitations/") || path.starts_with("/api/v1/admin/") {
            // Invitations need no session: an unknown token is not found. The console answers
            // 404 to anyone but a signed-in manager.
            StatusCode::NOT_FOUND
        } else {
            StatusCode::UNAUTHORIZED
        };
        assert_eq!(r.status, expected, "{method} {url} signed out");
    }

    // A parent whose link was removed: their former child's ids answer 404.
    edit_roster(
        &server.store(),
        |r| -> Result<(), sprig_server::docs::DocStoreError> {
            r.unlink_parent(&f.parent_a, &f.child_a, Timestamp(admin::now_ms()))
                .unwrap();
            Ok(())
        },
    )
    .unwrap();
    // (Their own sessions are still theirs.)
    for (method, path) in with_id
        .iter()
        .filter(|(_, p)| !p.starts_with("/api/v1/sessions/"))
    {
        let url = fill(path, &ids_a);
        let r = a.call(method, &url, Some(ANY_BODY())).await;
        assert_eq!(
            r.status,
            StatusCode::NOT_FOUND,
            "{method} {url} after unlinking"
        );
    }
    server.stop().await;
}

/// The portal UI's types are generated from a committed copy of the document; this keeps that
/// copy equal to what the server serves (`SPRIG_BLESS=1` rewrites it; then run
/// `npm run gen:portal` in ui/).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_document_is_committed() {
    let server = TestServer::start().await;
    let mut c = Client::new(&server);
    let served = c.call("GET", "/api/v1/openapi.json", None).await;
    assert_eq!(served.status, StatusCode::OK);
    let committed = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../ui/src/portal/generated/openapi.json");
    let served: Value = served.json();
    if std::env::var_os("SPRIG_BLESS").is_some() {
        let mut text = serde_json::to_string_pretty(&served).unwrap();
        text.push('\n');
        std::fs::write(&committed, text).unwrap();
    }
    let on_disk: Value =
        serde_json::from_str(&std::fs::read_to_string(&committed).unwrap_or_default())
            .unwrap_or(Value::Null);
    assert!(
        on_disk == served,
        "{} is stale: run `SPRIG_BLESS=1 cargo test -p sprig-server --test server \
         openapi_document_is_committed`, then `npm run gen:portal` in ui/",
        committed.display()
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parent_sees_their_sessions_and_ends_another_one() {
    let server = TestServer::start().await;
    families(&server).await;
    let mut phone = Client::new(&server);
    let mut laptop = Client::new(&server);
    assert_eq!(
        phone.sign_in("a@example.com", PASSWORD_A).await.status,
        StatusCode::OK
    );
    assert_eq!(
        laptop.sign_in("a@example.com", PASSWORD_A).await.status,
        StatusCode::OK
    );
    let list = phone.call("GET", "/api/v1/sessions", None).await.json();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list.iter().filter(|s| s["current"] == true).count(), 1);
    assert!(list.iter().all(|s| s["signed_in_at"].as_i64().is_some()));
    let other = list.iter().find(|s| s["current"] == false).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The reference is not the cookie.
    assert!(!laptop.cookie.as_deref().unwrap().contains(&other));
    let r = phone
        .call("DELETE", &format!("/api/v1/sessions/{other}"), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        laptop.call("GET", "/api/v1/me", None).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        phone.call("GET", "/api/v1/me", None).await.status,
        StatusCode::OK
    );
    let list = phone.call("GET", "/api/v1/sessions", None).await.json();
    assert_eq!(list.as_array().unwrap().len(), 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_guessing_at_many_accounts_is_stopped() {
    let server = TestServer::start().await;
    families(&server).await;
    let mut c = Client::new(&server);
    for i in 0..30 {
        let r = c
            .sign_in(&format!("guess{i}@example.com"), "password123456")
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    // Even a right password from this source now waits (no account was locked by it).
    let r = c.sign_in("b@example.com", PASSWORD_B).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.code(), "too_many_attempts");
    assert!(r.headers.contains_key("retry-after"));
    let n = server
        .store()
        .attempts_since("login_failure", "b@example.com", 0)
        .unwrap();
    assert_eq!(n.count, 0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drafts_and_pending_contributions_never_show_in_the_journal() {
    let server = TestServer::start().await;
    let f = families(&server).await;
    let mut a = Client::new(&server);
    a.onboard("a@example.com", PASSWORD_A).await;
    let store = server.store();
    let AnyDoc::Roster(roster) = load_doc(&store, &sprig_proto::DocId::Roster).unwrap() else {
        panic!()
    };
    // A staff draft with a photo, and the parent's own contribution (pending until approved).
    let (draft_photo, draft_sha) = photo(b"draft photo");
    let draft = plan_entry(
        &roster,
        &Actor::Staff(f.staff.clone()),
        NewEntry {
            children: vec![f.child_a.clone()],
            text: "Draft, not yet published".into(),
            media: vec![draft_photo],
            draft: true,
            ..NewEntry::default()
        },
        Timestamp(9_000),
    )
    .unwrap();
    let pending = plan_entry(
        &roster,
        &Actor::Parent(f.parent_a.clone()),
        NewEntry {
            children: vec![f.child_a.clone()],
            text: "From home: we baked bread".into(),
            ..NewEntry::default()
        },
        Timestamp(9_500),
    )
    .unwrap();
    edit_journal(
        &store,
        &f.child_a,
        |j| -> Result<(), sprig_server::docs::DocStoreError> {
            j.apply_entry(&draft).unwrap();
            j.apply_entry(&pending).unwrap();
            Ok(())
        },
    )
    .unwrap();
    let page = a
        .call(
            "GET",
            &format!("/api/v1/children/{}/journal", f.child_a),
            None,
        )
        .await;
    let body = String::from_utf8(page.body.clone()).unwrap();
    assert!(!body.contains("Draft, not yet published"), "{body}");
    assert!(!body.contains("we baked bread"), "{body}");
    assert_eq!(page.json()["entries"].as_array().unwrap().len(), 1);
    // Nor can a draft's photo be fetched, or the pending entry be replied to.
    let r = a
        .call("GET", &format!("/api/v1/media/{draft_sha}"), None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = a
        .call(
            "POST",
            &format!("/api/v1/entries/{}/replies", pending.id),
            Some(json!({"text": "hello"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    server.stop().await;
}

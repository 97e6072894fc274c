//! Contributions from home over real TLS: uploaded through the portal, written by the server
//! as pending, synced to a tablet that approves or rejects them, then shown (or not) to the
//! parent; photos lose their metadata; refused uploads leave nothing behind; a tablet still
//! may not write one itself; and the live-update stream of `/api/v1/events`.

use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::StatusCode;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use sprig_core::{Actor, EntryId, EntryStatus, NewEntry, Timestamp, plan_entry};
use sprig_proto::{DocId, MemoryDocs, Unsynced};
use sprig_server::ServerStore;
use sprig_server::docs::{AnyDoc, load_doc};
use sprig_testkit::images::{self, ByteOrder};

use crate::portal::{Client, Families, PASSWORD_A, families, record};
use crate::support::{TestServer, enrol, tls_connect};
use crate::sync::{info, session, sync_once};

const BOUNDARY: &str = "sprig-test-boundary-7d1f";

/// A multipart form: the text part, then each file part with the type the browser claims.
fn form(text: Option<&str>, files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    if let Some(t) = text {
        out.extend(
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"text\"\r\n\r\n{t}\r\n")
                .as_bytes(),
        );
    }
    for (i, (ct, bytes)) in files.iter().enumerate() {
        out.extend(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; \
                 filename=\"f{i}\"\r\nContent-Type: {ct}\r\n\r\n"
            )
            .as_bytes(),
        );
        out.extend_from_slice(bytes);
        out.extend(b"\r\n");
    }
    out.extend(format!("--{BOUNDARY}--\r\n").as_bytes());
    out
}

async fn contribute(
    c: &mut Client,
    child: &sprig_core::ChildId,
    text: Option<&str>,
    files: &[(&str, &[u8])],
) -> crate::support::Reply {
    c.call_raw(
        "POST",
        &format!("/api/v1/children/{child}/contributions"),
        &format!("multipart/form-data; boundary={BOUNDARY}"),
        form(text, files),
    )
    .await
}

/// Asserts a contribution was taken (201 pending) and returns its id.
fn created(r: &crate::support::Reply) -> EntryId {
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(r.json()["status"], "pending");
    EntryId::parse(r.json()["id"].as_str().unwrap()).unwrap()
}

fn server_journal(server: &TestServer, child: &sprig_core::ChildId) -> sprig_core::Journal {
    let AnyDoc::Journal(j) = load_doc(&server.store(), &DocId::Journal(child.clone())).unwrap()
    else {
        panic!("not a journal")
    };
    j
}

async fn journal_texts(c: &mut Client, child: &sprig_core::ChildId) -> Vec<String> {
    let page = c
        .call("GET", &format!("/api/v1/children/{child}/journal"), None)
        .await;
    assert_eq!(page.status, StatusCode::OK);
    page.json()["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["text"].as_str().unwrap().to_owned())
        .collect()
}

async fn contributions(c: &mut Client, child: &sprig_core::ChildId) -> Value {
    let r = c
        .call(
            "GET",
            &format!("/api/v1/children/{child}/contributions"),
            None,
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    r.json()
}

/// Parent A signed in and through the gates, and a tablet that holds the roster and journals.
async fn setup(server: &TestServer) -> (Families, Client) {
    let f = families(server).await;
    let mut a = Client::new(server);
    a.onboard("a@example.com", PASSWORD_A).await;
    (f, a)
}

fn has_exif(jpeg: &[u8]) -> bool {
    exif::Reader::new()
        .read_from_container(&mut std::io::Cursor::new(jpeg))
        .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contribution_is_pending_until_a_tablet_approves_it_and_its_photo_has_no_metadata() {
    let server = TestServer::start().await;
    let (f, mut a) = setup(&server).await;
    // Ada's other parent.
    sprig_server::admin::parent_add(
        &server.store(),
        "jo@example.com",
        "Jo Lovelace",
        crate::portal::PASSWORD_B,
        &[f.child_a.to_string()],
    )
    .unwrap();
    let mut jo = Client::new(&server);
    jo.onboard("jo@example.com", crate::portal::PASSWORD_B)
        .await;
    let dev = enrol(&server, "tablet").await;
    let mut docs = MemoryDocs::new();
    sync_once(&server, &dev, &mut docs, Unsynced::default()).await;

    // The tablet keeps its watch connection open: it hears of the contribution at once.
    let mut watching = crate::watch::watch(&server, &dev).await;
    let camera = images::jpeg_with_exif(640, 480, 6, ByteOrder::Little);
    assert!(has_exif(&camera), "the fixture carries EXIF (with GPS)");
    let r = contribute(
        &mut a,
        &f.child_a,
        Some("We baked bread at home"),
        &[("image/jpeg", &camera)],
    )
    .await;
    let id = created(&r);
    let heard = crate::watch::next_changed(&mut watching, 5).await;
    assert_eq!(heard, Some(vec![DocId::Journal(f.child_a.clone())]));

    let list = contributions(&mut a, &f.child_a).await;
    assert_eq!(list[0]["id"], id.as_str());
    assert_eq!(list[0]["status"], "pending");
    assert_eq!(list[0]["reason"], Value::Null);
    assert_eq!(list[0]["text"], "We baked bread at home");
    assert!(list[0]["created_at"].as_i64().unwrap() > 0);
    assert!(
        !journal_texts(&mut a, &f.child_a)
            .await
            .contains(&"We baked bread at home".to_owned())
    );

    // The stored photo: upright, resized JPEG with no EXIF (so no GPS), served to its sender.
    let url = list[0]["media"][0]["url"].as_str().unwrap().to_owned();
    let photo = a.call("GET", &url, None).await;
    assert_eq!(photo.status, StatusCode::OK);
    assert_eq!(photo.headers["content-type"], "image/jpeg");
    assert!(!has_exif(&photo.body), "EXIF survived");
    assert!(
        !photo.body.windows(4).any(|w| w == b"Exif"),
        "an EXIF marker survived"
    );
    let img = images::decode_rgb(&photo.body);
    assert_eq!((img.width(), img.height()), (640, 480), "turned upright");
    // The other parent sees neither the pending contribution nor its photo.
    assert_eq!(
        jo.call("GET", &url, None).await.status,
        StatusCode::NOT_FOUND
    );
    assert!(
        contributions(&mut jo, &f.child_a)
            .await
            .as_array()
            .unwrap()
            .is_empty()
    );
    // Written by the server as the parent's pending contribution, with its media recorded.
    let e = server_journal(&server, &f.child_a).entry(&id).unwrap();
    assert_eq!(e.status, EntryStatus::Pending);
    assert_eq!(e.author, sprig_core::Author::Parent(f.parent_a.clone()));
    let sha = e.media[0].sha256.to_hex();
    assert!(server.store().media_referenced(&sha).unwrap());
    assert!(server.store().media(&sha).unwrap().is_some());

    // The tablet receives it at its next sync and a member of staff approves it there.
    sync_once(&server, &dev, &mut docs, Unsynced::default()).await;
    let roster = docs.roster.clone().unwrap();
    let j = docs.journals.get_mut(&f.child_a).unwrap();
    assert_eq!(j.entry(&id).unwrap().status, EntryStatus::Pending);
    j.approve(
        &roster,
        &Actor::Staff(f.staff.clone()),
        &id,
        Timestamp(5_000),
    )
    .unwrap();
    let report = sync_once(&server, &dev, &mut docs, Unsynced::default()).await;
    assert!(report.replaced.is_empty(), "{report:?}");
    assert_eq!(
        server
            .store()
            .device(&dev.device_id)
            .unwrap()
            .unwrap()
            .status,
        sprig_server::store::DeviceStatus::Active,
        "an approval is allowed"
    );

    assert!(
        journal_texts(&mut a, &f.child_a)
            .await
            .contains(&"We baked bread at home".to_owned())
    );
    // Approved, it is part of the journal for both parents, photo and all.
    assert_eq!(jo.call("GET", &url, None).await.status, StatusCode::OK);
    let page = jo
        .call(
            "GET",
            &format!("/api/v1/children/{}/journal", f.child_a),
            None,
        )
        .await
        .json();
    let shown = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == id.as_str())
        .expect("in Jo's journal");
    assert_eq!(shown["author"], "Alex Lovelace");
    assert_eq!(
        contributions(&mut a, &f.child_a).await[0]["status"],
        "approved"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_contribution_shows_its_reason_and_never_the_journal() {
    let server = TestServer::start().await;
    let (f, mut a) = setup(&server).await;
    let dev = enrol(&server, "tablet").await;
    let mut docs = MemoryDocs::new();
    let r = contribute(&mut a, &f.child_a, Some("A photo from the park"), &[]).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let id = EntryId::parse(r.json()["id"].as_str().unwrap()).unwrap();
    sync_once(&server, &dev, &mut docs, Unsynced::default()).await;
    // As the tablet's reject does: the reason as a staff reply, then the rejection.
    let roster = docs.roster.clone().unwrap();
    let staff = Actor::Staff(f.staff.clone());
    let j = docs.journals.get_mut(&f.child_a).unwrap();
    j.reply(
        &roster,
        &staff,
        &id,
        "It shows another child",
        Timestamp(6_000),
    )
    .unwrap();
    j.reject(&roster, &staff, &id, Timestamp(6_000)).unwrap();
    sync_once(&server, &dev, &mut docs, Unsynced::default()).await;

    let list = contributions(&mut a, &f.child_a).await;
    assert_eq!(list[0]["status"], "rejected");
    assert_eq!(list[0]["reason"], "It shows another child");
    assert!(
        !journal_texts(&mut a, &f.child_a)
            .await
            .contains(&"A photo from the park".to_owned())
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_uploads_say_why_and_leave_nothing_behind() {
    let server = TestServer::start_with(|c| c.max_contribution_bytes = 256 * 1024).await;
    let (f, mut a) = setup(&server).await;
    let before = server_journal(&server, &f.child_a).len();
    let photo = images::jpeg(64, 48);
    let cases: Vec<(&str, Vec<u8>, StatusCode, &str)> = vec![
        (
            "too large",
            form(
                Some("big"),
                &[("video/mp4", &images::random_bytes(300 * 1024, 1))],
            ),
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
        ),
        (
            "a page pretending to be a photo",
            form(
                Some("x"),
                &[("image/jpeg", b"<html><script>alert(1)</script></html>")],
            ),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_type",
        ),
        (
            "a GIF",
            form(Some("x"), &[("image/gif", &images::gif())]),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_type",
        ),
        (
            "a HEIC photo",
            form(
                Some("x"),
                &[("image/heic", b"\0\0\0\x18ftypheic\0\0\0\0mif1heic")],
            ),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_type",
        ),
        (
            "a Matroska video",
            form(Some("x"), &[("video/webm", &images::matroska_head())]),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_type",
        ),
        (
            "eleven files",
            form(Some("x"), &vec![("image/jpeg", photo.as_slice()); 11]),
            StatusCode::BAD_REQUEST,
            "too_many_files",
        ),
        (
            "a good photo then a bad file",
            form(
                Some("x"),
                &[
                    ("image/jpeg", photo.as_slice()),
                    ("video/mp4", b"not a video"),
                ],
            ),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_type",
        ),
        (
            "text over the journal's bound",
            form(Some(&"a".repeat(20_001)), &[]),
            StatusCode::BAD_REQUEST,
            "text_too_long",
        ),
        (
            "nothing at all",
            form(Some("  "), &[]),
            StatusCode::BAD_REQUEST,
            "empty",
        ),
    ];
    for (what, body, status, code) in cases {
        let r = a
            .call_raw(
                "POST",
                &format!("/api/v1/children/{}/contributions", f.child_a),
                &format!("multipart/form-data; boundary={BOUNDARY}"),
                body,
            )
            .await;
        assert_eq!(
            r.status,
            status,
            "{what}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(r.code(), code, "{what}");
        assert!(!r.json()["message"].as_str().unwrap().is_empty());
    }
    // Not multipart at all.
    let r = a
        .call(
            "POST",
            &format!("/api/v1/children/{}/contributions", f.child_a),
            Some(serde_json::json!({"text": "hello"})),
        )
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::BAD_REQUEST, "bad_upload")
    );

    assert_eq!(
        server_journal(&server, &f.child_a).len(),
        before,
        "nothing written"
    );
    // Only the two fixture photos of `families`, no thumbnail, nothing half-written in tmp/.
    let mut stored = Vec::new();
    for dir in std::fs::read_dir(server.data.media()).unwrap() {
        let dir = dir.unwrap().path();
        if dir.is_dir() {
            stored.extend(std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()));
        }
    }
    assert_eq!(stored.len(), 2, "{stored:?}");
    assert!(
        contributions(&mut a, &f.child_a)
            .await
            .as_array()
            .unwrap()
            .is_empty()
    );

    // A video that fits is taken as sent.
    let mut mp4 = images::mp4_head();
    mp4.resize(8 * 1024, 0);
    let r = contribute(
        &mut a,
        &f.child_a,
        None,
        &[("application/octet-stream", &mp4)],
    )
    .await;
    created(&r);
    let list = contributions(&mut a, &f.child_a).await;
    assert_eq!(list[0]["media"][0]["kind"], "video");
    let v = a
        .call("GET", list[0]["media"][0]["url"].as_str().unwrap(), None)
        .await;
    assert_eq!((v.status, v.body.len()), (StatusCode::OK, mp4.len()));
    assert_eq!(v.headers["content-type"], "video/mp4");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_familys_child_is_not_found_and_their_contribution_media_stay_theirs() {
    let server = TestServer::start().await;
    let (f, mut a) = setup(&server).await;
    let photo = images::jpeg(64, 48);
    let r = contribute(&mut a, &f.child_b, Some("x"), &[("image/jpeg", &photo)]).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::NOT_FOUND, "not_found")
    );
    let r = a
        .call(
            "GET",
            &format!("/api/v1/children/{}/contributions", f.child_b),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // A's pending photo is A's alone: B (another family) cannot fetch it.
    let r = contribute(&mut a, &f.child_a, Some("x"), &[("image/jpeg", &photo)]).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let url = contributions(&mut a, &f.child_a).await[0]["media"][0]["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut b = Client::new(&server);
    b.onboard("b@example.com", crate::portal::PASSWORD_B).await;
    assert_eq!(
        b.call("GET", &url, None).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(a.call("GET", &url, None).await.status, StatusCode::OK);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contribution_written_by_a_tablet_still_quarantines_it() {
    let server = TestServer::start().await;
    let (f, _a) = setup(&server).await;
    let dev = enrol(&server, "tablet").await;
    let mut docs = MemoryDocs::new();
    sync_once(&server, &dev, &mut docs, Unsynced::default()).await;
    let before = server_journal(&server, &f.child_a).len();
    let roster = docs.roster.clone().unwrap();
    let plan = plan_entry(
        &roster,
        &Actor::Parent(f.parent_a.clone()),
        NewEntry {
            children: vec![f.child_a.clone()],
            text: "forged from a tablet".into(),
            ..NewEntry::default()
        },
        Timestamp(7_000),
    )
    .unwrap();
    docs.journals
        .get_mut(&f.child_a)
        .unwrap()
        .apply_entry(&plan)
        .unwrap();
    let err = session(
        &server,
        &dev,
        &mut docs,
        info(&dev, Unsynced::default()),
        false,
    )
    .await
    .unwrap_err();
    assert!(err.contains("device_quarantined"), "{err}");
    assert_eq!(server_journal(&server, &f.child_a).len(), before);
    let held = sprig_server::admin::device_held(&server.store(), &dev.device_id).unwrap();
    assert_eq!(held[0].rule, "parent_write");
    server.stop().await;
}

/// An open `GET /api/v1/events` stream, read frame by frame.
struct Events {
    body: hyper::body::Incoming,
    buf: String,
}

impl Events {
    async fn open(c: &Client) -> (StatusCode, Option<Events>) {
        let tls = tls_connect(c.addr, c.cfg.clone()).await.unwrap();
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .unwrap();
        tokio::spawn(conn);
        let mut b = hyper::Request::builder()
            .uri("/api/v1/events")
            .header("host", "localhost")
            .header("accept", "text/event-stream");
        if let Some(cookie) = &c.cookie {
            b = b.header("cookie", cookie);
        }
        let res = send
            .send_request(b.body(Empty::<Bytes>::new()).unwrap())
            .await
            .unwrap();
        let status = res.status();
        if status != StatusCode::OK {
            return (status, None);
        }
        assert_eq!(res.headers()["content-type"], "text/event-stream");
        (
            status,
            Some(Events {
                body: res.into_body(),
                buf: String::new(),
            }),
        )
    }

    /// The next event's `(name, data)` within `wait`, skipping keep-alive comments.
    async fn next(&mut self, wait: Duration) -> Option<(String, String)> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(at) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..at + 2).collect();
                let mut name = String::new();
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        name = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data = v.trim().to_owned();
                    }
                }
                if !name.is_empty() {
                    return Some((name, data));
                }
                continue;
            }
            let frame = tokio::time::timeout_at(deadline, self.body.frame())
                .await
                .ok()??;
            if let Ok(data) = frame.unwrap().into_data() {
                self.buf.push_str(&String::from_utf8_lossy(&data));
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_tell_a_parent_of_their_own_childs_journal_and_never_of_another_family() {
    let server = TestServer::start().await;
    let (f, mut a) = setup(&server).await;
    let anon = Client::new(&server);
    assert_eq!(Events::open(&anon).await.0, StatusCode::UNAUTHORIZED);
    // Signed in, but the agreement not yet accepted: refused like the other endpoints.
    let mut b = Client::new(&server);
    b.sign_in("b@example.com", crate::portal::PASSWORD_B).await;
    assert_eq!(Events::open(&b).await.0, StatusCode::FORBIDDEN);

    let (status, events) = Events::open(&a).await;
    assert_eq!(status, StatusCode::OK);
    let mut events = events.unwrap();
    let wait = Duration::from_secs(10);
    assert_eq!(events.next(wait).await.unwrap().0, "ready");

    // Written by another connection to the database (an admin command, another process or
    // replica): found by the feed's poll. The other family's first, then A's own.
    let store = server.store();
    record(
        &store,
        &f.staff,
        std::slice::from_ref(&f.child_b),
        "Bea's news",
        vec![],
        2_000,
    );
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    record(
        &store,
        &f.staff,
        std::slice::from_ref(&f.child_a),
        "Ada's news",
        vec![],
        2_000,
    );
    let (name, data) = events.next(wait).await.unwrap();
    assert_eq!(name, "journal");
    let data: Value = serde_json::from_str(&data).unwrap();
    assert_eq!(data["child"], f.child_a.as_str(), "only A's own child");

    // The portal's own writes are heard at once: a contribution.
    let r = contribute(&mut a, &f.child_a, Some("hello"), &[]).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let (name, data) = events.next(wait).await.unwrap();
    assert_eq!(name, "journal");
    assert!(data.contains(f.child_a.as_str()), "{data}");
    // And nothing about B's child arrives, however long one listens.
    record(
        &store,
        &f.staff,
        std::slice::from_ref(&f.child_b),
        "More of Bea",
        vec![],
        3_000,
    );
    if let Some((name, data)) = events.next(Duration::from_secs(3)).await {
        assert!(!data.contains(f.child_b.as_str()), "{name}: {data}");
    }

    // A session holds only a few streams at once.
    let mut open = Vec::new();
    loop {
        let (status, e) = Events::open(&a).await;
        if status != StatusCode::OK {
            assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
            break;
        }
        open.push(e);
        assert!(open.len() < 10, "no bound on streams");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_over_axums_default_body_limit_is_taken_up_to_the_configured_one() {
    let server = TestServer::start_with(|c| c.max_contribution_bytes = 8 * 1024 * 1024).await;
    let (f, mut a) = setup(&server).await;
    // 3 MiB: over axum's 2 MB default for request bodies, under the setting's limit.
    let mut mp4 = images::mp4_head();
    mp4.resize(3 * 1024 * 1024, 7);
    let r = contribute(
        &mut a,
        &f.child_a,
        Some("A video of the garden"),
        &[("video/mp4", &mp4)],
    )
    .await;
    created(&r);
    let mut big = images::mp4_head();
    big.resize(9 * 1024 * 1024, 7);
    // The server may answer 413 as soon as it has read the limit and close the connection
    // while the client is still writing the rest: the client then sees a broken pipe and
    // not the answer. A few tries get the answer; whatever happens, nothing is stored.
    let mut answered = None;
    for _ in 0..5 {
        match a
            .try_call_raw(
                "POST",
                &format!("/api/v1/children/{}/contributions", f.child_a),
                &format!("multipart/form-data; boundary={BOUNDARY}"),
                form(None, &[("video/mp4", &big)]),
            )
            .await
        {
            Ok(r) => {
                answered = Some(r);
                break;
            }
            Err(e) if e.contains("BodyWrite") || e.contains("Broken pipe") => {}
            Err(e) => panic!("{e}"),
        }
    }
    if let Some(r) = answered {
        assert_eq!(
            (r.status, r.code().as_str()),
            (StatusCode::PAYLOAD_TOO_LARGE, "too_large")
        );
        assert!(r.json()["message"].as_str().unwrap().contains("8 MB"));
    }
    let contributions = server_journal(&server, &f.child_a)
        .entries()
        .into_iter()
        .filter(|e| e.kind == sprig_core::EntryKind::ParentContribution)
        .count();
    assert_eq!(
        contributions, 1,
        "only the upload under the limit was taken"
    );
    server.stop().await;
}

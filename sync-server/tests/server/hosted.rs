//! A hosted deployment (`serve_hosted`) on Postgres (`SPRIG_TEST_DATABASE_URL`, which
//! `scripts/with-postgres.sh` exports; without it these tests fail): several settings served
//! by one listener, each device routed by its certificate's issuer and isolated from the other
//! settings; two replicas over one database and one media folder.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hyper::StatusCode;
use sha2::Digest as _;
use sprig_core::{Consent, Role};
use sprig_proto::{ClientSession, Limits, MemoryDocs, Unsynced};
use sprig_server::admin::{self, HostedKeys};
use sprig_server::media_store::MediaRoot;
use sprig_server::store::pg_testing::{fresh_database, test_database_url};
use sprig_server::store::{DeviceStatus, PgOptions, PgPool, PgStore};
use sprig_server::{HostedConfig, ServerStore};
use tokio_tungstenite::tungstenite::Message as Ws;

use crate::support::{Identity, Reply, client_config, key_and_csr, request_to, tls_connect_to};
use crate::sync::{info, record};

/// A setting of the test database, as the tests see it.
struct Setting {
    host: String,
    ca_pem: String,
    store: PgStore,
    keys: HostedKeys,
}

fn create(pool: &PgPool, name: &str, host: &str) -> Setting {
    let out = admin::init_hosted(pool, name, host).unwrap();
    let id: uuid::Uuid = out.setting_id.unwrap().parse().unwrap();
    Setting {
        host: host.to_owned(),
        ca_pem: pool.setting_tls(id).unwrap().unwrap().ca_cert_pem,
        store: pool.setting(id).unwrap(),
        keys: HostedKeys {
            pool: pool.clone(),
            setting: id,
        },
    }
}

struct Replica {
    addr: SocketAddr,
    running: Running,
}

enum Running {
    /// `serve_hosted` in this test process.
    Task {
        stop: tokio::sync::oneshot::Sender<()>,
        handle: tokio::task::JoinHandle<Result<(), sprig_server::ServeError>>,
    },
    /// A `sprig-server serve` process.
    Process(std::process::Child),
}

async fn replica(url: &str, media: &std::path::Path) -> Replica {
    replica_with(url, media, true).await
}

/// A replica whose database connection sends NOTIFY after events (and so LISTENs) or not, as
/// on CockroachDB and YugabyteDB.
async fn replica_with(url: &str, media: &std::path::Path, notify: bool) -> Replica {
    // Each replica its own pool, as its own process would have.
    let mut options = PgOptions::default();
    options.notify = Some(notify);
    let pool = PgPool::connect_with(url, &options).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let config = HostedConfig::new(pool, MediaRoot::Folder(media.to_owned()));
    let handle = tokio::spawn(sprig_server::serve_hosted(listener, config, async {
        let _ = stopped.await;
    }));
    Replica {
        addr,
        running: Running::Task { stop, handle },
    }
}

impl Replica {
    async fn stop(self) {
        match self.running {
            Running::Task { stop, handle } => {
                let _ = stop.send(());
                handle.await.unwrap().unwrap();
            }
            Running::Process(mut child) => {
                // SIGKILL: a replica may die at any moment; nothing of it is needed.
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// `sprig-server serve --database-url URL --media s3://BUCKET/deploy` as a process, once its
/// `/v1/ready` answers 200 (asked at `s`'s host name).
async fn serve_process(url: &str, s3: &crate::s3::S3Server, s: &Setting) -> Replica {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_sprig-server"))
        .args([
            "serve",
            "--database-url",
            url,
            "--listen",
            &addr.to_string(),
        ])
        .args(["--media", &format!("s3://{}/deploy", crate::s3::BUCKET)])
        .args(["--s3-endpoint", &s3.endpoint])
        .env("AWS_ACCESS_KEY_ID", crate::s3::ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", crate::s3::SECRET_KEY)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let replica = Replica {
        addr,
        running: Running::Process(child),
    };
    for _ in 0..300 {
        let ready = request_to(
            addr,
            &s.host,
            client_config(&s.ca_pem, None),
            "GET",
            "/v1/ready",
            &[],
            vec![],
        )
        .await;
        if ready.is_ok_and(|r| r.status == StatusCode::OK) {
            return replica;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("sprig-server serve did not become ready on {addr}");
}

async fn enrol_at(r: &Replica, s: &Setting, code: &str) -> Reply {
    let (_key, csr) = key_and_csr();
    enrol_with(r, s, code, &csr).await
}

async fn enrol_with(r: &Replica, s: &Setting, code: &str, csr: &str) -> Reply {
    let body = serde_json::json!({"code": code, "device_name": "tablet", "csr_pem": csr});
    request_to(
        r.addr,
        &s.host,
        client_config(&s.ca_pem, None),
        "POST",
        "/v1/enrol",
        &[("content-type", "application/json")],
        serde_json::to_vec(&body).unwrap(),
    )
    .await
    .unwrap()
}

fn code(s: &Setting) -> String {
    admin::enrol_code(
        &s.keys,
        &s.store,
        "tablet",
        admin::DEFAULT_CODE_TTL,
        &sprig_server::By::cli(),
    )
    .unwrap()
    .code
}

async fn enrol(r: &Replica, s: &Setting) -> Identity {
    let (key_pem, csr) = key_and_csr();
    let reply = enrol_with(r, s, &code(s), &csr).await;
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let j = reply.json();
    Identity {
        device_id: j["device_id"].as_str().unwrap().to_owned(),
        cert_pem: j["certificate_pem"].as_str().unwrap().to_owned(),
        key_pem,
    }
}

async fn device_request(
    r: &Replica,
    s: &Setting,
    id: &Identity,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Result<Reply, String> {
    request_to(
        r.addr,
        &s.host,
        client_config(&s.ca_pem, Some(id)),
        method,
        path,
        headers,
        body,
    )
    .await
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;

async fn ws(r: &Replica, s: &Setting, id: &Identity, path: &str) -> Socket {
    let tls = tls_connect_to(r.addr, client_config(&s.ca_pem, Some(id)), &s.host)
        .await
        .unwrap();
    tokio_tungstenite::client_async(format!("wss://{}{path}", s.host), tls)
        .await
        .unwrap()
        .0
}

/// One sync session to its closing lease.
async fn sync(r: &Replica, s: &Setting, id: &Identity, docs: &mut MemoryDocs) {
    let mut ws = ws(r, s, id, "/v1/sync").await;
    let mut client = ClientSession::new(info(id, Unsynced::default()), Limits::default());
    let hello = client.start(&mut docs.peer("server")).unwrap();
    ws.send(Ws::Binary(hello.into())).await.unwrap();
    while !client.is_finished() {
        match ws
            .next()
            .await
            .expect("the session ends with a lease")
            .unwrap()
        {
            Ws::Binary(frame) => {
                for out in client.receive(&mut docs.peer("server"), &frame).unwrap() {
                    ws.send(Ws::Binary(out.into())).await.unwrap();
                }
            }
            Ws::Close(_) => panic!("closed before the session finished"),
            _ => {}
        }
    }
    let _ = ws.close(None).await;
}

/// A device of one setting asks for the other's ids: everything answers as if they did not
/// exist (codes, media), and the TLS side never serves it the other setting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_of_one_deployment_never_see_each_other() {
    let url = fresh_database(&test_database_url(), true).unwrap();
    let pool = PgPool::open(&url).unwrap();
    let a = create(&pool, "Acorns", "acorns.example.org");
    let b = create(&pool, "Birch", "birch.example.org");
    let media = tempfile::tempdir().unwrap();
    let r = replica(&url, media.path()).await;

    // B's enrolment code is unknown at A (and A's at B).
    let (code_a, code_b) = (code(&a), code(&b));
    let reply = enrol_at(&r, &a, &code_b).await;
    assert_eq!(reply.code(), "enrol_code_invalid");
    let reply = enrol_at(&r, &b, &code_a).await;
    assert_eq!(reply.code(), "enrol_code_invalid");
    let dev_a = enrol(&r, &a).await;
    let dev_b = enrol(&r, &b).await;
    assert_eq!(a.store.list_devices().unwrap().len(), 1);
    assert_eq!(b.store.list_devices().unwrap().len(), 1);

    // B's device uploads a photo its setting references.
    let photo = b"not really a jpeg, but bytes".to_vec();
    let sha = hex::encode(sha2::Sha256::digest(&photo));
    b.store
        .add_media_refs(&[(
            sha.clone(),
            sprig_proto::DocId::Journal(sprig_core::ChildId::new_random()),
        )])
        .unwrap();
    let put = device_request(
        &r,
        &b,
        &dev_b,
        "PUT",
        &format!("/v1/media/{sha}"),
        &[("x-sprig-media-kind", "photo")],
        photo.clone(),
    )
    .await
    .unwrap();
    assert_eq!(
        put.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&put.body)
    );
    let got = device_request(
        &r,
        &b,
        &dev_b,
        "GET",
        &format!("/v1/media/{sha}"),
        &[],
        vec![],
    )
    .await
    .unwrap();
    assert_eq!(
        (got.status, got.body.clone()),
        (StatusCode::OK, photo.clone())
    );

    // A's device asks for it: not found. It may not upload it either (A references nothing).
    let got = device_request(
        &r,
        &a,
        &dev_a,
        "GET",
        &format!("/v1/media/{sha}"),
        &[],
        vec![],
    )
    .await
    .unwrap();
    assert_eq!(got.status, StatusCode::NOT_FOUND);
    let put = device_request(
        &r,
        &a,
        &dev_a,
        "PUT",
        &format!("/v1/media/{sha}"),
        &[("x-sprig-media-kind", "photo")],
        photo.clone(),
    )
    .await
    .unwrap();
    assert_ne!(put.status, StatusCode::OK);
    assert!(!a.store.media_referenced(&sha).unwrap());

    // A's device sent to B's host name: the server presents B's certificate, which a device
    // pinning A's CA refuses.
    let wrong = request_to(
        r.addr,
        &b.host,
        client_config(&a.ca_pem, Some(&dev_a)),
        "GET",
        "/v1/health",
        &[],
        vec![],
    )
    .await;
    assert!(wrong.is_err(), "{:?}", wrong.map(|r| r.status));
    // Even trusting B's CA, A's certificate is A's: its requests are A's, and B's photo is
    // not there.
    let got = request_to(
        r.addr,
        &b.host,
        client_config(&b.ca_pem, Some(&dev_a)),
        "GET",
        &format!("/v1/media/{sha}"),
        &[],
        vec![],
    )
    .await
    .unwrap();
    assert_eq!(got.status, StatusCode::NOT_FOUND);

    // A sync of A's device sees A's setting only.
    let b_staff = admin::staff_add(&b.store, "Bea Birch", Role::Manager, "1357", None).unwrap();
    let mut docs = MemoryDocs::new();
    sync(&r, &a, &dev_a, &mut docs).await;
    let roster = docs.roster.as_ref().expect("A's roster");
    assert!(roster.staff(&b_staff).is_none());
    assert!(docs.journals.is_empty());
    r.stop().await;
}

/// Each hosted setting serves its own parents' portal at its host name: the same address in
/// two settings is two parents, and a session of one setting means nothing at another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_hosted_setting_serves_its_own_portal() {
    use crate::portal::Client;
    let url = fresh_database(&test_database_url(), true).unwrap();
    let pool = PgPool::open(&url).unwrap();
    let a = create(&pool, "Acorns", "acorns.example.org");
    let b = create(&pool, "Birch", "birch.example.org");
    let email = "pat.parent@example.org";
    let child_of = |s: &Setting, name: &str| {
        let staff =
            admin::staff_add(&s.store, "Kim Keyworker", Role::Practitioner, "2468", None).unwrap();
        let child =
            admin::child_add(&s.store, name, staff.as_str(), None, Consent::Yes, None).unwrap();
        vec![child.to_string()]
    };
    let (kids_a, kids_b) = (child_of(&a, "Ada Acorn"), child_of(&b, "Bo Birch"));
    admin::parent_add(
        &a.store,
        email,
        "Pat Acorn",
        "acorns pass phrase one",
        &kids_a,
    )
    .unwrap();
    admin::parent_add(
        &b.store,
        email,
        "Pat Birch",
        "birch pass phrase two",
        &kids_b,
    )
    .unwrap();
    let media = tempfile::tempdir().unwrap();
    let r = replica(&url, media.path()).await;

    let mut at_a = Client::at(r.addr, &a.ca_pem, &a.host);
    let signed = at_a.sign_in(email, "acorns pass phrase one").await;
    assert_eq!(
        signed.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&signed.body)
    );
    let me = at_a.call("GET", "/api/v1/me", None).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.json()["name"], "Pat Acorn");
    // The portal's document is there too: the whole portal, not only sign-in.
    let doc = at_a.call("GET", "/api/v1/openapi.json", None).await;
    assert_eq!(doc.status, StatusCode::OK);

    // A's password is not B's parent's.
    let mut at_b = Client::at(r.addr, &b.ca_pem, &b.host);
    let wrong = at_b.sign_in(email, "acorns pass phrase one").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    // A's session cookie, presented at B, is no session there.
    at_b.cookie = at_a.cookie.clone();
    let me = at_b.call("GET", "/api/v1/me", None).await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED);
    at_b.cookie = None;
    assert_eq!(
        at_b.sign_in(email, "birch pass phrase two").await.status,
        StatusCode::OK
    );
    assert_eq!(
        at_b.call("GET", "/api/v1/me", None).await.json()["name"],
        "Pat Birch"
    );
    // B's child is not there for A's parent, even by id (the same 404 as any unknown id).
    let version = at_a.call("GET", "/api/v1/agreement", None).await.json()["version"].clone();
    let agreed = at_a
        .call(
            "POST",
            "/api/v1/agreement",
            Some(serde_json::json!({ "version": version })),
        )
        .await;
    assert_eq!(agreed.status, StatusCode::NO_CONTENT);
    let probe = at_a
        .call(
            "GET",
            &format!("/api/v1/children/{}/journal", kids_b[0]),
            None,
        )
        .await;
    assert_eq!(probe.status, StatusCode::NOT_FOUND);
    assert_eq!(
        at_a.call("GET", "/api/v1/me", None).await.json()["children"][0]["name"],
        "Ada Acorn"
    );
    // And A's session still holds at A.
    assert_eq!(
        at_a.call("GET", "/api/v1/me", None).await.json()["name"],
        "Pat Acorn"
    );
    r.stop().await;
}

/// Two replicas over one database and one media folder: a device syncs through either, in any
/// order, with nothing lost or duplicated; a revoke written by another process (the CLI)
/// closes the device's watch on the other replica. No NOTIFY anywhere (as on CockroachDB and
/// YugabyteDB): the poll of the event table alone carries the revoke.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_serve_one_setting() {
    let url = fresh_database(&test_database_url(), true).unwrap();
    let pool = PgPool::open(&url).unwrap();
    let s = create(&pool, "Acorns", "acorns.example.org");
    let staff =
        admin::staff_add(&s.store, "Amara Okafor", Role::Practitioner, "2468", None).unwrap();
    let child = admin::child_add(
        &s.store,
        "Test Child",
        staff.as_str(),
        Some("Ladybirds"),
        Consent::Yes,
        Some("2022-04-01"),
    )
    .unwrap();
    let media = tempfile::tempdir().unwrap();
    let r1 = replica_with(&url, media.path(), false).await;
    let r2 = replica_with(&url, media.path(), false).await;

    // A enrols through r1, B through r2.
    let a = enrol(&r1, &s).await;
    let b = enrol(&r2, &s).await;
    let (mut da, mut db) = (MemoryDocs::new(), MemoryDocs::new());
    sync(&r1, &s, &a, &mut da).await;
    record(&mut da, &staff, &child, "Planted beans");
    sync(&r2, &s, &a, &mut da).await;
    record(&mut da, &staff, &child, "Watered them");
    sync(&r1, &s, &a, &mut da).await;
    sync(&r2, &s, &a, &mut da).await;
    sync(&r1, &s, &b, &mut db).await;
    sync(&r2, &s, &b, &mut db).await;
    for docs in [&da, &db] {
        let mut texts: Vec<String> = docs.journals[&child]
            .entries()
            .iter()
            .map(|e| e.text.clone())
            .collect();
        texts.sort();
        assert_eq!(texts, ["Planted beans", "Watered them"]);
    }

    // Media through r1, read back through r2.
    let photo = b"bytes of a photo".to_vec();
    let sha = hex::encode(sha2::Sha256::digest(&photo));
    s.store
        .add_media_refs(&[(sha.clone(), sprig_proto::DocId::Journal(child.clone()))])
        .unwrap();
    let put = device_request(
        &r1,
        &s,
        &a,
        "PUT",
        &format!("/v1/media/{sha}"),
        &[("x-sprig-media-kind", "photo")],
        photo.clone(),
    )
    .await
    .unwrap();
    assert_eq!(put.status, StatusCode::OK);
    let got = device_request(&r2, &s, &b, "GET", &format!("/v1/media/{sha}"), &[], vec![])
        .await
        .unwrap();
    assert_eq!((got.status, got.body), (StatusCode::OK, photo));

    // B watches through r2; B is revoked by another process (its own pool, as the CLI) at
    // once: whether the revoke lands before or after the watch subscribes to its feed, the
    // watch is closed.
    let mut watching = ws(&r2, &s, &b, "/v1/watch").await;
    let mut quiet = PgOptions::default();
    quiet.notify = Some(false);
    let cli = PgPool::connect_with(&url, &quiet).unwrap();
    let store = cli.setting(s.keys.setting).unwrap();
    admin::device_lifecycle(
        &store,
        &b.device_id,
        admin::Lifecycle::Revoke,
        &sprig_server::By::cli(),
    )
    .unwrap();
    assert_eq!(
        store.device(&b.device_id).unwrap().unwrap().status,
        DeviceStatus::Revoked
    );
    let mut closed = false;
    for _ in 0..30 {
        if let Ok(None | Some(Err(_) | Ok(Ws::Close(_)))) =
            tokio::time::timeout(Duration::from_secs(1), watching.next()).await
        {
            closed = true;
            break;
        }
    }
    assert!(
        closed,
        "the revoked device's watch on the other replica is closed"
    );
    r1.stop().await;
    r2.stop().await;
}

/// Two `sprig-server serve` processes over one Postgres database and one S3 bucket: a device
/// syncs through either; media uploaded through one is read through the other (and is in the
/// bucket under the setting's prefix); a revoke by the CLI closes the device's watch on the
/// other process; one process killed (SIGKILL), the other carries on with nothing lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_serve_processes_on_postgres_and_s3() {
    let url = fresh_database(&test_database_url(), true).unwrap();
    let pool = PgPool::open(&url).unwrap();
    let s = create(&pool, "Acorns", "acorns.example.org");
    let staff =
        admin::staff_add(&s.store, "Amara Okafor", Role::Practitioner, "2468", None).unwrap();
    let child = admin::child_add(
        &s.store,
        "Test Child",
        staff.as_str(),
        None,
        Consent::Yes,
        None,
    )
    .unwrap();
    let s3 = crate::s3::S3Server::start();
    let p1 = serve_process(&url, &s3, &s).await;
    let p2 = serve_process(&url, &s3, &s).await;

    let a = enrol(&p1, &s).await;
    let b = enrol(&p2, &s).await;
    let (mut da, mut db) = (MemoryDocs::new(), MemoryDocs::new());
    sync(&p2, &s, &a, &mut da).await;
    record(&mut da, &staff, &child, "Planted beans");
    sync(&p1, &s, &a, &mut da).await;
    sync(&p2, &s, &b, &mut db).await;
    sync(&p1, &s, &b, &mut db).await;
    let texts = |d: &MemoryDocs| -> Vec<String> {
        let mut t: Vec<String> = d.journals[&child]
            .entries()
            .iter()
            .map(|e| e.text.clone())
            .collect();
        t.sort();
        t
    };
    assert_eq!(texts(&db), ["Planted beans"]);

    let photo = b"bytes of a photo in a bucket".to_vec();
    let sha = hex::encode(sha2::Sha256::digest(&photo));
    s.store
        .add_media_refs(&[(sha.clone(), sprig_proto::DocId::Journal(child.clone()))])
        .unwrap();
    let put = device_request(
        &p1,
        &s,
        &a,
        "PUT",
        &format!("/v1/media/{sha}"),
        &[("x-sprig-media-kind", "photo")],
        photo.clone(),
    )
    .await
    .unwrap();
    assert_eq!(
        put.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&put.body)
    );
    let got = device_request(&p2, &s, &b, "GET", &format!("/v1/media/{sha}"), &[], vec![])
        .await
        .unwrap();
    assert_eq!((got.status, got.body), (StatusCode::OK, photo));
    let objects = s3.everything().await;
    let prefix = format!("deploy/settings/{}/", s.keys.setting.hyphenated());
    assert!(
        objects
            .iter()
            .any(|o| o.starts_with(&prefix) && o.contains(&sha)),
        "{objects:?}"
    );

    // B watches through p2; the CLI revokes B.
    let mut watching = ws(&p2, &s, &b, "/v1/watch").await;
    assert!(
        tokio::time::timeout(Duration::from_millis(1500), watching.next())
            .await
            .is_err(),
        "the watch stays open before the revoke"
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sprig-server"))
        .args([
            "device",
            "revoke",
            "--database-url",
            &url,
            "--setting",
            &s.host,
            &b.device_id,
        ])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // From the CLI's exit (the revoke committed) to the close on the other process; measured
    // and printed (docs/HOSTING.md), not asserted: only that it happens.
    let committed = std::time::Instant::now();
    let mut closed = false;
    for _ in 0..30 {
        if let Ok(None | Some(Err(_) | Ok(Ws::Close(_)))) =
            tokio::time::timeout(Duration::from_secs(1), watching.next()).await
        {
            closed = true;
            break;
        }
    }
    assert!(
        closed,
        "the revoked device's watch on the other process is closed"
    );
    eprintln!(
        "a revoke through the CLI closed the watch on the other process {} ms after it committed",
        committed.elapsed().as_millis()
    );

    // p1 dies; A carries on through p2 and loses nothing.
    p1.stop().await;
    record(&mut da, &staff, &child, "Watered them");
    sync(&p2, &s, &a, &mut da).await;
    let mut fresh = MemoryDocs::new();
    let c = enrol(&p2, &s).await;
    sync(&p2, &s, &c, &mut fresh).await;
    assert_eq!(texts(&fresh), ["Planted beans", "Watered them"]);
    p2.stop().await;
}

/// The PostgreSQL client tools of the server `scripts/with-postgres.sh` runs (`PG_BIN`, else
/// the newest `/usr/lib/postgresql/*/bin`).
fn pg_tool(name: &str) -> std::path::PathBuf {
    if let Some(dir) = std::env::var_os("PG_BIN") {
        return std::path::PathBuf::from(dir).join(name);
    }
    let mut dirs: Vec<std::path::PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed in /usr/lib/postgresql (make test installs it)")
        .map(|e| e.unwrap().path().join("bin"))
        .filter(|p| p.join(name).exists())
        .collect();
    dirs.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    dirs.pop().expect("a PostgreSQL bin directory").join(name)
}

/// `pg_dump` of a hosted database restored with `pg_restore` into an empty one: a replica on
/// it serves the setting, and its tablet syncs against it with nothing lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pg_dump_restores_into_a_new_database() {
    let url = fresh_database(&test_database_url(), true).unwrap();
    let pool = PgPool::open(&url).unwrap();
    let s = create(&pool, "Acorns", "acorns.example.org");
    let staff =
        admin::staff_add(&s.store, "Amara Okafor", Role::Practitioner, "2468", None).unwrap();
    let child = admin::child_add(
        &s.store,
        "Test Child",
        staff.as_str(),
        None,
        Consent::Yes,
        None,
    )
    .unwrap();
    let media = tempfile::tempdir().unwrap();
    let r = replica(&url, media.path()).await;
    let a = enrol(&r, &s).await;
    let mut da = MemoryDocs::new();
    sync(&r, &s, &a, &mut da).await;
    record(&mut da, &staff, &child, "Planted beans");
    sync(&r, &s, &a, &mut da).await;

    let dump = tempfile::tempdir().unwrap();
    let file = dump.path().join("sprig.dump");
    let out = std::process::Command::new(pg_tool("pg_dump"))
        .args(["--format=custom", "--file"])
        .arg(&file)
        .arg(&url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    r.stop().await;

    let empty = fresh_database(&test_database_url(), false).unwrap();
    let out = std::process::Command::new(pg_tool("pg_restore"))
        .args(["--no-owner", "--exit-on-error", "--dbname", &empty])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Nothing to migrate: the dump carries the schema's record.
    assert!(
        PgPool::connect(&empty)
            .unwrap()
            .migrate()
            .unwrap()
            .is_empty()
    );
    let restored = replica(&empty, media.path()).await;
    record(&mut da, &staff, &child, "Watered them");
    sync(&restored, &s, &a, &mut da).await;
    let fresh_pool = PgPool::open(&empty).unwrap();
    let s2 = Setting {
        store: fresh_pool.setting(s.keys.setting).unwrap(),
        keys: HostedKeys {
            pool: fresh_pool.clone(),
            setting: s.keys.setting,
        },
        host: s.host.clone(),
        ca_pem: s.ca_pem.clone(),
    };
    let b = enrol(&restored, &s2).await;
    let mut db = MemoryDocs::new();
    sync(&restored, &s2, &b, &mut db).await;
    let mut texts: Vec<String> = db.journals[&child]
        .entries()
        .iter()
        .map(|e| e.text.clone())
        .collect();
    texts.sort();
    assert_eq!(texts, ["Planted beans", "Watered them"]);
    restored.stop().await;
}

/// A manager of one hosted setting is nobody at another: their address and password do not
/// sign in there, and their session cookie, presented at the other's host, gets 404 from every
/// console path of the OpenAPI document.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_of_one_setting_is_nobody_at_another() {
    use crate::console::{
        MANAGER, PASSWORD_M, add_manager, admin_operations, any_admin_body, first_sign_in,
    };
    use crate::portal::Client;
    let url = fresh_database(&test_database_url(), true).unwrap();
    let pool = PgPool::open(&url).unwrap();
    let a = create(&pool, "Acorns", "acorns.example.org");
    let b = create(&pool, "Birch", "birch.example.org");
    add_manager(&a.store, "Morgan Acorn", MANAGER, PASSWORD_M);
    add_manager(
        &b.store,
        "Robin Birch",
        "robin@birch.example.org",
        PASSWORD_M,
    );
    let media = tempfile::tempdir().unwrap();
    let r = replica(&url, media.path()).await;

    let mut at_a = Client::at(r.addr, &a.ca_pem, &a.host);
    let mut app = first_sign_in(&mut at_a, MANAGER, PASSWORD_M).await;
    assert_eq!(
        at_a.call("GET", "/api/v1/admin/devices", None).await.status,
        StatusCode::OK
    );
    let mut at_b = Client::at(r.addr, &b.ca_pem, &b.host);
    let wrong = at_b.sign_in(MANAGER, PASSWORD_M).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.code(), "wrong_credentials");
    at_b.cookie = at_a.cookie.clone();
    let fresh = app.fresh().await;
    let ops = admin_operations(&mut at_b, "00000000-0000-4000-8000-000000000000").await;
    assert!(ops.len() >= 10, "{ops:?}");
    for (method, path) in &ops {
        let reply = at_b.call(method, path, Some(any_admin_body(&fresh))).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{method} {path} at B");
        assert_eq!(reply.code(), "not_found");
    }
    // A's session still holds at A.
    assert_eq!(
        at_a.call("GET", "/api/v1/me", None).await.json()["role"],
        "manager"
    );
    r.stop().await;
}

//! WebSocket sync against in-memory `MemoryDocs` devices: documents converge, changes are on
//! the server's disk, the register is updated, and malformed frames end only that session.

use futures_util::{SinkExt, StreamExt};
use sprig_core::{Actor, ChildId, NewEntry, StaffId, Timestamp, plan_entry};
use sprig_proto::{
    ClientInfo, ClientSession, DocId, Limits, MemoryDocs, Message, SessionReport, Unsynced,
};
use sprig_server::ServerStore;
use sprig_server::docs::{AnyDoc, load_doc};
use tokio_tungstenite::tungstenite::Message as Ws;

use crate::support::{Identity, TestServer, client_config, enrol, tls_connect};

pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;

pub async fn open(server: &TestServer, id: &Identity) -> Socket {
    let tls = tls_connect(server.addr, client_config(&server.ca_pem, Some(id)))
        .await
        .unwrap();
    tokio_tungstenite::client_async("wss://localhost/v1/sync", tls)
        .await
        .unwrap()
        .0
}

/// What a test device reports in its hello.
pub fn info(id: &Identity, unsynced: Unsynced) -> ClientInfo {
    ClientInfo {
        device_id: id.device_id.clone(),
        app_version: "0.1.0-test".into(),
        unsynced,
        pin_failures: Vec::new(),
        locked: false,
    }
}

/// Runs one session as a device would: to the server's closing lease, or to a revocation or
/// wipe (acknowledged with `WipeDone` when `ack_wipe`). `Err` for a protocol error or a
/// connection closed before the session finished.
pub async fn session(
    server: &TestServer,
    id: &Identity,
    docs: &mut MemoryDocs,
    info: ClientInfo,
    ack_wipe: bool,
) -> Result<SessionReport, String> {
    let mut ws = open(server, id).await;
    let mut client = ClientSession::new(info, Limits::default());
    let hello = client.start(&mut docs.peer("server")).unwrap();
    ws.send(Ws::Binary(hello.into())).await.unwrap();
    while !client.is_finished() {
        match ws
            .next()
            .await
            .ok_or("the server closed before the session finished")?
            .map_err(|e| e.to_string())?
        {
            Ws::Binary(frame) => {
                let out = client
                    .receive(&mut docs.peer("server"), &frame)
                    .map_err(|e| e.to_string())?;
                for out in out {
                    ws.send(Ws::Binary(out.into())).await.unwrap();
                }
            }
            Ws::Close(_) => return Err("closed early".into()),
            _ => {}
        }
    }
    if client.report().wipe && ack_wipe {
        let done = sprig_proto::encode(&Message::WipeDone).unwrap();
        ws.send(Ws::Binary(done.into())).await.unwrap();
        // The server closes once it has recorded the acknowledgement.
        while let Some(Ok(m)) = ws.next().await {
            if matches!(m, Ws::Close(_)) {
                break;
            }
        }
    }
    let _ = ws.close(None).await;
    Ok(client.report().clone())
}

pub async fn sync_once(
    server: &TestServer,
    id: &Identity,
    docs: &mut MemoryDocs,
    unsynced: Unsynced,
) -> SessionReport {
    session(server, id, docs, info(id, unsynced), false)
        .await
        .unwrap()
}

pub(crate) fn record(docs: &mut MemoryDocs, staff: &StaffId, child: &ChildId, text: &str) {
    let roster = docs.roster.as_ref().expect("the device holds the roster");
    let plan = plan_entry(
        roster,
        &Actor::Staff(staff.clone()),
        NewEntry {
            children: vec![child.clone()],
            text: text.into(),
            ..NewEntry::default()
        },
        Timestamp(sprig_server::admin::now_ms()),
    )
    .unwrap();
    docs.journals
        .get_mut(child)
        .unwrap()
        .apply_entry(&plan)
        .unwrap();
}

fn server_texts(server: &TestServer, child: &ChildId) -> Vec<String> {
    let AnyDoc::Journal(j) = load_doc(&server.store(), &DocId::Journal(child.clone())).unwrap()
    else {
        panic!()
    };
    let mut t: Vec<String> = j.entries().into_iter().map(|e| e.text).collect();
    t.sort();
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_devices_and_the_server_converge() {
    let server = TestServer::start().await;
    let (staff, child) = server.seed();
    let a = enrol(&server, "tablet A").await;
    let b = enrol(&server, "tablet B").await;
    let (mut da, mut db) = (MemoryDocs::new(), MemoryDocs::new());

    // A new device receives roster, setting and every journal.
    let report = sync_once(
        &server,
        &a,
        &mut da,
        Unsynced {
            media_pending: 3,
            docs_dirty: 0,
        },
    )
    .await;
    assert_eq!(report.replaced.len(), 3);
    assert!(da.roster.is_some() && da.setting.is_some() && da.journals.contains_key(&child));
    sync_once(&server, &b, &mut db, Unsynced::default()).await;

    // The register shows the sync and what the hello reported.
    let reg = server.store().device(&a.device_id).unwrap().unwrap();
    assert!(reg.last_sync.is_some() && reg.last_seen.is_some());
    assert_eq!(
        (reg.unsynced_media, reg.app_version.as_deref()),
        (3, Some("0.1.0-test"))
    );

    // Concurrent observations of the same child on both tablets.
    record(&mut da, &staff, &child, "A: built a tower of six bricks");
    record(&mut db, &staff, &child, "B: counted to ten");
    let r = sync_once(&server, &a, &mut da, Unsynced::default()).await;
    assert!(r.changed.is_empty(), "A had nothing new to receive");
    // Durable on the server's disk, read by a fresh connection.
    assert_eq!(
        server_texts(&server, &child),
        ["A: built a tower of six bricks"]
    );
    sync_once(&server, &b, &mut db, Unsynced::default()).await;
    sync_once(&server, &a, &mut da, Unsynced::default()).await;
    let both = ["A: built a tower of six bricks", "B: counted to ten"];
    assert_eq!(server_texts(&server, &child), both);
    let heads = |d: &mut MemoryDocs| d.journals.get_mut(&child).unwrap().heads();
    assert_eq!(heads(&mut da), heads(&mut db));
    let AnyDoc::Journal(mut sj) =
        load_doc(&server.store(), &DocId::Journal(child.clone())).unwrap()
    else {
        panic!()
    };
    assert_eq!(sj.heads(), heads(&mut da));

    // An admin adds a child while the server runs: the next sync brings its journal.
    let (_, second) = server.seed();
    sync_once(&server, &b, &mut db, Unsynced::default()).await;
    assert!(db.journals.contains_key(&second));
    assert!(db.roster.as_ref().unwrap().child(&second).is_some());
    let actions: Vec<String> = server
        .store()
        .audit_log(100)
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert!(actions.iter().filter(|a| *a == "sync").count() >= 5);
    server.stop().await;
}

/// Reads frames until the server closes; returns the error code it sent.
pub(crate) async fn error_code(ws: &mut Socket) -> String {
    let mut code = None;
    while let Some(Ok(msg)) = ws.next().await {
        if let Ws::Binary(f) = msg
            && let Ok(Message::Error { code: c, .. }) = sprig_proto::decode(&f, &Limits::default())
        {
            code = Some(c);
        }
    }
    code.expect("an error frame before the close")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_frames_end_the_session_and_the_server_survives() {
    let server = TestServer::start().await;
    server.seed();
    let dev = enrol(&server, "tablet").await;

    let mut ws = open(&server, &dev).await;
    ws.send(Ws::Binary(b"definitely not a frame".to_vec().into()))
        .await
        .unwrap();
    assert_eq!(error_code(&mut ws).await, "malformed");

    let mut ws = open(&server, &dev).await;
    ws.send(Ws::Binary(
        sprig_proto::encode(&Message::Done).unwrap().into(),
    ))
    .await
    .unwrap();
    assert_eq!(error_code(&mut ws).await, "unexpected");

    let mut ws = open(&server, &dev).await;
    ws.send(Ws::Text("hello".into())).await.unwrap();
    assert_eq!(error_code(&mut ws).await, "malformed");

    // A hello claiming another device's id is refused.
    let mut ws = open(&server, &dev).await;
    let mut docs = MemoryDocs::new();
    let info = ClientInfo {
        device_id: "someone-else".into(),
        ..info(&dev, Unsynced::default())
    };
    let hello = ClientSession::new(info, Limits::default())
        .start(&mut docs.peer("server"))
        .unwrap();
    ws.send(Ws::Binary(hello.into())).await.unwrap();
    assert_eq!(error_code(&mut ws).await, "device_mismatch");

    // The server still serves a proper session.
    let mut docs = MemoryDocs::new();
    sync_once(&server, &dev, &mut docs, Unsynced::default()).await;
    assert!(docs.roster.is_some());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_marked_for_wipe_is_told_once_then_refused() {
    use sprig_server::store::DeviceStatus;
    let server = TestServer::start().await;
    server.seed();
    let dev = enrol(&server, "lost tablet").await;
    server
        .store()
        .set_device_status(&dev.device_id, DeviceStatus::WipePending)
        .unwrap();
    let mut docs = MemoryDocs::new();
    let report = session(
        &server,
        &dev,
        &mut docs,
        info(&dev, Unsynced::default()),
        true,
    )
    .await
    .unwrap();
    assert!(report.wipe);
    assert!(
        docs.roster.is_none(),
        "nothing was sent to a device being wiped"
    );
    let d = server.store().device(&dev.device_id).unwrap().unwrap();
    assert_eq!(d.status, DeviceStatus::Wiped);
    let tls = tls_connect(server.addr, client_config(&server.ca_pem, Some(&dev)))
        .await
        .unwrap();
    let Err(tokio_tungstenite::tungstenite::Error::Http(r)) =
        tokio_tungstenite::client_async("wss://localhost/v1/sync", tls).await
    else {
        panic!("a wiped device must be refused");
    };
    assert_eq!(r.status(), hyper::StatusCode::FORBIDDEN);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_keeps_every_change() {
    let server = TestServer::start().await;
    let (staff, child) = server.seed();
    let dev = enrol(&server, "tablet").await;
    let mut docs = MemoryDocs::new();
    sync_once(&server, &dev, &mut docs, Unsynced::default()).await;
    for i in 0..3 {
        record(&mut docs, &staff, &child, &format!("entry {i}"));
        sync_once(&server, &dev, &mut docs, Unsynced::default()).await;
    }
    let store = server.store();
    let doc = DocId::Journal(child.clone());
    assert!(store.load_doc(&doc).unwrap().unwrap().chunks.len() >= 3);
    sprig_server::docs::compact(&store, &doc).unwrap();
    assert!(store.load_doc(&doc).unwrap().unwrap().chunks.is_empty());
    assert_eq!(
        server_texts(&server, &child),
        ["entry 0", "entry 1", "entry 2"]
    );
    // A device in step with the server stays in step after compaction.
    let r = sync_once(&server, &dev, &mut docs, Unsynced::default()).await;
    assert!(r.changed.is_empty() && r.replaced.is_empty());
    server.stop().await;
}

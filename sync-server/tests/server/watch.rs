//! `/v1/watch`: a device watching hears of changes other devices and admin commands make,
//! not of its own, and is closed when revoked.

use std::time::Duration;

use futures_util::StreamExt;
use sprig_core::Role;
use sprig_proto::{DocId, Limits, MemoryDocs, Message, Unsynced};
use sprig_server::ServerStore;
use sprig_server::store::DeviceStatus;
use tokio_tungstenite::tungstenite::Message as Ws;

use crate::support::{Identity, TestServer, client_config, enrol, tls_connect};
use crate::sync::{record, sync_once};

pub(crate) type Socket =
    tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;

pub(crate) async fn watch(server: &TestServer, id: &Identity) -> Socket {
    let tls = tls_connect(server.addr, client_config(&server.ca_pem, Some(id)))
        .await
        .unwrap();
    tokio_tungstenite::client_async("wss://localhost/v1/watch", tls)
        .await
        .unwrap()
        .0
}

/// The next `Changed` notice within `secs`, or `None` (the connection ended or nothing came).
pub(crate) async fn next_changed(ws: &mut Socket, secs: u64) -> Option<Vec<DocId>> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next()).await.ok()??;
        match msg.ok()? {
            Ws::Binary(f) => {
                if let Ok(Message::Changed { docs }) = sprig_proto::decode(&f, &Limits::default()) {
                    return Some(docs);
                }
            }
            Ws::Close(_) => return None,
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watching_device_hears_of_others_changes_and_not_its_own() {
    let server = TestServer::start().await;
    let (staff, child) = server.seed();
    let a = enrol(&server, "tablet A").await;
    let b = enrol(&server, "tablet B").await;
    let (mut da, mut db) = (MemoryDocs::new(), MemoryDocs::new());
    sync_once(&server, &a, &mut da, Unsynced::default()).await;
    sync_once(&server, &b, &mut db, Unsynced::default()).await;
    let mut watching_a = watch(&server, &a).await;
    let mut watching_b = watch(&server, &b).await;

    // B records and syncs: A hears of that journal at once; B, its author, hears nothing.
    record(&mut db, &staff, &child, "Planted beans");
    let t = std::time::Instant::now();
    sync_once(&server, &b, &mut db, Unsynced::default()).await;
    let docs = next_changed(&mut watching_a, 5).await.expect("A is told");
    assert_eq!(docs, vec![DocId::Journal(child.clone())]);
    assert!(t.elapsed() < Duration::from_secs(5));
    assert_eq!(next_changed(&mut watching_b, 2).await, None, "B wrote it");
    // A syncs and has it.
    sync_once(&server, &a, &mut da, Unsynced::default()).await;
    assert!(
        da.journals[&child]
            .entries()
            .iter()
            .any(|e| e.text == "Planted beans")
    );

    // An admin command (another process in real life) changes the roster: found by the poll.
    sprig_server::admin::staff_add(
        &server.store(),
        "New Colleague",
        Role::Practitioner,
        "1357",
        None,
    )
    .unwrap();
    let docs = next_changed(&mut watching_a, 5)
        .await
        .expect("the roster change is heard");
    assert!(docs.contains(&DocId::Roster), "{docs:?}");

    // Revoked: the watch connection closes.
    server
        .store()
        .set_device_status(&a.device_id, DeviceStatus::Revoked)
        .unwrap();
    let mut closed = false;
    for _ in 0..30 {
        if let Ok(None | Some(Err(_) | Ok(Ws::Close(_)))) =
            tokio::time::timeout(Duration::from_secs(1), watching_a.next()).await
        {
            closed = true;
            break;
        }
    }
    assert!(closed, "a revoked device's watch is closed");
    server.stop().await;
}

//! The device lifecycle on the server: the signed lease that closes every completed sync, wipe
//! (before any sync, acknowledged or not), retire (sync first, wipe only when nothing is left),
//! revoke (open sessions closed), reported wrong PINs, the register's derived `locked`, and the
//! network allow-list.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hyper::StatusCode;
use rustls::SignatureScheme;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use sprig_core::{ChildId, StaffId};
use sprig_proto::{
    ClientSession, Lease, Limits, MemoryDocs, Message, PinFailure, SessionReport, Unsynced,
};
use sprig_server::ServerStore;
use sprig_server::admin::{self, Lifecycle};
use sprig_server::policy::{PolicyChange, parse_duration};
use sprig_server::store::DeviceStatus;
use tokio_tungstenite::tungstenite::Message as Ws;

use crate::support::{Identity, TestServer, client_config, enrol, request};
use crate::sync::{Socket, info, open, session, sync_once};

/// Verifies a lease's signature with the public key of the CA certificate `ca_pem`, as a
/// device does with the CA it pinned: ECDSA P-256, SHA-256, ASN.1 DER signature.
fn lease_verifies(ca_pem: &str, lease: &Lease) -> bool {
    let der = CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    let public_key = &cert.public_key().subject_public_key.data;
    let provider = rustls::crypto::ring::default_provider();
    let (_, algs) = provider
        .signature_verification_algorithms
        .mapping
        .iter()
        .find(|(scheme, _)| *scheme == SignatureScheme::ECDSA_NISTP256_SHA256)
        .unwrap();
    algs[0]
        .verify_signature(public_key, &lease.signed_bytes(), &lease.signature)
        .is_ok()
}

fn status_of(server: &TestServer, id: &Identity) -> DeviceStatus {
    server
        .store()
        .device(&id.device_id)
        .unwrap()
        .unwrap()
        .status
}

fn register_row(server: &TestServer, id: &Identity, now: i64) -> admin::DeviceOutput {
    admin::device_register(&server.store(), now)
        .unwrap()
        .into_iter()
        .find(|d| d.id == id.device_id)
        .unwrap()
}

fn audit_actions(server: &TestServer, device: &str) -> Vec<String> {
    let mut v: Vec<String> = server
        .store()
        .audit_log(1000)
        .unwrap()
        .into_iter()
        .filter(|e| e.device.as_deref() == Some(device))
        .map(|e| e.action)
        .collect();
    v.reverse();
    v
}

pub(crate) async fn sync_refused(
    server: &TestServer,
    id: &Identity,
) -> (StatusCode, serde_json::Value) {
    let tls = crate::support::tls_connect(server.addr, client_config(&server.ca_pem, Some(id)))
        .await
        .unwrap();
    match tokio_tungstenite::client_async("wss://localhost/v1/sync", tls).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => (
            r.status(),
            serde_json::from_slice(r.body().as_deref().unwrap_or_default()).unwrap(),
        ),
        Ok(_) => panic!("the sync was let in"),
        Err(e) => panic!("{e}"),
    }
}

fn record_entry(docs: &mut MemoryDocs, staff: &StaffId, child: &ChildId, text: &str) {
    let roster = docs.roster.as_ref().unwrap();
    let plan = sprig_core::plan_entry(
        roster,
        &sprig_core::Actor::Staff(staff.clone()),
        sprig_core::NewEntry {
            children: vec![child.clone()],
            text: text.into(),
            ..sprig_core::NewEntry::default()
        },
        sprig_core::Timestamp(admin::now_ms()),
    )
    .unwrap();
    docs.journals
        .get_mut(child)
        .unwrap()
        .apply_entry(&plan)
        .unwrap();
}

fn server_has_entry(server: &TestServer, child: &ChildId, text: &str) -> bool {
    let sprig_server::docs::AnyDoc::Journal(j) =
        sprig_server::docs::load_doc(&server.store(), &sprig_proto::DocId::Journal(child.clone()))
            .unwrap()
    else {
        panic!("not a journal");
    };
    j.entries().into_iter().any(|e| e.text == text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_completed_sync_ends_with_a_lease_signed_by_the_setting_ca() {
    let server = TestServer::start().await;
    server.seed();
    let dev = enrol(&server, "tablet").await;
    let mut docs = MemoryDocs::new();
    let before = admin::now_ms();
    let r = sync_once(&server, &dev, &mut docs, Unsynced::default()).await;
    let lease = r.lease.expect("a lease closes the session");
    assert_eq!(lease.device_id, dev.device_id);
    assert!(lease.issued_at_ms >= before);
    assert_eq!(
        (
            lease.lock_after_secs,
            lease.wipe_after_secs,
            lease.max_pin_failures
        ),
        (12 * 3600, 90 * 86_400, 10),
        "the defaults"
    );
    assert!(lease_verifies(&server.ca_pem, &lease));
    // Any change to what was signed breaks the signature.
    for forged in [
        Lease {
            max_pin_failures: 1000,
            ..lease.clone()
        },
        Lease {
            wipe_after_secs: lease.wipe_after_secs * 100,
            ..lease.clone()
        },
        Lease {
            device_id: "another-tablet".into(),
            ..lease.clone()
        },
    ] {
        assert!(!lease_verifies(&server.ca_pem, &forged));
    }
    // Another setting's CA does not verify it.
    let other = TestServer::start().await;
    assert!(!lease_verifies(&other.ca_pem, &lease));
    other.stop().await;

    // A policy change reaches the next lease without a restart.
    admin::policy_set(
        &server.store(),
        &PolicyChange {
            lock_after: Some(parse_duration("90s").unwrap()),
            wipe_after: Some(parse_duration("1h").unwrap()),
            max_pin_failures: Some(4),
            allow_networks: None,
        },
    )
    .unwrap();
    let r = sync_once(&server, &dev, &mut docs, Unsynced::default()).await;
    let lease = r.lease.unwrap();
    assert_eq!(
        (
            lease.lock_after_secs,
            lease.wipe_after_secs,
            lease.max_pin_failures
        ),
        (90, 3600, 4)
    );
    assert!(lease_verifies(&server.ca_pem, &lease));
    assert!(audit_actions(&server, &dev.device_id).contains(&"sync".to_owned()));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wipe_is_sent_before_any_sync_and_recorded_when_acknowledged() {
    let server = TestServer::start().await;
    let (staff, child) = server.seed();
    let dev = enrol(&server, "lost tablet").await;
    let mut docs = MemoryDocs::new();
    sync_once(&server, &dev, &mut docs, Unsynced::default()).await;
    // The tablet records something and captures photos, then is lost before it syncs.
    record_entry(&mut docs, &staff, &child, "never synced");
    let out = admin::device_lifecycle(
        &server.store(),
        &dev.device_id,
        Lifecycle::Wipe,
        &sprig_server::By::cli(),
    )
    .unwrap();
    assert_eq!((out.status.as_str(), out.changed), ("wipe-pending", true));

    // First contact: the wipe comes instead of the welcome; the device drops the connection
    // before it can acknowledge.
    let pending = Unsynced {
        media_pending: 3,
        docs_dirty: 1,
    };
    let r = session(&server, &dev, &mut docs, info(&dev, pending), false)
        .await
        .unwrap();
    assert!(r.wipe && r.lease.is_none() && r.server_time_ms.is_none());
    assert!(
        !server_has_entry(&server, &child, "never synced"),
        "nothing is synced from a device being wiped"
    );
    let row = register_row(&server, &dev, admin::now_ms());
    assert_eq!(row.status, "wipe-pending", "no acknowledgement yet");
    assert!(row.wipe_requested_at.is_some() && row.wipe_delivered_at.is_some());
    assert!(row.wiped_at.is_none());
    // The register shows what was pending when it last reported.
    assert_eq!((row.unsynced_media, row.unsynced_docs), (3, 1));

    // Next contact: the wipe again; this time acknowledged.
    let r = session(&server, &dev, &mut docs, info(&dev, pending), true)
        .await
        .unwrap();
    assert!(r.wipe);
    let row = register_row(&server, &dev, admin::now_ms());
    assert_eq!(row.status, "wiped");
    assert!(row.wiped_at.is_some());
    assert_eq!((row.unsynced_media, row.unsynced_docs), (3, 1));
    let actions = audit_actions(&server, &dev.device_id);
    for a in ["wipe_requested", "wipe_delivered", "wipe_acknowledged"] {
        assert!(actions.contains(&a.to_owned()), "{a} in {actions:?}");
    }
    assert_eq!(actions.iter().filter(|a| *a == "wipe_delivered").count(), 2);

    // Refused from then on; wiping again changes nothing.
    let (status, body) = sync_refused(&server, &dev).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("device_revoked"))
    );
    let again = admin::device_lifecycle(
        &server.store(),
        &dev.device_id,
        Lifecycle::Wipe,
        &sprig_server::By::cli(),
    )
    .unwrap();
    assert_eq!((again.status.as_str(), again.changed), ("wiped", false));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_waiting_for_its_wipe_may_not_use_media() {
    let server = TestServer::start().await;
    server.seed();
    let dev = enrol(&server, "lost tablet").await;
    admin::device_lifecycle(
        &server.store(),
        &dev.device_id,
        Lifecycle::Wipe,
        &sprig_server::By::cli(),
    )
    .unwrap();
    let r = request(
        server.addr,
        client_config(&server.ca_pem, Some(&dev)),
        "PUT",
        &format!("/v1/media/{}", "ab".repeat(32)),
        &[("x-sprig-media-kind", "photo")],
        vec![1, 2, 3],
    )
    .await
    .unwrap();
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::FORBIDDEN, "device_wipe_pending")
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retire_syncs_everything_first_and_wipes_only_when_nothing_is_left() {
    let server = TestServer::start().await;
    let (staff, child) = server.seed();
    let dev = enrol(&server, "old tablet").await;
    let mut docs = MemoryDocs::new();
    sync_once(&server, &dev, &mut docs, Unsynced::default()).await;
    let out = admin::device_lifecycle(
        &server.store(),
        &dev.device_id,
        Lifecycle::Retire,
        &sprig_server::By::cli(),
    )
    .unwrap();
    assert_eq!(out.status, "retire-pending");

    // With photos still to upload: the session syncs, is marked retire, and ends with a lease.
    record_entry(&mut docs, &staff, &child, "last words");
    let pending = Unsynced {
        media_pending: 2,
        docs_dirty: 1,
    };
    let r = session(&server, &dev, &mut docs, info(&dev, pending), true)
        .await
        .unwrap();
    assert!(r.retire && !r.wipe && r.lease.is_some());
    assert!(server_has_entry(&server, &child, "last words"));
    assert_eq!(status_of(&server, &dev), DeviceStatus::RetirePending);

    // Documents synced but a photo still pending: no wipe either.
    let some_left = Unsynced {
        media_pending: 1,
        docs_dirty: 0,
    };
    let r = session(&server, &dev, &mut docs, info(&dev, some_left), true)
        .await
        .unwrap();
    assert!(r.retire && !r.wipe);
    assert_eq!(status_of(&server, &dev), DeviceStatus::RetirePending);

    // Everything handed over: the documents sync, then the wipe instead of a lease.
    record_entry(&mut docs, &staff, &child, "really the last");
    let r = session(
        &server,
        &dev,
        &mut docs,
        info(&dev, Unsynced::default()),
        true,
    )
    .await
    .unwrap();
    assert!(r.retire && r.wipe && r.lease.is_none());
    assert!(
        server_has_entry(&server, &child, "really the last"),
        "the final sync reached the server before the wipe"
    );
    let row = register_row(&server, &dev, admin::now_ms());
    assert_eq!(row.status, "retired");
    assert!(row.wiped_at.is_some());
    let actions = audit_actions(&server, &dev.device_id);
    for a in ["retire_requested", "wipe_delivered", "retired"] {
        assert!(actions.contains(&a.to_owned()), "{a} in {actions:?}");
    }
    let (status, _) = sync_refused(&server, &dev).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retire_whose_final_sync_fails_does_not_wipe() {
    let server = TestServer::start().await;
    server.seed();
    let dev = enrol(&server, "old tablet").await;
    let mut docs = MemoryDocs::new();
    sync_once(&server, &dev, &mut docs, Unsynced::default()).await;
    admin::device_lifecycle(
        &server.store(),
        &dev.device_id,
        Lifecycle::Retire,
        &sprig_server::By::cli(),
    )
    .unwrap();
    // The device reports nothing pending, but the connection breaks mid-sync: it sends the
    // hello and then a frame out of order.
    let mut ws = open(&server, &dev).await;
    let mut client = ClientSession::new(info(&dev, Unsynced::default()), Limits::default());
    let hello = client.start(&mut docs.peer("server")).unwrap();
    ws.send(Ws::Binary(hello.into())).await.unwrap();
    ws.send(Ws::Binary(
        sprig_proto::encode(&Message::WipeDone).unwrap().into(),
    ))
    .await
    .unwrap();
    let mut got = Vec::new();
    while let Some(Ok(Ws::Binary(f))) = ws.next().await {
        got.push(sprig_proto::decode(&f, &Limits::default()).unwrap());
    }
    assert!(
        !got.iter().any(|m| matches!(m, Message::Wipe)),
        "no wipe after a failed sync: {got:?}"
    );
    assert!(got.iter().any(|m| matches!(m, Message::Error { .. })));
    assert_eq!(status_of(&server, &dev), DeviceStatus::RetirePending);
    assert!(
        register_row(&server, &dev, admin::now_ms())
            .wipe_delivered_at
            .is_none()
    );
    server.stop().await;
}

/// Opens a session and reads the server's first turn (its welcome): the device then sits on
/// its turn, the session open.
async fn session_at_its_turn(server: &TestServer, dev: &Identity, docs: &mut MemoryDocs) -> Socket {
    let mut ws = open(server, dev).await;
    let mut client = ClientSession::new(info(dev, Unsynced::default()), Limits::default());
    ws.send(Ws::Binary(
        client.start(&mut docs.peer("server")).unwrap().into(),
    ))
    .await
    .unwrap();
    let first = ws.next().await.unwrap().unwrap();
    assert!(matches!(
        sprig_proto::decode(&first.into_data(), &Limits::default()).unwrap(),
        Message::Welcome(_)
    ));
    ws
}

/// The first server message `pick` accepts; `None` when the connection ends first. Panics
/// after 20 s (a guard against a hang, not a timing assertion).
async fn next_message<T>(ws: &mut Socket, pick: impl Fn(Message) -> Option<T>) -> Option<T> {
    tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(Ok(m)) = ws.next().await {
            if let Ws::Binary(f) = m
                && let Ok(msg) = sprig_proto::decode(&f, &Limits::default())
                && let Some(t) = pick(msg)
            {
                return Some(t);
            }
        }
        None
    })
    .await
    .expect("no answer from the server within 20 s")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_closes_an_open_session_and_refuses_the_next() {
    let server = TestServer::start().await;
    server.seed();
    let dev = enrol(&server, "stolen tablet").await;
    let mut docs = MemoryDocs::new();
    sync_once(&server, &dev, &mut docs, Unsynced::default()).await;

    // A session is open: the hello sent, the server's first turn received, and the device
    // sits on its turn.
    let mut ws = session_at_its_turn(&server, &dev, &mut docs).await;

    // The manager revokes it from another process (another connection to the database).
    let out = admin::device_lifecycle(
        &server.store(),
        &dev.device_id,
        Lifecycle::Revoke,
        &sprig_server::By::cli(),
    )
    .unwrap();
    assert_eq!(out.status, "revoked");

    // The open session is told and closed (a generous bound guards against a hang only).
    let reason = next_message(&mut ws, |m| match m {
        Message::Revoked { reason } => Some(reason),
        _ => None,
    })
    .await
    .expect("the session ended without a revocation");
    assert!(reason.contains("revoked"), "{reason}");
    let closed = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match ws.next().await {
                None | Some(Err(_) | Ok(Ws::Close(_))) => break,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the connection stayed open");

    // The next connection, and media, are refused.
    let (status, body) = sync_refused(&server, &dev).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("device_revoked"))
    );
    let r = request(
        server.addr,
        client_config(&server.ca_pem, Some(&dev)),
        "GET",
        &format!("/v1/media/{}", "ab".repeat(32)),
        &[],
        Vec::new(),
    )
    .await
    .unwrap();
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::FORBIDDEN, "device_revoked")
    );
    let actions = audit_actions(&server, &dev.device_id);
    assert!(actions.contains(&"device_revoke".to_owned()), "{actions:?}");
    assert!(
        actions.contains(&"session_closed".to_owned()),
        "{actions:?}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wipe_requested_during_an_open_session_is_delivered_in_it() {
    let server = TestServer::start().await;
    server.seed();
    let dev = enrol(&server, "tablet").await;
    let mut docs = MemoryDocs::new();
    sync_once(&server, &dev, &mut docs, Unsynced::default()).await;
    let mut ws = session_at_its_turn(&server, &dev, &mut docs).await;
    admin::device_lifecycle(
        &server.store(),
        &dev.device_id,
        Lifecycle::Wipe,
        &sprig_server::By::cli(),
    )
    .unwrap();
    next_message(&mut ws, |m| matches!(m, Message::Wipe).then_some(()))
        .await
        .expect("the wipe was not delivered to the open session");
    ws.send(Ws::Binary(
        sprig_proto::encode(&Message::WipeDone).unwrap().into(),
    ))
    .await
    .unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(Ok(m)) = ws.next().await {
            if matches!(m, Ws::Close(_)) {
                break;
            }
        }
    })
    .await;
    assert_eq!(status_of(&server, &dev), DeviceStatus::Wiped);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_commands_refuse_steps_that_would_lose_a_wipe() {
    let server = TestServer::start().await;
    let a = enrol(&server, "a").await;
    let b = enrol(&server, "b").await;
    let store = server.store();
    // Revoke is idempotent.
    assert!(
        admin::device_lifecycle(
            &store,
            &a.device_id,
            Lifecycle::Revoke,
            &sprig_server::By::cli()
        )
        .unwrap()
        .changed
    );
    let again = admin::device_lifecycle(
        &store,
        &a.device_id,
        Lifecycle::Revoke,
        &sprig_server::By::cli(),
    )
    .unwrap();
    assert_eq!((again.status.as_str(), again.changed), ("revoked", false));
    // A revoked device cannot sync, so it cannot be retired; it can still be wiped.
    let e = admin::device_lifecycle(
        &store,
        &a.device_id,
        Lifecycle::Retire,
        &sprig_server::By::cli(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("device wipe"), "{e}");
    let w = admin::device_lifecycle(
        &store,
        &a.device_id,
        Lifecycle::Wipe,
        &sprig_server::By::cli(),
    )
    .unwrap();
    assert_eq!(w.status, "wipe-pending");
    // Revoking a device whose wipe is pending would keep the wipe from reaching it.
    let e = admin::device_lifecycle(
        &store,
        &a.device_id,
        Lifecycle::Revoke,
        &sprig_server::By::cli(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("wipe is still pending"), "{e}");
    assert_eq!(status_of(&server, &a), DeviceStatus::WipePending);
    // A retiring device can be wiped at once instead.
    admin::device_lifecycle(
        &store,
        &b.device_id,
        Lifecycle::Retire,
        &sprig_server::By::cli(),
    )
    .unwrap();
    let w = admin::device_lifecycle(
        &store,
        &b.device_id,
        Lifecycle::Wipe,
        &sprig_server::By::cli(),
    )
    .unwrap();
    assert_eq!(w.status, "wipe-pending");
    let e = admin::device_lifecycle(
        &store,
        "no-such-device",
        Lifecycle::Wipe,
        &sprig_server::By::cli(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("device list"), "{e}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reported_wrong_pins_are_audited_once_and_locked_shows_in_the_register() {
    let server = TestServer::start().await;
    let (staff, _) = server.seed();
    let dev = enrol(&server, "tablet").await;
    let mut docs = MemoryDocs::new();
    sync_once(&server, &dev, &mut docs, Unsynced::default()).await;
    assert_eq!(
        register_row(&server, &dev, admin::now_ms()).status,
        "active"
    );

    let failures = vec![
        PinFailure {
            staff_id: staff.to_string(),
            at_ms: 1_700_000_000_000,
        },
        PinFailure {
            staff_id: staff.to_string(),
            at_ms: 1_700_000_001_000,
        },
    ];
    let locked = sprig_proto::ClientInfo {
        pin_failures: failures.clone(),
        locked: true,
        ..info(&dev, Unsynced::default())
    };
    // A session that fails after the hello: the report is recorded all the same.
    let mut ws = open(&server, &dev).await;
    let mut client = ClientSession::new(locked.clone(), Limits::default());
    ws.send(Ws::Binary(
        client.start(&mut docs.peer("server")).unwrap().into(),
    ))
    .await
    .unwrap();
    ws.send(Ws::Binary(
        sprig_proto::encode(&Message::Wipe).unwrap().into(),
    ))
    .await
    .unwrap();
    while let Some(Ok(m)) = ws.next().await {
        if matches!(m, Ws::Close(_)) {
            break;
        }
    }
    let row = register_row(&server, &dev, admin::now_ms());
    assert_eq!((row.status.as_str(), row.pin_failures), ("locked", 2));
    assert!(row.reported_locked);

    // The device reports the same failures again (it keeps them until a sync succeeds): they
    // are not counted twice. The completed sync unlocks it.
    let r: SessionReport = session(&server, &dev, &mut docs, locked, false)
        .await
        .unwrap();
    assert!(r.lease.is_some());
    let row = register_row(&server, &dev, admin::now_ms());
    assert_eq!((row.status.as_str(), row.pin_failures), ("active", 2));
    let log = server.store().audit_log(1000).unwrap();
    let pins: Vec<_> = log.iter().filter(|e| e.action == "pin_failure").collect();
    assert_eq!(pins.len(), 2);
    assert!(pins.iter().all(|e| {
        e.device.as_deref() == Some(dev.device_id.as_str())
            && e.detail.contains(&format!("staff={staff}"))
    }));
    assert_eq!(
        pins.iter().map(|e| e.at).collect::<Vec<_>>(),
        [1_700_000_001_000, 1_700_000_000_000]
    );

    // Past lock_after since its last check-in, the register shows it locked (computed at a
    // chosen time, not by waiting).
    let last_sync = server
        .store()
        .device(&dev.device_id)
        .unwrap()
        .unwrap()
        .last_sync
        .unwrap();
    assert_eq!(
        register_row(&server, &dev, last_sync + 12 * 3600 * 1000).status,
        "active"
    );
    assert_eq!(
        register_row(&server, &dev, last_sync + 12 * 3600 * 1000 + 1).status,
        "locked"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offsite_permission_lets_one_tablet_sync_from_outside_until_it_ends() {
    let server = TestServer::start().await;
    server.seed();
    let dev = enrol(&server, "tablet").await;
    let other = enrol(&server, "other tablet").await;
    let mut docs = MemoryDocs::new();
    admin::policy_set(
        &server.store(),
        &PolicyChange {
            allow_networks: Some(vec!["10.0.0.0/8".parse().unwrap()]),
            ..PolicyChange::default()
        },
    )
    .unwrap();
    assert_eq!(sync_refused(&server, &dev).await.0, StatusCode::FORBIDDEN);
    let until = admin::now_ms() + 3_600_000;
    let out = sprig_server::manage::device_permit_offsite(
        &server.store(),
        &dev.device_id,
        until,
        &sprig_server::By::cli(),
    )
    .unwrap();
    assert_eq!(out.until, admin::rfc3339(until));
    // This tablet syncs from here now; the other is still refused.
    let r = sync_once(&server, &dev, &mut docs, Unsynced::default()).await;
    assert!(r.lease.is_some());
    let (status, body) = sync_refused(&server, &other).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("network_not_allowed"))
    );
    // Once the permission has ended, it is refused again.
    server
        .store()
        .set_device_offsite(&dev.device_id, Some(admin::now_ms() - 1))
        .unwrap();
    assert_eq!(sync_refused(&server, &dev).await.0, StatusCode::FORBIDDEN);
    // A time past or too far ahead is refused, and the audit log has the permission.
    for bad in [admin::now_ms() - 1, admin::now_ms() + 40 * 86_400_000] {
        assert!(
            sprig_server::manage::device_permit_offsite(
                &server.store(),
                &dev.device_id,
                bad,
                &sprig_server::By::cli()
            )
            .is_err()
        );
    }
    let log = server.store().audit_log(100).unwrap();
    let permit = log
        .iter()
        .find(|e| e.action == "device_permit_offsite")
        .unwrap();
    assert_eq!(permit.device.as_deref(), Some(dev.device_id.as_str()));
    assert!(permit.detail.contains(&out.until), "{}", permit.detail);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_from_outside_the_allow_list_is_refused_naming_the_address() {
    let server = TestServer::start().await;
    server.seed();
    let dev = enrol(&server, "tablet").await;
    let mut docs = MemoryDocs::new();
    let cidr = |s: &str| s.parse().unwrap();
    admin::policy_set(
        &server.store(),
        &PolicyChange {
            allow_networks: Some(vec![cidr("10.0.0.0/8"), cidr("192.168.4.0/24")]),
            ..PolicyChange::default()
        },
    )
    .unwrap();
    let (status, body) = sync_refused(&server, &dev).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("network_not_allowed"))
    );
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("(127.0.0.1)"), "{message}");
    assert!(message.contains("ask the manager"), "{message}");
    let r = request(
        server.addr,
        client_config(&server.ca_pem, Some(&dev)),
        "PUT",
        &format!("/v1/media/{}", "ab".repeat(32)),
        &[("x-sprig-media-kind", "photo")],
        vec![1, 2, 3],
    )
    .await
    .unwrap();
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::FORBIDDEN, "network_not_allowed")
    );
    // Enrolment is not device sync: it still works from here.
    let _other = enrol(&server, "second tablet").await;

    // Allowing this network lets the same running server sync it.
    admin::policy_set(
        &server.store(),
        &PolicyChange {
            allow_networks: Some(vec![cidr("127.0.0.0/8")]),
            ..PolicyChange::default()
        },
    )
    .unwrap();
    let r = sync_once(&server, &dev, &mut docs, Unsynced::default()).await;
    assert!(r.lease.is_some());
    server.stop().await;
}

#[test]
fn a_register_from_before_the_lifecycle_is_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("server.db");
    {
        let store = sprig_server::SqliteStore::open(&path).unwrap();
        store
            .insert_enrol_code(&sprig_server::store::EnrolCode {
                code_hash: "h".into(),
                device_name: "old tablet".into(),
                created_at: 0,
                expires_at: i64::MAX,
            })
            .unwrap();
        store
            .redeem_enrol_code(
                "h",
                1,
                &sprig_server::store::NewDevice {
                    id: "d1".into(),
                    name: String::new(),
                    cert_serial: "01".into(),
                    cert_fingerprint: "sha256:d1".into(),
                    created_at: 1,
                    app_version: None,
                },
            )
            .unwrap();
    }
    // Turn it back into a schema-2 database with a wipe queued under the old status name.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "DROP TABLE media_refs; DROP TABLE quarantine; DROP TABLE parent_contacts;
         DROP TABLE pin_failures; DROP TABLE setting_events;
         DROP TABLE attempts; DROP TABLE portal_sessions; DROP TABLE agreements;
         DROP TABLE totp; DROP TABLE invitations;
         DROP TABLE staff_contacts; DROP TABLE recovery_codes;
         ALTER TABLE devices DROP COLUMN locked;
         ALTER TABLE devices DROP COLUMN wipe_requested_at;
         ALTER TABLE devices DROP COLUMN wipe_delivered_at;
         ALTER TABLE devices DROP COLUMN wiped_at;
         ALTER TABLE devices DROP COLUMN offsite_until;
         DROP INDEX audit_by_at;
         ALTER TABLE audit DROP COLUMN client;
         UPDATE devices SET status = 'wipe_pending';
         PRAGMA user_version = 2;",
    )
    .unwrap();
    drop(conn);
    let store = sprig_server::SqliteStore::open(&path).unwrap();
    let d = store.device("d1").unwrap().unwrap();
    assert_eq!(d.status, DeviceStatus::WipePending);
    assert_eq!((d.locked, d.pin_failures, d.wiped_at), (false, 0, None));
}

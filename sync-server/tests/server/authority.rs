//! The server's authority over what devices write: refused changes quarantine the device and
//! store nothing of the session; release replaces the refused documents; session bounds;
//! enrolment checks the code before the CSR; a damaged server copy says who must act.

use futures_util::SinkExt;
use hyper::StatusCode;
use sprig_core::Consent;
use sprig_proto::{ClientInfo, ClientSession, DocId, Limits, MemoryDocs, PinFailure, Unsynced};
use sprig_server::docs::{AnyDoc, load_doc};
use sprig_server::store::DeviceStatus;
use sprig_server::{ServerStore, admin};
use tokio_tungstenite::tungstenite::Message as Ws;

use crate::support::{TestServer, enrol, key_and_csr, post_enrol};
use crate::sync::{error_code, info, open, session, sync_once};

fn roster_heads(server: &TestServer) -> sprig_core::Heads {
    let mut d: AnyDoc = load_doc(&server.store(), &DocId::Roster).unwrap();
    d.heads()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_roster_change_from_a_device_quarantines_it_until_release_replaces_the_roster() {
    let server = TestServer::start().await;
    let (_staff, child) = server.seed();
    let dev = enrol(&server, "tablet").await;
    let mut docs = MemoryDocs::new();
    sync_once(&server, &dev, &mut docs, Unsynced::default()).await;
    let before = roster_heads(&server);

    // The device flips a child's photo consent in its copy of the roster.
    docs.roster
        .as_mut()
        .unwrap()
        .set_consent(&child, Consent::No, sprig_core::Timestamp(1))
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
    assert_eq!(roster_heads(&server), before, "nothing of it was stored");
    let store = server.store();
    let d = store.device(&dev.device_id).unwrap().unwrap();
    assert_eq!(d.status, DeviceStatus::Quarantined);
    let held = admin::device_held(&store, &dev.device_id).unwrap();
    assert_eq!((held.len(), held[0].rule.as_str()), (1, "server_document"));
    assert!(held[0].held_bytes > 0);

    // Refused at the door now, with its own code, on sync and media alike.
    let (status, body) = crate::lifecycle::sync_refused(&server, &dev).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("device_quarantined"))
    );
    // Retiring is refused; wiping would be allowed (not done here).
    assert!(matches!(
        admin::device_lifecycle(
            &store,
            &dev.device_id,
            admin::Lifecycle::Retire,
            &sprig_server::By::cli()
        ),
        Err(admin::AdminError::WrongDeviceState { .. })
    ));

    // Released: the next session replaces the device's roster with the server's.
    admin::device_release(&store, &dev.device_id, &sprig_server::By::cli()).unwrap();
    assert!(matches!(
        admin::device_release(&store, &dev.device_id, &sprig_server::By::cli()),
        Err(admin::AdminError::WrongDeviceState { .. })
    ));
    let report = sync_once(&server, &dev, &mut docs, Unsynced::default()).await;
    assert!(report.replaced.contains(&DocId::Roster), "{report:?}");
    assert_eq!(docs.roster.as_mut().unwrap().heads(), before);
    assert_eq!(
        docs.roster
            .as_ref()
            .unwrap()
            .child(&child)
            .unwrap()
            .photo_consent,
        Consent::Yes
    );
    assert!(store.pending_replaces(&dev.device_id).unwrap().is_empty());
    // And then it is an ordinary device again: nothing more is replaced.
    let report = sync_once(&server, &dev, &mut docs, Unsynced::default()).await;
    assert!(report.replaced.is_empty(), "{report:?}");
    let actions: Vec<String> = store
        .audit_log(50)
        .unwrap()
        .into_iter()
        .filter(|e| e.device.as_deref() == Some(dev.device_id.as_str()))
        .map(|e| e.action)
        .collect();
    assert!(actions.contains(&"quarantine".to_owned()), "{actions:?}");
    assert!(
        actions.contains(&"device_release".to_owned()),
        "{actions:?}"
    );
    server.stop().await;
}

/// The roster view the checks use is kept between sessions; a roster change must reach it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_added_after_a_checked_session_may_write_in_the_next() {
    let server = TestServer::start().await;
    let (staff, child) = server.seed();
    let dev = enrol(&server, "tablet").await;
    let mut docs = MemoryDocs::new();
    sync_once(&server, &dev, &mut docs, Unsynced::default()).await;
    // A checked session: the server builds (and keeps) its view of the roster.
    crate::sync::record(&mut docs, &staff, &child, "Built a tower of six bricks");
    sync_once(&server, &dev, &mut docs, Unsynced::default()).await;

    let newcomer = admin::staff_add(
        &server.store(),
        "Bea Newcomer",
        sprig_core::Role::Practitioner,
        "1357",
        None,
    )
    .unwrap();
    // The device learns of the newcomer, who then records.
    sync_once(&server, &dev, &mut docs, Unsynced::default()).await;
    crate::sync::record(&mut docs, &newcomer, &child, "Sorted the shells by size");
    let report = session(
        &server,
        &dev,
        &mut docs,
        info(&dev, Unsynced::default()),
        false,
    )
    .await;
    assert!(
        report.is_ok(),
        "the newcomer's entry was refused: {report:?}"
    );
    let d = server.store().device(&dev.device_id).unwrap().unwrap();
    assert_eq!(d.status, DeviceStatus::Active);
    let AnyDoc::Journal(j) = load_doc(&server.store(), &DocId::Journal(child.clone())).unwrap()
    else {
        panic!("a journal")
    };
    assert!(
        j.entries()
            .iter()
            .any(|e| e.text == "Sorted the shells by size")
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_a_session_bound_nothing_is_applied() {
    let server = TestServer::start_with(|c| c.limits.max_session_bytes = 2_000).await;
    let (staff, child) = server.seed();
    let dev = enrol(&server, "tablet").await;
    let mut docs = MemoryDocs::new();
    sync_once(&server, &dev, &mut docs, Unsynced::default()).await;
    let journal = DocId::Journal(child.clone());
    let mut before: AnyDoc = load_doc(&server.store(), &journal).unwrap();
    let before = before.heads();
    // Text that does not compress away.
    for i in 0..20u64 {
        let text: String = (0..60u64)
            .map(|k| format!("{:x} ", (i * 1000 + k).wrapping_mul(0x9E37_79B9_7F4A_7C15)))
            .collect();
        crate::sync::record(&mut docs, &staff, &child, &text);
    }
    let err = session(
        &server,
        &dev,
        &mut docs,
        info(&dev, Unsynced::default()),
        false,
    )
    .await
    .unwrap_err();
    assert!(err.contains("session_limit"), "{err}");
    let mut after: AnyDoc = load_doc(&server.store(), &journal).unwrap();
    assert_eq!(after.heads(), before);

    // Wrong-PIN records in a hello are bounded too, and none of an oversized hello is kept.
    let many: Vec<PinFailure> = (0..1_001)
        .map(|i| PinFailure {
            staff_id: staff.to_string(),
            at_ms: i,
        })
        .collect();
    let mut ws = open(&server, &dev).await;
    let hello = ClientSession::new(
        ClientInfo {
            pin_failures: many,
            ..info(&dev, Unsynced::default())
        },
        Limits::default(),
    )
    .start(&mut MemoryDocs::new().peer("server"))
    .unwrap();
    ws.send(Ws::Binary(hello.into())).await.unwrap();
    assert_eq!(error_code(&mut ws).await, "session_limit");
    assert_eq!(
        server
            .store()
            .device(&dev.device_id)
            .unwrap()
            .unwrap()
            .pin_failures,
        0
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrolment_checks_the_code_before_it_reads_the_csr() {
    let server = TestServer::start().await;
    // An unknown code with a CSR that is not one: the code is what is refused.
    let r = post_enrol(&server, "ZZZZZ-ZZZZZ", "not a CSR at all").await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::UNAUTHORIZED, "enrol_code_invalid")
    );
    // A valid code with a bad CSR: now the CSR is read and refused, and the code stays usable.
    let code = server.enrol_code("tablet");
    let r = post_enrol(&server, &code, "not a CSR at all").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.code());
    let (_key, csr) = key_and_csr();
    let r = post_enrol(&server, &code, &csr).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = post_enrol(&server, &code, "still not a CSR").await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::GONE, "enrol_code_used")
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_server_copy_says_the_server_must_be_restored() {
    let server = TestServer::start().await;
    let (staff, child) = server.seed();
    let dev = enrol(&server, "tablet").await;
    let mut docs = MemoryDocs::new();
    sync_once(&server, &dev, &mut docs, Unsynced::default()).await;
    crate::sync::record(&mut docs, &staff, &child, "Recorded before the damage");
    let store = server.store();
    let journal = DocId::Journal(child.clone());
    let stored = store.load_doc(&journal).unwrap().unwrap();
    let mut d: AnyDoc = load_doc(&store, &journal).unwrap();
    store
        .compact_doc(
            &journal,
            b"not automerge",
            stored.last_seq,
            stored.version,
            &d.heads(),
        )
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
    assert!(err.contains("server_doc_damaged"), "{err}");
    assert!(err.contains("restore the server from a backup"), "{err}");
    assert!(!err.contains("sync again to restore"), "{err}");
    server.stop().await;
}

/// Contains `needle` anywhere in `hay`.
fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parents_addresses_leave_the_roster_of_an_existing_data_directory() {
    use automerge::ReadDoc;
    use automerge::transaction::Transactable;
    let server = TestServer::start().await;
    let (_staff, child) = server.seed();
    let store = server.store();
    let parent = admin::parent_add(
        &store,
        "Old.Style@Example.org",
        "Parent From Before",
        "a long enough password",
        &[child.to_string()],
    )
    .unwrap();
    // Today the roster never holds the address; the server store does.
    let mut roster: AnyDoc = load_doc(&store, &DocId::Roster).unwrap();
    assert!(!contains(&roster.save(), b"example.org"));
    assert_eq!(
        store
            .parent_by_email("old.style@example.org")
            .unwrap()
            .as_deref(),
        Some(parent.as_str())
    );
    // A data directory from before: the address was written into the roster, and a device
    // synced it.
    let dev = enrol(&server, "tablet").await;
    let mut docs = MemoryDocs::new();
    sync_once(&server, &dev, &mut docs, Unsynced::default()).await;
    let stored = store.load_doc(&DocId::Roster).unwrap().unwrap();
    let mut am = automerge::AutoCommit::load(&stored.clone().into_bytes()).unwrap();
    let heads = am.get_heads();
    let Some((_, parents)) = am.get(automerge::ROOT, "parents").unwrap() else {
        panic!("no parents section")
    };
    let Some((_, p)) = am.get(&parents, parent.as_str()).unwrap() else {
        panic!("no such parent")
    };
    am.put(&p, "email", "old.style@example.org").unwrap();
    am.commit();
    let chunk = am.save_after(&heads);
    store
        .commit_changes(
            None,
            &[sprig_server::store::DocWrite {
                doc: DocId::Roster,
                chunks: vec![chunk],
                heads: sprig_core::Heads::default(),
                base_version: u64::MAX,
                media: Vec::new(),
            }],
            &[],
            &[],
        )
        .unwrap();
    store.set_meta("upgrade.roster_contacts", "").unwrap();
    sync_once(&server, &dev, &mut docs, Unsynced::default()).await;
    assert_eq!(
        docs.roster.as_ref().unwrap().legacy_parent_emails().len(),
        1,
        "the device holds the address"
    );

    // The next open moves it out: a new roster epoch, which the device receives whole.
    let store = server.store();
    let mut roster: AnyDoc = load_doc(&store, &DocId::Roster).unwrap();
    assert_eq!(roster.epoch(), 1);
    assert!(!contains(&roster.save(), b"example.org"));
    assert!(!contains(
        &store
            .load_doc(&DocId::Roster)
            .unwrap()
            .unwrap()
            .into_bytes(),
        b"example.org"
    ));
    assert_eq!(
        store.parent_email(parent.as_str()).unwrap().as_deref(),
        Some("old.style@example.org")
    );
    let report = sync_once(&server, &dev, &mut docs, Unsynced::default()).await;
    assert!(report.replaced.contains(&DocId::Roster), "{report:?}");
    let device_roster = docs.roster.as_mut().unwrap();
    assert_eq!(device_roster.epoch(), 1);
    assert!(device_roster.legacy_parent_emails().is_empty());
    // A new epoch carries no history: the address is in none of the device's bytes.
    assert!(!contains(&device_roster.save(), b"old.style"));
    // Everything else on the roster came across.
    let p = device_roster.parent(&parent).unwrap();
    assert_eq!(
        (p.name.as_str(), p.children.as_slice()),
        ("Parent From Before", std::slice::from_ref(&child))
    );
    assert!(device_roster.child(&child).is_some());
    assert!(
        store
            .audit_log(20)
            .unwrap()
            .iter()
            .any(|e| e.action == "roster_contacts_moved")
    );
    server.stop().await;
}

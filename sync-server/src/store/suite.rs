//! The shared [`ServerStore`] test suite. Every backend runs it through
//! [`crate::server_store_tests!`]; each function panics on a failed check.

use sprig_core::{ChildId, Heads};
use sprig_proto::DocId;

use super::{
    AgreementRecord, Attempts, AuditEvent, AuditQuery, CodeState, Contact, DeviceStatus, DocWrite,
    EnrolCode, Invitation, MediaRecord, NewDevice, PinFailureRecord, Quarantine, Redeemed,
    ServerStore, SessionRow, SettingEvent, StatusChange, StoreError, TotpRecord,
};

/// Runs every check of the suite against stores made by `make`, as `#[test]` functions.
///
/// ```ignore
/// sprig_server::server_store_tests!(sprig_server::SqliteStore::open_in_memory().unwrap());
/// ```
#[macro_export]
macro_rules! server_store_tests {
    ($make:expr) => {
        $crate::server_store_tests!(@t $make;
            docs_append_load_and_compact,
            doc_heads_are_kept_beside_documents,
            commit_is_all_or_nothing,
            sync_states_are_per_device,
            enrol_codes_redeem_once,
            expired_and_unknown_codes_change_nothing,
            devices_status_and_contact,
            media_records_are_idempotent,
            passwords_and_meta,
            audit_log_is_newest_first,
            audit_query_filters_and_keeps_the_client,
            device_offsite_permission_is_kept_and_cleared,
            device_lifecycle_changes_are_conditional_and_stamped,
            pin_failures_are_recorded_and_audited_once,
            enrol_code_state_is_read_without_using_the_code,
            quarantine_holds_the_refusal_until_release_and_replace,
            media_refs_come_with_the_commit_that_adds_them,
            parent_emails_are_unique_in_any_case,
            a_replaced_document_drops_its_chunks_and_sync_states,
            status_changes_write_events_in_order,
            attempts_are_counted_in_a_window_and_pruned,
            attempts_are_counted_per_scope_and_key_in_a_window,
            sessions_expire_and_are_keyed_by_hash,
            agreements_latest_acceptance_wins,
            totp_steps_are_used_once_and_secrets_replaced,
            invitations_are_used_once_before_they_expire,
            staff_emails_are_unique_across_staff_and_parents,
            recovery_codes_are_used_once_and_replaced
        );
    };
    (@t $make:expr; $($name:ident),+) => {
        $(
            #[test]
            fn $name() {
                let store = $make;
                $crate::store::suite::$name(&store);
            }
        )+
    };
}

fn new_device(id: &str) -> NewDevice {
    NewDevice {
        id: id.into(),
        name: "ignored".into(),
        cert_serial: format!("serial-{id}"),
        cert_fingerprint: format!("sha256:{id}"),
        created_at: 1_000,
        app_version: Some("0.1.0".into()),
    }
}

fn code(hash: &str, expires_at: i64) -> EnrolCode {
    EnrolCode {
        code_hash: hash.into(),
        device_name: "Room 1 tablet".into(),
        created_at: 0,
        expires_at,
    }
}

/// Snapshots plus appended chunks load in order; compaction keeps later chunks.
pub fn docs_append_load_and_compact(s: &dyn ServerStore) {
    let j = DocId::Journal(ChildId::new_random());
    assert!(s.load_doc(&j).unwrap().is_none());
    s.create_doc(&j, 2, b"snap").unwrap();
    assert!(matches!(
        s.create_doc(&j, 2, b"again"),
        Err(StoreError::AlreadyExists(_))
    ));
    s.create_doc(&DocId::Roster, 0, b"r").unwrap();
    assert_eq!(
        s.list_docs().unwrap(),
        vec![(DocId::Roster, 0), (j.clone(), 2)]
    );
    let w = |c: &[&[u8]], base_version: u64| DocWrite {
        doc: j.clone(),
        chunks: c.iter().map(|x| x.to_vec()).collect(),
        heads: heads(1),
        base_version,
        media: Vec::new(),
    };
    s.commit_changes(None, &[w(&[b"a", b"b"], 0)], &[], &[])
        .unwrap();
    let d = s.load_doc(&j).unwrap().unwrap();
    assert_eq!(d.epoch, 2);
    assert_eq!(d.snapshot, b"snap");
    assert_eq!(d.chunks, vec![b"a".to_vec(), b"b".to_vec()]);
    assert_eq!(d.clone().into_bytes(), b"snapab");
    let upto = d.last_seq;
    // A chunk appended after the compacting reader looked must survive compaction.
    s.commit_changes(None, &[w(&[b"c"], 1)], &[], &[]).unwrap();
    s.compact_doc(&j, b"snap+a+b", upto, d.version, &heads(9))
        .unwrap();
    let d = s.load_doc(&j).unwrap().unwrap();
    assert_eq!(d.snapshot, b"snap+a+b");
    assert_eq!(d.chunks, vec![b"c".to_vec()]);
    assert!(matches!(
        s.compact_doc(&DocId::Setting, b"x", 0, 0, &heads(1)),
        Err(StoreError::NotFound(_))
    ));
}

/// Distinct, well-formed heads for the checks below (the store never interprets them).
fn heads(n: u8) -> Heads {
    Heads::from_bytes(&[n; 32]).unwrap()
}

/// Heads live beside each document: written with every commit and compaction in the same
/// transaction, listed without reading document bytes, and recorded as unknown when the
/// writer's copy missed a change another writer appended.
pub fn doc_heads_are_kept_beside_documents(s: &dyn ServerStore) {
    let j = DocId::Journal(ChildId::new_random());
    s.create_doc(&j, 1, b"snap").unwrap();
    s.create_doc(&DocId::Roster, 0, b"r").unwrap();
    // New documents: version 0, heads unknown until written or filled in.
    let listed = s.list_doc_heads().unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|d| (&d.doc, d.epoch, d.version, d.heads.clone()))
            .collect::<Vec<_>>(),
        vec![(&DocId::Roster, 0, 0, None), (&j, 1, 0, None)]
    );
    assert!(s.set_doc_heads(&DocId::Roster, 0, &heads(7)).unwrap());
    let write = |h: u8, base_version: u64| DocWrite {
        doc: j.clone(),
        chunks: vec![vec![h]],
        heads: heads(h),
        base_version,
        media: Vec::new(),
    };
    // Written with the commit that appends the chunk.
    s.commit_changes(None, &[write(1, 0)], &[], &[]).unwrap();
    let d = s.load_doc(&j).unwrap().unwrap();
    assert_eq!((d.version, d.heads), (1, Some(heads(1))));
    // Two sessions loaded version 1; the first commits, the second's heads miss its change.
    s.commit_changes(None, &[write(2, 1)], &[], &[]).unwrap();
    s.commit_changes(None, &[write(3, 1)], &[], &[]).unwrap();
    let listed = s.list_doc_heads().unwrap();
    assert_eq!(listed[0].heads, Some(heads(7)));
    assert_eq!((listed[1].version, listed[1].heads.clone()), (3, None));
    // Filling in heads from a copy loaded before a later write is refused.
    assert!(!s.set_doc_heads(&j, 2, &heads(4)).unwrap());
    assert!(s.list_doc_heads().unwrap()[1].heads.is_none());
    assert!(s.set_doc_heads(&j, 3, &heads(4)).unwrap());
    assert_eq!(s.list_doc_heads().unwrap()[1].heads, Some(heads(4)));
    // Compaction records the heads of the copy it saved, unless the document moved on.
    let d = s.load_doc(&j).unwrap().unwrap();
    s.compact_doc(&j, b"all", d.last_seq, d.version, &heads(5))
        .unwrap();
    assert_eq!(s.load_doc(&j).unwrap().unwrap().heads, Some(heads(5)));
    s.commit_changes(None, &[write(6, 3)], &[], &[]).unwrap();
    s.compact_doc(&j, b"all", d.last_seq, d.version, &heads(8))
        .unwrap();
    let d = s.load_doc(&j).unwrap().unwrap();
    assert_eq!((d.version, d.heads), (4, Some(heads(6))));
    // A failed commit changes no heads either.
    assert!(
        s.commit_changes(
            None,
            &[
                write(9, 4),
                DocWrite {
                    doc: DocId::Setting,
                    chunks: vec![b"x".to_vec()],
                    heads: heads(9),
                    base_version: 0,
                    media: Vec::new(),
                },
            ],
            &[],
            &[]
        )
        .is_err()
    );
    let d = s.load_doc(&j).unwrap().unwrap();
    assert_eq!((d.version, d.heads), (4, Some(heads(6))));
}

/// A commit naming a missing document writes nothing at all.
pub fn commit_is_all_or_nothing(s: &dyn ServerStore) {
    s.create_doc(&DocId::Roster, 0, b"r").unwrap();
    let missing = DocId::Journal(ChildId::new_random());
    let err = s
        .commit_changes(
            Some("dev"),
            &[
                DocWrite {
                    doc: DocId::Roster,
                    chunks: vec![b"x".to_vec()],
                    heads: heads(1),
                    base_version: 0,
                    media: Vec::new(),
                },
                DocWrite {
                    doc: missing,
                    chunks: vec![b"y".to_vec()],
                    heads: heads(2),
                    base_version: 0,
                    media: Vec::new(),
                },
            ],
            &[(DocId::Roster, b"state".to_vec())],
            &[],
        )
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
    assert!(
        s.load_doc(&DocId::Roster)
            .unwrap()
            .unwrap()
            .chunks
            .is_empty()
    );
    assert!(s.sync_state("dev", &DocId::Roster).unwrap().is_none());
}

/// Sync states are kept per (device, document) and overwritten.
pub fn sync_states_are_per_device(s: &dyn ServerStore) {
    s.create_doc(&DocId::Setting, 0, b"s").unwrap();
    let st = |b: &[u8]| vec![(DocId::Setting, b.to_vec())];
    s.commit_changes(Some("a"), &[], &st(b"1"), &[]).unwrap();
    s.commit_changes(Some("b"), &[], &st(b"2"), &[]).unwrap();
    s.commit_changes(Some("a"), &[], &st(b"3"), &[]).unwrap();
    assert_eq!(
        s.sync_state("a", &DocId::Setting).unwrap().as_deref(),
        Some(&b"3"[..])
    );
    assert_eq!(
        s.sync_state("b", &DocId::Setting).unwrap().as_deref(),
        Some(&b"2"[..])
    );
    assert!(s.sync_state("c", &DocId::Setting).unwrap().is_none());
}

/// A valid code enrols once, under the code's device name; a second use is refused.
pub fn enrol_codes_redeem_once(s: &dyn ServerStore) {
    s.insert_enrol_code(&code("h1", 10_000)).unwrap();
    assert!(matches!(
        s.insert_enrol_code(&code("h1", 10_000)),
        Err(StoreError::AlreadyExists(_))
    ));
    let Redeemed::Enrolled(d) = s.redeem_enrol_code("h1", 5_000, &new_device("d1")).unwrap() else {
        panic!("expected enrolment");
    };
    assert_eq!(d.name, "Room 1 tablet");
    assert_eq!(d.status, DeviceStatus::Active);
    assert_eq!(s.device("d1").unwrap().unwrap(), *d);
    assert_eq!(
        s.redeem_enrol_code("h1", 5_001, &new_device("d2")).unwrap(),
        Redeemed::Used
    );
    assert!(s.device("d2").unwrap().is_none());
    assert_eq!(s.enrol_code_attempts("h1").unwrap(), Some(2));
}

/// Expired and unknown codes register nothing.
pub fn expired_and_unknown_codes_change_nothing(s: &dyn ServerStore) {
    s.insert_enrol_code(&code("old", 100)).unwrap();
    assert_eq!(
        s.redeem_enrol_code("old", 100, &new_device("d1")).unwrap(),
        Redeemed::Expired
    );
    assert_eq!(
        s.redeem_enrol_code("nope", 0, &new_device("d1")).unwrap(),
        Redeemed::Unknown
    );
    assert!(s.list_devices().unwrap().is_empty());
    assert_eq!(s.enrol_code_attempts("old").unwrap(), Some(1));
    assert_eq!(s.enrol_code_attempts("nope").unwrap(), None);
}

/// Status changes, contacts and fingerprint look-ups.
pub fn devices_status_and_contact(s: &dyn ServerStore) {
    s.insert_enrol_code(&code("a", 10)).unwrap();
    s.insert_enrol_code(&code("b", 10)).unwrap();
    s.redeem_enrol_code("a", 0, &new_device("d1")).unwrap();
    // The same certificate cannot belong to two devices.
    let mut dup = new_device("d2");
    dup.cert_fingerprint = "sha256:d1".into();
    assert!(matches!(
        s.redeem_enrol_code("b", 0, &dup),
        Err(StoreError::AlreadyExists(_))
    ));
    assert_eq!(s.list_devices().unwrap().len(), 1);
    let c = Contact {
        at: 7,
        app_version: "0.2.0".into(),
        unsynced_media: 3,
        unsynced_docs: 1,
        synced: false,
        locked: true,
    };
    s.record_contact("d1", &c).unwrap();
    assert!(s.device("d1").unwrap().unwrap().locked);
    let d = s.device_by_fingerprint("sha256:d1").unwrap().unwrap();
    assert_eq!(
        (d.last_seen, d.last_sync, d.unsynced_media, d.unsynced_docs),
        (Some(7), None, 3, 1)
    );
    assert_eq!(d.app_version.as_deref(), Some("0.2.0"));
    s.record_contact(
        "d1",
        &Contact {
            at: 9,
            synced: true,
            unsynced_media: 0,
            ..c.clone()
        },
    )
    .unwrap();
    let d = s.device("d1").unwrap().unwrap();
    assert_eq!(
        (d.last_seen, d.last_sync, d.unsynced_media),
        (Some(9), Some(9), 0)
    );
    // Acknowledged uploads count down the pending media the device last reported, not below 0.
    s.record_contact(
        "d1",
        &Contact {
            unsynced_media: 2,
            ..c.clone()
        },
    )
    .unwrap();
    s.note_media_acked("d1").unwrap();
    assert_eq!(s.device("d1").unwrap().unwrap().unsynced_media, 1);
    s.note_media_acked("d1").unwrap();
    s.note_media_acked("d1").unwrap();
    assert_eq!(s.device("d1").unwrap().unwrap().unsynced_media, 0);
    s.set_device_status("d1", DeviceStatus::Revoked).unwrap();
    assert_eq!(
        s.device("d1").unwrap().unwrap().status,
        DeviceStatus::Revoked
    );
    assert!(matches!(
        s.set_device_status("zz", DeviceStatus::Revoked),
        Err(StoreError::NotFound(_))
    ));
    assert!(s.device_by_fingerprint("sha256:zz").unwrap().is_none());
}

/// The first record of a media file is kept.
pub fn media_records_are_idempotent(s: &dyn ServerStore) {
    let m = MediaRecord {
        sha256: "ab".repeat(32),
        size: 10,
        kind: "photo".into(),
        device: "d1".into(),
        stored_at: 5,
    };
    assert!(s.insert_media(&m).unwrap());
    assert!(
        !s.insert_media(&MediaRecord {
            device: "d2".into(),
            ..m.clone()
        })
        .unwrap()
    );
    assert_eq!(s.media(&m.sha256).unwrap().unwrap(), m);
    assert!(s.media(&"cd".repeat(32)).unwrap().is_none());
}

/// Passwords and server settings round-trip and overwrite.
pub fn passwords_and_meta(s: &dyn ServerStore) {
    assert!(s.password("parent:x").unwrap().is_none());
    s.set_password("parent:x", "$argon2id$1", 1).unwrap();
    s.set_password("parent:x", "$argon2id$2", 2).unwrap();
    assert_eq!(
        s.password("parent:x").unwrap().as_deref(),
        Some("$argon2id$2")
    );
    assert!(s.meta("public_url").unwrap().is_none());
    s.set_meta("public_url", "https://a").unwrap();
    s.set_meta("public_url", "https://b").unwrap();
    assert_eq!(s.meta("public_url").unwrap().as_deref(), Some("https://b"));
}

/// The audit log returns the newest events first.
pub fn audit_log_is_newest_first(s: &dyn ServerStore) {
    for i in 0..3 {
        s.audit(&AuditEvent {
            at: i,
            actor: "admin".into(),
            device: None,
            action: format!("a{i}"),
            detail: String::new(),
            client: None,
        })
        .unwrap();
    }
    let log = s.audit_log(2).unwrap();
    assert_eq!(
        log.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
        ["a2", "a1"]
    );
}

/// The audit log's filters: by device, by staff member (as actor or named), by child, by
/// action and by time; each narrows, and the client a manager asked from is kept.
pub fn audit_query_filters_and_keeps_the_client(s: &dyn ServerStore) {
    let ev = |at: i64, actor: &str, device: Option<&str>, action: &str, detail: &str| AuditEvent {
        at,
        actor: actor.into(),
        device: device.map(Into::into),
        action: action.into(),
        detail: detail.into(),
        client: actor
            .starts_with("staff:")
            .then(|| "127.0.0.1 Firefox".to_owned()),
    };
    for e in [
        ev(10, "admin", None, "child_add", "child=c1"),
        ev(20, "staff:s1", Some("d1"), "device_wipe", "from=active"),
        ev(30, "device:d1", Some("d1"), "sync", ""),
        ev(
            40,
            "staff:s1",
            None,
            "staff_set",
            "staff=s2 deactivate=true",
        ),
        ev(50, "admin", None, "child_set", "child=c2 room=Acorns"),
    ] {
        s.audit(&e).unwrap();
    }
    let actions = |q: AuditQuery| {
        s.audit_query(&AuditQuery { limit: 100, ..q })
            .unwrap()
            .into_iter()
            .map(|e| e.action)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        actions(AuditQuery::default()),
        ["child_set", "staff_set", "sync", "device_wipe", "child_add"]
    );
    let device = AuditQuery {
        device: Some("d1".into()),
        ..AuditQuery::default()
    };
    assert_eq!(actions(device), ["sync", "device_wipe"]);
    let by_s1 = AuditQuery {
        staff: Some("s1".into()),
        ..AuditQuery::default()
    };
    assert_eq!(actions(by_s1), ["staff_set", "device_wipe"]);
    let about_s2 = AuditQuery {
        staff: Some("s2".into()),
        ..AuditQuery::default()
    };
    assert_eq!(actions(about_s2), ["staff_set"]);
    let child = AuditQuery {
        child: Some("c1".into()),
        ..AuditQuery::default()
    };
    assert_eq!(actions(child), ["child_add"]);
    let action = AuditQuery {
        action: Some("sync".into()),
        ..AuditQuery::default()
    };
    assert_eq!(actions(action), ["sync"]);
    let window = AuditQuery {
        since: Some(20),
        until: Some(40),
        ..AuditQuery::default()
    };
    assert_eq!(actions(window), ["sync", "device_wipe"]);
    let few = s
        .audit_query(&AuditQuery {
            limit: 2,
            ..AuditQuery::default()
        })
        .unwrap();
    assert_eq!(few.len(), 2);
    let wipe = s
        .audit_query(&AuditQuery {
            action: Some("device_wipe".into()),
            limit: 1,
            ..AuditQuery::default()
        })
        .unwrap();
    assert_eq!(wipe[0].client.as_deref(), Some("127.0.0.1 Firefox"));
    assert_eq!(s.audit_log(1).unwrap()[0].client, None);
}

/// A device's off-site permission is stored, replaced and cleared; an unknown device is
/// refused.
pub fn device_offsite_permission_is_kept_and_cleared(s: &dyn ServerStore) {
    s.insert_enrol_code(&code("a", 10)).unwrap();
    s.redeem_enrol_code("a", 0, &new_device("d1")).unwrap();
    assert_eq!(s.device("d1").unwrap().unwrap().offsite_until, None);
    s.set_device_offsite("d1", Some(5_000)).unwrap();
    assert_eq!(s.device("d1").unwrap().unwrap().offsite_until, Some(5_000));
    assert_eq!(s.list_devices().unwrap()[0].offsite_until, Some(5_000));
    s.set_device_offsite("d1", None).unwrap();
    assert_eq!(s.device("d1").unwrap().unwrap().offsite_until, None);
    assert!(matches!(
        s.set_device_offsite("nope", Some(1)),
        Err(StoreError::NotFound(_))
    ));
}

/// A lifecycle step changes the status only from the statuses it allows, atomically, and
/// stamps its time: the first wipe or retire request is kept, the wipe's delivery and its
/// acknowledgement are recorded.
pub fn device_lifecycle_changes_are_conditional_and_stamped(s: &dyn ServerStore) {
    s.insert_enrol_code(&code("a", 10)).unwrap();
    s.redeem_enrol_code("a", 0, &new_device("d1")).unwrap();
    let d = s.device("d1").unwrap().unwrap();
    assert_eq!(
        (
            d.wipe_requested_at,
            d.wipe_delivered_at,
            d.wiped_at,
            d.pin_failures
        ),
        (None, None, None, 0)
    );
    assert_eq!(
        s.change_device_status(
            "d1",
            &[DeviceStatus::Active],
            DeviceStatus::RetirePending,
            5
        )
        .unwrap(),
        StatusChange::Changed {
            from: DeviceStatus::Active
        }
    );
    assert_eq!(
        s.change_device_status("d1", &[DeviceStatus::Active], DeviceStatus::Revoked, 6)
            .unwrap(),
        StatusChange::Refused {
            current: DeviceStatus::RetirePending
        }
    );
    s.change_device_status(
        "d1",
        &[DeviceStatus::RetirePending],
        DeviceStatus::WipePending,
        7,
    )
    .unwrap();
    let d = s.device("d1").unwrap().unwrap();
    assert_eq!(
        (d.status, d.wipe_requested_at),
        (DeviceStatus::WipePending, Some(5))
    );
    s.record_wipe_delivered("d1", 8).unwrap();
    s.change_device_status("d1", &[DeviceStatus::WipePending], DeviceStatus::Wiped, 9)
        .unwrap();
    let d = s.device("d1").unwrap().unwrap();
    assert_eq!(
        (d.status, d.wipe_delivered_at, d.wiped_at),
        (DeviceStatus::Wiped, Some(8), Some(9))
    );
    assert!(d.status.is_refused());
    assert!(matches!(
        s.change_device_status("zz", &[DeviceStatus::Active], DeviceStatus::Revoked, 1),
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        s.record_wipe_delivered("zz", 1),
        Err(StoreError::NotFound(_))
    ));
    for st in [
        DeviceStatus::Active,
        DeviceStatus::Revoked,
        DeviceStatus::WipePending,
        DeviceStatus::Wiped,
        DeviceStatus::RetirePending,
        DeviceStatus::Retired,
    ] {
        assert_eq!(DeviceStatus::parse(st.as_str()), Some(st));
    }
}

/// Reported wrong PINs are kept once each (a report repeated after a failed sync adds
/// nothing), counted on the device and written to the audit log.
pub fn pin_failures_are_recorded_and_audited_once(s: &dyn ServerStore) {
    s.insert_enrol_code(&code("a", 10)).unwrap();
    s.redeem_enrol_code("a", 0, &new_device("d1")).unwrap();
    let f = |staff: &str, at: i64| PinFailureRecord {
        staff_id: staff.into(),
        at,
    };
    assert_eq!(
        s.record_pin_failures("d1", &[f("s1", 100), f("s2", 101)], 500)
            .unwrap(),
        2
    );
    assert_eq!(
        s.record_pin_failures("d1", &[f("s1", 100), f("s2", 101), f("s1", 102)], 600)
            .unwrap(),
        1
    );
    assert_eq!(s.device("d1").unwrap().unwrap().pin_failures, 3);
    let log = s.audit_log(10).unwrap();
    let pins: Vec<_> = log.iter().filter(|e| e.action == "pin_failure").collect();
    assert_eq!(pins.len(), 3);
    assert!(pins.iter().all(|e| e.device.as_deref() == Some("d1")));
    assert!(pins[0].detail.contains("staff=s1") && pins[0].at == 102);
}

/// Checking a code neither counts an attempt nor uses it.
pub fn enrol_code_state_is_read_without_using_the_code(s: &dyn ServerStore) {
    s.insert_enrol_code(&code("fresh", 1_000)).unwrap();
    assert_eq!(s.enrol_code_state("fresh", 10).unwrap(), CodeState::Valid);
    assert_eq!(
        s.enrol_code_state("fresh", 1_000).unwrap(),
        CodeState::Expired
    );
    assert_eq!(s.enrol_code_state("nope", 10).unwrap(), CodeState::Unknown);
    assert_eq!(s.enrol_code_attempts("fresh").unwrap(), Some(0));
    s.redeem_enrol_code("fresh", 10, &new_device("d1")).unwrap();
    assert_eq!(s.enrol_code_state("fresh", 10).unwrap(), CodeState::Used);
}

/// Every status change writes one event with the device and its new status, numbered in
/// order; a refused change writes none.
pub fn status_changes_write_events_in_order(s: &dyn ServerStore) {
    assert_eq!(s.last_event_seq().unwrap(), 0);
    assert!(s.events_after(0, 100).unwrap().is_empty());
    enrolled(s, "d1");
    enrolled(s, "d2");
    s.change_device_status("d1", &[DeviceStatus::Active], DeviceStatus::Revoked, 10)
        .unwrap();
    // Refused (d1 is not active any more): no event.
    assert!(matches!(
        s.change_device_status("d1", &[DeviceStatus::Active], DeviceStatus::WipePending, 11)
            .unwrap(),
        StatusChange::Refused { .. }
    ));
    s.set_device_status("d2", DeviceStatus::WipePending)
        .unwrap();
    let q = Quarantine {
        device: "d2".into(),
        doc: DocId::Roster,
        rule: "server_only_doc".into(),
        detail: String::new(),
        at: 12,
        held: Vec::new(),
    };
    // d2 is wipe-pending: the refusal is kept, its status stays, no event.
    s.quarantine_device(&q).unwrap();
    s.set_device_status("d2", DeviceStatus::Active).unwrap();
    s.quarantine_device(&q).unwrap();
    s.release_device("d2", 13).unwrap();
    let events = s.events_after(0, 100).unwrap();
    let seen: Vec<(u64, &str, &str)> = events
        .iter()
        .map(|e| {
            assert_eq!(e.kind, SettingEvent::DEVICE_STATUS);
            (e.seq, e.device.as_deref().unwrap(), e.detail.as_str())
        })
        .collect();
    let seqs: Vec<u64> = seen.iter().map(|e| e.0).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    let what: Vec<(&str, &str)> = seen.iter().map(|e| (e.1, e.2)).collect();
    assert_eq!(
        what,
        [
            ("d1", "revoked"),
            ("d2", "wipe-pending"),
            ("d2", "active"),
            ("d2", "quarantined"),
            ("d2", "active"),
        ]
    );
    let last = s.last_event_seq().unwrap();
    assert_eq!(last, *seqs.last().unwrap());
    // Paged by sequence number.
    let after_first = s.events_after(seqs[0], 2).unwrap();
    assert_eq!(
        after_first.iter().map(|e| e.seq).collect::<Vec<_>>(),
        seqs[1..3]
    );
    assert!(s.events_after(last, 100).unwrap().is_empty());
}

/// Attempts are counted per scope and key from a time on, with the oldest one's time, and
/// pruned by age.
pub fn attempts_are_counted_in_a_window_and_pruned(s: &dyn ServerStore) {
    assert_eq!(
        s.attempts_since("enrol_ip", "10.0.0.1", 0).unwrap(),
        Attempts::default()
    );
    for at in [100, 200, 200, 300] {
        s.record_attempt("enrol_ip", "10.0.0.1", at).unwrap();
    }
    s.record_attempt("enrol_ip", "10.0.0.2", 250).unwrap();
    s.record_attempt("login", "10.0.0.1", 250).unwrap();
    assert_eq!(
        s.attempts_since("enrol_ip", "10.0.0.1", 0).unwrap(),
        Attempts {
            count: 4,
            oldest: Some(100)
        }
    );
    assert_eq!(
        s.attempts_since("enrol_ip", "10.0.0.1", 200).unwrap(),
        Attempts {
            count: 3,
            oldest: Some(200)
        }
    );
    assert_eq!(
        s.attempts_since("enrol_ip", "10.0.0.2", 0).unwrap().count,
        1
    );
    assert_eq!(s.attempts_since("login", "10.0.0.1", 0).unwrap().count, 1);
    assert_eq!(
        s.attempts_since("enrol_ip", "10.0.0.1", 301).unwrap().count,
        0
    );
    // Pruning counts what it removed (attempts and events older than the time).
    assert_eq!(s.prune_transient(201).unwrap(), 3);
    assert_eq!(
        s.attempts_since("enrol_ip", "10.0.0.1", 0).unwrap(),
        Attempts {
            count: 1,
            oldest: Some(300)
        }
    );
}

fn enrolled(s: &dyn ServerStore, id: &str) {
    let hash = format!("code-{id}");
    s.insert_enrol_code(&code(&hash, i64::MAX)).unwrap();
    s.redeem_enrol_code(&hash, 0, &new_device(id)).unwrap();
}

/// A refusal quarantines an active device with its held changes and an audit row; release
/// makes it active and queues its refused documents for replacement until a commit says so.
pub fn quarantine_holds_the_refusal_until_release_and_replace(s: &dyn ServerStore) {
    enrolled(s, "d1");
    let j = DocId::Journal(ChildId::new_random());
    s.create_doc(&j, 0, b"snap").unwrap();
    let q = Quarantine {
        device: "d1".into(),
        doc: j.clone(),
        rule: "root_field".into(),
        detail: "key epoch".into(),
        at: 5,
        held: b"held changes".to_vec(),
    };
    assert_eq!(
        s.quarantine_device(&q).unwrap(),
        StatusChange::Changed {
            from: DeviceStatus::Active
        }
    );
    assert_eq!(
        s.device("d1").unwrap().unwrap().status,
        DeviceStatus::Quarantined
    );
    // A second refusal while quarantined is kept too.
    assert!(matches!(
        s.quarantine_device(&q).unwrap(),
        StatusChange::Refused {
            current: DeviceStatus::Quarantined
        }
    ));
    let records = s.quarantines("d1").unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].quarantine, q);
    assert_eq!(
        (records[0].released_at, records[0].replaced_at),
        (None, None)
    );
    assert!(s.pending_replaces("d1").unwrap().is_empty());
    let audit = s.audit_log(10).unwrap();
    assert!(audit.iter().any(|e| e.action == "quarantine"
        && e.device.as_deref() == Some("d1")
        && e.detail.contains("root_field")));

    assert_eq!(
        s.release_device("d1", 9).unwrap(),
        StatusChange::Changed {
            from: DeviceStatus::Quarantined
        }
    );
    assert_eq!(
        s.device("d1").unwrap().unwrap().status,
        DeviceStatus::Active
    );
    assert!(matches!(
        s.release_device("d1", 10).unwrap(),
        StatusChange::Refused {
            current: DeviceStatus::Active
        }
    ));
    assert_eq!(s.pending_replaces("d1").unwrap(), vec![j.clone()]);
    assert!(s.pending_replaces("other").unwrap().is_empty());
    // Another device's commit does not mark it replaced; this device's does.
    s.commit_changes(Some("other"), &[], &[], std::slice::from_ref(&j))
        .unwrap();
    assert_eq!(s.pending_replaces("d1").unwrap(), vec![j.clone()]);
    s.commit_changes(Some("d1"), &[], &[], std::slice::from_ref(&j))
        .unwrap();
    assert!(s.pending_replaces("d1").unwrap().is_empty());
    let records = s.quarantines("d1").unwrap();
    assert_eq!(records[0].released_at, Some(9));
    assert!(records[0].replaced_at.is_some());
    assert!(matches!(
        s.quarantine_device(&Quarantine {
            device: "ghost".into(),
            ..q
        }),
        Err(StoreError::NotFound(_))
    ));
}

/// Media references arrive with the commit of the entries that make them, all or nothing.
pub fn media_refs_come_with_the_commit_that_adds_them(s: &dyn ServerStore) {
    let j = DocId::Journal(ChildId::new_random());
    s.create_doc(&j, 0, b"snap").unwrap();
    let sha = "ab".repeat(32);
    assert!(!s.media_referenced(&sha).unwrap());
    let write = |doc: &DocId| DocWrite {
        doc: doc.clone(),
        chunks: vec![b"c".to_vec()],
        heads: heads(1),
        base_version: 0,
        media: vec![sha.clone()],
    };
    // A failed commit records no reference.
    assert!(
        s.commit_changes(
            None,
            &[write(&j), write(&DocId::Journal(ChildId::new_random()))],
            &[],
            &[]
        )
        .is_err()
    );
    assert!(!s.media_referenced(&sha).unwrap());
    s.commit_changes(None, &[write(&j)], &[], &[]).unwrap();
    assert!(s.media_referenced(&sha).unwrap());
    let other = "cd".repeat(32);
    s.add_media_refs(&[(other.clone(), j.clone()), (other.clone(), j)])
        .unwrap();
    assert!(s.media_referenced(&other).unwrap());
}

/// Parents' e-mail addresses live on the server, one parent each, found in any case.
pub fn parent_emails_are_unique_in_any_case(s: &dyn ServerStore) {
    s.set_parent_email("p1", " Parent.One@Example.org ", 1)
        .unwrap();
    assert_eq!(
        s.parent_email("p1").unwrap().as_deref(),
        Some("parent.one@example.org")
    );
    assert_eq!(
        s.parent_by_email("PARENT.ONE@example.org")
            .unwrap()
            .as_deref(),
        Some("p1")
    );
    assert!(matches!(
        s.set_parent_email("p2", "parent.one@example.org", 2),
        Err(StoreError::AlreadyExists(_))
    ));
    // A parent may change their own address.
    s.set_parent_email("p1", "new@example.org", 3).unwrap();
    assert!(
        s.parent_by_email("parent.one@example.org")
            .unwrap()
            .is_none()
    );
    assert!(s.parent_email("p2").unwrap().is_none());
}

/// Replacing a document (a new epoch) drops its chunks and every device's sync state for it.
pub fn a_replaced_document_drops_its_chunks_and_sync_states(s: &dyn ServerStore) {
    s.create_doc(&DocId::Roster, 0, b"old").unwrap();
    s.commit_changes(
        Some("dev"),
        &[DocWrite {
            doc: DocId::Roster,
            chunks: vec![b"c".to_vec()],
            heads: heads(1),
            base_version: 0,
            media: Vec::new(),
        }],
        &[(DocId::Roster, b"state".to_vec())],
        &[],
    )
    .unwrap();
    s.replace_doc(&DocId::Roster, 1, b"new").unwrap();
    let d = s.load_doc(&DocId::Roster).unwrap().unwrap();
    assert_eq!(
        (d.epoch, d.snapshot.as_slice(), d.chunks.len()),
        (1, &b"new"[..], 0)
    );
    assert_eq!((d.version, d.heads), (2, None));
    assert!(s.sync_state("dev", &DocId::Roster).unwrap().is_none());
    assert!(matches!(
        s.replace_doc(&DocId::Setting, 1, b"x"),
        Err(StoreError::NotFound(_))
    ));
}

/// Two settings of one multi-tenant backend: `a` and `b` are stores of different settings in
/// the same database. They use the same keys (document ids, device ids and fingerprints, code
/// hashes, principals, media hashes), and no trait method of one reads, changes or collides
/// with a row of the other.
pub fn settings_never_see_each_other(a: &dyn ServerStore, b: &dyn ServerStore) {
    let j = DocId::Journal(ChildId::new_random());
    // Everything written to A.
    a.set_meta("public_url", "https://a").unwrap();
    a.create_doc(&j, 1, b"a-snap").unwrap();
    a.create_doc(&DocId::Roster, 0, b"a-roster").unwrap();
    a.commit_changes(
        Some("d1"),
        &[DocWrite {
            doc: j.clone(),
            chunks: vec![b"a1".to_vec()],
            heads: heads(1),
            base_version: 0,
            media: Vec::new(),
        }],
        &[(j.clone(), b"a-state".to_vec())],
        &[],
    )
    .unwrap();
    a.insert_enrol_code(&code("h1", 10_000)).unwrap();
    a.insert_enrol_code(&code("h2", 10_000)).unwrap();
    assert!(matches!(
        a.redeem_enrol_code("h1", 5, &new_device("d1")).unwrap(),
        Redeemed::Enrolled(_)
    ));
    a.record_contact(
        "d1",
        &Contact {
            at: 7,
            app_version: "0.2.0".into(),
            unsynced_media: 2,
            unsynced_docs: 1,
            synced: true,
            locked: false,
        },
    )
    .unwrap();
    a.record_pin_failures(
        "d1",
        &[PinFailureRecord {
            staff_id: "s1".into(),
            at: 100,
        }],
        200,
    )
    .unwrap();
    let m = MediaRecord {
        sha256: "ab".repeat(32),
        size: 10,
        kind: "photo".into(),
        device: "d1".into(),
        stored_at: 5,
    };
    assert!(a.insert_media(&m).unwrap());
    a.set_password("parent:x", "$argon2id$a", 1).unwrap();
    a.set_parent_email("p1", "parent@example.org", 1).unwrap();
    a.add_media_refs(&[(m.sha256.clone(), j.clone())]).unwrap();
    a.audit(&AuditEvent {
        at: 1,
        actor: "admin".into(),
        device: None,
        action: "a_only".into(),
        detail: String::new(),
        client: None,
    })
    .unwrap();
    let q = Quarantine {
        device: "d1".into(),
        doc: j.clone(),
        rule: "root_field".into(),
        detail: String::new(),
        at: 8,
        held: b"held".to_vec(),
    };
    a.quarantine_device(&q).unwrap();
    a.release_device("d1", 9).unwrap();
    let totp = TotpRecord {
        principal: "parent:x".into(),
        secret: vec![1; 20],
        enabled: true,
        last_step: Some(10),
        updated_at: 9,
    };
    a.put_totp(&totp).unwrap();
    let inv = Invitation {
        token_hash: "ef".repeat(32),
        parent: "p1".into(),
        created_at: 1,
        expires_at: 10_000,
        used_at: None,
    };
    a.insert_invitation(&inv).unwrap();

    // B reads none of it.
    assert!(b.totp("parent:x").unwrap().is_none());
    assert!(b.invitation(&inv.token_hash, 5).unwrap().is_none());
    assert!(b.use_invitation(&inv.token_hash, 5).unwrap().is_none());
    assert!(matches!(
        b.use_totp_step("parent:x", 11, false),
        Err(StoreError::NotFound(_))
    ));
    b.delete_totp("parent:x").unwrap();
    assert!(b.meta("public_url").unwrap().is_none());
    assert!(b.list_docs().unwrap().is_empty());
    assert!(b.list_doc_heads().unwrap().is_empty());
    assert!(b.load_doc(&j).unwrap().is_none());
    assert!(b.sync_state("d1", &j).unwrap().is_none());
    assert_eq!(b.enrol_code_attempts("h1").unwrap(), None);
    assert!(b.device("d1").unwrap().is_none());
    assert!(b.device_by_fingerprint("sha256:d1").unwrap().is_none());
    assert!(b.list_devices().unwrap().is_empty());
    assert!(b.media(&m.sha256).unwrap().is_none());
    assert!(b.password("parent:x").unwrap().is_none());
    assert!(b.audit_log(100).unwrap().is_empty());
    assert_eq!(b.enrol_code_state("h2", 5).unwrap(), CodeState::Unknown);
    assert!(b.parent_email("p1").unwrap().is_none());
    assert!(b.parent_by_email("parent@example.org").unwrap().is_none());
    assert!(!b.media_referenced(&m.sha256).unwrap());
    assert!(b.quarantines("d1").unwrap().is_empty());
    assert!(b.pending_replaces("d1").unwrap().is_empty());
    assert!(!a.events_after(0, 100).unwrap().is_empty());
    a.record_attempt("enrol_ip", "127.0.0.1", 5).unwrap();
    assert!(b.events_after(0, 100).unwrap().is_empty());
    assert_eq!(b.last_event_seq().unwrap(), 0);
    assert_eq!(
        b.attempts_since("enrol_ip", "127.0.0.1", 0).unwrap().count,
        0
    );

    // B changes none of it: each write aimed at A's rows finds nothing.
    assert!(!b.set_doc_heads(&j, 1, &heads(9)).unwrap());
    assert!(matches!(
        b.commit_changes(
            None,
            &[DocWrite {
                doc: j.clone(),
                chunks: vec![b"b!".to_vec()],
                heads: heads(9),
                base_version: 1,
                media: Vec::new(),
            }],
            &[],
            &[],
        ),
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        b.compact_doc(&j, b"b!", 99, 1, &heads(9)),
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        b.redeem_enrol_code("h2", 5, &new_device("d2")).unwrap(),
        Redeemed::Unknown
    );
    assert!(matches!(
        b.set_device_status("d1", DeviceStatus::Revoked),
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        b.change_device_status("d1", &[DeviceStatus::Active], DeviceStatus::Revoked, 9),
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        b.record_wipe_delivered("d1", 9),
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        b.record_contact(
            "d1",
            &Contact {
                at: 9,
                app_version: "9".into(),
                unsynced_media: 0,
                unsynced_docs: 0,
                synced: true,
                locked: true,
            }
        ),
        Err(StoreError::NotFound(_))
    ));
    b.note_media_acked("d1").unwrap();
    assert!(matches!(
        b.replace_doc(&j, 5, b"b!"),
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        b.quarantine_device(&q),
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        b.release_device("d1", 9),
        Err(StoreError::NotFound(_))
    ));
    // A commit of B marking "replaced" touches none of A's quarantine rows.
    b.commit_changes(Some("d1"), &[], &[], std::slice::from_ref(&j))
        .unwrap();

    // B's own rows under the same keys: no collision with A's.
    b.set_meta("public_url", "https://b").unwrap();
    b.create_doc(&j, 3, b"b-snap").unwrap();
    b.commit_changes(Some("d1"), &[], &[(j.clone(), b"b-state".to_vec())], &[])
        .unwrap();
    b.insert_enrol_code(&code("h1", 10_000)).unwrap();
    assert!(matches!(
        b.redeem_enrol_code("h1", 5, &new_device("d1")).unwrap(),
        Redeemed::Enrolled(_)
    ));
    assert_eq!(
        b.record_pin_failures(
            "d1",
            &[PinFailureRecord {
                staff_id: "s1".into(),
                at: 100,
            }],
            300,
        )
        .unwrap(),
        1
    );
    assert!(
        b.insert_media(&MediaRecord {
            device: "d1".into(),
            ..m.clone()
        })
        .unwrap()
    );
    b.set_password("parent:x", "$argon2id$b", 2).unwrap();
    b.set_parent_email("p1", "parent@example.org", 2).unwrap();
    b.set_device_status("d1", DeviceStatus::Revoked).unwrap();

    // A is exactly as it was left.
    assert_eq!(a.meta("public_url").unwrap().as_deref(), Some("https://a"));
    assert_eq!(
        a.list_docs().unwrap(),
        vec![(DocId::Roster, 0), (j.clone(), 1)]
    );
    let d = a.load_doc(&j).unwrap().unwrap();
    assert_eq!(
        (d.snapshot.as_slice(), d.chunks, d.version, d.heads),
        (&b"a-snap"[..], vec![b"a1".to_vec()], 1, Some(heads(1)))
    );
    assert_eq!(
        a.sync_state("d1", &j).unwrap().as_deref(),
        Some(&b"a-state"[..])
    );
    assert_eq!(a.enrol_code_attempts("h1").unwrap(), Some(1));
    assert_eq!(a.enrol_code_attempts("h2").unwrap(), Some(0));
    let dev = a.device_by_fingerprint("sha256:d1").unwrap().unwrap();
    assert_eq!(
        (
            dev.status,
            dev.last_seen,
            dev.unsynced_media,
            dev.pin_failures,
            dev.locked
        ),
        (DeviceStatus::Active, Some(7), 2, 1, false)
    );
    assert_eq!(a.list_devices().unwrap().len(), 1);
    assert_eq!(a.media(&m.sha256).unwrap().unwrap(), m);
    assert!(a.media_referenced(&m.sha256).unwrap());
    assert_eq!(
        a.parent_by_email("parent@example.org").unwrap().as_deref(),
        Some("p1")
    );
    assert_eq!(a.pending_replaces("d1").unwrap(), vec![j.clone()]);
    assert_eq!(a.quarantines("d1").unwrap().len(), 1);
    assert_eq!(
        a.password("parent:x").unwrap().as_deref(),
        Some("$argon2id$a")
    );
    let log: Vec<String> = a
        .audit_log(100)
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(log, ["quarantine", "a_only", "pin_failure"]);

    assert_eq!(a.totp("parent:x").unwrap(), Some(totp));
    assert_eq!(a.invitation(&inv.token_hash, 5).unwrap(), Some(inv));

    // And B holds only its own.
    assert_eq!(b.list_docs().unwrap(), vec![(j.clone(), 3)]);
    assert!(b.load_doc(&j).unwrap().unwrap().chunks.is_empty());
    assert_eq!(
        b.sync_state("d1", &j).unwrap().as_deref(),
        Some(&b"b-state"[..])
    );
    assert_eq!(
        b.device("d1").unwrap().unwrap().status,
        DeviceStatus::Revoked
    );
    assert_eq!(b.media(&m.sha256).unwrap().unwrap().device, "d1");
    let log: Vec<String> = b
        .audit_log(100)
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(log, ["pin_failure"]);
}

pub fn attempts_are_counted_per_scope_and_key_in_a_window(s: &dyn ServerStore) {
    assert_eq!(
        s.attempts_since("login_failure", "a@example.com", 0)
            .unwrap(),
        Attempts::default()
    );
    for at in [1_000, 2_000, 3_000] {
        s.record_attempt("login_failure", "a@example.com", at)
            .unwrap();
    }
    s.record_attempt("login_failure", "b@example.com", 2_500)
        .unwrap();
    s.record_attempt("login_lock", "a@example.com", 2_500)
        .unwrap();
    assert_eq!(
        s.attempts_since("login_failure", "a@example.com", 0)
            .unwrap(),
        Attempts {
            count: 3,
            oldest: Some(1_000)
        }
    );
    // The window starts at `since`, inclusive.
    assert_eq!(
        s.attempts_since("login_failure", "a@example.com", 2_000)
            .unwrap(),
        Attempts {
            count: 2,
            oldest: Some(2_000)
        }
    );
    assert_eq!(
        s.attempts_since("login_failure", "a@example.com", 3_001)
            .unwrap(),
        Attempts::default()
    );
    assert_eq!(
        s.attempts_since("login_lock", "a@example.com", 0)
            .unwrap()
            .count,
        1
    );
}

pub fn sessions_expire_and_are_keyed_by_hash(s: &dyn ServerStore) {
    let row = SessionRow {
        id_hash: "ab".repeat(32),
        principal: None,
        data: b"{}".to_vec(),
        expires_at: 10_000,
    };
    s.create_session(&row).unwrap();
    assert!(matches!(
        s.create_session(&row),
        Err(StoreError::AlreadyExists(_))
    ));
    assert_eq!(
        s.load_session(&row.id_hash, 9_999).unwrap(),
        Some(row.clone())
    );
    // Expired at its expiry time: never served again.
    assert_eq!(s.load_session(&row.id_hash, 10_000).unwrap(), None);
    let signed_in = SessionRow {
        principal: Some("parent:p1".into()),
        data: br#"{"parent":"p1"}"#.to_vec(),
        expires_at: 20_000,
        ..row.clone()
    };
    assert!(s.update_session(&signed_in).unwrap());
    assert_eq!(
        s.load_session(&row.id_hash, 10_000).unwrap(),
        Some(signed_in.clone())
    );
    let other = SessionRow {
        id_hash: "cd".repeat(32),
        expires_at: 5_000,
        ..row.clone()
    };
    // An update of a session that does not exist stores nothing.
    assert!(!s.update_session(&other).unwrap());
    assert_eq!(s.load_session(&other.id_hash, 0).unwrap(), None);
    s.create_session(&other).unwrap();
    let elsewhere = SessionRow {
        id_hash: "ef".repeat(32),
        expires_at: 15_000,
        ..signed_in.clone()
    };
    s.create_session(&elsewhere).unwrap();
    // A parent's sessions: unexpired ones only, the one expiring last first.
    assert_eq!(
        s.sessions_of("parent:p1", 4_000).unwrap(),
        vec![signed_in.clone(), elsewhere.clone()]
    );
    assert_eq!(
        s.sessions_of("parent:p1", 15_000).unwrap(),
        vec![signed_in.clone()]
    );
    assert_eq!(s.sessions_of("parent:p2", 0).unwrap(), vec![]);
    s.delete_session(&elsewhere.id_hash).unwrap();
    assert_eq!(s.delete_expired_sessions(6_000).unwrap(), 1);
    assert!(s.load_session(&signed_in.id_hash, 6_000).unwrap().is_some());
    s.delete_session(&signed_in.id_hash).unwrap();
    assert_eq!(s.load_session(&signed_in.id_hash, 6_000).unwrap(), None);
    // Deleting what is not there is not an error.
    s.delete_session(&signed_in.id_hash).unwrap();
}

pub fn agreements_latest_acceptance_wins(s: &dyn ServerStore) {
    assert_eq!(s.latest_agreement("parent:p1").unwrap(), None);
    let first = AgreementRecord {
        principal: "parent:p1".into(),
        version: "1".into(),
        at: 1_000,
        session_hash: "aa".into(),
    };
    s.record_agreement(&first).unwrap();
    let second = AgreementRecord {
        version: "2".into(),
        at: 2_000,
        session_hash: "bb".into(),
        ..first.clone()
    };
    s.record_agreement(&second).unwrap();
    s.record_agreement(&AgreementRecord {
        principal: "parent:p2".into(),
        at: 3_000,
        ..first.clone()
    })
    .unwrap();
    assert_eq!(s.latest_agreement("parent:p1").unwrap(), Some(second));
}

pub fn totp_steps_are_used_once_and_secrets_replaced(s: &dyn ServerStore) {
    assert_eq!(s.totp("parent:p1").unwrap(), None);
    assert!(matches!(
        s.use_totp_step("parent:p1", 5, false),
        Err(StoreError::NotFound(_))
    ));
    let pending = TotpRecord {
        principal: "parent:p1".into(),
        secret: vec![7; 20],
        enabled: false,
        last_step: None,
        updated_at: 1_000,
    };
    s.put_totp(&pending).unwrap();
    assert_eq!(s.totp("parent:p1").unwrap(), Some(pending.clone()));
    // The set-up's first code turns it on and uses its step.
    assert!(s.use_totp_step("parent:p1", 100, true).unwrap());
    let on = s.totp("parent:p1").unwrap().unwrap();
    assert!(on.enabled);
    assert_eq!(on.last_step, Some(100));
    // The same step again, or an earlier one: refused (a replayed code), nothing changes.
    assert!(!s.use_totp_step("parent:p1", 100, false).unwrap());
    assert!(!s.use_totp_step("parent:p1", 99, false).unwrap());
    // A later step is accepted; `enable: false` never turns it off.
    assert!(s.use_totp_step("parent:p1", 101, false).unwrap());
    let on = s.totp("parent:p1").unwrap().unwrap();
    assert!(on.enabled);
    assert_eq!(on.last_step, Some(101));
    // Another login is its own.
    s.put_totp(&TotpRecord {
        principal: "parent:p2".into(),
        ..pending.clone()
    })
    .unwrap();
    assert!(s.use_totp_step("parent:p2", 100, false).unwrap());
    // A new set-up replaces the secret and starts over.
    let again = TotpRecord {
        secret: vec![9; 20],
        updated_at: 2_000,
        ..pending.clone()
    };
    s.put_totp(&again).unwrap();
    assert_eq!(s.totp("parent:p1").unwrap(), Some(again));
    s.delete_totp("parent:p1").unwrap();
    assert_eq!(s.totp("parent:p1").unwrap(), None);
    s.delete_totp("parent:p1").unwrap();
    assert!(s.totp("parent:p2").unwrap().is_some());
}

pub fn invitations_are_used_once_before_they_expire(s: &dyn ServerStore) {
    let inv = Invitation {
        token_hash: "ab".repeat(32),
        parent: "p1".into(),
        created_at: 1_000,
        expires_at: 10_000,
        used_at: None,
    };
    s.insert_invitation(&inv).unwrap();
    assert!(matches!(
        s.insert_invitation(&inv),
        Err(StoreError::AlreadyExists(_))
    ));
    assert_eq!(
        s.invitation(&inv.token_hash, 9_999).unwrap(),
        Some(inv.clone())
    );
    // Expired at its expiry time, by the clock the caller passes: found neither to read nor to
    // use, and using it then changes nothing.
    assert_eq!(s.invitation(&inv.token_hash, 10_000).unwrap(), None);
    assert_eq!(s.use_invitation(&inv.token_hash, 10_000).unwrap(), None);
    assert_eq!(s.invitation(&"cd".repeat(32), 0).unwrap(), None);
    assert_eq!(s.use_invitation(&"cd".repeat(32), 0).unwrap(), None);
    // Used once; then gone.
    let used = s.use_invitation(&inv.token_hash, 5_000).unwrap();
    assert_eq!(
        used,
        Some(Invitation {
            used_at: Some(5_000),
            ..inv.clone()
        })
    );
    assert_eq!(s.use_invitation(&inv.token_hash, 5_001).unwrap(), None);
    assert_eq!(s.invitation(&inv.token_hash, 5_001).unwrap(), None);

    // A new invitation ends the parent's unused ones, and no one else's.
    let (a, b, other) = (
        Invitation {
            token_hash: "a1".repeat(32),
            ..inv.clone()
        },
        Invitation {
            token_hash: "b2".repeat(32),
            ..inv.clone()
        },
        Invitation {
            token_hash: "c3".repeat(32),
            parent: "p2".into(),
            ..inv.clone()
        },
    );
    for i in [&a, &b, &other] {
        s.insert_invitation(i).unwrap();
    }
    assert_eq!(s.revoke_invitations("p1", 6_000).unwrap(), 2);
    assert_eq!(s.invitation(&a.token_hash, 6_000).unwrap(), None);
    assert_eq!(s.use_invitation(&b.token_hash, 6_001).unwrap(), None);
    assert!(s.invitation(&other.token_hash, 6_000).unwrap().is_some());
    assert_eq!(s.revoke_invitations("p1", 6_000).unwrap(), 0);
}

/// A sign-in address is one login's: a staff member's, in any case, is no parent's and no
/// other staff member's, and the other way round.
pub fn staff_emails_are_unique_across_staff_and_parents(s: &dyn ServerStore) {
    s.set_staff_email("s1", " Manager@Example.org ", 1).unwrap();
    assert_eq!(
        s.staff_email("s1").unwrap().as_deref(),
        Some("manager@example.org")
    );
    assert_eq!(
        s.staff_by_email("MANAGER@example.org").unwrap().as_deref(),
        Some("s1")
    );
    assert!(s.staff_by_email("other@example.org").unwrap().is_none());
    assert!(matches!(
        s.set_staff_email("s2", "manager@example.org", 2),
        Err(StoreError::AlreadyExists(_))
    ));
    assert!(matches!(
        s.set_parent_email("p1", "MANAGER@example.org", 2),
        Err(StoreError::AlreadyExists(_))
    ));
    assert!(s.parent_email("p1").unwrap().is_none());
    s.set_parent_email("p1", "parent@example.org", 3).unwrap();
    assert!(matches!(
        s.set_staff_email("s2", "Parent@example.org", 4),
        Err(StoreError::AlreadyExists(_))
    ));
    assert!(s.staff_email("s2").unwrap().is_none());
    // A staff member may change their own address, and the old one is free again.
    s.set_staff_email("s1", "new@example.org", 5).unwrap();
    s.set_staff_email("s1", "new@example.org", 6).unwrap();
    assert!(s.staff_by_email("manager@example.org").unwrap().is_none());
    s.set_staff_email("s2", "manager@example.org", 7).unwrap();
    assert_eq!(
        s.staff_by_email("manager@example.org").unwrap().as_deref(),
        Some("s2")
    );
}

/// A recovery code works once, for its own login only; a new set replaces the old one.
pub fn recovery_codes_are_used_once_and_replaced(s: &dyn ServerStore) {
    assert_eq!(s.recovery_codes_left("staff:s1").unwrap(), 0);
    assert!(!s.use_recovery_code("staff:s1", "h1", 1).unwrap());
    let first: Vec<String> = (1..=3).map(|i| format!("h{i}")).collect();
    s.set_recovery_codes("staff:s1", &first, 1).unwrap();
    assert_eq!(s.recovery_codes_left("staff:s1").unwrap(), 3);
    assert!(!s.use_recovery_code("staff:s2", "h1", 2).unwrap());
    assert!(s.use_recovery_code("staff:s1", "h1", 2).unwrap());
    assert!(!s.use_recovery_code("staff:s1", "h1", 3).unwrap());
    assert_eq!(s.recovery_codes_left("staff:s1").unwrap(), 2);
    s.set_recovery_codes("staff:s1", &["h9".to_owned()], 4)
        .unwrap();
    assert!(!s.use_recovery_code("staff:s1", "h2", 5).unwrap());
    assert_eq!(s.recovery_codes_left("staff:s1").unwrap(), 1);
    assert!(s.use_recovery_code("staff:s1", "h9", 5).unwrap());
    assert_eq!(s.recovery_codes_left("staff:s1").unwrap(), 0);
}

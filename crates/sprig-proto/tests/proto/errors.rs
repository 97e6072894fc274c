//! Every way a frame or a session can go wrong ends in a clear error, never a panic or a hang.

use sprig_core::{ChildId, Journal, SyncState};
use sprig_proto::{
    ClientSession, DocId, DocSet, DocSetError, DocSummary, FrameHeader, Limits, MemoryDocs,
    Message, ProtoError, ServerSession, decode, encode,
};
use sprig_testkit::Fixture;

use crate::{Device, SERVER_TIME, T0, server_docs, sync};

fn frame(m: &Message) -> Vec<u8> {
    encode(m).unwrap()
}

fn limits() -> Limits {
    Limits::default()
}

fn header(kind: u8, len: u32) -> Vec<u8> {
    let mut h = vec![b'S', b'P', 1, 0, kind, 0];
    h.extend_from_slice(&len.to_be_bytes());
    h
}

/// A valid, non-empty Automerge sync message for `child`'s journal.
fn real_sync_data(child: &ChildId) -> Vec<u8> {
    Journal::new(child.clone())
        .generate_sync_message(&mut SyncState::new())
        .unwrap()
}

fn hello_of(device: &mut Device) -> Vec<u8> {
    ClientSession::new(device.info(), limits())
        .start(&mut device.docs.peer("server"))
        .unwrap()
}

/// A server session that has welcomed `device` (which has synced before, so nothing is
/// active), and its first turn.
fn welcomed(
    server: &mut MemoryDocs,
    device: &mut Device,
    limits: Limits,
) -> (ServerSession, Vec<Vec<u8>>) {
    let mut s = ServerSession::new(limits);
    let hello = hello_of(device);
    s.receive(&mut server.peer(&device.name), &hello).unwrap();
    let first = s
        .welcome(&mut server.peer(&device.name), SERVER_TIME)
        .unwrap();
    (s, first)
}

fn synced_pair(children: usize) -> (Fixture, MemoryDocs, Device) {
    let fx = Fixture::new(children);
    let mut server = server_docs(&fx);
    let mut device = Device::new("tablet-a");
    sync(&mut server, &mut device);
    (fx, server, device)
}

// ---- frames ---------------------------------------------------------------------------------

#[test]
fn garbage_is_malformed_and_empty_input_truncated() {
    let e = decode(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", &limits()).unwrap_err();
    assert!(matches!(e, ProtoError::Malformed { .. }), "{e:?}");
    assert!(e.is_permanent());
    assert_eq!(e.code(), "malformed");
    let e = decode(&[], &limits()).unwrap_err();
    assert!(
        matches!(e, ProtoError::Truncated { needed: 10, got: 0 }),
        "{e:?}"
    );
    assert!(!e.is_permanent());
}

#[test]
fn a_truncated_frame_says_how_much_is_missing() {
    let f = frame(&Message::Sync {
        doc: DocId::Roster,
        data: vec![7; 100],
    });
    for cut in [1, 9, 10, f.len() / 2, f.len() - 1] {
        let e = decode(&f[..cut], &limits()).unwrap_err();
        assert!(
            matches!(e, ProtoError::Truncated { got, .. } if got == cut as u64),
            "{cut}: {e:?}"
        );
    }
    let mut long = f.clone();
    long.push(0);
    assert!(matches!(
        decode(&long, &limits()),
        Err(ProtoError::Malformed { .. })
    ));
}

#[test]
fn an_oversized_frame_is_refused_from_its_header_alone() {
    // Ten bytes claiming a 4 GiB body: refused as too large, not waited for as truncated.
    let h = header(3, u32::MAX);
    for e in [
        decode(&h, &limits()).unwrap_err(),
        FrameHeader::parse(&h, &limits()).unwrap_err(),
    ] {
        assert!(
            matches!(e, ProtoError::TooLarge { what: "sync frame", size, .. } if size == u64::from(u32::MAX)),
            "{e:?}"
        );
        assert!(e.is_permanent());
    }
    let mut small = limits();
    small.max_sync_message = 100;
    let f = frame(&Message::Sync {
        doc: DocId::Roster,
        data: vec![0; 200],
    });
    assert!(matches!(
        decode(&f, &small),
        Err(ProtoError::TooLarge { .. })
    ));
    let mut tiny = limits();
    tiny.max_frame = 64;
    let e = decode(&f, &tiny).unwrap_err();
    assert!(matches!(e, ProtoError::TooLarge { limit: 54, .. }), "{e:?}");
}

#[test]
fn lengths_inside_the_body_that_lie_are_refused_without_allocating_them() {
    // {"doc": "roster", "data": <byte string claiming 2^62 bytes>} followed by 4 bytes.
    let mut body = vec![0xa2, 0x63];
    body.extend(b"doc");
    body.push(0x66);
    body.extend(b"roster");
    body.push(0x64);
    body.extend(b"data");
    body.push(0x5b);
    body.extend((1u64 << 62).to_be_bytes());
    body.extend([1, 2, 3, 4]);
    let mut f = header(3, u32::try_from(body.len()).unwrap());
    f.extend(&body);
    assert!(matches!(
        decode(&f, &limits()),
        Err(ProtoError::Malformed { .. })
    ));

    // A hello whose document array claims 2^62 entries.
    let mut body = vec![0xa4, 0x69];
    body.extend(b"device_id");
    body.extend([0x61, b'x', 0x6b]);
    body.extend(b"app_version");
    body.extend([0x61, b'1', 0x64]);
    body.extend(b"docs");
    body.push(0x9b);
    body.extend((1u64 << 62).to_be_bytes());
    let mut f = header(1, u32::try_from(body.len()).unwrap());
    f.extend(&body);
    assert!(matches!(
        decode(&f, &limits()),
        Err(ProtoError::Malformed { .. })
    ));
}

#[test]
fn an_unknown_major_version_is_refused_and_a_newer_minor_accepted() {
    let mut f = frame(&Message::Done);
    f[2] = 2;
    f[3] = 0;
    let e = decode(&f, &limits()).unwrap_err();
    assert!(
        matches!(e, ProtoError::UnsupportedVersion { major: 2, minor: 0 }),
        "{e:?}"
    );
    assert!(e.to_string().contains("update"), "{e}");
    assert_eq!(e.code(), "unsupported_version");
    f[2] = 1;
    f[3] = 9;
    assert_eq!(decode(&f, &limits()).unwrap(), Message::Done);
}

#[test]
fn unknown_kinds_and_flags_are_refused_unknown_fields_ignored() {
    let mut f = frame(&Message::Done);
    f[4] = 99;
    assert!(matches!(
        decode(&f, &limits()),
        Err(ProtoError::UnknownMessage { kind: 99 })
    ));
    let mut f = frame(&Message::Done);
    f[5] = 0x80;
    assert!(matches!(
        decode(&f, &limits()),
        Err(ProtoError::Malformed { .. })
    ));

    // {"future": 1}: a later minor version's optional field.
    let body = [0xa1, 0x66, b'f', b'u', b't', b'u', b'r', b'e', 0x01];
    let mut f = header(5, 9);
    f.extend(body);
    assert_eq!(decode(&f, &limits()).unwrap(), Message::Done);
}

#[test]
fn missing_fields_and_bad_values_are_malformed() {
    // {"doc": "roster"}: a sync without data.
    let body = [
        0xa1, 0x63, b'd', b'o', b'c', 0x66, b'r', b'o', b's', b't', b'e', b'r',
    ];
    let mut f = header(3, 12);
    f.extend(body);
    assert!(matches!(
        decode(&f, &limits()),
        Err(ProtoError::Malformed { .. })
    ));

    // A document id that is not one: "roster" becomes "rooste".
    let mut bad_doc = frame(&Message::Sync {
        doc: DocId::Roster,
        data: vec![],
    });
    let at = bad_doc.windows(6).position(|w| w == b"roster").unwrap();
    bad_doc[at..at + 6].copy_from_slice(b"rooste");
    assert!(matches!(
        decode(&bad_doc, &limits()),
        Err(ProtoError::Malformed { .. })
    ));
}

// ---- out of order ---------------------------------------------------------------------------

#[test]
fn the_server_refuses_anything_before_the_hello() {
    let (fx, mut server, _) = synced_pair(1);
    for m in [
        Message::Sync {
            doc: DocId::Journal(fx.children[0].clone()),
            data: vec![],
        },
        Message::Done,
        Message::Wipe,
    ] {
        let mut s = ServerSession::new(limits());
        let e = s.receive(&mut server.peer("a"), &frame(&m)).unwrap_err();
        assert!(matches!(e, ProtoError::Unexpected { .. }), "{e:?}");
        assert!(e.is_permanent());
        // The session is over after an error.
        let mut device = Device::new("a");
        let hello = hello_of(&mut device);
        assert!(matches!(
            s.receive(&mut server.peer("a"), &hello),
            Err(ProtoError::Closed)
        ));
    }
    let mut s = ServerSession::new(limits());
    assert!(matches!(
        s.welcome(&mut server.peer("a"), SERVER_TIME),
        Err(ProtoError::Unexpected { got: "welcome", .. })
    ));
}

#[test]
fn the_server_refuses_a_second_hello_and_frames_before_its_welcome() {
    let (_, mut server, mut device) = synced_pair(1);
    let hello = hello_of(&mut device);

    let mut s = ServerSession::new(limits());
    s.receive(&mut server.peer("tablet-a"), &hello).unwrap();
    let e = s
        .receive(&mut server.peer("tablet-a"), &frame(&Message::Done))
        .unwrap_err();
    assert!(
        matches!(e, ProtoError::Unexpected { got: "done", .. }),
        "{e}"
    );

    let (mut s, _) = welcomed(&mut server, &mut device, limits());
    let e = s.receive(&mut server.peer("tablet-a"), &hello).unwrap_err();
    assert!(
        matches!(e, ProtoError::Unexpected { got: "hello", .. }),
        "{e}"
    );

    let (mut s, _) = welcomed(&mut server, &mut device, limits());
    assert!(matches!(
        s.welcome(&mut server.peer("tablet-a"), SERVER_TIME),
        Err(ProtoError::Unexpected { got: "welcome", .. })
    ));

    for m in [
        Message::Replace {
            doc: DocId::Roster,
            epoch: 0,
            snapshot: vec![],
        },
        Message::Wipe,
        Message::Revoked { reason: "x".into() },
    ] {
        let (mut s, _) = welcomed(&mut server, &mut device, limits());
        let e = s
            .receive(&mut server.peer("tablet-a"), &frame(&m))
            .unwrap_err();
        assert!(matches!(e, ProtoError::Unexpected { .. }), "{e}");
    }
}

#[test]
fn the_client_refuses_frames_out_of_order() {
    let (fx, mut server, mut device) = synced_pair(1);
    let (_, first) = welcomed(&mut server, &mut device, limits());
    let welcome = &first[0];
    let sync = frame(&Message::Sync {
        doc: DocId::Journal(fx.children[0].clone()),
        data: real_sync_data(&fx.children[0]),
    });

    // Before its own hello.
    let mut c = ClientSession::new(device.info(), limits());
    let e = c
        .receive(&mut device.docs.peer("server"), welcome)
        .unwrap_err();
    assert!(
        matches!(e, ProtoError::Unexpected { got: "welcome", .. }),
        "{e}"
    );

    // A sync before the welcome.
    let mut c = ClientSession::new(device.info(), limits());
    c.start(&mut device.docs.peer("server")).unwrap();
    let e = c
        .receive(&mut device.docs.peer("server"), &sync)
        .unwrap_err();
    assert!(
        matches!(e, ProtoError::Unexpected { got: "sync", .. }),
        "{e}"
    );

    // A second welcome, a hello, a second start.
    let mut c = ClientSession::new(device.info(), limits());
    c.start(&mut device.docs.peer("server")).unwrap();
    c.receive(&mut device.docs.peer("server"), welcome).unwrap();
    let e = c
        .receive(&mut device.docs.peer("server"), welcome)
        .unwrap_err();
    assert!(
        matches!(e, ProtoError::Unexpected { got: "welcome", .. }),
        "{e}"
    );
    assert!(matches!(
        c.receive(&mut device.docs.peer("server"), welcome),
        Err(ProtoError::Closed)
    ));
    let mut c = ClientSession::new(device.info(), limits());
    c.start(&mut device.docs.peer("server")).unwrap();
    let hello = hello_of(&mut device);
    assert!(matches!(
        c.receive(&mut device.docs.peer("server"), &hello),
        Err(ProtoError::Unexpected { got: "hello", .. })
    ));
    let mut c = ClientSession::new(device.info(), limits());
    c.start(&mut device.docs.peer("server")).unwrap();
    assert!(matches!(
        c.start(&mut device.docs.peer("server")),
        Err(ProtoError::Unexpected { got: "hello", .. })
    ));
}

#[test]
fn a_replace_after_the_servers_first_turn_is_refused() {
    let (fx, mut server, mut device) = synced_pair(1);
    // A local change makes the journal active, so the session is still going after turn one.
    fx.observe(
        device.docs.journals.get_mut(&fx.children[0]).unwrap(),
        "Local",
        T0,
    );
    let mut c = ClientSession::new(device.info(), limits());
    let mut s = ServerSession::new(limits());
    let hello = c.start(&mut device.docs.peer("server")).unwrap();
    s.receive(&mut server.peer("tablet-a"), &hello).unwrap();
    let mut out = Vec::new();
    for f in s
        .welcome(&mut server.peer("tablet-a"), SERVER_TIME)
        .unwrap()
    {
        out.extend(c.receive(&mut device.docs.peer("server"), &f).unwrap());
    }
    assert!(out.len() > 1 && !c.is_finished());
    let snapshot = server.journals.get_mut(&fx.children[0]).unwrap().save();
    let e = c
        .receive(
            &mut device.docs.peer("server"),
            &frame(&Message::Replace {
                doc: DocId::Journal(fx.children[0].clone()),
                epoch: 0,
                snapshot,
            }),
        )
        .unwrap_err();
    assert!(
        matches!(e, ProtoError::Unexpected { got: "replace", .. }),
        "{e}"
    );
}

// ---- documents ------------------------------------------------------------------------------

#[test]
fn a_sync_for_a_document_outside_the_session_is_refused() {
    let (_, mut server, mut device) = synced_pair(1);
    let stranger = ChildId::new_random();
    let sync = frame(&Message::Sync {
        doc: DocId::Journal(stranger.clone()),
        data: real_sync_data(&stranger),
    });
    let (mut s, first) = welcomed(&mut server, &mut device, limits());
    let e = s.receive(&mut server.peer("tablet-a"), &sync).unwrap_err();
    assert!(
        matches!(&e, ProtoError::UnknownDoc { doc } if doc.child() == Some(&stranger)),
        "{e}"
    );
    assert_eq!(e.code(), "unknown_doc");

    let mut c = ClientSession::new(device.info(), limits());
    c.start(&mut device.docs.peer("server")).unwrap();
    c.receive(&mut device.docs.peer("server"), &first[0])
        .unwrap();
    let e = c
        .receive(&mut device.docs.peer("server"), &sync)
        .unwrap_err();
    assert!(matches!(e, ProtoError::UnknownDoc { .. }), "{e}");

    let mut c = ClientSession::new(device.info(), limits());
    c.start(&mut device.docs.peer("server")).unwrap();
    c.receive(&mut device.docs.peer("server"), &first[0])
        .unwrap();
    let replace = frame(&Message::Replace {
        doc: DocId::Journal(stranger.clone()),
        epoch: 0,
        snapshot: Journal::new(stranger).save(),
    });
    let e = c
        .receive(&mut device.docs.peer("server"), &replace)
        .unwrap_err();
    assert!(matches!(e, ProtoError::UnknownDoc { .. }), "{e}");
}

/// A new device and the frames of the server's first turn to it: welcome, replaces, done.
fn new_device_first_turn() -> (Fixture, Device, Vec<Vec<u8>>) {
    let fx = Fixture::new(2);
    let mut server = server_docs(&fx);
    let mut device = Device::new("fresh");
    let (_, first) = welcomed(&mut server, &mut device, limits());
    assert_eq!(first.len(), 1 + 4 + 1);
    (fx, device, first)
}

#[test]
fn the_client_requires_every_listed_document_it_lacks() {
    let (_, mut device, first) = new_device_first_turn();
    let mut c = ClientSession::new(device.info(), limits());
    c.start(&mut device.docs.peer("server")).unwrap();
    c.receive(&mut device.docs.peer("server"), &first[0])
        .unwrap();
    let e = c
        .receive(&mut device.docs.peer("server"), first.last().unwrap())
        .unwrap_err();
    assert!(
        matches!(e, ProtoError::MissingDoc { doc: DocId::Roster }),
        "{e}"
    );
}

#[test]
fn a_sync_for_a_document_not_yet_sent_is_refused() {
    let (fx, mut device, first) = new_device_first_turn();
    let mut c = ClientSession::new(device.info(), limits());
    c.start(&mut device.docs.peer("server")).unwrap();
    c.receive(&mut device.docs.peer("server"), &first[0])
        .unwrap();
    let e = c
        .receive(
            &mut device.docs.peer("server"),
            &frame(&Message::Sync {
                doc: DocId::Journal(fx.children[0].clone()),
                data: real_sync_data(&fx.children[0]),
            }),
        )
        .unwrap_err();
    assert!(
        matches!(e, ProtoError::Unexpected { got: "sync", .. }),
        "{e}"
    );
}

#[test]
fn a_replace_must_match_the_welcome_and_its_document() {
    let (fx, mut device, first) = new_device_first_turn();
    let start = |device: &mut Device| {
        let mut c = ClientSession::new(device.info(), limits());
        c.start(&mut device.docs.peer("server")).unwrap();
        c.receive(&mut device.docs.peer("server"), &first[0])
            .unwrap();
        c
    };
    let doc = DocId::Journal(fx.children[0].clone());

    let mut c = start(&mut device);
    let wrong_epoch = frame(&Message::Replace {
        doc: doc.clone(),
        epoch: 3,
        snapshot: fx.journal(0).save(),
    });
    let e = c
        .receive(&mut device.docs.peer("server"), &wrong_epoch)
        .unwrap_err();
    assert!(matches!(e, ProtoError::Malformed { .. }), "{e}");

    let mut c = start(&mut device);
    let other_childs = frame(&Message::Replace {
        doc: doc.clone(),
        epoch: 0,
        snapshot: fx.journal(1).save(),
    });
    let e = c
        .receive(&mut device.docs.peer("server"), &other_childs)
        .unwrap_err();
    assert!(
        matches!(
            e,
            ProtoError::Docs {
                source: DocSetError::Rejected(_),
                ..
            }
        ),
        "{e}"
    );
    assert!(e.is_permanent());
    assert_eq!(e.code(), "doc_rejected");

    let mut c = start(&mut device);
    let garbage = frame(&Message::Replace {
        doc: doc.clone(),
        epoch: 0,
        snapshot: b"not a document".to_vec(),
    });
    assert!(matches!(
        c.receive(&mut device.docs.peer("server"), &garbage),
        Err(ProtoError::Docs { .. })
    ));

    let mut c = start(&mut device);
    let good = frame(&Message::Replace {
        doc,
        epoch: 0,
        snapshot: fx.journal(0).save(),
    });
    c.receive(&mut device.docs.peer("server"), &good).unwrap();
    let e = c
        .receive(&mut device.docs.peer("server"), &good)
        .unwrap_err();
    assert!(
        matches!(e, ProtoError::Unexpected { got: "replace", .. }),
        "{e}"
    );
}

#[test]
fn corrupt_sync_data_is_rejected_as_permanent() {
    let (fx, mut server, mut device) = synced_pair(1);
    let (mut s, _) = welcomed(&mut server, &mut device, limits());
    let e = s
        .receive(
            &mut server.peer("tablet-a"),
            &frame(&Message::Sync {
                doc: DocId::Journal(fx.children[0].clone()),
                data: b"\x42not automerge".to_vec(),
            }),
        )
        .unwrap_err();
    assert!(
        matches!(
            e,
            ProtoError::Docs {
                source: DocSetError::Rejected(_),
                ..
            }
        ),
        "{e}"
    );
    assert!(e.is_permanent());
}

#[test]
fn one_sync_per_document_per_turn() {
    let (fx, mut server, mut device) = synced_pair(1);
    let (mut s, _) = welcomed(&mut server, &mut device, limits());
    let sync = frame(&Message::Sync {
        doc: DocId::Journal(fx.children[0].clone()),
        data: real_sync_data(&fx.children[0]),
    });
    s.receive(&mut server.peer("tablet-a"), &sync).unwrap();
    let e = s.receive(&mut server.peer("tablet-a"), &sync).unwrap_err();
    assert!(
        matches!(e, ProtoError::Unexpected { got: "sync", .. }),
        "{e}"
    );
}

#[test]
fn a_peer_that_keeps_syncing_hits_the_round_limit() {
    let (fx, mut server, mut device) = synced_pair(1);
    let mut l = limits();
    l.max_rounds_per_doc = 3;
    let (mut s, _) = welcomed(&mut server, &mut device, l);
    let sync = frame(&Message::Sync {
        doc: DocId::Journal(fx.children[0].clone()),
        data: real_sync_data(&fx.children[0]),
    });
    let done = frame(&Message::Done);
    let mut err = None;
    for _ in 0..10 {
        if let Err(e) = s.receive(&mut server.peer("tablet-a"), &sync) {
            err = Some(e);
            break;
        }
        s.receive(&mut server.peer("tablet-a"), &done).unwrap();
    }
    let e = err.expect("the round limit never triggered");
    assert!(
        matches!(e, ProtoError::TooManyRounds { limit: 3, .. }),
        "{e}"
    );
    assert!(!e.is_permanent());
}

#[test]
fn too_many_documents_are_refused() {
    let (_, mut server, mut device) = synced_pair(3);
    let mut l = limits();
    l.max_docs = 4;
    let mut s = ServerSession::new(l.clone());
    let hello = hello_of(&mut device);
    let e = s.receive(&mut server.peer("tablet-a"), &hello).unwrap_err();
    assert!(
        matches!(
            e,
            ProtoError::TooManyDocs {
                what: "hello",
                count: 5,
                limit: 4
            }
        ),
        "{e}"
    );
    let mut c = ClientSession::new(device.info(), l.clone());
    assert!(matches!(
        c.start(&mut device.docs.peer("server")),
        Err(ProtoError::TooManyDocs { .. })
    ));
    let mut s = ServerSession::new(l);
    let mut fresh = Device::new("fresh");
    let hello = hello_of(&mut fresh);
    s.receive(&mut server.peer("fresh"), &hello).unwrap();
    assert!(matches!(
        s.welcome(&mut server.peer("fresh"), SERVER_TIME),
        Err(ProtoError::TooManyDocs {
            what: "welcome",
            ..
        })
    ));
}

// ---- the peer's errors and control messages -------------------------------------------------

#[test]
fn a_peer_error_ends_the_session_with_its_code() {
    let (_, mut server, mut device) = synced_pair(1);
    for (code, permanent) in [
        ("store", false),
        ("malformed", true),
        ("something_new", true),
    ] {
        let (mut s, _) = welcomed(&mut server, &mut device, limits());
        let e = s
            .receive(
                &mut server.peer("tablet-a"),
                &frame(&Message::Error {
                    code: code.into(),
                    message: "boom".into(),
                }),
            )
            .unwrap_err();
        assert!(
            matches!(&e, ProtoError::Peer { code: c, .. } if c == code),
            "{e}"
        );
        assert_eq!(e.is_permanent(), permanent, "{code}");
        assert!(e.error_frame().is_none(), "never echo the peer's own error");
    }
}

#[test]
fn an_error_frame_carries_code_and_message() {
    let e = ProtoError::UnknownDoc {
        doc: DocId::Setting,
    };
    let m = decode(&e.error_frame().unwrap(), &limits()).unwrap();
    assert_eq!(
        m,
        Message::Error {
            code: "unknown_doc".into(),
            message: "setting is not part of this sync session".into(),
        }
    );
}

/// Runs a session between `server` and `device` up to convergence, without the server's
/// closing message; `retire` marks the welcome.
fn converged_with(
    server: &mut MemoryDocs,
    device: &mut Device,
    retire: bool,
) -> (ClientSession, ServerSession) {
    let mut c = ClientSession::new(device.info(), limits());
    let mut srv = ServerSession::new(limits());
    srv.set_retire(retire);
    let mut cdocs = device.docs.peer("server");
    let mut sdocs = server.peer(&device.name);
    let hello = c.start(&mut cdocs).unwrap();
    assert!(srv.receive(&mut sdocs, &hello).unwrap().is_empty());
    let mut to_client = srv.welcome(&mut sdocs, SERVER_TIME).unwrap();
    while !to_client.is_empty() {
        let to_server: Vec<Vec<u8>> = to_client
            .iter()
            .flat_map(|f| c.receive(&mut cdocs, f).unwrap())
            .collect();
        to_client = to_server
            .iter()
            .flat_map(|f| srv.receive(&mut sdocs, f).unwrap())
            .collect();
    }
    (c, srv)
}

#[test]
fn revocation_wipe_and_lease_reach_the_client() {
    let (_, mut server, mut device) = synced_pair(1);
    let mut converged = |device: &mut Device| converged_with(&mut server, device, false);
    let start = |device: &mut Device| {
        let mut c = ClientSession::new(device.info(), limits());
        c.start(&mut device.docs.peer("server")).unwrap();
        c
    };
    let mut c = start(&mut device);
    let revoked = frame(&Message::Revoked {
        reason: "reported lost".into(),
    });
    assert!(
        c.receive(&mut device.docs.peer("server"), &revoked)
            .unwrap()
            .is_empty()
    );
    assert!(c.is_finished());
    assert_eq!(c.report().revoked.as_deref(), Some("reported lost"));

    let mut c = start(&mut device);
    c.receive(&mut device.docs.peer("server"), &frame(&Message::Wipe))
        .unwrap();
    assert!(c.is_finished() && c.report().wipe);

    let lease = crate::lease_for;
    // A lease before the documents are in sync is out of order: it closes a completed sync.
    let mut c = start(&mut device);
    assert!(matches!(
        c.receive(
            &mut device.docs.peer("server"),
            &frame(&Message::Lease(lease("tablet-a"))),
        ),
        Err(ProtoError::Unexpected { got: "lease", .. })
    ));
    // After a converged exchange the lease ends the session; another device's is refused.
    let (mut c, srv) = converged(&mut device);
    assert!(srv.is_finished() && c.is_converged() && !c.is_finished());
    c.receive(
        &mut device.docs.peer("server"),
        &frame(&Message::Lease(lease("tablet-a"))),
    )
    .unwrap();
    assert!(c.is_finished());
    assert_eq!(c.report().lease, Some(lease("tablet-a")));
    let (mut c, _) = converged(&mut device);
    let e = c
        .receive(
            &mut device.docs.peer("server"),
            &frame(&Message::Lease(lease("tablet-b"))),
        )
        .unwrap_err();
    assert!(matches!(e, ProtoError::Malformed { .. }), "{e}");
    // A retire: the welcome says so, and a wipe after the sync ends the session instead.
    let (_, mut server, mut device) = synced_pair(1);
    let (mut c, _) = converged_with(&mut server, &mut device, true);
    assert!(c.report().retire);
    c.receive(&mut device.docs.peer("server"), &frame(&Message::Wipe))
        .unwrap();
    assert!(c.is_finished() && c.report().wipe && c.report().lease.is_none());
    // A revocation may also come after the sync, instead of the lease.
    let (mut c, _) = converged_with(&mut server, &mut device, false);
    c.receive(&mut device.docs.peer("server"), &revoked)
        .unwrap();
    assert!(c.is_finished() && c.report().revoked.is_some() && c.report().lease.is_none());
    // WipeDone travels from the device only.
    let (mut c, _) = converged_with(&mut server, &mut device, false);
    assert!(matches!(
        c.receive(&mut device.docs.peer("server"), &frame(&Message::WipeDone)),
        Err(ProtoError::Unexpected {
            got: "wipe done",
            ..
        })
    ));

    // Before the hello, control messages are out of order too.
    let mut c = ClientSession::new(device.info(), limits());
    assert!(matches!(
        c.receive(&mut device.docs.peer("server"), &revoked),
        Err(ProtoError::Unexpected { got: "revoked", .. })
    ));
}

/// A store whose commits fail, as a full disk would.
struct FailingCommit<'a>(sprig_proto::MemoryPeer<'a>);

impl DocSet for FailingCommit<'_> {
    fn list(&mut self) -> Result<Vec<DocSummary>, DocSetError> {
        self.0.list()
    }
    fn sync_state(&mut self, doc: &DocId) -> Result<Option<SyncState>, DocSetError> {
        self.0.sync_state(doc)
    }
    fn generate(
        &mut self,
        doc: &DocId,
        state: &mut SyncState,
    ) -> Result<Option<Vec<u8>>, DocSetError> {
        self.0.generate(doc, state)
    }
    fn receive(
        &mut self,
        doc: &DocId,
        state: &mut SyncState,
        message: &[u8],
    ) -> Result<bool, DocSetError> {
        self.0.receive(doc, state, message)
    }
    fn snapshot(&mut self, doc: &DocId) -> Result<Vec<u8>, DocSetError> {
        self.0.snapshot(doc)
    }
    fn replace(&mut self, doc: &DocId, epoch: u64, snapshot: &[u8]) -> Result<(), DocSetError> {
        self.0.replace(doc, epoch, snapshot)
    }
    fn commit(&mut self, _: &[(&DocId, &SyncState)]) -> Result<(), DocSetError> {
        Err(DocSetError::Store("disk full".into()))
    }
}

#[test]
fn a_failed_commit_stops_the_session_before_acknowledging_and_is_retryable() {
    let (fx, mut server, mut device) = synced_pair(1);
    let (mut s, _) = welcomed(&mut server, &mut device, limits());
    let sync = frame(&Message::Sync {
        doc: DocId::Journal(fx.children[0].clone()),
        data: real_sync_data(&fx.children[0]),
    });
    let mut failing = FailingCommit(server.peer("tablet-a"));
    s.receive(&mut failing, &sync).unwrap();
    let e = s.receive(&mut failing, &frame(&Message::Done)).unwrap_err();
    assert!(
        matches!(
            e,
            ProtoError::Docs {
                source: DocSetError::Store(_),
                ..
            }
        ),
        "{e}"
    );
    assert!(!e.is_permanent());
    assert_eq!(e.code(), "store");
}

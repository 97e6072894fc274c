//! Random and mutated input never panics the decoder or a session, and never hangs one.

use proptest::prelude::*;
use sprig_core::{ChildId, Heads, Sha256};
use sprig_proto::{
    ClientSession, DocId, DocSummary, Hello, Lease, Limits, MediaAck, Message, MessageKind,
    PinFailure, ProtoError, ServerSession, Unsynced, Welcome, decode, encode,
};
use sprig_testkit::Fixture;

use crate::{Device, SERVER_TIME, T0, server_docs, sync};

const KINDS: [u8; 11] = [1, 2, 3, 4, 5, 6, 16, 17, 18, 19, 32];

fn framed(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut f = vec![b'S', b'P', 1, 0, kind, 0];
    f.extend_from_slice(&u32::try_from(body.len()).unwrap().to_be_bytes());
    f.extend_from_slice(body);
    f
}

fn child_id() -> impl Strategy<Value = ChildId> {
    any::<[u8; 16]>().prop_map(|b| {
        let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
        ChildId::parse(&format!(
            "{}-{}-{}-{}-{}",
            &h[..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..]
        ))
        .unwrap()
    })
}

fn doc_id() -> impl Strategy<Value = DocId> {
    prop_oneof![
        Just(DocId::Roster),
        Just(DocId::Setting),
        child_id().prop_map(DocId::Journal),
    ]
}

fn summaries() -> impl Strategy<Value = Vec<DocSummary>> {
    prop::collection::vec(
        (
            doc_id(),
            any::<u64>(),
            prop::collection::vec(any::<[u8; 32]>(), 0..3),
        ),
        0..5,
    )
    .prop_map(|v| {
        let mut seen = std::collections::BTreeSet::new();
        v.into_iter()
            .filter(|(d, _, _)| seen.insert(d.clone()))
            .map(|(doc, epoch, heads)| DocSummary {
                doc,
                epoch,
                heads: Heads::from_bytes(&heads.concat()).unwrap(),
            })
            .collect()
    })
}

fn text() -> impl Strategy<Value = String> {
    "\\PC{0,40}"
}

fn message() -> impl Strategy<Value = Message> {
    let bytes = || prop::collection::vec(any::<u8>(), 0..200);
    prop_oneof![
        (
            "[a-z0-9-]{1,40}",
            text(),
            summaries(),
            any::<u64>(),
            any::<u64>(),
            prop::collection::vec((text(), any::<i64>()), 0..4),
            any::<bool>()
        )
            .prop_map(
                |(device_id, app_version, docs, m, d, pins, locked)| Message::Hello(Hello {
                    device_id,
                    app_version,
                    docs,
                    unsynced: Unsynced {
                        media_pending: m,
                        docs_dirty: d,
                    },
                    pin_failures: pins
                        .into_iter()
                        .map(|(staff_id, at_ms)| PinFailure { staff_id, at_ms })
                        .collect(),
                    locked,
                })
            ),
        (any::<i64>(), summaries(), any::<bool>()).prop_map(|(t, docs, retire)| {
            Message::Welcome(Welcome {
                server_time_ms: t,
                docs,
                retire,
            })
        }),
        (doc_id(), bytes()).prop_map(|(doc, data)| Message::Sync { doc, data }),
        (doc_id(), any::<u64>(), bytes()).prop_map(|(doc, epoch, snapshot)| Message::Replace {
            doc,
            epoch,
            snapshot
        }),
        Just(Message::Done),
        Just(Message::Wipe),
        Just(Message::WipeDone),
        (text(), text()).prop_map(|(code, message)| Message::Error { code, message }),
        text().prop_map(|reason| Message::Revoked { reason }),
        (
            text(),
            any::<i64>(),
            any::<u64>(),
            any::<u64>(),
            any::<u32>(),
            bytes()
        )
            .prop_map(
                |(
                    device_id,
                    issued_at_ms,
                    lock_after_secs,
                    wipe_after_secs,
                    max_pin_failures,
                    signature,
                )| {
                    Message::Lease(Lease {
                        device_id,
                        issued_at_ms,
                        lock_after_secs,
                        wipe_after_secs,
                        max_pin_failures,
                        signature,
                    })
                }
            ),
        (any::<[u8; 32]>(), any::<u64>()).prop_map(|(s, size)| Message::MediaAck(MediaAck {
            sha256: Sha256::from_bytes(s),
            size
        })),
    ]
}

/// Frames that get past the header: random bodies, random CBOR-ish bodies, real messages.
fn frame() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64),
        (
            prop::sample::select(&KINDS[..]),
            prop::collection::vec(any::<u8>(), 0..64)
        )
            .prop_map(|(k, body)| framed(k, &body)),
        message().prop_map(|m| encode(&m).unwrap()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_bytes_never_panic_the_decoder(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode(&bytes, &Limits::default());
    }

    #[test]
    fn random_bodies_never_panic_the_decoder(
        kind in prop::sample::select(&KINDS[..]),
        body in prop::collection::vec(any::<u8>(), 0..512),
    ) {
        let _ = decode(&framed(kind, &body), &Limits::default());
    }

    #[test]
    fn every_message_round_trips(m in message()) {
        let f = encode(&m).unwrap();
        prop_assert_eq!(f[4], m.kind().byte());
        prop_assert_eq!(MessageKind::from_byte(f[4]), Some(m.kind()));
        prop_assert_eq!(decode(&f, &Limits::default()).unwrap(), m);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn random_frames_never_panic_a_session(frames in prop::collection::vec(frame(), 1..12)) {
        let fx = Fixture::new(1);
        let mut server = server_docs(&fx);
        let mut device = Device::new("tablet-a");
        sync(&mut server, &mut device);

        // The server, after a real hello and welcome.
        let mut c = ClientSession::new(device.info(), Limits::default());
        let hello = c.start(&mut device.docs.peer("server")).unwrap();
        let mut s = ServerSession::new(Limits::default());
        s.receive(&mut server.peer("tablet-a"), &hello).unwrap();
        let first = s.welcome(&mut server.peer("tablet-a"), SERVER_TIME).unwrap();
        feed(|f| s.receive(&mut server.peer("tablet-a"), f), &frames)?;

        // The client, after the server's real first turn.
        for f in &first {
            c.receive(&mut device.docs.peer("server"), f).unwrap();
        }
        feed(|f| c.receive(&mut device.docs.peer("server"), f), &frames)?;

        // A server that has seen nothing yet.
        let mut s = ServerSession::new(Limits::default());
        feed(|f| s.receive(&mut server.peer("tablet-b"), f), &frames)?;
    }

    #[test]
    fn a_mutated_conversation_never_panics_or_hangs(
        seed_edits in 0usize..4,
        target in 0usize..40,
        pos in any::<prop::sample::Index>(),
        xor in 1u8..=255,
    ) {
        let fx = Fixture::new(2);
        let mut server = server_docs(&fx);
        let mut device = Device::new("tablet-a");
        sync(&mut server, &mut device);
        for i in 0..seed_edits {
            let j = device.docs.journals.get_mut(&fx.children[i % 2]).unwrap();
            fx.observe(j, &format!("edit {i}"), T0);
        }
        fx.observe(server.journals.get_mut(&fx.children[0]).unwrap(), "server edit", T0);

        let mut n = 0usize;
        let mut mutate = |mut f: Vec<u8>| {
            if n == target {
                let i = pos.index(f.len());
                f[i] ^= xor;
            }
            n += 1;
            f
        };
        let mut c = ClientSession::new(device.info(), Limits::default());
        let mut s = ServerSession::new(Limits::default());
        let mut cd = device.docs.peer("server");
        let mut sd = server.peer("tablet-a");
        let hello = mutate(c.start(&mut cd).unwrap());
        if s.receive(&mut sd, &hello).is_err() || s.hello().is_none() {
            return Ok(());
        }
        let Ok(mut to_client) = s.welcome(&mut sd, SERVER_TIME) else { return Ok(()) };
        let mut rounds = 0;
        'talk: while !to_client.is_empty() {
            rounds += 1;
            prop_assert!(rounds < 100, "the conversation did not end");
            let mut to_server = Vec::new();
            for f in to_client.drain(..) {
                match c.receive(&mut cd, &mutate(f)) {
                    Ok(out) => to_server.extend(out),
                    Err(_) => break 'talk,
                }
            }
            for f in to_server {
                match s.receive(&mut sd, &mutate(f)) {
                    Ok(out) => to_client.extend(out),
                    Err(_) => break 'talk,
                }
            }
        }
    }
}

/// Feeds frames until the first error; after it, every frame must be refused as closed.
fn feed(
    mut receive: impl FnMut(&[u8]) -> Result<Vec<Vec<u8>>, ProtoError>,
    frames: &[Vec<u8>],
) -> Result<(), TestCaseError> {
    let mut failed = false;
    for f in frames {
        match receive(f) {
            Err(ProtoError::Closed) => {}
            Err(_) => {
                prop_assert!(!failed, "a failed session must only answer Closed");
                failed = true;
            }
            Ok(_) => prop_assert!(!failed, "a failed session accepted a frame"),
        }
    }
    Ok(())
}

//! The exact bytes of every message kind. A change here is a wire-format change: it must be
//! deliberate, and either compatible (a new optional field, a minor version) or a new major
//! version.

use sprig_core::{ChildId, Heads, Sha256};
use sprig_proto::{
    DocId, DocSummary, Hello, Lease, Limits, MediaAck, Message, PinFailure, Unsynced, Welcome,
    decode, encode,
};

fn child() -> ChildId {
    ChildId::parse("00000000-0000-4000-8000-000000000001").unwrap()
}

fn heads() -> Heads {
    Heads::from_bytes(&[0xab; 32]).unwrap()
}

/// (name, message, expected frame as hex).
fn cases() -> Vec<(&'static str, Message, &'static str)> {
    vec![
        (
            "hello",
            Message::Hello(Hello {
                device_id: "dev1".into(),
                app_version: "0.1.0".into(),
                docs: vec![DocSummary {
                    doc: DocId::Journal(child()),
                    epoch: 2,
                    heads: heads(),
                }],
                unsynced: Unsynced {
                    media_pending: 3,
                    docs_dirty: 1,
                },
                pin_failures: vec![PinFailure {
                    staff_id: "s1".into(),
                    at_ms: 1_700_000_000_000,
                }],
                locked: true,
            }),
            "535001020100000000e1a6696465766963655f696464646576316b6170705f76657273696f6e65302e312e3064646f637381a363646f63782c6a6f75726e616c3a30303030303030302d303030302d343030302d383030302d3030303030303030303030316565706f6368026568656164735820abababababababababababababababababababababababababababababababab68756e73796e636564a26d6d656469615f70656e64696e67036a646f63735f6469727479016c70696e5f6661696c7572657381a26873746166665f69646273316561745f6d731b0000018bcfe56800666c6f636b6564f5",
        ),
        (
            "welcome",
            Message::Welcome(Welcome {
                server_time_ms: 1_700_000_000_000,
                docs: vec![DocSummary {
                    doc: DocId::Roster,
                    epoch: 0,
                    heads: Heads::default(),
                }],
                retire: true,
            }),
            "53500102020000000041a36e7365727665725f74696d655f6d731b0000018bcfe5680064646f637381a363646f6366726f737465726565706f6368006568656164734066726574697265f5",
        ),
        (
            "sync",
            Message::Sync {
                doc: DocId::Setting,
                data: vec![0x42, 0x01, 0x02],
            },
            "53500102030000000016a263646f636773657474696e67646461746143420102",
        ),
        (
            "replace",
            Message::Replace {
                doc: DocId::Journal(child()),
                epoch: 1,
                snapshot: vec![0x85, 0x6f],
            },
            "53500102040000000046a363646f63782c6a6f75726e616c3a30303030303030302d303030302d343030302d383030302d3030303030303030303030316565706f63680168736e617073686f7442856f",
        ),
        ("done", Message::Done, "53500102050000000001a0"),
        (
            "error",
            Message::Error {
                code: "unknown_doc".into(),
                message: "x".into(),
            },
            "5350010206000000001ca264636f64656b756e6b6e6f776e5f646f63676d6573736167656178",
        ),
        (
            "revoked",
            Message::Revoked {
                reason: "lost".into(),
            },
            "5350010210000000000da166726561736f6e646c6f7374",
        ),
        ("wipe", Message::Wipe, "53500102110000000001a0"),
        ("wipe_done", Message::WipeDone, "53500102130000000001a0"),
        (
            "lease",
            Message::Lease(Lease {
                device_id: "dev1".into(),
                issued_at_ms: 1_700_000_000_000,
                lock_after_secs: 43_200,
                wipe_after_secs: 7_776_000,
                max_pin_failures: 10,
                signature: vec![0xee; 4],
            }),
            "5350010212000000006fa6696465766963655f696464646576316c6973737565645f61745f6d731b0000018bcfe568006f6c6f636b5f61667465725f7365637319a8c06f776970655f61667465725f736563731a0076a700706d61785f70696e5f6661696c757265730a697369676e617475726544eeeeeeee",
        ),
        (
            "media_ack",
            Message::MediaAck(MediaAck {
                sha256: Sha256::from_bytes([0x11; 32]),
                size: 1024,
            }),
            "53500102200000000032a266736861323536582011111111111111111111111111111111111111111111111111111111111111116473697a65190400",
        ),
        (
            "changed",
            Message::Changed {
                docs: vec![DocId::Roster, DocId::Journal(child())],
            },
            "5350010221000000003ca164646f63738266726f73746572782c6a6f75726e616c3a30303030303030302d303030302d343030302d383030302d303030303030303030303031",
        ),
    ]
}

#[test]
fn every_message_kind_has_a_fixed_encoding() {
    let mut wrong = Vec::new();
    for (name, msg, expected) in cases() {
        let got = hex::encode(encode(&msg).unwrap());
        if got != expected {
            wrong.push(format!("{name}: {got}"));
        }
        assert_eq!(
            decode(&hex::decode(&got).unwrap(), &Limits::default()).unwrap(),
            msg
        );
    }
    assert!(
        wrong.is_empty(),
        "wire format changed:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_lease_signature_covers_a_fixed_byte_string() {
    let lease = Lease {
        device_id: "dev1".into(),
        issued_at_ms: 1_700_000_000_000,
        lock_after_secs: 43_200,
        wipe_after_secs: 7_776_000,
        max_pin_failures: 10,
        signature: vec![0xee; 4],
    };
    assert_eq!(
        hex::encode(lease.signed_bytes()),
        // "sprig-lease-v2\0", then CBOR ["dev1", 1700000000000, 43200, 7776000, 10]
        "73707269672d6c656173652d7632008564646576311b0000018bcfe5680019a8c01a0076a7000a"
    );
    // Every field is covered: changing any one changes the signed bytes.
    for other in [
        Lease {
            device_id: "dev2".into(),
            ..lease.clone()
        },
        Lease {
            issued_at_ms: 1,
            ..lease.clone()
        },
        Lease {
            lock_after_secs: 1,
            ..lease.clone()
        },
        Lease {
            wipe_after_secs: 1,
            ..lease.clone()
        },
        Lease {
            max_pin_failures: 3,
            ..lease.clone()
        },
    ] {
        assert_ne!(other.signed_bytes(), lease.signed_bytes());
    }
    let unsigned = Lease {
        signature: vec![],
        ..lease.clone()
    };
    assert_eq!(unsigned.signed_bytes(), lease.signed_bytes());
}

#[test]
fn a_minor_0_hello_and_welcome_still_decode() {
    // Frames as minor version 0 wrote them, before pin_failures, locked and retire existed.
    let hello = hex::decode("535001000100000000afa4696465766963655f696464646576316b6170705f76657273696f6e65302e312e3064646f637381a363646f63782c6a6f75726e616c3a30303030303030302d303030302d343030302d383030302d3030303030303030303030316565706f6368026568656164735820abababababababababababababababababababababababababababababababab68756e73796e636564a26d6d656469615f70656e64696e67036a646f63735f646972747901").unwrap();
    let Message::Hello(h) = decode(&hello, &Limits::default()).unwrap() else {
        panic!("not a hello");
    };
    assert!(h.pin_failures.is_empty() && !h.locked);
    assert_eq!(h.unsynced.media_pending, 3);
    let welcome = hex::decode("53500100020000000039a26e7365727665725f74696d655f6d731b0000018bcfe5680064646f637381a363646f6366726f737465726565706f63680065686561647340").unwrap();
    let Message::Welcome(w) = decode(&welcome, &Limits::default()).unwrap() else {
        panic!("not a welcome");
    };
    assert!(!w.retire);
}

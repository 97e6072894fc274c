//! Generated edge cases replayed through the `wire_decode` fuzz harness (`fuzz/harness/wire.rs`):
//! the fuzz target's entry points and invariants, on stable, so the harness cannot rot.
//!
//! These inputs are also the fuzzer's seed corpus: with `SPRIG_FUZZ_SEEDS=DIR` set, the test
//! writes each one to `DIR/wire_decode/` (`make fuzz` does this; see docs/FUZZING.md).

#[path = "../../../../fuzz/harness/wire.rs"]
mod harness;

use ciborium::Value;
use sprig_core::{Heads, Sha256, Timestamp};
use sprig_proto::{
    ClientInfo, ClientSession, DocId, DocSummary, Hello, Lease, Limits, MediaAck, MemoryDocs,
    Message, PinFailure, ServerSession, Unsynced, Welcome, encode,
};

use harness::{CLIENT_EMPTY, CLIENT_HOLDING, DECODE, DEVICE_ID, RETIRE, SERVER, SMALL_LIMITS};

const T: Timestamp = Timestamp(1_700_000_000_000);

fn input(mode: u8, frames: &[Vec<u8>]) -> Vec<u8> {
    let mut out = vec![mode];
    for f in frames {
        out.extend_from_slice(f);
    }
    out
}

fn framed(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut f = vec![b'S', b'P', 1, 0, kind, 0];
    f.extend_from_slice(&u32::try_from(body.len()).unwrap().to_be_bytes());
    f.extend_from_slice(body);
    f
}

fn cbor(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(v, &mut out).unwrap();
    out
}

fn map(entries: Vec<(&str, Value)>) -> Value {
    Value::Map(
        entries
            .into_iter()
            .map(|(k, v)| (Value::Text(k.into()), v))
            .collect(),
    )
}

fn lease() -> Lease {
    Lease {
        device_id: DEVICE_ID.into(),
        issued_at_ms: harness::SERVER_TIME_MS,
        lock_after_secs: 12 * 3600,
        wipe_after_secs: 90 * 86_400,
        max_pin_failures: 10,
        signature: vec![9; 64],
    }
}

/// One whole session between replicas, as the harness's roles see it: the frames the device
/// sent and the frames the server sent, ending with the server's lease.
fn conversation(server: &mut MemoryDocs, device: &mut MemoryDocs) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let info = ClientInfo {
        device_id: DEVICE_ID.into(),
        app_version: "0.1.0".into(),
        unsynced: Unsynced::default(),
        pin_failures: vec![PinFailure {
            staff_id: "staff-1".into(),
            at_ms: harness::SERVER_TIME_MS - 1000,
        }],
        locked: false,
    };
    let mut client = ClientSession::new(info, Limits::default());
    let mut srv = ServerSession::new(Limits::default());
    let (mut cd, mut sd) = (device.peer("server"), server.peer(DEVICE_ID));
    let hello = client.start(&mut cd).unwrap();
    assert!(srv.receive(&mut sd, &hello).unwrap().is_empty());
    let mut to_client = srv.welcome(&mut sd, harness::SERVER_TIME_MS).unwrap();
    let (mut from_device, mut from_server) = (vec![hello], Vec::new());
    while !to_client.is_empty() {
        let mut to_server = Vec::new();
        for f in &to_client {
            to_server.extend(client.receive(&mut cd, f).unwrap());
        }
        from_server.append(&mut to_client);
        for f in &to_server {
            to_client.extend(srv.receive(&mut sd, f).unwrap());
        }
        from_device.append(&mut to_server);
    }
    assert!(client.is_converged() && srv.is_finished());
    let lease = encode(&Message::Lease(lease())).unwrap();
    assert!(client.receive(&mut cd, &lease).unwrap().is_empty());
    assert!(client.is_finished());
    from_server.push(lease);
    (from_device, from_server)
}

fn summary(doc: DocId, heads: usize) -> DocSummary {
    DocSummary {
        doc,
        epoch: 0,
        heads: Heads::from_bytes(&vec![7; 32 * heads]).unwrap(),
    }
}

/// One message of every kind.
fn every_kind() -> Vec<(&'static str, Message)> {
    let journal = DocId::parse(&format!("journal:{}", harness::CHILD)).unwrap();
    vec![
        (
            "hello",
            Message::Hello(Hello {
                device_id: DEVICE_ID.into(),
                app_version: "0.1.0".into(),
                docs: vec![summary(DocId::Roster, 1), summary(journal.clone(), 2)],
                unsynced: Unsynced {
                    media_pending: 3,
                    docs_dirty: 1,
                },
                pin_failures: vec![PinFailure {
                    staff_id: "staff-2".into(),
                    at_ms: 1,
                }],
                locked: true,
            }),
        ),
        (
            "welcome",
            Message::Welcome(Welcome {
                server_time_ms: harness::SERVER_TIME_MS,
                docs: vec![summary(DocId::Setting, 0), summary(journal.clone(), 1)],
                retire: true,
            }),
        ),
        (
            "sync",
            Message::Sync {
                doc: journal.clone(),
                data: vec![0x42; 40],
            },
        ),
        (
            "replace",
            Message::Replace {
                doc: journal,
                epoch: 1,
                snapshot: vec![0x85, 0x6f, 0x4a, 0x83],
            },
        ),
        ("done", Message::Done),
        (
            "error",
            Message::Error {
                code: "malformed".into(),
                message: "the other side sent nonsense".into(),
            },
        ),
        (
            "revoked",
            Message::Revoked {
                reason: "reported lost".into(),
            },
        ),
        ("wipe", Message::Wipe),
        ("wipe-done", Message::WipeDone),
        ("lease", Message::Lease(lease())),
        (
            "media-ack",
            Message::MediaAck(MediaAck {
                sha256: Sha256::from_bytes([0xAB; 32]),
                size: 123_456,
            }),
        ),
    ]
}

/// Frames the decoder must refuse, each for its own reason.
fn refused_frames() -> Vec<(&'static str, Vec<u8>)> {
    let done = encode(&Message::Done).unwrap();
    let mut bad_magic = done.clone();
    bad_magic[0] = b'X';
    let mut major_2 = done.clone();
    major_2[2] = 2;
    let mut flags = done.clone();
    flags[5] = 1;
    let hello_body = |device_id: Value, docs: Vec<Value>| {
        cbor(&map(vec![
            ("device_id", device_id),
            ("app_version", Value::Text("0.1.0".into())),
            ("docs", Value::Array(docs)),
            (
                "unsynced",
                map(vec![
                    ("media_pending", Value::Integer(0.into())),
                    ("docs_dirty", Value::Integer(0.into())),
                ]),
            ),
        ]))
    };
    let roster = || {
        map(vec![
            ("doc", Value::Text("roster".into())),
            ("epoch", Value::Integer(0.into())),
            ("heads", Value::Bytes(Vec::new())),
        ])
    };
    // 10 000 nested one-element arrays: deeper than any decoder should recurse.
    let mut deep = vec![0x81; 10_000];
    deep.push(0x00);
    vec![
        ("short-header", done[..7].to_vec()),
        ("bad-magic", bad_magic),
        ("major-2", major_2),
        ("unknown-kind", framed(99, &[0xA0])),
        ("flags", flags),
        (
            "body-cut-short",
            encode(&every_kind()[0].1).unwrap()[..30].to_vec(),
        ),
        ("replace-over-limit", {
            let mut h = framed(4, &[]);
            h[6..10].copy_from_slice(&u32::MAX.to_be_bytes());
            h
        }),
        ("not-cbor", framed(5, &[0xFF, 0xFF])),
        ("deep-nesting", framed(1, &deep)),
        (
            "empty-device-id",
            framed(1, &hello_body(Value::Text(String::new()), vec![])),
        ),
        (
            "long-device-id",
            framed(1, &hello_body(Value::Text("x".repeat(1025)), vec![])),
        ),
        (
            "doc-listed-twice",
            framed(
                1,
                &hello_body(Value::Text("t".into()), vec![roster(), roster()]),
            ),
        ),
        ("heads-not-hashes", {
            let doc = map(vec![
                ("doc", Value::Text("roster".into())),
                ("epoch", Value::Integer(0.into())),
                ("heads", Value::Bytes(vec![1; 31])),
            ]);
            framed(1, &hello_body(Value::Text("t".into()), vec![doc]))
        }),
        (
            "bad-doc-id",
            framed(
                3,
                &cbor(&map(vec![
                    ("doc", Value::Text("journal:not-a-uuid".into())),
                    ("data", Value::Bytes(vec![1])),
                ])),
            ),
        ),
        (
            "ack-sha-short",
            framed(
                32,
                &cbor(&map(vec![
                    ("sha256", Value::Bytes(vec![1; 31])),
                    ("size", Value::Integer(1.into())),
                ])),
            ),
        ),
    ]
}

/// Every generated input, named.
fn seeds() -> Vec<(String, Vec<u8>, Option<harness::Outcome>)> {
    let mut out = Vec::new();
    let mut add = |name: &str, data: Vec<u8>, expect: Option<harness::Outcome>| {
        out.push((name.to_owned(), data, expect));
    };

    // A first sync of a new device, then a sync where both sides changed the roster.
    let (mut server, mut device) = (harness::docs(), MemoryDocs::new());
    let (first_up, first_down) = conversation(&mut server, &mut device);
    device
        .roster
        .as_mut()
        .unwrap()
        .add_room("Acorns", T)
        .unwrap();
    server.roster.as_mut().unwrap().add_room("Oaks", T).unwrap();
    let (edits_up, edits_down) = conversation(&mut server, &mut device);
    // Replayed to the harness's own replicas, the first sync is the same conversation again.
    let whole = |frames: &[Vec<u8>]| {
        Some(harness::Outcome {
            frames: frames.len(),
            accepted: frames.len(),
            finished: true,
        })
    };
    add(
        "server-first-sync",
        input(SERVER, &first_up),
        whole(&first_up),
    );
    add(
        "client-first-sync",
        input(CLIENT_EMPTY, &first_down),
        whole(&first_down),
    );
    add("server-edits", input(SERVER, &edits_up), None);
    add(
        "server-edits-retire",
        input(SERVER | RETIRE, &edits_up),
        None,
    );
    add("client-edits", input(CLIENT_HOLDING, &edits_down), None);
    add(
        "server-edits-small",
        input(SERVER | SMALL_LIMITS, &edits_up),
        None,
    );
    add(
        "client-edits-small",
        input(CLIENT_HOLDING | SMALL_LIMITS, &edits_down),
        None,
    );

    // The server's closing messages: a revocation or a wipe, right after the welcome.
    let kinds = every_kind();
    let frame_of = |name: &str| encode(&kinds.iter().find(|(n, _)| *n == name).unwrap().1).unwrap();
    for end in ["revoked", "wipe"] {
        let frames = [first_down[0].clone(), frame_of(end)];
        add(
            &format!("client-{end}"),
            input(CLIENT_HOLDING, &frames),
            Some(harness::Outcome {
                frames: 2,
                accepted: 2,
                finished: true,
            }),
        );
    }
    // A lease before the documents are in sync is out of order.
    add(
        "client-early-lease",
        input(CLIENT_HOLDING, &[first_down[0].clone(), frame_of("lease")]),
        Some(harness::Outcome {
            frames: 2,
            accepted: 1,
            finished: false,
        }),
    );
    // Out of order: a sync before the hello, a second hello.
    let hello = frame_of("hello");
    add(
        "server-sync-first",
        input(SERVER, &[frame_of("sync"), hello.clone()]),
        Some(harness::Outcome {
            frames: 2,
            accepted: 0,
            finished: false,
        }),
    );
    add(
        "server-two-hellos",
        input(SERVER, &[hello.clone(), hello]),
        Some(harness::Outcome {
            frames: 2,
            accepted: 1,
            finished: false,
        }),
    );

    for (name, msg) in &kinds {
        let frames = [encode(msg).unwrap()];
        let decoded = |accepted| {
            Some(harness::Outcome {
                frames: 1,
                accepted,
                finished: false,
            })
        };
        add(
            &format!("decode-{name}"),
            input(DECODE, &frames),
            decoded(1),
        );
        add(
            &format!("decode-{name}-small"),
            input(DECODE | SMALL_LIMITS, &frames),
            decoded(1),
        );
    }
    for (name, frame) in refused_frames() {
        add(
            &format!("refused-{name}"),
            input(DECODE, &[frame]),
            Some(harness::Outcome {
                frames: 1,
                accepted: 0,
                finished: false,
            }),
        );
    }
    // A byte after a frame: the whole input, decoded as one frame, is refused; cut by headers,
    // it is a good frame and a stray byte.
    let mut trailing = encode(&Message::Done).unwrap();
    trailing.push(0);
    add(
        "trailing-byte",
        input(DECODE, &[trailing]),
        Some(harness::Outcome {
            frames: 2,
            accepted: 1,
            finished: false,
        }),
    );
    add("empty", Vec::new(), Some(harness::Outcome::default()));
    out
}

#[test]
fn generated_inputs_keep_the_fuzz_invariants_and_reach_deep_states() {
    let seeds = seeds();
    let dir = std::env::var_os("SPRIG_FUZZ_SEEDS")
        .map(|d| std::path::PathBuf::from(d).join("wire_decode"));
    if let Some(dir) = &dir {
        std::fs::create_dir_all(dir).unwrap();
    }
    for (name, data, expect) in &seeds {
        let got = harness::run(data);
        if let Some(expect) = expect {
            assert_eq!(&got, expect, "{name}");
        }
        if let Some(dir) = &dir {
            std::fs::write(dir.join(format!("seed-{name}")), data).unwrap();
        }
    }
}

//! The `wire_decode` harness: untrusted bytes through the sync frame decoder and through both
//! sides of a sync session, as the server and the device receive them off a WebSocket.
//!
//! Shared, via `#[path]`, by the fuzz target `fuzz/fuzz_targets/wire_decode.rs` and the stable
//! replay test `crates/sprig-proto/tests/proto/fuzz_replay.rs`, so `cargo test` keeps it
//! compiling and running.
//!
//! Input: one mode byte, then frames back to back; each frame's own header says how long it is
//! (the last one may be cut short). Invariants, checked with panics:
//! - decoding never panics; a decoded message re-encodes to a frame that decodes to it again;
//! - every frame a session sends is one a peer with the same limits accepts;
//! - every error has a code, a message and an error frame that decodes back to that code;
//! - a session answers every frame after its first error (or after it finished) with `Closed`;
//! - a hello that got through has a device id of 1 to 1024 bytes, and a lease the client kept
//!   is for this device.

use sprig_core::{ChildId, Journal, Roster};
use sprig_proto::{
    ClientInfo, ClientSession, FRAME_HEADER_LEN, FrameHeader, Limits, MemoryDocs, Message,
    ProtoError, ServerSession, Unsynced, decode, encode,
};

/// Mode: a fresh server session receives the frames, as from a device.
pub const SERVER: u8 = 0;
/// Mode: a client session on a device that holds nothing receives the frames, as from a server.
pub const CLIENT_EMPTY: u8 = 1;
/// Mode: a client session on a device holding the server's documents receives the frames.
pub const CLIENT_HOLDING: u8 = 2;
/// Mode: each frame is decoded on its own.
pub const DECODE: u8 = 3;
/// Mode flag: sessions and decoding use [`small_limits`], so the size checks trip.
pub const SMALL_LIMITS: u8 = 4;
/// Mode flag: the server's welcome asks the device to retire.
pub const RETIRE: u8 = 8;

/// The one child whose journal the replicas hold; fixed so that generated seeds and the harness
/// name the same document.
pub const CHILD: &str = "5f1c0a52-4d6e-4b7a-9c3e-0123456789ab";
/// The device's id in its hello and the lease it must accept.
pub const DEVICE_ID: &str = "fuzz-tablet";
/// The server's clock in its welcome.
pub const SERVER_TIME_MS: i64 = 1_700_000_000_000;
/// Frames handled per input, so one input cannot run for long.
const MAX_FRAMES: usize = 64;
/// `MAX_TEXT` in sprig-proto's `frame.rs`: the longest text field accepted, in bytes.
const MAX_TEXT: usize = 1024;

/// The replica both roles start from: a new roster and one new journal. Both are genesis
/// documents, identical wherever they are created, so every run starts from the same heads.
#[must_use]
pub fn docs() -> MemoryDocs {
    let mut docs = MemoryDocs::new();
    docs.roster = Some(Roster::new());
    let child = ChildId::parse(CHILD).expect("CHILD is a uuid");
    docs.journals.insert(child.clone(), Journal::new(child));
    docs
}

/// Limits small enough that generated inputs reach every size check.
#[must_use]
pub fn small_limits() -> Limits {
    let mut l = Limits::default();
    l.max_frame = 16 * 1024;
    l.max_sync_message = 2 * 1024;
    l.max_listing = 1024;
    l.max_docs = 2;
    l.max_rounds_per_doc = 3;
    l
}

/// How far one input got, so the replay test can tell that its seeds reach deep states.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Frames the input was cut into.
    pub frames: usize,
    /// Frames decoded (mode [`DECODE`]) or accepted by the session.
    pub accepted: usize,
    /// The session finished (converged, or ended by a revocation or wipe).
    pub finished: bool,
}

/// Runs one input; panics when an invariant breaks.
pub fn run(data: &[u8]) -> Outcome {
    let Some((&mode, rest)) = data.split_first() else {
        return Outcome::default();
    };
    check_decode(rest, &Limits::default());
    let limits = if mode & SMALL_LIMITS == 0 {
        Limits::default()
    } else {
        small_limits()
    };
    let frames = split_frames(rest);
    let (accepted, finished) = match mode & 3 {
        SERVER => server(&frames, &limits, mode & RETIRE != 0),
        CLIENT_EMPTY => client(&frames, MemoryDocs::new(), &limits),
        CLIENT_HOLDING => client(&frames, docs(), &limits),
        _ => {
            let ok = frames.iter().filter(|f| check_decode(f, &limits)).count();
            (ok, false)
        }
    };
    Outcome {
        frames: frames.len(),
        accepted,
        finished,
    }
}

/// Cuts `data` into frames by their headers' body lengths; the last may be short.
fn split_frames(mut data: &[u8]) -> Vec<&[u8]> {
    let mut frames = Vec::new();
    while !data.is_empty() && frames.len() < MAX_FRAMES {
        let len = data.get(6..FRAME_HEADER_LEN).map_or(data.len(), |b| {
            let body = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
            usize::try_from(body)
                .unwrap_or(usize::MAX)
                .saturating_add(FRAME_HEADER_LEN)
        });
        let (frame, tail) = data.split_at(len.min(data.len()));
        frames.push(frame);
        data = tail;
    }
    frames
}

/// Decodes one frame and checks the result; returns whether it decoded.
fn check_decode(frame: &[u8], limits: &Limits) -> bool {
    let header = FrameHeader::parse(frame, limits);
    match decode(frame, limits) {
        Ok(msg) => {
            let header = header.expect("a frame that decodes has a valid header");
            assert_eq!(header.kind, msg.kind(), "header kind and message disagree");
            let again = encode(&msg).expect("a decoded message encodes");
            match decode(&again, limits) {
                Ok(back) => assert_eq!(back, msg, "a decoded message does not round-trip"),
                Err(e) => panic!(
                    "a decoded {:?} re-encodes to a refused frame: {e}",
                    msg.kind()
                ),
            }
            true
        }
        Err(e) => {
            check_error(&e, limits);
            false
        }
    }
}

fn check_error(e: &ProtoError, limits: &Limits) {
    assert!(!e.code().is_empty(), "{e:?} has no code");
    assert!(!e.to_string().is_empty(), "{e:?} has no message");
    let _ = e.is_permanent();
    if let Some(frame) = e.error_frame() {
        match decode(&frame, limits) {
            Ok(Message::Error { code, .. }) => assert_eq!(code, e.code()),
            other => panic!("the error frame for {e:?} decodes to {other:?}"),
        }
    }
}

/// What a session did with one frame.
enum Step {
    Accepted,
    Closed,
    Failed,
}

/// Checks one answer of a session that was `over` (failed or finished) before the frame.
fn check_step(result: Result<Vec<Vec<u8>>, ProtoError>, over: bool, limits: &Limits) -> Step {
    match result {
        Ok(out) => {
            assert!(!over, "a session that is over accepted a frame");
            for frame in &out {
                if let Err(e) = decode(frame, limits) {
                    panic!("a session sent a frame its peer refuses: {e}");
                }
            }
            Step::Accepted
        }
        Err(ProtoError::Closed) => {
            assert!(over, "a session that is not over answered Closed");
            Step::Closed
        }
        Err(e) => {
            assert!(!over, "a session that is over answered {e:?}, not Closed");
            check_error(&e, limits);
            Step::Failed
        }
    }
}

fn server(frames: &[&[u8]], limits: &Limits, retire: bool) -> (usize, bool) {
    let mut docs = docs();
    let mut peer = docs.peer(DEVICE_ID);
    let mut session = ServerSession::new(limits.clone());
    session.set_retire(retire);
    let (mut failed, mut welcomed, mut accepted) = (false, false, 0);
    for frame in frames {
        let over = failed || session.is_finished();
        match check_step(session.receive(&mut peer, frame), over, limits) {
            Step::Accepted => accepted += 1,
            Step::Closed => {}
            Step::Failed => failed = true,
        }
        if let Some(hello) = session.hello() {
            assert!(
                (1..=MAX_TEXT).contains(&hello.device_id.len()),
                "a hello with a {}-byte device id got through",
                hello.device_id.len()
            );
            // The server answers a hello with its first turn, as sync-server's `sync_step` does.
            if !failed && !welcomed {
                welcomed = true;
                let step = check_step(session.welcome(&mut peer, SERVER_TIME_MS), false, limits);
                failed = matches!(step, Step::Failed);
            }
        }
    }
    (accepted, session.is_finished())
}

fn client(frames: &[&[u8]], mut docs: MemoryDocs, limits: &Limits) -> (usize, bool) {
    let mut peer = docs.peer("server");
    let mut session = ClientSession::new(
        ClientInfo {
            device_id: DEVICE_ID.into(),
            app_version: "0.0.0-fuzz".into(),
            unsynced: Unsynced::default(),
            pin_failures: Vec::new(),
            locked: false,
        },
        limits.clone(),
    );
    let hello = session
        .start(&mut peer)
        .expect("the device's hello fits the limits");
    assert!(decode(&hello, limits).is_ok(), "the hello is refused");
    let (mut failed, mut accepted) = (false, 0);
    for frame in frames {
        let over = failed || session.is_finished();
        match check_step(session.receive(&mut peer, frame), over, limits) {
            Step::Accepted => accepted += 1,
            Step::Closed => {}
            Step::Failed => failed = true,
        }
    }
    if let Some(lease) = &session.report().lease {
        assert_eq!(
            lease.device_id, DEVICE_ID,
            "kept a lease for another device"
        );
    }
    (accepted, session.is_finished())
}

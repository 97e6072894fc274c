//! Sync frames from an untrusted peer: the frame decoder and both session roles.
//! The logic is in `harness/wire.rs`; see docs/FUZZING.md.
#![no_main]

// The outcome `run` returns is for the replay test, which checks how far its seeds get.
#[allow(dead_code)]
#[path = "../harness/wire.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    harness::run(data);
});

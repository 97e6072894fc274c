//! Large media stream through the vault without being held whole in memory.
//!
//! Peak memory is measured in a child process (this binary re-invoked on one `#[ignore]`d
//! test), where the kernel's high-water mark of resident memory (`VmHWM`) belongs to that one
//! job and not to tests running in parallel.

use std::io::{Read, Write};
use std::path::PathBuf;

use sha2::Digest;
use sprig_store::{MemoryKeyStore, Store};

use crate::child_test;

const SIZE: usize = 40 * 1024 * 1024;

/// Peak resident set size of this process so far, in KiB.
fn vm_hwm_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("Linux /proc");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/self/status")
}

/// Deterministic bytes that do not compress (xorshift64*).
struct Noise(u64);

impl Noise {
    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            let v = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

#[test]
#[ignore = "child process of streaming_40_mb_keeps_peak_memory_far_below_its_size"]
fn streaming_child() {
    let Ok(dir) = std::env::var("SPRIG_STREAM_DIR") else {
        return;
    };
    let path = PathBuf::from(dir).join("device.db");
    let keys = MemoryKeyStore::new();
    let mut store = Store::create(&path, &keys).unwrap();
    let baseline = vm_hwm_kb();

    let mut noise = Noise(0x9E37_79B9_7F4A_7C15);
    let mut buf = vec![0u8; 64 * 1024];
    let mut expected = sha2::Sha256::new();
    let mut w = store.media_writer("video/mp4").unwrap();
    for _ in 0..SIZE / buf.len() {
        noise.fill(&mut buf);
        expected.update(&buf);
        w.write_all(&buf).unwrap();
    }
    let sha = w.finish().unwrap();
    assert_eq!(sha.as_bytes()[..], expected.finalize()[..]);
    let after_write = vm_hwm_kb();

    let mut r = store.media_reader(&sha).unwrap();
    let mut actual = sha2::Sha256::new();
    let mut total = 0;
    loop {
        let n = r.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        actual.update(&buf[..n]);
        total += n;
    }
    assert_eq!(total, SIZE);
    assert_eq!(actual.finalize()[..], sha.as_bytes()[..]);
    let mut out = std::io::stdout().lock();
    writeln!(out, "SPRIG-MEM {baseline} {after_write} {}", vm_hwm_kb()).unwrap();
    out.flush().unwrap();
}

#[test]
fn streaming_40_mb_keeps_peak_memory_far_below_its_size() {
    let dir = tempfile::tempdir().unwrap();
    let out = child_test("streaming::streaming_child")
        .env("SPRIG_STREAM_DIR", dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "child failed: {stdout}");
    let line = stdout
        .lines()
        .find_map(|l| l.split_once("SPRIG-MEM ").map(|(_, rest)| rest))
        .unwrap_or_else(|| panic!("child printed no measurement: {stdout}"));
    let kb: Vec<u64> = line.split(' ').map(|v| v.parse().unwrap()).collect();
    let (baseline, after_write, after_read) = (kb[0], kb[1], kb[2]);
    let grown_mib = (after_read - baseline) / 1024;
    eprintln!(
        "40 MiB streamed: peak RSS {baseline} KiB -> {after_write} KiB (write) -> {after_read} KiB (read)"
    );
    // Holding the file whole would add ≥ 40 MiB; the vault holds one 256 KiB chunk plus
    // SQLite's page cache.
    assert!(
        grown_mib < 16,
        "peak memory grew by {grown_mib} MiB while streaming 40 MiB"
    );
}

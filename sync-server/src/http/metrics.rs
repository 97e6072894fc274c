//! `GET /metrics`: this process's counters in the Prometheus text format — sync sessions
//! (open, total, duration), bytes of sync frames, media acknowledgements and bytes, and error
//! answers by status. Counts only: no device, setting, child or address appears in a label.
//! One set per process (every setting it serves together), kept in atomics.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Upper bounds of the sync-duration histogram's buckets, in seconds.
const BUCKETS: [f64; 11] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

#[derive(Default)]
struct Metrics {
    sessions_open: AtomicU64,
    sessions_total: AtomicU64,
    sync_bytes_in: AtomicU64,
    sync_bytes_out: AtomicU64,
    sync_buckets: [AtomicU64; BUCKETS.len()],
    sync_count: AtomicU64,
    sync_micros: AtomicU64,
    media_acks: AtomicU64,
    media_bytes: AtomicU64,
    errors: Mutex<BTreeMap<u16, u64>>,
}

fn metrics() -> &'static Metrics {
    static M: std::sync::OnceLock<Metrics> = std::sync::OnceLock::new();
    M.get_or_init(Metrics::default)
}

/// An open sync session: counted while it lives, its duration observed when it ends.
pub(crate) struct Session(Instant);

impl Session {
    pub(crate) fn start() -> Session {
        let m = metrics();
        m.sessions_open.fetch_add(1, Ordering::Relaxed);
        m.sessions_total.fetch_add(1, Ordering::Relaxed);
        Session(Instant::now())
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let m = metrics();
        m.sessions_open.fetch_sub(1, Ordering::Relaxed);
        let secs = self.0.elapsed().as_secs_f64();
        for (bound, count) in BUCKETS.iter().zip(&m.sync_buckets) {
            if secs <= *bound {
                count.fetch_add(1, Ordering::Relaxed);
            }
        }
        m.sync_count.fetch_add(1, Ordering::Relaxed);
        m.sync_micros.fetch_add(
            u64::try_from(self.0.elapsed().as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }
}

/// A sync frame of `n` bytes came in.
pub(crate) fn frame_in(n: usize) {
    metrics()
        .sync_bytes_in
        .fetch_add(n as u64, Ordering::Relaxed);
}

/// A sync frame of `n` bytes went out.
pub(crate) fn frame_out(n: usize) {
    metrics()
        .sync_bytes_out
        .fetch_add(n as u64, Ordering::Relaxed);
}

/// An upload of `size` bytes was acknowledged (or an upload of a stored file re-acknowledged,
/// `size` 0).
pub(crate) fn media_ack(size: u64) {
    let m = metrics();
    m.media_acks.fetch_add(1, Ordering::Relaxed);
    m.media_bytes.fetch_add(size, Ordering::Relaxed);
}

/// An error answer with this status.
pub(crate) fn error(status: u16) {
    *metrics()
        .errors
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .entry(status)
        .or_default() += 1;
}

fn counter(out: &mut String, name: &str, help: &str, kind: &str, value: u64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
    );
}

/// The text exposition.
pub(crate) fn render() -> String {
    let m = metrics();
    let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let mut out = String::new();
    counter(
        &mut out,
        "sprig_sync_sessions_open",
        "Sync sessions open now.",
        "gauge",
        get(&m.sessions_open),
    );
    counter(
        &mut out,
        "sprig_sync_sessions_total",
        "Sync sessions started.",
        "counter",
        get(&m.sessions_total),
    );
    let _ = writeln!(
        out,
        "# HELP sprig_sync_session_seconds How long sync sessions lasted.\n\
         # TYPE sprig_sync_session_seconds histogram"
    );
    for (bound, count) in BUCKETS.iter().zip(&m.sync_buckets) {
        let _ = writeln!(
            out,
            "sprig_sync_session_seconds_bucket{{le=\"{bound}\"}} {}",
            get(count)
        );
    }
    let n = get(&m.sync_count);
    #[allow(clippy::cast_precision_loss)] // Microseconds: exact to 2^53.
    let sum = get(&m.sync_micros) as f64 / 1e6;
    let _ = writeln!(
        out,
        "sprig_sync_session_seconds_bucket{{le=\"+Inf\"}} {n}\n\
         sprig_sync_session_seconds_sum {sum}\nsprig_sync_session_seconds_count {n}"
    );
    counter(
        &mut out,
        "sprig_sync_received_bytes_total",
        "Bytes of sync frames received.",
        "counter",
        get(&m.sync_bytes_in),
    );
    counter(
        &mut out,
        "sprig_sync_sent_bytes_total",
        "Bytes of sync frames sent.",
        "counter",
        get(&m.sync_bytes_out),
    );
    counter(
        &mut out,
        "sprig_media_acks_total",
        "Media uploads acknowledged (the device may purge its original).",
        "counter",
        get(&m.media_acks),
    );
    counter(
        &mut out,
        "sprig_media_received_bytes_total",
        "Bytes of media stored and acknowledged.",
        "counter",
        get(&m.media_bytes),
    );
    let _ = writeln!(
        out,
        "# HELP sprig_http_errors_total Error answers, by HTTP status.\n\
         # TYPE sprig_http_errors_total counter"
    );
    for (status, n) in m
        .errors
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .iter()
    {
        let _ = writeln!(out, "sprig_http_errors_total{{status=\"{status}\"}} {n}");
    }
    out
}

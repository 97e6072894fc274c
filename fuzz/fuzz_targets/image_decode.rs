//! Photo bytes from the camera or an import: the photo pipeline and the video sniffer, under a
//! per-input heap budget. The logic is in `harness/image.rs`; see docs/FUZZING.md.
#![no_main]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

// The outcome `run` returns is for the replay test, which checks what its seeds reach.
#[allow(dead_code)]
#[path = "../harness/image.rs"]
mod harness;

/// Counts live heap bytes and their high-water mark, so each input's peak can be checked against
/// the budget below. libFuzzer's own `-malloc_limit_mb` only sees single allocations.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(by: usize) {
    let live = LIVE.fetch_add(by, Relaxed) + by;
    PEAK.fetch_max(live, Relaxed);
}

// The one unsafe block of the fuzz crate: a global allocator must be `unsafe impl`. It only
// forwards to the system allocator and keeps counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged; the caller upholds `GlobalAlloc::alloc`'s contract.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator, which got it from `System`, with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for `dealloc`; the caller upholds `GlobalAlloc::realloc`'s contract.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), Relaxed);
            grew(new_size);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// libfuzzer-sys's panic hook aborts on every panic, even one `process_photo` contains (it
/// refuses a photo whose third-party decoder panics as damaged). Panics raised in dependencies'
/// code may therefore unwind; one that escapes still aborts in libfuzzer-sys's wrapper. Panics
/// in Sprig's own code abort at once, as before.
fn let_dependency_panics_unwind() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let in_dependency = info
            .location()
            .is_some_and(|l| l.file().contains("/registry/src/"));
        if in_dependency {
            eprintln!("dependency panic (contained unless the input is reported): {info}");
        } else {
            report(info);
        }
    }));
}

libfuzzer_sys::fuzz_target!(init: let_dependency_panics_unwind(), |data: &[u8]| {
    let options = harness::options();
    // The decoder may hold `max_alloc` plus working buffers of about the same size; the pipeline
    // then holds RGB, resized, oriented and encoded copies, each no larger than the decoded
    // picture. Anything beyond 4 × `max_alloc` + 16 MiB means a limit was bypassed.
    let budget = 4 * options.limits.max_alloc + (16 << 20);
    let base = LIVE.load(Relaxed);
    PEAK.store(base, Relaxed);
    harness::run(data);
    let peak = (PEAK.load(Relaxed) - base) as u64;
    assert!(
        peak <= budget,
        "one input held {peak} bytes of heap, over the budget of {budget}"
    );
});

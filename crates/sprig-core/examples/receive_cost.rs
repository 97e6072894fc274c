//! What the server's check of a tablet's change costs beside receiving it: one new
//! observation for a 300-observation journal, received as a sync message.
//!
//! `cargo run --release -p sprig-core --example receive_cost -- time 200` times interleaved
//! batches and prints the fastest of each (docs/BENCHMARKS.md); `-- receive N` and
//! `-- checked N` only do the work, for `valgrind --tool=callgrind` instruction counts;
//! `-- server N` and `-- server-checked N` do what the server does per session (load the
//! journal, receive, save the increment), and `-- roster N` builds the roster view the checks
//! use from the stored roster.
use sprig_core::{Journal, RosterView, SyncState, Timestamp};
use sprig_testkit::{Fixture, photo_ref};

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_default();
    let n: usize = std::env::args()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let fx = Fixture::new(60);
    let mut j = fx.journal(0);
    for i in 0..300 {
        let at = Timestamp(1_750_000_000_000 + i * 3_600_000);
        let text = format!("Observation {i}: stacked bricks and counted them aloud.");
        let id = if i % 3 == 0 {
            fx.observe_with_media(&mut j, &text, photo_ref((i % 256) as u8), at)
        } else {
            fx.observe(&mut j, &text, at)
        };
        if i % 5 == 0 {
            fx.reply(&mut j, &id, "Next: try a taller tower.", at);
        }
    }
    let bytes = j.save();
    let mut server = Journal::load(&bytes).unwrap();
    let mut device = Journal::load(&bytes).unwrap();
    fx.observe(
        &mut device,
        "Poured water into three cups",
        Timestamp(1_760_000_000_000),
    );
    let (mut a, mut b) = (SyncState::new(), SyncState::new());
    let first = server.generate_sync_message(&mut a).unwrap();
    device.receive_sync_message(&mut b, &first).unwrap();
    let carrying = device.generate_sync_message(&mut b).unwrap();
    let view = RosterView::new(&fx.roster);
    if mode == "time" {
        // Interleaved batches; the fastest batch of each shows the cost without the noise of
        // other work on the machine.
        let (mut best_r, mut best_c) = (f64::MAX, f64::MAX);
        for _ in 0..15 {
            let mut copies: Vec<Journal> = (0..n).map(|_| server.clone()).collect();
            let t = std::time::Instant::now();
            for c in &mut copies {
                c.receive_sync_message(&mut SyncState::new(), &carrying)
                    .unwrap();
            }
            best_r = best_r.min(t.elapsed().as_secs_f64() / n as f64);
            let mut copies: Vec<Journal> = (0..n).map(|_| server.clone()).collect();
            let t = std::time::Instant::now();
            for c in &mut copies {
                c.receive_checked(&mut SyncState::new(), &carrying, &view)
                    .unwrap();
            }
            best_c = best_c.min(t.elapsed().as_secs_f64() / n as f64);
        }
        println!(
            "receive {:.1} µs, receive + validate {:.1} µs: validation costs {:.1}% of receiving",
            best_r * 1e6,
            best_c * 1e6,
            (best_c - best_r) / best_r * 100.0
        );
        return;
    }
    // What the server does with one observation in a sync session: load its copy of the
    // journal, receive the message (plain, or checked), and save the increment it stores.
    if mode == "server" || mode == "server-checked" {
        for _ in 0..n {
            let mut j = Journal::load(&bytes).unwrap();
            if mode == "server" {
                j.receive_sync_message(&mut SyncState::new(), &carrying)
                    .unwrap();
            } else {
                j.receive_checked(&mut SyncState::new(), &carrying, &view)
                    .unwrap();
            }
            std::hint::black_box(j.save_incremental());
        }
        println!("{mode} x{n}");
        return;
    }
    // Building the roster the checks use, from the stored roster.
    if mode == "roster" {
        let saved = fx.roster.clone().save();
        for _ in 0..n {
            let r = sprig_core::Roster::load(&saved).unwrap();
            std::hint::black_box(RosterView::new(&r));
        }
        println!("{mode} x{n}");
        return;
    }
    let mut copies: Vec<Journal> = (0..n).map(|_| server.clone()).collect();
    for c in &mut copies {
        match mode.as_str() {
            "receive" => c
                .receive_sync_message(&mut SyncState::new(), &carrying)
                .unwrap(),
            "checked" => {
                c.receive_checked(&mut SyncState::new(), &carrying, &view)
                    .unwrap();
            }
            _ => {}
        }
    }
    println!("{mode} x{n}: {}", copies.len());
}

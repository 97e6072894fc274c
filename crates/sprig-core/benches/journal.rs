//! Size and load time of a child journal with 300 observations and of a 60-child roster, and
//! what the server's validation of one incoming observation costs beside applying it.
//!
//! `cargo bench -p sprig-core --bench journal`; sizes are printed before the timings.

use criterion::{Criterion, criterion_group, criterion_main};
use sprig_core::{Journal, Roster, SyncState, Timestamp};
use sprig_testkit::{Fixture, photo_ref};

const OBS: usize = 300;

fn journal_300(fx: &Fixture) -> Journal {
    let mut j = fx.journal(0);
    for i in 0..OBS {
        let text = format!(
            "Observation {i}: during free play {} chose the construction area, stacked {} bricks and counted them aloud, \
             then explained to a friend how the tower stayed up.",
            sprig_testkit::name(0),
            i % 10 + 2
        );
        let at = Timestamp(1_750_000_000_000 + i64::try_from(i).unwrap() * 3_600_000);
        let id = if i % 3 == 0 {
            fx.observe_with_media(&mut j, &text, photo_ref(u8::try_from(i % 256).unwrap()), at)
        } else {
            fx.observe(&mut j, &text, at)
        };
        if i % 5 == 0 {
            fx.reply(
                &mut j,
                &id,
                "Next: try a taller tower with a wider base.",
                at,
            );
        }
    }
    j
}

fn bench(c: &mut Criterion) {
    let fx = Fixture::new(60);
    let mut journal = journal_300(&fx);
    let journal_bytes = journal.save();
    let mut roster: Roster = fx.roster.clone();
    let roster_bytes = roster.save();
    println!(
        "journal of {OBS} observations: {} bytes saved",
        journal_bytes.len()
    );
    println!(
        "roster of 60 children, 60 parents, 4 staff: {} bytes saved",
        roster_bytes.len()
    );

    let mut g = c.benchmark_group("automerge");
    g.bench_function("load journal (300 observations)", |b| {
        b.iter(|| Journal::load(&journal_bytes).unwrap());
    });
    g.bench_function("load + materialise journal (300 observations)", |b| {
        b.iter(|| Journal::load(&journal_bytes).unwrap().entries().len());
    });
    g.bench_function("load roster (60 children)", |b| {
        b.iter(|| Roster::load(&roster_bytes).unwrap());
    });
    g.bench_function("load + list roster children (60)", |b| {
        b.iter(|| Roster::load(&roster_bytes).unwrap().children().len());
    });
    g.finish();

    // The server's check of a tablet's change against applying it: one new observation
    // arrives for a year-sized journal (`receive_checked`, as the server runs it).
    let mut server = journal;
    let before = server.heads();
    let mut device = Journal::load(&journal_bytes).unwrap();
    fx.observe(
        &mut device,
        "Poured water from the jug into three cups, saying 'full' and 'empty'.",
        Timestamp(1_760_000_000_000),
    );
    let change = device.changes_since(&before);
    println!("one new observation: {} bytes of changes", change.len());
    // The sync message that carries it to the server, after the usual first exchange.
    let (mut at_server, mut at_device) = (SyncState::new(), SyncState::new());
    let first = server.generate_sync_message(&mut at_server).unwrap();
    device.receive_sync_message(&mut at_device, &first).unwrap();
    let carrying = device.generate_sync_message(&mut at_device).unwrap();
    let roster = sprig_core::RosterView::new(&fx.roster);
    let mut g = c.benchmark_group("validate");
    g.bench_function(
        "server receives one observation (300-observation journal)",
        |b| {
            b.iter_batched(
                || (server.clone(), SyncState::new()),
                |(mut j, mut st)| j.receive_sync_message(&mut st, &carrying).unwrap(),
                criterion::BatchSize::SmallInput,
            );
        },
    );
    g.bench_function("server receives and validates one observation", |b| {
        b.iter_batched(
            || (server.clone(), SyncState::new()),
            // What the server runs (`receive_checked`): the carried changes read from the
            // message, applied, then each operation and the rules checked.
            |(mut j, mut st)| j.receive_checked(&mut st, &carrying, &roster).unwrap(),
            criterion::BatchSize::SmallInput,
        );
    });
    g.bench_function(
        "apply one observation's changes (300-observation journal)",
        |b| {
            b.iter_batched(
                || server.clone(),
                |mut j| j.apply_incremental(&change).unwrap(),
                criterion::BatchSize::SmallInput,
            );
        },
    );
    g.finish();
    let _ = server.heads();
}

criterion_group!(benches, bench);
criterion_main!(benches);

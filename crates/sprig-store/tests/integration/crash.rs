//! Crash safety: a writer process killed with SIGKILL at random points loses nothing it
//! reported as committed, and the database, its index and its media stay consistent.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sha2::Digest;
use sprig_core::{
    Actor, Area, ChildId, Consent, EntryId, Journal, MediaKind, MediaRef, NewEntry, Sha256,
    Timestamp, plan_entry,
};
use sprig_store::Store;

use crate::{assert_index_matches, child_test, data_dir, real_keystore};

const ROUNDS: usize = 14;
const SEED: u64 = 0x5EED_C0FF_EE00_0007;

fn now() -> Timestamp {
    Timestamp(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis()
            .try_into()
            .unwrap(),
    )
}

/// The writer: records observations in a loop (every fourth with a ~300 KB photo written to
/// the vault first) and prints `committed <child> <entry> <sha|->` after each commit.
#[test]
#[ignore = "child process of killed_writer_loses_no_committed_observation"]
fn crash_writer_child() {
    let Ok(dir) = std::env::var("SPRIG_CRASH_DIR") else {
        return;
    };
    let dir = PathBuf::from(dir);
    let keys = real_keystore(&dir);
    let mut store = Store::open(dir.join("device.db"), &keys).unwrap();
    let roster = store.roster().unwrap();
    let children: Vec<(ChildId, bool)> = roster
        .children()
        .into_iter()
        .map(|c| (c.id, c.photo_consent == Consent::Yes))
        .collect();
    let staff = Actor::Staff(roster.all_staff()[0].id.clone());
    let mut journals: HashMap<ChildId, Journal> = HashMap::new();
    let mut out = std::io::stdout().lock();
    let salt = u64::from(std::process::id());
    for i in 0u64.. {
        let (child, consent) = &children[usize::try_from(i).unwrap() % children.len()];
        let journal = journals
            .entry(child.clone())
            .or_insert_with(|| match store.journal(child) {
                Ok(j) => j,
                Err(e) if e.is_not_found() => Journal::new(child.clone()),
                Err(e) => panic!("loading journal: {e}"),
            });
        let mut media = Vec::new();
        if i % 4 == 0 && *consent {
            let bytes: Vec<u8> = (0..300_000u64)
                .map(|k| (k.wrapping_mul(31) ^ (i * 7919 + salt)) as u8)
                .collect();
            let sha = store.put_media("image/jpeg", &bytes).unwrap();
            media.push(MediaRef {
                sha256: sha,
                kind: MediaKind::Photo,
                mime: "image/jpeg".into(),
                size: bytes.len() as u64,
                width: 2048,
                height: 1536,
            });
        }
        let sha = media
            .first()
            .map_or_else(|| "-".to_owned(), |m| m.sha256.to_hex());
        let plan = plan_entry(
            &roster,
            &staff,
            NewEntry {
                children: vec![child.clone()],
                text: format!("observation {i} by writer {salt}"),
                areas: vec![Area::ALL[usize::try_from(i).unwrap() % Area::ALL.len()]],
                media,
                ..NewEntry::default()
            },
            now(),
        )
        .unwrap();
        journal.apply_entry(&plan).unwrap();
        store.save_journal(journal).unwrap();
        writeln!(out, "committed {child} {} {sha}", plan.id).unwrap();
        out.flush().unwrap();
    }
}

struct Committed {
    child: ChildId,
    entry: EntryId,
    media: Option<Sha256>,
}

fn parse(line: &str) -> Committed {
    let mut parts = line.split(' ').skip(1);
    let mut next = || parts.next().unwrap();
    Committed {
        child: ChildId::parse(next()).unwrap(),
        entry: EntryId::parse(next()).unwrap(),
        media: match next() {
            "-" => None,
            hex => Some(Sha256::from_hex(hex).unwrap()),
        },
    }
}

#[test]
fn killed_writer_loses_no_committed_observation() {
    let d = data_dir();
    let keys = real_keystore(d.dir.path());
    let mut fx = sprig_testkit::Fixture::new(4);
    {
        let mut store = Store::create(&d.path, &keys).unwrap();
        store.save_roster(&mut fx.roster).unwrap();
        store.close().unwrap();
    }
    let mut rng = StdRng::seed_from_u64(SEED);
    let mut committed: Vec<Committed> = Vec::new();
    for round in 0..ROUNDS {
        let mut child = child_test("crash::crash_writer_child")
            .env("SPRIG_CRASH_DIR", d.dir.path())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            let mut lines = Vec::new();
            let mut line = String::new();
            // Only whole lines count: a line cut by the kill was not fully reported.
            while r.read_line(&mut line).unwrap_or(0) > 0 {
                if line.ends_with('\n') && line.starts_with("committed ") {
                    lines.push(line.trim_end().to_owned());
                    tx.send(()).ok();
                }
                line.clear();
            }
            lines
        });
        // Odd rounds kill at any time after start (perhaps while opening); even rounds wait
        // for the first commit so most kills land in the middle of the write loop.
        if round % 2 == 0 {
            rx.recv_timeout(Duration::from_secs(60))
                .expect("the writer committed nothing within 60 s");
        }
        std::thread::sleep(Duration::from_millis(rng.random_range(0..500)));
        child.kill().unwrap(); // SIGKILL on Unix
        let status = child.wait().unwrap();
        assert!(!status.success(), "the writer exited on its own: {status}");
        let lines = reader.join().unwrap();
        let before = committed.len();
        committed.extend(lines.iter().map(|l| parse(l)));

        let store = Store::open(&d.path, &keys).unwrap();
        store.check_integrity().unwrap();
        for c in &committed {
            let journal = store.journal(&c.child).unwrap();
            assert!(
                journal.entry(&c.entry).is_some(),
                "round {round}: committed {} missing from journal",
                c.entry
            );
            let indexed = store.entry(&c.child, &c.entry).unwrap();
            if let Some(sha) = &c.media {
                assert_eq!(indexed.media[0].sha256, *sha);
                let mut r = store.media_reader(sha).unwrap();
                let mut h = sha2::Sha256::new();
                std::io::copy(&mut r, &mut h).unwrap();
                assert_eq!(
                    h.finalize()[..],
                    sha.as_bytes()[..],
                    "round {round}: media {sha} damaged"
                );
            }
        }
        assert_index_matches(&store);
        eprintln!(
            "round {round}: {} new commits, {} in total",
            committed.len() - before,
            committed.len()
        );
        store.close().unwrap();
    }
    assert!(
        committed.len() >= ROUNDS,
        "too few commits to exercise anything: {}",
        committed.len()
    );
    Store::open(&d.path, &keys).unwrap().wipe(&keys).unwrap();
}

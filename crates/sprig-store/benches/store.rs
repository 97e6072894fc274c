//! The device store with SQLCipher against plain SQLite, on the same code, in one run:
//!
//! ```text
//! cargo bench -p sprig-store --features insecure-plaintext --bench store
//! ```
//!
//! Every benchmark runs for `plaintext` first and `sqlcipher` second, side by side.
//!
//! The key comes from the in-memory key store, so no OS keystore session is needed.

use std::hint::black_box;
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use sprig_core::{Journal, MediaKind, MediaRef, Timestamp};
use sprig_store::{MemoryKeyStore, Store};
use sprig_testkit::Fixture;
use sprig_testkit::images::random_bytes;

const CHILDREN: usize = 60;
const PER_CHILD: usize = 334; // 60 × 334 = 20,040 observations
const PHOTO_BYTES: usize = 400_000;

#[derive(Clone, Copy)]
enum Mode {
    Plaintext,
    Sqlcipher,
}

impl Mode {
    fn label(self) -> &'static str {
        match self {
            Mode::Plaintext => "plaintext",
            Mode::Sqlcipher => "sqlcipher",
        }
    }

    fn create(self, path: &Path, keys: &MemoryKeyStore) -> Store {
        match self {
            Mode::Plaintext => Store::create_insecure_plaintext(path),
            Mode::Sqlcipher => Store::create(path, keys),
        }
        .unwrap()
    }

    fn open(self, path: &Path, keys: &MemoryKeyStore) -> Store {
        match self {
            Mode::Plaintext => Store::open_insecure_plaintext(path),
            Mode::Sqlcipher => Store::open(path, keys),
        }
        .unwrap()
    }
}

fn t(n: usize) -> Timestamp {
    Timestamp(1_700_000_000_000 + i64::try_from(n).unwrap() * 60_000)
}

/// The setting and 20,000 observations, built once and saved into each mode's store.
fn fixture() -> &'static (Fixture, Vec<Journal>) {
    static DATA: OnceLock<(Fixture, Vec<Journal>)> = OnceLock::new();
    DATA.get_or_init(|| {
        let fx = Fixture::new(CHILDREN);
        let journals = (0..CHILDREN)
            .map(|c| {
                let mut j = fx.journal(c);
                for k in 0..PER_CHILD {
                    fx.observe(
                        &mut j,
                        &format!(
                            "Observation {k}: built a tower of {} bricks and counted them aloud",
                            k % 12
                        ),
                        t(k * CHILDREN + c),
                    );
                }
                j
            })
            .collect();
        (fx, journals)
    })
}

fn bench_mode(c: &mut Criterion, mode: Mode) {
    let label = mode.label();
    let (fx, big) = fixture();
    let dir = tempfile::tempdir().unwrap();
    let keys = MemoryKeyStore::new();

    // Record a text observation into one of 60 journals (rotating), saved with its index rows.
    {
        let mut store = mode.create(&dir.path().join("record.db"), &keys);
        let mut journals: Vec<Journal> = (0..CHILDREN).map(|i| fx.journal(i)).collect();
        for j in &mut journals {
            store.save_journal(j).unwrap();
        }
        let mut n = 0;
        c.bench_function(&format!("record_text_observation/{label}"), |b| {
            b.iter(|| {
                let j = &mut journals[n % CHILDREN];
                fx.observe(
                    j,
                    "Poured water between jugs and said 'full' and 'empty'",
                    t(n),
                );
                store.save_journal(j).unwrap();
                n += 1;
            });
        });
    }

    // Record an observation with a 2048 px photo (~400 KB) written to the vault. Every 50
    // photos the vault is purged, untimed, so the file stays a realistic size.
    {
        let keys = MemoryKeyStore::new();
        let mut store = mode.create(&dir.path().join("photo.db"), &keys);
        let mut journals: Vec<Journal> = (0..CHILDREN).map(|i| fx.journal(i)).collect();
        for j in &mut journals {
            store.save_journal(j).unwrap();
        }
        let mut photo = random_bytes(PHOTO_BYTES, 42);
        let mut n: u64 = 0;
        c.bench_function(&format!("record_photo_observation/{label}"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    photo[..8].copy_from_slice(&n.to_le_bytes());
                    let i = usize::try_from(n).unwrap();
                    let start = Instant::now();
                    let sha = store.put_media("image/jpeg", &photo).unwrap();
                    let media = MediaRef {
                        sha256: sha,
                        kind: MediaKind::Photo,
                        mime: "image/jpeg".into(),
                        size: PHOTO_BYTES as u64,
                        width: 2048,
                        height: 1536,
                    };
                    let j = &mut journals[i % CHILDREN];
                    fx.observe_with_media(j, "Painted with both hands", media, t(i));
                    store.save_journal(j).unwrap();
                    total += start.elapsed();
                    n += 1;
                    if n.is_multiple_of(50) {
                        for m in store
                            .media_in_state(sprig_store::MediaState::Captured)
                            .unwrap()
                        {
                            store.mark_uploaded(&m.sha256).unwrap();
                        }
                        store.purge_uploaded().unwrap();
                    }
                }
                total
            });
        });
    }

    // A store holding 20,040 observations: open it, and read one child's latest 50.
    {
        let keys = MemoryKeyStore::new();
        let path = dir.path().join("big.db");
        {
            let mut store = mode.create(&path, &keys);
            for j in big {
                store.save_journal(&mut j.clone()).unwrap();
            }
            store.close().unwrap();
        }
        c.bench_function(&format!("open_20k_store/{label}"), |b| {
            b.iter_with_large_drop(|| mode.open(&path, &keys));
        });
        let store = mode.open(&path, &keys);
        let child = fx.children[7].clone();
        c.bench_function(&format!("timeline_latest_50/{label}"), |b| {
            b.iter(|| {
                let page = store.timeline(black_box(&child), 50, None).unwrap();
                assert_eq!(page.len(), 50);
                page
            });
        });
    }
}

fn benches(c: &mut Criterion) {
    // Plain first: see the module comment.
    bench_mode(c, Mode::Plaintext);
    bench_mode(c, Mode::Sqlcipher);
}

criterion_group! {
    name = store;
    config = Criterion::default().sample_size(30).measurement_time(Duration::from_secs(6));
    targets = benches
}
criterion_main!(store);

//! Fault schedules: three tablets reach the server only through fault-injecting proxies (one per
//! tablet, see `sprig_e2e::proxy`) that delay, cut at random byte offsets, refuse and stall
//! connections; the server and the tablets' `sprig-device sync` processes are killed with SIGKILL
//! at random points — at a byte offset of a chosen exchange, or after a random delay — and the
//! server is restarted on the same data directory and port, sometimes only a few steps later.
//! Meanwhile the tablets record text observations and photos offline.
//!
//! Whenever the server is down, every photo a tablet has let go of (uploaded or purged) must be
//! durably on the server's disk with its SHA-256 and size. After a final fault-free round, the
//! three tablets and the server hold identical journals, every recorded observation is in each
//! tagged child's journal with its text and photo, and every photo is on the server.
//!
//! Each schedule is a seed: `SPRIG_FAULT_SEED=<n>` replays one, `SPRIG_FAULT_SCHEDULES=<n>` sets
//! how many run (seeds `first..first+n`, `first` fresh unless `SPRIG_FAULT_FIRST_SEED` is set).
//! The actions, the fates of each tablet's k-th connection and the kill points follow from the
//! seed; what the processes do around a delay-based kill depends on timing, so a replay takes
//! the same steps but may not cut at exactly the same instruction.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use sprig_e2e::proxy::{Counters, Direction, Proxy};
use sprig_e2e::{DeviceDir, Proc, Server};
use sprig_server::ServerStore;

use crate::{Recorded, Seen, check_item, check_nothing_lost, device_view, photo, server_view};

const PINS: [&str; 3] = ["2468", "3579", "4680"];
const CHILDREN: usize = 3;
/// Record-and-sync steps under faults per schedule.
const STEPS: usize = 6;
/// Schedules run by default (`make test`): 5–13 s each on 2 busy cores, about 3.5 min in all.
const DEFAULT_SCHEDULES: u64 = 24;
/// A sync that takes longer than this (the device's own timeouts are 15 s to connect and 120 s
/// of silence) counts as hung.
const SYNC_LIMIT: Duration = Duration::from_secs(180);

/// A tablet's view, from `sprig-device journal` of every child.
struct TabletState {
    /// Child → entry id → what it holds.
    journals: BTreeMap<String, BTreeMap<String, Seen>>,
    /// Photo SHA-256 → (state, size).
    photos: BTreeMap<String, (String, u64)>,
    /// Every journal item as printed.
    items: Vec<serde_json::Value>,
}

/// When a kill happens during a round of syncs.
#[derive(Debug, Clone, Copy)]
enum Trigger {
    /// When the given tablet's proxy has carried `offset` bytes one way on one connection (the
    /// connection is held there until the kill is done).
    Offset {
        tablet: usize,
        dir: Direction,
        offset: u64,
    },
    /// This long after the syncs started.
    After(Duration),
}

/// Who is killed.
#[derive(Debug, Clone, Copy)]
enum Victim {
    Server,
    Tablet(usize),
}

/// Totals over schedules, printed at the end.
#[derive(Debug, Default)]
struct Totals {
    schedules: u64,
    observations: u64,
    photos: u64,
    syncs_ok: u64,
    syncs_failed: u64,
    uploads_failed: u64,
    server_kills: u64,
    tablet_kills: u64,
    proxy: Counters,
}

/// One schedule's world: the server, three proxies and three tablets.
struct Schedule {
    seed: u64,
    rng: StdRng,
    _tmp: tempfile::TempDir,
    server: Server,
    proxies: Vec<Proxy>,
    tablets: Vec<DeviceDir>,
    staff: Vec<String>,
    children: Vec<String>,
    photos_dir: PathBuf,
    recorded: Vec<Recorded>,
    /// Photos a tablet has let go of (sha → (tablet, size)), to check on every later look.
    let_go: BTreeMap<String, (usize, u64)>,
    /// This schedule's fault rate per connection.
    fault_rate: f64,
    /// What happened, for the failure message.
    log: Vec<String>,
    t0: Instant,
    totals: Totals,
}

/// Prints the seed to replay when a schedule panics.
struct ReplayHint(u64);

impl Drop for ReplayHint {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "fault schedule {} FAILED: replay with SPRIG_FAULT_SEED={} scripts/with-keystore.sh \
                 cargo test --workspace --all-features --test e2e -- faults --nocapture",
                self.0, self.0
            );
        }
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| {
        v.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number"))
    })
}

/// The seeds to run: `SPRIG_FAULT_SEED` alone, else `SPRIG_FAULT_SCHEDULES` (default
/// [`DEFAULT_SCHEDULES`]) seeds from `SPRIG_FAULT_FIRST_SEED` (default: fresh).
fn seeds() -> Vec<u64> {
    if let Some(seed) = env_u64("SPRIG_FAULT_SEED") {
        return vec![seed];
    }
    let count = env_u64("SPRIG_FAULT_SCHEDULES").unwrap_or(DEFAULT_SCHEDULES);
    let first = env_u64("SPRIG_FAULT_FIRST_SEED").unwrap_or_else(|| {
        // Fresh each run, small enough to type; printed below.
        rand::rng().random_range(0..1_000_000_000)
    });
    eprintln!(
        "fault schedules: seeds {first}..{} (SPRIG_FAULT_FIRST_SEED={first} repeats this run)",
        first + count
    );
    (first..first + count).collect()
}

#[test]
fn fault_schedules_lose_nothing_and_converge() {
    let started = Instant::now();
    let mut totals = Totals::default();
    let verbose = std::env::var_os("SPRIG_FAULT_VERBOSE").is_some();
    for seed in seeds() {
        let hint = ReplayHint(seed);
        let t = Instant::now();
        let mut s = Schedule::new(seed, std::mem::take(&mut totals));
        s.run();
        if verbose {
            eprintln!("fault schedule {seed}: {}", s.log.join("; "));
        }
        totals = s.finish();
        drop(hint);
        eprintln!(
            "fault schedule {seed}: passed in {:.1} s",
            t.elapsed().as_secs_f64()
        );
    }
    let p = totals.proxy;
    eprintln!(
        "faults: {} observations ({} photos), syncs {} ok / {} failed, {} uploads failed, \
         {} server kills, {} tablet kills; proxy: {} connections, {} passed, {} delayed, \
         {} cut up + {} cut down (of {} planned), {} refused, {} stalled, {} with the server down, \
         {} held for a kill, {} KiB up, {} KiB down; {:.0} s",
        totals.observations,
        totals.photos,
        totals.syncs_ok,
        totals.syncs_failed,
        totals.uploads_failed,
        totals.server_kills,
        totals.tablet_kills,
        p.connections,
        p.passed,
        p.delayed,
        p.cut_up,
        p.cut_down,
        p.cut_planned,
        p.refused,
        p.stalled,
        p.server_down,
        p.held,
        p.bytes_up / 1024,
        p.bytes_down / 1024,
        started.elapsed().as_secs_f64()
    );
    // Proof that the faults happened at all (over a whole run, not per schedule: a short
    // schedule may by chance meet none).
    if totals.schedules >= 10 {
        assert!(p.cut_up + p.cut_down > 0, "no connection was ever cut");
        assert!(totals.server_kills > 0, "the server was never killed");
        assert!(totals.tablet_kills > 0, "no tablet sync was ever killed");
    }
    println!("fault schedules passed: {}", totals.schedules);
}

impl Schedule {
    fn new(seed: u64, totals: Totals) -> Schedule {
        let mut rng = StdRng::seed_from_u64(seed);
        let tmp = tempfile::tempdir().unwrap();
        let mut server = Server::init(tmp.path());
        let staff: Vec<String> = ["Amara Okafor", "Ben Ashdown", "Cleo Fenwick"]
            .iter()
            .zip(PINS)
            .map(|(name, pin)| server.staff(name, "practitioner", pin))
            .collect();
        let children: Vec<String> = (0..CHILDREN)
            .map(|i| server.child(&format!("Child {i}"), &staff[i % 3], true))
            .collect();
        server.start();
        // One proxy per tablet: its connections (and so their fates) depend on that tablet only.
        let proxies: Vec<Proxy> = (0..3)
            .map(|i| Proxy::start(server.addr(), seed.wrapping_mul(3).wrapping_add(i)))
            .collect();
        let tablets: Vec<DeviceDir> = (0..3)
            .map(|i| {
                let d = DeviceDir::new(tmp.path().join(format!("tablet-{i}")));
                let code = server.enrol_code(&format!("tablet {i}"), None);
                // Enrolled at the proxy's address: every later sync goes through it.
                d.enrol(&proxies[i].url(), &code);
                d.sync();
                d
            })
            .collect();
        let photos_dir = tmp.path().join("photos");
        std::fs::create_dir(&photos_dir).unwrap();
        let fault_rate = [0.3, 0.5, 0.8][rng.random_range(0..3)];
        Schedule {
            seed,
            rng,
            _tmp: tmp,
            server,
            proxies,
            tablets,
            staff,
            children,
            photos_dir,
            recorded: Vec::new(),
            let_go: BTreeMap::new(),
            fault_rate,
            log: vec![format!("fault rate {fault_rate}")],
            t0: Instant::now(),
            totals,
        }
    }

    /// A failure message: the seed and what happened so far.
    fn ctx(&self) -> String {
        format!("seed {}; steps: {}", self.seed, self.log.join("; "))
    }

    fn run(&mut self) {
        for step in 0..STEPS {
            self.log.push(format!("step {step}"));
            self.record_offline();
            if !self.server.is_running() && self.rng.random_bool(0.75) {
                self.server.start();
                self.log.push("server restarted".into());
            }
            for p in &self.proxies {
                p.set_fault_rate(self.fault_rate);
            }
            let mut who: Vec<usize> = (0..3).collect();
            who.shuffle(&mut self.rng);
            who.retain(|_| self.rng.random_bool(0.7));
            if who.is_empty() {
                who.push(self.rng.random_range(0..3));
            }
            let at_once = who.len() > 1 && self.rng.random_bool(0.4);
            let kill = self.plan_kill(&who);
            if at_once {
                self.sync_round(&who, kill);
            } else {
                // One after another; a planned kill happens during the sync of the tablet it
                // is tied to (the first one for a delay-based kill).
                for (i, &d) in who.clone().iter().enumerate() {
                    let k = kill.filter(|(v, t)| {
                        tied_to(*v, *t) == Some(d) || (i == 0 && tied_to(*v, *t).is_none())
                    });
                    self.sync_round(&[d], k);
                }
            }
            if !self.server.is_running() {
                self.check_let_go();
                if self.rng.random_bool(0.6) {
                    self.server.start();
                    self.log.push("server restarted".into());
                }
            } else if self.rng.random_bool(0.1) {
                // Killed between syncs, with nothing in flight.
                self.server.kill();
                self.totals.server_kills += 1;
                self.log.push("server killed while idle".into());
                self.check_let_go();
            }
        }
    }

    /// Some tablets record 1–2 observations each, some with a photo, some for two children.
    fn record_offline(&mut self) {
        for (d, pin) in PINS.iter().enumerate() {
            if !self.rng.random_bool(0.6) {
                continue;
            }
            for _ in 0..self.rng.random_range(1..=2) {
                let n = self.recorded.len();
                let mut kids = BTreeSet::from([self.rng.random_range(0..CHILDREN)]);
                if self.rng.random_bool(0.2) {
                    kids.insert(self.rng.random_range(0..CHILDREN));
                }
                let kids: BTreeSet<String> =
                    kids.iter().map(|&c| self.children[c].clone()).collect();
                let with_photo = self.rng.random_bool(0.4);
                let text = format!("Tablet {d}, note {n}: poured water from jug to jug");
                let file = with_photo.then(|| {
                    photo(
                        &self.photos_dir,
                        &format!("p{n}.jpg"),
                        u32::try_from(n).unwrap(),
                    )
                });
                let kid_refs: Vec<&str> = kids.iter().map(String::as_str).collect();
                let id = self.tablets[d].observe(
                    &self.staff[d],
                    pin,
                    &kid_refs,
                    &text,
                    &file.iter().map(PathBuf::as_path).collect::<Vec<_>>(),
                );
                self.recorded.push(Recorded {
                    id,
                    text,
                    children: kids,
                    photo: with_photo,
                    device: d,
                });
                self.totals.observations += 1;
                self.totals.photos += u64::from(with_photo);
            }
        }
    }

    /// Maybe a kill for this round: of the server or of a syncing tablet, at a byte offset of
    /// a syncing tablet's traffic or after a delay.
    fn plan_kill(&mut self, who: &[usize]) -> Option<(Victim, Trigger)> {
        let victim = match self.rng.random_range(0..10) {
            0..=2 if self.server.is_running() => Victim::Server,
            3..=6 => Victim::Tablet(who[self.rng.random_range(0..who.len())]),
            _ => return None,
        };
        let trigger = if self.rng.random_bool(0.7) {
            let tablet = match victim {
                Victim::Tablet(d) => d,
                Victim::Server => who[self.rng.random_range(0..who.len())],
            };
            let dir = if self.rng.random_bool(0.5) {
                Direction::Up
            } else {
                Direction::Down
            };
            // A sync session carries a few KiB each way, an upload a photo of tens of KiB up
            // and its acknowledgement down: small offsets land in handshakes and sync messages,
            // larger ones in uploads.
            let offset = match self.rng.random_range(0..3) {
                0 => self.rng.random_range(0..2048),
                1 => self.rng.random_range(0..8192),
                _ => self.rng.random_range(0..32 * 1024),
            };
            Trigger::Offset {
                tablet,
                dir,
                offset,
            }
        } else {
            // A sync takes tens to hundreds of milliseconds here.
            Trigger::After(Duration::from_millis(self.rng.random_range(0..300)))
        };
        Some((victim, trigger))
    }

    /// Runs `sprig-device sync` on `who` at once, carrying out `kill` when its trigger fires,
    /// and waits for all of them.
    fn sync_round(&mut self, who: &[usize], kill: Option<(Victim, Trigger)>) {
        let mut pending = kill;
        if let Some((
            _,
            Trigger::Offset {
                tablet,
                dir,
                offset,
            },
        )) = pending
        {
            self.proxies[tablet].arm(dir, offset);
        }
        let start = Instant::now();
        let mut procs: Vec<(usize, Proc)> = who
            .iter()
            .map(|&d| (d, self.tablets[d].spawn_sync()))
            .collect();
        let mut killed: BTreeSet<usize> = BTreeSet::new();
        let mut outputs = Vec::new();
        self.log.push(format!(
            "sync {who:?} at {:.2} s",
            self.t0.elapsed().as_secs_f64()
        ));
        while !procs.is_empty() {
            if let Some((victim, trigger)) = pending {
                let fire = match trigger {
                    Trigger::Offset { tablet, .. } => self.proxies[tablet].is_holding(),
                    Trigger::After(d) => start.elapsed() >= d,
                };
                if fire {
                    match victim {
                        Victim::Server => {
                            self.server.kill();
                            self.totals.server_kills += 1;
                        }
                        Victim::Tablet(d) => {
                            if let Some((_, p)) = procs.iter_mut().find(|(x, _)| *x == d) {
                                p.kill();
                                killed.insert(d);
                                self.totals.tablet_kills += 1;
                            }
                        }
                    }
                    self.log.push(format!("killed {victim:?} at {trigger:?}"));
                    if let Trigger::Offset { tablet, .. } = trigger {
                        self.proxies[tablet].release();
                    }
                    pending = None;
                }
            }
            let mut i = 0;
            while i < procs.len() {
                let (d, p) = &mut procs[i];
                let d = *d;
                if killed.contains(&d) {
                    procs.remove(i);
                    continue;
                }
                if matches!(p.child().try_wait(), Ok(Some(_))) {
                    let out = p.wait_timeout(Duration::ZERO).expect("exited");
                    outputs.push((d, out, start.elapsed()));
                    procs.remove(i);
                    continue;
                }
                i += 1;
            }
            assert!(
                start.elapsed() < SYNC_LIMIT,
                "{}: the syncs of {who:?} hung",
                self.ctx()
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        if let Some((_, Trigger::Offset { tablet, .. })) = pending {
            // Never reached (the exchange was shorter, or cut first).
            self.proxies[tablet].disarm();
            self.log.push(format!("kill {pending:?} not reached"));
        }
        for (d, out, took) in outputs {
            let took = format!("{:.2} s", took.as_secs_f64());
            if out.status.success() {
                let r: serde_json::Value =
                    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
                        panic!(
                            "{}: tablet {d}'s sync printed no JSON ({e}): {:?}",
                            self.ctx(),
                            String::from_utf8_lossy(&out.stdout)
                        )
                    });
                let failed = r["media_failed"].as_u64().unwrap();
                self.totals.syncs_ok += 1;
                self.totals.uploads_failed += failed;
                let why: Vec<&str> = r["media_errors"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|e| e["error"].as_str())
                    .collect();
                self.log.push(format!(
                    "tablet {d} synced in {took} ({failed} uploads failed: {why:?})"
                ));
            } else {
                // The CLI contract holds under faults too: nothing on stdout, one line on stderr.
                let err = String::from_utf8_lossy(&out.stderr);
                assert!(
                    out.stdout.is_empty() && err.trim_end().lines().count() == 1,
                    "{}: tablet {d}'s failed sync broke the one-line error contract ({}): \
                     stdout {:?}, stderr {err:?}",
                    self.ctx(),
                    out.status,
                    String::from_utf8_lossy(&out.stdout)
                );
                self.totals.syncs_failed += 1;
                self.log
                    .push(format!("tablet {d} failed in {took}: {}", err.trim_end()));
            }
        }
    }

    /// Every child's journal on tablet `d`.
    fn tablet_state(&self, d: usize) -> TabletState {
        let mut journals = BTreeMap::new();
        let mut photos = BTreeMap::new();
        let mut items_all = Vec::new();
        for child in &self.children {
            let items = self.tablets[d].journal(&self.staff[d], PINS[d], child);
            for m in items.iter().flat_map(|i| i["media"].as_array().unwrap()) {
                photos.insert(
                    m["sha256"].as_str().unwrap().to_owned(),
                    (
                        m["state"].as_str().unwrap().to_owned(),
                        m["size"].as_u64().unwrap(),
                    ),
                );
            }
            journals.insert(child.clone(), device_view(&items));
            items_all.extend(items);
        }
        TabletState {
            journals,
            photos,
            items: items_all,
        }
    }

    /// With the server down: every photo any tablet has let go of (now or before) is on the
    /// server's disk with its SHA-256 and size, and recorded in its database.
    fn check_let_go(&mut self) {
        assert!(!self.server.is_running());
        for d in 0..3 {
            for (sha, (state, size)) in self.tablet_state(d).photos {
                match state.as_str() {
                    "captured" | "remote" => {}
                    "uploaded" | "purged" => {
                        self.let_go.insert(sha, (d, size));
                    }
                    other => panic!("{}: tablet {d}: photo {sha} is {other}", self.ctx()),
                }
            }
        }
        for (sha, &(d, size)) in &self.let_go {
            assert!(
                server_holds_exactly(&self.server.data, sha, size),
                "{}: tablet {d} let go of photo {sha} ({size} bytes) but the server does not \
                 durably hold it",
                self.ctx()
            );
        }
    }

    /// A fault-free round, then every check; returns the totals with this schedule's added.
    fn finish(mut self) -> Totals {
        if !self.server.is_running() {
            self.check_let_go();
            self.server.start();
        }
        for p in &self.proxies {
            p.set_fault_rate(0.0);
        }
        // Two full passes: the first brings everything to the server, the second to every
        // tablet.
        for pass in 0..2 {
            let mut order: Vec<usize> = (0..3).collect();
            order.shuffle(&mut self.rng);
            for d in order {
                let run = self.tablets[d].cmd("sync", &[]);
                assert!(
                    run.ok(),
                    "{}: fault-free sync {pass} of tablet {d} failed: {}",
                    self.ctx(),
                    run.stderr()
                );
                let r = run.json();
                assert_eq!(
                    r["media_failed"],
                    0,
                    "{}: fault-free sync of tablet {d}: {r}",
                    self.ctx()
                );
            }
        }
        let ctx = self.ctx();

        // Every tablet: nothing pending, the same journals, each entry tagged as recorded, its
        // own photos purged and the others' remote.
        let mut views = Vec::new();
        let mut all_photos: BTreeMap<String, u64> = BTreeMap::new();
        for d in 0..3 {
            let status = self.tablets[d].status();
            assert_eq!(status["pending_media"], 0, "{ctx}: tablet {d}: {status}");
            assert_eq!(status["uploaded_media"], 0, "{ctx}: tablet {d}: {status}");
            let TabletState {
                journals,
                photos,
                items,
            } = self.tablet_state(d);
            for item in &items {
                check_item(&ctx, &self.recorded, d, item);
            }
            for (sha, (_, size)) in photos {
                all_photos.insert(sha, size);
            }
            views.push(journals);
        }
        assert_eq!(views[0], views[1], "{ctx}: tablets 0 and 1 differ");
        assert_eq!(views[0], views[2], "{ctx}: tablets 0 and 2 differ");

        // Nothing lost: every observation in every tagged child's journal, with text and photo.
        check_nothing_lost(&ctx, &self.recorded, &views[0]);
        assert_eq!(
            all_photos.len(),
            self.recorded.iter().filter(|r| r.photo).count(),
            "{ctx}: photos"
        );

        // The server: the same journals, every photo byte-exact.
        self.server.kill();
        for child in &self.children {
            assert_eq!(
                server_view(&self.server.data, child),
                views[0][child],
                "{ctx}: the server's journal of {child} differs from the tablets'"
            );
        }
        for (sha, size) in &all_photos {
            assert!(
                server_holds_exactly(&self.server.data, sha, *size),
                "{ctx}: the server lacks photo {sha} ({size} bytes)"
            );
        }
        for p in &self.proxies {
            self.totals.proxy += p.counters();
        }
        self.totals.schedules += 1;
        self.totals
    }
}

/// The tablet a kill's trigger watches, if any.
fn tied_to(victim: Victim, trigger: Trigger) -> Option<usize> {
    match (victim, trigger) {
        (_, Trigger::Offset { tablet, .. }) | (Victim::Tablet(tablet), Trigger::After(_)) => {
            Some(tablet)
        }
        (Victim::Server, Trigger::After(_)) => None,
    }
}

/// Whether the server durably holds `sha` with `size` bytes: the file under `media/` hashes to
/// `sha` and has that size, and its database records the same. Call while `serve` is down.
fn server_holds_exactly(data: &std::path::Path, sha: &str, size: u64) -> bool {
    if !crate::server_holds(data, sha) {
        return false;
    }
    let file = data.join("media").join(&sha[..2]).join(sha);
    let on_disk = std::fs::metadata(&file).map_or(0, |m| m.len());
    let store = sprig_server::DataDir::new(data).open_store().unwrap();
    let recorded = store.media(sha).unwrap().map(|m| m.size);
    on_disk == size && recorded == Some(size)
}

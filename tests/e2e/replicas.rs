//! Two `sprig-server serve` replicas of a hosted deployment — one Postgres database, one S3
//! object store (s3s-fs), one public URL — and real `sprig-device` tablets that reach them
//! through one load balancer (`sprig_e2e::hosted`): the balancer sends each connection to the
//! replica the test chose (seeded), or round-robin, and a killed replica's connections to the
//! other. Run under `scripts/with-postgres.sh scripts/with-keystore.sh` with `SPRIG_S3S_FS` set
//! (as `make test` does); without Postgres or s3s-fs they fail.
//!
//! - `tablets_converge_through_two_replicas`: three tablets record text and photos offline and
//!   sync in seeded random orders, each sync through replica 0, replica 1 or both in turn
//!   (round-robin per connection, so one sync's session and uploads land on different
//!   replicas), sometimes all at once. Afterwards every tablet and the database hold the same
//!   journals, each observation exactly once in each tagged child's journal, every photo was
//!   acknowledged exactly once and is in the bucket byte-exact.
//! - `a_replica_killed_mid_sync_loses_nothing`: a tablet syncs photos of a few hundred KiB
//!   through one replica; the balancer holds that connection once the tablet has sent a seeded
//!   number of bytes on it, the replica is killed with SIGKILL while it is held, then the
//!   connection goes on into the dead replica. Every photo the tablet let go of is then in the
//!   database and the bucket; its next sync (through the same public URL) reaches the other
//!   replica and completes. Another tablet syncs through both replicas under the fault proxy's
//!   cuts, delays and stalls meanwhile. The killed replica restarts; everything converges.
//!
//! A revoke through the CLI reaching an open watch on the other replica is proved in
//! `sync-server/tests/server/hosted.rs` (`two_serve_processes_on_postgres_and_s3`), which prints
//! how long it took.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use sha2::Digest;
use sprig_e2e::hosted::Hosted;
use sprig_e2e::proxy::{Direction, Route};
use sprig_e2e::{DeviceDir, Proc, seed};
use sprig_server::ServerStore;

use crate::{
    Recorded, big_photo, check_item, check_nothing_lost, device_view, photo, stored_journal,
};

const PINS: [&str; 3] = ["2468", "3579", "4680"];
const CHILDREN: usize = 3;
/// A sync (or the end of one whose replica died) taking longer than this counts as hung.
const SYNC_LIMIT: Duration = Duration::from_secs(120);

/// One test's deployment and tablets.
struct World {
    seed: u64,
    rng: StdRng,
    hosted: Hosted,
    tablets: Vec<DeviceDir>,
    staff: Vec<String>,
    children: Vec<String>,
    photos_dir: PathBuf,
    recorded: Vec<Recorded>,
    /// `media_uploaded` summed over every completed sync.
    acked: u64,
    /// `media_purged` summed over every completed sync.
    purged: u64,
    /// What happened, for failure messages.
    log: Vec<String>,
    _tmp: tempfile::TempDir,
}

impl World {
    /// A deployment with both replicas running and `tablets` tablets enrolled at its public
    /// URL, each synced once.
    fn new(test: &str, tablets: usize) -> World {
        let seed = seed(test);
        let tmp = tempfile::tempdir().unwrap();
        let mut hosted = Hosted::init(tmp.path(), 2, seed);
        let staff: Vec<String> = ["Amara Okafor", "Ben Ashdown", "Cleo Fenwick"]
            .iter()
            .zip(PINS)
            .map(|(name, pin)| hosted.cli.staff(name, "practitioner", pin))
            .collect();
        let children: Vec<String> = (0..CHILDREN)
            .map(|i| hosted.cli.child(&format!("Child {i}"), &staff[i % 3], true))
            .collect();
        hosted.start_all();
        let tablets: Vec<DeviceDir> = (0..tablets)
            .map(|i| {
                let d = DeviceDir::new(tmp.path().join(format!("tablet-{i}")));
                let code = hosted.cli.enrol_code(&format!("tablet {i}"), None);
                d.enrol(&hosted.url(), &code);
                d.sync();
                d
            })
            .collect();
        let photos_dir = tmp.path().join("photos");
        std::fs::create_dir(&photos_dir).unwrap();
        World {
            seed,
            rng: StdRng::seed_from_u64(seed),
            hosted,
            tablets,
            staff,
            children,
            photos_dir,
            recorded: Vec::new(),
            acked: 0,
            purged: 0,
            log: Vec::new(),
            _tmp: tmp,
        }
    }

    /// A failure message: the seed and what happened so far.
    fn ctx(&self) -> String {
        format!(
            "seed {} (replay with SPRIG_E2E_SEED={}); steps: {}",
            self.seed,
            self.seed,
            self.log.join("; ")
        )
    }

    /// Tablet `d` records one observation of one or two children, with `file` attached.
    fn record(&mut self, d: usize, file: Option<&std::path::Path>) {
        let n = self.recorded.len();
        let mut kids = BTreeSet::from([self.rng.random_range(0..CHILDREN)]);
        if self.rng.random_bool(0.25) {
            kids.insert(self.rng.random_range(0..CHILDREN));
        }
        let kids: BTreeSet<String> = kids.iter().map(|&c| self.children[c].clone()).collect();
        let text = format!("Tablet {d}, note {n}: rolled cars down the ramp");
        let kid_refs: Vec<&str> = kids.iter().map(String::as_str).collect();
        let id = self.tablets[d].observe(
            &self.staff[d],
            PINS[d],
            &kid_refs,
            &text,
            &file.into_iter().collect::<Vec<_>>(),
        );
        self.recorded.push(Recorded {
            id,
            text,
            children: kids,
            photo: file.is_some(),
            device: d,
        });
    }

    /// Tablet `d` records 1–2 observations, each with a small photo at `photo_rate`.
    fn record_some(&mut self, d: usize, photo_rate: f64) {
        for _ in 0..self.rng.random_range(1..=2) {
            let n = self.recorded.len();
            let file = self.rng.random_bool(photo_rate).then(|| {
                photo(
                    &self.photos_dir,
                    &format!("p{n}.jpg"),
                    u32::try_from(n).unwrap(),
                )
            });
            self.record(d, file.as_deref());
        }
    }

    /// Counts a completed sync's report: every upload acknowledged.
    fn count(&mut self, d: usize, report: &Value) {
        assert_eq!(
            report["media_failed"],
            0,
            "{}: tablet {d}: {report}",
            self.ctx()
        );
        self.acked += report["media_uploaded"].as_u64().unwrap();
        self.purged += report["media_purged"].as_u64().unwrap();
    }

    /// Tablet `d` syncs through `route`; it must complete.
    fn sync_via(&mut self, d: usize, route: Route) {
        self.hosted.balancer.set_route(route);
        self.log.push(format!("tablet {d} syncs via {route:?}"));
        let run = self.tablets[d].cmd("sync", &[]);
        assert!(
            run.ok(),
            "{}: tablet {d}'s sync failed: {}",
            self.ctx(),
            run.stderr()
        );
        self.count(d, &run.json());
    }

    /// Waits for a spawned sync of tablet `d`: `Ok(report)` when it completed, `Err(line)` when
    /// it failed (with the CLI's contract: nothing on stdout, one line on stderr).
    fn finish_sync(&self, d: usize, mut p: Proc) -> Result<Value, String> {
        let out = p
            .wait_timeout(SYNC_LIMIT)
            .unwrap_or_else(|| panic!("{}: tablet {d}'s sync hung", self.ctx()));
        if out.status.success() {
            return Ok(serde_json::from_slice(&out.stdout).unwrap());
        }
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.stdout.is_empty() && err.trim_end().lines().count() == 1,
            "{}: tablet {d}'s failed sync broke the one-line error contract: {:?} / {err:?}",
            self.ctx(),
            String::from_utf8_lossy(&out.stdout)
        );
        Err(err.trim_end().to_owned())
    }

    /// Every photo of tablet `d`: SHA-256 → (state, size).
    fn photos_of(&self, d: usize) -> BTreeMap<String, (String, u64)> {
        let mut photos = BTreeMap::new();
        for child in &self.children {
            for item in self.tablets[d].journal(&self.staff[d], PINS[d], child) {
                for m in item["media"].as_array().unwrap() {
                    photos.insert(
                        m["sha256"].as_str().unwrap().to_owned(),
                        (
                            m["state"].as_str().unwrap().to_owned(),
                            m["size"].as_u64().unwrap(),
                        ),
                    );
                }
            }
        }
        photos
    }

    /// Whether the deployment durably holds photo `sha` of `size` bytes: recorded in the
    /// database with that size, and an object in the bucket with exactly those bytes.
    fn holds(&self, store: &dyn ServerStore, sha: &str, size: u64) -> Result<(), String> {
        let recorded = store.media(sha).unwrap().map(|m| m.size);
        if recorded != Some(size) {
            return Err(format!("the database records {recorded:?} bytes"));
        }
        let object = self.hosted.media_object(sha);
        let bytes = std::fs::read(&object)
            .map_err(|e| format!("no object {} in the bucket ({e})", object.display()))?;
        if bytes.len() as u64 != size || hex::encode(sha2::Sha256::digest(&bytes)) != sha {
            return Err(format!(
                "the bucket's object holds {} other bytes",
                bytes.len()
            ));
        }
        Ok(())
    }

    /// Every photo a tablet has let go of (uploaded, acknowledged, purged) is durably held.
    fn check_let_go(&self) {
        let store = self.hosted.store();
        for d in 0..self.tablets.len() {
            for (sha, (state, size)) in self.photos_of(d) {
                match state.as_str() {
                    "captured" | "remote" => {}
                    "uploaded" | "purged" => {
                        if let Err(why) = self.holds(&store, &sha, size) {
                            panic!(
                                "{}: tablet {d} let go of photo {sha} ({state}) but {why}",
                                self.ctx()
                            );
                        }
                    }
                    other => panic!("{}: tablet {d}: photo {sha} is {other}", self.ctx()),
                }
            }
        }
    }

    /// Starts tablet 0's sync (routed to `victim`) and kills `victim` while the balancer holds
    /// the first connection on which the tablet has sent a seeded number of bytes: half the
    /// time a small offset, in the TLS handshake or the sync session's messages (or, past a
    /// short session, the first upload), else one inside a photo upload of a few hundred KiB.
    /// So the sync is always in flight on the victim at the kill (one that ends first fails
    /// the test). The connection then goes on into the dead replica.
    fn kill_held(&mut self, victim: usize) -> Proc {
        let offset = if self.rng.random_bool(0.5) {
            self.rng.random_range(256..4096)
        } else {
            self.rng.random_range(4096..160 * 1024)
        };
        self.hosted.balancer.arm(Direction::Up, offset);
        let mut sync = self.tablets[0].spawn_sync();
        let start = Instant::now();
        while !self.hosted.balancer.is_holding() {
            assert!(
                matches!(sync.child().try_wait(), Ok(None)),
                "{}: tablet 0's sync ended before sending {offset} bytes on one connection",
                self.ctx()
            );
            assert!(start.elapsed() < SYNC_LIMIT, "{}: never held", self.ctx());
            std::thread::sleep(Duration::from_millis(2));
        }
        self.hosted.kill(victim);
        self.hosted.balancer.release();
        self.log.push(format!(
            "replica {victim} killed with tablet 0's connection held at {offset} bytes up"
        ));
        sync
    }

    /// Starts tablet 0's sync (routed to `victim`) and kills `victim` as soon as the database
    /// records the first or second of the tablet's not yet uploaded photos: the answer to that
    /// upload may not have reached the tablet, which then sends it again (to the other
    /// replica). Usually the next upload is under way; the log says whether the sync was still
    /// running.
    fn kill_after_stored(&mut self, victim: usize) -> Proc {
        let waiting: Vec<String> = self
            .photos_of(0)
            .into_iter()
            .filter(|(_, (state, _))| state == "captured")
            .map(|(sha, _)| sha)
            .collect();
        let want = self.rng.random_range(1..=2).min(waiting.len());
        let store = self.hosted.store();
        let mut sync = self.tablets[0].spawn_sync();
        let start = Instant::now();
        loop {
            let stored = waiting
                .iter()
                .filter(|sha| store.media(sha).unwrap().is_some())
                .count();
            let running = matches!(sync.child().try_wait(), Ok(None));
            if stored >= want || !running {
                self.hosted.kill(victim);
                self.log.push(format!(
                    "replica {victim} killed once {stored} of {} photos were stored (sync {})",
                    waiting.len(),
                    if running { "running" } else { "already ended" }
                ));
                return sync;
            }
            assert!(start.elapsed() < SYNC_LIMIT, "{}: never stored", self.ctx());
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Two fault-free passes through both replicas in turn, then every check: the tablets and
    /// the database hold the same journals, each observation exactly once in each tagged
    /// child's, every photo in the database and byte-exact in the bucket, nothing else there.
    fn converge(&mut self) {
        self.hosted.balancer.set_fault_rate(0.0);
        for _ in 0..2 {
            let mut order: Vec<usize> = (0..self.tablets.len()).collect();
            order.shuffle(&mut self.rng);
            for d in order {
                self.sync_via(d, Route::RoundRobin);
            }
        }
        let ctx = self.ctx();
        let mut views = Vec::new();
        let mut all_photos: BTreeMap<String, u64> = BTreeMap::new();
        for (d, tablet) in self.tablets.iter().enumerate() {
            let status = tablet.status();
            assert_eq!(status["pending_media"], 0, "{ctx}: tablet {d}: {status}");
            assert_eq!(status["uploaded_media"], 0, "{ctx}: tablet {d}: {status}");
            let mut journals = BTreeMap::new();
            for child in &self.children {
                let items = tablet.journal(&self.staff[d], PINS[d], child);
                let view = device_view(&items);
                assert_eq!(
                    view.len(),
                    items.len(),
                    "{ctx}: tablet {d} lists an entry twice in {child}'s journal"
                );
                for item in &items {
                    check_item(&ctx, &self.recorded, d, item);
                    for m in item["media"].as_array().unwrap() {
                        all_photos.insert(
                            m["sha256"].as_str().unwrap().to_owned(),
                            m["size"].as_u64().unwrap(),
                        );
                    }
                }
                journals.insert(child.clone(), view);
            }
            views.push(journals);
        }
        for (d, v) in views.iter().enumerate().skip(1) {
            assert_eq!(&views[0], v, "{ctx}: tablets 0 and {d} differ");
        }
        check_nothing_lost(&ctx, &self.recorded, &views[0]);
        let photos = self.recorded.iter().filter(|r| r.photo).count();
        assert_eq!(all_photos.len(), photos, "{ctx}: photos");

        // The database (read while both replicas run: it is the shared truth) and the bucket.
        let store = self.hosted.store();
        for child in &self.children {
            assert_eq!(
                stored_journal(&store, child),
                views[0][child],
                "{ctx}: the database's journal of {child} differs from the tablets'"
            );
        }
        for (sha, size) in &all_photos {
            if let Err(why) = self.holds(&store, sha, *size) {
                panic!("{ctx}: photo {sha}: {why}");
            }
        }
        let objects = sprig_e2e::files_under(&self.hosted.media_dir());
        assert_eq!(
            objects.len(),
            photos,
            "{ctx}: the bucket holds other media objects than the photos: {objects:?}"
        );
        let served = self.hosted.balancer.served();
        assert!(
            served.iter().all(|&n| n > 0),
            "{ctx}: a replica never served: {served:?}"
        );
        eprintln!(
            "seed {}: {} observations ({photos} photos, {} acknowledged), connections per \
             replica {served:?}, {:?}",
            self.seed,
            self.recorded.len(),
            self.acked,
            self.hosted.balancer.counters()
        );
    }
}

/// A seeded route for one sync: either replica, or both in turn.
fn some_route(rng: &mut StdRng) -> Route {
    match rng.random_range(0..3) {
        0 => Route::To(0),
        1 => Route::To(1),
        _ => Route::RoundRobin,
    }
}

#[test]
fn tablets_converge_through_two_replicas() {
    let t = Instant::now();
    let mut w = World::new("tablets_converge_through_two_replicas", 3);
    for round in 0..3 {
        w.log.push(format!("round {round}"));
        for d in 0..3 {
            w.record_some(d, 0.4);
        }
        let mut order: Vec<usize> = (0..3).collect();
        order.shuffle(&mut w.rng);
        order.retain(|_| w.rng.random_bool(0.8));
        if order.len() > 1 && w.rng.random_bool(0.3) {
            // All at once, their connections spread over both replicas.
            w.hosted.balancer.set_route(Route::RoundRobin);
            w.log.push(format!("tablets {order:?} sync at once"));
            let running: Vec<(usize, Proc)> = order
                .iter()
                .map(|&d| (d, w.tablets[d].spawn_sync()))
                .collect();
            for (d, p) in running {
                let report = w
                    .finish_sync(d, p)
                    .unwrap_or_else(|e| panic!("{}: tablet {d}: {e}", w.ctx()));
                w.count(d, &report);
            }
        } else {
            for d in order {
                let route = some_route(&mut w.rng);
                w.sync_via(d, route);
            }
        }
    }
    w.converge();
    // Without faults or kills each photo is uploaded and acknowledged once, through whichever
    // replica, and purged once from its tablet.
    let photos = w.recorded.iter().filter(|r| r.photo).count() as u64;
    assert_eq!(
        (w.acked, w.purged),
        (photos, photos),
        "{}: every photo acknowledged and purged exactly once",
        w.ctx()
    );
    eprintln!(
        "tablets_converge_through_two_replicas: {:.1} s",
        t.elapsed().as_secs_f64()
    );
}

#[test]
fn a_replica_killed_mid_sync_loses_nothing() {
    let t = Instant::now();
    let mut w = World::new("a_replica_killed_mid_sync_loses_nothing", 2);
    let mut variant = 0;
    // Each replica killed twice, in a seeded order: once while the balancer holds the tablet's
    // connection at a byte offset, once just after the deployment stored one of its photos.
    let mut kills = [(0usize, true), (1, true), (0, false), (1, false)];
    kills.shuffle(&mut w.rng);
    for (victim, held) in kills {
        let other = 1 - victim;
        w.log.push(format!("replica {victim} to be killed"));
        for _ in 0..3 {
            variant += 1;
            let file = big_photo(&w.photos_dir, variant);
            w.record(0, Some(&file));
        }
        w.record_some(1, 0.5);
        w.hosted.balancer.set_route(Route::To(victim));
        let sync = if held {
            w.kill_held(victim)
        } else {
            w.kill_after_stored(victim)
        };
        let outcome = w.finish_sync(0, sync);
        w.log.push(format!("tablet 0's sync: {outcome:?}"));
        if let Ok(report) = &outcome {
            // The session may have completed before the held upload; that upload failed.
            w.acked += report["media_uploaded"].as_u64().unwrap();
        }
        w.check_let_go();

        // Meanwhile tablet 1 syncs twice through both replicas (one of them dead) under faults.
        w.hosted.balancer.set_fault_rate(0.5);
        w.hosted.balancer.set_route(Route::RoundRobin);
        for _ in 0..2 {
            let p = w.tablets[1].spawn_sync();
            let faulted = w.finish_sync(1, p);
            if let Ok(report) = &faulted {
                w.acked += report["media_uploaded"].as_u64().unwrap();
            }
            w.log.push(format!("tablet 1 under faults: {faulted:?}"));
        }
        w.hosted.balancer.set_fault_rate(0.0);
        w.check_let_go();

        // Tablet 0 retries at the same public URL, routed to the victim: the balancer finds it
        // dead and sends the connections to the other replica; the sync completes.
        let b = &w.hosted.balancer;
        let before = (b.counters().redispatched, b.served()[other]);
        w.sync_via(0, Route::To(victim));
        let b = &w.hosted.balancer;
        let after = (b.counters().redispatched, b.served()[other]);
        assert!(
            after.0 > before.0 && after.1 > before.1,
            "{}: the retry did not go through replica {other}: {before:?} → {after:?}",
            w.ctx()
        );
        w.check_let_go();
        w.hosted.start(victim);
        w.log.push(format!("replica {victim} restarted"));
    }
    // Every photo ends purged from its tablet (so acknowledged) and held: `converge` checks.
    // Acknowledgements are not counted exactly here: a sync cut by a kill prints no report.
    w.converge();
    eprintln!(
        "a_replica_killed_mid_sync_loses_nothing: {}; {:.1} s",
        w.log.join("; "),
        t.elapsed().as_secs_f64()
    );
}

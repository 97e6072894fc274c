//! Three enrolled tablets record offline — some on the same child at the same time, some with
//! photos, some group observations — and sync in seeded random orders; afterwards the three
//! tablets and the server hold the same journals and nothing recorded is missing.

use std::collections::{BTreeMap, BTreeSet};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use sprig_e2e::{DeviceDir, Server, seed};

use crate::{Seen, device_view, photo, server_holds, server_view, tagged};

const PINS: [&str; 3] = ["2468", "3579", "4680"];
const CHILDREN: usize = 4;
const ROUNDS: usize = 3;

/// What a test recorded, to check every replica against.
struct Recorded {
    seen: Seen,
    children: BTreeSet<String>,
    photo: bool,
    device: usize,
}

#[test]
fn three_devices_record_offline_and_converge_in_random_orders() {
    let seed = seed("three_devices_record_offline_and_converge_in_random_orders");
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

    let devices: Vec<DeviceDir> = (0..3)
        .map(|i| {
            let d = DeviceDir::new(tmp.path().join(format!("tablet-{i}")));
            let code = server.enrol_code(&format!("tablet {i}"), None);
            d.enrol(&server.url(), &code);
            let first = d.sync();
            assert!(first["docs_changed"].as_u64().unwrap() >= 2, "{first}");
            d
        })
        .collect();
    assert_eq!(server.devices().len(), 3);

    let photos = tmp.path().join("photos");
    std::fs::create_dir(&photos).unwrap();
    let mut recorded: Vec<Recorded> = Vec::new();
    let mut syncs = Vec::new();
    for round in 0..ROUNDS {
        // Everyone records offline first: the same child on all three tablets, in this round.
        for (d, dev) in devices.iter().enumerate() {
            for k in 0..rng.random_range(1..=3) {
                let mut kids = BTreeSet::from([if k == 0 {
                    0
                } else {
                    rng.random_range(0..CHILDREN)
                }]);
                if rng.random_bool(0.25) {
                    kids.insert(rng.random_range(0..CHILDREN));
                }
                let kids: BTreeSet<String> = kids.iter().map(|&c| children[c].clone()).collect();
                let n = recorded.len();
                let with_photo = rng.random_bool(0.4);
                let text =
                    format!("Round {round}, tablet {d}, note {n}: built a tower of {n} bricks");
                let file = with_photo
                    .then(|| photo(&photos, &format!("p{n}.jpg"), u32::try_from(n).unwrap()));
                let kid_refs: Vec<&str> = kids.iter().map(String::as_str).collect();
                let id = dev.observe(
                    &staff[d],
                    PINS[d],
                    &kid_refs,
                    &text,
                    &file
                        .iter()
                        .map(std::path::PathBuf::as_path)
                        .collect::<Vec<_>>(),
                );
                recorded.push(Recorded {
                    seen: Seen {
                        id,
                        text,
                        media: Vec::new(),
                    },
                    children: kids,
                    photo: with_photo,
                    device: d,
                });
            }
        }
        // Then they sync in a random order, or all at once; some stay offline this round.
        let mut order: Vec<usize> = (0..3).collect();
        order.shuffle(&mut rng);
        order.retain(|_| rng.random_bool(0.7));
        if rng.random_bool(0.3) {
            let running: Vec<_> = order.iter().map(|&d| devices[d].spawn_sync()).collect();
            for (mut p, &d) in running.into_iter().zip(&order) {
                let out = p
                    .wait_timeout(std::time::Duration::from_secs(120))
                    .unwrap_or_else(|| panic!("seed {seed}: tablet {d}'s sync hung"));
                let text = String::from_utf8_lossy(&out.stdout);
                assert!(
                    out.status.success(),
                    "seed {seed}: concurrent sync of tablet {d}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                let r: serde_json::Value = serde_json::from_str(&text).unwrap();
                assert_eq!(r["media_failed"], 0, "seed {seed}: {r}");
            }
            syncs.push(format!("{order:?} at once"));
        } else {
            for d in order {
                let r = devices[d].sync();
                assert_eq!(r["media_failed"], 0, "seed {seed}: {r}");
                syncs.push(d.to_string());
            }
        }
    }
    // Two full passes: the first brings everything to the server, the second to every tablet.
    for _ in 0..2 {
        let mut order: Vec<usize> = (0..3).collect();
        order.shuffle(&mut rng);
        for d in order {
            let r = devices[d].sync();
            assert_eq!(r["media_failed"], 0, "seed {seed}: {r}");
            syncs.push(d.to_string());
        }
    }
    eprintln!(
        "seed {seed}: {} observations ({} with photos), syncs in order {syncs:?}",
        recorded.len(),
        recorded.iter().filter(|r| r.photo).count()
    );

    // Every tablet: the same journals, each holding exactly what was recorded for that child.
    let mut views: Vec<BTreeMap<String, BTreeMap<String, Seen>>> = Vec::new();
    for (d, dev) in devices.iter().enumerate() {
        let status = dev.status();
        assert_eq!(
            status["pending_media"], 0,
            "seed {seed}: tablet {d}: {status}"
        );
        let mut per_child = BTreeMap::new();
        for child in &children {
            let items = dev.journal(&staff[d], PINS[d], child);
            for item in &items {
                let id = item["id"].as_str().unwrap();
                let rec = recorded
                    .iter()
                    .find(|r| r.seen.id == id)
                    .unwrap_or_else(|| panic!("seed {seed}: tablet {d} holds unknown entry {id}"));
                assert_eq!(tagged(item), rec.children, "seed {seed}: children of {id}");
                for m in item["media"].as_array().unwrap() {
                    let want = if rec.device == d { "purged" } else { "remote" };
                    assert_eq!(m["state"], want, "seed {seed}: tablet {d}, {id}: {m}");
                }
            }
            per_child.insert(child.clone(), device_view(&items));
        }
        views.push(per_child);
    }
    assert_eq!(views[0], views[1], "seed {seed}: tablets 0 and 1 differ");
    assert_eq!(views[0], views[2], "seed {seed}: tablets 0 and 2 differ");

    // Nothing lost: every recorded observation is in every tagged child's journal, with its text
    // and its photo.
    for rec in &recorded {
        for child in &rec.children {
            let got = views[0][child].get(&rec.seen.id).unwrap_or_else(|| {
                panic!("seed {seed}: {} lost from {child}'s journal", rec.seen.id)
            });
            assert_eq!(got.text, rec.seen.text, "seed {seed}");
            assert_eq!(got.media.len(), usize::from(rec.photo), "seed {seed}");
        }
        let in_journals = views[0]
            .values()
            .filter(|j| j.contains_key(&rec.seen.id))
            .count();
        assert_eq!(
            in_journals,
            rec.children.len(),
            "seed {seed}: {}",
            rec.seen.id
        );
    }

    // The server holds the same journals and every photo, byte-exact.
    server.kill();
    for child in &children {
        assert_eq!(
            server_view(&server.data, child),
            views[0][child],
            "seed {seed}: the server's journal of {child} differs from the tablets'"
        );
        for seen in views[0][child].values() {
            for sha in &seen.media {
                assert!(
                    server_holds(&server.data, sha),
                    "seed {seed}: the server lacks photo {sha}"
                );
            }
        }
    }
}

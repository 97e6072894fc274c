//! The server is killed with SIGKILL at a seeded random moment while a tablet syncs many
//! observations and photos, then restarted on the same data directory and port. Whatever the
//! moment: a photo the tablet no longer holds (uploaded or purged) is durably on the server with
//! the right hash, the next sync completes, and afterwards tablet and server hold every entry and
//! every photo.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sprig_e2e::{DeviceDir, Server, seed};

use crate::{Seen, big_photo, device_view, server_holds, server_view};

const PIN: &str = "2468";
const KILLS: usize = 4;
/// Observations recorded per round; every other one has a photo.
const NOTES_PER_ROUND: usize = 12;
const PHOTOS_PER_ROUND: usize = NOTES_PER_ROUND / 2;

/// When the server is killed during a sync.
#[derive(Debug, Clone, Copy)]
enum Moment {
    /// After this long.
    After(Duration),
    /// Once the server stores `count` photos in all (and, if `mid_upload`, while one more is
    /// being written).
    Stored { count: usize, mid_upload: bool },
}

/// Photos the server has stored (`media/ab/abcd…`).
fn stored_media(server: &Server) -> usize {
    sprig_e2e::files_under(&server.data.join("media"))
        .iter()
        .filter(|p| {
            p.file_name().is_some_and(|n| n.len() == 64)
                && p.parent()
                    .and_then(std::path::Path::file_name)
                    .is_some_and(|d| d.len() == 2)
        })
        .count()
}

/// Whether an upload is being written (`media/tmp/` not empty).
fn uploads_in_progress(server: &Server) -> bool {
    std::fs::read_dir(server.data.join("media").join("tmp")).is_ok_and(|mut d| d.next().is_some())
}

/// Every child's journal on the tablet: entry id → what it holds, plus each photo's state.
fn tablet_state(
    tablet: &DeviceDir,
    staff: &str,
    children: &[String],
) -> (
    BTreeMap<String, BTreeMap<String, Seen>>,
    BTreeMap<String, String>,
) {
    let mut journals = BTreeMap::new();
    let mut photos = BTreeMap::new();
    for child in children {
        let items = tablet.journal(staff, PIN, child);
        for m in items.iter().flat_map(|i| i["media"].as_array().unwrap()) {
            photos.insert(
                m["sha256"].as_str().unwrap().to_owned(),
                m["state"].as_str().unwrap().to_owned(),
            );
        }
        journals.insert(child.clone(), device_view(&items));
    }
    (journals, photos)
}

#[test]
fn a_server_killed_mid_sync_loses_nothing() {
    let seed = seed("a_server_killed_mid_sync_loses_nothing");
    let mut rng = StdRng::seed_from_u64(seed);
    let tmp = tempfile::tempdir().unwrap();
    let mut server = Server::init(tmp.path());
    let amara = server.staff("Amara Okafor", "practitioner", PIN);
    let children: Vec<String> = (0..3)
        .map(|i| server.child(&format!("Child {i}"), &amara, true))
        .collect();
    server.start();
    let tablet = DeviceDir::new(tmp.path().join("tablet"));
    tablet.enrol(&server.url(), &server.enrol_code("tablet", None));
    tablet.sync();
    let photos_dir = tmp.path().join("photos");
    std::fs::create_dir(&photos_dir).unwrap();

    let mut recorded: Vec<(String, String, String, bool)> = Vec::new(); // id, child, text, photo
    let mut variant = 0;
    for kill in 0..KILLS {
        // A batch recorded offline: text notes and a few photos.
        for n in 0..NOTES_PER_ROUND {
            let child = &children[rng.random_range(0..children.len())];
            let text = format!("Kill round {kill}, note {n}: sorted the conkers by size");
            let with_photo = n % 2 == 0;
            let file = with_photo.then(|| {
                variant += 1;
                big_photo(&photos_dir, variant)
            });
            let id = tablet.observe(
                &amara,
                PIN,
                &[child],
                &text,
                &file.iter().map(PathBuf::as_path).collect::<Vec<_>>(),
            );
            recorded.push((id, child.clone(), text, with_photo));
        }

        // Sync, and kill the server at a seeded random moment of it: after a random delay
        // (often while documents sync), or once k of this round's photos are stored on the
        // server, optionally while the next upload is half written.
        let stored_before = stored_media(&server);
        let moment = match rng.random_range(0..3) {
            0 => Moment::After(Duration::from_millis(rng.random_range(0..400))),
            m => Moment::Stored {
                count: stored_before + rng.random_range(0..=PHOTOS_PER_ROUND),
                mid_upload: m == 2,
            },
        };
        let mut sync = tablet.spawn_sync();
        match moment {
            Moment::After(d) => std::thread::sleep(d),
            Moment::Stored { count, mid_upload } => {
                // Bounded: at most ~20 s of polling, and not past the sync's own end.
                for _ in 0..20_000 {
                    let uploading = !mid_upload || uploads_in_progress(&server);
                    if (stored_media(&server) >= count && uploading)
                        || matches!(sync.child().try_wait(), Ok(Some(_)))
                    {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
        server.kill();
        let delay = moment;
        let out = sync
            .wait_timeout(Duration::from_secs(90))
            .unwrap_or_else(|| panic!("seed {seed}: the sync did not end after the server died"));
        eprintln!(
            "seed {seed}: kill {kill} at {delay:?}: sync {} {}",
            out.status,
            String::from_utf8_lossy(if out.status.success() {
                &out.stdout
            } else {
                &out.stderr
            })
            .trim()
        );

        // Never purged without the server holding it: every photo the tablet let go of is on
        // the (dead) server's disk with its hash, and recorded in its database.
        let (_, photos) = tablet_state(&tablet, &amara, &children);
        for (sha, state) in &photos {
            assert!(
                ["captured", "uploaded", "purged"].contains(&state.as_str()),
                "seed {seed}: photo {sha} is {state}"
            );
            if state != "captured" {
                assert!(
                    server_holds(&server.data, sha),
                    "seed {seed}: kill {kill}: the tablet let go of {sha} ({state}) but the server lacks it"
                );
            }
        }

        server.start();
    }

    // The next sync completes and leaves nothing pending.
    let report = tablet.sync();
    assert_eq!(report["media_failed"], 0, "seed {seed}: {report}");
    let status = tablet.status();
    assert_eq!(status["pending_media"], 0, "seed {seed}: {status}");
    assert_eq!(status["uploaded_media"], 0, "seed {seed}: {status}");

    let (journals, photos) = tablet_state(&tablet, &amara, &children);
    assert_eq!(
        photos.len(),
        recorded.iter().filter(|r| r.3).count(),
        "seed {seed}"
    );
    assert!(
        photos.values().all(|s| s == "purged"),
        "seed {seed}: {photos:?}"
    );
    for (id, child, text, with_photo) in &recorded {
        let got = journals[child]
            .get(id)
            .unwrap_or_else(|| panic!("seed {seed}: {id} lost from the tablet"));
        assert_eq!(&got.text, text, "seed {seed}");
        assert_eq!(got.media.len(), usize::from(*with_photo), "seed {seed}");
    }
    let total: usize = journals.values().map(BTreeMap::len).sum();
    assert_eq!(
        total,
        recorded.len(),
        "seed {seed}: entries appeared from nowhere"
    );

    server.kill();
    for child in &children {
        assert_eq!(
            server_view(&server.data, child),
            journals[child],
            "seed {seed}: the server's journal of {child} differs from the tablet's"
        );
    }
    for sha in photos.keys() {
        assert!(
            server_holds(&server.data, sha),
            "seed {seed}: the server lacks {sha}"
        );
    }
}

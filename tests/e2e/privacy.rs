//! A photo's life: captured offline, uploaded, acknowledged by hash, purged from the tablet.
//! The server's stored copy is exactly the processed photo the journal names; at no point does
//! the tablet's data directory hold the photo's bytes, the observation text or the child's name
//! in plaintext.

use std::path::Path;

use sha2::Digest;
use sprig_e2e::{DeviceDir, Server, files_under};
use sprig_server::store::ServerStore;

use crate::photo;

const PIN: &str = "2468";
const TEXT: &str = "Zephyrine balanced eleven wooden bricks into a wobbly lighthouse";
const NAME: &str = "Zephyrine Quillfeather";

/// The text and the child's name: never in plaintext on the tablet.
fn text_needles() -> Vec<(String, Vec<u8>)> {
    vec![
        ("observation text".to_owned(), TEXT.as_bytes().to_vec()),
        ("child's name".to_owned(), NAME.as_bytes().to_vec()),
    ]
}

/// The text, the name and 64-byte windows spread over the processed JPEG (past its header,
/// which every JPEG of this encoder shares).
fn needles(jpeg: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut n = text_needles();
    for k in 1..=8 {
        let at = (jpeg.len() - 64) * k / 9;
        n.push((format!("photo bytes at {at}"), jpeg[at..at + 64].to_vec()));
    }
    n
}

/// Asserts no file under `dir` (database, `-wal`, `-shm`, anything) contains a needle.
fn assert_clean(dir: &Path, needles: &[(String, Vec<u8>)], when: &str) {
    let files = files_under(dir);
    assert!(!files.is_empty(), "{when}: nothing under {}", dir.display());
    for f in files {
        let bytes = std::fs::read(&f).unwrap();
        for (what, needle) in needles {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_slice()),
                "{when}: {} holds the {what} in plaintext",
                f.display()
            );
        }
    }
}

#[test]
fn a_photo_is_acknowledged_then_purged_and_never_plaintext_on_the_tablet() {
    let tmp = tempfile::tempdir().unwrap();
    let mut server = Server::init(tmp.path());
    let amara = server.staff("Amara Okafor", "practitioner", PIN);
    let child = server.child(NAME, &amara, true);
    server.start();
    let tablet = DeviceDir::new(tmp.path().join("tablet"));
    tablet.enrol(&server.url(), &server.enrol_code("tablet", None));
    tablet.sync();
    // The roster (with the child's name) is on the tablet now.
    assert_clean(&tablet.dir, &text_needles(), "after the first sync");

    // The photo pipeline is deterministic: the bytes the tablet will store are known here.
    let pic = photo(tmp.path(), "lighthouse.jpg", 7);
    let original = std::fs::read(&pic).unwrap();
    let processed =
        sprig_media::process_photo(&original, &sprig_media::PhotoOptions::default()).unwrap();
    let jpeg = processed.photo.bytes;
    let needles = needles(&jpeg);

    let id = tablet.observe(&amara, PIN, &[&child], TEXT, &[&pic]);
    let journal = tablet.journal(&amara, PIN, &child);
    assert_eq!(journal.len(), 1);
    assert_eq!(journal[0]["id"], id.as_str());
    let media = &journal[0]["media"][0];
    assert_eq!(media["state"], "captured");
    let sha = media["sha256"].as_str().unwrap().to_owned();
    assert_eq!(
        sha, processed.sha256,
        "the tablet stored the processed photo"
    );
    assert_eq!(tablet.status()["pending_media"], 1);
    assert_clean(&tablet.dir, &needles, "while captured");

    let report = tablet.sync();
    assert_eq!(report["media_uploaded"], 1, "{report}");
    assert_eq!(report["media_purged"], 1, "{report}");
    let status = tablet.status();
    assert_eq!(status["pending_media"], 0, "{status}");
    assert_eq!(status["purged_media"], 1, "{status}");
    let journal = tablet.journal(&amara, PIN, &child);
    assert_eq!(journal[0]["media"][0]["state"], "purged");
    assert_eq!(journal[0]["media"][0]["sha256"], sha.as_str());
    assert_clean(&tablet.dir, &needles, "after upload and purge");

    // The server's copy is exactly the processed photo: the journal's SHA-256 and size.
    let stored = std::fs::read(server.media_path(&sha)).unwrap();
    assert_eq!(hex::encode(sha2::Sha256::digest(&stored)), sha);
    assert_eq!(Some(stored.len() as u64), media["size"].as_u64());
    assert!(
        stored == jpeg,
        "the server holds other bytes than the processed photo"
    );
    assert_ne!(
        stored, original,
        "the original (with GPS) never leaves the tablet"
    );

    // The server's log and audit log carry ids and counts, never the child or the text.
    let store = sprig_server::DataDir::new(&server.data)
        .open_store()
        .unwrap();
    let audit = store.audit_log(10_000).unwrap();
    assert!(
        audit.iter().any(|e| e.action == "media_upload"),
        "the upload was audited: {audit:?}"
    );
    let audit_text: String = audit
        .iter()
        .map(|e| {
            format!(
                "{} {} {:?} {} {}\n",
                e.at, e.actor, e.device, e.action, e.detail
            )
        })
        .collect();
    for (what, text) in [("server log", server.log()), ("audit log", audit_text)] {
        for (needle_name, needle) in text_needles() {
            let needle = String::from_utf8(needle).unwrap();
            assert!(
                !text.contains(&needle),
                "the {what} holds the {needle_name}"
            );
        }
    }
}

/// Regression: a re-upload of a photo the server already held was answered before its body was
/// read; the tablet saw a broken pipe instead of the acknowledgement and kept the photo forever
/// (every later sync failed the same way). Two tablets recording the same picture, or a server
/// killed between storing a photo and answering, both lead there.
#[test]
fn a_photo_the_server_already_holds_is_acknowledged_again() {
    let tmp = tempfile::tempdir().unwrap();
    let mut server = Server::init(tmp.path());
    let amara = server.staff("Amara Okafor", "practitioner", PIN);
    let child = server.child(NAME, &amara, true);
    server.start();
    // Large enough (hundreds of KiB after processing) not to fit in the socket buffers.
    let pic = tmp.path().join("shared.jpg");
    std::fs::write(&pic, sprig_testkit::images::photo_like(2048, 1536)).unwrap();
    let mut shas = std::collections::BTreeSet::new();
    for name in ["tablet-a", "tablet-b", "tablet-c"] {
        let tablet = DeviceDir::new(tmp.path().join(name));
        tablet.enrol(&server.url(), &server.enrol_code(name, None));
        tablet.sync();
        tablet.observe(&amara, PIN, &[&child], TEXT, &[&pic]);
        let report = tablet.sync();
        assert_eq!(report["media_failed"], 0, "{name}: {report}");
        assert_eq!(report["media_purged"], 1, "{name}: {report}");
        assert_eq!(tablet.status()["pending_media"], 0, "{name}");
        let journal = tablet.journal(&amara, PIN, &child);
        shas.extend(
            journal
                .iter()
                .flat_map(|e| e["media"].as_array().unwrap())
                .filter(|m| m["state"] == "purged")
                .map(|m| m["sha256"].as_str().unwrap().to_owned()),
        );
    }
    assert_eq!(shas.len(), 1, "the same picture, the same processed photo");
    let sha = shas.first().unwrap();
    let stored = std::fs::read(server.media_path(sha)).unwrap();
    assert_eq!(&hex::encode(sha2::Sha256::digest(&stored)), sha);
}

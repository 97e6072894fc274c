//! Recording observations: text, photos (metadata stripped, original never stored), videos
//! (streamed into the vault), the group-photo consent rule, and the journal listing.

use std::io::Read;

use sha2::Digest;
use sprig_core::{Area, MediaKind, Sha256};
use sprig_device::{DeviceError, MediaStatus, Observation};
use sprig_store::{MEDIA_CHUNK_SIZE, MediaState};
use sprig_testkit::images::{self, ByteOrder};

use crate::support::{PIN, contains, files_under, seeded};

#[test]
fn a_text_observation_is_listed_with_its_author_and_children() {
    let s = seeded();
    let mut device = s.open();
    let who = device.unlock(&s.staff, PIN).unwrap();
    let id = device
        .observe(
            &who,
            &Observation {
                children: vec![s.child(0)],
                text: "Counted five ducks".into(),
                areas: vec![Area::Mathematics],
                next_steps: "Count to ten".into(),
                ..Observation::default()
            },
        )
        .unwrap();
    let items = device.journal(&who, &s.child(0)).unwrap();
    assert_eq!(items.len(), 1);
    let e = &items[0].entry;
    assert_eq!(e.id, id);
    assert_eq!(e.text, "Counted five ducks");
    assert_eq!(e.areas, vec![Area::Mathematics]);
    assert_eq!(e.author.id_str(), s.staff.as_str());
    assert_eq!(items[0].children, vec![s.child(0)]);
    assert!(device.journal(&who, &s.child(1)).unwrap().is_empty());
    assert_eq!(device.status().unwrap().journals, 1);
}

#[test]
fn a_group_observation_has_one_id_in_every_tagged_journal() {
    let s = seeded();
    let mut device = s.open();
    let who = device.unlock(&s.staff, PIN).unwrap();
    // Text only: consent is about photos, so a child without it may be tagged.
    let id = device
        .observe(
            &who,
            &Observation {
                children: vec![s.child(0), s.child(2)],
                text: "Shared the sand tray".into(),
                ..Observation::default()
            },
        )
        .unwrap();
    let mut both = vec![s.child(0), s.child(2)];
    both.sort();
    for c in [0, 2] {
        let items = device.journal(&who, &s.child(c)).unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].entry.id, id);
        assert_eq!(items[0].children, both);
    }
}

#[test]
fn a_photo_is_stored_without_metadata_and_the_original_never_touches_the_disk() {
    let s = seeded();
    let src = tempfile::tempdir().unwrap();
    let original = images::jpeg_with_exif(640, 480, 6, ByteOrder::Little);
    let photo = src.path().join("camera.jpg");
    std::fs::write(&photo, &original).unwrap();
    let text = "Painted-a-zebra-with-purple-stripes-7731";

    let mut device = s.open();
    let who = device.unlock(&s.staff, PIN).unwrap();
    device
        .observe(
            &who,
            &Observation {
                children: vec![s.child(0)],
                text: text.into(),
                photos: vec![photo],
                ..Observation::default()
            },
        )
        .unwrap();
    let items = device.journal(&who, &s.child(0)).unwrap();
    let m = &items[0].media[0];
    assert_eq!(m.media.kind, MediaKind::Photo);
    assert_eq!(m.status, MediaStatus::Captured);
    assert_eq!(device.status().unwrap().pending_media, 1);
    drop(device);

    let store = s.store();
    let info = store.media_info(&m.media.sha256).unwrap();
    assert!(info.has_thumbnail);
    let mut stored = Vec::new();
    store
        .media_reader(&m.media.sha256)
        .unwrap()
        .read_to_end(&mut stored)
        .unwrap();
    assert_eq!(stored.len() as u64, m.media.size);
    assert!(
        exif::Reader::new()
            .read_from_container(&mut std::io::Cursor::new(&stored))
            .is_err(),
        "the vault copy must carry no EXIF"
    );
    for marker in [
        images::CAMERA_MAKE,
        images::XMP_MARKER,
        images::COMMENT,
        "Exif\0\0",
    ] {
        assert!(
            !contains(&stored, marker.as_bytes()),
            "{marker} in the vault copy"
        );
    }
    store.close().unwrap();

    // Nothing under the data directory holds the text, the original or the vault copy in
    // the clear.
    let mid = original.len() / 2;
    let original_slice = &original[mid..mid + 256];
    let stored_slice = &stored[stored.len() / 2..stored.len() / 2 + 256];
    for f in files_under(&s.dir) {
        let bytes = std::fs::read(&f).unwrap();
        assert!(
            !contains(&bytes, text.as_bytes()),
            "text in {}",
            f.display()
        );
        assert!(
            !contains(&bytes, original_slice),
            "original in {}",
            f.display()
        );
        assert!(
            !contains(&bytes, images::CAMERA_MAKE.as_bytes()),
            "EXIF in {}",
            f.display()
        );
        assert!(
            !contains(&bytes, stored_slice),
            "photo in clear in {}",
            f.display()
        );
    }
}

#[test]
fn a_video_is_streamed_into_the_vault_unchanged() {
    let s = seeded();
    let src = tempfile::tempdir().unwrap();
    let mut video = images::mp4_head();
    video.extend(images::random_bytes(MEDIA_CHUNK_SIZE * 2 + 12_345, 11));
    let path = src.path().join("clip.mp4");
    std::fs::write(&path, &video).unwrap();
    let sha = Sha256::from_bytes(sha2::Sha256::digest(&video).into());

    let mut device = s.open();
    let who = device.unlock(&s.staff, PIN).unwrap();
    device
        .observe(
            &who,
            &Observation {
                children: vec![s.child(1)],
                text: "Rolled down the hill".into(),
                videos: vec![path],
                ..Observation::default()
            },
        )
        .unwrap();
    let items = device.journal(&who, &s.child(1)).unwrap();
    let m = &items[0].media[0].media;
    assert_eq!(
        (m.sha256, m.kind, m.size),
        (sha, MediaKind::Video, video.len() as u64)
    );
    assert_eq!(m.mime, "video/mp4");
    drop(device);

    let store = s.store();
    let mut stored = Vec::new();
    store
        .media_reader(&sha)
        .unwrap()
        .read_to_end(&mut stored)
        .unwrap();
    assert!(stored == video, "the vault holds the video as recorded");
}

#[test]
fn a_group_photo_with_a_child_without_consent_is_refused_and_nothing_is_stored() {
    let s = seeded();
    let src = tempfile::tempdir().unwrap();
    let photo = src.path().join("group.jpg");
    std::fs::write(&photo, images::jpeg(320, 240)).unwrap();
    let mut device = s.open();
    let who = device.unlock(&s.staff, PIN).unwrap();
    let err = device
        .observe(
            &who,
            &Observation {
                children: vec![s.child(0), s.child(2)],
                text: "Group photo at the water tray".into(),
                photos: vec![photo],
                ..Observation::default()
            },
        )
        .unwrap_err();
    assert!(matches!(err, DeviceError::Rule(_)), "{err:?}");
    assert_eq!(err.code(), "consent_missing");
    let name = sprig_testkit::name(2);
    assert!(
        err.to_string()
            .contains(&format!("{name} does not have photo consent")),
        "{err}"
    );
    let status = device.status().unwrap();
    assert_eq!((status.pending_media, status.journals), (0, 0));
    drop(device);
    assert!(
        s.store()
            .media_in_state(MediaState::Captured)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_file_that_is_not_a_photo_is_refused_with_the_pipeline_message() {
    let s = seeded();
    let src = tempfile::tempdir().unwrap();
    let bad = src.path().join("notes.jpg");
    std::fs::write(&bad, b"just some text, not a picture").unwrap();
    let mut device = s.open();
    let who = device.unlock(&s.staff, PIN).unwrap();
    let err = device
        .observe(
            &who,
            &Observation {
                children: vec![s.child(0)],
                text: "x".into(),
                photos: vec![bad],
                ..Observation::default()
            },
        )
        .unwrap_err();
    assert!(matches!(err, DeviceError::Media { .. }), "{err:?}");
    assert!(err.to_string().contains("notes.jpg"), "{err}");
    assert_eq!(device.status().unwrap().journals, 0);
}

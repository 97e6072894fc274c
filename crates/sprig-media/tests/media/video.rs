//! Videos are recognised from their head and declared size only, and never decoded.

use sprig_media::{Limits, MediaError, VIDEO_SNIFF_LEN, VideoContainer, sniff_video};
use sprig_testkit::images;

const MIB: u64 = 1024 * 1024;

fn sniff(head: &[u8]) -> Result<VideoContainer, MediaError> {
    sniff_video(head, 50 * MIB, &Limits::default())
}

#[test]
fn mp4_mov_and_webm_are_accepted() {
    assert_eq!(sniff(&images::mp4_head()).unwrap(), VideoContainer::Mp4);
    assert_eq!(
        sniff(&images::mov_head()).unwrap(),
        VideoContainer::QuickTime
    );
    assert_eq!(sniff(&images::webm_head()).unwrap(), VideoContainer::WebM);
    assert_eq!(VideoContainer::QuickTime.mime_type(), "video/quicktime");
    assert_eq!(VideoContainer::WebM.extension(), "webm");
}

#[test]
fn legacy_quicktime_atoms_are_accepted() {
    for atom in [b"moov", b"mdat", b"wide", b"free", b"skip"] {
        assert_eq!(
            sniff(&images::legacy_mov_head(atom)).unwrap(),
            VideoContainer::QuickTime,
            "{}",
            String::from_utf8_lossy(atom)
        );
    }
}

#[test]
fn other_mp4_brands_are_accepted() {
    let iphone_mp4 = images::iso_bmff_head(b"mp42", &[b"mp41", b"mp42", b"isom"], 4096);
    assert_eq!(sniff(&iphone_mp4).unwrap(), VideoContainer::Mp4);
    let android_3gp = images::iso_bmff_head(b"3gp4", &[b"isom", b"3gp4"], 4096);
    assert_eq!(sniff(&android_3gp).unwrap(), VideoContainer::Mp4);
}

#[test]
fn matroska_that_is_not_webm_is_refused() {
    let e = sniff(&images::matroska_head()).unwrap_err();
    assert!(
        matches!(
            e,
            MediaError::UnsupportedVideoFormat {
                format: "Matroska (MKV)"
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("convert it to MP4"), "{e}");
}

#[test]
fn random_bytes_photos_and_empty_input_are_refused() {
    for seed in 0..50 {
        let e = sniff(&images::random_bytes(VIDEO_SNIFF_LEN, seed)).unwrap_err();
        assert!(matches!(e, MediaError::NotAVideo), "seed {seed}: {e:?}");
    }
    assert!(matches!(
        sniff(&images::jpeg(16, 16)),
        Err(MediaError::NotAVideo)
    ));
    assert!(matches!(
        sniff_video(&[], 0, &Limits::default()),
        Err(MediaError::Empty)
    ));
    let heic = images::iso_bmff_head(b"heic", &[b"mif1", b"heic"], 1000);
    assert!(matches!(
        sniff(&heic),
        Err(MediaError::UnsupportedVideoFormat { .. })
    ));
}

#[test]
fn too_large_video_is_refused_from_its_declared_length() {
    let head = images::mp4_head();
    let limit = Limits::default().max_video_bytes;
    assert_eq!(limit, 500 * MIB);
    assert!(sniff_video(&head, limit, &Limits::default()).is_ok());
    let e = sniff_video(&head, limit + 1, &Limits::default()).unwrap_err();
    assert!(matches!(e, MediaError::VideoTooLarge { max_bytes, .. } if max_bytes == limit));
    assert!(
        e.to_string()
            .starts_with("This video is too large (500 MiB); the limit is 500 MiB.")
    );

    let mut limits = Limits::default();
    limits.max_video_bytes = 10 * MIB;
    let e = sniff_video(&images::webm_head(), 11 * MIB, &limits).unwrap_err();
    assert!(matches!(e, MediaError::VideoTooLarge { .. }));
}

#[test]
fn a_head_longer_than_the_declared_length_counts_its_own_bytes() {
    let mut limits = Limits::default();
    limits.max_video_bytes = 100;
    let e = sniff_video(&images::mp4_head(), 10, &limits).unwrap_err();
    assert!(
        matches!(e, MediaError::VideoTooLarge { bytes, .. } if bytes == images::mp4_head().len() as u64)
    );
}

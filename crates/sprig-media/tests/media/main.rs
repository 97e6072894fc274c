//! Integration tests of sprig-media: the photo pipeline and video sniffing, on generated inputs.

mod formats;
mod fuzz_replay;
mod limits;
mod orientation;
mod output;
mod resize;
mod video;

use sprig_media::{PhotoOptions, ProcessedPhoto, process_photo};
use sprig_testkit::images;

fn process(bytes: &[u8]) -> ProcessedPhoto {
    process_photo(bytes, &PhotoOptions::default()).expect("photo is accepted")
}

/// Markers of the segments before the first scan: what a JPEG carries besides pixels.
fn header_markers(jpeg: &[u8]) -> Vec<u8> {
    assert_eq!(&jpeg[..2], [0xFF, 0xD8], "starts with SOI");
    let mut markers = Vec::new();
    let mut pos = 2;
    loop {
        assert_eq!(jpeg[pos], 0xFF, "segment starts with a marker at {pos}");
        let marker = jpeg[pos + 1];
        markers.push(marker);
        if marker == 0xDA {
            return markers;
        }
        pos += 2 + usize::from(u16::from_be_bytes([jpeg[pos + 2], jpeg[pos + 3]]));
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Asserts that a JPEG carries pixels and nothing else: no EXIF (checked with a real EXIF
/// parser too), XMP, ICC profile or comment, and none of the generated metadata strings.
fn assert_no_metadata(jpeg: &[u8]) {
    let exif = exif::Reader::new().read_from_container(&mut std::io::Cursor::new(jpeg));
    assert!(
        matches!(exif, Err(exif::Error::NotFound(_))),
        "EXIF survived or the JPEG is unreadable: {:?}",
        exif.err()
    );
    for marker in header_markers(jpeg) {
        // APP0 (JFIF), DQT, SOF0, DHT, DRI, SOS: all about pixels.
        assert!(
            matches!(marker, 0xE0 | 0xDB | 0xC0 | 0xC4 | 0xDD | 0xDA),
            "unexpected segment FF {marker:02X}"
        );
    }
    for needle in [
        &b"Exif"[..],
        b"GPS",
        b"ICC_PROFILE",
        b"http://ns.adobe.com",
        images::CAMERA_MAKE.as_bytes(),
        images::CAMERA_MODEL.as_bytes(),
        images::COMMENT.as_bytes(),
        images::XMP_MARKER.as_bytes(),
        images::ICC_MARKER.as_bytes(),
        b"2024:05:17",
    ] {
        assert!(
            !contains(jpeg, needle),
            "{:?} survived",
            String::from_utf8_lossy(needle)
        );
    }
}

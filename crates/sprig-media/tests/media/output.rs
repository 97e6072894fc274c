//! The returned hash identifies the returned bytes, and the output is deterministic.

use sha2::{Digest, Sha256};
use sprig_testkit::images::{self, ByteOrder};

use super::process;

#[test]
fn sha256_is_the_hash_of_the_returned_photo_bytes() {
    let out = process(&images::jpeg_with_exif(900, 700, 6, ByteOrder::Little));
    assert_eq!(out.sha256, hex::encode(Sha256::digest(&out.photo.bytes)));
    assert_eq!(out.sha256.len(), 64);
    assert!(
        out.sha256
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
}

#[test]
fn the_same_photo_gives_the_same_bytes() {
    // Sync deduplicates by hash: reprocessing must not produce a "new" photo.
    let input = images::png_with_exif(500, 300, 1);
    assert_eq!(process(&input).sha256, process(&input).sha256);
}

#[test]
fn output_is_a_complete_jpeg() {
    let out = process(&images::webp_with_exif(300, 200, 1));
    for bytes in [&out.photo.bytes, &out.thumbnail.bytes] {
        assert!(bytes.starts_with(&[0xFF, 0xD8, 0xFF]));
        assert!(bytes.ends_with(&[0xFF, 0xD9]));
    }
}

#[test]
fn jpeg_quality_is_applied() {
    let input = images::photo_like(600, 400);
    let mut options = sprig_media::PhotoOptions::default();
    assert_eq!(options.jpeg_quality, 82);
    let default = sprig_media::process_photo(&input, &options).unwrap();
    options.jpeg_quality = 40;
    let low = sprig_media::process_photo(&input, &options).unwrap();
    options.jpeg_quality = 95;
    let high = sprig_media::process_photo(&input, &options).unwrap();
    assert!(low.photo.bytes.len() < default.photo.bytes.len());
    assert!(default.photo.bytes.len() < high.photo.bytes.len());
}

//! Long edge 2048 for large photos, never enlarged, thumbnails from the result, aspect kept.

use sprig_media::{PhotoOptions, process_photo};
use sprig_testkit::images::{self, ByteOrder, UPRIGHT, decode_rgb, quadrants};

use super::process;

fn assert_aspect(w: u32, h: u32, expected_w: u32, expected_h: u32) {
    // Rounding to whole pixels may move the short edge by at most one pixel.
    let exact = f64::from(expected_h) * f64::from(w) / f64::from(expected_w);
    assert!(
        (f64::from(h) - exact).abs() <= 1.0,
        "{w}×{h} is not {expected_w}:{expected_h}"
    );
}

#[test]
fn large_landscape_photo_gets_a_2048_long_edge() {
    let out = process(&images::jpeg(3000, 1000));
    assert_eq!((out.photo.width, out.photo.height), (2048, 683));
    assert_eq!((out.thumbnail.width, out.thumbnail.height), (320, 107));
    assert_aspect(out.photo.width, out.photo.height, 3000, 1000);
    assert_aspect(out.thumbnail.width, out.thumbnail.height, 3000, 1000);
    // The dimensions in the struct are those of the encoded bytes.
    assert_eq!(decode_rgb(&out.photo.bytes).dimensions(), (2048, 683));
    assert_eq!(decode_rgb(&out.thumbnail.bytes).dimensions(), (320, 107));
    assert_eq!(quadrants(&decode_rgb(&out.photo.bytes)), UPRIGHT);
}

#[test]
fn large_portrait_photo_gets_a_2048_long_edge() {
    let out = process(&images::jpeg_with_exif(1200, 2600, 8, ByteOrder::Big));
    assert_eq!((out.photo.width, out.photo.height), (945, 2048));
    assert_eq!((out.thumbnail.width, out.thumbnail.height), (148, 320));
    assert_aspect(out.photo.width, out.photo.height, 1200, 2600);
}

#[test]
fn small_photo_is_not_enlarged() {
    let out = process(&images::jpeg(800, 600));
    assert_eq!((out.photo.width, out.photo.height), (800, 600));
    assert_eq!((out.thumbnail.width, out.thumbnail.height), (320, 240));
}

#[test]
fn tiny_photo_keeps_its_size_for_photo_and_thumbnail() {
    let out = process(&images::png_with_exif(100, 50, 1));
    assert_eq!((out.photo.width, out.photo.height), (100, 50));
    assert_eq!((out.thumbnail.width, out.thumbnail.height), (100, 50));
}

#[test]
fn exactly_2048_is_left_alone() {
    let out = process(&images::jpeg(2048, 1024));
    assert_eq!((out.photo.width, out.photo.height), (2048, 1024));
}

#[test]
fn sizes_are_configurable() {
    let mut options = PhotoOptions::default();
    options.long_edge = 1000;
    options.thumbnail_long_edge = 100;
    let out = process_photo(&images::jpeg(3000, 1000), &options).unwrap();
    assert_eq!((out.photo.width, out.photo.height), (1000, 333));
    assert_eq!((out.thumbnail.width, out.thumbnail.height), (100, 33));
}

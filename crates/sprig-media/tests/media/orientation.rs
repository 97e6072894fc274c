//! EXIF orientation is applied for all eight values, in both TIFF byte orders, and then the
//! metadata (GPS above all) is gone.

use sprig_testkit::images::{self, ByteOrder, UPRIGHT, decode_rgb, quadrants};

use super::{assert_no_metadata, process};

#[test]
fn every_jpeg_orientation_comes_out_upright_and_without_gps() {
    for order in [ByteOrder::Little, ByteOrder::Big] {
        for n in 1..=8u8 {
            let input = images::jpeg_with_exif(400, 300, n, order);
            // The input really carries GPS: the stripping below is not vacuous.
            let exif = exif::Reader::new()
                .read_from_container(&mut std::io::Cursor::new(&input))
                .expect("input has EXIF");
            assert!(
                exif.get_field(exif::Tag::GPSLatitude, exif::In::PRIMARY)
                    .is_some()
            );

            let out = process(&input);
            let stored = if n >= 5 { (300, 400) } else { (400, 300) };
            assert_eq!(out.source_dimensions, stored, "orientation {n} {order:?}");
            assert_eq!(
                (out.photo.width, out.photo.height),
                (400, 300),
                "orientation {n}"
            );
            assert_eq!(
                quadrants(&decode_rgb(&out.photo.bytes)),
                UPRIGHT,
                "orientation {n}"
            );
            assert_eq!(
                quadrants(&decode_rgb(&out.thumbnail.bytes)),
                UPRIGHT,
                "thumb {n}"
            );
            assert_no_metadata(&out.photo.bytes);
            assert_no_metadata(&out.thumbnail.bytes);
        }
    }
}

#[test]
fn png_and_webp_exif_orientation_is_applied_and_stripped() {
    for n in 1..=8u8 {
        for input in [
            images::png_with_exif(200, 120, n),
            images::webp_with_exif(200, 120, n),
        ] {
            let out = process(&input);
            assert_eq!(
                (out.photo.width, out.photo.height),
                (200, 120),
                "orientation {n}"
            );
            assert_eq!(
                quadrants(&decode_rgb(&out.photo.bytes)),
                UPRIGHT,
                "orientation {n}"
            );
            assert_no_metadata(&out.photo.bytes);
            assert_no_metadata(&out.thumbnail.bytes);
        }
    }
}

#[test]
fn orientation_is_applied_to_a_resized_photo() {
    // Resizing happens before rotation; the long edge must still end up 2048 and upright.
    let out = process(&images::jpeg_with_exif(2400, 1600, 6, ByteOrder::Little));
    assert_eq!(out.source_dimensions, (1600, 2400));
    assert_eq!((out.photo.width, out.photo.height), (2048, 1365));
    assert_eq!(quadrants(&decode_rgb(&out.photo.bytes)), UPRIGHT);
}

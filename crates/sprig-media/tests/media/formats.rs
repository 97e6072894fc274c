//! Formats are recognised by their bytes; anything else, or anything broken, is refused with
//! a clear error and never a panic.

use sprig_media::{MediaError, PhotoFormat, PhotoOptions, process_photo, sniff_photo};
use sprig_testkit::images::{self, ByteOrder, UPRIGHT, decode_rgb, quadrants};

use super::process;

fn refuse(bytes: &[u8]) -> MediaError {
    process_photo(bytes, &PhotoOptions::default()).expect_err("input is refused")
}

#[test]
fn jpeg_png_and_webp_are_recognised_by_their_bytes() {
    assert_eq!(sniff_photo(&images::jpeg(8, 8)).unwrap(), PhotoFormat::Jpeg);
    assert_eq!(
        sniff_photo(&images::png_with_exif(8, 8, 1)).unwrap(),
        PhotoFormat::Png
    );
    assert_eq!(
        sniff_photo(&images::webp_with_exif(8, 8, 1)).unwrap(),
        PhotoFormat::WebP
    );
    assert_eq!(
        process(&images::png_with_exif(64, 48, 1)).source_format,
        PhotoFormat::Png
    );
    assert_eq!(
        process(&images::webp_with_exif(64, 48, 1)).source_format,
        PhotoFormat::WebP
    );
}

#[test]
fn png_and_webp_become_upright_jpegs() {
    for input in [
        images::png_with_exif(640, 480, 1),
        images::webp_with_exif(640, 480, 1),
    ] {
        let out = process(&input);
        assert!(out.photo.bytes.starts_with(&[0xFF, 0xD8, 0xFF]));
        assert_eq!((out.photo.width, out.photo.height), (640, 480));
        assert_eq!(quadrants(&decode_rgb(&out.photo.bytes)), UPRIGHT);
    }
}

#[test]
fn transparent_png_is_laid_over_white() {
    let out = process(&images::png_transparent(200, 100));
    let rgb = decode_rgb(&out.photo.bytes);
    // The background was fully transparent; on white it must be (near) white, not black.
    assert!(
        rgb.get_pixel(100, 90).0.iter().all(|&c| c >= 245),
        "{:?}",
        rgb.get_pixel(100, 90)
    );
    assert_eq!(quadrants(&rgb)[0], "red");
}

#[test]
fn gif_and_bmp_are_refused_by_name() {
    assert!(matches!(
        refuse(&images::gif()),
        MediaError::UnsupportedPhotoFormat { format: "GIF" }
    ));
    let e = refuse(&images::bmp(16, 16));
    assert!(matches!(
        e,
        MediaError::UnsupportedPhotoFormat { format: "BMP" }
    ));
    assert!(
        e.to_string().contains("Use a JPEG, PNG or WebP photo"),
        "{e}"
    );
}

#[test]
fn random_bytes_and_videos_are_not_photos() {
    for seed in 0..20 {
        assert!(matches!(
            refuse(&images::random_bytes(4096, seed)),
            MediaError::NotAPhoto
        ));
    }
    assert!(matches!(refuse(&images::mp4_head()), MediaError::NotAPhoto));
    assert!(matches!(refuse(b"hello.jpg"), MediaError::NotAPhoto));
}

#[test]
fn empty_input_is_refused() {
    assert!(matches!(refuse(&[]), MediaError::Empty));
}

#[test]
fn truncated_photos_are_refused_at_every_cut() {
    let inputs = [
        (
            PhotoFormat::Jpeg,
            images::jpeg_with_exif(120, 90, 6, ByteOrder::Little),
        ),
        (PhotoFormat::Png, images::png_with_exif(120, 90, 1)),
        (PhotoFormat::WebP, images::webp_with_exif(120, 90, 1)),
    ];
    for (format, input) in inputs {
        // Past the magic bytes every cut is recognisably this format, but incomplete.
        for cut in (12..input.len()).step_by(3) {
            match refuse(&input[..cut]) {
                MediaError::CorruptPhoto { format: f, .. } => assert_eq!(f, format, "cut {cut}"),
                other => panic!("{format} cut at {cut}/{}: {other:?}", input.len()),
            }
        }
    }
}

#[test]
fn the_truncation_message_says_what_to_do() {
    let input = images::jpeg(300, 200);
    let e = refuse(&input[..input.len() / 2]);
    assert_eq!(
        e.to_string(),
        "This JPEG photo is damaged or incomplete and cannot be read (the file ends before the \
         end of the picture). Copy it again from where it came from, or retake it."
    );
}

#[test]
fn damaged_photos_never_panic() {
    // Overwrite bytes all over the file; every result must be a value, not a panic.
    let inputs = [
        images::jpeg_with_exif(64, 48, 3, ByteOrder::Big),
        images::png_with_exif(64, 48, 1),
        images::webp_with_exif(64, 48, 1),
    ];
    for input in inputs {
        for at in (2..input.len()).step_by(5) {
            for value in [0x00, 0xFF, 0x7F] {
                let mut damaged = input.clone();
                damaged[at] = value;
                let _ = process_photo(&damaged, &PhotoOptions::default());
            }
        }
    }
}

#[test]
fn heic_is_refused_by_name() {
    let heic = images::iso_bmff_head(b"heic", &[b"mif1", b"heic"], 1000);
    assert!(matches!(
        refuse(&heic),
        MediaError::UnsupportedPhotoFormat { format: "HEIC" }
    ));
}

#[test]
fn grey_and_16_bit_pngs_become_rgb_jpegs() {
    use image::{ExtendedColorType, ImageEncoder, codecs::png::PngEncoder};
    let rgb = images::upright_pattern(120, 80);
    let grey = image::DynamicImage::ImageRgb8(rgb.clone()).into_luma8();
    let deep = image::DynamicImage::ImageRgb8(rgb).into_rgb16();
    let mut grey_png = Vec::new();
    PngEncoder::new(&mut grey_png)
        .write_image(grey.as_raw(), 120, 80, ExtendedColorType::L8)
        .unwrap();
    let mut deep_png = Vec::new();
    let deep_bytes: Vec<u8> = deep.as_raw().iter().flat_map(|v| v.to_be_bytes()).collect();
    PngEncoder::new(&mut deep_png)
        .write_image(&deep_bytes, 120, 80, ExtendedColorType::Rgb16)
        .unwrap();

    let out = process(&grey_png);
    assert_eq!((out.photo.width, out.photo.height), (120, 80));
    let out = process(&deep_png);
    assert_eq!(quadrants(&decode_rgb(&out.photo.bytes)), UPRIGHT);
}

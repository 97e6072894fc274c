//! Generated edge cases replayed through the `image_decode` fuzz harness
//! (`fuzz/harness/image.rs`): the fuzz target's entry points and invariants, on stable, so the
//! harness cannot rot.
//!
//! These inputs are also the fuzzer's seed corpus: with `SPRIG_FUZZ_SEEDS=DIR` set, the test
//! writes each one to `DIR/image_decode/` (`make fuzz` does this; see docs/FUZZING.md).

#[path = "../../../../fuzz/harness/image.rs"]
mod harness;

use std::io::Cursor;

use image::{DynamicImage, ImageFormat};
use jpeg_encoder::{ColorType, Encoder, SamplingFactor};
use sprig_media::{Limits, MediaError, PhotoOptions, VideoContainer, process_photo, sniff_video};
use sprig_testkit::images::{self, ByteOrder};

use harness::Outcome;

fn encoded(image: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    image.write_to(&mut out, format).unwrap();
    out.into_inner()
}

/// A JPEG of [`images::upright_pattern`] written with `configure`'s encoder settings.
fn jpeg_with(
    width: u16,
    height: u16,
    color: ColorType,
    configure: impl FnOnce(&mut Encoder<&mut Vec<u8>>),
) -> Vec<u8> {
    let rgb = images::upright_pattern(width.into(), height.into());
    let pixels: Vec<u8> = match color {
        ColorType::Cmyk => rgb
            .pixels()
            .flat_map(|p| [255 - p.0[0], 255 - p.0[1], 255 - p.0[2], 0])
            .collect(),
        _ => rgb.into_raw(),
    };
    let mut out = Vec::new();
    let mut encoder = Encoder::new(&mut out, 85);
    configure(&mut encoder);
    encoder.encode(&pixels, width, height, color).unwrap();
    out
}

fn photo(w: u32, h: u32) -> Outcome {
    Outcome {
        photo: Some((w, h)),
        video: None,
    }
}

fn video(container: VideoContainer) -> Outcome {
    Outcome {
        photo: None,
        video: Some(container),
    }
}

/// Every generated input, named, with what the harness must report for it.
fn seeds() -> Vec<(&'static str, Vec<u8>, Outcome)> {
    let pattern = DynamicImage::ImageRgb8(images::upright_pattern(20, 12));
    let sixteen_bit = DynamicImage::ImageRgba16(pattern.to_rgba16());
    let grey = DynamicImage::ImageLuma8(pattern.to_luma8());
    let grey_alpha = DynamicImage::ImageLumaA8(pattern.to_luma_alpha8());
    let full = images::jpeg_with_exif(24, 16, 6, ByteOrder::Little);
    vec![
        ("jpeg", images::jpeg(16, 12), photo(16, 12)),
        ("jpeg-exif-6", full.clone(), photo(24, 16)),
        (
            "jpeg-exif-3-big-endian",
            images::jpeg_with_exif(16, 24, 3, ByteOrder::Big),
            photo(16, 24),
        ),
        (
            "jpeg-progressive-420-restarts",
            jpeg_with(33, 17, ColorType::Rgb, |e| {
                e.set_progressive(true);
                e.set_sampling_factor(SamplingFactor::F_2_2);
                e.set_restart_interval(1);
            }),
            photo(33, 17),
        ),
        (
            "jpeg-grey",
            jpeg_with(9, 7, ColorType::Luma, |_| {}),
            photo(9, 7),
        ),
        (
            "jpeg-cmyk",
            jpeg_with(8, 8, ColorType::Cmyk, |_| {}),
            photo(8, 8),
        ),
        // Wider than the 2048 px long edge: resized.
        ("jpeg-wide", images::jpeg(2100, 40), photo(2048, 39)),
        (
            "png-exif-8",
            images::png_with_exif(20, 10, 8),
            photo(20, 10),
        ),
        ("png-alpha", images::png_transparent(12, 12), photo(12, 12)),
        (
            "png-16-bit",
            encoded(&sixteen_bit, ImageFormat::Png),
            photo(20, 12),
        ),
        ("png-grey", encoded(&grey, ImageFormat::Png), photo(20, 12)),
        (
            "png-grey-alpha",
            encoded(&grey_alpha, ImageFormat::Png),
            photo(20, 12),
        ),
        (
            "webp-exif-5",
            images::webp_with_exif(16, 8, 5),
            photo(16, 8),
        ),
        // Refused: cut short, other formats, bombs (from the header), over the 2 MP limit.
        (
            "jpeg-cut",
            full[..full.len() / 2].to_vec(),
            Outcome::default(),
        ),
        ("gif", images::gif(), Outcome::default()),
        ("bmp", images::bmp(8, 8), Outcome::default()),
        (
            "jpeg-bomb",
            images::jpeg_bomb(65_000, 65_000),
            Outcome::default(),
        ),
        (
            "jpeg-3-megapixels",
            images::jpeg_bomb(2000, 1500),
            Outcome::default(),
        ),
        (
            "png-bomb",
            images::png_bomb(100_000, 10),
            Outcome::default(),
        ),
        ("webp-bomb", images::webp_bomb(), Outcome::default()),
        ("noise", images::random_bytes(256, 7), Outcome::default()),
        ("empty", Vec::new(), Outcome::default()),
        // Video heads: the sniffer's side.
        ("mp4", images::mp4_head(), video(VideoContainer::Mp4)),
        ("mov", images::mov_head(), video(VideoContainer::QuickTime)),
        (
            "mov-legacy-wide",
            images::legacy_mov_head(b"wide"),
            video(VideoContainer::QuickTime),
        ),
        ("webm", images::webm_head(), video(VideoContainer::WebM)),
        ("matroska", images::matroska_head(), Outcome::default()),
    ]
}

#[test]
fn generated_inputs_keep_the_fuzz_invariants_and_reach_the_decoders() {
    let dir = std::env::var_os("SPRIG_FUZZ_SEEDS")
        .map(|d| std::path::PathBuf::from(d).join("image_decode"));
    if let Some(dir) = &dir {
        std::fs::create_dir_all(dir).unwrap();
    }
    for (name, data, expect) in seeds() {
        assert_eq!(harness::run(&data), expect, "{name}");
        if let Some(dir) = &dir {
            std::fs::write(dir.join(format!("seed-{name}")), &data).unwrap();
        }
    }
}

/// The input the `image_decode` fuzzer found on its first run (artifact
/// `crash-08f8a549126ca45b7b6bb384c42d0354393b11f0`): an EBML header whose size is an 8-byte
/// integer.
const EIGHT_BYTE_EBML_SIZE: [u8; 92] = [
    0x1a, 0x45, 0xdf, 0xa3, 0xa3, 0x46, 0x42, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x35, 0x6b,
    0x61, 0x42, 0x87, 0x81, 0x04, 0x42, 0xff, 0x12, 0x8f, 0xac, 0x3a, 0x04, 0xc3, 0xeb, 0xaa, 0xe3,
    0xc9, 0x61, 0x1a, 0xfd, 0xdc, 0xb0, 0x75, 0xba, 0xa3, 0xb8, 0x93, 0xe7, 0x30, 0xac, 0x81, 0x61,
    0x36, 0xd4, 0x3b, 0xef, 0x6f, 0x93, 0x48, 0xf0, 0x96, 0xf4, 0x00, 0x00, 0x00, 0x08, 0x77, 0x69,
    0x7d, 0x57, 0xd7, 0x6b, 0xe4, 0x7b, 0xf8, 0xf8, 0xf8, 0xf8, 0xf8, 0xf8, 0xf8, 0xf8, 0xf8, 0x63,
    0xd7, 0x42, 0x1c, 0xf9, 0x26, 0x10, 0x07, 0x88, 0x6a, 0xdb, 0x5b, 0xea,
];

/// Regression: an EBML size written in 8 bytes overflowed the video sniffer's marker mask
/// (`0xFF >> 8` on a u8) and panicked.
#[test]
fn an_eight_byte_ebml_size_does_not_panic_the_video_sniffer() {
    assert_eq!(harness::run(&EIGHT_BYTE_EBML_SIZE), Outcome::default());
    // A WebM head whose EBML header size is written in 8 bytes, as some muxers write it.
    let mut head = vec![0x1A, 0x45, 0xDF, 0xA3, 0x01, 0, 0, 0, 0, 0, 0, 7];
    head.extend_from_slice(&[0x42, 0x82, 0x84]);
    head.extend_from_slice(b"webm");
    head.extend_from_slice(&[
        0x18, 0x53, 0x80, 0x67, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    ]);
    let got = sniff_video(&head, 1 << 20, &Limits::default()).unwrap();
    assert_eq!(got, VideoContainer::WebM);
}

/// The input the `image_decode` fuzzer found on its second run (artifact
/// `crash-011eea1273dcaa74601cc4b50d788ebc763a183e`, minimised by `cargo fuzz tmin` to 413
/// bytes): an 8 × 8 baseline JPEG whose fourth component is sampled 2 × 2 and the others 1 × 1.
const MIXED_SAMPLING_JPEG: &str = concat!(
    "ffd8ffe000104a4649460001020100000000000000ffc00014080008000804001101011101021101032200ff",
    "db0043000503040404030504040405050506070c08070707070f0b0b090c110f1212110f3026b2758e66cf11",
    "1a1511111821181a1d1d1f1f1f13172224221e241c1e1f1effdb0043010505050706070e08080e1e1411141e",
    "1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e",
    "1e1e1e1e1effc4001f0000010501010101010100000000000000000102030405060708090a0bffc400b51000",
    "02010303020403050504040000017d01020300041105122131410613516107227114328191a1082342b1c115",
    "52d1f02433627282090a16ffffffffffffff733435363738393a3fffd43fffd9d2d3d4d5d6d7d8d9dae2e3e4",
    "e5e6e7e8f5f6f7f8f9faffdd00040001ffda0008010000000000d3ffd0d3ffd1f63fffd43fffd90000a9aab2",
    "b3000000bfffd05fffd1f63fffd43fffd9d2d3d4d5d6d7d8d9dae2e3e4e5e6e7e8f5f6f7f8f9faffdd000400",
    "01ffda0008010000000000d3ffd43fffd9",
);

/// Regression: a JPEG with inconsistent sampling factors panicked zune-jpeg's upsampler
/// (`upsampler/avx2.rs`, "input.len() * 2 <= scratch_space.len()") inside `process_photo`.
#[test]
fn a_jpeg_that_panics_the_decoder_is_refused_as_damaged() {
    let jpeg = hex::decode(MIXED_SAMPLING_JPEG).unwrap();
    let e = process_photo(&jpeg, &PhotoOptions::default()).expect_err("the photo is refused");
    assert!(matches!(e, MediaError::CorruptPhoto { .. }), "{e:?}");
    assert!(e.to_string().contains("damaged"), "{e}");
    assert_eq!(harness::run(&jpeg), Outcome::default());
}

/// A WebP whose EXIF chunk declares `declared` bytes, as the `image_decode` fuzzer's third run
/// found it (artifact `oom-baef06829db1418415f749029a661dd82e70dbf0`: 2 GiB in a 1.4 KB file).
fn webp_with_exif_size(declared: u32) -> Vec<u8> {
    let mut webp = images::webp_with_exif(16, 8, 1);
    let at = webp
        .windows(4)
        .position(|w| w == b"EXIF")
        .expect("an EXIF chunk");
    webp[at + 4..at + 8].copy_from_slice(&declared.to_le_bytes());
    webp
}

/// Regression: a WebP chunk that declared more bytes than the file holds made the decoder
/// allocate the declared size (2 GiB, past `max_alloc`) while reading the orientation.
#[test]
fn a_webp_chunk_longer_than_the_file_is_refused_before_it_is_read() {
    let e = process_photo(&webp_with_exif_size(0x8000_04B4), &PhotoOptions::default())
        .expect_err("the photo is refused");
    assert!(
        matches!(&e, MediaError::CorruptPhoto { detail, .. } if detail.contains("ends before")),
        "{e:?}"
    );
    // The same chunk, declared at its true size, is fine.
    let webp = images::webp_with_exif(16, 8, 1);
    let at = webp.windows(4).position(|w| w == b"EXIF").unwrap();
    let true_size = u32::from_le_bytes(webp[at + 4..at + 8].try_into().unwrap());
    assert_eq!(harness::run(&webp_with_exif_size(true_size)), photo(16, 8));
}

//! Generated photos and video heads for media tests: nothing binary is committed.
//!
//! Photos show a recognisable, asymmetric picture ([`upright_pattern`]: a red block in the
//! top-left quadrant, a green block in the top-right one) so a test can tell whether a pipeline
//! turned them the right way up ([`quadrants`]). [`jpeg_with_exif`] stores the pixels transformed
//! by the *inverse* of the EXIF orientation it declares, exactly as a camera does, and carries
//! the metadata that must never leave the device: GPS position, camera make/model, dates, XMP,
//! an ICC profile, a comment and an embedded EXIF thumbnail.

use std::io::Cursor;

use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::codecs::webp::WebPEncoder;
use image::{ExtendedColorType, ImageEncoder, Rgb, RgbImage, imageops};
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};

/// Colour of the block in the top-left quadrant of the upright picture.
pub const RED: Rgb<u8> = Rgb([220, 30, 30]);
/// Colour of the block in the top-right quadrant of the upright picture.
pub const GREEN: Rgb<u8> = Rgb([30, 170, 40]);
/// Colour of everything else in the upright picture.
pub const BACKGROUND: Rgb<u8> = Rgb([205, 205, 235]);

/// GPS latitude written into generated EXIF, as degrees/minutes/seconds rationals.
pub const GPS_LATITUDE: [(u32, u32); 3] = [(51, 1), (30, 1), (1234, 100)];
/// GPS longitude written into generated EXIF, as degrees/minutes/seconds rationals.
pub const GPS_LONGITUDE: [(u32, u32); 3] = [(0, 1), (7, 1), (3999, 100)];
/// Camera make written into generated EXIF.
pub const CAMERA_MAKE: &str = "SprigCam";
/// Camera model written into generated EXIF.
pub const CAMERA_MODEL: &str = "Tablet One";
/// Comment (JPEG COM segment) written into generated JPEGs: a place that must not leak.
pub const COMMENT: &str = "Little Acorns Pre-school, 12 High Street";
/// A marker string inside the generated XMP packet.
pub const XMP_MARKER: &str = "sprig-test-xmp-location";
/// A marker string inside the generated ICC profile.
pub const ICC_MARKER: &str = "sprig-test-icc";

/// Byte order of the TIFF structure inside an EXIF block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ByteOrder {
    /// `II`, Intel order, as most phones write.
    Little,
    /// `MM`, Motorola order, as some cameras write.
    Big,
}

impl ByteOrder {
    fn u16(self, v: u16) -> [u8; 2] {
        match self {
            Self::Little => v.to_le_bytes(),
            Self::Big => v.to_be_bytes(),
        }
    }

    fn u32(self, v: u32) -> [u8; 4] {
        match self {
            Self::Little => v.to_le_bytes(),
            Self::Big => v.to_be_bytes(),
        }
    }
}

/// The upright test picture: a red block in the top-left quadrant, a green block in the
/// top-right quadrant, background elsewhere. Every one of the eight orientations moves at least
/// one block to a different quadrant, so [`quadrants`] tells them all apart.
#[must_use]
pub fn upright_pattern(width: u32, height: u32) -> RgbImage {
    let (qw, qh) = (width / 2, height / 2);
    // Each block covers the middle three quarters of its quadrant.
    let in_block =
        |v: u32, start: u32, size: u32| v >= start + size / 8 && v < start + size * 7 / 8;
    RgbImage::from_fn(width, height, |x, y| {
        if in_block(y, 0, qh) {
            if in_block(x, 0, qw) {
                return RED;
            }
            if in_block(x, qw, width - qw) {
                return GREEN;
            }
        }
        BACKGROUND
    })
}

/// Which colour sits at the centre of each quadrant: `[top-left, top-right, bottom-left,
/// bottom-right]`, each `"red"`, `"green"`, `"background"` or `"other"`. An upright picture
/// gives [`UPRIGHT`].
#[must_use]
pub fn quadrants(image: &RgbImage) -> [&'static str; 4] {
    let (w, h) = image.dimensions();
    let centres = [
        (w / 4, h / 4),
        (w * 3 / 4, h / 4),
        (w / 4, h * 3 / 4),
        (w * 3 / 4, h * 3 / 4),
    ];
    centres.map(|(x, y)| name_colour(average(image, x, y)))
}

/// What [`quadrants`] returns for an upright picture.
pub const UPRIGHT: [&str; 4] = ["red", "green", "background", "background"];

fn average(image: &RgbImage, cx: u32, cy: u32) -> [u32; 3] {
    let (w, h) = image.dimensions();
    let mut sum = [0u32; 3];
    let mut n = 0;
    for y in cy.saturating_sub(2)..(cy + 3).min(h) {
        for x in cx.saturating_sub(2)..(cx + 3).min(w) {
            let p = image.get_pixel(x, y).0;
            for c in 0..3 {
                sum[c] += u32::from(p[c]);
            }
            n += 1;
        }
    }
    sum.map(|s| s / n.max(1))
}

fn name_colour(rgb: [u32; 3]) -> &'static str {
    // Generous tolerance: JPEG at quality 82 moves flat colours by a few levels.
    let near = |c: Rgb<u8>| {
        rgb.iter()
            .zip(c.0)
            .all(|(&a, b)| a.abs_diff(u32::from(b)) <= 40)
    };
    if near(RED) {
        "red"
    } else if near(GREEN) {
        "green"
    } else if near(BACKGROUND) {
        "background"
    } else {
        "other"
    }
}

/// The pixels a camera stores for an upright picture when it declares EXIF `orientation`: the
/// upright picture transformed by the inverse of that orientation. A viewer that applies the
/// orientation shows the upright picture again.
///
/// # Panics
/// If `orientation` is not 1..=8.
#[must_use]
pub fn stored_pixels(upright: &RgbImage, orientation: u8) -> RgbImage {
    match orientation {
        1 => upright.clone(),
        2 => imageops::flip_horizontal(upright),
        3 => imageops::rotate180(upright),
        4 => imageops::flip_vertical(upright),
        // Transpose and transverse are their own inverses.
        5 => transpose(upright),
        // Displaying 6 rotates 90° clockwise, so the camera stored it 90° anticlockwise.
        6 => imageops::rotate270(upright),
        7 => transverse(upright),
        8 => imageops::rotate90(upright),
        _ => panic!("EXIF orientation must be 1..=8, got {orientation}"),
    }
}

/// Mirror across the top-left/bottom-right diagonal: (x, y) → (y, x).
fn transpose(src: &RgbImage) -> RgbImage {
    let (w, h) = src.dimensions();
    RgbImage::from_fn(h, w, |x, y| *src.get_pixel(y, x))
}

/// Mirror across the top-right/bottom-left diagonal: (x, y) → (h-1-y, w-1-x).
fn transverse(src: &RgbImage) -> RgbImage {
    let (w, h) = src.dimensions();
    RgbImage::from_fn(h, w, |x, y| *src.get_pixel(w - 1 - y, h - 1 - x))
}

// --- EXIF -------------------------------------------------------------------------------------

const ASCII: u16 = 2;
const BYTE: u16 = 1;
const SHORT: u16 = 3;
const LONG: u16 = 4;
const RATIONAL: u16 = 5;

struct Entry {
    tag: u16,
    kind: u16,
    count: u32,
    data: Vec<u8>,
}

impl Entry {
    fn ascii(tag: u16, s: &str) -> Self {
        let mut data = s.as_bytes().to_vec();
        data.push(0);
        Self {
            tag,
            kind: ASCII,
            count: u32::try_from(data.len()).expect("short"),
            data,
        }
    }

    fn short(tag: u16, v: u16, o: ByteOrder) -> Self {
        Self {
            tag,
            kind: SHORT,
            count: 1,
            data: o.u16(v).to_vec(),
        }
    }

    fn long(tag: u16, v: u32, o: ByteOrder) -> Self {
        Self {
            tag,
            kind: LONG,
            count: 1,
            data: o.u32(v).to_vec(),
        }
    }

    fn rationals(tag: u16, values: &[(u32, u32)], o: ByteOrder) -> Self {
        let data = values
            .iter()
            .flat_map(|&(n, d)| o.u32(n).into_iter().chain(o.u32(d)))
            .collect();
        Self {
            tag,
            kind: RATIONAL,
            count: u32::try_from(values.len()).expect("short"),
            data,
        }
    }
}

/// Bytes an IFD occupies: count, entries, next-IFD offset, then out-of-line values.
fn ifd_len(entries: &[Entry]) -> u32 {
    let inline = 2 + 12 * entries.len() + 4;
    let extra: usize = entries
        .iter()
        .filter(|e| e.data.len() > 4)
        .map(|e| e.data.len().next_multiple_of(2))
        .sum();
    u32::try_from(inline + extra).expect("small IFD")
}

/// Writes an IFD at the current end of `tiff` (which must be its offset), values after it.
fn write_ifd(tiff: &mut Vec<u8>, entries: &[Entry], next_ifd: u32, o: ByteOrder) {
    let count = u16::try_from(entries.len()).expect("few entries");
    let values_at = u32::try_from(tiff.len()).expect("small TIFF") + 2 + 12 * u32::from(count) + 4;
    let mut values = Vec::new();
    tiff.extend(o.u16(count));
    for e in entries {
        tiff.extend(o.u16(e.tag));
        tiff.extend(o.u16(e.kind));
        tiff.extend(o.u32(e.count));
        if e.data.len() <= 4 {
            // Small values sit left-justified in the offset field.
            let mut field = [0u8; 4];
            field[..e.data.len()].copy_from_slice(&e.data);
            tiff.extend(field);
        } else {
            tiff.extend(o.u32(values_at + u32::try_from(values.len()).expect("small")));
            values.extend(&e.data);
            if values.len() % 2 == 1 {
                values.push(0);
            }
        }
    }
    tiff.extend(o.u32(next_ifd));
    tiff.extend(values);
}

/// A raw EXIF block (a TIFF structure starting `II*\0` or `MM\0*`, as PNG `eXIf` and WebP `EXIF`
/// chunks carry it) with IFD0 (Make, Model, Orientation, DateTime), an EXIF IFD
/// (DateTimeOriginal), a GPS IFD (latitude/longitude rationals) and IFD1 describing an embedded
/// JPEG thumbnail.
///
/// # Panics
/// If the thumbnail cannot be encoded (never for the built-in one).
#[must_use]
pub fn exif_tiff(orientation: u16, o: ByteOrder) -> Vec<u8> {
    let thumbnail = encode_jpeg(&upright_pattern(32, 24), 60);
    let thumbnail_len = u32::try_from(thumbnail.len()).expect("tiny");

    // IFD0 has 6 entries, the EXIF IFD 1, GPS 5, IFD1 2. Offsets are computed from the sizes,
    // which do not depend on the offsets (pointers are inline LONGs).
    let ifd0_len = ifd_len(&ifd0_entries(orientation, 0, 0, o));
    let exif_len = ifd_len(&exif_entries());
    let gps_len = ifd_len(&gps_entries(o));
    let exif_at = 8 + ifd0_len;
    let gps_at = exif_at + exif_len;
    let ifd1_at = gps_at + gps_len;
    let ifd1_len = ifd_len(&ifd1_entries(0, 0, o));
    let thumbnail_at = ifd1_at + ifd1_len;

    let mut tiff = Vec::new();
    match o {
        ByteOrder::Little => tiff.extend(b"II"),
        ByteOrder::Big => tiff.extend(b"MM"),
    }
    tiff.extend(o.u16(42));
    tiff.extend(o.u32(8));
    write_ifd(
        &mut tiff,
        &ifd0_entries(orientation, exif_at, gps_at, o),
        ifd1_at,
        o,
    );
    debug_assert_eq!(tiff.len(), exif_at as usize);
    write_ifd(&mut tiff, &exif_entries(), 0, o);
    write_ifd(&mut tiff, &gps_entries(o), 0, o);
    write_ifd(
        &mut tiff,
        &ifd1_entries(thumbnail_at, thumbnail_len, o),
        0,
        o,
    );
    debug_assert_eq!(tiff.len(), thumbnail_at as usize);
    tiff.extend(thumbnail);
    tiff
}

fn ifd0_entries(orientation: u16, exif_at: u32, gps_at: u32, o: ByteOrder) -> Vec<Entry> {
    vec![
        Entry::ascii(0x010F, CAMERA_MAKE),
        Entry::ascii(0x0110, CAMERA_MODEL),
        Entry::short(0x0112, orientation, o),
        Entry::ascii(0x0132, "2024:05:17 10:31:07"),
        Entry::long(0x8769, exif_at, o),
        Entry::long(0x8825, gps_at, o),
    ]
}

fn exif_entries() -> Vec<Entry> {
    vec![Entry::ascii(0x9003, "2024:05:17 10:31:07")]
}

fn gps_entries(o: ByteOrder) -> Vec<Entry> {
    vec![
        Entry {
            tag: 0x0000,
            kind: BYTE,
            count: 4,
            data: vec![2, 3, 0, 0],
        },
        Entry::ascii(0x0001, "N"),
        Entry::rationals(0x0002, &GPS_LATITUDE, o),
        Entry::ascii(0x0003, "W"),
        Entry::rationals(0x0004, &GPS_LONGITUDE, o),
    ]
}

fn ifd1_entries(thumbnail_at: u32, thumbnail_len: u32, o: ByteOrder) -> Vec<Entry> {
    vec![
        Entry::long(0x0201, thumbnail_at, o),
        Entry::long(0x0202, thumbnail_len, o),
    ]
}

/// A JPEG APP1 segment (marker, length, `Exif\0\0`, [`exif_tiff`]).
#[must_use]
pub fn exif_app1(orientation: u16, o: ByteOrder) -> Vec<u8> {
    let mut payload = b"Exif\0\0".to_vec();
    payload.extend(exif_tiff(orientation, o));
    segment(0xE1, &payload)
}

fn segment(marker: u8, payload: &[u8]) -> Vec<u8> {
    let len = u16::try_from(payload.len() + 2).expect("segment under 64 KiB");
    let mut s = vec![0xFF, marker];
    s.extend(len.to_be_bytes());
    s.extend(payload);
    s
}

fn xmp_app1() -> Vec<u8> {
    let mut payload = b"http://ns.adobe.com/xap/1.0/\0".to_vec();
    payload.extend(
        format!(
            "<x:xmpmeta xmlns:x=\"adobe:ns:meta/\"><rdf:RDF \
             xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\"><rdf:Description \
             xmlns:exif=\"http://ns.adobe.com/exif/1.0/\" exif:GPSLatitude=\"51,30.2N\" \
             exif:GPSLongitude=\"0,7.6W\" note=\"{XMP_MARKER}\"/></rdf:RDF></x:xmpmeta>"
        )
        .as_bytes(),
    );
    segment(0xE1, &payload)
}

fn icc_app2() -> Vec<u8> {
    // A header-shaped profile with an empty tag table, then our marker: decoders only carry it.
    let marker = ICC_MARKER.as_bytes();
    let size = u32::try_from(132 + marker.len()).expect("small");
    let mut profile = vec![0u8; 132];
    profile[..4].copy_from_slice(&size.to_be_bytes());
    profile[36..40].copy_from_slice(b"acsp");
    profile.extend(marker);
    let mut payload = b"ICC_PROFILE\0".to_vec();
    payload.extend([1, 1]);
    payload.extend(profile);
    segment(0xE2, &payload)
}

// --- Photos ------------------------------------------------------------------------------------

fn encode_jpeg(image: &RgbImage, quality: u8) -> Vec<u8> {
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, quality)
        .write_image(
            image.as_raw(),
            image.width(),
            image.height(),
            ExtendedColorType::Rgb8,
        )
        .expect("in-memory JPEG encoding cannot fail");
    out
}

/// A JPEG without any metadata segment, showing [`upright_pattern`].
#[must_use]
pub fn jpeg(width: u32, height: u32) -> Vec<u8> {
    encode_jpeg(&upright_pattern(width, height), 92)
}

/// Inserts `segments` right after a JPEG's SOI marker.
fn with_segments(jpeg: &[u8], segments: &[Vec<u8>]) -> Vec<u8> {
    assert_eq!(&jpeg[..2], [0xFF, 0xD8], "not a JPEG");
    let mut out = jpeg[..2].to_vec();
    for s in segments {
        out.extend(s);
    }
    out.extend(&jpeg[2..]);
    out
}

/// A camera-like JPEG whose *upright* picture is [`upright_pattern`]`(width, height)`: the stored
/// pixels are transformed by the inverse of `orientation` (so for 5–8 the stored image is
/// `height` × `width`), with a hand-built EXIF APP1 (Orientation, GPS, Make/Model, dates,
/// embedded thumbnail), an XMP APP1, an ICC APP2 and a COM comment.
#[must_use]
pub fn jpeg_with_exif(width: u32, height: u32, orientation: u8, order: ByteOrder) -> Vec<u8> {
    let stored = stored_pixels(&upright_pattern(width, height), orientation);
    let plain = encode_jpeg(&stored, 92);
    with_segments(
        &plain,
        &[
            exif_app1(u16::from(orientation), order),
            xmp_app1(),
            icc_app2(),
            segment(0xFE, COMMENT.as_bytes()),
        ],
    )
}

/// A PNG showing [`upright_pattern`], stored for `orientation` like [`jpeg_with_exif`], with an
/// `eXIf` chunk (GPS and all). Orientation 1 still carries the EXIF.
#[must_use]
pub fn png_with_exif(width: u32, height: u32, orientation: u8) -> Vec<u8> {
    let stored = stored_pixels(&upright_pattern(width, height), orientation);
    let mut out = Vec::new();
    let mut encoder = PngEncoder::new(&mut out);
    encoder
        .set_exif_metadata(exif_tiff(u16::from(orientation), ByteOrder::Big))
        .expect("PNG carries EXIF");
    encoder
        .write_image(
            stored.as_raw(),
            stored.width(),
            stored.height(),
            ExtendedColorType::Rgb8,
        )
        .expect("in-memory PNG encoding cannot fail");
    out
}

/// A PNG with an alpha channel: [`upright_pattern`] where the background is fully transparent.
#[must_use]
pub fn png_transparent(width: u32, height: u32) -> Vec<u8> {
    let rgb = upright_pattern(width, height);
    let rgba = image::RgbaImage::from_fn(width, height, |x, y| {
        let p = rgb.get_pixel(x, y).0;
        let alpha = if *rgb.get_pixel(x, y) == BACKGROUND {
            0
        } else {
            255
        };
        image::Rgba([p[0], p[1], p[2], alpha])
    });
    let mut out = Vec::new();
    PngEncoder::new(&mut out)
        .write_image(rgba.as_raw(), width, height, ExtendedColorType::Rgba8)
        .expect("in-memory PNG encoding cannot fail");
    out
}

/// A lossless WebP showing [`upright_pattern`], stored for `orientation`, with an `EXIF` chunk.
#[must_use]
pub fn webp_with_exif(width: u32, height: u32, orientation: u8) -> Vec<u8> {
    let stored = stored_pixels(&upright_pattern(width, height), orientation);
    let mut out = Vec::new();
    let mut encoder = WebPEncoder::new_lossless(&mut out);
    encoder
        .set_exif_metadata(exif_tiff(u16::from(orientation), ByteOrder::Little))
        .expect("WebP carries EXIF");
    encoder
        .write_image(
            stored.as_raw(),
            stored.width(),
            stored.height(),
            ExtendedColorType::Rgb8,
        )
        .expect("in-memory WebP encoding cannot fail");
    out
}

/// A 1×1 GIF89a: a real image in a format Sprig refuses.
#[must_use]
pub fn gif() -> Vec<u8> {
    let mut g = b"GIF89a".to_vec();
    g.extend([1, 0, 1, 0, 0x80, 0, 0]); // 1×1, global colour table of 2 entries
    g.extend([0xFF, 0xFF, 0xFF, 0, 0, 0]);
    g.extend([0x2C, 0, 0, 0, 0, 1, 0, 1, 0, 0]); // image descriptor
    g.extend([2, 2, 0x44, 0x01, 0]); // LZW min code size 2, one sub-block, terminator
    g.push(0x3B);
    g
}

/// A 24-bit uncompressed BMP showing [`upright_pattern`]: a real image in a format Sprig refuses.
#[must_use]
pub fn bmp(width: u32, height: u32) -> Vec<u8> {
    let image = upright_pattern(width, height);
    let row = (width * 3).next_multiple_of(4);
    let pixels = row * height;
    let mut b = b"BM".to_vec();
    b.extend((54 + pixels).to_le_bytes());
    b.extend([0; 4]);
    b.extend(54u32.to_le_bytes());
    b.extend(40u32.to_le_bytes());
    b.extend(width.to_le_bytes());
    b.extend(height.to_le_bytes());
    b.extend(1u16.to_le_bytes());
    b.extend(24u16.to_le_bytes());
    b.extend([0; 4]); // BI_RGB
    b.extend(pixels.to_le_bytes());
    b.extend([0; 16]);
    for y in (0..height).rev() {
        let start = b.len();
        for x in 0..width {
            let [r, g, bl] = image.get_pixel(x, y).0;
            b.extend([bl, g, r]);
        }
        b.resize(start + row as usize, 0);
    }
    b
}

/// `len` bytes of deterministic noise.
#[must_use]
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut out = vec![0; len];
    StdRng::seed_from_u64(seed).fill_bytes(&mut out);
    out
}

/// A decompression bomb: a small, valid JPEG whose frame header (SOF) claims
/// `width` × `height`. Decoding it for real would need `width * height * 3` bytes.
///
/// # Panics
/// If the generated JPEG has no SOF0 marker (never).
#[must_use]
pub fn jpeg_bomb(width: u16, height: u16) -> Vec<u8> {
    let mut j = jpeg(16, 16);
    let sof = j
        .windows(2)
        .position(|w| w == [0xFF, 0xC0])
        .expect("baseline JPEG has SOF0");
    // FF C0, length (2), precision (1), height (2), width (2).
    j[sof + 5..sof + 7].copy_from_slice(&height.to_be_bytes());
    j[sof + 7..sof + 9].copy_from_slice(&width.to_be_bytes());
    j
}

/// A decompression bomb: a small, valid PNG whose IHDR claims `width` × `height` (CRC fixed up).
#[must_use]
pub fn png_bomb(width: u32, height: u32) -> Vec<u8> {
    let mut p = png_with_exif(16, 16, 1);
    // Signature (8), IHDR length (4), "IHDR" (4), width (4), height (4), 5 more, CRC (4).
    p[16..20].copy_from_slice(&width.to_be_bytes());
    p[20..24].copy_from_slice(&height.to_be_bytes());
    let crc = crc32(&p[12..29]);
    p[29..33].copy_from_slice(&crc.to_be_bytes());
    p
}

/// A decompression bomb: a small lossless WebP whose VP8L header claims 16383 × 16383, the most
/// WebP can express (268 megapixels).
///
/// # Panics
/// If the generated WebP is not a simple lossless one (never).
#[must_use]
pub fn webp_bomb() -> Vec<u8> {
    let stored = upright_pattern(16, 16);
    let mut w = Vec::new();
    WebPEncoder::new_lossless(&mut w)
        .write_image(stored.as_raw(), 16, 16, ExtendedColorType::Rgb8)
        .expect("in-memory WebP encoding cannot fail");
    assert_eq!(&w[12..16], b"VP8L", "simple lossless WebP");
    // RIFF header (12), chunk header (8), signature 0x2F, then 14 bits width-1, 14 bits height-1.
    let at = 21;
    let mut bits = u32::from_le_bytes(w[at..at + 4].try_into().expect("4 bytes"));
    bits = (bits & !0x0FFF_FFFF) | 16382 | (16382 << 14);
    w[at..at + 4].copy_from_slice(&bits.to_le_bytes());
    w
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A deterministic 4000 × 3000 (12 MP) camera-like JPEG for benchmarks: smooth gradients, some
/// texture and sensor-like noise so it decodes and compresses like a photo (≈ 3–4 MB at quality
/// 90), with the same EXIF (orientation 1, GPS) as [`jpeg_with_exif`].
#[must_use]
pub fn photo_12mp() -> Vec<u8> {
    photo_like(4000, 3000)
}

/// A deterministic camera-like JPEG of any size; see [`photo_12mp`].
#[must_use]
pub fn photo_like(width: u32, height: u32) -> Vec<u8> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut noise = move || {
        // xorshift64*: fast and the same on every platform and `rand` version.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 59) as i32 - 16
    };
    let (w, h) = (f64::from(width), f64::from(height));
    let mut image = RgbImage::new(width, height);
    for (x, y, p) in image.enumerate_pixels_mut() {
        let (fx, fy) = (f64::from(x) / w, f64::from(y) / h);
        let texture = ((fx * 180.0).sin() * (fy * 140.0).cos() * 18.0) as i32;
        let blob = (((fx - 0.6).powi(2) + (fy - 0.4).powi(2)).sqrt() * 9.0).cos() * 40.0;
        let n = noise();
        let r = 90.0 + 120.0 * fy + blob;
        let g = 140.0 + 60.0 * fx - blob * 0.5;
        let b = 200.0 - 110.0 * fy;
        let ch = |v: f64| u8::try_from((v as i32 + texture + n).clamp(0, 255)).expect("clamped");
        *p = Rgb([ch(r), ch(g), ch(b)]);
    }
    with_segments(
        &encode_jpeg(&image, 90),
        &[
            exif_app1(1, ByteOrder::Little),
            segment(0xFE, COMMENT.as_bytes()),
        ],
    )
}

// --- Video heads ---------------------------------------------------------------------------------

fn mp4_box(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len() + 8).expect("small box");
    let mut b = len.to_be_bytes().to_vec();
    b.extend(kind);
    b.extend(payload);
    b
}

/// The head of an ISO-BMFF file: an `ftyp` box with `major` brand and `compatible` brands, then
/// the start of an `mdat` box whose header claims `mdat_len` bytes.
#[must_use]
pub fn iso_bmff_head(major: &[u8; 4], compatible: &[&[u8; 4]], mdat_len: u32) -> Vec<u8> {
    let mut ftyp = major.to_vec();
    ftyp.extend(0x200u32.to_be_bytes());
    for c in compatible {
        ftyp.extend(*c);
    }
    let mut head = mp4_box(b"ftyp", &ftyp);
    head.extend(mdat_len.to_be_bytes());
    head.extend(b"mdat");
    head.extend(random_bytes(256, 7));
    head
}

/// The head of an MP4 as phones record it (`isom` brand).
#[must_use]
pub fn mp4_head() -> Vec<u8> {
    iso_bmff_head(b"isom", &[b"isom", b"iso2", b"avc1", b"mp41"], 1 << 20)
}

/// The head of a QuickTime MOV as iPhones record it (`qt  ` brand).
#[must_use]
pub fn mov_head() -> Vec<u8> {
    iso_bmff_head(b"qt  ", &[b"qt  "], 1 << 20)
}

/// The head of a legacy QuickTime MOV without `ftyp`: it starts with `atom` (`moov`, `mdat`,
/// `wide`, `free`, ...) followed by an `mdat`.
#[must_use]
pub fn legacy_mov_head(atom: &[u8; 4]) -> Vec<u8> {
    let mut head = match atom {
        b"wide" => mp4_box(atom, &[]),
        b"mdat" => {
            let mut b = (1u32 << 20).to_be_bytes().to_vec();
            b.extend(b"mdat");
            b.extend(random_bytes(64, 3));
            return b;
        }
        _ => mp4_box(atom, &random_bytes(24, 5)),
    };
    head.extend((1u32 << 20).to_be_bytes());
    head.extend(b"mdat");
    head.extend(random_bytes(64, 3));
    head
}

fn ebml_head(doc_type: &str) -> Vec<u8> {
    let mut body = vec![0x42, 0x86, 0x81, 0x01]; // EBMLVersion 1
    body.extend([0x42, 0xF7, 0x81, 0x01]); // EBMLReadVersion 1
    body.extend([0x42, 0xF2, 0x81, 0x04]); // EBMLMaxIDLength 4
    body.extend([0x42, 0xF3, 0x81, 0x08]); // EBMLMaxSizeLength 8
    body.extend([
        0x42,
        0x82,
        0x80 | u8::try_from(doc_type.len()).expect("short"),
    ]);
    body.extend(doc_type.as_bytes());
    body.extend([0x42, 0x87, 0x81, 0x04]); // DocTypeVersion 4
    body.extend([0x42, 0x85, 0x81, 0x02]); // DocTypeReadVersion 2
    let mut head = vec![
        0x1A,
        0x45,
        0xDF,
        0xA3,
        0x80 | u8::try_from(body.len()).expect("short"),
    ];
    head.extend(body);
    // Segment of unknown size, then a little payload.
    head.extend([
        0x18, 0x53, 0x80, 0x67, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    ]);
    head.extend(random_bytes(64, 11));
    head
}

/// The head of a WebM file: EBML header with DocType `webm`, then a Segment.
#[must_use]
pub fn webm_head() -> Vec<u8> {
    ebml_head("webm")
}

/// The head of a Matroska (MKV) file: EBML header with DocType `matroska`.
#[must_use]
pub fn matroska_head() -> Vec<u8> {
    ebml_head("matroska")
}

/// Decodes any image with the `image` crate into RGB, for checking pipeline output.
///
/// # Panics
/// If `bytes` is not a decodable image.
#[must_use]
pub fn decode_rgb(bytes: &[u8]) -> RgbImage {
    image::ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .expect("in-memory read")
        .decode()
        .expect("decodable image")
        .to_rgb8()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_orientation_round_trips_through_image_crate() {
        // image's own apply_orientation undoes what stored_pixels did.
        let upright = upright_pattern(40, 30);
        for n in 1..=8 {
            let mut img = image::DynamicImage::ImageRgb8(stored_pixels(&upright, n));
            img.apply_orientation(image::metadata::Orientation::from_exif(n).expect("1..=8"));
            assert_eq!(img.to_rgb8(), upright, "orientation {n}");
        }
    }

    #[test]
    fn quadrants_tell_all_eight_orientations_apart() {
        let upright = upright_pattern(40, 30);
        let mut seen: Vec<_> = (1..=8)
            .map(|n| quadrants(&stored_pixels(&upright, n)))
            .collect();
        assert_eq!(seen[0], UPRIGHT);
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), 8);
    }

    #[test]
    fn exif_declares_orientation_in_both_byte_orders() {
        for o in [ByteOrder::Little, ByteOrder::Big] {
            for n in 1..=8u8 {
                let tiff = exif_tiff(u16::from(n), o);
                assert_eq!(
                    image::metadata::Orientation::from_exif_chunk(&tiff)
                        .map(image::metadata::Orientation::to_exif),
                    Some(n)
                );
            }
        }
    }

    #[test]
    fn generated_images_decode() {
        assert_eq!(
            decode_rgb(&jpeg_with_exif(40, 30, 6, ByteOrder::Big)).dimensions(),
            (30, 40)
        );
        assert_eq!(decode_rgb(&png_with_exif(40, 30, 1)).dimensions(), (40, 30));
        assert_eq!(
            decode_rgb(&webp_with_exif(40, 30, 8)).dimensions(),
            (30, 40)
        );
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }
}

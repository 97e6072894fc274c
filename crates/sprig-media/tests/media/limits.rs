//! Decompression bombs are refused from the header, before any pixel buffer exists.
//!
//! Proof that nothing was allocated or decoded: the bombs claim up to 3 TB of pixels, so an
//! allocation would abort this test binary; and they carry only 16×16 pixels of data, so a decode
//! attempt would fail as `CorruptPhoto`, not with a limit variant.

use sprig_media::{Limits, MediaError, PhotoOptions, process_photo};
use sprig_testkit::images;

fn refuse(bytes: &[u8]) -> MediaError {
    process_photo(bytes, &PhotoOptions::default()).expect_err("input is refused")
}

#[test]
fn jpeg_bomb_is_refused_from_its_header() {
    let e = refuse(&images::jpeg_bomb(65_000, 65_000));
    assert!(
        matches!(
            e,
            MediaError::PhotoDimensionsTooLarge {
                width: 65_000,
                height: 65_000,
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn png_bomb_is_refused_from_its_header() {
    let e = refuse(&images::png_bomb(1_000_000, 1_000_000));
    assert!(
        matches!(
            e,
            MediaError::PhotoDimensionsTooLarge {
                width: 1_000_000,
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn webp_bomb_is_refused_from_its_header() {
    let e = refuse(&images::webp_bomb());
    assert!(
        matches!(e, MediaError::PhotoDimensionsTooLarge { width: 16_383, .. }),
        "{e:?}"
    );
}

#[test]
fn too_many_megapixels_within_the_edge_limits_is_refused() {
    // 11 000 × 11 000 fits the 12 000 px edges but is 121 megapixels.
    let e = refuse(&images::jpeg_bomb(11_000, 11_000));
    assert!(matches!(e, MediaError::PhotoTooManyPixels { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "This photo is too large (121.0 megapixels); the limit is 100 megapixels. Resize it, \
         then try again."
    );
    assert_eq!(e.code(), "media.photo_too_large");
    assert!(e.is_limit());
}

#[test]
fn limits_are_configurable() {
    let photo = images::jpeg(2000, 1500);
    let mut options = PhotoOptions::default();
    options.limits.max_pixels = 2_000_000;
    let e = process_photo(&photo, &options).unwrap_err();
    assert!(
        matches!(
            e,
            MediaError::PhotoTooManyPixels {
                max_pixels: 2_000_000,
                ..
            }
        ),
        "{e:?}"
    );

    let mut options = PhotoOptions::default();
    options.limits.max_width = 1999;
    let e = process_photo(&photo, &options).unwrap_err();
    assert!(
        matches!(
            e,
            MediaError::PhotoDimensionsTooLarge {
                max_width: 1999,
                ..
            }
        ),
        "{e:?}"
    );

    let mut options = PhotoOptions::default();
    options.limits.max_photo_bytes = 1000;
    let e = process_photo(&photo, &options).unwrap_err();
    assert!(
        matches!(
            e,
            MediaError::PhotoFileTooLarge {
                max_bytes: 1000,
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn allocation_cap_is_checked_before_decoding() {
    let mut options = PhotoOptions::default();
    options.limits.max_alloc = 1024 * 1024;
    let e = process_photo(&images::jpeg(2000, 1500), &options).unwrap_err();
    // 2000 × 1500 RGB needs 9 000 000 bytes.
    assert!(
        matches!(
            e,
            MediaError::PhotoNeedsTooMuchMemory {
                needed: Some(9_000_000),
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("(9 MiB; the limit is 1 MiB)"), "{e}");
}

#[test]
fn default_limits_accept_a_large_real_photo_size() {
    // 100 megapixels exactly is allowed; checked from the header only.
    let limits = Limits::default();
    assert_eq!(limits.max_pixels, 100_000_000);
    assert!(u64::from(limits.max_width) * u64::from(limits.max_height) > limits.max_pixels);
    let e = refuse(&images::jpeg_bomb(10_000, 10_001));
    assert!(matches!(e, MediaError::PhotoTooManyPixels { .. }));
}

#[test]
fn invalid_options_are_refused() {
    let mut options = PhotoOptions::default();
    options.long_edge = 0;
    let e = process_photo(&images::jpeg(10, 10), &options).unwrap_err();
    assert!(matches!(e, MediaError::InvalidOptions { .. }), "{e:?}");
    let mut options = PhotoOptions::default();
    options.jpeg_quality = 0;
    assert!(matches!(
        process_photo(&images::jpeg(10, 10), &options),
        Err(MediaError::InvalidOptions { .. })
    ));
}

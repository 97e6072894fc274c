//! Limits against hostile or accidental huge inputs, and the pipeline's output settings.

use crate::MediaError;

/// Size limits checked before any large allocation. The defaults accept every phone and camera
/// photo and every tablet video clip while refusing decompression bombs.
///
/// Construct with [`Limits::default()`] and adjust fields:
///
/// ```
/// let mut limits = sprig_media::Limits::default();
/// limits.max_video_bytes = 200 * 1024 * 1024;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Largest photo width accepted, read from the file header before decoding. Default 12 000.
    pub max_width: u32,
    /// Largest photo height accepted, read from the file header before decoding. Default 12 000.
    pub max_height: u32,
    /// Largest width × height accepted. Default 100 megapixels.
    pub max_pixels: u64,
    /// Most bytes the decoder may allocate for one photo (the decoded pixels count). Default
    /// 512 MiB: a 100-megapixel RGB photo needs 300 MB.
    pub max_alloc: u64,
    /// Largest encoded photo file accepted. Default 64 MiB.
    pub max_photo_bytes: u64,
    /// Largest video file accepted. Default 500 MiB.
    pub max_video_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_width: 12_000,
            max_height: 12_000,
            max_pixels: 100_000_000,
            max_alloc: 512 * 1024 * 1024,
            max_photo_bytes: 64 * 1024 * 1024,
            max_video_bytes: 500 * 1024 * 1024,
        }
    }
}

/// What [`process_photo`](crate::process_photo) produces, and the [`Limits`] it enforces.
///
/// ```
/// let mut options = sprig_media::PhotoOptions::default();
/// options.thumbnail_long_edge = 256;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PhotoOptions {
    /// Long edge of the stored photo in pixels; smaller photos are never enlarged. Default 2048.
    pub long_edge: u32,
    /// Long edge of the thumbnail in pixels; never larger than the photo. Default 320.
    pub thumbnail_long_edge: u32,
    /// JPEG quality, 1–100, for photo and thumbnail. Default 82.
    pub jpeg_quality: u8,
    /// Size limits.
    pub limits: Limits,
}

impl Default for PhotoOptions {
    fn default() -> Self {
        Self {
            long_edge: 2048,
            thumbnail_long_edge: 320,
            jpeg_quality: 82,
            limits: Limits::default(),
        }
    }
}

impl PhotoOptions {
    pub(crate) fn validate(&self) -> Result<(), MediaError> {
        let invalid = |detail: &str| {
            Err(MediaError::InvalidOptions {
                detail: detail.to_owned(),
            })
        };
        // JPEG cannot express more than 65 535 pixels along an edge.
        if !(1..=65_535).contains(&self.long_edge) {
            return invalid("long_edge must be 1..=65535 pixels");
        }
        if !(1..=65_535).contains(&self.thumbnail_long_edge) {
            return invalid("thumbnail_long_edge must be 1..=65535 pixels");
        }
        if !(1..=100).contains(&self.jpeg_quality) {
            return invalid("jpeg_quality must be 1..=100");
        }
        Ok(())
    }
}

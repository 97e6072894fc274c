//! The one error type of this crate.

use crate::PhotoFormat;

/// Why a photo or video was refused. Every message tells a key worker what to do next.
///
/// All of these are permanent for the given input: retrying with the same bytes gives the same
/// error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MediaError {
    /// The file has no bytes at all.
    #[error("This file is empty. Choose it again, or retake the photo or video.")]
    Empty,

    /// The file is an image in a format Sprig does not accept (GIF, BMP, TIFF, HEIC, AVIF, …).
    #[error(
        "This is a {format} image, which Sprig cannot use. Use a JPEG, PNG or WebP photo, or \
         take the photo with the Sprig camera."
    )]
    UnsupportedPhotoFormat {
        /// Human name of the detected format, e.g. `"GIF"`.
        format: &'static str,
    },

    /// The file is not recognisable as a photo at all.
    #[error("This file is not a photo Sprig recognises. Sprig accepts JPEG, PNG and WebP photos.")]
    NotAPhoto,

    /// The encoded photo file is bigger than [`Limits::max_photo_bytes`](crate::Limits).
    #[error(
        "This photo file is too large ({}); the limit is {}. Resize it or take it at a lower \
         resolution, then try again.",
        human_bytes(*.bytes),
        human_bytes(*.max_bytes)
    )]
    PhotoFileTooLarge {
        /// Size of the file.
        bytes: u64,
        /// The configured limit.
        max_bytes: u64,
    },

    /// Width or height, read from the file header, is above the configured maximum.
    #[error(
        "This photo is too large ({width} × {height} pixels); the limit is {max_width} × \
         {max_height}. Resize it, then try again."
    )]
    PhotoDimensionsTooLarge {
        /// Width declared by the file.
        width: u32,
        /// Height declared by the file.
        height: u32,
        /// Configured maximum width.
        max_width: u32,
        /// Configured maximum height.
        max_height: u32,
    },

    /// Width × height, read from the file header, is above the configured pixel limit.
    #[error(
        "This photo is too large ({:.1} megapixels); the limit is {:.0} megapixels. Resize it, \
         then try again.",
        megapixels(u64::from(*.width) * u64::from(*.height)),
        megapixels(*.max_pixels)
    )]
    PhotoTooManyPixels {
        /// Width declared by the file.
        width: u32,
        /// Height declared by the file.
        height: u32,
        /// Configured maximum number of pixels.
        max_pixels: u64,
    },

    /// Decoding the photo would need more memory than [`Limits::max_alloc`](crate::Limits).
    #[error(
        "This photo needs too much memory to process ({}the limit is {}). Save it as an \
         ordinary 8-bit JPEG or resize it, then try again.",
        .needed.map(|n| format!("{}; ", human_bytes(n))).unwrap_or_default(),
        human_bytes(*.max_alloc)
    )]
    PhotoNeedsTooMuchMemory {
        /// Bytes the decoder would need, when known before decoding.
        needed: Option<u64>,
        /// The configured limit.
        max_alloc: u64,
    },

    /// The photo is damaged or incomplete (truncated download, corrupt copy, wrong contents).
    #[error(
        "This {format} photo is damaged or incomplete and cannot be read ({detail}). Copy it \
         again from where it came from, or retake it."
    )]
    CorruptPhoto {
        /// Format detected from the file's first bytes.
        format: PhotoFormat,
        /// What the decoder found wrong.
        detail: String,
    },

    /// The photo is a valid file using a feature the decoder does not support.
    #[error(
        "This {format} photo uses a feature Sprig cannot read ({detail}). Save it again as an \
         ordinary JPEG, or retake it."
    )]
    UnsupportedPhotoFeature {
        /// Format detected from the file's first bytes.
        format: PhotoFormat,
        /// The unsupported feature.
        detail: String,
    },

    /// Encoding the processed photo failed. This is a bug, not a problem with the photo.
    #[error(
        "Sprig could not save this photo ({detail}). This is a bug in Sprig; please report it."
    )]
    Encode {
        /// What the encoder reported.
        detail: String,
    },

    /// The options passed to the pipeline are unusable (e.g. a long edge of 0 pixels).
    #[error(
        "Sprig's photo settings are invalid ({detail}). This is a configuration mistake; please report it."
    )]
    InvalidOptions {
        /// Which option and why.
        detail: String,
    },

    /// The file is not recognisable as an MP4, MOV or WebM video.
    #[error("This file is not a video Sprig recognises. Sprig accepts MP4, MOV and WebM videos.")]
    NotAVideo,

    /// The file is a known container or media type that Sprig does not accept as a video
    /// (Matroska/MKV, AVI, audio-only MP4, a HEIC photo, …).
    #[error(
        "This is a {format} file, which Sprig cannot use as a video. Record the video with the \
         tablet's camera, or convert it to MP4."
    )]
    UnsupportedVideoFormat {
        /// Human name of the detected format, e.g. `"Matroska (MKV)"`.
        format: &'static str,
    },

    /// The video is bigger than [`Limits::max_video_bytes`](crate::Limits).
    #[error(
        "This video is too large ({}); the limit is {}. Record a shorter clip or trim it, then \
         try again.",
        human_bytes(*.bytes),
        human_bytes(*.max_bytes)
    )]
    VideoTooLarge {
        /// Declared size of the video.
        bytes: u64,
        /// The configured limit.
        max_bytes: u64,
    },
}

impl MediaError {
    /// A stable, machine-readable code for the UI (`{ code, message }`), e.g.
    /// `"media.photo_too_large"`.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::Empty => "media.empty",
            Self::UnsupportedPhotoFormat { .. } => "media.unsupported_photo_format",
            Self::NotAPhoto => "media.not_a_photo",
            Self::PhotoFileTooLarge { .. }
            | Self::PhotoDimensionsTooLarge { .. }
            | Self::PhotoTooManyPixels { .. }
            | Self::PhotoNeedsTooMuchMemory { .. } => "media.photo_too_large",
            Self::CorruptPhoto { .. } => "media.corrupt_photo",
            Self::UnsupportedPhotoFeature { .. } => "media.unsupported_photo_feature",
            Self::Encode { .. } => "media.encode_failed",
            Self::InvalidOptions { .. } => "media.invalid_options",
            Self::NotAVideo => "media.not_a_video",
            Self::UnsupportedVideoFormat { .. } => "media.unsupported_video_format",
            Self::VideoTooLarge { .. } => "media.video_too_large",
        }
    }

    /// Whether this error is about a size limit (dimensions, pixels, memory, file size), as
    /// opposed to a wrong or damaged file.
    #[must_use]
    pub fn is_limit(&self) -> bool {
        matches!(
            self,
            Self::PhotoFileTooLarge { .. }
                | Self::PhotoDimensionsTooLarge { .. }
                | Self::PhotoTooManyPixels { .. }
                | Self::PhotoNeedsTooMuchMemory { .. }
                | Self::VideoTooLarge { .. }
        )
    }
}

#[allow(clippy::cast_precision_loss)] // display only
fn megapixels(pixels: u64) -> f64 {
    pixels as f64 / 1_000_000.0
}

#[allow(clippy::cast_precision_loss)] // display only
fn human_bytes(bytes: u64) -> String {
    const KIB: u64 = 1024;
    const MIB: u64 = 1024 * KIB;
    const GIB: u64 = 1024 * MIB;
    if bytes >= GIB {
        format!("{:.1} GiB", bytes as f64 / GIB as f64)
    } else if bytes >= MIB {
        format!("{:.0} MiB", bytes as f64 / MIB as f64)
    } else if bytes >= KIB {
        format!("{:.0} KiB", bytes as f64 / KIB as f64)
    } else {
        format!("{bytes} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_figures() {
        let e = MediaError::PhotoTooManyPixels {
            width: 12_000,
            height: 12_000,
            max_pixels: 100_000_000,
        };
        assert_eq!(
            e.to_string(),
            "This photo is too large (144.0 megapixels); the limit is 100 megapixels. Resize it, \
             then try again."
        );
        let e = MediaError::VideoTooLarge {
            bytes: 600 << 20,
            max_bytes: 500 << 20,
        };
        assert!(
            e.to_string()
                .starts_with("This video is too large (600 MiB); the limit is 500 MiB.")
        );
        assert_eq!(human_bytes(1536), "2 KiB");
        assert_eq!(human_bytes(3 << 30), "3.0 GiB");
        assert_eq!(human_bytes(12), "12 bytes");
    }

    #[test]
    fn limit_errors_share_a_code() {
        let e = MediaError::PhotoFileTooLarge {
            bytes: 2,
            max_bytes: 1,
        };
        assert!(e.is_limit());
        assert_eq!(e.code(), "media.photo_too_large");
        assert!(!MediaError::NotAPhoto.is_limit());
    }
}

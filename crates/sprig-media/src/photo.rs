//! The photo pipeline: sniff, check limits, decode, resize, orient, encode, hash.

use std::fmt;
use std::io::Cursor;

use fast_image_resize::{FilterType, ResizeAlg, ResizeOptions, Resizer};
use image::error::ImageError;
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageReader, RgbImage};
use sha2::{Digest, Sha256};

use crate::{Limits, MediaError, PhotoFormat, PhotoOptions, sniff_photo, structure};

/// An encoded JPEG with its dimensions.
#[derive(Clone, PartialEq, Eq)]
pub struct EncodedJpeg {
    /// The JPEG file: a JFIF header and pixels, no EXIF, XMP, ICC profile or comment.
    pub bytes: Vec<u8>,
    /// Width in pixels, upright.
    pub width: u32,
    /// Height in pixels, upright.
    pub height: u32,
}

impl fmt::Debug for EncodedJpeg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Photo bytes are a child's image: never dump them into logs.
        f.debug_struct("EncodedJpeg")
            .field("bytes", &format_args!("<{} bytes>", self.bytes.len()))
            .field("width", &self.width)
            .field("height", &self.height)
            .finish()
    }
}

/// The result of [`process_photo`]: an upright, metadata-free, resized photo and its thumbnail.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProcessedPhoto {
    /// The photo, long edge at most [`PhotoOptions::long_edge`].
    pub photo: EncodedJpeg,
    /// The thumbnail, long edge at most [`PhotoOptions::thumbnail_long_edge`].
    pub thumbnail: EncodedJpeg,
    /// SHA-256 of `photo.bytes`, lowercase hex: the photo's identity in journals and sync.
    pub sha256: String,
    /// The format the input was decoded from.
    pub source_format: PhotoFormat,
    /// Width × height of the input as stored in the file, before orientation.
    pub source_dimensions: (u32, u32),
}

/// Turns a photo file (JPEG, PNG or WebP, recognised by its bytes) into an upright JPEG of at
/// most `options.long_edge` pixels and a thumbnail, both re-encoded from pixels so that no
/// metadata (GPS position, camera, dates, XMP, ICC, comments, embedded thumbnails) survives.
///
/// Dimensions are read from the file header and checked against `options.limits` before any
/// pixel buffer is allocated.
///
/// # Errors
/// Empty, unsupported, corrupt or truncated input, inputs above the limits, and invalid options;
/// see [`MediaError`]. Never panics on any input.
pub fn process_photo(bytes: &[u8], options: &PhotoOptions) -> Result<ProcessedPhoto, MediaError> {
    options.validate()?;
    let limits = &options.limits;
    let format = sniff_photo(bytes)?;
    let len = bytes.len() as u64;
    if len > limits.max_photo_bytes {
        return Err(MediaError::PhotoFileTooLarge {
            bytes: len,
            max_bytes: limits.max_photo_bytes,
        });
    }

    // The image decoders are third-party code that has panicked on malformed input (zune-jpeg's
    // upsampler, found by fuzzing: docs/FUZZING.md); such a file is refused as damaged instead
    // of taking the app or a server worker down. Nothing the closure touches outlives it.
    let decoded = std::panic::catch_unwind(|| decode(bytes, format, limits)).unwrap_or_else(|_| {
        Err(MediaError::CorruptPhoto {
            format,
            detail: "the image decoder failed on it".into(),
        })
    });
    let (pixels, orientation, source_dimensions) = decoded?;

    let mut resizer = Resizer::new();
    let resized = resize_to_fit(&mut resizer, &pixels, options.long_edge)?.unwrap_or(pixels);
    // Orienting after resizing moves 3 MP instead of 12 MP; the long edge does not change.
    let mut oriented = DynamicImage::ImageRgb8(resized);
    oriented.apply_orientation(orientation);
    let photo = oriented.into_rgb8(); // still RGB8: a move, not a conversion
    // The thumbnail comes from the resized photo: a 2048 px source is plenty for 320 px.
    let thumbnail = resize_to_fit(&mut resizer, &photo, options.thumbnail_long_edge)?;

    let thumbnail = encode(thumbnail.as_ref().unwrap_or(&photo), options.jpeg_quality)?;
    let photo = encode(&photo, options.jpeg_quality)?;
    let sha256 = hex::encode(Sha256::digest(&photo.bytes));
    Ok(ProcessedPhoto {
        photo,
        thumbnail,
        sha256,
        source_format: format,
        source_dimensions,
    })
}

/// Decodes to 8-bit RGB, enforcing `limits` before the pixel buffer exists.
fn decode(
    bytes: &[u8],
    format: PhotoFormat,
    limits: &Limits,
) -> Result<(RgbImage, Orientation, (u32, u32)), MediaError> {
    let corrupt = |e: ImageError| map_image_error(e, format, limits);
    // A walk over the container structure: no allocation, and a clearer message for a cut-off
    // file than the decoders give.
    structure::check_complete(format, bytes).map_err(|detail| MediaError::CorruptPhoto {
        format,
        detail: detail.to_owned(),
    })?;

    let mut image_limits = image::Limits::default();
    image_limits.max_alloc = Some(limits.max_alloc);
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format.image_format());
    reader.limits(image_limits.clone());
    // Reads only headers (and, for PNG, chunks up to the first image data).
    let mut decoder = reader.into_decoder().map_err(corrupt)?;

    let (width, height) = decoder.dimensions();
    check_dimensions(width, height, limits, format)?;
    let needed = decoder.total_bytes();
    if needed > limits.max_alloc {
        return Err(MediaError::PhotoNeedsTooMuchMemory {
            needed: Some(needed),
            max_alloc: limits.max_alloc,
        });
    }
    image_limits.max_image_width = Some(limits.max_width);
    image_limits.max_image_height = Some(limits.max_height);
    decoder.set_limits(image_limits).map_err(corrupt)?;

    // A damaged EXIF block only loses the rotation; the photo itself is still worth keeping.
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);

    let image = DynamicImage::from_decoder(decoder).map_err(corrupt)?;
    Ok((into_rgb8(image), orientation, (width, height)))
}

fn check_dimensions(
    width: u32,
    height: u32,
    limits: &Limits,
    format: PhotoFormat,
) -> Result<(), MediaError> {
    if width == 0 || height == 0 {
        return Err(MediaError::CorruptPhoto {
            format,
            detail: "it claims to have no pixels".into(),
        });
    }
    if width > limits.max_width || height > limits.max_height {
        return Err(MediaError::PhotoDimensionsTooLarge {
            width,
            height,
            max_width: limits.max_width,
            max_height: limits.max_height,
        });
    }
    if u64::from(width) * u64::from(height) > limits.max_pixels {
        return Err(MediaError::PhotoTooManyPixels {
            width,
            height,
            max_pixels: limits.max_pixels,
        });
    }
    Ok(())
}

fn map_image_error(error: ImageError, format: PhotoFormat, limits: &Limits) -> MediaError {
    match error {
        // Our own checks run first and carry the figures; a decoder objecting on its own (e.g. to
        // a huge metadata chunk) only says that a limit was hit.
        ImageError::Limits(_) => MediaError::PhotoNeedsTooMuchMemory {
            needed: None,
            max_alloc: limits.max_alloc,
        },
        ImageError::Unsupported(e) => MediaError::UnsupportedPhotoFeature {
            format,
            detail: e.to_string(),
        },
        ImageError::IoError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            MediaError::CorruptPhoto {
                format,
                detail: "the file ends before the end of the picture".into(),
            }
        }
        e => MediaError::CorruptPhoto {
            format,
            detail: e.to_string(),
        },
    }
}

/// Converts any decoded layout to 8-bit RGB; transparency is laid over white, as on paper.
fn into_rgb8(image: DynamicImage) -> RgbImage {
    match image {
        DynamicImage::ImageRgb8(rgb) => rgb,
        image if image.color().has_alpha() => {
            let rgba = image.into_rgba8();
            let (w, h) = rgba.dimensions();
            let mut rgb = RgbImage::new(w, h);
            for (dst, src) in rgb.pixels_mut().zip(rgba.pixels()) {
                let [r, g, b, a] = src.0;
                let a = u32::from(a);
                let over_white = |c: u8| {
                    u8::try_from((u32::from(c) * a + 255 * (255 - a) + 127) / 255).unwrap_or(255)
                };
                dst.0 = [over_white(r), over_white(g), over_white(b)];
            }
            rgb
        }
        image => image.into_rgb8(),
    }
}

/// Dimensions that fit `long_edge`, keeping the aspect ratio; never larger than the input.
pub(crate) fn fit(width: u32, height: u32, long_edge: u32) -> (u32, u32) {
    let long = width.max(height);
    if long <= long_edge {
        return (width, height);
    }
    let scale = |v: u32| {
        let scaled = (u64::from(v) * u64::from(long_edge) + u64::from(long) / 2) / u64::from(long);
        u32::try_from(scaled).unwrap_or(long_edge).max(1)
    };
    if width >= height {
        (long_edge, scale(height))
    } else {
        (scale(width), long_edge)
    }
}

/// Resizes `src` to fit `long_edge`, or returns `None` when it already fits (never enlarges).
fn resize_to_fit(
    resizer: &mut Resizer,
    src: &RgbImage,
    long_edge: u32,
) -> Result<Option<RgbImage>, MediaError> {
    let (w, h) = fit(src.width(), src.height(), long_edge);
    if (w, h) == src.dimensions() {
        return Ok(None);
    }
    let mut dst = RgbImage::new(w, h);
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3));
    resizer
        .resize(src, &mut dst, &options)
        .map_err(|e| MediaError::Encode {
            detail: format!("resizing failed: {e}"),
        })?;
    Ok(Some(dst))
}

fn encode(image: &RgbImage, quality: u8) -> Result<EncodedJpeg, MediaError> {
    let (width, height) = image.dimensions();
    let too_big = |_| MediaError::Encode {
        detail: format!("{width} × {height} is too large for JPEG"),
    };
    let (w16, h16) = (
        u16::try_from(width).map_err(too_big)?,
        u16::try_from(height).map_err(too_big)?,
    );
    // Roughly 1.5 bits per pixel at quality 82; avoids regrowing the buffer while encoding.
    let mut bytes = Vec::with_capacity(image.as_raw().len() / 8 + 1024);
    jpeg_encoder::Encoder::new(&mut bytes, quality)
        .encode(image.as_raw(), w16, h16, jpeg_encoder::ColorType::Rgb)
        .map_err(|e| MediaError::Encode {
            detail: e.to_string(),
        })?;
    Ok(EncodedJpeg {
        bytes,
        width,
        height,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_keeps_aspect_and_never_enlarges() {
        assert_eq!(fit(4000, 3000, 2048), (2048, 1536));
        assert_eq!(fit(3000, 4000, 2048), (1536, 2048));
        assert_eq!(fit(2048, 10, 320), (320, 2));
        assert_eq!(fit(10_000, 1, 320), (320, 1));
        assert_eq!(fit(800, 600, 2048), (800, 600));
        assert_eq!(fit(2048, 2048, 2048), (2048, 2048));
    }

    #[test]
    fn transparency_is_laid_over_white() {
        let mut rgba = image::RgbaImage::new(2, 1);
        rgba.put_pixel(0, 0, image::Rgba([0, 0, 0, 0]));
        rgba.put_pixel(1, 0, image::Rgba([10, 20, 30, 255]));
        let rgb = into_rgb8(DynamicImage::ImageRgba8(rgba));
        assert_eq!(rgb.get_pixel(0, 0).0, [255, 255, 255]);
        assert_eq!(rgb.get_pixel(1, 0).0, [10, 20, 30]);
    }

    #[test]
    fn debug_never_prints_photo_bytes() {
        let j = EncodedJpeg {
            bytes: vec![0xAB; 3],
            width: 1,
            height: 1,
        };
        assert_eq!(
            format!("{j:?}"),
            "EncodedJpeg { bytes: <3 bytes>, width: 1, height: 1 }"
        );
    }
}

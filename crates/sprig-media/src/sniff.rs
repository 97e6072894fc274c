//! Recognising photo formats by their first bytes, never by file name.

use std::fmt;

use crate::MediaError;

/// A photo format the pipeline decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PhotoFormat {
    /// JPEG (`FF D8 FF`).
    Jpeg,
    /// PNG (`89 'PNG' 0D 0A 1A 0A`).
    Png,
    /// WebP (`'RIFF' size 'WEBP'`), lossy or lossless.
    WebP,
}

impl PhotoFormat {
    /// The MIME type of this format.
    #[must_use]
    pub fn mime_type(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
            Self::WebP => "image/webp",
        }
    }

    pub(crate) fn image_format(self) -> image::ImageFormat {
        match self {
            Self::Jpeg => image::ImageFormat::Jpeg,
            Self::Png => image::ImageFormat::Png,
            Self::WebP => image::ImageFormat::WebP,
        }
    }
}

impl fmt::Display for PhotoFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Jpeg => "JPEG",
            Self::Png => "PNG",
            Self::WebP => "WebP",
        })
    }
}

/// Recognises a photo from its first bytes (16 are enough; the whole file is fine).
///
/// # Errors
/// [`MediaError::Empty`] for no bytes, [`MediaError::UnsupportedPhotoFormat`] for images Sprig
/// does not decode (GIF, BMP, TIFF, HEIC, AVIF, JPEG XL), [`MediaError::NotAPhoto`] otherwise.
pub fn sniff_photo(head: &[u8]) -> Result<PhotoFormat, MediaError> {
    if head.is_empty() {
        return Err(MediaError::Empty);
    }
    if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Ok(PhotoFormat::Jpeg);
    }
    if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Ok(PhotoFormat::Png);
    }
    if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        return Ok(PhotoFormat::WebP);
    }
    match other_image_format(head) {
        Some(format) => Err(MediaError::UnsupportedPhotoFormat { format }),
        None => Err(MediaError::NotAPhoto),
    }
}

/// Names image formats we refuse, so the message can say what the file is.
fn other_image_format(head: &[u8]) -> Option<&'static str> {
    if head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a") {
        return Some("GIF");
    }
    if head.len() >= 18 && head.starts_with(b"BM") {
        let header_size = u32::from_le_bytes([head[14], head[15], head[16], head[17]]);
        if matches!(header_size, 12 | 40 | 52 | 56 | 64 | 108 | 124) {
            return Some("BMP");
        }
    }
    if head.starts_with(b"II*\0") || head.starts_with(b"MM\0*") {
        return Some("TIFF");
    }
    if head.starts_with(&[0xFF, 0x0A]) || head.starts_with(b"\0\0\0\x0cJXL \r\n\x87\n") {
        return Some("JPEG XL");
    }
    if head.len() >= 12 && &head[4..8] == b"ftyp" {
        return match &head[8..12] {
            b"heic" | b"heix" | b"heim" | b"heis" | b"hevc" | b"hevx" | b"mif1" | b"msf1" => {
                Some("HEIC")
            }
            b"avif" | b"avis" => Some("AVIF"),
            _ => None,
        };
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_by_magic_bytes() {
        assert_eq!(
            sniff_photo(&[0xFF, 0xD8, 0xFF, 0xE0]).unwrap(),
            PhotoFormat::Jpeg
        );
        assert_eq!(
            sniff_photo(b"\x89PNG\r\n\x1a\n\0\0").unwrap(),
            PhotoFormat::Png
        );
        assert_eq!(
            sniff_photo(b"RIFF\x10\0\0\0WEBPVP8L").unwrap(),
            PhotoFormat::WebP
        );
        assert!(matches!(
            sniff_photo(b"\0\0\0\x18ftypheic\0\0\0\0mif1"),
            Err(MediaError::UnsupportedPhotoFormat { format: "HEIC" })
        ));
        assert!(matches!(
            sniff_photo(b"\0\0\0\x18ftypavif"),
            Err(MediaError::UnsupportedPhotoFormat { format: "AVIF" })
        ));
        assert!(matches!(
            sniff_photo(b"II*\0\x08\0\0\0"),
            Err(MediaError::UnsupportedPhotoFormat { format: "TIFF" })
        ));
        // A RIFF that is not WebP (e.g. WAV) and a lone "BM" are not photos.
        assert!(matches!(
            sniff_photo(b"RIFF\x10\0\0\0WAVEfmt "),
            Err(MediaError::NotAPhoto)
        ));
        assert!(matches!(sniff_photo(b"BMW"), Err(MediaError::NotAPhoto)));
        assert!(matches!(
            sniff_photo(&[0xFF, 0xD8]),
            Err(MediaError::NotAPhoto)
        ));
        assert!(matches!(sniff_photo(&[]), Err(MediaError::Empty)));
    }
}

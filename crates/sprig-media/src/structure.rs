//! Cheap structural checks that refuse truncated files which decoders would accept.
//!
//! The JPEG decoder (zune-jpeg in its lenient mode) fills a truncated scan with grey and reports
//! success, which would turn a half-copied photo into a half-grey journal entry; PNG and WebP
//! decoders stop reading once they have the pixels, so a cut in trailing chunks goes unnoticed.
//! A file that was cut short is refused whole: what else it lost is unknown.

use crate::PhotoFormat;

const TRUNCATED: &str = "the file ends before the end of the picture";

/// Checks that a file of the sniffed `format` is complete.
pub(crate) fn check_complete(format: PhotoFormat, data: &[u8]) -> Result<(), &'static str> {
    match format {
        PhotoFormat::Jpeg => check_jpeg(data),
        PhotoFormat::Png => check_png(data),
        PhotoFormat::WebP => check_webp(data),
    }
}

/// The IEND chunk (empty, so its CRC is fixed) must be present; some writers append a few bytes
/// after it, so look in the last 64 KiB rather than at the very end.
fn check_png(data: &[u8]) -> Result<(), &'static str> {
    let tail = &data[data.len().saturating_sub(64 * 1024)..];
    let iend = b"\0\0\0\0IEND\xAE\x42\x60\x82";
    if tail.windows(iend.len()).any(|w| w == iend) {
        Ok(())
    } else {
        Err(TRUNCATED)
    }
}

/// The RIFF header states the file's length, and each chunk its own. A chunk that runs past the
/// end of the file is a cut too; and the WebP decoder would allocate the declared size (up to
/// 4 GiB, for an EXIF chunk) before finding out, whatever the decoder limits (found by fuzzing).
fn check_webp(data: &[u8]) -> Result<(), &'static str> {
    let Some(size) = data.get(4..8) else {
        return Err(TRUNCATED);
    };
    let riff = u64::from(u32::from_le_bytes([size[0], size[1], size[2], size[3]]));
    if (data.len() as u64) < riff + 8 {
        return Err(TRUNCATED);
    }
    let riff_end = usize::try_from(riff + 8).unwrap_or(usize::MAX);
    let mut pos = 12; // after "RIFF", the size and "WEBP"
    while pos + 8 <= riff_end {
        let h = &data[pos..pos + 8];
        let len = u64::from(u32::from_le_bytes([h[4], h[5], h[6], h[7]]));
        let chunk_end = pos as u64 + 8 + len;
        if chunk_end > data.len() as u64 {
            return Err(TRUNCATED);
        }
        // Chunks are padded to an even length.
        pos = usize::try_from(chunk_end + (len & 1)).unwrap_or(usize::MAX);
    }
    Ok(())
}

/// Follows segment lengths (so an EXIF thumbnail's end marker inside APP1 is skipped) and
/// entropy-coded data up to the end-of-image marker, reading each byte once, allocating nothing.
fn check_jpeg(data: &[u8]) -> Result<(), &'static str> {
    let mut pos = 2; // after SOI
    let mut scans = 0u32;
    loop {
        // Find the next marker, tolerating stray bytes and fill bytes before it like libjpeg does.
        let Some(ff) = data[pos..].iter().position(|&b| b == 0xFF) else {
            return Err(TRUNCATED);
        };
        pos += ff;
        while pos < data.len() && data[pos] == 0xFF {
            pos += 1;
        }
        let Some(&marker) = data.get(pos) else {
            return Err(TRUNCATED);
        };
        pos += 1;
        match marker {
            0xD9 => {
                return if scans > 0 {
                    Ok(())
                } else {
                    Err("the file has no picture data")
                };
            }
            // Markers without a length.
            0x00 | 0x01 | 0xD0..=0xD8 => {}
            _ => {
                let Some(len) = data.get(pos..pos + 2) else {
                    return Err(TRUNCATED);
                };
                let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
                if len < 2 {
                    return Err("a segment has an impossible length");
                }
                pos += len;
                if pos > data.len() {
                    return Err(TRUNCATED);
                }
                if marker == 0xDA {
                    scans += 1;
                    pos = skip_entropy_coded(data, pos).ok_or(TRUNCATED)?;
                }
            }
        }
    }
}

/// Returns the position of the marker that ends the entropy-coded data starting at `pos`.
fn skip_entropy_coded(data: &[u8], mut pos: usize) -> Option<usize> {
    loop {
        pos += data.get(pos..)?.iter().position(|&b| b == 0xFF)?;
        match data.get(pos + 1)? {
            // Stuffed zero byte, restart markers and fill bytes belong to the scan.
            0x00 | 0xD0..=0xD7 | 0xFF => pos += 1,
            _ => return Some(pos),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_minimal_structure_and_refuses_cuts() {
        // SOI, APP1 holding a fake embedded EOI, SOS with entropy data incl. stuffing and RST, EOI.
        let jpeg: &[u8] = &[
            0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x06, 0xFF, 0xD9, 0x00, 0x00, 0xFF, 0xDA, 0x00, 0x02,
            0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD0, 0x56, 0xFF, 0xD9,
        ];
        assert_eq!(check_jpeg(jpeg), Ok(()));
        for cut in 2..jpeg.len() {
            assert!(check_jpeg(&jpeg[..cut]).is_err(), "cut at {cut}");
        }
        assert_eq!(
            check_jpeg(&[0xFF, 0xD8, 0xFF, 0xD9]),
            Err("the file has no picture data")
        );
    }
}

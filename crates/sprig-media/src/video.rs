//! Recognising video containers from the head of a stream. Videos are stored as recorded,
//! never decoded or transcoded, so the caller can stream them and only show us the first bytes.

use crate::{Limits, MediaError};

/// How many leading bytes [`sniff_video`] wants to see; fewer work for short files.
pub const VIDEO_SNIFF_LEN: usize = 4096;

/// A video container Sprig accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum VideoContainer {
    /// ISO base media file (MP4, M4V, 3GP): an `ftyp` box with an MP4-family brand.
    Mp4,
    /// Apple QuickTime (MOV): `ftyp` brand `qt  `, or a legacy file starting with a bare
    /// `moov`/`mdat`/`wide`/`free`/`skip`/`pnot` atom.
    QuickTime,
    /// WebM: an EBML header whose DocType is `webm`.
    WebM,
}

impl VideoContainer {
    /// The MIME type to store and serve the video with.
    #[must_use]
    pub fn mime_type(self) -> &'static str {
        match self {
            Self::Mp4 => "video/mp4",
            Self::QuickTime => "video/quicktime",
            Self::WebM => "video/webm",
        }
    }

    /// The usual file extension, without the dot.
    #[must_use]
    pub fn extension(self) -> &'static str {
        match self {
            Self::Mp4 => "mp4",
            Self::QuickTime => "mov",
            Self::WebM => "webm",
        }
    }
}

/// Recognises a video from `head`, the first bytes of the file (ideally [`VIDEO_SNIFF_LEN`]),
/// and checks `total_len`, the size of the whole file, against [`Limits::max_video_bytes`].
/// The rest of the file is never needed, so large videos can be streamed to storage.
///
/// # Errors
/// [`MediaError::Empty`], [`MediaError::NotAVideo`], [`MediaError::UnsupportedVideoFormat`]
/// (Matroska, AVI, audio-only MP4, HEIC photos, …) or [`MediaError::VideoTooLarge`].
pub fn sniff_video(
    head: &[u8],
    total_len: u64,
    limits: &Limits,
) -> Result<VideoContainer, MediaError> {
    // A head longer than the declared total means the declared total is wrong: trust the bytes.
    let total = total_len.max(head.len() as u64);
    if total == 0 {
        return Err(MediaError::Empty);
    }
    let container = container(head, total)?;
    if total > limits.max_video_bytes {
        return Err(MediaError::VideoTooLarge {
            bytes: total,
            max_bytes: limits.max_video_bytes,
        });
    }
    Ok(container)
}

fn container(head: &[u8], total: u64) -> Result<VideoContainer, MediaError> {
    if head.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]) {
        return ebml(head);
    }
    if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"AVI " {
        return Err(MediaError::UnsupportedVideoFormat { format: "AVI" });
    }
    if head.starts_with(&[0x30, 0x26, 0xB2, 0x75, 0x8E, 0x66, 0xCF, 0x11]) {
        return Err(MediaError::UnsupportedVideoFormat {
            format: "Windows Media (WMV)",
        });
    }
    if head.starts_with(b"FLV\x01") {
        return Err(MediaError::UnsupportedVideoFormat {
            format: "Flash video (FLV)",
        });
    }
    if head.len() >= 8 {
        let size = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        let kind: [u8; 4] = [head[4], head[5], head[6], head[7]];
        if &kind == b"ftyp" {
            return ftyp(head, size);
        }
        if is_legacy_quicktime(head, size, kind, total) {
            return Ok(VideoContainer::QuickTime);
        }
    }
    Err(MediaError::NotAVideo)
}

const IMAGE_BRANDS: &[&[u8; 4]] = &[
    b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"avif", b"avis",
];
const AUDIO_BRANDS: &[&[u8; 4]] = &[b"M4A ", b"M4B ", b"M4P ", b"F4A ", b"F4B "];
const VIDEO_BRANDS: &[&[u8; 4]] = &[
    b"isom", b"iso2", b"iso3", b"iso4", b"iso5", b"iso6", b"iso7", b"iso8", b"iso9", b"mp41",
    b"mp42", b"mp71", b"avc1", b"M4V ", b"M4VH", b"M4VP", b"3gp4", b"3gp5", b"3gp6", b"3gp7",
    b"3gp8", b"3gp9", b"3g2a", b"3g2b", b"3g2c", b"dash", b"MSNV", b"f4v ", b"XAVC", b"mmp4",
];

/// Classifies an ISO-BMFF file by its `ftyp` major and compatible brands.
fn ftyp(head: &[u8], size: u32) -> Result<VideoContainer, MediaError> {
    // size (4) "ftyp" (4) major (4) minor version (4) compatible brands (4 each).
    if size < 16 || head.len() < 12 {
        return Err(MediaError::NotAVideo);
    }
    let major: [u8; 4] = [head[8], head[9], head[10], head[11]];
    if IMAGE_BRANDS.contains(&&major) {
        return Err(MediaError::UnsupportedVideoFormat {
            format: "HEIC/AVIF image",
        });
    }
    if AUDIO_BRANDS.contains(&&major) {
        return Err(MediaError::UnsupportedVideoFormat {
            format: "audio-only MP4 (M4A)",
        });
    }
    if &major == b"qt  " {
        return Ok(VideoContainer::QuickTime);
    }
    let end = head.len().min(usize::try_from(size).unwrap_or(usize::MAX));
    let compatible = head.get(16..end).unwrap_or_default().chunks_exact(4);
    let brands: Vec<&[u8]> = std::iter::once(&major[..]).chain(compatible).collect();
    if brands
        .iter()
        .any(|b| VIDEO_BRANDS.iter().any(|v| &v[..] == *b))
    {
        return Ok(VideoContainer::Mp4);
    }
    if brands.iter().any(|b| *b == b"qt  ") {
        return Ok(VideoContainer::QuickTime);
    }
    Err(MediaError::NotAVideo)
}

/// Old QuickTime files have no `ftyp`: they start straight with an atom. A plausible atom size
/// plus, when visible, a plausible next atom keeps random bytes from passing.
fn is_legacy_quicktime(head: &[u8], size: u32, kind: [u8; 4], total: u64) -> bool {
    const ATOMS: &[&[u8; 4]] = &[b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"];
    if !ATOMS.contains(&&kind) {
        return false;
    }
    // 0 = "to the end of the file", 1 = "64-bit size follows"; otherwise it must fit the file.
    if size == 0 || size == 1 {
        return true;
    }
    if size < 8 || u64::from(size) > total {
        return false;
    }
    if &kind == b"moov" || &kind == b"mdat" {
        return true;
    }
    // After a padding atom, the next atom header (if we can see it) must look like one.
    let next = usize::try_from(size).unwrap_or(usize::MAX);
    match head.get(next + 4..next + 8) {
        Some(t) => t.iter().all(|c| c.is_ascii_alphanumeric() || *c == b' '),
        None => true,
    }
}

/// Reads the EBML header of a WebM/Matroska file for its DocType.
fn ebml(head: &[u8]) -> Result<VideoContainer, MediaError> {
    let mut pos = 4;
    let (header_len, n) = vint(&head[pos..], true).ok_or(MediaError::NotAVideo)?;
    pos += n;
    let end = head
        .len()
        .min(pos.saturating_add(usize::try_from(header_len).unwrap_or(usize::MAX)));
    let mut doc_type: Option<&[u8]> = None;
    while pos < end {
        let Some((id, n)) = vint(&head[pos..end], false) else {
            break;
        };
        pos += n;
        let Some((len, n)) = vint(&head[pos..end], true) else {
            break;
        };
        pos += n;
        let Some(value) = usize::try_from(len)
            .ok()
            .and_then(|l| head.get(pos..pos.checked_add(l)?))
        else {
            break;
        };
        pos += value.len();
        if id == 0x4282 {
            // Strings may be padded with NULs.
            let trimmed = value
                .iter()
                .rposition(|&b| b != 0)
                .map_or(&value[..0], |i| &value[..=i]);
            doc_type = Some(trimmed);
        }
    }
    match doc_type {
        Some(b"webm") => Ok(VideoContainer::WebM),
        // DocType defaults to "matroska" when absent.
        Some(b"matroska") | None => Err(MediaError::UnsupportedVideoFormat {
            format: "Matroska (MKV)",
        }),
        Some(_) => Err(MediaError::NotAVideo),
    }
}

/// Reads an EBML variable-length integer: `(value, bytes used)`. IDs keep their length marker
/// bit; sizes drop it.
fn vint(data: &[u8], strip_marker: bool) -> Option<(u64, usize)> {
    let first = *data.first()?;
    let len = usize::try_from(first.leading_zeros()).ok()? + 1;
    if len > 8 || data.len() < len {
        return None;
    }
    // An 8-byte integer's marker is the first byte's last bit: no value bits are left in it
    // (and `0xFF >> 8` would overflow a u8).
    let value_bits = 0xFF_u8.checked_shr(u32::try_from(len).ok()?).unwrap_or(0);
    let mut value = u64::from(if strip_marker {
        first & value_bits
    } else {
        first
    });
    for &b in &data[1..len] {
        value = (value << 8) | u64::from(b);
    }
    Some((value, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vint_reads_ids_and_sizes() {
        assert_eq!(vint(&[0x81], true), Some((1, 1)));
        assert_eq!(vint(&[0x42, 0x82], false), Some((0x4282, 2)));
        assert_eq!(vint(&[0x40, 0x02], true), Some((2, 2)));
        assert_eq!(vint(&[0x00], true), None);
        assert_eq!(vint(&[0x40], true), None);
    }

    #[test]
    fn ebml_without_doctype_is_matroska() {
        let head = [0x1A, 0x45, 0xDF, 0xA3, 0x84, 0x42, 0x86, 0x81, 0x01];
        assert!(matches!(
            ebml(&head),
            Err(MediaError::UnsupportedVideoFormat { .. })
        ));
    }

    #[test]
    fn heic_and_audio_brands_are_not_videos() {
        let heic = b"\0\0\0\x18ftypheic\0\0\0\0mif1heic";
        assert!(matches!(
            container(heic, 100),
            Err(MediaError::UnsupportedVideoFormat { .. })
        ));
        let m4a = b"\0\0\0\x18ftypM4A \0\0\0\0M4A isom";
        assert!(matches!(
            container(m4a, 100),
            Err(MediaError::UnsupportedVideoFormat { .. })
        ));
        let unknown = b"\0\0\0\x14ftypzzzz\0\0\0\0zzzz";
        assert!(matches!(
            container(unknown, 100),
            Err(MediaError::NotAVideo)
        ));
        // Compatible brands make an unfamiliar major brand acceptable.
        let compat = b"\0\0\0\x18ftypabcd\0\0\0\0abcdmp42";
        assert_eq!(container(compat, 100).unwrap(), VideoContainer::Mp4);
    }

    #[test]
    fn legacy_atom_with_impossible_size_is_refused() {
        // "free" claiming 4 bytes, and "moov" claiming more than the whole file.
        assert!(matches!(
            container(b"\0\0\0\x04free\0\0\0\0", 100),
            Err(MediaError::NotAVideo)
        ));
        assert!(matches!(
            container(b"\0\0\x10\0moov", 100),
            Err(MediaError::NotAVideo)
        ));
        // "free" followed by garbage where the next atom's type should be.
        let mut bad = b"\0\0\0\x08free".to_vec();
        bad.extend([0, 0, 0, 8, 0xFF, 0x00, 0x13, 0x99]);
        assert!(matches!(container(&bad, 100), Err(MediaError::NotAVideo)));
    }
}

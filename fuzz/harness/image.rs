//! The `image_decode` harness: untrusted bytes through the photo pipeline the device runs on a
//! captured or imported photo ([`process_photo`]), and through the video sniffer it runs on a
//! video's head ([`sniff_video`]).
//!
//! Shared, via `#[path]`, by the fuzz target `fuzz/fuzz_targets/image_decode.rs` and the stable
//! replay test `crates/sprig-media/tests/media/fuzz_replay.rs`, so `cargo test` keeps it
//! compiling and running.
//!
//! Invariants, checked with panics: no panic; every refusal has a message; an accepted photo
//! came from a recognised format with dimensions inside the limits, and yields a complete JPEG
//! no larger than the options allow, with its SHA-256, that the pipeline accepts again at the
//! same size. The fuzz target adds a heap budget per input and libFuzzer's timeout.

use sprig_media::{
    PhotoOptions, VIDEO_SNIFF_LEN, VideoContainer, process_photo, sniff_photo, sniff_video,
};

/// The pipeline's defaults with limits scaled down (4096 px edges, 2 megapixels, 32 MiB for the
/// decoder, 1 MiB files), so a tiny input that declares a big picture costs milliseconds, not
/// seconds. The checks are the same code whatever the figures.
#[must_use]
pub fn options() -> PhotoOptions {
    let mut o = PhotoOptions::default();
    o.limits.max_width = 4096;
    o.limits.max_height = 4096;
    o.limits.max_pixels = 2_000_000;
    o.limits.max_alloc = 32 << 20;
    o.limits.max_photo_bytes = 1 << 20;
    o
}

/// What one input was accepted as, so the replay test can tell that its seeds reach the
/// decoders.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The stored photo's width and height, when the pipeline accepted the input.
    pub photo: Option<(u32, u32)>,
    /// The container, when the video sniffer accepted the input.
    pub video: Option<VideoContainer>,
}

/// Runs one input; panics when an invariant breaks.
pub fn run(data: &[u8]) -> Outcome {
    let options = options();
    let head = &data[..data.len().min(VIDEO_SNIFF_LEN)];
    let video = match sniff_video(head, data.len() as u64, &options.limits) {
        Ok(container) => Some(container),
        Err(e) => {
            assert!(!e.to_string().is_empty(), "{e:?} has no message");
            None
        }
    };
    let sniffed = sniff_photo(data);
    let photo = match process_photo(data, &options) {
        Ok(out) => {
            let format = sniffed.expect("an accepted photo has a recognised format");
            assert_eq!(out.source_format, format, "decoded as another format");
            check_output(&out, &options);
            Some((out.photo.width, out.photo.height))
        }
        Err(e) => {
            assert!(!e.to_string().is_empty(), "{e:?} has no message");
            None
        }
    };
    Outcome { photo, video }
}

fn long_edge(w: u32, h: u32) -> u32 {
    w.max(h)
}

fn check_output(out: &sprig_media::ProcessedPhoto, o: &PhotoOptions) {
    let (w, h) = out.source_dimensions;
    let l = &o.limits;
    assert!(w >= 1 && h >= 1, "accepted a {w} × {h} photo");
    assert!(
        w <= l.max_width && h <= l.max_height && u64::from(w) * u64::from(h) <= l.max_pixels,
        "accepted a {w} × {h} photo, over the limits"
    );
    let (pw, ph) = (out.photo.width, out.photo.height);
    assert_eq!(
        long_edge(pw, ph),
        long_edge(w, h).min(o.long_edge),
        "a {w} × {h} photo became {pw} × {ph}"
    );
    assert!(pw >= 1 && ph >= 1, "a {w} × {h} photo became {pw} × {ph}");
    let (tw, th) = (out.thumbnail.width, out.thumbnail.height);
    assert!(
        tw >= 1 && th >= 1 && long_edge(tw, th) <= o.thumbnail_long_edge.min(long_edge(pw, ph)),
        "a {pw} × {ph} photo got a {tw} × {th} thumbnail"
    );
    for jpeg in [&out.photo.bytes, &out.thumbnail.bytes] {
        assert!(
            jpeg.starts_with(&[0xFF, 0xD8, 0xFF]) && jpeg.ends_with(&[0xFF, 0xD9]),
            "the output is not a complete JPEG"
        );
    }
    assert!(
        out.sha256.len() == 64
            && out
                .sha256
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "the SHA-256 is not 64 lowercase hex digits"
    );
    let again = process_photo(&out.photo.bytes, o).expect("the pipeline accepts its own output");
    assert_eq!(
        (again.photo.width, again.photo.height),
        (pw, ph),
        "the pipeline's own output changes size"
    );
}

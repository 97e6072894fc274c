//! Sprig's media intake: [`process_photo`] turns a JPEG/PNG/WebP into an upright, metadata-free
//! 2048 px JPEG plus thumbnail ([`ProcessedPhoto`]); [`sniff_video`] accepts MP4/MOV/WebM as-is.
//!
//! Pure functions over bytes, no I/O. Both enforce [`Limits`] (decompression bombs are refused
//! from the file header, before any pixel buffer exists) and fail with a [`MediaError`] whose
//! message tells a key worker what to do.
//!
//! ```
//! use sprig_media::{Limits, PhotoOptions, VideoContainer, process_photo, sniff_video};
//!
//! # use sprig_testkit::images::{ByteOrder, jpeg_with_exif, mp4_head};
//! # let camera_jpeg = jpeg_with_exif(640, 480, 6, ByteOrder::Little);
//! // A phone photo stored sideways with EXIF orientation 6 and a GPS position:
//! let out = process_photo(&camera_jpeg, &PhotoOptions::default())?;
//! assert_eq!((out.photo.width, out.photo.height), (640, 480)); // upright, not enlarged
//! assert_eq!(out.sha256.len(), 64);
//!
//! // Videos: look at the first bytes only and the declared length, then stream the rest.
//! # let head = mp4_head();
//! let container = sniff_video(&head, 40 * 1024 * 1024, &Limits::default())?;
//! assert_eq!(container, VideoContainer::Mp4);
//! # Ok::<(), sprig_media::MediaError>(())
//! ```
#![warn(missing_docs)]

mod error;
mod options;
mod photo;
mod sniff;
mod structure;
mod video;

pub use error::MediaError;
pub use options::{Limits, PhotoOptions};
pub use photo::{EncodedJpeg, ProcessedPhoto, process_photo};
pub use sniff::{PhotoFormat, sniff_photo};
pub use video::{VIDEO_SNIFF_LEN, VideoContainer, sniff_video};

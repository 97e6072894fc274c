//! Where uploaded photos and videos are kept: the [`MediaStore`] trait, with the data
//! directory's `media/` folder ([`FsMediaStore`], the default) and S3-compatible object
//! storage ([`S3MediaStore`]) behind it. Both pass [`crate::media_store_tests!`].
//!
//! A file is named by its SHA-256. [`MediaStore::put`] is the durability point the device's
//! purge waits for: it returns `Ok` only once the whole file is stored under its final name
//! and its SHA-256 and size were checked against what was announced; anything else leaves
//! nothing under that name (the bytes go to a temporary name first and are removed on
//! failure).
//!
//! ```no_run
//! # async fn run() -> Result<(), sprig_server::media_store::MediaStoreError> {
//! use futures_util::StreamExt;
//! use sprig_server::media_store::{FsMediaStore, MediaStore};
//!
//! let media = FsMediaStore::new("/srv/sprig/media".into());
//! media.prepare().await?;
//! let bytes = b"...".to_vec();
//! let sha = "…64 hex digits…";
//! let body = futures_util::stream::iter([Ok(bytes.clone().into())]).boxed();
//! let size = media.put(sha, bytes.len() as u64, body).await?;
//! # Ok(()) }
//! ```

mod fs;
mod s3;
#[doc(hidden)]
pub mod suite;

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use sha2::{Digest, Sha256};

pub use fs::FsMediaStore;
pub use s3::{S3Config, S3MediaStore};

/// A stream of bytes in (an upload's body) or out (a stored file).
pub type ByteStream = BoxStream<'static, io::Result<Bytes>>;

/// What every [`MediaStore`] method returns.
pub type MediaFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, MediaStoreError>> + Send + 'a>>;

/// A media operation failed.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum MediaStoreError {
    /// No file is stored under this SHA-256.
    #[error("no media file with this SHA-256 is stored")]
    NotFound,
    /// The upload carried more bytes than it announced; nothing was kept.
    #[error("the upload is longer than the {expected} bytes it announced")]
    TooLarge {
        /// The announced length.
        expected: u64,
    },
    /// The upload ended, or its connection dropped, before all its bytes arrived; nothing was
    /// kept.
    #[error("the upload ended after {got} of {expected} bytes; upload it again")]
    Short {
        /// Bytes received.
        got: u64,
        /// The announced length.
        expected: u64,
    },
    /// The bytes do not hash to the address they were sent to; nothing was kept.
    #[error("the file's SHA-256 does not match its address; keep the original and upload it again")]
    HashMismatch,
    /// The disk failed (full, read-only, I/O error). Retrying may help.
    #[error("the media store's disk failed: {0}; check the disk and try again")]
    Io(#[from] io::Error),
    /// The object store failed or refused the request. Retrying may help.
    #[error(
        "the object store failed: {0}; check that it is reachable and accepts the server's credentials"
    )]
    ObjectStore(#[from] object_store::Error),
    /// The object store kept something other than what was sent.
    #[error("the object store kept {stored} bytes of a {sent}-byte file; upload it again")]
    Mismatch {
        /// Bytes sent.
        sent: u64,
        /// Bytes the store reports.
        stored: u64,
    },
    /// The object store's configuration cannot work (a malformed endpoint, say).
    #[error("the object store configuration is not usable: {0}")]
    Config(String),
}

impl MediaStoreError {
    /// Whether the server's disk is full: the device keeps the file and is told so.
    #[must_use]
    pub fn is_storage_full(&self) -> bool {
        matches!(self, MediaStoreError::Io(e) if e.kind() == io::ErrorKind::StorageFull)
    }

    /// Whether retrying the same request cannot help.
    #[must_use]
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            MediaStoreError::NotFound
                | MediaStoreError::TooLarge { .. }
                | MediaStoreError::HashMismatch
                | MediaStoreError::Config(_)
        )
    }
}

/// Where photos and videos are kept, by SHA-256 (64 lower-case hex digits; callers check the
/// form before asking).
pub trait MediaStore: Send + Sync + fmt::Debug {
    /// Gets the store ready to serve, at server start: the filesystem store makes its folders
    /// and empties `tmp/` (uploads a crash cut short; their devices kept the originals); the
    /// object store deletes temporary objects old enough that no upload is still writing them.
    fn prepare(&self) -> MediaFuture<'_, ()>;

    /// Whether a file is stored under `sha256`.
    fn contains<'a>(&'a self, sha256: &'a str) -> MediaFuture<'a, bool>;

    /// Streams `body`, announced as `len` bytes, into the store under `sha256`, hashing it as
    /// it goes. Returns the size only once the whole file is durably stored under its final
    /// name and its SHA-256 and size were checked; on any error nothing new is left under
    /// that name, or anywhere else. Storing a file that is already there stores it again
    /// (same bytes, same name).
    ///
    /// # Errors
    /// [`MediaStoreError::TooLarge`] and [`MediaStoreError::Short`] when the body's length is
    /// not `len`, [`MediaStoreError::HashMismatch`], and the store's own failures.
    fn put<'a>(&'a self, sha256: &'a str, len: u64, body: ByteStream) -> MediaFuture<'a, u64>;

    /// The stored file, streamed.
    ///
    /// # Errors
    /// [`MediaStoreError::NotFound`], and the store's own failures.
    fn get<'a>(&'a self, sha256: &'a str) -> MediaFuture<'a, ByteStream>;

    /// The cached thumbnail of a photo, if one was made.
    fn thumbnail<'a>(&'a self, sha256: &'a str) -> MediaFuture<'a, Option<Bytes>>;

    /// Caches a photo's thumbnail (a reader never sees half of one).
    fn put_thumbnail<'a>(&'a self, sha256: &'a str, jpeg: Bytes) -> MediaFuture<'a, ()>;

    /// Whether the store can be reached now (`/v1/ready`): by default, a look for a file that
    /// is never there.
    fn check(&self) -> MediaFuture<'_, ()> {
        Box::pin(async move {
            self.contains(PROBE).await?;
            Ok(())
        })
    }
}

/// A SHA-256 no upload has (no file hashes to all zeros); what [`MediaStore::check`] asks
/// for.
const PROBE: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Where a server keeps its settings' media, opened once (`--media DIR` or
/// `--media s3://BUCKET[/PREFIX]`): each setting's own store comes from it.
#[derive(Clone, Debug)]
pub enum MediaRoot {
    /// A folder: a data directory's own `media/`, or a folder holding one sub-folder per
    /// setting of a hosted deployment.
    Folder(std::path::PathBuf),
    /// A bucket (one HTTP client shared by every setting's store).
    S3(S3MediaStore),
}

impl MediaRoot {
    /// The store of one setting: with `Some(id)` (a hosted setting) `DIR/<id>/` or
    /// `PREFIX/settings/<id>/`, with `None` (a data directory's one setting) the folder or
    /// prefix itself. Makes no request.
    #[must_use]
    pub fn for_setting(&self, setting: Option<uuid::Uuid>) -> std::sync::Arc<dyn MediaStore> {
        match (self, setting) {
            (MediaRoot::Folder(dir), None) => std::sync::Arc::new(FsMediaStore::new(dir.clone())),
            (MediaRoot::Folder(dir), Some(id)) => {
                std::sync::Arc::new(FsMediaStore::new(dir.join(id.hyphenated().to_string())))
            }
            (MediaRoot::S3(s3), None) => std::sync::Arc::new(s3.clone()),
            (MediaRoot::S3(s3), Some(id)) => {
                std::sync::Arc::new(s3.for_prefix(&format!("settings/{}", id.hyphenated())))
            }
        }
    }

    /// Whether the folder or bucket can be reached now.
    ///
    /// # Errors
    /// The store's failure.
    pub async fn check(&self) -> Result<(), MediaStoreError> {
        match self {
            MediaRoot::Folder(dir) => {
                if tokio::fs::metadata(dir).await?.is_dir() {
                    Ok(())
                } else {
                    Err(MediaStoreError::Io(io::Error::new(
                        io::ErrorKind::NotADirectory,
                        format!("{} is not a folder", dir.display()),
                    )))
                }
            }
            MediaRoot::S3(s3) => s3.check().await,
        }
    }
}

/// Reads a whole stored file into memory.
///
/// # Errors
/// As [`MediaStore::get`].
pub async fn read_all(store: &dyn MediaStore, sha256: &str) -> Result<Vec<u8>, MediaStoreError> {
    let mut stream = store.get(sha256).await?;
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk?);
    }
    Ok(out)
}

/// The checks every store makes on an upload as it streams in: its length against the
/// announced one, and its SHA-256.
struct Intake {
    expected: u64,
    size: u64,
    hasher: Sha256,
}

impl Intake {
    fn new(expected: u64) -> Intake {
        Intake {
            expected,
            size: 0,
            hasher: Sha256::new(),
        }
    }

    /// Counts and hashes the next piece of the body.
    fn take(&mut self, piece: io::Result<Bytes>) -> Result<Bytes, MediaStoreError> {
        let Ok(chunk) = piece else {
            // The connection broke: the device still has the file and will send it again.
            return Err(MediaStoreError::Short {
                got: self.size,
                expected: self.expected,
            });
        };
        self.size += chunk.len() as u64;
        if self.size > self.expected {
            return Err(MediaStoreError::TooLarge {
                expected: self.expected,
            });
        }
        self.hasher.update(&chunk);
        Ok(chunk)
    }

    /// The body ended: its size and lower-case hex SHA-256, if it was all there.
    fn finish(self) -> Result<(u64, String), MediaStoreError> {
        if self.size != self.expected {
            return Err(MediaStoreError::Short {
                got: self.size,
                expected: self.expected,
            });
        }
        Ok((self.size, hex::encode(self.hasher.finalize())))
    }
}

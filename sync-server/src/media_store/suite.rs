//! The shared [`MediaStore`] test suite. Every implementation runs it through
//! [`crate::media_store_tests!`]; each function panics on a failed check.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use sha2::{Digest, Sha256};

use super::{ByteStream, MediaStore, MediaStoreError, read_all};

/// A store under test, with a look at everything its backend holds (temporary files, upload
/// parts and all), so a check can say that *nothing* was left behind.
pub struct Subject {
    /// The store.
    pub store: Arc<dyn MediaStore>,
    /// Every name the backend holds, sorted.
    pub everything: Box<dyn Fn() -> BoxFuture<'static, Vec<String>> + Send + Sync>,
    /// Kept alive for the test (a temporary directory, a server process).
    pub guard: Box<dyn std::any::Any + Send>,
}

impl std::fmt::Debug for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subject")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

/// Runs every check of the suite against subjects made by the async expression `make`, as
/// `#[tokio::test]` functions.
///
/// ```ignore
/// sprig_server::media_store_tests!(crate::fs_subject());
/// ```
#[macro_export]
macro_rules! media_store_tests {
    ($make:expr) => {
        $crate::media_store_tests!(@t $make;
            stores_streams_and_reads_back,
            a_repeated_upload_is_idempotent,
            a_hash_mismatch_leaves_nothing,
            an_interrupted_upload_leaves_nothing,
            a_wrong_length_leaves_nothing,
            a_large_upload_goes_in_parts,
            an_interrupted_large_upload_leaves_nothing,
            thumbnails_are_cached,
            missing_media_is_not_found
        );
    };
    (@t $make:expr; $($name:ident),+) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let subject = $make.await;
                $crate::media_store::suite::$name(&subject).await;
            }
        )+
    };
}

/// Deterministic bytes that compress badly.
#[must_use]
pub fn bytes_of(len: usize, seed: u32) -> Vec<u8> {
    (0..len)
        .map(|i| {
            let x = u32::try_from(i)
                .unwrap_or(u32::MAX)
                .wrapping_add(seed)
                .wrapping_mul(2_654_435_761);
            (x >> 24) as u8
        })
        .collect()
}

fn sha_of(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// `bytes` as a body in pieces of `piece` bytes.
fn body(bytes: &[u8], piece: usize) -> ByteStream {
    let pieces: Vec<std::io::Result<Bytes>> = bytes
        .chunks(piece.max(1))
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    futures_util::stream::iter(pieces).boxed()
}

/// The first `cut` bytes of `bytes`, then a broken connection.
fn broken_body(bytes: &[u8], piece: usize, cut: usize) -> ByteStream {
    let mut pieces: Vec<std::io::Result<Bytes>> = bytes[..cut]
        .chunks(piece.max(1))
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    pieces.push(Err(std::io::Error::new(
        std::io::ErrorKind::ConnectionReset,
        "the device went away",
    )));
    futures_util::stream::iter(pieces).boxed()
}

async fn assert_empty(s: &Subject, what: &str) {
    let left = (s.everything)().await;
    assert!(left.is_empty(), "{what} left {left:?}");
}

/// A file streamed in many pieces is stored whole under its name and read back.
pub async fn stores_streams_and_reads_back(s: &Subject) {
    let photo = bytes_of(300_000, 1);
    let sha = sha_of(&photo);
    assert!(!s.store.contains(&sha).await.unwrap());
    let size = s
        .store
        .put(&sha, photo.len() as u64, body(&photo, 8_192))
        .await
        .unwrap();
    assert_eq!(size, photo.len() as u64);
    assert!(s.store.contains(&sha).await.unwrap());
    assert_eq!(read_all(s.store.as_ref(), &sha).await.unwrap(), photo);
    let held = (s.everything)().await;
    assert_eq!(held.len(), 1, "one object, no temporaries: {held:?}");
    assert!(held[0].ends_with(&sha), "{held:?}");
}

/// Storing a file again (a device that missed the acknowledgement) succeeds and keeps one.
pub async fn a_repeated_upload_is_idempotent(s: &Subject) {
    let photo = bytes_of(50_000, 2);
    let sha = sha_of(&photo);
    for piece in [1_000, 50_000] {
        let size = s
            .store
            .put(&sha, photo.len() as u64, body(&photo, piece))
            .await
            .unwrap();
        assert_eq!(size, photo.len() as u64);
    }
    assert_eq!(read_all(s.store.as_ref(), &sha).await.unwrap(), photo);
    assert_eq!((s.everything)().await.len(), 1);
}

/// Bytes that do not hash to their address are refused and leave nothing.
pub async fn a_hash_mismatch_leaves_nothing(s: &Subject) {
    let photo = bytes_of(40_000, 3);
    let wrong = sha_of(b"other bytes");
    let err = s
        .store
        .put(&wrong, photo.len() as u64, body(&photo, 4_096))
        .await
        .unwrap_err();
    assert!(matches!(err, MediaStoreError::HashMismatch), "{err}");
    assert!(!s.store.contains(&wrong).await.unwrap());
    assert_empty(s, "a hash mismatch").await;
}

/// A connection that breaks mid-upload leaves nothing, visible or not.
pub async fn an_interrupted_upload_leaves_nothing(s: &Subject) {
    let photo = bytes_of(100_000, 4);
    let sha = sha_of(&photo);
    let err = s
        .store
        .put(
            &sha,
            photo.len() as u64,
            broken_body(&photo, 10_000, 30_000),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            MediaStoreError::Short {
                got: 30_000,
                expected: 100_000
            }
        ),
        "{err}"
    );
    assert!(!s.store.contains(&sha).await.unwrap());
    assert!(matches!(
        s.store.get(&sha).await.map(|_| ()),
        Err(MediaStoreError::NotFound)
    ));
    assert_empty(s, "an interrupted upload").await;
}

/// A body shorter or longer than announced is refused and leaves nothing.
pub async fn a_wrong_length_leaves_nothing(s: &Subject) {
    let photo = bytes_of(20_000, 5);
    let sha = sha_of(&photo);
    let err = s
        .store
        .put(&sha, 30_000, body(&photo, 5_000))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            MediaStoreError::Short {
                got: 20_000,
                expected: 30_000
            }
        ),
        "{err}"
    );
    let err = s
        .store
        .put(&sha, 10_000, body(&photo, 5_000))
        .await
        .unwrap_err();
    assert!(
        matches!(err, MediaStoreError::TooLarge { expected: 10_000 }),
        "{err}"
    );
    assert!(!s.store.contains(&sha).await.unwrap());
    assert_empty(s, "a wrong length").await;
}

/// A file larger than an object store's upload part (12 MiB) is stored and read back.
pub async fn a_large_upload_goes_in_parts(s: &Subject) {
    let video = bytes_of(12 * 1024 * 1024 + 123, 6);
    let sha = sha_of(&video);
    let size = s
        .store
        .put(&sha, video.len() as u64, body(&video, 64 * 1024))
        .await
        .unwrap();
    assert_eq!(size, video.len() as u64);
    let back = read_all(s.store.as_ref(), &sha).await.unwrap();
    assert!(back == video, "the large file came back different");
    assert_eq!((s.everything)().await.len(), 1);
}

/// A large upload broken after several parts were sent leaves no parts behind.
pub async fn an_interrupted_large_upload_leaves_nothing(s: &Subject) {
    let video = bytes_of(16 * 1024 * 1024, 7);
    let sha = sha_of(&video);
    let err = s
        .store
        .put(
            &sha,
            video.len() as u64,
            broken_body(&video, 64 * 1024, 13 * 1024 * 1024),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, MediaStoreError::Short { .. }), "{err}");
    assert!(!s.store.contains(&sha).await.unwrap());
    assert_empty(s, "an interrupted large upload").await;
}

/// A thumbnail is absent until cached, then read back; it is not a media file.
pub async fn thumbnails_are_cached(s: &Subject) {
    let sha = sha_of(b"a photo");
    assert!(s.store.thumbnail(&sha).await.unwrap().is_none());
    s.store
        .put_thumbnail(&sha, Bytes::from_static(b"\xFF\xD8thumb"))
        .await
        .unwrap();
    assert_eq!(
        s.store.thumbnail(&sha).await.unwrap().as_deref(),
        Some(&b"\xFF\xD8thumb"[..])
    );
    assert!(!s.store.contains(&sha).await.unwrap());
}

/// An unknown file is not found.
pub async fn missing_media_is_not_found(s: &Subject) {
    let sha = "0".repeat(64);
    assert!(!s.store.contains(&sha).await.unwrap());
    assert!(matches!(
        s.store.get(&sha).await.map(|_| ()),
        Err(MediaStoreError::NotFound)
    ));
    assert!(matches!(
        read_all(s.store.as_ref(), &sha).await,
        Err(MediaStoreError::NotFound)
    ));
}

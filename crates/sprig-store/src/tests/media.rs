//! The media vault: streaming, hashing, lifecycle, secure deletion, space reclaim.

use std::io::{Read, Write};

use sha2::Digest;
use sprig_core::Sha256;
use sprig_testkit::images::random_bytes;

use super::{contains, new_store, read_or_empty, test_db};
use crate::store::side_path;
use crate::{MEDIA_CHUNK_SIZE, MediaState, Store, StoreError};

fn sha_of(bytes: &[u8]) -> Sha256 {
    Sha256::from_bytes(sha2::Sha256::digest(bytes).into())
}

fn media_rows(store: &Store) -> (i64, i64) {
    let media = store
        .conn
        .query_row("SELECT count(*) FROM media", [], |r| r.get(0))
        .unwrap();
    let chunks = store
        .conn
        .query_row("SELECT count(*) FROM media_chunks", [], |r| r.get(0))
        .unwrap();
    (media, chunks)
}

fn read_all(store: &Store, sha: &Sha256) -> Vec<u8> {
    let mut out = Vec::new();
    store
        .media_reader(sha)
        .unwrap()
        .read_to_end(&mut out)
        .unwrap();
    out
}

#[test]
fn writer_streams_in_chunks_and_records_the_sha256() {
    let (_db, mut store) = new_store();
    let bytes = random_bytes(3 * MEDIA_CHUNK_SIZE + 12_345, 1);
    let mut w = store.media_writer("video/mp4").unwrap();
    // Odd-sized writes that straddle chunk boundaries.
    for part in bytes.chunks(100_003) {
        w.write_all(part).unwrap();
    }
    assert_eq!(w.len(), bytes.len() as u64);
    let sha = w.finish().unwrap();
    assert_eq!(sha, sha_of(&bytes));
    let info = store.media_info(&sha).unwrap();
    assert_eq!(
        (info.state, info.size, info.mime.as_str()),
        (MediaState::Captured, bytes.len() as u64, "video/mp4")
    );
    assert_eq!(
        media_rows(&store),
        (1, 4),
        "three full chunks and a partial one"
    );
    let max_chunk: i64 = store
        .conn
        .query_row("SELECT max(length(data)) FROM media_chunks", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(max_chunk, MEDIA_CHUNK_SIZE as i64);
    assert_eq!(read_all(&store, &sha), bytes);
}

#[test]
fn reader_returns_at_most_one_chunk_per_read_and_holds_one_chunk() {
    let (_db, mut store) = new_store();
    let bytes = random_bytes(2 * MEDIA_CHUNK_SIZE + 7, 2);
    let sha = store.put_media("video/mp4", &bytes).unwrap();
    let mut r = store.media_reader(&sha).unwrap();
    let mut big = vec![0u8; bytes.len() * 2];
    let mut got = Vec::new();
    loop {
        let n = r.read(&mut big).unwrap();
        if n == 0 {
            break;
        }
        assert!(n <= MEDIA_CHUNK_SIZE, "one read returned {n} bytes");
        assert!(
            r.buffer_capacity() <= MEDIA_CHUNK_SIZE,
            "reader buffered {}",
            r.buffer_capacity()
        );
        got.extend_from_slice(&big[..n]);
    }
    assert_eq!(got, bytes);
    assert_eq!(r.remaining(), 0);
}

#[test]
fn empty_media_round_trips() {
    let (_db, mut store) = new_store();
    let sha = store.put_media("image/jpeg", b"").unwrap();
    assert_eq!(sha, sha_of(b""));
    assert!(read_all(&store, &sha).is_empty());
}

#[test]
fn dropping_or_aborting_a_writer_leaves_nothing() {
    let (_db, mut store) = new_store();
    let mut w = store.media_writer("video/mp4").unwrap();
    w.write_all(&random_bytes(MEDIA_CHUNK_SIZE * 2 + 5, 3))
        .unwrap();
    w.abort();
    assert_eq!(media_rows(&store), (0, 0));
    let mut w = store.media_writer("video/mp4").unwrap();
    w.write_all(&random_bytes(MEDIA_CHUNK_SIZE + 5, 4)).unwrap();
    drop(w);
    assert_eq!(media_rows(&store), (0, 0));
}

#[test]
fn finish_expecting_a_different_hash_stores_nothing() {
    let (_db, mut store) = new_store();
    let bytes = random_bytes(MEDIA_CHUNK_SIZE + 1, 5);
    let mut w = store.media_writer("image/jpeg").unwrap();
    w.write_all(&bytes).unwrap();
    let err = w
        .finish_expecting(&Sha256::from_bytes([0; 32]))
        .unwrap_err();
    assert!(matches!(err, StoreError::HashMismatch { .. }), "{err:?}");
    assert_eq!(media_rows(&store), (0, 0));
    let mut w = store.media_writer("image/jpeg").unwrap();
    w.write_all(&bytes).unwrap();
    assert_eq!(w.finish_expecting(&sha_of(&bytes)).unwrap(), sha_of(&bytes));
}

#[test]
fn same_bytes_twice_are_stored_once() {
    let (_db, mut store) = new_store();
    let bytes = random_bytes(MEDIA_CHUNK_SIZE + 9, 6);
    let a = store.put_media("image/jpeg", &bytes).unwrap();
    let b = store.put_media("image/jpeg", &bytes).unwrap();
    assert_eq!(a, b);
    assert_eq!(media_rows(&store), (1, 2));
}

#[test]
fn lifecycle_captured_uploaded_purged() {
    let (_db, mut store) = new_store();
    let bytes = random_bytes(300_000, 7);
    let sha = store.put_media("image/jpeg", &bytes).unwrap();
    store.set_thumbnail(&sha, b"thumb").unwrap();
    assert_eq!(store.media_in_state(MediaState::Captured).unwrap().len(), 1);

    // Not acknowledged yet: purging is refused and nothing is lost.
    let err = store.purge(&sha).unwrap_err();
    assert!(matches!(err, StoreError::NotUploaded { .. }), "{err:?}");
    assert!(err.to_string().contains("sync"), "{err}");
    assert_eq!(read_all(&store, &sha), bytes);

    store.mark_uploaded(&sha).unwrap();
    store.mark_uploaded(&sha).unwrap();
    assert_eq!(store.media_info(&sha).unwrap().state, MediaState::Uploaded);
    assert_eq!(
        store.media_in_state(MediaState::Uploaded).unwrap()[0].sha256,
        sha
    );

    store.purge(&sha).unwrap();
    store.purge(&sha).unwrap();
    let info = store.media_info(&sha).unwrap();
    assert_eq!(info.state, MediaState::Purged);
    assert!(info.has_thumbnail);
    assert_eq!(
        store.thumbnail(&sha).unwrap().as_deref(),
        Some(&b"thumb"[..])
    );
    let err = store.media_reader(&sha).unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
    assert_eq!(media_rows(&store), (1, 0));
    // Marking a purged item uploaded again changes nothing.
    store.mark_uploaded(&sha).unwrap();
    assert_eq!(store.media_info(&sha).unwrap().state, MediaState::Purged);
}

#[test]
fn unknown_media_is_not_found() {
    let (_db, mut store) = new_store();
    let sha = Sha256::from_bytes([9; 32]);
    assert!(store.media_info(&sha).unwrap_err().is_not_found());
    assert!(store.mark_uploaded(&sha).unwrap_err().is_not_found());
    assert!(store.purge(&sha).unwrap_err().is_not_found());
    assert!(store.media_reader(&sha).unwrap_err().is_not_found());
    assert!(store.set_thumbnail(&sha, b"x").unwrap_err().is_not_found());
}

#[test]
fn recapture_after_purge_stores_the_bytes_again() {
    let (_db, mut store) = new_store();
    let bytes = random_bytes(1000, 8);
    let sha = store.put_media("image/jpeg", &bytes).unwrap();
    store.mark_uploaded(&sha).unwrap();
    store.purge(&sha).unwrap();
    assert_eq!(store.put_media("image/jpeg", &bytes).unwrap(), sha);
    assert_eq!(store.media_info(&sha).unwrap().state, MediaState::Captured);
    assert_eq!(read_all(&store, &sha), bytes);
}

#[test]
fn purge_uploaded_purges_only_acknowledged_items() {
    let (_db, mut store) = new_store();
    let a = store
        .put_media("image/jpeg", &random_bytes(1000, 10))
        .unwrap();
    let b = store
        .put_media("image/jpeg", &random_bytes(1000, 11))
        .unwrap();
    store.mark_uploaded(&a).unwrap();
    assert_eq!(store.purge_uploaded().unwrap(), 1);
    assert_eq!(store.media_info(&a).unwrap().state, MediaState::Purged);
    assert_eq!(store.media_info(&b).unwrap().state, MediaState::Captured);
}

#[test]
fn purge_returns_space_to_the_file_system() {
    let (db, mut store) = new_store();
    let bytes = random_bytes(6 * 1024 * 1024, 12);
    let sha = store.put_media("video/mp4", &bytes).unwrap();
    store.checkpoint().unwrap();
    let full = std::fs::metadata(&db.path).unwrap().len();
    assert!(full > 6 * 1024 * 1024, "{full}");
    store.mark_uploaded(&sha).unwrap();
    store.purge(&sha).unwrap();
    let after = std::fs::metadata(&db.path).unwrap().len();
    assert!(
        after < 1024 * 1024,
        "file is still {after} bytes after purging 6 MiB (was {full})"
    );
    assert_eq!(
        read_or_empty(&side_path(&db.path, "-wal")).len(),
        0,
        "WAL truncated"
    );
    store.check_integrity().unwrap();
}

/// Samples of the media bytes, spread over the file, long enough to be unmistakable.
fn samples(bytes: &[u8]) -> Vec<&[u8]> {
    (0..16)
        .map(|i| &bytes[i * bytes.len() / 16..][..48])
        .collect()
}

#[test]
fn secure_delete_zeroes_purged_media_even_without_vacuum() {
    // Plaintext mode so the test can look for the bytes; the pages go to the freelist (no
    // vacuum), so only secure_delete stands between them and the file.
    let db = test_db();
    let mut store = Store::create_insecure_plaintext(&db.path).unwrap();
    let bytes = random_bytes(3 * MEDIA_CHUNK_SIZE + 4321, 13);
    let sha = store.put_media("video/mp4", &bytes).unwrap();
    store.checkpoint().unwrap();
    let file = std::fs::read(&db.path).unwrap();
    assert!(
        samples(&bytes).iter().all(|s| contains(&file, s)),
        "the test can see stored media"
    );

    store.mark_uploaded(&sha).unwrap();
    assert!(store.purge_rows(&sha).unwrap());
    store.checkpoint().unwrap();
    let file = std::fs::read(&db.path).unwrap();
    assert!(
        file.len() >= bytes.len(),
        "pages were freed, not truncated away"
    );
    for s in samples(&bytes) {
        assert!(
            !contains(&file, s),
            "purged media bytes remain in the database file"
        );
    }
}

#[test]
fn purged_media_is_absent_from_database_and_wal() {
    let db = test_db();
    let mut store = Store::create_insecure_plaintext(&db.path).unwrap();
    let bytes = random_bytes(2 * MEDIA_CHUNK_SIZE + 99, 14);
    let keep = random_bytes(MEDIA_CHUNK_SIZE + 99, 15);
    let sha = store.put_media("video/mp4", &bytes).unwrap();
    let kept = store.put_media("video/mp4", &keep).unwrap();
    // Some of the media only in the WAL, some checkpointed: both must be cleaned.
    let wal = std::fs::read(side_path(&db.path, "-wal")).unwrap();
    assert!(
        samples(&bytes).iter().all(|s| contains(&wal, s)),
        "the test can see media in the WAL"
    );
    store.mark_uploaded(&sha).unwrap();
    store.purge(&sha).unwrap();
    let file = std::fs::read(&db.path).unwrap();
    let wal = read_or_empty(&side_path(&db.path, "-wal"));
    for s in samples(&bytes) {
        assert!(
            !contains(&file, s),
            "purged media bytes remain in the database file"
        );
        assert!(!contains(&wal, s), "purged media bytes remain in the WAL");
    }
    assert_eq!(read_all(&store, &kept), keep, "other media survive");
}

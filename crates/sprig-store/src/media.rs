//! The media vault: photos and videos inside the encrypted database, in fixed-size chunks, so a
//! video is never held whole in memory. [`MediaWriter`] streams in, [`MediaReader`] streams out.
//!
//! Lifecycle: *captured* (only on this device) → *uploaded* (the server acknowledged this
//! SHA-256) → *purged* (bytes deleted with `secure_delete`, space returned to the file system,
//! at most a small thumbnail kept).

use std::io::{self, Read, Write};

use rusqlite::{OptionalExtension, Transaction, params};
use sha2::Digest;
use sprig_core::Sha256;

use crate::error::{Result, StoreError};
use crate::store::{Store, now_ms};

/// Bytes per stored chunk row. Large enough that per-row overhead is noise, small enough that a
/// writer or reader holds at most this much of a file in memory.
pub const MEDIA_CHUNK_SIZE: usize = 256 * 1024;

/// Where a media item is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaState {
    /// Stored only on this device.
    Captured,
    /// The server has durably stored it and acknowledged its SHA-256; it may be purged.
    Uploaded,
    /// Its bytes are gone from this device (a thumbnail may remain).
    Purged,
}

impl MediaState {
    fn as_str(self) -> &'static str {
        match self {
            Self::Captured => "captured",
            Self::Uploaded => "uploaded",
            Self::Purged => "purged",
        }
    }

    fn parse(s: &str) -> rusqlite::Result<Self> {
        match s {
            "captured" => Ok(Self::Captured),
            "uploaded" => Ok(Self::Uploaded),
            "purged" => Ok(Self::Purged),
            other => Err(rusqlite::Error::InvalidColumnType(
                0,
                format!("media state {other}"),
                rusqlite::types::Type::Text,
            )),
        }
    }
}

/// What the vault knows about one media item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaInfo {
    /// SHA-256 of the bytes.
    pub sha256: Sha256,
    /// Lifecycle state.
    pub state: MediaState,
    /// MIME type given at capture.
    pub mime: String,
    /// Size of the bytes.
    pub size: u64,
    /// When it was captured, ms since the Unix epoch (device clock).
    pub captured_at: i64,
    /// Whether a thumbnail is stored.
    pub has_thumbnail: bool,
}

fn sha_from_sql(bytes: &[u8]) -> rusqlite::Result<Sha256> {
    let arr: [u8; 32] = bytes.try_into().map_err(|_| {
        rusqlite::Error::InvalidColumnType(0, "sha256".into(), rusqlite::types::Type::Blob)
    })?;
    Ok(Sha256::from_bytes(arr))
}

fn media_not_found(sha: &Sha256) -> StoreError {
    StoreError::not_found(format!("media {sha}"))
}

impl Store {
    /// Starts writing a media item. Bytes go to the database as they are written, a chunk at a
    /// time, inside one transaction; [`MediaWriter::finish`] commits, dropping the writer (or
    /// [`MediaWriter::abort`]) leaves nothing behind.
    ///
    /// # Errors
    /// A database failure.
    pub fn media_writer(&mut self, mime: &str) -> Result<MediaWriter<'_>> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO media (sha256, state, mime, captured_at) VALUES (NULL, 'writing', ?1, ?2)",
            params![mime, now_ms()],
        )?;
        let media_id = tx.last_insert_rowid();
        Ok(MediaWriter {
            tx,
            media_id,
            seq: 0,
            buf: Vec::with_capacity(MEDIA_CHUNK_SIZE),
            hasher: sha2::Sha256::new(),
            size: 0,
            failed: false,
        })
    }

    /// Stores a small item held in memory (a photo); streams through [`Store::media_writer`].
    ///
    /// # Errors
    /// A database failure.
    pub fn put_media(&mut self, mime: &str, bytes: &[u8]) -> Result<Sha256> {
        let mut w = self.media_writer(mime)?;
        w.write_all(bytes)?;
        w.finish()
    }

    /// Reads a stored item back, one chunk at a time.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when the item is unknown or already purged.
    pub fn media_reader(&self, sha: &Sha256) -> Result<MediaReader<'_>> {
        let row: Option<(i64, String, i64)> = self
            .conn
            .query_row(
                "SELECT id, state, size FROM media WHERE sha256 = ?1",
                [sha.as_bytes()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let (media_id, state, size) = row.ok_or_else(|| media_not_found(sha))?;
        if MediaState::parse(&state)? == MediaState::Purged {
            return Err(StoreError::not_found(format!(
                "media {sha} (purged from this device after upload; view it from the server)"
            )));
        }
        Ok(MediaReader {
            store: self,
            media_id,
            next_seq: 0,
            chunk: Vec::new(),
            pos: 0,
            remaining: u64::try_from(size).unwrap_or(0),
        })
    }

    /// What the vault holds about `sha`.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when unknown.
    pub fn media_info(&self, sha: &Sha256) -> Result<MediaInfo> {
        self.conn
            .query_row(
                "SELECT sha256, state, mime, size, captured_at, thumbnail IS NOT NULL \
                 FROM media WHERE sha256 = ?1",
                [sha.as_bytes()],
                media_info_row,
            )
            .optional()?
            .ok_or_else(|| media_not_found(sha))
    }

    /// Every item in `state`, oldest capture first (e.g. what still needs uploading).
    ///
    /// # Errors
    /// A database failure.
    pub fn media_in_state(&self, state: MediaState) -> Result<Vec<MediaInfo>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT sha256, state, mime, size, captured_at, thumbnail IS NOT NULL \
             FROM media WHERE state = ?1 ORDER BY captured_at, id",
        )?;
        let rows = stmt.query_map([state.as_str()], media_info_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Records that the server durably stored this item and acknowledged its SHA-256.
    /// Idempotent: an item already uploaded or purged stays as it is.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when unknown.
    pub fn mark_uploaded(&mut self, sha: &Sha256) -> Result<()> {
        let n = self.conn.execute(
            "UPDATE media SET state = 'uploaded', uploaded_at = ?2 WHERE sha256 = ?1 AND state = 'captured'",
            params![sha.as_bytes(), now_ms()],
        )?;
        if n == 0 {
            self.media_info(sha)?;
        }
        Ok(())
    }

    /// Deletes an uploaded item's bytes (overwritten with zeros by `secure_delete`), keeps its
    /// thumbnail, and returns the space to the file system. Idempotent for purged items.
    ///
    /// # Errors
    /// [`StoreError::NotUploaded`] when the server has not acknowledged it (purging would lose
    /// it); [`StoreError::NotFound`] when unknown.
    pub fn purge(&mut self, sha: &Sha256) -> Result<()> {
        if self.purge_rows(sha)? {
            self.reclaim_space()?;
        }
        Ok(())
    }

    /// Purges every uploaded item; returns how many. One space reclaim at the end.
    ///
    /// # Errors
    /// A database failure.
    pub fn purge_uploaded(&mut self) -> Result<usize> {
        let uploaded = self.media_in_state(MediaState::Uploaded)?;
        for m in &uploaded {
            self.purge_rows(&m.sha256)?;
        }
        if !uploaded.is_empty() {
            self.reclaim_space()?;
        }
        Ok(uploaded.len())
    }

    /// The delete, without reclaiming space. Returns whether anything was deleted.
    pub(crate) fn purge_rows(&mut self, sha: &Sha256) -> Result<bool> {
        let tx = self.conn.transaction()?;
        let row: Option<(i64, String)> = tx
            .query_row(
                "SELECT id, state FROM media WHERE sha256 = ?1",
                [sha.as_bytes()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let (id, state) = row.ok_or_else(|| media_not_found(sha))?;
        match MediaState::parse(&state)? {
            MediaState::Captured => Err(StoreError::NotUploaded {
                sha256: sha.to_hex(),
            }),
            MediaState::Purged => Ok(false),
            MediaState::Uploaded => {
                tx.execute("DELETE FROM media_chunks WHERE media_id = ?1", [id])?;
                tx.execute(
                    "UPDATE media SET state = 'purged', purged_at = ?2 WHERE id = ?1",
                    params![id, now_ms()],
                )?;
                tx.commit()?;
                Ok(true)
            }
        }
    }

    /// Stores (or replaces) a small thumbnail for an item; it survives purging.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when the item is unknown.
    pub fn set_thumbnail(&mut self, sha: &Sha256, thumbnail: &[u8]) -> Result<()> {
        let n = self.conn.execute(
            "UPDATE media SET thumbnail = ?2 WHERE sha256 = ?1",
            params![sha.as_bytes(), thumbnail],
        )?;
        if n == 0 {
            return Err(media_not_found(sha));
        }
        Ok(())
    }

    /// The thumbnail, if one was stored.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when the item is unknown.
    pub fn thumbnail(&self, sha: &Sha256) -> Result<Option<Vec<u8>>> {
        self.conn
            .query_row(
                "SELECT thumbnail FROM media WHERE sha256 = ?1",
                [sha.as_bytes()],
                |r| r.get(0),
            )
            .optional()?
            .ok_or_else(|| media_not_found(sha))
    }
}

fn media_info_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<MediaInfo> {
    let sha: Vec<u8> = r.get(0)?;
    Ok(MediaInfo {
        sha256: sha_from_sql(&sha)?,
        state: MediaState::parse(&r.get::<_, String>(1)?)?,
        mime: r.get(2)?,
        size: u64::try_from(r.get::<_, i64>(3)?).unwrap_or(0),
        captured_at: r.get(4)?,
        has_thumbnail: r.get(5)?,
    })
}

/// Streams a media item into the vault (see [`Store::media_writer`]). Hashes as it goes; holds
/// at most one chunk in memory.
pub struct MediaWriter<'a> {
    tx: Transaction<'a>,
    media_id: i64,
    seq: i64,
    buf: Vec<u8>,
    hasher: sha2::Sha256,
    size: u64,
    /// Set when a chunk failed to be written: the item can then only be aborted.
    failed: bool,
}

impl std::fmt::Debug for MediaWriter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaWriter")
            .field("media_id", &self.media_id)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl MediaWriter<'_> {
    fn flush_chunk(&mut self) -> Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.tx
            .prepare_cached("INSERT INTO media_chunks (media_id, seq, data) VALUES (?1, ?2, ?3)")?
            .execute(params![self.media_id, self.seq, self.buf])?;
        self.seq += 1;
        self.buf.clear();
        Ok(())
    }

    /// Bytes written so far.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.size
    }

    /// Whether nothing has been written yet.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// Commits the item and returns its SHA-256. If the vault already holds these exact bytes
    /// (not purged), the new copy is discarded and the existing one kept.
    ///
    /// # Errors
    /// A database failure; nothing is stored then.
    pub fn finish(self) -> Result<Sha256> {
        self.finish_inner(None)
    }

    /// Like [`Self::finish`], but refuses (storing nothing) unless the bytes hash to `expected`.
    ///
    /// # Errors
    /// [`StoreError::HashMismatch`] when they do not.
    pub fn finish_expecting(self, expected: &Sha256) -> Result<Sha256> {
        self.finish_inner(Some(expected))
    }

    /// Discards everything written. Dropping the writer does the same.
    pub fn abort(self) {
        // Transaction rolls back on drop.
    }

    fn finish_inner(mut self, expected: Option<&Sha256>) -> Result<Sha256> {
        if self.failed {
            return Err(StoreError::Io(io::Error::other(
                "an earlier write to this media item failed; capture it again",
            )));
        }
        self.flush_chunk()?;
        let sha = Sha256::from_bytes(self.hasher.finalize_reset().into());
        if let Some(expected) = expected
            && *expected != sha
        {
            return Err(StoreError::HashMismatch {
                expected: expected.to_hex(),
                actual: sha.to_hex(),
            });
        }
        let existing: Option<(i64, String)> = self
            .tx
            .query_row(
                "SELECT id, state FROM media WHERE sha256 = ?1",
                [sha.as_bytes()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        if let Some((old_id, state)) = existing {
            if MediaState::parse(&state)? == MediaState::Purged {
                // Captured again after a purge: the new bytes replace the empty record.
                self.tx
                    .execute("DELETE FROM media WHERE id = ?1", [old_id])?;
            } else {
                // Same bytes already in the vault: keep that copy (rolls back ours).
                return Ok(sha);
            }
        }
        self.tx.execute(
            "UPDATE media SET sha256 = ?2, state = 'captured', size = ?3 WHERE id = ?1",
            params![
                self.media_id,
                sha.as_bytes(),
                i64::try_from(self.size).unwrap_or(i64::MAX)
            ],
        )?;
        self.tx.commit()?;
        Ok(sha)
    }
}

impl Write for MediaWriter<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.failed {
            return Err(io::Error::other(
                "an earlier write to this media item failed",
            ));
        }
        let n = data.len().min(MEDIA_CHUNK_SIZE - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        self.hasher.update(&data[..n]);
        self.size += n as u64;
        if self.buf.len() == MEDIA_CHUNK_SIZE
            && let Err(e) = self.flush_chunk()
        {
            self.failed = true;
            return Err(io::Error::other(e));
        }
        Ok(n)
    }

    /// Chunks are only written when full (or at `finish`); nothing is durable before `finish`.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Streams a media item out of the vault (see [`Store::media_reader`]), one chunk at a time.
pub struct MediaReader<'a> {
    store: &'a Store,
    media_id: i64,
    next_seq: i64,
    chunk: Vec<u8>,
    pos: usize,
    remaining: u64,
}

impl std::fmt::Debug for MediaReader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaReader")
            .field("media_id", &self.media_id)
            .field("next_seq", &self.next_seq)
            .field("remaining", &self.remaining)
            .finish_non_exhaustive()
    }
}

impl MediaReader<'_> {
    /// Bytes not yet returned.
    #[must_use]
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    /// Capacity of the reader's one chunk buffer: what it holds in memory at most.
    #[must_use]
    pub fn buffer_capacity(&self) -> usize {
        self.chunk.capacity()
    }

    fn load_next(&mut self) -> Result<bool> {
        let mut stmt = self
            .store
            .conn
            .prepare_cached("SELECT data FROM media_chunks WHERE media_id = ?1 AND seq = ?2")?;
        let mut rows = stmt.query(params![self.media_id, self.next_seq])?;
        let Some(row) = rows.next()? else {
            return Ok(false);
        };
        let data = row.get_ref(0)?.as_blob()?;
        self.chunk.clear();
        self.chunk.extend_from_slice(data);
        self.pos = 0;
        self.next_seq += 1;
        Ok(true)
    }
}

impl Read for MediaReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() || self.remaining == 0 {
            return Ok(0);
        }
        if self.pos == self.chunk.len() && !self.load_next().map_err(io::Error::other)? {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "media chunks end before the recorded size; the vault is damaged",
            ));
        }
        let n = out.len().min(self.chunk.len() - self.pos);
        out[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        self.remaining = self.remaining.saturating_sub(n as u64);
        Ok(n)
    }
}

//! Documents (journals, roster, setting) as a snapshot plus incremental chunks, compacted as
//! they grow, and the sync state kept per (peer, document).

use std::collections::HashSet;

use rusqlite::{OptionalExtension, Transaction, params};
use sprig_core::{ChildId, DocError, Document, Heads, Journal, Roster, SettingDoc};

use crate::error::{Result, StoreError};
use crate::index;
use crate::store::{Compaction, Store, now_ms};

/// Which document a record belongs to: `sprig_core::DocId`. The device database keys documents
/// and sync states by its [`DocId::storage_key`] (`journal/<child>`, `roster`, `setting`), which
/// existing databases hold, so that form never changes.
pub use sprig_core::DocId;

/// The operations the store needs from every document type.
trait StoredDoc {
    fn save(&mut self) -> Vec<u8>;
    fn save_incremental(&mut self) -> Vec<u8>;
    fn heads(&mut self) -> Heads;
    fn epoch(&self) -> u64;
}

macro_rules! stored_doc {
    ($t:ty, $epoch:expr) => {
        impl StoredDoc for $t {
            fn save(&mut self) -> Vec<u8> {
                <$t>::save(self)
            }
            fn save_incremental(&mut self) -> Vec<u8> {
                <$t>::save_incremental(self)
            }
            fn heads(&mut self) -> Heads {
                <$t>::heads(self)
            }
            fn epoch(&self) -> u64 {
                #[allow(clippy::redundant_closure_call)]
                ($epoch)(self)
            }
        }
    };
}

stored_doc!(Journal, |j: &Journal| j.epoch());
stored_doc!(Roster, Roster::epoch);
stored_doc!(SettingDoc, |_: &SettingDoc| 0);

/// How a document write changed the stored bytes.
pub(crate) enum Written {
    /// Nothing new since the last save.
    Unchanged,
    /// New changes on top of what was stored at `old_heads`.
    Advanced { old_heads: Heads },
    /// A new document, or a new erasure epoch that replaced the old one wholesale.
    Replaced,
}

struct DocRow {
    epoch: u64,
    snapshot_bytes: u64,
    chunk_count: u32,
    chunk_bytes: u64,
    heads: Vec<u8>,
}

/// Writes `doc` under `id` inside `tx`. Appends an incremental chunk, or rewrites the snapshot
/// when the document is new, its epoch changed, `force_snapshot` is set, or the chunks would
/// outgrow the compaction limits.
fn write_doc<D: StoredDoc>(
    tx: &Transaction<'_>,
    id: &DocId,
    doc: &mut D,
    compaction: Compaction,
    force_snapshot: bool,
) -> Result<Written> {
    let key = id.storage_key();
    let row: Option<DocRow> = tx
        .query_row(
            "SELECT epoch, snapshot_bytes, chunk_count, chunk_bytes, heads FROM documents WHERE doc_id = ?1",
            [&key],
            |r| {
                Ok(DocRow {
                    epoch: r.get::<_, i64>(0)?.try_into().unwrap_or(0),
                    snapshot_bytes: r.get::<_, i64>(1)?.try_into().unwrap_or(0),
                    chunk_count: r.get::<_, i64>(2)?.try_into().unwrap_or(0),
                    chunk_bytes: r.get::<_, i64>(3)?.try_into().unwrap_or(0),
                    heads: r.get(4)?,
                })
            },
        )
        .optional()?;
    let epoch = doc.epoch();
    let new_heads = doc.heads();
    let Some(row) = row else {
        let snapshot = doc.save();
        tx.execute(
            "INSERT INTO documents (doc_id, kind, child_id, epoch, snapshot, snapshot_bytes, heads, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                key,
                id.kind(),
                id.child().map(ChildId::as_str),
                to_i64(epoch),
                snapshot,
                to_i64(snapshot.len() as u64),
                new_heads.to_bytes(),
                now_ms()
            ],
        )?;
        return Ok(Written::Replaced);
    };
    if epoch < row.epoch {
        return Err(DocError::EpochMismatch {
            ours: row.epoch,
            theirs: epoch,
        }
        .into());
    }
    let old_heads = Heads::from_bytes(&row.heads)?;
    if epoch > row.epoch {
        rewrite_snapshot(tx, &key, doc, epoch, &new_heads)?;
        return Ok(Written::Replaced);
    }
    if force_snapshot {
        rewrite_snapshot(tx, &key, doc, epoch, &new_heads)?;
        return Ok(Written::Advanced { old_heads });
    }
    let chunk = doc.save_incremental();
    if chunk.is_empty() {
        if new_heads == old_heads {
            return Ok(Written::Unchanged);
        }
        // Changed, yet nothing unsaved: the caller saved it elsewhere, so the store cannot know
        // which changes it lacks. A full snapshot is always right.
        rewrite_snapshot(tx, &key, doc, epoch, &new_heads)?;
        return Ok(Written::Advanced { old_heads });
    }
    let too_many = row.chunk_count + 1 > compaction.max_chunks;
    let too_big = row.chunk_bytes + chunk.len() as u64 > row.snapshot_bytes;
    if too_many || too_big {
        rewrite_snapshot(tx, &key, doc, epoch, &new_heads)?;
    } else {
        tx.prepare_cached("INSERT INTO doc_chunks (doc_id, seq, data) VALUES (?1, ?2, ?3)")?
            .execute(params![key, row.chunk_count, chunk])?;
        tx.prepare_cached(
            "UPDATE documents SET chunk_count = chunk_count + 1, chunk_bytes = chunk_bytes + ?2, \
             heads = ?3, updated_at = ?4 WHERE doc_id = ?1",
        )?
        .execute(params![
            key,
            to_i64(chunk.len() as u64),
            new_heads.to_bytes(),
            now_ms()
        ])?;
    }
    Ok(Written::Advanced { old_heads })
}

fn rewrite_snapshot<D: StoredDoc>(
    tx: &Transaction<'_>,
    key: &str,
    doc: &mut D,
    epoch: u64,
    heads: &Heads,
) -> Result<()> {
    let snapshot = doc.save();
    tx.execute("DELETE FROM doc_chunks WHERE doc_id = ?1", [key])?;
    tx.execute(
        "UPDATE documents SET epoch = ?2, snapshot = ?3, snapshot_bytes = ?4, chunk_count = 0, \
         chunk_bytes = 0, heads = ?5, updated_at = ?6 WHERE doc_id = ?1",
        params![
            key,
            to_i64(epoch),
            snapshot,
            to_i64(snapshot.len() as u64),
            heads.to_bytes(),
            now_ms()
        ],
    )?;
    Ok(())
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Storage statistics of one document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DocStats {
    /// Size of the compacted snapshot.
    pub snapshot_bytes: u64,
    /// Incremental chunks appended since the last compaction.
    pub chunk_count: u32,
    /// Their total size.
    pub chunk_bytes: u64,
    /// Erasure epoch.
    pub epoch: u64,
}

/// A stored document's version, as the `documents` table records it (no document is loaded to
/// read it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredHeads {
    /// The document.
    pub doc: DocId,
    /// Its erasure epoch.
    pub epoch: u64,
    /// Its heads as last written (what the index reflects).
    pub heads: Heads,
}

impl Store {
    /// Saves a child's journal and updates the derived index in the same transaction.
    ///
    /// The journal should have been loaded from this store (or be new): what is appended is
    /// [`Journal::save_incremental`], the changes since it was loaded or last saved. A journal of
    /// a newer erasure epoch replaces the stored one entirely; an older one is refused.
    ///
    /// # Errors
    /// [`StoreError::Document`] (e.g. an older epoch) or a database failure; nothing is changed
    /// then, and the next save of this journal writes a full snapshot.
    pub fn save_journal(&mut self, journal: &mut Journal) -> Result<()> {
        self.save_journal_inner(journal, None)
    }

    /// Saves several journals in one transaction, each marked dirty (changed here, not yet
    /// acknowledged by the server) in the same transaction: a group observation lands in
    /// every tagged child's journal or in none.
    ///
    /// # Errors
    /// As [`Store::save_journal`]; nothing is written when any journal fails.
    pub fn save_journals_dirty(&mut self, journals: &mut [Journal]) -> Result<()> {
        let keys: Vec<String> = journals
            .iter()
            .map(|j| DocId::Journal(j.child().clone()).storage_key())
            .collect();
        let compaction = self.compaction;
        let needs_snapshot = &self.needs_snapshot;
        let result = (|| {
            let tx = self.conn.transaction()?;
            for (journal, key) in journals.iter_mut().zip(&keys) {
                let id = DocId::Journal(journal.child().clone());
                tx.execute("INSERT INTO dirty_docs (doc) VALUES (?1)", [key])?;
                match write_doc(&tx, &id, journal, compaction, needs_snapshot.contains(key))? {
                    Written::Unchanged => {}
                    Written::Replaced => {
                        index::unindex_child(&tx, journal.child())?;
                        index::index_all(&tx, journal)?;
                    }
                    Written::Advanced { old_heads } => {
                        index::apply_changes(&tx, journal, &old_heads)?;
                    }
                }
            }
            tx.commit()?;
            Ok(())
        })();
        for key in keys {
            track_failure(&mut self.needs_snapshot, key, &result);
        }
        result
    }

    /// Saves a journal and the sync state with `peer` that produced it, atomically (after
    /// applying a sync message, both must land or neither).
    ///
    /// # Errors
    /// As [`Store::save_journal`].
    pub fn save_journal_with_sync_state(
        &mut self,
        journal: &mut Journal,
        peer: &str,
        sync_state: &[u8],
    ) -> Result<()> {
        self.save_journal_inner(journal, Some((peer, sync_state)))
    }

    fn save_journal_inner(
        &mut self,
        journal: &mut Journal,
        sync: Option<(&str, &[u8])>,
    ) -> Result<()> {
        let id = DocId::Journal(journal.child().clone());
        let key = id.storage_key();
        let force = self.needs_snapshot.contains(&key);
        let compaction = self.compaction;
        let result = (|| {
            let tx = self.conn.transaction()?;
            match write_doc(&tx, &id, journal, compaction, force)? {
                Written::Unchanged => {}
                Written::Replaced => {
                    index::unindex_child(&tx, journal.child())?;
                    index::index_all(&tx, journal)?;
                }
                Written::Advanced { old_heads } => index::apply_changes(&tx, journal, &old_heads)?,
            }
            if let Some((peer, state)) = sync {
                put_sync_state(&tx, peer, &key, state)?;
            }
            tx.commit()?;
            Ok(())
        })();
        track_failure(&mut self.needs_snapshot, key, &result);
        result
    }

    /// Loads a child's journal (snapshot + chunks).
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when this device has no journal for the child;
    /// [`StoreError::Document`] when the stored bytes are damaged.
    pub fn journal(&self, child: &ChildId) -> Result<Journal> {
        let id = DocId::Journal(child.clone());
        let bytes = doc_bytes(&self.conn, &id)?;
        let journal = Journal::load(&bytes)?;
        if journal.child() != child {
            return Err(DocError::DifferentDocument.into());
        }
        Ok(journal)
    }

    /// Every child with a journal on this device.
    ///
    /// # Errors
    /// A database failure.
    pub fn journal_children(&self) -> Result<Vec<ChildId>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT child_id FROM documents WHERE kind = 'journal' ORDER BY child_id",
        )?;
        let ids = stmt.query_map([], |r| r.get::<_, String>(0))?;
        ids.map(|s| Ok(index::parse_id(&s?, ChildId::parse)?))
            .collect()
    }

    /// Removes a child's journal, its index rows and sync states (erasure, or before replacing
    /// it with a copy from the server). Idempotent.
    ///
    /// # Errors
    /// A database failure.
    pub fn delete_journal(&mut self, child: &ChildId) -> Result<()> {
        let key = DocId::Journal(child.clone()).storage_key();
        let tx = self.conn.transaction()?;
        index::unindex_child(&tx, child)?;
        tx.execute("DELETE FROM documents WHERE doc_id = ?1", [&key])?;
        tx.execute("DELETE FROM sync_states WHERE doc_id = ?1", [&key])?;
        tx.commit()?;
        self.needs_snapshot.remove(&key);
        Ok(())
    }

    /// Saves the roster document.
    ///
    /// # Errors
    /// A database failure.
    pub fn save_roster(&mut self, roster: &mut Roster) -> Result<()> {
        self.save_plain(&DocId::Roster, roster)
    }

    /// Loads the roster document.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when none is stored.
    pub fn roster(&self) -> Result<Roster> {
        Ok(Roster::load(&doc_bytes(&self.conn, &DocId::Roster)?)?)
    }

    /// Saves the setting document.
    ///
    /// # Errors
    /// A database failure.
    pub fn save_setting(&mut self, setting: &mut SettingDoc) -> Result<()> {
        self.save_plain(&DocId::Setting, setting)
    }

    /// Loads the setting document.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when none is stored.
    pub fn setting(&self) -> Result<SettingDoc> {
        Ok(SettingDoc::load(&doc_bytes(&self.conn, &DocId::Setting)?)?)
    }

    fn save_plain<D: StoredDoc>(&mut self, id: &DocId, doc: &mut D) -> Result<()> {
        let key = id.storage_key();
        let force = self.needs_snapshot.contains(&key);
        let compaction = self.compaction;
        let result = (|| {
            let tx = self.conn.transaction()?;
            write_doc(&tx, id, doc, compaction, force)?;
            tx.commit()?;
            Ok(())
        })();
        track_failure(&mut self.needs_snapshot, key, &result);
        result
    }

    /// Every stored document with its epoch and heads, roster and setting first, then journals
    /// by child. Read from the `documents` table: no document is loaded.
    ///
    /// # Errors
    /// A database failure; [`StoreError::Document`] when stored heads are damaged.
    pub fn doc_heads(&self) -> Result<Vec<StoredHeads>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT doc_id, epoch, heads FROM documents")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                index::parse_id(&r.get::<_, String>(0)?, DocId::parse_storage_key)?,
                r.get::<_, i64>(1)?,
                r.get::<_, Vec<u8>>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (doc, epoch, heads) = row?;
            out.push(StoredHeads {
                doc,
                epoch: epoch.try_into().unwrap_or(0),
                heads: Heads::from_bytes(&heads)?,
            });
        }
        out.sort_by(|a, b| a.doc.cmp(&b.doc));
        Ok(out)
    }

    /// Replaces the stored copy of a document (or creates it) with `bytes` exactly as received
    /// — a snapshot, possibly followed by change chunks — and, for a journal, rebuilds its
    /// index from `doc`; optionally stores the sync state with `peer` that goes with it. The
    /// old copy, its chunks, its index rows and every sync state for it are discarded. One
    /// transaction: a crash leaves the old copy or the new one.
    ///
    /// `doc` must be what `bytes` load to (the caller has just loaded it, to check which
    /// document and epoch they are): the bytes are stored as they are, not saved again, and
    /// the index and heads come from `doc`.
    ///
    /// # Errors
    /// A database failure; nothing is changed then.
    pub fn replace_document(
        &mut self,
        doc: &mut Document,
        bytes: &[u8],
        sync: Option<(&str, &[u8])>,
    ) -> Result<()> {
        let entries = match doc {
            Document::Journal(j) => j.entries(),
            Document::Roster(_) | Document::Setting(_) => Vec::new(),
        };
        let result = (|| {
            let tx = self.conn.transaction()?;
            write_received(&tx, &Received::new(doc, bytes.to_vec(), entries), sync)?;
            tx.commit()?;
            Ok(())
        })();
        track_failure(
            &mut self.needs_snapshot,
            received_id(doc).storage_key(),
            &result,
        );
        result
    }

    /// [`Self::replace_document`] for several documents at once, in **one** transaction (a
    /// new device's first sync receives every document of the setting: one commit instead of
    /// one per document). Each [`Received`] carries what the loaded document gave and, for a journal,
    /// its entries (materialised by the caller, possibly on other threads). `sync`, when
    /// given, is stored as the sync state with `peer` of every one of them.
    ///
    /// # Errors
    /// A database failure; nothing is changed then.
    pub fn replace_documents(
        &mut self,
        received: &[Received],
        sync: Option<(&str, &[u8])>,
    ) -> Result<()> {
        let result = (|| {
            let tx = self.conn.transaction()?;
            for r in received {
                write_received(&tx, r, sync)?;
            }
            tx.commit()?;
            Ok(())
        })();
        for r in received {
            track_failure(&mut self.needs_snapshot, r.id.storage_key(), &result);
        }
        result
    }

    /// Storage statistics of a document.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when it is not stored.
    pub fn doc_stats(&self, id: &DocId) -> Result<DocStats> {
        self.conn
            .query_row(
                "SELECT snapshot_bytes, chunk_count, chunk_bytes, epoch FROM documents WHERE doc_id = ?1",
                [id.storage_key()],
                |r| {
                    Ok(DocStats {
                        snapshot_bytes: r.get::<_, i64>(0)?.try_into().unwrap_or(0),
                        chunk_count: r.get::<_, i64>(1)?.try_into().unwrap_or(0),
                        chunk_bytes: r.get::<_, i64>(2)?.try_into().unwrap_or(0),
                        epoch: r.get::<_, i64>(3)?.try_into().unwrap_or(0),
                    })
                },
            )
            .optional()?
            .ok_or_else(|| not_stored(id))
    }

    /// The sync state with `peer` for a document, as last stored.
    ///
    /// # Errors
    /// A database failure.
    pub fn sync_state(&self, peer: &str, doc: &DocId) -> Result<Option<Vec<u8>>> {
        Ok(self
            .conn
            .prepare_cached("SELECT state FROM sync_states WHERE peer = ?1 AND doc_id = ?2")?
            .query_row(params![peer, doc.storage_key()], |r| r.get(0))
            .optional()?)
    }

    /// Stores the sync state with `peer` for a document (opaque bytes).
    ///
    /// # Errors
    /// A database failure.
    pub fn set_sync_state(&mut self, peer: &str, doc: &DocId, state: &[u8]) -> Result<()> {
        put_sync_state(&self.conn, peer, &doc.storage_key(), state)
    }

    /// Forgets every sync state with `peer` (e.g. after the server was restored from backup).
    /// Returns how many were removed.
    ///
    /// # Errors
    /// A database failure.
    pub fn clear_sync_states(&mut self, peer: &str) -> Result<usize> {
        Ok(self
            .conn
            .execute("DELETE FROM sync_states WHERE peer = ?1", [peer])?)
    }
}

/// The stored bytes of a document: snapshot followed by every chunk in order.
pub(crate) fn doc_bytes(conn: &rusqlite::Connection, id: &DocId) -> Result<Vec<u8>> {
    let key = id.storage_key();
    let mut bytes: Vec<u8> = conn
        .prepare_cached("SELECT snapshot FROM documents WHERE doc_id = ?1")?
        .query_row([&key], |r| r.get(0))
        .optional()?
        .ok_or_else(|| not_stored(id))?;
    let mut stmt =
        conn.prepare_cached("SELECT data FROM doc_chunks WHERE doc_id = ?1 ORDER BY seq")?;
    let mut rows = stmt.query([&key])?;
    while let Some(row) = rows.next()? {
        bytes.extend_from_slice(row.get_ref(0)?.as_blob()?);
    }
    Ok(bytes)
}

fn put_sync_state(conn: &rusqlite::Connection, peer: &str, key: &str, state: &[u8]) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO sync_states (peer, doc_id, state, updated_at) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (peer, doc_id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
    )?
    .execute(params![peer, key, state, now_ms()])?;
    Ok(())
}

/// After a failed write the document's in-memory "last saved" mark may have moved past what is
/// stored, so its next write must be a full snapshot.
/// A document received whole from a peer, checked, ready to store: the bytes as received and
/// what loading them gave (heads, epoch, entries for the index). It holds no loaded document,
/// so a first sync of a whole setting keeps bytes and entries in memory, not 60 Automerge
/// documents. See [`Store::replace_documents`].
pub struct Received {
    /// Which document.
    pub id: DocId,
    /// Its erasure epoch.
    pub epoch: u64,
    /// Its heads.
    pub heads: Heads,
    /// The bytes exactly as received; stored as they are.
    pub bytes: Vec<u8>,
    /// Changes the load step itself made (none today; a future schema upgrade), kept as a chunk.
    pub extra: Vec<u8>,
    /// The journal's entries ([`Journal::entries`]); empty for the roster and setting.
    pub entries: Vec<sprig_core::Entry>,
}

impl Received {
    /// From the document `bytes` were just loaded into (checked by the caller: which document,
    /// which epoch) and, for a journal, its entries.
    #[must_use]
    pub fn new(doc: &mut Document, bytes: Vec<u8>, entries: Vec<sprig_core::Entry>) -> Received {
        Received {
            id: received_id(doc),
            epoch: doc.epoch(),
            heads: doc.heads(),
            // Loading leaves nothing unsaved; should a future load step write changes (a schema
            // upgrade), they are kept as a chunk after the received bytes.
            extra: doc.save_incremental(),
            bytes,
            entries,
        }
    }
}

impl std::fmt::Debug for Received {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Received")
            .field("id", &self.id)
            .field("bytes", &format_args!("<{} bytes>", self.bytes.len()))
            .field("entries", &self.entries.len())
            .finish_non_exhaustive()
    }
}

fn received_id(doc: &Document) -> DocId {
    match doc {
        Document::Journal(j) => DocId::Journal(j.child().clone()),
        Document::Roster(_) => DocId::Roster,
        Document::Setting(_) => DocId::Setting,
    }
}

/// One received document's rows, inside the caller's transaction.
fn write_received(tx: &Transaction<'_>, r: &Received, sync: Option<(&str, &[u8])>) -> Result<()> {
    let id = &r.id;
    let key = id.storage_key();
    if let Some(child) = id.child() {
        index::unindex_child(tx, child)?;
    }
    tx.execute("DELETE FROM documents WHERE doc_id = ?1", [&key])?;
    tx.execute("DELETE FROM sync_states WHERE doc_id = ?1", [&key])?;
    tx.execute(
        "INSERT INTO documents (doc_id, kind, child_id, epoch, snapshot, snapshot_bytes, \
         chunk_count, chunk_bytes, heads, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            key,
            id.kind(),
            id.child().map(ChildId::as_str),
            to_i64(r.epoch),
            r.bytes,
            to_i64(r.bytes.len() as u64),
            i64::from(!r.extra.is_empty()),
            to_i64(r.extra.len() as u64),
            r.heads.to_bytes(),
            now_ms()
        ],
    )?;
    if !r.extra.is_empty() {
        tx.execute(
            "INSERT INTO doc_chunks (doc_id, seq, data) VALUES (?1, 0, ?2)",
            params![key, r.extra],
        )?;
    }
    index::index_entries(tx, &r.entries)?;
    if let Some((peer, state)) = sync {
        put_sync_state(tx, peer, &key, state)?;
    }
    Ok(())
}

fn track_failure(needs_snapshot: &mut HashSet<String>, key: String, result: &Result<()>) {
    if result.is_err() {
        needs_snapshot.insert(key);
    } else {
        needs_snapshot.remove(&key);
    }
}

fn not_stored(id: &DocId) -> StoreError {
    match id {
        DocId::Journal(c) => StoreError::not_found(format!("journal of child {c}")),
        DocId::Roster => StoreError::not_found("roster"),
        DocId::Setting => StoreError::not_found("setting document"),
    }
}

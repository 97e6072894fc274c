//! Documents on the server: [`AnyDoc`] loads and saves the three kinds from stored bytes, and
//! [`DeviceDocs`] is the [`DocSet`] a sync session with one device runs on.

use std::collections::BTreeMap;
use std::sync::Arc;

use sprig_core::{DocError, Document, Journal, Roster, SettingDoc, SyncState};
use sprig_proto::{DocId, DocSet, DocSetError, DocSummary};

use crate::store::{DocWrite, ServerStore, StoreError, StoredDoc};

/// A document has more appended chunks than this after a commit: compact it.
const COMPACT_AFTER_CHUNKS: usize = 64;

/// One of the three document kinds, loaded (the core's [`Document`]).
pub type AnyDoc = Document;

/// Loads `doc` from its stored snapshot and chunks, checking that it is that document.
///
/// # Errors
/// [`DocError`] when the bytes are damaged or are another document.
pub fn load_stored(doc: &DocId, stored: &StoredDoc) -> Result<AnyDoc, DocError> {
    let mut d = match doc {
        DocId::Roster => Document::Roster(Roster::load(&stored.snapshot)?),
        DocId::Setting => Document::Setting(SettingDoc::load(&stored.snapshot)?),
        DocId::Journal(child) => {
            let j = Journal::load(&stored.snapshot)?;
            if j.child() != child {
                return Err(DocError::DifferentDocument);
            }
            Document::Journal(j)
        }
    };
    for chunk in &stored.chunks {
        d.apply_incremental(chunk)?;
    }
    // What was loaded is stored: only later changes are "incremental".
    let _ = d.save_incremental();
    Ok(d)
}

/// A document could not be read from or written to the store.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum DocStoreError {
    /// The document does not exist (the data directory was not initialised?).
    #[error("{0} does not exist on this server; run `sprig-server init` first")]
    Missing(DocId),
    /// The stored bytes do not load.
    #[error("{doc} is damaged on the server: {source}")]
    Damaged {
        /// The document.
        doc: DocId,
        /// Why it does not load.
        #[source]
        source: DocError,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Loads a document from the store.
///
/// # Errors
/// [`DocStoreError`].
pub fn load_doc(store: &dyn ServerStore, doc: &DocId) -> Result<AnyDoc, DocStoreError> {
    let stored = store
        .load_doc(doc)?
        .ok_or_else(|| DocStoreError::Missing(doc.clone()))?;
    load_stored(doc, &stored).map_err(|source| DocStoreError::Damaged {
        doc: doc.clone(),
        source,
    })
}

/// Loads the roster, lets `edit` change it, and appends the change durably. Used by admin
/// commands: concurrent edits by devices or other commands merge, as they are separate chunks.
///
/// # Errors
/// [`DocStoreError`], or `edit`'s error.
pub fn edit_roster<T, E: From<DocStoreError>>(
    store: &dyn ServerStore,
    edit: impl FnOnce(&mut Roster) -> Result<T, E>,
) -> Result<T, E> {
    let AnyDoc::Roster(mut roster) = load_doc(store, &DocId::Roster)? else {
        unreachable!("load_doc returns the kind asked for");
    };
    let out = edit(&mut roster)?;
    let chunk = roster.save_incremental();
    if !chunk.is_empty() {
        store
            .commit_changes(
                None,
                &[DocWrite {
                    doc: DocId::Roster,
                    chunks: vec![chunk],
                }],
                &[],
            )
            .map_err(DocStoreError::from)?;
    }
    Ok(out)
}

/// Rewrites a document's snapshot from everything stored so far, dropping its chunks.
///
/// # Errors
/// [`DocStoreError`].
pub fn compact(store: &dyn ServerStore, doc: &DocId) -> Result<(), DocStoreError> {
    let stored = store
        .load_doc(doc)?
        .ok_or_else(|| DocStoreError::Missing(doc.clone()))?;
    if stored.chunks.is_empty() {
        return Ok(());
    }
    let mut d = load_stored(doc, &stored).map_err(|source| DocStoreError::Damaged {
        doc: doc.clone(),
        source,
    })?;
    store.compact_doc(doc, &d.save(), stored.last_seq)?;
    Ok(())
}

#[derive(Debug)]
struct Loaded {
    doc: AnyDoc,
    epoch: u64,
    chunks_in_store: usize,
    /// Changes saved out of the document (before a snapshot) but not yet committed.
    pending: Vec<Vec<u8>>,
}

/// The server's documents seen from one device's sync session: every document of the setting
/// (roster, setting, all journals), loaded on first use, changes appended at each commit.
#[derive(Debug)]
pub struct DeviceDocs {
    store: Arc<dyn ServerStore>,
    device: String,
    cache: BTreeMap<DocId, Loaded>,
}

fn store_err(e: impl std::error::Error + Send + Sync + 'static) -> DocSetError {
    DocSetError::Store(Box::new(e))
}

impl DeviceDocs {
    /// A view for `device`.
    #[must_use]
    pub fn new(store: Arc<dyn ServerStore>, device: &str) -> DeviceDocs {
        DeviceDocs {
            store,
            device: device.to_owned(),
            cache: BTreeMap::new(),
        }
    }

    fn get(&mut self, doc: &DocId) -> Result<&mut Loaded, DocSetError> {
        if !self.cache.contains_key(doc) {
            let stored = self
                .store
                .load_doc(doc)
                .map_err(store_err)?
                .ok_or_else(|| DocSetError::NotFound(doc.clone()))?;
            let loaded = load_stored(doc, &stored).map_err(|e| {
                store_err(DocStoreError::Damaged {
                    doc: doc.clone(),
                    source: e,
                })
            })?;
            self.cache.insert(
                doc.clone(),
                Loaded {
                    doc: loaded,
                    epoch: stored.epoch,
                    chunks_in_store: stored.chunks.len(),
                    pending: Vec::new(),
                },
            );
        }
        self.cache
            .get_mut(doc)
            .ok_or_else(|| DocSetError::NotFound(doc.clone()))
    }
}

impl DocSet for DeviceDocs {
    fn list(&mut self) -> Result<Vec<DocSummary>, DocSetError> {
        let docs = self.store.list_docs().map_err(store_err)?;
        let mut out = Vec::with_capacity(docs.len());
        for (doc, _) in docs {
            let l = self.get(&doc)?;
            out.push(DocSummary {
                heads: l.doc.heads(),
                epoch: l.epoch,
                doc,
            });
        }
        Ok(out)
    }

    fn sync_state(&mut self, doc: &DocId) -> Result<Option<SyncState>, DocSetError> {
        Ok(self
            .store
            .sync_state(&self.device, doc)
            .map_err(store_err)?
            // A damaged state only costs a fuller exchange.
            .and_then(|b| SyncState::decode(&b).ok()))
    }

    fn generate(
        &mut self,
        doc: &DocId,
        state: &mut SyncState,
    ) -> Result<Option<Vec<u8>>, DocSetError> {
        Ok(self.get(doc)?.doc.generate_sync_message(state))
    }

    fn receive(
        &mut self,
        doc: &DocId,
        state: &mut SyncState,
        message: &[u8],
    ) -> Result<bool, DocSetError> {
        let l = self.get(doc)?;
        let before = l.doc.heads();
        l.doc.receive_sync_message(state, message)?;
        Ok(l.doc.heads() != before)
    }

    fn snapshot(&mut self, doc: &DocId) -> Result<Vec<u8>, DocSetError> {
        let l = self.get(doc)?;
        // `save` moves the incremental cursor: keep what it would skip for the next commit.
        let pending = l.doc.save_incremental();
        if !pending.is_empty() {
            l.pending.push(pending);
        }
        Ok(l.doc.save())
    }

    fn replace(&mut self, doc: &DocId, _epoch: u64, _snapshot: &[u8]) -> Result<(), DocSetError> {
        Err(store_err(DocStoreError::Store(StoreError::Corrupt(
            format!("a device tried to replace {doc} on the server"),
        ))))
    }

    fn commit(&mut self, sync_states: &[(&DocId, &SyncState)]) -> Result<(), DocSetError> {
        let mut writes = Vec::new();
        for (doc, l) in &mut self.cache {
            let mut chunks = std::mem::take(&mut l.pending);
            let inc = l.doc.save_incremental();
            if !inc.is_empty() {
                chunks.push(inc);
            }
            if !chunks.is_empty() {
                l.chunks_in_store += chunks.len();
                writes.push(DocWrite {
                    doc: doc.clone(),
                    chunks,
                });
            }
        }
        let states: Vec<(DocId, Vec<u8>)> = sync_states
            .iter()
            .map(|(d, s)| ((*d).clone(), s.encode()))
            .collect();
        self.store
            .commit_changes(Some(&self.device), &writes, &states)
            .map_err(store_err)?;
        // Compaction is housekeeping: the changes are already durable, so a failure here is
        // logged, not fatal.
        for w in &writes {
            if let Some(l) = self.cache.get_mut(&w.doc)
                && l.chunks_in_store > COMPACT_AFTER_CHUNKS
            {
                match compact(self.store.as_ref(), &w.doc) {
                    Ok(()) => l.chunks_in_store = 0,
                    Err(e) => tracing::warn!(doc = %w.doc, error = %e, "compaction failed"),
                }
            }
        }
        Ok(())
    }
}

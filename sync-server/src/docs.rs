//! Documents on the server: [`AnyDoc`] loads and saves the three kinds from stored bytes, and
//! [`DeviceDocs`] is the [`DocSet`] a sync session with one device runs on. A session lists
//! heads from the store, sends a missing document as its stored bytes, and loads a document
//! only when a sync message for it must be generated or applied.

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
    let doc = DocId::Roster;
    let stored = store
        .load_doc(&doc)
        .map_err(DocStoreError::from)?
        .ok_or_else(|| DocStoreError::Missing(doc.clone()))?;
    let version = stored.version;
    let AnyDoc::Roster(mut roster) =
        load_stored(&doc, &stored).map_err(|source| DocStoreError::Damaged {
            doc: doc.clone(),
            source,
        })?
    else {
        unreachable!("load_stored returns the kind asked for");
    };
    drop(stored);
    let out = edit(&mut roster)?;
    let chunk = roster.save_incremental();
    if !chunk.is_empty() {
        store
            .commit_changes(
                None,
                &[DocWrite {
                    doc,
                    chunks: vec![chunk],
                    heads: roster.heads(),
                    base_version: version,
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
    let heads = d.heads();
    store.compact_doc(doc, &d.save(), stored.last_seq, stored.version, &heads)?;
    Ok(())
}

#[derive(Debug)]
struct Loaded {
    doc: AnyDoc,
    /// The store's version of the document that this copy holds every change of.
    version: u64,
    chunks_in_store: usize,
    /// Changes saved out of the document (before a snapshot) but not yet committed.
    pending: Vec<Vec<u8>>,
}

/// The server's documents seen from one device's sync session: every document of the setting
/// (roster, setting, all journals), listed by their stored heads, loaded only when a sync
/// message needs one, changes appended (with the new heads) at each commit.
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
                    version: stored.version,
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
        let docs = self.store.list_doc_heads().map_err(store_err)?;
        let mut out = Vec::with_capacity(docs.len());
        for d in docs {
            let heads = match d.heads {
                Some(h) => h,
                // Unknown (new, written by two sessions at once, or stored before heads were
                // kept): load this one document once and record them for every later listing.
                None => {
                    let l = self.get(&d.doc)?;
                    let (heads, version) = (l.doc.heads(), l.version);
                    self.store
                        .set_doc_heads(&d.doc, version, &heads)
                        .map_err(store_err)?;
                    heads
                }
            };
            out.push(DocSummary {
                doc: d.doc,
                epoch: d.epoch,
                heads,
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
        if let Some(l) = self.cache.get_mut(doc) {
            // Loaded (and maybe changed) in this session: save this copy. `save` moves the
            // incremental cursor: keep what it would skip for the next commit.
            let pending = l.doc.save_incremental();
            if !pending.is_empty() {
                l.pending.push(pending);
            }
            return Ok(l.doc.save());
        }
        // The stored bytes as they are: snapshot and chunks concatenated load as the
        // document, so nothing is loaded or re-saved here.
        Ok(self
            .store
            .load_doc(doc)
            .map_err(store_err)?
            .ok_or_else(|| DocSetError::NotFound(doc.clone()))?
            .into_bytes())
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
                    heads: l.doc.heads(),
                    base_version: l.version,
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
        // Each write counted the stored version up by one. A copy that was behind stays
        // behind, so its later writes keep recording heads as unknown, as they must.
        for w in &writes {
            if let Some(l) = self.cache.get_mut(&w.doc) {
                l.version += 1;
            }
        }
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

#[cfg(test)]
mod tests {
    use sprig_core::{Journal, Roster, SettingDoc, Timestamp};
    use sprig_testkit::Fixture;

    use super::*;
    use crate::store::SqliteStore;

    fn t(n: i64) -> Timestamp {
        Timestamp(1_700_000_000_000 + n * 60_000)
    }

    /// A server store holding the roster, the setting and `journal`, as `admin` creates them.
    fn store_with(journal: &mut Journal) -> Arc<dyn ServerStore> {
        let s = SqliteStore::open_in_memory().unwrap();
        s.create_doc(&DocId::Roster, 0, &Roster::new().save())
            .unwrap();
        s.create_doc(&DocId::Setting, 0, &SettingDoc::new("Acorns").save())
            .unwrap();
        s.create_doc(
            &DocId::Journal(journal.child().clone()),
            journal.epoch(),
            &journal.save(),
        )
        .unwrap();
        Arc::new(s)
    }

    /// Runs the Automerge sync protocol for `doc` between a session and a device's copy until
    /// both are quiet, then commits the session.
    fn sync_from_device(docs: &mut DeviceDocs, doc: &DocId, device: &mut Journal) {
        let (mut ours, mut theirs) = (SyncState::new(), SyncState::new());
        for _ in 0..20 {
            let to_server = device.generate_sync_message(&mut theirs);
            if let Some(m) = &to_server {
                docs.receive(doc, &mut ours, m).unwrap();
            }
            let to_device = docs.generate(doc, &mut ours).unwrap();
            if let Some(m) = &to_device {
                device.receive_sync_message(&mut theirs, m).unwrap();
            }
            if to_server.is_none() && to_device.is_none() {
                break;
            }
        }
        docs.commit(&[(doc, &ours)]).unwrap();
    }

    fn listed_heads(docs: &mut DeviceDocs, doc: &DocId) -> sprig_core::Heads {
        docs.list()
            .unwrap()
            .into_iter()
            .find(|d| &d.doc == doc)
            .unwrap()
            .heads
    }

    fn stored_heads(store: &dyn ServerStore, doc: &DocId) -> Option<sprig_core::Heads> {
        store
            .list_doc_heads()
            .unwrap()
            .into_iter()
            .find(|d| &d.doc == doc)
            .unwrap()
            .heads
    }

    #[test]
    fn listing_reads_stored_heads_and_loads_only_documents_whose_heads_are_unknown() {
        let fx = Fixture::new(1);
        let mut journal = fx.journal(0);
        fx.observe(&mut journal, "Built a tower", t(1));
        let store = store_with(&mut journal);
        let doc = DocId::Journal(journal.child().clone());
        // Just created: heads unknown; the first listing loads each document once and
        // records them.
        assert_eq!(stored_heads(store.as_ref(), &doc), None);
        let mut first = DeviceDocs::new(store.clone(), "tablet-1");
        let listed = first.list().unwrap();
        assert_eq!(listed.len(), 3);
        assert_eq!(listed_heads(&mut first, &doc), journal.heads());
        assert_eq!(stored_heads(store.as_ref(), &doc), Some(journal.heads()));

        // From now on listing reads the store only: with the document's bytes made unloadable
        // (but heads recorded), a new session still lists it, and only a sync message needs
        // (and fails) to load it.
        let stored = store.load_doc(&doc).unwrap().unwrap();
        store
            .compact_doc(
                &doc,
                b"not automerge",
                stored.last_seq,
                stored.version,
                &journal.heads(),
            )
            .unwrap();
        let mut second = DeviceDocs::new(store.clone(), "tablet-2");
        assert_eq!(listed_heads(&mut second, &doc), journal.heads());
        assert!(second.cache.is_empty(), "listing loaded a document");
        assert!(second.generate(&doc, &mut SyncState::new()).is_err());
    }

    #[test]
    fn a_missing_document_is_sent_as_its_stored_bytes_without_loading() {
        let fx = Fixture::new(1);
        let mut journal = fx.journal(0);
        fx.observe(&mut journal, "first", t(1));
        let store = store_with(&mut journal);
        let doc = DocId::Journal(journal.child().clone());
        // A device adds a change: stored as a chunk after the snapshot.
        let mut device = Journal::load(&journal.save()).unwrap();
        fx.observe(&mut device, "second", t(2));
        sync_from_device(
            &mut DeviceDocs::new(store.clone(), "tablet-1"),
            &doc,
            &mut device,
        );
        let stored = store.load_doc(&doc).unwrap().unwrap();
        assert_eq!(stored.chunks.len(), 1);

        let mut docs = DeviceDocs::new(store.clone(), "tablet-2");
        let bytes = docs.snapshot(&doc).unwrap();
        assert!(docs.cache.is_empty(), "the snapshot was made by loading");
        assert_eq!(bytes, stored.into_bytes());
        let mut received = Journal::load(&bytes).unwrap();
        assert_eq!(received.heads(), device.heads());
        assert_eq!(received.entries(), device.entries());
    }

    #[test]
    fn two_sessions_writing_one_journal_leave_heads_that_cover_both() {
        let fx = Fixture::new(1);
        let mut journal = fx.journal(0);
        fx.observe(&mut journal, "shared", t(1));
        let store = store_with(&mut journal);
        let doc = DocId::Journal(journal.child().clone());
        let mut a = DeviceDocs::new(store.clone(), "tablet-a");
        let mut b = DeviceDocs::new(store.clone(), "tablet-b");
        // Both sessions hold the journal before either commits.
        a.generate(&doc, &mut SyncState::new()).unwrap();
        b.generate(&doc, &mut SyncState::new()).unwrap();
        let mut dev_a = Journal::load(&journal.save()).unwrap();
        let mut dev_b = Journal::load(&journal.save()).unwrap();
        let from_a = fx.observe(&mut dev_a, "from tablet a", t(2));
        let from_b = fx.observe(&mut dev_b, "from tablet b", t(3));
        sync_from_device(&mut a, &doc, &mut dev_a);
        assert_eq!(stored_heads(store.as_ref(), &doc), Some(dev_a.heads()));
        // B's copy lacks A's change: its heads would hide it, so they are not recorded.
        sync_from_device(&mut b, &doc, &mut dev_b);
        assert_eq!(stored_heads(store.as_ref(), &doc), None);

        let mut merged =
            Journal::load(&store.load_doc(&doc).unwrap().unwrap().into_bytes()).unwrap();
        assert!(merged.entry(&from_a).is_some() && merged.entry(&from_b).is_some());
        let mut next = DeviceDocs::new(store.clone(), "tablet-c");
        assert_eq!(listed_heads(&mut next, &doc), merged.heads());
        assert_eq!(stored_heads(store.as_ref(), &doc), Some(merged.heads()));
    }

    #[test]
    fn compaction_records_the_heads_of_the_snapshot() {
        let fx = Fixture::new(1);
        let mut journal = fx.journal(0);
        let store = store_with(&mut journal);
        let doc = DocId::Journal(journal.child().clone());
        let mut device = Journal::load(&journal.save()).unwrap();
        fx.observe(&mut device, "one", t(1));
        let mut a = DeviceDocs::new(store.clone(), "tablet-a");
        a.generate(&doc, &mut SyncState::new()).unwrap();
        let mut b = DeviceDocs::new(store.clone(), "tablet-b");
        b.generate(&doc, &mut SyncState::new()).unwrap();
        sync_from_device(&mut a, &doc, &mut device);
        fx.observe(&mut device, "two", t(2));
        sync_from_device(&mut b, &doc, &mut device);
        assert_eq!(stored_heads(store.as_ref(), &doc), None);
        compact(store.as_ref(), &doc).unwrap();
        let stored = store.load_doc(&doc).unwrap().unwrap();
        assert!(stored.chunks.is_empty());
        assert_eq!(stored.heads, Some(device.heads()));
    }
}

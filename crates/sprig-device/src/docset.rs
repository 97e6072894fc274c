//! The device store as a sync [`DocSet`]: heads are listed from the store without loading;
//! a document the peer syncs is loaded once per session, changed in memory by its sync
//! messages and written back (with its sync state for the peer) when the session commits; a
//! document the server sends whole is stored as the bytes received.

use std::collections::{BTreeMap, BTreeSet};

use sprig_core::{DocError, Document as Doc, Journal, Roster, SettingDoc, SyncState};
use sprig_proto::{DocId, DocSetError, DocSummary};
use sprig_store::{Received, Store, StoreError};

/// The peer name under which sync states with the server are stored.
pub const SERVER_PEER: &str = "server";

/// A [`sprig_proto::DocSet`] over the device [`Store`], for one session with the server.
pub(crate) struct StoreDocs<'s> {
    store: &'s mut Store,
    loaded: BTreeMap<DocId, Doc>,
    /// Documents changed in memory and not yet written.
    dirty: BTreeSet<DocId>,
    /// Documents received whole (`Replace`) and not yet stored: epoch and bytes. They are
    /// checked, indexed and stored together at the next commit (before any reply).
    received: BTreeMap<DocId, (u64, Vec<u8>)>,
}

#[allow(clippy::needless_pass_by_value)] // used as `map_err(store_err)`
fn store_err(e: StoreError) -> DocSetError {
    match e {
        StoreError::Document(d) => DocSetError::Rejected(d),
        other => DocSetError::Store(Box::new(other)),
    }
}

impl<'s> StoreDocs<'s> {
    pub(crate) fn new(store: &'s mut Store) -> Self {
        Self {
            store,
            loaded: BTreeMap::new(),
            dirty: BTreeSet::new(),
            received: BTreeMap::new(),
        }
    }

    fn load(&mut self, doc: &DocId) -> Result<&mut Doc, DocSetError> {
        if self.received.contains_key(doc) {
            // Synced further in the same turn it arrived: store it first, as received.
            self.store_received()?;
        }
        if !self.loaded.contains_key(doc) {
            let loaded = match doc {
                DocId::Roster => self.store.roster().map(Doc::Roster),
                DocId::Setting => self.store.setting().map(Doc::Setting),
                DocId::Journal(c) => self.store.journal(c).map(Doc::Journal),
            };
            let loaded = match loaded {
                Err(e) if e.is_not_found() => return Err(DocSetError::NotFound(doc.clone())),
                other => other.map_err(store_err)?,
            };
            self.loaded.insert(doc.clone(), loaded);
        }
        self.loaded
            .get_mut(doc)
            .ok_or_else(|| DocSetError::NotFound(doc.clone()))
    }

    /// Checks, indexes and stores every document received whole, in one transaction. Loading
    /// and materialising them (the costly part) runs on all cores; the store writes them
    /// together with a fresh sync state each.
    fn store_received(&mut self) -> Result<(), DocSetError> {
        if self.received.is_empty() {
            return Ok(());
        }
        let items: Vec<(DocId, u64, Vec<u8>)> = std::mem::take(&mut self.received)
            .into_iter()
            .map(|(doc, (epoch, bytes))| (doc, epoch, bytes))
            .collect();
        let workers = std::thread::available_parallelism()
            .map_or(1, std::num::NonZero::get)
            .clamp(1, 8)
            .min(items.len());
        let checked: Vec<(usize, Result<Received, DocError>)> = std::thread::scope(|s| {
            let items = &items;
            let handles: Vec<_> = (0..workers)
                .map(|w| {
                    s.spawn(move || {
                        items
                            .iter()
                            .enumerate()
                            .skip(w)
                            .step_by(workers)
                            .map(|(i, (doc, epoch, bytes))| (i, check_received(doc, *epoch, bytes)))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        });
        let mut batch = Vec::with_capacity(checked.len());
        let mut ordered = checked;
        ordered.sort_by_key(|(i, _)| *i);
        for (_, r) in ordered {
            batch.push(r?);
        }
        let fresh = SyncState::new().encode();
        self.store
            .replace_documents(&batch, Some((SERVER_PEER, &fresh)))
            .map_err(store_err)
    }

    fn write(&mut self, doc: &DocId, state: Option<&SyncState>) -> Result<(), DocSetError> {
        let encoded = state.map(SyncState::encode);
        let dirty = self.dirty.contains(doc);
        if dirty {
            let Some(d) = self.loaded.get_mut(doc) else {
                return Err(DocSetError::NotFound(doc.clone()));
            };
            match (d, &encoded) {
                (Doc::Journal(j), Some(s)) => self
                    .store
                    .save_journal_with_sync_state(j, SERVER_PEER, s)
                    .map_err(store_err)?,
                (Doc::Journal(j), None) => self.store.save_journal(j).map_err(store_err)?,
                // The document before its sync state: a state ahead of the stored document
                // would make the peer skip changes we never stored.
                (Doc::Roster(r), s) => {
                    self.store.save_roster(r).map_err(store_err)?;
                    if let Some(s) = s {
                        self.store
                            .set_sync_state(SERVER_PEER, doc, s)
                            .map_err(store_err)?;
                    }
                }
                (Doc::Setting(r), s) => {
                    self.store.save_setting(r).map_err(store_err)?;
                    if let Some(s) = s {
                        self.store
                            .set_sync_state(SERVER_PEER, doc, s)
                            .map_err(store_err)?;
                    }
                }
            }
            self.dirty.remove(doc);
        } else if let Some(s) = encoded {
            self.store
                .set_sync_state(SERVER_PEER, doc, &s)
                .map_err(store_err)?;
        }
        Ok(())
    }
}

impl sprig_proto::DocSet for StoreDocs<'_> {
    fn list(&mut self) -> Result<Vec<DocSummary>, DocSetError> {
        self.store_received()?;
        // Heads as stored beside each document: nothing is loaded to list them.
        Ok(self
            .store
            .doc_heads()
            .map_err(store_err)?
            .into_iter()
            .map(|h| DocSummary {
                doc: h.doc,
                epoch: h.epoch,
                heads: h.heads,
            })
            .collect())
    }

    fn sync_state(&mut self, doc: &DocId) -> Result<Option<SyncState>, DocSetError> {
        if self.received.contains_key(doc) {
            // What will be stored with it.
            return Ok(Some(SyncState::new()));
        }
        Ok(self
            .store
            .sync_state(SERVER_PEER, doc)
            .map_err(store_err)?
            // A damaged state only costs a fuller exchange.
            .and_then(|b| SyncState::decode(&b).ok()))
    }

    fn generate(
        &mut self,
        doc: &DocId,
        state: &mut SyncState,
    ) -> Result<Option<Vec<u8>>, DocSetError> {
        Ok(self.load(doc)?.generate_sync_message(state))
    }

    fn receive(
        &mut self,
        doc: &DocId,
        state: &mut SyncState,
        message: &[u8],
    ) -> Result<bool, DocSetError> {
        let d = self.load(doc)?;
        let before = d.heads();
        d.receive_sync_message(state, message)?;
        let changed = d.heads() != before;
        if changed {
            self.dirty.insert(doc.clone());
        }
        Ok(changed)
    }

    fn snapshot(&mut self, doc: &DocId) -> Result<Vec<u8>, DocSetError> {
        Ok(self.load(doc)?.save())
    }

    fn replace(&mut self, doc: &DocId, epoch: u64, snapshot: &[u8]) -> Result<(), DocSetError> {
        if epoch != 0 && *doc == DocId::Setting {
            return Err(DocError::EpochMismatch {
                ours: 0,
                theirs: epoch,
            }
            .into());
        }
        // Stored at the next commit, with every other document of this turn. The old copy
        // (and its unsynced changes) is discarded by definition: the server's copy replaces it.
        self.dirty.remove(doc);
        self.loaded.remove(doc);
        self.received
            .insert(doc.clone(), (epoch, snapshot.to_vec()));
        Ok(())
    }

    fn commit(&mut self, sync_states: &[(&DocId, &SyncState)]) -> Result<(), DocSetError> {
        self.store_received()?;
        let mut with_state = BTreeSet::new();
        for (doc, state) in sync_states {
            self.write(doc, Some(state))?;
            with_state.insert((*doc).clone());
        }
        let rest: Vec<DocId> = self
            .dirty
            .iter()
            .filter(|d| !with_state.contains(*d))
            .cloned()
            .collect();
        for doc in rest {
            self.write(&doc, None)?;
        }
        Ok(())
    }
}

/// Loads a document received whole, checks it is the one named and of the epoch announced,
/// and materialises a journal's entries for the index.
fn check_received(doc: &DocId, epoch: u64, bytes: &[u8]) -> Result<Received, DocError> {
    let (mut doc, entries) = match doc {
        DocId::Roster => {
            let r = Roster::load(bytes)?;
            if r.epoch() != epoch {
                return Err(DocError::EpochMismatch {
                    ours: epoch,
                    theirs: r.epoch(),
                });
            }
            (Doc::Roster(r), Vec::new())
        }
        DocId::Setting => (Doc::Setting(SettingDoc::load(bytes)?), Vec::new()),
        DocId::Journal(child) => {
            let j = Journal::load(bytes)?;
            if j.child() != child {
                return Err(DocError::DifferentDocument);
            }
            if j.epoch() != epoch {
                return Err(DocError::EpochMismatch {
                    ours: epoch,
                    theirs: j.epoch(),
                });
            }
            let entries = j.entries();
            (Doc::Journal(j), entries)
        }
    };
    // The loaded document is dropped here: only the bytes, heads and entries are kept.
    Ok(Received::new(&mut doc, bytes.to_vec(), entries))
}

#[cfg(test)]
mod tests {
    use sprig_core::{ChildId, Timestamp};
    use sprig_proto::DocSet;
    use sprig_store::MemoryKeyStore;
    use sprig_testkit::Fixture;

    use super::*;

    fn t(n: i64) -> Timestamp {
        Timestamp(1_700_000_000_000 + n * 60_000)
    }

    /// A journal as the server sends it: its stored snapshot followed by a change chunk.
    fn server_bytes(fx: &Fixture) -> (Journal, Vec<u8>) {
        let mut j = fx.journal(0);
        fx.observe(&mut j, "Built a tower", t(1));
        let mut bytes = j.save();
        fx.observe(&mut j, "Painted a sun", t(2));
        bytes.extend(j.save_incremental());
        (j, bytes)
    }

    #[test]
    fn a_replaced_journal_is_stored_as_received_and_listed_without_loading() {
        let fx = Fixture::new(1);
        let dir = tempfile::tempdir().unwrap();
        let keys = MemoryKeyStore::new();
        let mut store = Store::create(dir.path().join("device.db"), &keys).unwrap();
        let (mut server, bytes) = server_bytes(&fx);
        let doc = DocId::Journal(fx.children[0].clone());
        {
            let mut docs = StoreDocs::new(&mut store);
            docs.replace(&doc, 0, &bytes).unwrap();
            assert!(docs.loaded.is_empty());
            let listed = docs.list().unwrap();
            assert!(docs.loaded.is_empty(), "listing loaded a document");
            assert_eq!(
                listed,
                vec![DocSummary {
                    doc: doc.clone(),
                    epoch: 0,
                    heads: server.heads(),
                }]
            );
        }
        assert_eq!(
            store.timeline(&fx.children[0], 10, None).unwrap().len(),
            2,
            "the index was not built"
        );
        assert_eq!(
            store.journal(&fx.children[0]).unwrap().entries(),
            server.entries()
        );
        assert_eq!(
            store.sync_state(SERVER_PEER, &doc).unwrap(),
            Some(SyncState::new().encode())
        );
    }

    #[test]
    fn a_replace_that_is_not_the_named_document_changes_nothing() {
        let fx = Fixture::new(1);
        let dir = tempfile::tempdir().unwrap();
        let keys = MemoryKeyStore::new();
        let mut store = Store::create(dir.path().join("device.db"), &keys).unwrap();
        let (_, bytes) = server_bytes(&fx);
        let ours = DocId::Journal(fx.children[0].clone());
        let other = DocId::Journal(ChildId::new_random());
        // Checked when the turn is committed, all together: one bad document stores none.
        let mut docs = StoreDocs::new(&mut store);
        docs.replace(&ours, 0, &bytes).unwrap();
        docs.replace(&other, 0, &bytes).unwrap();
        assert!(matches!(
            docs.commit(&[]),
            Err(DocSetError::Rejected(DocError::DifferentDocument))
        ));
        assert!(docs.list().unwrap().is_empty());
        let mut docs = StoreDocs::new(&mut store);
        docs.replace(&ours, 1, &bytes).unwrap();
        assert!(matches!(
            docs.commit(&[]),
            Err(DocSetError::Rejected(DocError::EpochMismatch { .. }))
        ));
        assert!(docs.list().unwrap().is_empty());
        assert!(
            store
                .timeline(&fx.children[0], 10, None)
                .unwrap()
                .is_empty()
        );
        // The good one alone is stored, bytes as received.
        let mut docs = StoreDocs::new(&mut store);
        docs.replace(&ours, 0, &bytes).unwrap();
        docs.commit(&[]).unwrap();
        assert_eq!(docs.list().unwrap().len(), 1);
        assert_eq!(store.timeline(&fx.children[0], 10, None).unwrap().len(), 2);
    }

    #[test]
    fn a_document_synced_in_the_turn_it_arrived_whole_is_stored_first() {
        let fx = Fixture::new(1);
        let dir = tempfile::tempdir().unwrap();
        let keys = MemoryKeyStore::new();
        let mut store = Store::create(dir.path().join("device.db"), &keys).unwrap();
        let (server, bytes) = server_bytes(&fx);
        let ours = DocId::Journal(fx.children[0].clone());
        let mut docs = StoreDocs::new(&mut store);
        docs.replace(&ours, 0, &bytes).unwrap();
        assert_eq!(
            docs.sync_state(&ours).unwrap().map(|s| s.encode()),
            Some(SyncState::new().encode())
        );
        // A sync message for it before the commit loads it from the store, where it now is.
        let mut state = SyncState::new();
        assert!(docs.generate(&ours, &mut state).unwrap().is_some());
        assert_eq!(docs.list().unwrap().len(), 1);
        drop(docs);
        assert_eq!(
            store.journal(&fx.children[0]).unwrap().entries(),
            server.entries()
        );
    }
}

//! The device store as a sync [`DocSet`]: documents are loaded once per session, changed in
//! memory by the peer's sync messages and written back (with their sync states for the peer)
//! when the session commits.

use std::collections::{BTreeMap, BTreeSet};

use sprig_core::{DocError, Document as Doc, Journal, Roster, SettingDoc, SyncState};
use sprig_proto::{DocId, DocSetError, DocSummary};
use sprig_store::{Store, StoreError};

/// The peer name under which sync states with the server are stored.
pub const SERVER_PEER: &str = "server";

/// A [`sprig_proto::DocSet`] over the device [`Store`], for one session with the server.
pub(crate) struct StoreDocs<'s> {
    store: &'s mut Store,
    loaded: BTreeMap<DocId, Doc>,
    /// Documents changed in memory and not yet written.
    dirty: BTreeSet<DocId>,
}

fn store_id(doc: &DocId) -> sprig_store::DocId {
    match doc {
        DocId::Roster => sprig_store::DocId::Roster,
        DocId::Setting => sprig_store::DocId::Setting,
        DocId::Journal(c) => sprig_store::DocId::Journal(c.clone()),
    }
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
        }
    }

    fn load(&mut self, doc: &DocId) -> Result<&mut Doc, DocSetError> {
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
                            .set_sync_state(SERVER_PEER, &store_id(doc), s)
                            .map_err(store_err)?;
                    }
                }
                (Doc::Setting(r), s) => {
                    self.store.save_setting(r).map_err(store_err)?;
                    if let Some(s) = s {
                        self.store
                            .set_sync_state(SERVER_PEER, &store_id(doc), s)
                            .map_err(store_err)?;
                    }
                }
            }
            self.dirty.remove(doc);
        } else if let Some(s) = encoded {
            self.store
                .set_sync_state(SERVER_PEER, &store_id(doc), &s)
                .map_err(store_err)?;
        }
        Ok(())
    }
}

impl sprig_proto::DocSet for StoreDocs<'_> {
    fn list(&mut self) -> Result<Vec<DocSummary>, DocSetError> {
        let mut ids = Vec::new();
        for (id, sid) in [
            (DocId::Roster, sprig_store::DocId::Roster),
            (DocId::Setting, sprig_store::DocId::Setting),
        ] {
            match self.store.doc_stats(&sid) {
                Ok(_) => ids.push(id),
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(store_err(e)),
            }
        }
        ids.extend(
            self.store
                .journal_children()
                .map_err(store_err)?
                .into_iter()
                .map(DocId::Journal),
        );
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let d = self.load(&id)?;
            out.push(DocSummary {
                epoch: d.epoch(),
                heads: d.heads(),
                doc: id,
            });
        }
        Ok(out)
    }

    fn sync_state(&mut self, doc: &DocId) -> Result<Option<SyncState>, DocSetError> {
        Ok(self
            .store
            .sync_state(SERVER_PEER, &store_id(doc))
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
        let fresh = SyncState::new().encode();
        let sid = store_id(doc);
        let replacement = match doc {
            DocId::Roster | DocId::Setting if epoch != 0 => {
                return Err(DocError::EpochMismatch {
                    ours: 0,
                    theirs: epoch,
                }
                .into());
            }
            DocId::Roster => {
                let mut r = Roster::load(snapshot)?;
                self.store.save_roster(&mut r).map_err(store_err)?;
                Doc::Roster(r)
            }
            DocId::Setting => {
                let mut s = SettingDoc::load(snapshot)?;
                self.store.save_setting(&mut s).map_err(store_err)?;
                Doc::Setting(s)
            }
            DocId::Journal(child) => {
                let mut j = Journal::load(snapshot)?;
                if j.child() != child {
                    return Err(DocError::DifferentDocument.into());
                }
                if j.epoch() != epoch {
                    return Err(DocError::EpochMismatch {
                        ours: epoch,
                        theirs: j.epoch(),
                    }
                    .into());
                }
                // The old copy (and its unsynced changes) is discarded by definition: the
                // server's snapshot of the new epoch replaces it.
                self.store.delete_journal(child).map_err(store_err)?;
                self.store.save_journal(&mut j).map_err(store_err)?;
                Doc::Journal(j)
            }
        };
        self.store
            .set_sync_state(SERVER_PEER, &sid, &fresh)
            .map_err(store_err)?;
        self.dirty.remove(doc);
        self.loaded.insert(doc.clone(), replacement);
        Ok(())
    }

    fn commit(&mut self, sync_states: &[(&DocId, &SyncState)]) -> Result<(), DocSetError> {
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

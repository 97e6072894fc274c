//! An in-memory [`DocSet`]: the reference implementation, used by this crate's tests and by
//! any test that needs a replica without a database.

use std::collections::{BTreeMap, HashMap};

use sprig_core::{ChildId, DocError, Journal, Roster, SettingDoc, SyncState};

use crate::doc_id::{DocId, DocSummary};
use crate::docset::DocSet;
use crate::error::DocSetError;

/// One replica's documents, held in memory, with sync states per peer.
#[derive(Debug, Default)]
pub struct MemoryDocs {
    /// The roster, once held.
    pub roster: Option<Roster>,
    /// The setting document, once held.
    pub setting: Option<SettingDoc>,
    /// The journals held, by child.
    pub journals: BTreeMap<ChildId, Journal>,
    /// Encoded sync states, by peer and document.
    sync_states: HashMap<(String, DocId), Vec<u8>>,
    /// How many times a session committed.
    pub commits: u64,
}

impl MemoryDocs {
    /// A replica that holds nothing (a new device).
    #[must_use]
    pub fn new() -> MemoryDocs {
        MemoryDocs::default()
    }

    /// A replica holding these documents (a server).
    #[must_use]
    pub fn with_docs(
        roster: Roster,
        setting: SettingDoc,
        journals: impl IntoIterator<Item = Journal>,
    ) -> MemoryDocs {
        MemoryDocs {
            roster: Some(roster),
            setting: Some(setting),
            journals: journals
                .into_iter()
                .map(|j| (j.child().clone(), j))
                .collect(),
            ..MemoryDocs::default()
        }
    }

    /// The [`DocSet`] for a session with `peer` (whose sync states it reads and writes).
    pub fn peer(&mut self, peer: &str) -> MemoryPeer<'_> {
        MemoryPeer {
            docs: self,
            peer: peer.to_owned(),
        }
    }

    /// Every document held, with its epoch and heads, in [`DocId`] order.
    pub fn summaries(&mut self) -> Vec<DocSummary> {
        let mut out = Vec::new();
        if let Some(r) = &mut self.roster {
            out.push(DocSummary {
                doc: DocId::Roster,
                epoch: r.epoch(),
                heads: r.heads(),
            });
        }
        if let Some(s) = &mut self.setting {
            out.push(DocSummary {
                doc: DocId::Setting,
                epoch: 0,
                heads: s.heads(),
            });
        }
        for (child, j) in &mut self.journals {
            out.push(DocSummary {
                doc: DocId::Journal(child.clone()),
                epoch: j.epoch(),
                heads: j.heads(),
            });
        }
        out
    }

    fn get(&mut self, doc: &DocId) -> Result<DocMut<'_>, DocSetError> {
        let found = match doc {
            DocId::Roster => self.roster.as_mut().map(DocMut::Roster),
            DocId::Setting => self.setting.as_mut().map(DocMut::Setting),
            DocId::Journal(c) => self.journals.get_mut(c).map(DocMut::Journal),
        };
        found.ok_or_else(|| DocSetError::NotFound(doc.clone()))
    }
}

/// The three document types behind one interface.
enum DocMut<'a> {
    Roster(&'a mut Roster),
    Setting(&'a mut SettingDoc),
    Journal(&'a mut Journal),
}

impl DocMut<'_> {
    fn heads(&mut self) -> sprig_core::Heads {
        match self {
            DocMut::Roster(d) => d.heads(),
            DocMut::Setting(d) => d.heads(),
            DocMut::Journal(d) => d.heads(),
        }
    }

    fn generate(&mut self, state: &mut SyncState) -> Option<Vec<u8>> {
        match self {
            DocMut::Roster(d) => d.generate_sync_message(state),
            DocMut::Setting(d) => d.generate_sync_message(state),
            DocMut::Journal(d) => d.generate_sync_message(state),
        }
    }

    fn receive(&mut self, state: &mut SyncState, msg: &[u8]) -> Result<(), DocError> {
        match self {
            DocMut::Roster(d) => d.receive_sync_message(state, msg),
            DocMut::Setting(d) => d.receive_sync_message(state, msg),
            DocMut::Journal(d) => d.receive_sync_message(state, msg),
        }
    }

    fn save(&mut self) -> Vec<u8> {
        match self {
            DocMut::Roster(d) => d.save(),
            DocMut::Setting(d) => d.save(),
            DocMut::Journal(d) => d.save(),
        }
    }
}

/// A [`MemoryDocs`] seen from a session with one peer.
#[derive(Debug)]
pub struct MemoryPeer<'a> {
    docs: &'a mut MemoryDocs,
    peer: String,
}

impl DocSet for MemoryPeer<'_> {
    fn list(&mut self) -> Result<Vec<DocSummary>, DocSetError> {
        Ok(self.docs.summaries())
    }

    fn sync_state(&mut self, doc: &DocId) -> Result<Option<SyncState>, DocSetError> {
        Ok(self
            .docs
            .sync_states
            .get(&(self.peer.clone(), doc.clone()))
            // A damaged state only costs a fuller exchange; start afresh.
            .and_then(|b| SyncState::decode(b).ok()))
    }

    fn generate(
        &mut self,
        doc: &DocId,
        state: &mut SyncState,
    ) -> Result<Option<Vec<u8>>, DocSetError> {
        Ok(self.docs.get(doc)?.generate(state))
    }

    fn receive(
        &mut self,
        doc: &DocId,
        state: &mut SyncState,
        message: &[u8],
    ) -> Result<bool, DocSetError> {
        let mut d = self.docs.get(doc)?;
        let before = d.heads();
        d.receive(state, message)?;
        Ok(d.heads() != before)
    }

    fn snapshot(&mut self, doc: &DocId) -> Result<Vec<u8>, DocSetError> {
        Ok(self.docs.get(doc)?.save())
    }

    fn replace(&mut self, doc: &DocId, epoch: u64, snapshot: &[u8]) -> Result<(), DocSetError> {
        match doc {
            DocId::Setting if epoch != 0 => {
                return Err(DocError::EpochMismatch {
                    ours: 0,
                    theirs: epoch,
                }
                .into());
            }
            DocId::Roster => {
                let r = Roster::load(snapshot)?;
                if r.epoch() != epoch {
                    return Err(DocError::EpochMismatch {
                        ours: epoch,
                        theirs: r.epoch(),
                    }
                    .into());
                }
                self.docs.roster = Some(r);
            }
            DocId::Setting => self.docs.setting = Some(SettingDoc::load(snapshot)?),
            DocId::Journal(child) => {
                let j = Journal::load(snapshot)?;
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
                self.docs.journals.insert(child.clone(), j);
            }
        }
        // Every peer's knowledge of the old copy is void.
        self.docs.sync_states.retain(|(_, d), _| d != doc);
        Ok(())
    }

    fn commit(&mut self, sync_states: &[(&DocId, &SyncState)]) -> Result<(), DocSetError> {
        for (doc, state) in sync_states {
            self.docs
                .sync_states
                .insert((self.peer.clone(), (*doc).clone()), state.encode());
        }
        self.docs.commits += 1;
        Ok(())
    }
}

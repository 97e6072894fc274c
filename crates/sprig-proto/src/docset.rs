//! What a session needs from the replica it runs on: the device store and the server store
//! each implement [`DocSet`]; [`crate::MemoryDocs`] is the in-memory one for tests.

use sprig_core::SyncState;

use crate::doc_id::{DocId, DocSummary};
use crate::error::DocSetError;

/// The documents one replica shares with one peer, and its persisted sync state with that
/// peer. A session calls these methods; it never stores anything itself.
///
/// Durability contract: changes applied by [`DocSet::receive`] and [`DocSet::replace`] need
/// only be durable once [`DocSet::commit`] returns; the session calls `commit` before it sends
/// anything that acknowledges them (its next sync messages carry its new heads). So a store
/// can write a whole turn in one transaction. A store may also hold everything, sync states
/// included, until the session has converged and write it then (the server does, so that a
/// session with a refused change leaves nothing of itself); what it must never do is persist a
/// sync state that claims changes it has not stored.
pub trait DocSet {
    /// The documents shared with this peer. On a device: every document it holds. On the
    /// server: every document this device must hold (all journals of its setting, the roster
    /// and the setting document).
    ///
    /// # Errors
    /// [`DocSetError::Store`] when the store cannot be read.
    fn list(&mut self) -> Result<Vec<DocSummary>, DocSetError>;

    /// The sync state persisted with this peer for `doc` by an earlier [`DocSet::commit`],
    /// or `None` (a fresh state is used).
    ///
    /// # Errors
    /// [`DocSetError::Store`] when it cannot be read; a corrupt state may instead be dropped.
    fn sync_state(&mut self, doc: &DocId) -> Result<Option<SyncState>, DocSetError>;

    /// The next Automerge sync message for `doc`, or `None` when the peer is up to date
    /// (`generate_sync_message` of the core document).
    ///
    /// # Errors
    /// [`DocSetError::NotFound`] when the document is not held.
    fn generate(
        &mut self,
        doc: &DocId,
        state: &mut SyncState,
    ) -> Result<Option<Vec<u8>>, DocSetError>;

    /// Applies a sync message from the peer to `doc`; returns whether the document changed.
    ///
    /// # Errors
    /// [`DocSetError::Rejected`] when the message does not apply, [`DocSetError::NotFound`].
    fn receive(
        &mut self,
        doc: &DocId,
        state: &mut SyncState,
        message: &[u8],
    ) -> Result<bool, DocSetError>;

    /// A full snapshot of `doc`, sent to a peer that lacks it or holds another epoch
    /// (called on the server).
    ///
    /// # Errors
    /// [`DocSetError::NotFound`], [`DocSetError::Store`].
    fn snapshot(&mut self, doc: &DocId) -> Result<Vec<u8>, DocSetError>;

    /// Replaces this replica's copy of `doc` (or creates it) with a snapshot of erasure epoch
    /// `epoch`, discarding the old copy, its unsynced changes and its sync states (called on a
    /// device). The implementation checks that the snapshot is that document at that epoch.
    ///
    /// # Errors
    /// [`DocSetError::Rejected`] when the snapshot is not `doc` at `epoch`.
    fn replace(&mut self, doc: &DocId, epoch: u64, snapshot: &[u8]) -> Result<(), DocSetError>;

    /// Makes every change received so far durable, together with these sync states for this
    /// peer.
    ///
    /// # Errors
    /// [`DocSetError::Store`] when storage fails; the session then stops without
    /// acknowledging anything.
    fn commit(&mut self, sync_states: &[(&DocId, &SyncState)]) -> Result<(), DocSetError>;
}

impl<T: DocSet + ?Sized> DocSet for &mut T {
    fn list(&mut self) -> Result<Vec<DocSummary>, DocSetError> {
        (**self).list()
    }
    fn sync_state(&mut self, doc: &DocId) -> Result<Option<SyncState>, DocSetError> {
        (**self).sync_state(doc)
    }
    fn generate(
        &mut self,
        doc: &DocId,
        state: &mut SyncState,
    ) -> Result<Option<Vec<u8>>, DocSetError> {
        (**self).generate(doc, state)
    }
    fn receive(
        &mut self,
        doc: &DocId,
        state: &mut SyncState,
        message: &[u8],
    ) -> Result<bool, DocSetError> {
        (**self).receive(doc, state, message)
    }
    fn snapshot(&mut self, doc: &DocId) -> Result<Vec<u8>, DocSetError> {
        (**self).snapshot(doc)
    }
    fn replace(&mut self, doc: &DocId, epoch: u64, snapshot: &[u8]) -> Result<(), DocSetError> {
        (**self).replace(doc, epoch, snapshot)
    }
    fn commit(&mut self, sync_states: &[(&DocId, &SyncState)]) -> Result<(), DocSetError> {
        (**self).commit(sync_states)
    }
}

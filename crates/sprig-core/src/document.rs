//! [`Document`]: any one of the three document kinds, for code that moves documents without
//! caring which kind they are (sync sessions, stores).

use crate::doc::{DocError, Heads, SyncState};
use crate::journal::Journal;
use crate::roster::Roster;
use crate::setting::SettingDoc;

/// One loaded document of any kind. Exhaustive on purpose: a new kind of document is a schema
/// change every store and session must handle.
#[derive(Debug, Clone)]
pub enum Document {
    /// The roster.
    Roster(Roster),
    /// The setting document.
    Setting(SettingDoc),
    /// A child's journal.
    Journal(Journal),
}

macro_rules! each {
    ($self:ident, $d:ident => $e:expr) => {
        match $self {
            Document::Roster($d) => $e,
            Document::Setting($d) => $e,
            Document::Journal($d) => $e,
        }
    };
}

impl Document {
    /// The erasure epoch (journals and the roster are rebuilt; the setting stays at 0).
    #[must_use]
    pub fn epoch(&self) -> u64 {
        match self {
            Document::Journal(j) => j.epoch(),
            Document::Roster(r) => r.epoch(),
            Document::Setting(_) => 0,
        }
    }

    /// The current version.
    pub fn heads(&mut self) -> Heads {
        each!(self, d => d.heads())
    }

    /// A full, compacted snapshot.
    pub fn save(&mut self) -> Vec<u8> {
        each!(self, d => d.save())
    }

    /// Changes since the last save, incremental save or load.
    pub fn save_incremental(&mut self) -> Vec<u8> {
        each!(self, d => d.save_incremental())
    }

    /// Changes this copy holds that a copy at `heads` lacks.
    pub fn changes_since(&mut self, heads: &Heads) -> Vec<u8> {
        each!(self, d => d.changes_since(heads))
    }

    /// Applies changes from another replica.
    ///
    /// # Errors
    /// [`DocError::Corrupt`] when the bytes are not changes.
    pub fn apply_incremental(&mut self, bytes: &[u8]) -> Result<(), DocError> {
        each!(self, d => d.apply_incremental(bytes))
    }

    /// The next sync message for a peer, if any.
    pub fn generate_sync_message(&mut self, state: &mut SyncState) -> Option<Vec<u8>> {
        each!(self, d => d.generate_sync_message(state))
    }

    /// Applies a sync message from a peer.
    ///
    /// # Errors
    /// [`DocError::Corrupt`] when the message is malformed or its changes do not apply.
    pub fn receive_sync_message(
        &mut self,
        state: &mut SyncState,
        message: &[u8],
    ) -> Result<(), DocError> {
        each!(self, d => d.receive_sync_message(state, message))
    }
}

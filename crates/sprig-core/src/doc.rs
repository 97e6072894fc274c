//! The one place that speaks Automerge: typed helpers over maps, text and heads, used by the
//! journal, roster and setting documents. No other crate touches raw Automerge.

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{
    ActorId, AutoCommit, ChangeHash, ObjId, ObjType, ROOT, ReadDoc, ScalarValue, Value,
};

/// The newest document schema this build understands.
pub const SCHEMA_VERSION: i64 = 1;

/// A document could not be loaded, merged or changed.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum DocError {
    /// The bytes are not an Automerge document (truncated, corrupt or something else).
    #[error("the stored document is damaged and cannot be read ({0}); sync again to restore it")]
    Corrupt(String),
    /// The document is of a different kind (e.g. a roster where a journal was expected).
    #[error("expected a {expected} document but found a {found} document")]
    WrongKind {
        /// What the caller asked for.
        expected: &'static str,
        /// What the document says it is.
        found: String,
    },
    /// The document was written by a newer version of Sprig.
    #[error("this document was written by a newer version of Sprig (schema {0}); update the app")]
    NewerSchema(i64),
    /// A required field is missing or has the wrong type.
    #[error("the document is missing its {0} field")]
    MissingField(&'static str),
    /// Two replicas of different erasure epochs cannot be merged; the older must be replaced.
    #[error(
        "this copy of the document is from another erasure epoch ({ours} vs {theirs}); it must be replaced, not merged"
    )]
    EpochMismatch {
        /// Our epoch.
        ours: u64,
        /// The other copy's epoch.
        theirs: u64,
    },
    /// The two documents are for different children or different settings.
    #[error("these are copies of different documents and cannot be merged")]
    DifferentDocument,
    /// Stored heads were malformed.
    #[error("stored document heads are malformed")]
    BadHeads,
}

impl From<automerge::AutomergeError> for DocError {
    fn from(e: automerge::AutomergeError) -> Self {
        DocError::Corrupt(e.to_string())
    }
}

/// A version of a document: the hashes of its latest changes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Heads(pub(crate) Vec<ChangeHash>);

impl Heads {
    /// Encodes as concatenated 32-byte hashes, for storage.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        self.0.iter().flat_map(|h| h.0).collect()
    }

    /// Decodes [`Self::to_bytes`].
    ///
    /// # Errors
    /// [`DocError::BadHeads`] when the length is not a multiple of 32.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DocError> {
        if !bytes.len().is_multiple_of(32) {
            return Err(DocError::BadHeads);
        }
        Ok(Heads(
            bytes
                .chunks_exact(32)
                .map(|c| ChangeHash::try_from(c).map_err(|_| DocError::BadHeads))
                .collect::<Result<_, _>>()?,
        ))
    }

    /// No changes at all (the version before a document existed).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Hex of each hash, for display and logs (hashes say nothing about a child).
    #[must_use]
    pub fn to_hex(&self) -> Vec<String> {
        self.0.iter().map(|h| hex::encode(h.0)).collect()
    }
}

/// What one replica knows of a peer's copy of one document, for the sync protocol. Persist it
/// per (peer, document) with [`SyncState::encode`] so the next session sends only what is new.
#[derive(Debug, Default)]
pub struct SyncState(automerge::sync::State);

impl SyncState {
    /// A state for a peer we know nothing about.
    #[must_use]
    pub fn new() -> Self {
        SyncState(automerge::sync::State::new())
    }

    /// The durable part (the heads both sides share), for storage.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        self.0.encode()
    }

    /// Restores [`Self::encode`].
    ///
    /// # Errors
    /// [`DocError::Corrupt`] when the bytes are not a sync state.
    pub fn decode(bytes: &[u8]) -> Result<Self, DocError> {
        automerge::sync::State::decode(bytes)
            .map(SyncState)
            .map_err(|e| DocError::Corrupt(e.to_string()))
    }
}

/// The methods every document type (journal, roster, setting) shares, for a type with a
/// `doc: Doc` field: versions, snapshots, incremental changes and the Automerge sync protocol.
macro_rules! doc_methods {
    () => {
        /// The current version.
        pub fn heads(&mut self) -> $crate::Heads {
            self.doc.heads()
        }

        /// A full, compacted snapshot.
        pub fn save(&mut self) -> Vec<u8> {
            self.doc.save()
        }

        /// The changes since the last save, incremental save or load; empty when none.
        pub fn save_incremental(&mut self) -> Vec<u8> {
            self.doc.save_incremental()
        }

        /// Every change this copy holds that a copy at `heads` lacks, as bytes that load on top
        /// of such a copy (e.g. a device's refused changes, held for review).
        pub fn changes_since(&mut self, heads: &$crate::Heads) -> Vec<u8> {
            self.doc.changes_since(heads)
        }

        /// Applies changes from another replica (incremental chunks or a snapshot of the same
        /// document).
        ///
        /// # Errors
        /// [`DocError::Corrupt`] when the bytes are not changes.
        pub fn apply_incremental(&mut self, bytes: &[u8]) -> Result<(), $crate::DocError> {
            self.doc.apply_incremental(bytes)
        }

        /// The next sync message for a peer, or `None` when the peer is known to be up to date.
        pub fn generate_sync_message(&mut self, state: &mut $crate::SyncState) -> Option<Vec<u8>> {
            self.doc.generate_sync_message(state)
        }

        /// Applies a sync message from a peer.
        ///
        /// # Errors
        /// [`DocError::Corrupt`] when the message is malformed or its changes do not apply.
        pub fn receive_sync_message(
            &mut self,
            state: &mut $crate::SyncState,
            message: &[u8],
        ) -> Result<(), $crate::DocError> {
            self.doc.receive_sync_message(state, message)
        }
    };
}
pub(crate) use doc_methods;

/// An Automerge document with a save cursor that survives `load`, so `save_incremental`
/// after loading returns only new changes.
#[derive(Debug, Clone)]
pub(crate) struct Doc {
    pub(crate) am: AutoCommit,
    saved: Vec<ChangeHash>,
}

impl Doc {
    /// A document whose first change is identical on every replica that creates it with the
    /// same `genesis_actor` and `init`, so independently created copies share one root instead
    /// of conflicting ones.
    pub(crate) fn genesis(
        genesis_actor: &[u8],
        init: impl FnOnce(&mut AutoCommit) -> Result<(), automerge::AutomergeError>,
    ) -> Self {
        let mut am = AutoCommit::new().with_actor(ActorId::from(genesis_actor));
        // The closure only writes fresh keys into a fresh document; it cannot fail.
        init(&mut am).expect("writing a fresh document");
        am.commit_with(CommitOptions::default().with_time(0));
        am.set_actor(ActorId::random());
        let saved = Vec::new();
        Doc { am, saved }
    }

    pub(crate) fn load(bytes: &[u8]) -> Result<Self, DocError> {
        let mut am = AutoCommit::load(bytes)?;
        am.set_actor(ActorId::random());
        let saved = am.get_heads();
        Ok(Doc { am, saved })
    }

    pub(crate) fn heads(&mut self) -> Heads {
        Heads(self.am.get_heads())
    }

    pub(crate) fn save(&mut self) -> Vec<u8> {
        let bytes = self.am.save();
        self.saved = self.am.get_heads();
        bytes
    }

    pub(crate) fn save_uncompressed(&mut self) -> Vec<u8> {
        self.am.save_nocompress()
    }

    pub(crate) fn save_incremental(&mut self) -> Vec<u8> {
        let bytes = self.am.save_after(&self.saved);
        self.saved = self.am.get_heads();
        bytes
    }

    pub(crate) fn changes_since(&mut self, heads: &Heads) -> Vec<u8> {
        self.am.save_after(&heads.0)
    }

    pub(crate) fn apply_incremental(&mut self, bytes: &[u8]) -> Result<(), DocError> {
        self.am.load_incremental(bytes)?;
        Ok(())
    }

    pub(crate) fn merge(&mut self, other: &mut Doc) -> Result<(), DocError> {
        self.am.merge(&mut other.am)?;
        Ok(())
    }

    pub(crate) fn generate_sync_message(&mut self, state: &mut SyncState) -> Option<Vec<u8>> {
        use automerge::sync::SyncDoc;
        self.am
            .sync()
            .generate_sync_message(&mut state.0)
            .map(automerge::sync::Message::encode)
    }

    pub(crate) fn receive_sync_message(
        &mut self,
        state: &mut SyncState,
        message: &[u8],
    ) -> Result<(), DocError> {
        let msg = automerge::sync::Message::decode(message)
            .map_err(|e| DocError::Corrupt(e.to_string()))?;
        self.receive_decoded(state, msg)
    }

    pub(crate) fn receive_decoded(
        &mut self,
        state: &mut SyncState,
        msg: automerge::sync::Message,
    ) -> Result<(), DocError> {
        use automerge::sync::SyncDoc;
        self.am.sync().receive_sync_message(&mut state.0, msg)?;
        Ok(())
    }

    pub(crate) fn fork(&mut self) -> Doc {
        let am = self.am.fork();
        let saved = Vec::new();
        Doc { am, saved }
    }

    pub(crate) fn commit(&mut self, at_millis: i64) {
        self.am
            .commit_with(CommitOptions::default().with_time(at_millis / 1000));
    }

    /// Checks `kind` and `schema` at the root.
    pub(crate) fn check_kind(&self, expected: &'static str) -> Result<(), DocError> {
        let kind = get_str(&self.am, &ROOT, "kind").ok_or(DocError::MissingField("kind"))?;
        if kind != expected {
            return Err(DocError::WrongKind {
                expected,
                found: kind,
            });
        }
        let schema = get_i64(&self.am, &ROOT, "schema").ok_or(DocError::MissingField("schema"))?;
        if schema > SCHEMA_VERSION {
            return Err(DocError::NewerSchema(schema));
        }
        Ok(())
    }
}

// ---- typed reads --------------------------------------------------------------------------------

pub(crate) fn get_str(d: &impl ReadDoc, obj: &ObjId, key: &str) -> Option<String> {
    match d.get(obj, key).ok()?? {
        (Value::Scalar(s), _) => match s.as_ref() {
            ScalarValue::Str(v) => Some(v.to_string()),
            _ => None,
        },
        (Value::Object(ObjType::Text), id) => d.text(&id).ok(),
        _ => None,
    }
}

pub(crate) fn get_i64(d: &impl ReadDoc, obj: &ObjId, key: &str) -> Option<i64> {
    match d.get(obj, key).ok()?? {
        (Value::Scalar(s), _) => match s.as_ref() {
            ScalarValue::Int(v) | ScalarValue::Timestamp(v) => Some(*v),
            ScalarValue::Uint(v) => i64::try_from(*v).ok(),
            _ => None,
        },
        _ => None,
    }
}

pub(crate) fn get_u64(d: &impl ReadDoc, obj: &ObjId, key: &str) -> Option<u64> {
    get_i64(d, obj, key).and_then(|v| u64::try_from(v).ok())
}

pub(crate) fn get_bool(d: &impl ReadDoc, obj: &ObjId, key: &str) -> Option<bool> {
    match d.get(obj, key).ok()?? {
        (Value::Scalar(s), _) => match s.as_ref() {
            ScalarValue::Boolean(b) => Some(*b),
            _ => None,
        },
        _ => None,
    }
}

pub(crate) fn get_obj(d: &impl ReadDoc, obj: &ObjId, key: &str) -> Option<ObjId> {
    match d.get(obj, key).ok()?? {
        (Value::Object(_), id) => Some(id),
        _ => None,
    }
}

pub(crate) fn keys(d: &impl ReadDoc, obj: &ObjId) -> Vec<String> {
    d.keys(obj).collect()
}

// ---- typed writes -------------------------------------------------------------------------------

pub(crate) type AmResult<T = ()> = Result<T, automerge::AutomergeError>;

pub(crate) fn put_str(d: &mut AutoCommit, obj: &ObjId, key: &str, v: &str) -> AmResult {
    d.put(obj, key, v)
}

pub(crate) fn put_i64(d: &mut AutoCommit, obj: &ObjId, key: &str, v: i64) -> AmResult {
    d.put(obj, key, v)
}

pub(crate) fn put_time(d: &mut AutoCommit, obj: &ObjId, key: &str, millis: i64) -> AmResult {
    d.put(obj, key, ScalarValue::Timestamp(millis))
}

pub(crate) fn put_bool(d: &mut AutoCommit, obj: &ObjId, key: &str, v: bool) -> AmResult {
    d.put(obj, key, v)
}

pub(crate) fn put_map(d: &mut AutoCommit, obj: &ObjId, key: &str) -> AmResult<ObjId> {
    d.put_object(obj, key, ObjType::Map)
}

/// The map at `key`, created when absent.
pub(crate) fn ensure_map(d: &mut AutoCommit, obj: &ObjId, key: &str) -> AmResult<ObjId> {
    match get_obj(d, obj, key) {
        Some(id) => Ok(id),
        None => put_map(d, obj, key),
    }
}

//! What can go wrong in a sync session, and which failures are worth retrying.

use sprig_core::DocError;

use crate::doc_id::DocId;
use crate::frame::PROTOCOL_MAJOR;

/// A frame could not be decoded, or a session could not go on.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum ProtoError {
    /// The frame ended before its header or body did.
    #[error(
        "the message was cut short ({got} of {needed} bytes); the connection may have dropped, sync again"
    )]
    Truncated {
        /// Bytes the frame claims to need.
        needed: u64,
        /// Bytes that arrived.
        got: u64,
    },
    /// A frame or a field is larger than this build accepts; checked before reading it.
    #[error("the {what} is {size} bytes, over the limit of {limit}")]
    TooLarge {
        /// What was too large (e.g. "sync frame").
        what: &'static str,
        /// Its size in bytes.
        size: u64,
        /// The limit in bytes.
        limit: u64,
    },
    /// A message lists more documents than this build accepts.
    #[error("the {what} lists {count} documents, over the limit of {limit}")]
    TooManyDocs {
        /// Which message.
        what: &'static str,
        /// How many documents it lists.
        count: u64,
        /// The limit.
        limit: u64,
    },
    /// The peer speaks a protocol major version this build does not.
    #[error(
        "the other side speaks sync protocol {major}.{minor} but this build speaks {PROTOCOL_MAJOR}.x; update the app or the server"
    )]
    UnsupportedVersion {
        /// The peer's major version.
        major: u8,
        /// The peer's minor version.
        minor: u8,
    },
    /// A message kind this version does not know.
    #[error("unknown message kind {kind}; update the app or the server")]
    UnknownMessage {
        /// The kind byte from the frame header.
        kind: u8,
    },
    /// The bytes are not a valid frame: wrong magic, bad CBOR, missing or invalid fields,
    /// trailing bytes.
    #[error("malformed sync message: {reason}")]
    Malformed {
        /// What was wrong, without any of the payload.
        reason: String,
    },
    /// A message arrived that the session does not accept in its current state
    /// (e.g. a sync before the hello, a second hello).
    #[error("unexpected {got} message: {state}")]
    Unexpected {
        /// The message kind that arrived.
        got: &'static str,
        /// Why it was not accepted.
        state: &'static str,
    },
    /// A message names a document that is not part of this session.
    #[error("{doc} is not part of this sync session")]
    UnknownDoc {
        /// The document named.
        doc: DocId,
    },
    /// The server listed a document the device lacks (or holds at another epoch) but did not
    /// send it in its first turn.
    #[error("the server listed {doc} but did not send it")]
    MissingDoc {
        /// The document.
        doc: DocId,
    },
    /// A document needed more rounds than allowed; the peer is looping. On the device,
    /// progress so far is committed, so a later session resumes from it.
    #[error("{doc} did not converge within {limit} rounds; try syncing again")]
    TooManyRounds {
        /// The document.
        doc: DocId,
        /// The per-document round limit.
        limit: u32,
    },
    /// The session went past one of its bounds (bytes of changes, turns, wrong-PIN records in
    /// the hello); nothing of it is applied.
    #[error("this sync session went past its limit of {limit} {what}; nothing of it was applied")]
    SessionLimit {
        /// What was counted (e.g. "bytes of changes").
        what: &'static str,
        /// The limit.
        limit: u64,
    },
    /// The peer reported an error and ended the session.
    #[error("the other side ended the sync: {message} ({code})")]
    Peer {
        /// The peer's stable error code ([`ProtoError::code`] on its side).
        code: String,
        /// The peer's message.
        message: String,
    },
    /// The local documents could not be read, changed or stored.
    #[error("{}: {source}", doc.as_ref().map_or_else(|| "documents".to_owned(), ToString::to_string))]
    Docs {
        /// The document concerned, when there is one.
        doc: Option<DocId>,
        /// What the [`crate::DocSet`] reported.
        #[source]
        source: DocSetError,
    },
    /// The session is over (finished or failed); start a new one.
    #[error("this sync session is over; start a new one")]
    Closed,
}

impl ProtoError {
    /// Whether retrying the same sync cannot help (bad data, a version mismatch, a protocol
    /// violation), as opposed to a dropped connection or storage that may recover.
    #[must_use]
    pub fn is_permanent(&self) -> bool {
        match self {
            ProtoError::Truncated { .. } | ProtoError::TooManyRounds { .. } => false,
            ProtoError::Peer { code, .. } => !matches!(
                code.as_str(),
                "truncated" | "too_many_rounds" | "store" | "closed"
            ),
            ProtoError::Docs { source, .. } => source.is_permanent(),
            _ => true,
        }
    }

    /// A stable, machine-readable code, sent to the peer in an error frame.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            ProtoError::Truncated { .. } => "truncated",
            ProtoError::TooLarge { .. } => "too_large",
            ProtoError::TooManyDocs { .. } => "too_many_docs",
            ProtoError::UnsupportedVersion { .. } => "unsupported_version",
            ProtoError::UnknownMessage { .. } => "unknown_message",
            ProtoError::Malformed { .. } => "malformed",
            ProtoError::Unexpected { .. } => "unexpected",
            ProtoError::UnknownDoc { .. } => "unknown_doc",
            ProtoError::MissingDoc { .. } => "missing_doc",
            ProtoError::TooManyRounds { .. } => "too_many_rounds",
            ProtoError::SessionLimit { .. } => "session_limit",
            ProtoError::Peer { .. } => "peer",
            ProtoError::Docs { source, .. } => match source {
                DocSetError::Rejected(_) => "doc_rejected",
                DocSetError::Refused(_) => "change_refused",
                DocSetError::NotFound(_) => "doc_not_found",
                DocSetError::Damaged(_) => "server_doc_damaged",
                DocSetError::Store(_) => "store",
            },
            ProtoError::Closed => "closed",
        }
    }

    /// The error frame to send the peer before closing, or `None` when the peer already knows
    /// (it sent the error, or the session was already over).
    #[must_use]
    pub fn error_frame(&self) -> Option<Vec<u8>> {
        match self {
            ProtoError::Peer { .. } | ProtoError::Closed => None,
            _ => crate::frame::encode(&crate::Message::Error {
                code: self.code().to_owned(),
                message: self
                    .to_string()
                    .chars()
                    .take(crate::frame::MAX_TEXT)
                    .collect(),
            })
            .ok(),
        }
    }

    pub(crate) fn docs(doc: &DocId, source: DocSetError) -> ProtoError {
        ProtoError::Docs {
            doc: Some(doc.clone()),
            source,
        }
    }
}

/// A [`crate::DocSet`] could not do what the session asked.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum DocSetError {
    /// The peer's data does not apply: a corrupt sync message or snapshot, a document of the
    /// wrong kind, child or epoch, or a newer schema.
    #[error("the other side sent data that does not apply: {0}")]
    Rejected(#[from] DocError),
    /// The peer's changes break a rule of what it may write (checked by the server before it
    /// applies anything).
    #[error("the changes break a rule ({rule}): {violation}", rule = .0.rule(), violation = .0)]
    Refused(sprig_core::Violation),
    /// The document does not exist here.
    #[error("{0} does not exist here")]
    NotFound(DocId),
    /// The stored copy here is damaged and does not load; someone must restore it (retrying
    /// does not help).
    #[error("{0}")]
    Damaged(String),
    /// Storage failed (I/O, a locked database); retrying later may succeed.
    #[error("the document store failed: {0}")]
    Store(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl DocSetError {
    /// Whether retrying cannot help.
    #[must_use]
    pub fn is_permanent(&self) -> bool {
        !matches!(self, DocSetError::Store(_))
    }

    /// The rule broken, when the peer's changes were refused.
    #[must_use]
    pub fn violation(&self) -> Option<&sprig_core::Violation> {
        match self {
            DocSetError::Refused(v) => Some(v),
            _ => None,
        }
    }
}

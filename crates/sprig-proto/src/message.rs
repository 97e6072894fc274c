//! The messages of the protocol, as Rust values over core types. Their serde forms live in
//! `wire.rs` and never leave this crate.

use std::fmt;

use sprig_core::Sha256;

use crate::doc_id::{DocId, DocSummary};

/// One protocol message; each travels in its own frame ([`crate::encode`], [`crate::decode`]).
#[non_exhaustive]
#[derive(Clone, PartialEq, Eq)]
pub enum Message {
    /// Client → server, first: who the device is and which documents it holds.
    Hello(Hello),
    /// Server → client, once, in answer to the hello: the documents the device must hold.
    Welcome(Welcome),
    /// Either way: one Automerge sync message for one document.
    Sync {
        /// The document.
        doc: DocId,
        /// The Automerge sync message.
        data: Vec<u8>,
    },
    /// Server → client, in the server's first turn: install this snapshot as the device's copy,
    /// discarding any other. Sent for documents the device lacks or holds at another erasure
    /// epoch (the erasure case: the old copy's history must go).
    Replace {
        /// The document.
        doc: DocId,
        /// The snapshot's erasure epoch.
        epoch: u64,
        /// A full document snapshot ([`sprig_core::Journal::save`]).
        snapshot: Vec<u8>,
    },
    /// Either way: the end of the sender's turn. Two consecutive turns without a sync or
    /// replace end the session.
    Done,
    /// Either way: the sender failed and is closing the session.
    Error {
        /// A stable code ([`crate::ProtoError::code`]).
        code: String,
        /// A human-readable message.
        message: String,
    },
    /// Server → client: this device has been revoked; it must stop syncing.
    Revoked {
        /// Why, for the manager's record and the device's screen.
        reason: String,
    },
    /// Server → client: wipe this device now (destroy the keystore key, then the files).
    /// Sent instead of the welcome (a wipe command), or after the documents are in sync
    /// instead of the lease (a retire).
    Wipe,
    /// Client → server: the device has wiped itself, in answer to [`Message::Wipe`], on the
    /// same connection if it is still open.
    WipeDone,
    /// Server → client: a renewed offline lease, the last message of a completed session.
    Lease(Lease),
    /// Server → client: a media file is durably stored; the device may purge its copy.
    /// (Media are uploaded over HTTP, not through a sync session.)
    MediaAck(MediaAck),
    /// Server → client, on a device's watch connection (`/v1/watch`): these documents changed
    /// on the server since the device last heard; sync now to receive them (minor version 2).
    Changed {
        /// The documents that changed.
        docs: Vec<DocId>,
    },
}

impl Message {
    /// The kind of message.
    #[must_use]
    pub fn kind(&self) -> MessageKind {
        match self {
            Message::Hello(_) => MessageKind::Hello,
            Message::Welcome(_) => MessageKind::Welcome,
            Message::Sync { .. } => MessageKind::Sync,
            Message::Replace { .. } => MessageKind::Replace,
            Message::Done => MessageKind::Done,
            Message::Error { .. } => MessageKind::Error,
            Message::Revoked { .. } => MessageKind::Revoked,
            Message::Wipe => MessageKind::Wipe,
            Message::WipeDone => MessageKind::WipeDone,
            Message::Lease(_) => MessageKind::Lease,
            Message::MediaAck(_) => MessageKind::MediaAck,
            Message::Changed { .. } => MessageKind::Changed,
        }
    }
}

/// Byte payloads are shown by length: they hold children's journals, which must not reach logs.
impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Message::Hello(h) => f.debug_tuple("Hello").field(h).finish(),
            Message::Welcome(w) => f.debug_tuple("Welcome").field(w).finish(),
            Message::Sync { doc, data } => f
                .debug_struct("Sync")
                .field("doc", doc)
                .field("data", &ByteLen(data.len()))
                .finish(),
            Message::Replace {
                doc,
                epoch,
                snapshot,
            } => f
                .debug_struct("Replace")
                .field("doc", doc)
                .field("epoch", epoch)
                .field("snapshot", &ByteLen(snapshot.len()))
                .finish(),
            Message::Done => f.write_str("Done"),
            Message::Error { code, message } => f
                .debug_struct("Error")
                .field("code", code)
                .field("message", message)
                .finish(),
            Message::Revoked { reason } => {
                f.debug_struct("Revoked").field("reason", reason).finish()
            }
            Message::Wipe => f.write_str("Wipe"),
            Message::WipeDone => f.write_str("WipeDone"),
            Message::Lease(l) => f.debug_tuple("Lease").field(l).finish(),
            Message::MediaAck(a) => f.debug_tuple("MediaAck").field(a).finish(),
            Message::Changed { docs } => f.debug_struct("Changed").field("docs", docs).finish(),
        }
    }
}

struct ByteLen(usize);

impl fmt::Debug for ByteLen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} bytes>", self.0)
    }
}

/// The kind byte of a frame header. Values are fixed forever; new kinds get new values.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum MessageKind {
    /// [`Message::Hello`].
    Hello = 1,
    /// [`Message::Welcome`].
    Welcome = 2,
    /// [`Message::Sync`].
    Sync = 3,
    /// [`Message::Replace`].
    Replace = 4,
    /// [`Message::Done`].
    Done = 5,
    /// [`Message::Error`].
    Error = 6,
    /// [`Message::Revoked`].
    Revoked = 16,
    /// [`Message::Wipe`].
    Wipe = 17,
    /// [`Message::Lease`].
    Lease = 18,
    /// [`Message::WipeDone`].
    WipeDone = 19,
    /// [`Message::MediaAck`].
    MediaAck = 32,
    /// [`Message::Changed`].
    Changed = 33,
}

impl MessageKind {
    /// The kind for a header byte, if this version knows it.
    #[must_use]
    pub fn from_byte(b: u8) -> Option<MessageKind> {
        Some(match b {
            1 => MessageKind::Hello,
            2 => MessageKind::Welcome,
            3 => MessageKind::Sync,
            4 => MessageKind::Replace,
            5 => MessageKind::Done,
            6 => MessageKind::Error,
            16 => MessageKind::Revoked,
            17 => MessageKind::Wipe,
            18 => MessageKind::Lease,
            19 => MessageKind::WipeDone,
            32 => MessageKind::MediaAck,
            33 => MessageKind::Changed,
            _ => return None,
        })
    }

    /// The header byte.
    #[must_use]
    pub fn byte(self) -> u8 {
        self as u8
    }

    /// A lower-case name, for errors and logs.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            MessageKind::Hello => "hello",
            MessageKind::Welcome => "welcome",
            MessageKind::Sync => "sync",
            MessageKind::Replace => "replace",
            MessageKind::Done => "done",
            MessageKind::Error => "error",
            MessageKind::Revoked => "revoked",
            MessageKind::Wipe => "wipe",
            MessageKind::Lease => "lease",
            MessageKind::WipeDone => "wipe done",
            MessageKind::MediaAck => "media ack",
            MessageKind::Changed => "changed",
        }
    }

    pub(crate) fn frame_name(self) -> &'static str {
        match self {
            MessageKind::Hello => "hello frame",
            MessageKind::Welcome => "welcome frame",
            MessageKind::Sync => "sync frame",
            MessageKind::Replace => "replace frame",
            MessageKind::Done => "done frame",
            MessageKind::Error => "error frame",
            MessageKind::Revoked => "revoked frame",
            MessageKind::Wipe => "wipe frame",
            MessageKind::Lease => "lease frame",
            MessageKind::WipeDone => "wipe done frame",
            MessageKind::MediaAck => "media ack frame",
            MessageKind::Changed => "changed frame",
        }
    }
}

/// The client's opening message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hello {
    /// The device's id (the server checks it against the client certificate).
    pub device_id: String,
    /// The app's version, for the device register.
    pub app_version: String,
    /// Every document the device holds.
    pub docs: Vec<DocSummary>,
    /// Work the device has not yet handed to the server, for the device register.
    pub unsynced: Unsynced,
    /// Wrong-PIN attempts since the device's last successful sync, oldest first, for the
    /// audit log. (Added in minor version 1; empty when absent.)
    pub pin_failures: Vec<PinFailure>,
    /// The device is locked now: PIN lock-out or an expired lease. (Minor version 1.)
    pub locked: bool,
}

/// One wrong-PIN attempt on a device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PinFailure {
    /// The staff member whose PIN was tried.
    pub staff_id: String,
    /// When, by the device's clock (ms since the Unix epoch).
    pub at_ms: i64,
}

/// Counts of work a device has not yet handed to the server.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Unsynced {
    /// Photos and videos not yet acknowledged by the server.
    pub media_pending: u64,
    /// Documents with local changes the server has not yet acknowledged.
    pub docs_dirty: u64,
}

/// The server's answer to a hello.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Welcome {
    /// The server's clock, so the device can tell how far off its own is.
    pub server_time_ms: i64,
    /// The documents the device must hold, with the server's epoch and heads of each.
    pub docs: Vec<DocSummary>,
    /// The manager has asked to retire this device: sync everything, upload every pending
    /// media file, then sync once more to be told to wipe. (Minor version 1; false when
    /// absent.)
    pub retire: bool,
}

/// A server-signed offline lease: past `lock_after_secs` without a check-in the app refuses to
/// unlock; past `wipe_after_secs` it wipes itself; `max_pin_failures` wrong PINs lock it until it
/// syncs.
///
/// The setting CA's key signs [`Lease::signed_bytes`] (ECDSA P-256 with SHA-256, the signature
/// in ASN.1 DER form); the device verifies it with the public key of the CA certificate it
/// pinned at enrolment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    /// The device the lease is for, so one device's lease cannot be replayed to another.
    pub device_id: String,
    /// When the server issued it.
    pub issued_at_ms: i64,
    /// Seconds after issue before the app locks until it syncs.
    pub lock_after_secs: u64,
    /// Seconds after issue before the app wipes itself.
    pub wipe_after_secs: u64,
    /// Wrong PINs in a row (any staff) after which the app locks until it syncs.
    pub max_pin_failures: u32,
    /// The server's signature over [`Lease::signed_bytes`].
    pub signature: Vec<u8>,
}

impl Lease {
    /// The exact bytes the server signs and the device verifies: a domain tag
    /// (`"sprig-lease-v2\0"`), then the CBOR array
    /// `[device_id, issued_at_ms, lock_after_secs, wipe_after_secs, max_pin_failures]`.
    #[must_use]
    pub fn signed_bytes(&self) -> Vec<u8> {
        crate::wire::lease_signed_bytes(self)
    }
}

/// The server's acknowledgement that a media file is durably stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MediaAck {
    /// The SHA-256 the server verified.
    pub sha256: Sha256,
    /// The size it stored, in bytes.
    pub size: u64,
}

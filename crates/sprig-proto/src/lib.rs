//! Sprig's sync wire protocol, sans I/O: versioned [`Message`] frames ([`encode`], [`decode`])
//! and the [`ClientSession`] / [`ServerSession`] state machine over a replica's [`DocSet`].
//!
//! Bytes in, bytes out: the caller moves frames over its transport (a WebSocket) and
//! implements [`DocSet`] over its store. A frame is a 10-byte header (magic, version, kind,
//! body length) and a CBOR body; see [`FrameHeader`].
//!
//! ```
//! use sprig_core::{ChildId, Journal, Roster, SettingDoc};
//! use sprig_proto::{
//!     ClientInfo, ClientSession, Lease, Limits, MemoryDocs, Message, ServerSession, Unsynced,
//! };
//!
//! let child = ChildId::new_random();
//! let mut server_docs =
//!     MemoryDocs::with_docs(Roster::new(), SettingDoc::new("Acorns"), [Journal::new(child.clone())]);
//! let mut device_docs = MemoryDocs::new();
//! let info = ClientInfo {
//!     device_id: "tablet-1".into(),
//!     app_version: "0.1.0".into(),
//!     unsynced: Unsynced::default(),
//!     pin_failures: Vec::new(),
//!     locked: false,
//! };
//! let mut client = ClientSession::new(info, Limits::default());
//! let mut server = ServerSession::new(Limits::default());
//!
//! let hello = client.start(&mut device_docs.peer("server"))?;
//! server.receive(&mut server_docs.peer("tablet-1"), &hello)?;
//! assert_eq!(server.hello().unwrap().device_id, "tablet-1");
//! let mut to_client = server.welcome(&mut server_docs.peer("tablet-1"), 1_700_000_000_000)?;
//! while !to_client.is_empty() {
//!     let mut to_server = Vec::new();
//!     for frame in &to_client {
//!         to_server.extend(client.receive(&mut device_docs.peer("server"), frame)?);
//!     }
//!     to_client.clear();
//!     for frame in &to_server {
//!         to_client.extend(server.receive(&mut server_docs.peer("tablet-1"), frame)?);
//!     }
//! }
//! assert!(client.is_converged() && server.is_finished());
//! assert!(device_docs.journals.contains_key(&child));
//! // The server closes a completed sync with a lease, signed by the setting CA (not shown).
//! let lease = Lease {
//!     device_id: "tablet-1".into(),
//!     issued_at_ms: 1_700_000_000_000,
//!     lock_after_secs: 12 * 3600,
//!     wipe_after_secs: 90 * 86400,
//!     max_pin_failures: 10,
//!     signature: Vec::new(),
//! };
//! client.receive(&mut device_docs.peer("server"), &sprig_proto::encode(&Message::Lease(lease))?)?;
//! assert!(client.is_finished() && client.report().lease.is_some());
//! # Ok::<(), sprig_proto::ProtoError>(())
//! ```
#![warn(missing_docs)]

mod doc_id;
mod docset;
mod error;
mod frame;
mod memory;
mod message;
mod session;
mod wire;

pub use doc_id::{DocId, DocSummary};
pub use docset::DocSet;
pub use error::{DocSetError, ProtoError};
pub use frame::{
    FRAME_HEADER_LEN, FrameHeader, Limits, PROTOCOL_MAJOR, PROTOCOL_MINOR, decode, encode,
};
pub use memory::{MemoryDocs, MemoryPeer};
pub use message::{Hello, Lease, MediaAck, Message, MessageKind, PinFailure, Unsynced, Welcome};
pub use session::{ClientInfo, ClientSession, ServerSession, SessionReport};

//! The serde DTOs: the CBOR body of each frame. Private to this crate; every field is checked
//! on the way in and converted to core types.
//!
//! Bodies are CBOR maps with text keys in declaration order, byte strings for binary fields.
//! Unknown keys are ignored (a newer minor version may add optional fields); missing keys are
//! an error, except for the optional fields a minor version added (`#[serde(default)]`, noted
//! with the version), so a peer one minor version behind still decodes.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sprig_core::{Heads, Sha256};

use crate::doc_id::{DocId, DocSummary};
use crate::error::ProtoError;
use crate::frame::{Limits, MAX_TEXT};
use crate::message::{Hello, Lease, MediaAck, Message, MessageKind, PinFailure, Unsynced, Welcome};

/// Binary fields as CBOR byte strings (serde's default for `Vec<u8>` is an array of integers).
mod bytes {
    use serde::de::{Error, Visitor};
    use serde::{Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        d.deserialize_byte_buf(BytesVisitor)
    }

    struct BytesVisitor;

    impl Visitor<'_> for BytesVisitor {
        type Value = Vec<u8>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a byte string")
        }

        fn visit_bytes<E: Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
            Ok(v.to_vec())
        }

        fn visit_byte_buf<E: Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
            Ok(v)
        }
    }
}

#[derive(Serialize, Deserialize)]
struct WDoc {
    doc: String,
    epoch: u64,
    #[serde(with = "bytes")]
    heads: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct WUnsynced {
    media_pending: u64,
    docs_dirty: u64,
}

#[derive(Serialize, Deserialize)]
struct WPinFailure {
    staff_id: String,
    at_ms: i64,
}

#[derive(Serialize, Deserialize)]
struct WHello {
    device_id: String,
    app_version: String,
    docs: Vec<WDoc>,
    unsynced: WUnsynced,
    /// Minor version 1.
    #[serde(default)]
    pin_failures: Vec<WPinFailure>,
    /// Minor version 1.
    #[serde(default)]
    locked: bool,
}

#[derive(Serialize, Deserialize)]
struct WWelcome {
    server_time_ms: i64,
    docs: Vec<WDoc>,
    /// Minor version 1.
    #[serde(default)]
    retire: bool,
}

#[derive(Serialize, Deserialize)]
struct WSync {
    doc: String,
    #[serde(with = "bytes")]
    data: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct WReplace {
    doc: String,
    epoch: u64,
    #[serde(with = "bytes")]
    snapshot: Vec<u8>,
}

/// Done, Wipe and WipeDone: an empty map, so later minor versions can add fields.
#[derive(Serialize, Deserialize)]
struct WEmpty {}

#[derive(Serialize, Deserialize)]
struct WError {
    code: String,
    message: String,
}

#[derive(Serialize, Deserialize)]
struct WChanged {
    docs: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct WRevoked {
    reason: String,
}

#[derive(Serialize, Deserialize)]
struct WLease {
    device_id: String,
    issued_at_ms: i64,
    lock_after_secs: u64,
    wipe_after_secs: u64,
    max_pin_failures: u32,
    #[serde(with = "bytes")]
    signature: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct WMediaAck {
    #[serde(with = "bytes")]
    sha256: Vec<u8>,
    size: u64,
}

fn cbor<T: Serialize>(v: &T) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing plain structs into a Vec cannot fail.
    ciborium::into_writer(v, &mut out).expect("CBOR encoding into memory");
    out
}

fn wdoc(d: &DocSummary) -> WDoc {
    WDoc {
        doc: d.doc.to_string(),
        epoch: d.epoch,
        heads: d.heads.to_bytes(),
    }
}

/// The CBOR body of a message.
pub(crate) fn body(msg: &Message) -> Vec<u8> {
    match msg {
        Message::Hello(h) => cbor(&WHello {
            device_id: h.device_id.clone(),
            app_version: h.app_version.clone(),
            docs: h.docs.iter().map(wdoc).collect(),
            unsynced: WUnsynced {
                media_pending: h.unsynced.media_pending,
                docs_dirty: h.unsynced.docs_dirty,
            },
            pin_failures: h
                .pin_failures
                .iter()
                .map(|p| WPinFailure {
                    staff_id: p.staff_id.clone(),
                    at_ms: p.at_ms,
                })
                .collect(),
            locked: h.locked,
        }),
        Message::Welcome(w) => cbor(&WWelcome {
            server_time_ms: w.server_time_ms,
            docs: w.docs.iter().map(wdoc).collect(),
            retire: w.retire,
        }),
        Message::Sync { doc, data } => cbor(&WSync {
            doc: doc.to_string(),
            data: data.clone(),
        }),
        Message::Replace {
            doc,
            epoch,
            snapshot,
        } => cbor(&WReplace {
            doc: doc.to_string(),
            epoch: *epoch,
            snapshot: snapshot.clone(),
        }),
        Message::Done | Message::Wipe | Message::WipeDone => cbor(&WEmpty {}),
        Message::Changed { docs } => cbor(&WChanged {
            docs: docs.iter().map(ToString::to_string).collect(),
        }),
        Message::Error { code, message } => cbor(&WError {
            code: code.clone(),
            message: message.clone(),
        }),
        Message::Revoked { reason } => cbor(&WRevoked {
            reason: reason.clone(),
        }),
        Message::Lease(l) => cbor(&WLease {
            device_id: l.device_id.clone(),
            issued_at_ms: l.issued_at_ms,
            lock_after_secs: l.lock_after_secs,
            wipe_after_secs: l.wipe_after_secs,
            max_pin_failures: l.max_pin_failures,
            signature: l.signature.clone(),
        }),
        Message::MediaAck(a) => cbor(&WMediaAck {
            sha256: a.sha256.as_bytes().to_vec(),
            size: a.size,
        }),
    }
}

pub(crate) fn lease_signed_bytes(l: &Lease) -> Vec<u8> {
    let mut out = b"sprig-lease-v2\0".to_vec();
    out.extend(cbor(&(
        &l.device_id,
        l.issued_at_ms,
        l.lock_after_secs,
        l.wipe_after_secs,
        l.max_pin_failures,
    )));
    out
}

fn malformed(reason: impl Into<String>) -> ProtoError {
    ProtoError::Malformed {
        reason: reason.into(),
    }
}

/// Decodes one body; it must be exactly one CBOR item.
fn from_cbor<T: DeserializeOwned>(kind: MessageKind, mut body: &[u8]) -> Result<T, ProtoError> {
    let v: T = ciborium::from_reader(&mut body).map_err(|e| {
        // serde's messages can quote the offending value; keep the reason short.
        let e: String = e.to_string().chars().take(160).collect();
        malformed(format!("{} body: {e}", kind.name()))
    })?;
    if !body.is_empty() {
        return Err(malformed(format!(
            "{} body has {} bytes after its end",
            kind.name(),
            body.len()
        )));
    }
    Ok(v)
}

fn text(field: &'static str, s: String) -> Result<String, ProtoError> {
    if s.len() > MAX_TEXT {
        return Err(ProtoError::TooLarge {
            what: field,
            size: s.len() as u64,
            limit: MAX_TEXT as u64,
        });
    }
    Ok(s)
}

fn doc_list(
    what: &'static str,
    docs: Vec<WDoc>,
    limits: &Limits,
) -> Result<Vec<DocSummary>, ProtoError> {
    if docs.len() > limits.max_docs {
        return Err(ProtoError::TooManyDocs {
            what,
            count: docs.len() as u64,
            limit: limits.max_docs as u64,
        });
    }
    let mut seen = std::collections::BTreeSet::new();
    docs.into_iter()
        .map(|d| {
            let doc = DocId::parse(&d.doc)?;
            if !seen.insert(doc.clone()) {
                return Err(malformed(format!("the {what} lists {doc} twice")));
            }
            let heads = Heads::from_bytes(&d.heads)
                .map_err(|_| malformed(format!("the heads of {doc} are not 32-byte hashes")))?;
            Ok(DocSummary {
                doc,
                epoch: d.epoch,
                heads,
            })
        })
        .collect()
}

/// Decodes and checks the body of a frame whose header has been checked.
pub(crate) fn message(
    kind: MessageKind,
    body: &[u8],
    limits: &Limits,
) -> Result<Message, ProtoError> {
    Ok(match kind {
        MessageKind::Hello => {
            let w: WHello = from_cbor(kind, body)?;
            let device_id = text("device id", w.device_id)?;
            if device_id.is_empty() {
                return Err(malformed("the hello has no device id"));
            }
            Message::Hello(Hello {
                device_id,
                app_version: text("app version", w.app_version)?,
                docs: doc_list("hello", w.docs, limits)?,
                unsynced: Unsynced {
                    media_pending: w.unsynced.media_pending,
                    docs_dirty: w.unsynced.docs_dirty,
                },
                pin_failures: w
                    .pin_failures
                    .into_iter()
                    .map(|p| {
                        Ok(PinFailure {
                            staff_id: text("staff id", p.staff_id)?,
                            at_ms: p.at_ms,
                        })
                    })
                    .collect::<Result<_, ProtoError>>()?,
                locked: w.locked,
            })
        }
        MessageKind::Welcome => {
            let w: WWelcome = from_cbor(kind, body)?;
            Message::Welcome(Welcome {
                server_time_ms: w.server_time_ms,
                docs: doc_list("welcome", w.docs, limits)?,
                retire: w.retire,
            })
        }
        MessageKind::Sync => {
            let w: WSync = from_cbor(kind, body)?;
            if w.data.len() > limits.max_sync_message {
                return Err(ProtoError::TooLarge {
                    what: "sync message",
                    size: w.data.len() as u64,
                    limit: limits.max_sync_message as u64,
                });
            }
            Message::Sync {
                doc: DocId::parse(&w.doc)?,
                data: w.data,
            }
        }
        MessageKind::Replace => {
            let w: WReplace = from_cbor(kind, body)?;
            Message::Replace {
                doc: DocId::parse(&w.doc)?,
                epoch: w.epoch,
                snapshot: w.snapshot,
            }
        }
        MessageKind::Done => {
            let WEmpty {} = from_cbor(kind, body)?;
            Message::Done
        }
        MessageKind::Wipe => {
            let WEmpty {} = from_cbor(kind, body)?;
            Message::Wipe
        }
        MessageKind::WipeDone => {
            let WEmpty {} = from_cbor(kind, body)?;
            Message::WipeDone
        }
        MessageKind::Changed => {
            let w: WChanged = from_cbor(kind, body)?;
            if w.docs.len() > limits.max_docs {
                return Err(ProtoError::TooManyDocs {
                    what: "changed notice",
                    count: w.docs.len() as u64,
                    limit: limits.max_docs as u64,
                });
            }
            Message::Changed {
                docs: w
                    .docs
                    .iter()
                    .map(|d| DocId::parse(d))
                    .collect::<Result<_, _>>()?,
            }
        }
        MessageKind::Error => {
            let w: WError = from_cbor(kind, body)?;
            Message::Error {
                code: text("error code", w.code)?,
                message: text("error message", w.message)?,
            }
        }
        MessageKind::Revoked => {
            let w: WRevoked = from_cbor(kind, body)?;
            Message::Revoked {
                reason: text("revocation reason", w.reason)?,
            }
        }
        MessageKind::Lease => {
            let w: WLease = from_cbor(kind, body)?;
            Message::Lease(Lease {
                device_id: text("device id", w.device_id)?,
                issued_at_ms: w.issued_at_ms,
                lock_after_secs: w.lock_after_secs,
                wipe_after_secs: w.wipe_after_secs,
                max_pin_failures: w.max_pin_failures,
                signature: {
                    if w.signature.len() > MAX_TEXT {
                        return Err(ProtoError::TooLarge {
                            what: "lease signature",
                            size: w.signature.len() as u64,
                            limit: MAX_TEXT as u64,
                        });
                    }
                    w.signature
                },
            })
        }
        MessageKind::MediaAck => {
            let w: WMediaAck = from_cbor(kind, body)?;
            let sha: [u8; 32] = w
                .sha256
                .as_slice()
                .try_into()
                .map_err(|_| malformed("the media ack's sha256 is not 32 bytes"))?;
            Message::MediaAck(MediaAck {
                sha256: Sha256::from_bytes(sha),
                size: w.size,
            })
        }
    })
}

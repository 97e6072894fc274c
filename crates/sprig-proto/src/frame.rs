//! Frames: a fixed 10-byte header, then one CBOR body.
//!
//! ```text
//! offset  size  field
//! 0       2     magic "SP" (0x53 0x50)
//! 2       1     major version (1); another major is refused
//! 3       1     minor version (1); newer minors only add optional fields or kinds
//! 4       1     message kind (MessageKind)
//! 5       1     flags, 0 (reserved, e.g. for compression)
//! 6       4     body length, big-endian u32
//! 10      n     body: one CBOR map (wire.rs)
//! ```
//! The header alone says whether the frame is acceptable and how big it is, so a stream
//! transport can refuse an oversized frame before reading or allocating its body
//! ([`FrameHeader::parse`]).

use crate::error::ProtoError;
use crate::message::{Message, MessageKind};
use crate::wire;

/// The protocol major version this build speaks.
pub const PROTOCOL_MAJOR: u8 = 1;
/// The protocol minor version this build writes. Minor 1 added the hello's `pin_failures` and
/// `locked`, the welcome's `retire`, the lease's `max_pin_failures` and
/// [`crate::MessageKind::WipeDone`]; minor 2 added [`crate::MessageKind::Changed`] (the
/// server's notice on a device's watch connection).
pub const PROTOCOL_MINOR: u8 = 2;
/// Length of the frame header in bytes.
pub const FRAME_HEADER_LEN: usize = 10;

const MAGIC: [u8; 2] = *b"SP";
/// Longest accepted text field (device id, reasons, error messages), in bytes.
pub(crate) const MAX_TEXT: usize = 1024;
/// Body cap for frames that carry no document data (done, error, control messages).
const SMALL_BODY: usize = 64 * 1024;
/// Room for a sync frame's document id and CBOR framing around the sync message.
const SYNC_OVERHEAD: usize = 1024;

/// Size limits, enforced on every frame received (and on frames a session sends, so a peer
/// with the same limits never has to refuse them).
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest frame of any kind, header included; bounds replace snapshots.
    pub max_frame: usize,
    /// Largest Automerge sync message in a sync frame.
    pub max_sync_message: usize,
    /// Largest body of a hello or welcome.
    pub max_listing: usize,
    /// Most documents in a hello or welcome.
    pub max_docs: usize,
    /// Most sync messages per document per direction in one session.
    pub max_rounds_per_doc: u32,
    /// Most bytes of Automerge sync messages one side receives in one session.
    pub max_session_bytes: u64,
    /// Most turns one side takes in one session.
    pub max_turns: u32,
    /// Most wrong-PIN records one hello may carry.
    pub max_pin_failures: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame: 32 << 20,
            max_sync_message: 16 << 20,
            max_listing: 2 << 20,
            max_docs: 4096,
            max_rounds_per_doc: 32,
            // A year of a whole setting is ≈ 4 MB; a tablet's own changes are far less.
            max_session_bytes: 256 << 20,
            max_turns: 256,
            max_pin_failures: 1000,
        }
    }
}

impl Limits {
    /// The largest body accepted for `kind`.
    #[must_use]
    pub fn max_body(&self, kind: MessageKind) -> usize {
        let cap = match kind {
            MessageKind::Hello | MessageKind::Welcome => self.max_listing,
            MessageKind::Sync => self.max_sync_message.saturating_add(SYNC_OVERHEAD),
            MessageKind::Replace => usize::MAX,
            _ => SMALL_BODY,
        };
        cap.min(self.max_frame.saturating_sub(FRAME_HEADER_LEN))
    }
}

/// A checked frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// The sender's minor version.
    pub minor: u8,
    /// The kind of message.
    pub kind: MessageKind,
    /// Length of the body that follows the header.
    pub body_len: u32,
}

impl FrameHeader {
    /// Checks the first [`FRAME_HEADER_LEN`] bytes of a frame: magic, version, kind, flags
    /// and the body length against `limits`, without looking at the body.
    ///
    /// # Errors
    /// [`ProtoError::Truncated`] for fewer than 10 bytes, [`ProtoError::Malformed`],
    /// [`ProtoError::UnsupportedVersion`], [`ProtoError::UnknownMessage`] or
    /// [`ProtoError::TooLarge`].
    pub fn parse(bytes: &[u8], limits: &Limits) -> Result<FrameHeader, ProtoError> {
        let Some(h) = bytes.get(..FRAME_HEADER_LEN) else {
            return Err(ProtoError::Truncated {
                needed: FRAME_HEADER_LEN as u64,
                got: bytes.len() as u64,
            });
        };
        if h[..2] != MAGIC {
            return Err(ProtoError::Malformed {
                reason: "not a Sprig sync frame (bad magic)".into(),
            });
        }
        let (major, minor) = (h[2], h[3]);
        if major != PROTOCOL_MAJOR {
            return Err(ProtoError::UnsupportedVersion { major, minor });
        }
        let kind = MessageKind::from_byte(h[4]).ok_or(ProtoError::UnknownMessage { kind: h[4] })?;
        if h[5] != 0 {
            return Err(ProtoError::Malformed {
                reason: format!("unknown frame flags {:#04x}", h[5]),
            });
        }
        let body_len = u32::from_be_bytes([h[6], h[7], h[8], h[9]]);
        let limit = limits.max_body(kind);
        if u64::from(body_len) > limit as u64 {
            return Err(ProtoError::TooLarge {
                what: kind.frame_name(),
                size: u64::from(body_len),
                limit: limit as u64,
            });
        }
        Ok(FrameHeader {
            minor,
            kind,
            body_len,
        })
    }
}

/// Encodes a message as one frame.
///
/// # Errors
/// [`ProtoError::TooLarge`] when the body does not fit the 32-bit length field.
pub fn encode(msg: &Message) -> Result<Vec<u8>, ProtoError> {
    let kind = msg.kind();
    let body = wire::body(msg);
    let len = u32::try_from(body.len()).map_err(|_| ProtoError::TooLarge {
        what: kind.frame_name(),
        size: body.len() as u64,
        limit: u64::from(u32::MAX),
    })?;
    let mut out = Vec::with_capacity(FRAME_HEADER_LEN + body.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&[PROTOCOL_MAJOR, PROTOCOL_MINOR, kind.byte(), 0]);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// Encodes a message the way a session sends it: refused when a peer with the same `limits`
/// would refuse it.
pub(crate) fn encode_within(msg: &Message, limits: &Limits) -> Result<Vec<u8>, ProtoError> {
    let frame = encode(msg)?;
    let kind = msg.kind();
    let body = frame.len() - FRAME_HEADER_LEN;
    let limit = limits.max_body(kind);
    if body > limit {
        return Err(ProtoError::TooLarge {
            what: kind.frame_name(),
            size: body as u64,
            limit: limit as u64,
        });
    }
    if let Message::Sync { data, .. } = msg
        && data.len() > limits.max_sync_message
    {
        return Err(ProtoError::TooLarge {
            what: "sync message",
            size: data.len() as u64,
            limit: limits.max_sync_message as u64,
        });
    }
    Ok(frame)
}

/// Decodes one whole frame. Never panics, whatever the bytes; sizes are checked against
/// `limits` from the header before the body is read.
///
/// # Errors
/// Any [`ProtoError`] decoding variant: truncated, too large, unknown version or kind,
/// malformed.
pub fn decode(frame: &[u8], limits: &Limits) -> Result<Message, ProtoError> {
    let header = FrameHeader::parse(frame, limits)?;
    let body = &frame[FRAME_HEADER_LEN..];
    let len = header.body_len as usize;
    if body.len() < len {
        return Err(ProtoError::Truncated {
            needed: (FRAME_HEADER_LEN + len) as u64,
            got: frame.len() as u64,
        });
    }
    if body.len() > len {
        return Err(ProtoError::Malformed {
            reason: format!("{} bytes after the end of the frame", body.len() - len),
        });
    }
    wire::message(header.kind, body, limits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(major: u8, kind: u8, flags: u8, len: u32) -> Vec<u8> {
        let mut h = b"SP".to_vec();
        h.extend_from_slice(&[major, 0, kind, flags]);
        h.extend_from_slice(&len.to_be_bytes());
        h
    }

    #[test]
    fn header_is_checked_in_order() {
        let l = Limits::default();
        assert!(matches!(
            FrameHeader::parse(&[0x53], &l),
            Err(ProtoError::Truncated { needed: 10, got: 1 })
        ));
        let mut bad = header(1, 5, 0, 0);
        bad[0] = b'X';
        assert!(matches!(
            FrameHeader::parse(&bad, &l),
            Err(ProtoError::Malformed { .. })
        ));
        assert!(matches!(
            FrameHeader::parse(&header(2, 5, 0, 0), &l),
            Err(ProtoError::UnsupportedVersion { major: 2, .. })
        ));
        assert!(matches!(
            FrameHeader::parse(&header(1, 99, 0, 0), &l),
            Err(ProtoError::UnknownMessage { kind: 99 })
        ));
        assert!(matches!(
            FrameHeader::parse(&header(1, 5, 1, 0), &l),
            Err(ProtoError::Malformed { .. })
        ));
        let h = FrameHeader::parse(&header(1, 5, 0, 1), &l).unwrap();
        assert_eq!((h.kind, h.body_len), (MessageKind::Done, 1));
    }

    #[test]
    fn per_kind_caps_come_from_the_header() {
        let l = Limits::default();
        let too_big_done = header(1, MessageKind::Done.byte(), 0, 64 * 1024 + 1);
        assert!(matches!(
            FrameHeader::parse(&too_big_done, &l),
            Err(ProtoError::TooLarge {
                what: "done frame",
                ..
            })
        ));
        let big_replace = header(1, MessageKind::Replace.byte(), 0, 20 << 20);
        assert!(FrameHeader::parse(&big_replace, &l).is_ok());
        let huge_replace = header(1, MessageKind::Replace.byte(), 0, u32::MAX);
        assert!(matches!(
            FrameHeader::parse(&huge_replace, &l),
            Err(ProtoError::TooLarge { .. })
        ));
    }

    #[test]
    fn encode_within_refuses_what_the_peer_would() {
        let l = Limits {
            max_sync_message: 8,
            ..Limits::default()
        };
        let msg = Message::Sync {
            doc: crate::DocId::Roster,
            data: vec![0; 9],
        };
        assert!(matches!(
            encode_within(&msg, &l),
            Err(ProtoError::TooLarge {
                what: "sync message",
                ..
            })
        ));
        let frame = encode(&msg).unwrap();
        assert!(matches!(
            decode(&frame, &l),
            Err(ProtoError::TooLarge { .. })
        ));
    }
}

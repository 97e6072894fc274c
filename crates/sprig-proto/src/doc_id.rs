//! Which document a message is about: [`DocId`] is `sprig_core::DocId` (its wire form,
//! `roster`, `setting`, `journal:<child uuid>`, is what frames carry), and [`DocSummary`].

pub use sprig_core::DocId;
use sprig_core::Heads;

use crate::error::ProtoError;

/// A document id that does not parse is a malformed message.
impl From<sprig_core::DocIdError> for ProtoError {
    fn from(e: sprig_core::DocIdError) -> ProtoError {
        ProtoError::Malformed {
            reason: e.to_string(),
        }
    }
}

/// One document as a replica holds it: which one, its erasure epoch and its version.
/// Roster and setting documents are always epoch 0.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocSummary {
    /// The document.
    pub doc: DocId,
    /// Its erasure epoch ([`sprig_core::Journal::epoch`]).
    pub epoch: u64,
    /// Its current heads.
    pub heads: Heads,
}

#[cfg(test)]
mod tests {
    use sprig_core::ChildId;

    use super::*;

    #[test]
    fn frames_carry_the_wire_form() {
        let c = ChildId::new_random();
        assert_eq!(
            DocId::Journal(c.clone()).to_string(),
            format!("journal:{c}")
        );
    }

    #[test]
    fn a_bad_doc_id_is_a_malformed_message() {
        for s in [
            "",
            "Roster",
            "journal:nope",
            "journal/0b6f3c2e-4a55-4d1e-9a51-2f0c8d7e6a10",
        ] {
            let e: ProtoError = DocId::parse(s).unwrap_err().into();
            assert!(matches!(e, ProtoError::Malformed { .. }), "{s}");
        }
    }
}

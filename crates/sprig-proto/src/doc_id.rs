//! Which document a message is about.

use std::fmt;
use std::str::FromStr;

use sprig_core::{ChildId, Heads};

use crate::error::ProtoError;

/// One replicated document of a setting. Its text form (`roster`, `setting`,
/// `journal:<child uuid>`) is stable: it is the wire form and may be used as a storage key.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DocId {
    /// The setting's roster: children, staff, rooms, parents, consent.
    Roster,
    /// The setting document: name and policies.
    Setting,
    /// One child's journal.
    Journal(ChildId),
}

impl DocId {
    const JOURNAL_PREFIX: &'static str = "journal:";

    /// Parses the text form.
    ///
    /// # Errors
    /// [`ProtoError::Malformed`] when `s` is not `roster`, `setting` or `journal:<uuid>`.
    pub fn parse(s: &str) -> Result<DocId, ProtoError> {
        match s {
            "roster" => Ok(DocId::Roster),
            "setting" => Ok(DocId::Setting),
            _ => s
                .strip_prefix(Self::JOURNAL_PREFIX)
                .and_then(|c| ChildId::parse(c).ok())
                .map(DocId::Journal)
                .ok_or_else(|| ProtoError::Malformed {
                    reason: format!(
                        "'{}' is not a document id",
                        s.chars().take(64).collect::<String>()
                    ),
                }),
        }
    }

    /// The child whose journal this is, for journals.
    #[must_use]
    pub fn child(&self) -> Option<&ChildId> {
        match self {
            DocId::Journal(c) => Some(c),
            DocId::Roster | DocId::Setting => None,
        }
    }
}

impl fmt::Display for DocId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DocId::Roster => f.write_str("roster"),
            DocId::Setting => f.write_str("setting"),
            DocId::Journal(c) => write!(f, "{}{c}", Self::JOURNAL_PREFIX),
        }
    }
}

impl fmt::Debug for DocId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DocId({self})")
    }
}

impl FromStr for DocId {
    type Err = ProtoError;
    fn from_str(s: &str) -> Result<Self, ProtoError> {
        DocId::parse(s)
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
    use super::*;

    #[test]
    fn text_form_round_trips_and_orders_roster_first() {
        let c = ChildId::new_random();
        for d in [DocId::Roster, DocId::Setting, DocId::Journal(c.clone())] {
            assert_eq!(DocId::parse(&d.to_string()).unwrap(), d);
        }
        assert_eq!(
            DocId::Journal(c.clone()).to_string(),
            format!("journal:{c}")
        );
        assert!(DocId::Roster < DocId::Setting);
        assert!(DocId::Setting < DocId::Journal(c));
    }

    #[test]
    fn rejects_other_text() {
        for s in [
            "",
            "Roster",
            "journal:",
            "journal:nope",
            "journal",
            "setting ",
        ] {
            assert!(
                matches!(DocId::parse(s), Err(ProtoError::Malformed { .. })),
                "{s}"
            );
        }
    }
}

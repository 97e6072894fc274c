//! Which replicated document something is about: [`DocId`], with its two stable text forms.

use std::fmt;
use std::str::FromStr;

use crate::ids::ChildId;

/// A text was not a document id in the form expected.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocIdError {
    /// Not `roster`, `setting` or `journal:<child uuid>` (the wire form).
    #[error("'{0}' is not a document id (expected roster, setting or journal:<child uuid>)")]
    NotWireForm(String),
    /// Not `roster`, `setting` or `journal/<child uuid>` (the storage key).
    #[error("'{0}' is not a document key (expected roster, setting or journal/<child uuid>)")]
    NotStorageKey(String),
}

/// One replicated document of a setting.
///
/// It has two text forms, both stable because they are persisted:
/// - the **wire form** ([`DocId::wire_form`], also its `Display`): `roster`, `setting`,
///   `journal:<child uuid>` — what the sync protocol sends and the server's store keys by;
/// - the **storage key** ([`DocId::storage_key`]): `roster`, `setting`,
///   `journal/<child uuid>` — what device databases key documents and sync states by.
///
/// Ordered roster, setting, then journals by child.
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
    const WIRE_JOURNAL_PREFIX: &'static str = "journal:";
    const KEY_JOURNAL_PREFIX: &'static str = "journal/";

    /// The wire form: `roster`, `setting` or `journal:<child uuid>`.
    #[must_use]
    pub fn wire_form(&self) -> String {
        self.to_string()
    }

    /// Parses the wire form ([`DocId::wire_form`]).
    ///
    /// # Errors
    /// [`DocIdError::NotWireForm`] for any other text.
    pub fn parse(s: &str) -> Result<DocId, DocIdError> {
        Self::parse_with(s, Self::WIRE_JOURNAL_PREFIX)
            .ok_or_else(|| DocIdError::NotWireForm(shorten(s)))
    }

    /// The device store's key: `roster`, `setting` or `journal/<child uuid>`.
    #[must_use]
    pub fn storage_key(&self) -> String {
        match self {
            DocId::Roster => "roster".into(),
            DocId::Setting => "setting".into(),
            DocId::Journal(c) => format!("{}{c}", Self::KEY_JOURNAL_PREFIX),
        }
    }

    /// Parses a storage key ([`DocId::storage_key`]).
    ///
    /// # Errors
    /// [`DocIdError::NotStorageKey`] for any other text.
    pub fn parse_storage_key(s: &str) -> Result<DocId, DocIdError> {
        Self::parse_with(s, Self::KEY_JOURNAL_PREFIX)
            .ok_or_else(|| DocIdError::NotStorageKey(shorten(s)))
    }

    fn parse_with(s: &str, journal_prefix: &str) -> Option<DocId> {
        match s {
            "roster" => Some(DocId::Roster),
            "setting" => Some(DocId::Setting),
            _ => s
                .strip_prefix(journal_prefix)
                .and_then(|c| ChildId::parse(c).ok())
                .map(DocId::Journal),
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

    /// The kind of document: `roster`, `setting` or `journal`.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            DocId::Roster => "roster",
            DocId::Setting => "setting",
            DocId::Journal(_) => "journal",
        }
    }
}

fn shorten(s: &str) -> String {
    s.chars().take(64).collect()
}

/// The wire form.
impl fmt::Display for DocId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DocId::Roster => f.write_str("roster"),
            DocId::Setting => f.write_str("setting"),
            DocId::Journal(c) => write!(f, "{}{c}", Self::WIRE_JOURNAL_PREFIX),
        }
    }
}

impl fmt::Debug for DocId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DocId({self})")
    }
}

/// Parses the wire form.
impl FromStr for DocId {
    type Err = DocIdError;
    fn from_str(s: &str) -> Result<Self, DocIdError> {
        DocId::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_text_forms_round_trip_and_roster_orders_first() {
        let c = ChildId::new_random();
        for d in [DocId::Roster, DocId::Setting, DocId::Journal(c.clone())] {
            assert_eq!(DocId::parse(&d.wire_form()).unwrap(), d);
            assert_eq!(DocId::parse_storage_key(&d.storage_key()).unwrap(), d);
        }
        assert!(DocId::Roster < DocId::Setting);
        assert!(DocId::Setting < DocId::Journal(c));
    }

    /// Device databases already hold these keys and the protocol already sends these ids:
    /// both forms are pinned.
    #[test]
    fn text_forms_are_stable() {
        let c = ChildId::parse("0b6f3c2e-4a55-4d1e-9a51-2f0c8d7e6a10").unwrap();
        let j = DocId::Journal(c);
        assert_eq!(
            j.wire_form(),
            "journal:0b6f3c2e-4a55-4d1e-9a51-2f0c8d7e6a10"
        );
        assert_eq!(j.to_string(), j.wire_form());
        assert_eq!(
            j.storage_key(),
            "journal/0b6f3c2e-4a55-4d1e-9a51-2f0c8d7e6a10"
        );
        assert_eq!(DocId::Roster.storage_key(), "roster");
        assert_eq!(DocId::Setting.wire_form(), "setting");
    }

    #[test]
    fn each_form_rejects_the_other_and_other_text() {
        let c = ChildId::new_random();
        let j = DocId::Journal(c);
        assert!(matches!(
            DocId::parse(&j.storage_key()),
            Err(DocIdError::NotWireForm(_))
        ));
        assert!(matches!(
            DocId::parse_storage_key(&j.wire_form()),
            Err(DocIdError::NotStorageKey(_))
        ));
        for s in [
            "",
            "Roster",
            "journal:",
            "journal:nope",
            "journal",
            "setting ",
        ] {
            assert!(DocId::parse(s).is_err(), "{s}");
            assert!(DocId::parse_storage_key(s).is_err(), "{s}");
        }
    }
}

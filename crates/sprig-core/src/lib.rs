//! Sprig's domain, sans I/O: the roster, one Automerge [`Journal`] per child and the
//! [`SettingDoc`], the [`rules`] of who may do what, and the [`parent_view`] projection.
//!
//! Nothing here reads a clock, touches a disk or a network: callers pass times in and store
//! the bytes that [`Journal::save_incremental`] returns. Every Automerge access in Sprig goes
//! through the typed functions of this crate.
//!
//! ```
//! use sprig_core::{Actor, Consent, Journal, NewChild, NewEntry, Role, Roster, Timestamp, plan_entry};
//!
//! let t = Timestamp(1_700_000_000_000);
//! let mut roster = Roster::new();
//! let kw = roster.add_staff("Amara Okafor", Role::Practitioner, t).unwrap();
//! let child = roster
//!     .add_child(&NewChild {
//!         name: "Test Child".into(),
//!         date_of_birth: Some("2022-04-01".into()),
//!         key_worker: kw.clone(),
//!         room: None,
//!         photo_consent: Consent::Yes,
//!     }, t)
//!     .unwrap();
//! let mut journal = Journal::new(child.clone());
//! let plan = plan_entry(&roster, &Actor::Staff(kw), NewEntry {
//!     children: vec![child],
//!     text: "Built a tower of six bricks".into(),
//!     ..NewEntry::default()
//! }, t).unwrap();
//! journal.apply_entry(&plan).unwrap();
//! assert_eq!(journal.entries()[0].text, "Built a tower of six bricks");
//! ```
#![warn(missing_docs)]

mod doc;
mod doc_id;
mod document;
mod ids;
mod journal;
mod model;
mod projection;
mod roster;
pub mod rules;
mod setting;
mod validate;

pub use doc::{DocError, Heads, SCHEMA_VERSION, SyncState};
pub use doc_id::{DocId, DocIdError};
pub use document::Document;
pub use ids::{
    ChildId, EntryId, GroupId, IdError, ParentId, ReplyId, RoomId, Sha256, StaffId, Timestamp,
};
pub use journal::{Changed, Journal};
pub use model::{
    AgeBand, Area, Author, Characteristic, Child, ChildStatus, Consent, Entry, EntryKind,
    EntryRevision, EntryStatus, MediaKind, MediaRef, Parent, Reply, Role, Room, Staff,
    UnknownValue,
};
pub use projection::{
    GroupMembers, ParentEntry, ParentReply, ParentView, ShownAuthor, parent_view, parent_view_of,
};
pub use roster::{MAX_NAME_CHARS, NewChild, Roster, normalise_email};
pub use rules::{Actor, EntryEdit, EntryPlan, NewEntry, RuleError, plan_entry};
pub use setting::{Policies, SettingDoc};
pub use validate::{Accepted, ReceiveError, RosterView, Violation};

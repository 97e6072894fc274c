//! Who may read and write what, as pure functions over the roster.
//!
//! - Staff (active) may record for and read any child; parents only their linked children,
//!   and only what is published to them (plus their own contributions).
//! - A photo or video entry tagging several children is refused unless every tagged child has
//!   photo consent.
//! - Parent contributions are pending until staff approve; only staff review; rejected ones
//!   never enter the journal.
//! - Replies attach to an entry the author can see; they never stand alone.

use std::collections::BTreeSet;

use crate::doc::DocError;
use crate::ids::{ChildId, EntryId, GroupId, ParentId, RoomId, StaffId, Timestamp};
use crate::model::{
    AgeBand, Area, Author, Characteristic, ChildStatus, Consent, Entry, EntryKind, EntryStatus,
    MediaRef, Role,
};
use crate::roster::Roster;

/// Longest observation text or reply, in characters.
pub const MAX_TEXT_CHARS: usize = 20_000;
/// Most photos and videos on one entry.
pub const MAX_MEDIA_PER_ENTRY: usize = 20;
/// Most children tagged in one observation.
pub const MAX_CHILDREN_PER_ENTRY: usize = 60;

/// Who is acting.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Actor {
    /// A member of staff (unlocked on a tablet with their PIN, or logged in to the portal).
    Staff(StaffId),
    /// A parent logged in to the portal.
    Parent(ParentId),
}

/// A rule refused an action. Messages speak to the person who tried it.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    /// The acting member of staff is not on the roster.
    #[error("member of staff {0} is not on the roster")]
    UnknownStaff(StaffId),
    /// The acting member of staff has been deactivated.
    #[error("this staff account has been deactivated; ask a manager")]
    InactiveStaff,
    /// The acting parent is not on the roster.
    #[error("parent {0} is not on the roster")]
    UnknownParent(ParentId),
    /// The child is not on the roster.
    #[error("child {0} is not on the roster")]
    UnknownChild(ChildId),
    /// The room is not on the roster.
    #[error("room {0} is not on the roster")]
    UnknownRoom(RoomId),
    /// The child has left the setting; nothing new may be recorded.
    #[error("{0} has left the setting; new entries cannot be added to their journal")]
    ChildLeft(String),
    /// Only staff may do this.
    #[error("only staff can do this")]
    StaffOnly,
    /// Only managers may do this.
    #[error("only a manager can do this")]
    ManagerOnly,
    /// A parent tried to act on a child they are not linked to. Shown as "not found" so it
    /// reveals nothing about the child.
    #[error("not found")]
    NotLinked,
    /// An entry must name at least one child.
    #[error("choose at least one child")]
    NoChildren,
    /// The same child was tagged twice, or too many were tagged.
    #[error("each child can be tagged once, and at most {MAX_CHILDREN_PER_ENTRY} in one entry")]
    BadChildren,
    /// Neither text nor media.
    #[error("write something or add a photo or video")]
    EmptyEntry,
    /// Text longer than [`MAX_TEXT_CHARS`].
    #[error("the text is too long: at most {MAX_TEXT_CHARS} characters")]
    TextTooLong,
    /// More media than [`MAX_MEDIA_PER_ENTRY`].
    #[error("too many photos and videos: at most {MAX_MEDIA_PER_ENTRY} in one entry")]
    TooManyMedia,
    /// A photo/video tags several children and one of them lacks consent to appear in others'
    /// journals.
    #[error(
        "{name} does not have photo consent to appear in other children's journals; record the photo for {name} alone, or remove {name} from this observation"
    )]
    ConsentMissing {
        /// The child without consent.
        child: ChildId,
        /// Their name, for the member of staff recording.
        name: String,
    },
    /// A parent's link does not take effect before the photo-consent question is answered.
    #[error("ask the parents about photo consent for this child before linking them")]
    ConsentNotAnswered(ChildId),
    /// The entry does not exist (or is not visible to this parent).
    #[error("that entry no longer exists")]
    EntryNotFound,
    /// Review applies only to parent contributions.
    #[error("only parent contributions are approved or rejected")]
    NotAContribution,
    /// Publishing applies only to staff observations.
    #[error("only staff observations are published")]
    NotAnObservation,
    /// The contribution was already approved or rejected.
    #[error("this contribution has already been reviewed ({0})")]
    AlreadyReviewed(EntryStatus),
    /// A plan was applied to the journal of a child it does not tag.
    #[error("this entry does not belong in this child's journal")]
    WrongJournal,
    /// A name was empty, too long or had control characters.
    #[error("enter a name (at most 200 characters)")]
    InvalidName,
    /// A date was not a real `YYYY-MM-DD` date.
    #[error("'{0}' is not a date; use YYYY-MM-DD")]
    InvalidDate(String),
    /// The e-mail address is not plausible.
    #[error("enter a valid e-mail address")]
    InvalidEmail,
    /// Another parent already uses this e-mail address.
    #[error("that e-mail address is already in use")]
    EmailInUse,
    /// A policy value is out of range.
    #[error("invalid policy: {0}")]
    InvalidPolicy(&'static str),
    /// The underlying document is damaged.
    #[error(transparent)]
    Document(#[from] DocError),
}

/// What someone wants to record.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NewEntry {
    /// The children it is about (one, or several for a group observation).
    pub children: Vec<ChildId>,
    /// What happened.
    pub text: String,
    /// EYFS areas of learning.
    pub areas: Vec<Area>,
    /// The Development Matters age band, if chosen.
    pub band: Option<AgeBand>,
    /// Characteristics of effective learning.
    pub characteristics: Vec<Characteristic>,
    /// Planned next steps.
    pub next_steps: String,
    /// Photos and videos, already processed and stored.
    pub media: Vec<MediaRef>,
    /// Staff only: keep as a draft, not yet visible to parents.
    pub draft: bool,
}

/// A checked entry, ready to be written into each tagged child's journal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryPlan {
    /// The entry id, shared by every child's copy.
    pub id: EntryId,
    /// Set when several children are tagged.
    pub group: Option<GroupId>,
    /// Observation (staff) or contribution (parent).
    pub kind: EntryKind,
    /// Who recorded it.
    pub author: Author,
    /// When.
    pub created_at: Timestamp,
    /// The children whose journals receive a copy, sorted.
    pub children: Vec<ChildId>,
    /// Text.
    pub text: String,
    /// Areas, sorted and unique.
    pub areas: Vec<Area>,
    /// The age band, if chosen.
    pub band: Option<AgeBand>,
    /// Characteristics of effective learning, sorted and unique.
    pub characteristics: Vec<Characteristic>,
    /// Next steps.
    pub next_steps: String,
    /// Media.
    pub media: Vec<MediaRef>,
    /// Visible to parents at once (staff observations not saved as drafts).
    pub published: bool,
}

impl EntryPlan {
    /// The copy of this entry that `child`'s journal holds: it names no other child.
    #[must_use]
    pub fn entry_for(&self, child: &ChildId) -> Entry {
        Entry {
            id: self.id.clone(),
            child: child.clone(),
            kind: self.kind,
            group: self.group.clone(),
            author: self.author.clone(),
            created_at: self.created_at,
            text: self.text.clone(),
            areas: self.areas.clone(),
            band: self.band,
            characteristics: self.characteristics.clone(),
            next_steps: self.next_steps.clone(),
            media: self.media.clone(),
            status: match (self.kind, self.published) {
                (EntryKind::Observation, true) => EntryStatus::Published,
                (EntryKind::Observation, false) => EntryStatus::Draft,
                (EntryKind::ParentContribution, _) => EntryStatus::Pending,
            },
            replies: Vec::new(),
            edited_at: None,
        }
    }
}

/// An edit of an entry's collaborative fields.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EntryEdit {
    /// The new text.
    pub text: String,
    /// The new next steps.
    pub next_steps: String,
    /// The new set of areas.
    pub areas: Vec<Area>,
    /// The new age band (`None` clears it).
    pub band: Option<AgeBand>,
    /// The new set of characteristics of effective learning.
    pub characteristics: Vec<Characteristic>,
}

/// The acting member of staff, if active.
///
/// # Errors
/// [`RuleError::StaffOnly`] for parents, [`RuleError::UnknownStaff`] / [`RuleError::InactiveStaff`].
pub fn require_staff<'a>(roster: &Roster, actor: &'a Actor) -> Result<&'a StaffId, RuleError> {
    match actor {
        Actor::Parent(_) => Err(RuleError::StaffOnly),
        Actor::Staff(id) => match roster.staff(id) {
            Some(s) if s.active => Ok(id),
            Some(_) => Err(RuleError::InactiveStaff),
            None => Err(RuleError::UnknownStaff(id.clone())),
        },
    }
}

/// The acting manager, if active.
///
/// # Errors
/// [`RuleError::ManagerOnly`] for anyone else.
pub fn require_manager<'a>(roster: &Roster, actor: &'a Actor) -> Result<&'a StaffId, RuleError> {
    let id = require_staff(roster, actor).map_err(|e| match e {
        RuleError::StaffOnly => RuleError::ManagerOnly,
        other => other,
    })?;
    match roster.staff(id) {
        Some(s) if s.role == Role::Manager => Ok(id),
        _ => Err(RuleError::ManagerOnly),
    }
}

/// Whether `actor` may open `child`'s journal at all (staff: any child; parents: linked only).
#[must_use]
pub fn may_read_journal(roster: &Roster, actor: &Actor, child: &ChildId) -> bool {
    match actor {
        Actor::Staff(_) => require_staff(roster, actor).is_ok() && roster.child(child).is_some(),
        // A link takes effect once the child's photo-consent question is answered.
        Actor::Parent(p) => {
            roster.parent(p).is_some_and(|p| p.children.contains(child))
                && roster
                    .child(child)
                    .is_some_and(|c| c.photo_consent != Consent::NotAsked)
        }
    }
}

/// Whether `actor` may see this entry. Staff see everything in a journal they may read;
/// parents see published entries and their own contributions, of linked children only.
#[must_use]
pub fn may_see_entry(roster: &Roster, actor: &Actor, entry: &Entry) -> bool {
    if !may_read_journal(roster, actor, &entry.child) {
        return false;
    }
    match actor {
        Actor::Staff(_) => true,
        Actor::Parent(p) => parent_may_see(p, entry),
    }
}

/// [`may_see_entry`] for a parent already known to read the entry's journal: published
/// entries, and their own contributions.
pub(crate) fn parent_may_see(parent: &ParentId, entry: &Entry) -> bool {
    entry.status == EntryStatus::Published
        || (entry.kind == EntryKind::ParentContribution
            && matches!(&entry.author, Author::Parent(p) if p == parent))
}

pub(crate) fn check_text(text: &str, next_steps: &str) -> Result<(), RuleError> {
    if text.chars().count() > MAX_TEXT_CHARS || next_steps.chars().count() > MAX_TEXT_CHARS {
        return Err(RuleError::TextTooLong);
    }
    Ok(())
}

/// Checks a new entry against the rules and plans it: staff record observations for any
/// active child; parents contribute for their linked children, as pending.
///
/// # Errors
/// [`RuleError`] naming the first rule broken.
pub fn plan_entry(
    roster: &Roster,
    actor: &Actor,
    new: NewEntry,
    at: Timestamp,
) -> Result<EntryPlan, RuleError> {
    let (kind, author) = match actor {
        Actor::Staff(_) => (
            EntryKind::Observation,
            Author::Staff(require_staff(roster, actor)?.clone()),
        ),
        Actor::Parent(p) => {
            let parent = roster
                .parent(p)
                .ok_or_else(|| RuleError::UnknownParent(p.clone()))?;
            if new.children.iter().any(|c| !parent.children.contains(c)) {
                return Err(RuleError::NotLinked);
            }
            (EntryKind::ParentContribution, Author::Parent(p.clone()))
        }
    };
    if new.children.is_empty() {
        return Err(RuleError::NoChildren);
    }
    let unique: BTreeSet<&ChildId> = new.children.iter().collect();
    if unique.len() != new.children.len() || unique.len() > MAX_CHILDREN_PER_ENTRY {
        return Err(RuleError::BadChildren);
    }
    if new.text.trim().is_empty() && new.media.is_empty() {
        return Err(RuleError::EmptyEntry);
    }
    check_text(&new.text, &new.next_steps)?;
    if new.media.len() > MAX_MEDIA_PER_ENTRY {
        return Err(RuleError::TooManyMedia);
    }
    let mut children = Vec::with_capacity(new.children.len());
    for id in &new.children {
        let child = roster
            .child(id)
            .ok_or_else(|| RuleError::UnknownChild(id.clone()))?;
        if child.status == ChildStatus::Left {
            return Err(RuleError::ChildLeft(child.name));
        }
        children.push(child);
    }
    if !new.media.is_empty()
        && children.len() > 1
        && let Some(c) = children.iter().find(|c| c.photo_consent != Consent::Yes)
    {
        return Err(RuleError::ConsentMissing {
            child: c.id.clone(),
            name: c.name.clone(),
        });
    }
    let mut areas = new.areas;
    areas.sort();
    areas.dedup();
    let mut characteristics = new.characteristics;
    characteristics.sort();
    characteristics.dedup();
    let mut ids: Vec<ChildId> = new.children;
    ids.sort();
    Ok(EntryPlan {
        id: EntryId::new_random(),
        group: (ids.len() > 1).then(GroupId::new_random),
        kind,
        author,
        created_at: at,
        children: ids,
        text: new.text,
        areas,
        band: new.band,
        characteristics,
        next_steps: new.next_steps,
        media: new.media,
        published: kind == EntryKind::Observation && !new.draft,
    })
}

/// Checks a reply and returns its author.
///
/// # Errors
/// [`RuleError::EntryNotFound`] when a parent may not see the entry; text errors.
pub fn check_reply(
    roster: &Roster,
    actor: &Actor,
    entry: &Entry,
    text: &str,
) -> Result<Author, RuleError> {
    if !may_see_entry(roster, actor, entry) {
        return Err(match actor {
            Actor::Staff(_) => require_staff(roster, actor)
                .err()
                .unwrap_or(RuleError::EntryNotFound),
            Actor::Parent(_) => RuleError::EntryNotFound,
        });
    }
    if text.trim().is_empty() {
        return Err(RuleError::EmptyEntry);
    }
    check_text(text, "")?;
    Ok(match actor {
        Actor::Staff(s) => Author::Staff(s.clone()),
        Actor::Parent(p) => Author::Parent(p.clone()),
    })
}

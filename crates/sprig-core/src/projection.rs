//! What a parent may see of a child's journal, computed on the server per request.
//!
//! Parents never receive documents. They receive this projection: published entries, their own
//! contributions (pending, approved or rejected, so they see the outcome), and replies — with no
//! other child's name, and with a group entry's media hidden whenever any child in the group
//! does not (or no longer) have photo consent.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::ids::{ChildId, EntryId, GroupId, ParentId, Timestamp};
use crate::journal::Journal;
use crate::model::{Area, Author, Consent, Entry, EntryKind, EntryStatus, MediaRef, Reply};
use crate::roster::Roster;
use crate::rules::{Actor, RuleError, may_read_journal, may_see_entry, parent_may_see};

/// Which children share each group observation. Derived from the journals (each copy carries
/// the group id), so it is never stored and cannot drift.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupMembers(BTreeMap<GroupId, BTreeSet<ChildId>>);

impl GroupMembers {
    /// Collects group membership from journals.
    pub fn from_journals<'a>(journals: impl IntoIterator<Item = &'a Journal>) -> Self {
        let mut g = GroupMembers::default();
        for j in journals {
            for e in j.entries() {
                if let Some(group) = e.group {
                    g.insert(group, j.child().clone());
                }
            }
        }
        g
    }

    /// Records that `child`'s journal holds a copy of `group`.
    pub fn insert(&mut self, group: GroupId, child: ChildId) {
        self.0.entry(group).or_default().insert(child);
    }

    /// The children of a group, if known.
    #[must_use]
    pub fn members(&self, group: &GroupId) -> Option<&BTreeSet<ChildId>> {
        self.0.get(group)
    }
}

/// How an author is shown to a parent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShownAuthor {
    /// A member of staff, by name.
    Staff(String),
    /// The viewing parent.
    You,
    /// Another parent of the same child, by name.
    Parent(String),
}

/// An entry as a parent sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParentEntry {
    /// The entry id.
    pub id: EntryId,
    /// Observation or the parent's own contribution.
    pub kind: EntryKind,
    /// Published, or (own contributions only) pending or rejected.
    pub status: EntryStatus,
    /// Who wrote it.
    pub author: ShownAuthor,
    /// When.
    pub created_at: Timestamp,
    /// Text.
    pub text: String,
    /// Areas of learning.
    pub areas: Vec<Area>,
    /// Next steps.
    pub next_steps: String,
    /// Media the parent may see (empty when hidden).
    pub media: Vec<MediaRef>,
    /// Media exist but are hidden because a child in the group lacks photo consent.
    pub media_hidden: bool,
    /// A group observation (other children are never named).
    pub is_group: bool,
    /// Replies, oldest first.
    pub replies: Vec<ParentReply>,
}

/// A reply as a parent sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParentReply {
    /// Who wrote it.
    pub author: ShownAuthor,
    /// When.
    pub created_at: Timestamp,
    /// What it says.
    pub text: String,
}

/// A child's journal as one of their parents sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParentView {
    /// The child.
    pub child: ChildId,
    /// The child's own name (never another child's).
    pub child_name: String,
    /// Entries, newest first.
    pub entries: Vec<ParentEntry>,
}

/// Projects `journal` for `parent`.
///
/// # Errors
/// [`RuleError::NotLinked`] when the parent is not linked to the journal's child (callers answer
/// "not found").
pub fn parent_view(
    journal: &Journal,
    roster: &Roster,
    parent: &ParentId,
    groups: &GroupMembers,
) -> Result<ParentView, RuleError> {
    parent_view_of(journal.child(), &journal.entries(), roster, parent, groups)
}

/// [`parent_view`] of entries already read from the journal of `child` (`Journal::entries`,
/// oldest first), for a caller that needs them for something else too or keeps them between
/// requests: reading a year of a journal costs more than projecting it. Only the entries the
/// parent sees are copied.
///
/// # Errors
/// As [`parent_view`].
pub fn parent_view_of(
    child: &ChildId,
    entries: &[Entry],
    roster: &Roster,
    parent: &ParentId,
    groups: &GroupMembers,
) -> Result<ParentView, RuleError> {
    let actor = Actor::Parent(parent.clone());
    if !may_read_journal(roster, &actor, child) {
        return Err(RuleError::NotLinked);
    }
    let journal_child = child;
    let child = roster.child(child).ok_or(RuleError::NotLinked)?;
    // Every roster lookup reads the roster document, so each author's name is looked up once,
    // and the link (checked above for this child) only for an entry of another child.
    let mut names: HashMap<Author, ShownAuthor> = HashMap::new();
    let mut show = |a: &Author| {
        names
            .entry(a.clone())
            .or_insert_with(|| match a {
                Author::Staff(s) => ShownAuthor::Staff(
                    roster
                        .staff(s)
                        .map_or_else(|| "Staff".to_string(), |s| s.name),
                ),
                Author::Parent(p) if p == parent => ShownAuthor::You,
                Author::Parent(p) => ShownAuthor::Parent(
                    roster
                        .parent(p)
                        .map_or_else(|| "Parent".to_string(), |p| p.name),
                ),
            })
            .clone()
    };
    let mut entries: Vec<ParentEntry> = entries
        .iter()
        .filter(|e| {
            if &e.child == journal_child {
                parent_may_see(parent, e)
            } else {
                may_see_entry(roster, &actor, e)
            }
        })
        .map(|e| {
            let consent_ok = match &e.group {
                None => true,
                // Unknown membership is treated as missing consent: hide rather than leak.
                Some(g) => groups.members(g).is_some_and(|m| {
                    m.iter().all(|c| {
                        roster
                            .child(c)
                            .is_some_and(|c| c.photo_consent == Consent::Yes)
                    })
                }),
            };
            let media_hidden = !consent_ok && !e.media.is_empty();
            ParentEntry {
                id: e.id.clone(),
                kind: e.kind,
                status: e.status,
                author: show(&e.author),
                created_at: e.created_at,
                text: e.text.clone(),
                areas: e.areas.clone(),
                next_steps: e.next_steps.clone(),
                media: if media_hidden {
                    Vec::new()
                } else {
                    e.media.clone()
                },
                media_hidden,
                is_group: e.group.is_some(),
                replies: e
                    .replies
                    .iter()
                    .map(|r: &Reply| ParentReply {
                        author: show(&r.author),
                        created_at: r.created_at,
                        text: r.text.clone(),
                    })
                    .collect(),
            }
        })
        .collect();
    entries.reverse();
    Ok(ParentView {
        child: child.id,
        child_name: child.name,
        entries,
    })
}

//! What a tablet may write into a journal, checked operation by operation on the server.
//!
//! Tablets are untrusted: a tablet's key can be extracted, its client modified. The server
//! therefore checks every change a tablet sends before it stores any of it
//! ([`Journal::validate_since`]): each Automerge operation must be one of the writes the
//! app makes through this crate's [`Journal`] methods, at its place in the schema, with values
//! of the right types and sizes, and what they add must pass the rules against the roster.
//!
//! Allowed, and nothing else:
//! - a new staff observation (`Journal::apply_entry`), authored by active staff on the roster,
//!   in the journal of a child on the roster who has not left;
//! - a revision of an entry's text, next steps, areas, age band and characteristics
//!   (`Journal::edit_entry`), by active staff;
//! - a staff reply (`Journal::reply`);
//! - publishing a draft observation (`Journal::publish`);
//! - a review of a parent contribution (`Journal::approve`/`reject`), by active staff, once.
//!
//! Refused: any write to the document's root fields (`kind`, `schema`, `child`, `epoch`,
//! `entries`); deleting or rewriting an existing entry, reply, revision or review; a parent
//! contribution or a parent reply (only the server writes those, for the portal); an author not
//! on the roster or deactivated; unknown keys, types or object kinds; oversized values.
//!
//! The check works on the operations themselves, not on a before/after comparison of what is
//! visible, so nothing hides from it: a losing conflict, a value written and overwritten in one
//! batch, or a write into a deleted object is still an operation, and is judged.

use std::collections::{BTreeSet, HashMap, HashSet};

use automerge::legacy::{Key, ObjectId, Op, OpType};
use automerge::{ActorId, ObjId, ObjType, Prop, ROOT, ReadDoc, ScalarValue};

use crate::doc::{Heads, get_obj, get_str};
use crate::ids::{ChildId, EntryId, GroupId, ReplyId, Sha256, StaffId};
use crate::journal::Journal;
use crate::model::{AgeBand, Area, Characteristic, ChildStatus, Consent, EntryKind, MediaKind};
use crate::roster::Roster;
use crate::rules::{MAX_MEDIA_PER_ENTRY, MAX_TEXT_CHARS};

/// Longest short text value (ids, MIME types, names of kinds), in bytes.
const MAX_SHORT_BYTES: usize = 128;
/// Largest plausible pixel dimension of a photo.
const MAX_DIMENSION: i64 = 100_000;
/// Largest plausible media size: the server's own upload limit is far below.
const MAX_MEDIA_SIZE: i64 = 1 << 40;

/// A change a tablet may not make, with the rule it broke. Shown to managers and written to
/// the audit log as [`Violation::rule`] plus ids; never observation text.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    /// Roster and setting documents are written by the server alone.
    #[error("tablets may not change the {doc} document; only the server writes it")]
    ServerDocument {
        /// `roster` or `setting`.
        doc: &'static str,
    },
    /// A write to the journal's root (`kind`, `schema`, `child`, `epoch`, `entries`).
    #[error("tablets may not change the journal's root field '{key}'")]
    RootField {
        /// The root key written.
        key: String,
    },
    /// An existing entry's recorded content was overwritten or deleted.
    #[error("entry {entry}: its '{key}' was rewritten; entries change only by revisions")]
    EntryRewrite {
        /// The entry.
        entry: String,
        /// What was rewritten.
        key: String,
    },
    /// An entry was deleted.
    #[error("entry {entry} was deleted; tablets may not delete entries")]
    EntryDelete {
        /// The entry.
        entry: String,
    },
    /// A new entry, reply or revision reuses an id that is already there.
    #[error("{what} {id} already exists")]
    DuplicateId {
        /// `entry`, `reply` or `revision`.
        what: &'static str,
        /// The id.
        id: String,
    },
    /// An existing reply or revision was rewritten or deleted.
    #[error("entry {entry}: an existing {what} was rewritten or deleted")]
    HistoryRewrite {
        /// The entry.
        entry: String,
        /// `reply`, `revision` or `review`.
        what: &'static str,
    },
    /// A parent contribution or a parent reply written by a tablet.
    #[error("entry {entry}: tablets may not write parents' {what}; the server writes them")]
    ParentWrite {
        /// The entry.
        entry: String,
        /// `contributions` or `replies`.
        what: &'static str,
    },
    /// The author is not on the roster.
    #[error("entry {entry}: the author {staff} is not on the roster")]
    UnknownAuthor {
        /// The entry.
        entry: String,
        /// The staff id given as author.
        staff: String,
    },
    /// The author has been deactivated.
    #[error("entry {entry}: the author {staff} has been deactivated")]
    InactiveAuthor {
        /// The entry.
        entry: String,
        /// The staff id.
        staff: String,
    },
    /// The journal's child is not on the roster, or has left.
    #[error("the child {child} is not on the roster, or has left the setting")]
    UnknownChild {
        /// The child.
        child: String,
    },
    /// A photo or video on a group observation tags a child without photo consent.
    #[error("entry {entry}: a group photo or video tags a child without photo consent")]
    ConsentMissing {
        /// The entry.
        entry: String,
    },
    /// A key the schema does not have at this place.
    #[error("unknown key '{key}' at {at}")]
    UnknownKey {
        /// Where (e.g. `entry`, `media item`).
        at: &'static str,
        /// The key, shortened.
        key: String,
    },
    /// A value or object of the wrong type, or an operation the schema never uses.
    #[error("'{key}' at {at} has the wrong type")]
    WrongType {
        /// Where.
        at: &'static str,
        /// The key, shortened.
        key: String,
    },
    /// A value over its size limit.
    #[error("'{key}' at {at} is too large (at most {limit})")]
    Oversized {
        /// Where.
        at: &'static str,
        /// The key.
        key: String,
        /// The limit (characters, bytes or items).
        limit: usize,
    },
    /// A new entry, reply or revision lacks a field, or a field does not parse.
    #[error("entry {entry}: the {what} is incomplete or malformed")]
    Malformed {
        /// The entry.
        entry: String,
        /// `entry`, `reply`, `revision`, `review`, `media`.
        what: &'static str,
    },
    /// A review of something that is not a parent contribution, or publishing something that
    /// is not a staff observation.
    #[error("entry {entry}: it cannot be {what}")]
    WrongKind {
        /// The entry.
        entry: String,
        /// `reviewed` or `published`.
        what: &'static str,
    },
}

impl Violation {
    /// The stable name of the rule broken, for the audit log and the register.
    #[must_use]
    pub fn rule(&self) -> &'static str {
        match self {
            Violation::ServerDocument { .. } => "server_document",
            Violation::RootField { .. } => "root_field",
            Violation::EntryRewrite { .. } => "entry_rewrite",
            Violation::EntryDelete { .. } => "entry_delete",
            Violation::DuplicateId { .. } => "duplicate_id",
            Violation::HistoryRewrite { .. } => "history_rewrite",
            Violation::ParentWrite { .. } => "parent_write",
            Violation::UnknownAuthor { .. } => "unknown_author",
            Violation::InactiveAuthor { .. } => "inactive_author",
            Violation::UnknownChild { .. } => "unknown_child",
            Violation::ConsentMissing { .. } => "consent_missing",
            Violation::UnknownKey { .. } => "unknown_key",
            Violation::WrongType { .. } => "wrong_type",
            Violation::Oversized { .. } => "oversized",
            Violation::Malformed { .. } => "malformed",
            Violation::WrongKind { .. } => "wrong_kind",
        }
    }
}

/// What a batch of valid changes added, for the server's indexes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Accepted {
    /// New entries.
    pub new_entries: Vec<EntryId>,
    /// Photos and videos the new entries reference.
    pub media: Vec<Sha256>,
    /// How many operations were checked.
    pub ops: usize,
}

/// What the validation needs to know of the roster, read once: who is active staff, which
/// children attend and with what photo consent. Build it once per roster version (the server
/// keeps it while the stored roster's heads stay the same).
#[derive(Clone, Debug, Default)]
pub struct RosterView {
    active_staff: BTreeSet<StaffId>,
    staff: BTreeSet<StaffId>,
    children: HashMap<ChildId, (ChildStatus, Consent)>,
}

impl RosterView {
    /// The view of `roster` now.
    #[must_use]
    pub fn new(roster: &Roster) -> RosterView {
        let mut v = RosterView::default();
        for s in roster.all_staff() {
            if s.active {
                v.active_staff.insert(s.id.clone());
            }
            v.staff.insert(s.id);
        }
        for c in roster.children() {
            v.children.insert(c.id, (c.status, c.photo_consent));
        }
        v
    }

    fn check_staff(&self, entry: &str, raw: Option<&str>) -> Result<(), Violation> {
        let raw = raw.unwrap_or_default();
        let unknown = || Violation::UnknownAuthor {
            entry: short(entry),
            staff: short(raw),
        };
        let id = StaffId::parse(raw).map_err(|_| unknown())?;
        if id.as_str() != raw {
            return Err(unknown());
        }
        if self.active_staff.contains(&id) {
            Ok(())
        } else if self.staff.contains(&id) {
            Err(Violation::InactiveAuthor {
                entry: short(entry),
                staff: id.to_string(),
            })
        } else {
            Err(unknown())
        }
    }
}

/// Where in the journal's schema an object sits.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Place {
    Root,
    Entries,
    Entry(String),
    /// `areas` or `coel` of an entry.
    Flags(String, Flags),
    Media(String),
    MediaItem(String),
    Revisions(String),
    Revision(String, String),
    Replies(String),
    Reply(String, String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flags {
    Areas,
    Coel,
}

impl Place {
    /// The place of a child object made at `key` (or in a list) of an object at `self`.
    fn child(&self, key: Option<&str>) -> Option<Place> {
        Some(match (self, key) {
            (Place::Root, Some("entries")) => Place::Entries,
            (Place::Entries, Some(id)) => Place::Entry(id.to_owned()),
            (Place::Entry(e), Some("areas")) => Place::Flags(e.clone(), Flags::Areas),
            (Place::Entry(e), Some("coel")) => Place::Flags(e.clone(), Flags::Coel),
            (Place::Entry(e), Some("media")) => Place::Media(e.clone()),
            (Place::Entry(e), Some("revisions")) => Place::Revisions(e.clone()),
            (Place::Entry(e), Some("replies")) => Place::Replies(e.clone()),
            (Place::Media(e), None) => Place::MediaItem(e.clone()),
            (Place::Revisions(e), Some(r)) => Place::Revision(e.clone(), r.to_owned()),
            (Place::Replies(e), Some(r)) => Place::Reply(e.clone(), r.to_owned()),
            _ => return None,
        })
    }
}

/// An operation's id: (counter, actor).
type OpKey = (u64, ActorId);

fn op_key(id: &automerge::legacy::OpId) -> OpKey {
    (id.0, id.1.clone())
}

/// Value kinds the schema uses.
#[derive(Clone, Copy)]
enum Want {
    Str(usize),
    Time,
    Bool,
    Int(i64),
}

fn short(key: &str) -> String {
    key.chars().take(64).collect()
}

fn check_value(at: &'static str, key: &str, want: Want, v: &ScalarValue) -> Result<(), Violation> {
    let wrong = || Violation::WrongType {
        at,
        key: short(key),
    };
    match (want, v) {
        (Want::Str(limit), ScalarValue::Str(s)) => {
            let len = if limit == MAX_TEXT_CHARS {
                s.chars().count()
            } else {
                s.len()
            };
            if len > limit {
                return Err(Violation::Oversized {
                    at,
                    key: short(key),
                    limit,
                });
            }
            Ok(())
        }
        (Want::Time, ScalarValue::Timestamp(t) | ScalarValue::Int(t)) if *t >= 0 => Ok(()),
        (Want::Bool, ScalarValue::Boolean(_)) => Ok(()),
        (Want::Int(max), ScalarValue::Int(i)) if (0..=max).contains(i) => Ok(()),
        (Want::Int(max), ScalarValue::Uint(u)) if i64::try_from(*u).is_ok_and(|i| i <= max) => {
            Ok(())
        }
        _ => Err(wrong()),
    }
}

/// The keys a new entry is written with, and their types (a value, or an object kind).
fn entry_creation_key(key: &str) -> Option<Result<Want, ObjType>> {
    Some(match key {
        "kind" | "author_kind" | "group" | "author_id" | "band" => Ok(Want::Str(MAX_SHORT_BYTES)),
        "created_at" => Ok(Want::Time),
        "text" | "next_steps" => Ok(Want::Str(MAX_TEXT_CHARS)),
        "published" => Ok(Want::Bool),
        "areas" | "coel" | "revisions" | "replies" => Err(ObjType::Map),
        "media" => Err(ObjType::List),
        _ => return None,
    })
}

/// An object the batch created, with the plain values written into it: the batch is all that
/// ever wrote to it, so this is what it holds.
#[derive(Debug)]
struct Made {
    place: Place,
    fields: HashMap<String, ScalarValue>,
    /// List items made in it (media).
    items: Vec<OpKey>,
}

impl Made {
    fn str(&self, key: &str) -> Option<&str> {
        match self.fields.get(key)? {
            ScalarValue::Str(s) => Some(s.as_str()),
            _ => None,
        }
    }

    fn has(&self, key: &str) -> bool {
        self.fields.contains_key(key)
    }
}

/// Everything the operations of a batch did, gathered for the rule checks that follow.
#[derive(Default)]
struct Findings {
    new_entries: Vec<OpKey>,
    new_replies: Vec<OpKey>,
    new_revisions: Vec<OpKey>,
    /// Existing entries reviewed, published or edited (by key).
    reviewed: BTreeSet<String>,
    published: BTreeSet<String>,
    editors: BTreeSet<String>,
}

struct Checker<'a> {
    journal: &'a Journal,
    /// Every operation of the batch.
    new_ops: HashSet<OpKey>,
    /// Objects the batch created, by the id of the operation that made them.
    made: HashMap<OpKey, Made>,
    /// Places of objects that existed before the batch, looked up once each.
    existing: HashMap<OpKey, (Place, ObjId)>,
    findings: Findings,
}

impl Checker<'_> {
    fn am(&self) -> &automerge::AutoCommit {
        &self.journal.doc.am
    }

    fn outside() -> Violation {
        Violation::UnknownKey {
            at: "document",
            key: "an object outside the journal's schema".into(),
        }
    }

    /// Where an object that existed before the batch sits, from its path in the document.
    fn existing_place(&mut self, id: &OpKey) -> Result<Place, Violation> {
        if let Some((p, _)) = self.existing.get(id) {
            return Ok(p.clone());
        }
        // The entries map is where nearly every write lands: found with one read.
        if let Some(entries) = get_obj(self.am(), &ROOT, "entries")
            && matches!(&entries, ObjId::Id(ctr, actor, _) if (*ctr, actor) == (id.0, &id.1))
        {
            self.existing.insert(id.clone(), (Place::Entries, entries));
            return Ok(Place::Entries);
        }
        let name = format!("{}@{}", id.0, id.1);
        let exid = self.am().import_obj(&name).map_err(|_| Self::outside())?;
        let parents = self.am().parents(&exid).map_err(|_| Self::outside())?;
        // A write into an object that is deleted or lost a conflict is still judged: its path
        // is all that matters.
        let mut place = Place::Root;
        for (_, prop) in parents.path() {
            let key = match &prop {
                Prop::Map(k) => Some(k.as_str()),
                Prop::Seq(_) => None,
            };
            place = place.child(key).ok_or_else(Self::outside)?;
        }
        self.existing.insert(id.clone(), (place.clone(), exid));
        Ok(place)
    }

    /// Whether every value `key` of an object that existed before holds now was written by
    /// this batch: nothing from before (which the write would overwrite or hide in a
    /// conflict) is there.
    fn only_ours(&self, obj: &OpKey, key: &str) -> bool {
        let Some((_, exid)) = self.existing.get(obj) else {
            return false;
        };
        let Ok(values) = self.am().get_all(exid, key) else {
            return false;
        };
        values.iter().all(|(_, id)| match id {
            ObjId::Id(ctr, actor, _) => self.new_ops.contains(&(*ctr, actor.clone())),
            ObjId::Root => false,
        })
    }

    fn check_op(&mut self, op: &Op, id: OpKey) -> Result<(), Violation> {
        let key = match &op.key {
            Key::Map(k) => Some(k.to_string()),
            Key::Seq(_) => None,
        };
        let (obj, place, obj_new) = match &op.obj {
            ObjectId::Root => {
                return Err(Violation::RootField {
                    key: short(key.as_deref().unwrap_or("?")),
                });
            }
            ObjectId::Id(o) => {
                let o = op_key(o);
                match self.made.get(&o) {
                    Some(m) => (o, m.place.clone(), true),
                    None => {
                        let p = self.existing_place(&o)?;
                        (o, p, false)
                    }
                }
            }
        };
        let overwrites = !op.pred.is_empty();
        // A new object under an allowed key: its place, and (when it is an entry, reply or
        // revision) its id is checked where it is made.
        if let OpType::Make(t) = &op.action {
            let child = place
                .child(key.as_deref())
                .filter(|_| op.insert == key.is_none())
                .ok_or_else(|| Violation::WrongType {
                    at: "document",
                    key: short(key.as_deref().unwrap_or("list item")),
                })?;
            self.check_make(
                &obj,
                obj_new,
                &place,
                &child,
                *t,
                key.as_deref(),
                overwrites,
            )?;
            self.made.insert(
                id.clone(),
                Made {
                    place: child.clone(),
                    fields: HashMap::new(),
                    items: Vec::new(),
                },
            );
            match child {
                Place::Entry(_) => self.findings.new_entries.push(id.clone()),
                Place::Reply(..) => self.findings.new_replies.push(id.clone()),
                Place::Revision(..) => self.findings.new_revisions.push(id.clone()),
                Place::MediaItem(_) => {
                    if let Some(m) = self.made.get_mut(&obj) {
                        m.items.push(id);
                    }
                }
                _ => {}
            }
            return Ok(());
        }
        let k = key.unwrap_or_default();
        let is_reply = matches!(place, Place::Replies(_) | Place::Reply(..));
        match place {
            Place::Root => Err(Violation::RootField { key: short(&k) }),
            Place::Entries => match op.action {
                OpType::Delete => Err(Violation::EntryDelete { entry: short(&k) }),
                _ => Err(Violation::WrongType {
                    at: "entries",
                    key: short(&k),
                }),
            },
            Place::Entry(entry) => self.check_entry_op(op, &obj, obj_new, &entry, &k),
            Place::Flags(_, flags) => {
                let (known, at) = match flags {
                    Flags::Areas => (Area::parse(&k).is_ok(), "areas"),
                    Flags::Coel => (Characteristic::parse(&k).is_ok(), "characteristics"),
                };
                if !known {
                    return Err(Violation::UnknownKey { at, key: short(&k) });
                }
                match &op.action {
                    OpType::Put(ScalarValue::Boolean(true)) | OpType::Delete => Ok(()),
                    _ => Err(Violation::WrongType { at, key: short(&k) }),
                }
            }
            Place::Media(entry) | Place::MediaItem(entry) if !obj_new => {
                Err(Violation::EntryRewrite {
                    entry: short(&entry),
                    key: "media".into(),
                })
            }
            Place::Media(_) => Err(Violation::WrongType {
                at: "media",
                key: "item".into(),
            }),
            Place::MediaItem(_) => {
                let want = match k.as_str() {
                    "sha256" | "kind" | "mime" => Want::Str(MAX_SHORT_BYTES),
                    "size" => Want::Int(MAX_MEDIA_SIZE),
                    "width" | "height" => Want::Int(MAX_DIMENSION),
                    _ => {
                        return Err(Violation::UnknownKey {
                            at: "media item",
                            key: short(&k),
                        });
                    }
                };
                self.put_new(op, &obj, "media item", &k, want)
            }
            Place::Revisions(entry) | Place::Replies(entry) => {
                let what = if is_reply { "reply" } else { "revision" };
                match op.action {
                    OpType::Delete => Err(Violation::HistoryRewrite {
                        entry: short(&entry),
                        what,
                    }),
                    _ => Err(Violation::WrongType {
                        at: what,
                        key: short(&k),
                    }),
                }
            }
            Place::Revision(entry, _) | Place::Reply(entry, _) => {
                let what = if is_reply { "reply" } else { "revision" };
                if !obj_new {
                    return Err(Violation::HistoryRewrite {
                        entry: short(&entry),
                        what,
                    });
                }
                let want = match (is_reply, k.as_str()) {
                    (_, "text") | (false, "next_steps") => Want::Str(MAX_TEXT_CHARS),
                    (false, "by") | (true, "author_kind" | "author_id") => {
                        Want::Str(MAX_SHORT_BYTES)
                    }
                    (false, "at") | (true, "created_at") => Want::Time,
                    _ => {
                        return Err(Violation::UnknownKey {
                            at: what,
                            key: short(&k),
                        });
                    }
                };
                self.put_new(op, &obj, what, &k, want)
            }
        }
    }

    /// A new object: allowed only where the schema has one, once.
    #[allow(clippy::too_many_arguments)]
    fn check_make(
        &self,
        obj: &OpKey,
        obj_new: bool,
        parent: &Place,
        child: &Place,
        made: ObjType,
        key: Option<&str>,
        overwrites: bool,
    ) -> Result<(), Violation> {
        let k = key.unwrap_or_default();
        let wrong = |at| Violation::WrongType { at, key: short(k) };
        let fresh = !overwrites && (obj_new || self.only_ours(obj, k));
        match (parent, child) {
            (Place::Entries, _) => {
                canonical_id(k, EntryId::parse, "entries")?;
                if made != ObjType::Map {
                    return Err(wrong("entries"));
                }
                if !fresh {
                    return Err(Violation::DuplicateId {
                        what: "entry",
                        id: short(k),
                    });
                }
                Ok(())
            }
            (Place::Entry(entry), _) => {
                let want = entry_creation_key(k).ok_or_else(|| Violation::UnknownKey {
                    at: "entry",
                    key: short(k),
                })?;
                if !matches!(want, Err(t) if t == made) {
                    return Err(wrong("entry"));
                }
                // Entries written before these maps were made with every entry gain them once.
                let may_add = obj_new || matches!(k, "revisions" | "replies" | "areas" | "coel");
                if !may_add || !fresh {
                    return Err(Violation::EntryRewrite {
                        entry: short(entry),
                        key: short(k),
                    });
                }
                Ok(())
            }
            (Place::Media(entry), _) => {
                if !obj_new {
                    return Err(Violation::EntryRewrite {
                        entry: short(entry),
                        key: "media".into(),
                    });
                }
                if made == ObjType::Map {
                    Ok(())
                } else {
                    Err(wrong("media"))
                }
            }
            (Place::Revisions(_) | Place::Replies(_), Place::Revision(..) | Place::Reply(..)) => {
                let (what, at) = match child {
                    Place::Reply(..) => ("reply", "replies"),
                    _ => ("revision", "revisions"),
                };
                if what == "reply" {
                    canonical_id(k, ReplyId::parse, at)?;
                } else {
                    canonical_id(
                        k,
                        |s| uuid::Uuid::try_parse(s).map(|u| u.hyphenated().to_string()),
                        at,
                    )?;
                }
                if made != ObjType::Map {
                    return Err(wrong(at));
                }
                if !fresh {
                    return Err(Violation::DuplicateId { what, id: short(k) });
                }
                Ok(())
            }
            _ => Err(wrong("document")),
        }
    }

    /// A plain value put once into an object this batch made.
    fn put_new(
        &mut self,
        op: &Op,
        obj: &OpKey,
        at: &'static str,
        key: &str,
        want: Want,
    ) -> Result<(), Violation> {
        let OpType::Put(v) = &op.action else {
            return Err(Violation::WrongType {
                at,
                key: short(key),
            });
        };
        check_value(at, key, want, v)?;
        let Some(m) = self.made.get_mut(obj) else {
            return Err(Self::outside());
        };
        // Written twice without the second seeing the first would leave two values, one
        // hidden: a well-formed writer never does.
        if !op.pred.is_empty() || m.fields.insert(key.to_owned(), v.clone()).is_some() {
            return Err(Violation::WrongType {
                at,
                key: short(key),
            });
        }
        Ok(())
    }

    fn check_entry_op(
        &mut self,
        op: &Op,
        obj: &OpKey,
        entry_new: bool,
        entry: &str,
        k: &str,
    ) -> Result<(), Violation> {
        let rewrite = || Violation::EntryRewrite {
            entry: short(entry),
            key: short(k),
        };
        let overwrites = !op.pred.is_empty();
        let review = || Violation::HistoryRewrite {
            entry: short(entry),
            what: "review",
        };
        let set = |this: &mut Self, v: &ScalarValue| {
            if let Some(m) = this.made.get_mut(obj) {
                m.fields.insert(k.to_owned(), v.clone());
            }
        };
        match (k, &op.action) {
            // Publishing a draft (also right after creating it, before any sync).
            ("published", OpType::Put(v @ ScalarValue::Boolean(true)))
                if !entry_new || overwrites =>
            {
                set(self, v);
                if !entry_new {
                    self.findings.published.insert(entry.to_owned());
                }
                Ok(())
            }
            // The marks an edit leaves, on any entry.
            ("edited_at", OpType::Put(v)) => {
                check_value("entry", k, Want::Time, v)?;
                set(self, v);
                Ok(())
            }
            ("edited_by", OpType::Put(v)) => {
                check_value("entry", k, Want::Str(MAX_SHORT_BYTES), v)?;
                if let ScalarValue::Str(s) = v {
                    self.findings.editors.insert(s.to_string());
                }
                set(self, v);
                Ok(())
            }
            // An edit sets or clears the age band.
            ("band", OpType::Put(v)) if !entry_new || overwrites => {
                match v {
                    ScalarValue::Str(s) if AgeBand::parse(s).is_ok() => {}
                    _ => {
                        return Err(Violation::WrongType {
                            at: "entry",
                            key: k.to_owned(),
                        });
                    }
                }
                set(self, v);
                Ok(())
            }
            ("band", OpType::Delete) => {
                if let Some(m) = self.made.get_mut(obj) {
                    m.fields.remove(k);
                }
                Ok(())
            }
            // A review, made once, of an entry that existed before.
            ("approved_by" | "rejected_by" | "approved_at" | "rejected_at", OpType::Put(v)) => {
                if entry_new {
                    return Err(Violation::WrongKind {
                        entry: short(entry),
                        what: "reviewed",
                    });
                }
                if overwrites || !self.only_ours(obj, k) {
                    return Err(review());
                }
                if k.ends_with("_by") {
                    check_value("entry", k, Want::Str(MAX_SHORT_BYTES), v)?;
                    if let ScalarValue::Str(s) = v {
                        self.findings.editors.insert(s.to_string());
                    }
                } else {
                    check_value("entry", k, Want::Time, v)?;
                }
                self.findings.reviewed.insert(entry.to_owned());
                Ok(())
            }
            (_, OpType::Put(v)) if entry_new => {
                let Some(want) = entry_creation_key(k) else {
                    return Err(Violation::UnknownKey {
                        at: "entry",
                        key: short(k),
                    });
                };
                let Ok(want) = want else {
                    return Err(Violation::WrongType {
                        at: "entry",
                        key: short(k),
                    });
                };
                if overwrites {
                    return Err(rewrite());
                }
                self.put_new(op, obj, "entry", k, want)
            }
            (_, OpType::Delete) => Err(rewrite()),
            _ if entry_creation_key(k).is_some() => Err(rewrite()),
            _ => Err(Violation::UnknownKey {
                at: "entry",
                key: short(k),
            }),
        }
    }

    /// The rule checks over what the operations made: authors, children, consent, and
    /// complete, well-formed entries, replies, revisions and reviews.
    fn check_rules(&self, roster: &RosterView) -> Result<Accepted, Violation> {
        let child = self.journal.child();
        let f = &self.findings;
        let mut accepted = Accepted::default();
        let mut child_state = None;
        if !f.new_entries.is_empty() {
            match roster.children.get(child) {
                Some((ChildStatus::Active, consent)) => child_state = Some(*consent),
                _ => {
                    return Err(Violation::UnknownChild {
                        child: child.to_string(),
                    });
                }
            }
        }
        for id in &f.new_entries {
            let e = &self.made[id];
            let Place::Entry(key) = &e.place else {
                continue;
            };
            let malformed = |what| Violation::Malformed {
                entry: short(key),
                what,
            };
            if e.str("kind") != Some(EntryKind::Observation.as_str())
                || e.str("author_kind") != Some("staff")
            {
                return Err(match (e.str("kind"), e.str("author_kind")) {
                    (Some(_), Some(_)) => Violation::ParentWrite {
                        entry: short(key),
                        what: "contributions",
                    },
                    _ => malformed("entry"),
                });
            }
            roster.check_staff(key, e.str("author_id"))?;
            if !e.has("created_at") || e.str("text").is_none() {
                return Err(malformed("entry"));
            }
            if let Some(g) = e.str("group")
                && GroupId::parse(g).map(|p| p.to_string()).as_deref() != Ok(g)
            {
                return Err(malformed("entry"));
            }
            if let Some(b) = e.str("band")
                && AgeBand::parse(b).is_err()
            {
                return Err(malformed("entry"));
            }
            let media: Vec<&Made> = self
                .made
                .values()
                .find(|m| m.place == Place::Media(key.clone()))
                .map(|list| list.items.iter().filter_map(|i| self.made.get(i)).collect())
                .unwrap_or_default();
            if media.len() > MAX_MEDIA_PER_ENTRY {
                return Err(Violation::Oversized {
                    at: "entry",
                    key: "media".into(),
                    limit: MAX_MEDIA_PER_ENTRY,
                });
            }
            let mut shas = Vec::with_capacity(media.len());
            for m in &media {
                let kind = m.str("kind").and_then(|k| MediaKind::parse(k).ok());
                let prefix = match kind {
                    Some(MediaKind::Photo) => "image/",
                    Some(MediaKind::Video) => "video/",
                    None => return Err(malformed("media")),
                };
                let sha = m.str("sha256").and_then(|h| Sha256::from_hex(h).ok());
                let complete = ["size", "width", "height"].iter().all(|k| m.has(k));
                match (sha, m.str("mime")) {
                    (Some(sha), Some(mime)) if mime.starts_with(prefix) && complete => {
                        shas.push(sha);
                    }
                    _ => return Err(malformed("media")),
                }
            }
            if e.str("text").is_some_and(|t| t.trim().is_empty()) && media.is_empty() {
                return Err(malformed("entry"));
            }
            if e.has("group") && !media.is_empty() && child_state != Some(Consent::Yes) {
                return Err(Violation::ConsentMissing { entry: short(key) });
            }
            accepted
                .new_entries
                .push(EntryId::parse(key).map_err(|_| malformed("entry"))?);
            accepted.media.extend(shas);
        }
        for id in &f.new_replies {
            let r = &self.made[id];
            let Place::Reply(entry, _) = &r.place else {
                continue;
            };
            let malformed = Violation::Malformed {
                entry: short(entry),
                what: "reply",
            };
            match r.str("author_kind") {
                Some("staff") => {}
                Some("parent") => {
                    return Err(Violation::ParentWrite {
                        entry: short(entry),
                        what: "replies",
                    });
                }
                _ => return Err(malformed),
            }
            roster.check_staff(entry, r.str("author_id"))?;
            if r.str("text").is_none_or(|t| t.trim().is_empty()) || !r.has("created_at") {
                return Err(malformed);
            }
        }
        for id in &f.new_revisions {
            let r = &self.made[id];
            let Place::Revision(entry, _) = &r.place else {
                continue;
            };
            roster.check_staff(entry, r.str("by"))?;
            if r.str("text").is_none() || !r.has("at") {
                return Err(Violation::Malformed {
                    entry: short(entry),
                    what: "revision",
                });
            }
        }
        for staff in &f.editors {
            roster.check_staff("edited", Some(staff))?;
        }
        if f.reviewed.is_empty() && f.published.is_empty() {
            return Ok(accepted);
        }
        // Reviews and publishing apply to what existed before: one read of its kind each.
        let entries_obj = get_obj(self.am(), &ROOT, "entries").unwrap_or(ROOT);
        let kind_of = |entry: &str| {
            get_obj(self.am(), &entries_obj, entry).and_then(|o| get_str(self.am(), &o, "kind"))
        };
        for entry in &f.reviewed {
            if kind_of(entry).as_deref() != Some(EntryKind::ParentContribution.as_str()) {
                return Err(Violation::WrongKind {
                    entry: short(entry),
                    what: "reviewed",
                });
            }
            let o = get_obj(self.am(), &entries_obj, entry);
            for (by, at) in [
                ("approved_by", "approved_at"),
                ("rejected_by", "rejected_at"),
            ] {
                let has = |k| {
                    o.as_ref()
                        .and_then(|o| self.am().get(o, k).ok().flatten())
                        .is_some()
                };
                if has(by) != has(at) {
                    return Err(Violation::Malformed {
                        entry: short(entry),
                        what: "review",
                    });
                }
            }
        }
        for entry in &f.published {
            if kind_of(entry).as_deref() != Some(EntryKind::Observation.as_str()) {
                return Err(Violation::WrongKind {
                    entry: short(entry),
                    what: "published",
                });
            }
        }
        Ok(accepted)
    }
}

/// Checks that `key` is an id in its canonical text form (so two keys cannot name one id).
fn canonical_id<T: ToString, E>(
    key: &str,
    parse: impl FnOnce(&str) -> Result<T, E>,
    at: &'static str,
) -> Result<(), Violation> {
    match parse(key) {
        Ok(id) if id.to_string() == key => Ok(()),
        _ => Err(Violation::UnknownKey {
            at,
            key: short(key),
        }),
    }
}

/// A sync message from a tablet did not apply, or what it carried was refused.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum ReceiveError {
    /// The message is malformed or its changes do not apply.
    #[error(transparent)]
    Doc(#[from] crate::DocError),
    /// A change breaks a rule; discard this copy.
    #[error(transparent)]
    Refused(#[from] Violation),
}

/// The changes a sync message carries that `am` lacks, parsed from the message itself (so
/// finding them costs nothing of the document's history) and in causal order, or `None` when
/// they cannot be told from the message alone: a chunk that is not a plain change, a document
/// with changes queued, or a change whose dependencies are neither in the document nor in the
/// message (Automerge would queue it, and apply it later with changes the message does not
/// show).
fn carried_changes(
    am: &mut automerge::AutoCommit,
    msg: &automerge::sync::Message,
) -> Option<Vec<automerge::Change>> {
    // Changes waiting for dependencies could be released by this message.
    if !am.get_missing_deps(&[]).is_empty() {
        return None;
    }
    let mut parsed = Vec::with_capacity(msg.changes.len());
    for chunk in msg.changes.iter() {
        parsed.push(automerge::Change::try_from(chunk).ok()?);
    }
    // With nothing queued, the hashes the document lacks are exactly those it reports missing.
    let wanted: Vec<automerge::ChangeHash> = parsed.iter().map(automerge::Change::hash).collect();
    let missing: HashSet<automerge::ChangeHash> =
        am.get_missing_deps(&wanted).into_iter().collect();
    let out: Vec<automerge::Change> = parsed
        .into_iter()
        .filter(|c| missing.contains(&c.hash()))
        .collect();
    let carried: HashSet<automerge::ChangeHash> = out.iter().map(automerge::Change::hash).collect();
    let deps: Vec<automerge::ChangeHash> = out
        .iter()
        .flat_map(|c| c.deps().iter().copied())
        .filter(|d| !carried.contains(d))
        .collect();
    if !am.get_missing_deps(&deps).is_empty() {
        return None;
    }
    // Causal order, so every object is made before anything is written into it.
    let mut ordered = Vec::with_capacity(out.len());
    let mut placed = HashSet::new();
    let mut out = out;
    while !out.is_empty() {
        let before = out.len();
        let mut rest = Vec::with_capacity(out.len());
        for c in out {
            if c.deps()
                .iter()
                .all(|d| !carried.contains(d) || placed.contains(d))
            {
                placed.insert(c.hash());
                ordered.push(c);
            } else {
                rest.push(c);
            }
        }
        if rest.len() == before {
            return None;
        }
        out = rest;
    }
    Some(ordered)
}

impl Journal {
    /// Applies a tablet's sync message to this (the server's) copy and checks every change it
    /// added, as [`Journal::validate_since`] does. The added changes are read from the message
    /// when it shows them all, which spares a walk of the journal's history.
    ///
    /// # Errors
    /// [`ReceiveError::Doc`] when the message does not apply; [`ReceiveError::Refused`] with
    /// the first rule broken (then discard this copy).
    pub fn receive_checked(
        &mut self,
        state: &mut crate::SyncState,
        message: &[u8],
        roster: &RosterView,
    ) -> Result<Accepted, ReceiveError> {
        let msg = automerge::sync::Message::decode(message)
            .map_err(|e| crate::DocError::Corrupt(e.to_string()))?;
        let carried = carried_changes(&mut self.doc.am, &msg);
        let before = self.doc.heads();
        self.doc.receive_decoded(state, msg)?;
        let after = self.doc.heads();
        if after == before {
            return Ok(Accepted::default());
        }
        // Everything applied must be what the message carried: every head is an old head or
        // a carried change (a change applied from Automerge's queue would show up as a head
        // the message does not hold). Otherwise the added changes are read from the document.
        if let Some(c) = carried
            && after
                .0
                .iter()
                .all(|h| before.0.contains(h) || c.iter().any(|x| x.hash() == *h))
        {
            return Ok(self.validate_changes(&c, roster)?);
        }
        let changes = self.doc.am.get_changes(&before.0);
        Ok(self.validate_changes(&changes, roster)?)
    }

    /// Checks every change this copy holds that `before` (the server's version) lacks: each
    /// operation against the schema, then what the changes add against the rules and the
    /// roster. Call it after applying a tablet's changes to the server's copy and before
    /// storing anything; on `Err` discard this copy.
    ///
    /// # Errors
    /// The first [`Violation`] found.
    pub fn validate_since(
        &mut self,
        before: &Heads,
        roster: &RosterView,
    ) -> Result<Accepted, Violation> {
        let changes = self.doc.am.get_changes(&before.0);
        self.validate_changes(&changes, roster)
    }

    fn validate_changes(
        &mut self,
        changes: &[automerge::Change],
        roster: &RosterView,
    ) -> Result<Accepted, Violation> {
        if changes.is_empty() {
            return Ok(Accepted::default());
        }
        let expanded: Vec<automerge::ExpandedChange> =
            changes.iter().map(automerge::Change::decode).collect();
        let mut new_ops = HashSet::new();
        for c in &expanded {
            let start = c.start_op.get();
            for i in 0..c.operations.len() as u64 {
                new_ops.insert((start + i, c.actor_id.clone()));
            }
        }
        let mut checker = Checker {
            journal: self,
            new_ops,
            made: HashMap::new(),
            existing: HashMap::new(),
            findings: Findings::default(),
        };
        let mut ops = 0;
        for c in &expanded {
            let start = c.start_op.get();
            for (i, op) in (0u64..).zip(&c.operations) {
                if matches!(
                    op.action,
                    OpType::Increment(_) | OpType::MarkBegin(..) | OpType::MarkEnd(_)
                ) {
                    return Err(Violation::WrongType {
                        at: "document",
                        key: "counter or mark".into(),
                    });
                }
                checker.check_op(op, (start + i, c.actor_id.clone()))?;
                ops += 1;
            }
        }
        let mut accepted = checker.check_rules(roster)?;
        accepted.ops = ops;
        Ok(accepted)
    }
}

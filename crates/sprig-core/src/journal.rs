//! One child's journal: an Automerge document of entries, replies and reviews.
//!
//! Layout (schema 1):
//! ```text
//! ROOT { kind: "journal", schema: 1, child: <id>, epoch: n,
//!        entries: { <entry id>: {
//!            kind, group?, author_kind, author_id, created_at,
//!            text, next_steps, areas: { <area>: true },
//!            band?, coel: { <characteristic>: true },
//!            media: [ { sha256, kind, mime, size, width, height } ],
//!            published: bool                               (staff observations)
//!            approved_by?, approved_at?, rejected_by?, rejected_at?   (parent contributions)
//!            replies: { <reply id>: { author_kind, author_id, created_at, text } },
//!            revisions?: { <revision id>: { text, next_steps, by, at } },
//!            edited_at?, edited_by? } } }
//! ```
//! Text fields are immutable strings, as DESIGN.md asks of fields not edited collaboratively:
//! an edit adds a revision instead of changing characters in place. Concurrent edits are all
//! kept (nothing a practitioner typed is lost) and the latest by `(at, revision id)` is shown.
//! Per-character `Text` would cost one Automerge operation per character on every load (a
//! year of a setting is ≈ 8.6 M of them); see docs/BENCHMARKS.md. Documents written before
//! this change hold `Text` objects, which read the same.
//! Status is derived, never stored: a rejection, once made on any replica, wins over a
//! concurrent approval, so a rejected contribution can never enter the journal by merging.

use std::collections::BTreeSet;

use automerge::hydrate::{self, Value as Hydrated};
use automerge::transaction::Transactable;
use automerge::{ObjId, ObjType, ROOT, ReadDoc, ScalarValue};

use crate::doc::{
    self, AmResult, Doc, DocError, Heads, SCHEMA_VERSION, get_bool, get_obj, get_str, get_u64,
    keys, put_bool, put_i64, put_str, put_time,
};
use crate::ids::{ChildId, EntryId, GroupId, ReplyId, Sha256, StaffId, Timestamp};
use crate::model::{
    AgeBand, Area, Author, Characteristic, Entry, EntryKind, EntryRevision, EntryStatus, MediaKind,
    MediaRef, Reply,
};
use crate::roster::Roster;
use crate::rules::{self, Actor, EntryEdit, EntryPlan, RuleError};

/// The entries that differ between two versions of a journal.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changed {
    /// Entries added or modified (including their replies and reviews).
    pub upserted: Vec<EntryId>,
    /// Entries that existed before and are gone now.
    pub removed: Vec<EntryId>,
}

/// One child's journal. The unit of sync, of authorisation and of erasure.
#[derive(Debug, Clone)]
pub struct Journal {
    pub(crate) doc: Doc,
    child: ChildId,
    epoch: u64,
}

impl Journal {
    /// A new, empty journal for `child`. Every replica that creates the journal of the same
    /// child produces the same first change, so independently created copies merge cleanly.
    #[must_use]
    pub fn new(child: ChildId) -> Journal {
        Self::new_epoch(child, 0)
    }

    fn new_epoch(child: ChildId, epoch: u64) -> Journal {
        let mut actor = child.uuid_bytes().to_vec();
        actor.extend_from_slice(&epoch.to_be_bytes());
        let doc = Doc::genesis(&actor, |am| {
            put_str(am, &ROOT, "kind", "journal")?;
            put_i64(am, &ROOT, "schema", SCHEMA_VERSION)?;
            put_str(am, &ROOT, "child", child.as_str())?;
            put_i64(am, &ROOT, "epoch", i64::try_from(epoch).unwrap_or(i64::MAX))?;
            am.put_object(&ROOT, "entries", ObjType::Map)?;
            Ok(())
        });
        Journal { doc, child, epoch }
    }

    /// Loads a journal: a snapshot followed by any number of incremental chunks.
    ///
    /// # Errors
    /// [`DocError`] when the bytes are not a journal this version understands.
    pub fn load(bytes: &[u8]) -> Result<Journal, DocError> {
        let doc = Doc::load(bytes)?;
        doc.check_kind("journal")?;
        let child = get_str(&doc.am, &ROOT, "child").ok_or(DocError::MissingField("child"))?;
        let child = ChildId::parse(&child).map_err(|_| DocError::MissingField("child"))?;
        let epoch = get_u64(&doc.am, &ROOT, "epoch").ok_or(DocError::MissingField("epoch"))?;
        get_obj(&doc.am, &ROOT, "entries").ok_or(DocError::MissingField("entries"))?;
        Ok(Journal { doc, child, epoch })
    }

    /// The child whose journal this is.
    #[must_use]
    pub fn child(&self) -> &ChildId {
        &self.child
    }

    /// The erasure epoch: 0 at creation, +1 at each [`Self::rebuild_epoch`].
    #[must_use]
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    crate::doc::doc_methods!();

    /// A snapshot without column compression: slower and bigger, but every stored string is
    /// visible in the bytes, which is what erasure tests need to inspect.
    pub fn save_uncompressed(&mut self) -> Vec<u8> {
        self.doc.save_uncompressed()
    }

    /// Merges another replica of this journal into this one.
    ///
    /// # Errors
    /// [`DocError::DifferentDocument`] for another child's journal and
    /// [`DocError::EpochMismatch`] across an erasure.
    pub fn merge(&mut self, other: &mut Journal) -> Result<(), DocError> {
        if other.child != self.child {
            return Err(DocError::DifferentDocument);
        }
        if other.epoch != self.epoch {
            return Err(DocError::EpochMismatch {
                ours: self.epoch,
                theirs: other.epoch,
            });
        }
        self.doc.merge(&mut other.doc)
    }

    /// Another replica of this journal with its own actor, as a second device would hold.
    #[must_use]
    pub fn fork(&mut self) -> Journal {
        Journal {
            doc: self.doc.fork(),
            child: self.child.clone(),
            epoch: self.epoch,
        }
    }

    fn entries_obj(&self) -> ObjId {
        // `load` and `new` guarantee the map exists.
        get_obj(&self.doc.am, &ROOT, "entries").unwrap_or(ROOT)
    }

    fn entry_obj(&self, id: &EntryId) -> Option<ObjId> {
        get_obj(&self.doc.am, &self.entries_obj(), id.as_str())
    }

    /// Every entry, oldest first (ties broken by id). Reads the journal in one pass.
    #[must_use]
    pub fn entries(&self) -> Vec<Entry> {
        let Some(Hydrated::Map(entries)) = self.hydrate(&self.entries_obj()) else {
            return Vec::new();
        };
        let mut out: Vec<Entry> = entries
            .iter()
            .filter_map(|(k, v)| {
                let id = EntryId::parse(k).ok()?;
                match &v.value {
                    Hydrated::Map(m) => read_entry(id, &self.child, Fields(m)),
                    _ => None,
                }
            })
            .collect();
        out.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        out
    }

    /// The object at `obj` as plain values (one pass over its operations).
    fn hydrate(&self, obj: &ObjId) -> Option<Hydrated> {
        self.doc.am.hydrate(obj, None).ok()
    }

    /// Number of entries.
    #[must_use]
    pub fn len(&self) -> usize {
        self.doc.am.length(self.entries_obj())
    }

    /// Whether the journal has no entries.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// One entry, materialised. `None` when absent or unreadable.
    #[must_use]
    pub fn entry(&self, id: &EntryId) -> Option<Entry> {
        match self.hydrate(&self.entry_obj(id)?)? {
            Hydrated::Map(m) => read_entry(id.clone(), &self.child, Fields(&m)),
            _ => None,
        }
    }

    /// Every edit of an entry's text, oldest first (the audit trail of corrections). The last
    /// one is what [`Self::entry`] shows. Empty when the entry was never edited or is absent.
    #[must_use]
    pub fn revisions(&self, id: &EntryId) -> Vec<EntryRevision> {
        match self.entry_obj(id).and_then(|o| self.hydrate(&o)) {
            Some(Hydrated::Map(m)) => read_revisions(Fields(&m))
                .into_iter()
                .map(|(_, r)| r)
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The entries that differ between `since` and now. Empty `since` means everything.
    pub fn changed_since(&mut self, since: &Heads) -> Changed {
        let now = self.doc.heads();
        let mut touched = BTreeSet::new();
        if since.is_empty() {
            touched.extend(keys(&self.doc.am, &self.entries_obj()));
        } else if *since != now {
            let entries = self.entries_obj();
            for patch in self.doc.am.diff(&since.0, &now.0) {
                if patch.obj == entries {
                    match &patch.action {
                        automerge::PatchAction::PutMap { key, .. }
                        | automerge::PatchAction::DeleteMap { key } => {
                            touched.insert(key.clone());
                        }
                        _ => {}
                    }
                } else if let Some((_, automerge::Prop::Map(key))) =
                    patch.path.iter().find(|(obj, _)| *obj == entries)
                {
                    touched.insert(key.clone());
                }
            }
        }
        let mut changed = Changed::default();
        for key in touched {
            let Ok(id) = EntryId::parse(&key) else {
                continue;
            };
            if self.entry_obj(&id).is_some() {
                changed.upserted.push(id);
            } else {
                changed.removed.push(id);
            }
        }
        changed
    }

    // ---- changes, each checked by the rules ---------------------------------------------------

    /// Writes a planned entry (see [`rules::plan_entry`]) into this child's copy.
    ///
    /// # Errors
    /// [`RuleError::WrongJournal`] when the plan does not tag this child.
    pub fn apply_entry(&mut self, plan: &EntryPlan) -> Result<(), RuleError> {
        if !plan.children.contains(&self.child) {
            return Err(RuleError::WrongJournal);
        }
        let entries = self.entries_obj();
        let entry = plan.entry_for(&self.child);
        write_entry(&mut self.doc.am, &entries, &entry).map_err(doc_bug)?;
        self.doc.commit(plan.created_at.0);
        Ok(())
    }

    /// Edits an entry's text, next steps and areas (staff only). The text is written as a new
    /// revision: two people correcting the same entry at once both keep their revision in
    /// [`Self::revisions`], and the later one is shown. Areas merge per area.
    ///
    /// # Errors
    /// [`RuleError`] when the actor may not edit or the entry is absent.
    pub fn edit_entry(
        &mut self,
        roster: &Roster,
        actor: &Actor,
        id: &EntryId,
        edit: &EntryEdit,
        at: Timestamp,
    ) -> Result<(), RuleError> {
        let staff = rules::require_staff(roster, actor)?;
        rules::check_text(&edit.text, &edit.next_steps)?;
        let o = self.entry_obj(id).ok_or(RuleError::EntryNotFound)?;
        let am = &mut self.doc.am;
        let w = |am: &mut automerge::AutoCommit| -> AmResult {
            let revisions = doc::ensure_map(am, &o, "revisions")?;
            let rev = am.put_object(
                &revisions,
                uuid::Uuid::new_v4().hyphenated().to_string(),
                ObjType::Map,
            )?;
            put_str(am, &rev, "text", &edit.text)?;
            put_str(am, &rev, "next_steps", &edit.next_steps)?;
            put_str(am, &rev, "by", staff.as_str())?;
            put_time(am, &rev, "at", at.0)?;
            let areas = doc::ensure_map(am, &o, "areas")?;
            let wanted: Vec<&str> = edit.areas.iter().map(|a| a.as_str()).collect();
            toggle_flags(am, &areas, Area::ALL.iter().map(|a| a.as_str()), &wanted)?;
            let coel = doc::ensure_map(am, &o, "coel")?;
            let wanted: Vec<&str> = edit.characteristics.iter().map(|c| c.as_str()).collect();
            toggle_flags(
                am,
                &coel,
                Characteristic::ALL.iter().map(|c| c.as_str()),
                &wanted,
            )?;
            let band = get_str(am, &o, "band");
            match edit.band {
                Some(b) if band.as_deref() != Some(b.as_str()) => {
                    put_str(am, &o, "band", b.as_str())?;
                }
                None if band.is_some() => am.delete(&o, "band")?,
                _ => {}
            }
            put_time(am, &o, "edited_at", at.0)?;
            put_str(am, &o, "edited_by", staff.as_str())
        };
        w(am).map_err(doc_bug)?;
        self.doc.commit(at.0);
        Ok(())
    }

    /// Publishes a staff draft to the child's parents.
    ///
    /// # Errors
    /// [`RuleError`] when the actor is not staff or the entry is not a staff observation.
    pub fn publish(
        &mut self,
        roster: &Roster,
        actor: &Actor,
        id: &EntryId,
        at: Timestamp,
    ) -> Result<(), RuleError> {
        rules::require_staff(roster, actor)?;
        let entry = self.entry(id).ok_or(RuleError::EntryNotFound)?;
        if entry.kind != EntryKind::Observation {
            return Err(RuleError::NotAnObservation);
        }
        let o = self.entry_obj(id).ok_or(RuleError::EntryNotFound)?;
        put_bool(&mut self.doc.am, &o, "published", true).map_err(doc_bug)?;
        self.doc.commit(at.0);
        Ok(())
    }

    /// Approves a pending parent contribution: it becomes part of the journal.
    ///
    /// # Errors
    /// [`RuleError`] when the actor is not staff, the entry is not a pending contribution.
    pub fn approve(
        &mut self,
        roster: &Roster,
        actor: &Actor,
        id: &EntryId,
        at: Timestamp,
    ) -> Result<(), RuleError> {
        self.review(roster, actor, id, at, "approved")
    }

    /// Rejects a pending parent contribution: it never enters the journal; the parent sees the
    /// outcome. A rejection wins over a concurrent approval made on another device.
    ///
    /// # Errors
    /// [`RuleError`] when the actor is not staff, the entry is not a pending contribution.
    pub fn reject(
        &mut self,
        roster: &Roster,
        actor: &Actor,
        id: &EntryId,
        at: Timestamp,
    ) -> Result<(), RuleError> {
        self.review(roster, actor, id, at, "rejected")
    }

    fn review(
        &mut self,
        roster: &Roster,
        actor: &Actor,
        id: &EntryId,
        at: Timestamp,
        verdict: &str,
    ) -> Result<(), RuleError> {
        let staff = rules::require_staff(roster, actor)?;
        let entry = self.entry(id).ok_or(RuleError::EntryNotFound)?;
        if entry.kind != EntryKind::ParentContribution {
            return Err(RuleError::NotAContribution);
        }
        if entry.status != EntryStatus::Pending {
            return Err(RuleError::AlreadyReviewed(entry.status));
        }
        let o = self.entry_obj(id).ok_or(RuleError::EntryNotFound)?;
        let am = &mut self.doc.am;
        put_str(am, &o, &format!("{verdict}_by"), staff.as_str()).map_err(doc_bug)?;
        put_time(am, &o, &format!("{verdict}_at"), at.0).map_err(doc_bug)?;
        self.doc.commit(at.0);
        Ok(())
    }

    /// Adds a reply under an entry. Parents may reply only to what they can see.
    ///
    /// # Errors
    /// [`RuleError`] when the actor may not see the entry, or the text is empty or too long.
    pub fn reply(
        &mut self,
        roster: &Roster,
        actor: &Actor,
        id: &EntryId,
        text: &str,
        at: Timestamp,
    ) -> Result<ReplyId, RuleError> {
        let entry = self.entry(id).ok_or(RuleError::EntryNotFound)?;
        let author = rules::check_reply(roster, actor, &entry, text)?;
        let o = self.entry_obj(id).ok_or(RuleError::EntryNotFound)?;
        let reply_id = ReplyId::new_random();
        let w = |am: &mut automerge::AutoCommit| -> AmResult {
            let replies = doc::ensure_map(am, &o, "replies")?;
            let r = am.put_object(&replies, reply_id.as_str(), ObjType::Map)?;
            put_str(am, &r, "author_kind", author.kind_str())?;
            put_str(am, &r, "author_id", author.id_str())?;
            put_time(am, &r, "created_at", at.0)?;
            put_str(am, &r, "text", text)
        };
        w(&mut self.doc.am).map_err(doc_bug)?;
        self.doc.commit(at.0);
        Ok(reply_id)
    }

    /// Removes an entry from the journal (staff only), e.g. one recorded for the wrong child.
    /// Its history remains until the next [`Self::rebuild_epoch`].
    ///
    /// # Errors
    /// [`RuleError`] when the actor is not staff or the entry is absent.
    pub fn delete_entry(
        &mut self,
        roster: &Roster,
        actor: &Actor,
        id: &EntryId,
        at: Timestamp,
    ) -> Result<(), RuleError> {
        rules::require_staff(roster, actor)?;
        if self.entry_obj(id).is_none() {
            return Err(RuleError::EntryNotFound);
        }
        let entries = self.entries_obj();
        self.doc.am.delete(&entries, id.as_str()).map_err(doc_bug)?;
        self.doc.commit(at.0);
        Ok(())
    }

    /// Rebuilds the journal from its current state as a new epoch with no history: anything
    /// deleted or edited away before now is absent from the new document's bytes. Done by one
    /// authority (the server), whose result replaces the journal on every replica.
    #[must_use]
    pub fn rebuild_epoch(&self) -> Journal {
        let mut next = Journal::new_epoch(self.child.clone(), self.epoch + 1);
        let entries = next.entries_obj();
        let write = |am: &mut automerge::AutoCommit| -> AmResult {
            for e in self.entries() {
                let o = write_entry(am, &entries, &e)?;
                // Reviews and edit marks are carried over as recorded, so derived status and
                // "edited" labels are unchanged.
                let src = self.entry_obj(&e.id).unwrap_or(ROOT);
                for key in [
                    "approved_by",
                    "approved_at",
                    "rejected_by",
                    "rejected_at",
                    "edited_at",
                    "edited_by",
                ] {
                    if let Some((v, _)) = self.doc.am.get(&src, key).ok().flatten()
                        && let Ok(s) = v.into_scalar()
                    {
                        am.put(&o, key, s)?;
                    }
                }
            }
            Ok(())
        };
        write(&mut next.doc.am).expect("writing a fresh document");
        next.doc.commit(0);
        next
    }
}

/// Writes a whole entry as a new map under `entries`.
fn write_entry(am: &mut automerge::AutoCommit, entries: &ObjId, e: &Entry) -> AmResult<ObjId> {
    let o = am.put_object(entries, e.id.as_str(), ObjType::Map)?;
    put_str(am, &o, "kind", e.kind.as_str())?;
    if let Some(g) = &e.group {
        put_str(am, &o, "group", g.as_str())?;
    }
    put_str(am, &o, "author_kind", e.author.kind_str())?;
    put_str(am, &o, "author_id", e.author.id_str())?;
    put_time(am, &o, "created_at", e.created_at.0)?;
    put_str(am, &o, "text", &e.text)?;
    put_str(am, &o, "next_steps", &e.next_steps)?;
    let areas = am.put_object(&o, "areas", ObjType::Map)?;
    for a in &e.areas {
        put_bool(am, &areas, a.as_str(), true)?;
    }
    if let Some(b) = e.band {
        put_str(am, &o, "band", b.as_str())?;
    }
    let coel = am.put_object(&o, "coel", ObjType::Map)?;
    for c in &e.characteristics {
        put_bool(am, &coel, c.as_str(), true)?;
    }
    let media = am.put_object(&o, "media", ObjType::List)?;
    for (i, m) in e.media.iter().enumerate() {
        let mo = am.insert_object(&media, i, ObjType::Map)?;
        put_str(am, &mo, "sha256", &m.sha256.to_hex())?;
        put_str(am, &mo, "kind", m.kind.as_str())?;
        put_str(am, &mo, "mime", &m.mime)?;
        put_i64(am, &mo, "size", i64::try_from(m.size).unwrap_or(i64::MAX))?;
        put_i64(am, &mo, "width", i64::from(m.width))?;
        put_i64(am, &mo, "height", i64::from(m.height))?;
    }
    if e.kind == EntryKind::Observation {
        put_bool(am, &o, "published", e.status == EntryStatus::Published)?;
    }
    // Made with the entry, so replicas that later edit it concurrently add their revisions to
    // one map instead of each creating its own (Automerge would keep only one of those).
    am.put_object(&o, "revisions", ObjType::Map)?;
    let replies = am.put_object(&o, "replies", ObjType::Map)?;
    for r in &e.replies {
        let ro = am.put_object(&replies, r.id.as_str(), ObjType::Map)?;
        put_str(am, &ro, "author_kind", r.author.kind_str())?;
        put_str(am, &ro, "author_id", r.author.id_str())?;
        put_time(am, &ro, "created_at", r.created_at.0)?;
        put_str(am, &ro, "text", &r.text)?;
    }
    Ok(o)
}

/// Sets `true` under each of `wanted` and deletes every other key of `all` that is set, so
/// concurrent edits merge flag by flag.
fn toggle_flags<'a>(
    am: &mut automerge::AutoCommit,
    map: &ObjId,
    all: impl Iterator<Item = &'a str>,
    wanted: &[&str],
) -> AmResult {
    for key in all {
        let want = wanted.contains(&key);
        let has = get_bool(am, map, key) == Some(true);
        if want && !has {
            put_bool(am, map, key, true)?;
        } else if !want && has {
            am.delete(map, key)?;
        }
    }
    Ok(())
}

/// Typed reads from a hydrated map (the winning value of each key, as `get` returns).
#[derive(Clone, Copy)]
struct Fields<'a>(&'a hydrate::Map);

impl<'a> Fields<'a> {
    fn value(self, key: &str) -> Option<&'a Hydrated> {
        self.0.get(key)
    }

    fn str(self, key: &str) -> Option<String> {
        match self.value(key)? {
            Hydrated::Scalar(ScalarValue::Str(s)) => Some(s.to_string()),
            // Journals written before text became immutable strings hold `Text` objects.
            Hydrated::Text(t) => Some(String::from(t)),
            _ => None,
        }
    }

    fn i64(self, key: &str) -> Option<i64> {
        match self.value(key)? {
            Hydrated::Scalar(ScalarValue::Int(v) | ScalarValue::Timestamp(v)) => Some(*v),
            Hydrated::Scalar(ScalarValue::Uint(v)) => i64::try_from(*v).ok(),
            _ => None,
        }
    }

    fn bool(self, key: &str) -> Option<bool> {
        match self.value(key)? {
            Hydrated::Scalar(ScalarValue::Boolean(b)) => Some(*b),
            _ => None,
        }
    }

    fn map(self, key: &str) -> Option<Fields<'a>> {
        match self.value(key)? {
            Hydrated::Map(m) => Some(Fields(m)),
            _ => None,
        }
    }

    /// The keys of `key`'s map whose value is `true`, parsed, sorted; unknown keys skipped.
    fn flags<T: Ord, E>(self, key: &str, parse: impl Fn(&str) -> Result<T, E>) -> Vec<T> {
        let mut out: Vec<T> = self
            .map(key)
            .map(|m| {
                m.0.iter()
                    .filter(|(_, v)| {
                        matches!(v.value, Hydrated::Scalar(ScalarValue::Boolean(true)))
                    })
                    .filter_map(|(k, _)| parse(k).ok())
                    .collect()
            })
            .unwrap_or_default();
        out.sort();
        out
    }

    /// The maps of `key`'s map, with their keys.
    fn maps(self, key: &str) -> impl Iterator<Item = (&'a String, Fields<'a>)> {
        self.map(key)
            .into_iter()
            .flat_map(|m| m.0.iter())
            .filter_map(|(k, v)| match &v.value {
                Hydrated::Map(m) => Some((k, Fields(m))),
                _ => None,
            })
    }
}

/// Materialises one entry from its hydrated map. `None` when a required field is missing.
fn read_entry(id: EntryId, child: &ChildId, o: Fields<'_>) -> Option<Entry> {
    let kind = EntryKind::parse(&o.str("kind")?).ok()?;
    let author = Author::from_parts(&o.str("author_kind")?, &o.str("author_id")?).ok()?;
    let group = o.str("group").and_then(|g| GroupId::parse(&g).ok());
    let areas: Vec<Area> = o.flags("areas", Area::parse);
    let characteristics: Vec<Characteristic> = o.flags("coel", Characteristic::parse);
    let band = o.str("band").and_then(|b| AgeBand::parse(&b).ok());
    let media = match o.value("media") {
        Some(Hydrated::List(list)) => read_media(list),
        _ => Vec::new(),
    };
    let status = match kind {
        EntryKind::Observation => {
            if o.bool("published") == Some(true) {
                EntryStatus::Published
            } else {
                EntryStatus::Draft
            }
        }
        EntryKind::ParentContribution => {
            if o.str("rejected_by").is_some() {
                EntryStatus::Rejected
            } else if o.str("approved_by").is_some() {
                EntryStatus::Published
            } else {
                EntryStatus::Pending
            }
        }
    };
    let mut replies: Vec<Reply> = o
        .maps("replies")
        .filter_map(|(k, r)| {
            Some(Reply {
                id: ReplyId::parse(k).ok()?,
                author: Author::from_parts(&r.str("author_kind")?, &r.str("author_id")?).ok()?,
                created_at: Timestamp(r.i64("created_at")?),
                text: r.str("text")?,
            })
        })
        .collect();
    replies.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    let (text, next_steps) = match read_revisions(o).pop() {
        Some((_, r)) => (r.text, r.next_steps),
        None => (
            o.str("text").unwrap_or_default(),
            o.str("next_steps").unwrap_or_default(),
        ),
    };
    Some(Entry {
        id,
        child: child.clone(),
        kind,
        group,
        author,
        created_at: Timestamp(o.i64("created_at")?),
        text,
        areas,
        band,
        characteristics,
        next_steps,
        media,
        status,
        replies,
        edited_at: o.i64("edited_at").map(Timestamp),
    })
}

/// An entry's revisions with their keys, oldest first by `(at, key)`.
fn read_revisions(entry: Fields<'_>) -> Vec<(String, EntryRevision)> {
    let mut out: Vec<(String, EntryRevision)> = entry
        .maps("revisions")
        .filter_map(|(k, r)| {
            let rev = EntryRevision {
                by: StaffId::parse(&r.str("by")?).ok()?,
                at: Timestamp(r.i64("at")?),
                text: r.str("text")?,
                next_steps: r.str("next_steps").unwrap_or_default(),
            };
            Some((k.clone(), rev))
        })
        .collect();
    out.sort_by(|(ka, a), (kb, b)| (a.at, ka).cmp(&(b.at, kb)));
    out
}

fn read_media(list: &hydrate::List) -> Vec<MediaRef> {
    list.iter()
        .filter_map(|item| {
            let Hydrated::Map(m) = &item.value else {
                return None;
            };
            let m = Fields(m);
            Some(MediaRef {
                sha256: Sha256::from_hex(&m.str("sha256")?).ok()?,
                kind: MediaKind::parse(&m.str("kind")?).ok()?,
                mime: m.str("mime")?,
                size: u64::try_from(m.i64("size")?).ok()?,
                width: u32::try_from(m.i64("width")?).ok()?,
                height: u32::try_from(m.i64("height")?).ok()?,
            })
        })
        .collect()
}

/// Writing well-formed values into objects we just read cannot fail; if Automerge says
/// otherwise the document is damaged.
fn doc_bug(e: automerge::AutomergeError) -> RuleError {
    RuleError::Document(DocError::from(e))
}

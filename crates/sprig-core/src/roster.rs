//! The roster document: rooms, staff, children (key worker, room, consent, status) and parents
//! with their links to children.
//!
//! Layout (schema 1): `ROOT { kind: "roster", schema, epoch?, rooms: {id: {name}}, staff: {id:
//! {name, role, active, pin_hash?}}, children: {id: {name, dob, key_worker, room?, consent,
//! status}}, parents: {id: {name, children: {child id: true}}} }`.
//!
//! Tablets hold the roster, so it holds only what staff need: parents appear by display name
//! (for their replies) and their links, never their e-mail addresses or other contact data,
//! which the server keeps in its own store. Rosters written before that held `email` under each
//! parent; [`Roster::rebuild_epoch`] writes a new epoch without them, whose history does not
//! carry them either.

use automerge::{ObjId, ROOT, ReadDoc};

use crate::doc::{
    AmResult, Doc, DocError, SCHEMA_VERSION, ensure_map, get_bool, get_obj, get_str, keys,
    put_bool, put_i64, put_map, put_str,
};
use crate::ids::{ChildId, ParentId, RoomId, StaffId, Timestamp};
use crate::model::{Child, ChildStatus, Consent, Parent, Role, Room, Staff};
use crate::rules::RuleError;

/// Longest name accepted for a person or room.
pub const MAX_NAME_CHARS: usize = 200;

/// What is needed to put a child on the roster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewChild {
    /// Display name.
    pub name: String,
    /// Date of birth, `YYYY-MM-DD`, when known.
    pub date_of_birth: Option<String>,
    /// Their key worker (an active member of staff).
    pub key_worker: StaffId,
    /// Their room, if any.
    pub room: Option<RoomId>,
    /// Photo consent, as far as it has been asked.
    pub photo_consent: Consent,
}

/// The setting's roster. Staff devices hold it; parents never receive it.
#[derive(Debug, Clone)]
pub struct Roster {
    doc: Doc,
}

impl Default for Roster {
    fn default() -> Self {
        Self::new()
    }
}

impl Roster {
    /// An empty roster (identical first change on every replica).
    #[must_use]
    pub fn new() -> Roster {
        Self::new_epoch(0)
    }

    fn new_epoch(epoch: u64) -> Roster {
        // Epoch 0 keeps the genesis every existing roster started from.
        let mut actor = b"sprig-roster".to_vec();
        if epoch > 0 {
            actor.extend_from_slice(&epoch.to_be_bytes());
        }
        let doc = Doc::genesis(&actor, |am| {
            put_str(am, &ROOT, "kind", "roster")?;
            put_i64(am, &ROOT, "schema", SCHEMA_VERSION)?;
            if epoch > 0 {
                put_i64(am, &ROOT, "epoch", i64::try_from(epoch).unwrap_or(i64::MAX))?;
            }
            for m in ["rooms", "staff", "children", "parents"] {
                put_map(am, &ROOT, m)?;
            }
            Ok(())
        });
        Roster { doc }
    }

    /// The erasure epoch: 0 at creation, +1 at each [`Self::rebuild_epoch`].
    #[must_use]
    pub fn epoch(&self) -> u64 {
        crate::doc::get_u64(&self.doc.am, &ROOT, "epoch").unwrap_or(0)
    }

    /// The roster's current state as a new epoch with no history and without any parent's
    /// e-mail address: what a server writes once, so that every tablet replaces its copy (and
    /// the history that still held contact data). Done by one authority, the server.
    #[must_use]
    pub fn rebuild_epoch(&self) -> Roster {
        let mut next = Roster::new_epoch(self.epoch() + 1);
        let copy = |am: &mut automerge::AutoCommit| -> AmResult {
            for section in ["rooms", "staff", "children", "parents"] {
                let Some(src) = get_obj(&self.doc.am, &ROOT, section) else {
                    continue;
                };
                let Ok(automerge::hydrate::Value::Map(items)) = self.doc.am.hydrate(&src, None)
                else {
                    continue;
                };
                let dst = ensure_map(am, &ROOT, section)?;
                for (id, item) in items.iter() {
                    let automerge::hydrate::Value::Map(fields) = &item.value else {
                        continue;
                    };
                    let o = put_map(am, &dst, id)?;
                    for (key, v) in fields.iter() {
                        if section == "parents" && key == "email" {
                            continue;
                        }
                        copy_value(am, &o, key, &v.value)?;
                    }
                }
            }
            Ok(())
        };
        copy(&mut next.doc.am).expect("writing a fresh document");
        next.doc.commit(0);
        next
    }

    /// E-mail addresses that rosters written before contact data left them still hold, by
    /// parent: for the server's one-time move of them into its own store.
    #[must_use]
    pub fn legacy_parent_emails(&self) -> Vec<(ParentId, String)> {
        let d = &self.doc.am;
        let section = self.section("parents");
        keys(d, &section)
            .iter()
            .filter_map(|k| {
                let id = ParentId::parse(k).ok()?;
                let o = get_obj(d, &section, k)?;
                Some((id, get_str(d, &o, "email")?))
            })
            .collect()
    }

    /// Loads a roster snapshot plus any incremental chunks.
    ///
    /// # Errors
    /// [`DocError`] when the bytes are not a roster this version understands.
    pub fn load(bytes: &[u8]) -> Result<Roster, DocError> {
        let doc = Doc::load(bytes)?;
        doc.check_kind("roster")?;
        Ok(Roster { doc })
    }

    crate::doc::doc_methods!();

    /// Merges another replica.
    ///
    /// # Errors
    /// [`DocError::Corrupt`] on damaged changes.
    pub fn merge(&mut self, other: &mut Roster) -> Result<(), DocError> {
        self.doc.merge(&mut other.doc)
    }

    /// Another replica with its own actor.
    #[must_use]
    pub fn fork(&mut self) -> Roster {
        Roster {
            doc: self.doc.fork(),
        }
    }

    fn section(&self, name: &str) -> ObjId {
        get_obj(&self.doc.am, &ROOT, name).unwrap_or(ROOT)
    }

    fn section_mut(&mut self, name: &str) -> Result<ObjId, RuleError> {
        ensure_map(&mut self.doc.am, &ROOT, name).map_err(doc_err)
    }

    fn write(
        &mut self,
        at: Timestamp,
        f: impl FnOnce(&mut automerge::AutoCommit) -> AmResult,
    ) -> Result<(), RuleError> {
        f(&mut self.doc.am).map_err(doc_err)?;
        self.doc.commit(at.0);
        Ok(())
    }

    // ---- rooms and staff ----------------------------------------------------------------------

    /// Adds a room.
    ///
    /// # Errors
    /// [`RuleError::InvalidName`] for an empty or overlong name.
    pub fn add_room(&mut self, name: &str, at: Timestamp) -> Result<RoomId, RuleError> {
        let name = check_name(name)?;
        let id = RoomId::new_random();
        let rooms = self.section_mut("rooms")?;
        self.write(at, |am| {
            let o = put_map(am, &rooms, id.as_str())?;
            put_str(am, &o, "name", &name)
        })?;
        Ok(id)
    }

    /// Adds a member of staff.
    ///
    /// # Errors
    /// [`RuleError::InvalidName`] for an empty or overlong name.
    pub fn add_staff(
        &mut self,
        name: &str,
        role: Role,
        at: Timestamp,
    ) -> Result<StaffId, RuleError> {
        let name = check_name(name)?;
        let id = StaffId::new_random();
        let staff = self.section_mut("staff")?;
        self.write(at, |am| {
            let o = put_map(am, &staff, id.as_str())?;
            put_str(am, &o, "name", &name)?;
            put_str(am, &o, "role", role.as_str())?;
            put_bool(am, &o, "active", true)
        })?;
        Ok(id)
    }

    /// Records the Argon2id hash (PHC string) of a staff member's tablet PIN.
    ///
    /// # Errors
    /// [`RuleError::UnknownStaff`] when absent.
    pub fn set_pin_hash(
        &mut self,
        id: &StaffId,
        phc: &str,
        at: Timestamp,
    ) -> Result<(), RuleError> {
        let o = self.staff_obj(id)?;
        self.write(at, |am| put_str(am, &o, "pin_hash", phc))
    }

    /// Stops a member of staff from using the system (they left, or must not record).
    ///
    /// # Errors
    /// [`RuleError::UnknownStaff`] when absent.
    pub fn deactivate_staff(&mut self, id: &StaffId, at: Timestamp) -> Result<(), RuleError> {
        let o = self.staff_obj(id)?;
        self.write(at, |am| put_bool(am, &o, "active", false))
    }

    /// Changes a member of staff's role.
    ///
    /// # Errors
    /// [`RuleError::UnknownStaff`] when absent.
    pub fn set_role(&mut self, id: &StaffId, role: Role, at: Timestamp) -> Result<(), RuleError> {
        let o = self.staff_obj(id)?;
        self.write(at, |am| put_str(am, &o, "role", role.as_str()))
    }

    fn staff_obj(&self, id: &StaffId) -> Result<ObjId, RuleError> {
        get_obj(&self.doc.am, &self.section("staff"), id.as_str())
            .ok_or_else(|| RuleError::UnknownStaff(id.clone()))
    }

    // ---- children -----------------------------------------------------------------------------

    /// Puts a child on the roster.
    ///
    /// # Errors
    /// [`RuleError`] for a bad name or date, an unknown or inactive key worker, an unknown room.
    pub fn add_child(&mut self, new: &NewChild, at: Timestamp) -> Result<ChildId, RuleError> {
        let name = check_name(&new.name)?;
        if let Some(dob) = &new.date_of_birth {
            check_date(dob)?;
        }
        match self.staff(&new.key_worker) {
            Some(s) if s.active => {}
            Some(_) => return Err(RuleError::InactiveStaff),
            None => return Err(RuleError::UnknownStaff(new.key_worker.clone())),
        }
        if let Some(room) = &new.room
            && self.room(room).is_none()
        {
            return Err(RuleError::UnknownRoom(room.clone()));
        }
        let id = ChildId::new_random();
        let children = self.section_mut("children")?;
        self.write(at, |am| {
            let o = put_map(am, &children, id.as_str())?;
            put_str(am, &o, "name", &name)?;
            if let Some(dob) = &new.date_of_birth {
                put_str(am, &o, "dob", dob)?;
            }
            put_str(am, &o, "key_worker", new.key_worker.as_str())?;
            if let Some(room) = &new.room {
                put_str(am, &o, "room", room.as_str())?;
            }
            put_str(am, &o, "consent", new.photo_consent.as_str())?;
            put_str(am, &o, "status", ChildStatus::Active.as_str())
        })?;
        Ok(id)
    }

    /// Records the parents' answer to the photo-consent question (it may be changed later;
    /// withdrawing hides this child's group photos from other parents from then on).
    ///
    /// # Errors
    /// [`RuleError::UnknownChild`] when absent.
    pub fn set_consent(
        &mut self,
        child: &ChildId,
        consent: Consent,
        at: Timestamp,
    ) -> Result<(), RuleError> {
        let o = self.child_obj(child)?;
        self.write(at, |am| put_str(am, &o, "consent", consent.as_str()))
    }

    /// Changes a child's key worker.
    ///
    /// # Errors
    /// [`RuleError`] for an unknown child or an unknown/inactive member of staff.
    pub fn set_key_worker(
        &mut self,
        child: &ChildId,
        staff: &StaffId,
        at: Timestamp,
    ) -> Result<(), RuleError> {
        match self.staff(staff) {
            Some(s) if s.active => {}
            Some(_) => return Err(RuleError::InactiveStaff),
            None => return Err(RuleError::UnknownStaff(staff.clone())),
        }
        let o = self.child_obj(child)?;
        self.write(at, |am| put_str(am, &o, "key_worker", staff.as_str()))
    }

    /// Marks a child as having left: no new entries; the journal awaits export and erasure.
    ///
    /// # Errors
    /// [`RuleError::UnknownChild`] when absent.
    pub fn mark_left(&mut self, child: &ChildId, at: Timestamp) -> Result<(), RuleError> {
        let o = self.child_obj(child)?;
        self.write(at, |am| {
            put_str(am, &o, "status", ChildStatus::Left.as_str())
        })
    }

    /// Moves a child to a room, or out of every room (`None`).
    ///
    /// # Errors
    /// [`RuleError`] for an unknown child or room.
    pub fn set_room(
        &mut self,
        child: &ChildId,
        room: Option<&RoomId>,
        at: Timestamp,
    ) -> Result<(), RuleError> {
        if let Some(room) = room
            && self.room(room).is_none()
        {
            return Err(RuleError::UnknownRoom(room.clone()));
        }
        let o = self.child_obj(child)?;
        self.write(at, |am| match room {
            Some(room) => put_str(am, &o, "room", room.as_str()),
            None => {
                if get_str(am, &o, "room").is_some() {
                    automerge::transaction::Transactable::delete(am, &o, "room")?;
                }
                Ok(())
            }
        })
    }

    /// Records a child's date of birth, `YYYY-MM-DD`.
    ///
    /// # Errors
    /// [`RuleError`] for an unknown child or a bad date.
    pub fn set_date_of_birth(
        &mut self,
        child: &ChildId,
        dob: &str,
        at: Timestamp,
    ) -> Result<(), RuleError> {
        check_date(dob)?;
        let o = self.child_obj(child)?;
        self.write(at, |am| put_str(am, &o, "dob", dob))
    }

    /// Records the day a child leaves, `YYYY-MM-DD`. It does not mark them left: that is
    /// [`Roster::mark_left`], on or after the day.
    ///
    /// # Errors
    /// [`RuleError`] for an unknown child or a bad date.
    pub fn set_leaving_date(
        &mut self,
        child: &ChildId,
        day: &str,
        at: Timestamp,
    ) -> Result<(), RuleError> {
        check_date(day)?;
        let o = self.child_obj(child)?;
        self.write(at, |am| put_str(am, &o, "leaving", day))
    }

    fn child_obj(&self, id: &ChildId) -> Result<ObjId, RuleError> {
        get_obj(&self.doc.am, &self.section("children"), id.as_str())
            .ok_or_else(|| RuleError::UnknownChild(id.clone()))
    }

    // ---- parents ------------------------------------------------------------------------------

    /// Adds a parent or relative (not yet linked to any child), by display name only: their
    /// e-mail address and other contact data are kept by the server, never in the roster.
    ///
    /// # Errors
    /// [`RuleError::InvalidName`] for a bad name.
    pub fn add_parent(&mut self, name: &str, at: Timestamp) -> Result<ParentId, RuleError> {
        let name = check_name(name)?;
        let id = ParentId::new_random();
        let parents = self.section_mut("parents")?;
        self.write(at, |am| {
            let o = put_map(am, &parents, id.as_str())?;
            put_str(am, &o, "name", &name)?;
            put_map(am, &o, "children")?;
            Ok(())
        })?;
        Ok(id)
    }

    /// Links a parent to a child's journal. The link takes effect only once the child's
    /// photo-consent question has been answered (policy: consent is asked before parents are
    /// linked): until then [`crate::rules::may_read_journal`] refuses the parent, and the
    /// portal asks the parent the question first.
    ///
    /// # Errors
    /// Unknown parent or child.
    pub fn link_parent(
        &mut self,
        parent: &ParentId,
        child: &ChildId,
        at: Timestamp,
    ) -> Result<(), RuleError> {
        if self.child(child).is_none() {
            return Err(RuleError::UnknownChild(child.clone()));
        }
        let p = get_obj(&self.doc.am, &self.section("parents"), parent.as_str())
            .ok_or_else(|| RuleError::UnknownParent(parent.clone()))?;
        self.write(at, |am| {
            let links = ensure_map(am, &p, "children")?;
            put_bool(am, &links, child.as_str(), true)
        })
    }

    /// Removes a parent's link to a child: from then on they see nothing of that journal.
    ///
    /// # Errors
    /// [`RuleError::UnknownParent`] when absent.
    pub fn unlink_parent(
        &mut self,
        parent: &ParentId,
        child: &ChildId,
        at: Timestamp,
    ) -> Result<(), RuleError> {
        let p = get_obj(&self.doc.am, &self.section("parents"), parent.as_str())
            .ok_or_else(|| RuleError::UnknownParent(parent.clone()))?;
        self.write(at, |am| {
            let links = ensure_map(am, &p, "children")?;
            if get_bool(am, &links, child.as_str()).is_some() {
                automerge::transaction::Transactable::delete(am, &links, child.as_str())?;
            }
            Ok(())
        })
    }

    // ---- reads --------------------------------------------------------------------------------

    /// A room by id.
    #[must_use]
    pub fn room(&self, id: &RoomId) -> Option<Room> {
        let d = &self.doc.am;
        let o = get_obj(d, &self.section("rooms"), id.as_str())?;
        Some(Room {
            id: id.clone(),
            name: get_str(d, &o, "name")?,
        })
    }

    /// Every room, by name.
    #[must_use]
    pub fn rooms(&self) -> Vec<Room> {
        let mut v: Vec<Room> = self
            .ids("rooms", RoomId::parse)
            .iter()
            .filter_map(|id| self.room(id))
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// A member of staff by id.
    #[must_use]
    pub fn staff(&self, id: &StaffId) -> Option<Staff> {
        let d = &self.doc.am;
        let o = get_obj(d, &self.section("staff"), id.as_str())?;
        Some(Staff {
            id: id.clone(),
            name: get_str(d, &o, "name")?,
            role: Role::parse(&get_str(d, &o, "role")?).ok()?,
            active: get_bool(d, &o, "active").unwrap_or(false),
            pin_hash: get_str(d, &o, "pin_hash"),
        })
    }

    /// Every member of staff, by name.
    #[must_use]
    pub fn all_staff(&self) -> Vec<Staff> {
        let mut v: Vec<Staff> = self
            .ids("staff", StaffId::parse)
            .iter()
            .filter_map(|id| self.staff(id))
            .collect();
        v.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
        v
    }

    /// A child by id.
    #[must_use]
    pub fn child(&self, id: &ChildId) -> Option<Child> {
        let d = &self.doc.am;
        let o = get_obj(d, &self.section("children"), id.as_str())?;
        Some(Child {
            id: id.clone(),
            name: get_str(d, &o, "name")?,
            date_of_birth: get_str(d, &o, "dob"),
            key_worker: StaffId::parse(&get_str(d, &o, "key_worker")?).ok()?,
            room: get_str(d, &o, "room").and_then(|r| RoomId::parse(&r).ok()),
            photo_consent: Consent::parse(&get_str(d, &o, "consent")?).ok()?,
            status: ChildStatus::parse(&get_str(d, &o, "status")?).ok()?,
            leaving: get_str(d, &o, "leaving"),
        })
    }

    /// Every child, by name.
    #[must_use]
    pub fn children(&self) -> Vec<Child> {
        let mut v: Vec<Child> = self
            .ids("children", ChildId::parse)
            .iter()
            .filter_map(|id| self.child(id))
            .collect();
        v.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
        v
    }

    /// A parent by id.
    #[must_use]
    pub fn parent(&self, id: &ParentId) -> Option<Parent> {
        let d = &self.doc.am;
        let o = get_obj(d, &self.section("parents"), id.as_str())?;
        let mut children: Vec<ChildId> = get_obj(d, &o, "children")
            .map(|l| {
                keys(d, &l)
                    .iter()
                    .filter(|k| get_bool(d, &l, k) == Some(true))
                    .filter_map(|k| ChildId::parse(k).ok())
                    .collect()
            })
            .unwrap_or_default();
        children.sort();
        Some(Parent {
            id: id.clone(),
            name: get_str(d, &o, "name")?,
            children,
        })
    }

    /// Every parent, by name.
    #[must_use]
    pub fn parents(&self) -> Vec<Parent> {
        let mut v: Vec<Parent> = self
            .ids("parents", ParentId::parse)
            .iter()
            .filter_map(|id| self.parent(id))
            .collect();
        v.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
        v
    }

    /// The parents linked to a child.
    #[must_use]
    pub fn parents_of(&self, child: &ChildId) -> Vec<Parent> {
        self.parents()
            .into_iter()
            .filter(|p| p.children.contains(child))
            .collect()
    }

    fn ids<T, E>(&self, section: &str, parse: fn(&str) -> Result<T, E>) -> Vec<T> {
        keys(&self.doc.am, &self.section(section))
            .iter()
            .filter_map(|k| parse(k).ok())
            .collect()
    }
}

fn doc_err(e: automerge::AutomergeError) -> RuleError {
    RuleError::Document(DocError::from(e))
}

fn check_name(name: &str) -> Result<String, RuleError> {
    let name = name.trim();
    if name.is_empty()
        || name.chars().count() > MAX_NAME_CHARS
        || name.chars().any(char::is_control)
    {
        return Err(RuleError::InvalidName);
    }
    Ok(name.to_string())
}

fn check_date(s: &str) -> Result<(), RuleError> {
    let bad = || RuleError::InvalidDate(s.chars().take(20).collect());
    let parts: Vec<&str> = s.split('-').collect();
    let [y, m, d] = parts.as_slice() else {
        return Err(bad());
    };
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return Err(bad());
    }
    let (Ok(y), Ok(m), Ok(d)) = (y.parse::<u32>(), m.parse::<u32>(), d.parse::<u32>()) else {
        return Err(bad());
    };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return Err(bad()),
    };
    if !(1900..=2200).contains(&y) || d == 0 || d > days {
        return Err(bad());
    }
    Ok(())
}

/// Writes a hydrated value under `key` of `obj` (a deep copy).
fn copy_value(
    am: &mut automerge::AutoCommit,
    obj: &ObjId,
    key: &str,
    v: &automerge::hydrate::Value,
) -> AmResult {
    use automerge::hydrate::Value as H;
    use automerge::transaction::Transactable;
    match v {
        H::Scalar(s) => am.put(obj, key, s.clone()),
        H::Text(t) => am.put(obj, key, String::from(t)),
        H::Map(m) => {
            let o = put_map(am, obj, key)?;
            for (k, inner) in m.iter() {
                copy_value(am, &o, k, &inner.value)?;
            }
            Ok(())
        }
        // The roster holds no lists.
        H::List(_) => Ok(()),
    }
}

/// Normalises an e-mail address (trimmed, lower-case) and checks it is plausible.
///
/// # Errors
/// [`RuleError::InvalidEmail`].
pub fn normalise_email(email: &str) -> Result<String, RuleError> {
    let email = email.trim().to_lowercase();
    if is_plausible_email(&email) {
        Ok(email)
    } else {
        Err(RuleError::InvalidEmail)
    }
}

fn is_plausible_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && s.len() <= 254
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_checked() {
        assert!(check_date("2021-02-28").is_ok());
        assert!(check_date("2020-02-29").is_ok());
        assert!(check_date("2021-02-29").is_err());
        assert!(check_date("2021-13-01").is_err());
        assert!(check_date("21-01-01").is_err());
        assert!(check_date("yesterday").is_err());
    }

    #[test]
    fn emails_are_checked() {
        assert!(is_plausible_email("a.parent@example.org"));
        assert!(!is_plausible_email("nobody"));
        assert!(!is_plausible_email("a@b"));
        assert!(!is_plausible_email("a b@example.org"));
    }
}

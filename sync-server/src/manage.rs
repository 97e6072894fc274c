//! What managers do to the roster, the staff, the parents' links, a tablet's off-site
//! permission and the audit log: the one admin API that both the console's HTTP handlers
//! (`http/portal/manage.rs`) and the `sprig-server` CLI call. Every change is a
//! server-authoritative write into the roster document and one audit event, by whoever `By`
//! says asked, from where.

use serde::Serialize;
use sprig_core::{
    ChildId, ChildStatus, Consent, ParentId, Role, RoomId, Roster, RuleError, StaffId, Timestamp,
};
use sprig_proto::DocId;

use crate::admin::{AdminError, audit_by, hash_pin, now_ms, rfc3339};
use crate::by::By;
use crate::docs::{AnyDoc, edit_roster, load_doc};
use crate::store::{AuditEvent, AuditQuery, ServerStore, StoreError};

/// The most audit events one query returns.
pub const MAX_AUDIT_ROWS: u32 = 5_000;

/// The roster as stored now.
///
/// # Errors
/// [`AdminError::Doc`].
pub fn roster(store: &dyn ServerStore) -> Result<Roster, AdminError> {
    match load_doc(store, &DocId::Roster)? {
        AnyDoc::Roster(r) => Ok(r),
        _ => unreachable!("load_doc returns the kind asked for"),
    }
}

fn child_id(id: &str) -> Result<ChildId, AdminError> {
    ChildId::parse(id.trim()).map_err(|_| AdminError::UnknownChild(id.to_owned()))
}

fn staff_id(id: &str) -> Result<StaffId, AdminError> {
    StaffId::parse(id.trim()).map_err(|_| AdminError::UnknownStaff(id.to_owned()))
}

fn parent_id(id: &str) -> Result<ParentId, AdminError> {
    ParentId::parse(id.trim()).map_err(|_| AdminError::UnknownParent(id.to_owned()))
}

/// An unknown id in a roster rule becomes the admin API's "no such …", which the console
/// answers 404 and the CLI prints with the list command to run.
fn unknown(e: AdminError) -> AdminError {
    match e {
        AdminError::Rule(RuleError::UnknownChild(c)) => AdminError::UnknownChild(c.to_string()),
        AdminError::Rule(RuleError::UnknownStaff(s)) => AdminError::UnknownStaff(s.to_string()),
        AdminError::Rule(RuleError::UnknownParent(p)) => AdminError::UnknownParent(p.to_string()),
        other => other,
    }
}

/// Today's date in UTC, `YYYY-MM-DD`, at `now` (ms).
fn day_of(now: i64) -> String {
    rfc3339(now).chars().take(10).collect()
}

// ---- rooms ----

/// A room, as `room list` prints it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct RoomRow {
    /// The room's id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// The children attending in it.
    pub children: usize,
}

/// Every room, by name.
///
/// # Errors
/// [`AdminError::Doc`].
pub fn room_list(store: &dyn ServerStore) -> Result<Vec<RoomRow>, AdminError> {
    let r = roster(store)?;
    let children = r.children();
    Ok(r.rooms()
        .into_iter()
        .map(|room| RoomRow {
            children: children
                .iter()
                .filter(|c| c.room.as_ref() == Some(&room.id) && c.status == ChildStatus::Active)
                .count(),
            id: room.id.to_string(),
            name: room.name,
        })
        .collect())
}

/// The room called `name` (trimmed), added when there is none.
fn room_named(r: &mut Roster, name: &str, at: Timestamp) -> Result<RoomId, RuleError> {
    match r.rooms().into_iter().find(|x| x.name == name.trim()) {
        Some(x) => Ok(x.id),
        None => r.add_room(name, at),
    }
}

// ---- children ----

/// A child, as `child list` prints it and the console shows them.
#[derive(Clone, Debug, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct ChildRow {
    /// The child's id.
    pub id: String,
    /// Their name.
    pub name: String,
    /// Their room's name, if they have one.
    pub room: Option<String>,
    /// Their key worker's staff id.
    pub key_worker: Option<String>,
    /// Their key worker's name.
    pub key_worker_name: Option<String>,
    /// `YYYY-MM-DD`, when known.
    pub date_of_birth: Option<String>,
    /// `yes`, `no` or `unanswered`: may their photo appear in other children's journals.
    pub photo_consent: String,
    /// `attending` or `left`.
    pub status: String,
    /// The day they leave or left, `YYYY-MM-DD`, when recorded.
    pub leaving: Option<String>,
    /// The ids of the parents and relatives linked to them.
    pub parents: Vec<String>,
}

fn consent_word(c: Consent) -> &'static str {
    match c {
        Consent::Yes => "yes",
        Consent::No => "no",
        Consent::NotAsked => "unanswered",
    }
}

fn child_row(r: &Roster, c: sprig_core::Child) -> ChildRow {
    let staff = r.staff(&c.key_worker);
    ChildRow {
        room: c.room.as_ref().and_then(|x| r.room(x)).map(|x| x.name),
        key_worker: Some(c.key_worker.to_string()),
        key_worker_name: staff.map(|s| s.name),
        date_of_birth: c.date_of_birth,
        photo_consent: consent_word(c.photo_consent).to_owned(),
        status: match c.status {
            ChildStatus::Active => "attending",
            ChildStatus::Left => "left",
        }
        .to_owned(),
        leaving: c.leaving,
        parents: r
            .parents_of(&c.id)
            .into_iter()
            .map(|p| p.id.to_string())
            .collect(),
        id: c.id.to_string(),
        name: c.name,
    }
}

/// Every child, by name, with their room, key worker, consent and parents.
///
/// # Errors
/// [`AdminError::Doc`].
pub fn child_list(store: &dyn ServerStore) -> Result<Vec<ChildRow>, AdminError> {
    let r = roster(store)?;
    Ok(r.children().into_iter().map(|c| child_row(&r, c)).collect())
}

/// What `child set` changes; `None` keeps the value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChildChange {
    /// A new key worker (an active member of staff's id).
    pub key_worker: Option<String>,
    /// A new room, by name (added when there is none of that name); empty takes them out of
    /// every room.
    pub room: Option<String>,
    /// The photo-consent answer as recorded on paper.
    pub photo_consent: Option<Consent>,
    /// The day they leave, `YYYY-MM-DD`: from that day they are marked left (at once when
    /// it is today or past).
    pub leaving: Option<String>,
    /// Their date of birth, `YYYY-MM-DD`.
    pub date_of_birth: Option<String>,
}

impl ChildChange {
    fn detail(&self) -> String {
        let mut d = Vec::new();
        if let Some(k) = &self.key_worker {
            d.push(format!("key_worker={}", k.trim()));
        }
        if let Some(r) = &self.room {
            d.push(format!("room={}", r.trim()));
        }
        if let Some(c) = self.photo_consent {
            d.push(format!("photo_consent={}", consent_word(c)));
        }
        if let Some(l) = &self.leaving {
            d.push(format!("leaving={l}"));
        }
        if self.date_of_birth.is_some() {
            d.push("date_of_birth=changed".into());
        }
        d.join(" ")
    }
}

/// Changes a child's key worker, room, photo consent, leaving date or date of birth, all or
/// nothing, and returns them as they are now.
///
/// # Errors
/// [`AdminError::UnknownChild`], [`AdminError::UnknownStaff`], [`AdminError::InvalidInput`]
/// for nothing to change, [`AdminError::Rule`] for a bad date or an inactive key worker.
pub fn child_set(
    store: &dyn ServerStore,
    id: &str,
    change: &ChildChange,
    by: &By,
) -> Result<ChildRow, AdminError> {
    if change == &ChildChange::default() {
        return Err(AdminError::InvalidInput(
            "nothing to change: give a key worker, room, photo consent, leaving date or date of birth".into(),
        ));
    }
    let child = child_id(id)?;
    let key_worker = change.key_worker.as_deref().map(staff_id).transpose()?;
    let now = now_ms();
    let at = Timestamp(now);
    let today = day_of(now);
    edit_roster(store, |r| -> Result<(), AdminError> {
        if r.child(&child).is_none() {
            return Err(AdminError::UnknownChild(child.to_string()));
        }
        if let Some(k) = &key_worker {
            r.set_key_worker(&child, k, at)?;
        }
        if let Some(room) = &change.room {
            let room = if room.trim().is_empty() {
                None
            } else {
                Some(room_named(r, room, at)?)
            };
            r.set_room(&child, room.as_ref(), at)?;
        }
        if let Some(c) = change.photo_consent {
            r.set_consent(&child, c, at)?;
        }
        if let Some(dob) = &change.date_of_birth {
            r.set_date_of_birth(&child, dob.trim(), at)?;
        }
        if let Some(day) = &change.leaving {
            r.set_leaving_date(&child, day.trim(), at)?;
            if day.trim() <= today.as_str() {
                r.mark_left(&child, at)?;
            }
        }
        Ok(())
    })
    .map_err(unknown)?;
    audit_by(
        store,
        by,
        None,
        "child_set",
        format!("child={child} {}", change.detail()),
    )?;
    let r = roster(store)?;
    let c = r
        .child(&child)
        .ok_or_else(|| AdminError::UnknownChild(child.to_string()))?;
    Ok(child_row(&r, c))
}

/// Marks left every attending child whose leaving day has come, as of `now` (ms); returns
/// how many. The server runs it periodically, so a leaving date set ahead takes effect on
/// its day.
///
/// # Errors
/// [`AdminError::Doc`].
pub fn mark_leavers(store: &dyn ServerStore, now: i64) -> Result<usize, AdminError> {
    let today = day_of(now);
    let due: Vec<ChildId> = roster(store)?
        .children()
        .into_iter()
        .filter(|c| c.status == ChildStatus::Active)
        .filter(|c| c.leaving.as_deref().is_some_and(|d| d <= today.as_str()))
        .map(|c| c.id)
        .collect();
    if due.is_empty() {
        return Ok(0);
    }
    edit_roster(store, |r| -> Result<(), AdminError> {
        for c in &due {
            r.mark_left(c, Timestamp(now))?;
        }
        Ok(())
    })?;
    for c in &due {
        audit_by(
            store,
            &By::server(),
            None,
            "child_left",
            format!("child={c} leaving={today}"),
        )?;
    }
    Ok(due.len())
}

// ---- staff ----

/// A member of staff, as `staff list` prints them.
#[derive(Clone, Debug, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct StaffRow {
    /// Their id.
    pub id: String,
    /// Their name.
    pub name: String,
    /// `manager` or `practitioner`.
    pub role: String,
    /// Whether they may still unlock tablets (and, for a manager, sign in to the console).
    pub active: bool,
    /// The address a manager signs in to the console with, when they have one.
    pub email: Option<String>,
    /// Whether they have a tablet PIN.
    pub has_pin: bool,
}

/// Every member of staff, by name.
///
/// # Errors
/// [`AdminError::Doc`], [`AdminError::Store`].
pub fn staff_list(store: &dyn ServerStore) -> Result<Vec<StaffRow>, AdminError> {
    roster(store)?
        .all_staff()
        .into_iter()
        .map(|s| {
            Ok(StaffRow {
                email: store.staff_email(s.id.as_str())?,
                id: s.id.to_string(),
                name: s.name,
                role: s.role.as_str().to_owned(),
                active: s.active,
                has_pin: s.pin_hash.is_some(),
            })
        })
        .collect()
}

/// What `staff set` changes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StaffChange {
    /// A new role.
    pub role: Option<Role>,
    /// Deactivate them: their PIN stops working on every tablet at its next sync, and a
    /// manager's console sessions end.
    pub deactivate: bool,
    /// A new tablet PIN (4 to 8 digits).
    pub pin: Option<String>,
}

/// Changes a member of staff's role, deactivates them, or resets their PIN, all or nothing.
/// The setting always keeps one active manager.
///
/// # Errors
/// [`AdminError::UnknownStaff`], [`AdminError::LastManager`], [`AdminError::InvalidPin`],
/// [`AdminError::InvalidInput`] for nothing to change.
pub fn staff_set(
    store: &dyn ServerStore,
    id: &str,
    change: &StaffChange,
    by: &By,
) -> Result<StaffRow, AdminError> {
    if change == &StaffChange::default() {
        return Err(AdminError::InvalidInput(
            "nothing to change: give a role, --deactivate or a new PIN".into(),
        ));
    }
    let staff = staff_id(id)?;
    let pin_hash = change.pin.as_deref().map(hash_pin).transpose()?;
    let at = Timestamp(now_ms());
    edit_roster(store, |r| -> Result<(), AdminError> {
        let Some(s) = r.staff(&staff) else {
            return Err(AdminError::UnknownStaff(staff.to_string()));
        };
        let stops_managing = s.active
            && s.role == Role::Manager
            && (change.deactivate || change.role == Some(Role::Practitioner));
        if stops_managing {
            let managers = r
                .all_staff()
                .into_iter()
                .filter(|m| m.active && m.role == Role::Manager)
                .count();
            if managers <= 1 {
                return Err(AdminError::LastManager);
            }
        }
        if let Some(role) = change.role {
            r.set_role(&staff, role, at)?;
        }
        if let Some(h) = &pin_hash {
            r.set_pin_hash(&staff, h, at)?;
        }
        if change.deactivate {
            r.deactivate_staff(&staff, at)?;
        }
        Ok(())
    })
    .map_err(unknown)?;
    let mut detail = format!("staff={staff}");
    if let Some(role) = change.role {
        detail.push_str(&format!(" role={role}"));
    }
    if change.deactivate {
        detail.push_str(" deactivate=true");
    }
    if change.pin.is_some() {
        detail.push_str(" pin=reset");
    }
    audit_by(store, by, None, "staff_set", detail)?;
    staff_list(store)?
        .into_iter()
        .find(|s| s.id == staff.as_str())
        .ok_or_else(|| AdminError::UnknownStaff(staff.to_string()))
}

// ---- parents ----

/// A parent or relative, as `parent list` prints them.
#[derive(Clone, Debug, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct ParentRow {
    /// Their id.
    pub id: String,
    /// Their name.
    pub name: String,
    /// The address they sign in with.
    pub email: Option<String>,
    /// The ids of the children they are linked to.
    pub children: Vec<String>,
    /// Invited and not yet signed up: they have no password yet.
    pub invited: bool,
    /// Whether they have set a password.
    pub has_password: bool,
}

/// Every parent and relative, by name.
///
/// # Errors
/// [`AdminError::Doc`], [`AdminError::Store`].
pub fn parent_list(store: &dyn ServerStore) -> Result<Vec<ParentRow>, AdminError> {
    roster(store)?
        .parents()
        .into_iter()
        .map(|p| {
            let has_password = store.password(&format!("parent:{}", p.id))?.is_some();
            Ok(ParentRow {
                email: store.parent_email(p.id.as_str())?,
                children: p.children.iter().map(ToString::to_string).collect(),
                invited: !has_password,
                has_password,
                id: p.id.to_string(),
                name: p.name,
            })
        })
        .collect()
}

/// Links a parent or relative to a child's journal (a second parent, a grandparent). The link
/// takes effect once the child's photo-consent question is answered.
///
/// # Errors
/// [`AdminError::UnknownParent`], [`AdminError::UnknownChild`].
pub fn parent_link(
    store: &dyn ServerStore,
    parent: &str,
    child: &str,
    by: &By,
) -> Result<ParentRow, AdminError> {
    let (parent, child) = (parent_id(parent)?, child_id(child)?);
    let at = Timestamp(now_ms());
    edit_roster(store, |r| -> Result<(), AdminError> {
        if r.parent(&parent).is_none() {
            return Err(AdminError::UnknownParent(parent.to_string()));
        }
        Ok(r.link_parent(&parent, &child, at)?)
    })
    .map_err(unknown)?;
    audit_by(
        store,
        by,
        None,
        "parent_link",
        format!("parent={parent} child={child}"),
    )?;
    parent_row(store, &parent)
}

/// Removes a parent's link to a child: from their next request they see nothing of that
/// journal.
///
/// # Errors
/// [`AdminError::UnknownParent`], [`AdminError::UnknownChild`], and
/// [`AdminError::InvalidInput`] when they are not linked.
pub fn parent_unlink(
    store: &dyn ServerStore,
    parent: &str,
    child: &str,
    by: &By,
) -> Result<ParentRow, AdminError> {
    let (parent, child) = (parent_id(parent)?, child_id(child)?);
    let at = Timestamp(now_ms());
    edit_roster(store, |r| -> Result<(), AdminError> {
        let Some(p) = r.parent(&parent) else {
            return Err(AdminError::UnknownParent(parent.to_string()));
        };
        if r.child(&child).is_none() {
            return Err(AdminError::UnknownChild(child.to_string()));
        }
        if !p.children.contains(&child) {
            return Err(AdminError::InvalidInput(format!(
                "parent {parent} is not linked to child {child}; see `sprig-server parent list`"
            )));
        }
        Ok(r.unlink_parent(&parent, &child, at)?)
    })
    .map_err(unknown)?;
    audit_by(
        store,
        by,
        None,
        "parent_unlink",
        format!("parent={parent} child={child}"),
    )?;
    parent_row(store, &parent)
}

fn parent_row(store: &dyn ServerStore, id: &ParentId) -> Result<ParentRow, AdminError> {
    parent_list(store)?
        .into_iter()
        .find(|p| p.id == id.as_str())
        .ok_or_else(|| AdminError::UnknownParent(id.to_string()))
}

/// The parent `id` if they exist and have not set a password yet: whom a new invitation link
/// may be sent to.
///
/// # Errors
/// [`AdminError::UnknownParent`]; [`AdminError::InvalidInput`] when they already have a
/// password.
pub fn invitable_parent(store: &dyn ServerStore, id: &str) -> Result<ParentRow, AdminError> {
    let p = parent_row(store, &parent_id(id)?)?;
    if p.has_password {
        return Err(AdminError::InvalidInput(format!(
            "{} has already set a password; they sign in with it (or ask for a reset)",
            p.name
        )));
    }
    Ok(p)
}

// ---- devices ----

/// What `device permit-offsite` did.
#[derive(Clone, Debug, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct OffsiteOutput {
    /// The device.
    pub id: String,
    /// Until when it may sync from outside the allowed networks (RFC 3339).
    pub until: String,
}

/// Lets device `id` sync from outside the setting's allowed networks until `until` (ms, in
/// the future, at most 31 days ahead). The permission and its end are in the audit log.
///
/// # Errors
/// [`AdminError::UnknownDevice`], [`AdminError::InvalidInput`] for a time past or too far.
pub fn device_permit_offsite(
    store: &dyn ServerStore,
    id: &str,
    until: i64,
    by: &By,
) -> Result<OffsiteOutput, AdminError> {
    const MAX_AHEAD_MS: i64 = 31 * 24 * 3_600_000;
    if store.device(id)?.is_none() {
        return Err(AdminError::UnknownDevice(id.to_owned()));
    }
    let now = now_ms();
    if until <= now {
        return Err(AdminError::InvalidInput(
            "the off-site permission must end in the future".into(),
        ));
    }
    if until - now > MAX_AHEAD_MS {
        return Err(AdminError::InvalidInput(
            "an off-site permission lasts at most 31 days; give an earlier end".into(),
        ));
    }
    store
        .set_device_offsite(id, Some(until))
        .map_err(|e| match e {
            StoreError::NotFound(_) => AdminError::UnknownDevice(id.to_owned()),
            other => other.into(),
        })?;
    let out = OffsiteOutput {
        id: id.to_owned(),
        until: rfc3339(until),
    };
    audit_by(
        store,
        by,
        Some(id),
        "device_permit_offsite",
        format!("until={}", out.until),
    )?;
    Ok(out)
}

/// A custody record a manager keeps of a tablet: taken out of the locked cupboard, or put back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Custody {
    /// Taken out of the cupboard (by whom goes in the note).
    CheckedOut,
    /// Returned to the cupboard.
    Returned,
}

impl Custody {
    /// The audit action.
    #[must_use]
    pub fn action(self) -> &'static str {
        match self {
            Custody::CheckedOut => "custody_checked_out",
            Custody::Returned => "custody_returned",
        }
    }
}

/// What `device custody` recorded.
#[derive(Clone, Debug, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct CustodyOutput {
    /// The device.
    pub id: String,
    /// `custody_checked_out` or `custody_returned`, as the audit log has it.
    pub action: String,
    /// When (RFC 3339).
    pub at: String,
}

/// The longest custody note, in characters.
pub const MAX_NOTE_CHARS: usize = 200;

/// Records that tablet `id` was checked out of the cupboard or returned to it, with an
/// optional note (who took it, where to), in the audit log, where its custody log reads it.
///
/// # Errors
/// [`AdminError::UnknownDevice`], [`AdminError::InvalidInput`] for a note too long or with
/// control characters.
pub fn device_custody(
    store: &dyn ServerStore,
    id: &str,
    event: Custody,
    note: Option<&str>,
    by: &By,
) -> Result<CustodyOutput, AdminError> {
    let note = note.map(str::trim).filter(|n| !n.is_empty());
    if let Some(n) = note
        && (n.chars().count() > MAX_NOTE_CHARS || n.chars().any(char::is_control))
    {
        return Err(AdminError::InvalidInput(format!(
            "A custody note is one line of at most {MAX_NOTE_CHARS} characters."
        )));
    }
    if store.device(id)?.is_none() {
        return Err(AdminError::UnknownDevice(id.to_owned()));
    }
    let at = now_ms();
    audit_by(
        store,
        by,
        Some(id),
        event.action(),
        note.map(|n| format!("note={n}")).unwrap_or_default(),
    )?;
    Ok(CustodyOutput {
        id: id.to_owned(),
        action: event.action().to_owned(),
        at: rfc3339(at),
    })
}

/// Parses an RFC 3339 time (`2026-12-24T18:00:00Z`, or with an offset) into ms.
///
/// # Errors
/// [`AdminError::InvalidInput`] naming `what`.
pub fn parse_time(what: &str, s: &str) -> Result<i64, AdminError> {
    time::OffsetDateTime::parse(s.trim(), &time::format_description::well_known::Rfc3339)
        .ok()
        .and_then(|t| i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok())
        .ok_or_else(|| {
            AdminError::InvalidInput(format!(
                "{what}: '{}' is not a time; use RFC 3339, like 2026-12-24T18:00:00Z",
                s.chars().take(40).collect::<String>()
            ))
        })
}

// ---- the setting's policy ----

/// The agreement shipped with the server, from the setting's policy; a manager can replace it
/// (meta keys `portal.agreement_version` and `portal.agreement_text`).
pub const DEFAULT_AGREEMENT: &str = include_str!("http/portal/agreement.txt");
/// The version of [`DEFAULT_AGREEMENT`].
pub const DEFAULT_AGREEMENT_VERSION: &str = "2026-12-01";
/// The longest agreement text, in characters.
pub const MAX_AGREEMENT_CHARS: usize = 20_000;

/// The parents' agreement in force: `(version, text)`.
///
/// # Errors
/// [`StoreError`].
pub fn agreement(store: &dyn ServerStore) -> Result<(String, String), StoreError> {
    let version = store.meta("portal.agreement_version")?;
    let text = store.meta("portal.agreement_text")?;
    Ok(match (version, text) {
        (Some(version), Some(text)) => (version, text),
        _ => (DEFAULT_AGREEMENT_VERSION.into(), DEFAULT_AGREEMENT.into()),
    })
}

/// Everything a manager sets for the setting: the tablets' lease, wrong-PIN limit and
/// inactivity lock, the networks device sync is allowed from, when a child counts as not
/// observed, and the parents' agreement.
#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct SettingPolicy {
    /// A tablet that has not synced for this long refuses to unlock (seconds).
    pub lock_after_secs: u64,
    /// A tablet that has not synced for this long wipes itself (seconds).
    pub wipe_after_secs: u64,
    /// Wrong PINs in a row before a tablet locks until it syncs.
    pub max_pin_failures: u32,
    /// A tablet locks after this much inactivity (seconds).
    pub inactivity_lock_secs: u64,
    /// Networks device sync is allowed from (`192.168.1.0/24`); empty allows any.
    pub allow_networks: Vec<String>,
    /// A child with no observation for this many days is marked.
    pub not_observed_days: u32,
    /// Staff observations published from now on wait for a manager's review before parents
    /// see them (those already published stay in the journal).
    pub review_gate: bool,
    /// The parents' agreement, shown at first sign-in and whenever its version changes.
    pub agreement_text: String,
    /// Its version: a new version asks every parent to agree again.
    pub agreement_version: String,
}

/// The setting's policy now.
///
/// # Errors
/// [`AdminError`].
pub fn setting_policy(store: &dyn ServerStore) -> Result<SettingPolicy, AdminError> {
    let device = crate::policy::Policy::load(store)?;
    let AnyDoc::Setting(doc) = load_doc(store, &DocId::Setting)? else {
        unreachable!("load_doc returns the kind asked for")
    };
    let p = doc.policies();
    let (agreement_version, agreement_text) = agreement(store)?;
    Ok(SettingPolicy {
        lock_after_secs: device.lock_after_secs,
        wipe_after_secs: device.wipe_after_secs,
        max_pin_failures: device.max_pin_failures,
        inactivity_lock_secs: p.inactivity_lock_secs,
        allow_networks: device
            .allow_networks
            .iter()
            .map(ToString::to_string)
            .collect(),
        not_observed_days: p.not_observed_days,
        review_gate: review_gate(store)?.is_some(),
        agreement_text,
        agreement_version,
    })
}

/// Sets the whole policy, checked first: the device policy (which signs every lease), the
/// setting document the tablets read (inactivity lock, not-observed days), and the agreement.
/// Each part that changed is audited.
///
/// # Errors
/// [`AdminError::Policy`] and [`AdminError::InvalidInput`] for values that do not fit.
pub fn set_setting_policy(
    store: &dyn ServerStore,
    new: &SettingPolicy,
    by: &By,
) -> Result<SettingPolicy, AdminError> {
    use crate::policy::{Cidr, Policy, PolicyChange};
    if !(10..=86_400).contains(&new.inactivity_lock_secs) {
        return Err(AdminError::InvalidInput(
            "The inactivity lock must be from 10 seconds to a day.".into(),
        ));
    }
    if !(1..=365).contains(&new.not_observed_days) {
        return Err(AdminError::InvalidInput(
            "Not observed must be from 1 to 365 days.".into(),
        ));
    }
    let text = new.agreement_text.trim();
    let version = new.agreement_version.trim();
    if text.is_empty() || text.chars().count() > MAX_AGREEMENT_CHARS {
        return Err(AdminError::InvalidInput(format!(
            "The agreement must have 1 to {MAX_AGREEMENT_CHARS} characters."
        )));
    }
    if version.is_empty() || version.chars().count() > 40 || version.chars().any(char::is_control) {
        return Err(AdminError::InvalidInput(
            "Give the agreement a version of 1 to 40 characters, like 2026-12-01.".into(),
        ));
    }
    let networks = new
        .allow_networks
        .iter()
        .map(|n| n.trim())
        .filter(|n| !n.is_empty())
        .map(str::parse::<Cidr>)
        .collect::<Result<Vec<_>, _>>()?;
    let old = setting_policy(store)?;
    let change = PolicyChange {
        lock_after: Some(std::time::Duration::from_secs(new.lock_after_secs)),
        wipe_after: Some(std::time::Duration::from_secs(new.wipe_after_secs)),
        max_pin_failures: Some(new.max_pin_failures),
        allow_networks: Some(networks),
    };
    let device = Policy::load(store)?.with(&change)?;
    let agreement_changed =
        (old.agreement_version.trim(), old.agreement_text.trim()) != (version, text);
    if agreement_changed && old.agreement_version == version {
        return Err(AdminError::InvalidInput(
            "The agreement's text changed: give it a new version, so parents are asked to agree again.".into(),
        ));
    }
    // Everything is checked; now written.
    crate::admin::policy_set_by(store, &change, by)?;
    if (old.inactivity_lock_secs, old.not_observed_days)
        != (new.inactivity_lock_secs, new.not_observed_days)
        || (
            old.lock_after_secs,
            old.wipe_after_secs,
            old.max_pin_failures,
        ) != (
            device.lock_after_secs,
            device.wipe_after_secs,
            device.max_pin_failures,
        )
    {
        crate::docs::edit_setting(store, |doc| -> Result<(), AdminError> {
            let mut p = doc.policies();
            p.lock_after_secs = device.lock_after_secs;
            p.wipe_after_secs = device.wipe_after_secs;
            p.max_pin_failures = device.max_pin_failures;
            p.inactivity_lock_secs = new.inactivity_lock_secs;
            p.not_observed_days = new.not_observed_days;
            let name = doc.name();
            Ok(doc.set(&name, &p, Timestamp(now_ms()))?)
        })?;
        audit_by(
            store,
            by,
            None,
            "setting_policy_set",
            format!(
                "inactivity_lock_secs={} not_observed_days={}",
                new.inactivity_lock_secs, new.not_observed_days
            ),
        )?;
    }
    if old.review_gate != new.review_gate {
        if new.review_gate {
            store.set_meta(GATE_SINCE, &now_ms().to_string())?;
        }
        store.set_meta(GATE, if new.review_gate { "on" } else { "off" })?;
        audit_by(
            store,
            by,
            None,
            "review_gate_set",
            format!("on={}", new.review_gate),
        )?;
    }
    if agreement_changed {
        store.set_meta("portal.agreement_text", text)?;
        store.set_meta("portal.agreement_version", version)?;
        audit_by(
            store,
            by,
            None,
            "agreement_set",
            format!("version={version} chars={}", text.chars().count()),
        )?;
    }
    setting_policy(store)
}

// ---- the review gate ----

const GATE: &str = "console.review_gate";
const GATE_SINCE: &str = "console.review_gate_since";

/// When the review gate was turned on (ms), or `None` while it is off: staff observations
/// recorded since then reach parents only once a manager has reviewed them.
///
/// # Errors
/// [`StoreError`].
pub fn review_gate(store: &dyn ServerStore) -> Result<Option<i64>, StoreError> {
    if store.meta(GATE)?.as_deref() != Some("on") {
        return Ok(None);
    }
    Ok(Some(
        store
            .meta(GATE_SINCE)?
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
    ))
}

/// Whether the gate holds back entry `e` from parents: a published staff observation recorded
/// since the gate was turned on (`since`), not yet reviewed (`reviewed`).
#[must_use]
pub fn held_back(kind: sprig_core::EntryKind, created_at: i64, since: i64, reviewed: bool) -> bool {
    kind == sprig_core::EntryKind::Observation && created_at >= since && !reviewed
}

/// A staff observation waiting for a manager's review.
#[derive(Clone, Debug, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct AwaitingReview {
    /// The entry (one id for a group observation's copies).
    pub entry_id: String,
    /// The children it is about, by name.
    pub children: Vec<String>,
    /// Who recorded it.
    pub author: String,
    /// When it was recorded (RFC 3339).
    pub created_at: String,
    /// Its text.
    pub text: String,
    /// Its next steps.
    pub next_steps: String,
    /// Its areas of learning.
    pub areas: Vec<String>,
    /// Its photos and videos, viewable at `/api/v1/admin/media/{id}`.
    pub media: Vec<ReviewMedia>,
}

/// A photo or video of an observation waiting for review.
#[derive(Clone, Debug, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct ReviewMedia {
    /// Its SHA-256, hex.
    pub id: String,
    /// `photo` or `video`.
    pub kind: String,
    /// Its type.
    pub mime: String,
}

/// The staff observations held back by the review gate, oldest first, with the children each
/// is about; empty while the gate is off.
///
/// # Errors
/// [`AdminError::Doc`], [`AdminError::Store`].
pub fn awaiting_review(
    store: &dyn ServerStore,
    reads: &crate::docs::ReadCache,
    roster: &Roster,
) -> Result<Vec<(Vec<ChildId>, AwaitingReview)>, AdminError> {
    let Some(since) = review_gate(store)? else {
        return Ok(Vec::new());
    };
    let mut found: std::collections::BTreeMap<String, (i64, Vec<ChildId>, AwaitingReview)> =
        std::collections::BTreeMap::new();
    for c in roster.children() {
        for e in reads.entries(store, &c.id)?.iter() {
            if e.status != sprig_core::EntryStatus::Published
                || !held_back(e.kind, e.created_at.0, since, false)
            {
                continue;
            }
            let row = found.entry(e.id.to_string()).or_insert_with(|| {
                (
                    e.created_at.0,
                    Vec::new(),
                    AwaitingReview {
                        entry_id: e.id.to_string(),
                        children: Vec::new(),
                        author: crate::monitoring::author_name(roster, &e.author),
                        created_at: rfc3339(e.created_at.0),
                        text: e.text.clone(),
                        next_steps: e.next_steps.clone(),
                        areas: e.areas.iter().map(|a| a.as_str().to_owned()).collect(),
                        media: e
                            .media
                            .iter()
                            .map(|m| ReviewMedia {
                                id: m.sha256.to_hex(),
                                kind: m.kind.as_str().to_owned(),
                                mime: m.mime.clone(),
                            })
                            .collect(),
                    },
                )
            });
            row.1.push(c.id.clone());
            row.2.children.push(c.name.clone());
        }
    }
    let ids: Vec<String> = found.keys().cloned().collect();
    let reviewed: std::collections::HashSet<String> =
        store.reviewed_among(&ids)?.into_iter().collect();
    let mut out: Vec<(i64, Vec<ChildId>, AwaitingReview)> = found
        .into_iter()
        .filter(|(id, _)| !reviewed.contains(id))
        .map(|(_, v)| v)
        .collect();
    out.sort_by(|(a, _, x), (b, _, y)| (a, &x.entry_id).cmp(&(b, &y.entry_id)));
    Ok(out.into_iter().map(|(_, c, r)| (c, r)).collect())
}

/// Puts staff observation `entry` in the journal for parents: reviewed by `by`. Returns the
/// children whose journals it is in, whose parents' pages are told.
///
/// # Errors
/// [`AdminError::InvalidInput`] when it is not waiting for review (gate off, unknown, a
/// draft, already reviewed).
pub fn review_entry(
    store: &dyn ServerStore,
    reads: &crate::docs::ReadCache,
    roster: &Roster,
    entry: &str,
    by: &By,
) -> Result<Vec<ChildId>, AdminError> {
    let Some((children, _)) = awaiting_review(store, reads, roster)?
        .into_iter()
        .find(|(_, r)| r.entry_id == entry)
    else {
        return Err(AdminError::NotAwaitingReview(entry.to_owned()));
    };
    store.review_entry(entry, now_ms(), &by.actor)?;
    audit_by(
        store,
        by,
        None,
        "entry_review",
        format!(
            "entry={entry} {}",
            children
                .iter()
                .map(|c| format!("child={c}"))
                .collect::<Vec<_>>()
                .join(" ")
        ),
    )?;
    Ok(children)
}

// ---- the audit log ----

/// One event of the audit log, as `audit list` prints it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct AuditRow {
    /// When (RFC 3339).
    pub at: String,
    /// Who: `admin` (the CLI), `staff:<id>`, `device:<id>`, `parent:<id>`, `server`.
    pub actor: String,
    /// Where a manager asked from (address and browser), when it was the console.
    pub client: Option<String>,
    /// The device concerned.
    pub device: Option<String>,
    /// What, as a snake_case verb.
    pub action: String,
    /// Ids, counts and outcomes.
    pub detail: String,
}

impl From<AuditEvent> for AuditRow {
    fn from(e: AuditEvent) -> AuditRow {
        AuditRow {
            at: rfc3339(e.at),
            actor: e.actor,
            client: e.client,
            device: e.device,
            action: e.action,
            detail: e.detail,
        }
    }
}

/// The audit events `query` matches, newest first (at most [`MAX_AUDIT_ROWS`]).
///
/// # Errors
/// [`AdminError::Store`].
pub fn audit_list(
    store: &dyn ServerStore,
    query: &AuditQuery,
) -> Result<Vec<AuditRow>, AdminError> {
    let q = AuditQuery {
        limit: query.limit.clamp(1, MAX_AUDIT_ROWS),
        ..query.clone()
    };
    Ok(store
        .audit_query(&q)?
        .into_iter()
        .map(AuditRow::from)
        .collect())
}

/// `rows` as CSV (RFC 4180, a header line first). A field that a spreadsheet would read as a
/// formula is prefixed with `'`.
#[must_use]
pub fn audit_csv(rows: &[AuditRow]) -> String {
    let field = |s: &str| {
        let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
            format!("'{s}")
        } else {
            s.to_owned()
        };
        if s.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s
        }
    };
    let mut out = String::from("at,actor,client,device,action,detail\r\n");
    for r in rows {
        let line = [
            r.at.as_str(),
            &r.actor,
            r.client.as_deref().unwrap_or(""),
            r.device.as_deref().unwrap_or(""),
            &r.action,
            &r.detail,
        ]
        .map(field)
        .join(",");
        out.push_str(&line);
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        let row = AuditRow {
            at: "2026-12-02T10:00:00Z".into(),
            actor: "staff:s1".into(),
            client: Some("127.0.0.1 Mozilla/5.0 (X11, Linux)".into()),
            device: None,
            action: "child_set".into(),
            detail: "=HYPERLINK(\"x\")".into(),
        };
        let csv = audit_csv(&[row]);
        let mut lines = csv.split("\r\n");
        assert_eq!(lines.next(), Some("at,actor,client,device,action,detail"));
        assert_eq!(
            lines.next(),
            Some(
                "2026-12-02T10:00:00Z,staff:s1,\"127.0.0.1 Mozilla/5.0 (X11, Linux)\",,child_set,\"'=HYPERLINK(\"\"x\"\")\""
            )
        );
    }

    #[test]
    fn times_are_rfc3339() {
        assert_eq!(
            parse_time("--until", "1970-01-01T00:00:01Z").unwrap(),
            1_000
        );
        let e = parse_time("--until", "tomorrow").unwrap_err();
        assert!(e.to_string().contains("RFC 3339"), "{e}");
    }
}

//! What the tablet's screens read: the staff tiles of the lock screen, the children list of
//! home (key children first, last observation, "not observed for N days"), pending parent
//! contributions, a manager's coverage, an entry's revisions, and media bytes (from the vault,
//! or streamed from the server into memory once purged).

use std::collections::BTreeMap;
use std::io::Read;

use sprig_core::{
    Actor, Area, Child, ChildId, ChildStatus, Consent, EntryId, EntryRevision, EntryStatus, Role,
    Sha256, StaffId, Timestamp,
};

use crate::device::{Device, JournalItem, Unlocked};
use crate::error::{DeviceError, Result};

/// One tile of the lock screen: who may unlock this tablet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffTile {
    /// The member of staff.
    pub id: StaffId,
    /// Their name.
    pub name: String,
    /// Up to two initials.
    pub initials: String,
    /// Practitioner or manager.
    pub role: Role,
}

/// One child on the home screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildSummary {
    /// The child as the roster holds them.
    pub child: Child,
    /// Their room's name.
    pub room: Option<String>,
    /// Their key worker's name.
    pub key_worker: Option<String>,
    /// The unlocked member of staff is their key worker.
    pub is_key_child: bool,
    /// The newest staff observation about them, on this tablet.
    pub last_observed_at: Option<Timestamp>,
    /// No observation within the setting's `not_observed_days`.
    pub not_observed: bool,
    /// Parent contributions awaiting review in their journal.
    pub pending: u64,
}

/// A count for one member of staff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffCount {
    /// The member of staff.
    pub staff: StaffId,
    /// Their name.
    pub name: String,
    /// Observations they recorded in the period.
    pub observations: u64,
    /// Children whose key worker they are.
    pub key_children: u64,
}

/// A count for one child.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildCoverage {
    /// The child.
    pub child: ChildId,
    /// Their name.
    pub name: String,
    /// Their key worker's id.
    pub key_worker: StaffId,
    /// Observations in the period.
    pub observations: u64,
    /// The newest observation ever.
    pub last_observed_at: Option<Timestamp>,
}

/// The manager's coverage over the last `days` days.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coverage {
    /// The period, in days.
    pub days: u32,
    /// Its start.
    pub since: Timestamp,
    /// Per attending child, fewest observations first.
    pub per_child: Vec<ChildCoverage>,
    /// Per active member of staff.
    pub per_key_worker: Vec<StaffCount>,
    /// Per area of learning, all seven in order.
    pub per_area: Vec<(Area, u64)>,
    /// Attending children with no observation within the period, longest unobserved first.
    pub not_observed: Vec<ChildCoverage>,
    /// Photos and videos on this tablet not yet acknowledged by the server.
    pub pending_uploads: u64,
    /// Documents changed here that the server has not yet acknowledged.
    pub unsynced_docs: u64,
}

const DAY_MS: i64 = 86_400_000;

/// Up to two initials of a name: first letters of the first and last words.
#[must_use]
pub fn initials(name: &str) -> String {
    let words: Vec<&str> = name.split_whitespace().collect();
    let first = |w: &str| w.chars().next().map(|c| c.to_uppercase().to_string());
    match words.as_slice() {
        [] => String::new(),
        [one] => first(one).unwrap_or_default(),
        [a, .., b] => format!(
            "{}{}",
            first(a).unwrap_or_default(),
            first(b).unwrap_or_default()
        ),
    }
}

impl Device {
    /// The setting's name, once the first sync brought it.
    ///
    /// # Errors
    /// Store failures.
    pub fn setting_name(&self) -> Result<Option<String>> {
        self.check_live()?;
        match self.store.setting() {
            Err(e) if e.is_not_found() => Ok(None),
            other => Ok(Some(other?.name())),
        }
    }

    /// Who may unlock this tablet: active staff with a PIN, by name. Needs no PIN.
    ///
    /// # Errors
    /// [`DeviceError::NoRoster`] before the first sync; store failures.
    pub fn staff_tiles(&self) -> Result<Vec<StaffTile>> {
        self.check_live()?;
        let mut out: Vec<StaffTile> = self
            .roster()?
            .all_staff()
            .into_iter()
            .filter(|s| s.active && s.pin_hash.is_some())
            .map(|s| StaffTile {
                initials: initials(&s.name),
                id: s.id,
                name: s.name,
                role: s.role,
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// Who is unlocked, as the roster holds them.
    ///
    /// # Errors
    /// [`DeviceError::InactiveStaff`] when they are no longer on the roster as active.
    pub fn who(&self, who: &Unlocked) -> Result<sprig_core::Staff> {
        match self.roster()?.staff(who.staff()) {
            Some(s) if s.active => Ok(s),
            _ => Err(DeviceError::InactiveStaff),
        }
    }

    /// The attending children: the unlocked member of staff's key children first, then the
    /// rest by room, each by name, with their newest observation and whether it is older than
    /// the setting's `not_observed_days`.
    ///
    /// # Errors
    /// [`DeviceError::InactiveStaff`]; store failures.
    pub fn children(&self, who: &Unlocked) -> Result<Vec<ChildSummary>> {
        self.check_live()?;
        let me = self.who(who)?;
        let roster = self.roster()?;
        let policies = self.policies()?;
        let now = self.now();
        let stale_before = now.0 - i64::from(policies.not_observed_days) * DAY_MS;
        let stats = self.store.observation_stats(now)?;
        let latest: BTreeMap<ChildId, Option<Timestamp>> = stats
            .per_child
            .into_iter()
            .map(|(c, t, _)| (c, t))
            .collect();
        let pending: BTreeMap<ChildId, u64> = stats.pending_per_child.into_iter().collect();
        let rooms: BTreeMap<_, _> = roster.rooms().into_iter().map(|r| (r.id, r.name)).collect();
        let staff: BTreeMap<_, _> = roster
            .all_staff()
            .into_iter()
            .map(|s| (s.id, s.name))
            .collect();
        let mut out: Vec<ChildSummary> = roster
            .children()
            .into_iter()
            .filter(|c| c.status == ChildStatus::Active)
            .map(|child| {
                let last = latest.get(&child.id).copied().flatten();
                ChildSummary {
                    room: child.room.as_ref().and_then(|r| rooms.get(r).cloned()),
                    key_worker: staff.get(&child.key_worker).cloned(),
                    is_key_child: child.key_worker == me.id,
                    last_observed_at: last,
                    not_observed: last.is_none_or(|t| t.0 < stale_before),
                    pending: pending.get(&child.id).copied().unwrap_or(0),
                    child,
                }
            })
            .collect();
        out.sort_by(|a, b| {
            (!a.is_key_child, &a.room, &a.child.name, &a.child.id).cmp(&(
                !b.is_key_child,
                &b.room,
                &b.child.name,
                &b.child.id,
            ))
        });
        Ok(out)
    }

    /// Parent contributions awaiting review, newest first.
    ///
    /// # Errors
    /// [`DeviceError::InactiveStaff`]; store failures.
    pub fn pending(&self, who: &Unlocked) -> Result<Vec<JournalItem>> {
        self.check_live()?;
        self.who(who)?;
        let mut out = Vec::new();
        let mut cursor = None;
        loop {
            let page = self
                .store
                .entries_by_status(EntryStatus::Pending, 200, cursor.as_ref())?;
            let Some(last) = page.last() else { break };
            cursor = Some(sprig_store::Cursor::after(last));
            for entry in page {
                out.push(self.item(entry)?);
            }
        }
        Ok(out)
    }

    /// Observations per child, per key worker and per area over the last `days` days, the
    /// children not observed within them, and this tablet's pending uploads. Managers only.
    ///
    /// # Errors
    /// [`DeviceError::Rule`] (`ManagerOnly`) for a practitioner; [`DeviceError::InvalidInput`]
    /// for 0 days; store failures.
    pub fn coverage(&self, who: &Unlocked, days: u32) -> Result<Coverage> {
        self.check_live()?;
        let roster = self.roster()?;
        sprig_core::rules::require_manager(&roster, &Actor::Staff(who.staff().clone()))?;
        if days == 0 || days > 3660 {
            return Err(DeviceError::InvalidInput(
                "choose a period of 1 to 3660 days".into(),
            ));
        }
        let now = self.now();
        let since = Timestamp(now.0 - i64::from(days) * DAY_MS);
        let stats = self.store.observation_stats(since)?;
        let per: BTreeMap<ChildId, (Option<Timestamp>, u64)> = stats
            .per_child
            .into_iter()
            .map(|(c, t, n)| (c, (t, n)))
            .collect();
        let children: Vec<Child> = roster
            .children()
            .into_iter()
            .filter(|c| c.status == ChildStatus::Active)
            .collect();
        let mut per_child: Vec<ChildCoverage> = children
            .iter()
            .map(|c| {
                let (last, n) = per.get(&c.id).copied().unwrap_or((None, 0));
                ChildCoverage {
                    child: c.id.clone(),
                    name: c.name.clone(),
                    key_worker: c.key_worker.clone(),
                    observations: n,
                    last_observed_at: last,
                }
            })
            .collect();
        per_child.sort_by(|a, b| (a.observations, &a.name).cmp(&(b.observations, &b.name)));
        let mut not_observed: Vec<ChildCoverage> = per_child
            .iter()
            .filter(|c| c.observations == 0)
            .cloned()
            .collect();
        not_observed.sort_by(|a, b| {
            (a.last_observed_at.map(|t| t.0), &a.name)
                .cmp(&(b.last_observed_at.map(|t| t.0), &b.name))
        });
        let by_author: BTreeMap<String, u64> = stats.per_author.into_iter().collect();
        let mut per_key_worker: Vec<StaffCount> = roster
            .all_staff()
            .into_iter()
            .filter(|s| s.active)
            .map(|s| StaffCount {
                observations: by_author.get(s.id.as_str()).copied().unwrap_or(0),
                key_children: children.iter().filter(|c| c.key_worker == s.id).count() as u64,
                staff: s.id,
                name: s.name,
            })
            .collect();
        per_key_worker.sort_by(|a, b| a.name.cmp(&b.name));
        let by_area: BTreeMap<Area, u64> = stats.per_area.into_iter().collect();
        let per_area = Area::ALL
            .iter()
            .map(|a| (*a, by_area.get(a).copied().unwrap_or(0)))
            .collect();
        let status = self.status()?;
        Ok(Coverage {
            days,
            since,
            per_child,
            per_key_worker,
            per_area,
            not_observed,
            pending_uploads: status.pending_media,
            unsynced_docs: status.unsynced_docs,
        })
    }

    /// Every correction of an entry's text, oldest first.
    ///
    /// # Errors
    /// [`DeviceError::UnknownChild`]; store failures.
    pub fn revisions(
        &self,
        who: &Unlocked,
        child: &ChildId,
        entry: &EntryId,
    ) -> Result<Vec<EntryRevision>> {
        self.check_live()?;
        self.who(who)?;
        let journal = match self.store.journal(child) {
            Err(e) if e.is_not_found() => {
                return Err(DeviceError::UnknownChild(child.to_string()));
            }
            other => other?,
        };
        Ok(journal.revisions(entry))
    }

    /// Whether a child may appear on a photo with other children, and if not, why.
    ///
    /// # Errors
    /// [`DeviceError::NoRoster`].
    pub fn photo_consent(&self, child: &ChildId) -> Result<Consent> {
        self.roster()?
            .child(child)
            .map(|c| c.photo_consent)
            .ok_or_else(|| DeviceError::UnknownChild(child.to_string()))
    }

    /// A photo's small thumbnail, when this tablet holds one.
    ///
    /// # Errors
    /// Store failures.
    pub fn thumbnail(&self, who: &Unlocked, sha: &Sha256) -> Result<Option<Vec<u8>>> {
        self.check_live()?;
        self.who(who)?;
        match self.store.thumbnail(sha) {
            Err(e) if e.is_not_found() => Ok(None),
            other => Ok(other?),
        }
    }

    /// A photo or video's bytes, in memory: from the vault while the tablet holds them, else
    /// streamed from the server (`GET /v1/media/{sha}`), never written to disk.
    ///
    /// # Errors
    /// [`DeviceError::NotEnrolled`], network and server failures (`not_found`), store failures.
    pub fn media_bytes(&self, who: &Unlocked, sha: &Sha256) -> Result<Vec<u8>> {
        self.check_live()?;
        self.who(who)?;
        if let Ok(info) = self.store.media_info(sha)
            && info.state != sprig_store::MediaState::Purged
        {
            let mut out = Vec::with_capacity(usize::try_from(info.size).unwrap_or(0));
            self.store
                .media_reader(sha)?
                .read_to_end(&mut out)
                .map_err(|e| DeviceError::Store(sprig_store::StoreError::Io(e)))?;
            return Ok(out);
        }
        self.fetch_media(sha)
    }
}

//! Monitoring for managers: how well the setting's children are observed ([`coverage`]),
//! computed from the journals as stored, through the portal's [`ReadCache`] (a journal
//! unchanged since the last read is not loaded again).
//!
//! What is counted: staff observations, published or draft, by the time they were recorded.
//! A group observation is counted once for each child it is about (each journal holds its own
//! copy), in every table, so the tables add up: the per-child counts sum to the per-day counts
//! and to the per-key-worker counts. Children who have left are not counted.

use std::collections::BTreeMap;

use serde::Serialize;
use sprig_core::{ChildStatus, EntryKind, EntryStatus, Roster, StaffId};

use crate::admin::rfc3339;
use crate::docs::{DocStoreError, ReadCache};
use crate::store::ServerStore;

/// One day, ms.
const DAY_MS: i64 = 86_400_000;
/// The longest period asked about: a year and a bit.
pub const MAX_DAYS: u32 = 400;
/// A child not observed for this many days is listed, unless the setting's policy says
/// otherwise.
pub const NOT_OBSERVED_DAYS: u32 = 14;

/// One child's observations in the period.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ChildCount {
    /// The child.
    pub child_id: String,
    /// Their name.
    pub name: String,
    /// Observations of them in the period.
    pub count: u64,
    /// Their newest observation ever (RFC 3339), `null` when none.
    pub last_observed_at: Option<String>,
}

/// One key worker's key children's observations in the period.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct KeyWorkerCount {
    /// The key worker.
    pub staff_id: String,
    /// Their name.
    pub name: String,
    /// Observations of their key children in the period.
    pub count: u64,
}

/// One area of learning's observations in the period.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AreaCount {
    /// The area (`communication-and-language`, …).
    pub area: String,
    /// Observations tagged with it in the period.
    pub count: u64,
}

/// One day's observations.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DayCount {
    /// The day, `YYYY-MM-DD` (UTC).
    pub date: String,
    /// Observations recorded on it.
    pub count: u64,
}

/// A child not observed for a while.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct NotObserved {
    /// The child.
    pub child_id: String,
    /// Their name.
    pub name: String,
    /// Whole days since their newest observation; `null` when they have none.
    pub days: Option<u64>,
}

/// An observation whose text was corrected in the period.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RecentEdit {
    /// The entry.
    pub entry_id: String,
    /// The children it is about, by name (a group observation is one edit).
    pub children: Vec<String>,
    /// Who recorded it.
    pub author: String,
    /// When its text was last corrected (RFC 3339).
    pub edited_at: String,
    /// The start of its text as it stands, at most 140 characters.
    pub text: String,
}

/// The most recent edits listed.
pub const MAX_RECENT_EDITS: usize = 50;

/// The setting's observation coverage over the last `days` days.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Coverage {
    /// The period, in days up to now.
    pub days: u32,
    /// Every attending child, by name.
    pub per_child: Vec<ChildCount>,
    /// Every key worker of an attending child, by name.
    pub per_key_worker: Vec<KeyWorkerCount>,
    /// Every area observed in the period, by area.
    pub per_area: Vec<AreaCount>,
    /// Every day of the period, oldest first, today last (days without any included).
    pub per_day: Vec<DayCount>,
    /// Attending children without an observation in the policy's number of days, those never
    /// observed first, then the longest unobserved.
    pub not_observed: Vec<NotObserved>,
    /// Parents' contributions waiting for a manager's review.
    pub waiting_review: u64,
    /// Observations corrected in the period, newest first (at most [`MAX_RECENT_EDITS`]).
    pub recent_edits: Vec<RecentEdit>,
}

/// A request for coverage that cannot be answered.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum MonitoringError {
    /// The period is not between 1 and [`MAX_DAYS`] days.
    #[error("the period must be between 1 and {MAX_DAYS} days")]
    BadPeriod,
    /// A journal could not be read.
    #[error(transparent)]
    Doc(#[from] DocStoreError),
}

/// The name of an entry's author as the roster has it (empty when they are gone from it).
pub(crate) fn author_name(roster: &Roster, author: &sprig_core::Author) -> String {
    match author {
        sprig_core::Author::Staff(s) => roster.staff(s).map(|s| s.name),
        sprig_core::Author::Parent(p) => roster.parent(p).map(|p| p.name),
    }
    .unwrap_or_default()
}

/// The `YYYY-MM-DD` (UTC) of a time in ms.
fn date_of(ms: i64) -> String {
    rfc3339(ms).chars().take(10).collect()
}

/// The setting's coverage over the `days` days up to `now` (ms), listing children not
/// observed in `not_observed_days` days. Every attending child's journal is read through
/// `reads`.
///
/// # Errors
/// [`MonitoringError::BadPeriod`]; [`MonitoringError::Doc`] when a journal is damaged or the
/// store fails.
pub fn coverage(
    store: &dyn ServerStore,
    reads: &ReadCache,
    roster: &Roster,
    now: i64,
    days: u32,
    not_observed_days: u32,
) -> Result<Coverage, MonitoringError> {
    if days == 0 || days > MAX_DAYS {
        return Err(MonitoringError::BadPeriod);
    }
    // The period is whole UTC days: today and the `days - 1` before it.
    let today = now.div_euclid(DAY_MS);
    let first_day = today - i64::from(days) + 1;
    let since = first_day * DAY_MS;
    let mut per_day: BTreeMap<i64, u64> = (first_day..=today).map(|d| (d, 0)).collect();
    let mut per_area: BTreeMap<String, u64> = BTreeMap::new();
    let mut per_key_worker: BTreeMap<StaffId, u64> = BTreeMap::new();
    let mut per_child = Vec::new();
    let mut not_observed = Vec::new();
    let mut waiting_review = 0;
    let mut edits: BTreeMap<String, (i64, RecentEdit)> = BTreeMap::new();
    let children: Vec<_> = roster
        .children()
        .into_iter()
        .filter(|c| c.status == ChildStatus::Active)
        .collect();
    for c in &children {
        per_key_worker.entry(c.key_worker.clone()).or_insert(0);
    }
    for c in children {
        let entries = reads.entries(store, &c.id)?;
        let mut count = 0;
        let mut last: Option<i64> = None;
        for e in entries.iter() {
            if e.kind == EntryKind::ParentContribution {
                if e.status == EntryStatus::Pending {
                    waiting_review += 1;
                }
                continue;
            }
            if !matches!(e.status, EntryStatus::Published | EntryStatus::Draft) {
                continue;
            }
            if let Some(edited) = e
                .edited_at
                .map(|t| t.0)
                .filter(|t| (since..=now).contains(t))
            {
                let row = edits.entry(e.id.to_string()).or_insert_with(|| {
                    (
                        edited,
                        RecentEdit {
                            entry_id: e.id.to_string(),
                            children: Vec::new(),
                            author: author_name(roster, &e.author),
                            edited_at: rfc3339(edited),
                            text: e.text.chars().take(140).collect(),
                        },
                    )
                });
                row.1.children.push(c.name.clone());
            }
            let at = e.created_at.0;
            last = Some(last.map_or(at, |l| l.max(at)));
            if at < since || at > now {
                continue;
            }
            count += 1;
            *per_day.entry(at.div_euclid(DAY_MS)).or_insert(0) += 1;
            for a in &e.areas {
                *per_area.entry(a.as_str().to_owned()).or_insert(0) += 1;
            }
        }
        *per_key_worker.entry(c.key_worker.clone()).or_insert(0) += count;
        let quiet = last.map(|l| u64::try_from(now.saturating_sub(l) / DAY_MS).unwrap_or(0));
        if quiet.is_none_or(|d| d >= u64::from(not_observed_days)) {
            not_observed.push(NotObserved {
                child_id: c.id.to_string(),
                name: c.name.clone(),
                days: quiet,
            });
        }
        per_child.push(ChildCount {
            child_id: c.id.to_string(),
            name: c.name,
            count,
            last_observed_at: last.map(rfc3339),
        });
    }
    // Never observed first, then the longest unobserved; by name within each.
    not_observed.sort_by(|a, b| {
        (b.days.is_none(), b.days, &a.name).cmp(&(a.days.is_none(), a.days, &b.name))
    });
    let mut per_key_worker: Vec<KeyWorkerCount> = per_key_worker
        .into_iter()
        .map(|(id, count)| KeyWorkerCount {
            name: roster.staff(&id).map(|s| s.name).unwrap_or_default(),
            staff_id: id.to_string(),
            count,
        })
        .collect();
    per_key_worker.sort_by(|a, b| (&a.name, &a.staff_id).cmp(&(&b.name, &b.staff_id)));
    let mut recent: Vec<(i64, RecentEdit)> = edits.into_values().collect();
    recent.sort_by(|(a, x), (b, y)| (b, &x.entry_id).cmp(&(a, &y.entry_id)));
    recent.truncate(MAX_RECENT_EDITS);
    Ok(Coverage {
        recent_edits: recent.into_iter().map(|(_, e)| e).collect(),
        days,
        per_child,
        per_key_worker,
        per_area: per_area
            .into_iter()
            .map(|(area, count)| AreaCount { area, count })
            .collect(),
        per_day: per_day
            .into_iter()
            .map(|(d, count)| DayCount {
                date: date_of(d * DAY_MS),
                count,
            })
            .collect(),
        not_observed,
        waiting_review,
    })
}

#[cfg(test)]
mod tests {
    use sprig_core::{Actor, Area, Journal, NewEntry, SettingDoc, Timestamp, plan_entry};
    use sprig_proto::DocId;
    use sprig_testkit::Fixture;

    use super::*;
    use crate::store::SqliteStore;

    /// Noon of a day, so a day's observations are on it in UTC whatever their hour offset.
    const NOW: i64 = 19_700 * DAY_MS + 12 * 3_600_000;

    fn day(n: i64) -> Timestamp {
        Timestamp(NOW - n * DAY_MS)
    }

    fn observe(
        fx: &Fixture,
        journals: &mut [Journal],
        kids: &[usize],
        areas: &[Area],
        at: Timestamp,
        draft: bool,
    ) {
        let plan = plan_entry(
            &fx.roster,
            &Actor::Staff(fx.staff[1].clone()),
            NewEntry {
                children: kids.iter().map(|&i| fx.children[i].clone()).collect(),
                text: "Stacked the blocks".into(),
                areas: areas.to_vec(),
                draft,
                ..NewEntry::default()
            },
            at,
        )
        .unwrap();
        for &i in kids {
            journals[i].apply_entry(&plan).unwrap();
        }
    }

    /// Five children (key workers: staff 0, 1, 2, 0, 1), the last of whom has left, and
    /// observations with known counts.
    fn seeded() -> (Fixture, SqliteStore) {
        let mut fx = Fixture::new(5);
        let mut j: Vec<Journal> = (0..5).map(|i| fx.journal(i)).collect();
        use Area::{CommunicationAndLanguage as Cl, Mathematics as M, PhysicalDevelopment as Pd};
        observe(&fx, &mut j, &[0], &[Cl], day(0), false);
        observe(&fx, &mut j, &[0], &[Cl, Pd], day(1), false);
        observe(&fx, &mut j, &[0], &[], day(2), true);
        observe(&fx, &mut j, &[0, 1], &[M], day(3), false);
        observe(&fx, &mut j, &[0], &[], day(5), false);
        // Outside a 7-day period, but the newest of child 2's.
        observe(&fx, &mut j, &[0], &[Pd], day(40), false);
        observe(&fx, &mut j, &[2], &[Pd], day(20), false);
        // A child who left: not counted, whatever was recorded.
        observe(&fx, &mut j, &[4], &[Cl], day(1), false);
        fx.roster.mark_left(&fx.children[4], day(0)).unwrap();
        // A parent's contribution waiting for review, which is no observation.
        let plan = plan_entry(
            &fx.roster,
            &Actor::Parent(fx.parents[0].clone()),
            NewEntry {
                children: vec![fx.children[0].clone()],
                text: "Baked at home".into(),
                ..NewEntry::default()
            },
            day(1),
        )
        .unwrap();
        j[0].apply_entry(&plan).unwrap();
        let s = stored(&fx, &mut j);
        (fx, s)
    }

    /// A store holding the fixture's roster, a setting and `journals`.
    fn stored(fx: &Fixture, journals: &mut [Journal]) -> SqliteStore {
        let s = SqliteStore::open_in_memory().unwrap();
        s.create_doc(&DocId::Roster, 0, &fx.roster.clone().save())
            .unwrap();
        s.create_doc(&DocId::Setting, 0, &SettingDoc::new("Acorns").save())
            .unwrap();
        for journal in journals {
            s.create_doc(
                &DocId::Journal(journal.child().clone()),
                journal.epoch(),
                &journal.save(),
            )
            .unwrap();
        }
        s
    }

    fn count_of(c: &Coverage, child: &str) -> u64 {
        c.per_child
            .iter()
            .find(|x| x.child_id == child)
            .unwrap()
            .count
    }

    #[test]
    fn coverage_counts_a_seeded_setting_exactly() {
        let (fx, s) = seeded();
        let reads = ReadCache::default();
        let c = coverage(&s, &reads, &fx.roster, NOW, 7, NOT_OBSERVED_DAYS).unwrap();
        let id = |i: usize| fx.children[i].to_string();
        assert_eq!(c.days, 7);
        assert_eq!(c.per_child.len(), 4, "the child who left is not listed");
        assert_eq!(
            count_of(&c, &id(0)),
            5,
            "four of their own (one a draft) and a group one"
        );
        assert_eq!(count_of(&c, &id(1)), 1);
        assert_eq!(count_of(&c, &id(2)), 0);
        assert_eq!(count_of(&c, &id(3)), 0);
        let last = |i: usize| {
            c.per_child
                .iter()
                .find(|x| x.child_id == id(i))
                .unwrap()
                .last_observed_at
                .clone()
        };
        assert_eq!(last(0), Some(rfc3339(day(0).0)));
        assert_eq!(last(2), Some(rfc3339(day(20).0)));
        assert_eq!(last(3), None);
        let kw = |i: usize| {
            c.per_key_worker
                .iter()
                .find(|k| k.staff_id == fx.staff[i].to_string())
                .unwrap()
                .count
        };
        assert_eq!((kw(0), kw(1), kw(2)), (5, 1, 0));
        assert_eq!(c.per_key_worker.len(), 3);
        let area = |a: Area| {
            c.per_area
                .iter()
                .find(|x| x.area == a.as_str())
                .map_or(0, |x| x.count)
        };
        assert_eq!(area(Area::CommunicationAndLanguage), 2);
        assert_eq!(area(Area::PhysicalDevelopment), 1);
        assert_eq!(area(Area::Mathematics), 2);
        assert_eq!(c.per_area.len(), 3);
        let days: Vec<u64> = c.per_day.iter().map(|d| d.count).collect();
        assert_eq!(days, vec![0, 1, 0, 2, 1, 1, 1], "oldest first, today last");
        assert_eq!(c.per_day.last().unwrap().date, date_of(NOW));
        assert_eq!(
            c.per_day.iter().map(|d| d.count).sum::<u64>(),
            c.per_child.iter().map(|x| x.count).sum::<u64>()
        );
        let quiet: Vec<(String, Option<u64>)> = c
            .not_observed
            .iter()
            .map(|n| (n.child_id.clone(), n.days))
            .collect();
        assert_eq!(quiet, vec![(id(3), None), (id(2), Some(20))]);
        assert_eq!(c.waiting_review, 1);
    }

    #[test]
    fn recent_edits_are_listed_newest_first_once_per_observation() {
        let fx = Fixture::new(3);
        let mut j: Vec<Journal> = (0..3).map(|i| fx.journal(i)).collect();
        observe(&fx, &mut j, &[0, 1], &[Area::Mathematics], day(9), false);
        observe(&fx, &mut j, &[2], &[], day(20), false);
        observe(&fx, &mut j, &[2], &[], day(2), false);
        let edit = |j: &mut Journal, at: Timestamp, text: &str| {
            let id = j.entries()[0].id.clone();
            j.edit_entry(
                &fx.roster,
                &Actor::Staff(fx.staff[1].clone()),
                &id,
                &sprig_core::EntryEdit {
                    text: text.into(),
                    next_steps: String::new(),
                    areas: vec![Area::Mathematics],
                    band: None,
                    characteristics: Vec::new(),
                },
                at,
            )
            .unwrap();
        };
        // The group observation, corrected in both journals; an old one corrected long ago.
        edit(&mut j[0], day(1), "Counted the blocks to twelve");
        edit(&mut j[1], day(1), "Counted the blocks to twelve");
        let old = j[2]
            .entries()
            .into_iter()
            .find(|e| e.created_at == day(20))
            .unwrap()
            .id;
        j[2].edit_entry(
            &fx.roster,
            &Actor::Staff(fx.staff[1].clone()),
            &old,
            &sprig_core::EntryEdit {
                text: "An old note, corrected".into(),
                next_steps: String::new(),
                areas: Vec::new(),
                band: None,
                characteristics: Vec::new(),
            },
            day(15),
        )
        .unwrap();
        let s = stored(&fx, &mut j);
        let reads = ReadCache::default();
        let week = coverage(&s, &reads, &fx.roster, NOW, 7, NOT_OBSERVED_DAYS).unwrap();
        assert_eq!(week.recent_edits.len(), 1, "{:?}", week.recent_edits);
        let e = &week.recent_edits[0];
        assert_eq!(e.text, "Counted the blocks to twelve");
        assert_eq!(e.edited_at, rfc3339(day(1).0));
        let name = |i: usize| fx.roster.child(&fx.children[i]).unwrap().name;
        let mut both = vec![name(0), name(1)];
        both.sort();
        assert_eq!(e.children, both, "by name, as the roster lists them");
        assert_eq!(
            e.author,
            fx.roster.staff(&fx.staff[1]).unwrap().name,
            "who recorded it"
        );
        let month = coverage(&s, &reads, &fx.roster, NOW, 30, NOT_OBSERVED_DAYS).unwrap();
        let texts: Vec<&str> = month.recent_edits.iter().map(|e| e.text.as_str()).collect();
        assert_eq!(
            texts,
            ["Counted the blocks to twelve", "An old note, corrected"]
        );
    }

    #[test]
    fn the_period_and_the_not_observed_threshold_are_the_callers() {
        let (fx, s) = seeded();
        let reads = ReadCache::default();
        let c = coverage(&s, &reads, &fx.roster, NOW, 60, 30).unwrap();
        assert_eq!(c.per_day.len(), 60);
        assert_eq!(count_of(&c, &fx.children[0].to_string()), 6);
        assert_eq!(count_of(&c, &fx.children[2].to_string()), 1);
        assert_eq!(c.not_observed.len(), 1, "only the child never observed");
        assert!(matches!(
            coverage(&s, &reads, &fx.roster, NOW, 0, 14),
            Err(MonitoringError::BadPeriod)
        ));
        assert!(matches!(
            coverage(&s, &reads, &fx.roster, NOW, MAX_DAYS + 1, 14),
            Err(MonitoringError::BadPeriod)
        ));
    }
}

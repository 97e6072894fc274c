//! Test support for Sprig: a [`Fixture`] setting with synthetic staff, children and parents,
//! observation helpers, and generated photos and videos (in [`images`]).
//!
//! Names are synthetic; nothing here is personal data.
//!
//! ```
//! let fx = sprig_testkit::Fixture::new(3);
//! let mut j = fx.journal(0);
//! fx.observe(&mut j, "Counted to ten", sprig_core::Timestamp(1));
//! assert_eq!(j.entries().len(), 1);
//! ```
#![warn(missing_docs)]

pub mod images;

use sprig_core::{
    Actor, ChildId, Consent, EntryId, Journal, MediaKind, MediaRef, NewChild, NewEntry, ParentId,
    Role, RoomId, Roster, Sha256, StaffId, Timestamp, plan_entry,
};

const FIRST: &[&str] = &[
    "Ada", "Bram", "Cleo", "Dev", "Esme", "Finn", "Gia", "Hugo", "Ines", "Jude", "Kit", "Luca",
    "Mina", "Noor", "Otto", "Pia", "Rafe", "Suki", "Tam", "Uma", "Vik", "Wren", "Xan", "Yara",
    "Zed",
];
const LAST: &[&str] = &[
    "Ashdown",
    "Birchley",
    "Coldwell",
    "Dunmore",
    "Elmsworth",
    "Fenwick",
    "Greyholt",
    "Hartwell",
];

/// A synthetic name, deterministic in `i`.
#[must_use]
pub fn name(i: usize) -> String {
    format!(
        "{} {}",
        FIRST[i % FIRST.len()],
        LAST[(i / FIRST.len()) % LAST.len()]
    )
}

/// A small setting: two rooms, three practitioners and a manager, `n` children (every third
/// without photo consent), one parent per child.
#[derive(Debug, Clone)]
pub struct Fixture {
    /// The roster.
    pub roster: Roster,
    /// Practitioners then the manager (last).
    pub staff: Vec<StaffId>,
    /// The manager.
    pub manager: StaffId,
    /// The rooms.
    pub rooms: Vec<RoomId>,
    /// The children, in creation order.
    pub children: Vec<ChildId>,
    /// `parents[i]` is linked to `children[i]`.
    pub parents: Vec<ParentId>,
}

impl Fixture {
    /// Builds the fixture; child `i` has consent unless `i % 3 == 2`.
    ///
    /// # Panics
    /// Never for sane `n`; the roster rules accept everything it writes.
    #[must_use]
    pub fn new(n: usize) -> Fixture {
        let t = Timestamp(1_700_000_000_000);
        let mut roster = Roster::new();
        let rooms = vec![
            roster.add_room("Acorns", t).unwrap(),
            roster.add_room("Oaks", t).unwrap(),
        ];
        let mut staff: Vec<StaffId> = (0..3)
            .map(|i| {
                roster
                    .add_staff(&format!("Staff {}", name(100 + i)), Role::Practitioner, t)
                    .unwrap()
            })
            .collect();
        let manager = roster
            .add_staff("Manager Morgan Hale", Role::Manager, t)
            .unwrap();
        staff.push(manager.clone());
        let mut children = Vec::with_capacity(n);
        let mut parents = Vec::with_capacity(n);
        for i in 0..n {
            let consent = if i % 3 == 2 {
                Consent::No
            } else {
                Consent::Yes
            };
            let child = roster
                .add_child(
                    &NewChild {
                        name: name(i),
                        date_of_birth: Some(format!("2022-{:02}-{:02}", 1 + i % 12, 1 + i % 28)),
                        key_worker: staff[i % 3].clone(),
                        room: Some(rooms[i % 2].clone()),
                        photo_consent: consent,
                    },
                    t,
                )
                .unwrap();
            let parent = roster
                .add_parent(&format!("Parent of {}", name(i)), t)
                .unwrap();
            roster.link_parent(&parent, &child, t).unwrap();
            children.push(child);
            parents.push(parent);
        }
        Fixture {
            roster,
            staff,
            manager,
            rooms,
            children,
            parents,
        }
    }

    /// An empty journal for child `i`.
    #[must_use]
    pub fn journal(&self, i: usize) -> Journal {
        Journal::new(self.children[i].clone())
    }

    /// A published text observation by the first practitioner.
    ///
    /// # Panics
    /// When the journal's child is not on this fixture's roster.
    pub fn observe(&self, journal: &mut Journal, text: &str, at: Timestamp) -> EntryId {
        self.record(journal, text, Vec::new(), at)
    }

    /// A published observation with one photo or video.
    ///
    /// # Panics
    /// When the journal's child is not on this fixture's roster.
    pub fn observe_with_media(
        &self,
        journal: &mut Journal,
        text: &str,
        media: MediaRef,
        at: Timestamp,
    ) -> EntryId {
        self.record(journal, text, vec![media], at)
    }

    fn record(
        &self,
        journal: &mut Journal,
        text: &str,
        media: Vec<MediaRef>,
        at: Timestamp,
    ) -> EntryId {
        let plan = plan_entry(
            &self.roster,
            &Actor::Staff(self.staff[0].clone()),
            NewEntry {
                children: vec![journal.child().clone()],
                text: text.into(),
                media,
                ..NewEntry::default()
            },
            at,
        )
        .unwrap();
        journal.apply_entry(&plan).unwrap();
        plan.id
    }

    /// A staff reply under an entry.
    ///
    /// # Panics
    /// When the entry is absent.
    pub fn reply(&self, journal: &mut Journal, entry: &EntryId, text: &str, at: Timestamp) {
        journal
            .reply(
                &self.roster,
                &Actor::Staff(self.staff[0].clone()),
                entry,
                text,
                at,
            )
            .unwrap();
    }
}

/// A photo reference with a made-up hash derived from `seed` (for documents and indexes that
/// never look at the bytes).
#[must_use]
pub fn photo_ref(seed: u8) -> MediaRef {
    MediaRef {
        sha256: Sha256::from_bytes([seed; 32]),
        kind: MediaKind::Photo,
        mime: "image/jpeg".into(),
        size: 350_000,
        width: 2048,
        height: 1536,
    }
}

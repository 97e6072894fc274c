//! What the tablet app needs beyond recording: the children list (key children first, last
//! observed, "not observed" marks), publish, edit with revisions, replies, the review of
//! parent contributions, a manager's coverage, photos from memory, and their refusals.

use sprig_core::{Actor, Area, EntryStatus, Journal, NewEntry, Role, Timestamp, plan_entry};
use sprig_device::{DeviceError, Edit, Observation};
use sprig_testkit::images;

use crate::support::{PIN, Seeded, hash_pin, seeded};

/// Gives the fixture's manager the PIN too.
pub(crate) fn with_manager(s: &Seeded) {
    let mut store = s.store();
    let mut roster = store.roster().unwrap();
    roster
        .set_pin_hash(&s.fx.manager, &hash_pin(PIN), Timestamp(1_700_000_000_001))
        .unwrap();
    store.save_roster(&mut roster).unwrap();
    store.close().unwrap();
}

/// A parent's contribution for child 0, written the way the server's sync brings it.
pub(crate) fn parent_contribution(s: &Seeded, text: &str) -> sprig_core::EntryId {
    let mut store = s.store();
    let roster = store.roster().unwrap();
    let child = s.child(0);
    let mut journal = match store.journal(&child) {
        Ok(j) => j,
        Err(_) => Journal::new(child.clone()),
    };
    let plan = plan_entry(
        &roster,
        &Actor::Parent(s.fx.parents[0].clone()),
        NewEntry {
            children: vec![child],
            text: text.into(),
            ..NewEntry::default()
        },
        Timestamp(1_700_000_100_000),
    )
    .unwrap();
    journal.apply_entry(&plan).unwrap();
    store.save_journal(&mut journal).unwrap();
    store.close().unwrap();
    plan.id
}

fn text(s: &str) -> Observation {
    Observation {
        text: s.into(),
        ..Observation::default()
    }
}

#[test]
fn children_come_key_children_first_with_their_last_observation() {
    let s = seeded();
    let mut device = s.open();
    let who = device.unlock(&s.staff, PIN).unwrap();
    let before = device.children(&who).unwrap();
    assert_eq!(before.len(), 3);
    assert!(before[0].is_key_child, "child 0's key worker unlocked");
    assert_eq!(before[0].child.id, s.child(0));
    assert!(
        before
            .iter()
            .all(|c| c.not_observed && c.last_observed_at.is_none())
    );
    assert_eq!(before[0].room.as_deref(), Some("Acorns"));

    device
        .observe(
            &who,
            &Observation {
                children: vec![s.child(1)],
                ..text("Climbed the frame")
            },
        )
        .unwrap();
    let after = device.children(&who).unwrap();
    let c1 = after.iter().find(|c| c.child.id == s.child(1)).unwrap();
    assert!(c1.last_observed_at.is_some());
    assert!(!c1.not_observed);
    assert!(!c1.is_key_child);
    assert_eq!(device.policies().unwrap().not_observed_days, 14);
}

#[test]
fn a_draft_is_published_and_an_edit_keeps_the_earlier_text() {
    let s = seeded();
    let mut device = s.open();
    let who = device.unlock(&s.staff, PIN).unwrap();
    let id = device
        .observe(
            &who,
            &Observation {
                children: vec![s.child(0), s.child(1)],
                draft: true,
                areas: vec![Area::Mathematics],
                ..text("Sorted buttons")
            },
        )
        .unwrap();
    assert_eq!(
        device.journal(&who, &s.child(0)).unwrap()[0].entry.status,
        EntryStatus::Draft
    );
    device.publish(&who, &id).unwrap();
    for c in [s.child(0), s.child(1)] {
        assert_eq!(
            device.journal(&who, &c).unwrap()[0].entry.status,
            EntryStatus::Published,
            "every copy of a group observation"
        );
    }
    device
        .edit(
            &who,
            &id,
            &Edit {
                text: Some("Sorted buttons by colour".into()),
                ..Edit::default()
            },
        )
        .unwrap();
    let e = &device.journal(&who, &s.child(1)).unwrap()[0].entry;
    assert_eq!(e.text, "Sorted buttons by colour");
    assert_eq!(
        e.areas,
        vec![Area::Mathematics],
        "untouched fields are kept"
    );
    assert!(e.edited_at.is_some());
    let revs = device.revisions(&who, &s.child(0), &id).unwrap();
    assert_eq!(revs.len(), 1);
    assert_eq!(revs[0].text, "Sorted buttons by colour");
    assert_eq!(revs[0].by, s.staff);
    assert!(
        device.status().unwrap().unsynced_docs >= 2,
        "both journals are marked for the server"
    );
}

#[test]
fn replies_go_to_one_journal_and_a_group_entry_needs_the_child() {
    let s = seeded();
    let mut device = s.open();
    let who = device.unlock(&s.staff, PIN).unwrap();
    let solo = device
        .observe(
            &who,
            &Observation {
                children: vec![s.child(0)],
                ..text("Painted a sun")
            },
        )
        .unwrap();
    device.reply(&who, &solo, None, "Lovely colours").unwrap();
    let e = &device.journal(&who, &s.child(0)).unwrap()[0].entry;
    assert_eq!(e.replies.len(), 1);
    assert_eq!(e.replies[0].text, "Lovely colours");

    let group = device
        .observe(
            &who,
            &Observation {
                children: vec![s.child(0), s.child(1)],
                ..text("Built a den together")
            },
        )
        .unwrap();
    let err = device
        .reply(&who, &group, None, "Great teamwork")
        .unwrap_err();
    assert!(matches!(err, DeviceError::InvalidInput(_)), "{err}");
    device
        .reply(&who, &group, Some(&s.child(1)), "Great teamwork")
        .unwrap();
    let c0 = device.journal(&who, &s.child(0)).unwrap();
    let c1 = device.journal(&who, &s.child(1)).unwrap();
    assert!(
        c0.iter()
            .find(|i| i.entry.id == group)
            .unwrap()
            .entry
            .replies
            .is_empty()
    );
    assert_eq!(c1[0].entry.replies.len(), 1);
    let err = device
        .reply(&who, &group, Some(&s.child(0)), "  ")
        .unwrap_err();
    assert_eq!(err.code(), "rule", "an empty reply is refused: {err}");
}

#[test]
pub(crate) fn parent_contributions_are_approved_or_rejected_with_a_reason() {
    let s = seeded();
    let first = parent_contribution(&s, "We baked bread at home");
    let second = parent_contribution(&s, "A photo from the park");
    let mut device = s.open();
    let who = device.unlock(&s.staff, PIN).unwrap();
    let pending = device.pending(&who).unwrap();
    assert_eq!(pending.len(), 2);
    assert_eq!(device.children(&who).unwrap()[0].pending, 2);

    device.approve(&who, &first).unwrap();
    let err = device.approve(&who, &first).unwrap_err();
    assert_eq!(err.code(), "rule", "already reviewed: {err}");
    let err = device.reject(&who, &second, " ").unwrap_err();
    assert!(
        matches!(err, DeviceError::InvalidInput(_)),
        "a reason is required"
    );
    device
        .reject(&who, &second, "The photo shows another child")
        .unwrap();
    assert!(device.pending(&who).unwrap().is_empty());
    let journal = device.journal(&who, &s.child(0)).unwrap();
    let rejected = journal.iter().find(|i| i.entry.id == second).unwrap();
    assert_eq!(rejected.entry.status, EntryStatus::Rejected);
    assert_eq!(
        rejected.entry.replies[0].text,
        "The photo shows another child"
    );
    let approved = journal.iter().find(|i| i.entry.id == first).unwrap();
    assert_eq!(approved.entry.status, EntryStatus::Published);

    // Staff observations are not reviewed, and contributions are not edited or published.
    let obs = device
        .observe(
            &who,
            &Observation {
                children: vec![s.child(0)],
                ..text("Read a story")
            },
        )
        .unwrap();
    assert_eq!(device.approve(&who, &obs).unwrap_err().code(), "rule");
    assert_eq!(
        device
            .edit(
                &who,
                &first,
                &Edit {
                    text: Some("x".into()),
                    ..Edit::default()
                }
            )
            .unwrap_err()
            .code(),
        "rule"
    );
}

#[test]
fn coverage_counts_per_child_staff_and_area_and_is_for_managers() {
    let s = seeded();
    with_manager(&s);
    let mut device = s.open();
    let who = device.unlock(&s.staff, PIN).unwrap();
    for (child, area) in [
        (0, Area::Mathematics),
        (0, Area::Literacy),
        (1, Area::Mathematics),
    ] {
        device
            .observe(
                &who,
                &Observation {
                    children: vec![s.child(child)],
                    areas: vec![area],
                    ..text("An observation")
                },
            )
            .unwrap();
    }
    let err = device.coverage(&who, 30).unwrap_err();
    assert_eq!(err.code(), "rule", "a practitioner is refused: {err}");
    let manager = device.unlock(&s.fx.manager, PIN).unwrap();
    assert_eq!(device.who(&manager).unwrap().role, Role::Manager);
    let c = device.coverage(&manager, 30).unwrap();
    let n = |i: usize| {
        c.per_child
            .iter()
            .find(|x| x.child == s.child(i))
            .unwrap()
            .observations
    };
    assert_eq!((n(0), n(1), n(2)), (2, 1, 0));
    assert_eq!(c.not_observed.len(), 1);
    assert_eq!(c.not_observed[0].child, s.child(2));
    let area = |a: Area| c.per_area.iter().find(|(x, _)| *x == a).unwrap().1;
    assert_eq!(area(Area::Mathematics), 2);
    assert_eq!(area(Area::Literacy), 1);
    assert_eq!(c.per_area.len(), 7);
    let mine = c
        .per_key_worker
        .iter()
        .find(|k| k.staff == s.staff)
        .unwrap();
    assert_eq!(mine.observations, 3);
    assert_eq!(mine.key_children, 1);
    assert!(matches!(
        device.coverage(&manager, 0).unwrap_err(),
        DeviceError::InvalidInput(_)
    ));
}

#[test]
fn a_photo_from_memory_is_processed_and_read_back_from_the_vault() {
    let s = seeded();
    let mut device = s.open();
    let who = device.unlock(&s.staff, PIN).unwrap();
    let jpeg = images::jpeg(800, 600);
    device
        .observe(
            &who,
            &Observation {
                children: vec![s.child(0)],
                photo_bytes: vec![jpeg.clone()],
                ..text("Camera photo")
            },
        )
        .unwrap();
    let item = &device.journal(&who, &s.child(0)).unwrap()[0];
    let sha = item.media[0].media.sha256;
    let bytes = device.media_bytes(&who, &sha).unwrap();
    assert_ne!(bytes, jpeg, "the stored photo is the processed one");
    assert_eq!(&bytes[..2], &[0xFF, 0xD8]);
    assert!(device.thumbnail(&who, &sha).unwrap().is_some());

    // A group photo with a child without consent is refused before anything is stored.
    let err = device
        .observe(
            &who,
            &Observation {
                children: vec![s.child(0), s.child(2)],
                photo_bytes: vec![jpeg],
                ..text("Group")
            },
        )
        .unwrap_err();
    assert_eq!(err.code(), "consent_missing");
    assert_eq!(device.status().unwrap().pending_media, 1);
    let err = device
        .observe(
            &who,
            &Observation {
                children: vec![s.child(0)],
                photo_bytes: vec![b"not a photo".to_vec()],
                ..text("Broken")
            },
        )
        .unwrap_err();
    assert_eq!(err.code(), "media_refused");
}

#[test]
fn the_lock_screen_lists_staff_with_a_pin_and_counts_attempts_left() {
    let s = seeded();
    let device = s.open();
    let tiles = device.staff_tiles().unwrap();
    assert_eq!(tiles.len(), 1, "only staff with a PIN can unlock");
    assert_eq!(tiles[0].id, s.staff);
    assert_eq!(tiles[0].initials.chars().count(), 2);
    let left = device.pin_attempts_left().unwrap().unwrap();
    assert!(device.unlock(&s.staff, "0000").is_err());
    assert_eq!(device.pin_attempts_left().unwrap(), Some(left - 1));
    assert_eq!(
        device.setting_name().unwrap().as_deref(),
        Some("Acorn Pre-School")
    );
    assert_eq!(sprig_device::initials("Amara Okafor"), "AO");
    assert_eq!(sprig_device::initials("Cher"), "C");
    assert_eq!(sprig_device::initials("Mary Jane Watson"), "MW");
}

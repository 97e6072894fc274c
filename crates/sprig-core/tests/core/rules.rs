use sprig_core::{
    Actor, Area, Consent, EntryKind, EntryStatus, NewChild, NewEntry, RuleError, plan_entry, rules,
};
use sprig_testkit::{Fixture, photo_ref};

use crate::at;

fn staff(fx: &Fixture) -> Actor {
    Actor::Staff(fx.staff[1].clone())
}

#[test]
fn staff_may_record_for_any_child_not_only_their_key_children() {
    let fx = Fixture::new(6);
    // staff[1] is key worker of children 1 and 4; record for child 0.
    let plan = plan_entry(
        &fx.roster,
        &staff(&fx),
        NewEntry {
            children: vec![fx.children[0].clone()],
            text: "Sorted shells by size".into(),
            ..Default::default()
        },
        at(0),
    )
    .unwrap();
    assert_eq!(plan.kind, EntryKind::Observation);
    assert!(plan.published);
    assert_eq!(plan.group, None);
}

#[test]
fn group_photo_refused_when_a_tagged_child_lacks_consent() {
    let fx = Fixture::new(3); // child 2 has consent No
    let err = plan_entry(
        &fx.roster,
        &staff(&fx),
        NewEntry {
            children: vec![fx.children[0].clone(), fx.children[2].clone()],
            text: "Den building".into(),
            media: vec![photo_ref(1)],
            ..Default::default()
        },
        at(0),
    )
    .unwrap_err();
    match err {
        RuleError::ConsentMissing { child, name } => {
            assert_eq!(child, fx.children[2]);
            assert_eq!(name, fx.roster.child(&fx.children[2]).unwrap().name);
        }
        other => panic!("expected ConsentMissing, got {other:?}"),
    }
}

#[test]
fn consent_not_asked_counts_as_no_for_group_media() {
    let mut fx = Fixture::new(2);
    fx.roster
        .set_consent(&fx.children[1], Consent::NotAsked, at(0))
        .unwrap();
    let r = plan_entry(
        &fx.roster,
        &staff(&fx),
        NewEntry {
            children: fx.children.clone(),
            text: "x".into(),
            media: vec![photo_ref(2)],
            ..Default::default()
        },
        at(1),
    );
    assert!(matches!(r, Err(RuleError::ConsentMissing { .. })));
}

#[test]
fn group_text_and_single_child_photo_need_no_consent() {
    let fx = Fixture::new(3);
    let group_text = plan_entry(
        &fx.roster,
        &staff(&fx),
        NewEntry {
            children: vec![fx.children[0].clone(), fx.children[2].clone()],
            text: "Sang together".into(),
            ..Default::default()
        },
        at(0),
    )
    .unwrap();
    assert!(group_text.group.is_some());
    let solo_photo = plan_entry(
        &fx.roster,
        &staff(&fx),
        NewEntry {
            children: vec![fx.children[2].clone()],
            text: "Painting".into(),
            media: vec![photo_ref(3)],
            ..Default::default()
        },
        at(0),
    );
    assert!(solo_photo.is_ok());
}

#[test]
fn bad_entries_are_refused_with_clear_errors() {
    let fx = Fixture::new(2);
    let plan = |children: Vec<_>, text: &str| {
        plan_entry(
            &fx.roster,
            &staff(&fx),
            NewEntry {
                children,
                text: text.into(),
                ..Default::default()
            },
            at(0),
        )
    };
    assert!(matches!(plan(vec![], "x"), Err(RuleError::NoChildren)));
    assert!(matches!(
        plan(vec![fx.children[0].clone()], "   "),
        Err(RuleError::EmptyEntry)
    ));
    assert!(matches!(
        plan(vec![fx.children[0].clone(), fx.children[0].clone()], "x"),
        Err(RuleError::BadChildren)
    ));
    assert!(matches!(
        plan(
            vec![fx.children[0].clone()],
            &"a".repeat(rules::MAX_TEXT_CHARS + 1)
        ),
        Err(RuleError::TextTooLong)
    ));
    let stranger = sprig_core::ChildId::new_random();
    assert!(matches!(
        plan(vec![stranger], "x"),
        Err(RuleError::UnknownChild(_))
    ));
    let e = plan(vec![], "x").unwrap_err();
    assert_eq!(e.to_string(), "choose at least one child");
}

#[test]
fn nothing_new_for_a_child_who_has_left() {
    let mut fx = Fixture::new(1);
    fx.roster.mark_left(&fx.children[0], at(0)).unwrap();
    let r = plan_entry(
        &fx.roster,
        &staff(&fx),
        NewEntry {
            children: vec![fx.children[0].clone()],
            text: "x".into(),
            ..Default::default()
        },
        at(1),
    );
    assert!(matches!(r, Err(RuleError::ChildLeft(_))));
}

#[test]
fn deactivated_staff_cannot_record() {
    let mut fx = Fixture::new(1);
    fx.roster.deactivate_staff(&fx.staff[1], at(0)).unwrap();
    let r = plan_entry(
        &fx.roster,
        &staff(&fx),
        NewEntry {
            children: vec![fx.children[0].clone()],
            text: "x".into(),
            ..Default::default()
        },
        at(1),
    );
    assert!(matches!(r, Err(RuleError::InactiveStaff)));
}

#[test]
fn parents_contribute_only_for_their_own_children_and_start_pending() {
    let fx = Fixture::new(2);
    let parent = Actor::Parent(fx.parents[0].clone());
    let own = plan_entry(
        &fx.roster,
        &parent,
        NewEntry {
            children: vec![fx.children[0].clone()],
            text: "Planted beans at home".into(),
            ..Default::default()
        },
        at(0),
    )
    .unwrap();
    assert_eq!(own.kind, EntryKind::ParentContribution);
    assert!(!own.published);
    assert_eq!(own.entry_for(&fx.children[0]).status, EntryStatus::Pending);
    let other = plan_entry(
        &fx.roster,
        &parent,
        NewEntry {
            children: vec![fx.children[1].clone()],
            text: "x".into(),
            ..Default::default()
        },
        at(0),
    );
    assert!(matches!(other, Err(RuleError::NotLinked)));
    assert_eq!(RuleError::NotLinked.to_string(), "not found");
}

#[test]
fn only_staff_review_and_a_rejected_contribution_never_enters_the_journal() {
    let fx = Fixture::new(1);
    let mut j = fx.journal(0);
    let parent = Actor::Parent(fx.parents[0].clone());
    let plan = plan_entry(
        &fx.roster,
        &parent,
        NewEntry {
            children: vec![fx.children[0].clone()],
            text: "Holiday photo".into(),
            ..Default::default()
        },
        at(0),
    )
    .unwrap();
    j.apply_entry(&plan).unwrap();
    assert!(matches!(
        j.approve(&fx.roster, &parent, &plan.id, at(1)),
        Err(RuleError::StaffOnly)
    ));
    j.reject(&fx.roster, &staff(&fx), &plan.id, at(2)).unwrap();
    assert_eq!(j.entry(&plan.id).unwrap().status, EntryStatus::Rejected);
    assert!(matches!(
        j.approve(&fx.roster, &staff(&fx), &plan.id, at(3)),
        Err(RuleError::AlreadyReviewed(EntryStatus::Rejected))
    ));
    assert_eq!(j.entry(&plan.id).unwrap().status, EntryStatus::Rejected);
}

#[test]
fn staff_observations_cannot_be_approved() {
    let fx = Fixture::new(1);
    let mut j = fx.journal(0);
    let id = fx.observe(&mut j, "Climbed the frame", at(0));
    assert!(matches!(
        j.approve(&fx.roster, &staff(&fx), &id, at(1)),
        Err(RuleError::NotAContribution)
    ));
}

#[test]
fn replies_attach_to_visible_entries_only() {
    let fx = Fixture::new(2);
    let mut j = fx.journal(0);
    let draft = plan_entry(
        &fx.roster,
        &staff(&fx),
        NewEntry {
            children: vec![fx.children[0].clone()],
            text: "draft".into(),
            draft: true,
            ..Default::default()
        },
        at(0),
    )
    .unwrap();
    j.apply_entry(&draft).unwrap();
    let published = fx.observe(&mut j, "Published", at(1));
    let own_parent = Actor::Parent(fx.parents[0].clone());
    let other_parent = Actor::Parent(fx.parents[1].clone());
    assert!(
        j.reply(&fx.roster, &own_parent, &published, "Lovely!", at(2))
            .is_ok()
    );
    assert!(matches!(
        j.reply(&fx.roster, &own_parent, &draft.id, "?", at(2)),
        Err(RuleError::EntryNotFound)
    ));
    assert!(matches!(
        j.reply(&fx.roster, &other_parent, &published, "?", at(2)),
        Err(RuleError::EntryNotFound)
    ));
    let missing = sprig_core::EntryId::new_random();
    assert!(matches!(
        j.reply(&fx.roster, &own_parent, &missing, "?", at(2)),
        Err(RuleError::EntryNotFound)
    ));
    assert!(matches!(
        j.reply(&fx.roster, &own_parent, &published, "  ", at(2)),
        Err(RuleError::EmptyEntry)
    ));
    assert_eq!(j.entry(&published).unwrap().replies.len(), 1);
}

#[test]
fn a_parents_link_takes_effect_only_once_consent_is_answered() {
    let mut fx = Fixture::new(1);
    let child = fx
        .roster
        .add_child(
            &NewChild {
                name: "Quinn Hartwell".into(),
                date_of_birth: Some("2022-05-05".into()),
                key_worker: fx.staff[0].clone(),
                room: None,
                photo_consent: Consent::NotAsked,
            },
            at(0),
        )
        .unwrap();
    let p = fx.roster.add_parent("Parent Quinn", at(0)).unwrap();
    fx.roster.link_parent(&p, &child, at(1)).unwrap();
    let parent = Actor::Parent(p.clone());
    assert!(!rules::may_read_journal(&fx.roster, &parent, &child));
    fx.roster.set_consent(&child, Consent::No, at(2)).unwrap();
    assert!(rules::may_read_journal(&fx.roster, &parent, &child));
    assert_eq!(fx.roster.parent(&p).unwrap().children, vec![child]);
}

#[test]
fn readers_are_decided_by_links() {
    let fx = Fixture::new(2);
    assert!(rules::may_read_journal(
        &fx.roster,
        &staff(&fx),
        &fx.children[1]
    ));
    assert!(rules::may_read_journal(
        &fx.roster,
        &Actor::Parent(fx.parents[0].clone()),
        &fx.children[0]
    ));
    assert!(!rules::may_read_journal(
        &fx.roster,
        &Actor::Parent(fx.parents[0].clone()),
        &fx.children[1]
    ));
    assert!(rules::require_manager(&fx.roster, &Actor::Staff(fx.manager.clone())).is_ok());
    assert!(matches!(
        rules::require_manager(&fx.roster, &staff(&fx)),
        Err(RuleError::ManagerOnly)
    ));
}

#[test]
fn areas_are_sorted_and_unique() {
    let fx = Fixture::new(1);
    let plan = plan_entry(
        &fx.roster,
        &staff(&fx),
        NewEntry {
            children: vec![fx.children[0].clone()],
            text: "x".into(),
            areas: vec![Area::Mathematics, Area::Literacy, Area::Mathematics],
            ..Default::default()
        },
        at(0),
    )
    .unwrap();
    assert_eq!(plan.areas, vec![Area::Literacy, Area::Mathematics]);
    assert_eq!(Area::ALL.iter().filter(|a| a.is_prime()).count(), 3);
}

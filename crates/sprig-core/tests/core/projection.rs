use sprig_core::{
    Actor, Consent, EntryStatus, GroupMembers, NewEntry, RuleError, ShownAuthor, parent_view,
    parent_view_of, plan_entry,
};
use sprig_testkit::{Fixture, photo_ref};

use crate::at;

#[test]
fn parent_sees_published_entries_and_own_contributions_only() {
    let mut fx = Fixture::new(2);
    // A second parent of child 0.
    let other_parent = fx.roster.add_parent("Second Carer", at(0)).unwrap();
    fx.roster
        .link_parent(&other_parent, &fx.children[0], at(0))
        .unwrap();
    let staff = Actor::Staff(fx.staff[0].clone());
    let mut j = fx.journal(0);
    let published = fx.observe(&mut j, "Published obs", at(1));
    let draft = plan_entry(
        &fx.roster,
        &staff,
        NewEntry {
            children: vec![fx.children[0].clone()],
            text: "Draft obs".into(),
            draft: true,
            ..Default::default()
        },
        at(2),
    )
    .unwrap();
    j.apply_entry(&draft).unwrap();
    let contribute = |who: &sprig_core::ParentId, text: &str, j: &mut sprig_core::Journal| {
        let p = plan_entry(
            &fx.roster,
            &Actor::Parent(who.clone()),
            NewEntry {
                children: vec![fx.children[0].clone()],
                text: text.into(),
                ..Default::default()
            },
            at(3),
        )
        .unwrap();
        j.apply_entry(&p).unwrap();
        p.id
    };
    let mine_pending = contribute(&fx.parents[0], "Mine pending", &mut j);
    let mine_rejected = contribute(&fx.parents[0], "Mine rejected", &mut j);
    let theirs_pending = contribute(&other_parent, "Theirs pending", &mut j);
    j.reject(&fx.roster, &staff, &mine_rejected, at(4)).unwrap();
    fx.reply(&mut j, &published, "Staff reply", at(5));

    let view = parent_view(&j, &fx.roster, &fx.parents[0], &GroupMembers::default()).unwrap();
    let ids: Vec<_> = view.entries.iter().map(|e| e.id.clone()).collect();
    assert!(ids.contains(&published));
    assert!(ids.contains(&mine_pending));
    assert!(
        ids.contains(&mine_rejected),
        "the parent sees the outcome of their contribution"
    );
    assert!(!ids.contains(&draft.id));
    assert!(
        !ids.contains(&theirs_pending),
        "another carer's pending contribution is theirs alone"
    );
    let rejected = view.entries.iter().find(|e| e.id == mine_rejected).unwrap();
    assert_eq!(rejected.status, EntryStatus::Rejected);
    assert_eq!(rejected.author, ShownAuthor::You);
    assert_eq!(
        view.child_name,
        fx.roster.child(&fx.children[0]).unwrap().name
    );
    let p = view.entries.iter().find(|e| e.id == published).unwrap();
    assert_eq!(p.replies[0].text, "Staff reply");
    assert!(matches!(p.author, ShownAuthor::Staff(_)));
    // Newest first.
    assert!(
        view.entries
            .windows(2)
            .all(|w| w[0].created_at >= w[1].created_at)
    );
}

#[test]
fn another_parent_gets_not_linked() {
    let fx = Fixture::new(2);
    let mut j = fx.journal(0);
    fx.observe(&mut j, "x", at(1));
    let r = parent_view(&j, &fx.roster, &fx.parents[1], &GroupMembers::default());
    assert!(matches!(r, Err(RuleError::NotLinked)));
}

#[test]
fn group_media_hidden_once_any_member_withdraws_consent_and_no_other_name_shown() {
    let mut fx = Fixture::new(2); // both consent Yes
    let plan = plan_entry(
        &fx.roster,
        &Actor::Staff(fx.staff[0].clone()),
        NewEntry {
            children: fx.children.clone(),
            text: "Group painting".into(),
            media: vec![photo_ref(7)],
            ..Default::default()
        },
        at(1),
    )
    .unwrap();
    let mut a = fx.journal(0);
    let mut b = fx.journal(1);
    a.apply_entry(&plan).unwrap();
    b.apply_entry(&plan).unwrap();
    let groups = GroupMembers::from_journals([&a, &b]);
    let view = parent_view(&a, &fx.roster, &fx.parents[0], &groups).unwrap();
    assert_eq!(view.entries[0].media, vec![photo_ref(7)]);
    assert!(view.entries[0].is_group);
    let other_name = fx.roster.child(&fx.children[1]).unwrap().name;
    assert!(!format!("{view:?}").contains(&other_name));
    assert!(!format!("{view:?}").contains(fx.children[1].as_str()));

    fx.roster
        .set_consent(&fx.children[1], Consent::No, at(2))
        .unwrap();
    let view = parent_view(&a, &fx.roster, &fx.parents[0], &groups).unwrap();
    assert!(view.entries[0].media.is_empty());
    assert!(view.entries[0].media_hidden);
    assert_eq!(view.entries[0].text, "Group painting");
    // Unknown membership hides rather than leaks.
    let view = parent_view(&a, &fx.roster, &fx.parents[0], &GroupMembers::default()).unwrap();
    assert!(view.entries[0].media_hidden);
}

/// `parent_view_of` (the server reads a journal's entries once) is `parent_view`, and an entry
/// of another child handed to it is still checked against that child's link.
#[test]
fn parent_view_of_read_entries_is_the_parent_view_and_checks_every_entrys_child() {
    let fx = Fixture::new(2);
    let mut own = fx.journal(0);
    fx.observe(&mut own, "Own child's day", at(1));
    let mut other = fx.journal(1);
    fx.observe(&mut other, "Another child's day", at(2));
    let groups = GroupMembers::default();
    let view = parent_view(&own, &fx.roster, &fx.parents[0], &groups).unwrap();
    let of = parent_view_of(
        &fx.children[0],
        &own.entries(),
        &fx.roster,
        &fx.parents[0],
        &groups,
    );
    assert_eq!(of.unwrap(), view);
    let mixed = [own.entries(), other.entries()].concat();
    let of = parent_view_of(&fx.children[0], &mixed, &fx.roster, &fx.parents[0], &groups).unwrap();
    assert_eq!(of, view, "the other child's entry is not shown");
}

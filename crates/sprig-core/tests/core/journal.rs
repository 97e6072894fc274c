use sprig_core::{
    Actor, AgeBand, Area, Characteristic, DocError, EntryEdit, EntryStatus, Heads, Journal,
    NewEntry, Roster, SettingDoc, plan_entry,
};
use sprig_testkit::{Fixture, photo_ref};

use crate::at;

#[test]
fn group_observation_goes_into_each_journal_and_names_no_other_child() {
    let fx = Fixture::new(4);
    let mut a = fx.journal(0);
    let mut b = fx.journal(1);
    let plan = plan_entry(
        &fx.roster,
        &Actor::Staff(fx.staff[0].clone()),
        NewEntry {
            children: vec![fx.children[0].clone(), fx.children[1].clone()],
            text: "Built a bridge together".into(),
            media: vec![photo_ref(9)],
            ..Default::default()
        },
        at(0),
    )
    .unwrap();
    a.apply_entry(&plan).unwrap();
    b.apply_entry(&plan).unwrap();
    let ea = &a.entries()[0];
    let eb = &b.entries()[0];
    assert_eq!(ea.group, eb.group);
    assert!(ea.group.is_some());
    assert_eq!(ea.child, fx.children[0]);
    assert_eq!(eb.child, fx.children[1]);
    // Neither the other child's id nor name appears anywhere in the stored journal.
    let other_id = fx.children[1].as_str().as_bytes().to_vec();
    let other_name = fx.roster.child(&fx.children[1]).unwrap().name.into_bytes();
    let bytes = a.save_uncompressed();
    assert!(!contains(&bytes, &other_id));
    assert!(!contains(&bytes, &other_name));
    // A plan cannot be written into an untagged child's journal.
    let mut c = fx.journal(2);
    assert!(c.apply_entry(&plan).is_err());
}

pub(crate) fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn save_load_and_incremental_round_trip() {
    let fx = Fixture::new(1);
    let mut j = fx.journal(0);
    let snapshot = j.save();
    let e1 = fx.observe(&mut j, "First steps outside", at(1));
    let inc1 = j.save_incremental();
    let e2 = fx.observe_with_media(&mut j, "Puddle jumping", photo_ref(4), at(2));
    fx.reply(&mut j, &e2, "Wellies next time", at(3));
    let inc2 = j.save_incremental();
    assert!(
        j.save_incremental().is_empty(),
        "nothing new, nothing saved"
    );
    let mut all = snapshot.clone();
    all.extend_from_slice(&inc1);
    all.extend_from_slice(&inc2);
    let mut loaded = Journal::load(&all).unwrap();
    assert_eq!(loaded.entries(), j.entries());
    assert_eq!(loaded.heads(), j.heads());
    assert!(
        loaded.save_incremental().is_empty(),
        "a fresh load has nothing unsaved"
    );
    let mut partial = Journal::load(&snapshot).unwrap();
    partial.apply_incremental(&inc1).unwrap();
    assert!(partial.entry(&e1).is_some());
    assert!(partial.entry(&e2).is_none());
    let e = j.entry(&e2).unwrap();
    assert_eq!(e.media, vec![photo_ref(4)]);
    assert_eq!(e.replies[0].text, "Wellies next time");
    assert_eq!(e.status, EntryStatus::Published);
}

#[test]
fn heads_round_trip_through_bytes() {
    let fx = Fixture::new(1);
    let mut j = fx.journal(0);
    fx.observe(&mut j, "x", at(1));
    let h = j.heads();
    assert_eq!(Heads::from_bytes(&h.to_bytes()).unwrap(), h);
    assert!(Heads::from_bytes(&[1, 2, 3]).is_err());
}

#[test]
fn changed_since_names_exactly_the_touched_entries() {
    let fx = Fixture::new(1);
    let mut j = fx.journal(0);
    let a = fx.observe(&mut j, "a", at(1));
    let b = fx.observe(&mut j, "b", at(2));
    let all = j.changed_since(&Heads::default());
    assert_eq!(all.upserted.len(), 2);
    let h = j.heads();
    assert!(j.changed_since(&h).upserted.is_empty());
    fx.reply(&mut j, &b, "reply to b", at(3));
    let c = fx.observe(&mut j, "c", at(4));
    let mut changed = j.changed_since(&h);
    changed.upserted.sort();
    let mut want = vec![b.clone(), c];
    want.sort();
    assert_eq!(changed.upserted, want);
    let h2 = j.heads();
    j.delete_entry(&fx.roster, &Actor::Staff(fx.staff[0].clone()), &a, at(5))
        .unwrap();
    let changed = j.changed_since(&h2);
    assert_eq!(changed.removed, vec![a]);
    assert!(changed.upserted.is_empty());
}

#[test]
fn independently_created_journals_merge_without_losing_entries() {
    let fx = Fixture::new(1);
    let mut a = fx.journal(0);
    let mut b = fx.journal(0);
    let ea = fx.observe(&mut a, "seen by tablet A", at(1));
    let eb = fx.observe(&mut b, "seen by tablet B", at(2));
    a.merge(&mut b).unwrap();
    assert!(a.entry(&ea).is_some() && a.entry(&eb).is_some());
}

#[test]
fn concurrent_text_edits_are_both_kept_and_the_later_shown() {
    let fx = Fixture::new(1);
    let staff = Actor::Staff(fx.staff[0].clone());
    let mut a = fx.journal(0);
    let id = fx.observe(&mut a, "Tom stacked blocks.", at(1));
    let mut b = a.fork();
    let edit = |text: &str| EntryEdit {
        text: text.into(),
        next_steps: String::new(),
        areas: vec![Area::Mathematics],
        ..EntryEdit::default()
    };
    a.edit_entry(
        &fx.roster,
        &staff,
        &id,
        &edit("Tom carefully stacked blocks."),
        at(2),
    )
    .unwrap();
    b.edit_entry(
        &fx.roster,
        &staff,
        &id,
        &edit("Tom stacked five blocks."),
        at(3),
    )
    .unwrap();
    a.merge(&mut b).unwrap();
    b.merge(&mut a).unwrap();
    // The later correction is shown; both are kept, oldest first, on every replica.
    assert_eq!(a.entry(&id).unwrap().text, "Tom stacked five blocks.");
    let revisions: Vec<String> = a.revisions(&id).into_iter().map(|r| r.text).collect();
    assert_eq!(
        revisions,
        ["Tom carefully stacked blocks.", "Tom stacked five blocks."]
    );
    assert_eq!(a.revisions(&id), b.revisions(&id));
    assert_eq!(a.revisions(&id)[1].at, at(3));
    assert_eq!(a.entries(), b.entries());
    assert!(a.entry(&id).unwrap().edited_at.is_some());
    assert!(matches!(
        a.edit_entry(
            &fx.roster,
            &Actor::Parent(fx.parents[0].clone()),
            &id,
            &edit("hack"),
            at(4)
        ),
        Err(sprig_core::RuleError::StaffOnly)
    ));
}

#[test]
fn concurrent_approve_and_reject_converge_to_rejected() {
    let fx = Fixture::new(1);
    let mut a = fx.journal(0);
    let plan = plan_entry(
        &fx.roster,
        &Actor::Parent(fx.parents[0].clone()),
        NewEntry {
            children: vec![fx.children[0].clone()],
            text: "From home".into(),
            ..Default::default()
        },
        at(0),
    )
    .unwrap();
    a.apply_entry(&plan).unwrap();
    let mut b = a.fork();
    a.approve(
        &fx.roster,
        &Actor::Staff(fx.staff[0].clone()),
        &plan.id,
        at(1),
    )
    .unwrap();
    b.reject(
        &fx.roster,
        &Actor::Staff(fx.staff[1].clone()),
        &plan.id,
        at(2),
    )
    .unwrap();
    a.merge(&mut b).unwrap();
    b.merge(&mut a).unwrap();
    assert_eq!(a.entry(&plan.id).unwrap().status, EntryStatus::Rejected);
    assert_eq!(b.entry(&plan.id).unwrap().status, EntryStatus::Rejected);
}

#[test]
fn drafts_publish() {
    let fx = Fixture::new(1);
    let staff = Actor::Staff(fx.staff[0].clone());
    let mut j = fx.journal(0);
    let plan = plan_entry(
        &fx.roster,
        &staff,
        NewEntry {
            children: vec![fx.children[0].clone()],
            text: "draft".into(),
            draft: true,
            ..Default::default()
        },
        at(0),
    )
    .unwrap();
    j.apply_entry(&plan).unwrap();
    assert_eq!(j.entry(&plan.id).unwrap().status, EntryStatus::Draft);
    j.publish(&fx.roster, &staff, &plan.id, at(1)).unwrap();
    assert_eq!(j.entry(&plan.id).unwrap().status, EntryStatus::Published);
}

#[test]
fn loading_refuses_garbage_and_wrong_kinds() {
    assert!(matches!(
        Journal::load(b"definitely not automerge"),
        Err(DocError::Corrupt(_))
    ));
    let mut roster = Roster::new();
    let err = Journal::load(&roster.save()).unwrap_err();
    assert!(
        matches!(
            err,
            DocError::WrongKind {
                expected: "journal",
                ..
            }
        ),
        "{err:?}"
    );
    let mut setting = SettingDoc::new("Acorn");
    assert!(Roster::load(&setting.save()).is_err());
    let fx = Fixture::new(1);
    let mut j = fx.journal(0);
    let bytes = j.save();
    assert!(Journal::load(&bytes[..bytes.len() / 2]).is_err());
}

#[test]
fn journals_of_different_children_or_epochs_do_not_merge() {
    let fx = Fixture::new(2);
    let mut a = fx.journal(0);
    let mut b = fx.journal(1);
    assert!(matches!(a.merge(&mut b), Err(DocError::DifferentDocument)));
    let mut next = a.rebuild_epoch();
    assert!(matches!(
        a.merge(&mut next),
        Err(DocError::EpochMismatch { ours: 0, theirs: 1 })
    ));
}

#[test]
fn roster_round_trips_and_merges() {
    let mut fx = Fixture::new(3);
    let mut other = fx.roster.fork();
    fx.roster
        .set_consent(&fx.children[0], sprig_core::Consent::No, at(1))
        .unwrap();
    let new_staff = other
        .add_staff("Staff Later", sprig_core::Role::Practitioner, at(2))
        .unwrap();
    fx.roster.merge(&mut other).unwrap();
    let loaded = Roster::load(&fx.roster.save()).unwrap();
    assert_eq!(loaded.children(), fx.roster.children());
    assert_eq!(
        loaded.child(&fx.children[0]).unwrap().photo_consent,
        sprig_core::Consent::No
    );
    assert!(loaded.staff(&new_staff).is_some());
    assert_eq!(loaded.parents_of(&fx.children[1]).len(), 1);
}

#[test]
fn sync_protocol_brings_two_replicas_to_the_same_heads_and_resumes_from_saved_state() {
    let fx = Fixture::new(1);
    let mut a = fx.journal(0);
    let mut b = fx.journal(0);
    for i in 0..20 {
        fx.observe(&mut a, &format!("a{i}"), at(i));
        fx.observe(&mut b, &format!("b{i}"), at(i));
    }
    let (mut sa, mut sb) = (sprig_core::SyncState::new(), sprig_core::SyncState::new());
    let mut rounds = 0;
    loop {
        let ma = a.generate_sync_message(&mut sa);
        let mb = b.generate_sync_message(&mut sb);
        if ma.is_none() && mb.is_none() {
            break;
        }
        if let Some(m) = ma {
            b.receive_sync_message(&mut sb, &m).unwrap();
        }
        if let Some(m) = mb {
            a.receive_sync_message(&mut sa, &m).unwrap();
        }
        rounds += 1;
        assert!(rounds < 20, "sync must reach quiescence");
    }
    assert_eq!(a.heads(), b.heads());
    assert_eq!(a.entries().len(), 40);
    // A persisted state lets the next session start from what was shared.
    let mut sa2 = sprig_core::SyncState::decode(&sa.encode()).unwrap();
    fx.observe(&mut a, "after", at(100));
    let m = a.generate_sync_message(&mut sa2).unwrap();
    let mut sb2 = sprig_core::SyncState::decode(&sb.encode()).unwrap();
    b.receive_sync_message(&mut sb2, &m).unwrap();
    assert!(b.receive_sync_message(&mut sb2, b"garbage").is_err());
}

#[test]
fn age_band_and_characteristics_are_recorded_edited_and_survive_a_new_epoch() {
    let fx = Fixture::new(1);
    let staff = Actor::Staff(fx.staff[0].clone());
    let mut j = fx.journal(0);
    let plan = plan_entry(
        &fx.roster,
        &staff,
        NewEntry {
            children: vec![fx.children[0].clone()],
            text: "Counted the ducks".into(),
            areas: vec![Area::Mathematics],
            band: Some(AgeBand::ThreeAndFour),
            characteristics: vec![
                Characteristic::PlayingAndExploring,
                Characteristic::ActiveLearning,
                Characteristic::PlayingAndExploring,
            ],
            ..Default::default()
        },
        at(1),
    )
    .unwrap();
    j.apply_entry(&plan).unwrap();
    let e = j.entry(&plan.id).unwrap();
    assert_eq!(e.band, Some(AgeBand::ThreeAndFour));
    assert_eq!(
        e.characteristics,
        [
            Characteristic::PlayingAndExploring,
            Characteristic::ActiveLearning
        ]
    );
    j.edit_entry(
        &fx.roster,
        &staff,
        &plan.id,
        &EntryEdit {
            text: "Counted six ducks".into(),
            areas: vec![Area::Mathematics],
            band: None,
            characteristics: vec![Characteristic::CreatingAndThinkingCritically],
            ..EntryEdit::default()
        },
        at(2),
    )
    .unwrap();
    let mut loaded = Journal::load(&j.save()).unwrap();
    let e = loaded.entry(&plan.id).unwrap();
    assert_eq!(e.band, None);
    assert_eq!(
        e.characteristics,
        [Characteristic::CreatingAndThinkingCritically]
    );
    let rebuilt = loaded.rebuild_epoch();
    assert_eq!(
        rebuilt.entry(&plan.id).unwrap().characteristics,
        e.characteristics
    );
    assert_eq!(loaded.heads(), Journal::load(&j.save()).unwrap().heads());
}

#[test]
fn areas_parse_from_their_short_forms_in_any_case() {
    for a in Area::ALL {
        assert_eq!(Area::parse_any(a.short()).unwrap(), *a);
        assert_eq!(Area::parse_any(&a.short().to_lowercase()).unwrap(), *a);
        assert_eq!(Area::parse_any(a.as_str()).unwrap(), *a);
    }
    assert!(Area::parse_any("maths").is_err());
}

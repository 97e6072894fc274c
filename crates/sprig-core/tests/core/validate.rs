//! The server's check of what a tablet wrote (`Journal::validate_since`): every write the app
//! makes passes, and each class of forbidden write, made on a replica through the libraries,
//! is refused with its rule.

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ObjType, ROOT, ReadDoc, ScalarValue};
use proptest::prelude::*;
use sprig_core::{
    Accepted, Actor, AgeBand, Area, Characteristic, EntryEdit, EntryId, Journal, NewEntry, Roster,
    RosterView, Violation, plan_entry,
};
use sprig_testkit::{Fixture, photo_ref};

use crate::at;

/// The server's copy and a tablet's copy of child `i`'s journal, in sync.
fn pair(fx: &Fixture, i: usize) -> (Journal, Journal) {
    let mut server = fx.journal(i);
    let device = Journal::load(&server.save()).unwrap();
    (server, device)
}

/// What the server does with a tablet's copy: applies its changes to a working copy of its
/// own and validates everything new.
fn validate(
    server: &mut Journal,
    device: &mut Journal,
    roster: &Roster,
) -> Result<Accepted, Violation> {
    validate_bytes(server, &device.save(), roster)
}

fn validate_bytes(
    server: &mut Journal,
    device: &[u8],
    roster: &Roster,
) -> Result<Accepted, Violation> {
    let before = server.heads();
    let mut working = Journal::load(&server.save()).unwrap();
    working.apply_incremental(device).unwrap();
    working.validate_since(&before, &RosterView::new(roster))
}

/// Brings the server's copy up to the tablet's (after a passing validation).
fn accept(server: &mut Journal, device: &mut Journal) {
    server.apply_incremental(&device.save()).unwrap();
}

/// A tablet's copy changed through Automerge directly (a modified client), committed as one
/// change: the bytes it would sync.
fn tamper(device: &mut Journal, f: impl FnOnce(&mut AutoCommit)) -> Vec<u8> {
    let mut am = AutoCommit::load(&device.save()).unwrap();
    f(&mut am);
    am.commit();
    am.save()
}

fn obj(am: &AutoCommit, parent: &automerge::ObjId, key: &str) -> automerge::ObjId {
    match am.get(parent, key).unwrap() {
        Some((automerge::Value::Object(_), id)) => id,
        other => panic!("{key} is not an object: {other:?}"),
    }
}

fn entry_obj(am: &AutoCommit, id: &EntryId) -> automerge::ObjId {
    let entries = obj(am, &ROOT, "entries");
    obj(am, &entries, id.as_str())
}

fn staff(fx: &Fixture) -> Actor {
    Actor::Staff(fx.staff[0].clone())
}

/// A parent contribution, as the server writes it for the portal.
fn contribution(fx: &Fixture, server: &mut Journal, i: usize) -> EntryId {
    let plan = plan_entry(
        &fx.roster,
        &Actor::Parent(fx.parents[i].clone()),
        NewEntry {
            children: vec![fx.children[i].clone()],
            text: "We baked bread at home".into(),
            ..NewEntry::default()
        },
        at(1),
    )
    .unwrap();
    server.apply_entry(&plan).unwrap();
    plan.id
}

fn refused(r: Result<Accepted, Violation>) -> &'static str {
    match r {
        Ok(a) => panic!("a forbidden change passed: {a:?}"),
        Err(v) => v.rule(),
    }
}

#[test]
fn everything_the_app_writes_passes() {
    let fx = Fixture::new(3);
    let (mut server, _) = pair(&fx, 0);
    let pending = contribution(&fx, &mut server, 0);
    let rejected = contribution(&fx, &mut server, 0);
    let mut device = Journal::load(&server.save()).unwrap();
    let before = server.heads();

    // A new observation with everything an observation can carry, saved as a draft.
    let plan = plan_entry(
        &fx.roster,
        &staff(&fx),
        NewEntry {
            children: vec![fx.children[0].clone()],
            text: "Counted the ducks on the pond".into(),
            areas: vec![Area::Mathematics, Area::UnderstandingTheWorld],
            band: Some(AgeBand::ThreeAndFour),
            characteristics: vec![Characteristic::PlayingAndExploring],
            next_steps: "Count to ten".into(),
            media: vec![photo_ref(1)],
            draft: true,
        },
        at(2),
    )
    .unwrap();
    device.apply_entry(&plan).unwrap();
    // Edited, published, replied to — all offline, before the first sync.
    device
        .edit_entry(
            &fx.roster,
            &staff(&fx),
            &plan.id,
            &EntryEdit {
                text: "Counted six ducks on the pond".into(),
                next_steps: "Count to twenty".into(),
                areas: vec![Area::Mathematics],
                band: None,
                characteristics: vec![Characteristic::ActiveLearning],
            },
            at(3),
        )
        .unwrap();
    device
        .publish(&fx.roster, &staff(&fx), &plan.id, at(4))
        .unwrap();
    fx.reply(&mut device, &plan.id, "Lovely counting", at(5));
    // Reviews of parents' contributions, and a reply to one.
    device
        .approve(&fx.roster, &staff(&fx), &pending, at(6))
        .unwrap();
    device
        .reject(&fx.roster, &staff(&fx), &rejected, at(6))
        .unwrap();
    fx.reply(&mut device, &pending, "Thank you!", at(7));
    // A group observation's copy in this child's journal.
    let group = plan_entry(
        &fx.roster,
        &staff(&fx),
        NewEntry {
            children: vec![fx.children[0].clone(), fx.children[1].clone()],
            text: "Built a den".into(),
            media: vec![photo_ref(2)],
            ..NewEntry::default()
        },
        at(8),
    )
    .unwrap();
    device.apply_entry(&group).unwrap();

    let accepted = validate(&mut server, &mut device, &fx.roster).unwrap();
    assert_eq!(accepted.new_entries.len(), 2);
    let mut media = accepted.media.clone();
    media.sort();
    let mut expected = vec![photo_ref(1).sha256, photo_ref(2).sha256];
    expected.sort();
    assert_eq!(media, expected);
    assert!(accepted.ops > 30, "{accepted:?}");
    accept(&mut server, &mut device);

    // Later edits of an entry the server already holds, in a second session.
    let before2 = server.heads();
    assert_ne!(before, before2);
    device
        .edit_entry(
            &fx.roster,
            &staff(&fx),
            &plan.id,
            &EntryEdit {
                text: "Counted seven ducks".into(),
                band: Some(AgeBand::Reception),
                areas: vec![Area::Mathematics, Area::Literacy],
                ..EntryEdit::default()
            },
            at(9),
        )
        .unwrap();
    fx.reply(&mut device, &plan.id, "And a swan", at(10));
    let accepted = validate(&mut server, &mut device, &fx.roster).unwrap();
    assert!(accepted.new_entries.is_empty());
    // Nothing new: nothing to check.
    accept(&mut server, &mut device);
    assert_eq!(
        validate(&mut server, &mut device, &fx.roster).unwrap(),
        Accepted::default()
    );
}

#[test]
fn root_fields_are_the_servers() {
    let fx = Fixture::new(2);
    for (key, value) in [
        ("kind", ScalarValue::Str("roster".into())),
        ("child", ScalarValue::Str(fx.children[1].to_string().into())),
        ("epoch", ScalarValue::Int(7)),
        ("schema", ScalarValue::Int(0)),
        ("entries", ScalarValue::Null),
        ("extra", ScalarValue::Str("x".into())),
    ] {
        let (mut server, mut device) = pair(&fx, 0);
        let rogue = tamper(&mut device, |am| am.put(ROOT, key, value).unwrap());
        assert_eq!(
            refused(validate_bytes(&mut server, &rogue, &fx.roster)),
            "root_field",
            "{key}"
        );
    }
    let (mut server, mut device) = pair(&fx, 0);
    let rogue = tamper(&mut device, |am| am.delete(ROOT, "entries").unwrap());
    assert_eq!(
        refused(validate_bytes(&mut server, &rogue, &fx.roster)),
        "root_field"
    );
}

#[test]
fn existing_entries_replies_revisions_and_reviews_cannot_be_rewritten_or_deleted() {
    let fx = Fixture::new(1);
    let (mut server, _) = pair(&fx, 0);
    let entry = fx.observe(&mut server, "Painted a rainbow", at(1));
    fx.reply(&mut server, &entry, "Beautiful", at(2));
    server
        .edit_entry(
            &fx.roster,
            &staff(&fx),
            &entry,
            &EntryEdit {
                text: "Painted a big rainbow".into(),
                ..EntryEdit::default()
            },
            at(3),
        )
        .unwrap();
    let reviewed = contribution(&fx, &mut server, 0);
    server
        .approve(&fx.roster, &staff(&fx), &reviewed, at(4))
        .unwrap();
    let draft = {
        let plan = plan_entry(
            &fx.roster,
            &staff(&fx),
            NewEntry {
                children: vec![fx.children[0].clone()],
                text: "Published one".into(),
                ..NewEntry::default()
            },
            at(5),
        )
        .unwrap();
        server.apply_entry(&plan).unwrap();
        plan.id
    };
    let base = server.save();
    let fresh = || Journal::load(&base).unwrap();

    // Deleting through the library call that exists for the server.
    let mut rogue = fresh();
    rogue
        .delete_entry(&fx.roster, &staff(&fx), &entry, at(9))
        .unwrap();
    assert_eq!(
        refused(validate(&mut server, &mut rogue, &fx.roster)),
        "entry_delete"
    );

    type Edit<'a> = Box<dyn Fn(&mut AutoCommit) + 'a>;
    let e = entry.clone();
    let r = reviewed.clone();
    let d = draft.clone();
    let cases: Vec<(&str, Edit<'_>, &str)> = vec![
        (
            "text",
            Box::new(move |am| {
                let o = entry_obj(am, &e);
                am.put(&o, "text", "Something else entirely").unwrap();
            }),
            "entry_rewrite",
        ),
        (
            "author",
            {
                let e = entry.clone();
                let other = fx.staff[1].to_string();
                Box::new(move |am| {
                    let o = entry_obj(am, &e);
                    am.put(&o, "author_id", other.as_str()).unwrap();
                })
            },
            "entry_rewrite",
        ),
        (
            "media",
            {
                let e = entry.clone();
                Box::new(move |am| {
                    let o = entry_obj(am, &e);
                    let media = obj(am, &o, "media");
                    am.insert_object(&media, 0, ObjType::Map).unwrap();
                })
            },
            "entry_rewrite",
        ),
        (
            "reply text",
            {
                let e = entry.clone();
                Box::new(move |am| {
                    let o = entry_obj(am, &e);
                    let replies = obj(am, &o, "replies");
                    let key = am.keys(&replies).next().unwrap();
                    let reply = obj(am, &replies, &key);
                    am.put(&reply, "text", "Rewritten").unwrap();
                })
            },
            "history_rewrite",
        ),
        (
            "reply deleted",
            {
                let e = entry.clone();
                Box::new(move |am| {
                    let o = entry_obj(am, &e);
                    let replies = obj(am, &o, "replies");
                    let key = am.keys(&replies).next().unwrap();
                    am.delete(&replies, key.as_str()).unwrap();
                })
            },
            "history_rewrite",
        ),
        (
            "revision",
            {
                let e = entry.clone();
                Box::new(move |am| {
                    let o = entry_obj(am, &e);
                    let revs = obj(am, &o, "revisions");
                    let key = am.keys(&revs).next().unwrap();
                    let rev = obj(am, &revs, &key);
                    am.put(&rev, "text", "Rewritten").unwrap();
                })
            },
            "history_rewrite",
        ),
        (
            "review",
            Box::new(move |am| {
                let o = entry_obj(am, &r);
                am.put(&o, "approved_by", "someone").unwrap();
            }),
            "history_rewrite",
        ),
        (
            "unpublish",
            Box::new(move |am| {
                let o = entry_obj(am, &d);
                am.put(&o, "published", false).unwrap();
            }),
            "entry_rewrite",
        ),
        (
            "entry replaced",
            {
                let e = entry.clone();
                Box::new(move |am| {
                    let entries = obj(am, &ROOT, "entries");
                    am.put_object(&entries, e.as_str(), ObjType::Map).unwrap();
                })
            },
            "duplicate_id",
        ),
    ];
    for (what, edit, rule) in cases {
        let rogue = tamper(&mut fresh(), |am| edit(am));
        assert_eq!(
            refused(validate_bytes(&mut server, &rogue, &fx.roster)),
            rule,
            "{what}"
        );
    }
}

#[test]
fn an_entry_made_concurrently_under_an_existing_id_is_refused() {
    let fx = Fixture::new(1);
    let (mut server, device) = pair(&fx, 0);
    let entry = fx.observe(&mut server, "Server's copy", at(1));
    // The tablet never saw the entry and writes its own under the same id: a conflict that
    // would hide one of the two.
    let mut device = device;
    let rogue = tamper(&mut device, |am| {
        let entries = obj(am, &ROOT, "entries");
        let o = am
            .put_object(&entries, entry.as_str(), ObjType::Map)
            .unwrap();
        am.put(&o, "kind", "observation").unwrap();
    });
    assert_eq!(
        refused(validate_bytes(&mut server, &rogue, &fx.roster)),
        "duplicate_id"
    );
}

#[test]
fn parents_contributions_and_replies_are_the_servers_to_write() {
    let fx = Fixture::new(1);
    let (mut server, mut device) = pair(&fx, 0);
    contribution(&fx, &mut device, 0);
    assert_eq!(
        refused(validate(&mut server, &mut device, &fx.roster)),
        "parent_write"
    );

    let (mut server, _) = pair(&fx, 0);
    let entry = fx.observe(&mut server, "Splashed in puddles", at(1));
    let mut device = Journal::load(&server.save()).unwrap();
    device
        .reply(
            &fx.roster,
            &Actor::Parent(fx.parents[0].clone()),
            &entry,
            "So proud!",
            at(2),
        )
        .unwrap();
    assert_eq!(
        refused(validate(&mut server, &mut device, &fx.roster)),
        "parent_write"
    );
}

#[test]
fn authors_must_be_active_staff_on_the_servers_roster() {
    let fx = Fixture::new(1);
    // The tablet's roster was tampered with: it holds a member of staff the server never made.
    let mut forged = fx.roster.clone();
    let stranger = forged
        .add_staff("Not Real", sprig_core::Role::Manager, at(0))
        .unwrap();
    let (mut server, mut device) = pair(&fx, 0);
    let plan = plan_entry(
        &forged,
        &Actor::Staff(stranger.clone()),
        NewEntry {
            children: vec![fx.children[0].clone()],
            text: "Forged".into(),
            ..NewEntry::default()
        },
        at(1),
    )
    .unwrap();
    device.apply_entry(&plan).unwrap();
    assert_eq!(
        refused(validate(&mut server, &mut device, &fx.roster)),
        "unknown_author"
    );

    // Deactivated on the server while the tablet still thought them active.
    let mut roster = fx.roster.clone();
    roster.deactivate_staff(&fx.staff[0], at(1)).unwrap();
    let (mut server, mut device) = pair(&fx, 0);
    fx.observe(&mut device, "Recorded after leaving", at(2));
    assert_eq!(
        refused(validate(&mut server, &mut device, &roster)),
        "inactive_author"
    );
    // The same holds for replies and revisions.
    let (mut server, _) = pair(&fx, 0);
    let entry = fx.observe(&mut server, "Ran fast", at(1));
    let mut device = Journal::load(&server.save()).unwrap();
    fx.reply(&mut device, &entry, "Zoom", at(3));
    assert_eq!(
        refused(validate(&mut server, &mut device, &roster)),
        "inactive_author"
    );
}

#[test]
fn a_group_photo_must_not_tag_a_child_without_consent() {
    let fx = Fixture::new(3);
    // Child 2 has no consent; the tablet's roster was forged to say yes.
    let mut forged = fx.roster.clone();
    forged
        .set_consent(&fx.children[2], sprig_core::Consent::Yes, at(0))
        .unwrap();
    let plan = plan_entry(
        &forged,
        &staff(&fx),
        NewEntry {
            children: vec![fx.children[0].clone(), fx.children[2].clone()],
            text: "Group photo".into(),
            media: vec![photo_ref(3)],
            ..NewEntry::default()
        },
        at(1),
    )
    .unwrap();
    let (mut server, mut device) = pair(&fx, 2);
    device.apply_entry(&plan).unwrap();
    assert_eq!(
        refused(validate(&mut server, &mut device, &fx.roster)),
        "consent_missing"
    );
    // The consenting child's copy of the same entry is fine.
    let (mut server, mut device) = pair(&fx, 0);
    device.apply_entry(&plan).unwrap();
    validate(&mut server, &mut device, &fx.roster).unwrap();
}

#[test]
fn unknown_keys_types_and_oversized_values_are_refused() {
    let fx = Fixture::new(1);
    let (mut server, _) = pair(&fx, 0);
    let entry = fx.observe(&mut server, "Climbed the frame", at(1));
    let base = server.save();
    let fresh = || Journal::load(&base).unwrap();
    let new_entry = |am: &mut AutoCommit, f: &dyn Fn(&mut AutoCommit, &automerge::ObjId)| {
        // A well-formed new entry, then `f`'s extra.
        let mut j = Journal::load(&am.save()).unwrap();
        let id = fx.observe(&mut j, "New one", at(2));
        *am = AutoCommit::load(&j.save()).unwrap();
        let o = entry_obj(am, &id);
        f(am, &o);
    };
    type Case<'a> = (
        &'static str,
        Box<dyn Fn(&mut AutoCommit) + 'a>,
        &'static str,
    );
    let e = entry.clone();
    let cases: Vec<Case<'_>> = vec![
        (
            "unknown entry key",
            Box::new(move |am| new_entry(am, &|am, o| am.put(o, "secret", "x").unwrap())),
            "unknown_key",
        ),
        (
            "text as a number",
            Box::new(move |am| {
                let entries = obj(am, &ROOT, "entries");
                let o = am
                    .put_object(&entries, EntryId::new_random().as_str(), ObjType::Map)
                    .unwrap();
                am.put(&o, "text", 42).unwrap();
            }),
            "wrong_type",
        ),
        (
            "text as a Text object",
            Box::new(move |am| {
                let entries = obj(am, &ROOT, "entries");
                let o = am
                    .put_object(&entries, EntryId::new_random().as_str(), ObjType::Map)
                    .unwrap();
                am.put_object(&o, "text", ObjType::Text).unwrap();
            }),
            "wrong_type",
        ),
        (
            "oversized text",
            Box::new(move |am| {
                let entries = obj(am, &ROOT, "entries");
                let o = am
                    .put_object(&entries, EntryId::new_random().as_str(), ObjType::Map)
                    .unwrap();
                am.put(&o, "text", "x".repeat(20_001)).unwrap();
            }),
            "oversized",
        ),
        (
            "a counter",
            Box::new(move |am| {
                let o = entry_obj(am, &e);
                am.put(&o, "likes", ScalarValue::counter(0)).unwrap();
                am.increment(&o, "likes", 1).unwrap();
            }),
            "unknown_key",
        ),
        (
            "an unknown area",
            {
                let e = entry.clone();
                Box::new(move |am| {
                    let o = entry_obj(am, &e);
                    let areas = obj(am, &o, "areas");
                    am.put(&areas, "knitting", true).unwrap();
                })
            },
            "unknown_key",
        ),
        (
            "an entry id that is not one",
            Box::new(move |am| {
                let entries = obj(am, &ROOT, "entries");
                am.put_object(&entries, "not-an-id", ObjType::Map).unwrap();
            }),
            "unknown_key",
        ),
        (
            "an entry id in another spelling",
            Box::new(move |am| {
                let entries = obj(am, &ROOT, "entries");
                let id = EntryId::new_random().as_str().to_uppercase();
                am.put_object(&entries, id.as_str(), ObjType::Map).unwrap();
            }),
            "unknown_key",
        ),
        (
            "an incomplete entry",
            Box::new(move |am| {
                let entries = obj(am, &ROOT, "entries");
                let o = am
                    .put_object(&entries, EntryId::new_random().as_str(), ObjType::Map)
                    .unwrap();
                am.put(&o, "kind", "observation").unwrap();
            }),
            "malformed",
        ),
        (
            "a nested object",
            Box::new(move |am| {
                new_entry(am, &|am, o| {
                    let areas = obj(am, o, "areas");
                    am.put_object(&areas, "mathematics", ObjType::Map).unwrap();
                });
            }),
            "wrong_type",
        ),
        (
            "too much media",
            Box::new(move |am| {
                new_entry(am, &|am, o| {
                    let media = obj(am, o, "media");
                    for i in 0..21 {
                        let m = am.insert_object(&media, i, ObjType::Map).unwrap();
                        am.put(&m, "sha256", "00".repeat(32)).unwrap();
                        am.put(&m, "kind", "photo").unwrap();
                        am.put(&m, "mime", "image/jpeg").unwrap();
                        am.put(&m, "size", 1).unwrap();
                        am.put(&m, "width", 1).unwrap();
                        am.put(&m, "height", 1).unwrap();
                    }
                });
            }),
            "oversized",
        ),
    ];
    for (what, edit, rule) in cases {
        let rogue = tamper(&mut fresh(), |am| edit(am));
        assert_eq!(
            refused(validate_bytes(&mut server, &rogue, &fx.roster)),
            rule,
            "{what}"
        );
    }
}

#[test]
fn a_child_not_on_the_roster_or_who_has_left_gets_no_new_entries() {
    let fx = Fixture::new(2);
    let mut roster = fx.roster.clone();
    roster.mark_left(&fx.children[0], at(1)).unwrap();
    let (mut server, mut device) = pair(&fx, 0);
    fx.observe(&mut device, "After leaving", at(2));
    assert_eq!(
        refused(validate(&mut server, &mut device, &roster)),
        "unknown_child"
    );
    let other = Fixture::new(1);
    let (mut server, mut device) = pair(&other, 0);
    other.observe(&mut device, "Not our child", at(2));
    assert_eq!(
        refused(validate(&mut server, &mut device, &fx.roster)),
        "unknown_child"
    );
}

#[derive(Clone, Debug)]
enum Valid {
    Observe { media: bool, draft: bool, text: u8 },
    Edit { pick: usize, text: u8, band: bool },
    Publish { pick: usize },
    Reply { pick: usize },
    Review { pick: usize, approve: bool },
    Sync,
}

fn valid_op() -> impl Strategy<Value = Valid> {
    prop_oneof![
        (any::<bool>(), any::<bool>(), any::<u8>())
            .prop_map(|(media, draft, text)| Valid::Observe { media, draft, text }),
        (any::<usize>(), any::<u8>(), any::<bool>()).prop_map(|(pick, text, band)| Valid::Edit {
            pick,
            text,
            band
        }),
        any::<usize>().prop_map(|pick| Valid::Publish { pick }),
        any::<usize>().prop_map(|pick| Valid::Reply { pick }),
        (any::<usize>(), any::<bool>()).prop_map(|(pick, approve)| Valid::Review { pick, approve }),
        Just(Valid::Sync),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Whatever the app does through the journal's methods, in any order, across syncs, passes.
    #[test]
    fn random_valid_operations_always_pass(ops in proptest::collection::vec(valid_op(), 1..24)) {
        let fx = Fixture::new(1);
        let (mut server, mut device) = pair(&fx, 0);
        for _ in 0..2 {
            contribution(&fx, &mut server, 0);
        }
        device.apply_incremental(&server.save()).unwrap();
        for (n, op) in ops.iter().enumerate() {
            let t = at(10 + n as i64);
            let entries = device.entries();
            let pick = |p: usize| (!entries.is_empty()).then(|| entries[p % entries.len()].clone());
            match op {
                Valid::Observe { media, draft, text } => {
                    let plan = plan_entry(&fx.roster, &staff(&fx), NewEntry {
                        children: vec![fx.children[0].clone()],
                        text: format!("obs {text}"),
                        media: if *media { vec![photo_ref(*text)] } else { Vec::new() },
                        draft: *draft,
                        ..NewEntry::default()
                    }, t).unwrap();
                    device.apply_entry(&plan).unwrap();
                }
                Valid::Edit { pick: p, text, band } => if let Some(e) = pick(*p)
                    && e.kind == sprig_core::EntryKind::Observation {
                    device.edit_entry(&fx.roster, &staff(&fx), &e.id, &EntryEdit {
                        text: format!("edit {text}"),
                        band: band.then_some(AgeBand::BirthToThree),
                        ..EntryEdit::default()
                    }, t).unwrap();
                },
                Valid::Publish { pick: p } => if let Some(e) = pick(*p)
                    && e.kind == sprig_core::EntryKind::Observation {
                    device.publish(&fx.roster, &staff(&fx), &e.id, t).unwrap();
                },
                Valid::Reply { pick: p } => if let Some(e) = pick(*p) {
                    fx.reply(&mut device, &e.id, "a reply", t);
                },
                Valid::Review { pick: p, approve } => if let Some(e) = pick(*p)
                    && e.status == sprig_core::EntryStatus::Pending {
                    if *approve {
                        device.approve(&fx.roster, &staff(&fx), &e.id, t).unwrap();
                    } else {
                        device.reject(&fx.roster, &staff(&fx), &e.id, t).unwrap();
                    }
                },
                Valid::Sync => {
                    let r = validate(&mut server, &mut device, &fx.roster);
                    prop_assert!(r.is_ok(), "{:?} after {:?}", r, &ops[..=n]);
                    accept(&mut server, &mut device);
                }
            }
        }
        let r = validate(&mut server, &mut device, &fx.roster);
        prop_assert!(r.is_ok(), "{:?} after {:?}", r, ops);
    }
}

#[derive(Clone, Copy, Debug)]
enum Forbidden {
    RootField,
    DeleteEntry,
    RewriteText,
    ParentContribution,
    ParentReply,
    UnknownAuthor,
    UnknownKey,
    Oversized,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// After any valid history, one forbidden write among the valid ones of a session is
    /// refused, with its rule.
    #[test]
    fn a_forbidden_write_among_valid_ones_is_refused(
        ops in proptest::collection::vec(valid_op(), 0..12),
        bad in prop_oneof![
            Just(Forbidden::RootField), Just(Forbidden::DeleteEntry), Just(Forbidden::RewriteText),
            Just(Forbidden::ParentContribution), Just(Forbidden::ParentReply),
            Just(Forbidden::UnknownAuthor), Just(Forbidden::UnknownKey), Just(Forbidden::Oversized),
        ],
        after in any::<bool>(),
    ) {
        let fx = Fixture::new(1);
        let (mut server, _) = pair(&fx, 0);
        let target = fx.observe(&mut server, "On the server", at(1));
        let mut device = Journal::load(&server.save()).unwrap();
        let valid = |device: &mut Journal| {
            for (n, op) in ops.iter().enumerate() {
                if let Valid::Observe { text, .. } = op {
                    fx.observe(device, &format!("valid {text} {n}"), at(20 + n as i64));
                }
            }
        };
        if !after {
            valid(&mut device);
        }
        let rule = match bad {
            Forbidden::RootField => {
                let bytes = tamper(&mut device, |am| am.put(ROOT, "epoch", 9).unwrap());
                device = Journal::load(&bytes).unwrap_or_else(|_| device.clone());
                "root_field"
            }
            Forbidden::DeleteEntry => {
                device.delete_entry(&fx.roster, &staff(&fx), &target, at(5)).unwrap();
                "entry_delete"
            }
            Forbidden::RewriteText => {
                let bytes = tamper(&mut device, |am| {
                    let o = entry_obj(am, &target);
                    am.put(&o, "text", "rewritten").unwrap();
                });
                device = Journal::load(&bytes).unwrap();
                "entry_rewrite"
            }
            Forbidden::ParentContribution => {
                contribution(&fx, &mut device, 0);
                "parent_write"
            }
            Forbidden::ParentReply => {
                device.reply(&fx.roster, &Actor::Parent(fx.parents[0].clone()), &target, "hi", at(5)).unwrap();
                "parent_write"
            }
            Forbidden::UnknownAuthor => {
                let mut forged = fx.roster.clone();
                let who = forged.add_staff("Forged", sprig_core::Role::Practitioner, at(0)).unwrap();
                let plan = plan_entry(&forged, &Actor::Staff(who), NewEntry {
                    children: vec![fx.children[0].clone()],
                    text: "forged".into(),
                    ..NewEntry::default()
                }, at(5)).unwrap();
                device.apply_entry(&plan).unwrap();
                "unknown_author"
            }
            Forbidden::UnknownKey => {
                let bytes = tamper(&mut device, |am| {
                    let o = entry_obj(am, &target);
                    am.put(&o, "colour", "red").unwrap();
                });
                device = Journal::load(&bytes).unwrap();
                "unknown_key"
            }
            Forbidden::Oversized => {
                let bytes = tamper(&mut device, |am| {
                    let o = entry_obj(am, &target);
                    let replies = obj(am, &o, "replies");
                    let r = am.put_object(&replies, sprig_core::ReplyId::new_random().as_str(), ObjType::Map).unwrap();
                    am.put(&r, "text", "y".repeat(20_001)).unwrap();
                });
                device = Journal::load(&bytes).unwrap();
                "oversized"
            }
        };
        if after {
            valid(&mut device);
        }
        let got = validate(&mut server, &mut device, &fx.roster);
        prop_assert_eq!(got.map_err(|v| v.rule()), Err(rule));
    }
}

/// Regression guard for the shortcut that reads new changes from the sync message: a change
/// whose dependency is missing is queued by Automerge and applied later, by a message that
/// does not carry it; it must still be judged then.
#[test]
fn a_queued_change_applied_by_a_later_message_is_still_judged() {
    let fx = Fixture::new(1);
    let (mut server, mut device) = pair(&fx, 0);
    let base = server.heads();
    fx.observe(&mut device, "An honest observation", at(1));
    let tampered = tamper(&mut device, |am| am.put(ROOT, "schema", 0).unwrap());
    let mut am = AutoCommit::load(&tampered).unwrap();
    let base_hashes: Vec<automerge::ChangeHash> = base
        .to_bytes()
        .chunks(32)
        .map(|c| automerge::ChangeHash::try_from(c).unwrap())
        .collect();
    let changes = am.get_changes(&base_hashes);
    assert_eq!(changes.len(), 2);
    let mut rogue = Journal::load(&tampered).unwrap();
    let (mut at_server, mut at_device) =
        (sprig_core::SyncState::new(), sprig_core::SyncState::new());
    let first = server.generate_sync_message(&mut at_server).unwrap();
    rogue.receive_sync_message(&mut at_device, &first).unwrap();
    let template = rogue.generate_sync_message(&mut at_device).unwrap();
    let with = |c: &automerge::Change| {
        let mut m = automerge::sync::Message::decode(&template).unwrap();
        m.changes = vec![c.raw_bytes().to_vec()].into();
        m.encode()
    };
    let view = RosterView::new(&fx.roster);
    let mut state = sprig_core::SyncState::new();
    // The forbidden change alone: its dependency is missing, so nothing applies yet.
    let queued = server
        .receive_checked(&mut state, &with(&changes[1]), &view)
        .unwrap();
    assert_eq!(queued, Accepted::default());
    assert_eq!(server.heads(), base);
    // The honest change arrives; Automerge applies both, and the check sees both.
    let err = server
        .receive_checked(&mut state, &with(&changes[0]), &view)
        .unwrap_err();
    assert!(
        matches!(err, sprig_core::ReceiveError::Refused(ref v) if v.rule() == "root_field"),
        "{err:?}"
    );
}

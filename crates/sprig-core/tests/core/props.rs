//! Random operations on three replicas, merged in random orders, always converge, and the
//! rules hold after every merge.

use std::collections::BTreeSet;

use proptest::prelude::*;
use sprig_core::{
    Actor, Consent, EntryEdit, EntryId, EntryKind, EntryStatus, GroupMembers, Journal, NewEntry,
    Roster, parent_view, plan_entry,
};
use sprig_testkit::{Fixture, photo_ref};

use crate::at;

const REPLICAS: usize = 3;
const CHILDREN: usize = 3;

#[derive(Clone, Debug)]
enum Op {
    Observe {
        r: usize,
        kids: Vec<usize>,
        media: bool,
        text: u8,
    },
    Contribute {
        r: usize,
        kid: usize,
    },
    Edit {
        r: usize,
        kid: usize,
        pick: usize,
        text: u8,
    },
    Reply {
        r: usize,
        kid: usize,
        pick: usize,
        parent: bool,
    },
    Approve {
        r: usize,
        kid: usize,
        pick: usize,
    },
    Reject {
        r: usize,
        kid: usize,
        pick: usize,
    },
    Delete {
        r: usize,
        kid: usize,
        pick: usize,
    },
    Consent {
        r: usize,
        kid: usize,
        yes: bool,
    },
    Merge {
        from: usize,
        to: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let r = 0..REPLICAS;
    let kid = 0..CHILDREN;
    prop_oneof![
        4 => (r.clone(), proptest::sample::subsequence((0..CHILDREN).collect::<Vec<_>>(), 1..=CHILDREN), any::<bool>(), any::<u8>())
            .prop_map(|(r, kids, media, text)| Op::Observe { r, kids, media, text }),
        2 => (r.clone(), kid.clone()).prop_map(|(r, kid)| Op::Contribute { r, kid }),
        2 => (r.clone(), kid.clone(), any::<usize>(), any::<u8>()).prop_map(|(r, kid, pick, text)| Op::Edit { r, kid, pick, text }),
        2 => (r.clone(), kid.clone(), any::<usize>(), any::<bool>()).prop_map(|(r, kid, pick, parent)| Op::Reply { r, kid, pick, parent }),
        1 => (r.clone(), kid.clone(), any::<usize>()).prop_map(|(r, kid, pick)| Op::Approve { r, kid, pick }),
        1 => (r.clone(), kid.clone(), any::<usize>()).prop_map(|(r, kid, pick)| Op::Reject { r, kid, pick }),
        1 => (r.clone(), kid.clone(), any::<usize>()).prop_map(|(r, kid, pick)| Op::Delete { r, kid, pick }),
        1 => (r.clone(), kid, any::<bool>()).prop_map(|(r, kid, yes)| Op::Consent { r, kid, yes }),
        3 => (0..REPLICAS, 0..REPLICAS).prop_map(|(from, to)| Op::Merge { from, to }),
    ]
}

struct Replica {
    roster: Roster,
    journals: Vec<Journal>,
    /// Rejections this replica has made or received: the model of what it must show.
    rejected: BTreeSet<EntryId>,
}

impl Replica {
    fn merge_from(&mut self, other: &mut Replica) {
        self.roster.merge(&mut other.roster).unwrap();
        for (mine, theirs) in self.journals.iter_mut().zip(other.journals.iter_mut()) {
            mine.merge(theirs).unwrap();
        }
        self.rejected.extend(other.rejected.iter().cloned());
    }
}

fn pick(j: &Journal, i: usize) -> Option<EntryId> {
    let entries = j.entries();
    (!entries.is_empty()).then(|| entries[i % entries.len()].id.clone())
}

/// The rules that must hold on any replica at any time.
fn check_rules(fx: &Fixture, rep: &Replica) {
    let groups = GroupMembers::from_journals(rep.journals.iter());
    for (i, j) in rep.journals.iter().enumerate() {
        for e in j.entries() {
            assert_eq!(
                &e.child,
                j.child(),
                "an entry names only its own journal's child"
            );
            if rep.rejected.contains(&e.id) {
                assert_eq!(
                    e.status,
                    EntryStatus::Rejected,
                    "a rejection can never be undone by a merge"
                );
            }
            if e.kind == EntryKind::ParentContribution {
                assert_ne!(e.status, EntryStatus::Draft);
            }
        }
        let view = parent_view(j, &rep.roster, &fx.parents[i], &groups).unwrap();
        let shown = format!("{view:?}");
        for (k, other) in fx.children.iter().enumerate() {
            if k != i {
                assert!(
                    !shown.contains(other.as_str()),
                    "a parent view never names another child"
                );
            }
        }
        for pe in &view.entries {
            let e = j.entry(&pe.id).unwrap();
            let own = e.author == sprig_core::Author::Parent(fx.parents[i].clone());
            assert!(
                e.status == EntryStatus::Published || own,
                "parents see published or their own only"
            );
            if let Some(g) = &e.group {
                let all_consent = groups
                    .members(g)
                    .unwrap()
                    .iter()
                    .all(|c| rep.roster.child(c).unwrap().photo_consent == Consent::Yes);
                if !all_consent {
                    assert!(
                        pe.media.is_empty(),
                        "group media hidden without everyone's consent"
                    );
                }
            }
        }
    }
    // Every replica's other parents are refused.
    for (i, j) in rep.journals.iter().enumerate() {
        let other = (i + 1) % CHILDREN;
        assert!(parent_view(j, &rep.roster, &fx.parents[other], &groups).is_err());
    }
}

fn run(ops: Vec<Op>, final_order: &[usize]) {
    let fx = Fixture::new(CHILDREN);
    let mut base: Vec<Journal> = (0..CHILDREN).map(|i| fx.journal(i)).collect();
    let mut reps: Vec<Replica> = (0..REPLICAS)
        .map(|_| Replica {
            roster: fx.roster.clone().fork(),
            journals: base.iter_mut().map(Journal::fork).collect(),
            rejected: BTreeSet::new(),
        })
        .collect();
    let staff = |r: usize| Actor::Staff(fx.staff[r % fx.staff.len()].clone());
    for (n, op) in ops.into_iter().enumerate() {
        let t = at(i64::try_from(n).unwrap());
        match op {
            Op::Observe {
                r,
                kids,
                media,
                text,
            } => {
                let rep = &mut reps[r];
                let children: Vec<_> = kids.iter().map(|&k| fx.children[k].clone()).collect();
                let new = NewEntry {
                    children,
                    text: format!("observation {text}"),
                    media: if media { vec![photo_ref(text)] } else { vec![] },
                    ..Default::default()
                };
                if let Ok(plan) = plan_entry(&rep.roster, &staff(r), new, t) {
                    for &k in &kids {
                        rep.journals[k].apply_entry(&plan).unwrap();
                    }
                } else {
                    assert!(
                        media && kids.len() > 1,
                        "only group media may be refused here"
                    );
                }
            }
            Op::Contribute { r, kid } => {
                let rep = &mut reps[r];
                let plan = plan_entry(
                    &rep.roster,
                    &Actor::Parent(fx.parents[kid].clone()),
                    NewEntry {
                        children: vec![fx.children[kid].clone()],
                        text: "from home".into(),
                        ..Default::default()
                    },
                    t,
                )
                .unwrap();
                rep.journals[kid].apply_entry(&plan).unwrap();
            }
            Op::Edit {
                r,
                kid,
                pick: p,
                text,
            } => {
                let rep = &mut reps[r];
                if let Some(id) = pick(&rep.journals[kid], p) {
                    let edit = EntryEdit {
                        text: format!("edited {text}"),
                        ..Default::default()
                    };
                    rep.journals[kid]
                        .edit_entry(&rep.roster, &staff(r), &id, &edit, t)
                        .unwrap();
                }
            }
            Op::Reply {
                r,
                kid,
                pick: p,
                parent,
            } => {
                let rep = &mut reps[r];
                if let Some(id) = pick(&rep.journals[kid], p) {
                    let actor = if parent {
                        Actor::Parent(fx.parents[kid].clone())
                    } else {
                        staff(r)
                    };
                    let _refused_if_not_visible =
                        rep.journals[kid].reply(&rep.roster, &actor, &id, "reply", t);
                }
            }
            Op::Approve { r, kid, pick: p } => {
                let rep = &mut reps[r];
                if let Some(id) = pick(&rep.journals[kid], p) {
                    let _ = rep.journals[kid].approve(&rep.roster, &staff(r), &id, t);
                }
            }
            Op::Reject { r, kid, pick: p } => {
                let rep = &mut reps[r];
                if let Some(id) = pick(&rep.journals[kid], p)
                    && rep.journals[kid]
                        .reject(&rep.roster, &staff(r), &id, t)
                        .is_ok()
                {
                    rep.rejected.insert(id);
                }
            }
            Op::Delete { r, kid, pick: p } => {
                let rep = &mut reps[r];
                if let Some(id) = pick(&rep.journals[kid], p) {
                    rep.journals[kid]
                        .delete_entry(&rep.roster, &staff(r), &id, t)
                        .unwrap();
                }
            }
            Op::Consent { r, kid, yes } => {
                let c = if yes { Consent::Yes } else { Consent::No };
                reps[r].roster.set_consent(&fx.children[kid], c, t).unwrap();
            }
            Op::Merge { from, to } => {
                if from != to {
                    let (a, b) = two(&mut reps, to, from);
                    a.merge_from(b);
                    check_rules(&fx, a);
                }
            }
        }
    }
    // Final anti-entropy in a random order: gather into one, then spread.
    let first = final_order[0];
    for &r in &final_order[1..] {
        let (a, b) = two(&mut reps, first, r);
        a.merge_from(b);
    }
    for &r in &final_order[1..] {
        let (a, b) = two(&mut reps, r, first);
        a.merge_from(b);
    }
    for rep in &reps {
        check_rules(&fx, rep);
    }
    let (head, rest) = reps.split_first_mut().unwrap();
    for other in rest {
        assert_eq!(head.roster.heads(), other.roster.heads());
        assert_eq!(head.roster.children(), other.roster.children());
        for (a, b) in head.journals.iter_mut().zip(other.journals.iter_mut()) {
            assert_eq!(a.heads(), b.heads(), "same heads");
            assert_eq!(a.entries(), b.entries(), "same materialised journal");
        }
    }
}

fn two<T>(v: &mut [T], a: usize, b: usize) -> (&mut T, &mut T) {
    assert_ne!(a, b);
    if a < b {
        let (l, r) = v.split_at_mut(b);
        (&mut l[a], &mut r[0])
    } else {
        let (l, r) = v.split_at_mut(a);
        (&mut r[0], &mut l[b])
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn replicas_converge_and_rules_hold(
        ops in proptest::collection::vec(op(), 1..40),
        order in Just((0..REPLICAS).collect::<Vec<_>>()).prop_shuffle(),
    ) {
        run(ops, &order);
    }
}

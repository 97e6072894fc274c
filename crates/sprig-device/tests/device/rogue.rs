//! A rogue tablet: its documents were tampered with through the libraries (as anyone holding
//! the tablet's key could), then it syncs against a real server. For every kind of tamper the
//! server keeps nothing, an honest tablet sees nothing of it and its own concurrent work goes
//! through, the rogue tablet is quarantined with an audit row, and after `device release` it
//! goes on from the server's copies and syncs honestly again.

use automerge::transaction::Transactable;
use sprig_core::{
    Actor, ChildId, Consent, DocId, Document, Heads, Journal, NewEntry, ParentId, Role, StaffId,
    Timestamp, plan_entry,
};
use sprig_device::{DataDir, Device, DeviceError, Observation};
use sprig_server::docs::{AnyDoc, load_doc};
use sprig_server::store::DeviceStatus;
use sprig_server::{ServerStore, admin};
use sprig_store::Store;

use crate::e2e::Server;

const PIN: &str = "2468";

struct Setting {
    server: Server,
    staff: StaffId,
    manager: StaffId,
    /// Photo consent yes; the parent's child.
    c1: ChildId,
    /// Photo consent no.
    c2: ChildId,
    parent: ParentId,
}

fn setting() -> Setting {
    let server = Server::start();
    let store = server.data.open_store().unwrap();
    let staff = admin::staff_add(&store, "Amara Okafor", Role::Practitioner, PIN, None).unwrap();
    let manager = admin::staff_add(&store, "Morgan Hale", Role::Manager, "1357", None).unwrap();
    let child = |name: &str, consent| {
        admin::child_add(
            &store,
            name,
            staff.as_str(),
            Some("Ladybirds"),
            consent,
            None,
        )
        .unwrap()
    };
    let c1 = child("Test Child One", Consent::Yes);
    let c2 = child("Test Child Two", Consent::No);
    let parent = admin::parent_add(
        &store,
        "parent.one@example.org",
        "Parent One",
        "a long enough password",
        &[c1.to_string()],
    )
    .unwrap();
    Setting {
        server,
        staff,
        manager,
        c1,
        c2,
        parent,
    }
}

struct Tablet {
    _tmp: tempfile::TempDir,
    dir: std::path::PathBuf,
    id: String,
}

impl Tablet {
    fn enrol(s: &Setting) -> Tablet {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("tablet");
        let id = Device::enrol(&dir, &s.server.enrolment(s.server.code()))
            .unwrap()
            .device_id;
        let t = Tablet { _tmp: tmp, dir, id };
        t.sync().unwrap();
        t
    }

    fn sync(&self) -> Result<sprig_device::SyncReport, DeviceError> {
        Device::open(&self.dir).unwrap().sync()
    }

    fn observe(&self, s: &Setting, child: &ChildId, text: &str) -> Result<(), DeviceError> {
        let mut d = Device::open(&self.dir).unwrap();
        let who = d.unlock(&s.staff, PIN).unwrap();
        d.observe(
            &who,
            &Observation {
                children: vec![child.clone()],
                text: text.into(),
                ..Observation::default()
            },
        )
        .map(|_| ())
    }

    fn texts(&self, s: &Setting, child: &ChildId) -> Vec<String> {
        let d = Device::open(&self.dir).unwrap();
        let who = d.unlock(&s.staff, PIN).unwrap();
        d.journal(&who, child)
            .unwrap()
            .into_iter()
            .map(|i| i.entry.text)
            .collect()
    }

    /// The tablet's own store, opened as the app would (the device must not be open).
    fn store(&self) -> Store {
        let dd = DataDir::existing(&self.dir).unwrap();
        Store::open(dd.db_path(), &dd.keystore()).unwrap()
    }
}

fn server_heads(s: &Setting, doc: &DocId) -> Heads {
    let mut d: AnyDoc = load_doc(&s.server.data.open_store().unwrap(), doc).unwrap();
    d.heads()
}

fn server_journal(s: &Setting, child: &ChildId) -> Journal {
    match load_doc(
        &s.server.data.open_store().unwrap(),
        &DocId::Journal(child.clone()),
    )
    .unwrap()
    {
        Document::Journal(j) => j,
        _ => unreachable!(),
    }
}

/// Changes a document of the tablet's store through Automerge directly: what a modified
/// client does. The change is applied to the stored copy, which keeps loading.
fn raw_change(
    journal_or_roster: &mut dyn FnMut() -> Vec<u8>,
    f: impl FnOnce(&mut automerge::AutoCommit),
) -> Vec<u8> {
    let bytes = journal_or_roster();
    let mut am = automerge::AutoCommit::load(&bytes).unwrap();
    let heads = am.get_heads();
    f(&mut am);
    am.commit();
    am.save_after(&heads)
}

fn obj(am: &automerge::AutoCommit, parent: &automerge::ObjId, key: &str) -> automerge::ObjId {
    use automerge::ReadDoc;
    match am.get(parent, key).unwrap() {
        Some((automerge::Value::Object(_), id)) => id,
        other => panic!("{key}: {other:?}"),
    }
}

#[derive(Clone, Copy, Debug)]
enum Tamper {
    Role,
    Consent,
    PinHash,
    ParentLink,
    RootField,
    DeletedEntry,
    UnknownAuthor,
}

fn tamper(
    s: &Setting,
    t: &Tablet,
    how: Tamper,
    target: &sprig_core::EntryId,
) -> (DocId, &'static str) {
    let mut store = t.store();
    let at = Timestamp(1_800_000_000_000);
    match how {
        Tamper::Role => {
            let mut roster = store.roster().unwrap();
            let staff = s.staff.to_string();
            let change = raw_change(&mut || roster.save(), |am| {
                let section = obj(am, &automerge::ROOT, "staff");
                let me = obj(am, &section, &staff);
                am.put(&me, "role", "manager").unwrap();
            });
            roster.apply_incremental(&change).unwrap();
            store.save_roster(&mut roster).unwrap();
            (DocId::Roster, "server_document")
        }
        Tamper::Consent => {
            let mut roster = store.roster().unwrap();
            roster.set_consent(&s.c2, Consent::Yes, at).unwrap();
            store.save_roster(&mut roster).unwrap();
            (DocId::Roster, "server_document")
        }
        Tamper::PinHash => {
            let mut roster = store.roster().unwrap();
            roster
                .set_pin_hash(&s.manager, &admin::hash_pin("0000").unwrap(), at)
                .unwrap();
            store.save_roster(&mut roster).unwrap();
            (DocId::Roster, "server_document")
        }
        Tamper::ParentLink => {
            let mut roster = store.roster().unwrap();
            roster.link_parent(&s.parent, &s.c2, at).unwrap();
            store.save_roster(&mut roster).unwrap();
            (DocId::Roster, "server_document")
        }
        Tamper::RootField => {
            let mut j = store.journal(&s.c1).unwrap();
            let change = raw_change(&mut || j.save(), |am| {
                am.put(automerge::ROOT, "schema", 0).unwrap();
            });
            j.apply_incremental(&change).unwrap();
            store.save_journal(&mut j).unwrap();
            (DocId::Journal(s.c1.clone()), "root_field")
        }
        Tamper::DeletedEntry => {
            let mut j = store.journal(&s.c1).unwrap();
            let roster = store.roster().unwrap();
            j.delete_entry(&roster, &Actor::Staff(s.staff.clone()), target, at)
                .unwrap();
            store.save_journal(&mut j).unwrap();
            (DocId::Journal(s.c1.clone()), "entry_delete")
        }
        Tamper::UnknownAuthor => {
            let mut forged = store.roster().unwrap();
            let stranger = forged
                .add_staff("Not On The Roster", Role::Manager, at)
                .unwrap();
            let plan = plan_entry(
                &forged,
                &Actor::Staff(stranger),
                NewEntry {
                    children: vec![s.c1.clone()],
                    text: "Written as nobody".into(),
                    ..NewEntry::default()
                },
                at,
            )
            .unwrap();
            let mut j = store.journal(&s.c1).unwrap();
            j.apply_entry(&plan).unwrap();
            store.save_journal(&mut j).unwrap();
            (DocId::Journal(s.c1.clone()), "unknown_author")
        }
    }
}

#[test]
fn a_rogue_tablet_changes_nothing_is_quarantined_and_goes_on_honestly_after_release() {
    let s = setting();
    let honest = Tablet::enrol(&s);
    let rogue = Tablet::enrol(&s);
    honest
        .observe(&s, &s.c1, "Shared before anything happened")
        .unwrap();
    honest.sync().unwrap();
    rogue.sync().unwrap();
    let target = server_journal(&s, &s.c1).entries()[0].id.clone();

    for (round, how) in [
        Tamper::Role,
        Tamper::Consent,
        Tamper::PinHash,
        Tamper::ParentLink,
        Tamper::RootField,
        Tamper::DeletedEntry,
        Tamper::UnknownAuthor,
    ]
    .into_iter()
    .enumerate()
    {
        let roster_before = server_heads(&s, &DocId::Roster);
        let journal_before = server_heads(&s, &DocId::Journal(s.c1.clone()));
        // The honest tablet records while the rogue one is being tampered with.
        let honest_text = format!("Honest work {round}");
        honest.observe(&s, &s.c2, &honest_text).unwrap();

        let (doc, rule) = tamper(&s, &rogue, how, &target);
        // An honest observation the rogue tablet made alongside the tamper is held, not lost.
        let rogue_text = format!("Made beside the tamper {round}");
        rogue.observe(&s, &s.c1, &rogue_text).unwrap();
        let err = rogue.sync().unwrap_err();
        assert!(
            matches!(&err, DeviceError::Quarantined { .. }),
            "{how:?}: {err:?}"
        );
        assert!(err.to_string().contains("manager"), "{err}");

        // Nothing of it is on the server.
        assert_eq!(server_heads(&s, &DocId::Roster), roster_before, "{how:?}");
        assert_eq!(
            server_heads(&s, &DocId::Journal(s.c1.clone())),
            journal_before,
            "{how:?}"
        );
        // The register and the audit log say what happened.
        let store = s.server.data.open_store().unwrap();
        let listed = admin::device_list(&store).unwrap();
        let row = listed.iter().find(|d| d.id == rogue.id).unwrap();
        assert_eq!(row.status, "quarantined", "{how:?}");
        let audit = store.audit_log(50).unwrap();
        let q = audit
            .iter()
            .find(|e| e.action == "quarantine" && e.device.as_deref() == Some(rogue.id.as_str()))
            .unwrap();
        assert!(q.detail.contains(&format!("doc={doc}")), "{}", q.detail);
        assert!(
            q.detail.contains(&format!("rule={rule}")),
            "{how:?}: {}",
            q.detail
        );
        // It is refused at every connection, and records nothing new meanwhile.
        let again = rogue.sync().unwrap_err();
        assert!(
            matches!(again, DeviceError::Quarantined { .. }),
            "{again:?}"
        );
        assert!(matches!(
            rogue.observe(&s, &s.c1, "while quarantined").unwrap_err(),
            DeviceError::Quarantined { .. }
        ));
        assert!(Device::status_at(&rogue.dir).unwrap().quarantined);

        // The honest tablet is unaffected and sees nothing of the tamper.
        honest.sync().unwrap();
        assert!(honest.texts(&s, &s.c2).contains(&honest_text));
        assert!(
            server_journal(&s, &s.c2)
                .entries()
                .iter()
                .any(|e| e.text == honest_text)
        );
        let honest_roster = honest.store().roster().unwrap();
        assert_eq!(
            honest_roster.child(&s.c2).unwrap().photo_consent,
            Consent::No
        );
        assert_eq!(
            honest_roster.staff(&s.staff).unwrap().role,
            Role::Practitioner
        );
        assert!(
            !honest_roster
                .parent(&s.parent)
                .unwrap()
                .children
                .contains(&s.c2)
        );
        assert!(
            !honest
                .texts(&s, &s.c1)
                .iter()
                .any(|t| t == "Written as nobody" || *t == rogue_text)
        );

        // What the rogue tablet sent is held for review, its honest entry among it.
        let held = admin::device_held(&store, &rogue.id).unwrap();
        let last = held.last().unwrap();
        assert_eq!(
            (last.doc.as_str(), last.rule.as_str()),
            (doc.to_string().as_str(), rule)
        );
        if matches!(doc, DocId::Journal(_)) {
            assert!(
                last.entries
                    .iter()
                    .any(|e| e.text == rogue_text && e.change == "new"),
                "{how:?}: {:?}",
                last.entries
            );
        }

        // Released, it goes on from the server's copy and syncs normally.
        let out = admin::device_release(&store, &rogue.id, &sprig_server::By::cli()).unwrap();
        assert_eq!(out.status, "active");
        let report = rogue.sync().unwrap();
        assert!(report.docs_replaced >= 1, "{how:?}: {report:?}");
        assert!(!Device::status_at(&rogue.dir).unwrap().quarantined);
        let rogue_store = rogue.store();
        let mut r = rogue_store.roster().unwrap();
        assert_eq!(r.heads(), server_heads(&s, &DocId::Roster), "{how:?}");
        let mut j = rogue_store.journal(&s.c1).unwrap();
        assert_eq!(
            j.heads(),
            server_heads(&s, &DocId::Journal(s.c1.clone())),
            "{how:?}"
        );
        drop(rogue_store);
        assert!(rogue.texts(&s, &s.c2).contains(&honest_text));
        assert!(
            rogue
                .texts(&s, &s.c1)
                .contains(&"Shared before anything happened".to_owned())
        );
        rogue
            .observe(&s, &s.c1, &format!("Honest again {round}"))
            .unwrap();
        rogue.sync().unwrap();
        assert_eq!(
            store.device(&rogue.id).unwrap().unwrap().status,
            DeviceStatus::Active
        );
        honest.sync().unwrap();
        assert!(
            honest
                .texts(&s, &s.c1)
                .contains(&format!("Honest again {round}"))
        );
    }
}

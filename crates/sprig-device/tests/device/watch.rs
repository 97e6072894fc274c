//! The watch connection against a real server: an observation synced by one tablet is
//! announced at once to another tablet watching, which then syncs it.

use std::time::Duration;

use sprig_core::{Consent, Role};
use sprig_device::{Device, Observation};
use sprig_server::admin;

use crate::e2e::Server;

#[test]
fn a_tablet_watching_hears_of_another_tablets_observation_and_syncs_it() {
    let server = Server::start();
    let store = server.data.open_store().unwrap();
    let staff = admin::staff_add(&store, "Amara Okafor", Role::Practitioner, "2468", None).unwrap();
    let child = admin::child_add(
        &store,
        "Test Child",
        staff.as_str(),
        None,
        Consent::Yes,
        None,
    )
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (dir_a, dir_b) = (tmp.path().join("a"), tmp.path().join("b"));
    Device::enrol(&dir_a, &server.enrolment(server.code())).unwrap();
    Device::enrol(&dir_b, &server.enrolment(server.code())).unwrap();
    let mut a = Device::open(&dir_a).unwrap();
    let mut b = Device::open(&dir_b).unwrap();
    a.sync().unwrap();
    b.sync().unwrap();
    let mut watching = b.watch().unwrap();
    assert_eq!(watching.next(Duration::from_millis(300)).unwrap(), None);

    let who = a.unlock(&staff, "2468").unwrap();
    let id = a
        .observe(
            &who,
            &Observation {
                children: vec![child.clone()],
                text: "Watered the beans".into(),
                ..Observation::default()
            },
        )
        .unwrap();
    a.sync().unwrap();
    let docs = watching
        .next(Duration::from_secs(5))
        .unwrap()
        .expect("B is told");
    assert_eq!(docs, vec![sprig_proto::DocId::Journal(child.clone())]);
    b.sync().unwrap();
    let who_b = b.unlock(&staff, "2468").unwrap();
    assert!(
        b.journal(&who_b, &child)
            .unwrap()
            .iter()
            .any(|i| i.entry.id == id)
    );
}

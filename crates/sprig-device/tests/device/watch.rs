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

/// A watch may be dropped inside an async task, as the tablet app does when a sync finds the
/// tablet wiped (its commands are async): dropping its runtime there used to panic.
#[test]
fn a_watch_dropped_inside_an_async_task_closes_quietly() {
    let server = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("t");
    Device::enrol(&dir, &server.enrolment(server.code())).unwrap();
    let mut device = Device::open(&dir).unwrap();
    device.sync().unwrap();
    let watching = device.watch().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .unwrap();
    rt.block_on(async move {
        tokio::spawn(async move { drop(watching) }).await.unwrap();
    });
}

/// `sprig-device watch --json`: `{"changed": null}` when nothing came within the timeout,
/// the changed documents (the roster among them) once a manager adds a child.
#[test]
fn the_watch_command_prints_what_changed_or_null() {
    let server = Server::start();
    let store = server.data.open_store().unwrap();
    let staff = admin::staff_add(&store, "Amara Okafor", Role::Practitioner, "2468", None).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("t");
    Device::enrol(&dir, &server.enrolment(server.code())).unwrap();
    Device::open(&dir).unwrap().sync().unwrap();
    let watch = |timeout: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_sprig-device"))
            .args([
                "watch",
                "--data",
                dir.to_str().unwrap(),
                "--timeout",
                timeout,
                "--json",
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let quiet = watch("1").wait_with_output().unwrap();
    assert!(
        quiet.status.success(),
        "{}",
        String::from_utf8_lossy(&quiet.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&quiet.stdout).unwrap();
    assert_eq!(v, serde_json::json!({"changed": null}));

    let mut waiting = watch("60");
    // A change made before the server has registered the watch is missed by this call (the
    // next sync still brings it), so a manager adds a child every 2 s until the watch answers.
    let mut n = 0;
    while waiting.try_wait().unwrap().is_none() && n < 25 {
        std::thread::sleep(Duration::from_millis(if n == 0 { 300 } else { 2000 }));
        n += 1;
        admin::child_add(
            &store,
            &format!("Test Child {n}"),
            staff.as_str(),
            None,
            Consent::Yes,
            None,
        )
        .unwrap();
    }
    let out = waiting.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // The roster changed, and the new child's journal was made.
    let changed = v["changed"].as_array().expect("a list of documents");
    assert!(changed.iter().any(|d| d == "roster"), "{v}");
    assert!(
        changed
            .iter()
            .all(|d| d == "roster" || d.as_str().is_some_and(|d| d.starts_with("journal:"))),
        "{v}"
    );
}

//! Replicas converge, whatever order they sync in, and later sessions are cheap.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use sprig_core::{Journal, Timestamp};
use sprig_proto::{DocId, DocSet, MemoryDocs};
use sprig_testkit::Fixture;

use crate::{Device, T0, server_docs, sync};

fn journal<'a>(docs: &'a mut MemoryDocs, fx: &Fixture, i: usize) -> &'a mut Journal {
    docs.journals.get_mut(&fx.children[i]).unwrap()
}

fn assert_converged(server: &mut MemoryDocs, devices: &mut [Device], fx: &Fixture) {
    let expected = server.summaries();
    for d in devices.iter_mut() {
        assert_eq!(
            d.docs.summaries(),
            expected,
            "{} differs from the server",
            d.name
        );
        for c in &fx.children {
            assert_eq!(
                d.docs.journals[c].entries(),
                server.journals[c].entries(),
                "{} has other entries for {c}",
                d.name
            );
        }
        assert_eq!(
            d.docs.roster.as_ref().unwrap().rooms(),
            server.roster.as_ref().unwrap().rooms()
        );
    }
}

#[test]
fn server_and_three_devices_converge_in_random_orders() {
    for seed in 0..4u64 {
        let fx = Fixture::new(4);
        let mut server = server_docs(&fx);
        fx.observe(journal(&mut server, &fx, 0), "Before any device", T0);
        let mut made = 1;
        let mut devices: Vec<Device> = (0..3)
            .map(|i| Device::new(&format!("tablet-{i}")))
            .collect();

        // New devices receive every document as a snapshot.
        for d in &mut devices {
            let (client, srv) = sync(&mut server, d);
            assert_eq!(client.replaced.len(), 2 + fx.children.len());
            assert_eq!(srv.replaced, client.replaced);
            assert_eq!(client.server_time_ms, Some(crate::SERVER_TIME));
        }

        let mut rng = StdRng::seed_from_u64(seed);
        let mut t = T0.millis();
        for round in 0..6 {
            for (k, d) in devices.iter_mut().enumerate() {
                // Every device writes to child 1 each round: concurrent edits of one journal.
                t += 1000;
                fx.observe(
                    journal(&mut d.docs, &fx, 1),
                    &format!("d{k} r{round} shared"),
                    Timestamp(t),
                );
                made += 1;
                for _ in 0..rng.random_range(0..3) {
                    t += 1000;
                    let i = rng.random_range(0..fx.children.len());
                    fx.observe(
                        journal(&mut d.docs, &fx, i),
                        &format!("d{k} r{round} c{i}"),
                        Timestamp(t),
                    );
                    made += 1;
                }
            }
            if round == 2 {
                t += 1000;
                server
                    .roster
                    .as_mut()
                    .unwrap()
                    .add_room("Willows", Timestamp(t))
                    .unwrap();
                fx.observe(
                    journal(&mut server, &fx, 3),
                    "Written on the server",
                    Timestamp(t),
                );
                made += 1;
            }
            let mut order: Vec<usize> = (0..devices.len()).collect();
            order.shuffle(&mut rng);
            let n = rng.random_range(1..=devices.len());
            for &k in &order[..n] {
                sync(&mut server, &mut devices[k]);
            }
        }
        // Everyone syncs twice: the first pass collects, the second distributes.
        for _ in 0..2 {
            for d in &mut devices {
                sync(&mut server, d);
            }
        }
        assert_converged(&mut server, &mut devices, &fx);
        let total: usize = server.journals.values().map(Journal::len).sum();
        assert_eq!(total, made, "seed {seed}: an observation was lost");
    }
}

#[test]
fn converged_replicas_exchange_four_small_frames_and_the_lease() {
    let fx = Fixture::new(3);
    let mut server = server_docs(&fx);
    let mut device = Device::new("tablet-a");
    sync(&mut server, &mut device);
    for i in 0..40 {
        fx.observe(
            journal(&mut device.docs, &fx, 0),
            &format!("Observation {i}"),
            T0,
        );
    }
    sync(&mut server, &mut device);

    let (client, srv) = sync(&mut server, &mut device);
    // Hello, welcome, done, done: then the server's closing lease.
    assert_eq!(client.frames_sent + client.frames_received, 5, "{client:?}");
    assert!(client.changed.is_empty() && srv.changed.is_empty());
    let lease = sprig_proto::encode(&sprig_proto::Message::Lease(crate::lease_for("tablet-a")))
        .unwrap()
        .len() as u64;
    assert!(
        client.bytes_sent + client.bytes_received - lease < 1024,
        "{client:?}"
    );
}

#[test]
fn a_small_change_after_convergence_sends_only_that_change() {
    let fx = Fixture::new(3);
    let mut server = server_docs(&fx);
    let mut device = Device::new("tablet-a");
    sync(&mut server, &mut device);
    for i in 0..200 {
        fx.observe(
            journal(&mut device.docs, &fx, 0),
            &format!("A fairly long observation text, number {i}, about play"),
            T0,
        );
    }
    let (_, srv) = sync(&mut server, &mut device);
    let full = srv.bytes_received;

    let doc = DocId::Journal(fx.children[0].clone());
    assert!(server.peer("tablet-a").sync_state(&doc).unwrap().is_some());
    assert!(
        device
            .docs
            .peer("server")
            .sync_state(&doc)
            .unwrap()
            .is_some()
    );

    fx.observe(journal(&mut device.docs, &fx, 0), "One more", T0);
    let (client, srv) = sync(&mut server, &mut device);
    assert_eq!(srv.changed.iter().collect::<Vec<_>>(), vec![&doc]);
    assert!(client.changed.is_empty());
    // At most ten frames of sync, and the closing lease.
    assert!(
        client.frames_sent + client.frames_received <= 11,
        "{client:?}"
    );
    // The resumed sync state means only the new change travels, not the history.
    assert!(
        srv.bytes_received * 5 < full,
        "{} vs {full}",
        srv.bytes_received
    );
    assert_eq!(server.journals[&fx.children[0]].len(), 201);
}

#[test]
fn a_device_that_only_sends_and_one_that_only_receives() {
    let fx = Fixture::new(2);
    let mut server = server_docs(&fx);
    let (mut a, mut b) = (Device::new("a"), Device::new("b"));
    sync(&mut server, &mut a);
    sync(&mut server, &mut b);
    let id = fx.observe(journal(&mut a.docs, &fx, 1), "Painted a rainbow", T0);
    let (ca, sa) = sync(&mut server, &mut a);
    assert!(ca.changed.is_empty());
    assert_eq!(sa.changed.len(), 1);
    let (cb, _) = sync(&mut server, &mut b);
    assert_eq!(cb.changed.len(), 1);
    assert_eq!(
        b.docs.journals[&fx.children[1]].entry(&id).unwrap().text,
        "Painted a rainbow"
    );
}

#[test]
fn documents_the_server_does_not_list_are_reported_not_synced() {
    let fx = Fixture::new(2);
    let mut server = server_docs(&fx);
    let mut device = Device::new("a");
    sync(&mut server, &mut device);
    let stray = Fixture::new(1).journal(0);
    let stray_id = DocId::Journal(stray.child().clone());
    device.docs.journals.insert(stray.child().clone(), stray);
    let (client, srv) = sync(&mut server, &mut device);
    assert_eq!(client.not_listed, vec![stray_id.clone()]);
    assert_eq!(srv.not_listed, vec![stray_id]);
    assert_eq!(server.journals.len(), 2);
}

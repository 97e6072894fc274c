//! Erasure: a journal rebuilt as a new epoch replaces every device's copy.

use sprig_core::{Actor, Timestamp};
use sprig_proto::DocId;
use sprig_testkit::Fixture;

use crate::{Device, T0, server_docs, sync};

#[test]
fn a_new_epoch_replaces_the_devices_copy_and_its_erased_history() {
    let fx = Fixture::new(2);
    let mut server = server_docs(&fx);
    let mut device = Device::new("tablet-a");
    let child = fx.children[0].clone();
    let doc = DocId::Journal(child.clone());

    let keep = fx.observe(server.journals.get_mut(&child).unwrap(), "Stacked cups", T0);
    let gone = fx.observe(
        server.journals.get_mut(&child).unwrap(),
        "Erase-me-7f3a observation",
        T0,
    );
    sync(&mut server, &mut device);
    assert_eq!(device.docs.journals[&child].len(), 2);
    let has_needle = |bytes: &[u8]| bytes.windows(12).any(|w| w == b"Erase-me-7f3");
    let before = device
        .docs
        .journals
        .get_mut(&child)
        .unwrap()
        .save_uncompressed();
    assert!(has_needle(&before), "the check below would prove nothing");

    // The server erases one entry and rebuilds the journal as epoch 1 ...
    let actor = Actor::Staff(fx.staff[0].clone());
    let j = server.journals.get_mut(&child).unwrap();
    j.delete_entry(&fx.roster, &actor, &gone, Timestamp(T0.0 + 1))
        .unwrap();
    let rebuilt = j.rebuild_epoch();
    server.journals.insert(child.clone(), rebuilt);
    // ... while the device, offline, writes to the old epoch and to another journal.
    fx.observe(
        device.docs.journals.get_mut(&child).unwrap(),
        "Lost to the erasure",
        T0,
    );
    let other = fx.observe(
        device.docs.journals.get_mut(&fx.children[1]).unwrap(),
        "Kept",
        T0,
    );

    let (client, srv) = sync(&mut server, &mut device);
    assert_eq!(client.replaced, vec![doc.clone()]);
    assert_eq!(srv.replaced, vec![doc]);
    let mine = device.docs.journals.get_mut(&child).unwrap();
    assert_eq!(mine.epoch(), 1);
    let ids: Vec<_> = mine.entries().into_iter().map(|e| e.id).collect();
    assert_eq!(ids, vec![keep]);
    let bytes = mine.save_uncompressed();
    assert!(!has_needle(&bytes), "erased text survived on the device");
    // The other journal synced normally in the same session.
    assert!(server.journals[&fx.children[1]].entry(&other).is_some());
    assert_eq!(device.docs.summaries(), server.summaries());

    // The next session is a plain sync of epoch 1.
    fx.observe(
        device.docs.journals.get_mut(&child).unwrap(),
        "After erasure",
        T0,
    );
    let (client, srv) = sync(&mut server, &mut device);
    assert!(client.replaced.is_empty());
    assert_eq!(srv.changed.len(), 1);
    assert_eq!(server.journals[&child].len(), 2);
}

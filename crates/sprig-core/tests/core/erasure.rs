use sprig_core::{Actor, EntryEdit, Journal};
use sprig_testkit::Fixture;

use crate::at;
use crate::journal::contains;

#[test]
fn rebuilt_epoch_holds_current_state_and_none_of_the_deleted_text() {
    let fx = Fixture::new(1);
    let staff = Actor::Staff(fx.staff[0].clone());
    let mut j = fx.journal(0);
    let secret_entry = fx.observe(&mut j, "SECRET-DELETED-OBSERVATION wrongly recorded", at(1));
    let kept = fx.observe(&mut j, "SECRET-EDITED-AWAY then corrected", at(2));
    fx.reply(&mut j, &kept, "a reply that stays", at(3));
    j.delete_entry(&fx.roster, &staff, &secret_entry, at(4))
        .unwrap();
    j.edit_entry(
        &fx.roster,
        &staff,
        &kept,
        &EntryEdit {
            text: "Corrected observation".into(),
            ..Default::default()
        },
        at(5),
    )
    .unwrap();
    // History remembers: the old document's bytes still hold both strings.
    let old = j.save_uncompressed();
    assert!(contains(&old, b"SECRET-DELETED-OBSERVATION"));
    assert!(contains(&old, b"SECRET-EDITED"));

    let mut next = j.rebuild_epoch();
    assert_eq!(next.epoch(), 1);
    assert_eq!(next.entries().len(), 1);
    let e = &next.entries()[0];
    assert_eq!(e.text, "Corrected observation");
    assert_eq!(e.replies[0].text, "a reply that stays");
    assert_eq!(e.edited_at, j.entry(&kept).unwrap().edited_at);
    for bytes in [next.save_uncompressed(), next.save()] {
        assert!(!contains(&bytes, b"SECRET-DELETED"));
        assert!(!contains(&bytes, b"SECRET-EDITED"));
        assert!(!contains(&bytes, b"wrongly recorded"));
    }
    let reloaded = Journal::load(&next.save()).unwrap();
    assert_eq!(reloaded.epoch(), 1);
    assert_eq!(reloaded.entries(), next.entries());
}

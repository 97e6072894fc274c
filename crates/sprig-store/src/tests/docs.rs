//! Documents, compaction, sync state and the derived index.

use sprig_core::{
    Actor, Area, Author, Document, EntryEdit, EntryStatus, Journal, NewEntry, SettingDoc,
    Timestamp, plan_entry,
};
use sprig_testkit::{Fixture, photo_ref};

use super::new_store;
use crate::{Compaction, Cursor, DocId, Store, StoreError};

/// Text that does not compress away, so a snapshot holding it outweighs later small chunks.
fn long_text() -> String {
    (0..2000u64)
        .map(|i| format!("w{}", i.wrapping_mul(2_654_435_761) % 1_000_003))
        .collect::<Vec<_>>()
        .join(" ")
}

fn t(n: i64) -> Timestamp {
    Timestamp(1_700_000_000_000 + n * 60_000)
}

/// The index agrees with the documents: every journal's entries, newest first, equal its
/// timeline.
pub(crate) fn assert_index_matches(store: &Store) {
    for child in store.journal_children().unwrap() {
        let journal = store.journal(&child).unwrap();
        let mut expected = journal.entries();
        expected.reverse();
        let indexed = store.timeline(&child, usize::MAX, None).unwrap();
        assert_eq!(
            indexed, expected,
            "index of {child} differs from its journal"
        );
    }
}

#[test]
fn journal_round_trips_and_timeline_returns_full_entries_newest_first() {
    let fx = Fixture::new(2);
    let (_db, mut store) = new_store();
    let mut j = fx.journal(0);
    let a = fx.observe(&mut j, "Stacked five cups", t(1));
    let b = fx.observe_with_media(&mut j, "Painted a sun", photo_ref(3), t(2));
    fx.reply(&mut j, &a, "Lovely!", t(3));
    store.save_journal(&mut j).unwrap();

    let loaded = store.journal(&fx.children[0]).unwrap();
    assert_eq!(loaded.entries(), j.entries());
    let timeline = store.timeline(&fx.children[0], 10, None).unwrap();
    assert_eq!(timeline.iter().map(|e| &e.id).collect::<Vec<_>>(), [&b, &a]);
    assert_eq!(timeline[1].replies[0].text, "Lovely!");
    assert_eq!(timeline[0].media, vec![photo_ref(3)]);
    assert_eq!(
        store.entry(&fx.children[0], &a).unwrap(),
        j.entry(&a).unwrap()
    );
    assert_index_matches(&store);
}

#[test]
fn missing_documents_are_not_found() {
    let fx = Fixture::new(1);
    let (_db, store) = new_store();
    assert!(store.journal(&fx.children[0]).unwrap_err().is_not_found());
    assert!(store.roster().unwrap_err().is_not_found());
    assert!(store.setting().unwrap_err().is_not_found());
    let e = store
        .entry(&fx.children[0], &sprig_core::EntryId::new_random())
        .unwrap_err();
    assert!(e.is_not_found());
    assert!(
        store
            .timeline(&fx.children[0], 10, None)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn saves_append_incremental_chunks_and_loading_replays_them() {
    let fx = Fixture::new(1);
    let (_db, mut store) = new_store();
    store.set_compaction(Compaction { max_chunks: 1000 });
    let mut j = fx.journal(0);
    // A big first entry so the snapshot outweighs the chunks that follow.
    fx.observe(&mut j, &long_text(), t(0));
    store.save_journal(&mut j).unwrap();
    let id = DocId::Journal(fx.children[0].clone());
    assert_eq!(store.doc_stats(&id).unwrap().chunk_count, 0);
    for i in 1..=3 {
        fx.observe(&mut j, &format!("entry {i}"), t(i));
        store.save_journal(&mut j).unwrap();
    }
    let stats = store.doc_stats(&id).unwrap();
    assert_eq!(stats.chunk_count, 3);
    assert!(stats.chunk_bytes > 0);
    // A save without changes writes nothing.
    store.save_journal(&mut j).unwrap();
    assert_eq!(store.doc_stats(&id).unwrap(), stats);
    assert_eq!(
        store.journal(&fx.children[0]).unwrap().entries(),
        j.entries()
    );
}

#[test]
fn compaction_when_chunks_exceed_the_limit() {
    let fx = Fixture::new(1);
    let (_db, mut store) = new_store();
    store.set_compaction(Compaction { max_chunks: 3 });
    let mut j = fx.journal(0);
    fx.observe(&mut j, &long_text(), t(0));
    store.save_journal(&mut j).unwrap();
    let id = DocId::Journal(fx.children[0].clone());
    let mut counts = Vec::new();
    for i in 1..=5 {
        fx.observe(&mut j, &format!("entry {i}"), t(i));
        store.save_journal(&mut j).unwrap();
        counts.push(store.doc_stats(&id).unwrap().chunk_count);
    }
    let s = store.doc_stats(&id).unwrap();
    assert!(
        s.chunk_bytes < s.snapshot_bytes,
        "{s:?}: only the count rule may compact here"
    );
    assert_eq!(counts, [1, 2, 3, 0, 1]);
    assert_eq!(
        store.journal(&fx.children[0]).unwrap().entries(),
        j.entries()
    );
    assert_index_matches(&store);
}

#[test]
fn compaction_when_chunks_outgrow_the_snapshot() {
    let fx = Fixture::new(1);
    let (_db, mut store) = new_store();
    store.set_compaction(Compaction { max_chunks: 1000 });
    let mut j = fx.journal(0);
    store.save_journal(&mut j).unwrap();
    let id = DocId::Journal(fx.children[0].clone());
    let mut compacted = false;
    for i in 1..=20 {
        fx.observe(&mut j, &format!("entry number {i} with some words"), t(i));
        store.save_journal(&mut j).unwrap();
        let s = store.doc_stats(&id).unwrap();
        assert!(s.chunk_bytes <= s.snapshot_bytes, "{s:?}");
        compacted |= s.chunk_count == 0;
    }
    assert!(
        compacted,
        "an empty journal's tiny snapshot must be rewritten as entries arrive"
    );
    assert_eq!(
        store.journal(&fx.children[0]).unwrap().entries(),
        j.entries()
    );
}

#[test]
fn index_refresh_rewrites_only_the_entries_that_changed() {
    let fx = Fixture::new(1);
    let (_db, mut store) = new_store();
    let child = fx.children[0].clone();
    let mut j = fx.journal(0);
    let a = fx.observe(&mut j, "first", t(1));
    let b = fx.observe(&mut j, "second", t(2));
    store.save_journal(&mut j).unwrap();
    // Tamper with A's index row: if the next save rewrote every entry, this would vanish.
    store
        .conn
        .execute(
            "UPDATE entries SET text = 'tampered' WHERE entry_id = ?1",
            [a.as_str()],
        )
        .unwrap();
    fx.reply(&mut j, &b, "a reply to the second", t(3));
    store.save_journal(&mut j).unwrap();
    assert_eq!(
        store.entry(&child, &a).unwrap().text,
        "tampered",
        "untouched entry was rewritten"
    );
    assert_eq!(
        store.entry(&child, &b).unwrap().replies.len(),
        1,
        "touched entry was refreshed"
    );
    // rebuild_index recovers from any divergence.
    store.rebuild_index().unwrap();
    assert_eq!(store.entry(&child, &a).unwrap().text, "first");
    assert_index_matches(&store);
}

#[test]
fn edits_and_deletions_reach_the_index() {
    let fx = Fixture::new(1);
    let (_db, mut store) = new_store();
    let child = fx.children[0].clone();
    let staff = Actor::Staff(fx.staff[0].clone());
    let mut j = fx.journal(0);
    let a = fx.observe(&mut j, "first", t(1));
    let b = fx.observe(&mut j, "second", t(2));
    store.save_journal(&mut j).unwrap();
    let edit = EntryEdit {
        text: "first, corrected".into(),
        next_steps: "more".into(),
        areas: vec![Area::Literacy],
        ..EntryEdit::default()
    };
    j.edit_entry(&fx.roster, &staff, &a, &edit, t(3)).unwrap();
    j.delete_entry(&fx.roster, &staff, &b, t(4)).unwrap();
    store.save_journal(&mut j).unwrap();
    let timeline = store.timeline(&child, 10, None).unwrap();
    assert_eq!(timeline.len(), 1);
    assert_eq!(timeline[0].text, "first, corrected");
    assert_eq!(timeline[0].areas, [Area::Literacy]);
    assert!(timeline[0].edited_at.is_some());
    assert!(store.entry(&child, &b).unwrap_err().is_not_found());
    assert_index_matches(&store);
}

#[test]
fn timeline_pages_with_a_cursor_cover_everything_once() {
    let fx = Fixture::new(2);
    let (_db, mut store) = new_store();
    let mut j = fx.journal(0);
    // Several entries share a timestamp, so the cursor must break ties by id.
    for i in 0..23 {
        fx.observe(&mut j, &format!("entry {i}"), t(i / 3));
    }
    store.save_journal(&mut j).unwrap();
    let mut other = fx.journal(1);
    fx.observe(&mut other, "someone else", t(5));
    store.save_journal(&mut other).unwrap();

    let mut seen = Vec::new();
    let mut cursor: Option<Cursor> = None;
    loop {
        let page = store.timeline(&fx.children[0], 5, cursor.as_ref()).unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 5);
        cursor = Some(Cursor::after(page.last().unwrap()));
        seen.extend(page);
    }
    let mut expected = j.entries();
    expected.reverse();
    assert_eq!(seen, expected);
}

#[test]
fn queries_by_author_area_status_group_and_media() {
    let fx = Fixture::new(3);
    let (_db, mut store) = new_store();
    let staff = Actor::Staff(fx.staff[0].clone());
    let parent = Actor::Parent(fx.parents[0].clone());
    let mut journals: Vec<Journal> = (0..3).map(|i| fx.journal(i)).collect();

    // A group observation of children 0 and 1, tagged with two areas.
    let group = plan_entry(
        &fx.roster,
        &staff,
        NewEntry {
            children: vec![fx.children[0].clone(), fx.children[1].clone()],
            text: "Built a den together".into(),
            areas: vec![Area::PersonalSocialEmotional, Area::PhysicalDevelopment],
            ..NewEntry::default()
        },
        t(1),
    )
    .unwrap();
    journals[0].apply_entry(&group).unwrap();
    journals[1].apply_entry(&group).unwrap();
    // A parent's contribution for child 0, pending approval.
    let contribution = plan_entry(
        &fx.roster,
        &parent,
        NewEntry {
            children: vec![fx.children[0].clone()],
            text: "Baked bread at home".into(),
            ..NewEntry::default()
        },
        t(2),
    )
    .unwrap();
    journals[0].apply_entry(&contribution).unwrap();
    let with_photo =
        fx.observe_with_media(&mut journals[2], "Photo of the garden", photo_ref(7), t(3));
    for j in &mut journals {
        store.save_journal(j).unwrap();
    }

    let by_staff = store
        .entries_by_author(&Author::Staff(fx.staff[0].clone()), 10, None)
        .unwrap();
    assert_eq!(by_staff.len(), 3);
    assert_eq!(by_staff[0].id, with_photo, "newest first");
    let by_parent = store
        .entries_by_author(&Author::Parent(fx.parents[0].clone()), 10, None)
        .unwrap();
    assert_eq!(by_parent.len(), 1);
    assert_eq!(by_parent[0].text, "Baked bread at home");

    let psed = store
        .entries_by_area(Area::PersonalSocialEmotional, 10, None)
        .unwrap();
    assert_eq!(psed.len(), 2);
    assert!(psed.iter().all(|e| e.id == group.id && e.areas.len() == 2));
    assert!(
        store
            .entries_by_area(Area::Mathematics, 10, None)
            .unwrap()
            .is_empty()
    );
    // Paging a cross-child listing by cursor: the group's two copies share time and id.
    let first = store
        .entries_by_area(Area::PersonalSocialEmotional, 1, None)
        .unwrap();
    let second = store
        .entries_by_area(
            Area::PersonalSocialEmotional,
            1,
            Some(&Cursor::after(&first[0])),
        )
        .unwrap();
    assert_eq!(second.len(), 1);
    assert_ne!(first[0].child, second[0].child);

    let pending = store
        .entries_by_status(EntryStatus::Pending, 10, None)
        .unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].id, contribution.id);
    assert_eq!(
        store
            .entries_by_status(EntryStatus::Published, 10, None)
            .unwrap()
            .len(),
        3
    );

    let in_group = store
        .entries_in_group(group.group.as_ref().unwrap())
        .unwrap();
    assert_eq!(in_group.len(), 2);
    let with_media = store.entries_with_media(&photo_ref(7).sha256).unwrap();
    assert_eq!(with_media.len(), 1);
    assert_eq!(with_media[0].id, with_photo);

    let counts = store.counts_per_child().unwrap();
    assert_eq!(counts.len(), 3);
    let c0 = counts.iter().find(|c| c.child == fx.children[0]).unwrap();
    assert_eq!((c0.entries, c0.pending, c0.latest), (2, 1, Some(t(2))));
    let c2 = counts.iter().find(|c| c.child == fx.children[2]).unwrap();
    assert_eq!((c2.entries, c2.pending), (1, 0));

    // Approval moves it out of pending in the index.
    journals[0]
        .approve(
            &fx.roster,
            &Actor::Staff(fx.manager.clone()),
            &contribution.id,
            t(4),
        )
        .unwrap();
    store.save_journal(&mut journals[0]).unwrap();
    assert!(
        store
            .entries_by_status(EntryStatus::Pending, 10, None)
            .unwrap()
            .is_empty()
    );
    assert_index_matches(&store);
}

#[test]
fn counts_include_children_with_empty_journals() {
    let fx = Fixture::new(1);
    let (_db, mut store) = new_store();
    store.save_journal(&mut fx.journal(0)).unwrap();
    let counts = store.counts_per_child().unwrap();
    assert_eq!((counts[0].entries, counts[0].latest), (0, None));
}

#[test]
fn a_new_epoch_replaces_the_journal_and_an_older_one_is_refused() {
    let fx = Fixture::new(1);
    let (_db, mut store) = new_store();
    let child = fx.children[0].clone();
    let staff = Actor::Staff(fx.staff[0].clone());
    let mut j = fx.journal(0);
    fx.observe(&mut j, "keep", t(1));
    let gone = fx.observe(&mut j, "erase me", t(2));
    store.save_journal(&mut j).unwrap();
    fx.observe(&mut j, "chunk", t(3));
    store.save_journal(&mut j).unwrap();
    j.delete_entry(&fx.roster, &staff, &gone, t(4)).unwrap();
    store.save_journal(&mut j).unwrap();

    let mut next = j.rebuild_epoch();
    store.save_journal(&mut next).unwrap();
    let id = DocId::Journal(child.clone());
    let stats = store.doc_stats(&id).unwrap();
    assert_eq!((stats.epoch, stats.chunk_count), (1, 0));
    let loaded = store.journal(&child).unwrap();
    assert_eq!(loaded.epoch(), 1);
    assert_eq!(loaded.entries(), next.entries());
    assert_index_matches(&store);

    fx.observe(&mut j, "from an old replica", t(5));
    let err = store.save_journal(&mut j).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Document(sprig_core::DocError::EpochMismatch { .. })
        ),
        "{err:?}"
    );
    assert_eq!(store.journal(&child).unwrap().entries(), next.entries());
}

#[test]
fn a_failed_save_is_recovered_by_a_full_snapshot_next_time() {
    // Regression guard: a journal marks its changes saved when asked for them, so a rolled-back
    // write must not let the next write append only the newer changes.
    let fx = Fixture::new(1);
    let (_db, mut store) = new_store();
    let child = fx.children[0].clone();
    let mut j = fx.journal(0);
    fx.observe(&mut j, &long_text(), t(0));
    store.save_journal(&mut j).unwrap();
    store
        .conn
        .execute_batch(
            "CREATE TEMP TRIGGER fail_chunks BEFORE INSERT ON main.doc_chunks \
             BEGIN SELECT RAISE(ABORT, 'simulated failure'); END;",
        )
        .unwrap();
    let lost = fx.observe(&mut j, "written while the disk failed", t(1));
    assert!(store.save_journal(&mut j).is_err());
    store
        .conn
        .execute_batch("DROP TRIGGER fail_chunks")
        .unwrap();
    let later = fx.observe(&mut j, "written after", t(2));
    store.save_journal(&mut j).unwrap();
    let loaded = store.journal(&child).unwrap();
    assert!(
        loaded.entry(&lost).is_some(),
        "the change from the failed save was lost"
    );
    assert!(loaded.entry(&later).is_some());
    assert_index_matches(&store);
}

#[test]
fn rebuild_index_recreates_a_dropped_index() {
    let fx = Fixture::new(3);
    let (_db, mut store) = new_store();
    for i in 0..3 {
        let mut j = fx.journal(i);
        for k in 0..4 {
            let e = fx.observe(&mut j, &format!("child {i} entry {k}"), t(k));
            fx.reply(&mut j, &e, "reply", t(k + 1));
        }
        store.save_journal(&mut j).unwrap();
    }
    store.conn.execute("DELETE FROM entries", []).unwrap();
    assert!(
        store
            .timeline(&fx.children[1], 10, None)
            .unwrap()
            .is_empty()
    );
    store.rebuild_index().unwrap();
    assert_index_matches(&store);
    assert_eq!(store.timeline(&fx.children[1], 10, None).unwrap().len(), 4);
}

#[test]
fn delete_journal_removes_document_index_and_sync_state() {
    let fx = Fixture::new(2);
    let (_db, mut store) = new_store();
    let mut j0 = fx.journal(0);
    let mut j1 = fx.journal(1);
    fx.observe(&mut j0, "zero", t(1));
    fx.observe(&mut j1, "one", t(1));
    store
        .save_journal_with_sync_state(&mut j0, "server", b"s0")
        .unwrap();
    store.save_journal(&mut j1).unwrap();
    store.delete_journal(&fx.children[0]).unwrap();
    store.delete_journal(&fx.children[0]).unwrap();
    assert!(store.journal(&fx.children[0]).unwrap_err().is_not_found());
    assert!(
        store
            .timeline(&fx.children[0], 10, None)
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .sync_state("server", &DocId::Journal(fx.children[0].clone()))
            .unwrap(),
        None
    );
    assert_eq!(
        store.journal_children().unwrap(),
        vec![fx.children[1].clone()]
    );
    for table in ["entry_areas", "entry_media", "entry_replies", "doc_chunks"] {
        let orphans: i64 = store
            .conn
            .query_row(
                &format!(
                    "SELECT count(*) FROM {table} WHERE {} = ?1",
                    if table == "doc_chunks" {
                        "doc_id"
                    } else {
                        "child_id"
                    }
                ),
                [if table == "doc_chunks" {
                    format!("journal/{}", fx.children[0])
                } else {
                    fx.children[0].to_string()
                }],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(orphans, 0, "{table}");
    }
}

#[test]
fn sync_state_is_kept_per_peer_and_document() {
    let fx = Fixture::new(1);
    let (_db, mut store) = new_store();
    let j = DocId::Journal(fx.children[0].clone());
    assert_eq!(store.sync_state("server", &j).unwrap(), None);
    store.set_sync_state("server", &j, b"one").unwrap();
    store
        .set_sync_state("server", &DocId::Roster, b"two")
        .unwrap();
    store.set_sync_state("tablet-2", &j, b"three").unwrap();
    store.set_sync_state("server", &j, b"one-updated").unwrap();
    assert_eq!(
        store.sync_state("server", &j).unwrap().as_deref(),
        Some(&b"one-updated"[..])
    );
    assert_eq!(
        store
            .sync_state("server", &DocId::Roster)
            .unwrap()
            .as_deref(),
        Some(&b"two"[..])
    );
    assert_eq!(
        store.sync_state("tablet-2", &j).unwrap().as_deref(),
        Some(&b"three"[..])
    );
    assert_eq!(store.clear_sync_states("server").unwrap(), 2);
    assert_eq!(store.sync_state("server", &j).unwrap(), None);
    assert_eq!(
        store.sync_state("tablet-2", &j).unwrap().as_deref(),
        Some(&b"three"[..])
    );
}

#[test]
fn index_and_document_are_written_in_one_transaction() {
    let fx = Fixture::new(1);
    let (_db, mut store) = new_store();
    let child = fx.children[0].clone();
    let mut j = fx.journal(0);
    let kept = fx.observe(&mut j, "before", t(1));
    store.save_journal(&mut j).unwrap();
    let stats = store.doc_stats(&DocId::Journal(child.clone())).unwrap();
    store
        .conn
        .execute_batch(
            "CREATE TEMP TRIGGER fail_index BEFORE INSERT ON main.entries \
             BEGIN SELECT RAISE(ABORT, 'simulated failure'); END;",
        )
        .unwrap();
    let e = fx.observe(&mut j, "after", t(2));
    assert!(store.save_journal(&mut j).is_err());
    // The failed index write took the document write with it.
    assert_eq!(
        store.doc_stats(&DocId::Journal(child.clone())).unwrap(),
        stats
    );
    assert!(store.journal(&child).unwrap().entry(&e).is_none());
    assert!(store.entry(&child, &kept).is_ok());
    store.conn.execute_batch("DROP TRIGGER fail_index").unwrap();
    store.save_journal(&mut j).unwrap();
    assert!(store.entry(&child, &e).is_ok());
    assert_index_matches(&store);
}

#[test]
fn journal_and_sync_state_are_saved_atomically() {
    let fx = Fixture::new(1);
    let (_db, mut store) = new_store();
    let mut j = fx.journal(0);
    store.save_journal(&mut j).unwrap();
    let id = DocId::Journal(fx.children[0].clone());
    store
        .conn
        .execute_batch(
            "CREATE TEMP TRIGGER fail_sync BEFORE INSERT ON main.sync_states \
             BEGIN SELECT RAISE(ABORT, 'simulated failure'); END;",
        )
        .unwrap();
    let e = fx.observe(&mut j, "arrived by sync", t(1));
    assert!(
        store
            .save_journal_with_sync_state(&mut j, "server", b"after")
            .is_err()
    );
    assert!(
        store.journal(&fx.children[0]).unwrap().entry(&e).is_none(),
        "journal rolled back with the sync state"
    );
    assert!(store.entry(&fx.children[0], &e).unwrap_err().is_not_found());
    store.conn.execute_batch("DROP TRIGGER fail_sync").unwrap();
    store
        .save_journal_with_sync_state(&mut j, "server", b"after")
        .unwrap();
    assert!(store.journal(&fx.children[0]).unwrap().entry(&e).is_some());
    assert_eq!(
        store.sync_state("server", &id).unwrap().as_deref(),
        Some(&b"after"[..])
    );
}

#[test]
fn roster_and_setting_documents_round_trip_incrementally() {
    let mut fx = Fixture::new(2);
    let (_db, mut store) = new_store();
    store.save_roster(&mut fx.roster).unwrap();
    let added = fx.roster.add_room("Willows", t(1)).unwrap();
    store.save_roster(&mut fx.roster).unwrap();
    assert_eq!(store.doc_stats(&DocId::Roster).unwrap().chunk_count, 1);
    let roster = store.roster().unwrap();
    assert!(roster.room(&added).is_some());
    assert_eq!(roster.children().len(), 2);

    let mut setting = SettingDoc::new("Little Acorns Pre-school");
    store.save_setting(&mut setting).unwrap();
    assert_eq!(store.setting().unwrap().name(), "Little Acorns Pre-school");
}

#[test]
fn doc_heads_lists_stored_heads_without_loading() {
    let mut fx = Fixture::new(2);
    let (_db, mut store) = new_store();
    assert!(store.doc_heads().unwrap().is_empty());
    let mut j1 = fx.journal(1);
    fx.observe(&mut j1, "one", t(1));
    store.save_journal(&mut j1).unwrap();
    let mut j0 = fx.journal(0);
    store.save_journal(&mut j0).unwrap();
    fx.observe(&mut j0, "appended as a chunk", t(2));
    store.save_journal(&mut j0).unwrap();
    let mut setting = SettingDoc::new("Little Acorns Pre-school");
    store.save_setting(&mut setting).unwrap();
    store.save_roster(&mut fx.roster).unwrap();

    let mut expected = vec![
        (DocId::Roster, 0, fx.roster.heads()),
        (DocId::Setting, 0, setting.heads()),
        (DocId::Journal(fx.children[0].clone()), 0, j0.heads()),
        (DocId::Journal(fx.children[1].clone()), 0, j1.heads()),
    ];
    expected[2..].sort_by(|a, b| a.0.cmp(&b.0));
    let listed: Vec<_> = store
        .doc_heads()
        .unwrap()
        .into_iter()
        .map(|h| (h.doc, h.epoch, h.heads))
        .collect();
    assert_eq!(listed, expected);
    // The listing reads the table, not the documents: it survives a document whose bytes
    // no longer load.
    store
        .conn
        .execute(
            "UPDATE documents SET snapshot = x'00' WHERE doc_id = ?1",
            [DocId::Journal(fx.children[1].clone()).storage_key()],
        )
        .unwrap();
    assert_eq!(store.doc_heads().unwrap().len(), 4);
}

/// A journal as a server sends it: a snapshot followed by an appended change chunk.
fn server_bytes(fx: &Fixture, texts: &[&str]) -> (Journal, Vec<u8>) {
    let mut j = fx.journal(0);
    fx.observe(&mut j, texts[0], t(1));
    let mut bytes = j.save();
    for (k, text) in (2..).zip(&texts[1..]) {
        fx.observe(&mut j, text, t(k));
        bytes.extend(j.save_incremental());
    }
    (j, bytes)
}

#[test]
fn replace_stores_the_received_bytes_as_they_are_and_indexes_them() {
    let fx = Fixture::new(1);
    let (_db, mut store) = new_store();
    let child = fx.children[0].clone();
    let id = DocId::Journal(child.clone());
    // An older local copy with its own entry and sync states, all to be discarded.
    let mut local = fx.journal(0);
    let dropped = fx.observe(&mut local, "only on this tablet", t(0));
    store
        .save_journal_with_sync_state(&mut local, "server", b"old")
        .unwrap();
    store.set_sync_state("tablet-2", &id, b"old too").unwrap();

    let (mut server, bytes) = server_bytes(&fx, &["first", "second", "third"]);
    let mut doc = Document::Journal(Journal::load(&bytes).unwrap());
    store
        .replace_document(&mut doc, &bytes, Some(("server", b"fresh")))
        .unwrap();

    let stored: Vec<u8> = store
        .conn
        .query_row(
            "SELECT snapshot FROM documents WHERE doc_id = ?1",
            [id.storage_key()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        stored, bytes,
        "the bytes were re-saved, not stored as received"
    );
    let stats = store.doc_stats(&id).unwrap();
    assert_eq!(
        (stats.chunk_count, stats.snapshot_bytes),
        (0, bytes.len() as u64)
    );
    assert_eq!(store.doc_heads().unwrap()[0].heads, server.heads());
    assert_eq!(store.journal(&child).unwrap().entries(), server.entries());
    assert!(store.entry(&child, &dropped).unwrap_err().is_not_found());
    assert_index_matches(&store);
    assert_eq!(
        store.sync_state("server", &id).unwrap().as_deref(),
        Some(&b"fresh"[..])
    );
    assert_eq!(store.sync_state("tablet-2", &id).unwrap(), None);

    // Later changes append to the received bytes as usual.
    let Document::Journal(mut j) = doc else {
        unreachable!()
    };
    let later = fx.observe(&mut j, "after the replace", t(9));
    store.save_journal(&mut j).unwrap();
    assert_eq!(store.doc_stats(&id).unwrap().chunk_count, 1);
    assert!(store.journal(&child).unwrap().entry(&later).is_some());
    assert_eq!(store.doc_heads().unwrap()[0].heads, j.heads());
    assert_index_matches(&store);
}

#[test]
fn replace_of_roster_and_setting_keeps_their_bytes() {
    let mut fx = Fixture::new(2);
    let (_db, mut store) = new_store();
    store.save_roster(&mut fx.roster).unwrap();
    let mut newer = fx.roster.clone();
    let room = newer.add_room("Willows", t(1)).unwrap();
    let mut bytes = newer.save();
    newer.add_room("Oaks", t(2)).unwrap();
    bytes.extend(newer.save_incremental());
    let mut doc = Document::Roster(sprig_core::Roster::load(&bytes).unwrap());
    store.replace_document(&mut doc, &bytes, None).unwrap();
    let roster = store.roster().unwrap();
    assert!(roster.room(&room).is_some());
    assert_eq!(store.doc_heads().unwrap()[0].heads, newer.heads());

    let mut setting = SettingDoc::new("Little Acorns Pre-school");
    let bytes = setting.save();
    let mut doc = Document::Setting(SettingDoc::load(&bytes).unwrap());
    store.replace_document(&mut doc, &bytes, None).unwrap();
    assert_eq!(store.setting().unwrap().name(), "Little Acorns Pre-school");
    assert_eq!(store.doc_heads().unwrap()[1].heads, setting.heads());
}

#[test]
fn a_failed_replace_leaves_the_old_copy_whole() {
    let fx = Fixture::new(1);
    let (_db, mut store) = new_store();
    let child = fx.children[0].clone();
    let id = DocId::Journal(child.clone());
    let mut local = fx.journal(0);
    let kept = fx.observe(&mut local, "kept", t(0));
    store
        .save_journal_with_sync_state(&mut local, "server", b"old")
        .unwrap();
    let heads_before = store.doc_heads().unwrap();
    store
        .conn
        .execute_batch(
            "CREATE TEMP TRIGGER fail_index BEFORE INSERT ON main.entries \
             BEGIN SELECT RAISE(ABORT, 'simulated failure'); END;",
        )
        .unwrap();
    let (_, bytes) = server_bytes(&fx, &["from the server"]);
    let mut doc = Document::Journal(Journal::load(&bytes).unwrap());
    assert!(
        store
            .replace_document(&mut doc, &bytes, Some(("server", b"fresh")))
            .is_err()
    );
    store.conn.execute_batch("DROP TRIGGER fail_index").unwrap();
    // Document, heads, index and sync state all as before.
    assert_eq!(store.doc_heads().unwrap(), heads_before);
    assert!(store.journal(&child).unwrap().entry(&kept).is_some());
    assert!(store.entry(&child, &kept).is_ok());
    assert_eq!(
        store.sync_state("server", &id).unwrap().as_deref(),
        Some(&b"old"[..])
    );
    assert_index_matches(&store);
}

#[test]
fn a_group_observation_is_saved_into_every_journal_in_one_transaction_or_none() {
    let fx = Fixture::new(2);
    let (_db, mut store) = new_store();
    let plan = plan_entry(
        &fx.roster,
        &Actor::Staff(fx.staff[0].clone()),
        NewEntry {
            children: fx.children.clone(),
            text: "Built a den together".into(),
            ..NewEntry::default()
        },
        t(1),
    )
    .unwrap();
    let mut journals: Vec<Journal> = (0..2).map(|i| fx.journal(i)).collect();
    for j in &mut journals {
        j.apply_entry(&plan).unwrap();
    }
    store.save_journals_dirty(&mut journals).unwrap();
    for c in &fx.children {
        assert!(store.entry(c, &plan.id).is_ok());
    }
    assert_eq!(store.dirty_docs().unwrap().0, 2);
    assert_index_matches(&store);

    // The second child's copy cannot be indexed: the first child's copy is not kept either.
    store
        .conn
        .execute_batch(&format!(
            "CREATE TRIGGER refuse BEFORE INSERT ON entries WHEN NEW.child_id = '{}' \
             BEGIN SELECT RAISE(ABORT, 'refused'); END;",
            fx.children[1]
        ))
        .unwrap();
    let plan = plan_entry(
        &fx.roster,
        &Actor::Staff(fx.staff[0].clone()),
        NewEntry {
            children: fx.children.clone(),
            text: "Tidied up together".into(),
            ..NewEntry::default()
        },
        t(2),
    )
    .unwrap();
    for j in &mut journals {
        j.apply_entry(&plan).unwrap();
    }
    assert!(store.save_journals_dirty(&mut journals).is_err());
    for c in &fx.children {
        assert!(
            store.entry(c, &plan.id).is_err(),
            "half of a group entry was saved"
        );
    }
}

//! Garbage collection.

mod common;

use std::collections::BTreeSet;
use std::fs;

use archy_store::{GenerationEntry, ObjectId, Store};
use common::{build, draft, insert, temp_store};

/// The numbers of the generations on disk.
fn numbers(store: &Store) -> Vec<u64> {
    store
        .generations()
        .expect("list")
        .iter()
        .map(GenerationEntry::number)
        .collect()
}

/// Builds generations 1..=count, returning each one's own object.
fn build_many(store: &Store, count: u64) -> Vec<ObjectId> {
    (1..=count)
        .map(|n| {
            let (record, object) = build(store, &format!("gen {n}"));
            assert_eq!(record.number, n);
            object
        })
        .collect()
}

#[test]
fn keeps_the_newest_generations_and_their_objects() {
    let (_dir, store) = temp_store();
    let objects = build_many(&store, 5);
    let unlisted = insert(&store, "orphan", b"referenced by nothing");
    store.set_current(5).expect("current");
    store.set_last_good(5).expect("last-good");

    let report = store.gc(2).expect("gc");

    assert_eq!(report.generations_deleted, vec![1, 2, 3]);
    assert_eq!(report.generations_kept, vec![4, 5]);
    assert_eq!(numbers(&store), vec![4, 5]);
    // Generations 1-3 each had their own object and graph; plus the orphan.
    assert_eq!(report.objects_deleted.len(), 7, "{report:#?}");
    assert!(report.objects_deleted.contains(&unlisted));
    for (index, object) in objects.iter().enumerate() {
        assert_eq!(
            store.contains(object).expect("contains"),
            index >= 3,
            "{object}"
        );
    }
    assert!(store.verify().expect("verify").is_clean());
}

#[test]
fn reports_the_bytes_it_freed() {
    let (_dir, store) = temp_store();
    build(&store, "kept");
    let big = insert(&store, "big", &[1u8; 10_000]);
    let small = insert(&store, "small", &[2u8; 123]);
    let report = store.gc(1).expect("gc");
    let deleted: BTreeSet<_> = report.objects_deleted.iter().cloned().collect();
    assert_eq!(deleted, BTreeSet::from([big, small]));
    assert_eq!(report.bytes_freed, 10_123);
}

#[test]
fn never_deletes_current_or_last_good_even_with_keep_zero() {
    let (_dir, store) = temp_store();
    let objects = build_many(&store, 4);
    store.set_current(3).expect("current");
    store.set_last_good(1).expect("last-good");

    let report = store.gc(0).expect("gc");

    assert_eq!(report.generations_deleted, vec![2, 4]);
    assert_eq!(numbers(&store), vec![1, 3]);
    assert!(store.contains(&objects[0]).expect("contains"));
    assert!(store.contains(&objects[2]).expect("contains"));
    assert!(!store.contains(&objects[1]).expect("contains"));
    assert!(!store.contains(&objects[3]).expect("contains"));
    assert_eq!(store.current().expect("current"), Some(3));
    assert_eq!(store.last_good().expect("last-good"), Some(1));
    assert!(store.verify().expect("verify").is_clean());
}

#[test]
fn never_deletes_the_previous_generation_rollback_goes_to() {
    let (_dir, store) = temp_store();
    build_many(&store, 3);
    store.set_current(3).expect("current");
    store.set_previous(1).expect("previous");
    let report = store.gc(0).expect("gc");
    assert_eq!(report.generations_deleted, vec![2]);
    assert_eq!(numbers(&store), vec![1, 3]);
    assert_eq!(store.previous().expect("previous"), Some(1));
}

#[test]
fn with_nothing_linked_keep_zero_empties_the_store() {
    let (_dir, store) = temp_store();
    build_many(&store, 2);
    let report = store.gc(0).expect("gc");
    assert_eq!(report.generations_deleted, vec![1, 2]);
    assert_eq!(report.objects_deleted.len(), 4);
    assert!(numbers(&store).is_empty());
    assert_eq!(fs::read_dir(store.objects_dir()).expect("list").count(), 0);
}

#[test]
fn an_object_shared_with_a_kept_generation_is_kept() {
    let (_dir, store) = temp_store();
    let shared = insert(&store, "shared.conf", b"both use me");
    store
        .record_generation(draft(&store, "old", vec![shared.clone()]))
        .expect("old");
    store
        .record_generation(draft(&store, "new", vec![shared.clone()]))
        .expect("new");

    let report = store.gc(1).expect("gc");

    assert_eq!(report.generations_deleted, vec![1]);
    assert_eq!(
        report.objects_deleted.len(),
        1,
        "only the old graph: {report:#?}"
    );
    assert!(store.contains(&shared).expect("contains"));
}

#[test]
fn a_broken_record_stops_object_deletion_but_not_record_deletion() {
    let (_dir, store) = temp_store();
    let objects = build_many(&store, 4);
    fs::write(store.generation_path(2), b"{").expect("break generation 2");

    let report = store.gc(1).expect("gc");

    assert_eq!(report.generations_deleted, vec![1, 3]);
    assert_eq!(numbers(&store), vec![2, 4]);
    assert_eq!(report.objects_kept_for_broken_records, vec![2]);
    assert!(report.objects_deleted.is_empty());
    assert_eq!(report.bytes_freed, 0);
    for object in &objects {
        assert!(
            store.contains(object).expect("contains"),
            "{object} must be kept"
        );
    }

    // Once the broken record is gone, the next GC collects.
    fs::remove_file(store.generation_path(2)).expect("remove");
    let report = store.gc(1).expect("gc");
    assert!(report.objects_kept_for_broken_records.is_empty());
    assert_eq!(report.objects_deleted.len(), 6);
    assert!(store.contains(&objects[3]).expect("contains"));
}

#[test]
fn deletes_leftover_temp_files_and_leaves_strangers_alone() {
    let (_dir, store) = temp_store();
    build(&store, "one");
    fs::write(store.objects_dir().join(".tmp-half-object"), b"half").expect("write");
    fs::write(store.generations_dir().join(".tmp-half-record"), b"{").expect("write");
    let stranger = store.objects_dir().join("lost+found");
    fs::write(&stranger, b"not ours").expect("write");

    let report = store.gc(1).expect("gc");

    assert_eq!(report.temp_files_deleted, 2);
    assert!(report.objects_deleted.is_empty());
    assert!(stranger.exists());
    assert!(common::temp_files(store.objects_dir()).is_empty());
    assert!(common::temp_files(store.generations_dir()).is_empty());
}

#[test]
fn a_second_gc_has_nothing_to_do() {
    let (_dir, store) = temp_store();
    build_many(&store, 3);
    store.gc(1).expect("gc");
    let report = store.gc(1).expect("gc again");
    assert!(report.generations_deleted.is_empty());
    assert!(report.objects_deleted.is_empty());
    assert_eq!(report.generations_kept, vec![3]);
}

/// The generations an interrupted switch names (its journal's from, to and
/// back_to) are pinned: recovering it needs them, whatever their age.
#[test]
fn keeps_pinned_generations_and_their_objects() {
    let (_dir, store) = temp_store();
    let objects = build_many(&store, 5);
    store.set_current(2).expect("current");
    store.set_last_good(2).expect("last-good");

    let report = store.gc_pinned(0, &BTreeSet::from([1, 4])).expect("gc");

    assert_eq!(report.generations_deleted, vec![3, 5]);
    assert_eq!(numbers(&store), vec![1, 2, 4]);
    for (index, object) in objects.iter().enumerate() {
        assert_eq!(
            store.contains(object).expect("contains"),
            [0, 1, 3].contains(&index),
            "{object}"
        );
    }
}

#[test]
fn data_snapshots_go_with_the_generation_that_took_them() {
    let (_dir, store) = temp_store();
    build_many(&store, 4);
    store.set_current(4).expect("current");
    store.set_last_good(4).expect("last-good");
    let snapshots = store.state_dir().snapshots();
    for n in [2, 4] {
        let data = snapshots.join(n.to_string()).join("lnd").join("data");
        fs::create_dir_all(&data).expect("snapshot dir");
        fs::write(data.join("channel.db"), b"state").expect("snapshot file");
    }
    // Not a generation's: left alone.
    fs::create_dir_all(snapshots.join("notes")).expect("stranger");

    let report = store.gc(2).expect("gc");

    assert_eq!(report.generations_deleted, vec![1, 2]);
    assert_eq!(report.snapshots_deleted, vec![2]);
    assert!(!snapshots.join("2").exists());
    assert!(snapshots.join("4/lnd/data/channel.db").exists());
    assert!(snapshots.join("notes").exists());
}

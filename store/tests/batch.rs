//! Batched inserts: the same objects as single inserts, one directory flush.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;

use archy_store::Inserted;
use common::{insert, name, temp_files, temp_store};

#[test]
fn a_batch_writes_the_same_read_only_objects_as_single_inserts() {
    let (_dir, store) = temp_store();
    let (_single_dir, single) = temp_store();
    let mut batch = store.batch();
    let mut ids = Vec::new();
    for (object_name, content) in [("a.conf", &b"a=1\n"[..]), ("b.conf", b"b=2\n")] {
        let (id, inserted) = batch.insert_bytes(&name(object_name), content).unwrap();
        assert_eq!(inserted, Inserted::Written(content.len() as u64));
        assert_eq!(id, insert(&single, object_name, content));
        ids.push((id, content));
    }
    batch.finish().unwrap();

    for (id, content) in ids {
        assert_eq!(store.read(&id).unwrap(), content);
        let mode = fs::metadata(store.object_path(&id))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o444);
    }
    assert!(temp_files(store.objects_dir()).is_empty());
    assert!(store.verify().unwrap().is_clean());
}

#[test]
fn a_batch_skips_objects_already_present() {
    let (_dir, store) = temp_store();
    let existing = insert(&store, "a.conf", b"a=1\n");
    let mut batch = store.batch();
    let (id, inserted) = batch.insert_bytes(&name("a.conf"), b"a=1\n").unwrap();
    assert_eq!((id, inserted), (existing, Inserted::AlreadyPresent));
    assert!(
        temp_files(store.objects_dir()).is_empty(),
        "nothing written"
    );
    batch.finish().unwrap();
    assert!(store.verify().unwrap().is_clean());
}

#[test]
fn a_batch_names_nothing_until_finish() {
    let (_dir, store) = temp_store();
    let mut batch = store.batch();
    let (id, _) = batch.insert_bytes(&name("a.conf"), b"a=1\n").unwrap();
    // Written, but unnamed until its content is flushed in `finish`.
    assert!(!store.contains(&id).unwrap());
    assert!(!store.object_path(&id).exists());
    assert!(batch.contains(&id).unwrap(), "the batch knows it holds it");
    let temps = temp_files(store.objects_dir());
    assert_eq!(temps.len(), 1, "{temps:?}");
    let temp_mode = fs::metadata(store.objects_dir().join(&temps[0]))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(temp_mode & 0o7777, 0o444, "read-only from the start");

    batch.finish().unwrap();
    assert!(store.contains(&id).unwrap());
    assert!(temp_files(store.objects_dir()).is_empty());
}

#[test]
fn a_batch_dropped_unfinished_leaves_no_object_and_no_temp_file() {
    let (_dir, store) = temp_store();
    let mut batch = store.batch();
    let (a, _) = batch.insert_bytes(&name("a.conf"), b"a=1\n").unwrap();
    let (b, _) = batch.insert_bytes(&name("b.conf"), b"b=2\n").unwrap();
    drop(batch);

    for id in [a, b] {
        assert!(!store.contains(&id).unwrap(), "{id} has a name");
    }
    assert!(temp_files(store.objects_dir()).is_empty());
    assert_eq!(fs::read_dir(store.objects_dir()).unwrap().count(), 0);
}

#[test]
fn the_same_object_twice_in_a_batch_is_written_once() {
    let (_dir, store) = temp_store();
    let mut batch = store.batch();
    let first = batch.insert_bytes(&name("a.conf"), b"a=1\n").unwrap();
    let second = batch.insert_bytes(&name("a.conf"), b"a=1\n").unwrap();
    assert_eq!(first.1, Inserted::Written(4));
    assert_eq!(second, (first.0.clone(), Inserted::AlreadyPresent));
    assert_eq!(temp_files(store.objects_dir()).len(), 1, "one write");
    batch.finish().unwrap();
    assert_eq!(store.read(&first.0).unwrap(), b"a=1\n");
    assert_eq!(fs::read_dir(store.objects_dir()).unwrap().count(), 1);
}

#[test]
fn an_object_named_by_another_writer_meanwhile_is_kept() {
    let (_dir, store) = temp_store();
    let mut batch = store.batch();
    let (id, _) = batch.insert_bytes(&name("a.conf"), b"a=1\n").unwrap();
    // A single insert of the same content names it before the batch does.
    let (_, inserted) = store.insert_bytes(&name("a.conf"), b"a=1\n").unwrap();
    assert!(matches!(inserted, Inserted::Written(_)));
    let before = common::file_identity(&store.object_path(&id));

    batch.finish().unwrap();
    assert_eq!(common::file_identity(&store.object_path(&id)), before);
    assert!(
        temp_files(store.objects_dir()).is_empty(),
        "our copy deleted"
    );
    assert!(store.verify().unwrap().is_clean());
}

#[test]
fn a_batch_cut_short_leaves_only_temp_files_that_gc_deletes() {
    let (_dir, store) = temp_store();
    let mut batch = store.batch();
    let (id, _) = batch.insert_bytes(&name("a.conf"), b"a=1\n").unwrap();
    // What a crash before `finish` leaves: the temp files, never deleted.
    std::mem::forget(batch);
    assert!(!store.contains(&id).unwrap());
    assert_eq!(temp_files(store.objects_dir()).len(), 1);

    let report = store.gc(1).unwrap();
    assert_eq!(report.temp_files_deleted, 1);
    assert!(report.objects_deleted.is_empty());
    assert_eq!(fs::read_dir(store.objects_dir()).unwrap().count(), 0);
}

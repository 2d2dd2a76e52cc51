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
fn a_batch_skips_objects_already_present_and_may_be_dropped_unfinished() {
    let (_dir, store) = temp_store();
    let existing = insert(&store, "a.conf", b"a=1\n");
    let mut batch = store.batch();
    let (id, inserted) = batch.insert_bytes(&name("a.conf"), b"a=1\n").unwrap();
    assert_eq!((id, inserted), (existing, Inserted::AlreadyPresent));
    let (new, _) = batch.insert_bytes(&name("b.conf"), b"b=2\n").unwrap();
    // Dropped without `finish`: the objects are whole, only their names'
    // durability was not waited for.
    drop(batch);

    assert_eq!(store.read(&new).unwrap(), b"b=2\n");
    assert!(store.verify().unwrap().is_clean());
}

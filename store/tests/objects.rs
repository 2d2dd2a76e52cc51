//! Objects: insert, read, verify.

mod common;

use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;

use archy_store::{Digest, Inserted, ObjectId, ObjectName, StoreError};
use common::{build, file_identity, insert, name, temp_files, temp_store};

#[test]
fn insert_writes_a_read_only_object_named_by_its_blake3() {
    let (_dir, store) = temp_store();
    let (id, inserted) = store
        .insert_bytes(&name("bitcoin.conf"), b"server=1\n")
        .expect("insert");

    assert_eq!(inserted, Inserted::Written(9));
    let expected = format!("{}-bitcoin.conf", blake3::hash(b"server=1\n").to_hex());
    assert_eq!(id.to_string(), expected);
    let path = store.object_path(&id);
    assert_eq!(path, store.objects_dir().join(&expected));
    assert_eq!(
        fs::read(&path).expect("read the object file"),
        b"server=1\n"
    );
    let mode = fs::metadata(&path).expect("stat").permissions().mode();
    assert_eq!(mode & 0o7777, 0o444);
    assert!(store.contains(&id).expect("contains"));
    assert_eq!(store.read(&id).expect("read"), b"server=1\n");
    assert!(temp_files(store.objects_dir()).is_empty());
}

#[test]
fn inserting_an_existing_object_writes_nothing() {
    let (_dir, store) = temp_store();
    let (id, _) = store.insert_bytes(&name("a.txt"), b"same").expect("insert");
    let before = file_identity(&store.object_path(&id));
    let dir_before = file_identity(store.objects_dir());

    let (again, inserted) = store
        .insert_bytes(&name("a.txt"), b"same")
        .expect("insert again");

    assert_eq!(again, id);
    assert_eq!(inserted, Inserted::AlreadyPresent);
    assert_eq!(file_identity(&store.object_path(&id)), before);
    assert_eq!(
        file_identity(store.objects_dir()),
        dir_before,
        "no temp file was created"
    );
}

#[test]
fn same_content_under_another_name_is_another_object() {
    let (_dir, store) = temp_store();
    let first = insert(&store, "a.txt", b"same");
    let second = insert(&store, "b.txt", b"same");
    assert_eq!(first.digest(), second.digest());
    assert_ne!(first, second);
    assert!(store.contains(&first).expect("contains"));
    assert!(store.contains(&second).expect("contains"));
}

#[test]
fn names_that_could_escape_or_hide_are_rejected() {
    for bad in ["../etc", "a/b", ".tmp-x", "", "with space"] {
        let err = ObjectName::try_from(bad).expect_err("must be rejected");
        assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
    }
}

#[test]
fn insert_file_streams_large_files_to_the_same_id_as_insert_bytes() {
    let (dir, store) = temp_store();
    // Several copy buffers plus an odd tail, so chunk boundaries matter.
    let content: Vec<u8> = (0..(3 << 20) + 12_345)
        .map(|i: u32| (i % 251) as u8)
        .collect();
    let src = dir.path().join("image.tar");
    fs::write(&src, &content).expect("write the source");

    let (id, inserted) = store
        .insert_file(&name("image.tar"), &src)
        .expect("insert_file");
    assert_eq!(inserted, Inserted::Written(content.len() as u64));
    assert_eq!(id, ObjectId::of(&name("image.tar"), &content));
    assert_eq!(store.read(&id).expect("read"), content);
    let mode = fs::metadata(store.object_path(&id))
        .expect("stat")
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o444);

    let before = file_identity(&store.object_path(&id));
    let (again, inserted) = store
        .insert_file(&name("image.tar"), &src)
        .expect("insert again");
    assert_eq!((again, inserted), (id.clone(), Inserted::AlreadyPresent));
    assert_eq!(file_identity(&store.object_path(&id)), before);
    assert!(temp_files(store.objects_dir()).is_empty());
}

/// A writer keeps stamping a version number into the first and the last
/// byte of the source while it is inserted. A copy that took the first
/// byte before a write and the last after it would be torn: it must be
/// refused, and anything stored must be one version throughout.
#[test]
fn insert_file_refuses_a_source_written_during_the_copy() {
    let (dir, store) = temp_store();
    let size = 32 << 20;
    let src = dir.path().join("busy.bin");
    fs::write(&src, vec![0u8; size]).expect("write the source");
    let stop = AtomicBool::new(false);
    let outcome = thread::scope(|scope| {
        scope.spawn(|| {
            let file = fs::OpenOptions::new()
                .write(true)
                .open(&src)
                .expect("open the source for writing");
            let mut version = 1u8;
            while !stop.load(Ordering::Relaxed) {
                file.write_at(&[version], 0).expect("write");
                file.write_at(&[version], size as u64 - 1).expect("write");
                version = version.wrapping_add(1);
            }
        });
        let outcome = store.insert_file(&name("busy.bin"), &src);
        stop.store(true, Ordering::Relaxed);
        outcome
    });
    match outcome {
        Err(StoreError::SourceChanged { path }) => assert_eq!(path, src),
        // Only if the writer never ran during the copy.
        Ok((id, _)) => {
            let stored = store.read(&id).expect("read");
            assert_eq!(stored[0], stored[size - 1], "a torn copy was stored");
        }
        Err(other) => panic!("{other:?}"),
    }
    assert!(temp_files(store.objects_dir()).is_empty());
}

#[test]
fn insert_file_of_an_object_already_there_leaves_no_temp_file() {
    let (dir, store) = temp_store();
    let src = dir.path().join("app.bin");
    fs::write(&src, b"binary").expect("write the source");
    let existing = insert(&store, "app.bin", b"binary");
    let (id, inserted) = store.insert_file(&name("app.bin"), &src).expect("insert");
    assert_eq!((id, inserted), (existing, Inserted::AlreadyPresent));
    assert!(temp_files(store.objects_dir()).is_empty());
}

#[test]
fn insert_file_of_a_missing_source_names_it() {
    let (dir, store) = temp_store();
    let src = dir.path().join("nope");
    let err = store
        .insert_file(&name("nope"), &src)
        .expect_err("no such file");
    assert!(
        err.to_string().contains(&src.display().to_string()),
        "{err}"
    );
    assert!(temp_files(store.objects_dir()).is_empty());
}

#[test]
fn concurrent_inserts_of_one_object_write_it_once() {
    let (_dir, store) = temp_store();
    let threads = 8;
    let barrier = Arc::new(Barrier::new(threads));
    let content = vec![7u8; 256 * 1024];
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (store, barrier, content) = (store.clone(), barrier.clone(), content.clone());
            thread::spawn(move || {
                barrier.wait();
                store.insert_bytes(&name("blob"), &content).expect("insert")
            })
        })
        .collect();
    let results: Vec<_> = handles
        .into_iter()
        .map(|handle| handle.join().expect("thread"))
        .collect();

    let written = results
        .iter()
        .filter(|(_, inserted)| matches!(inserted, Inserted::Written(_)))
        .count();
    assert_eq!(written, 1, "exactly one writer wins: {results:?}");
    assert!(results.iter().all(|(id, _)| *id == results[0].0));
    assert_eq!(store.read(&results[0].0).expect("read"), content);
    assert!(temp_files(store.objects_dir()).is_empty());
}

#[test]
fn read_refuses_a_corrupt_object_and_names_a_missing_one() {
    let (_dir, store) = temp_store();
    let id = insert(&store, "x.conf", b"original");
    corrupt(&store.object_path(&id));
    match store.read(&id) {
        Err(StoreError::CorruptObject {
            id: bad, actual, ..
        }) => {
            assert_eq!(bad, id);
            assert_eq!(actual, Digest::of(b"Original"));
        }
        other => panic!("expected CorruptObject, got {other:?}"),
    }

    let absent = ObjectId::of(&name("y.conf"), b"never inserted");
    assert!(!store.contains(&absent).expect("contains"));
    assert!(matches!(
        store.read(&absent),
        Err(StoreError::ObjectNotFound { .. })
    ));
}

#[test]
fn a_clean_store_verifies_clean() {
    let (_dir, store) = temp_store();
    build(&store, "one");
    build(&store, "two");
    let report = store.verify().expect("verify");
    assert!(report.is_clean(), "{report:#?}");
    assert_eq!(report.objects_checked, 4);
}

#[test]
fn verify_reports_a_flipped_byte_with_the_object_id() {
    let (_dir, store) = temp_store();
    let good = insert(&store, "good.conf", b"fine");
    let bad = insert(&store, "bad.conf", b"original");
    corrupt(&store.object_path(&bad));

    let report = store.verify().expect("verify");

    assert!(!report.is_clean());
    assert_eq!(report.objects_checked, 2);
    assert_eq!(report.corrupt.len(), 1, "{report:#?}");
    let corrupt = &report.corrupt[0];
    assert_eq!(corrupt.id, bad);
    assert_eq!(corrupt.expected, bad.digest());
    assert_eq!(corrupt.actual, Digest::of(b"Original"));
    assert!(report.corrupt.iter().all(|c| c.id != good));
}

#[test]
fn verify_reports_strangers_and_leftovers_in_the_store() {
    let (_dir, store) = temp_store();
    insert(&store, "ok", b"ok");
    let dir = store.objects_dir();
    fs::write(dir.join("not-an-object"), b"?").expect("write");
    fs::create_dir(dir.join(format!("{}-a-dir", Digest::of(b"d")))).expect("mkdir");
    fs::write(dir.join(".tmp-leftover"), b"half").expect("write");

    let report = store.verify().expect("verify");

    assert_eq!(report.unknown.len(), 2, "{report:#?}");
    assert!(report.unknown.contains(&dir.join("not-an-object")));
    assert_eq!(report.temp_leftovers, vec![dir.join(".tmp-leftover")]);
    assert!(!report.is_clean());
}

#[test]
fn leftover_temp_files_alone_do_not_make_a_store_unclean() {
    let (_dir, store) = temp_store();
    insert(&store, "ok", b"ok");
    fs::write(store.objects_dir().join(".tmp-leftover"), b"half").expect("write");
    let report = store.verify().expect("verify");
    assert_eq!(report.temp_leftovers.len(), 1);
    assert!(report.is_clean(), "{report:#?}");
}

#[test]
fn verify_reports_objects_a_record_needs_but_the_store_lacks() {
    let (_dir, store) = temp_store();
    let (record, object) = build(&store, "one");
    // Simulate outside damage: archy itself never deletes a listed object.
    fs::remove_file(store.object_path(&object)).expect("remove");

    let report = store.verify().expect("verify");

    assert!(!report.is_clean());
    assert_eq!(report.missing.len(), 1, "{report:#?}");
    assert_eq!(report.missing[0].generation, record.number);
    assert_eq!(report.missing[0].id, object);
}

/// Flips the case of the first byte of a (read-only) object, as a disk
/// error or a careless edit would.
fn corrupt(path: &std::path::Path) {
    fs::set_permissions(path, fs::Permissions::from_mode(0o644)).expect("chmod");
    let mut bytes = fs::read(path).expect("read");
    bytes[0] ^= 0x20;
    let mut file = fs::File::create(path).expect("open for writing");
    file.write_all(&bytes).expect("write");
}

//! Generation records and the `current` / `last-good` links.

mod common;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use archy_store::{GenerationEntry, GenerationRecord, ObjectId, Outcome, StoreError};
use common::{build, draft, file_identity, insert, name, temp_files, temp_store};

#[test]
fn generations_are_numbered_from_one_and_stored_as_json() {
    let (_dir, store) = temp_store();
    let (first, object) = build(&store, "one");
    let (second, _) = build(&store, "two");

    assert_eq!((first.number, second.number), (1, 2));
    assert_eq!(first.outcome, Outcome::Built);
    assert_eq!(first.outcome_reason, None);
    assert_eq!(first.objects, vec![object]);
    assert_eq!(first.source, "test one");
    assert!(
        humantime::parse_rfc3339(&first.created).is_ok(),
        "{}",
        first.created
    );
    assert!(first.created.ends_with('Z'), "UTC: {}", first.created);

    let json = fs::read(store.generation_path(1)).expect("read the record");
    let on_disk: GenerationRecord = serde_json::from_slice(&json).expect("parse");
    assert_eq!(on_disk, first);
    let value: serde_json::Value = serde_json::from_slice(&json).expect("parse");
    assert_eq!(value["outcome"], "built");
    assert_eq!(value["facts"]["hostname"], "node");
    assert_eq!(store.generation(2).expect("generation 2"), second);
    assert!(temp_files(store.generations_dir()).is_empty());
}

#[test]
fn recording_the_same_root_again_writes_nothing() {
    let (_dir, store) = temp_store();
    let (first, object) = build(&store, "same");
    let record_before = file_identity(&store.generation_path(first.number));
    let dir_before = file_identity(store.generations_dir());

    let again = store
        .record_generation(draft(&store, "same", vec![object]))
        .expect("record again");

    assert_eq!(again, first);
    assert_eq!(store.generations().expect("list").len(), 1);
    assert_eq!(
        file_identity(&store.generation_path(first.number)),
        record_before
    );
    assert_eq!(file_identity(store.generations_dir()), dir_before);
}

#[test]
fn a_record_cannot_list_missing_objects() {
    let (_dir, store) = temp_store();
    let present = insert(&store, "here", b"here");
    let absent = ObjectId::of(&name("gone"), b"never inserted");

    let err = store
        .record_generation(draft(&store, "x", vec![present, absent.clone()]))
        .expect_err("must refuse");

    match &err {
        StoreError::MissingObjects { missing, .. } => assert_eq!(missing, &vec![absent.clone()]),
        other => panic!("expected MissingObjects, got {other:?}"),
    }
    assert!(err.to_string().contains(&absent.to_string()), "{err}");
    assert!(store.generations().expect("list").is_empty());
}

#[test]
fn a_root_must_be_a_digest() {
    let (_dir, store) = temp_store();
    let mut bad = draft(&store, "x", vec![]);
    bad.root = "not-hex".to_owned();
    assert!(matches!(
        store.record_generation(bad),
        Err(StoreError::InvalidRoot(_))
    ));
    assert!(store.generations().expect("list").is_empty());
}

#[test]
fn a_broken_record_is_listed_as_broken_and_the_others_stay_usable() {
    let (_dir, store) = temp_store();
    build(&store, "one");
    build(&store, "two");
    build(&store, "three");
    fs::write(store.generation_path(2), b"{ truncated").expect("break generation 2");

    let entries = store.generations().expect("the listing must not fail");

    let numbers: Vec<u64> = entries.iter().map(GenerationEntry::number).collect();
    assert_eq!(numbers, vec![1, 2, 3]);
    assert!(entries[0].record().is_some() && entries[2].record().is_some());
    match &entries[1] {
        GenerationEntry::Broken(broken) => {
            assert_eq!(broken.path, store.generation_path(2));
            assert!(
                broken.reason.contains("not a valid record"),
                "{}",
                broken.reason
            );
        }
        GenerationEntry::Valid(record) => panic!("generation 2 should be broken: {record:?}"),
    }
    let err = store.generation(2).expect_err("broken");
    assert!(
        matches!(err, StoreError::BrokenRecord { number: 2, .. }),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains(&store.generation_path(2).display().to_string())
    );
    assert!(store.generation(3).is_ok());
    assert_eq!(build(&store, "four").0.number, 4);
}

#[test]
fn a_record_whose_number_disagrees_with_its_file_name_is_broken() {
    let (_dir, store) = temp_store();
    build(&store, "one");
    fs::copy(store.generation_path(1), store.generation_path(5)).expect("copy");
    let entries = store.generations().expect("list");
    assert!(matches!(&entries[1], GenerationEntry::Broken(b) if b.number == 5));
}

#[test]
fn stray_files_in_generations_are_ignored() {
    let (_dir, store) = temp_store();
    build(&store, "one");
    fs::write(store.generations_dir().join("README"), b"hi").expect("write");
    fs::write(store.generations_dir().join(".tmp-abc"), b"half").expect("write");
    fs::write(store.generations_dir().join("01"), b"not canonical").expect("write");
    let numbers: Vec<u64> = store
        .generations()
        .expect("list")
        .iter()
        .map(GenerationEntry::number)
        .collect();
    assert_eq!(numbers, vec![1]);
}

#[test]
fn set_outcome_rewrites_the_record_and_keeps_the_rest() {
    let (_dir, store) = temp_store();
    let (first, _) = build(&store, "one");

    let failed = store
        .set_outcome(
            1,
            Outcome::Failed,
            Some("health_http http://localhost:3000 timed out".to_owned()),
        )
        .expect("set outcome");

    assert_eq!(failed.outcome, Outcome::Failed);
    let reread = store.generation(1).expect("reread");
    assert_eq!(reread, failed);
    assert_eq!(
        reread.outcome_reason.as_deref(),
        Some("health_http http://localhost:3000 timed out")
    );
    assert_eq!(
        GenerationRecord {
            outcome: first.outcome,
            outcome_reason: None,
            ..reread
        },
        first
    );
    let json: serde_json::Value =
        serde_json::from_slice(&fs::read(store.generation_path(1)).expect("read")).expect("parse");
    assert_eq!(json["outcome"], "failed");
    assert!(temp_files(store.generations_dir()).is_empty());
    assert!(matches!(
        store.set_outcome(9, Outcome::Good, None),
        Err(StoreError::NoSuchGeneration { number: 9, .. })
    ));
}

#[test]
fn links_are_absent_until_set_then_read_back() {
    let (_dir, store) = temp_store();
    build(&store, "one");
    build(&store, "two");
    assert_eq!(store.current().expect("current"), None);
    assert_eq!(store.last_good().expect("last-good"), None);

    store.set_current(2).expect("set current");
    store.set_last_good(1).expect("set last-good");
    assert_eq!(store.current().expect("current"), Some(2));
    assert_eq!(store.last_good().expect("last-good"), Some(1));

    let link = store.state_dir().path().join("current");
    assert_eq!(
        fs::read_link(&link).expect("readlink"),
        Path::new("generations/2")
    );
    assert_eq!(
        fs::read_link(store.state_dir().path().join("last-good")).expect("readlink"),
        Path::new("generations/1")
    );
    // The relative link resolves to the record.
    assert_eq!(
        fs::read(&link).expect("follow"),
        fs::read(store.generation_path(2)).expect("read")
    );

    store.set_current(1).expect("re-point current");
    assert_eq!(store.current().expect("current"), Some(1));
    assert!(temp_files(store.state_dir().path()).is_empty());
}

#[test]
fn a_link_cannot_point_at_a_missing_or_broken_generation() {
    let (_dir, store) = temp_store();
    build(&store, "one");
    build(&store, "two");
    store.set_current(1).expect("set current");
    fs::write(store.generation_path(2), b"garbage").expect("break 2");

    assert!(matches!(
        store.set_current(7),
        Err(StoreError::NoSuchGeneration { number: 7, .. })
    ));
    assert!(matches!(
        store.set_current(2),
        Err(StoreError::BrokenRecord { number: 2, .. })
    ));
    assert_eq!(store.current().expect("current"), Some(1));
    assert!(temp_files(store.state_dir().path()).is_empty());
}

#[test]
fn readers_never_see_a_missing_link_while_it_flips() {
    let (_dir, store) = temp_store();
    build(&store, "one");
    build(&store, "two");
    store.set_current(1).expect("set current");
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (store, done) = (store.clone(), done.clone());
        thread::spawn(move || {
            let mut reads = 0u64;
            while !done.load(Ordering::Relaxed) {
                let seen = store.current().expect("read current");
                assert!(matches!(seen, Some(1 | 2)), "saw {seen:?}");
                reads += 1;
            }
            reads
        })
    };
    for flip in 0..500 {
        store.set_current(1 + flip % 2).expect("flip");
    }
    done.store(true, Ordering::Relaxed);
    let reads = reader
        .join()
        .expect("the reader saw a missing or wrong link");
    assert!(reads > 0);
}

#[test]
fn a_leftover_temp_link_from_a_crash_is_harmless_and_cleaned_by_gc() {
    let (_dir, store) = temp_store();
    build(&store, "one");
    build(&store, "two");
    store.set_current(1).expect("set current");
    // A crash between creating the temp link and renaming it.
    let leftover = store.state_dir().path().join(".tmp-current-crashed");
    symlink("generations/2", &leftover).expect("symlink");

    assert_eq!(store.current().expect("current"), Some(1));
    store.set_current(2).expect("set current over the leftover");
    assert_eq!(store.current().expect("current"), Some(2));
    assert!(
        fs::symlink_metadata(&leftover).is_ok(),
        "set_current leaves others' temp names alone"
    );

    let report = store.gc(10).expect("gc");
    assert_eq!(report.temp_files_deleted, 1);
    assert!(fs::symlink_metadata(&leftover).is_err());
    assert_eq!(store.current().expect("current"), Some(2));
}

#[test]
fn a_link_that_is_not_to_a_generation_is_reported() {
    let (_dir, store) = temp_store();
    symlink("/etc/passwd", store.state_dir().path().join("current")).expect("symlink");
    fs::write(store.state_dir().path().join("last-good"), b"3").expect("write");
    let err = store.current().expect_err("bad link");
    assert!(matches!(err, StoreError::BadLink { .. }), "{err:?}");
    assert!(err.to_string().contains("/etc/passwd"), "{err}");
    assert!(matches!(store.last_good(), Err(StoreError::BadLink { .. })));
}

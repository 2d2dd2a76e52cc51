//! The store's versioned records, generation records and rotations: the
//! records today's archy wrote before records named their format (kept as
//! fixtures) still read, a newer format is refused naming its writer, and
//! what is written reads back.

mod common;

use std::fs;

use archy_store::versioned::WRITTEN_BY;
use archy_store::{
    GenerationEntry, Outcome, RotationsError, SecretRotations, StateDir, Store, StoreError,
};
use common::{build, temp_store};

const GENERATION_V1: &str = include_str!("fixtures/generation-v1.json");
const ROTATIONS_V1: &str = include_str!("fixtures/rotations-v1.json");

/// A record that a newer archy wrote.
fn newer(fields: &str) -> String {
    format!(r#"{{"format": 99, "written_by": "archy 7.0.0", {fields}}}"#)
}

#[test]
fn a_generation_record_without_a_format_reads_as_it_is() {
    let (_dir, store) = temp_store();
    fs::write(store.generation_path(1), GENERATION_V1).expect("fixture");
    let record = store.generation(1).expect("the fixture loads");
    assert_eq!(record.number, 1);
    assert_eq!(record.outcome, Outcome::Failed);
    assert_eq!(
        record.outcome_reason.as_deref(),
        Some("health check app failed")
    );
    assert_eq!(record.source, "test one");
    assert_eq!(record.objects.len(), 1);
    assert!(record.graph.to_string().ends_with("-graph.json"));
}

#[test]
fn a_generation_record_names_its_format_and_reads_back() {
    let (_dir, store) = temp_store();
    let (first, _) = build(&store, "one");
    let text = fs::read_to_string(store.generation_path(1)).expect("read");
    assert!(
        text.starts_with(&format!(
            "{{\n  \"format\": 1,\n  \"written_by\": \"{WRITTEN_BY}\",\n  \"number\": 1,"
        )),
        "{text}"
    );
    assert_eq!(store.generation(1).expect("load"), first);
    let failed = store
        .set_outcome(1, Outcome::Failed, Some("why".into()))
        .expect("set outcome");
    assert_eq!(store.generation(1).expect("load"), failed);
}

#[test]
fn a_newer_generation_record_is_refused_and_listed_as_unreadable() {
    let (_dir, store) = temp_store();
    build(&store, "one");
    let future = newer(r#""number": 2, "root": "x", "shiny": true"#);
    fs::write(store.generation_path(2), future).expect("write");
    let err = store.generation(2).expect_err("newer");
    assert!(matches!(err, StoreError::NewerFormat(_)), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("has format 99, written by archy 7.0.0"),
        "{message}"
    );
    assert!(message.contains("run a newer archy"), "{message}");
    // A link cannot point at it.
    assert!(matches!(
        store.set_current(2),
        Err(StoreError::NewerFormat(_))
    ));
    let listing = store.generations().expect("list");
    let GenerationEntry::Broken(broken) = &listing[1] else {
        panic!("{listing:?}")
    };
    assert!(
        broken.reason.contains("written by archy 7.0.0"),
        "{broken:?}"
    );
}

/// A state dir in a temp dir.
fn state() -> (tempfile::TempDir, StateDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = StateDir::new(dir.path());
    (dir, state)
}

#[test]
fn a_rotations_file_without_a_format_is_the_bare_map() {
    let (_dir, state) = state();
    fs::write(state.rotations(), ROTATIONS_V1).expect("fixture");
    let expected: SecretRotations = [
        ("bitcoin-rpc-password".to_string(), 2),
        ("lnd-wallet-password".to_string(), 1),
    ]
    .into();
    assert_eq!(state.read_rotations().expect("read"), expected);
    // Rewritten, it is format 2 and reads the same.
    state.write_rotations(&expected).expect("write");
    let text = fs::read_to_string(state.rotations()).expect("read");
    assert!(text.contains("\"format\": 2"), "{text}");
    assert!(text.contains("\"rotations\": {"), "{text}");
    assert_eq!(state.read_rotations().expect("read"), expected);
}

#[test]
fn a_missing_rotations_file_is_no_rotations_and_a_write_reads_back() {
    let (_dir, state) = state();
    assert!(state.read_rotations().expect("read").is_empty());
    // A secret may be called "format".
    let counts: SecretRotations = [("format".to_string(), 3), ("rpc".to_string(), 1)].into();
    state.write_rotations(&counts).expect("write");
    assert_eq!(state.read_rotations().expect("read"), counts);
    let temp = state.path().join(".tmp-rotations.json");
    assert!(!temp.exists());
    // A leftover temp file of a crash does not stop the next write.
    fs::write(&temp, "{").expect("leftover");
    state
        .write_rotations(&SecretRotations::new())
        .expect("write");
    assert!(state.read_rotations().expect("read").is_empty());
}

#[test]
fn a_newer_rotations_file_is_refused_naming_its_writer() {
    let (_dir, state) = state();
    fs::write(state.rotations(), newer(r#""counts": []"#)).expect("write");
    let err = state.read_rotations().expect_err("newer");
    assert!(matches!(err, RotationsError::Newer(_)), "{err:?}");
    assert!(
        err.to_string().starts_with(&format!(
            "the secret rotations {} has format 99, written by archy 7.0.0",
            state.rotations().display()
        )),
        "{err}"
    );
}

#[test]
fn a_malformed_rotations_file_names_itself() {
    let (_dir, state) = state();
    for bad in [
        "{",
        "[1]",
        r#"{"rpc": -1}"#,
        r#"{"rpc": "2"}"#,
        "{\"rpc\": 4294967296}",
    ] {
        fs::write(state.rotations(), bad).expect("write");
        let err = state.read_rotations().expect_err(bad);
        assert!(matches!(err, RotationsError::Malformed { .. }), "{err:?}");
        assert!(err.to_string().contains("rotations.json"), "{err}");
    }
    assert!(RotationsError::MALFORMED_HINT.contains("delete it"));
}

#[test]
fn the_store_names_its_state_dir() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = StateDir::new(dir.path().join("state"));
    let store = Store::open(&state).expect("open");
    assert_eq!(store.state_dir(), &state);
    assert_eq!(store.objects_dir(), state.objects());
    assert_eq!(store.generations_dir(), state.generations());
}

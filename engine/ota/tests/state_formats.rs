//! The release record's format: the record today's archy wrote before
//! records named their format (a fixture) still reads, a newer format is
//! refused naming its writer, and a written record names its format and
//! reads back.

use std::fs;

use archy_ota::state::{OtaState, StateError};
use archy_store::StateDir;
use semver::Version;

const OTA_V1: &str = include_str!("fixtures/ota-v1.json");

fn v(text: &str) -> Version {
    Version::parse(text).expect("a version")
}

fn state() -> (tempfile::TempDir, StateDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = StateDir::new(dir.path());
    (dir, state)
}

#[test]
fn a_record_without_a_format_reads_as_it_is() {
    let (_dir, state_dir) = state();
    fs::write(state_dir.ota_record(), OTA_V1).expect("fixture");
    let record = OtaState::load(&state_dir).expect("the fixture loads");
    let installed = record.installed.as_ref().expect("installed");
    assert_eq!((&installed.version, installed.generation), (&v("1.2.0"), 3));
    assert_eq!(record.generations.get(&3), Some(&v("1.2.0")));
    let pending = record.pending.as_ref().expect("pending");
    assert_eq!(
        (&pending.version, pending.generation),
        (&v("1.3.1"), Some(5))
    );
    assert!(record.failed(&v("1.3.0")).is_some());
    assert_eq!(record.interrupted.get("1.3.1"), Some(&1));
    assert_eq!(
        record.hold.as_ref().map(|h| h.reason.as_str()),
        Some("exchange audit")
    );
    // Saved again by this archy, it names its format and reads the same.
    record.save(&state_dir).expect("save");
    let text = fs::read_to_string(state_dir.ota_record()).expect("read");
    assert!(
        text.starts_with("{\n  \"format\": 1,\n  \"written_by\": \"archy "),
        "{text}"
    );
    assert_eq!(OtaState::load(&state_dir).expect("load"), record);
}

#[test]
fn a_newer_record_is_refused_naming_its_writer() {
    let (_dir, state_dir) = state();
    fs::write(
        state_dir.ota_record(),
        r#"{"format": 5, "written_by": "archy 2.0.0", "channels": {}}"#,
    )
    .expect("write");
    let err = OtaState::load(&state_dir).expect_err("newer");
    assert!(matches!(err, StateError::Newer(_)), "{err:?}");
    let message = err.to_string();
    assert!(
        message.starts_with(&format!(
            "the release record {} has format 5, written by archy 2.0.0",
            state_dir.ota_record().display()
        )),
        "{message}"
    );
}

#[test]
fn an_unknown_field_is_still_damage() {
    let (_dir, state_dir) = state();
    fs::write(
        state_dir.ota_record(),
        r#"{"format": 1, "written_by": "archy 0.1.0", "instaled": null}"#,
    )
    .expect("write");
    let err = OtaState::load(&state_dir).expect_err("damaged");
    assert!(matches!(err, StateError::Parse { .. }), "{err:?}");
}

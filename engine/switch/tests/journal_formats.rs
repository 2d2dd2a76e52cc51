//! The switch journal's format: a journal today's archy wrote before
//! records named their format (a fixture holding a real plan between two
//! evaluated nodes) loads with this archy, so it can recover that switch;
//! a journal of a newer format is refused naming its writer.

use std::fs;

use archy_store::StateDir;
use archy_switch::journal::{Journal, JournalError, Phase};

const SWITCH_V1: &str = include_str!("fixtures/switch-v1.json");

fn state() -> (tempfile::TempDir, StateDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = StateDir::new(dir.path());
    (dir, state)
}

#[test]
fn a_journal_without_a_format_loads_as_it_is() {
    let (_dir, state) = state();
    fs::write(state.switch_journal(), SWITCH_V1).expect("fixture");
    let journal = Journal::load(&state)
        .expect("the fixture loads")
        .expect("a journal");
    assert_eq!(
        (journal.from, journal.to, journal.back_to),
        (Some(3), 4, Some(3))
    );
    assert_eq!(journal.phase, Phase::Applying);
    assert_eq!(journal.done, ["stop app.service"]);
    assert_eq!(journal.command, "archy switch");
    // Format 1: a rollback in flight is not told apart from the switch.
    assert!(journal.format1);
    assert_eq!(journal.rollback, None);
    let plan = &journal.plan;
    assert_eq!(plan.changes.len(), 2);
    assert_eq!(plan.images.len(), 1);
    assert_eq!(plan.unit_files_changed.len(), 2);
    assert_eq!(plan.touched_units().count(), 2);
    assert_eq!(plan.unchanged, 3);
    // Saved again by this archy, it names its format and loads the same.
    journal.save(&state).expect("save");
    let text = fs::read_to_string(state.switch_journal()).expect("read");
    assert!(text.starts_with("{\n  \"format\": 2,"), "{text}");
    let mut saved = journal.clone();
    saved.format1 = false;
    assert_eq!(Journal::load(&state).expect("load"), Some(saved));
}

#[test]
fn a_newer_journal_is_refused_naming_its_writer() {
    let (_dir, state) = state();
    let mut newer: serde_json::Value = serde_json::from_str(SWITCH_V1).expect("fixture");
    newer["format"] = 3.into();
    newer["written_by"] = "archy 4.2.0".into();
    fs::write(state.switch_journal(), newer.to_string()).expect("write");
    let err = Journal::load(&state).expect_err("newer");
    assert!(matches!(err, JournalError::Newer(_)), "{err:?}");
    let message = err.to_string();
    assert!(
        message.starts_with(&format!(
            "the switch journal {} has format 3, written by archy 4.2.0",
            state.switch_journal().display()
        )),
        "{message}"
    );
    assert!(message.contains("run a newer archy"), "{message}");
    // The journal stays for the newer archy.
    assert!(state.switch_journal().exists());
}

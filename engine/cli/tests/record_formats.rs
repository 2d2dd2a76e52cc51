//! Records written by a newer archy: a switch journal of a format this
//! archy does not know stops every command that recovers first, with exit
//! 3 and a message naming the archy that wrote it, and nothing is changed.

use std::process::Command;

#[test]
fn a_journal_of_a_newer_format_is_refused_with_exit_3() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).expect("state dir");
    let fixture = include_str!("../../switch/tests/fixtures/switch-v1.json");
    let mut journal: serde_json::Value = serde_json::from_str(fixture).expect("the fixture");
    journal["format"] = 99.into();
    journal["written_by"] = "archy 9.9.9".into();
    let text = journal.to_string();
    std::fs::write(state.join("switch.json"), &text).expect("journal");
    std::fs::write(dir.path().join("node.rhai"), "[]").expect("node");

    let out = Command::new(env!("CARGO_BIN_EXE_archy"))
        .args(["--state-dir", state.to_str().expect("utf-8"), "build"])
        .current_dir(dir.path())
        .output()
        .expect("run archy");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("archy 9.9.9"), "{stderr}");
    assert!(stderr.contains("switch.json"), "{stderr}");
    // Nothing was built and the journal is as it was.
    assert!(!state.join("generations/1").exists());
    assert_eq!(
        std::fs::read_to_string(state.join("switch.json")).expect("journal"),
        text
    );
}

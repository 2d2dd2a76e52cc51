//! `archy switch --clobber APP`: what it refuses before anything changes.

use std::path::Path;
use std::process::{Command, Output};

fn archy(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_archy"))
        .args(args)
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run archy")
}

fn write_node(dir: &Path, state: &str) {
    let text = format!(
        r#"[
    dir("/var/lib/counter", #{{}}),
    unit("counter.service", #{{ Service: #{{ ExecStart: "/bin/sleep infinity" }}, Install: #{{ WantedBy: "multi-user.target" }} }}),
    app_lifecycle("counter", #{{ state: "{state}", units: ["counter.service"], data: ["/var/lib/counter"] }}),
]"#
    );
    std::fs::write(dir.join("node.rhai"), text).expect("write node");
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn an_unknown_app_or_one_that_runs_is_refused_with_exit_1() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let state_arg = state.to_str().expect("utf-8");
    write_node(dir.path(), "running");

    let out = archy(
        &[
            "--state-dir",
            state_arg,
            "switch",
            "--clobber",
            "nosuch",
            "--yes",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out)
            .contains("--clobber nosuch: no generation, the new one included, has an app nosuch"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("the apps: counter"),
        "{}",
        stderr(&out)
    );

    let out = archy(
        &[
            "--state-dir",
            state_arg,
            "switch",
            "--clobber",
            "counter",
            "--yes",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("the new generation runs app counter"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("state: \"stopped\""),
        "{}",
        stderr(&out)
    );
    assert!(!state.join("current").exists(), "nothing may be switched");
}

#[test]
fn yes_needs_clobber_and_clobber_is_no_dry_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_node(dir.path(), "stopped");
    let out = archy(&["switch", "--yes"], dir.path());
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = archy(&["switch", "--dry-run", "--clobber", "counter"], dir.path());
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

//! `archy diff`: the plan against the current generation, changing nothing.

use std::path::Path;
use std::process::{Command, Output};

fn archy(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_archy"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run archy")
}

fn write_node(dir: &Path, port: u32) {
    let text = format!(
        r#"[
    file("/etc/app.conf", #{{ text: "port={port}\n" }}),
    unit("app.service", #{{ Service: #{{ ExecStart: "/usr/bin/app /etc/app.conf" }}, Install: #{{ WantedBy: "multi-user.target" }} }}),
    unit("other.service", #{{ Service: #{{ ExecStart: "/usr/bin/other" }}, Install: #{{ WantedBy: "multi-user.target" }} }}),
]"#
    );
    std::fs::write(dir.join("node.rhai"), text).expect("write node");
}

#[test]
fn diff_against_the_current_generation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let state_arg = state.to_str().expect("utf-8");
    write_node(dir.path(), 1);

    // Nothing switched yet: a first switch starts what is installed.
    let out = archy(&["--state-dir", state_arg, "diff"], dir.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("plan: first switch -> "), "{text}");
    assert!(text.contains("start    app.service"), "{text}");
    assert!(!state.join("current").exists(), "diff must not switch");

    // Build generation 1 and make it current, as a switch would.
    let out = archy(&["--state-dir", state_arg, "build"], dir.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    archy_store::Store::open(&archy_store::StateDir::new(&state))
        .expect("store")
        .set_current(1)
        .expect("set current");

    write_node(dir.path(), 2);
    let out = archy(&["--state-dir", state_arg, "diff"], dir.path());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("plan: generation 1 ("), "{text}");
    assert!(text.contains("update   file   /etc/app.conf"), "{text}");
    assert!(text.contains("restart  app.service"), "{text}");
    assert!(
        text.contains("reads /etc/app.conf, which changed"),
        "{text}"
    );
    assert!(!text.contains("other.service"), "{text}");

    let out = archy(&["--state-dir", state_arg, "diff", "--json"], dir.path());
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json plan");
    let touched: Vec<&str> = plan["units"]
        .as_array()
        .expect("units")
        .iter()
        .filter(|u| u["op"] != "skip")
        .map(|u| u["unit"].as_str().expect("name"))
        .collect();
    assert_eq!(touched, vec!["app.service"]);
    assert_eq!(
        archy_store::Store::open(&archy_store::StateDir::new(&state))
            .expect("store")
            .current()
            .expect("current"),
        Some(1)
    );
}

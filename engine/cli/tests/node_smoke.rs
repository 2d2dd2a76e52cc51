//! The real-node harness works: a node boots with systemd running, podman
//! 5.4 and the local busybox image, and the `archy` of this build evaluates
//! the repository's node inside it. Needs root; see `support/node.rs`.

mod support;

use std::path::Path;

use support::node::TestNode;

#[test]
fn a_node_boots_and_archy_evaluates_in_it() {
    if !TestNode::available() {
        return;
    }
    let node = TestNode::up("smoke");

    let state = node.exec(&["systemctl", "is-system-running"]);
    let state = String::from_utf8_lossy(&state.stdout).trim().to_owned();
    if state != "running" {
        let failed = node.exec(&["systemctl", "--failed", "--no-pager"]);
        panic!(
            "node {} is {state:?}, not running; failed units:\n{}",
            node.name(),
            String::from_utf8_lossy(&failed.stdout)
        );
    }

    let podman = node.exec_ok(&["podman", "--version"]);
    assert!(podman.starts_with("podman version 5.4."), "{podman}");
    node.exec_ok(&[
        "podman",
        "image",
        "exists",
        "localhost/testbed/busybox:latest",
    ]);

    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    node.cp(env!("CARGO_BIN_EXE_archy"), "/usr/local/bin/archy");
    node.cp(repo.join("node.rhai"), "/etc/archy/node.rhai");
    node.cp(repo.join("stdlib"), "/etc/archy/stdlib");
    node.cp(repo.join("apps"), "/etc/archy/apps");
    assert!(node.root_path().join("etc/archy/stdlib").is_dir());

    let summary = node.exec_ok(&[
        "archy",
        "eval",
        "/etc/archy/node.rhai",
        "--fact",
        "hostname=n1",
    ]);
    let is_root_line = |l: &str| {
        l.strip_prefix("root ")
            .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
    };
    assert!(summary.lines().any(is_root_line), "{summary}");
}

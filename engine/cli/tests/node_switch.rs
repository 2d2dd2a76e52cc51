//! `archy switch` and `archy rollback` on a real node: systemd 257 as PID 1
//! in a disposable Debian 13 node. Needs root; see `support/node.rs`.

mod support;

use support::archy_node::ArchyNode;
use support::node::TestNode;

/// A node description with two services (one reads a config file) and a
/// timer job; `conf` is the config's text, `extra` more list items.
fn description(conf: &str, extra: &str) -> String {
    format!(
        r#"import "stdlib/systemd" as systemd;
[
    file("/etc/demo/reader.conf", #{{ text: "{conf}\n" }}),
    systemd::service("demo-reader", #{{ exec: "/bin/sh -c 'cat /etc/demo/reader.conf; exec sleep infinity'" }}),
    systemd::service("demo-other", #{{ exec: "/bin/sleep infinity" }}),
    systemd::timer_job("demo-job", #{{ exec: "/bin/true", on_calendar: "daily", persistent: true }}),
    health_unit("demo-reader.service"),
    health_unit("demo-other.service"),
    {extra}
]"#
    )
}

/// What only this test needs beyond the shared node.
trait SwitchNode {
    fn switch_ok(&self) -> String;
}

impl SwitchNode for ArchyNode {
    fn switch_ok(&self) -> String {
        let out = self.archy(&["switch", "/etc/archy/node.rhai"]);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "switch failed:\n{text}");
        text
    }
}

#[test]
fn switch_change_remove_fail_and_roll_back() {
    if !TestNode::available() {
        return;
    }
    let n = ArchyNode::up("switch");

    // Generation 1: both services active, loaded from archy's unit files.
    n.write(&description("one", ""));
    let out = n.switch_ok();
    assert!(out.contains("switched to generation 1"), "{out}");
    for unit in [
        "demo-reader.service",
        "demo-other.service",
        "demo-job.timer",
    ] {
        assert!(n.active(unit), "{unit} is not active");
        assert_eq!(
            n.prop(unit, "FragmentPath"),
            format!("/etc/systemd/system/{unit}")
        );
    }
    assert_eq!(n.node.exec_ok(&["cat", "/etc/demo/reader.conf"]), "one\n");
    let reader_pid = n.prop("demo-reader.service", "MainPID");
    let other_pid = n.prop("demo-other.service", "MainPID");

    // The same again: nothing to do.
    let out = n.switch_ok();
    assert!(out.contains("already running"), "{out}");

    // Generation 2: only the config changes; only its reader restarts.
    n.write(&description("two", ""));
    let out = n.switch_ok();
    assert!(out.contains("restart  demo-reader.service"), "{out}");
    assert_ne!(n.prop("demo-reader.service", "MainPID"), reader_pid);
    assert_eq!(n.prop("demo-other.service", "MainPID"), other_pid);
    assert_eq!(n.node.exec_ok(&["cat", "/etc/demo/reader.conf"]), "two\n");

    // Generation 3: a service exits 1 at once: exit 2, back on 2.
    n.write(&description(
        "two",
        r#"systemd::service("demo-broken", #{ exec: "/bin/false" }), health_unit("demo-broken.service", #{ within: "5s" }),"#,
    ));
    let out = n.archy(&["switch", "/etc/archy/node.rhai"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("generation 3 failed and the node is back on generation 2"),
        "{err}"
    );
    assert!(err.contains("demo-broken.service"), "{err}");
    assert!(n.active("demo-reader.service") && n.active("demo-other.service"));
    assert!(
        !n.node
            .root_path()
            .join("etc/systemd/system/demo-broken.service")
            .exists()
    );
    let generations = String::from_utf8_lossy(&n.archy(&["generations"]).stdout).to_string();
    assert!(
        generations
            .lines()
            .any(|l| l.contains(" 3 ") && l.contains("failed")),
        "{generations}"
    );

    // Generation 4 removes a service: it is stopped and its file is gone.
    n.write(
        &description("two", "")
            .replace(
                r#"systemd::service("demo-other", #{ exec: "/bin/sleep infinity" }),"#,
                "",
            )
            .replace(r#"health_unit("demo-other.service"),"#, ""),
    );
    n.switch_ok();
    assert!(!n.active("demo-other.service"));
    assert!(
        !n.node
            .root_path()
            .join("etc/systemd/system/demo-other.service")
            .exists()
    );

    // Rollback goes to 2 (demo-other back), a second one returns to 4.
    let out = n.archy(&["rollback"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(n.active("demo-other.service"));
    let out = n.archy(&["rollback"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!n.active("demo-other.service"));

    // It works with the Rhai sources gone.
    n.node.exec_ok(&["rm", "-rf", "/etc/archy"]);
    let out = n.archy(&["rollback", "--to", "1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(n.node.exec_ok(&["cat", "/etc/demo/reader.conf"]), "one\n");
    assert!(n.active("demo-other.service"));
}

#[test]
fn a_file_archy_did_not_write_is_refused_then_adopted_and_given_back() {
    if !TestNode::available() {
        return;
    }
    let n = ArchyNode::up("adopt");
    n.node.exec_ok(&[
        "sh",
        "-c",
        "mkdir -p /etc/demo && echo 'hand-written' > /etc/demo/motd && chmod 0600 /etc/demo/motd",
    ]);
    let with_motd = r#"[ file("/etc/demo/motd", #{ text: "managed\n" }) ]"#;
    n.write(with_motd);

    let out = n.archy(&["switch", "/etc/archy/node.rhai"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("/etc/demo/motd") && err.contains("--adopt"),
        "{err}"
    );
    assert_eq!(n.node.exec_ok(&["cat", "/etc/demo/motd"]), "hand-written\n");

    let out = n.archy(&["switch", "--adopt", "/etc/archy/node.rhai"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(n.node.exec_ok(&["cat", "/etc/demo/motd"]), "managed\n");

    // The node stops managing it: the original comes back, mode included.
    n.write("[]");
    let out = n.archy(&["switch", "/etc/archy/node.rhai"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(n.node.exec_ok(&["cat", "/etc/demo/motd"]), "hand-written\n");
    assert_eq!(
        n.node
            .exec_ok(&["stat", "-c", "%a", "/etc/demo/motd"])
            .trim(),
        "600"
    );
}

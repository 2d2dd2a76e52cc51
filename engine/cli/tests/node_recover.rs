//! Crash safety on a real node: archy is killed with SIGKILL in the middle
//! of a switch, and the next `archy recover` finishes or undoes it, so the
//! node ends in the old generation or the new one. Needs root; see
//! `support/node.rs`.

mod support;

use std::time::{Duration, Instant};

use support::archy_node::ArchyNode;
use support::node::TestNode;

/// The node description the tests switch to.
const NODE: &str = "/etc/archy/node.rhai";

const BASE: &str = r#"import "stdlib/systemd" as systemd;
import "stdlib/archy" as archy;
[
    archy::units(),
    file("/etc/demo/conf", #{ text: "CONF\n" }),
    systemd::service("demo-a", #{ exec: "/bin/sh -c 'cat /etc/demo/conf; exec sleep infinity'" }),
    health_unit("demo-a.service"),
    EXTRA
]"#;

fn description(conf: &str, extra: &str) -> String {
    BASE.replace("CONF", conf).replace("EXTRA", extra)
}

/// What only this test needs beyond the shared node.
trait RecoverNode {
    fn journal(&self) -> String;
    fn switch_in_background(&self);
    fn wait_for_journal(&self, needle: &str);
    fn current(&self) -> String;
    fn conf(&self) -> String;
}

impl RecoverNode for ArchyNode {
    fn journal(&self) -> String {
        std::fs::read_to_string(self.node.root_path().join("var/lib/archy/switch.json"))
            .unwrap_or_default()
    }

    /// Starts `archy switch` as a transient unit, so it can be killed with
    /// SIGKILL like a crash would.
    fn switch_in_background(&self) {
        self.switch_paused_after(NODE, "");
    }

    fn wait_for_journal(&self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.journal().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "the journal never said {needle:?}: {}",
                self.journal()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn current(&self) -> String {
        self.node
            .exec_ok(&["readlink", "/var/lib/archy/current"])
            .trim()
            .to_string()
    }

    fn conf(&self) -> String {
        self.node.exec_ok(&["cat", "/etc/demo/conf"])
    }
}

#[test]
fn a_switch_killed_at_any_step_ends_in_one_generation() {
    if !TestNode::available() {
        return;
    }
    let n = ArchyNode::up("recover");
    n.write(&description("one", ""));
    let out = n.archy(&["switch", NODE]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(n.current(), "generations/1");

    // Killed between two units: demo-slow takes seconds to start, after
    // demo-a was already restarted with the new config. Recovery undoes the
    // switch: generation 1's config and units, generation 2 failed.
    n.write(&description(
        "two",
        r#"systemd::service("demo-slow", #{ exec: "/bin/sleep infinity", extra: #{ Service: #{ ExecStartPre: "/bin/sleep 30" } } }),"#,
    ));
    n.switch_in_background();
    n.wait_for_journal("restart demo-a.service");
    n.kill_paused_switch();
    assert!(
        n.journal().contains("\"phase\": \"applying\""),
        "{}",
        n.journal()
    );
    let out = n.archy(&["recover"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("interrupted"));
    assert_eq!(n.current(), "generations/1");
    assert_eq!(n.conf(), "one\n");
    assert!(
        !n.node
            .root_path()
            .join("etc/systemd/system/demo-slow.service")
            .exists()
    );
    assert!(n.journal().is_empty(), "the journal must be gone");
    let generations = String::from_utf8_lossy(&n.archy(&["generations"]).stdout).to_string();
    assert!(
        generations
            .lines()
            .any(|l| l.trim_start().starts_with("2 ") && l.contains("failed")),
        "{generations}"
    );

    // Killed during the health gate: recovery runs the gate again and,
    // once it passes, commits the new generation.
    n.write(&description(
        "three",
        r#"health_cmd(["/usr/bin/test", "-e", "/run/demo-ready"], #{ within: "60s" }),"#,
    ));
    n.switch_in_background();
    n.wait_for_journal("\"phase\": \"health-gate\"");
    n.kill_paused_switch();
    n.node.exec_ok(&["touch", "/run/demo-ready"]);
    // As at boot: the recovery unit archy installed does it.
    n.node
        .exec_ok(&["systemctl", "start", "archy-recover.service"]);
    // Run as a unit, archy logs structured entries to the journal.
    let entries = n
        .node
        .exec_ok(&["journalctl", "-t", "archy", "-o", "json", "--no-pager"]);
    assert!(
        entries.contains("\"TARGET\":\"archy::timing\""),
        "{entries}"
    );
    assert_eq!(n.conf(), "three\n");
    assert_eq!(n.current(), "generations/3");
    assert!(n.journal().is_empty());

    // Killed right after the plan was journaled, before any change:
    // recovery drops the journal; the node stays on generation 3.
    n.write(&description("four", ""));
    n.switch_paused_after(NODE, "planned");
    n.wait_for_journal("\"phase\": \"planned\"");
    n.kill_paused_switch();
    let out = n.archy(&["recover"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(n.current(), "generations/3");
    assert_eq!(n.conf(), "three\n");
    assert!(n.journal().is_empty());

    // Killed with the files written but before systemd reloaded them (a
    // new unit file on disk, unknown to systemd): recovery goes back to
    // generation 3, unit file removed, systemd reloaded.
    n.write(&description(
        "five",
        r#"systemd::service("demo-new", #{ exec: "/bin/sleep infinity" }),"#,
    ));
    n.switch_paused_after(NODE, "files");
    n.wait_for_journal("\"files\"");
    n.kill_paused_switch();
    assert!(
        n.node
            .root_path()
            .join("etc/systemd/system/demo-new.service")
            .exists()
    );
    let out = n.archy(&["recover"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(n.current(), "generations/3");
    assert_eq!(n.conf(), "three\n");
    assert!(
        !n.node
            .root_path()
            .join("etc/systemd/system/demo-new.service")
            .exists()
    );
    assert!(n.journal().is_empty());

    // Nothing in flight: recover says so and changes nothing.
    let out = n.archy(&["recover"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("nothing to do"));
}

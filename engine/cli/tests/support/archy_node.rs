//! A test node with this build's `archy` and the repository's `stdlib/` in
//! it, and a node description at `/etc/archy/node.rhai`.

use std::path::Path;
use std::process::Output;

use super::node::TestNode;

pub struct ArchyNode {
    pub node: TestNode,
}

impl ArchyNode {
    pub fn up(prefix: &str) -> ArchyNode {
        let node = TestNode::up(prefix);
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        node.cp(env!("CARGO_BIN_EXE_archy"), "/usr/local/bin/archy");
        node.cp(repo.join("stdlib"), "/etc/archy/stdlib");
        ArchyNode { node }
    }

    /// A node with the repository's apps and examples in /etc/archy and
    /// the stand-in images (tests/standins) built in it.
    pub fn with_apps(prefix: &str) -> ArchyNode {
        let n = ArchyNode::up(prefix);
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        n.node.cp(repo.join("apps"), "/etc/archy/apps");
        n.node.cp(repo.join("examples"), "/etc/archy/examples");
        n.node.cp(repo.join("tests/standins"), "/root/standins");
        n.node
            .exec_ok(&["sh", "/root/standins/build", "/root/standins"]);
        n
    }

    /// Writes the node description archy switches to.
    pub fn write(&self, text: &str) {
        std::fs::write(self.node.root_path().join("etc/archy/node.rhai"), text)
            .expect("write node");
    }

    /// Runs `archy ARGS` in the node.
    pub fn archy(&self, args: &[&str]) -> Output {
        let mut argv = vec!["archy"];
        argv.extend_from_slice(args);
        self.node.exec(&argv)
    }

    /// A property of a unit, as `systemctl show` says it.
    pub fn prop(&self, unit: &str, prop: &str) -> String {
        self.node
            .exec_ok(&["systemctl", "show", "-P", prop, unit])
            .trim()
            .to_string()
    }

    pub fn active(&self, unit: &str) -> bool {
        self.prop(unit, "ActiveState") == "active"
    }

    /// The id of the container named `name` (a restart makes a new one).
    pub fn container_id(&self, name: &str) -> String {
        self.node
            .exec_ok(&["podman", "inspect", "--format", "{{.Id}}", name])
            .trim()
            .to_string()
    }

    /// When the unit last became active, in systemd's monotonic clock.
    pub fn started_at(&self, unit: &str) -> u64 {
        self.prop(unit, "ActiveEnterTimestampMonotonic")
            .parse()
            .expect("a timestamp")
    }

    /// Starts `archy switch NODE` as the transient unit
    /// `archy-under-test`, paused after journal step `step` (see
    /// `ARCHY_PAUSE_AFTER` in the switch), so a test can kill it there.
    pub fn switch_paused_after(&self, node: &str, step: &str) {
        let pause = format!("--setenv=ARCHY_PAUSE_AFTER={step}");
        self.node.exec_ok(&[
            "systemd-run",
            &pause,
            "--unit=archy-under-test",
            "--collect",
            "/usr/local/bin/archy",
            "switch",
            node,
        ]);
    }

    /// Kills the paused switch with SIGKILL, as a crash would, and waits
    /// until it is gone.
    pub fn kill_paused_switch(&self) {
        self.node.exec_ok(&[
            "systemctl",
            "kill",
            "--signal=KILL",
            "archy-under-test.service",
        ]);
        super::wait::wait_for("archy to die", 20, || {
            let o = self
                .node
                .exec(&["systemctl", "is-active", "archy-under-test.service"]);
            String::from_utf8_lossy(&o.stdout).trim() != "active"
        });
    }
}

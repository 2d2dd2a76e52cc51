//! The port of NixOS's `nixos/tests/switch-test.nix` (see tests/parity.md):
//! one node per test file, its scenarios run one after another, each a
//! function that switches the node and asserts what the printed plan says
//! and what systemd reports.
//!
//! Services log what systemd ran into `/run/parity/TAG.log`, one line per
//! `ExecStart=`, `ExecReload=` or `ExecStop=` (`start:v1`, `stop:v1`, ...),
//! so a scenario tells a restart (the new `ExecStop=` runs after the
//! daemon-reload) from a stop-start (the old one runs) from a reload.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::Output;
use std::time::Instant;

use super::archy_node::ArchyNode;
use super::node::TestNode;

/// A test node for the port, with `/run/parity` made.
pub struct Parity {
    pub n: ArchyNode,
}

/// What one `archy switch` did.
#[derive(Debug)]
pub struct Switched {
    pub code: Option<i32>,
    /// stdout, then stderr.
    pub out: String,
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

impl Switched {
    /// Panics, with the output, unless the switch exited 0.
    pub fn ok(self) -> Switched {
        assert_eq!(self.code, Some(0), "switch failed:\n{}", self.out);
        self
    }

    /// The plan's unit jobs ("units, in order:"), as (op, unit, the rest of
    /// the line), in order.
    pub fn jobs(&self) -> Vec<(String, String, String)> {
        section(&self.out, "units, in order:")
            .into_iter()
            .filter_map(|l| {
                let mut w = l.split_whitespace();
                let op = w.next()?.to_string();
                let unit = w.next()?.to_string();
                Some((op, unit, w.collect::<Vec<_>>().join(" ")))
            })
            .collect()
    }

    /// The (op, unit) pairs of [`Switched::jobs`], sorted, as "op unit".
    pub fn job_list(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .jobs()
            .into_iter()
            .map(|(op, unit, _)| format!("{op} {unit}"))
            .collect();
        v.sort();
        v
    }

    /// The jobs of `unit`'s, as their op words.
    pub fn ops_of(&self, unit: &str) -> Vec<String> {
        self.jobs()
            .into_iter()
            .filter(|(_, u, _)| u == unit)
            .map(|(op, _, _)| op)
            .collect()
    }

    /// The units the plan leaves alone, with the reason, as "unit reason".
    pub fn left_alone(&self) -> Vec<String> {
        section(&self.out, "units left alone:")
            .into_iter()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect()
    }

    /// Asserts the plan's unit jobs are exactly `expected` ("op unit",
    /// any order).
    #[track_caller]
    pub fn assert_jobs(&self, expected: &[&str]) {
        let mut want: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
        want.sort();
        assert_eq!(
            self.job_list(),
            want,
            "the plan's unit jobs; output:\n{}",
            self.out
        );
    }

    /// Asserts the switch printed `needle`.
    #[track_caller]
    pub fn assert_says(&self, needle: &str) {
        assert!(
            self.out.contains(needle),
            "expected {needle:?} in:\n{}",
            self.out
        );
    }
}

/// The indented lines under `header` in a printed plan.
fn section<'a>(out: &'a str, header: &str) -> Vec<&'a str> {
    out.lines()
        .skip_while(|l| l.trim_end() != header)
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .map(str::trim)
        .collect()
}

impl Parity {
    pub fn up(prefix: &str) -> Parity {
        let n = ArchyNode::up(prefix);
        n.node.exec_ok(&["mkdir", "-p", "/run/parity"]);
        Parity { n }
    }

    /// Writes `description` as the node's and runs `archy switch` on it.
    pub fn switch(&self, description: &str) -> Switched {
        self.n.write(description);
        self.run(&["switch", "/etc/archy/node.rhai"])
    }

    /// Runs `archy ARGS`.
    pub fn run(&self, args: &[&str]) -> Switched {
        let o = self.n.archy(args);
        Switched {
            code: o.status.code(),
            out: text(&o),
        }
    }

    /// Switches to `description` and asserts it succeeded, then forgets
    /// what the services logged: the state a scenario starts from.
    pub fn base(&self, description: &str) -> Switched {
        let s = self.switch(description).ok();
        self.sh("rm -f /run/parity/*.log");
        s
    }

    /// Runs `script` with /bin/sh in the node; its output.
    pub fn sh(&self, script: &str) -> String {
        self.n.node.exec_ok(&["/bin/sh", "-c", script])
    }

    /// Runs `script` with /bin/sh in the node; whether it exited 0.
    pub fn sh_ok(&self, script: &str) -> bool {
        self.n
            .node
            .exec(&["/bin/sh", "-c", script])
            .status
            .success()
    }

    pub fn prop(&self, unit: &str, prop: &str) -> String {
        self.n.prop(unit, prop)
    }

    pub fn state(&self, unit: &str) -> String {
        self.prop(unit, "ActiveState")
    }

    /// What the services logged under `tag` since the last call (the log
    /// is emptied).
    pub fn events(&self, tag: &str) -> Vec<String> {
        let path = format!("/run/parity/{tag}.log");
        let out = self.sh(&format!("cat {path} 2>/dev/null; : > {path}"));
        out.lines().map(str::to_string).collect()
    }

    /// Polls `cond` every 100 ms until it holds; panics after `secs`.
    #[track_caller]
    pub fn wait_for(&self, what: &str, secs: u64, cond: impl Fn() -> bool) {
        super::wait::wait_for(what, secs, cond);
    }

    /// The generation archy says is current.
    pub fn current(&self) -> Option<u64> {
        let out = self.n.archy(&["generations", "--json"]);
        let v: serde_json::Value =
            serde_json::from_slice(&out.stdout).expect("generations --json is JSON");
        v.get("current").and_then(|c| c.as_u64())
    }
}

/// A scenario of the port: its name (after the NixOS specialisation or
/// subtest it ports) and its function.
pub type Step = (&'static str, fn(&Parity));

/// Runs `steps` in order on one node, each to its end even when an
/// earlier one failed, printing `PASS`/`FAIL` for each; then panics naming
/// the failed ones, if any. Every scenario first switches to the state it
/// starts from, and a failed one may leave archy unable to go on (a
/// rollback that failed too), so the node is replaced by a fresh one after
/// a failure.
pub fn run_in_order(prefix: &str, steps: &[Step]) {
    if !TestNode::available() {
        return;
    }
    let mut p = Parity::up(prefix);
    let mut failed = Vec::new();
    for (name, step) in steps {
        let t = Instant::now();
        match catch_unwind(AssertUnwindSafe(|| step(&p))) {
            Ok(()) => eprintln!("PASS {name} ({:.1?})", t.elapsed()),
            Err(_) => {
                eprintln!("FAIL {name} ({:.1?})", t.elapsed());
                failed.push(*name);
                drop(p);
                p = Parity::up(prefix);
            }
        }
    }
    assert!(failed.is_empty(), "scenarios that failed: {failed:?}");
}

/// NixOS's `simpleService`, as `name`: a oneshot that stays active and logs
/// each of its commands (labelled `v`) to /run/parity/TAG.log. `unit` and
/// `service` are more keys of [Unit] and [Service]; `opts` more entries of
/// its map (archy's options, more sections).
pub fn oneshot(name: &str, tag: &str, v: &str, unit: &str, service: &str, opts: &str) -> String {
    let log = format!("/run/parity/{tag}.log");
    let unit = if unit.is_empty() {
        String::new()
    } else {
        format!("Unit: #{{ {unit} }},")
    };
    format!(
        r#"unit("{name}", #{{
    {unit}
    Service: #{{
        Type: "oneshot", RemainAfterExit: true,
        ExecStart: "/bin/sh -c 'echo start:{v} >> {log}'",
        ExecReload: "/bin/sh -c 'echo reload:{v} >> {log}'",
        ExecStop: "/bin/sh -c 'echo stop:{v} >> {log}'",
        {service}
    }},
    Install: #{{ WantedBy: "multi-user.target" }},
    {opts}
}}),"#
    )
}

/// A node description of these items.
pub fn node(items: &[String]) -> String {
    format!("[\n{}\n]\n", items.join("\n"))
}

//! Switch figures on a real node (`cargo bench -p archy --bench switch`,
//! needs root and the test node's base image, see tests/node):
//!
//! - a no-op switch (the same generation again), wall time;
//! - a switch that changes one config file among the services: wall time,
//!   the time archy spent waiting for systemd's jobs, the health gate's
//!   (the settle window of the unit it restarted), archy's own time apart
//!   from those, and how many units it touched (must be 1);
//! - `archy rollback`, wall time.
//!
//! Each on 50 and on 200 services. Wall times are taken from outside the
//! node, so they include entering it (`nsenter`); that overhead is measured
//! and printed too. `ARCHY_BENCH_BIN=/path/to/archy` benches that binary
//! instead of this build's (to compare two versions on the same node).

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use support::archy_node::ArchyNode;
use support::node::TestNode;

const SERVICES: [usize; 2] = [50, 200];
const RUNS: usize = 7;

fn node_text(services: usize, version: usize) -> String {
    let mut out = String::from("import \"stdlib/systemd\" as systemd;\n[\n");
    for i in 0..services {
        let text = if i == 0 {
            format!("v{version}")
        } else {
            "v0".into()
        };
        out.push_str(&format!(
            "    file(\"/etc/bench/svc{i}.conf\", #{{ text: \"{text}\\n\" }}),\n    \
             systemd::service(\"bench{i}\", #{{ exec: \"/bin/sh -c 'cat /etc/bench/svc{i}.conf; exec sleep infinity'\" }}),\n"
        ));
    }
    out.push_str("]\n");
    out
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Runs archy in the node with its timing log on; wall time and output.
fn timed(n: &ArchyNode, args: &[&str]) -> (Duration, String, String) {
    let mut argv = vec!["env", "ARCHY_LOG=archy::timing=info", "archy"];
    argv.extend_from_slice(args);
    let start = Instant::now();
    let out = n.node.exec(&argv);
    let wall = start.elapsed();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    );
    assert!(
        out.status.success(),
        "archy {args:?} failed:\n{stdout}{stderr}"
    );
    (wall, stdout, stderr)
}

/// The figure in ms that follows `label` in the timing log (0 when the
/// binary does not log it): `" ms in all, "` is the time spent waiting
/// for systemd's jobs, `"health gate: "` the gate's.
fn logged_ms(stderr: &str, label: &str) -> f64 {
    stderr
        .lines()
        .find_map(|l| {
            let tail = l.split(label).nth(1)?;
            tail.split(" ms").next()?.trim().parse().ok()
        })
        .unwrap_or(0.0)
}

fn main() {
    if !TestNode::available() {
        println!("switch benchmark skipped: it needs root and the test node (see tests/node)");
        return;
    }
    let bin = std::env::var("ARCHY_BENCH_BIN").ok();
    if let Some(bin) = &bin {
        println!("benching {bin} (ARCHY_BENCH_BIN)\n");
    }
    for services in SERVICES {
        bench(services, bin.as_deref());
    }
}

/// The figures on a fresh node with `services` services.
fn bench(services: usize, bin: Option<&str>) {
    let n = ArchyNode::up("bench");
    if let Some(bin) = bin {
        n.node.cp(bin, "/usr/local/bin/archy");
    }
    n.write(&node_text(services, 1));
    let (first, _, _) = timed(&n, &["switch", "/etc/archy/node.rhai"]);

    let enter = median(
        (0..RUNS)
            .map(|_| {
                let t = Instant::now();
                n.node.exec_ok(&["true"]);
                t.elapsed()
            })
            .collect(),
    );

    let noop = median(
        (0..RUNS)
            .map(|_| timed(&n, &["switch", "/etc/archy/node.rhai"]).0)
            .collect(),
    );

    let mut walls = Vec::new();
    let mut own = Vec::new();
    let mut gates = Vec::new();
    let mut touched = Vec::new();
    for run in 0..RUNS {
        n.write(&node_text(services, run + 2));
        let (wall, stdout, stderr) = timed(&n, &["switch", "/etc/archy/node.rhai"]);
        let waited = Duration::from_secs_f64(logged_ms(&stderr, " ms in all, ") / 1e3);
        let gate = Duration::from_secs_f64(logged_ms(&stderr, "health gate: ") / 1e3);
        walls.push(wall);
        gates.push(gate);
        own.push(
            wall.saturating_sub(waited)
                .saturating_sub(gate)
                .saturating_sub(enter),
        );
        touched.push(
            stdout
                .lines()
                .filter(|l| l.trim_start().starts_with("restart "))
                .count(),
        );
    }
    let rollbacks = median((0..RUNS).map(|_| timed(&n, &["rollback"]).0).collect());

    println!("switch benchmarks on a test node ({services} services, median of {RUNS})\n");
    println!("{:<58} {:>10}", "figure", "ms");
    println!(
        "{:<58} {:>10.1}",
        "entering the node (nsenter, included in walls)",
        ms(enter)
    );
    println!(
        "{:<58} {:>10.1}",
        format!("first switch ({services} services started)"),
        ms(first)
    );
    println!("{:<58} {:>10.1}", "no-op switch, wall", ms(noop));
    println!(
        "{:<58} {:>10.1}",
        "one config changed: switch, wall",
        ms(median(walls))
    );
    println!(
        "{:<58} {:>10.1}",
        "one config changed: health gate (settle of what restarted)",
        ms(median(gates))
    );
    println!(
        "{:<58} {:>10.1}",
        "one config changed: archy's own time (wall-systemd-gate-nsenter)",
        ms(median(own))
    );
    println!(
        "{:<58} {:>10}",
        "one config changed: units touched (each run)",
        format!("{touched:?}")
    );
    println!("{:<58} {:>10.1}\n", "rollback, wall", ms(rollbacks));
}

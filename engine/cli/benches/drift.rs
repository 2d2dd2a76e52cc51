//! Drift figures on a real node (`cargo bench -p archy --bench drift`;
//! needs root and the test node's base image, see tests/node):
//!
//! - `archy status` on a clean node, with podman's API service warm and
//!   cold (it exits after 5 s idle; a timer's run finds it cold);
//! - a no-op `archy reconcile` (the state lock, the same observation,
//!   nothing written), warm and cold;
//! - `archy status` finding one edited file.
//!
//! The node is `examples/regtest.rhai` (bitcoind, lnd, electrs, three web
//! UIs, the firewall, archy's own units) with the stand-in images of
//! tests/standins: the default node.rhai cannot be switched on a test node
//! (its tor image is built FROM alpine, from a registry). Both nodes'
//! resource counts are printed. Times are taken inside the node around
//! each command (a process start included, entering the node not), and
//! each run's own figure from its timing log is printed beside them.

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::process::Command;

use support::archy_node::ArchyNode;
use support::node::TestNode;

const RUNS: usize = 15;
const COLD_RUNS: usize = 5;
const NODE: &str = "/etc/archy/examples/regtest.rhai";

/// Runs `archy ARGS` RUNS times in the node, in one shell, each after
/// `before` (a shell command); the wall time of each run in ms, and
/// archy's own figure (its `status: N ms` or `reconcile: N ms` timing
/// line, the process's start and exit left out).
fn runs(n: &ArchyNode, args: &str, before: &str, count: usize) -> (Vec<f64>, Vec<f64>) {
    let script = format!(
        "for i in $(seq {count}); do {before}; s=$(date +%s%N); \
         ARCHY_LOG=archy::timing=debug archy {args} >/dev/null 2>/tmp/timing || true; \
         e=$(date +%s%N); echo \"wall $(( (e - s) / 1000 ))\"; \
         sed -n 's/.*\\(status\\|reconcile\\): \\([0-9.]*\\) ms.*/own \\2/p' /tmp/timing; done"
    );
    let out = n.node.exec_ok(&["sh", "-c", &script]);
    let mut wall = Vec::new();
    let mut own = Vec::new();
    for line in out.lines() {
        match line.split_once(' ') {
            Some(("wall", us)) => wall.push(us.parse::<f64>().expect("µs") / 1e3),
            Some(("own", ms)) => own.push(ms.parse::<f64>().expect("ms")),
            _ => {}
        }
    }
    assert_eq!(wall.len(), count, "{out}");
    (wall, own)
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// How many resources a node description has, by `archy eval`'s summary
/// ("NODE: N resources"), evaluated on this machine.
fn resources(node: &str) -> String {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new(env!("CARGO_BIN_EXE_archy"))
        .current_dir(&repo)
        .args(["eval", node])
        .output()
        .expect("archy eval");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    text.lines()
        .next()
        .and_then(|l| l.split(": ").nth(1))
        .unwrap_or("?")
        .to_string()
}

fn main() {
    if !TestNode::available() {
        println!("drift benchmark skipped: it needs root and the test node (see tests/node)");
        return;
    }
    let n = ArchyNode::with_apps("drift-bench");
    let out = n.archy(&["switch", NODE]);
    assert!(
        out.status.success(),
        "switch failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let clean = n.archy(&["status"]);
    assert!(
        clean.status.success(),
        "the node is not clean after its switch:\n{}",
        String::from_utf8_lossy(&clean.stdout)
    );

    let warm = "true";
    // podman's API service exits after 5 s idle.
    let cold = "sleep 7";
    let (status_warm, own_warm) = runs(&n, "status", warm, RUNS);
    let (status_cold, own_cold) = runs(&n, "status", cold, COLD_RUNS);
    let (reconcile_warm, own_reconcile_warm) = runs(&n, "reconcile", warm, RUNS);
    let (reconcile_cold, own_reconcile_cold) = runs(&n, "reconcile", cold, COLD_RUNS);
    // One edited file, put back by hand after each run.
    let conf = "/etc/bitcoin/bitcoin.conf";
    n.node
        .exec_ok(&["cp", "-p", conf, "/root/bitcoin.conf.good"]);
    let edit = format!("cp -p /root/bitcoin.conf.good {conf}; echo '# edited' >> {conf}");
    let (drifted, own_drifted) = runs(&n, "status", &edit, RUNS);
    n.node
        .exec_ok(&["cp", "-p", "/root/bitcoin.conf.good", conf]);
    assert!(n.archy(&["status"]).status.success());

    println!("drift benchmarks on a test node, examples/regtest.rhai with stand-ins (medians)\n");
    println!(
        "examples/regtest.rhai: {}; node.rhai: {}\n",
        resources("examples/regtest.rhai"),
        resources("node.rhai")
    );
    println!("{:<56} {:>9} {:>9}", "figure", "wall ms", "own ms");
    let row = |what: &str, wall: Vec<f64>, own: Vec<f64>| {
        println!("{what:<56} {:>9.1} {:>9.1}", median(wall), median(own));
    };
    row(
        "archy status, clean, podman API warm",
        status_warm,
        own_warm,
    );
    row(
        "archy status, clean, podman API cold (socket-activated)",
        status_cold,
        own_cold,
    );
    row(
        "archy reconcile, nothing to do, podman API warm",
        reconcile_warm,
        own_reconcile_warm,
    );
    row(
        "archy reconcile, nothing to do, podman API cold",
        reconcile_cold,
        own_reconcile_cold,
    );
    row(
        "archy status, one edited file (bitcoin.conf)",
        drifted,
        own_drifted,
    );
}

//! archy updating itself, on a real node (`cargo bench -p archy --bench
//! self_update`; needs root and the test node's base image, see
//! tests/node): the handover, what a switch that brings a new archy costs
//! beyond the same switch without one.
//!
//! Generation after generation changes one file; every other one also
//! brings a new archy binary (this build with a few bytes appended, so a
//! new hash each time). The difference of the medians is the handover:
//! storing the new binary, linking it, and the gate running it
//! (`--version`, then `status` of the new generation), measured on its
//! own too from the timing log ("new archy checked").

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use support::archy_node::ArchyNode;
use support::node::TestNode;

const RUNS: usize = 7;

fn node_text(run: usize, binary: Option<&str>) -> String {
    let opts = match binary {
        None => "#{}".to_string(),
        Some(hash) => format!("#{{ binary: #{{ source: \"next-archy\", blake3: \"{hash}\" }} }}"),
    };
    format!(
        "import \"stdlib/archy\" as archy;\n[\n    file(\"/etc/bench/marker\", #{{ text: \"{run}\" }}),\n    archy::units({opts}),\n]\n"
    )
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn timed(n: &ArchyNode) -> (Duration, String) {
    let start = Instant::now();
    let out = n.node.exec(&[
        "env",
        "ARCHY_LOG=archy::timing=info",
        "archy",
        "switch",
        "/etc/archy/node.rhai",
    ]);
    let wall = start.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        out.status.success(),
        "switch failed:\n{}{stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    (wall, stderr)
}

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
        println!("self-update benchmark skipped: it needs root and the test node (see tests/node)");
        return;
    }
    let n = ArchyNode::up("bench-self");
    let build = std::fs::read(env!("CARGO_BIN_EXE_archy")).expect("archy");
    n.write(&node_text(0, None));
    timed(&n);
    let mut plain = Vec::new();
    let mut with_new = Vec::new();
    let mut checks = Vec::new();
    for run in 1..=RUNS {
        n.write(&node_text(run * 2, None));
        plain.push(timed(&n).0);
        let mut next = build.clone();
        next.extend_from_slice(format!("\nbench {run}\n").as_bytes());
        std::fs::write(n.node.root_path().join("etc/archy/next-archy"), &next).expect("write");
        let hash = blake3::hash(&next).to_hex().to_string();
        n.write(&node_text(run * 2 + 1, Some(&hash)));
        let (wall, stderr) = timed(&n);
        with_new.push(wall);
        checks.push(Duration::from_secs_f64(
            logged_ms(&stderr, "new archy checked: ") / 1e3,
        ));
    }
    let (plain, with_new, check) = (median(plain), median(with_new), median(checks));
    println!(
        "self-update on a test node (archy binary {:.1} MiB, median of {RUNS})\n",
        build.len() as f64 / (1 << 20) as f64
    );
    println!("{:<58} {:>10}", "figure", "ms");
    println!("{:<58} {:>10.1}", "switch changing one file", ms(plain));
    println!(
        "{:<58} {:>10.1}",
        "the same switch bringing a new archy",
        ms(with_new)
    );
    println!(
        "{:<58} {:>10.1}",
        "handover (the difference)",
        ms(with_new.saturating_sub(plain))
    );
    println!(
        "{:<58} {:>10.1}",
        "of which the gate running the new archy",
        ms(check)
    );
}

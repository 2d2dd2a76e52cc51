//! Evaluation figures (`cargo bench -p archy --bench eval`):
//!
//! - `archy eval node.rhai`: wall time of the real command, release build;
//! - generated nodes of 100, 1,000 and 10,000 resources: evaluation time
//!   and the peak memory of a process that does only that evaluation.
//!
//! Each figure is the median of several runs; the generated nodes are
//! written to a temporary folder beside a link to the repository's stdlib.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const RUNS: usize = 9;

fn repo_root() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .canonicalize()
        .expect("repo root")
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// A node of about `n` resources in thirds: config files, services from
/// the stdlib that read them, and secrets.
fn generated_node(n: usize) -> String {
    let mut out = String::from("import \"stdlib/systemd\" as systemd;\n[\n");
    for i in 0..n.div_ceil(3) {
        out.push_str(&format!(
            "    file(\"/etc/gen/app{i}.conf\", #{{ text: \"value={i}\\n\", mode: 0o640 }}),\n    \
             systemd::service(\"gen-app{i}\", #{{ exec: \"/usr/bin/app --config /etc/gen/app{i}.conf\" }}),\n    \
             secret(\"gen-secret{i}\", #{{ length: 32 }}),\n"
        ));
    }
    out.push_str("]\n");
    out
}

/// Run in a child process: evaluate one node and print the time it took
/// and this process's peak resident memory.
fn child(node: &Path) {
    let (root, logical) = archy_eval::locate(node).expect("locate");
    let sources = archy_eval::FsSources::new(&root, "").expect("sources");
    let facts: archy_eval::HostFacts = [(
        "hostname".to_string(),
        archy_graph::Fact::Text("bench".into()),
    )]
    .into();
    let start = Instant::now();
    let ev = archy_eval::evaluate(sources, &logical, facts, &archy_eval::Limits::default())
        .unwrap_or_else(|f| panic!("{:?}", f.problems));
    let took = start.elapsed();
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF)
        .expect("getrusage");
    println!(
        "{} {} {}",
        took.as_micros(),
        usage.max_rss(),
        ev.graph.nodes.len()
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(pos) = args.iter().position(|a| a == "--child") {
        child(Path::new(&args[pos + 1]));
        return;
    }
    let archy = env!("CARGO_BIN_EXE_archy");
    let root = repo_root();

    let mut walls = Vec::new();
    for _ in 0..RUNS {
        let start = Instant::now();
        let out = Command::new(archy)
            .args(["eval", "--state-dir", "/tmp", "node.rhai"])
            .current_dir(&root)
            .output()
            .expect("archy eval");
        walls.push(start.elapsed());
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    println!(
        "archy eval node.rhai (wall, median of {RUNS}): {:.1} ms",
        median(walls).as_secs_f64() * 1e3
    );

    let dir = tempfile::tempdir().expect("tempdir");
    std::os::unix::fs::symlink(root.join("stdlib"), dir.path().join("stdlib"))
        .expect("link stdlib");
    let me = std::env::current_exe().expect("current exe");
    println!(
        "\n{:>10} {:>12} {:>14} {:>14}",
        "resources", "eval (ms)", "peak RSS (MiB)", "per resource"
    );
    for n in [100, 1_000, 10_000] {
        let node = dir.path().join(format!("gen-{n}.rhai"));
        std::fs::write(&node, generated_node(n)).expect("write node");
        let mut times = Vec::new();
        let mut rss = 0;
        let mut count = 0;
        for _ in 0..RUNS.min(5) {
            let out = Command::new(&me)
                .args(["--child", node.to_str().expect("utf-8")])
                .output()
                .expect("child");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let line = String::from_utf8_lossy(&out.stdout);
            let f: Vec<u64> = line
                .split_whitespace()
                .map(|x| x.parse().expect("number"))
                .collect();
            times.push(Duration::from_micros(f[0]));
            rss = rss.max(f[1]);
            count = f[2];
        }
        let t = median(times);
        println!(
            "{count:>10} {:>12.1} {:>14.1} {:>11.1} µs",
            t.as_secs_f64() * 1e3,
            rss as f64 / 1024.0,
            t.as_secs_f64() * 1e6 / count as f64
        );
    }
}

//! Evaluation figures (`cargo bench -p archy --bench eval`):
//!
//! - `archy eval node.rhai`: wall time of the real command, release build;
//! - generated nodes of 100, 1,000 and 10,000 resources: evaluation time
//!   and the peak memory of a process that does only that evaluation.
//!
//! - the evaluator's budget: pushes onto a list (50k to 1M), a list nested
//!   in itself (10k, 30k), 100k `file()` resources, 100k problems rendered,
//!   each with `--eval-timeout 600` so growth is measured rather than the
//!   limit; the time a 2M-iteration loop takes to fail at the default
//!   limits; `archy eval --json` of 1,000 files of 64 KiB each. Each is one
//!   run of the release binary: wall time and its peak RSS.
//!
//! Each other figure is the median of several runs; the generated nodes are
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

/// Run in a child process: run `archy ARGS...` once, print its exit code,
/// wall time and peak resident memory (the only child this process has).
fn measure(args: &[String]) {
    let start = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_archy"))
        .args(args)
        .output()
        .expect("archy");
    let took = start.elapsed();
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .expect("getrusage");
    println!(
        "{} {} {}",
        out.status.code().unwrap_or(-1),
        took.as_micros(),
        usage.max_rss()
    );
}

/// The evaluator's budget: each case once, through the release binary.
fn budget(dir: &Path, me: &Path) {
    let cases: Vec<(String, String, &[&str])> = vec![
        ("push 50k".into(), push(50_000), &["--eval-timeout", "600"]),
        (
            "push 100k".into(),
            push(100_000),
            &["--eval-timeout", "600"],
        ),
        (
            "push 200k".into(),
            push(200_000),
            &["--eval-timeout", "600"],
        ),
        (
            "push 1M".into(),
            push(1_000_000),
            &["--eval-timeout", "600"],
        ),
        (
            "nest a = [a] 10k".into(),
            nest(10_000),
            &["--eval-timeout", "600"],
        ),
        (
            "nest a = [a] 30k".into(),
            nest(30_000),
            &["--eval-timeout", "600"],
        ),
        (
            "100k file() resources".into(),
            files(100_000),
            &["--eval-timeout", "600"],
        ),
        (
            "100k problems rendered".into(),
            problems(100_000),
            &["--eval-timeout", "600"],
        ),
        (
            "2M-iteration loop, default limits".into(),
            push(2_000_000),
            &[],
        ),
        (
            "eval --json, 1,000 texts of 64 KiB".into(),
            texts(1_000, 65_536),
            &["--json"],
        ),
    ];
    println!(
        "\n{:<38} {:>5} {:>10} {:>14}",
        "evaluator budget", "exit", "wall (s)", "peak RSS (MiB)"
    );
    for (i, (name, text, flags)) in cases.iter().enumerate() {
        let node = dir.join(format!("budget-{i}.rhai"));
        std::fs::write(&node, text).expect("write node");
        let mut args = vec!["--measure".to_string(), "eval".to_string()];
        args.extend(flags.iter().map(|f| f.to_string()));
        args.extend(["--state-dir", "/tmp"].map(String::from));
        args.push(node.to_str().expect("utf-8").to_string());
        let out = Command::new(me).args(&args).output().expect("measure");
        let line = String::from_utf8_lossy(&out.stdout);
        let f: Vec<i64> = line
            .split_whitespace()
            .map(|x| x.parse().expect("number"))
            .collect();
        println!(
            "{name:<38} {:>5} {:>10.2} {:>14.1}",
            f[0],
            f[1] as f64 / 1e6,
            f[2] as f64 / 1024.0
        );
    }
}

fn push(n: usize) -> String {
    format!("let a = [];\nfor i in 0..{n} {{\n    a.push(i);\n}}\n[]\n")
}

fn nest(n: usize) -> String {
    format!("let a = [];\nfor i in 0..{n} {{\n    a = [a];\n}}\n[]\n")
}

fn files(n: usize) -> String {
    format!(
        "let a = [];\nfor i in 0..{n} {{\n    a.push(file(`/etc/gen/f${{i}}`, #{{ text: `${{i}}` }}));\n}}\na\n"
    )
}

/// `n` files with a relative path: one problem each.
fn problems(n: usize) -> String {
    format!(
        "let a = [];\nfor i in 0..{n} {{\n    a.push(file(`gen/f${{i}}`, #{{ text: `${{i}}` }}));\n}}\na\n"
    )
}

fn texts(n: usize, bytes: usize) -> String {
    format!(
        "let big = \"\";\nbig.pad({bytes}, \"x\");\nlet a = [];\nfor i in 0..{n} {{\n    a.push(file(`/etc/big/${{i}}`, #{{ text: `${{i}}` + big }}));\n}}\na\n"
    )
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(pos) = args.iter().position(|a| a == "--child") {
        child(Path::new(&args[pos + 1]));
        return;
    }
    if let Some(pos) = args.iter().position(|a| a == "--measure") {
        measure(&args[pos + 1..]);
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
    budget(dir.path(), &me);
}

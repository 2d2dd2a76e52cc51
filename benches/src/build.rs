//! Build and store figures, printed as a table:
//!
//! - `archy build` of the default node (`node.rhai`), cold (empty store)
//!   and warm (nothing new to write);
//! - `archy build` of a generated 10,000-resource node, cold and warm, and
//!   the evaluation and store steps on their own;
//! - writing a large file into the store (`Store::insert_file`) against
//!   `cp` of the same bytes.
//!
//! Run with `cargo bench -p archy-benches`. Environment:
//!
//! - `ARCHY_BENCH_DIR`: where stores and files are written (default: the
//!   system temp dir); put it on the disk whose figures you want;
//! - `ARCHY_BENCH_LARGE_MIB`: the large file's size (default 1024, the
//!   1 GiB artifact of issue 16's target: at least 0.8x the speed of
//!   `cp` + `sync`);
//! - `ARCHY_BENCH_RUNS`: runs per figure of the small node (default 10;
//!   the 10k node and the large file get a third of that, at least 3).
//!
//! Each figure is the median of its runs. "archy build" is measured in
//! process (the same function the command runs: lock, facts, evaluation,
//! build), so process start-up (a few ms) is not in it.

use std::fmt;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use archy_build::BuildReport;
use archy_cli::commands::human_bytes;
use archy_node::{Node, Source};
use archy_store::{Inserted, ObjectName, StateDir, Store};

/// Facts fixed on the "command line", so every run evaluates the same node.
const FACTS: [&str; 4] = [
    "hostname=bench",
    "ip=192.0.2.10",
    "mdns=bench.local",
    "disk_bytes=2T",
];

fn main() {
    let config = Config::from_env();
    let base = tempfile::Builder::new()
        .prefix("archy-bench-")
        .tempdir_in(&config.dir)
        .expect("a temp dir for the benchmark");
    println!(
        "archy build and store benchmarks, in {} (median of runs)\n",
        config.dir.display()
    );
    let mut table = Table::default();

    let default_node = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../node.rhai"));
    bench_node(
        &mut table,
        "default node",
        default_node,
        base.path(),
        config.runs,
    );

    let large_node = write_large_node(base.path());
    let runs = (config.runs / 3).max(3);
    bench_node(
        &mut table,
        "10k-resource node",
        &large_node,
        base.path(),
        runs,
    );
    bench_steps(&mut table, &large_node, base.path(), runs);

    bench_large_file(&mut table, base.path(), config.large_mib, runs);
    print!("{table}");
}

/// What the environment asks for.
struct Config {
    dir: PathBuf,
    large_mib: usize,
    runs: usize,
}

impl Config {
    fn from_env() -> Self {
        let number = |name: &str, default: usize| {
            std::env::var(name)
                .ok()
                .and_then(|text| text.parse().ok())
                .unwrap_or(default)
        };
        Config {
            dir: std::env::var_os("ARCHY_BENCH_DIR").map_or_else(std::env::temp_dir, PathBuf::from),
            large_mib: number("ARCHY_BENCH_LARGE_MIB", 1024),
            runs: number("ARCHY_BENCH_RUNS", 10).max(1),
        }
    }
}

/// `archy build` of `node`, cold then warm.
fn bench_node(table: &mut Table, label: &str, node: &Path, base: &Path, runs: usize) {
    let overrides = fact_overrides();
    let mut cold = Vec::new();
    let mut warm = Vec::new();
    let mut cold_report = None;
    let mut warm_report = None;
    for run in 0..runs {
        let state = base.join(format!("{}-{run}", slug(label)));
        let source = Source::new(node, overrides.clone());
        let target = Node::new(&state, None);
        let build = || target.open("archy build", false)?.build(&source);
        let (took, report) = time(|| build().expect("archy build"));
        cold.push(took);
        cold_report = Some(report);
        let (took, report) = time(|| build().expect("archy build (warm)"));
        warm.push(took);
        warm_report = Some(report);
        settle();
    }
    let (Some(cold_report), Some(warm_report)) = (cold_report, warm_report) else {
        return;
    };
    assert!(warm_report.wrote_nothing(), "a warm build wrote something");
    let cold = median(cold);
    let warm = median(warm);
    table.row(
        format!("{label}: archy build, cold"),
        cold,
        Some(&cold_report),
        "",
    );
    table.row(
        format!("{label}: archy build, warm"),
        warm,
        Some(&warm_report),
        &format!("{:.1}% of cold", percent(warm, cold)),
    );
}

/// The two steps of a build on their own: evaluating, and writing into the
/// store (cold into an empty store, warm into one that has everything).
fn bench_steps(table: &mut Table, node: &Path, base: &Path, runs: usize) {
    let overrides = fact_overrides();
    let state = base.join("steps");
    let mut evaluations = Vec::new();
    let mut graph = None;
    for _ in 0..runs {
        let (took, evaluation) = time(|| {
            Node::new(&state, None)
                .evaluate(&Source::new(node, overrides.clone()))
                .expect("evaluation")
        });
        evaluations.push(took);
        graph = Some(evaluation.graph);
    }
    let Some(graph) = graph else { return };
    table.row(
        format!(
            "10k-resource node: evaluation only ({} resources)",
            graph.nodes.len()
        ),
        median(evaluations),
        None,
        "",
    );

    let mut cold = Vec::new();
    let mut warm = Vec::new();
    for run in 0..runs {
        let store = Store::open(&StateDir::new(state.join(run.to_string()))).expect("a store");
        let (took, _) = time(|| archy_build::build(&store, &graph, "bench").expect("build"));
        cold.push(took);
        let (took, _) = time(|| archy_build::build(&store, &graph, "bench").expect("build"));
        warm.push(took);
        settle();
    }
    let (cold, warm) = (median(cold), median(warm));
    table.row("10k-resource node: store step only, cold", cold, None, "");
    table.row(
        "10k-resource node: store step only, warm",
        warm,
        None,
        &format!("{:.1}% of cold", percent(warm, cold)),
    );
}

/// A large file into the store, against `cp` of the same bytes (and `cp`
/// followed by `sync` of the copy, since an insert is durable when it
/// returns and a `cp` is not).
fn bench_large_file(table: &mut Table, base: &Path, mib: usize, runs: usize) {
    let source = base.join("large-source");
    write_pseudo_random(&source, mib);
    // An artifact at rest, as a build finds it: a file changed in the last
    // few seconds is hashed a second time after its copy, in case a write
    // did not move its change time (see `Store::insert_file`).
    std::thread::sleep(Duration::from_secs(4));
    let name = ObjectName::try_from("large.bin").expect("a valid name");
    let declared = archy_store::Expected::Blake3(archy_store::Digest::of(
        &fs::read(&source).expect("the large file"),
    ));
    let (mut insert, mut cp, mut cp_sync) = (Vec::new(), Vec::new(), Vec::new());
    let mut artifact = Vec::new();
    for run in 0..runs {
        // As a build stores an artifact: its declared hash checked while
        // the bytes are copied, in one pass.
        let store =
            Store::open(&StateDir::new(base.join(format!("artifact-{run}")))).expect("a store");
        let (took, (_, inserted)) = time(|| {
            store
                .insert_checked(&name, &source, &declared, true)
                .expect("insert_checked")
        });
        assert!(matches!(inserted, Inserted::Written(_)));
        artifact.push(took);
        remove_and_settle(store.state_dir().path());

        let store =
            Store::open(&StateDir::new(base.join(format!("large-{run}")))).expect("a store");
        let (took, (_, inserted)) =
            time(|| store.insert_file(&name, &source).expect("insert_file"));
        assert!(matches!(inserted, Inserted::Written(_)));
        insert.push(took);
        remove_and_settle(store.state_dir().path());

        let copy = base.join(format!("large-copy-{run}"));
        cp.push(time(|| run_command("cp", &[&source, &copy])).0);
        fs::remove_file(&copy).expect("delete the copy");
        cp_sync.push(
            time(|| {
                run_command("cp", &[&source, &copy]);
                run_command("sync", &[&copy]);
            })
            .0,
        );
        fs::remove_file(&copy).expect("delete the copy");
    }
    let (insert, cp, cp_sync) = (median(insert), median(cp), median(cp_sync));
    let artifact = median(artifact);
    let label = format!("{mib} MiB file");
    table.row(
        format!("{label}: an artifact (Store::insert_checked)"),
        artifact,
        None,
        &format!(
            "{} MiB/s; at {:.2}x the speed of cp + sync",
            throughput(mib, artifact),
            ratio(cp_sync, artifact)
        ),
    );
    table.row(
        format!("{label}: Store::insert_file"),
        insert,
        None,
        &format!("{} MiB/s", throughput(mib, insert)),
    );
    table.row(
        format!("{label}: cp"),
        cp,
        None,
        &format!("insert_file takes {:.2}x", ratio(insert, cp)),
    );
    table.row(
        format!("{label}: cp + sync"),
        cp_sync,
        None,
        &format!(
            "{} MiB/s; insert_file at {:.2}x its speed",
            throughput(mib, cp_sync),
            ratio(cp_sync, insert)
        ),
    );
}

/// A node of 3,334 × (config file, secret, service reading both): 10,002
/// resources, each service referring to its file and its secret.
fn write_large_node(base: &Path) -> PathBuf {
    let dir = base.join("large-node");
    fs::create_dir_all(&dir).expect("the node's folder");
    let stdlib = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../stdlib"));
    std::os::unix::fs::symlink(
        stdlib.canonicalize().expect("the stdlib"),
        dir.join("stdlib"),
    )
    .expect("a link to the stdlib");
    let node = dir.join("node.rhai");
    fs::write(
        &node,
        r#"import "stdlib/systemd" as systemd;
let out = [];
for i in 0..3334 {
    let conf = "/etc/app" + i + "/app.conf";
    out.push(file(conf, #{ text: "instance=" + i + "\nport=" + (10000 + i) + "\n" }));
    out.push(secret("token" + i, #{ length: 32 }));
    out.push(systemd::service("app" + i, #{
        exec: "/usr/bin/app --config " + conf,
        secrets: ["token" + i],
    }));
}
out
"#,
    )
    .expect("the node file");
    node
}

/// `mib` MiB of bytes that do not compress, so no layer can cheat.
fn write_pseudo_random(path: &Path, mib: usize) {
    let mut file = File::create(path).expect("the large file");
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut chunk = vec![0u8; 1 << 20];
    for _ in 0..mib {
        for word in chunk.chunks_exact_mut(8) {
            // xorshift64: fast, and enough to defeat compression.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        file.write_all(&chunk).expect("write the large file");
    }
    file.sync_all().expect("flush the large file");
}

/// Flushes a run's writes, so that writing them back does not slow the
/// next run. The run's state dir is kept until the benchmark ends: ext4
/// without a journal skips every inode deleted in the last 30 seconds when
/// it allocates one, so deleting 13,337 objects just before the next run
/// creates as many would make that run's creates quadratic, a cost a real
/// build does not pay.
fn settle() {
    run_command("sync", &[]);
}

/// Deletes a benchmark's state dir and flushes the deletion, so that
/// writing back deleted entries does not slow the next run.
fn remove_and_settle(dir: &Path) {
    fs::remove_dir_all(dir).expect("delete the benchmark's state dir");
    run_command("sync", &[]);
}

fn run_command(program: &str, args: &[&Path]) {
    let status = Command::new(program)
        .args(args)
        .status()
        .unwrap_or_else(|err| panic!("cannot run {program}: {err}"));
    assert!(status.success(), "{program} failed");
}

fn fact_overrides() -> Vec<String> {
    FACTS.iter().map(|fact| (*fact).to_owned()).collect()
}

fn slug(label: &str) -> String {
    label.replace(|c: char| !c.is_ascii_alphanumeric(), "-")
}

fn time<T>(f: impl FnOnce() -> T) -> (Duration, T) {
    let start = Instant::now();
    let value = f();
    (start.elapsed(), value)
}

fn median(mut runs: Vec<Duration>) -> Duration {
    runs.sort();
    runs.get(runs.len() / 2).copied().unwrap_or_default()
}

fn percent(part: Duration, whole: Duration) -> f64 {
    100.0 * ratio(part, whole)
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(f64::MIN_POSITIVE)
}

fn throughput(mib: usize, took: Duration) -> String {
    #[allow(clippy::cast_precision_loss)]
    let rate = mib as f64 / took.as_secs_f64().max(f64::MIN_POSITIVE);
    format!("{rate:.0}")
}

/// The figures, aligned.
#[derive(Default)]
struct Table {
    rows: Vec<[String; 5]>,
}

impl Table {
    fn row(
        &mut self,
        label: impl Into<String>,
        took: Duration,
        report: Option<&BuildReport>,
        note: &str,
    ) {
        let (written, bytes) = report.map_or_else(
            || (String::new(), String::new()),
            |report| {
                (
                    format!("{} of {}", report.objects_written, report.objects),
                    human_bytes(report.bytes_written),
                )
            },
        );
        self.rows.push([
            label.into(),
            format_duration(took),
            written,
            bytes,
            note.to_owned(),
        ]);
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header = ["figure", "time", "objects written", "bytes written", ""];
        let mut widths = header.map(str::len);
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.len());
            }
        }
        let line = |f: &mut fmt::Formatter<'_>, cells: [&str; 5]| {
            let [label, time, written, bytes, note] = cells;
            let text = format!(
                "{label:<w0$}  {time:>w1$}  {written:>w2$}  {bytes:>w3$}  {note}",
                w0 = widths[0],
                w1 = widths[1],
                w2 = widths[2],
                w3 = widths[3],
            );
            writeln!(f, "{}", text.trim_end())
        };
        line(f, header)?;
        for row in &self.rows {
            line(f, [&row[0], &row[1], &row[2], &row[3], &row[4]])?;
        }
        Ok(())
    }
}

fn format_duration(took: Duration) -> String {
    let ms = took.as_secs_f64() * 1000.0;
    if ms < 1000.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{:.2} s", ms / 1000.0)
    }
}

//! Data snapshots (`data(...)` contracts, issue 17), rerunnable:
//!
//! - a snapshot of a 1 GiB data directory (16 files of 64 MiB) as archy
//!   takes it before a migration (`archy_switch::data::copy_dir`): on the
//!   file system of `ARCHY_BENCH_DIR` (here ext4: a plain copy), and, as
//!   root, on an xfs and a btrfs loop device (reflinks). mkfs.xfs and
//!   mkfs.btrfs come from the xfsprogs and btrfs-progs packages;
//!   without them (or without root) those rows are skipped, saying why;
//! - what data contracts add to every switch that migrates nothing: the
//!   versions read from the state dir and the planner's data steps, for
//!   bitcoind's, lnd's and electrs's contracts.
//!
//! `cargo bench -p archy-benches --bench snapshot`
//! (`ARCHY_BENCH_SNAPSHOT_MIB=256` for a quick run).

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use archy_eval::{Inputs, Limits, MemSources, evaluate};
use archy_plan::Observed;
use archy_store::StateDir;

fn main() {
    let mib: u64 = std::env::var("ARCHY_BENCH_SNAPSHOT_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let dir = std::env::var_os("ARCHY_BENCH_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
    println!(
        "data snapshots of {mib} MiB (median of 3), and a switch's data work without a migration\n"
    );
    let base = tempfile::Builder::new()
        .prefix("archy-bench-snapshot-")
        .tempdir_in(&dir)
        .expect("a temp dir");
    let fs_type = file_system(base.path());
    report(&format!("{fs_type} at {}", dir.display()), base.path(), mib);
    for kind in ["xfs", "btrfs"] {
        match LoopFs::make(kind, mib, base.path()) {
            Ok(fs) => {
                report(&format!("{kind} loop device"), &fs.mount, mib);
                drop(fs);
            }
            Err(why) => println!("{kind:<28} skipped: {why}"),
        }
    }
    no_migration();
}

/// The file system type of `path` (`stat -f`).
fn file_system(path: &Path) -> String {
    Command::new("stat")
        .args(["-f", "-c", "%T"])
        .arg(path)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|_| "?".into())
}

/// Makes `mib` MiB of data under `root/data` (incompressible, flushed).
fn make_data(root: &Path, mib: u64) -> PathBuf {
    let data = root.join("data");
    fs::create_dir_all(&data).expect("data dir");
    let files = 16;
    let per_file = (mib / files).max(1);
    let mut chunk = vec![0u8; 1 << 20];
    for i in 0..files {
        let mut f = fs::File::create(data.join(format!("db-{i:02}"))).expect("create");
        for j in 0..per_file {
            // Different bytes per MiB: nothing a file system could dedupe.
            let seed = blake3::hash(&[i as u8, (j & 0xff) as u8, (j >> 8) as u8]);
            for (k, b) in chunk.iter_mut().enumerate() {
                *b = seed.as_bytes()[k % 32] ^ (k as u8);
            }
            f.write_all(&chunk).expect("write");
        }
        f.sync_all().expect("sync");
    }
    data
}

fn report(label: &str, root: &Path, mib: u64) {
    let data = make_data(root, mib);
    let mut times = Vec::new();
    let mut reflink = false;
    for run in 0..3 {
        let to = root.join(format!("snap-{run}"));
        let started = Instant::now();
        let copied = archy_switch::data::copy_dir(&data, &to, u64::MAX).expect("snapshot");
        times.push(started.elapsed());
        reflink = copied.reflink;
        fs::remove_dir_all(&to).expect("remove the snapshot");
    }
    times.sort();
    let how = if reflink { "reflink" } else { "plain copy" };
    println!("{label:<28} {:>9.1} ms  ({how})", ms(times[1]));
    fs::remove_dir_all(&data).expect("remove the data");
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// A file system of `kind` on a loop device, mounted under a temp dir:
/// gone (unmounted, detached, deleted) when dropped.
struct LoopFs {
    mount: PathBuf,
    image: PathBuf,
}

impl LoopFs {
    fn make(kind: &str, mib: u64, base: &Path) -> Result<LoopFs, String> {
        if !is_root() {
            return Err("needs root (a loop device)".into());
        }
        let mkfs = format!("mkfs.{kind}");
        let image = base.join(format!("{kind}.img"));
        let mount = base.join(format!("{kind}-mnt"));
        // Room for the data, the snapshot's metadata, and the file
        // system's own (btrfs wants at least 114 MiB).
        let size = (mib + mib / 4 + 400) << 20;
        fs::File::create(&image)
            .and_then(|f| f.set_len(size))
            .map_err(|e| e.to_string())?;
        let made = Command::new(&mkfs)
            .arg("-q")
            .arg(&image)
            .output()
            .map_err(|e| format!("{mkfs}: {e} (install xfsprogs / btrfs-progs)"))?;
        if !made.status.success() {
            return Err(format!(
                "{mkfs}: {}",
                String::from_utf8_lossy(&made.stderr).trim()
            ));
        }
        fs::create_dir_all(&mount).map_err(|e| e.to_string())?;
        let mounted = Command::new("mount")
            .args(["-o", "loop"])
            .arg(&image)
            .arg(&mount)
            .output()
            .map_err(|e| e.to_string())?;
        if !mounted.status.success() {
            return Err(format!(
                "mount: {}",
                String::from_utf8_lossy(&mounted.stderr).trim()
            ));
        }
        Ok(LoopFs { mount, image })
    }
}

impl Drop for LoopFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.mount).status();
        let _ = fs::remove_file(&self.image);
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// What a switch without a migration pays for data contracts: reading the
/// recorded versions and planning the data steps (none).
fn no_migration() {
    let repo = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    let mut sources = MemSources::default();
    for dir in ["stdlib", "apps"] {
        for entry in fs::read_dir(repo.join(dir)).expect("read the repo") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "rhai") {
                let name = format!(
                    "{dir}/{}",
                    path.file_name().expect("name").to_string_lossy()
                );
                sources = sources.with(&name, &fs::read_to_string(&path).expect("read"));
            }
        }
    }
    // The regtest node's three apps with data (the UIs have none and are
    // built from folders this in-memory evaluation does not carry).
    let node = r#"
        import "apps/bitcoind" as bitcoind;
        import "apps/lnd" as lnd;
        import "apps/electrs" as electrs;
        import "stdlib/app" as app;
        let b = bitcoind::app(#{ network: "regtest" });
        [app::resources(b), app::resources(lnd::app(b, #{ alias: "bench", rest_tls: false })),
         app::resources(electrs::app(b, #{}))]
    "#;
    let sources = sources.with("node.rhai", node);
    let graph = match evaluate(sources, "node.rhai", Inputs::default(), &Limits::default()) {
        Ok(ev) => ev.graph,
        Err(f) => panic!("{:#?}", f.problems),
    };
    let state_dir = tempfile::tempdir().expect("a state dir");
    let state = StateDir::new(state_dir.path());
    // Every contract recorded at the version the graph reads.
    let mut observed = Observed::default();
    for c in archy_graph::data::contracts(&graph) {
        let step = archy_plan::data::DataStep {
            name: c.name.to_string(),
            app: None,
            path: c.path.to_string(),
            kind: c.kind,
            from: None,
            to: c.version,
            op: archy_plan::data::DataOp::Record,
        };
        archy_switch::data::record(&state, &step, 1).expect("record");
    }
    let contracts = archy_graph::data::contracts(&graph).count();
    let runs = 1000;
    let started = Instant::now();
    for _ in 0..runs {
        observed.data.clear();
        archy_switch::data::observe(&state, Path::new("/"), &graph, &mut observed);
        let steps = archy_plan::data::steps(Some(&graph), &graph, &observed);
        assert!(steps.is_empty(), "no migration: no steps");
    }
    let each = started.elapsed() / runs;
    println!(
        "\nno migration: {:.1} µs per switch for {contracts} contracts (versions read + data steps planned)",
        each.as_secs_f64() * 1e6
    );
}

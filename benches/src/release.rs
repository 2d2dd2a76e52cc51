//! Releases that carry software: what a node downloads and how long it
//! takes when a release changes one binary among many.
//!
//! A node description declares `ARCHY_BENCH_RELEASE_ARTIFACTS` artifacts
//! (default 40) of random bytes, `ARCHY_BENCH_RELEASE_MIB` MiB in all
//! (default 200, so 5 MiB each). Release 1 is built, served by a local
//! HTTP mirror and taken by a node with an empty store; release 2 changes
//! one artifact. Printed, once each (these are large; run it again to
//! compare):
//!
//! - `archy release build` of release 1 and of release 2;
//! - release 1 and release 2 taken by the node: the bytes and requests the
//!   mirror served for their software, and the wall time of what
//!   `archy ota apply` does before its switch (download and verify the
//!   bundle, fetch the objects the store lacks, unpack, build the
//!   generation). The switch itself (a rename per artifact path) needs a
//!   real node and is not in these figures.
//!
//! Run with `cargo bench -p archy-benches --bench release`; for a quick
//! run, `ARCHY_BENCH_RELEASE_MIB=20`. `ARCHY_BENCH_DIR` says where the
//! files go (default: the system temp dir).

// The OTA tests' local mirror: std only, serves files from memory.
#[allow(dead_code)]
#[path = "../../engine/ota/tests/support/server.rs"]
mod server;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use archy_cli::commands::human_bytes;
use archy_node::ota::BundleSource;
use archy_node::release::{self, ReleaseRequest};
use archy_node::{Node, Source};
use semver::Version;
use server::{Hit, Mode, Server};

/// Facts fixed on the "command line", so every run evaluates the same node.
const FACTS: [&str; 4] = [
    "hostname=bench",
    "ip=192.0.2.10",
    "mdns=bench.local",
    "disk_bytes=2T",
];

fn main() {
    let number = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|text| text.parse().ok())
            .unwrap_or(default)
    };
    let total_mib = number("ARCHY_BENCH_RELEASE_MIB", 200).max(1);
    let artifacts = number("ARCHY_BENCH_RELEASE_ARTIFACTS", 40).max(1);
    let dir = std::env::var_os("ARCHY_BENCH_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
    let base = tempfile::Builder::new()
        .prefix("archy-bench-release-")
        .tempdir_in(&dir)
        .expect("a temp dir for the benchmark");
    let size = total_mib * 1024 * 1024 / artifacts;
    println!(
        "releases carrying software: {artifacts} artifacts of {}, in {}\n",
        human_bytes(size as u64),
        dir.display()
    );
    let w = Work::new(base.path());

    let (took, out1) = time(|| w.release("1.0.0", artifacts, size, None));
    row("archy release build, release 1", took, &out1);
    let (took, out2) = time(|| w.release("2.0.0", artifacts, size, Some(0)));
    row(
        "archy release build, release 2 (one artifact changed)",
        took,
        &out2,
    );

    let mirror = w.mirror();
    let node = Node::new(&w.path("node-state"), None);
    for (label, version) in [
        ("release 1, empty store", "1.0.0"),
        ("release 2, one artifact changed", "2.0.0"),
    ] {
        let before = mirror.hits().len();
        let (took, ()) = time(|| w.take(&node, &mirror, version));
        let (requests, bytes) = object_hits(&mirror.hits()[before..], &w.path("pub"));
        row(
            &format!("node takes {label} (fetch + unpack + build)"),
            took,
            &format!("{requests} objects, {} downloaded", human_bytes(bytes)),
        );
    }
}

fn time<T>(work: impl FnOnce() -> T) -> (Duration, T) {
    let start = Instant::now();
    let out = work();
    (start.elapsed(), out)
}

fn row(label: &str, took: Duration, detail: &str) {
    println!("{label:<68} {:>8.2} s   {detail}", took.as_secs_f64());
}

/// The publisher's folders (`src/`, `pub/`, a key) and the node's keys.
struct Work {
    base: PathBuf,
}

impl Work {
    fn new(base: &Path) -> Self {
        let w = Work {
            base: base.to_path_buf(),
        };
        for dir in ["src/bin", "pub", "keys"] {
            fs::create_dir_all(w.path(dir)).expect("mkdir");
        }
        release::keygen(&w.path("release")).expect("keygen");
        fs::copy(w.path("release.pub"), w.path("keys/release.pub")).expect("trust");
        let stdlib = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../stdlib"));
        copy_tree(stdlib, &w.path("src/stdlib"));
        w
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.base.join(rel)
    }

    /// Writes `count` artifacts of `size` random bytes (artifact `changed`
    /// with other bytes) and their node.rhai, and builds release `version`.
    fn release(&self, version: &str, count: usize, size: usize, changed: Option<usize>) -> String {
        let mut node = String::from("[\n");
        let mut bytes = vec![0u8; size];
        for i in 0..count {
            let seed = format!(
                "artifact {i} {}",
                if changed == Some(i) { version } else { "" }
            );
            blake3::Hasher::new()
                .update(seed.as_bytes())
                .finalize_xof()
                .fill(&mut bytes);
            fs::write(self.path(&format!("src/bin/tool{i}")), &bytes).expect("artifact");
            node.push_str(&format!(
                "    artifact(\"/usr/local/bin/tool{i}\", #{{ source: \"bin/tool{i}\", blake3: \"{}\" }}),\n",
                blake3::hash(&bytes).to_hex()
            ));
        }
        node.push_str("]\n");
        fs::write(self.path("src/node.rhai"), node).expect("node.rhai");
        let facts: Vec<String> = FACTS.iter().map(|f| f.to_string()).collect();
        let out = self.path(&format!("pub/r{version}.tar.gz"));
        let built = release::build(&ReleaseRequest {
            src: &self.path("src"),
            key: &self.path("release.key"),
            version: &Version::parse(version).expect("version"),
            channel: "stable",
            min_archy: None,
            out: &out,
            facts: &facts,
        })
        .expect("release build");
        format!(
            "{} objects, {} new",
            built.report.objects, built.report.objects_written
        )
    }

    /// A mirror serving `pub/` (bundles, signatures, objects) from memory.
    fn mirror(&self) -> Server {
        let mut files = Vec::new();
        collect(&self.path("pub"), "", &mut files);
        let refs: Vec<(&str, &[u8])> = files
            .iter()
            .map(|(n, d)| (n.as_str(), d.as_slice()))
            .collect();
        Server::start(&refs, Mode::Ok)
    }

    /// What `archy ota apply` does before its switch: verify the bundle,
    /// fetch the software the store lacks, unpack, build.
    fn take(&self, node: &Node, mirror: &Server, version: &str) {
        let session = node.open("bench", false).expect("lock");
        let source = BundleSource {
            bundle: mirror.url(&format!("r{version}.tar.gz")),
            mirrors: Vec::new(),
            keys: self.path("keys"),
            channel: None,
            // No channel file: the bench takes any channel.
            channel_file: self.path("no-ota-channel"),
        };
        session
            .ota_fetch(&source)
            .expect("fetch the release's software");
        let unpacked = self.path(&format!("unpacked-{version}"));
        archy_ota::unpack::unpack(
            &self.path(&format!("pub/r{version}.tar.gz")),
            &unpacked,
            &archy_ota::unpack::Limits::default(),
        )
        .expect("unpack");
        let facts: Vec<String> = FACTS.iter().map(|f| f.to_string()).collect();
        session
            .build(&Source::new(unpacked.join("node.rhai"), facts))
            .expect("build the release's generation");
    }
}

/// The object requests among `hits`, and the bytes they were served.
fn object_hits(hits: &[Hit], pub_dir: &Path) -> (usize, u64) {
    let objects: Vec<&Hit> = hits
        .iter()
        .filter(|h| h.path.starts_with("/objects/"))
        .collect();
    let bytes = objects
        .iter()
        .map(|h| {
            fs::metadata(pub_dir.join(&h.path[1..]))
                .expect("served")
                .len()
        })
        .sum();
    (objects.len(), bytes)
}

fn collect(dir: &Path, prefix: &str, out: &mut Vec<(String, Vec<u8>)>) {
    for entry in fs::read_dir(dir).expect("list") {
        let entry = entry.expect("entry");
        let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
        if entry.file_type().expect("type").is_dir() {
            collect(&entry.path(), &format!("{name}/"), out);
        } else {
            out.push((name, fs::read(entry.path()).expect("read")));
        }
    }
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("mkdir");
    for entry in fs::read_dir(from).expect("list") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).expect("copy");
        }
    }
}

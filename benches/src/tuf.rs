//! The TUF repository a fleet follows (`archy ota apply --repo`): what a
//! node pays to learn whether there is a new release.
//!
//! A repository of `ARCHY_BENCH_TUF_RELEASES` releases (default 100, small
//! bundles: the metadata is what is measured) is published with
//! `archy release add` (through its library), then served by a local HTTP
//! mirror and from a `file://` folder. Printed, the median of
//! `ARCHY_BENCH_TUF_RUNS` runs (default 7):
//!
//! - the time to publish the last release (sign and write the metadata);
//! - a node that has seen nothing: fetch and verify root, timestamp,
//!   snapshot and targets (time, bytes);
//! - a node that is up to date: the same call again (time, bytes; the
//!   timestamp alone should cross the wire: snapshot and targets are the
//!   node's cached copies, checked against the signed hashes again).
//!
//! Run with `cargo bench -p archy-benches --bench tuf`.

// The OTA tests' local mirror: std only, serves files from memory.
#[allow(dead_code)]
#[path = "../../engine/ota/tests/support/server.rs"]
mod server;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use archy_ota::keys::{SigningKey, generate};
use archy_ota::pack::{self, PackRequest};
use archy_ota::tuf::client::{self, Remote};
use archy_ota::tuf::publish::{Lifetimes, Publisher};
use semver::Version;
use server::{Mode, Server};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn files_under(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
    for entry in fs::read_dir(dir).expect("read dir") {
        let entry = entry.expect("entry");
        let path = entry.path();
        if path.is_dir() {
            files_under(root, &path, out);
        } else {
            let name = path
                .strip_prefix(root)
                .expect("under root")
                .to_string_lossy()
                .into_owned();
            out.push((name, fs::read(&path).expect("read")));
        }
    }
}

fn main() {
    let number = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|t| t.parse().ok())
            .unwrap_or(default)
    };
    let releases = number("ARCHY_BENCH_TUF_RELEASES", 100).max(1);
    let runs = number("ARCHY_BENCH_TUF_RUNS", 7).max(1);
    let work = tempfile::tempdir().expect("tempdir");
    let path = |rel: &str| work.path().join(rel);

    // A small node source and a bundle key.
    let src = path("src");
    fs::create_dir_all(&src).expect("src");
    fs::write(src.join("node.rhai"), "[]\n").expect("node.rhai");
    let generated = generate("bench").expect("key");
    fs::write(path("bundle.key"), &generated.secret).expect("key");
    let key = SigningKey::load(&path("bundle.key")).expect("load key");
    fs::create_dir_all(path("out")).expect("out");

    let publisher = Publisher {
        repo: path("repo"),
        keys: path("keys"),
        lifetimes: Lifetimes::default(),
        now: archy_ota::tuf::Timestamp::now(),
    };
    fs::create_dir_all(&publisher.repo).expect("repo");
    publisher.init().expect("init");
    let mut last_add = Duration::ZERO;
    for i in 0..releases {
        let version = Version::new(1, 0, i as u64);
        let out = path(&format!("out/archy-{version}.tar.gz"));
        pack::build(&PackRequest {
            src: &src,
            key: &key,
            version,
            channel: "stable".to_string(),
            min_archy: Version::new(0, 1, 0),
            out: &out,
            objects: &[],
        })
        .expect("pack");
        let started = Instant::now();
        publisher.add(&out, &[]).expect("add");
        last_add = started.elapsed();
    }
    let metadata_bytes = |name: &str| {
        fs::read_dir(publisher.repo.join("metadata"))
            .expect("metadata")
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(name))
            .map(|e| e.metadata().expect("stat").len())
            .max()
            .unwrap_or(0)
    };
    let timestamp = metadata_bytes("timestamp.json");
    println!(
        "repository: {releases} releases; targets.json {} bytes, snapshot.json {} bytes, timestamp.json {timestamp} bytes",
        metadata_bytes(".targets.json"),
        metadata_bytes(".snapshot.json"),
    );
    println!("publish the {releases}th release (sign, write): {last_add:?}");

    let mut files = Vec::new();
    files_under(&publisher.repo, &publisher.repo, &mut files);
    let served: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_slice()))
        .collect();
    let server = Server::start(&served, Mode::Ok);
    let mirrors = [
        ("http", server.url("").trim_end_matches('/').to_string()),
        ("file", format!("file://{}", publisher.repo.display())),
    ];
    let root: PathBuf = publisher.repo.join("metadata/1.root.json");
    for (kind, url) in mirrors {
        let remote = |datastore: PathBuf| Remote {
            mirrors: vec![url.clone()],
            trusted_root: root.clone(),
            datastore,
        };
        let (mut cold, mut cold_bytes) = (Vec::new(), 0);
        for run in 0..runs {
            let fresh = remote(path(&format!("{kind}-cold-{run}")));
            let started = Instant::now();
            let listing = client::load(&fresh).expect("load");
            cold.push(started.elapsed());
            assert_eq!(listing.releases.len(), releases);
            cold_bytes = listing.bytes_fetched();
        }
        let node = remote(path(&format!("{kind}-node")));
        client::load(&node).expect("first load");
        let (mut warm, mut warm_bytes) = (Vec::new(), 0);
        for _ in 0..runs {
            let started = Instant::now();
            let listing = client::load(&node).expect("load");
            warm.push(started.elapsed());
            warm_bytes = listing.bytes_fetched();
        }
        println!(
            "{kind}: a node that has seen nothing: fetch and verify {:?} (median of {runs}), {cold_bytes} bytes",
            median(cold)
        );
        println!(
            "{kind}: a node that is up to date: {:?} (median of {runs}), {warm_bytes} bytes ({})",
            median(warm),
            if warm_bytes == timestamp {
                "the timestamp alone"
            } else {
                "more than the timestamp"
            }
        );
    }
}

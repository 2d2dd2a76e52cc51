//! Releases that carry software, without a node: `archy release build`
//! publishes the node's artifacts as objects beside the bundle, and
//! `archy ota check|fetch|apply` against a local HTTP mirror fetch only the
//! objects the store lacks. A second release that changes one of three
//! binaries downloads that one binary (counted at the server). A missing or
//! wrong object stops `apply` before anything is built or switched.

// Test helpers: a failure should panic, and the panic says where.
#![allow(clippy::unwrap_used)]

mod common;
// The OTA crate's test mirror, shared rather than written twice.
#[allow(dead_code)]
#[path = "../../ota/tests/support/server.rs"]
mod server;

use std::fs;
use std::path::{Path, PathBuf};

use archy_ota::state::OtaState;
use common::{Run, Workspace};
use server::{Hit, Mode, Server, payload};

/// A publisher's workspace: a release key trusted in `keys/`, a node
/// source folder `src/` with three programs under `bin/`, and `pub/`, the
/// folder the mirror serves.
struct Publisher {
    ws: Workspace,
}

impl Publisher {
    fn new() -> Self {
        let p = Publisher {
            ws: Workspace::new(),
        };
        p.run(&["release", "keygen", "--out", "k1"]).ok();
        fs::create_dir_all(p.path("keys")).unwrap();
        fs::copy(p.path("k1.pub"), p.path("keys/k1.pub")).unwrap();
        fs::create_dir_all(p.path("src/bin")).unwrap();
        fs::create_dir_all(p.path("pub")).unwrap();
        let stdlib = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../stdlib"));
        copy_tree(stdlib, &p.path("src/stdlib"));
        p
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.ws.path().join(rel)
    }

    fn run(&self, args: &[&str]) -> Run {
        self.ws.archy(args)
    }

    /// Writes the programs (name, bytes) and a node.rhai declaring each
    /// as an artifact by its blake3, then builds release `version` into
    /// `pub/`.
    fn release(&self, version: &str, programs: &[(&str, &[u8])]) -> String {
        let mut node = String::from("[\n");
        for (name, bytes) in programs {
            fs::write(self.path(&format!("src/bin/{name}")), bytes).unwrap();
            node.push_str(&format!(
                "    artifact(\"/usr/local/bin/{name}\", #{{ source: \"bin/{name}\", blake3: \"{}\" }}),\n",
                blake3::hash(bytes).to_hex()
            ));
        }
        node.push_str("]\n");
        fs::write(self.path("src/node.rhai"), node).unwrap();
        let out = format!("pub/r{version}.tar.gz");
        self.run(&[
            "release",
            "build",
            "src",
            "--key",
            "k1.key",
            "--version",
            version,
            "-o",
            &out,
        ])
        .ok()
    }

    /// A mirror serving everything in `pub/` as it is now.
    fn mirror(&self) -> Server {
        let mut files = Vec::new();
        collect(&self.path("pub"), "", &mut files);
        let refs: Vec<(&str, &[u8])> = files
            .iter()
            .map(|(n, d)| (n.as_str(), d.as_slice()))
            .collect();
        Server::start(&refs, Mode::Ok)
    }

    fn ota(&self, verb: &str, url: &str) -> Run {
        self.run(&["ota", verb, url, "--keys", "keys"])
    }

    fn record(&self) -> OtaState {
        OtaState::load(&archy_store::StateDir::new(&self.ws.state)).unwrap()
    }

    fn generations(&self) -> usize {
        fs::read_dir(self.ws.state.join("generations")).map_or(0, |d| d.count())
    }
}

fn collect(dir: &Path, prefix: &str, out: &mut Vec<(String, Vec<u8>)>) {
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
        if entry.file_type().unwrap().is_dir() {
            collect(&entry.path(), &format!("{name}/"), out);
        } else {
            out.push((name, fs::read(entry.path()).unwrap()));
        }
    }
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).unwrap();
        }
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
            assert!(h.range.is_none(), "nothing to resume: {h:?}");
            fs::metadata(pub_dir.join(&h.path[1..])).unwrap().len()
        })
        .sum();
    (objects.len(), bytes)
}

fn hash(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

#[test]
fn a_second_release_downloads_only_the_binary_that_changed() {
    let p = Publisher::new();
    let (a, b, c1, c2) = (
        payload(100_000),
        payload(150_000),
        payload(200_000),
        payload(200_001),
    );
    let out = p.release("1.0.0", &[("a", &a), ("b", &b), ("c", &c1)]);
    assert!(out.contains("software: 3 objects"), "{out}");
    assert!(out.contains("(3 new)"), "{out}");
    let out = p.release("2.0.0", &[("a", &a), ("b", &b), ("c", &c2)]);
    assert!(out.contains("(1 new)"), "one object is new: {out}");
    let mut published: Vec<String> = fs::read_dir(p.path("pub/objects"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    published.sort();
    let mut want = vec![hash(&a), hash(&b), hash(&c1), hash(&c2)];
    want.sort();
    assert_eq!(published, want, "one file per content, shared by releases");

    let mirror = p.mirror();
    let (r1, r2) = (mirror.url("r1.0.0.tar.gz"), mirror.url("r2.0.0.tar.gz"));
    let check = p.ota("check", &r1).ok();
    assert!(
        check.contains("software: 3 objects, 3 missing (3 files, "),
        "{check}"
    );
    let fetched = p.ota("fetch", &r1).ok();
    assert!(fetched.contains("fetched 3 objects"), "{fetched}");
    let (requests, bytes) = object_hits(&mirror.hits(), &p.path("pub"));
    assert_eq!((requests, bytes), (3, 450_000));

    let check = p.ota("check", &r2).ok();
    assert!(
        check.contains("software: 3 objects, 1 missing (1 file, "),
        "{check}"
    );
    let json: serde_json::Value = serde_json::from_str(
        &p.run(&["ota", "check", &r2, "--keys", "keys", "--json"])
            .ok(),
    )
    .unwrap();
    assert_eq!(json["software"]["download_bytes"], 200_001);
    let before = mirror.hits().len();
    p.ota("fetch", &r2).ok();
    let hits = mirror.hits();
    let (requests, bytes) = object_hits(&hits[before..], &p.path("pub"));
    assert_eq!((requests, bytes), (1, 200_001), "{:?}", &hits[before..]);
    assert!(
        hits[before..]
            .iter()
            .any(|h| h.path == format!("/objects/{}", hash(&c2)))
    );
    let check = p.ota("check", &r2).ok();
    assert!(check.contains("all in the store"), "{check}");
    // Fetching built and switched nothing.
    assert_eq!(p.generations(), 0);
}

#[test]
fn a_missing_or_wrong_object_stops_apply_before_anything_is_built() {
    let p = Publisher::new();
    let (a, b) = (payload(10_000), payload(20_000));
    p.release("1.0.0", &[("a", &a), ("b", &b)]);

    // b's object is missing from the mirror.
    fs::remove_file(p.path(&format!("pub/objects/{}", hash(&b)))).unwrap();
    let mirror = p.mirror();
    let run = p.ota("apply", &mirror.url("r1.0.0.tar.gz"));
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("software object b+x"), "{}", run.stderr);
    assert!(run.stderr.contains(&hash(&b)), "{}", run.stderr);
    assert!(run.stderr.contains("404"), "{}", run.stderr);
    assert!(
        run.stderr.contains("nothing was switched"),
        "{}",
        run.stderr
    );
    assert_eq!(p.generations(), 0);
    let record = p.record();
    assert!(record.pending.is_none(), "{record:?}");
    assert!(
        record.failed.is_empty(),
        "the mirror's fault, not the release's"
    );
    assert!(
        fs::read_dir(p.ws.state.join("ota/releases"))
            .map(|d| d.count())
            .unwrap_or(0)
            == 0,
        "no release folder is left"
    );
    drop(mirror);

    // b's object has other bytes: refused the same way, and the next
    // apply fetches only b (a is in the store since the first try).
    fs::write(
        p.path(&format!("pub/objects/{}", hash(&b))),
        payload(19_999),
    )
    .unwrap();
    let mirror = p.mirror();
    let run = p.ota("apply", &mirror.url("r1.0.0.tar.gz"));
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("hashes to"), "{}", run.stderr);
    assert_eq!(p.generations(), 0);
    let (requests, _) = object_hits(&mirror.hits(), &p.path("pub"));
    assert_eq!(requests, 1, "only b was asked for: {:?}", mirror.hits());

    // A bundle file takes its objects from the folder beside it.
    let run = p.ota("apply", "pub/r1.0.0.tar.gz");
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("pub/objects/"), "{}", run.stderr);
    assert_eq!(p.generations(), 0);
}

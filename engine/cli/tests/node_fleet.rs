//! A fleet of five real nodes following one TUF repository: release 1.0.0
//! reaches every node; release 2.0.0 rolls out in two waves (40% of the
//! fleet at once, everyone a day later); the first wave installs it; the
//! publisher pulls it before the second wave opens; the second wave never
//! installs it, and the first wave goes back to 1.0.0 through the switch.
//!
//! Each node has its own copy of the repository folder (`file:///srv/repo`,
//! copied in at each stage, as a mirror would sync it) and its own seed,
//! chosen so that two nodes fall in the first wave. Time is simulated with
//! `ARCHY_OTA_NOW`, never slept. The nodes are small (a file and archy's
//! own units, no apps) and run two at a time: each node's story depends on
//! the repository alone, not on the other nodes. Needs root; see
//! `support/node.rs`.

mod support;

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;
use support::archy_node::ArchyNode;
use support::node::TestNode;
use support::releases::{archy, copy_tree};

/// The first wave's share of the fleet.
const FIRST_WAVE: f64 = 0.4;

/// The publisher's folder: keys, the repository, and a copy of the
/// repository at each stage of the story.
struct Publisher {
    dir: tempfile::TempDir,
}

impl Publisher {
    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn run(&self, args: &[&str]) -> String {
        archy(args, self.dir.path())
    }

    fn repo_args<'a>(&self, verb: &'a str) -> Vec<&'a str> {
        vec!["release", verb, "--repo", "repo", "--keys", "keys"]
    }

    /// Packs release `version` of the fleet's node description.
    fn bundle(&self, version: &str, root: &str) -> String {
        let src = self.path(&format!("src-{version}"));
        fs::create_dir_all(&src).expect("src");
        copy_tree(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../stdlib"),
            &src.join("stdlib"),
        );
        let node = format!(
            r#"// Release {version} of the fleet test node.
import "stdlib/archy" as archy;
[
    file("/etc/fleet/release", #{{ text: "{version}\n" }}),
    archy::units(#{{ ota: #{{ repo: "file:///srv/repo", root: `{root}`, channel: "stable" }} }}),
]
"#
        );
        fs::write(src.join("node.rhai"), node).expect("node.rhai");
        let out = format!("out/archy-{version}.tar.gz");
        fs::create_dir_all(self.path("out")).expect("out");
        self.run(&[
            "release",
            "build",
            src.to_str().expect("utf-8"),
            "--key",
            "bundle.key",
            "--version",
            version,
            "-o",
            &out,
        ]);
        out
    }

    /// Copies the repository as it is now aside as `name`.
    fn stage(&self, name: &str) -> PathBuf {
        let to = self.path(name);
        copy_tree(&self.path("repo"), &to);
        to
    }
}

/// Five seeds: the first two in the first wave, the other three not.
fn seeds() -> Vec<String> {
    let (mut first, mut second) = (Vec::new(), Vec::new());
    for i in 0..1000 {
        let seed = blake3::hash(format!("fleet node {i}").as_bytes()).to_hex()[..32].to_string();
        let place = archy_ota::tuf::waves::place(&seed);
        if place < FIRST_WAVE && first.len() < 2 {
            first.push(seed);
        } else if place >= FIRST_WAVE && second.len() < 3 {
            second.push(seed);
        }
    }
    assert_eq!((first.len(), second.len()), (2, 3));
    first.into_iter().chain(second).collect()
}

struct Stages {
    only_one: PathBuf,
    both: PathBuf,
    pulled: PathBuf,
    root: PathBuf,
}

fn rfc3339_in(hours: u64) -> String {
    let at = std::time::SystemTime::now() + std::time::Duration::from_secs(hours * 3600);
    humantime::format_rfc3339(at).to_string()
}

/// Puts `repo` in the node as /srv/repo, replacing what was there.
fn sync(n: &ArchyNode, repo: &Path) {
    n.node.exec_ok(&["rm", "-rf", "/srv/repo"]);
    n.node.cp(repo, "/srv/repo");
}

fn apply(n: &ArchyNode, now: &str, extra: &[&str]) -> String {
    let assignment = format!("ARCHY_OTA_NOW={now}");
    let mut argv = vec![
        "env",
        &assignment,
        "archy",
        "ota",
        "apply",
        "--repo",
        "file:///srv/repo",
    ];
    argv.extend_from_slice(extra);
    n.node.exec_ok(&argv)
}

fn release_file(n: &ArchyNode) -> String {
    fs::read_to_string(n.node.root_path().join("etc/fleet/release"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn running(n: &ArchyNode) -> String {
    let status: Value =
        serde_json::from_str(&n.node.exec_ok(&["archy", "ota", "status", "--json"])).expect("json");
    status["running"].as_str().unwrap_or("").to_string()
}

/// One node's whole story; `first_wave` says which it should live.
fn node_story(stages: &Stages, seed: &str, first_wave: bool) {
    let n = ArchyNode::up("fleet");
    n.node.exec_ok(&["mkdir", "-p", "/var/lib/archy/ota"]);
    fs::write(
        n.node.root_path().join("var/lib/archy/ota/seed"),
        format!("{seed}\n"),
    )
    .expect("seed");
    n.node.cp(&stages.root, "/root/trusted-root.json");

    // 1.0.0 reaches everyone; its description pins the root from then on.
    sync(&n, &stages.only_one);
    let out = apply(
        &n,
        &rfc3339_in(0),
        &["--trusted-root", "/root/trusted-root.json"],
    );
    assert!(out.contains("release 1.0.0 is installed"), "{out}");
    assert_eq!(release_file(&n), "1.0.0");
    assert!(
        n.node
            .root_path()
            .join("etc/archy/trusted-root.json")
            .exists(),
        "the description pins the root"
    );

    // 2.0.0 is out, an hour later: only the first wave takes it.
    sync(&n, &stages.both);
    let check = n.node.exec_ok(&[
        "env",
        &format!("ARCHY_OTA_NOW={}", rfc3339_in(1)),
        "archy",
        "ota",
        "check",
        "--repo",
        "file:///srv/repo",
        "--json",
    ]);
    let check: Value = serde_json::from_str(&check).expect("check json");
    let out = apply(&n, &rfc3339_in(1), &[]);
    if first_wave {
        assert_eq!(check["action"], "apply", "{check}");
        assert!(out.contains("release 2.0.0 is installed"), "{out}");
        assert_eq!(release_file(&n), "2.0.0");
        assert_eq!(running(&n), "2.0.0");
    } else {
        assert_eq!(check["action"], "wait", "{check}");
        assert!(check["wave_opens"].is_string(), "{check}");
        assert!(out.contains("wave opens at"), "{out}");
        assert_eq!(release_file(&n), "1.0.0");
    }

    // Pulled; two days later the second wave would be open.
    sync(&n, &stages.pulled);
    let out = apply(&n, &rfc3339_in(48), &[]);
    if first_wave {
        assert!(
            out.contains("release 2.0.0 was pulled: this node went back to release 1.0.0"),
            "{out}"
        );
    } else {
        assert!(out.contains("up to date"), "{out}");
    }
    assert_eq!(release_file(&n), "1.0.0");
    assert_eq!(running(&n), "1.0.0");
    let status: Value =
        serde_json::from_str(&n.node.exec_ok(&["archy", "ota", "status", "--json"])).expect("json");
    let ran_two = status["generations"]
        .as_object()
        .expect("generations")
        .values()
        .any(|v| v == "2.0.0");
    assert_eq!(ran_two, first_wave, "{status}");
    // And it stays so.
    let out = apply(&n, &rfc3339_in(72), &[]);
    assert!(out.contains("up to date"), "{out}");
    assert_eq!(release_file(&n), "1.0.0");
    eprintln!(
        "node {} (wave {}): ends on release 1.0.0",
        n.node.name(),
        if first_wave { 1 } else { 2 }
    );
}

#[test]
fn a_pulled_release_never_reaches_the_second_wave_and_the_first_goes_back() {
    if !TestNode::available() {
        return;
    }
    let p = Publisher {
        dir: tempfile::tempdir().expect("tempdir"),
    };
    p.run(&["release", "keygen", "--out", "bundle"]);
    p.run(&p.repo_args("init"));
    let root_path = p.path("repo/metadata/1.root.json");
    let root = fs::read_to_string(&root_path).expect("root");
    let one = p.bundle("1.0.0", &root);
    let two = p.bundle("2.0.0", &root);
    let mut add = p.repo_args("add");
    add.push(&one);
    p.run(&add);
    let only_one = p.stage("stage-1");
    let mut add = p.repo_args("add");
    add.extend_from_slice(&[&two, "--wave", "40%@0s", "--wave", "100%@1d"]);
    p.run(&add);
    let both = p.stage("stage-2");
    let mut pull = p.repo_args("pull");
    pull.push("2.0.0");
    p.run(&pull);
    let pulled = p.stage("stage-3");
    let stages = Stages {
        only_one,
        both,
        pulled,
        root: root_path,
    };

    let seeds = seeds();
    // Two nodes at a time: the machine is small.
    for pair in seeds.iter().enumerate().collect::<Vec<_>>().chunks(2) {
        std::thread::scope(|s| {
            let handles: Vec<_> = pair
                .iter()
                .map(|(i, seed)| {
                    let stages = &stages;
                    s.spawn(move || node_story(stages, seed, *i < 2))
                })
                .collect();
            for h in handles {
                h.join().expect("a node's story");
            }
        });
    }
}

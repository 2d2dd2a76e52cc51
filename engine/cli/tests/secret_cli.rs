//! `archy secret rotate NAME` and `archy secret list`: a rotation is a
//! version bump recorded on the node, read by every command that
//! evaluates; no value is ever printed. The node is an image realized
//! offline (`--root`), so a generation is current and the secrets' values
//! are on disk without systemd.

// Test helpers: a failure should panic, and the panic says where.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::Run;

const NODE: &str = r#"[
    secret("rpc", #{ length: 24 }),
    secret("token", #{}),
    file("/etc/app/rpc.conf", #{ text: "rpcauth={{secret.rpc}}\n" }),
    unit("app.service", #{ Service: #{ ExecStart: "/usr/bin/app --conf /etc/app/rpc.conf" }, Install: #{ WantedBy: "multi-user.target" } }),
    unit("plain.service", #{ Service: #{ ExecStart: "/usr/bin/plain" }, Install: #{ WantedBy: "multi-user.target" } }),
    unit("token.service", #{ Service: #{ ExecStart: "/usr/bin/token" }, Install: #{ WantedBy: "multi-user.target" }, secrets: ["token"] }),
]"#;

/// A folder with `node.rhai` and an image folder the node is realized in.
struct Node {
    dir: tempfile::TempDir,
}

impl Node {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("image")).unwrap();
        std::fs::write(dir.path().join("node.rhai"), NODE).unwrap();
        Node { dir }
    }

    fn image(&self) -> PathBuf {
        self.dir.path().join("image")
    }

    /// The state dir, as `--root image` puts it.
    fn state(&self) -> PathBuf {
        self.image().join("var/lib/archy")
    }

    fn rotations_file(&self) -> PathBuf {
        self.state().join("rotations.json")
    }

    /// `archy --root image ARGS`, in the node's folder.
    fn archy(&self, args: &[&str]) -> Run {
        let out = Command::new(env!("CARGO_BIN_EXE_archy"))
            .arg("--root")
            .arg(self.image())
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("ARCHY_STATE_DIR")
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        out.into()
    }

    fn switch(&self) -> String {
        self.archy(&["switch", "node.rhai"]).ok()
    }

    /// `archy eval --json`'s version of a secret.
    fn evaluated_version(&self, name: &str) -> u64 {
        let text = self.archy(&["eval", "--json", "node.rhai"]).ok();
        let graph: serde_json::Value = serde_json::from_str(&text).unwrap();
        let resources = graph["resources"].as_array().unwrap();
        let secret = resources
            .iter()
            .find(|r| r["kind"] == "secret" && r["id"] == name)
            .unwrap_or_else(|| panic!("no secret {name} in {text}"));
        find_version(secret).unwrap_or_else(|| panic!("no version in {secret}"))
    }
}

/// The `version` field of a resource's JSON, wherever it is nested.
fn find_version(v: &serde_json::Value) -> Option<u64> {
    match v {
        serde_json::Value::Object(m) => m
            .get("version")
            .and_then(serde_json::Value::as_u64)
            .or_else(|| m.values().find_map(find_version)),
        _ => None,
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn rotate_before_any_generation_is_refused_and_creates_nothing() {
    let node = Node::new();
    let run = node.archy(&["secret", "rotate", "rpc"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr
            .contains("no generation yet: run archy switch first"),
        "{}",
        run.stderr
    );
    assert!(!node.state().exists(), "nothing may be created");
    // Listing says the same, successfully.
    let text = node.archy(&["secret", "list"]).ok();
    assert!(text.contains("no generation yet"), "{text}");
}

#[test]
fn rotate_of_an_unknown_secret_lists_the_declared_ones() {
    let node = Node::new();
    node.switch();
    let run = node.archy(&["secret", "rotate", "nope"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains("declares no secret `nope`"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("rpc, token"), "{}", run.stderr);
    assert!(!node.rotations_file().exists());
}

#[test]
fn a_rotation_is_recorded_seen_by_eval_and_diff_and_applied_by_switch() {
    let node = Node::new();
    node.switch();
    let old_value = read(&node.state().join("secrets/rpc"));
    assert_eq!(
        read(&node.image().join("etc/app/rpc.conf")),
        format!("rpcauth={old_value}\n")
    );
    assert_eq!(node.evaluated_version("rpc"), 1);

    let text = node.archy(&["secret", "rotate", "rpc"]).ok();
    assert!(
        text.starts_with(
            "secret rpc: rotation recorded (version 1 -> 2); the next `archy switch` makes a new \
             value and restarts what derives from it\n"
        ),
        "{text}"
    );
    // Exactly the reader of the derived file restarts.
    assert!(text.contains("restarts: app.service\n"), "{text}");
    // The file names its format (2: the counts under `rotations`).
    let counts: serde_json::Value = serde_json::from_str(&read(&node.rotations_file())).unwrap();
    assert_eq!(counts["format"], 2);
    assert_eq!(counts["rotations"], serde_json::json!({ "rpc": 1 }));

    // Every command that evaluates sees the bump.
    assert_eq!(node.evaluated_version("rpc"), 2);
    assert_eq!(node.evaluated_version("token"), 1);
    let diff = node.archy(&["diff", "node.rhai"]).ok();
    assert!(diff.contains("generate secret rpc"), "{diff}");
    assert!(diff.contains("version 1 -> 2"), "{diff}");
    assert!(diff.contains("restart  app.service"), "{diff}");
    assert!(!diff.contains("plain.service"), "{diff}");
    assert!(!diff.contains("token.service"), "{diff}");

    // A second rotation before the switch: one more version.
    let text = node.archy(&["secret", "rotate", "rpc"]).ok();
    assert!(text.contains("(version 1 -> 3)"), "{text}");

    // The switch makes a new value and fills the derived file with it.
    let switched = node.switch();
    assert!(switched.contains("version 1 -> 3"), "{switched}");
    let new_value = read(&node.state().join("secrets/rpc"));
    // Compared without printing: a failure must not show the values.
    assert!(new_value != old_value, "the secret was not made anew");
    assert!(
        read(&node.image().join("etc/app/rpc.conf")) == format!("rpcauth={new_value}\n"),
        "rpc.conf does not hold the new value"
    );
    let listed = node.archy(&["secret", "list", "--json"]).ok();
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed["generation"], 2);
    assert_eq!(listed["secrets"][0]["name"], "rpc");
    assert_eq!(listed["secrets"][0]["version"], 3);
    assert_eq!(listed["secrets"][0]["rotations"], 2);
    // Nothing pending any more.
    let diff = node.archy(&["diff", "node.rhai"]).ok();
    assert!(diff.contains("nothing to do"), "{diff}");
}

#[test]
fn a_malformed_rotations_file_is_a_clear_error_and_changes_nothing() {
    let node = Node::new();
    node.switch();
    let bad = "{\"rpc\": \"two\"}\n";
    std::fs::write(node.rotations_file(), bad).unwrap();
    for args in [
        &["secret", "rotate", "rpc"][..],
        &["eval", "node.rhai"],
        &["diff", "node.rhai"],
        &["build", "node.rhai"],
        &["switch", "node.rhai"],
        &["secret", "list"],
    ] {
        let run = node.archy(args);
        assert_eq!(run.code, 1, "{args:?}: {run:?}");
        assert!(
            run.stderr
                .contains(&node.rotations_file().display().to_string()),
            "{args:?}: {}",
            run.stderr
        );
        assert!(
            run.stderr.contains("is not a valid rotations file"),
            "{}",
            run.stderr
        );
        assert!(run.stderr.contains("hint:"), "{}", run.stderr);
    }
    assert_eq!(read(&node.rotations_file()), bad);
    // No generation was made.
    let generations = node.archy(&["generations", "--json"]).ok();
    assert!(!generations.contains("\"number\": 2"), "{generations}");
}

#[test]
fn secret_list_never_shows_a_value() {
    let node = Node::new();
    node.switch();
    node.archy(&["secret", "rotate", "token"]).ok();
    let values: Vec<String> = ["rpc", "token"]
        .iter()
        .map(|n| read(&node.state().join("secrets").join(n)))
        .collect();
    for args in [
        &["secret", "list", "--json"][..],
        &["secret", "list"],
        &["secret", "rotate", "rpc"],
    ] {
        let run = node.archy(args);
        assert_eq!(run.code, 0, "{run:?}");
        for value in &values {
            assert!(value.len() >= 12);
            assert!(
                !run.stdout.contains(value.as_str()),
                "{args:?} printed a value"
            );
            assert!(
                !run.stderr.contains(value.as_str()),
                "{args:?} printed a value"
            );
        }
    }
    let listed = node.archy(&["secret", "list", "--json"]).ok();
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    let token = &listed["secrets"][1];
    assert_eq!(token["name"], "token");
    assert_eq!(token["present"], true);
    assert_eq!(token["mode"], "0600");
    assert_eq!(token["version"], 1);
    assert_eq!(token["rotations"], 1);
    let text = node.archy(&["secret", "list"]).ok();
    assert!(text.contains("NAME"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("token") && l.contains("yes")),
        "{text}"
    );
    // A value gone from disk shows as such.
    std::fs::remove_file(node.state().join("secrets/rpc")).unwrap();
    let listed = node.archy(&["secret", "list", "--json"]).ok();
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed["secrets"][0]["present"], false);
}

#[test]
fn rotate_records_even_when_the_description_is_gone() {
    let node = Node::new();
    node.switch();
    std::fs::remove_file(node.dir.path().join("node.rhai")).unwrap();
    let text = node.archy(&["secret", "rotate", "token"]).ok();
    assert!(
        text.starts_with("secret token: rotation recorded (version 1 -> 2);"),
        "{text}"
    );
    assert!(text.contains("no preview of that switch"), "{text}");
    // The file names its format (2: the counts under `rotations`).
    let counts: serde_json::Value = serde_json::from_str(&read(&node.rotations_file())).unwrap();
    assert_eq!(counts["format"], 2);
    assert_eq!(counts["rotations"], serde_json::json!({ "token": 1 }));
}

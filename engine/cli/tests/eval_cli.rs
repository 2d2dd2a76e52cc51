//! `archy eval` as a user runs it: exit codes, determinism across
//! processes, and `print` going to the log rather than to stdout.

use std::path::Path;
use std::process::{Command, Output};

fn archy(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_archy"))
        .args(args)
        .current_dir(dir)
        .env_remove("ARCHY_LOG")
        .output()
        .expect("run archy")
}

fn repo_root() -> std::path::PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .canonicalize()
        .expect("root")
}

const FACTS: [&str; 4] = ["--fact", "hostname=node1", "--fact", "ip=192.0.2.10"];

#[test]
fn default_node_evaluates_the_same_in_two_processes() {
    let args = [&["eval", "--json", "--state-dir", "/tmp"][..], &FACTS].concat();
    let (a, b) = (archy(&args, &repo_root()), archy(&args, &repo_root()));
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
    assert_eq!(a.stdout, b.stdout);
    let json: serde_json::Value = serde_json::from_slice(&a.stdout).expect("json");
    let root = json["root"].as_str().expect("root");
    assert_eq!(root.len(), 64);
    assert!(json["resources"].as_array().is_some_and(|r| r.len() > 5));
}

#[test]
fn summary_names_kinds_and_root() {
    let args = [&["eval", "--state-dir", "/tmp"][..], &FACTS].concat();
    let out = archy(&args, &repo_root());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(text.starts_with("node.rhai: "), "{text}");
    for kind in ["unit", "file", "container", "secret", "health"] {
        assert!(
            text.contains(&format!("  {kind}")),
            "{kind} missing in {text}"
        );
    }
    // The archy binary (archy::units()'s default) is named by the hash of
    // the archy that evaluated.
    assert!(text.contains("  artifact   1"), "{text}");
    assert!(text.contains("host facts used: archy="), "{text}");
    assert!(text.contains(", hostname=node1"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("root ") && l.len() == 69),
        "{text}"
    );
}

#[test]
fn a_wrong_node_exits_1_with_the_place() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("node.rhai"),
        "[ file(\"relative\", #{ text: \"x\" }) ]",
    )
    .expect("write");
    let out = archy(&["eval", "--state-dir", "/tmp"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("node.rhai:1:3"), "{err}");
    assert!(err.contains("is not absolute"), "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn a_missing_node_exits_1() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = archy(&["eval", "--state-dir", "/tmp", "nope.rhai"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope.rhai"));
}

#[test]
fn print_goes_to_the_log_not_stdout() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("node.rhai"),
        "print(\"hello from rhai\");\n[]",
    )
    .expect("write");
    let out = archy(&["eval", "--json", "--state-dir", "/tmp"], dir.path());
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("hello from rhai"), "{stdout}");
    serde_json::from_slice::<serde_json::Value>(&out.stdout).expect("stdout stays pure JSON");
    let logged = Command::new(env!("CARGO_BIN_EXE_archy"))
        .args(["eval", "--state-dir", "/tmp"])
        .current_dir(dir.path())
        .env("ARCHY_LOG", "info")
        .output()
        .expect("run archy");
    assert!(String::from_utf8_lossy(&logged.stderr).contains("hello from rhai"));
}

#[test]
fn a_bad_fact_override_exits_1() {
    let out = archy(
        &["eval", "--state-dir", "/tmp", "--fact", "disk_bytes=lots"],
        &repo_root(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--fact disk_bytes=lots"));
}

/// Evaluates `text` as a node in a folder of its own.
fn eval_text(text: &str, args: &[&str]) -> Output {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("node.rhai"), text).expect("write");
    archy(&[args, &["--state-dir", "/tmp"]].concat(), dir.path())
}

#[test]
fn a_two_million_iteration_loop_fails_with_exit_1_naming_the_limit() {
    let out = eval_text(
        "let a = [];\nfor i in 0..2000000 {\n    a.push(i);\n}\na\n",
        &["eval"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    // A release build runs out of operations first, a debug build may
    // run out of time first: either is named, with the line it reached.
    assert!(
        err.contains("archy's limit of 5000000 operations")
            || err.contains("archy's wall-time limit of 2 s"),
        "{err}"
    );
    assert!(
        err.contains("node.rhai:2:") || err.contains("node.rhai:3:"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn a_slow_evaluation_is_stopped_by_the_wall_time_limit_which_a_flag_raises() {
    // Few operations, each copying a megabyte: the operations last long
    // after the wall time has run out.
    let node =
        "let s = \"\";\ns.pad(1000000, \"x\");\nfor i in 0..2000000 { let t = s + s; }\n[]\n";
    let out = eval_text(node, &["--eval-timeout", "0.5", "eval"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("archy's wall-time limit of 0.5 s"), "{err}");
    assert!(err.contains("node.rhai:3:"), "{err}");
    assert!(err.contains("--eval-timeout SECS"), "{err}");

    // With more time the same loop, shortened, finishes.
    let node = "let s = \"\";\ns.pad(1000000, \"x\");\nfor i in 0..20 { let t = s + s; }\n[]\n";
    let out = eval_text(node, &["eval", "--eval-timeout", "30"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = eval_text("[]", &["--eval-timeout", "soon", "eval"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a number of seconds"));
}

#[test]
fn help_documents_the_eval_timeout() {
    let out = archy(&["--help"], &repo_root());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("--eval-timeout <SECS>"), "{text}");
}

#[test]
fn a_runaway_string_is_stopped_by_the_memory_limit() {
    let out = eval_text("let s = \"x\";\nloop { s += s; }\n[]\n", &["eval"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("archy's memory limit of 1024 MiB"), "{err}");
    assert!(err.contains("node.rhai:2:"), "{err}");
}

#[test]
fn too_much_file_text_is_refused_at_the_file() {
    // 300 files of 1 MiB: past the 256 MiB for all of a node's texts.
    let node = "let big = \"\";\nbig.pad(1048576, \"x\");\nlet files = [];\nfor i in 0..300 {\n    files.push(file(`/etc/big/${i}`, #{ text: big }));\n}\nfiles\n";
    let out = eval_text(node, &["eval", "--eval-timeout", "120"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("takes the node's file texts past archy's limit of 256 MiB"),
        "{err}"
    );
    assert!(err.contains("node.rhai:5:"), "{err}");
    assert!(err.contains("1 problem"), "{err}");
}

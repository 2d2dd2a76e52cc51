//! `archy eval --json` of a node of many large texts runs in bounded
//! memory. A test binary of its own: the peak memory of its children is
//! then that of the one `archy` it runs.

use std::process::Command;

#[test]
fn eval_json_of_many_large_texts_streams_in_bounded_memory() {
    // 1,000 files of 64 KiB each, every text different: 64 MiB of text.
    let node = "let big = \"\";\nbig.pad(65536, \"x\");\nlet files = [];\nfor i in 0..1000 {\n    files.push(file(`/etc/big/${i}`, #{ text: `${i}` + big }));\n}\nfiles\n";
    // (Time is not what this measures: a debug build on a busy machine
    // may need more than the default 2 s.)
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("node.rhai"), node).expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_archy"))
        .args([
            "eval",
            "--json",
            "--eval-timeout",
            "120",
            "--state-dir",
            "/tmp",
        ])
        .current_dir(dir.path())
        .env_remove("ARCHY_LOG")
        .output()
        .expect("run archy");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let resources = json["resources"].as_array().expect("resources");
    assert_eq!(resources.len(), 1000);
    assert!(
        resources
            .iter()
            .all(|r| r["text"].as_str().is_some_and(|t| t.len() > 65536))
    );
    // The only child of this process: the graph's 64 MiB of text once,
    // and the process itself, not copies of the whole output.
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .expect("getrusage");
    let peak_mib = usage.max_rss() / 1024;
    assert!(peak_mib < 160, "archy eval --json peaked at {peak_mib} MiB");
}

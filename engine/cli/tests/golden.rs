//! Golden evaluation cases: every `tests/eval/okay-*.rhai` evaluates to the
//! graph in its snapshot (root hash included, so CI checks determinism on
//! every machine), and every `fail-*.rhai` fails with the rendered errors in
//! its snapshot.

use std::collections::BTreeMap;
use std::path::Path;

use archy_eval::{FsSources, HostFacts, Limits};
use archy_graph::Fact;

/// Fixed facts, so snapshots do not depend on the machine.
fn facts() -> HostFacts {
    BTreeMap::from([
        ("hostname".to_string(), Fact::Text("node1".into())),
        ("ip".to_string(), Fact::Text("192.0.2.10".into())),
        ("mdns".to_string(), Fact::Text("node1.local".into())),
        ("disk_bytes".to_string(), Fact::Int(2_000_000_000_000)),
        // The hash of "the running archy", fixed: archy::units() installs
        // it as /usr/local/bin/archy.
        (
            "archy".to_string(),
            Fact::Text(archy_graph::Digest::of(b"archy under test").to_string()),
        ),
    ])
}

fn repo_root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn evaluate(case: &Path) -> Result<archy_eval::Evaluation, archy_eval::Failure> {
    let logical = case
        .strip_prefix(repo_root().canonicalize().expect("repo root"))
        .expect("case inside the repo")
        .to_string_lossy()
        .into_owned();
    let sources = FsSources::new(repo_root(), "tests/eval").expect("sources");
    archy_eval::evaluate(sources, &logical, facts(), &Limits::default())
}

#[test]
fn okay_cases() {
    insta::glob!("../../../tests/eval", "okay-*.rhai", |path| {
        let ev = evaluate(&path.canonicalize().expect("case")).unwrap_or_else(|f| {
            panic!(
                "{} failed:\n{}",
                path.display(),
                archy_cli::render::problems(&f.problems, &f.sources, false)
            )
        });
        insta::with_settings!({ snapshot_path => "../../../tests/eval/snapshots", prepend_module_to_snapshot => false }, {
            insta::assert_json_snapshot!(archy_graph::json::graph_json(&ev.graph));
        });
    });
}

#[test]
fn fail_cases() {
    insta::glob!("../../../tests/eval", "fail-*.rhai", |path| {
        let failure = match evaluate(&path.canonicalize().expect("case")) {
            Ok(_) => panic!("{} evaluated, but it must fail", path.display()),
            Err(f) => f,
        };
        let rendered = archy_cli::render::problems(&failure.problems, &failure.sources, false);
        insta::with_settings!({ snapshot_path => "../../../tests/eval/snapshots", prepend_module_to_snapshot => false }, {
            insta::assert_snapshot!(rendered);
        });
    });
}

/// The nodes the repository ships, `node.rhai` and `examples/*.rhai`,
/// evaluate to the graphs in their snapshots: a change to an app shows up
/// here as the exact resources it changes.
#[test]
fn shipped_nodes() {
    let root = repo_root().canonicalize().expect("repo root");
    let mut nodes = vec![root.join("node.rhai")];
    let mut examples: Vec<_> = std::fs::read_dir(root.join("examples"))
        .expect("examples/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "rhai"))
        .collect();
    examples.sort();
    assert!(examples.len() >= 2, "{examples:?}");
    nodes.extend(examples);
    for node in nodes {
        let logical = node
            .strip_prefix(&root)
            .expect("inside the repo")
            .to_string_lossy()
            .into_owned();
        let dir = Path::new(&logical)
            .parent()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let sources = FsSources::new(&root, &dir).expect("sources");
        let ev = archy_eval::evaluate(sources, &logical, facts(), &Limits::default())
            .unwrap_or_else(|f| {
                panic!(
                    "{logical} failed:\n{}",
                    archy_cli::render::problems(&f.problems, &f.sources, false)
                )
            });
        let name = logical.replace('/', "__");
        insta::with_settings!({ snapshot_path => "../../../tests/eval/snapshots", prepend_module_to_snapshot => false }, {
            insta::assert_json_snapshot!(format!("shipped@{name}"), archy_graph::json::graph_json(&ev.graph));
        });
    }
}

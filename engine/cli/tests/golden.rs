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

/// The functions (name and arity) each shipped module defines, from its
/// text: `fn name(a, b)` at the start of a line.
fn defined_functions(text: &str) -> Vec<(String, usize)> {
    text.lines()
        .filter_map(|line| {
            let rest = line.trim_start();
            let rest = rest.strip_prefix("private ").unwrap_or(rest);
            let rest = rest.strip_prefix("fn ")?;
            let (name, args) = rest.split_once('(')?;
            let args = args.split_once(')')?.0;
            let arity = args.split(',').filter(|a| !a.trim().is_empty()).count();
            Some((name.trim().to_string(), arity))
        })
        .collect()
}

/// rhai 1.27 keeps a function it resolved inside one module in a cache
/// that outlives the call, so a call without a namespace in another
/// module to a function of the same name and arity may run the first
/// module's (which one depends on rhai's hash keys, so on the build: see
/// rhaiscript/rhai#1083). No two shipped modules may define the same
/// helper; only `app`, every app module's entry point, is always called
/// through its module's name (`lnd::app(...)`).
#[test]
fn no_two_shipped_modules_define_the_same_helper() {
    let mut seen: BTreeMap<(String, usize), String> = BTreeMap::new();
    let mut clashes = Vec::new();
    for folder in ["apps", "stdlib"] {
        for entry in std::fs::read_dir(repo_root().join(folder)).expect("folder") {
            let path = entry.expect("entry").path();
            if path.extension().is_none_or(|e| e != "rhai") {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("module");
            let module = format!(
                "{folder}/{}",
                path.file_name().unwrap_or_default().to_string_lossy()
            );
            for f in defined_functions(&text) {
                if f.0 == "app" && f.1 == 2 {
                    continue;
                }
                if let Some(first) = seen.get(&f) {
                    clashes.push(format!("{}/{} in {module} and {first}", f.0, f.1));
                } else {
                    seen.insert(f, module.clone());
                }
            }
        }
    }
    assert!(clashes.is_empty(), "rename one of each: {clashes:?}");
}

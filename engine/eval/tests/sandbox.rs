//! The sandbox: every way out of a pure evaluation ends in a clear error,
//! quickly, and never in a crash.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use archy_eval::{FsSources, Limits, MemSources, evaluate};
use archy_graph::Problem;

fn eval_mem(files: &[(&str, &str)]) -> Result<archy_eval::Evaluation, Vec<Problem>> {
    let mut src = MemSources::default();
    for (path, text) in files {
        src = src.with(path, text);
    }
    evaluate(src, files[0].0, BTreeMap::new(), &Limits::default()).map_err(|f| f.problems)
}

/// Evaluates and returns the single problem, checking it came fast.
fn single_problem(files: &[(&str, &str)]) -> Problem {
    let start = Instant::now();
    let problems = eval_mem(files).expect_err("the evaluation must fail");
    let took = start.elapsed();
    assert!(
        took < Duration::from_secs(1),
        "took {took:?}, the sandbox must stop this well under a second"
    );
    assert_eq!(problems.len(), 1, "{problems:#?}");
    problems.into_iter().next().expect("one problem")
}

#[test]
fn endless_loop_is_stopped() {
    let p = single_problem(&[("node.rhai", "let x = 0;\nloop { x += 1; }\n[]")]);
    assert!(p.message.contains("did not finish within"), "{p}");
    assert_eq!(
        p.at.as_ref().map(|a| (a.file.as_str(), a.line)),
        Some(("node.rhai", 2))
    );
}

#[test]
fn runaway_recursion_is_stopped() {
    let p = single_problem(&[("node.rhai", "fn f(n) { f(n + 1) }\nf(0);\n[]")]);
    assert!(p.message.contains("nested deeper than"), "{p}");
}

#[test]
fn gigantic_string_is_stopped() {
    let p = single_problem(&[("node.rhai", "let s = \"x\";\nloop { s += s; }\n[]")]);
    assert!(p.message.contains("exceeds archy's limit"), "{p}");
}

#[test]
fn gigantic_array_is_stopped() {
    let p = single_problem(&[("node.rhai", "let a = [0];\nloop { a += a; }\n[]")]);
    assert!(p.message.contains("exceeds archy's limit"), "{p}");
}

#[test]
fn deep_expression_is_refused() {
    let deep = format!("let x = {}1{};\n[]", "(".repeat(200), ")".repeat(200));
    let p = single_problem(&[("node.rhai", &deep)]);
    assert!(p.message.contains("maximum complexity"), "{p}");
    assert_eq!(
        p.hint.as_deref(),
        Some("expressions may nest 64 levels at most")
    );
}

#[test]
fn cyclic_import_names_the_cycle() {
    let p = single_problem(&[
        ("node.rhai", "import \"a\" as a;\n[]"),
        ("a.rhai", "import \"b\" as b;\nfn x() { 1 }"),
        ("b.rhai", "import \"a\" as a;\nfn y() { 2 }"),
    ]);
    assert!(
        p.message
            .contains("import cycle: a.rhai -> b.rhai -> a.rhai"),
        "{p}"
    );
}

#[test]
fn self_import_is_a_cycle() {
    let p = single_problem(&[("node.rhai", "import \"node\" as me;\n[]")]);
    assert!(
        p.message.contains("import cycle: node.rhai -> node.rhai"),
        "{p}"
    );
}

#[test]
fn dotdot_import_is_refused() {
    let p = single_problem(&[("node.rhai", "import \"../secrets\" as s;\n[]")]);
    assert!(p.message.contains("leaves its folder"), "{p}");
}

#[test]
fn absolute_import_is_refused() {
    let p = single_problem(&[("node.rhai", "import \"/etc/passwd\" as p;\n[]")]);
    assert!(p.message.contains("absolute path"), "{p}");
}

#[test]
fn symlink_out_of_the_sources_is_refused() {
    let outside = tempfile::tempdir().expect("tempdir");
    std::fs::write(outside.path().join("evil.rhai"), "fn x() { 1 }").expect("write");
    let root = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(root.path().join("stdlib")).expect("mkdir");
    std::os::unix::fs::symlink(
        outside.path().join("evil.rhai"),
        root.path().join("stdlib/evil.rhai"),
    )
    .expect("symlink");
    std::fs::write(
        root.path().join("node.rhai"),
        "import \"stdlib/evil\" as e;\n[]",
    )
    .expect("write");
    let sources = FsSources::new(root.path(), "").expect("sources");
    let f =
        evaluate(sources, "node.rhai", BTreeMap::new(), &Limits::default()).expect_err("must fail");
    assert_eq!(f.problems.len(), 1);
    assert!(
        f.problems[0].message.contains("outside the node's sources"),
        "{}",
        f.problems[0]
    );
}

#[test]
fn symlink_inside_the_sources_is_fine() {
    let root = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(root.path().join("stdlib")).expect("mkdir");
    std::fs::write(
        root.path().join("stdlib/real.rhai"),
        "fn x() { \"/etc/x\" }",
    )
    .expect("write");
    std::os::unix::fs::symlink("real.rhai", root.path().join("stdlib/alias.rhai"))
        .expect("symlink");
    std::fs::write(
        root.path().join("node.rhai"),
        "import \"stdlib/alias\" as a;\n[ file(a::x(), #{ text: \"\" }) ]",
    )
    .expect("write");
    let sources = FsSources::new(root.path(), "").expect("sources");
    let ev =
        evaluate(sources, "node.rhai", BTreeMap::new(), &Limits::default()).expect("evaluates");
    assert_eq!(ev.graph.nodes.len(), 1);
}

#[test]
fn there_is_no_clock_randomness_environment_or_files() {
    for call in [
        "timestamp()",
        "sleep(1)",
        "eval(\"1\")",
        "env(\"HOME\")",
        "open_file(\"/etc/passwd\")",
        "random()",
        "parse_json(\"{}\")",
        "exit()",
    ] {
        let problems = eval_mem(&[("node.rhai", &format!("let x = {call};\n[]"))])
            .expect_err(&format!("{call} must not be available"));
        assert_eq!(problems.len(), 1, "{call}: {problems:#?}");
        let p = &problems[0];
        assert!(
            p.message.contains("no function") || p.message.to_lowercase().contains("eval"),
            "{call}: {p}"
        );
    }
}

#[test]
fn host_is_read_only() {
    let problems =
        eval_mem(&[("node.rhai", "host = 1;\n[]")]).expect_err("assigning host must fail");
    assert_eq!(problems.len(), 1);
    let problems = eval_mem(&[("node.rhai", "host.hostname = \"x\";\n[]")])
        .expect_err("setting a fact must fail");
    assert_eq!(problems.len(), 1);
}

#[test]
fn limits_are_the_same_in_debug_and_release() {
    // The defaults are explicit numbers, not rhai's (which differ between
    // builds); this pins them so a change is deliberate.
    let l = Limits::default();
    assert_eq!(
        (l.operations, l.call_levels, l.expr_depth, l.fn_expr_depth),
        (5_000_000, 64, 64, 48)
    );
    assert_eq!(
        (l.string_bytes, l.array_len, l.map_len),
        (4 << 20, 1_000_000, 100_000)
    );
}

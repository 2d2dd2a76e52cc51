//! The sandbox: every way out of a pure evaluation ends in a clear error,
//! quickly, and never in a crash.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use archy_eval::{FsSources, Limits, MemSources, evaluate};
use archy_graph::Problem;

// Memory is counted as the `archy` binary counts it.
#[global_allocator]
static ALLOC: archy_eval::memory::Allocator = archy_eval::memory::allocator();

/// The default limits, but 64 MiB of memory: the tests run side by side.
fn test_limits() -> Limits {
    archy_eval::memory::register(&ALLOC);
    Limits {
        memory_bytes: 64 << 20,
        ..Limits::default()
    }
}

fn eval_mem(files: &[(&str, &str)]) -> Result<archy_eval::Evaluation, Vec<Problem>> {
    eval_with(files, &test_limits())
}

fn eval_with(
    files: &[(&str, &str)],
    limits: &Limits,
) -> Result<archy_eval::Evaluation, Vec<Problem>> {
    eval_timed(files, limits).0
}

/// The evaluation, and how long it took (without waiting for its turn).
fn eval_timed(
    files: &[(&str, &str)],
    limits: &Limits,
) -> (Result<archy_eval::Evaluation, Vec<Problem>>, Duration) {
    // The memory counted is the process's: one evaluation at a time.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut src = MemSources::default();
    for (path, text) in files {
        src = src.with(path, text);
    }
    let start = Instant::now();
    let result = evaluate(src, files[0].0, BTreeMap::new(), limits).map_err(|f| f.problems);
    (result, start.elapsed())
}

/// Evaluates and returns the single problem, checking it came fast.
fn single_problem(files: &[(&str, &str)]) -> Problem {
    let (result, took) = eval_timed(files, &test_limits());
    let problems = result.expect_err("the evaluation must fail");
    // The wall-time limit is what guarantees the stop (how far the
    // evaluation gets before is the machine's speed, measured by
    // `cargo bench -p archy --bench eval`, not here).
    assert!(
        took < test_limits().wall_time + Duration::from_secs(1),
        "took {took:?}, the sandbox must stop this within its wall-time limit"
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

fn line(p: &Problem) -> Option<(&str, u32)> {
    p.at.as_ref().map(|a| (a.file.as_str(), a.line))
}

#[test]
fn gigantic_string_is_stopped() {
    let p = single_problem(&[("node.rhai", "let s = \"x\";\nloop { s += s; }\n[]")]);
    assert!(p.message.contains("archy's memory limit of 64 MiB"), "{p}");
    assert_eq!(line(&p), Some(("node.rhai", 2)));
}

#[test]
fn gigantic_array_is_stopped() {
    let p = single_problem(&[("node.rhai", "let a = [0];\nloop { a += a; }\n[]")]);
    assert!(p.message.contains("archy's memory limit of 64 MiB"), "{p}");
    assert_eq!(line(&p), Some(("node.rhai", 2)));
}

#[test]
fn a_map_filled_with_copies_is_stopped() {
    let p = single_problem(&[(
        "node.rhai",
        "let a = [];\na.pad(100000, 0);\nlet m = #{};\nfor i in 0..100000 {\n    m[`k${i}`] = a;\n}\n[]",
    )]);
    assert!(p.message.contains("archy's memory limit of 64 MiB"), "{p}");
    assert_eq!(line(&p), Some(("node.rhai", 5)));
}

#[test]
fn padding_past_the_memory_limit_is_refused_before_it_happens() {
    for (text, what) in [
        (
            "let a = [];\na.pad(1000000000000, 0);\n[]",
            "padding an array",
        ),
        (
            "let s = \"\";\ns.pad(1000000000000, \"x\");\n[]",
            "padding a string",
        ),
        (
            "let s = \"\";\ns.pad(1000000000000, 'x');\n[]",
            "padding a string",
        ),
    ] {
        let p = single_problem(&[("node.rhai", text)]);
        assert!(p.message.starts_with(what), "{p}");
        assert!(
            p.message.contains("would exceed archy's memory limit"),
            "{p}"
        );
        assert_eq!(line(&p), Some(("node.rhai", 2)));
    }
}

#[test]
fn replacing_past_the_memory_limit_is_refused_before_it_happens() {
    let p = single_problem(&[(
        "node.rhai",
        "let s = \"\";\ns.pad(2000, \"a\");\nlet t = \"\";\nt.pad(100000, \"b\");\ns.replace(\"a\", t);\n[]",
    )]);
    assert!(p.message.starts_with("replacing in a string"), "{p}");
    assert_eq!(line(&p), Some(("node.rhai", 5)));
}

#[test]
fn padding_and_replacing_still_work() {
    let ev = eval_mem(&[(
        "node.rhai",
        "let s = \"ab\";\ns.pad(5, \"xy\");\nlet t = \"q\";\nt.pad(3, 'z');\nlet a = [1];\na.pad(3, 0);\nlet r = \"a-b-c\";\nr.replace(\"-\", \"--\");\n[file(\"/etc/x\", #{ text: `${s} ${t} ${a} ${r}` })]",
    )])
    .expect("evaluates");
    let text = ev.graph.blobs.values().next().expect("one text");
    assert_eq!(text.as_ref(), "abxyx qzz [1, 0, 0] a--b--c");
}

#[test]
fn a_slow_loop_is_stopped_by_the_wall_time_limit() {
    let limits = Limits {
        wall_time: Duration::from_millis(300),
        ..test_limits()
    };
    // Few operations, each copying a megabyte: the wall time runs out long
    // before the operations do.
    let problems = eval_with(
        &[(
            "node.rhai",
            "let s = \"\";\ns.pad(1000000, \"x\");\nfor i in 0..2000000 { let t = s + s; }\n[]",
        )],
        &limits,
    )
    .expect_err("must fail");
    assert_eq!(problems.len(), 1, "{problems:#?}");
    let p = &problems[0];
    assert!(p.message.contains("wall-time limit of 0.3 s"), "{p}");
    assert!(
        p.hint
            .as_deref()
            .is_some_and(|h| h.contains("--eval-timeout")),
        "{p}"
    );
    assert_eq!(line(p), Some(("node.rhai", 3)));
}

#[test]
fn file_texts_are_bounded_one_by_one_and_together() {
    let limits = Limits {
        file_text_bytes: 10,
        text_bytes: 25,
        ..test_limits()
    };
    let node = "[\n    file(\"/etc/a\", #{ text: \"0123456789ab\" }),\n    file(\"/etc/b\", #{ text: \"0123456789\" }),\n    file(\"/etc/c\", #{ text: \"0123456789\" }),\n    file(\"/etc/d\", #{ text: \"0123456789\" }),\n    file(\"/etc/e\", #{ text: \"0123456789\" }),\n]";
    let problems = eval_with(&[("node.rhai", node)], &limits).expect_err("must fail");
    let found: Vec<(u32, &str)> = problems
        .iter()
        .map(|p| (p.at.as_ref().map_or(0, |a| a.line), p.message.as_str()))
        .collect();
    assert_eq!(found.len(), 2, "{problems:#?}");
    assert_eq!(found[0].0, 2);
    assert!(
        found[0]
            .1
            .contains("over archy's limit of 10 bytes for one file's text"),
        "{problems:#?}"
    );
    // b and c fit (20 bytes); d goes past 25; e is not reported again.
    assert_eq!(found[1].0, 5);
    assert!(
        found[1].1.contains("past archy's limit of 25 bytes in all"),
        "{problems:#?}"
    );
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
        (l.wall_time, l.memory_bytes, l.file_text_bytes, l.text_bytes),
        (Duration::from_secs(2), 1 << 30, 16 << 20, 256 << 20)
    );
    assert_eq!((l.modules, l.variables, l.functions), (256, 10_000, 10_000));
}

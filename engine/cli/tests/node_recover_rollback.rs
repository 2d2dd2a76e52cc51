//! Crash safety of the way back, on a real node: a switch fails (a start
//! job, or a health check), and archy is killed with SIGKILL at each step
//! of the rollback that follows; an `archy rollback` and an `archy ota
//! apply` are killed midway, and random kills hit all of them. The
//! next `archy recover` must finish the rollback: the node on the old
//! generation, the failed one recorded failed and never committed, no temp
//! file left. Needs root; see `support/node.rs`.

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::archy_node::ArchyNode;
use support::node::TestNode;

const NODE: &str = r#"import "stdlib/systemd" as systemd;
import "stdlib/archy" as archy;
[
    archy::units(),
    file("/etc/hello/hello.conf", #{ text: "TEXT\n" }),
    systemd::service("demo-a", #{ exec: "/bin/sh -c 'cat /etc/hello/hello.conf; exec sleep infinity'" }),
    health_unit("demo-a.service"),
    EXTRA
]"#;

/// A oneshot unit that generation B has and D removes.
const ONESHOT: &str = r#"unit("demo-once.service", #{ Service: #{ Type: "oneshot", ExecStart: "/bin/true" }, Install: #{ WantedBy: "multi-user.target" } }),"#;
/// A unit whose start job fails.
const BAD_START: &str = r#"unit("demo-bad.service", #{ Service: #{ Type: "oneshot", ExecStart: "/bin/false" }, Install: #{ WantedBy: "multi-user.target" } }),"#;
/// A health check that never passes.
const BAD_HEALTH: &str = r#"health_cmd(["/bin/false"], #{ within: "1s" }),"#;

fn description(text: &str, extra: &str) -> String {
    NODE.replace("TEXT", text).replace("EXTRA", extra)
}

fn journal(n: &ArchyNode) -> String {
    std::fs::read_to_string(n.node.root_path().join("var/lib/archy/switch.json"))
        .unwrap_or_default()
}

fn journal_json(n: &ArchyNode) -> Option<Value> {
    serde_json::from_str(&journal(n)).ok()
}

/// Starts `archy ARGS` as a transient unit (so it can be killed like a
/// crash would), stopping after the crash point `point`.
fn archy_paused(n: &ArchyNode, point: &str, args: &[&str]) {
    // The last run's unit goes once it stopped (--collect); wait for that.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        n.node
            .exec(&["systemctl", "reset-failed", "archy-under-test.service"]);
        let load = n.node.exec(&[
            "systemctl",
            "show",
            "-P",
            "LoadState",
            "archy-under-test.service",
        ]);
        if String::from_utf8_lossy(&load.stdout).trim() == "not-found" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "archy-under-test.service stays loaded"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let pause = format!("--setenv=ARCHY_PAUSE_AFTER={point}");
    let mut argv = vec![
        "systemd-run",
        &pause,
        "--unit=archy-under-test",
        "--collect",
        "/usr/local/bin/archy",
    ];
    argv.extend_from_slice(args);
    n.node.exec_ok(&argv);
}

/// Whether archy-under-test still runs. Asked with retries: while archy
/// has systemd reload, a query can fail, which is not an answer.
fn running(n: &ArchyNode) -> bool {
    for _ in 0..50 {
        let o = n.node.exec(&[
            "systemctl",
            "show",
            "-P",
            "ActiveState",
            "archy-under-test.service",
        ]);
        let state = String::from_utf8_lossy(&o.stdout).trim().to_string();
        if o.status.success() && !state.is_empty() {
            return matches!(
                state.as_str(),
                "active" | "activating" | "deactivating" | "reloading"
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("systemd does not say whether archy-under-test runs");
}

/// Whether the journal shows the crash point `point` reached: for a
/// rollback's (`rollback STEP`) in its `rollback` part, else in the
/// switch's own.
fn reached(j: &Value, point: &str) -> bool {
    let (leg, step) = match point.strip_prefix("rollback ") {
        Some(step) => (&j["rollback"], step),
        None => (j, point),
    };
    if leg.is_null() {
        return false;
    }
    match step {
        "planned" => leg["plan"].is_object(),
        "applying" | "health-gate" => {
            leg["phase"] == step || (step == "applying" && leg["phase"] == "health-gate")
        }
        _ => leg["done"]
            .as_array()
            .is_some_and(|d| d.iter().any(|s| s == step)),
    }
}

/// Waits until archy paused at `point`, then kills it with SIGKILL.
fn kill_at(n: &ArchyNode, point: &str) {
    assert!(
        try_kill_at(n, point),
        "archy ended before it reached {point:?}: {}",
        journal(n)
    );
}

/// [`kill_at`], but `false` when archy ended first (a rollback whose plan,
/// made from what systemd says then, has no such step this time).
fn try_kill_at(n: &ArchyNode, point: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(90);
    while !journal_json(n).is_some_and(|j| reached(&j, point)) {
        if !running(n) && !journal_json(n).is_some_and(|j| reached(&j, point)) {
            eprintln!(
                "archy ended before it reached {point:?}: {}\n{}",
                journal(n),
                n.node
                    .exec(&[
                        "journalctl",
                        "--no-pager",
                        "-o",
                        "cat",
                        "-u",
                        "archy-under-test.service"
                    ])
                    .stdout
                    .escape_ascii()
            );
            return false;
        }
        assert!(
            Instant::now() < deadline,
            "never reached {point:?}: {}",
            journal(n)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    n.node.exec_ok(&[
        "systemctl",
        "kill",
        "--signal=KILL",
        "archy-under-test.service",
    ]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while running(n) {
        assert!(Instant::now() < deadline, "archy did not die");
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

fn current(n: &ArchyNode) -> String {
    n.node
        .exec_ok(&["readlink", "/var/lib/archy/current"])
        .trim()
        .to_string()
}

fn conf(n: &ArchyNode) -> String {
    n.node.exec_ok(&["cat", "/etc/hello/hello.conf"])
}

fn out(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The line of `archy generations` for generation `number`.
fn generation_line(n: &ArchyNode, number: &str) -> String {
    let list = out(&n.archy(&["generations"]));
    list.lines()
        .find(|l| l.split_whitespace().next() == Some(number))
        .unwrap_or_else(|| panic!("no generation {number}: {list}"))
        .to_string()
}

/// What every recovery must leave: the journal gone, `archy status`
/// happy, no temp file of a write anywhere archy writes.
fn assert_settled(n: &ArchyNode, context: &str) {
    assert!(journal(n).is_empty(), "{context}: the journal must be gone");
    let status = n.archy(&["status"]);
    assert!(status.status.success(), "{context}: {}", out(&status));
    let temps = n
        .node
        .exec_ok(&["find", "/etc", "/var/lib/archy", "-name", ".*.archy-new"]);
    assert!(
        temps.trim().is_empty(),
        "{context}: temp files left: {temps}"
    );
}

/// The rollback's crash points, from its plan in the journal: planned,
/// applying, each stop, files, daemon-reload, each start, the gate.
fn rollback_points(j: &Value) -> Vec<String> {
    let plan = &j["rollback"]["plan"];
    let mut points = vec!["rollback planned".to_string(), "rollback applying".into()];
    let units = plan["units"].as_array().cloned().unwrap_or_default();
    let step = |u: &Value| {
        format!(
            "rollback {} {}",
            u["op"].as_str().unwrap_or_default(),
            u["unit"].as_str().unwrap_or_default()
        )
    };
    points.extend(units.iter().filter(|u| u["op"] == "stop").map(step));
    points.push("rollback files".into());
    if plan["unit_files_changed"]
        .as_array()
        .is_some_and(|a| !a.is_empty())
    {
        points.push("rollback daemon-reload".into());
    }
    points.extend(
        units
            .iter()
            .filter(|u| matches!(u["op"].as_str(), Some("start" | "restart" | "reload")))
            .filter(|u| u["with"].is_null())
            .map(step),
    );
    points.push("rollback health-gate".into());
    points
}

/// Generation `failing` fails (switched to from `good`), and archy is
/// killed at every step of the rollback: recovery ends each time on the
/// good generation.
fn kill_every_rollback_step(n: &ArchyNode, good: &str, good_text: &str, failing: &str) {
    // Learn the rollback's steps from its plan.
    n.write(failing);
    archy_paused(n, "rollback planned", &["switch", "/etc/archy/node.rhai"]);
    kill_at(n, "rollback planned");
    let j = journal_json(n).expect("a journal");
    assert_eq!(j["phase"], "rolling-back", "{j}");
    let points = rollback_points(&j);
    let failed = j["to"].to_string();
    let recovered = n.archy(&["recover"]);
    assert_eq!(current(n), good, "{}", out(&recovered));
    assert_settled(n, "rollback planned");
    for point in &points[1..] {
        n.write(failing);
        archy_paused(n, point, &["switch", "/etc/archy/node.rhai"]);
        if try_kill_at(n, point) {
            let j = journal_json(n).expect("a journal");
            assert_eq!(j["phase"], "rolling-back", "{point}: {j}");
        }
        let recovered = n.archy(&["recover"]);
        assert_eq!(
            current(n),
            good,
            "{point}: recovery must finish the rollback: {}",
            out(&recovered)
        );
        assert_eq!(conf(n), format!("{good_text}\n"), "{point}");
        assert!(n.active("demo-a.service"), "{point}");
        assert_settled(n, point);
        let line = generation_line(n, &failed);
        assert!(line.contains("failed"), "{point}: {line}");
    }
}

#[test]
fn a_rollback_killed_at_any_step_is_finished_by_recovery() {
    if !TestNode::available() {
        return;
    }
    let n = ArchyNode::up("recover-rb");
    n.write(&description("B", ONESHOT));
    let o = n.archy(&["switch", "/etc/archy/node.rhai"]);
    assert!(o.status.success(), "{}", out(&o));
    let b = current(&n);

    // (a) A start job of D fails; D also removes a oneshot unit.
    kill_every_rollback_step(&n, &b, "B", &description("D", BAD_START));
    assert!(
        n.node
            .root_path()
            .join("etc/systemd/system/demo-once.service")
            .exists()
    );
    assert!(
        !n.node
            .root_path()
            .join("etc/systemd/system/demo-bad.service")
            .exists()
    );

    // (b) A health check of H fails.
    kill_every_rollback_step(&n, &b, "B", &description("H", BAD_HEALTH));

    // An `archy rollback` killed midway: recovery leaves the node on the
    // generation it was on or the one it went back to, never between.
    n.write(&description("C", ONESHOT));
    let o = n.archy(&["switch", "/etc/archy/node.rhai"]);
    assert!(o.status.success(), "{}", out(&o));
    let c = current(&n);
    for point in ["files", "restart demo-a.service", "health-gate"] {
        archy_paused(&n, point, &["rollback"]);
        kill_at(&n, point);
        let recovered = n.archy(&["recover"]);
        let now = current(&n);
        let text = if now == b {
            "B"
        } else {
            assert_eq!(now, c, "{point}: {}", out(&recovered));
            "C"
        };
        assert_eq!(conf(&n), format!("{text}\n"), "{point}");
        assert_settled(&n, &format!("archy rollback, {point}"));
        // Back to C for the next round, if recovery committed B.
        if now == b {
            let o = n.archy(&["switch", "/etc/archy/node.rhai"]);
            assert!(o.status.success(), "{}", out(&o));
        }
    }
}

/// The failed-unit gate: with no health check of its own, a service that
/// dies right after its start job fails the switch, which is rolled back;
/// `health: false` lets it through.
#[test]
fn a_unit_that_dies_after_its_start_fails_the_switch() {
    if !TestNode::available() {
        return;
    }
    let n = ArchyNode::up("deadunit");
    let base = r#"import "stdlib/systemd" as systemd;
import "stdlib/archy" as archy;
[
    archy::units(),
    file("/etc/hello/hello.conf", #{ text: "TEXT\n" }),
    systemd::service("demo-a", #{ exec: "/bin/sleep infinity" }),
    EXTRA
]"#;
    let desc = |text: &str, extra: &str| base.replace("TEXT", text).replace("EXTRA", extra);
    n.write(&desc("one", ""));
    let o = n.archy(&["switch", "/etc/archy/node.rhai"]);
    assert!(o.status.success(), "{}", out(&o));
    let one = current(&n);

    let dies = r#"systemd::service("demo-dies", #{ exec: "/bin/sh -c 'sleep 0.5; echo dying; exit 1'", type: "simple", restart_sec: "1s" HEALTH }),"#;
    n.write(&desc("two", &dies.replace("HEALTH", "")));
    let o = n.archy(&["switch", "/etc/archy/node.rhai"]);
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    let text = out(&o);
    assert!(text.contains("demo-dies.service"), "{text}");
    assert!(text.contains("dying"), "the journal tail: {text}");
    assert_eq!(current(&n), one);
    assert_eq!(conf(&n), "one\n");

    n.write(&desc("three", &dies.replace("HEALTH", ", health: false")));
    let o = n.archy(&["switch", "/etc/archy/node.rhai"]);
    assert!(o.status.success(), "{}", out(&o));
    assert_eq!(conf(&n), "three\n");

    // Item 11: a unit stopped by hand is started by a switch to the
    // generation that runs; with nothing to do, one line and no journal.
    n.write(&desc("four", ""));
    let o = n.archy(&["switch", "/etc/archy/node.rhai"]);
    assert!(o.status.success(), "{}", out(&o));
    n.node.exec_ok(&["systemctl", "stop", "demo-a.service"]);
    let o = n.archy(&["switch", "/etc/archy/node.rhai"]);
    assert!(o.status.success(), "{}", out(&o));
    assert!(n.active("demo-a.service"), "{}", out(&o));
    let o = n.archy(&["switch", "/etc/archy/node.rhai"]);
    assert!(o.status.success(), "{}", out(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim().lines().count(),
        1,
        "{}",
        out(&o)
    );
}

/// A small deterministic generator for the random kill trial.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What a generation the random trial made shows on the node: the text
/// of a description's config file, or the page of a release.
#[derive(Debug, Clone)]
enum Shows {
    Conf(String),
    Page(String),
}

/// Random kill points over a switch, a failing switch (start job, health
/// check), `archy rollback` and `archy ota apply` (a good release, and one
/// that fails its health check): each trial kills archy after a random
/// delay, recovers, and the node must be exactly on the old or the new
/// generation (a failing one: the old), with no release left pending.
/// `ARCHY_KILL_TRIALS` sets how many (default 8), `ARCHY_KILL_SEED` the
/// seed (printed).
#[test]
fn random_kills_end_in_the_old_or_the_new_generation() {
    use support::releases::{self, Publisher};
    if !TestNode::available() {
        return;
    }
    let trials: u64 = std::env::var("ARCHY_KILL_TRIALS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(8);
    let seed: u64 = std::env::var("ARCHY_KILL_SEED")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
                | 1
        });
    println!("random kill trial: {trials} trials, ARCHY_KILL_SEED={seed}");
    let mut rng = Rng(seed);
    let publisher = Publisher::new();
    let n = releases::node_with_mirrors("killrand", &publisher);
    let mut shows = std::collections::BTreeMap::new();
    for text in ["K0", "K1"] {
        n.write(&description(text, ONESHOT));
        let o = n.archy(&["switch", "/etc/archy/node.rhai"]);
        assert!(o.status.success(), "{}", out(&o));
        shows.insert(current(&n), Shows::Conf(text.to_string()));
    }
    for trial in 0..trials {
        let old = current(&n);
        let kind = rng.below(6);
        let text = format!("K{}", trial + 2);
        // Releases rise with the trial, as anti-downgrade wants.
        let version = format!("1.{}.0", trial + 1);
        let mut delay_ms = 6000;
        let (args, new_shows, may_commit): (Vec<String>, Option<Shows>, bool) = match kind {
            0 => {
                n.write(&description(&text, ONESHOT));
                (
                    vec!["switch".into(), "/etc/archy/node.rhai".into()],
                    Some(Shows::Conf(text.clone())),
                    true,
                )
            }
            1 => {
                n.write(&description(&text, BAD_START));
                (
                    vec!["switch".into(), "/etc/archy/node.rhai".into()],
                    None,
                    false,
                )
            }
            2 => {
                n.write(&description(&text, BAD_HEALTH));
                (
                    vec!["switch".into(), "/etc/archy/node.rhai".into()],
                    None,
                    false,
                )
            }
            3 => (vec!["rollback".into()], None, true),
            _ => {
                // An OTA apply fetches, verifies and unpacks before its
                // switch, and a bad release waits out its check: later
                // kill points need a longer reach.
                delay_ms = 12000;
                let bad = kind == 5;
                let name = format!("r{version}.tar.gz");
                releases::publish(&n, &publisher.release(&version, bad), &name);
                let page = format!("release {version}");
                (
                    releases::apply_args(&name)[1..].to_vec(),
                    (!bad).then_some(Shows::Page(page)),
                    !bad,
                )
            }
        };
        let delay = Duration::from_millis(rng.below(delay_ms));
        let context =
            format!("trial {trial} (seed {seed}): {args:?} {text}, killed after {delay:?}");
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        archy_paused(&n, "", &argv);
        std::thread::sleep(delay);
        if running(&n) {
            n.node.exec(&[
                "systemctl",
                "kill",
                "--signal=KILL",
                "archy-under-test.service",
            ]);
            let deadline = Instant::now() + Duration::from_secs(20);
            while running(&n) {
                assert!(Instant::now() < deadline, "{context}: archy did not die");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let recovered = n.archy(&["recover"]);
        let now = current(&n);
        if now != old {
            assert!(
                may_commit,
                "{context}: a failing generation was committed: {}",
                out(&recovered)
            );
            if let Some(s) = &new_shows {
                shows.insert(now.clone(), s.clone());
            }
        }
        match shows
            .get(&now)
            .unwrap_or_else(|| panic!("{context}: on {now}, which no trial made current"))
        {
            Shows::Conf(text) => assert_eq!(conf(&n), format!("{text}\n"), "{context}"),
            Shows::Page(page) => assert_eq!(&releases::page(&n), page, "{context}"),
        }
        assert_settled(&n, &context);
        if kind >= 4 {
            let status: Value =
                serde_json::from_str(&n.node.exec_ok(&["archy", "ota", "status", "--json"]))
                    .expect("ota status --json");
            assert!(status["pending"].is_null(), "{context}: {status}");
        }
        println!("{context}: on {now}");
    }
}

/// `archy ota apply` of a release that fails its health check, killed
/// during its rollback (after the files, and in the rollback's own gate):
/// recovery finishes the rollback, the node runs the release before, and
/// the bad release is recorded failed, never installed.
#[test]
fn an_ota_apply_killed_during_its_rollback_is_finished() {
    use support::releases::{self, Publisher};
    if !TestNode::available() {
        return;
    }
    let publisher = Publisher::new();
    let r1 = publisher.release("1.0.0", false);
    let bad = [
        ("3.0.0", publisher.release("3.0.0", true), "rollback files"),
        (
            "4.0.0",
            publisher.release("4.0.0", true),
            "rollback health-gate",
        ),
    ];
    let n = releases::node_with_mirrors("ota-rb", &publisher);
    releases::publish(&n, &r1, "r1.tar.gz");
    let ota_status = |n: &ArchyNode| -> Value {
        serde_json::from_str(&n.node.exec_ok(&["archy", "ota", "status", "--json"]))
            .expect("ota status --json")
    };
    let apply = releases::apply_args("r1.tar.gz");
    let argv: Vec<&str> = apply.iter().map(String::as_str).collect();
    n.node.exec_ok(&argv);
    assert_eq!(releases::page(&n), "release 1.0.0");
    let good = current(&n);
    let mut failed_so_far = Vec::new();
    for (version, bundle, point) in &bad {
        let name = format!("r{version}.tar.gz");
        releases::publish(&n, bundle, &name);
        let apply = releases::apply_args(&name);
        let args: Vec<&str> = apply[1..].iter().map(String::as_str).collect();
        archy_paused(&n, point, &args);
        kill_at(&n, point);
        let j = journal_json(&n).expect("a journal");
        assert_eq!(j["command"], "archy ota apply", "{j}");
        let recovered = n.archy(&["recover"]);
        assert_eq!(current(&n), good, "{point}: {}", out(&recovered));
        assert_eq!(releases::page(&n), "release 1.0.0", "{point}");
        let status = ota_status(&n);
        assert_eq!(status["running"], "1.0.0", "{point}: {status}");
        assert!(status["pending"].is_null(), "{point}: {status}");
        failed_so_far.push(version.to_string());
        let failed: Vec<String> = status["failed"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|f| f["version"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(failed, failed_so_far, "{point}: {status}");
        assert_settled(&n, point);
    }
}

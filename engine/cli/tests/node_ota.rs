//! Over-the-air updates on a real node: signed releases served over HTTP
//! inside the node (a mirror that fails, then one that serves), applied by
//! `archy ota apply` and by archy-ota.service, through the health gate.
//! Release 1 and 2 are good, release 3 fails its health check and is
//! rolled back; archy is killed in the middle of release 2's switch and the
//! boot-time recovery unit leaves the node on a verified release. Needs
//! root; see `support/node.rs`.

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::archy_node::ArchyNode;
use support::node::TestNode;
use support::releases::{self, Publisher};

fn ota_status(n: &ArchyNode) -> Value {
    let text = n.node.exec_ok(&["archy", "ota", "status", "--json"]);
    serde_json::from_str(&text).expect("ota status --json")
}

fn running(n: &ArchyNode) -> String {
    ota_status(n)["running"].as_str().unwrap_or("").to_string()
}

fn failed_versions(n: &ArchyNode) -> Vec<String> {
    ota_status(n)["failed"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|f| f["version"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The node is clean: `archy status` exits 0 and the current generation
/// is good.
fn verified(n: &ArchyNode) {
    let status = n.archy(&["status"]);
    assert!(
        status.status.success(),
        "status: {}{}",
        String::from_utf8_lossy(&status.stdout),
        String::from_utf8_lossy(&status.stderr)
    );
    let generations: Value =
        serde_json::from_str(&n.node.exec_ok(&["archy", "generations", "--json"])).expect("json");
    let current = generations["current"]
        .as_u64()
        .expect("a current generation");
    let record = generations["generations"]
        .as_array()
        .expect("a list")
        .iter()
        .find(|g| g["number"].as_u64() == Some(current))
        .expect("the current generation's record");
    assert_eq!(record["outcome"], "good", "{record}");
}

fn run(n: &ArchyNode, argv: &[String]) -> (i32, String, String, Duration) {
    let args: Vec<&str> = argv.iter().map(String::as_str).collect();
    let start = Instant::now();
    let out = n.node.exec(&args);
    let wall = start.elapsed();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        wall,
    )
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Kills archy-ota.service's archy with SIGKILL, as a crash would, and
/// waits until it is gone.
fn kill_ota_service(n: &ArchyNode) {
    n.node
        .exec_ok(&["systemctl", "kill", "--signal=KILL", "archy-ota.service"]);
    wait_for("archy to die", || {
        !n.node
            .exec(&["systemctl", "is-active", "--quiet", "archy-ota.service"])
            .status
            .success()
    });
}

#[test]
fn releases_switch_roll_back_and_survive_a_kill() {
    if !TestNode::available() {
        return;
    }
    let publisher = Publisher::new();
    let r1 = publisher.release("1.0.0", false);
    let r2 = publisher.release("2.0.0", false);
    let r3 = publisher.release("3.0.0", true);
    let n = releases::node_with_mirrors("ota", &publisher);
    releases::publish(&n, &r1, "r1.tar.gz");
    releases::publish(&n, &r2, "r2.tar.gz");
    releases::publish(&n, &r3, "r3.tar.gz");

    // Release 1, from the second mirror after the first has nothing.
    let (code, out, err, _) = run(&n, &releases::apply_args("r1.tar.gz"));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("release 1.0.0"), "{out}");
    assert!(
        out.contains(releases::GOOD_MIRROR),
        "served by the good mirror: {out}"
    );
    assert_eq!(releases::page(&n), "release 1.0.0");
    assert_eq!(running(&n), "1.0.0");
    verified(&n);
    // node.rhai turned the timer on, with its randomized delay.
    assert_eq!(n.prop("archy-ota.timer", "ActiveState"), "active");
    assert_ne!(n.prop("archy-ota.timer", "RandomizedDelayUSec"), "0");
    let clock_started = n.started_at("clock.service");

    // A download cut short: refused before anything is unpacked.
    let bytes = std::fs::read(&r2).expect("r2");
    let cut = publisher.dir.path().join("cut.tar.gz");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).expect("write");
    n.node.cp(&cut, "/srv/mirror/cut.tar.gz");
    n.node.cp(
        format!("{}.minisig", r2.display()),
        "/srv/mirror/cut.tar.gz.minisig",
    );
    let (code, out, err, _) = run(&n, &releases::apply_args("cut.tar.gz"));
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("truncated"), "{err}");
    assert_eq!(running(&n), "1.0.0");

    // The timer's service applies nothing while updates are held.
    releases::publish(&n, &r2, "stable/latest.tar.gz");
    n.node
        .exec_ok(&["archy", "ota", "hold", "--reason", "test hold"]);
    n.node.exec_ok(&["systemctl", "start", "archy-ota.service"]);
    assert_eq!(releases::page(&n), "release 1.0.0");
    n.node.exec_ok(&["archy", "ota", "unhold"]);

    // Release 2 through archy-ota.service, killed (SIGKILL) right after
    // its files were written; the boot-time recovery unit then leaves the
    // node on release 1 or 2, verified, with nothing pending.
    n.node
        .exec_ok(&["systemctl", "set-environment", "ARCHY_PAUSE_AFTER=files"]);
    n.node
        .exec_ok(&["systemctl", "start", "--no-block", "archy-ota.service"]);
    let journal = || {
        std::fs::read_to_string(n.node.root_path().join("var/lib/archy/switch.json"))
            .unwrap_or_default()
    };
    let files_written = || {
        serde_json::from_str::<Value>(&journal()).is_ok_and(|j| {
            j["done"]
                .as_array()
                .is_some_and(|d| d.iter().any(|s| s == "files"))
        })
    };
    wait_for("the switch to write release 2's files", files_written);
    kill_ota_service(&n);
    n.node
        .exec_ok(&["systemctl", "unset-environment", "ARCHY_PAUSE_AFTER"]);
    assert_eq!(ota_status(&n)["pending"]["version"], "2.0.0");
    n.node
        .exec_ok(&["systemctl", "start", "archy-recover.service"]);
    assert!(journal().is_empty(), "the journal is gone: {}", journal());
    let after_kill = running(&n);
    assert!(
        after_kill == "1.0.0" || after_kill == "2.0.0",
        "on release {after_kill:?}"
    );
    assert_eq!(releases::page(&n), format!("release {after_kill}"));
    assert!(ota_status(&n)["pending"].is_null());
    verified(&n);
    // An interruption is not the release's fault: it may be applied again.
    assert!(failed_versions(&n).is_empty(), "{:?}", failed_versions(&n));

    // Release 2 by hand: only web is restarted.
    if after_kill == "1.0.0" {
        let web_before = n.container_id("web");
        let (code, out, err, wall) = run(&n, &releases::apply_args("r2.tar.gz"));
        assert_eq!(code, 0, "{out}{err}");
        eprintln!("figure: ota apply of release 2 (one app changes) to verified: {wall:?}");
        assert_ne!(n.container_id("web"), web_before, "web was restarted");
    }
    assert_eq!(releases::page(&n), "release 2.0.0");
    assert_eq!(running(&n), "2.0.0");
    verified(&n);

    // Release 3 fails its health check: rolled back to release 2, exit 2,
    // recorded as failed, and refused from then on.
    let (code, out, err, wall) = run(&n, &releases::apply_args("r3.tar.gz"));
    eprintln!("figure: ota apply of a bad release to rolled back: {wall:?}");
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("release 3.0.0"), "{err}");
    assert!(err.contains("/ready"), "names the failing check: {err}");
    assert!(err.contains("not tried again"), "{err}");
    assert_eq!(releases::page(&n), "release 2.0.0");
    assert_eq!(running(&n), "2.0.0");
    assert_eq!(failed_versions(&n), vec!["3.0.0".to_string()]);
    verified(&n);
    let (code, _, err, _) = run(&n, &releases::apply_args("r3.tar.gz"));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("failed on this node"), "{err}");

    // Release 4, as bad, through the timer's service, killed during its
    // health gate: the boot-time recovery runs the gate again, which
    // fails, and rolls back to release 2.
    let r4 = publisher.release("4.0.0", true);
    releases::publish(&n, &r4, "stable/latest.tar.gz");
    n.node
        .exec_ok(&["systemctl", "start", "--no-block", "archy-ota.service"]);
    wait_for("release 4's health gate", || {
        serde_json::from_str::<Value>(&journal()).is_ok_and(|j| j["phase"] == "health-gate")
    });
    kill_ota_service(&n);
    n.node
        .exec_ok(&["systemctl", "start", "archy-recover.service"]);
    assert!(journal().is_empty(), "the journal is gone: {}", journal());
    assert_eq!(running(&n), "2.0.0");
    assert_eq!(releases::page(&n), "release 2.0.0");
    assert_eq!(
        failed_versions(&n),
        vec!["3.0.0".to_string(), "4.0.0".to_string()]
    );
    verified(&n);

    // A downgrade is refused; clock never restarted through all of this.
    let (code, _, err, _) = run(&n, &releases::apply_args("r1.tar.gz"));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("older than release 2.0.0"), "{err}");
    assert_eq!(n.started_at("clock.service"), clock_started);
}

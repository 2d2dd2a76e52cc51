//! The examples `examples/observability.rhai` and `examples/scalebox.rhai`
//! switched on a real node, as a node author would: the repository's
//! `examples/` copied to `/etc/archy/examples`, then edited there the way an
//! author edits a description, and switched again. Needs root; see
//! `support/node.rs`.

mod support;

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use support::archy_node::ArchyNode;
use support::node::TestNode;
use support::parity::Switched;
use support::wait::wait_for;

const OBSERVABILITY: &str = "/etc/archy/examples/observability.rhai";
const SCALEBOX: &str = "/etc/archy/examples/scalebox.rhai";

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A node with archy, `stdlib/` and the repository's `examples/`.
fn node_with_examples(prefix: &str) -> ArchyNode {
    let n = ArchyNode::up(prefix);
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    n.node.cp(repo.join("examples"), "/etc/archy/examples");
    n
}

/// The repository's text of `examples/NAME`.
fn example(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `text` with `from`, which it holds exactly once, replaced by `to`.
#[track_caller]
fn edited(text: &str, from: &str, to: &str) -> String {
    assert_eq!(
        text.matches(from).count(),
        1,
        "the example no longer holds {from:?} exactly once"
    );
    text.replace(from, to)
}

/// Writes `text` as the node's copy of the example at `path`.
fn write(n: &ArchyNode, path: &str, text: &str) {
    std::fs::write(n.node.root_path().join(path.trim_start_matches('/')), text)
        .expect("write the example");
}

/// `archy switch PATH`, which must succeed.
#[track_caller]
fn switch(n: &ArchyNode, path: &str) -> Switched {
    let out = n.archy(&["switch", path]);
    Switched {
        code: out.status.code(),
        out: text(&out),
    }
    .ok()
}

fn sh(n: &ArchyNode, script: &str) -> String {
    n.node.exec_ok(&["/bin/sh", "-c", script])
}

fn read(n: &ArchyNode, path: &str) -> Option<String> {
    std::fs::read_to_string(n.node.root_path().join(path.trim_start_matches('/'))).ok()
}

// --- observability ---------------------------------------------------------

const ALERT_LOG: &str = "/var/log/obs-alerts.log";
const ENTRY_POINT: &str = "http://127.0.0.1:8480/";
/// How a switch's plan lists the changed alert service it leaves alone.
const LEFT_INACTIVE: &str =
    "obs-alert.service changed, not running: left inactive, its next start reads the change";

/// The lines the alert service has logged so far.
fn alerts(n: &ArchyNode) -> Vec<String> {
    read(n, ALERT_LOG)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// When obs-alert.service last started (systemd's monotonic clock), "0" if
/// it never did.
fn alert_started(n: &ArchyNode) -> String {
    n.prop("obs-alert.service", "ExecMainStartTimestampMonotonic")
}

/// curl's exit code for the public entry point (0: it answered 200, 7:
/// the connection was refused) and what it answered.
fn entry_point(n: &ArchyNode) -> (Option<i32>, String) {
    let out = n
        .node
        .exec(&["curl", "-fsS", "--max-time", "5", ENTRY_POINT]);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[track_caller]
fn assert_open(n: &ArchyNode) {
    let (code, body) = entry_point(n);
    assert_eq!(code, Some(0), "the entry point does not answer");
    assert_eq!(body, "observability: up\n");
}

#[track_caller]
fn assert_refused(n: &ArchyNode) {
    assert_eq!(entry_point(n).0, Some(7), "the entry point is not refused");
}

/// The node's clock just before `timer`'s next elapse was read, and that
/// elapse, in seconds since the epoch, with the elapse's time of day on
/// the node's clock (`HH:MM:SS`).
fn next_elapse(n: &ArchyNode, timer: &str) -> (i64, i64, String) {
    let out = sh(
        n,
        &format!(
            "date +%s; next=$(systemctl show -P NextElapseUSecRealtime {timer}); date -d \"$next\" +%s; date -d \"$next\" +%T"
        ),
    );
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    let seconds = |l: &str| {
        l.parse::<i64>()
            .unwrap_or_else(|_| panic!("{timer}: {out}"))
    };
    (seconds(lines[0]), seconds(lines[1]), lines[2].to_string())
}

/// The service, timer and event families of the example, and its gate:
/// timers armed for their calendars, an alert service that only an alert
/// starts (never a switch, not even when its definition changes), and a
/// public entry point that closes when the proxy behind it stops or dies.
#[test]
fn observability_example() {
    if !TestNode::available() {
        return;
    }
    let n = node_with_examples("examples-obs");
    let source = example("observability.rhai");

    // Generation 1: the timers, the path unit and the proxy with its gate
    // are started; the alert service is not (the health gate has already
    // fetched the entry point through the gate).
    let s = switch(&n, OBSERVABILITY);
    s.assert_jobs(&[
        "start obs-sample.timer",
        "start obs-report.timer",
        "start obs-alert.path",
        "start obs-proxy.service",
        "start obs-gate.service",
        "start archy-recover.service",
        "start archy-reconcile.service",
        "start archy-reconcile.timer",
    ]);
    for unit in [
        "obs-alert.service",
        "obs-sample.service",
        "obs-report.service",
    ] {
        assert!(
            s.left_alone()
                .contains(&format!("{unit} no [Install]: started by what needs it")),
            "{unit}:\n{}",
            s.out
        );
    }
    assert_eq!(alert_started(&n), "0", "a switch started the alert service");
    assert!(alerts(&n).is_empty());
    assert_eq!(n.prop("obs-alert.path", "SubState"), "waiting");
    assert_open(&n);

    // The timers are armed: the daily report for the next 10:00, within a
    // day, persistent; the sample for the next minute.
    assert!(n.active("obs-report.timer") && n.active("obs-sample.timer"));
    assert_eq!(n.prop("obs-report.timer", "Persistent"), "yes");
    assert_eq!(n.prop("obs-sample.timer", "Persistent"), "no");
    let calendar = n.prop("obs-report.timer", "TimersCalendar");
    assert!(calendar.contains("OnCalendar=*-*-* 10:00:00"), "{calendar}");
    let (now, next, at) = next_elapse(&n, "obs-report.timer");
    assert!(now <= next && next <= now + 86_400, "{now} {next}");
    assert_eq!(at, "10:00:00");
    // Read the clock, then the timer: a minute boundary in between makes
    // the next elapse up to 62 s away.
    let (now, next, at) = next_elapse(&n, "obs-sample.timer");
    assert!(now <= next && next <= now + 62, "{now} {next}");
    assert!(at.ends_with(":00"), "the sample is due at {at}");

    // What the timers run works: a sample of the open entry point, and a
    // report.
    sh(&n, "systemctl start obs-sample.service obs-report.service");
    let samples = read(&n, "/var/lib/observability/samples.log").expect("samples.log");
    assert!(
        samples.lines().last().is_some_and(|l| l.ends_with(" up")),
        "{samples}"
    );
    let day = sh(&n, "date +%F");
    let report = read(
        &n,
        &format!("/var/lib/observability/reports/{}.txt", day.trim()),
    )
    .expect("the report");
    assert!(report.starts_with("report of "), "{report}");
    assert!(report.contains("samples up:"), "{report}");
    // Nothing spooled an alert meanwhile.
    assert_eq!(alert_started(&n), "0");

    // The alert script changes: the switch writes it and starts nothing.
    let v2 = edited(&source, " alert $(basename", " alert v2 $(basename");
    write(&n, OBSERVABILITY, &v2);
    let s = switch(&n, OBSERVABILITY);
    s.assert_says("update   file   /usr/local/lib/observability/alert");
    assert_eq!(
        s.ops_of("obs-alert.service"),
        Vec::<String>::new(),
        "{}",
        s.out
    );
    assert!(
        s.left_alone().contains(&LEFT_INACTIVE.to_string()),
        "{}",
        s.out
    );
    assert_eq!(alert_started(&n), "0", "a switch started the alert service");

    // The event: an alert in the spool starts it, and it reads the change.
    sh(
        &n,
        "echo 'disk nearly full' > /var/lib/observability/t && mv /var/lib/observability/t /var/spool/obs-alerts/disk",
    );
    wait_for("the alert to be handed on", 10, || alerts(&n).len() == 1);
    let line = &alerts(&n)[0];
    assert!(line.ends_with(" alert v2 disk: disk nearly full"), "{line}");
    wait_for("the spool to be empty", 5, || {
        sh(&n, "ls -A /var/spool/obs-alerts").is_empty()
    });
    wait_for("obs-alert.service to finish", 5, || {
        n.prop("obs-alert.service", "ActiveState") == "inactive"
    });
    let ran = alert_started(&n);
    assert_ne!(ran, "0");

    // Changed again after it ran: still no job, no run.
    let v3 = edited(&source, " alert $(basename", " alert v3 $(basename");
    write(&n, OBSERVABILITY, &v3);
    let s = switch(&n, OBSERVABILITY);
    s.assert_says("update   file   /usr/local/lib/observability/alert");
    assert_eq!(
        s.ops_of("obs-alert.service"),
        Vec::<String>::new(),
        "{}",
        s.out
    );
    assert!(
        s.left_alone().contains(&LEFT_INACTIVE.to_string()),
        "{}",
        s.out
    );
    assert_eq!(alert_started(&n), ran, "a switch ran the alert service");
    assert_eq!(alerts(&n).len(), 1);

    // The proxy stops: systemd stops its gate, the public port is refused,
    // and the next sample raises an alert.
    sh(&n, "systemctl stop obs-proxy.service");
    assert_eq!(n.prop("obs-gate.service", "ActiveState"), "inactive");
    assert_refused(&n);
    sh(&n, "systemctl start obs-sample.service");
    wait_for("the alert about the entry point", 10, || {
        alerts(&n)
            .iter()
            .any(|l| l.contains(" alert v3 entry-point-") && l.contains(":8480 does not answer"))
    });

    // Started again, the proxy pulls its gate in ([Install] WantedBy= of
    // the gate) and the port answers. (systemctl waits for the proxy's
    // job only; the gate's is ordered after it.)
    sh(&n, "systemctl start obs-proxy.service");
    wait_for("the gate to open", 5, || n.active("obs-gate.service"));
    assert_open(&n);

    // The proxy dies: BindsTo= stops the gate at once, while the proxy
    // waits to be restarted (PartOf= would leave the gate open onto
    // nothing); systemd restarts the proxy 5 s later (Restart=on-failure),
    // and the gate with it.
    let gate = n.prop("obs-gate.service", "MainPID");
    sh(&n, "systemctl kill --signal=KILL obs-proxy.service");
    wait_for("the gate to close", 2, || {
        n.prop("obs-gate.service", "ActiveState") == "inactive"
    });
    assert_refused(&n);
    assert_eq!(
        n.prop("obs-proxy.service", "SubState"),
        "auto-restart",
        "the gate closed only once the proxy was back"
    );
    wait_for("the gate to open again", 15, || {
        entry_point(&n).0 == Some(0)
    });
    assert!(n.active("obs-proxy.service") && n.active("obs-gate.service"));
    assert_ne!(n.prop("obs-gate.service", "MainPID"), gate);
    assert_eq!(n.prop("obs-proxy.service", "NRestarts"), "1");

    // The node is as its generation says.
    let out = n.archy(&["status"]);
    assert!(out.status.success(), "status:\n{}", text(&out));
}

// --- scalebox --------------------------------------------------------------

const SCALEBOX_CONFIG: &str = "/etc/scalebox/config";
const SCALEBOX_PROGRAM: &str = "/etc/archy/examples/scalebox/scaleboxd";
const SCALEBOX_SECRET: &str = "/var/lib/archy/secrets/scalebox-token";

fn scalebox_pid(n: &ArchyNode) -> String {
    n.prop("scalebox.service", "MainPID")
}

/// The daemon with its secret token: the config is 0600 and holds the
/// secret's value, which reaches the daemon's environment and no output or
/// store object of archy's; systemd restarts the daemon about 5 s after
/// it is killed; a new binary restarts exactly scalebox.service.
#[test]
fn scalebox_example() {
    if !TestNode::available() {
        return;
    }
    let n = node_with_examples("examples-scalebox");
    let source = example("scalebox.rhai");

    let s = switch(&n, SCALEBOX);
    assert!(s.ops_of("scalebox.service") == ["start"], "{}", s.out);
    assert!(n.active("scalebox.service"));
    assert_eq!(n.prop("scalebox.service", "Restart"), "always");
    assert_eq!(n.prop("scalebox.service", "RestartUSec"), "5s");
    assert_eq!(n.prop("scalebox.service", "User"), "scalebox");
    for key in ["After", "Wants"] {
        let deps = n.prop("scalebox.service", key);
        assert!(deps.contains("network-online.target"), "{key}={deps}");
    }

    // The token: the secret's value, in a 0600 file of root's, and in the
    // daemon's environment; nowhere in what archy printed or stored.
    let token = read(&n, SCALEBOX_SECRET).expect("the secret");
    assert_eq!(token.len(), 48, "{SCALEBOX_SECRET}");
    let stat = sh(&n, &format!("stat -c '%a %U %G' {SCALEBOX_CONFIG}"));
    assert_eq!(stat.trim(), "600 root root");
    assert_eq!(
        read(&n, SCALEBOX_CONFIG).as_deref(),
        Some(format!("SCALEBOX_TOKEN={token}\n").as_str())
    );
    let pid = scalebox_pid(&n);
    let environ = sh(&n, &format!("tr '\\0' '\\n' < /proc/{pid}/environ"));
    assert!(
        environ
            .lines()
            .any(|l| l == format!("SCALEBOX_TOKEN={token}")),
        "the daemon's environment lacks the token"
    );
    assert!(!s.out.contains(&token), "archy switch printed the token");
    let stored = n.node.exec(&[
        "grep",
        "-rqF",
        &token,
        "/var/lib/archy/store",
        "/var/lib/archy/generations",
    ]);
    assert_eq!(stored.status.code(), Some(1), "the token is in the store");
    assert_eq!(
        read(&n, "/run/scalebox/status").as_deref(),
        Some(format!("version=1\npid={pid}\n").as_str())
    );

    // Killed, the daemon is started again by systemd after RestartSec=5.
    let killed = Instant::now();
    sh(&n, &format!("kill -KILL {pid}"));
    wait_for("scalebox.service to run again", 15, || {
        let now = scalebox_pid(&n);
        now != "0" && now != pid && n.active("scalebox.service")
    });
    let after = killed.elapsed();
    assert!(
        after >= Duration::from_millis(4_500) && after < Duration::from_secs(12),
        "restarted after {after:?}"
    );
    assert_eq!(n.prop("scalebox.service", "NRestarts"), "1");

    // A new binary: the author changes the program and declares its new
    // hash; exactly scalebox.service restarts, and the new one runs from
    // a link into the store.
    let pid = scalebox_pid(&n);
    let program = edited(&example("scalebox/scaleboxd"), "VERSION=1\n", "VERSION=2\n");
    write(&n, SCALEBOX_PROGRAM, &program);
    let old_hash = blake3::hash(example("scalebox/scaleboxd").as_bytes())
        .to_hex()
        .to_string();
    let new_hash = blake3::hash(program.as_bytes()).to_hex().to_string();
    write(&n, SCALEBOX, &edited(&source, &old_hash, &new_hash));
    let s = switch(&n, SCALEBOX);
    s.assert_jobs(&["restart scalebox.service"]);
    assert_eq!(
        s.jobs()[0].2,
        "reads /usr/local/bin/scaleboxd, which changed",
        "{}",
        s.out
    );
    assert!(!s.out.contains(&token), "archy switch printed the token");
    let new = scalebox_pid(&n);
    assert_ne!(new, pid);
    assert_eq!(
        read(&n, "/run/scalebox/status").as_deref(),
        Some(format!("version=2\npid={new}\n").as_str())
    );
    assert_eq!(sh(&n, "cat /usr/local/bin/scaleboxd"), program);
    let target = sh(&n, "readlink /usr/local/bin/scaleboxd");
    assert!(
        target.starts_with(&format!("/var/lib/archy/store/{new_hash}")),
        "{target}"
    );
    assert_eq!(
        sh(&n, "stat -L -c '%a %U' /usr/local/bin/scaleboxd").trim(),
        "555 root"
    );

    let out = n.archy(&["status"]);
    assert!(out.status.success(), "status:\n{}", text(&out));
    assert!(!text(&out).contains(&token));
}

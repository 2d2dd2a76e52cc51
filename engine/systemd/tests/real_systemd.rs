//! `SystemdBus` against the real systemd (257) of a disposable Debian 13
//! node, reached from outside: zbus on this machine connects to the node's
//! system bus through `/proc/PID/root/run/dbus/system_bus_socket`. Needs
//! root; see `engine/cli/tests/support/node.rs`.
//!
//! One node for the whole file: the scenarios below use units of their own
//! and run side by side, on one shared connection, after one daemon-reload
//! that loads all their unit files.

#![allow(clippy::unwrap_used)] // Helpers of tests, not tests, to clippy.

#[allow(dead_code)] // This file uses only part of the harness.
#[path = "../../cli/tests/support/node.rs"]
mod node;

use std::path::Path;
use std::time::{Duration, Instant};

use archy_systemd::UnitName;
use archy_systemd::{
    ActiveState, Error, JobKind, JobResult, LoadState, ServiceManager, SystemdBus,
};
use node::TestNode;

fn un(name: &str) -> UnitName {
    UnitName::try_from(name).expect("a unit name")
}

/// Long enough for any job here on a loaded CI machine; none takes a second.
const JOB: Duration = Duration::from_secs(60);

/// How long to wait for something the node does on its own.
const PATIENCE: Duration = Duration::from_secs(30);

const UNITS: &[(&str, &str)] = &[
    (
        "often.service",
        "[Service]\nExecStart=/bin/sleep infinity\n",
    ),
    (
        "sleeper.service",
        "[Service]\nExecStart=/bin/sleep infinity\n",
    ),
    (
        "reloadable.service",
        "[Service]\nExecStart=/bin/sleep infinity\nExecReload=/bin/true\n",
    ),
    (
        "fails.service",
        "[Service]\nType=oneshot\nExecStart=/bin/false\n",
    ),
    (
        "hangs.service",
        "[Service]\nType=oneshot\nExecStart=/bin/sleep infinity\n",
    ),
    (
        "loops.service",
        "[Unit]\nStartLimitIntervalSec=0\n\
         [Service]\nExecStart=/bin/false\nRestart=always\nRestartSec=100ms\n",
    ),
];

fn write_unit(root: &Path, name: &str, text: &str) {
    let path = root.join("etc/systemd/system").join(name);
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// Calls `probe` until it gives `Some`, for at most `PATIENCE`; panics
/// saying `what` was awaited and what `probe` last saw.
fn wait_for<T>(what: &str, mut probe: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        match probe() {
            Ok(found) => return found,
            Err(last) if Instant::now() >= deadline => {
                panic!("gave up after {PATIENCE:?} waiting for {what}; last saw: {last}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// One scenario against the node, on the shared connection.
type Scenario = node::Scenario<SystemdBus>;

#[test]
fn systemd_over_the_bus_of_a_real_node() {
    if !TestNode::available() {
        return;
    }
    let started = Instant::now();
    let node = TestNode::up("systemd-bus");
    let root = node.root_path();
    let address = format!("unix:path={}/run/dbus/system_bus_socket", root.display());
    let script = node::script();
    let systemd = SystemdBus::connect_address(&address)
        .unwrap()
        .with_journalctl([
            script.as_os_str(),
            "exec".as_ref(),
            node.name().as_ref(),
            "journalctl".as_ref(),
        ]);
    assert!(systemd.systemd_version().starts_with("257"), "{systemd:?}");
    eprintln!("node up and connected in {:?}", started.elapsed());

    daemon_reload_loads_new_and_changed_unit_files(&systemd, &root);

    for (name, text) in UNITS {
        write_unit(&root, name, text);
    }
    systemd.daemon_reload(JOB).unwrap();

    let scenarios: &[Scenario] = &[
        ("start_restart_stop", start_restart_stop),
        (
            "a_failing_start_fails_and_says_why",
            a_failing_start_fails_and_says_why,
        ),
        (
            "missing_units_are_clear_errors",
            missing_units_are_clear_errors,
        ),
        ("reloads_are_refused_or_run", reloads_are_refused_or_run),
        (
            "restart_loops_count_their_restarts",
            restart_loops_count_their_restarts,
        ),
        (
            "a_job_that_does_not_end_times_out",
            a_job_that_does_not_end_times_out,
        ),
        (
            "reset_failed_lifts_the_start_limit",
            reset_failed_lifts_the_start_limit,
        ),
    ];
    let failed = node::run_scenarios(&systemd, &node, scenarios);
    eprintln!("all scenarios done in {:?}", started.elapsed());
    assert!(
        failed.is_empty(),
        "failed scenarios (see above): {failed:?}"
    );
}

fn daemon_reload_loads_new_and_changed_unit_files(systemd: &SystemdBus, root: &Path) {
    let absent = systemd.unit_state(&un("fresh.service")).unwrap();
    assert_eq!(absent.load_state, LoadState::NotFound, "{absent:?}");
    assert_eq!(absent.active_state, ActiveState::Inactive);
    assert_eq!(absent.fragment_path, "");

    write_unit(
        root,
        "fresh.service",
        "[Service]\nExecStart=/bin/sleep infinity\n",
    );
    systemd.daemon_reload(JOB).unwrap();
    // The reload is over when `daemon_reload` returns: no waiting here.
    let loaded = systemd.unit_state(&un("fresh.service")).unwrap();
    assert_eq!(loaded.load_state, LoadState::Loaded, "{loaded:?}");
    assert_eq!(loaded.fragment_path, "/etc/systemd/system/fresh.service");
    assert_eq!(loaded.unit_file_state, "static");
    assert_eq!((loaded.main_pid, loaded.n_restarts), (0, 0));
    assert!(!loaded.need_daemon_reload);

    // A changed unit file: systemd notices, but only for a unit it keeps
    // loaded (an inactive unit nothing refers to is dropped, and loaded
    // afresh from the new file by the next question about it).
    systemd.start(&un("fresh.service"), JOB).unwrap();
    write_unit(
        root,
        "fresh.service",
        "[Service]\nExecStart=/bin/sleep 1000\n",
    );
    let changed = systemd.unit_state(&un("fresh.service")).unwrap();
    assert!(changed.need_daemon_reload, "{changed:?}");
    systemd.daemon_reload(JOB).unwrap();
    let reloaded = systemd.unit_state(&un("fresh.service")).unwrap();
    assert!(!reloaded.need_daemon_reload, "{reloaded:?}");
    // The running process is the old one, until a restart.
    assert_eq!(reloaded.main_pid, changed.main_pid);
    systemd.stop(&un("fresh.service"), JOB).unwrap();
}

/// The command line of `pid` in the node.
fn cmdline(node: &TestNode, pid: u32) -> String {
    let raw = node.exec_ok(&["cat", &format!("/proc/{pid}/cmdline")]);
    raw.trim_end_matches('\0').replace('\0', " ")
}

/// Restarting a unit more often than `StartLimitBurst=` (5 in 10 s) fails
/// with start-limit-hit, unless its counter is reset before each restart,
/// as a switch does.
fn reset_failed_lifts_the_start_limit(systemd: &SystemdBus, _node: &TestNode) {
    let unit = &un("often.service");
    for _ in 0..8 {
        systemd.reset_failed(unit).unwrap();
        assert_eq!(systemd.restart(unit, JOB).unwrap(), JobResult::Done);
    }
    let hit = (0..8)
        .map(|_| systemd.restart(unit, JOB).unwrap())
        .any(|r| r == JobResult::Failed);
    assert!(
        hit,
        "without reset-failed the start limit should stop the restarts"
    );
    systemd.reset_failed(unit).unwrap();
    systemd.reset_failed(&un("no-such-unit.service")).unwrap();
    systemd.stop(unit, JOB).unwrap();
}

fn start_restart_stop(systemd: &SystemdBus, node: &TestNode) {
    let unit = &un("sleeper.service");
    assert_eq!(systemd.start(unit, JOB).unwrap(), JobResult::Done);
    let up = systemd.unit_state(unit).unwrap();
    assert_eq!(up.active_state, ActiveState::Active, "{up:?}");
    assert_eq!(up.sub_state, "running");
    assert!(up.main_pid > 0, "{up:?}");
    assert_eq!(cmdline(node, up.main_pid), "/bin/sleep infinity");

    // Starting what runs is a job too, done at once, that changes nothing.
    assert_eq!(systemd.start(unit, JOB).unwrap(), JobResult::Done);
    assert_eq!(systemd.unit_state(unit).unwrap().main_pid, up.main_pid);

    assert_eq!(systemd.restart(unit, JOB).unwrap(), JobResult::Done);
    let restarted = systemd.unit_state(unit).unwrap();
    assert_eq!(restarted.active_state, ActiveState::Active);
    assert!(restarted.main_pid > 0);
    assert_ne!(restarted.main_pid, up.main_pid);
    // A restart by a job is not a restart by `Restart=`.
    assert_eq!(restarted.n_restarts, 0);

    assert_eq!(systemd.try_restart(unit, JOB).unwrap(), JobResult::Done);
    let again = systemd.unit_state(unit).unwrap();
    assert_ne!(again.main_pid, restarted.main_pid);

    assert_eq!(systemd.stop(unit, JOB).unwrap(), JobResult::Done);
    let down = systemd.unit_state(unit).unwrap();
    assert_eq!(down.active_state, ActiveState::Inactive, "{down:?}");
    assert_eq!(down.sub_state, "dead");
    assert_eq!(down.main_pid, 0);

    // try-restart leaves a stopped unit stopped.
    assert_eq!(systemd.try_restart(unit, JOB).unwrap(), JobResult::Done);
    assert_eq!(
        systemd.unit_state(unit).unwrap().active_state,
        ActiveState::Inactive
    );
    assert_eq!(systemd.stop(unit, JOB).unwrap(), JobResult::Done);
}

fn a_failing_start_fails_and_says_why(systemd: &SystemdBus, _node: &TestNode) {
    let unit = &un("fails.service");
    let result = systemd.start(unit, JOB).unwrap();
    assert_eq!(result, JobResult::Failed);
    let state = systemd.unit_state(unit).unwrap();
    assert_eq!(state.active_state, ActiveState::Failed, "{state:?}");
    assert_eq!(state.sub_state, "failed");
    assert_eq!(
        result
            .require_done(JobKind::Start, unit)
            .unwrap_err()
            .to_string(),
        "start fails.service failed: job result `failed`"
    );

    // journald may write the lines a moment after the job ended.
    let journal = wait_for("the failure in the journal of fails.service", || {
        let tail = systemd.journal_tail(unit, 20).map_err(|e| e.to_string())?;
        if tail.contains("status=1/FAILURE") && tail.contains("Failed to start fails.service") {
            Ok(tail)
        } else {
            Err(tail)
        }
    });
    assert!(journal.lines().count() <= 20, "{journal}");
    let last_two = systemd.journal_tail(unit, 2).unwrap();
    assert_eq!(last_two.lines().count(), 2, "{last_two}");
}

fn missing_units_are_clear_errors(systemd: &SystemdBus, _node: &TestNode) {
    let unit = &un("archy-no-such.service");
    for kind in [
        JobKind::Start,
        JobKind::Stop,
        JobKind::Restart,
        JobKind::TryRestart,
    ] {
        let err = systemd.run_job(kind, unit, JOB).unwrap_err();
        assert!(
            matches!(&err, Error::UnitNotFound { unit: u } if u == unit.as_str()),
            "{kind}: {err:?}"
        );
        assert_eq!(
            err.to_string(),
            "unit archy-no-such.service not found: systemd has no unit file for it"
        );
    }
    let state = systemd.unit_state(unit).unwrap();
    assert_eq!(state.load_state, LoadState::NotFound, "{state:?}");

    // What is no unit name never reaches systemd: the trait takes checked
    // names only.
    assert!(UnitName::try_from("not a unit name").is_err());
}

fn reloads_are_refused_or_run(systemd: &SystemdBus, _node: &TestNode) {
    // No ExecReload=: systemd refuses to queue the job.
    let err = systemd.reload(&un("fresh.service"), JOB).unwrap_err();
    let Error::Refused { name, message, .. } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(name, "org.freedesktop.systemd1.JobTypeNotApplicable");
    assert_eq!(
        err.to_string(),
        format!(
            "systemd refused to reload fresh.service: {message} \
             (org.freedesktop.systemd1.JobTypeNotApplicable)"
        )
    );
    assert!(message.contains("fresh.service"), "{message}");

    // With ExecReload=, but not running: the job runs and cannot apply.
    let unit = &un("reloadable.service");
    assert_eq!(systemd.reload(unit, JOB).unwrap(), JobResult::Invalid);

    systemd
        .start(unit, JOB)
        .unwrap()
        .require_done(JobKind::Start, unit)
        .unwrap();
    let up = systemd.unit_state(unit).unwrap();
    assert_eq!(systemd.reload(unit, JOB).unwrap(), JobResult::Done);
    assert_eq!(
        systemd.reload_or_restart(unit, JOB).unwrap(),
        JobResult::Done
    );
    let reloaded = systemd.unit_state(unit).unwrap();
    assert_eq!(reloaded.active_state, ActiveState::Active);
    assert_eq!(reloaded.main_pid, up.main_pid, "a reload keeps the process");
    systemd.stop(unit, JOB).unwrap();

    // reload-or-restart of what cannot reload restarts it.
    let unit = &un("fresh.service");
    systemd.start(unit, JOB).unwrap();
    let up = systemd.unit_state(unit).unwrap();
    assert_eq!(
        systemd.reload_or_restart(unit, JOB).unwrap(),
        JobResult::Done
    );
    let restarted = systemd.unit_state(unit).unwrap();
    assert!(restarted.is_active());
    assert_ne!(restarted.main_pid, up.main_pid);
    systemd.stop(unit, JOB).unwrap();
}

fn restart_loops_count_their_restarts(systemd: &SystemdBus, _node: &TestNode) {
    let unit = &un("loops.service");
    // Type=simple: the start job is done once the process is forked.
    assert_eq!(systemd.start(unit, JOB).unwrap(), JobResult::Done);
    let looping = wait_for("loops.service to be restarted 3 times", || {
        let state = systemd.unit_state(unit).map_err(|e| e.to_string())?;
        if state.n_restarts >= 3 {
            Ok(state)
        } else {
            Err(format!("{state:?}"))
        }
    });
    assert_eq!(looping.load_state, LoadState::Loaded);
    // And it keeps climbing.
    wait_for("loops.service to go on restarting", || {
        let state = systemd.unit_state(unit).map_err(|e| e.to_string())?;
        if state.n_restarts > looping.n_restarts {
            Ok(())
        } else {
            Err(format!("{state:?}"))
        }
    });
    assert_eq!(systemd.stop(unit, JOB).unwrap(), JobResult::Done);
    let stopped = systemd.unit_state(unit).unwrap();
    assert!(!stopped.is_active(), "{stopped:?}");
    assert_eq!(stopped.main_pid, 0);
}

fn a_job_that_does_not_end_times_out(systemd: &SystemdBus, _node: &TestNode) {
    let unit = &un("hangs.service");
    let limit = Duration::from_millis(500);
    let t = Instant::now();
    let err = systemd.start(unit, limit).unwrap_err();
    assert!(t.elapsed() >= limit);
    assert!(
        t.elapsed() < limit + Duration::from_secs(10),
        "{:?}",
        t.elapsed()
    );
    assert!(
        matches!(&err, Error::Timeout { after, .. } if *after == limit),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "timed out after 500ms waiting for systemd to start hangs.service"
    );
    // The job stays with systemd: the unit is still starting, until a stop
    // (mode replace) cancels the start.
    let starting = systemd.unit_state(unit).unwrap();
    assert_eq!(
        starting.active_state,
        ActiveState::Activating,
        "{starting:?}"
    );
    assert_eq!(systemd.stop(unit, JOB).unwrap(), JobResult::Done);
    // Its start was cut short by a signal: systemd counts that a failure.
    let stopped = systemd.unit_state(unit).unwrap();
    assert_eq!(stopped.active_state, ActiveState::Failed, "{stopped:?}");
    assert_eq!(stopped.main_pid, 0);
}

//! NixOS's switch-test.nix, subtests "timers", "targets", "paths",
//! "slices", "dbus reloads" and "generators": units that are not services,
//! and units archy does not own. The table of the whole port is
//! tests/parity.md.

mod support;

use support::parity::{Parity, Step, node, run_in_order};

// --- timers ---------------------------------------------------------------

/// NixOS's `timer`: test-timer.timer, on a date long past, and its
/// oneshot service (no [Install]), which logs when it runs.
fn timer(on_calendar: &str, v: &str) -> String {
    node(&[
        format!(
            r#"unit("test-timer.timer", #{{
    Timer: #{{ OnCalendar: "{on_calendar}" }},
    Install: #{{ WantedBy: "timers.target" }},
}}),"#
        ),
        format!(
            r#"unit("test-timer.service", #{{
    Service: #{{ Type: "oneshot", ExecStart: "/bin/sh -c 'echo start:{v} >> /run/parity/timer.log'" }},
}}),"#
        ),
    ])
}

fn timer_calendar(p: &Parity) -> String {
    p.prop("test-timer.timer", "TimersCalendar")
}

/// timer: a new timer is started, not its service.
fn timer_is_started(p: &Parity) {
    p.base("[]");
    let s = p.switch(&timer("@1395716396", "v1")).ok();
    s.assert_jobs(&["start test-timer.timer"]);
    let cal = timer_calendar(p);
    assert!(cal.contains("OnCalendar=2014-03-25 02:59:56 UTC"), "{cal}");
    assert_eq!(p.events("timer"), Vec::<String>::new());
}

/// timerModified: a changed timer is restarted and has its new calendar.
fn changed_timer_is_restarted(p: &Parity) {
    p.base(&timer("@1395716396", "v1"));
    let s = p.switch(&timer("Fri 2012-11-23 16:00:00", "v1")).ok();
    s.assert_jobs(&["restart test-timer.timer"]);
    let cal = timer_calendar(p);
    assert!(cal.contains("OnCalendar=Fri 2012-11-23 16:00:00"), "{cal}");
    assert_eq!(p.events("timer"), Vec::<String>::new());
}

/// The service of a timer is not run by a switch when it changes (NixOS
/// only restarts active units; issue 15, item 2).
fn changed_timer_service_is_not_run(p: &Parity) {
    p.base(&timer("Fri 2012-11-23 16:00:00", "v1"));
    let s = p.switch(&timer("Fri 2012-11-23 16:00:00", "v2")).ok();
    assert_eq!(
        s.ops_of("test-timer.service"),
        Vec::<String>::new(),
        "{}",
        s.out
    );
    assert_eq!(p.events("timer"), Vec::<String>::new());
    assert_eq!(p.state("test-timer.service"), "inactive");
}

// --- targets --------------------------------------------------------------

/// hybridSleepModified: a drop-in with an `X-Test=` key on a target of the
/// distribution that is not active: nothing is started or stopped, and
/// the removed timer of the generation before is stopped.
fn drop_in_on_an_inactive_distro_target_does_nothing(p: &Parity) {
    p.base(&timer("Fri 2012-11-23 16:00:00", "v1"));
    let s = p
        .switch(&node(&[
            r#"dropin("hybrid-sleep.target", "archy-parity", #{ Unit: #{ "X-Test": true } }),"#
                .to_string(),
        ]))
        .ok();
    s.assert_jobs(&["stop test-timer.timer"]);
    assert_eq!(p.state("hybrid-sleep.target"), "inactive");
    assert!(
        p.sh("cat /etc/systemd/system/hybrid-sleep.target.d/archy-parity.conf")
            .contains("X-Test=")
    );
}

/// NixOS's `target`: test-target.target, and test-service, bound to it
/// (BindsTo=), which is started by hand. `unit` more [Unit] keys of the
/// target.
fn target(unit: &str) -> String {
    node(&[
        format!(
            r#"unit("test-target.target", #{{
    Unit: #{{ Description: "test target", {unit} }},
    Install: #{{ WantedBy: "multi-user.target" }},
}}),"#
        ),
        r#"unit("test-service.service", #{
    Unit: #{ BindsTo: "test-target.target" },
    Service: #{ ExecStart: "/bin/sleep infinity" },
}),"#
            .to_string(),
    ])
}

/// target: "Adding a new target starts it".
fn new_target_is_started(p: &Parity) {
    p.base("[]");
    let s = p.switch(&target("")).ok();
    s.assert_jobs(&["start test-target.target"]);
    assert_eq!(p.state("test-target.target"), "active");
}

/// targetModified: "Changing a target doesn't print anything": the
/// target is not restarted, so test-service keeps running. NixOS starts
/// every active target and hides those jobs from what it prints; archy
/// starts the changed target and says so (a start of an active target
/// only pulls in what it newly wants).
fn changed_target_is_not_restarted(p: &Parity) {
    p.base(&target(""));
    p.sh("systemctl start test-service.service");
    let pid = p.prop("test-service.service", "MainPID");
    let s = p.switch(&target(r#""X-Test": true,"#)).ok();
    s.assert_jobs(&["start test-target.target"]);
    assert_eq!(p.state("test-service.service"), "active");
    assert_eq!(p.prop("test-service.service", "MainPID"), pid);
}

/// The same with a key that is not cosmetic (issue 15, item 5): a target
/// is started, never restarted (restarting it would restart what is bound
/// to it).
fn target_with_a_real_change_is_not_restarted(p: &Parity) {
    p.base(&target(r#""X-Test": true,"#));
    if p.state("test-service.service") != "active" {
        p.sh("systemctl start test-service.service");
    }
    let pid = p.prop("test-service.service", "MainPID");
    let s = p
        .switch(&target(r#""X-Test": true, JobTimeoutSec: "5min","#))
        .ok();
    assert_eq!(s.ops_of("test-target.target"), ["start"], "{}", s.out);
    assert_eq!(p.state("test-target.target"), "active");
    assert_eq!(p.state("test-service.service"), "active");
    assert_eq!(p.prop("test-service.service", "MainPID"), pid);
}

/// "Remove the target by switching to the old specialisation": stopped.
fn removed_target_is_stopped(p: &Parity) {
    p.base(&target(""));
    let s = p.switch(&timer("Fri 2012-11-23 16:00:00", "v1")).ok();
    let jobs = s.job_list();
    assert!(
        jobs.contains(&"stop test-target.target".to_string()),
        "{}",
        s.out
    );
    assert!(
        jobs.contains(&"start test-timer.timer".to_string()),
        "{}",
        s.out
    );
    assert_eq!(p.state("test-target.target"), "inactive");
}

// --- paths ----------------------------------------------------------------

/// NixOS's `path`: test-watch.path starts test-watch.service when `watch`
/// exists.
fn path(watch: &str) -> String {
    node(&[
        format!(
            r#"unit("test-watch.path", #{{
    Path: #{{ PathExists: "{watch}" }},
    Install: #{{ WantedBy: "paths.target" }},
}}),"#
        ),
        r#"unit("test-watch.service", #{
    Service: #{ Type: "oneshot", RemainAfterExit: true, ExecStart: "/bin/touch /run/parity/testpath-modified" },
}),"#
            .to_string(),
    ])
}

fn triggered(p: &Parity) -> bool {
    p.sh_ok("test -f /run/parity/testpath-modified")
}

/// path: a new path unit is started; its service runs when the path
/// appears.
fn path_unit_is_started(p: &Parity) {
    p.sh("rm -f /run/parity/testpath /run/parity/testpath2 /run/parity/testpath-modified");
    p.base("[]");
    let s = p.switch(&path("/run/parity/testpath")).ok();
    s.assert_jobs(&["start test-watch.path"]);
    assert!(!triggered(p));
    p.sh("touch /run/parity/testpath");
    p.wait_for("the path unit to start its service", 10, || triggered(p));
    p.sh(
        "rm /run/parity/testpath /run/parity/testpath-modified; systemctl stop test-watch.service",
    );
}

/// pathModified: the path unit is restarted and watches the new path.
fn changed_path_unit_watches_the_new_path(p: &Parity) {
    p.base(&path("/run/parity/testpath"));
    p.sh("rm -f /run/parity/testpath /run/parity/testpath2 /run/parity/testpath-modified; systemctl stop test-watch.service");
    let s = p.switch(&path("/run/parity/testpath2")).ok();
    s.assert_jobs(&["restart test-watch.path"]);
    p.sh("touch /run/parity/testpath");
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(!triggered(p), "the old path still triggers");
    p.sh("touch /run/parity/testpath2");
    p.wait_for("the new path to start the service", 10, || triggered(p));
    p.sh("rm -f /run/parity/testpath /run/parity/testpath2 /run/parity/testpath-modified; systemctl stop test-watch.service");
}

// --- slices ---------------------------------------------------------------

/// NixOS's `slice`: testslice.slice and a service in it. The test node
/// has no memory controller, so instead of a service that cannot start
/// under MemoryMax=1, a running service must survive a change of its
/// slice, and systemd must report the slice's new limit.
fn slice(memory_max: &str) -> String {
    node(&[
        format!(
            r#"unit("testslice.slice", #{{
    Slice: #{{ MemoryMax: "{memory_max}" }},
}}),"#
        ),
        r#"unit("testservice.service", #{
    Service: #{ ExecStart: "/bin/sleep infinity", Slice: "testslice.slice" },
    Install: #{ WantedBy: "multi-user.target" },
}),"#
            .to_string(),
    ])
}

/// slice: the new service starts, in its slice.
fn service_in_a_new_slice_is_started(p: &Parity) {
    p.base("[]");
    let s = p.switch(&slice("100M")).ok();
    s.assert_jobs(&["start testservice.service"]);
    assert_eq!(p.prop("testservice.service", "Slice"), "testslice.slice");
    assert_eq!(p.prop("testslice.slice", "MemoryMax"), "104857600");
}

/// sliceModified: a slice is never restarted (that would stop every unit
/// in it; issue 15, item 5), and its new settings apply.
fn changed_slice_is_not_restarted(p: &Parity) {
    p.base(&slice("100M"));
    let pid = p.prop("testservice.service", "MainPID");
    let s = p.switch(&slice("200M")).ok();
    s.assert_jobs(&[]);
    assert_eq!(p.prop("testslice.slice", "MemoryMax"), "209715200");
    assert_eq!(p.state("testservice.service"), "active");
    assert_eq!(p.prop("testservice.service", "MainPID"), pid);
}

// --- dbus reloads ---------------------------------------------------------

/// dbusReload: a change of a file that the distribution's dbus.service
/// reads (through archy's drop-in) reloads dbus, never restarts it.
fn dbus(text: &str) -> String {
    node(&[
        format!(r#"file("/etc/parity/dbus-dummy", #{{ text: "{text}\n" }}),"#),
        r#"dropin("dbus.service", "archy-parity", #{
    Unit: #{ "X-Parity": "dbus reload dummy" },
    reads: ["/etc/parity/dbus-dummy"],
    on_change: "reload",
}),"#
            .to_string(),
    ])
}

fn dbus_reload_trigger_reloads(p: &Parity) {
    p.base(&dbus("one"));
    let pid = p.prop("dbus.service", "MainPID");
    let s = p.switch(&dbus("two")).ok();
    s.assert_jobs(&["reload dbus.service"]);
    assert_eq!(p.prop("dbus.service", "MainPID"), pid);
    assert_eq!(p.state("dbus.service"), "active");
}

// --- generators -----------------------------------------------------------

/// generators: a unit a generator made (archy does not own it) keeps
/// running across switches.
fn generated_unit_is_left_alone(p: &Parity) {
    p.sh(
        "mkdir -p /etc/systemd/system-generators && \
         printf '#!/bin/sh\\nprintf \"[Service]\\\\nExecStart=/bin/sleep infinity\\\\n\" > \"$1/simple-generated.service\"\\n' \
           > /etc/systemd/system-generators/parity-generator && \
         chmod +x /etc/systemd/system-generators/parity-generator && \
         systemctl daemon-reload && systemctl start simple-generated.service",
    );
    assert_eq!(p.state("simple-generated.service"), "active");
    let pid = p.prop("simple-generated.service", "MainPID");
    p.base(&node(&[
        r#"file("/etc/parity/generated-a", #{ text: "a\n" }),"#.to_string(),
    ]));
    p.switch(&node(&[
        r#"file("/etc/parity/generated-b", #{ text: "b\n" }),"#.to_string(),
    ]))
    .ok();
    assert_eq!(p.state("simple-generated.service"), "active");
    assert_eq!(p.prop("simple-generated.service", "MainPID"), pid);
}

const STEPS: &[Step] = &[
    ("timer_is_started", timer_is_started),
    ("changed_timer_is_restarted", changed_timer_is_restarted),
    (
        "changed_timer_service_is_not_run",
        changed_timer_service_is_not_run,
    ),
    (
        "drop_in_on_an_inactive_distro_target_does_nothing",
        drop_in_on_an_inactive_distro_target_does_nothing,
    ),
    ("new_target_is_started", new_target_is_started),
    (
        "changed_target_is_not_restarted",
        changed_target_is_not_restarted,
    ),
    (
        "target_with_a_real_change_is_not_restarted",
        target_with_a_real_change_is_not_restarted,
    ),
    ("removed_target_is_stopped", removed_target_is_stopped),
    ("path_unit_is_started", path_unit_is_started),
    (
        "changed_path_unit_watches_the_new_path",
        changed_path_unit_watches_the_new_path,
    ),
    (
        "service_in_a_new_slice_is_started",
        service_in_a_new_slice_is_started,
    ),
    (
        "changed_slice_is_not_restarted",
        changed_slice_is_not_restarted,
    ),
    ("dbus_reload_trigger_reloads", dbus_reload_trigger_reloads),
    ("generated_unit_is_left_alone", generated_unit_is_left_alone),
];

#[test]
fn switch_test_other_units() {
    run_in_order("parity-units", STEPS);
}

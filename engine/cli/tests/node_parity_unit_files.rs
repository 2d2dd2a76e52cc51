//! NixOS's switch-test.nix, subtests "failing units" and "unit file
//! parser", and the units that refuse a manual start or stop: what a
//! switch does when a unit fails, which changes of a unit file restart it,
//! reload it or do nothing. The table of the whole port is tests/parity.md.

mod support;

use support::parity::{Parity, Step, node, oneshot, run_in_order};

fn simple(v: &str, unit: &str, service: &str, opts: &str) -> String {
    oneshot("test.service", "test", v, unit, service, opts)
}

fn v1() -> String {
    node(&[simple("v1", "", "", "")])
}

// --- failing units --------------------------------------------------------

/// simpleServiceFailing: the new ExecStart= fails. The switch fails, is
/// rolled back (exit 2), and the old unit runs again.
fn failing_service_rolls_back(p: &Parity) {
    p.base(&v1());
    let before = p.current();
    let failing = v1().replace("echo start:v1 >> /run/parity/test.log", "exit 1");
    assert_ne!(failing, v1());
    let s = p.switch(&failing);
    assert_eq!(s.code, Some(2), "{}", s.out);
    s.assert_says("test.service");
    s.assert_says("back on generation");
    assert_eq!(p.current(), before);
    assert_eq!(p.state("test.service"), "active");
    assert_eq!(
        p.events("test").last().map(String::as_str),
        Some("start:v1")
    );
}

/// NixOS's autorestartService: a service that exits 0 at once and waits
/// 20 years to be restarted. `exit` is its exit status, `opts` archy's
/// options.
fn autorestart(exit: u8, opts: &str) -> String {
    node(&[format!(
        r#"unit("autorestart.service", #{{
    Service: #{{
        Type: "simple", Restart: "always", RestartSec: "20y",
        ExecStart: "/bin/sh -c 'echo start:{exit} >> /run/parity/auto.log; exit {exit}'",
    }},
    Install: #{{ WantedBy: "multi-user.target" }},
    {opts}
}}),"#
    )])
}

/// autorestartService, deliberately different: NixOS passes a unit that
/// sits in auto-restart after exiting 0; archy's default gate fails every
/// unit the generation wants running that is failed or in auto-restart
/// (issue 15, item 10), and rolls back.
fn autorestart_service_fails_the_default_gate(p: &Parity) {
    p.base("[]");
    let s = p.switch(&autorestart(0, ""));
    assert_eq!(s.code, Some(2), "{}", s.out);
    s.assert_says("autorestart.service");
    assert_eq!(p.state("autorestart.service"), "inactive");
}

/// autorestartService with `health: false`: NixOS's outcome, by the
/// unit's own choice.
fn autorestart_service_with_health_false_passes(p: &Parity) {
    p.base("[]");
    let s = p.switch(&autorestart(0, "health: false,")).ok();
    s.assert_jobs(&["start autorestart.service"]);
    p.wait_for("autorestart.service to wait in auto-restart", 10, || {
        p.prop("autorestart.service", "SubState") == "auto-restart"
    });
}

/// "Switching to the same system should do nothing (especially not treat
/// the unit as failed)" and starts the wanted unit that was stopped.
fn same_generation_starts_a_stopped_unit(p: &Parity) {
    p.base(&autorestart(0, "health: false,"));
    p.sh("systemctl stop autorestart.service");
    assert_eq!(p.state("autorestart.service"), "inactive");
    let s = p.switch(&autorestart(0, "health: false,")).ok();
    s.assert_says("autorestart.service");
    assert_eq!(p.events("auto"), ["start:0"]);
    assert_ne!(p.state("autorestart.service"), "inactive");
}

/// autorestartServiceFailing: it exits 1 and waits in auto-restart: the
/// switch fails and is rolled back.
fn autorestart_failing_rolls_back(p: &Parity) {
    p.base(&autorestart(0, "health: false,"));
    let before = p.current();
    let s = p.switch(&autorestart(1, ""));
    assert_eq!(s.code, Some(2), "{}", s.out);
    s.assert_says("autorestart.service");
    assert_eq!(p.current(), before);
    // Leave nothing waiting 20 years.
    p.sh("systemctl stop autorestart.service");
}

// --- unit file parser -----------------------------------------------------

/// simpleServiceWithExtraSection: an `[X-Test]` section restarts.
fn extra_section_added_restarts(p: &Parity) {
    p.base(&v1());
    let s = p
        .switch(&node(&[simple(
            "v1",
            "",
            "",
            r#""X-Test": #{ "X-Test-Value": "a" },"#,
        )]))
        .ok();
    s.assert_jobs(&["restart test.service"]);
    assert_eq!(p.events("test"), ["stop:v1", "start:v1"]);
}

/// simpleServiceWithExtraSectionOtherName: renaming it restarts.
fn extra_section_renamed_restarts(p: &Parity) {
    p.base(&node(&[simple(
        "v1",
        "",
        "",
        r#""X-Test": #{ "X-Test-Value": "a" },"#,
    )]));
    let s = p
        .switch(&node(&[simple(
            "v1",
            "",
            "",
            r#""X-Test2": #{ "X-Test-Value": "a" },"#,
        )]))
        .ok();
    s.assert_jobs(&["restart test.service"]);
    assert_eq!(p.events("test"), ["stop:v1", "start:v1"]);
}

/// Back to simpleServiceNostop: removing it restarts.
fn extra_section_removed_restarts(p: &Parity) {
    p.base(&node(&[simple(
        "v1",
        "",
        "",
        r#""X-Test2": #{ "X-Test-Value": "a" },"#,
    )]));
    let s = p.switch(&v1()).ok();
    s.assert_jobs(&["restart test.service"]);
    assert_eq!(p.events("test"), ["stop:v1", "start:v1"]);
}

/// simpleServiceWithInstallSection: "[Install] section is ignored".
fn install_section_change_does_nothing(p: &Parity) {
    p.base(&v1());
    let more = v1().replace(
        r#"WantedBy: "multi-user.target""#,
        r#"WantedBy: ["multi-user.target", "default.target"]"#,
    );
    assert_ne!(more, v1());
    let s = p.switch(&more).ok();
    s.assert_jobs(&[]);
    assert_eq!(p.events("test"), Vec::<String>::new());
}

fn with_key(key: &str, value: &str) -> String {
    node(&[simple("v1", "", &format!(r#""{key}": "{value}","#), "")])
}

/// simpleServiceWithExtraKey: "Add a key".
fn extra_key_added_restarts(p: &Parity) {
    p.base(&v1());
    let s = p.switch(&with_key("X-Test", "test")).ok();
    s.assert_jobs(&["restart test.service"]);
    assert_eq!(p.events("test"), ["stop:v1", "start:v1"]);
}

/// simpleServiceWithExtraKeyOtherValue: "Change its value".
fn extra_key_value_changed_restarts(p: &Parity) {
    p.base(&with_key("X-Test", "test"));
    let s = p.switch(&with_key("X-Test", "test2")).ok();
    s.assert_jobs(&["restart test.service"]);
    assert_eq!(p.events("test"), ["stop:v1", "start:v1"]);
}

/// simpleServiceWithExtraKeyOtherName: "Rename it".
fn extra_key_renamed_restarts(p: &Parity) {
    p.base(&with_key("X-Test", "test2"));
    let s = p.switch(&with_key("X-Test2", "test")).ok();
    s.assert_jobs(&["restart test.service"]);
    assert_eq!(p.events("test"), ["stop:v1", "start:v1"]);
}

/// Back to simpleServiceNostop: "Remove it".
fn extra_key_removed_restarts(p: &Parity) {
    p.base(&with_key("X-Test2", "test"));
    let s = p.switch(&v1()).ok();
    s.assert_jobs(&["restart test.service"]);
    assert_eq!(p.events("test"), ["stop:v1", "start:v1"]);
}

/// test.service with the file /etc/parity/trigger (text `trigger`), read
/// as a reload trigger when `reads`, and `service` more [Service] keys.
fn triggered(trigger: &str, reads: bool, service: &str) -> String {
    let opts = if reads {
        r#"reads: [#{ path: "/etc/parity/trigger", on_change: "reload" }],"#
    } else {
        ""
    };
    node(&[
        format!(r#"file("/etc/parity/trigger", #{{ text: "{trigger}\n" }}),"#),
        simple("v1", "", service, opts),
    ])
}

/// simpleServiceReloadTrigger: "Add a reload trigger" reloads.
fn reload_trigger_added_reloads(p: &Parity) {
    p.base(&triggered("null", false, ""));
    let s = p.switch(&triggered("null", true, "")).ok();
    s.assert_jobs(&["reload test.service"]);
    assert_eq!(p.events("test"), ["reload:v1"]);
}

/// simpleServiceReloadTriggerModified: "Modify the reload trigger".
fn reload_trigger_modified_reloads(p: &Parity) {
    p.base(&triggered("null", true, ""));
    let s = p.switch(&triggered("zero", true, "")).ok();
    s.assert_jobs(&["reload test.service"]);
    assert_eq!(p.events("test"), ["reload:v1"]);
}

/// simpleServiceReloadTriggerModifiedAndSomethingElse: the trigger and a
/// key change: one restart, no reload.
fn reload_trigger_and_something_else_restarts(p: &Parity) {
    p.base(&triggered("zero", true, ""));
    let s = p
        .switch(&triggered("zero2", true, r#""X-Test": "test","#))
        .ok();
    s.assert_jobs(&["restart test.service"]);
    assert_eq!(p.events("test"), ["stop:v1", "start:v1"]);
}

/// simpleServiceReloadTriggerModifiedSomethingElse: "Remove the reload
/// trigger" (the rest stays): nothing.
fn reload_trigger_removed_does_nothing(p: &Parity) {
    p.base(&triggered("zero2", true, r#""X-Test": "test","#));
    let s = p
        .switch(&triggered("zero2", false, r#""X-Test": "test","#))
        .ok();
    s.assert_jobs(&[]);
    assert_eq!(p.events("test"), Vec::<String>::new());
}

// --- units that refuse a manual start or stop -----------------------------

/// refuse.service (RefuseManualStart=yes, no [Install]) is started by
/// systemd as a dependency of starter.service.
fn refusing_start(v: &str) -> String {
    node(&[
        oneshot(
            "starter.service",
            "starter",
            "v1",
            r#"Wants: "refuse.service", After: "refuse.service","#,
            "",
            "",
        ),
        oneshot(
            "refuse.service",
            "refuse",
            v,
            "RefuseManualStart: true,",
            "",
            "",
        )
        .replace(r#"Install: #{ WantedBy: "multi-user.target" },"#, ""),
    ])
}

/// unitWithRequirementModifiedNostart's key on its own (issue 15, item
/// 3): a changed unit that refuses a manual start is not restarted, and
/// the switch passes.
fn refuse_manual_start_is_not_restarted(p: &Parity) {
    p.base(&refusing_start("v1"));
    assert_eq!(p.state("refuse.service"), "active");
    let s = p.switch(&refusing_start("v2")).ok();
    assert_eq!(
        s.ops_of("refuse.service"),
        Vec::<String>::new(),
        "{}",
        s.out
    );
    assert_eq!(p.events("refuse"), Vec::<String>::new());
    assert_eq!(p.state("refuse.service"), "active");
}

fn refusing_stop(v: &str) -> String {
    node(&[oneshot(
        "stopper.service",
        "stopper",
        v,
        "RefuseManualStop: true,",
        "",
        "",
    )])
}

/// A changed unit that refuses a manual stop is not restarted; the plan
/// says so.
fn refuse_manual_stop_is_not_restarted(p: &Parity) {
    p.base(&refusing_stop("v1"));
    let s = p.switch(&refusing_stop("v2")).ok();
    assert_eq!(
        s.ops_of("stopper.service"),
        Vec::<String>::new(),
        "{}",
        s.out
    );
    assert!(
        s.left_alone()
            .iter()
            .any(|l| l.starts_with("stopper.service ") && l.contains("refuses manual stop")),
        "{}",
        s.out
    );
    assert_eq!(p.events("stopper"), Vec::<String>::new());
    assert_eq!(p.state("stopper.service"), "active");
}

/// ... nor stopped when it leaves the description.
fn refuse_manual_stop_is_not_stopped_on_removal(p: &Parity) {
    p.base(&refusing_stop("v2"));
    let s = p.switch("[]").ok();
    assert_eq!(
        s.ops_of("stopper.service"),
        Vec::<String>::new(),
        "{}",
        s.out
    );
    assert_eq!(p.events("stopper"), Vec::<String>::new());
    assert_eq!(p.state("stopper.service"), "active");
    assert!(!p.sh_ok("test -e /etc/systemd/system/stopper.service"));
}

/// NixOS only looks at active units (issue 15, item 2): a changed unit an
/// operator stopped stays stopped.
fn changed_inactive_unit_stays_inactive(p: &Parity) {
    p.base(&v1());
    p.sh("systemctl stop test.service");
    p.events("test");
    let s = p.switch(&node(&[simple("v2", "", "", "")])).ok();
    assert_eq!(s.ops_of("test.service"), Vec::<String>::new(), "{}", s.out);
    assert_eq!(p.events("test"), Vec::<String>::new());
    assert_eq!(p.state("test.service"), "inactive");
}

const STEPS: &[Step] = &[
    ("failing_service_rolls_back", failing_service_rolls_back),
    (
        "autorestart_service_fails_the_default_gate",
        autorestart_service_fails_the_default_gate,
    ),
    (
        "autorestart_service_with_health_false_passes",
        autorestart_service_with_health_false_passes,
    ),
    (
        "same_generation_starts_a_stopped_unit",
        same_generation_starts_a_stopped_unit,
    ),
    (
        "autorestart_failing_rolls_back",
        autorestart_failing_rolls_back,
    ),
    ("extra_section_added_restarts", extra_section_added_restarts),
    (
        "extra_section_renamed_restarts",
        extra_section_renamed_restarts,
    ),
    (
        "extra_section_removed_restarts",
        extra_section_removed_restarts,
    ),
    (
        "install_section_change_does_nothing",
        install_section_change_does_nothing,
    ),
    ("extra_key_added_restarts", extra_key_added_restarts),
    (
        "extra_key_value_changed_restarts",
        extra_key_value_changed_restarts,
    ),
    ("extra_key_renamed_restarts", extra_key_renamed_restarts),
    ("extra_key_removed_restarts", extra_key_removed_restarts),
    ("reload_trigger_added_reloads", reload_trigger_added_reloads),
    (
        "reload_trigger_modified_reloads",
        reload_trigger_modified_reloads,
    ),
    (
        "reload_trigger_and_something_else_restarts",
        reload_trigger_and_something_else_restarts,
    ),
    (
        "reload_trigger_removed_does_nothing",
        reload_trigger_removed_does_nothing,
    ),
    (
        "refuse_manual_start_is_not_restarted",
        refuse_manual_start_is_not_restarted,
    ),
    (
        "refuse_manual_stop_is_not_restarted",
        refuse_manual_stop_is_not_restarted,
    ),
    (
        "refuse_manual_stop_is_not_stopped_on_removal",
        refuse_manual_stop_is_not_stopped_on_removal,
    ),
    (
        "changed_inactive_unit_stays_inactive",
        changed_inactive_unit_stays_inactive,
    ),
];

#[test]
fn switch_test_unit_files() {
    run_in_order("parity-unit-files", STEPS);
}

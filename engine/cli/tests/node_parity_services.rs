//! NixOS's switch-test.nix, subtest "services" (and the lock): which units
//! a switch starts, restarts, reloads or leaves alone when a service
//! changes, on one real node, scenario after scenario. The table of the
//! whole port is tests/parity.md.

mod support;

use support::parity::{Parity, Step, node, oneshot, run_in_order};

/// `test.service`, NixOS's simpleService and its variants.
fn simple(v: &str, unit: &str, service: &str, opts: &str) -> String {
    oneshot("test.service", "test", v, unit, service, opts)
}

fn v1() -> String {
    node(&[simple("v1", "", "", "")])
}

// --- services -------------------------------------------------------------

/// "Nothing happens when nothing is changed".
fn nothing_changed_does_nothing(p: &Parity) {
    p.base("[]");
    let s = p.switch("[]").ok();
    s.assert_says("already running: nothing to do");
    s.assert_jobs(&[]);
}

/// specialisation simpleService: a new installed service is started.
fn simple_service_is_started(p: &Parity) {
    p.base("[]");
    let s = p.switch(&v1()).ok();
    s.assert_jobs(&["start test.service"]);
    assert_eq!(p.events("test"), ["start:v1"]);
    assert_eq!(p.state("test.service"), "active");
}

/// "Not changing anything doesn't do anything".
fn same_configuration_does_nothing(p: &Parity) {
    p.base(&v1());
    let s = p.switch(&v1()).ok();
    s.assert_says("already running: nothing to do");
    assert_eq!(p.events("test"), Vec::<String>::new());
}

/// simpleServiceDifferentDescription: only Description= changed.
fn different_description_does_nothing(p: &Parity) {
    p.base(&v1());
    let s = p
        .switch(&node(&[simple(
            "v1",
            r#"Description: "Test unit""#,
            "",
            "",
        )]))
        .ok();
    s.assert_jobs(&[]);
    assert_eq!(p.events("test"), Vec::<String>::new());
    assert_eq!(p.state("test.service"), "active");
}

/// simpleServiceModified: an `X-Test=` key in [Service] restarts the unit
/// (NixOS stops and starts it: its default is stopIfChanged; archy's
/// default is one restart job, see tests/parity.md).
fn modified_service_is_restarted(p: &Parity) {
    p.base(&v1());
    let s = p
        .switch(&node(&[simple("v1", "", r#""X-Test": true,"#, "")]))
        .ok();
    s.assert_jobs(&["restart test.service"]);
    assert_eq!(p.events("test"), ["stop:v1", "start:v1"]);
}

/// simpleServiceModified with NixOS's default stopIfChanged, as
/// `on_change: "stop-start"`: the old ExecStop= runs, then the new start.
fn stop_if_changed_stops_with_the_old_unit(p: &Parity) {
    p.base(&v1());
    let s = p
        .switch(&node(&[simple(
            "v2",
            "",
            "",
            r#"on_change: "stop-start","#,
        )]))
        .ok();
    let ops = s.ops_of("test.service");
    assert!(
        !ops.is_empty()
            && ops
                .iter()
                .all(|o| ["stop", "start", "stop-start"].contains(&o.as_str())),
        "test.service should be stopped and started, not {ops:?}:\n{}",
        s.out
    );
    assert_eq!(p.events("test"), ["stop:v1", "start:v2"]);
    assert_eq!(p.state("test.service"), "active");
}

/// simpleServiceNostop: stopIfChanged = false is one restart job, and the
/// new ExecStop= runs (the unit files were reloaded first).
fn no_stop_if_changed_restarts(p: &Parity) {
    p.base(&v1());
    let s = p.switch(&node(&[simple("v2", "", "", "")])).ok();
    s.assert_jobs(&["restart test.service"]);
    assert_eq!(p.events("test"), ["stop:v2", "start:v2"]);
}

/// simpleServiceReload: reloadIfChanged = true reloads.
fn reload_if_changed_reloads(p: &Parity) {
    p.base(&v1());
    let s = p
        .switch(&node(&[simple("v2", "", "", r#"on_change: "reload","#)]))
        .ok();
    s.assert_jobs(&["reload test.service"]);
    assert_eq!(p.events("test"), ["reload:v2"]);
}

/// simpleServiceNorestart: restartIfChanged = false leaves it alone.
fn no_restart_if_changed_is_left_alone(p: &Parity) {
    p.base(&v1());
    let s = p
        .switch(&node(&[simple("v2", "", "", r#"on_change: "keep","#)]))
        .ok();
    s.assert_jobs(&[]);
    assert!(
        s.left_alone()
            .iter()
            .any(|l| l.starts_with("test.service ") && l.contains("keep")),
        "{}",
        s.out
    );
    assert_eq!(p.events("test"), Vec::<String>::new());
}

/// "Dry mode shows different messages": `archy switch --dry-run` and
/// `archy diff` print the plan and change nothing.
fn dry_run_changes_nothing(p: &Parity) {
    p.base(&v1());
    let before = p.current();
    p.n.write(&node(&[simple("v2", "", "", "")]));
    for args in [
        &["switch", "--dry-run", "/etc/archy/node.rhai"][..],
        &["diff", "/etc/archy/node.rhai"][..],
    ] {
        let s = p.run(args).ok();
        s.assert_jobs(&["restart test.service"]);
    }
    assert_eq!(p.events("test"), Vec::<String>::new());
    assert_eq!(p.current(), before);
    assert!(
        p.sh("cat /etc/systemd/system/test.service")
            .contains("start:v1")
    );
}

/// unitWithMultilineValue: ExecStart= in systemd's continuation form (a
/// line ending in `\`, comment lines inside) either works, or is refused
/// with a hint that fits ExecStart= (not "give several values as an
/// array", which would make several commands).
fn multiline_value(p: &Parity) {
    p.base(&v1());
    let exec = r#""/bin/sh -c 'echo start:ml >> /run/parity/test.log' \\\n  # ignored\n  ; ignored\n  blah blah""#;
    let text = v1().replace(
        "\"/bin/sh -c 'echo start:v1 >> /run/parity/test.log'\"",
        exec,
    );
    assert!(text.contains("blah blah"), "{text}");
    let s = p.switch(&text);
    match s.code {
        Some(0) => {
            s.assert_jobs(&["restart test.service"]);
            assert_eq!(p.events("test"), ["stop:v1", "start:ml"]);
        }
        Some(1) => {
            s.assert_says("ExecStart");
            assert!(
                !s.out.contains("as an array"),
                "the hint is wrong for ExecStart=:\n{}",
                s.out
            );
        }
        _ => panic!("switch: {:?}\n{}", s.code, s.out),
    }
}

fn escaped(v: &str) -> String {
    node(&[oneshot(
        "escaped\\\\x2ddash.service",
        "escaped",
        v,
        "",
        "",
        "",
    )])
}

/// unitWithBackslash: `\` in a unit name.
fn unit_with_backslash_is_started(p: &Parity) {
    p.base(&v1());
    let s = p.switch(&escaped("v1")).ok();
    s.assert_jobs(&["start escaped\\x2ddash.service", "stop test.service"]);
    assert_eq!(p.events("escaped"), ["start:v1"]);
    assert_eq!(p.events("test"), ["stop:v1"]);
    assert_eq!(p.state("escaped\\x2ddash.service"), "active");
}

/// unitWithBackslashModified (the change is in ExecStart= here, so that
/// it does not depend on how X- keys are compared).
fn unit_with_backslash_modified_is_restarted(p: &Parity) {
    p.base(&escaped("v1"));
    let s = p.switch(&escaped("v2")).ok();
    s.assert_jobs(&["restart escaped\\x2ddash.service"]);
    assert_eq!(p.events("escaped"), ["stop:v2", "start:v2"]);
}

fn dash(v: &str, opts: &str) -> String {
    node(&[oneshot("-.service", "dash", v, "", "", opts)])
}

fn dash_state(p: &Parity) -> String {
    p.sh("systemctl show -P ActiveState -- -.service")
        .trim()
        .to_string()
}

/// unitStartingWithDash: a unit called `-.service`.
fn unit_starting_with_dash_is_started(p: &Parity) {
    p.base(&escaped("v1"));
    let s = p.switch(&dash("v1", "")).ok();
    s.assert_jobs(&["start -.service", "stop escaped\\x2ddash.service"]);
    assert_eq!(p.events("dash"), ["start:v1"]);
    assert_eq!(dash_state(p), "active");
}

/// unitStartingWithDashModified: reloading it ("the regression only occurs
/// when reloading units").
fn unit_starting_with_dash_is_reloaded(p: &Parity) {
    p.base(&dash("v1", ""));
    let s = p.switch(&dash("v2", r#"on_change: "reload","#)).ok();
    s.assert_jobs(&["reload -.service"]);
    assert_eq!(p.events("dash"), ["reload:v2"]);
}

/// unitWithRequirement: test-service Requires= required-service; `trigger`
/// is the text of a file test-service reads, `reads` how it reads it.
fn requirement(required_v: &str, test_unit: &str, trigger: &str, reads: &str) -> String {
    node(&[
        format!(r#"file("/etc/parity/trigger", #{{ text: "{trigger}\n" }}),"#),
        oneshot(
            "required-service.service",
            "required",
            required_v,
            "",
            "",
            "",
        ),
        oneshot(
            "test-service.service",
            "testsvc",
            "v1",
            &format!(
                r#"Requires: "required-service.service", After: "required-service.service", {test_unit}"#
            ),
            "",
            reads,
        ),
    ])
}

/// unitWithRequirement: both new units start.
fn unit_with_requirement_is_started(p: &Parity) {
    p.base(&dash("v1", ""));
    let s = p.switch(&requirement("v1", "", "one", "")).ok();
    s.assert_jobs(&[
        "start required-service.service",
        "start test-service.service",
        "stop -.service",
    ]);
    assert_eq!(p.events("required"), ["start:v1"]);
    assert_eq!(p.events("testsvc"), ["start:v1"]);
}

/// unitWithRequirementModified: required-service changes and so does a
/// reload trigger of test-service: test-service restarts once, with
/// required-service (systemd restarts it along), and is not reloaded.
fn unit_with_requirement_modified_restarts_both(p: &Parity) {
    p.base(&requirement("v1", "", "one", ""));
    let s = p
        .switch(&requirement(
            "v2",
            "",
            "two",
            r#"reads: [#{ path: "/etc/parity/trigger", on_change: "reload" }],"#,
        ))
        .ok();
    s.assert_jobs(&[
        "restart required-service.service",
        "restart test-service.service",
    ]);
    let (_, _, why) = s
        .jobs()
        .into_iter()
        .find(|(_, u, _)| u == "test-service.service")
        .expect("a line for test-service");
    assert!(why.contains("required-service.service"), "{}", s.out);
    assert_eq!(p.events("required"), ["stop:v2", "start:v2"]);
    assert_eq!(p.events("testsvc"), ["stop:v1", "start:v1"]);
}

/// unitWithRequirementModifiedNostart: test-service says
/// RefuseManualStart=yes. The switch must not ask systemd to start or
/// restart it (which systemd refuses, failing the switch); systemd itself
/// restarts it along with required-service, which the plan shows.
fn unit_with_requirement_refusing_manual_start(p: &Parity) {
    p.base(&requirement("v1", "", "one", ""));
    let before = p.current().expect("a current generation");
    let s = p
        .switch(&requirement("v2", "RefuseManualStart: true,", "one", ""))
        .ok();
    // The new generation runs (numbers are not consecutive: a generation
    // an earlier scenario rolled back keeps its number).
    let now = p.current().expect("a current generation");
    assert!(now > before, "{}", s.out);
    assert!(
        s.out.contains(&format!("switched to generation {now}")),
        "{}",
        s.out
    );
    assert_eq!(s.ops_of("required-service.service"), ["restart"]);
    for (op, unit, why) in s.jobs() {
        if unit == "test-service.service" {
            assert!(
                op == "restart" && why.contains("required-service.service"),
                "test-service must have no job of its own: {op} {why}\n{}",
                s.out
            );
        }
    }
    assert_eq!(p.events("required"), ["stop:v2", "start:v2"]);
    assert_eq!(p.state("test-service.service"), "active");
}

fn template(v: &str) -> String {
    node(&[format!(
        r#"unit("instantiated@.service", #{{
    Service: #{{
        Type: "oneshot", RemainAfterExit: true,
        ExecStart: "/bin/sh -c 'echo start:{v}:%i >> /run/parity/inst.log'",
        ExecStop: "/bin/sh -c 'echo stop:{v}:%i >> /run/parity/inst.log'",
    }},
    Install: #{{ WantedBy: "multi-user.target" }},
    instances: ["one", "two"],
}}),"#
    )])
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// unitWithTemplate: declared instances of a template are started.
fn template_instances_are_started(p: &Parity) {
    p.base("[]");
    let s = p.switch(&template("v1")).ok();
    s.assert_jobs(&[
        "start instantiated@one.service",
        "start instantiated@two.service",
    ]);
    assert_eq!(sorted(p.events("inst")), ["start:v1:one", "start:v1:two"]);
}

/// unitWithTemplateModified: a changed template restarts its instances.
fn template_change_restarts_instances(p: &Parity) {
    p.base(&template("v1"));
    let s = p.switch(&template("v2")).ok();
    s.assert_jobs(&[
        "restart instantiated@one.service",
        "restart instantiated@two.service",
    ]);
    assert_eq!(
        sorted(p.events("inst")),
        ["start:v2:one", "start:v2:two", "stop:v2:one", "stop:v2:two"]
    );
}

/// "aborts on already locked lock file": another process holds archy's
/// lock; the switch fails at once (no hang) and does not name the last
/// archy that held it as the holder.
fn aborts_on_a_held_lock(p: &Parity) {
    p.base(&v1());
    p.sh("setsid flock -x /var/lib/archy/lock sleep 3 </dev/null >/dev/null 2>&1 &");
    p.wait_for("flock to hold the lock", 5, || {
        !p.sh_ok("flock -n /var/lib/archy/lock true")
    });
    let t = std::time::Instant::now();
    let s = p.run(&["switch", "/etc/archy/node.rhai"]);
    assert!(t.elapsed().as_secs() < 3, "the switch waited for the lock");
    assert_eq!(s.code, Some(1), "{}", s.out);
    s.assert_says("another");
    assert!(
        !s.out.contains(": archy switch"),
        "names the last archy, not the process that holds the lock:\n{}",
        s.out
    );
    p.wait_for("flock to let go", 10, || {
        p.sh_ok("flock -n /var/lib/archy/lock true")
    });
}

const STEPS: &[Step] = &[
    ("nothing_changed_does_nothing", nothing_changed_does_nothing),
    ("simple_service_is_started", simple_service_is_started),
    (
        "same_configuration_does_nothing",
        same_configuration_does_nothing,
    ),
    (
        "different_description_does_nothing",
        different_description_does_nothing,
    ),
    (
        "modified_service_is_restarted",
        modified_service_is_restarted,
    ),
    (
        "stop_if_changed_stops_with_the_old_unit",
        stop_if_changed_stops_with_the_old_unit,
    ),
    ("no_stop_if_changed_restarts", no_stop_if_changed_restarts),
    ("reload_if_changed_reloads", reload_if_changed_reloads),
    (
        "no_restart_if_changed_is_left_alone",
        no_restart_if_changed_is_left_alone,
    ),
    ("dry_run_changes_nothing", dry_run_changes_nothing),
    ("multiline_value", multiline_value),
    (
        "unit_with_backslash_is_started",
        unit_with_backslash_is_started,
    ),
    (
        "unit_with_backslash_modified_is_restarted",
        unit_with_backslash_modified_is_restarted,
    ),
    (
        "unit_starting_with_dash_is_started",
        unit_starting_with_dash_is_started,
    ),
    (
        "unit_starting_with_dash_is_reloaded",
        unit_starting_with_dash_is_reloaded,
    ),
    (
        "unit_with_requirement_is_started",
        unit_with_requirement_is_started,
    ),
    (
        "unit_with_requirement_modified_restarts_both",
        unit_with_requirement_modified_restarts_both,
    ),
    (
        "unit_with_requirement_refusing_manual_start",
        unit_with_requirement_refusing_manual_start,
    ),
    (
        "template_instances_are_started",
        template_instances_are_started,
    ),
    (
        "template_change_restarts_instances",
        template_change_restarts_instances,
    ),
    ("aborts_on_a_held_lock", aborts_on_a_held_lock),
];

#[test]
fn switch_test_services() {
    run_in_order("parity-services", STEPS);
}

//! The planner's decisions, on graphs evaluated from small node
//! descriptions.

mod common;

use common::{graph, ops, paths, s, skipped};

use archy_graph::Graph;
use archy_plan::{ChangeOp, Observed, Reason, UnitOp, plan};

/// A node with two services (one reads a config file), a timer job and a
/// template; `conf` is the config's text, `extra` more resources.
fn node(conf: &str, extra: &str) -> Graph {
    graph(&format!(
        r#"[
            file("/etc/app/app.conf", #{{ text: "{conf}" }}),
            unit("db.service", #{{ Service: #{{ ExecStart: "/usr/bin/db" }}, Install: #{{ WantedBy: "multi-user.target" }} }}),
            unit("app.service", #{{
                Unit: #{{ Description: "App", After: "db.service", Requires: "db.service" }},
                Service: #{{ ExecStart: "/usr/bin/app --config /etc/app/app.conf" }},
                Install: #{{ WantedBy: "multi-user.target" }},
            }}),
            unit("backup.service", #{{ Service: #{{ Type: "oneshot", ExecStart: "/usr/bin/backup" }}, on_change: "keep" }}),
            unit("backup.timer", #{{ Timer: #{{ OnCalendar: "daily", Persistent: true }}, Install: #{{ WantedBy: "timers.target" }} }}),
            unit("worker@.service", #{{ Service: #{{ ExecStart: "/usr/bin/worker %i" }} }}),
            {extra}
        ]"#
    ))
}

#[test]
fn first_switch_starts_installed_units_in_dependency_order() {
    let p = plan(None, &node("port=1", ""), &Observed::default());
    assert_eq!(
        ops(&p),
        vec![
            (s("db.service"), UnitOp::Start),
            (s("app.service"), UnitOp::Start),
            (s("backup.timer"), UnitOp::Start),
        ]
    );
    assert_eq!(
        skipped(&p),
        vec![
            ("backup.service", &Reason::NotInstalled),
            ("worker@.service", &Reason::Template)
        ]
    );
    assert_eq!(p.unit_files_changed.len(), 5);
    assert_eq!(p.changes.len(), 1);
    assert_eq!(p.changes[0].op, ChangeOp::Create);
}

#[test]
fn the_same_generation_is_an_empty_plan() {
    let g = node("port=1", "");
    let p = plan(Some(&g), &g, &Observed::default());
    assert!(p.is_empty(), "{p:#?}");
    assert_eq!(p.unchanged, 6);
}

#[test]
fn a_changed_config_restarts_exactly_its_reader() {
    let p = plan(
        Some(&node("port=1", "")),
        &node("port=2", ""),
        &Observed::default(),
    );
    assert_eq!(ops(&p), vec![(s("app.service"), UnitOp::Restart)]);
    assert_eq!(
        p.units[0].reason,
        Reason::Reads {
            what: "/etc/app/app.conf".into()
        }
    );
    // The unit file itself did not change: only the file is rewritten.
    assert!(p.unit_files_changed.is_empty());
    assert_eq!(p.changes.len(), 1);
    assert_eq!(p.changes[0].op, ChangeOp::Update);
}

#[test]
fn cosmetic_and_install_only_changes_restart_nothing() {
    let a = graph(
        r#"[ unit("a.service", #{ Unit: #{ Description: "A" }, Service: #{ ExecStart: "/bin/a" }, Install: #{ WantedBy: "multi-user.target" } }) ]"#,
    );
    let b = graph(
        r#"[ unit("a.service", #{ Unit: #{ Description: "B" }, Service: #{ ExecStart: "/bin/a" }, Install: #{ WantedBy: "multi-user.target" } }) ]"#,
    );
    let c = graph(
        r#"[ unit("a.service", #{ Unit: #{ Description: "A" }, Service: #{ ExecStart: "/bin/a" }, Install: #{ WantedBy: "graphical.target" } }) ]"#,
    );
    let p = plan(Some(&a), &b, &Observed::default());
    assert_eq!(ops(&p), vec![]);
    assert_eq!(p.units[0].reason, Reason::Cosmetic);
    assert_eq!(paths(&p), vec![s("/etc/systemd/system/a.service")]);
    let p = plan(Some(&a), &c, &Observed::default());
    assert_eq!(ops(&p), vec![]);
    assert_eq!(p.units[0].reason, Reason::InstallOnly);
}

#[test]
fn a_changed_unit_says_which_sections_changed() {
    let a = graph(
        r#"[ unit("a.service", #{ Service: #{ ExecStart: "/bin/a" }, Install: #{ WantedBy: "multi-user.target" } }) ]"#,
    );
    let b = graph(
        r#"[ unit("a.service", #{ Service: #{ ExecStart: "/bin/b" }, Install: #{ WantedBy: "multi-user.target" } }) ]"#,
    );
    let p = plan(Some(&a), &b, &Observed::default());
    assert_eq!(ops(&p), vec![(s("a.service"), UnitOp::Restart)]);
    assert_eq!(
        p.units[0].reason,
        Reason::UnitChanged {
            sections: vec![s("Service")]
        }
    );
    assert_eq!(p.units[0].reason.to_string(), "unit changed: [Service]");
}

#[test]
fn on_change_reload_and_keep_are_honoured() {
    let node = |exec: &str, on_change: &str| {
        graph(&format!(
            r#"[ unit("a.service", #{{ Service: #{{ ExecStart: "{exec}", ExecReload: "/bin/kill -HUP $MAINPID" }}, Install: #{{ WantedBy: "multi-user.target" }}, on_change: "{on_change}" }}) ]"#
        ))
    };
    let p = plan(
        Some(&node("/bin/a", "reload")),
        &node("/bin/b", "reload"),
        &Observed::default(),
    );
    assert_eq!(ops(&p), vec![(s("a.service"), UnitOp::Reload)]);
    let p = plan(
        Some(&node("/bin/a", "keep")),
        &node("/bin/b", "keep"),
        &Observed::default(),
    );
    assert_eq!(ops(&p), vec![]);
    assert_eq!(p.units[0].reason, Reason::KeptRunning);
}

#[test]
fn removed_units_stop_dependents_first_and_data_stays() {
    let before = node(
        "port=1",
        r#"dir("/var/lib/app"), dir("/var/cache/app", #{ disposable: true }), file("/etc/old.conf", #{ text: "x" }),"#,
    );
    let after = graph(
        r#"[ unit("other.service", #{ Service: #{ ExecStart: "/bin/o" }, Install: #{ WantedBy: "multi-user.target" } }) ]"#,
    );
    let p = plan(Some(&before), &after, &Observed::default());
    assert_eq!(
        ops(&p),
        vec![
            (s("backup.timer"), UnitOp::Stop),
            (s("backup.service"), UnitOp::Stop),
            (s("app.service"), UnitOp::Stop),
            (s("db.service"), UnitOp::Stop),
            (s("other.service"), UnitOp::Start),
        ]
    );
    let change = |id: &str| {
        p.changes
            .iter()
            .find(|c| c.key.id == id)
            .map(|c| (&c.op, &c.reason))
    };
    assert_eq!(
        change("/var/lib/app"),
        Some((&ChangeOp::Keep, &Reason::DataKept))
    );
    assert_eq!(
        change("/var/cache/app"),
        Some((&ChangeOp::Remove, &Reason::Removed))
    );
    assert_eq!(
        change("/etc/old.conf"),
        Some((&ChangeOp::Remove, &Reason::Removed))
    );
    // The template's file goes, but a template is never stopped itself.
    assert!(paths(&p).contains(&s("/etc/systemd/system/worker@.service")));
    assert!(!p.units.iter().any(|u| u.unit == "worker@.service"));
}

#[test]
fn restarts_follow_dependencies_through_the_graph() {
    let chain = |v: &str| {
        graph(&format!(
            r#"[
                unit("ui.service", #{{ Unit: #{{ After: "lnd.service" }}, Service: #{{ ExecStart: "/bin/ui {v}" }}, Install: #{{ WantedBy: "multi-user.target" }} }}),
                unit("lnd.service", #{{ Unit: #{{ After: "bitcoind.service" }}, Service: #{{ ExecStart: "/bin/lnd" }}, Install: #{{ WantedBy: "multi-user.target" }} }}),
                unit("bitcoind.service", #{{ Service: #{{ ExecStart: "/bin/bitcoind {v}" }}, Install: #{{ WantedBy: "multi-user.target" }} }}),
            ]"#
        ))
    };
    let p = plan(Some(&chain("1")), &chain("2"), &Observed::default());
    // lnd is untouched, yet ui still comes after bitcoind through it.
    assert_eq!(
        ops(&p),
        vec![
            (s("bitcoind.service"), UnitOp::Restart),
            (s("ui.service"), UnitOp::Restart)
        ]
    );
}

#[test]
fn a_file_archy_did_not_write_is_refused_unless_adopted() {
    let g = graph(
        r#"[ file("/etc/motd", #{ text: "hi" }), unit("x.service", #{ Service: #{ ExecStart: "/bin/x" } }) ]"#,
    );
    let observed = Observed {
        unowned: [s("/etc/motd"), s("/etc/systemd/system/x.service")].into(),
        ..Observed::default()
    };
    let p = plan(None, &g, &observed);
    let refused: Vec<_> = p.refusals().map(|c| c.key.id.as_str()).collect();
    assert_eq!(refused, vec!["/etc/motd", "x.service"]);
    let p = plan(
        None,
        &g,
        &Observed {
            adopt: true,
            ..observed
        },
    );
    assert_eq!(p.refusals().count(), 0);
    assert_eq!(p.changes[0].reason, Reason::Adopted);
}

#[test]
fn a_rotated_secret_is_generated_and_restarts_its_readers() {
    let node = |version: u32| {
        graph(&format!(
            r#"[
                secret("rpc", #{{ version: {version}, regenerate: true }}),
                unit("a.service", #{{ Service: #{{ ExecStart: "/bin/a" }}, Install: #{{ WantedBy: "multi-user.target" }}, secrets: ["rpc"] }}),
                unit("b.service", #{{ Service: #{{ ExecStart: "/bin/b" }}, Install: #{{ WantedBy: "multi-user.target" }} }}),
            ]"#
        ))
    };
    let p = plan(Some(&node(1)), &node(2), &Observed::default());
    assert_eq!(p.changes[0].op, ChangeOp::Generate);
    assert_eq!(ops(&p), vec![(s("a.service"), UnitOp::Restart)]);
    assert_eq!(p.units[0].reason, Reason::Reads { what: "rpc".into() });
    // A secret missing on disk is generated again even if nothing changed
    // (this one says that is safe).
    let observed = Observed {
        missing_secrets: [s("rpc")].into(),
        ..Observed::default()
    };
    let p = plan(Some(&node(1)), &node(1), &observed);
    assert_eq!(p.changes.len(), 1);
    assert_eq!(p.changes[0].op, ChangeOp::Generate);
}

#[test]
fn the_plan_reads_well() {
    let before = node("port=1", r#"file("/etc/old.conf", #{ text: "x" }),"#);
    let after = node(
        "port=2",
        r#"unit("new.service", #{ Service: #{ ExecStart: "/bin/new" }, Install: #{ WantedBy: "multi-user.target" } }),"#,
    );
    let p = plan(Some(&before), &after, &Observed::default());
    insta::assert_snapshot!(archy_plan::display::render(&p));
    insta::assert_json_snapshot!(p);
}

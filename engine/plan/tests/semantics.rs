//! NixOS's switch-to-configuration semantics for units that changed: only
//! what runs is restarted, targets are started, slices are never restarted,
//! units that refuse manual jobs get none, a mount's options are a remount,
//! reload triggers reload, and `stop-start` units are stopped with their
//! old definition first.

mod common;

use common::{graph, ops, s, skipped, u};

use archy_graph::Graph;
use archy_plan::{Observed, Reason, UnitOp, plan};

/// A plan from `before` to `after` (each a list of resources), with the
/// named units observed not running.
fn switch(before: &str, after: &str, inactive: &[&str]) -> archy_plan::Plan {
    let observed = Observed {
        inactive_units: inactive.iter().map(|n| u(n)).collect(),
        ..Observed::default()
    };
    plan(Some(&g(before)), &g(after), &observed)
}

fn g(items: &str) -> Graph {
    graph(&format!("[{items}]"))
}

fn service(name: &str, exec: &str, extra: &str) -> String {
    format!(
        r#"unit("{name}", #{{ Service: #{{ ExecStart: "{exec}" }}, Install: #{{ WantedBy: "multi-user.target" }}, {extra} }}),"#
    )
}

#[test]
fn a_changed_unit_that_does_not_run_is_restarted_only_if_wanted() {
    // socket-activated: no [Install]; it stays down, the socket starts it.
    let on_demand =
        |exec: &str| format!(r#"unit("api.service", #{{ Service: #{{ ExecStart: "{exec}" }} }}),"#);
    let p = switch(&on_demand("/bin/a"), &on_demand("/bin/b"), &["api.service"]);
    assert!(ops(&p).is_empty(), "{p:#?}");
    assert_eq!(skipped(&p), vec![("api.service", &Reason::NotRunning)]);
    // Running: restarted as before.
    let p = switch(&on_demand("/bin/a"), &on_demand("/bin/b"), &[]);
    assert_eq!(ops(&p), vec![(s("api.service"), UnitOp::Restart)]);
    // Wanted at boot but stopped by hand: it stays stopped.
    let p = switch(
        &service("db.service", "/bin/a", ""),
        &service("db.service", "/bin/b", ""),
        &["db.service"],
    );
    assert!(ops(&p).is_empty(), "{p:#?}");
    assert_eq!(skipped(&p), vec![("db.service", &Reason::NotRunning)]);
    // A rollback starts it: it failed in the generation that failed, and
    // the one the node goes back to ran it. It is a restart, which starts
    // a unit that is down and also restarts one that came up after the
    // rollback looked (a restart the interrupted switch had asked for).
    let observed = Observed {
        inactive_units: [u("db.service")].into(),
        start_wanted: true,
        ..Observed::default()
    };
    let p = plan(
        Some(&g(&service("db.service", "/bin/b", ""))),
        &g(&service("db.service", "/bin/a", "")),
        &observed,
    );
    assert_eq!(ops(&p), vec![(s("db.service"), UnitOp::Restart)]);
}

#[test]
fn units_that_refuse_manual_jobs_get_none() {
    let refusing =
        |key: &str, exec: &str| service("r.service", exec, &format!(r#"Unit: #{{ {key}: true }}"#));
    let p = switch(
        &refusing("RefuseManualStart", "/bin/a"),
        &refusing("RefuseManualStart", "/bin/b"),
        &[],
    );
    assert!(ops(&p).is_empty(), "{p:#?}");
    assert_eq!(
        skipped(&p),
        vec![("r.service", &Reason::RefusesManualStart)]
    );
    let p = switch(
        &refusing("RefuseManualStop", "/bin/a"),
        &refusing("RefuseManualStop", "/bin/b"),
        &[],
    );
    assert!(ops(&p).is_empty(), "{p:#?}");
    assert_eq!(skipped(&p), vec![("r.service", &Reason::RefusesManualStop)]);
    assert!(
        Reason::RefusesManualStop
            .to_string()
            .starts_with("not restarted: refuses manual stop")
    );
    // Adding or removing the keys themselves restarts nothing.
    let p = switch(
        &service("r.service", "/bin/a", ""),
        &refusing("RefuseManualStart", "/bin/a"),
        &[],
    );
    assert!(ops(&p).is_empty(), "{p:#?}");
    // New: never started by hand. Removed: not stopped by hand.
    let p = plan(
        None,
        &g(&refusing("RefuseManualStart", "/bin/a")),
        &Observed::default(),
    );
    assert!(ops(&p).is_empty(), "{p:#?}");
    // A removed unit that does not run needs no stop.
    let p = switch(
        &service("gone.service", "/bin/a", ""),
        "",
        &["gone.service"],
    );
    assert!(ops(&p).is_empty(), "{p:#?}");
    let p = switch(&service("gone.service", "/bin/a", ""), "", &[]);
    assert_eq!(ops(&p), vec![(s("gone.service"), UnitOp::Stop)]);
    let p = switch(&refusing("RefuseManualStop", "/bin/a"), "", &[]);
    assert!(ops(&p).is_empty(), "{p:#?}");
    assert_eq!(skipped(&p), vec![("r.service", &Reason::RefusesManualStop)]);
}

#[test]
fn a_mount_whose_options_changed_is_remounted() {
    let mount = |options: &str, what: &str| {
        format!(
            r#"unit("mnt-data.mount", #{{ Mount: #{{ What: "{what}", Where: "/mnt/data", Type: "tmpfs", Options: "{options}" }}, Install: #{{ WantedBy: "local-fs.target" }} }}),"#
        )
    };
    let p = switch(&mount("size=1M", "tmpfs"), &mount("size=2M", "tmpfs"), &[]);
    assert_eq!(ops(&p), vec![(s("mnt-data.mount"), UnitOp::Reload)]);
    let p = switch(&mount("size=1M", "tmpfs"), &mount("size=2M", "none"), &[]);
    assert_eq!(ops(&p), vec![(s("mnt-data.mount"), UnitOp::Restart)]);
}

#[test]
fn targets_are_started_and_slices_never_restarted() {
    let target = |wants: &str| {
        format!(
            r#"unit("app.target", #{{ Unit: #{{ Wants: "{wants}" }}, Install: #{{ WantedBy: "multi-user.target" }} }}),"#
        )
    };
    let p = switch(&target("a.service"), &target("b.service"), &[]);
    assert_eq!(ops(&p), vec![(s("app.target"), UnitOp::Start)]);
    let slice =
        |quota: &str| format!(r#"unit("app.slice", #{{ Slice: #{{ CPUQuota: "{quota}" }} }}),"#);
    let p = switch(&slice("10%"), &slice("20%"), &[]);
    assert!(ops(&p).is_empty(), "{p:#?}");
    assert_eq!(skipped(&p), vec![("app.slice", &Reason::Slice)]);
}

#[test]
fn only_nixos_cosmetic_keys_are_cosmetic() {
    let with_unit =
        |entries: &str| service("a.service", "/bin/a", &format!("Unit: #{{ {entries} }}"));
    for (before, after, restarts) in [
        (r#"Description: "A""#, r#"Description: "B""#, false),
        (
            r#"OnFailure: "x.service""#,
            r#"OnFailure: "y.service""#,
            false,
        ),
        (r#""X-Restart": "1""#, r#""X-Restart": "2""#, true),
        (
            r#"Description: "A""#,
            r#"Description: "A", "X-New": "1""#,
            true,
        ),
    ] {
        let p = switch(&with_unit(before), &with_unit(after), &[]);
        let expected = if restarts {
            vec![(s("a.service"), UnitOp::Restart)]
        } else {
            vec![]
        };
        assert_eq!(ops(&p), expected, "{before} -> {after}");
    }
    // A section of the author's own counts too.
    let p = switch(
        &service("a.service", "/bin/a", r#""X-Mine": #{ Generation: "1" }"#),
        &service("a.service", "/bin/a", r#""X-Mine": #{ Generation: "2" }"#),
        &[],
    );
    assert_eq!(ops(&p), vec![(s("a.service"), UnitOp::Restart)]);
}

#[test]
fn a_reload_trigger_reloads_and_anything_else_restarts() {
    let node = |conf: &str, other: &str, exec: &str| {
        format!(
            r#"file("/etc/web/web.conf", #{{ text: "{conf}" }}),
            file("/etc/web/other.conf", #{{ text: "{other}" }}),
            unit("web.service", #{{
                Service: #{{ ExecStart: "{exec}", ExecReload: "/bin/kill -HUP $MAINPID" }},
                Install: #{{ WantedBy: "multi-user.target" }},
                reads: [#{{ path: "/etc/web/web.conf", on_change: "reload" }}, "/etc/web/other.conf"],
            }}),"#
        )
    };
    let p = switch(
        &node("a", "x", "/bin/web"),
        &node("b", "x", "/bin/web"),
        &[],
    );
    assert_eq!(ops(&p), vec![(s("web.service"), UnitOp::Reload)]);
    let p = switch(
        &node("a", "x", "/bin/web"),
        &node("a", "y", "/bin/web"),
        &[],
    );
    assert_eq!(ops(&p), vec![(s("web.service"), UnitOp::Restart)]);
    let p = switch(
        &node("a", "x", "/bin/web"),
        &node("b", "y", "/bin/web"),
        &[],
    );
    assert_eq!(ops(&p), vec![(s("web.service"), UnitOp::Restart)]);
    let p = switch(
        &node("a", "x", "/bin/web"),
        &node("b", "x", "/bin/web2"),
        &[],
    );
    assert_eq!(ops(&p), vec![(s("web.service"), UnitOp::Restart)]);
}

#[test]
fn stop_start_stops_with_the_old_definition_then_starts_what_stopped_with_it() {
    let node = |exec: &str| {
        format!(
            r#"{}
            unit("user.service", #{{ Unit: #{{ Requires: "db.service", After: "db.service" }}, Service: #{{ ExecStart: "/bin/user" }}, Install: #{{ WantedBy: "multi-user.target" }} }}),"#,
            service("db.service", exec, r#"on_change: "stop-start""#)
        )
    };
    let p = switch(&node("/bin/a"), &node("/bin/b"), &[]);
    assert_eq!(
        ops(&p),
        vec![
            (s("db.service"), UnitOp::Stop),
            (s("db.service"), UnitOp::Start),
            (s("user.service"), UnitOp::Start),
        ]
    );
    assert_eq!(
        p.units[2].reason,
        Reason::Follows {
            unit: u("db.service")
        }
    );
    // With plain restart, systemd restarts the dependent itself.
    let restart = |exec: &str| node(exec).replace(r#"on_change: "stop-start""#, "");
    let p = switch(&restart("/bin/a"), &restart("/bin/b"), &[]);
    assert_eq!(
        ops(&p),
        vec![
            (s("db.service"), UnitOp::Restart),
            (s("user.service"), UnitOp::Restart)
        ]
    );
    assert_eq!(p.units[1].with, Some(u("db.service")));
    // A dependent that does not run is not restarted by systemd.
    let p = switch(&restart("/bin/a"), &restart("/bin/b"), &["user.service"]);
    assert_eq!(ops(&p), vec![(s("db.service"), UnitOp::Restart)]);
}

#[test]
fn a_stop_start_service_goes_down_with_its_socket_and_comes_up_after_it() {
    let node = |exec: &str| {
        format!(
            r#"unit("echo.socket", #{{ Socket: #{{ ListenStream: "1234" }}, Install: #{{ WantedBy: "sockets.target" }} }}),
            unit("echo.service", #{{ Service: #{{ ExecStart: "{exec}" }}, on_change: "stop-start" }}),"#
        )
    };
    // The socket is stopped before the service (a client cannot activate
    // the old definition again in between) and listens again before the
    // service starts.
    let p = switch(&node("/bin/a"), &node("/bin/b"), &[]);
    assert_eq!(
        ops(&p),
        vec![
            (s("echo.socket"), UnitOp::Stop),
            (s("echo.service"), UnitOp::Stop),
            (s("echo.socket"), UnitOp::Start),
            (s("echo.service"), UnitOp::Start),
        ]
    );
    assert_eq!(
        p.units[0].reason,
        Reason::Activates {
            service: u("echo.service")
        }
    );
    // A socket that does not listen is left alone.
    let p = switch(&node("/bin/a"), &node("/bin/b"), &["echo.socket"]);
    assert_eq!(
        ops(&p),
        vec![
            (s("echo.service"), UnitOp::Stop),
            (s("echo.service"), UnitOp::Start),
        ]
    );
}

#[test]
fn a_socket_is_not_restarted_under_its_running_service() {
    let node = |port: &str| {
        format!(
            r#"unit("echo.socket", #{{ Socket: #{{ ListenStream: "{port}" }}, Install: #{{ WantedBy: "sockets.target" }} }}),
            unit("echo.service", #{{ Service: #{{ ExecStart: "/bin/echo" }} }}),"#
        )
    };
    let p = switch(&node("1234"), &node("1235"), &[]);
    assert!(ops(&p).is_empty(), "{p:#?}");
    assert_eq!(
        skipped(&p),
        vec![(
            "echo.socket",
            &Reason::SocketInUse {
                service: u("echo.service")
            }
        )]
    );
    let p = switch(&node("1234"), &node("1235"), &["echo.service"]);
    assert_eq!(ops(&p), vec![(s("echo.socket"), UnitOp::Restart)]);
}

#[test]
fn a_reload_of_a_unit_systemd_restarts_anyway_is_a_restart_with_it() {
    let node = |exec: &str, trigger: &str| {
        format!(
            r#"file("/etc/t", #{{ text: "{trigger}" }}),
            {}
            unit("user.service", #{{
                Unit: #{{ Requires: "db.service", After: "db.service" }},
                Service: #{{ ExecStart: "/bin/user", ExecReload: "/bin/true" }},
                Install: #{{ WantedBy: "multi-user.target" }},
                reads: [#{{ path: "/etc/t", on_change: "reload" }}],
            }}),"#,
            service("db.service", exec, "")
        )
    };
    let p = switch(&node("/bin/a", "1"), &node("/bin/b", "2"), &[]);
    assert_eq!(
        ops(&p),
        vec![
            (s("db.service"), UnitOp::Restart),
            (s("user.service"), UnitOp::Restart)
        ]
    );
    assert_eq!(p.units[1].with, Some(u("db.service")));
    // Alone, the trigger reloads.
    let p = switch(&node("/bin/a", "1"), &node("/bin/a", "2"), &[]);
    assert_eq!(ops(&p), vec![(s("user.service"), UnitOp::Reload)]);
}

//! Apps' lifecycles: a stopped app's units are stopped and disabled and
//! never started; its data stays unless `--clobber` names it.

mod common;

use common::{graph, ops, paths, s, skipped, u};

use archy_graph::{Graph, Kind};
use archy_plan::{ChangeOp, Clobber, Clobbering, Observed, Plan, Reason, UnitOp, plan};

const BUSYBOX: &str = "localhost/testbed/busybox:latest";

/// The app `counter` (a service, a container and a data directory) in
/// `state`, or left out with `None`; `other.service` runs beside it.
fn node(state: Option<&str>, exec: &str) -> Graph {
    let app = match state {
        Some(state) => format!(
            r#"
            dir("/var/lib/counter", #{{ mode: 0o750 }}),
            unit("counter.service", #{{
                Service: #{{ ExecStart: "{exec}" }},
                Install: #{{ WantedBy: "multi-user.target" }},
            }}),
            container("box", #{{ image: "{BUSYBOX}" }}),
            app_lifecycle("counter", #{{ state: "{state}", units: ["counter.service", "box.service"], data: ["/var/lib/counter"] }}),"#
        ),
        None => String::new(),
    };
    graph(&format!(
        r#"[
            unit("other.service", #{{
                Service: #{{ ExecStart: "/bin/other" }},
                Install: #{{ WantedBy: "multi-user.target" }},
            }}),{app}
        ]"#
    ))
}

const EXEC: &str = "/bin/counter";

fn planned(from: &Graph, to: &Graph, inactive: &[&str], clobber: &[&str]) -> Plan {
    let observed = Observed {
        inactive_units: inactive.iter().map(|x| u(x)).collect(),
        clobber: Clobbering {
            apps: clobber.iter().map(|x| s(x)).collect(),
            earlier: vec![],
        },
        ..Observed::default()
    };
    plan(Some(from), to, &observed)
}

fn stopped_reason() -> Reason {
    Reason::AppStopped { app: s("counter") }
}

#[test]
fn stopping_an_app_stops_and_disables_its_units_and_keeps_its_data() {
    let p = planned(
        &node(Some("running"), EXEC),
        &node(Some("stopped"), EXEC),
        &[],
        &[],
    );
    let mut stops = ops(&p);
    stops.sort();
    assert_eq!(
        stops,
        [
            (s("box.service"), UnitOp::Stop),
            (s("counter.service"), UnitOp::Stop)
        ]
    );
    assert!(
        p.units
            .iter()
            .filter(|a| a.op == UnitOp::Stop)
            .all(|a| a.reason == stopped_reason())
    );
    // Their files are written again without [Install] (the links go).
    assert_eq!(
        paths(&p),
        [
            "/etc/containers/systemd/box.container",
            "/etc/systemd/system/counter.service"
        ]
    );
    assert!(p.changes.is_empty(), "{:?}", p.changes);
    assert!(p.clobber.is_empty());
}

#[test]
fn a_stopped_app_that_stays_stopped_is_left_alone_even_when_started_by_hand() {
    let g = node(Some("stopped"), EXEC);
    // Nothing is inactive: someone started it by hand.
    let p = planned(&g, &g, &[], &[]);
    assert!(p.is_empty(), "{p:#?}");
}

#[test]
fn a_stopped_app_whose_unit_changed_is_not_restarted() {
    let p = planned(
        &node(Some("stopped"), EXEC),
        &node(Some("stopped"), "/bin/counter --fast"),
        &[],
        &[],
    );
    assert!(ops(&p).is_empty(), "{:?}", ops(&p));
    assert_eq!(skipped(&p), [("counter.service", &stopped_reason())]);
    assert_eq!(paths(&p), ["/etc/systemd/system/counter.service"]);
}

#[test]
fn a_new_app_declared_stopped_is_not_started() {
    let p = planned(&node(None, EXEC), &node(Some("stopped"), EXEC), &[], &[]);
    assert!(ops(&p).is_empty(), "{:?}", ops(&p));
    assert_eq!(p.changes.len(), 1);
    assert_eq!(p.changes[0].key.kind, Kind::Dir);
}

#[test]
fn running_again_starts_the_units_that_are_down() {
    let p = planned(
        &node(Some("stopped"), EXEC),
        &node(Some("running"), EXEC),
        &["counter.service", "box.service"],
        &[],
    );
    let mut starts = ops(&p);
    starts.sort();
    assert_eq!(
        starts,
        [
            (s("box.service"), UnitOp::Start),
            (s("counter.service"), UnitOp::Start)
        ]
    );
    assert!(
        p.touched_units()
            .all(|a| a.reason == Reason::AppStarted { app: s("counter") })
    );
}

#[test]
fn dropping_an_app_stops_and_removes_its_units_and_keeps_its_data() {
    let p = planned(&node(Some("running"), EXEC), &node(None, EXEC), &[], &[]);
    let mut stops = ops(&p);
    stops.sort();
    assert_eq!(
        stops,
        [
            (s("box.service"), UnitOp::Stop),
            (s("counter.service"), UnitOp::Stop)
        ]
    );
    assert!(p.touched_units().all(|a| a.reason == Reason::Removed));
    let dir: Vec<_> = p
        .changes
        .iter()
        .filter(|c| c.key.kind == Kind::Dir)
        .collect();
    assert_eq!(dir.len(), 1);
    assert_eq!(
        (&dir[0].op, &dir[0].reason),
        (&ChangeOp::Keep, &Reason::DataKept)
    );
    assert!(p.clobber.is_empty());
}

#[test]
fn clobbering_a_dropped_app_removes_its_data_from_the_live_generation() {
    let p = planned(
        &node(Some("running"), EXEC),
        &node(None, EXEC),
        &[],
        &["counter"],
    );
    assert_eq!(
        p.clobber,
        [Clobber {
            app: s("counter"),
            path: s("/var/lib/counter")
        }]
    );
    insta::assert_snapshot!(archy_plan::display::render(&p));
}

#[test]
fn clobbering_a_stopped_app_makes_its_directory_again_empty() {
    let g = node(Some("stopped"), EXEC);
    let p = planned(&g, &g, &["counter.service", "box.service"], &["counter"]);
    assert_eq!(p.clobber.len(), 1);
    assert_eq!(p.changes.len(), 1, "{:?}", p.changes);
    assert_eq!(p.changes[0].op, ChangeOp::Create);
    assert_eq!(p.changes[0].reason, Reason::Clobbered { app: s("counter") });
    assert!(ops(&p).is_empty());
    insta::assert_snapshot!(archy_plan::display::render(&p));
}

#[test]
fn without_clobber_nothing_is_removed_and_an_unknown_app_clobbers_nothing() {
    let p = planned(
        &node(Some("running"), EXEC),
        &node(None, EXEC),
        &[],
        &["nosuch"],
    );
    assert!(p.clobber.is_empty());
}

#[test]
fn clobbering_an_app_an_earlier_switch_dropped_takes_its_data_from_that_generation() {
    let earlier = node(Some("running"), EXEC);
    let spec = archy_graph::app::app(&earlier, "counter")
        .expect("the app")
        .clone();
    let without = node(None, EXEC);
    let observed = Observed {
        clobber: Clobbering {
            apps: [s("counter")].into(),
            earlier: vec![spec],
        },
        ..Observed::default()
    };
    let p = plan(Some(&without), &without, &observed);
    assert_eq!(
        p.clobber,
        [Clobber {
            app: s("counter"),
            path: s("/var/lib/counter")
        }]
    );
    // Nothing else: no unit of it is left, no directory is made again.
    assert!(p.changes.is_empty(), "{:?}", p.changes);
    assert!(p.touched_units().next().is_none());
}

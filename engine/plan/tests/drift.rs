//! Drift turned into a plan: the current generation planned against
//! itself with what `archy status` observed, as `archy reconcile` does.

mod common;

use common::{graph, ops, paths, s, u};

use archy_graph::{Graph, Kind};
use archy_plan::{ChangeOp, Drift, Observed, Plan, Reason, UnitOp, plan};

const BUSYBOX: &str = "localhost/testbed/busybox:latest";

fn node() -> Graph {
    graph(&format!(
        r#"[
            file("/etc/app/app.conf", #{{ text: "port=1\n" }}),
            secret("rpc", #{{ length: 24, regenerate: true }}),
            secret("wallet", #{{ length: 24 }}),
            file("/etc/app/rpc.conf", #{{ text: "rpcauth={{{{secret.rpc | rpcauth app}}}}\n" }}),
            file("/etc/app/wallet", #{{ text: "{{{{secret.wallet}}}}" }}),
            unit("app.service", #{{
                Service: #{{ ExecStart: "/usr/bin/app /etc/app/app.conf /etc/app/rpc.conf" }},
                Install: #{{ WantedBy: "multi-user.target" }},
            }}),
            unit("wallet.service", #{{
                Service: #{{ ExecStart: "/usr/bin/wallet /etc/app/wallet" }},
                Install: #{{ WantedBy: "multi-user.target" }},
            }}),
            unit("calm.service", #{{
                Service: #{{ ExecStart: "/usr/bin/calm" }},
                Install: #{{ WantedBy: "multi-user.target" }},
                on_change: "keep",
            }}),
            unit("job.service", #{{ Service: #{{ Type: "oneshot", ExecStart: "/usr/bin/job" }} }}),
            network("net", #{{}}),
            container("db", #{{ image: "{BUSYBOX}", network: "net" }}),
            container("web", #{{ image: "{BUSYBOX}", network: "net", requires: ["db"] }}),
        ]"#
    ))
}

fn with(drift: Vec<Drift>) -> Plan {
    let g = node();
    let observed = Observed {
        drift,
        ..Observed::default()
    };
    plan(Some(&g), &g, &observed)
}

fn inactive(unit: &str) -> Drift {
    Drift::Inactive {
        unit: u(unit),
        state: "inactive (dead)".into(),
    }
}

#[test]
fn no_drift_no_plan() {
    let p = with(vec![]);
    assert!(p.is_empty(), "{p:#?}");
}

#[test]
fn a_stopped_unit_is_started_and_nothing_else() {
    let p = with(vec![inactive("app.service")]);
    assert_eq!(ops(&p), vec![(s("app.service"), UnitOp::Start)]);
    assert!(p.changes.is_empty());
    assert!(p.unit_files_changed.is_empty(), "no daemon-reload");
    assert_eq!(
        p.units[0].reason,
        Reason::Drifted {
            what: "inactive (dead), not running".into()
        }
    );
}

#[test]
fn a_disabled_unit_gets_its_links_back_without_a_restart() {
    let p = with(vec![Drift::Disabled {
        unit: u("app.service"),
    }]);
    assert_eq!(paths(&p), vec![s("/etc/systemd/system/app.service")]);
    assert_eq!(ops(&p), vec![]);
    assert!(!p.is_empty());
}

#[test]
fn an_edited_unit_file_is_rewritten_and_the_unit_restarted_as_its_on_change_says() {
    let edited = |unit: &str| Drift::UnitFile {
        unit: u(unit),
        path: format!("/etc/systemd/system/{unit}"),
        what: "edited".into(),
    };
    let p = with(vec![
        edited("app.service"),
        edited("calm.service"),
        edited("job.service"),
    ]);
    assert_eq!(p.unit_files_changed.len(), 3);
    // calm keeps running; job is started by something else, and reads the
    // file at its next start.
    assert_eq!(ops(&p), vec![(s("app.service"), UnitOp::Restart)]);
    // A unit that keeps running but is down is started.
    let p = with(vec![edited("calm.service"), inactive("calm.service")]);
    assert_eq!(ops(&p), vec![(s("calm.service"), UnitOp::Start)]);
}

#[test]
fn an_edited_file_is_rewritten_and_its_reader_restarted_once() {
    let p = with(vec![
        Drift::Content {
            kind: Kind::File,
            id: "/etc/app/app.conf".into(),
            what: "content differs from the generation".into(),
        },
        inactive("app.service"),
    ]);
    let changes: Vec<_> = p
        .changes
        .iter()
        .map(|c| (c.key.id.as_str(), &c.op))
        .collect();
    assert_eq!(changes, vec![("/etc/app/app.conf", &ChangeOp::Update)]);
    // Down and reading a rewritten file: one restart does both.
    assert_eq!(ops(&p), vec![(s("app.service"), UnitOp::Restart)]);
    assert_eq!(
        archy_plan::drift::repairs(&p, "/var/lib/archy/secrets"),
        vec![s("rewrite /etc/app/app.conf"), s("restart app.service")]
    );
}

#[test]
fn a_missing_container_is_made_anew_and_what_requires_it_restarts_with_it() {
    let p = with(vec![Drift::ContainerMissing {
        container: "db".into(),
    }]);
    assert_eq!(
        ops(&p),
        vec![
            (s("db.service"), UnitOp::Restart),
            (s("web.service"), UnitOp::Restart)
        ]
    );
    let web = p.units.iter().find(|u| u.unit == "web.service").unwrap();
    assert_eq!(web.with.as_ref().map(|w| w.as_str()), Some("db.service"));
    assert_eq!(
        archy_plan::drift::repairs(&p, "/var/lib/archy/secrets"),
        vec![
            s("restart db.service"),
            s("restart web.service (with db.service)")
        ]
    );
}

#[test]
fn containers_podman_lost_are_started_after_what_is_left_of_them_is_stopped() {
    let p = with(vec![
        Drift::PodmanLost {
            container: "db".into(),
        },
        Drift::PodmanLost {
            container: "web".into(),
        },
    ]);
    assert_eq!(
        ops(&p),
        vec![
            (s("db.service"), UnitOp::Start),
            (s("web.service"), UnitOp::Start)
        ]
    );
    assert!(
        p.units
            .iter()
            .all(|u| u.op == UnitOp::Skip || u.reason == Reason::PodmanLost)
    );
    // The network's unit is not touched: its definition is a file podman
    // keeps outside its database.
    assert!(!ops(&p).iter().any(|(u, _)| u == "net-network.service"));
}

#[test]
fn a_lost_regenerable_secret_is_made_anew_like_a_rotation() {
    let p = with(vec![Drift::Missing {
        kind: Kind::Secret,
        id: "rpc".into(),
    }]);
    let changes: Vec<_> = p
        .changes
        .iter()
        .map(|c| (c.key.id.as_str(), &c.op))
        .collect();
    assert_eq!(
        changes,
        vec![
            ("rpc", &ChangeOp::Generate),
            ("/etc/app/rpc.conf", &ChangeOp::Update)
        ]
    );
    assert_eq!(ops(&p), vec![(s("app.service"), UnitOp::Restart)]);
}

#[test]
fn a_lost_secret_that_is_not_regenerable_is_kept_missing_and_nothing_restarts() {
    let p = with(vec![Drift::Missing {
        kind: Kind::Secret,
        id: "wallet".into(),
    }]);
    assert_eq!(p.changes.len(), 1);
    assert_eq!(p.changes[0].op, ChangeOp::Keep);
    assert_eq!(p.changes[0].reason, Reason::SecretLost);
    assert_eq!(p.lost_secrets().count(), 1);
    assert_eq!(ops(&p), vec![]);
    let said = archy_plan::drift::repairs(&p, "/var/lib/archy/secrets").join(" ");
    assert!(said.contains("/var/lib/archy/secrets/wallet"), "{said}");
    assert!(said.contains("archy secret rotate wallet"), "{said}");
}

#[test]
fn a_switch_keeps_a_lost_secret_missing_too() {
    // The same secret in a new generation with another file: the plan
    // still does not make a new wallet password.
    let live = node();
    let mut observed = Observed::default();
    observed.missing_secrets.insert(s("wallet"));
    let p = plan(Some(&live), &live, &observed);
    assert_eq!(p.lost_secrets().count(), 1);
    assert!(!p.changes.iter().any(|c| c.op == ChangeOp::Generate));
    // Its mode changing does not make it anew either.
    let moved = graph(r#"[ secret("wallet", #{ length: 24, mode: 0o640 }) ]"#);
    let before = graph(r#"[ secret("wallet", #{ length: 24 }) ]"#);
    let p = plan(Some(&before), &moved, &observed);
    assert_eq!(p.changes[0].reason, Reason::SecretLost);
    // A rotation on purpose does.
    let rotated = graph(r#"[ secret("wallet", #{ length: 24, version: 2 }) ]"#);
    let p = plan(Some(&before), &rotated, &observed);
    assert_eq!(p.changes[0].op, ChangeOp::Generate);
    // And so does the first switch that has it.
    let p = plan(None, &before, &observed);
    assert_eq!(p.changes[0].op, ChangeOp::Generate);
}

#[test]
fn a_file_made_from_a_lost_secret_is_left_as_it_is_and_its_reader_too() {
    let p = with(vec![
        Drift::Missing {
            kind: Kind::Secret,
            id: "wallet".into(),
        },
        Drift::Missing {
            kind: Kind::File,
            id: "/etc/app/wallet".into(),
        },
    ]);
    let changes: Vec<_> = p
        .changes
        .iter()
        .map(|c| (c.key.id.as_str(), &c.op, &c.reason))
        .collect();
    assert_eq!(
        changes,
        vec![
            ("wallet", &ChangeOp::Keep, &Reason::SecretLost),
            (
                "/etc/app/wallet",
                &ChangeOp::Keep,
                &Reason::FromLostSecret {
                    secret: "wallet".into()
                }
            ),
        ]
    );
    assert_eq!(ops(&p), vec![]);
    let said = archy_plan::drift::repairs(&p, "/var/lib/archy/secrets").join(" ");
    assert!(
        said.contains("none until secret wallet is restored"),
        "{said}"
    );
}

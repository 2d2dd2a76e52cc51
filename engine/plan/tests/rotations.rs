//! A secret rotated on the node (`archy secret rotate`): the graph
//! evaluated with the rotation, planned against the one without it.

mod common;

use common::graph_of;
use std::collections::BTreeMap;

use archy_eval::{Inputs, MemSources, Rotations};
use archy_graph::Graph;
use archy_plan::{ChangeOp, Observed, Reason, UnitOp, plan};

const NODE: &str = r#"[
    secret("rpc", #{ version: 1 }),
    secret("other", #{}),
    file("/etc/app/rpc.conf", #{ text: "rpcauth={{secret.rpc | sha256}}\n" }),
    file("/etc/app/plain.conf", #{ text: "port=1\n" }),
    unit("app.service", #{ Service: #{ ExecStart: "/usr/bin/app --conf /etc/app/rpc.conf" }, Install: #{ WantedBy: "multi-user.target" } }),
    unit("plain.service", #{ Service: #{ ExecStart: "/usr/bin/plain /etc/app/plain.conf" }, Install: #{ WantedBy: "multi-user.target" } }),
    unit("token.service", #{ Service: #{ ExecStart: "/usr/bin/token" }, Install: #{ WantedBy: "multi-user.target" }, secrets: ["other"] }),
]"#;

fn graph(rotations: &[(&str, u32)]) -> Graph {
    let src = MemSources::default().with("node.rhai", NODE);
    let inputs = Inputs {
        facts: BTreeMap::new(),
        rotations: rotations
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect::<Rotations>(),
        deferred: Default::default(),
    };
    graph_of(src, inputs)
}

#[test]
fn a_rotation_regenerates_the_secret_rewrites_what_derives_from_it_and_restarts_its_readers() {
    let p = plan(
        Some(&graph(&[])),
        &graph(&[("rpc", 1)]),
        &Observed::default(),
    );
    let changes: Vec<_> = p
        .changes
        .iter()
        .map(|c| {
            (
                c.key.kind.as_str(),
                c.key.id.as_str(),
                c.op.clone(),
                c.reason.to_string(),
            )
        })
        .collect();
    assert_eq!(
        changes,
        vec![
            (
                "secret",
                "rpc",
                ChangeOp::Generate,
                "version 1 -> 2".to_string()
            ),
            // Its text is the same, its value is not: written again, not
            // only chmodded.
            (
                "file",
                "/etc/app/rpc.conf",
                ChangeOp::Update,
                "derived from secret rpc, which changed".to_string()
            ),
        ]
    );
    let touched: Vec<_> = p.touched_units().map(|u| (u.unit.as_str(), u.op)).collect();
    assert_eq!(touched, vec![("app.service", UnitOp::Restart)]);
    assert_eq!(
        p.units[0].reason,
        Reason::Reads {
            what: "/etc/app/rpc.conf".into()
        }
    );
    // No unit file is written: only the secret and the derived file change.
    assert!(p.unit_files_changed.is_empty());
}

#[test]
fn a_second_rotation_is_another_version() {
    let p = plan(
        Some(&graph(&[("rpc", 1)])),
        &graph(&[("rpc", 2)]),
        &Observed::default(),
    );
    assert_eq!(p.changes[0].reason.to_string(), "version 2 -> 3");
    let touched: Vec<_> = p.touched_units().map(|u| u.unit.as_str()).collect();
    assert_eq!(touched, vec!["app.service"]);
}

#[test]
fn rotating_a_secret_read_directly_restarts_its_reader_only() {
    let p = plan(
        Some(&graph(&[])),
        &graph(&[("other", 1)]),
        &Observed::default(),
    );
    assert_eq!(p.changes.len(), 1);
    assert_eq!(p.changes[0].op, ChangeOp::Generate);
    let touched: Vec<_> = p.touched_units().map(|u| (u.unit.as_str(), u.op)).collect();
    assert_eq!(touched, vec![("token.service", UnitOp::Restart)]);
    assert_eq!(
        p.units[0].reason,
        Reason::Reads {
            what: "other".into()
        }
    );
}

#[test]
fn rotations_of_undeclared_secrets_plan_nothing() {
    let p = plan(
        Some(&graph(&[])),
        &graph(&[("gone", 3)]),
        &Observed::default(),
    );
    assert!(p.is_empty(), "{p:#?}");
}

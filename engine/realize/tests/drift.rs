//! Drift on disk: what the realizer finds when the node's files differ
//! from the generation it switched to, and that planning the generation
//! against itself with that drift, then applying it, puts the disk back.

#![allow(clippy::unwrap_used)] // Helpers of tests, not tests, to clippy.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt as _;

use archy_graph::{Graph, Kind};
use archy_plan::{ChangeOp, Drift, Observed, Reason, plan};
use common::{Node, graph};

fn node() -> Graph {
    graph(
        r#"[
            file("/etc/app/app.conf", #{ text: "port=1\n" }),
            secret("rpc", #{ length: 24, regenerate: true }),
            file("/etc/app/auth.conf", #{ text: "auth={{secret.rpc | sha256}}\n" }),
            dir("/srv/app", #{ mode: 0o750, owner: "tester" }),
            unit("app.service", #{
                Service: #{ ExecStart: "/usr/bin/app --config /etc/app/app.conf /etc/app/auth.conf" },
                Install: #{ WantedBy: "multi-user.target" },
            }),
        ]"#,
    )
}

/// Observes the drift, plans the repair, applies it; the drift found.
fn repair(n: &Node, g: &Graph) -> Vec<Drift> {
    let drift = n.realizer.drift(g).unwrap();
    let mut observed = n.realizer.observe(g, false).unwrap();
    observed.drift = drift.clone();
    let p = plan(Some(g), g, &observed);
    n.realizer.apply_changes(g, &p).unwrap();
    drift
}

#[test]
fn a_node_as_switched_has_no_drift() {
    let n = Node::new();
    let g = node();
    n.switch(None, &g).unwrap();
    assert_eq!(n.realizer.drift(&g).unwrap(), vec![]);
}

#[test]
fn edited_deleted_and_chmodded_files_are_found_and_put_back() {
    let n = Node::new();
    let g = node();
    n.switch(None, &g).unwrap();

    fs::write(n.at("/etc/app/app.conf"), "port=2\n").unwrap();
    let drift = repair(&n, &g);
    assert_eq!(
        drift,
        vec![Drift::Content {
            kind: Kind::File,
            id: "/etc/app/app.conf".into(),
            what: "content differs from the generation".into(),
        }]
    );
    assert_eq!(n.read("/etc/app/app.conf"), "port=1\n");

    fs::remove_file(n.at("/etc/app/app.conf")).unwrap();
    fs::set_permissions(n.at("/srv/app"), fs::Permissions::from_mode(0o777)).unwrap();
    let drift = repair(&n, &g);
    assert_eq!(
        drift,
        vec![
            Drift::Metadata {
                kind: Kind::Dir,
                id: "/srv/app".into(),
                what: "mode 0777, not 0750".into()
            },
            Drift::Missing {
                kind: Kind::File,
                id: "/etc/app/app.conf".into()
            },
        ]
    );
    assert_eq!(n.read("/etc/app/app.conf"), "port=1\n");
    assert_eq!(n.meta("/srv/app").0, 0o750);
    assert_eq!(n.realizer.drift(&g).unwrap(), vec![]);
}

#[test]
fn a_derived_file_is_compared_with_what_activation_writes_and_no_value_shows() {
    let n = Node::new();
    let g = node();
    n.switch(None, &g).unwrap();
    let good = n.read("/etc/app/auth.conf");
    fs::write(n.at("/etc/app/auth.conf"), "auth=something else\n").unwrap();
    let drift = repair(&n, &g);
    assert_eq!(drift.len(), 1, "{drift:?}");
    assert!(
        matches!(&drift[0], Drift::Content { id, .. } if id == "/etc/app/auth.conf"),
        "{drift:?}"
    );
    assert!(n.read("/etc/app/auth.conf") == good, "not rewritten");
    let value = fs::read_to_string(n.realizer.secret_path("rpc")).unwrap();
    let shown = format!("{drift:?} {}", serde_json::to_string(&drift).unwrap());
    assert!(!shown.contains(&value), "a secret value leaked");

    // With its secret gone, the file cannot be compared: only the secret
    // is reported.
    fs::remove_file(n.realizer.secret_path("rpc")).unwrap();
    assert_eq!(
        n.realizer.drift(&g).unwrap(),
        vec![Drift::Missing {
            kind: Kind::Secret,
            id: "rpc".into()
        }]
    );
}

#[test]
fn a_unit_file_edited_and_a_unit_disabled_are_found_and_put_back() {
    let n = Node::new();
    let g = node();
    n.switch(None, &g).unwrap();
    let unit = "/etc/systemd/system/app.service";
    let link = "/etc/systemd/system/multi-user.target.wants/app.service";
    let text = n.read(unit);
    fs::write(n.at(unit), text.replace("/usr/bin/app", "/usr/bin/other")).unwrap();
    fs::remove_file(n.at(link)).unwrap();
    let drift = repair(&n, &g);
    assert_eq!(
        drift,
        vec![
            Drift::UnitFile {
                unit: "app.service".try_into().unwrap(),
                path: unit.into(),
                what: "edited: it differs from the generation".into(),
            },
            Drift::Disabled {
                unit: "app.service".try_into().unwrap()
            },
        ]
    );
    assert_eq!(n.read(unit), text);
    assert_eq!(
        fs::read_link(n.at(link)).unwrap().to_string_lossy(),
        "../app.service"
    );
    assert_eq!(n.realizer.drift(&g).unwrap(), vec![]);
}

#[test]
fn a_secret_lost_and_chmodded_is_found_and_only_a_regenerable_one_made_anew() {
    let n = Node::new();
    let g = graph(
        r#"[
            secret("rpc", #{ regenerate: true }),
            secret("wallet", #{}),
            secret("token", #{}),
        ]"#,
    );
    n.switch(None, &g).unwrap();
    fs::remove_file(n.realizer.secret_path("rpc")).unwrap();
    fs::remove_file(n.realizer.secret_path("wallet")).unwrap();
    let token = n.realizer.secret_path("token");
    fs::set_permissions(&token, fs::Permissions::from_mode(0o644)).unwrap();
    let drift = repair(&n, &g);
    assert_eq!(drift.len(), 3, "{drift:?}");
    assert!(n.realizer.secret_path("rpc").exists());
    assert!(!n.realizer.secret_path("wallet").exists());
    assert_eq!(common::meta(&token).0, 0o600);
    assert_eq!(
        n.realizer.drift(&g).unwrap(),
        vec![Drift::Missing {
            kind: Kind::Secret,
            id: "wallet".into()
        }]
    );
}

#[test]
fn a_path_archy_does_not_own_is_left_alone() {
    let n = Node::new();
    let g = node();
    n.switch(None, &g).unwrap();
    // The ownership record forgets the file (as after a record restored
    // from an older backup): whatever is there is not archy's to judge.
    let record = n.state.join("owned.json");
    let text = fs::read_to_string(&record).unwrap();
    let mut json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json["paths"]
        .as_object_mut()
        .unwrap()
        .remove("/etc/app/app.conf");
    fs::write(&record, json.to_string()).unwrap();
    fs::write(n.at("/etc/app/app.conf"), "mine\n").unwrap();
    assert_eq!(n.realizer.drift(&g).unwrap(), vec![]);
}

#[test]
fn the_plan_of_a_drifted_file_restarts_its_readers_and_a_chmod_does_not() {
    let g = node();
    let observed = Observed {
        drift: vec![Drift::Content {
            kind: Kind::File,
            id: "/etc/app/app.conf".into(),
            what: "content differs from the generation".into(),
        }],
        ..Observed::default()
    };
    let p = plan(Some(&g), &g, &observed);
    assert_eq!(p.changes[0].op, ChangeOp::Update);
    let touched: Vec<_> = p.touched_units().map(|u| u.unit.as_str()).collect();
    assert_eq!(touched, vec!["app.service"]);
    let observed = Observed {
        drift: vec![Drift::Metadata {
            kind: Kind::File,
            id: "/etc/app/app.conf".into(),
            what: "mode 0600, not 0644".into(),
        }],
        ..Observed::default()
    };
    let p = plan(Some(&g), &g, &observed);
    assert_eq!(p.changes[0].op, ChangeOp::Chmod);
    assert!(matches!(p.changes[0].reason, Reason::Drifted { .. }));
    assert_eq!(p.touched_units().count(), 0);
}

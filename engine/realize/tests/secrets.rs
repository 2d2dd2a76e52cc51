//! Secrets: generated on the node when missing or bumped, kept otherwise,
//! and never shown anywhere.

#![allow(clippy::unwrap_used)] // Helpers of tests, not tests, to clippy.

mod common;

use std::fs;

use archy_plan::{ChangeOp, Reason};
use common::{Node, TESTER_UID, graph};

fn secret_node(version: u32) -> archy_graph::Graph {
    graph(&format!(
        r#"[ secret("rpc", #{{ length: 40, owner: "tester", version: {version}, regenerate: true }}), secret("plain", #{{}}) ]"#
    ))
}

fn value(n: &Node, name: &str) -> String {
    fs::read_to_string(n.realizer.secret_path(name)).unwrap()
}

#[test]
fn a_secret_is_generated_with_its_length_mode_and_owner() {
    let n = Node::new();
    let g = secret_node(1);
    let applied = n.switch(None, &g).unwrap();
    assert_eq!(applied.secrets_generated, vec!["plain", "rpc"]);
    let rpc = value(&n, "rpc");
    assert_eq!(rpc.len(), 40);
    assert!(
        rpc.bytes().all(|b| b.is_ascii_alphanumeric()),
        "not alphanumeric"
    );
    assert_eq!(value(&n, "plain").len(), 32);
    assert_eq!(
        common::meta(&n.realizer.secret_path("rpc")),
        (0o600, TESTER_UID, 0)
    );
    assert_eq!(
        common::meta(&n.realizer.secret_path("plain")),
        (0o600, 0, 0)
    );
    assert_eq!(common::meta(&n.state.join("secrets")), (0o711, 0, 0));
    assert_ne!(rpc, value(&n, "plain"));
}

#[test]
fn a_secret_in_place_is_not_regenerated() {
    let n = Node::new();
    let g = secret_node(1);
    n.switch(None, &g).unwrap();
    let rpc = value(&n, "rpc");

    // The same generation: nothing to do.
    let p = n.plan(Some(&g), &g, false);
    assert!(p.is_empty());
    // The first switch again (its run was cut short after the secrets):
    // the plan says generate, the value in place stays.
    let p = archy_plan::plan(None, &g, &archy_plan::Observed::default());
    assert!(p.changes.iter().all(|c| c.op == ChangeOp::Generate));
    let applied = n.realizer.apply_changes(&g, &p).unwrap();
    assert!(applied.secrets_generated.is_empty());
    assert_eq!(applied.secrets_kept, vec!["plain", "rpc"]);
    assert_eq!(value(&n, "rpc"), rpc);

    // A mode change keeps the value.
    let g2 = graph(
        r#"[ secret("rpc", #{ length: 40, owner: "tester", mode: "0640", group: "tester" }), secret("plain", #{}) ]"#,
    );
    let p = n.plan(Some(&g), &g2, false);
    assert_eq!(p.changes[0].op, ChangeOp::Chmod);
    n.realizer.apply_changes(&g2, &p).unwrap();
    assert_eq!(value(&n, "rpc"), rpc);
    assert_eq!(common::meta(&n.realizer.secret_path("rpc")).0, 0o640);
}

#[test]
fn a_missing_or_bumped_secret_is_generated_again() {
    let n = Node::new();
    let g1 = secret_node(1);
    n.switch(None, &g1).unwrap();
    let first = value(&n, "rpc");

    fs::remove_file(n.realizer.secret_path("rpc")).unwrap();
    let p = n.plan(Some(&g1), &g1, false);
    assert_eq!(p.changes.len(), 1);
    assert_eq!(p.changes[0].op, ChangeOp::Generate);
    let applied = n.realizer.apply_changes(&g1, &p).unwrap();
    assert_eq!(applied.secrets_generated, vec!["rpc"]);
    let second = value(&n, "rpc");
    assert_eq!(second.len(), 40);
    assert_ne!(second, first);

    let g2 = secret_node(2);
    let p = n.plan(Some(&g1), &g2, false);
    assert_eq!(p.changes[0].op, ChangeOp::Generate);
    assert!(matches!(&p.changes[0].reason, Reason::Metadata { what } if what.contains("1 -> 2")));
    let applied = n.realizer.apply_changes(&g2, &p).unwrap();
    assert_eq!(applied.secrets_generated, vec!["rpc"]);
    let third = value(&n, "rpc");
    assert_ne!(third, second);
    // The same plan again (a re-run after a crash) does not draw a
    // fourth value: the record says which version is in place.
    n.realizer.apply_changes(&g2, &p).unwrap();
    assert_eq!(value(&n, "rpc"), third);
    assert_eq!(n.realizer.record().unwrap().secrets["rpc"].version, 2);
}

#[test]
fn a_lost_secret_that_must_not_be_made_anew_stays_missing_and_so_does_what_derives_from_it() {
    let n = Node::new();
    let g = graph(
        r#"[
            secret("wallet", #{ length: 32 }),
            file("/etc/w/password", #{ text: "{{secret.wallet}}" }),
            file("/etc/w/plain", #{ text: "x" }),
        ]"#,
    );
    n.switch(None, &g).unwrap();
    let derived = n.root.join("etc/w/password");
    let before = fs::read(&derived).unwrap();
    fs::remove_file(n.realizer.secret_path("wallet")).unwrap();

    let p = n.plan(Some(&g), &g, false);
    let changes: Vec<_> = p
        .changes
        .iter()
        .map(|c| (c.key.kind.as_str(), c.key.id.as_str(), &c.op, &c.reason))
        .collect();
    assert_eq!(
        changes,
        vec![("secret", "wallet", &ChangeOp::Keep, &Reason::SecretLost)]
    );
    assert_eq!(p.lost_secrets().count(), 1);
    let applied = n.realizer.apply_changes(&g, &p).unwrap();
    assert!(applied.secrets_generated.is_empty());
    assert!(!n.realizer.secret_path("wallet").exists());
    // The file made from the old value is untouched (it may be the only
    // copy left to restore from).
    assert!(
        fs::read(&derived).unwrap() == before,
        "the derived file changed"
    );
}

#[test]
fn no_value_appears_in_any_output() {
    let n = Node::new();
    let g = secret_node(1);
    let applied = n.switch(None, &g).unwrap();
    let values = [value(&n, "rpc"), value(&n, "plain")];

    // A later step fails (an unknown owner) after the secrets were made.
    let g2 = graph(
        r#"[ secret("rpc", #{ length: 40, owner: "tester", version: 1 }), secret("plain", #{}), file("/etc/x", #{ text: "x", owner: "ghost" }) ]"#,
    );
    let p = n.plan(Some(&g), &g2, false);
    let err = n.realizer.apply_changes(&g2, &p).unwrap_err();
    // And a secret whose own step fails.
    let g3 = graph(
        r#"[ secret("rpc", #{ length: 40, owner: "ghost", version: 3 }), secret("plain", #{}) ]"#,
    );
    let p3 = n.plan(Some(&g), &g3, false);
    let err3 = n.realizer.apply_changes(&g3, &p3).unwrap_err();
    assert!(err3.to_string().contains("secrets/rpc"), "{err3}");

    let record = fs::read_to_string(n.state.join("owned.json")).unwrap();
    let outputs = [
        format!("{applied:?}"),
        format!("{applied:#?}"),
        serde_json::to_string(&applied).unwrap(),
        format!("{err}"),
        format!("{err:?}"),
        format!("{err3}"),
        format!("{err3:?}"),
        format!("{:?}", n.realizer),
        format!("{:?}", n.realizer.record().unwrap()),
        format!("{p:?}"),
        format!("{:?}", n.realizer.observe(&g, false).unwrap()),
        record,
    ];
    for v in &values {
        assert!(v.len() >= 32);
        for out in &outputs {
            assert!(!out.contains(v.as_str()), "a secret value leaked");
        }
    }
    // The value stays where it was despite the failures.
    assert_eq!(value(&n, "rpc"), values[0]);
}

#[test]
fn a_value_put_in_place_before_the_first_switch_is_kept() {
    use std::os::unix::fs::PermissionsExt as _;
    // An operator restored the node's secrets from a backup.
    let n = Node::new();
    let path = n.realizer.secret_path("rpc");
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, "restoredFromBackup").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    let g = secret_node(1);
    let o = n.realizer.observe(&g, false).unwrap();
    assert_eq!(o.missing_secrets.iter().collect::<Vec<_>>(), vec!["plain"]);
    let applied = n.switch(None, &g).unwrap();
    assert_eq!(applied.secrets_generated, vec!["plain"]);
    assert_eq!(applied.secrets_kept, vec!["rpc"]);
    assert_eq!(value(&n, "rpc"), "restoredFromBackup");
    assert_eq!(common::meta(&path), (0o600, TESTER_UID, 0));
    assert_eq!(common::meta(&n.state.join("secrets")), (0o711, 0, 0));
}

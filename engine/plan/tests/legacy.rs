//! Plans written by an older archy still read: `fixtures/plan-v0.json` is
//! the plan below as archy serialized it before plans carried each unit
//! file with its unit (its `unit_files_changed` is a list of paths). A
//! switch journal embeds such a plan, so an updated archy must recover it.

mod common;

use common::{graph_of, u};

use archy_eval::{Inputs, MemSources};
use archy_graph::{Graph, Kind};
use archy_plan::{Observed, Plan, plan};

/// Generation `text` of a node with accounts, a secret, files, podman
/// resources and units; `extra` is what only that generation has.
fn node(text: &str, extra: &str) -> Graph {
    let src = format!(
        r#"[
        group("app", #{{}}),
        user("app", #{{ group: "app" }}),
        dir("/var/lib/app", #{{ owner: "app" }}),
        secret("rpc", #{{ owner: "app" }}),
        file("/etc/app.conf", #{{ text: "{text}" }}),
        network("appnet", #{{}}),
        volume("data", #{{}}),
        container("db", #{{ image: "localhost/testbed/busybox:{text}", network: "appnet", volumes: ["data:/data"] }}),
        container("web", #{{ image: "localhost/testbed/busybox:latest", network: "appnet", requires: ["db"], volumes: ["/etc/app.conf:/etc/app.conf:ro"] }}),
        unit("app.service", #{{ Unit: #{{ Requires: "db.service" }}, Service: #{{ ExecStart: "/usr/bin/app /etc/app.conf" }}, Install: #{{ WantedBy: "multi-user.target" }} }}),
        unit("t@.service", #{{ Service: #{{ ExecStart: "/bin/t {text}" }} }}),
        {extra},
    ]"#
    );
    graph_of(
        MemSources::default().with("node.rhai", &src),
        Inputs::default(),
    )
}

/// The plan the fixture holds, computed by this archy.
fn today() -> Plan {
    let before = node(
        "1",
        r#"unit("old.service", #{ Service: #{ ExecStart: "/bin/old" }, Install: #{ WantedBy: "multi-user.target" } }), network("oldnet", #{}), volume("oldvol", #{})"#,
    );
    let after = node(
        "2",
        r#"container("cache", #{ image: "localhost/testbed/busybox:v2" }), file("/etc/new.conf", #{ text: "n" }), secret("newsec", #{}), user("svc", #{})"#,
    );
    let observed = Observed {
        missing_images: ["localhost/testbed/busybox:v2".to_string()].into(),
        unowned: ["/etc/new.conf".to_string()].into(),
        foreign_containers: ["cache".to_string()].into(),
        ..Observed::default()
    };
    plan(Some(&before), &after, &observed)
}

fn fixture() -> Plan {
    serde_json::from_str(include_str!("fixtures/plan-v0.json")).expect("an older plan reads")
}

#[test]
fn an_older_plan_reads_as_the_plan_this_archy_makes() {
    assert_eq!(fixture(), today());
}

#[test]
fn an_older_plans_paths_name_their_units() {
    let files: Vec<(String, String)> = fixture()
        .unit_files_changed
        .iter()
        .map(|f| (f.unit.to_string(), f.path.clone()))
        .collect();
    let expected = [
        ("cache.service", "/etc/containers/systemd/cache.container"),
        ("db.service", "/etc/containers/systemd/db.container"),
        (
            "oldnet-network.service",
            "/etc/containers/systemd/oldnet.network",
        ),
        (
            "oldvol-volume.service",
            "/etc/containers/systemd/oldvol.volume",
        ),
        ("old.service", "/etc/systemd/system/old.service"),
        ("t@.service", "/etc/systemd/system/t@.service"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(files, expected);
}

#[test]
fn changes_and_units_keep_their_json() {
    let p = fixture();
    assert!(
        p.changes
            .iter()
            .any(|c| c.key.kind == Kind::Container && c.key.id == "cache")
    );
    assert_eq!(p.units[4].with, Some(u("db.service")));
    // Everything but the unit files is written exactly as before.
    let old: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/plan-v0.json")).expect("json");
    let new = serde_json::to_value(&p).expect("json");
    for field in ["changes", "images", "units", "unchanged"] {
        assert_eq!(old[field], new[field], "{field}");
    }
    // And the current shape reads back as itself.
    let again: Plan = serde_json::from_value(new).expect("the current shape reads");
    assert_eq!(again, p);
}

#[test]
fn a_path_that_is_no_unit_file_is_an_error() {
    let text = r#"{"changes":[],"unit_files_changed":["/etc/containers/systemd/x.kube"],"units":[],"unchanged":0}"#;
    let err = serde_json::from_str::<Plan>(text).expect_err("refused");
    assert!(err.to_string().contains("x.kube"), "{err}");
}

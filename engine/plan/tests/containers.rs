//! The planner's decisions for containers, networks and volumes: their
//! Quadlet files, the services Quadlet makes of them, images and adoption.

mod common;

use common::{graph_of, ops, paths, s, skipped, u};

use archy_eval::{Inputs, MemSources};
use archy_graph::Graph;
use archy_plan::{ChangeOp, ImageOp, Observed, Reason, UnitOp, plan};

/// A backend and a UI on a named network; the UI reads a config file and
/// needs the backend; the backend keeps its data in a volume.
fn graph(node: &str) -> Graph {
    let src = MemSources::default()
        .with("node.rhai", node)
        .with("apps/ui/Containerfile", "FROM localhost/testbed/busybox\n");
    graph_of(src, Inputs::default())
}

fn node(ui_conf: &str, backend_image: &str, extra: &str) -> Graph {
    graph(&format!(
        r#"[
            network("appnet", #{{}}),
            volume("backend-data", #{{}}),
            file("/etc/ui/ui.conf", #{{ text: "{ui_conf}" }}),
            container("backend", #{{
                image: "{backend_image}",
                network: "appnet",
                volumes: ["backend-data:/data"],
            }}),
            container("ui", #{{
                build: "apps/ui",
                network: "appnet",
                volumes: ["/etc/ui/ui.conf:/etc/ui.conf:ro"],
                requires: ["backend"],
            }}),
            {extra}
        ]"#
    ))
}

const BUSYBOX: &str = "localhost/testbed/busybox:latest";
const BUSYBOX2: &str = "localhost/testbed/busybox:v2";

#[test]
fn first_switch_writes_quadlet_files_and_starts_containers_in_order() {
    let p = plan(None, &node("a=1", BUSYBOX, ""), &Observed::default());
    assert_eq!(
        paths(&p),
        vec![
            s("/etc/containers/systemd/appnet.network"),
            s("/etc/containers/systemd/backend-data.volume"),
            s("/etc/containers/systemd/backend.container"),
            s("/etc/containers/systemd/ui.container"),
        ]
    );
    assert_eq!(
        ops(&p),
        vec![
            (s("backend.service"), UnitOp::Start),
            (s("ui.service"), UnitOp::Start)
        ]
    );
    // Networks and volumes are started by the containers that need them.
    assert_eq!(
        skipped(&p),
        vec![
            ("appnet-network.service", &Reason::NotInstalled),
            ("backend-data-volume.service", &Reason::NotInstalled),
        ]
    );
}

#[test]
fn a_changed_config_restarts_only_the_container_that_mounts_it() {
    let a = node("a=1", BUSYBOX, "");
    let b = node("a=2", BUSYBOX, "");
    let p = plan(Some(&a), &b, &Observed::default());
    assert_eq!(ops(&p), vec![(s("ui.service"), UnitOp::Restart)]);
    assert_eq!(
        p.units[0].reason,
        Reason::Reads {
            what: s("/etc/ui/ui.conf")
        }
    );
    assert_eq!(p.units[0].with, None);
    // The Quadlet file itself is the same.
    assert!(p.unit_files_changed.is_empty());
}

#[test]
fn a_new_backend_image_restarts_the_backend_and_systemd_restarts_the_ui_with_it() {
    let a = node("a=1", BUSYBOX, "");
    let b = node("a=1", BUSYBOX2, "");
    let p = plan(Some(&a), &b, &Observed::default());
    assert_eq!(
        ops(&p),
        vec![
            (s("backend.service"), UnitOp::Restart),
            (s("ui.service"), UnitOp::Restart)
        ]
    );
    assert_eq!(
        p.units[0].reason,
        Reason::UnitChanged {
            sections: vec![s("Container")]
        }
    );
    assert_eq!(p.units[0].with, None);
    assert_eq!(
        p.units[1].reason,
        Reason::Follows {
            unit: u("backend.service")
        }
    );
    assert_eq!(
        p.units[1].with.as_ref().map(|w| w.as_str()),
        Some("backend.service")
    );
    assert_eq!(
        paths(&p),
        vec![s("/etc/containers/systemd/backend.container")]
    );
}

#[test]
fn both_changed_still_restart_the_ui_once() {
    let a = node("a=1", BUSYBOX, "");
    let b = node("a=2", BUSYBOX2, "");
    let p = plan(Some(&a), &b, &Observed::default());
    let ui: Vec<_> = p.units.iter().filter(|u| u.unit == "ui.service").collect();
    assert_eq!(ui.len(), 1);
    // Its own reason stays; systemd carries the restart.
    assert!(matches!(ui[0].reason, Reason::Reads { .. }));
    assert_eq!(
        ui[0].with.as_ref().map(|w| w.as_str()),
        Some("backend.service")
    );
}

#[test]
fn missing_images_are_pulled_or_built_first() {
    let g = node("a=1", BUSYBOX, "");
    let ui_image = match g
        .nodes
        .iter()
        .find(|n| n.key.id == "ui")
        .map(|n| &n.resource)
    {
        Some(archy_graph::Resource::Container(c)) => c.image.reference(),
        other => panic!("{other:?}"),
    };
    assert!(
        ui_image.starts_with("localhost/archy/apps-ui:"),
        "{ui_image}"
    );
    let observed = Observed {
        missing_images: [s(BUSYBOX), ui_image.clone()].into(),
        ..Observed::default()
    };
    let p = plan(None, &g, &observed);
    let images: Vec<_> = p
        .images
        .iter()
        .map(|i| (i.reference.as_str(), i.op, i.containers.clone()))
        .collect();
    assert_eq!(
        images,
        vec![
            (BUSYBOX, ImageOp::Pull, vec![s("backend")]),
            (ui_image.as_str(), ImageOp::Build, vec![s("ui")]),
        ]
    );
    // Present images are not planned.
    let p = plan(Some(&g), &g, &Observed::default());
    assert!(p.is_empty(), "{p:#?}");
}

#[test]
fn a_foreign_container_with_a_declared_name_is_adopted() {
    let g = node("a=1", BUSYBOX, "");
    let observed = Observed {
        foreign_containers: [s("backend")].into(),
        ..Observed::default()
    };
    // Even when the generation itself is unchanged (the old script came
    // back and started its own).
    for live in [None, Some(&g)] {
        let p = plan(live, &g, &observed);
        let adopt: Vec<_> = p
            .changes
            .iter()
            .filter(|c| c.op == ChangeOp::Adopt)
            .map(|c| (c.key.kind.as_str(), c.key.id.as_str()))
            .collect();
        assert_eq!(adopt, vec![("container", "backend")]);
        let backend = p
            .units
            .iter()
            .find(|u| u.unit == "backend.service")
            .expect("backend planned");
        assert_eq!(
            (backend.op, &backend.reason),
            (UnitOp::Start, &Reason::ForeignContainer)
        );
    }
}

#[test]
fn a_removed_container_stops_and_a_removed_volume_keeps_its_data() {
    let a = node(
        "a=1",
        BUSYBOX,
        r#"volume("old-data", #{}), container("old", #{ image: "localhost/testbed/busybox:latest", volumes: ["old-data:/d"] }),"#,
    );
    let b = node("a=1", BUSYBOX, "");
    let p = plan(Some(&a), &b, &Observed::default());
    // The container stops before the volume's service it needs; stopping
    // that service never removes the volume.
    assert_eq!(
        ops(&p),
        vec![
            (s("old.service"), UnitOp::Stop),
            (s("old-data-volume.service"), UnitOp::Stop)
        ]
    );
    let kept: Vec<_> = p
        .changes
        .iter()
        .map(|c| (c.key.kind.as_str(), c.key.id.as_str(), &c.op, &c.reason))
        .collect();
    assert_eq!(
        kept,
        vec![("volume", "old-data", &ChangeOp::Keep, &Reason::DataKept)]
    );
    assert_eq!(
        paths(&p),
        vec![
            s("/etc/containers/systemd/old-data.volume"),
            s("/etc/containers/systemd/old.container"),
        ]
    );
}

#[test]
fn a_secret_made_anew_rewrites_what_derives_from_it_and_restarts_its_readers() {
    let g = graph(&format!(
        r#"[
            secret("ui-pass", #{{ length: 24, regenerate: true }}),
            file("/etc/ui/auth.conf", #{{ text: "hash={{{{secret.ui-pass | sha256}}}}\n" }}),
            container("ui", #{{ image: "{BUSYBOX}", volumes: ["/etc/ui/auth.conf:/auth.conf:ro"] }}),
            container("other", #{{ image: "{BUSYBOX}" }}),
        ]"#
    ));
    let observed = Observed {
        missing_secrets: [s("ui-pass")].into(),
        ..Observed::default()
    };
    let p = plan(Some(&g), &g, &observed);
    let changes: Vec<_> = p
        .changes
        .iter()
        .map(|c| (c.key.kind.as_str(), c.key.id.as_str(), &c.op))
        .collect();
    assert_eq!(
        changes,
        vec![
            ("secret", "ui-pass", &ChangeOp::Generate),
            ("file", "/etc/ui/auth.conf", &ChangeOp::Update),
        ]
    );
    assert_eq!(ops(&p), vec![(s("ui.service"), UnitOp::Restart)]);
}

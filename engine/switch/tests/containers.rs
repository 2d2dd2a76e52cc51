//! What a switch does around containers, against a fake podman: what it
//! observes, which images it makes (and that a failed build stops it), the
//! secrets it copies, and the drift `archy status` reports.

use std::collections::BTreeMap;

use archy_eval::{Limits, MemSources, evaluate};
use archy_graph::Graph;
use archy_plan::{Observed, plan};
use archy_podman::Podman;
use archy_podman::fake::{Call, FakePodman, container};
use archy_switch::containers::{ContainerDrift, drift, make_images, observe, sync_secrets};

const BUSYBOX: &str = "localhost/testbed/busybox:latest";

fn graph() -> Graph {
    let src = MemSources::default()
        .with(
            "node.rhai",
            r#"[
                secret("token", #{ length: 16 }),
                container("web", #{ image: "localhost/testbed/busybox:latest", secret_env: #{ TOKEN: "token" } }),
                container("ui", #{ build: "apps/ui" }),
            ]"#,
        )
        .with("apps/ui/Containerfile", "FROM localhost/testbed/busybox:latest\n");
    match evaluate(src, "node.rhai", BTreeMap::new(), &Limits::default()) {
        Ok(ev) => ev.graph,
        Err(f) => panic!("{:#?}", f.problems),
    }
}

fn ui_tag(g: &Graph) -> String {
    g.nodes
        .iter()
        .find_map(|n| match &n.resource {
            archy_graph::Resource::Container(c) if c.name.as_str() == "ui" => {
                Some(c.image.reference())
            }
            _ => None,
        })
        .expect("ui")
}

fn labelled(name: &str, state: &str) -> archy_podman::ContainerInfo {
    let mut c = container(name, state);
    c.labels.insert("io.archy.container".into(), name.into());
    c
}

#[test]
fn observing_finds_missing_images_and_foreign_containers() {
    let g = graph();
    let podman = FakePodman::new();
    podman.add_image(&[BUSYBOX]);
    podman.add_container(container("web", "running"));
    podman.add_container(labelled("ui", "running"));
    podman.add_container(container("unrelated", "running"));
    let mut observed = Observed::default();
    observe(&podman, &g, &mut observed).expect("observe");
    assert_eq!(
        observed.missing_images.into_iter().collect::<Vec<_>>(),
        vec![ui_tag(&g)]
    );
    assert_eq!(
        observed.foreign_containers.into_iter().collect::<Vec<_>>(),
        vec!["web".to_string()]
    );
}

#[test]
fn images_are_built_from_the_generation_and_a_failure_stops_everything() {
    let g = graph();
    let tag = ui_tag(&g);
    let observed = Observed {
        missing_images: [tag.clone()].into(),
        ..Observed::default()
    };
    let p = plan(None, &g, &observed);
    let podman = FakePodman::new();
    make_images(&podman, &g, &p).expect("build");
    let built: Vec<_> = podman
        .take_calls()
        .into_iter()
        .filter_map(|c| match c {
            Call::Build { tag, .. } => Some(tag),
            _ => None,
        })
        .collect();
    assert_eq!(built, vec![tag.clone()]);
    assert!(podman.image_exists(&tag).expect("exists"));

    let failing = FakePodman::new();
    failing.fail_build(&tag, "COPY failed: no such file");
    let err = make_images(&failing, &g, &p).expect_err("must fail");
    let text = err.to_string();
    assert!(text.contains("build"), "{text}");
    assert!(text.contains("COPY failed"), "{text}");
    assert!(text.contains("for ui"), "{text}");
}

#[test]
fn secrets_are_copied_when_missing_or_made_anew() {
    let g = graph();
    let dir = tempfile::tempdir().expect("tempdir");
    let realizer = archy_realize::Realizer::new(
        dir.path(),
        &archy_store::StateDir::new(dir.path().join("state")),
    );
    let path = realizer.secret_path("token");
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(&path, b"first").expect("write");
    let podman = FakePodman::new();
    sync_secrets(&podman, &realizer, &g, &[]).expect("sync");
    assert_eq!(
        podman.secret_value("archy-token").as_deref(),
        Some(&b"first"[..])
    );
    // Present and not made anew: left alone.
    std::fs::write(&path, b"second").expect("write");
    podman.take_calls();
    sync_secrets(&podman, &realizer, &g, &[]).expect("sync");
    assert!(
        !podman
            .take_calls()
            .iter()
            .any(|c| matches!(c, Call::PutSecret(_)))
    );
    // Made anew by this switch: copied again.
    sync_secrets(&podman, &realizer, &g, &["token".to_string()]).expect("sync");
    assert_eq!(
        podman.secret_value("archy-token").as_deref(),
        Some(&b"second"[..])
    );
}

#[test]
fn drift_names_missing_stopped_foreign_and_other_image() {
    let g = graph();
    let tag = ui_tag(&g);
    let podman = FakePodman::new();
    let busybox = podman.add_image(&[BUSYBOX]);
    let ui_image = podman.add_image(&[&tag]);
    let images = podman.images().expect("images");

    let mut web = labelled("web", "running");
    web.image_id = busybox.id.clone();
    let mut ui = labelled("ui", "running");
    ui.image_id = ui_image.id.clone();
    assert_eq!(drift(&g, &[web.clone(), ui.clone()], &images), vec![]);

    assert_eq!(
        drift(&g, std::slice::from_ref(&web), &images),
        vec![ContainerDrift::Missing {
            container: "ui".into()
        }]
    );
    let mut stopped = ui.clone();
    stopped.state = "exited".into();
    assert_eq!(
        drift(&g, &[web.clone(), stopped], &images),
        vec![ContainerDrift::Stopped {
            container: "ui".into(),
            state: "exited".into()
        }]
    );
    let mut other = ui.clone();
    other.image_id = busybox.id.clone();
    assert_eq!(
        drift(&g, &[web.clone(), other], &images),
        vec![ContainerDrift::OtherImage {
            container: "ui".into(),
            declared: tag.clone(),
            running: BUSYBOX.into()
        }]
    );
    let foreign = container("web", "running");
    assert_eq!(
        drift(&g, &[foreign, ui], &images),
        vec![ContainerDrift::Foreign {
            container: "web".into()
        }]
    );
}

//! Containers pinned by digest (`name@sha256:...`), against a fake podman:
//! podman lists such an image by its digests (`RepoDigests`), not by a
//! name, and the switch and `archy status` must still find it.

use std::collections::BTreeMap;

use archy_eval::{Limits, MemSources, evaluate};
use archy_graph::Graph;
use archy_plan::{ImageOp, Observed, plan};
use archy_podman::Podman;
use archy_podman::fake::{Call, FakePodman, container};
use archy_switch::containers::{ContainerDrift, drift, make_images, observe};

const DIGEST: &str = "sha256:f32c8310a8bd6564342d072f966a60650d22f84a256ab1d4a97f4d8ad77607c3";

fn graph(image: &str) -> Graph {
    let node = format!(r#"[ container("web", #{{ image: "{image}", digest: "{DIGEST}" }}) ]"#);
    let src = MemSources::default().with("node.rhai", &node);
    match evaluate(src, "node.rhai", BTreeMap::new(), &Limits::default()) {
        Ok(ev) => ev.graph,
        Err(f) => panic!("{:#?}", f.problems),
    }
}

fn running(image_id: &str) -> archy_podman::ContainerInfo {
    let mut c = container("web", "running");
    c.labels.insert("io.archy.container".into(), "web".into());
    c.image_id = image_id.to_owned();
    c
}

#[test]
fn a_local_image_is_found_by_its_digest() {
    let g = graph("localhost/testbed/busybox:latest");
    let podman = FakePodman::new();
    let busybox = podman.add_image_with_digests(
        &["localhost/testbed/busybox:latest"],
        &[&format!("localhost/testbed/busybox@{DIGEST}")],
    );
    let mut observed = Observed::default();
    observe(&podman, &g, &mut observed).expect("observe");
    assert!(observed.missing_images.is_empty(), "{observed:?}");
    // Found in the list: podman was not asked again.
    assert!(
        !podman
            .take_calls()
            .iter()
            .any(|c| matches!(c, Call::ImageExists(_)))
    );

    let images = podman.images().expect("images");
    assert_eq!(drift(&g, &[running(&busybox.id)], &images), vec![]);
    // Running another image is still drift, named by its digest-pinned
    // declaration.
    let other = podman.add_image(&["localhost/other:1"]);
    let images = podman.images().expect("images");
    assert_eq!(
        drift(&g, &[running(&other.id)], &images),
        vec![ContainerDrift::OtherImage {
            container: "web".into(),
            declared: format!("localhost/testbed/busybox@{DIGEST}"),
            running: "localhost/other:1".into(),
        }]
    );
}

#[test]
fn a_missing_image_is_pulled_by_digest_and_then_found() {
    let g = graph("docker.io/library/nginx:1.27");
    let reference = format!("docker.io/library/nginx@{DIGEST}");
    let podman = FakePodman::new();
    // Another digest of the same repository is not the declared image.
    podman.add_image_with_digests(
        &["docker.io/library/nginx:1.27"],
        &[&format!(
            "docker.io/library/nginx@sha256:{}",
            "0".repeat(64)
        )],
    );
    let mut observed = Observed::default();
    observe(&podman, &g, &mut observed).expect("observe");
    assert_eq!(
        observed.missing_images.iter().collect::<Vec<_>>(),
        [&reference]
    );

    let p = plan(None, &g, &observed);
    assert_eq!(p.images.len(), 1);
    assert_eq!(
        (p.images[0].reference.as_str(), p.images[0].op),
        (reference.as_str(), ImageOp::Pull)
    );
    make_images(&podman, &g, &p).expect("pull");
    assert!(podman.calls().contains(&Call::Pull(reference.clone())));

    let mut observed = Observed::default();
    observe(&podman, &g, &mut observed).expect("observe");
    assert!(observed.missing_images.is_empty(), "{observed:?}");
    let images = podman.images().expect("images");
    let pulled = images
        .iter()
        .find(|i| i.answers_to(&reference))
        .expect("pulled");
    assert_eq!(drift(&g, &[running(&pulled.id)], &images), vec![]);
}

#[test]
fn a_short_repository_matches_the_full_one_podman_records() {
    let g = graph("nginx:1.27");
    let podman = FakePodman::new();
    let nginx = podman.add_image_with_digests(
        &["docker.io/library/nginx:1.27"],
        &[&format!("docker.io/library/nginx@{DIGEST}")],
    );
    let images = podman.images().expect("images");
    assert_eq!(drift(&g, &[running(&nginx.id)], &images), vec![]);
    let mut observed = Observed::default();
    observe(&podman, &g, &mut observed).expect("observe");
    assert!(observed.missing_images.is_empty(), "{observed:?}");
}

//! Pulled images pinned by digest: the digest, not the tag beside it, is
//! what a container's hash covers, and what its Quadlet file runs.

use std::collections::BTreeMap;

use archy_eval::{Limits, MemSources, evaluate};
use archy_graph::resource::ImageSource;
use archy_graph::{Digest, Graph, Kind, Problem, Resource, ResourceKey};
use archy_units::GraphUnits as _;

const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const OTHER: &str = "sha256:fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";

fn eval(container_options: &str) -> Result<Graph, Vec<Problem>> {
    let node = format!("[ container(\"web\", #{{ {container_options} }}) ]");
    let src = MemSources::default()
        .with("node.rhai", &node)
        .with("apps/web/Containerfile", "FROM scratch\n");
    evaluate(src, "node.rhai", BTreeMap::new(), &Limits::default())
        .map(|ev| ev.graph)
        .map_err(|f| f.problems)
}

fn graph(container_options: &str) -> Graph {
    eval(container_options).unwrap_or_else(|p| panic!("{container_options}: {p:#?}"))
}

fn web(g: &Graph) -> (Digest, String) {
    let key = ResourceKey {
        kind: Kind::Container,
        id: "web".into(),
    };
    let node = g.get(&key).expect("container web");
    let Resource::Container(c) = &node.resource else {
        panic!("not a container: {node:?}");
    };
    let ImageSource::Reference(r) = &c.image else {
        panic!("not pulled: {c:?}");
    };
    (node.hash, r.clone())
}

/// Every problem's message and hint, in one text to search.
fn problems(container_options: &str) -> String {
    let problems = eval(container_options).expect_err("must fail");
    problems
        .iter()
        .map(|p| format!("{} (hint: {})", p.message, p.hint.as_deref().unwrap_or("")))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_digest_is_hashed_and_the_tag_is_not() {
    let pinned = format!("docker.io/library/nginx@{DIGEST}");
    let forms = [
        format!(r#"image: "docker.io/library/nginx:1.27", digest: "{DIGEST}""#),
        format!(r#"image: "docker.io/library/nginx:1.28-alpine", digest: "{DIGEST}""#),
        format!(r#"image: "docker.io/library/nginx", digest: "{DIGEST}""#),
        format!(r#"image: "docker.io/library/nginx:1.27@{DIGEST}""#),
        format!(r#"image: "docker.io/library/nginx@{DIGEST}""#),
        format!(r#"image: "docker.io/library/nginx:1.27@{DIGEST}", digest: "{DIGEST}""#),
    ];
    let first = web(&graph(&forms[0]));
    assert_eq!(first.1, pinned);
    for form in &forms[1..] {
        assert_eq!(web(&graph(form)), first, "{form}");
    }
}

#[test]
fn another_digest_hashes_differently() {
    let a = web(&graph(&format!(
        r#"image: "docker.io/library/nginx:1.27", digest: "{DIGEST}""#
    )));
    let b = web(&graph(&format!(
        r#"image: "docker.io/library/nginx:1.27", digest: "{OTHER}""#
    )));
    assert_ne!(a.0, b.0);
    assert_eq!(b.1, format!("docker.io/library/nginx@{OTHER}"));
    // Without a digest the tag is all there is, and it is kept.
    let tagged = web(&graph(r#"image: "docker.io/library/nginx:1.27""#));
    assert_eq!(tagged.1, "docker.io/library/nginx:1.27");
    assert_ne!(tagged.0, a.0);
}

#[test]
fn a_registry_port_is_not_a_tag() {
    let (_, r) = web(&graph(&format!(
        r#"image: "registry.local:5000/team/app:2", digest: "{DIGEST}""#
    )));
    assert_eq!(r, format!("registry.local:5000/team/app@{DIGEST}"));
    let (_, r) = web(&graph(&format!(
        r#"image: "registry.local:5000/team/app", digest: "{DIGEST}""#
    )));
    assert_eq!(r, format!("registry.local:5000/team/app@{DIGEST}"));
}

#[test]
fn quadlet_runs_the_pinned_reference() {
    let g = graph(&format!(
        r#"image: "docker.io/library/nginx:1.27", digest: "{DIGEST}""#
    ));
    let unit = g
        .unit_sources()
        .into_iter()
        .find(|u| u.path.ends_with("/web.container"))
        .expect("web.container");
    let text = unit.text();
    let images: Vec<&str> = text.lines().filter(|l| l.starts_with("Image=")).collect();
    assert_eq!(
        images,
        [format!("Image=docker.io/library/nginx@{DIGEST}").as_str()],
        "{text}"
    );
}

#[test]
fn digests_that_cannot_be_right_are_refused_naming_digest() {
    let cases = [
        (
            r#"image: "nginx:1", digest: "abc""#,
            "does not start with `sha256:`",
        ),
        (r#"image: "nginx:1", digest: "sha256:abc""#, "64 hex digits"),
        (
            r#"image: "nginx:1", digest: "sha256:0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF""#,
            "lowercase hex",
        ),
        (r#"image: "nginx:1", digest: 5"#, "must be a string"),
    ];
    for (options, want) in cases {
        let text = problems(options);
        assert!(text.contains("option `digest`"), "{options}: {text}");
        assert!(text.contains(want), "{options}: {text}");
    }
    let text = problems(r#"image: "nginx:1", digest: "sha256:abc""#);
    assert!(text.contains("podman image inspect"), "a hint: {text}");
}

#[test]
fn two_digests_must_agree() {
    let text = problems(&format!(
        r#"image: "nginx:1.27@{DIGEST}", digest: "{OTHER}""#
    ));
    assert!(text.contains("option `digest`"), "{text}");
    assert!(text.contains("pins another digest"), "{text}");
}

#[test]
fn a_built_image_takes_no_digest() {
    let text = problems(&format!(r#"build: "apps/web", digest: "{DIGEST}""#));
    assert!(text.contains("option `digest`"), "{text}");
    assert!(text.contains("built"), "{text}");
}

//! Secret rotations, an input of evaluation like the host facts: they add
//! to a secret's declared version, which changes the secret's hash and so
//! the hash of exactly what derives from it or reads it.

use std::collections::BTreeMap;

use archy_eval::{Inputs, Limits, MemSources, Rotations, evaluate};
use archy_graph::{Digest, Graph, Resource, ResourceKey};

const NODE: &str = r#"[
    secret("rpc", #{ version: 1 }),
    secret("other", #{}),
    file("/etc/app/rpc.conf", #{ text: "rpcauth={{secret.rpc | sha256}}\n" }),
    file("/etc/app/plain.conf", #{ text: "port=1\n" }),
    unit("app.service", #{ Service: #{ ExecStart: "/usr/bin/app --conf /etc/app/rpc.conf" } }),
    unit("plain.service", #{ Service: #{ ExecStart: "/usr/bin/plain /etc/app/plain.conf" } }),
    unit("token.service", #{ Service: #{ ExecStart: "/usr/bin/token" }, secrets: ["other"] }),
]"#;

fn rotations(pairs: &[(&str, u32)]) -> Rotations {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

fn eval(node: &str, rotations: Rotations) -> Result<Graph, Vec<String>> {
    let src = MemSources::default().with("node.rhai", node);
    let inputs = Inputs {
        facts: BTreeMap::new(),
        rotations,
        deferred: Default::default(),
    };
    evaluate(src, "node.rhai", inputs, &Limits::default())
        .map(|ev| ev.graph)
        .map_err(|f| f.problems.into_iter().map(|p| p.message).collect())
}

fn hashes(g: &Graph) -> BTreeMap<ResourceKey, Digest> {
    g.nodes.iter().map(|n| (n.key.clone(), n.hash)).collect()
}

fn changed(a: &Graph, b: &Graph) -> Vec<String> {
    let (a, b) = (hashes(a), hashes(b));
    a.iter()
        .filter(|(k, h)| b.get(*k) != Some(*h))
        .map(|(k, _)| k.to_string())
        .collect()
}

fn version(g: &Graph, name: &str) -> u32 {
    g.nodes
        .iter()
        .find_map(|n| match &n.resource {
            Resource::Secret(s) if s.name.as_str() == name => Some(s.version),
            _ => None,
        })
        .expect("the secret")
}

#[test]
fn rotations_bump_the_version_and_exactly_what_derives_from_it() {
    let plain = eval(NODE, Rotations::new()).expect("evaluates");
    let rotated = eval(NODE, rotations(&[("rpc", 2)])).expect("evaluates");
    assert_eq!(version(&plain, "rpc"), 1);
    assert_eq!(version(&rotated, "rpc"), 3);
    assert_eq!(version(&rotated, "other"), 1);
    assert_eq!(
        changed(&plain, &rotated),
        vec!["file /etc/app/rpc.conf", "secret rpc", "unit app.service",]
    );
    assert_ne!(plain.root, rotated.root);
    // The same rotations, the same graph.
    let again = eval(NODE, rotations(&[("rpc", 2)])).expect("evaluates");
    assert_eq!(again.root, rotated.root);
}

#[test]
fn a_host_facts_map_alone_is_inputs_without_rotations() {
    let src = MemSources::default().with("node.rhai", NODE);
    let by_facts = evaluate(src, "node.rhai", BTreeMap::new(), &Limits::default())
        .expect("evaluates")
        .graph;
    let plain = eval(NODE, Rotations::new()).expect("evaluates");
    assert_eq!(by_facts.root, plain.root);
}

#[test]
fn rotations_of_secrets_the_node_does_not_declare_are_ignored() {
    let plain = eval(NODE, Rotations::new()).expect("evaluates");
    let other = eval(NODE, rotations(&[("gone", 7), ("rpc", 0)])).expect("evaluates");
    assert_eq!(plain.root, other.root);
}

#[test]
fn a_version_that_would_overflow_is_an_error() {
    let node = format!(r#"[ secret("rpc", #{{ version: {} }}) ]"#, u32::MAX);
    assert!(eval(&node, Rotations::new()).is_ok());
    let problems = eval(&node, rotations(&[("rpc", 1)])).expect_err("overflows");
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].contains("secret \"rpc\"") || problems[0].contains("rpc"),
        "{problems:?}"
    );
    assert!(problems[0].contains("rotations"), "{problems:?}");
}

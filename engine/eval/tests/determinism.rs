//! Same inputs, same hashes; one changed input changes exactly what
//! depends on it.

use std::collections::BTreeMap;

use archy_eval::{HostFacts, Limits, MemSources, evaluate};
use archy_graph::{Digest, Fact, Graph, ResourceKey};

const NODE: &str = r#"
let conf = file("/etc/app/app.conf", #{ text: "port=CONF_PORT\n" });
[
    conf,
    file("/etc/other.conf", #{ text: "unrelated\n" }),
    unit("app.service", #{ Service: #{ ExecStart: "/usr/bin/app --config /etc/app/app.conf" } }),
    unit("other.service", #{ Service: #{ ExecStart: "/usr/bin/other" } }),
    container("web", #{ image: "localhost/web:1", volumes: ["/etc/app:/etc/app:ro"] }),
    container("db", #{ image: "localhost/db:1" }),
    file("/etc/motd", #{ text: "welcome to " + host.hostname }),
]
"#;

fn eval(port: &str, facts: HostFacts) -> Graph {
    let src = MemSources::default().with("node.rhai", &NODE.replace("CONF_PORT", port));
    evaluate(src, "node.rhai", facts, &Limits::default())
        .expect("evaluates")
        .graph
}

fn facts(hostname: &str) -> HostFacts {
    BTreeMap::from([
        ("hostname".to_string(), Fact::Text(hostname.into())),
        ("disk_bytes".to_string(), Fact::Int(1)),
    ])
}

fn hashes(g: &Graph) -> BTreeMap<ResourceKey, Digest> {
    g.nodes.iter().map(|n| (n.key.clone(), n.hash)).collect()
}

fn changed(a: &Graph, b: &Graph) -> Vec<String> {
    let (ha, hb) = (hashes(a), hashes(b));
    ha.iter()
        .filter(|(k, h)| hb.get(*k) != Some(*h))
        .map(|(k, _)| k.to_string())
        .collect()
}

#[test]
fn same_inputs_same_root() {
    assert_eq!(eval("80", facts("n1")).root, eval("80", facts("n1")).root);
}

#[test]
fn changing_a_file_changes_it_and_its_readers_only() {
    let (a, b) = (eval("80", facts("n1")), eval("81", facts("n1")));
    assert_ne!(a.root, b.root);
    assert_eq!(
        changed(&a, &b),
        vec![
            "file /etc/app/app.conf".to_string(),
            "unit app.service".to_string(),
            "container web".to_string(),
        ]
    );
}

#[test]
fn only_facts_that_were_read_are_hashed() {
    let a = eval("80", facts("n1"));
    assert_eq!(a.facts.keys().collect::<Vec<_>>(), vec!["hostname"]);
    // disk_bytes was not read: changing it changes nothing.
    let mut more = facts("n1");
    more.insert("disk_bytes".into(), Fact::Int(2));
    assert_eq!(a.root, eval("80", more).root);
    // hostname was read: changing it changes the file that used it.
    let b = eval("80", facts("n2"));
    assert_ne!(a.root, b.root);
    assert_eq!(changed(&a, &b), vec!["file /etc/motd".to_string()]);
}

#[test]
fn resource_hashes_are_the_blake3_of_their_canonical_records() {
    let g = eval("80", facts("n1"));
    for node in &g.nodes {
        assert_eq!(
            Digest::of(&g.node_record(node).encode()),
            node.hash,
            "{}",
            node.key
        );
    }
    assert_eq!(Digest::of(&g.record().encode()), g.root);
}

#[test]
fn a_build_context_is_hashed_by_its_files() {
    let node = "[ container(\"web\", #{ build: \"apps/web\" }) ]";
    let eval = |index: &str| {
        let src = MemSources::default()
            .with("node.rhai", node)
            .with("apps/web/Containerfile", "FROM scratch\n")
            .with("apps/web/index.html", index);
        evaluate(src, "node.rhai", BTreeMap::new(), &Limits::default())
            .expect("evaluates")
            .graph
    };
    assert_eq!(eval("<h1>a</h1>").root, eval("<h1>a</h1>").root);
    assert_ne!(eval("<h1>a</h1>").root, eval("<h1>b</h1>").root);
}

#[test]
fn a_build_context_must_stay_inside_the_sources() {
    for context in ["../elsewhere", "/srv/web"] {
        let node = format!("[ container(\"web\", #{{ build: \"{context}\" }}) ]");
        let src = MemSources::default().with("node.rhai", &node);
        let f =
            evaluate(src, "node.rhai", BTreeMap::new(), &Limits::default()).expect_err("must fail");
        assert!(
            f.problems[0].message.contains("option `build`"),
            "{}",
            f.problems[0]
        );
    }
}

#[test]
fn texts_of_files_left_out_of_the_node_are_not_kept() {
    let node = "let unused = file(\"/etc/unused\", #{ text: \"left out\" });\n[ file(\"/etc/used\", #{ text: \"kept\" }) ]";
    let src = MemSources::default().with("node.rhai", node);
    let g = evaluate(src, "node.rhai", BTreeMap::new(), &Limits::default())
        .expect("evaluates")
        .graph;
    let texts: Vec<&str> = g.blobs.values().map(|t| t.as_ref()).collect();
    assert_eq!(texts, vec!["kept"]);
}

//! Building graphs into a store and loading generations back.

// Test helpers: a failure should panic, and the panic says where.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use archy_build::objects::{graph_object_name, resource_object_name};
use archy_build::{BuildError, LoadError, build, load};
use archy_eval::{FsSources, HostFacts, Limits};
use archy_graph::{Fact, Graph, Resource};
use archy_store::{ObjectId, ObjectName, Outcome, StateDir, Store, StoreError};

/// Fixed facts, so hashes do not depend on the machine.
fn facts() -> HostFacts {
    BTreeMap::from([
        ("hostname".to_owned(), Fact::Text("node1".into())),
        ("ip".to_owned(), Fact::Text("192.0.2.10".into())),
        ("mdns".to_owned(), Fact::Text("node1.local".into())),
        ("disk_bytes".to_owned(), Fact::Int(2_000_000_000_000)),
    ])
}

/// Evaluates `text` as `dir/node.rhai`, with the repository's stdlib copied
/// next to it.
fn evaluate(dir: &Path, text: &str) -> Graph {
    let stdlib = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../stdlib"));
    fs::create_dir_all(dir.join("stdlib")).unwrap();
    for entry in fs::read_dir(stdlib).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), dir.join("stdlib").join(entry.file_name())).unwrap();
    }
    let node = dir.join("node.rhai");
    fs::write(&node, text).unwrap();
    let (root, logical) = archy_eval::locate(&node).unwrap();
    let sources = FsSources::new(&root, archy_eval::resolver::folder(&logical)).unwrap();
    match archy_eval::evaluate(sources, &logical, facts(), &Limits::default()) {
        Ok(evaluation) => evaluation.graph,
        Err(failure) => panic!("evaluation failed: {:?}", failure.problems),
    }
}

/// A small node: a service reading a config file and a secret.
fn small_node(greeting: &str) -> String {
    format!(
        r#"
import "stdlib/systemd" as systemd;
[
    file("/etc/demo/app.conf", #{{ text: "greeting={greeting}\n" }}),
    secret("demo-token", #{{ length: 32 }}),
    systemd::service("demo", #{{
        exec: "/usr/bin/demo --config /etc/demo/app.conf",
        secrets: ["demo-token"],
    }}),
    health_unit("demo.service"),
]
"#
    )
}

/// One resource of every kind, with references between them.
const EVERY_KIND: &str = r#"
let conf = file("/etc/demo/app.conf", #{ text: "port=8080\n", mode: 0o640, owner: "demo", group: "demo" });
let token = secret("demo-token", #{ length: 48, owner: "demo" });
[
    group("demo", #{ gid: 950 }),
    user("demo", #{ uid: 950, group: "demo", home: "/var/lib/demo" }),
    dir("/var/lib/demo", #{ mode: 0o750, owner: "demo", group: "demo" }),
    conf,
    file("/etc/demo/copy.conf", #{ text: "port=8080\n" }),
    file("/etc/demo/motd", #{ text: "héllo ✓\n" }),
    token,
    unit("demo.service", #{
        Service: #{ ExecStart: "/usr/bin/demo --config /etc/demo/app.conf", User: "demo" },
        Install: #{ WantedBy: "multi-user.target" },
        reads: [token],
    }),
    network("demo-net", #{ subnet: "10.89.7.0/24" }),
    volume("demo-data"),
    container("demo-web", #{
        image: "docker.io/library/nginx:1.27",
        network: "demo-net",
        volumes: ["demo-data:/data", "/etc/demo/app.conf:/etc/app.conf:ro"],
        secret_env: #{ TOKEN: "demo-token" },
    }),
    health_unit("demo.service"),
    health_tcp(8080, #{ within: 10 }),
]
"#;

fn store_in(dir: &Path) -> Store {
    Store::open(&StateDir::new(dir.join("state"))).unwrap()
}

fn object_of_node(graph: &Graph, index: usize) -> ObjectId {
    let node = &graph.nodes[index];
    ObjectId::new(node.hash, resource_object_name(&node.resource))
}

#[test]
fn every_object_is_stored_under_the_hash_the_graph_gives_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let graph = evaluate(&dir.path().join("src"), &small_node("hello"));

    let report = build(&store, &graph, "/src/node.rhai").unwrap();

    assert!(report.new_generation);
    assert_eq!(report.number(), 1);
    assert_eq!(report.root, graph.root);
    for index in 0..graph.nodes.len() {
        let id = object_of_node(&graph, index);
        assert!(store.contains(&id).unwrap(), "{id} is missing");
        assert_eq!(
            store.read(&id).unwrap(),
            graph.node_record(&graph.nodes[index]).encode()
        );
    }
    let graph_id = ObjectId::new(graph.root, graph_object_name());
    assert_eq!(store.read(&graph_id).unwrap(), graph.record().encode());
    let text_id = ObjectId::new(
        archy_store::Digest::of(b"greeting=hello\n"),
        ObjectName::try_from("app.conf").unwrap(),
    );
    assert_eq!(store.read(&text_id).unwrap(), b"greeting=hello\n");

    // The record: what, from where, with which facts, every object.
    let record = &report.generation;
    assert_eq!(record.root, graph.root.to_string());
    assert_eq!(record.source, "/src/node.rhai");
    assert_eq!(record.outcome, Outcome::Built);
    assert_eq!(record.graph, graph_id);
    assert!(record.objects.contains(&text_id));
    assert_eq!(
        record.objects.len(),
        graph.nodes.len() + 1,
        "resources and one text"
    );
    assert_eq!(report.objects, record.objects.len() + 1, "and the graph");
    assert_eq!(report.objects_written, report.objects);
    assert_eq!(report.objects_present, 0);
    let stored_bytes: u64 = record
        .referenced_objects()
        .map(|id| fs::metadata(store.object_path(id)).unwrap().len())
        .sum();
    assert_eq!(report.bytes_written, stored_bytes);
    for (name, fact) in &graph.facts {
        let expected = match fact {
            Fact::Int(n) => serde_json::json!(n),
            Fact::Text(s) => serde_json::json!(s),
        };
        assert_eq!(record.facts.get(name), Some(&expected), "fact {name}");
    }
    assert!(store.verify().unwrap().is_clean());
}

#[test]
fn building_the_same_graph_again_writes_nothing_and_returns_the_generation() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let graph = evaluate(&dir.path().join("src"), &small_node("hello"));
    let first = build(&store, &graph, "node.rhai").unwrap();
    let listing = |dir: &Path| {
        let mut names: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        names
    };
    let objects_before = listing(store.objects_dir());
    let record_before = fs::read(store.generation_path(1)).unwrap();

    let again = build(&store, &graph, "node.rhai").unwrap();

    assert!(!again.new_generation);
    assert!(again.wrote_nothing());
    assert_eq!(again.number(), first.number());
    assert_eq!(again.root, first.root);
    assert_eq!((again.objects_written, again.bytes_written), (0, 0));
    assert_eq!(again.objects_present, first.objects);
    assert_eq!(listing(store.objects_dir()), objects_before);
    assert_eq!(fs::read(store.generation_path(1)).unwrap(), record_before);
    assert_eq!(listing(store.generations_dir()).len(), 1);
}

#[test]
fn a_changed_file_is_a_new_generation_that_shares_the_unchanged_objects() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let first = build(
        &store,
        &evaluate(&dir.path().join("a"), &small_node("hello")),
        "a",
    )
    .unwrap();
    let second = build(
        &store,
        &evaluate(&dir.path().join("b"), &small_node("bye")),
        "b",
    )
    .unwrap();

    assert!(second.new_generation);
    assert_eq!(second.number(), 2);
    assert_ne!(second.root, first.root);
    // New: the text, the file's record, the service that reads the file
    // (its hash covers the file's), and the graph. The secret, the health
    // check and the timer-free rest are shared.
    assert_eq!(second.objects_written, 4);
    assert_eq!(
        second.objects_present,
        second.objects - 4,
        "everything else is shared"
    );
    assert!(
        load(&store, 1).is_ok(),
        "the first generation stays loadable"
    );
}

#[test]
fn a_loaded_generation_is_the_built_graph_without_any_source() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let sources = dir.path().join("src");
    let graph = evaluate(&sources, EVERY_KIND);
    let report = build(&store, &graph, "node.rhai").unwrap();
    fs::remove_dir_all(&sources).unwrap();

    let loaded = load(&store, report.number()).unwrap();

    assert_eq!(loaded.record, report.generation);
    let back = &loaded.graph;
    assert_eq!(back.root, graph.root);
    assert_eq!(back.facts, graph.facts);
    assert_eq!(back.nodes.len(), graph.nodes.len());
    for (built, loaded_node) in graph.nodes.iter().zip(&back.nodes) {
        assert_eq!(loaded_node.key, built.key);
        assert_eq!(loaded_node.resource, built.resource, "{}", built.key);
        assert_eq!(loaded_node.refs, built.refs, "{}", built.key);
        assert_eq!(loaded_node.hash, built.hash, "{}", built.key);
        assert_eq!(loaded_node.at, archy_build::loaded_span(1));
    }
    assert_eq!(back.blobs, graph.blobs);
    // The loaded graph hashes like the built one: it can be planned against.
    for node in &back.nodes {
        let record = back.node_record(node).encode();
        assert_eq!(archy_graph::Digest::of(&record), node.hash, "{}", node.key);
    }
    assert_eq!(archy_graph::Digest::of(&back.record().encode()), graph.root);
    // The test means something only if references were stored.
    assert!(back.nodes.iter().any(|node| !node.refs.is_empty()));
}

#[test]
fn two_files_with_the_same_text_share_the_text_but_not_the_name() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let graph = evaluate(&dir.path().join("src"), EVERY_KIND);
    let report = build(&store, &graph, "node.rhai").unwrap();
    let digest = archy_store::Digest::of(b"port=8080\n");
    let texts: Vec<_> = report
        .generation
        .objects
        .iter()
        .filter(|id| id.digest() == digest)
        .map(|id| id.name().as_str().to_owned())
        .collect();
    assert_eq!(texts, ["app.conf", "copy.conf"]);
}

#[test]
fn only_the_texts_of_returned_files_are_stored() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let mut graph = evaluate(
        &dir.path().join("src"),
        r#"[file("/etc/used", #{ text: "returned" })]"#,
    );
    // What an evaluation keeps of a file declared but never returned.
    graph.blobs.insert(
        archy_graph::Digest::of(b"never returned"),
        "never returned".into(),
    );
    let report = build(&store, &graph, "node.rhai").unwrap();
    let names: Vec<_> = report
        .generation
        .objects
        .iter()
        .map(|id| id.name().as_str())
        .collect();
    assert_eq!(names.len(), 2, "the file's record and its text: {names:?}");
    let unused = archy_store::Digest::of(b"never returned").to_string();
    for entry in fs::read_dir(store.objects_dir()).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(!name.starts_with(&unused), "{name} was stored");
    }
    let loaded = load(&store, 1).unwrap();
    assert_eq!(loaded.graph.blobs.len(), 1);
}

/// Overwrites an object (objects are read-only; the test owns the files).
fn corrupt(store: &Store, id: &ObjectId) {
    let path = store.object_path(id);
    let mut permissions = fs::metadata(&path).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    permissions.set_readonly(false);
    fs::set_permissions(&path, permissions).unwrap();
    fs::write(&path, b"not what it was").unwrap();
}

#[test]
fn loading_names_a_corrupt_object() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let graph = evaluate(&dir.path().join("src"), &small_node("hello"));
    build(&store, &graph, "node.rhai").unwrap();
    let id = object_of_node(&graph, 0);
    corrupt(&store, &id);

    let err = load(&store, 1).unwrap_err();
    assert!(
        matches!(&err, LoadError::Store(StoreError::CorruptObject { id: bad, .. }) if *bad == id),
        "{err:?}"
    );
    assert!(err.to_string().contains("is corrupt"), "{err}");
}

#[test]
fn rebuilding_writes_back_a_deleted_object_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let graph = evaluate(&dir.path().join("src"), &small_node("hello"));
    build(&store, &graph, "node.rhai").unwrap();
    let id = object_of_node(&graph, 1);
    fs::remove_file(store.object_path(&id)).unwrap();
    let err = load(&store, 1).unwrap_err();
    assert!(
        matches!(err, LoadError::Store(StoreError::ObjectNotFound { .. })),
        "{err:?}"
    );

    let again = build(&store, &graph, "node.rhai").unwrap();

    assert!(!again.new_generation);
    assert_eq!(again.number(), 1);
    assert_eq!(again.objects_written, 1);
    assert!(!again.wrote_nothing());
    assert!(load(&store, 1).is_ok());
}

#[test]
fn a_graph_without_the_text_of_a_file_is_refused_before_anything_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let mut graph = evaluate(&dir.path().join("src"), &small_node("hello"));
    graph.blobs.clear();

    let err = build(&store, &graph, "node.rhai").unwrap_err();

    assert!(matches!(err, BuildError::MissingBlob { .. }), "{err:?}");
    assert!(store.generations().unwrap().is_empty());
}

#[test]
fn a_resource_whose_hash_is_not_its_encoding_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let mut graph = evaluate(&dir.path().join("src"), &small_node("hello"));
    let index = graph
        .nodes
        .iter()
        .position(|node| matches!(node.resource, Resource::Secret(_)))
        .unwrap();
    graph.nodes[index].hash = archy_graph::Digest::of(b"something else");

    let err = build(&store, &graph, "node.rhai").unwrap_err();

    assert!(matches!(err, BuildError::HashMismatch { .. }), "{err:?}");
    assert!(err.to_string().contains("secret demo-token"), "{err}");
    assert!(store.generations().unwrap().is_empty());
}

#[test]
fn loading_a_missing_or_broken_generation_says_which() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let err = load(&store, 7).unwrap_err();
    assert!(
        matches!(
            err,
            LoadError::Store(StoreError::NoSuchGeneration { number: 7, .. })
        ),
        "{err:?}"
    );
    fs::write(store.generation_path(3), b"{ not json").unwrap();
    let err = load(&store, 3).unwrap_err();
    assert!(
        matches!(
            err,
            LoadError::Store(StoreError::BrokenRecord { number: 3, .. })
        ),
        "{err:?}"
    );
}

#[test]
fn a_record_whose_graph_is_not_its_root_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let graph = evaluate(&dir.path().join("src"), &small_node("hello"));
    build(&store, &graph, "node.rhai").unwrap();
    let path = store.generation_path(1);
    let mut record: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    record["graph"] = serde_json::json!(object_of_node(&graph, 0).to_string());
    fs::write(&path, serde_json::to_vec(&record).unwrap()).unwrap();

    let err = load(&store, 1).unwrap_err();

    assert!(matches!(err, LoadError::GraphNotRoot { .. }), "{err:?}");
}

//! Build contexts travel with their generation: stored by `build`, read back
//! by `load` without the sources, kept by `gc`, checked by `verify`, and
//! written out as a folder for `podman build`.

// Test helpers: a failure should panic, and the panic says where.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use archy_build::objects::context_object_name;
use archy_build::{BuildError, LoadError, build, load, write_context};
use archy_eval::{FsSources, Limits};
use archy_graph::resource::ImageSource;
use archy_graph::{BuildContext, ContextFile, Digest, Graph, Resource};
use archy_store::{ObjectId, StateDir, Store, StoreError};

const CONTAINERFILE: &str = "FROM localhost/testbed/busybox:latest\nCOPY . /www\n";

/// Writes the context `apps/web` below `src` (a Containerfile, a page and an
/// executable script in a subfolder) and a node building it.
fn sources(src: &Path, page: &str) {
    let web = src.join("apps/web");
    fs::create_dir_all(web.join("bin")).unwrap();
    fs::write(web.join("Containerfile"), CONTAINERFILE).unwrap();
    fs::write(web.join("index.html"), page).unwrap();
    fs::write(web.join("bin/start.sh"), "#!/bin/sh\nexec httpd -f\n").unwrap();
    fs::set_permissions(web.join("bin/start.sh"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(
        src.join("node.rhai"),
        r#"[ container("web", #{ build: "apps/web", ports: ["8080:8080"] }) ]"#,
    )
    .unwrap();
}

fn evaluate_at(src: &Path) -> Graph {
    let (root, logical) = archy_eval::locate(&src.join("node.rhai")).unwrap();
    let sources = FsSources::new(&root, archy_eval::resolver::folder(&logical)).unwrap();
    match archy_eval::evaluate(sources, &logical, BTreeMap::new(), &Limits::default()) {
        Ok(evaluation) => evaluation.graph,
        Err(failure) => panic!("evaluation failed: {:?}", failure.problems),
    }
}

fn evaluate(src: &Path, page: &str) -> Graph {
    sources(src, page);
    evaluate_at(src)
}

fn store_in(dir: &Path) -> Store {
    Store::open(&StateDir::new(dir.join("state"))).unwrap()
}

/// The tree digest the graph's only container is built from.
fn tree(graph: &Graph) -> Digest {
    graph
        .nodes
        .iter()
        .find_map(|node| match &node.resource {
            Resource::Container(c) => match &c.image {
                ImageSource::Build { tree, .. } => Some(*tree),
                ImageSource::Reference(_) => None,
            },
            _ => None,
        })
        .unwrap()
}

/// The store object of the context's manifest.
fn manifest_id(graph: &Graph) -> ObjectId {
    ObjectId::new(tree(graph), context_object_name("apps/web"))
}

/// Overwrites an object (objects are read-only; the test owns the files).
fn corrupt(store: &Store, id: &ObjectId) {
    let path = store.object_path(id);
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    fs::write(&path, b"not what it was").unwrap();
}

#[test]
fn the_evaluator_hands_the_context_it_read_to_the_graph() {
    let dir = tempfile::tempdir().unwrap();
    let graph = evaluate(dir.path(), "<h1>one</h1>\n");

    let tree = tree(&graph);
    let context = &graph.contexts[&tree];
    assert_eq!(graph.contexts.len(), 1);
    assert_eq!(context.tree_digest(), tree);
    let files: Vec<_> = context
        .files
        .iter()
        .map(|f| (f.path.as_str(), f.executable, f.bytes.as_slice()))
        .collect();
    assert_eq!(
        files,
        [
            ("Containerfile", false, CONTAINERFILE.as_bytes()),
            (
                "bin/start.sh",
                true,
                b"#!/bin/sh\nexec httpd -f\n".as_slice()
            ),
            ("index.html", false, b"<h1>one</h1>\n".as_slice()),
        ]
    );
}

#[test]
fn a_context_no_returned_container_uses_is_not_part_of_the_graph() {
    let dir = tempfile::tempdir().unwrap();
    sources(dir.path(), "<h1>one</h1>\n");
    fs::create_dir_all(dir.path().join("apps/other")).unwrap();
    fs::write(
        dir.path().join("apps/other/Containerfile"),
        "FROM scratch\n",
    )
    .unwrap();
    fs::write(
        dir.path().join("node.rhai"),
        r#"
let unused = container("other", #{ build: "apps/other" });
[ container("web", #{ build: "apps/web" }) ]
"#,
    )
    .unwrap();

    let graph = evaluate_at(dir.path());

    assert_eq!(graph.contexts.keys().collect::<Vec<_>>(), [&tree(&graph)]);
}

#[test]
fn a_built_context_loads_back_without_the_sources() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let src = dir.path().join("src");
    let graph = evaluate(&src, "<h1>one</h1>\n");
    let report = build(&store, &graph, "node.rhai").unwrap();
    fs::remove_dir_all(&src).unwrap();

    // The manifest is stored under the tree digest, each file by content.
    let record = &report.generation;
    let manifest = manifest_id(&graph);
    assert_eq!(manifest.name().as_str(), "web.context");
    assert!(record.objects.contains(&manifest), "{:?}", record.objects);
    assert_eq!(
        store.read(&manifest).unwrap(),
        graph.contexts[&tree(&graph)].manifest_bytes()
    );
    let names: Vec<_> = record.objects.iter().map(|id| id.name().as_str()).collect();
    for name in ["Containerfile", "start.sh", "index.html"] {
        assert!(names.contains(&name), "{name} in {names:?}");
    }
    // A container record, three files, the manifest.
    assert_eq!(record.objects.len(), 5, "{names:?}");
    assert!(store.verify().unwrap().is_clean());

    let loaded = load(&store, report.number()).unwrap();

    assert_eq!(loaded.graph.contexts, graph.contexts);
    assert_eq!(loaded.graph.root, graph.root);
}

#[test]
fn gc_keeps_the_contexts_of_kept_generations_only() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let old = evaluate(&dir.path().join("a"), "<h1>old</h1>\n");
    let new = evaluate(&dir.path().join("b"), "<h1>new</h1>\n");
    build(&store, &old, "a").unwrap();
    let kept = build(&store, &new, "b").unwrap();
    let page = |text: &str| {
        ObjectId::new(
            archy_store::Digest::of(text.as_bytes()),
            "index.html".try_into().unwrap(),
        )
    };

    let report = store.gc(1).unwrap();

    assert_eq!(report.generations_deleted, [1]);
    assert!(!store.contains(&manifest_id(&old)).unwrap());
    assert!(!store.contains(&page("<h1>old</h1>\n")).unwrap());
    assert!(store.contains(&manifest_id(&new)).unwrap());
    assert!(store.contains(&page("<h1>new</h1>\n")).unwrap());
    let shared = ObjectId::new(
        archy_store::Digest::of(CONTAINERFILE.as_bytes()),
        "Containerfile".try_into().unwrap(),
    );
    assert!(store.contains(&shared).unwrap(), "shared with the kept one");
    assert!(store.verify().unwrap().is_clean());
    let loaded = load(&store, kept.number()).unwrap();
    assert_eq!(loaded.graph.contexts, new.contexts);
}

#[test]
fn verify_and_load_flag_a_corrupt_context_object() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let graph = evaluate(&dir.path().join("src"), "<h1>one</h1>\n");
    build(&store, &graph, "node.rhai").unwrap();
    let manifest = manifest_id(&graph);
    corrupt(&store, &manifest);

    let report = store.verify().unwrap();
    assert_eq!(
        report.corrupt.iter().map(|c| &c.id).collect::<Vec<_>>(),
        [&manifest]
    );

    let err = load(&store, 1).unwrap_err();
    let LoadError::ContextUnreadable {
        context, source, ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(context, "apps/web");
    assert!(
        matches!(&**source, StoreError::CorruptObject { id, .. } if *id == manifest),
        "{err:?}"
    );
}

#[test]
fn a_missing_context_object_fails_the_load_and_says_which_context() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let graph = evaluate(&dir.path().join("src"), "<h1>one</h1>\n");
    build(&store, &graph, "node.rhai").unwrap();
    let page = ObjectId::new(
        archy_store::Digest::of(b"<h1>one</h1>\n"),
        "index.html".try_into().unwrap(),
    );
    fs::remove_file(store.object_path(&page)).unwrap();

    let err = load(&store, 1).unwrap_err();

    assert!(
        matches!(
            &err,
            LoadError::ContextUnreadable { source, .. }
                if matches!(&**source, StoreError::ObjectNotFound { id, .. } if *id == page)
        ),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains("build context apps/web"), "{text}");
    assert!(store.verify().unwrap().missing.iter().any(|m| m.id == page));

    // Building again writes it back.
    let again = build(&store, &graph, "node.rhai").unwrap();
    assert_eq!(again.objects_written, 1);
    assert!(load(&store, 1).is_ok());
}

/// Drops every object named `name` from generation 1's record, as a record
/// written by an archy that did not store contexts would be.
fn unlist(store: &Store, name: &str) {
    let path = store.generation_path(1);
    let mut record: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    let objects = record["objects"].as_array_mut().unwrap();
    objects.retain(|id| !id.as_str().unwrap().ends_with(&format!("-{name}")));
    fs::write(&path, serde_json::to_vec(&record).unwrap()).unwrap();
}

#[test]
fn a_record_without_the_context_fails_the_load_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let graph = evaluate(&dir.path().join("src"), "<h1>one</h1>\n");
    build(&store, &graph, "node.rhai").unwrap();
    unlist(&store, "web.context");

    let err = load(&store, 1).unwrap_err();

    assert!(
        matches!(&err, LoadError::ContextNotListed { key, context, .. }
            if key == "container web" && context == "apps/web"),
        "{err:?}"
    );
    assert!(err.to_string().contains("lists no build context"), "{err}");
}

#[test]
fn a_record_without_a_context_file_fails_the_load_and_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let graph = evaluate(&dir.path().join("src"), "<h1>one</h1>\n");
    build(&store, &graph, "node.rhai").unwrap();
    unlist(&store, "start.sh");

    let err = load(&store, 1).unwrap_err();

    assert!(
        matches!(&err, LoadError::ContextFileNotListed { path, .. } if path == "bin/start.sh"),
        "{err:?}"
    );
}

#[test]
fn a_graph_without_the_files_of_a_context_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let mut graph = evaluate(&dir.path().join("src"), "<h1>one</h1>\n");
    graph.contexts.clear();

    let err = build(&store, &graph, "node.rhai").unwrap_err();

    assert!(matches!(err, BuildError::MissingContext { .. }), "{err:?}");
    assert!(store.generations().unwrap().is_empty());
}

#[test]
fn a_context_whose_files_are_not_its_tree_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let mut graph = evaluate(&dir.path().join("src"), "<h1>one</h1>\n");
    let tree = tree(&graph);
    let mut changed = (*graph.contexts[&tree]).clone();
    changed.files[0].bytes.push(b'\n');
    graph.contexts.insert(tree, Arc::new(changed));

    let err = build(&store, &graph, "node.rhai").unwrap_err();

    assert!(matches!(err, BuildError::HashMismatch { .. }), "{err:?}");
    assert!(store.generations().unwrap().is_empty());
}

#[test]
fn write_context_writes_the_files_with_their_modes() {
    let dir = tempfile::tempdir().unwrap();
    let graph = evaluate(&dir.path().join("src"), "<h1>one</h1>\n");
    let context = &graph.contexts[&tree(&graph)];
    let out = dir.path().join("out/web");

    write_context(context, &out).unwrap();

    for file in &context.files {
        let path = out.join(&file.path);
        assert_eq!(fs::read(&path).unwrap(), file.bytes, "{}", file.path);
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
        let expected = if file.executable { 0o755 } else { 0o644 };
        assert_eq!(mode, expected, "{}", file.path);
    }
    let mut listing: Vec<_> = fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    listing.sort();
    assert_eq!(listing, ["Containerfile", "bin", "index.html"]);
}

#[test]
fn write_context_refuses_a_path_leaving_the_folder_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let file = |path: &str| ContextFile {
        path: path.to_owned(),
        executable: false,
        bytes: b"x".to_vec(),
    };
    for bad in ["../escaped", "a/../../escaped", "/tmp/escaped"] {
        let out = dir.path().join("out");
        let context = BuildContext::new(vec![file("Containerfile"), file(bad)]);

        let err = write_context(&context, &out).unwrap_err();

        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{bad}: {err}");
        assert!(err.to_string().contains(bad), "{err}");
        assert!(!out.exists(), "{bad}: nothing is written");
        assert!(!dir.path().join("escaped").exists());
    }
}

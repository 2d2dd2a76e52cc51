//! Software into the store: artifacts and trees fetched from the node's
//! sources or a URL, checked against their declared hash before anything
//! is named, normalized (trees), and listed in the generation.

// Test helpers: a failure should panic, and the panic says where.
#![allow(clippy::unwrap_used)]

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use archy_build::software::{Download, Origin, artifact_object, read_tree};
use archy_build::{BuildError, build_with};
use archy_eval::{FsSources, HostFacts, Limits};
use archy_graph::tree::TreeEntry;
use archy_graph::{Fact, Graph, Resource};
use archy_store::{StateDir, Store};
use sha2::Digest as _;

fn facts() -> HostFacts {
    BTreeMap::from([
        ("hostname".to_owned(), Fact::Text("node1".into())),
        ("ip".to_owned(), Fact::Text("192.0.2.10".into())),
        ("mdns".to_owned(), Fact::Text("node1.local".into())),
        ("disk_bytes".to_owned(), Fact::Int(2_000_000_000_000)),
    ])
}

/// Evaluates `text` as `dir/node.rhai`; `dir` gets a `stdlib/` folder, so
/// it is the node's sources root that relative sources resolve against.
fn evaluate(dir: &Path, text: &str) -> Graph {
    fs::create_dir_all(dir.join("stdlib")).unwrap();
    let node = dir.join("node.rhai");
    fs::write(&node, text).unwrap();
    let (root, logical) = archy_eval::locate(&node).unwrap();
    let sources = FsSources::new(&root, archy_eval::resolver::folder(&logical)).unwrap();
    match archy_eval::evaluate(sources, &logical, facts(), &Limits::default()) {
        Ok(evaluation) => evaluation.graph,
        Err(failure) => panic!("evaluation failed: {:?}", failure.problems),
    }
}

fn store_in(dir: &Path) -> Store {
    Store::open(&StateDir::new(dir.join("state"))).unwrap()
}

fn local(root: &Path) -> Origin<'static> {
    Origin {
        root: Some(root.to_owned()),
        ..Origin::default()
    }
}

fn blake3_hex(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

fn artifact_node(source: &str, hash_key: &str, hash: &str) -> String {
    format!(
        "[\n    artifact(\"/usr/local/bin/validator\", #{{ source: \"{source}\", {hash_key}: \"{hash}\", mode: 0o755 }}),\n]\n"
    )
}

fn artifact_spec(graph: &Graph) -> archy_graph::resource::ArtifactSpec {
    graph
        .nodes
        .iter()
        .find_map(|n| match &n.resource {
            Resource::Artifact(a) => Some(a.clone()),
            _ => None,
        })
        .unwrap()
}

fn object_count(store: &Store) -> usize {
    fs::read_dir(store.objects_dir())
        .unwrap()
        .filter(|e| {
            !e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with('.')
        })
        .count()
}

fn generation_count(store: &Store) -> usize {
    store.generations().unwrap().len()
}

const VALIDATOR: &[u8] = b"#!/bin/sh\necho validator v1\n";

#[test]
fn an_artifact_from_the_nodes_sources_is_stored_runnable_and_listed_in_the_generation() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    fs::create_dir_all(src.join("bin")).unwrap();
    fs::write(src.join("bin/validator"), VALIDATOR).unwrap();
    let graph = evaluate(
        &src,
        &artifact_node("bin/validator", "blake3", &blake3_hex(VALIDATOR)),
    );
    let store = store_in(dir.path());

    let report = build_with(&store, &graph, "node.rhai", &local(&src)).unwrap();

    let id = artifact_object(&store, &artifact_spec(&graph))
        .unwrap()
        .expect("stored");
    assert_eq!(id.digest().to_string(), blake3_hex(VALIDATOR));
    assert_eq!(store.read(&id).unwrap(), VALIDATOR);
    let mode = fs::metadata(store.object_path(&id))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o7777,
        0o555,
        "a program in the store is read-only and runnable"
    );
    assert!(
        report.generation.objects.contains(&id),
        "{:?}",
        report.generation.objects
    );
    assert!(store.verify().unwrap().is_clean());
}

#[test]
fn a_wrong_blake3_names_both_hashes_and_where_it_was_declared_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    fs::create_dir_all(src.join("bin")).unwrap();
    fs::write(src.join("bin/validator"), VALIDATOR).unwrap();
    let declared = blake3_hex(b"some other validator");
    let graph = evaluate(&src, &artifact_node("bin/validator", "blake3", &declared));
    let store = store_in(dir.path());

    let err = build_with(&store, &graph, "node.rhai", &local(&src)).unwrap_err();

    assert!(matches!(err, BuildError::Software(_)), "{err:?}");
    let text = err.to_string();
    assert!(text.contains(&format!("blake3:{declared}")), "{text}");
    assert!(
        text.contains(&format!("blake3:{}", blake3_hex(VALIDATOR))),
        "{text}"
    );
    assert!(
        text.contains("node.rhai:2:"),
        "names the declaring line: {text}"
    );
    assert!(text.contains("/usr/local/bin/validator"), "{text}");
    assert_eq!(object_count(&store), 0, "no object");
    assert_eq!(generation_count(&store), 0, "no generation");
}

#[test]
fn an_artifact_by_sha256_is_checked_and_found_again_by_that_hash() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    fs::create_dir_all(src.join("bin")).unwrap();
    fs::write(src.join("bin/validator"), VALIDATOR).unwrap();
    let sha = format!("{:x}", sha2::Sha256::digest(VALIDATOR));
    let graph = evaluate(&src, &artifact_node("bin/validator", "sha256", &sha));
    let store = store_in(dir.path());

    let report = build_with(&store, &graph, "node.rhai", &local(&src)).unwrap();

    let id = artifact_object(&store, &artifact_spec(&graph))
        .unwrap()
        .expect("stored");
    assert_eq!(store.read(&id).unwrap(), VALIDATOR);
    assert!(id.name().as_str().contains(&sha), "{id}");
    assert!(report.generation.objects.contains(&id));

    // A second build finds it without reading the source again.
    fs::remove_file(src.join("bin/validator")).unwrap();
    let again = build_with(&store, &graph, "node.rhai", &local(&src)).unwrap();
    assert!(again.wrote_nothing());

    // And a wrong sha256 stores nothing.
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    fs::create_dir_all(src.join("bin")).unwrap();
    fs::write(src.join("bin/validator"), VALIDATOR).unwrap();
    let wrong = format!("{:x}", sha2::Sha256::digest(b"other"));
    let graph = evaluate(&src, &artifact_node("bin/validator", "sha256", &wrong));
    let store = store_in(dir.path());
    let text = build_with(&store, &graph, "node.rhai", &local(&src))
        .unwrap_err()
        .to_string();
    assert!(text.contains(&format!("sha256:{wrong}")), "{text}");
    assert!(text.contains(&format!("sha256:{sha}")), "{text}");
    assert_eq!((object_count(&store), generation_count(&store)), (0, 0));
}

/// A web UI's folder as it ships too often: a 0700 folder, a setuid file,
/// a program, and a link inside the tree.
fn messy_folder(at: &Path) {
    fs::create_dir_all(at.join("assets/private")).unwrap();
    fs::write(at.join("index.html"), b"<p>hello</p>\n").unwrap();
    fs::write(at.join("assets/private/app.js"), b"console.log(1)\n").unwrap();
    fs::set_permissions(at.join("assets/private"), fs::Permissions::from_mode(0o700)).unwrap();
    fs::write(at.join("suid"), b"#!/bin/sh\n").unwrap();
    fs::set_permissions(at.join("suid"), fs::Permissions::from_mode(0o4755)).unwrap();
    fs::write(at.join("run.sh"), b"#!/bin/sh\necho run\n").unwrap();
    fs::set_permissions(at.join("run.sh"), fs::Permissions::from_mode(0o700)).unwrap();
    symlink("../index.html", at.join("assets/home.html")).unwrap();
}

fn tree_node(source: &str, blake3: &str) -> String {
    format!("[\n    tree(\"/srv/ui\", #{{ source: \"{source}\", blake3: \"{blake3}\" }}),\n]\n")
}

#[test]
fn a_tree_from_a_folder_is_normalized_in_its_manifest_and_its_layout() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    messy_folder(&src.join("ui"));
    let manifest = read_tree(&src.join("ui"), None).unwrap();
    let graph = evaluate(&src, &tree_node("ui", &manifest.digest().to_string()));
    let store = store_in(dir.path());

    let report = build_with(&store, &graph, "node.rhai", &local(&src)).unwrap();

    let entry = |path: &str| {
        manifest
            .entries
            .iter()
            .find(|e| e.path() == path)
            .unwrap_or_else(|| panic!("{path} in {:?}", manifest.entries))
            .clone()
    };
    assert_eq!(
        entry("assets/private"),
        TreeEntry::Dir {
            path: "assets/private".into()
        }
    );
    assert!(matches!(
        entry("suid"),
        TreeEntry::File {
            executable: true,
            ..
        }
    ));
    assert!(matches!(
        entry("run.sh"),
        TreeEntry::File {
            executable: true,
            ..
        }
    ));
    assert!(matches!(
        entry("index.html"),
        TreeEntry::File {
            executable: false,
            ..
        }
    ));
    assert_eq!(
        entry("assets/home.html"),
        TreeEntry::Link {
            path: "assets/home.html".into(),
            target: "../index.html".into()
        }
    );

    let laid = store
        .state_dir()
        .trees()
        .join(manifest.digest().to_string());
    let mode = |p: &str| {
        fs::symlink_metadata(laid.join(p))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    };
    assert_eq!(mode(""), 0o755);
    assert_eq!(mode("assets"), 0o755);
    assert_eq!(mode("assets/private"), 0o755, "the 0700 folder is opened");
    assert_eq!(mode("assets/private/app.js"), 0o444);
    assert_eq!(mode("index.html"), 0o444);
    assert_eq!(mode("run.sh"), 0o555);
    assert_eq!(mode("suid"), 0o555, "no setuid");
    assert_eq!(
        fs::read_link(laid.join("assets/home.html")).unwrap(),
        Path::new("../index.html")
    );
    assert_eq!(
        fs::read(laid.join("assets/home.html")).unwrap(),
        b"<p>hello</p>\n"
    );
    for e in fs::read_dir(&laid).unwrap() {
        let meta = fs::symlink_metadata(e.unwrap().path()).unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_eq!((meta.uid(), meta.gid()), (0, 0), "root's");
    }

    let manifest_id = archy_build::software::manifest_object(manifest.digest());
    assert!(report.generation.objects.contains(&manifest_id));
    for e in &manifest.entries {
        if let TreeEntry::File {
            path,
            executable,
            content,
            ..
        } = e
        {
            let id = archy_build::software::file_object(path, *executable, *content);
            assert!(report.generation.objects.contains(&id), "{path}");
        }
    }
    assert!(store.verify().unwrap().is_clean());
}

/// Makes one bad entry in a tree's folder.
type MakeEntry<'a> = &'a dyn Fn(&Path);

#[test]
fn a_tree_refuses_links_out_of_it_absolute_links_and_fifos_naming_the_entry() {
    let cases: [(&str, MakeEntry); 3] = [
        ("assets/out", &|ui: &Path| {
            symlink("../../etc/passwd", ui.join("assets/out")).unwrap()
        }),
        ("assets/abs", &|ui: &Path| {
            symlink("/etc/passwd", ui.join("assets/abs")).unwrap()
        }),
        ("assets/pipe", &|ui: &Path| {
            let status = std::process::Command::new("mkfifo")
                .arg(ui.join("assets/pipe"))
                .status()
                .unwrap();
            assert!(status.success());
        }),
    ];
    for (entry, make) in cases {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        let ui = src.join("ui");
        fs::create_dir_all(ui.join("assets")).unwrap();
        fs::write(ui.join("index.html"), b"hi\n").unwrap();
        make(&ui);
        let err = read_tree(&ui, None).unwrap_err().to_string();
        assert!(err.contains(&format!("{entry:?}")), "{entry}: {err}");

        // Through a build: refused, nothing stored, no generation.
        let any = blake3_hex(b"whatever");
        let graph = evaluate(&src, &tree_node("ui", &any));
        let store = store_in(dir.path());
        let err = build_with(&store, &graph, "node.rhai", &local(&src))
            .unwrap_err()
            .to_string();
        assert!(err.contains(&format!("{entry:?}")), "{entry}: {err}");
        assert!(err.contains("node.rhai:2:"), "{err}");
        assert_eq!(
            (object_count(&store), generation_count(&store)),
            (0, 0),
            "{entry}"
        );
    }
}

/// The folder `folder` as a tar archive, its entries under `./`.
fn tar_of(folder: &Path) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
    builder.append_dir_all(".", folder).unwrap();
    builder.into_inner().unwrap()
}

#[test]
fn tar_gz_and_tar_zst_archives_hash_as_the_same_folder_and_build() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    messy_folder(&src.join("ui"));
    let folder = read_tree(&src.join("ui"), None).unwrap().digest();
    let tar = tar_of(&src.join("ui"));

    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &tar).unwrap();
    fs::write(src.join("ui.tar.gz"), gz.finish().unwrap()).unwrap();
    // ruzstd (the decoder the build uses) also encodes, so the test needs
    // no `zstd` program.
    let zst =
        ruzstd::encoding::compress_to_vec(&tar[..], ruzstd::encoding::CompressionLevel::Fastest);
    fs::write(src.join("ui.tar.zst"), zst).unwrap();
    fs::write(src.join("ui.tar"), &tar).unwrap();

    for archive in ["ui.tar.gz", "ui.tar.zst", "ui.tar"] {
        assert_eq!(
            read_tree(&src.join(archive), None).unwrap().digest(),
            folder,
            "{archive}"
        );
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(dir.path());
        let graph = evaluate(&src, &tree_node(archive, &folder.to_string()));
        build_with(&store, &graph, "node.rhai", &local(&src)).unwrap();
        let laid = store.state_dir().trees().join(folder.to_string());
        assert_eq!(
            fs::read(laid.join("assets/private/app.js")).unwrap(),
            b"console.log(1)\n",
            "{archive}"
        );
        assert!(store.verify().unwrap().is_clean(), "{archive}");
    }
}

/// A downloader that serves fixed bytes and counts its calls.
struct FakeDownload {
    bytes: Vec<u8>,
    calls: Cell<usize>,
    dests: std::cell::RefCell<Vec<PathBuf>>,
    urls: std::cell::RefCell<Vec<String>>,
}

impl FakeDownload {
    fn new(bytes: &[u8]) -> Self {
        FakeDownload {
            bytes: bytes.to_vec(),
            calls: Cell::new(0),
            dests: Default::default(),
            urls: Default::default(),
        }
    }
}

impl Download for FakeDownload {
    fn download(&self, urls: &[String], dest: &Path) -> Result<(), String> {
        self.calls.set(self.calls.get() + 1);
        self.dests.borrow_mut().push(dest.to_owned());
        self.urls.borrow_mut().extend(urls.iter().cloned());
        fs::write(dest, &self.bytes).map_err(|e| e.to_string())
    }
}

const URL: &str = "https://example.org/releases/validator";

#[test]
fn a_url_is_fetched_once_then_found_in_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let graph = evaluate(&src, &artifact_node(URL, "blake3", &blake3_hex(VALIDATOR)));
    let store = store_in(dir.path());
    let fake = FakeDownload::new(VALIDATOR);
    let origin = Origin {
        root: Some(src.clone()),
        object_mirrors: vec!["https://mirror.example/r/".into()],
        download: Some(&fake),
        running: None,
    };

    let first = build_with(&store, &graph, "node.rhai", &origin).unwrap();
    assert_eq!(fake.calls.get(), 1);
    // The release's mirror by hash first, then the URL itself.
    assert_eq!(
        *fake.urls.borrow(),
        [
            format!("https://mirror.example/r/objects/{}", blake3_hex(VALIDATOR)),
            URL.to_string()
        ]
    );
    let id = artifact_object(&store, &artifact_spec(&graph))
        .unwrap()
        .expect("stored");
    assert_eq!(store.read(&id).unwrap(), VALIDATOR);
    assert!(first.generation.objects.contains(&id));
    assert!(
        !fake.dests.borrow()[0].exists(),
        "the download is deleted once stored"
    );

    // Another build of another node naming the same software.
    let other = evaluate(
        &dir.path().join("other"),
        &artifact_node(URL, "blake3", &blake3_hex(VALIDATOR)),
    );
    build_with(&store, &other, "other.rhai", &origin).unwrap();
    let again = build_with(&store, &graph, "node.rhai", &origin).unwrap();
    assert_eq!(fake.calls.get(), 1, "found in the store, not fetched again");
    assert!(again.wrote_nothing());
}

#[test]
fn a_download_with_the_wrong_hash_is_deleted_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let graph = evaluate(&src, &artifact_node(URL, "blake3", &blake3_hex(VALIDATOR)));
    let store = store_in(dir.path());
    let fake = FakeDownload::new(b"#!/bin/sh\necho tampered\n");
    let origin = Origin {
        root: Some(src.clone()),
        object_mirrors: Vec::new(),
        download: Some(&fake),
        running: None,
    };

    let err = build_with(&store, &graph, "node.rhai", &origin)
        .unwrap_err()
        .to_string();

    assert!(
        err.contains(&format!("blake3:{}", blake3_hex(VALIDATOR))),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "blake3:{}",
            blake3_hex(b"#!/bin/sh\necho tampered\n")
        )),
        "{err}"
    );
    assert_eq!(fake.calls.get(), 1);
    let dest = fake.dests.borrow()[0].clone();
    assert!(!dest.exists(), "a wrong download is not kept to resume");
    assert_eq!(fs::read_dir(dest.parent().unwrap()).unwrap().count(), 0);
    assert_eq!((object_count(&store), generation_count(&store)), (0, 0));
}

#[test]
fn a_source_outside_the_nodes_sources_through_a_link_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    fs::create_dir_all(src.join("bin")).unwrap();
    fs::write(dir.path().join("secret"), VALIDATOR).unwrap();
    symlink(dir.path().join("secret"), src.join("bin/validator")).unwrap();
    let graph = evaluate(
        &src,
        &artifact_node("bin/validator", "blake3", &blake3_hex(VALIDATOR)),
    );
    let store = store_in(dir.path());

    let err = build_with(&store, &graph, "node.rhai", &local(&src))
        .unwrap_err()
        .to_string();

    assert!(err.contains("is not inside the node's sources"), "{err}");
    assert_eq!((object_count(&store), generation_count(&store)), (0, 0));
}

//! A generation built by an archy of the previous encoding
//! (`archy.resource.v4`, before units had reload triggers) still loads,
//! and what did not change compares equal to a fresh build: upgrading
//! archy restarts nothing and keeps every rollback target.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use archy_build::load;
use archy_eval::{FsSources, Limits};
use archy_store::Store;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/store-v4")
}

/// The fixture's store, copied (a store's objects are made read-only).
fn store_copy(into: &Path) -> Store {
    let status = std::process::Command::new("cp")
        .arg("-r")
        .arg(fixture().join("store"))
        .arg(into)
        .status()
        .unwrap();
    assert!(status.success());
    Store::open(&archy_store::StateDir::new(into.join("store"))).unwrap()
}

#[test]
fn a_v4_generation_loads_and_equals_a_fresh_build() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_copy(dir.path());
    let loaded = load(&store, 1).unwrap();
    // It keeps its name in the store.
    assert_eq!(
        loaded.graph.root.to_string(),
        "819e688f119d9c94b982820835e0da1ad75fd624bb8ba3d2c06849bfdf993df4"
    );
    let sources = FsSources::new(&fixture().join("src"), "").unwrap();
    let fresh = archy_eval::evaluate(sources, "node.rhai", BTreeMap::new(), &Limits::default())
        .unwrap()
        .graph;
    assert_eq!(loaded.graph.nodes.len(), fresh.nodes.len());
    for (old, new) in loaded.graph.nodes.iter().zip(&fresh.nodes) {
        assert_eq!(old.key, new.key);
        assert_eq!(old.resource, new.resource, "{}", new.key);
        assert_eq!(old.refs, new.refs, "{}", new.key);
        assert_eq!(old.hash, new.hash, "{} hashes as today's build", new.key);
    }
    assert_eq!(loaded.graph.blobs, fresh.blobs);
}

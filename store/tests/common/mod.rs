//! Helpers shared by the integration tests.

// Each test binary uses a different subset of these.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use archy_store::{
    Digest, GenerationDraft, GenerationRecord, ObjectId, ObjectName, StateDir, Store,
};
use tempfile::TempDir;

/// A valid object name.
pub fn name(text: &str) -> ObjectName {
    ObjectName::try_from(text).expect("a valid test object name")
}

/// An empty store in a fresh temp dir (kept alive by the returned guard).
pub fn temp_store() -> (TempDir, Store) {
    let dir = tempfile::tempdir().expect("create a temp dir");
    let store = Store::open(&StateDir::new(dir.path().join("state"))).expect("open a fresh store");
    (dir, store)
}

/// Inserts `content` under `object_name`, returning its id.
pub fn insert(store: &Store, object_name: &str, content: &[u8]) -> ObjectId {
    store
        .insert_bytes(&name(object_name), content)
        .expect("insert a test object")
        .0
}

/// A draft whose root is derived from `seed`, listing `objects` and a graph
/// object (inserted here) that is unique to the seed.
pub fn draft(store: &Store, seed: &str, objects: Vec<ObjectId>) -> GenerationDraft {
    let graph = insert(store, "graph.json", format!("graph {seed}").as_bytes());
    GenerationDraft {
        root: Digest::of(seed.as_bytes()).to_string(),
        source: format!("test {seed}"),
        facts: BTreeMap::from([("hostname".to_owned(), serde_json::json!("node"))]),
        objects,
        graph,
    }
}

/// Records a generation with one object of its own, returning the record
/// and that object.
pub fn build(store: &Store, seed: &str) -> (GenerationRecord, ObjectId) {
    let object = insert(store, "app.conf", format!("config {seed}").as_bytes());
    let record = store
        .record_generation(draft(store, seed, vec![object.clone()]))
        .expect("record a test generation");
    (record, object)
}

/// The names of leftover temp files in `dir`.
pub fn temp_files(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .expect("list a test dir")
        .map(|entry| {
            entry
                .expect("read a dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|file_name| file_name.starts_with(".tmp-"))
        .collect()
}

/// What changes if a file is rewritten or replaced: inode, mtime, ctime.
pub fn file_identity(path: &Path) -> (u64, i64, i64, i64, i64) {
    let meta = fs::symlink_metadata(path).expect("stat a test file");
    (
        meta.ino(),
        meta.mtime(),
        meta.mtime_nsec(),
        meta.ctime(),
        meta.ctime_nsec(),
    )
}

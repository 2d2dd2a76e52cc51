//! The space a build needs, checked before it writes anything: no switch
//! fails for lack of space without saying how much it needs.
//!
//! The need is the objects of the graph the store lacks, each rounded up to
//! the file system's blocks, plus the generation record. It is compared with
//! what statvfs says is free; a build that would not fit is refused before
//! its first write, and a disk that fills up anyway (another writer, a file
//! system that runs out of inodes first) is reported with the same figures.

use std::collections::HashSet;
use std::fmt;
use std::path::PathBuf;

use archy_graph::Graph;
use archy_store::{FreeSpace, ObjectId, Store, StoreError};

use crate::error::BuildError;
use crate::objects::{
    build_contexts, context_file_object_name, context_object_name, file_blobs, graph_object_name,
    resource_object_name,
};

/// Roughly what one object adds to a generation record (its id, quoted,
/// in a JSON list).
const RECORD_BYTES_PER_OBJECT: u64 = 96;

/// What a build needs on the store's file system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpaceNeed {
    /// The objects the store lacks.
    pub objects: usize,
    /// The bytes they and the record take on disk.
    pub bytes: u64,
    /// The free space when the build began.
    pub free: u64,
    /// The store's objects directory, to name the disk.
    pub store: PathBuf,
}

impl SpaceNeed {
    /// Whether the build fits.
    pub fn fits(&self) -> bool {
        self.bytes <= self.free
    }

    /// A disk-full error from the store, told with what the build needed;
    /// any other error unchanged.
    pub(crate) fn explain(&self, err: BuildError) -> BuildError {
        match err {
            BuildError::Store(source @ StoreError::DiskFull { .. }) => BuildError::DiskFull {
                need: Box::new(self.clone()),
                source,
            },
            other => other,
        }
    }
}

impl fmt::Display for SpaceNeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "this build needs about {} for {} new {} in {}, and {} is free",
            bytes(self.bytes),
            self.objects,
            if self.objects == 1 {
                "object"
            } else {
                "objects"
            },
            self.store.display(),
            bytes(self.free),
        )
    }
}

/// Measures what building `graph` into `store` needs, and refuses with
/// [`BuildError::NoSpace`] before anything is written when it does not fit.
pub fn check(store: &Store, graph: &Graph) -> Result<SpaceNeed, BuildError> {
    let space = store.free_space()?;
    let need = measure(store, graph, space)?;
    if need.fits() {
        Ok(need)
    } else {
        Err(BuildError::NoSpace(Box::new(need)))
    }
}

/// The objects of `graph` that `store` lacks and what they take on disk.
/// Each object's id comes from the digest the graph gives it, so only
/// the missing ones are encoded to learn their length.
fn measure(store: &Store, graph: &Graph, space: FreeSpace) -> Result<SpaceNeed, BuildError> {
    let mut seen: HashSet<ObjectId> = HashSet::new();
    let mut objects = 0usize;
    let mut bytes = 0u64;
    let mut count = |id: ObjectId, len: &dyn Fn() -> usize| -> Result<(), BuildError> {
        if seen.contains(&id) {
            return Ok(());
        }
        if !store.contains(&id)? {
            objects += 1;
            bytes = bytes.saturating_add(space.on_disk(len() as u64));
        }
        seen.insert(id);
        Ok(())
    };
    for (id, text) in file_blobs(graph)? {
        count(id, &|| text.len())?;
    }
    for used in build_contexts(graph)? {
        let manifest = used.files.manifest();
        for (file, entry) in used.files.files.iter().zip(&manifest.entries) {
            let id = ObjectId::new(entry.content, context_file_object_name(&file.path));
            count(id, &|| file.bytes.len())?;
        }
        let id = ObjectId::new(*used.tree, context_object_name(used.context));
        count(id, &|| manifest.encode().len())?;
    }
    for node in &graph.nodes {
        let id = ObjectId::new(node.hash, resource_object_name(&node.resource));
        count(id, &|| graph.node_record(node).encode().len())?;
    }
    count(ObjectId::new(graph.root, graph_object_name()), &|| {
        graph.record().encode().len()
    })?;
    let record = space.on_disk(RECORD_BYTES_PER_OBJECT.saturating_mul(seen.len() as u64));
    Ok(SpaceNeed {
        objects,
        bytes: bytes.saturating_add(record),
        free: space.available,
        store: store.objects_dir().to_owned(),
    })
}

/// `512 B`, `3.2 MiB`: for the messages.
pub(crate) fn bytes(n: u64) -> String {
    archy_store::human_bytes(n)
}

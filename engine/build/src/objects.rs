//! How a graph maps onto store objects: which objects it has, what they are
//! called, and the digest conversions between the graph and the store.
//!
//! A graph is three kinds of object:
//!
//! - each resource's canonical record, `<resource hash>-<object name>`: the
//!   record's bytes are exactly what the resource hash is taken over, so the
//!   store's digest of the object *is* the resource hash;
//! - each file's content, raw, `<content digest>-<file name>`;
//! - the graph record, `<root>-graph`: its digest is the root hash.

use std::collections::BTreeMap;

use archy_graph::{Graph, Resource};
use archy_store::{ObjectId, ObjectName};

use crate::error::BuildError;

/// The name part of every graph object. Fixed, so that the graph object of
/// a root can be found from the root alone.
pub const GRAPH_OBJECT_NAME: &str = "graph";

/// The name of a graph object.
pub fn graph_object_name() -> ObjectName {
    checked_name(GRAPH_OBJECT_NAME, "graph")
}

/// The name a resource's record is stored under (`bitcoind.service.unit`).
pub fn resource_object_name(resource: &Resource) -> ObjectName {
    checked_name(&resource.object_name(), resource.kind().as_str())
}

/// The name a file's content is stored under: the file's own name, so a
/// listing of the store shows `greeting.conf`, not just a digest.
pub fn blob_object_name(resource: &Resource) -> ObjectName {
    // For files, the resource's object name is the file name.
    resource_object_name(resource)
}

/// `wanted` if the store accepts it as a name, else `fallback` (the kind of
/// the resource, always valid). `Resource::object_name` cleans names already;
/// the fallback covers what cleaning can leave, such as an empty name.
fn checked_name(wanted: &str, fallback: &'static str) -> ObjectName {
    ObjectName::try_from(wanted)
        .or_else(|_| ObjectName::try_from(fallback))
        .unwrap_or_else(|err| unreachable!("{fallback:?} is a valid object name: {err}"))
}

/// The file contents a graph needs, with the name each is stored under.
/// Only blobs that a file of the graph refers to: an evaluation may keep the
/// text of a file that was declared but never returned, and that text is no
/// part of the node.
pub fn file_blobs(graph: &Graph) -> Result<BTreeMap<ObjectId, &str>, BuildError> {
    let mut blobs = BTreeMap::new();
    for node in &graph.nodes {
        let Resource::File(file) = &node.resource else {
            continue;
        };
        let text = graph
            .blobs
            .get(&file.content)
            .ok_or_else(|| BuildError::MissingBlob {
                key: node.key.to_string(),
                digest: file.content.to_string(),
            })?;
        let id = ObjectId::new(
            store_digest(&file.content),
            blob_object_name(&node.resource),
        );
        blobs.insert(id, text.as_ref());
    }
    Ok(blobs)
}

/// The store's digest type for a graph digest: both are blake3.
pub fn store_digest(digest: &archy_graph::Digest) -> archy_store::Digest {
    archy_store::Digest::from_bytes(*digest.as_bytes())
}

/// The graph's digest type for a store digest: both are blake3.
pub fn graph_digest(digest: &archy_store::Digest) -> archy_graph::Digest {
    archy_graph::Digest::from(blake3::Hash::from_bytes(*digest.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_convert_both_ways_unchanged() {
        let graph = archy_graph::Digest::of(b"archy");
        let store = store_digest(&graph);
        assert_eq!(store.to_string(), graph.to_string());
        assert_eq!(graph_digest(&store), graph);
    }

    #[test]
    fn the_graph_object_name_is_valid() {
        assert_eq!(graph_object_name().as_str(), "graph");
    }
}

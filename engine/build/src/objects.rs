//! How a graph maps onto store objects: which objects it has, what they are
//! called, and the digest conversions between the graph and the store.
//!
//! A graph is these kinds of object:
//!
//! - each resource's canonical record, `<resource hash>-<object name>`: the
//!   record's bytes are exactly what the resource hash is taken over, so the
//!   store's digest of the object *is* the resource hash;
//! - each file's content, raw, `<content digest>-<file name>`;
//! - each build context's manifest, `<tree digest>-<folder name>.context`:
//!   its bytes are what the tree digest is taken over, as for resources;
//! - each build-context file's content, raw, `<content digest>-<base name>`;
//! - the graph record, `<root>-graph`: its digest is the root hash.

use std::collections::BTreeMap;

use archy_graph::resource::{ImageSource, clean_object_name};
use archy_graph::{BuildContext, Graph, Resource};
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

/// The name a build context's manifest is stored under: the context
/// folder's own name (`web.context` for `apps/web`), so a listing of the
/// store shows which app it belongs to.
pub fn context_object_name(context: &str) -> ObjectName {
    let folder = context
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or("");
    checked_name(&format!("{}.context", clean_object_name(folder)), "context")
}

/// The name a build-context file's content is stored under: its base name
/// (`Containerfile`), like a managed file's text.
pub fn context_file_object_name(path: &str) -> ObjectName {
    let base = path.rsplit('/').next().unwrap_or(path);
    checked_name(&clean_object_name(base), "context-file")
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
        let id = ObjectId::new(file.content, blob_object_name(&node.resource));
        blobs.insert(id, text.as_ref());
    }
    Ok(blobs)
}

/// A container built from a context, with the context's files.
#[derive(Debug, Clone, Copy)]
pub struct UsedContext<'a> {
    /// The container's key, for messages.
    pub key: &'a archy_graph::ResourceKey,
    /// The context folder, as the container names it.
    pub context: &'a str,
    /// The tree digest the container names its image by.
    pub tree: &'a archy_graph::Digest,
    pub files: &'a BuildContext,
}

/// The build context of every container of the graph built from one, in
/// key order: what a generation must keep so its images can be built again
/// without the sources. Two containers built from one folder are listed
/// twice; the objects are the same, so they are stored once.
pub fn build_contexts(graph: &Graph) -> Result<Vec<UsedContext<'_>>, BuildError> {
    let mut out = Vec::new();
    for node in &graph.nodes {
        let Resource::Container(container) = &node.resource else {
            continue;
        };
        let ImageSource::Build { context, tree } = &container.image else {
            continue;
        };
        let files = graph
            .contexts
            .get(tree)
            .ok_or_else(|| BuildError::MissingContext {
                key: node.key.to_string(),
                context: context.clone(),
                tree: tree.to_string(),
            })?;
        out.push(UsedContext {
            key: &node.key,
            context,
            tree,
            files,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_graph_object_name_is_valid() {
        assert_eq!(graph_object_name().as_str(), "graph");
    }

    #[test]
    fn context_names_are_the_folder_and_base_names_cleaned() {
        let name = |n: ObjectName| n.as_str().to_owned();
        assert_eq!(name(context_object_name("apps/web")), "web.context");
        assert_eq!(name(context_object_name("apps/web/")), "web.context");
        assert_eq!(name(context_object_name("")), "context");
        assert_eq!(
            name(context_file_object_name("Containerfile")),
            "Containerfile"
        );
        assert_eq!(
            name(context_file_object_name("etc/my app.conf")),
            "my_app.conf"
        );
        assert_eq!(
            name(context_file_object_name(".dockerignore")),
            "dockerignore"
        );
        assert_eq!(name(context_file_object_name("...")), "context-file");
    }
}

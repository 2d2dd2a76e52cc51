//! Loading a generation back from the store alone: its record, its graph
//! object, every resource record, every file's text and every container's
//! build context. No Rhai source is read, so a rollback never re-evaluates,
//! and a description whose sources are gone (or would evaluate differently
//! today) can still be switched to.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use archy_graph::context::{ContextFile, ContextManifest};
use archy_graph::resource::ImageSource;
use archy_graph::{BuildContext, Digest, Graph, GraphRecord, Node, Resource, ResourceRecord, Span};
use archy_store::{GenerationRecord, ObjectId, Store};

use crate::error::LoadError;

/// A generation as the store holds it.
#[derive(Debug, Clone)]
pub struct LoadedGeneration {
    /// Its record (number, time, source, facts, outcome).
    pub record: GenerationRecord,
    /// Its graph: the same root, resources, references, hashes, file texts
    /// and build contexts as the graph that was built. Only the source
    /// positions are gone; each node's `at` names the generation instead
    /// (see [`loaded_span`]).
    pub graph: Graph,
}

/// The `at` of every node of a loaded graph: the store keeps no source
/// positions, and a message about a loaded resource can at least say which
/// generation it came from.
pub fn loaded_span(number: u64) -> Span {
    Span {
        file: format!("generation {number}"),
        line: 0,
        col: 0,
    }
}

/// Loads generation `number` from `store`, checking every object against
/// its digest and every reference against the graph.
pub fn load(store: &Store, number: u64) -> Result<LoadedGeneration, LoadError> {
    let record = store.generation(number)?;
    let loader = Loader::new(store, &record);
    let graph_record = loader.graph_record()?;

    let mut nodes = Vec::with_capacity(graph_record.resources.len());
    let hashes: BTreeMap<_, _> = graph_record.resources.iter().cloned().collect();
    let mut upgraded = false;
    for (key, hash) in &graph_record.resources {
        let (id, resource_record, older) = loader.resource(&key.to_string(), hash)?;
        upgraded |= older;
        let found = resource_record.resource.key();
        if found != *key {
            return Err(LoadError::WrongResource {
                number,
                id,
                expected: key.to_string(),
                found: found.to_string(),
            });
        }
        let mut refs = Vec::with_capacity(resource_record.refs.len());
        for (reference, ref_hash) in resource_record.refs {
            if hashes.get(&reference) != Some(&ref_hash) {
                return Err(LoadError::DanglingRef {
                    number,
                    key: key.to_string(),
                    reference: reference.to_string(),
                    hash: ref_hash.to_string(),
                });
            }
            refs.push(reference);
        }
        nodes.push(Node {
            key: key.clone(),
            resource: resource_record.resource,
            refs,
            hash: *hash,
            at: loaded_span(number),
        });
    }
    // The graph record lists resources in key order already; sorting again
    // costs nothing and keeps `Graph::get`'s binary search right whatever
    // wrote the record.
    nodes.sort_by(|a, b| a.key.cmp(&b.key));
    let blobs = loader.blobs(&nodes)?;
    let contexts = loader.contexts(&nodes)?;

    let mut graph = Graph {
        root: record.graph.digest(),
        facts: graph_record.facts,
        nodes,
        blobs,
        contexts,
        sources: BTreeMap::new(),
    };
    if upgraded {
        // Built by an older archy: hashed again with today's encoding, so
        // that what did not change compares equal to a fresh build. The
        // generation keeps its number and its recorded root.
        graph.rehash();
        graph.root = record.graph.digest();
    }
    Ok(LoadedGeneration { record, graph })
}

/// Reads one generation's objects.
struct Loader<'a> {
    store: &'a Store,
    number: u64,
    record: &'a GenerationRecord,
    /// The record's objects by digest. Objects are found by digest because
    /// the graph names resources by hash; the name part is only for people.
    by_digest: HashMap<archy_store::Digest, &'a ObjectId>,
}

impl<'a> Loader<'a> {
    fn new(store: &'a Store, record: &'a GenerationRecord) -> Self {
        let by_digest = record.objects.iter().map(|id| (id.digest(), id)).collect();
        Self {
            store,
            number: record.number,
            record,
            by_digest,
        }
    }

    /// The graph object, checked to be the one the root names and to be
    /// written by this archy's encoding.
    fn graph_record(&self) -> Result<GraphRecord, LoadError> {
        let id = &self.record.graph;
        if id.digest().to_string() != self.record.root {
            return Err(LoadError::GraphNotRoot {
                number: self.number,
                graph: id.clone(),
                root: self.record.root.clone(),
            });
        }
        let bytes = self.store.read(id)?;
        let graph = GraphRecord::decode(&bytes).map_err(|source| LoadError::Decode {
            number: self.number,
            id: id.clone(),
            source,
        })?;
        // The domain string names the encoding version; the constant is
        // private to archy-graph, so take it from a record made here.
        let expected = GraphRecord::new(BTreeMap::new(), Vec::new()).domain;
        if graph.domain != expected {
            return Err(LoadError::Encoding {
                number: self.number,
                found: graph.domain,
                expected,
            });
        }
        Ok(graph)
    }

    /// The record's object with `digest`, if it lists one.
    fn lookup(&self, digest: &Digest) -> Option<&'a ObjectId> {
        self.by_digest.get(digest).copied()
    }

    /// The object with `digest`, read and checked against it.
    fn read(&self, digest: &Digest) -> Option<Result<(ObjectId, Vec<u8>), LoadError>> {
        let id = self.lookup(digest)?;
        Some(
            self.store
                .read(id)
                .map(|bytes| (id.clone(), bytes))
                .map_err(LoadError::from),
        )
    }

    /// The record of the resource `key` with `hash`, and whether it was
    /// read from an older encoding.
    fn resource(
        &self,
        key: &str,
        hash: &Digest,
    ) -> Result<(ObjectId, ResourceRecord, bool), LoadError> {
        let (id, bytes) = self.read(hash).ok_or_else(|| LoadError::NotListed {
            number: self.number,
            key: key.to_owned(),
            hash: hash.to_string(),
        })??;
        let decode_error = |source| LoadError::Decode {
            number: self.number,
            id: id.clone(),
            source,
        };
        let domain = ResourceRecord::domain_of(&bytes).map_err(decode_error)?;
        let Some(read) =
            ResourceRecord::decode_any(&bytes).map_err(|source| LoadError::Decode {
                number: self.number,
                id: id.clone(),
                source,
            })?
        else {
            return Err(LoadError::Encoding {
                number: self.number,
                found: domain,
                expected: ResourceRecord::current_domain().to_string(),
            });
        };
        Ok((id, read.record, read.upgraded))
    }

    /// The text of every file in `nodes`, by content digest.
    fn blobs(&self, nodes: &[Node]) -> Result<BTreeMap<Digest, Arc<str>>, LoadError> {
        let mut blobs = BTreeMap::new();
        for node in nodes {
            let Resource::File(file) = &node.resource else {
                continue;
            };
            if blobs.contains_key(&file.content) {
                continue;
            }
            let (id, bytes) = self
                .read(&file.content)
                .ok_or_else(|| LoadError::NotListed {
                    number: self.number,
                    key: format!("the text of {}", node.key),
                    hash: file.content.to_string(),
                })??;
            let text = String::from_utf8(bytes).map_err(|_| LoadError::NotText {
                number: self.number,
                id,
            })?;
            blobs.insert(file.content, Arc::from(text));
        }
        Ok(blobs)
    }

    /// The files of every build context a container of `nodes` is built
    /// from, by tree digest.
    fn contexts(&self, nodes: &[Node]) -> Result<BTreeMap<Digest, Arc<BuildContext>>, LoadError> {
        let mut contexts = BTreeMap::new();
        for node in nodes {
            let Resource::Container(container) = &node.resource else {
                continue;
            };
            let ImageSource::Build { context, tree } = &container.image else {
                continue;
            };
            if contexts.contains_key(tree) {
                continue;
            }
            let id = self
                .lookup(tree)
                .ok_or_else(|| LoadError::ContextNotListed {
                    number: self.number,
                    key: node.key.to_string(),
                    context: context.clone(),
                    tree: tree.to_string(),
                })?;
            let files = self.context(context, id)?;
            contexts.insert(*tree, Arc::new(files));
        }
        Ok(contexts)
    }

    /// The build context `context` whose manifest is object `id`: the
    /// manifest, then each file it names. Every object is checked against
    /// its digest on reading, so the files are exactly the tree the
    /// container names.
    fn context(&self, context: &str, id: &ObjectId) -> Result<BuildContext, LoadError> {
        let unreadable = |source| LoadError::ContextUnreadable {
            number: self.number,
            context: context.to_owned(),
            source: Box::new(source),
        };
        let bytes = self.store.read(id).map_err(unreadable)?;
        let manifest = ContextManifest::decode(&bytes).map_err(|source| LoadError::Decode {
            number: self.number,
            id: id.clone(),
            source,
        })?;
        // As for the graph: the constant is private to archy-graph.
        let expected = ContextManifest::new(Vec::new()).domain;
        if manifest.domain != expected {
            return Err(LoadError::Encoding {
                number: self.number,
                found: manifest.domain,
                expected,
            });
        }
        let mut files = Vec::with_capacity(manifest.entries.len());
        for entry in manifest.entries {
            let id =
                self.lookup(&entry.content)
                    .ok_or_else(|| LoadError::ContextFileNotListed {
                        number: self.number,
                        context: context.to_owned(),
                        path: entry.path.clone(),
                        content: entry.content.to_string(),
                    })?;
            let bytes = self.store.read(id).map_err(unreadable)?;
            files.push(ContextFile {
                path: entry.path,
                executable: entry.executable,
                bytes,
            });
        }
        // Kept in the manifest's order, which is the order its digest was
        // taken in.
        Ok(BuildContext { files })
    }
}

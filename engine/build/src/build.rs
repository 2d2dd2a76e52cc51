//! Building: every object of a graph written into the store, then the
//! generation recorded.
//!
//! The record is written last and is the commit point: a failure (a full
//! disk, a crash) before it leaves only complete, valid objects that no
//! record lists yet. The next build reuses them and `gc` deletes them if
//! nobody does.

use std::collections::{BTreeMap, BTreeSet};

use archy_graph::encode::Fact;
use archy_graph::{Digest, Graph};
use archy_store::{
    GenerationDraft, GenerationEntry, GenerationRecord, Inserted, ObjectBatch, ObjectId,
    ObjectName, Store,
};

use crate::error::BuildError;
use crate::objects::{
    build_contexts, context_file_object_name, context_object_name, file_blobs, graph_object_name,
    resource_object_name,
};
use crate::software::{Origin, store_software};

/// What a build did.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildReport {
    /// The generation the graph is, new or existing.
    pub generation: GenerationRecord,
    /// The graph's root hash.
    pub root: Digest,
    /// Whether the generation was recorded by this build. False when a
    /// generation with the same root existed: same inputs, same generation.
    pub new_generation: bool,
    /// How many objects the generation has (resources, file contents, build
    /// contexts and the graph).
    pub objects: usize,
    /// How many of them this build wrote.
    pub objects_written: usize,
    /// How many were in the store already.
    pub objects_present: usize,
    /// The bytes this build wrote into the store.
    pub bytes_written: u64,
}

impl BuildReport {
    /// The generation's number.
    pub fn number(&self) -> u64 {
        self.generation.number
    }

    /// Whether the build changed nothing in the store.
    pub fn wrote_nothing(&self) -> bool {
        !self.new_generation && self.objects_written == 0
    }
}

/// Writes every object of `graph` into `store` and records the generation,
/// with `source` saying where the description came from (a node file's
/// path, an OTA release). Building a graph whose root is already a
/// generation writes only objects that went missing and returns that
/// generation.
///
/// The caller holds the [`StateLock`](archy_store::StateLock).
pub fn build(store: &Store, graph: &Graph, source: &str) -> Result<BuildReport, BuildError> {
    build_with(store, graph, source, &Origin::default())
}

/// [`build`], fetching the software the store lacks from `origin`.
pub fn build_with(
    store: &Store,
    graph: &Graph,
    source: &str,
    origin: &Origin,
) -> Result<BuildReport, BuildError> {
    let root = graph.root.to_string();
    let existing = store
        .generations()?
        .into_iter()
        .filter_map(|entry| match entry {
            GenerationEntry::Valid(record) => Some(record),
            GenerationEntry::Broken(_) => None,
        })
        .find(|record| record.root == root);
    let mut writer = ObjectWriter::new(store);
    // Software first: a build whose software does not match its declared
    // hash writes nothing else.
    let software = store_software(store, graph, origin)?;
    writer.written += software.written;
    writer.present += software.present;
    writer.bytes += software.bytes;
    writer.objects.extend(software.objects);

    for (id, text) in file_blobs(graph)? {
        writer.insert(id.name(), text.as_bytes(), &id.digest(), || {
            format!("the text of {}", id.name())
        })?;
    }
    // A context's files before its manifest, which names them. The record
    // lists them all, so `gc` keeps and `verify` checks them like any other
    // object of the generation.
    for used in build_contexts(graph)? {
        let manifest = used.files.manifest();
        for (file, entry) in used.files.files.iter().zip(&manifest.entries) {
            writer.insert(
                &context_file_object_name(&file.path),
                &file.bytes,
                &entry.content,
                || format!("{} of the build context {}", file.path, used.context),
            )?;
        }
        writer.insert(
            &context_object_name(used.context),
            &manifest.encode(),
            used.tree,
            || format!("the build context {} of {}", used.context, used.key),
        )?;
    }
    for node in &graph.nodes {
        let record = graph.node_record(node).encode();
        writer.insert(
            &resource_object_name(&node.resource),
            &record,
            &node.hash,
            || node.key.to_string(),
        )?;
    }
    let graph_id = writer.insert_graph(graph)?;

    let ObjectWriter {
        batch,
        objects,
        written,
        present,
        bytes,
    } = writer;
    // Every name durable before the record that lists them exists.
    batch.finish()?;
    let count = objects.len() + 1;
    // Objects are written even for an existing generation: one that went
    // missing (deleted after it was found corrupt) is written back.
    let (generation, new_generation) = match existing {
        Some(record) => (record, false),
        None => {
            let draft = GenerationDraft {
                root,
                source: source.to_owned(),
                facts: facts_json(&graph.facts),
                objects: objects.into_iter().collect(),
                graph: graph_id,
            };
            (store.record_generation(draft)?, true)
        }
    };
    Ok(BuildReport {
        new_generation,
        generation,
        root: graph.root,
        objects: count,
        objects_written: written,
        objects_present: present,
        bytes_written: bytes,
    })
}

/// Inserts objects, checking each lands under the digest the graph gave it,
/// and counts what was written. One batch: the store directory is flushed
/// once for the whole build, not once per object.
struct ObjectWriter<'a> {
    batch: ObjectBatch<'a>,
    /// The generation's objects, without the graph; a set because two files
    /// with the same name and content are one object.
    objects: BTreeSet<ObjectId>,
    written: usize,
    present: usize,
    bytes: u64,
}

impl<'a> ObjectWriter<'a> {
    fn new(store: &'a Store) -> Self {
        Self {
            batch: store.batch(),
            objects: BTreeSet::new(),
            written: 0,
            present: 0,
            bytes: 0,
        }
    }

    /// Inserts `bytes` as `name`; they must hash to `expected`. `what` names
    /// the object in the error, computed only when there is one.
    fn insert(
        &mut self,
        name: &ObjectName,
        bytes: &[u8],
        expected: &archy_store::Digest,
        what: impl FnOnce() -> String,
    ) -> Result<ObjectId, BuildError> {
        let id = ObjectId::of(name, bytes);
        // Checked before writing: an object under the wrong digest would be
        // valid to the store but unloadable as part of the graph.
        if id.digest() != *expected {
            return Err(BuildError::HashMismatch {
                what: what(),
                expected: expected.to_string(),
                stored: id.digest().to_string(),
            });
        }
        if self.objects.contains(&id) {
            return Ok(id);
        }
        match self.batch.insert_bytes(name, bytes)?.1 {
            Inserted::Written(len) => {
                self.written += 1;
                self.bytes += len;
            }
            Inserted::AlreadyPresent => self.present += 1,
        }
        self.objects.insert(id.clone());
        Ok(id)
    }

    /// Inserts the graph record, whose digest is the root: written after
    /// every object it names.
    fn insert_graph(&mut self, graph: &Graph) -> Result<ObjectId, BuildError> {
        let id = self.insert(
            &graph_object_name(),
            &graph.record().encode(),
            &graph.root,
            || "the graph".to_owned(),
        )?;
        // The graph is recorded in its own field, not among the objects.
        self.objects.remove(&id);
        Ok(id)
    }
}

/// The host facts as JSON for the generation record, where an operator
/// reads them.
pub fn facts_json(facts: &BTreeMap<String, Fact>) -> BTreeMap<String, serde_json::Value> {
    facts
        .iter()
        .map(|(name, fact)| {
            let value = match fact {
                Fact::Int(number) => serde_json::Value::from(*number),
                Fact::Text(text) => serde_json::Value::from(text.as_str()),
            };
            (name.clone(), value)
        })
        .collect()
}

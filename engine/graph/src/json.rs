//! The graph as JSON for `archy eval --json`: every field of every resource,
//! keys sorted, so the output is as canonical as the hash.
//!
//! [`GraphJson`] serializes straight into a writer: a file's text is
//! written from the graph's own blob, one resource at a time, so printing
//! a node of many large texts needs no more memory than the graph itself
//! (no `Value` tree or `String` of the whole output is built).

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::{Map, Value, json};

use crate::encode::Fact;
use crate::graph::{Graph, Node};
use crate::resource::Resource;

/// The graph as `{"facts": {...}, "resources": [...], "root": ...}`,
/// for `serde_json::to_writer(_pretty)`.
#[derive(Debug)]
pub struct GraphJson<'g>(pub &'g Graph);

impl Serialize for GraphJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let graph = self.0;
        let mut map = s.serialize_map(Some(3))?;
        map.serialize_entry("facts", &Facts(graph))?;
        map.serialize_entry("resources", &Resources(graph))?;
        map.serialize_entry("root", &graph.root.to_string())?;
        map.end()
    }
}

struct Facts<'g>(&'g Graph);

impl Serialize for Facts<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // A BTreeMap: already sorted by name.
        let mut map = s.serialize_map(Some(self.0.facts.len()))?;
        for (k, v) in &self.0.facts {
            match v {
                Fact::Int(n) => map.serialize_entry(k, n)?,
                Fact::Text(t) => map.serialize_entry(k, t)?,
            }
        }
        map.end()
    }
}

struct Resources<'g>(&'g Graph);

impl Serialize for Resources<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.nodes.len()))?;
        for node in &self.0.nodes {
            seq.serialize_element(&NodeJson(self.0, node))?;
        }
        seq.end()
    }
}

struct NodeJson<'g>(&'g Graph, &'g Node);

impl Serialize for NodeJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (graph, node) = (self.0, self.1);
        // The resource's own fields (small: a file's text is only named
        // by its digest), flattened beside kind, id and hash, sorted.
        let mut fields: Vec<(String, Value)> = own_fields(node).into_iter().collect();
        fields.push(("kind".into(), json!(node.key.kind)));
        fields.push(("id".into(), json!(node.key.id)));
        fields.push(("hash".into(), json!(node.hash.to_string())));
        fields.push((
            "refs".into(),
            Value::Array(node.refs.iter().map(|r| json!(r.to_string())).collect()),
        ));
        fields.push(("at".into(), json!(node.at.to_string())));
        if let Some(source) = graph.sources.get(&node.key) {
            fields.push(("source".into(), json!(source)));
        }
        // The text, borrowed from the graph, in its sorted place.
        let text = match &node.resource {
            Resource::File(f) => graph.blobs.get(&f.content),
            _ => None,
        };
        if text.is_some() {
            fields.retain(|(k, _)| k != "text");
        }
        fields.sort_by(|a, b| a.0.cmp(&b.0));
        let mut map = s.serialize_map(Some(fields.len() + usize::from(text.is_some())))?;
        let mut text = text;
        for (k, v) in &fields {
            if let Some(t) = text.filter(|_| k.as_str() > "text") {
                map.serialize_entry("text", t.as_ref())?;
                text = None;
            }
            map.serialize_entry(k, v)?;
        }
        if let Some(t) = text {
            map.serialize_entry("text", t.as_ref())?;
        }
        map.end()
    }
}

/// A resource's own fields, as serde gives them.
fn own_fields(node: &Node) -> Map<String, Value> {
    match serde_json::to_value(&node.resource) {
        Ok(Value::Object(outer)) => match outer.into_iter().next() {
            Some((_, Value::Object(inner))) => inner,
            Some((_, other)) => Map::from_iter([("value".to_string(), other)]),
            None => Map::new(),
        },
        _ => Map::new(),
    }
}

/// `{"root": ..., "facts": {...}, "resources": [...]}` as a [`Value`]
/// (for tests and snapshots; printing streams [`GraphJson`] instead).
pub fn graph_json(graph: &Graph) -> Value {
    serde_json::to_value(GraphJson(graph)).unwrap_or(Value::Null)
}

//! The graph as JSON for `archy eval --json`: every field of every resource,
//! keys sorted, so the output is as canonical as the hash.

use serde_json::{Map, Value, json};

use crate::encode::Fact;
use crate::graph::{Graph, Node};
use crate::resource::Resource;

fn fact_json(f: &Fact) -> Value {
    match f {
        Fact::Int(n) => json!(n),
        Fact::Text(s) => json!(s),
    }
}

fn node_json(graph: &Graph, node: &Node) -> Value {
    // The resource's own fields, flattened beside kind, id and hash.
    let mut fields = match serde_json::to_value(&node.resource) {
        Ok(Value::Object(outer)) => match outer.into_iter().next() {
            Some((_, Value::Object(inner))) => inner,
            Some((_, other)) => Map::from_iter([("value".to_string(), other)]),
            None => Map::new(),
        },
        _ => Map::new(),
    };
    if let Resource::File(f) = &node.resource
        && let Some(text) = graph.blobs.get(&f.content)
    {
        fields.insert("text".into(), json!(text.as_ref()));
    }
    fields.insert("kind".into(), json!(node.key.kind));
    fields.insert("id".into(), json!(node.key.id));
    fields.insert("hash".into(), json!(node.hash.to_string()));
    fields.insert(
        "refs".into(),
        Value::Array(node.refs.iter().map(|r| json!(r.to_string())).collect()),
    );
    fields.insert("at".into(), json!(node.at.to_string()));
    Value::Object(fields)
}

/// `{"root": ..., "facts": {...}, "resources": [...]}`.
pub fn graph_json(graph: &Graph) -> Value {
    json!({
        "root": graph.root.to_string(),
        "facts": Value::Object(graph.facts.iter().map(|(k, v)| (k.clone(), fact_json(v))).collect()),
        "resources": graph.nodes.iter().map(|n| node_json(graph, n)).collect::<Vec<_>>(),
    })
}

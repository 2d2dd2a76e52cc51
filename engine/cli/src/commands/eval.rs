//! `archy eval [NODE] [--json] [--fact K=V]...`: evaluate a node
//! description and print its graph.

use std::fmt::Write as _;
use std::path::Path;

use archy_graph::Fact;
use archy_node::types::Evaluation;
use archy_node::{Exit, Node, NodeError, Source};

/// The human summary: resources by kind, the facts used, the root hash.
pub fn summary(node: &Path, ev: &Evaluation) -> String {
    let g = &ev.graph;
    let mut out = String::new();
    let _ = writeln!(out, "{}: {} resources", node.display(), g.nodes.len());
    for (kind, n) in g.count_by_kind() {
        let _ = writeln!(out, "  {:<10} {n}", kind.as_str());
    }
    if !g.facts.is_empty() {
        let used: Vec<String> = g
            .facts
            .iter()
            .map(|(k, v)| match v {
                Fact::Int(n) => format!("{k}={n}"),
                Fact::Text(s) => format!("{k}={s}"),
            })
            .collect();
        let _ = writeln!(out, "host facts used: {}", used.join(", "));
    }
    let _ = writeln!(out, "root {}", g.root);
    out
}

pub fn run(node: &Node, source: &Source, json: bool) -> Result<Exit, NodeError> {
    let ev = node.evaluate(source)?;
    if json {
        super::print_json("the graph", &archy_graph::json::GraphJson(&ev.graph))?;
    } else {
        print!("{}", summary(&source.node, &ev));
    }
    Ok(Exit::Done)
}

//! `archy eval [NODE] [--json] [--fact K=V]...`: evaluate a node
//! description and print its graph.

use std::fmt::Write as _;
use std::path::Path;

use archy_eval::{Evaluation, FsSources, HostFacts, Inputs, Limits};
use archy_graph::Fact;

use crate::{CliError, facts, render, rotations};

/// Evaluates the node file with the machine's facts and the overrides, and
/// the node's secret rotations: what every command that evaluates calls.
pub fn evaluate_node(
    node: &Path,
    state_dir: &Path,
    overrides: &[String],
    color: bool,
) -> Result<Evaluation, CliError> {
    let mut host: HostFacts = facts::discover(state_dir);
    facts::apply_overrides(&mut host, overrides).map_err(|e| CliError::input(e.to_string()))?;
    let rotations = rotations::read(state_dir)?;
    evaluate_with(
        node,
        Inputs {
            facts: host,
            rotations,
        },
        color,
    )
}

/// Evaluates the node file with these inputs.
pub fn evaluate_with(node: &Path, inputs: Inputs, color: bool) -> Result<Evaluation, CliError> {
    let (root, logical) = archy_eval::locate(node).map_err(|e| {
        CliError::input(format!(
            "cannot read the node description {}: {e}",
            node.display()
        ))
        .hint("pass the path of a node.rhai, or run archy in its folder")
    })?;
    let sources = FsSources::new(&root, archy_eval::resolver::folder(&logical))
        .map_err(|e| CliError::input(format!("cannot read {}: {e}", root.display())))?;
    archy_eval::evaluate(sources, &logical, inputs, &Limits::default())
        .map_err(|f| CliError::rendered(render::problems(&f.problems, &f.sources, color)))
}

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

pub fn run(
    node: &Path,
    json: bool,
    overrides: &[String],
    state_dir: &Path,
    color: bool,
) -> Result<(), CliError> {
    let ev = evaluate_node(node, state_dir, overrides, color)?;
    if json {
        let text = serde_json::to_string_pretty(&archy_graph::json::graph_json(&ev.graph))
            .map_err(|e| CliError::system(format!("cannot print the graph: {e}")))?;
        println!("{text}");
    } else {
        print!("{}", summary(node, &ev));
    }
    Ok(())
}

//! What the planner's tests share: evaluating a description into a graph,
//! and reading a plan's unit actions.

#![allow(dead_code)] // Each test file uses a different part of this.

use archy_eval::{Inputs, Limits, MemSources, evaluate};
use archy_graph::Graph;
use archy_graph::names::UnitName;
use archy_plan::{Plan, Reason, UnitOp};

/// The graph of `node.rhai` in `src`, evaluated with `inputs`; panics with
/// the problems if it does not evaluate.
pub fn graph_of(src: MemSources, inputs: Inputs) -> Graph {
    match evaluate(src, "node.rhai", inputs, &Limits::default()) {
        Ok(ev) => ev.graph,
        Err(f) => panic!("{:#?}", f.problems),
    }
}

/// The graph of `node` alone, with no host facts or rotations.
pub fn graph(node: &str) -> Graph {
    graph_of(
        MemSources::default().with("node.rhai", node),
        Inputs::default(),
    )
}

/// The plan's unit actions, in order.
pub fn ops(p: &Plan) -> Vec<(String, UnitOp)> {
    p.touched_units()
        .map(|u| (u.unit.to_string(), u.op))
        .collect()
}

/// The units the plan leaves alone, with why.
pub fn skipped(p: &Plan) -> Vec<(&str, &Reason)> {
    p.units
        .iter()
        .filter(|u| u.op == UnitOp::Skip)
        .map(|u| (u.unit.as_str(), &u.reason))
        .collect()
}

pub fn s(x: &str) -> String {
    x.to_string()
}

/// The unit name `x`; panics if it is none.
pub fn u(x: &str) -> UnitName {
    UnitName::try_from(x).expect("a unit name")
}

/// The paths of the unit files the plan writes or removes, in its order.
pub fn paths(p: &Plan) -> Vec<String> {
    p.unit_files_changed
        .iter()
        .map(|f| f.path.clone())
        .collect()
}

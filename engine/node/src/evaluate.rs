//! Evaluating a node description with this node's inputs: the machine's
//! host facts (with `--fact` overrides) and the secret rotations recorded
//! in the state dir. Every operation that evaluates goes through here, so
//! `eval`, `build`, `diff` and `switch` see the same inputs.

use std::path::{Path, PathBuf};

use archy_eval::{Evaluation, FsSources, HostFacts, Inputs, Limits};

use archy_store::StateDir;

use crate::{NodeError, facts};

/// A node description and the host facts given on the command line.
#[derive(Debug, Clone)]
pub struct Source {
    /// The `node.rhai` file.
    pub node: PathBuf,
    /// `--fact K=V` overrides of the discovered host facts.
    pub facts: Vec<String>,
}

impl Source {
    pub fn new(node: impl Into<PathBuf>, facts: Vec<String>) -> Self {
        Source {
            node: node.into(),
            facts,
        }
    }

    /// Where the description came from, as a generation records it: the
    /// absolute path, so `archy generations` says which checkout it was.
    pub fn name(&self) -> String {
        self.node
            .canonicalize()
            .unwrap_or_else(|_| self.node.clone())
            .display()
            .to_string()
    }
}

/// Evaluates `source` with the machine's facts, its overrides and the
/// node's secret rotations, under `limits`.
pub fn evaluate(
    source: &Source,
    state_dir: &StateDir,
    limits: &Limits,
) -> Result<Evaluation, NodeError> {
    let mut host: HostFacts = facts::discover(state_dir.path());
    facts::apply_overrides(&mut host, &source.facts)?;
    let rotations = state_dir.read_rotations()?;
    evaluate_with(
        &source.node,
        Inputs {
            facts: host,
            rotations,
            deferred: facts::deferred(),
        },
        limits,
    )
}

/// Evaluates the node file with exactly these inputs, under `limits`.
pub fn evaluate_with(
    node: &Path,
    inputs: Inputs,
    limits: &Limits,
) -> Result<Evaluation, NodeError> {
    let (root, logical) = archy_eval::locate(node).map_err(|source| NodeError::NodeFile {
        path: node.to_owned(),
        source,
    })?;
    let sources = FsSources::new(&root, archy_eval::resolver::folder(&logical))
        .map_err(|source| NodeError::Sources { path: root, source })?;
    archy_eval::evaluate(sources, &logical, inputs, limits)
        .map_err(|f| NodeError::Eval(Box::new(f)))
}

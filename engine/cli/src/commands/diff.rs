//! `archy diff [NODE] [--json]`: the plan a switch to NODE would carry out,
//! against the node's current generation, without changing anything.

use std::path::Path;

use archy_build::LoadedGeneration;
use archy_graph::Graph;
use archy_plan::{Observed, Plan};

use crate::CliError;
use crate::commands::eval::evaluate_node;

/// The current generation, loaded from the store alone; `None` on a node
/// archy never switched. Reads only: creates nothing.
pub fn current_generation(state_dir: &Path) -> Result<Option<LoadedGeneration>, CliError> {
    if std::fs::symlink_metadata(state_dir.join("current")).is_err() {
        return Ok(None);
    }
    let store = archy_store::Store::open(&archy_store::StateDir::new(state_dir))
        .map_err(|e| CliError::system(format!("cannot open the store: {e}")))?;
    let Some(n) = store
        .current()
        .map_err(|e| CliError::system(format!("cannot read the current generation: {e}")))?
    else {
        return Ok(None);
    };
    archy_build::load(&store, n).map(Some).map_err(|e| {
        CliError::system(format!("the current generation {n} cannot be loaded: {e}"))
            .hint("run `archy store verify` to see what is damaged")
    })
}

/// The current generation's number and graph (see [`current_generation`]).
pub fn live_graph(state_dir: &Path) -> Result<Option<(u64, Graph)>, CliError> {
    Ok(current_generation(state_dir)?.map(|l| (l.record.number, l.graph)))
}

/// The plan's headline: from which generation to which root.
pub fn headline(live: Option<&(u64, Graph)>, new: &Graph) -> String {
    match live {
        Some((n, g)) => format!(
            "plan: generation {n} ({}) -> {}\n",
            g.root.short(),
            new.root.short()
        ),
        None => format!("plan: first switch -> {}\n", new.root.short()),
    }
}

pub fn run(
    node: &Path,
    json: bool,
    overrides: &[String],
    state_dir: &Path,
    color: bool,
) -> Result<(), CliError> {
    let evaluation = evaluate_node(node, state_dir, overrides, color)?;
    let live = live_graph(state_dir)?;
    let plan: Plan = archy_plan::plan(
        live.as_ref().map(|(_, g)| g),
        &evaluation.graph,
        &Observed::default(),
    );
    if json {
        let text = serde_json::to_string_pretty(&plan)
            .map_err(|e| CliError::system(format!("cannot print the plan: {e}")))?;
        println!("{text}");
    } else {
        print!("{}", headline(live.as_ref(), &evaluation.graph));
        print!("{}", archy_plan::display::render(&plan));
    }
    Ok(())
}

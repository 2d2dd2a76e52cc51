//! `archy build [NODE] [--fact K=V]...`: evaluate the node description,
//! write every object into the store and record the generation.

use std::fmt::Write as _;
use std::path::Path;

use archy_build::BuildReport;

use crate::CliError;
use crate::commands::eval::evaluate_node;
use crate::commands::store::{self, count, human_bytes};

/// Everything `archy build` needs to know.
#[derive(Debug, Clone, Copy)]
pub struct BuildArgs<'a> {
    /// The node description.
    pub node: &'a Path,
    /// `--fact K=V` overrides.
    pub overrides: &'a [String],
    /// The state dir (under `--root` already).
    pub state_dir: &'a Path,
    /// Wait for the state lock instead of failing.
    pub wait: bool,
    /// Color evaluation problems.
    pub color: bool,
}

/// Locks the state, evaluates the node and builds it: what `archy build`
/// does, without the printing (the benchmarks call this).
pub fn build_node(args: BuildArgs<'_>) -> Result<BuildReport, CliError> {
    // The lock comes first, as in a switch: a `gc` running between writing
    // the objects and recording the generation could delete objects this
    // build found already present.
    let _lock = store::lock(args.state_dir, "archy build", args.wait)?;
    let store = store::open(args.state_dir)?;
    build_locked(args, &store)
}

/// Evaluates and builds, for a caller that already holds the state lock
/// (a switch builds and switches under one lock).
pub fn build_locked(
    args: BuildArgs<'_>,
    store: &archy_store::Store,
) -> Result<BuildReport, CliError> {
    build_locked_as(args, store, &source_name(args.node))
}

/// [`build_locked`], recording `source` as where the description came
/// from (an OTA release names itself rather than its unpacked folder).
pub fn build_locked_as(
    args: BuildArgs<'_>,
    store: &archy_store::Store,
    source: &str,
) -> Result<BuildReport, CliError> {
    let evaluation = evaluate_node(args.node, args.state_dir, args.overrides, args.color)?;
    archy_build::build(store, &evaluation.graph, source).map_err(store::build_error)
}

pub fn run(args: BuildArgs<'_>) -> Result<(), CliError> {
    let report = build_node(args)?;
    print!("{}", summary(&report));
    Ok(())
}

/// Where the description came from, as the generation records it: the
/// absolute path, so `archy generations` says which checkout it was.
fn source_name(node: &Path) -> String {
    node.canonicalize()
        .unwrap_or_else(|_| node.to_owned())
        .display()
        .to_string()
}

/// What the build did, for people: the generation, its root, the objects.
pub fn summary(report: &BuildReport) -> String {
    let mut out = String::new();
    let number = report.number();
    if report.new_generation {
        let _ = writeln!(out, "generation {number} (new)");
    } else if report.objects_written == 0 {
        let _ = writeln!(
            out,
            "generation {number} (already built: nothing new was written)"
        );
    } else {
        let _ = writeln!(
            out,
            "generation {number} (already built; wrote back {} that had gone missing)",
            count(report.objects_written, "object")
        );
    }
    let _ = writeln!(out, "root {}", report.root);
    if report.objects_written > 0 {
        let _ = writeln!(
            out,
            "wrote {} ({}), {} already in the store",
            count(report.objects_written, "object"),
            human_bytes(report.bytes_written),
            report.objects_present
        );
    }
    out
}

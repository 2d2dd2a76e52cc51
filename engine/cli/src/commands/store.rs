//! `archy store verify`, and what every command that uses the store shares:
//! where the state dir is, taking the lock, and turning store errors into
//! messages with exit codes.

use std::fmt::Write as _;

use archy_node::{Exit, Node, NodeError, StoreCheck};
use clap::Subcommand;

use super::count;

/// `archy store ...`: inspecting the store itself.
#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Re-hash every object and check that every generation can be loaded;
    /// exits 3 if anything is corrupt or missing.
    Verify,
}

pub fn run(command: &StoreCommand, node: &Node) -> Result<Exit, NodeError> {
    match command {
        StoreCommand::Verify => verify(node),
    }
}

/// Checks every object and every generation.
fn verify(node: &Node) -> Result<Exit, NodeError> {
    let Some(check) = node.verify_store()? else {
        println!(
            "no store in {} yet; `archy build` creates it",
            node.state_dir().path().display()
        );
        return Ok(Exit::Done);
    };
    print!("{}", verify_text(&check));
    check.verdict()?;
    Ok(Exit::Done)
}

/// The report for people: one line per problem.
fn verify_text(check: &StoreCheck) -> String {
    let (report, unloadable) = (&check.report, &check.unloadable);
    let mut out = String::new();
    for corrupt in &report.corrupt {
        let _ = writeln!(
            out,
            "corrupt: {}\n  its content hashes to {}",
            corrupt.path.display(),
            corrupt.actual
        );
    }
    for unreadable in &report.unreadable {
        let _ = writeln!(
            out,
            "unreadable: {}: {}",
            unreadable.path.display(),
            unreadable.error
        );
    }
    for path in &report.unknown {
        let _ = writeln!(out, "not an object: {}", path.display());
    }
    for missing in &report.missing {
        let _ = writeln!(
            out,
            "missing: generation {} needs {}",
            missing.generation, missing.id
        );
    }
    for broken in &report.broken_records {
        let _ = writeln!(
            out,
            "broken record: generation {} ({}): {}",
            broken.number,
            broken.path.display(),
            broken.reason
        );
    }
    for (number, err) in unloadable {
        let _ = writeln!(out, "generation {number} cannot be loaded: {err}");
    }
    if !report.temp_leftovers.is_empty() {
        let _ = writeln!(
            out,
            "{} left by an interrupted write (harmless; `archy gc` deletes them)",
            count(report.temp_leftovers.len(), "temp file")
        );
    }
    let verdict = if check.problems().is_empty() {
        "all intact"
    } else {
        "problems found"
    };
    let _ = writeln!(
        out,
        "checked {} in {}: {verdict}",
        count(report.objects_checked, "object"),
        check.objects_dir.display()
    );
    out
}

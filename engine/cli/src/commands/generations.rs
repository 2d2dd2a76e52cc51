//! `archy generations [--json]`: every generation, which one is current and
//! which one is the last known good.

use std::fmt::Write as _;

use archy_node::types::{GenerationEntry, GenerationRecord};
use archy_node::{Exit, Listing, Node, NodeError};
use serde_json::{Value, json};

pub fn run(node: &Node, as_json: bool) -> Result<Exit, NodeError> {
    let listing = node.generations()?;
    if as_json {
        super::print_json("the generations", &to_json(&listing))?;
    } else {
        print!("{}", table(&listing));
    }
    for problem in listing.warnings() {
        eprintln!("warning: {problem}");
    }
    Ok(Exit::Done)
}

/// The first 12 hex digits of a root: enough to tell generations apart.
fn short_root(root: &str) -> &str {
    root.get(..12).unwrap_or(root)
}

fn outcome_text(record: &GenerationRecord) -> String {
    match &record.outcome_reason {
        Some(reason) => format!("{}: {reason}", record.outcome),
        None => record.outcome.to_string(),
    }
}

/// The listing as a table, oldest first, as `nix-env --list-generations`.
pub fn table(listing: &Listing) -> String {
    if listing.entries.is_empty() {
        return "no generations yet; `archy build` records the first\n".to_owned();
    }
    let number_width = listing
        .entries
        .iter()
        .map(|entry| entry.number().to_string().len())
        .max()
        .unwrap_or(0)
        .max("GEN".len());
    let outcome_width = listing
        .entries
        .iter()
        .filter_map(GenerationEntry::record)
        .map(|record| outcome_text(record).len())
        .max()
        .unwrap_or(0)
        .max("OUTCOME".len());
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:>number_width$}  {:<20}  {:<12}  {:<outcome_width$}  SOURCE",
        "GEN", "CREATED", "ROOT", "OUTCOME"
    );
    for entry in &listing.entries {
        let number = entry.number();
        let mut line = match entry {
            GenerationEntry::Valid(record) => format!(
                "{number:>number_width$}  {:<20}  {:<12}  {:<outcome_width$}  {}",
                record.created,
                short_root(&record.root),
                outcome_text(record),
                record.source
            ),
            GenerationEntry::Broken(broken) => {
                format!("{number:>number_width$}  broken: {}", broken.reason)
            }
        };
        let markers = listing.links.markers(number);
        if !markers.is_empty() {
            let _ = write!(line, "  ({})", markers.join(", "));
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}

/// The listing as JSON: `{"current", "last_good", "generations": [...]}`.
pub fn to_json(listing: &Listing) -> Value {
    let generations: Vec<Value> = listing
        .entries
        .iter()
        .map(|entry| match entry {
            GenerationEntry::Valid(record) => json!({
                "number": record.number,
                "created": record.created,
                "root": record.root,
                "source": record.source,
                "outcome": record.outcome.to_string(),
                "outcome_reason": record.outcome_reason,
                "facts": record.facts,
                "objects": record.objects.len() + 1,
                "current": listing.links.current == Some(record.number),
                "last_good": listing.links.last_good == Some(record.number),
            }),
            GenerationEntry::Broken(broken) => json!({
                "number": broken.number,
                "broken": broken.reason,
                "path": broken.path.display().to_string(),
                "current": listing.links.current == Some(broken.number),
                "last_good": listing.links.last_good == Some(broken.number),
            }),
        })
        .collect();
    json!({
        "current": listing.links.current,
        "last_good": listing.links.last_good,
        "generations": generations,
    })
}

//! `archy generations [--json]`: every generation, which one is current and
//! which one is the last known good.

use std::fmt::Write as _;
use std::path::Path;

use archy_store::{GenerationEntry, GenerationRecord, Store, StoreError};
use serde_json::{Value, json};

use crate::CliError;
use crate::commands::store::{open, store_error};

/// The generations and the two links, as read from the state dir.
#[derive(Debug, Default)]
pub struct Listing {
    pub entries: Vec<GenerationEntry>,
    pub current: Option<u64>,
    pub last_good: Option<u64>,
    /// Links that exist but cannot be read: worth a warning, not a failure,
    /// since the listing is how an operator finds a generation to fix them.
    pub link_problems: Vec<String>,
}

/// Reads the listing. A state dir without generations is an empty listing,
/// and is not created: listing must not write.
pub fn listing(state_dir: &Path) -> Result<Listing, CliError> {
    if !state_dir.join("generations").is_dir() {
        return Ok(Listing::default());
    }
    let store = open(state_dir)?;
    let mut listing = Listing {
        entries: store.generations().map_err(store_error)?,
        ..Listing::default()
    };
    listing.current = read_link(Store::current(&store), &mut listing.link_problems);
    listing.last_good = read_link(Store::last_good(&store), &mut listing.link_problems);
    Ok(listing)
}

fn read_link(link: Result<Option<u64>, StoreError>, problems: &mut Vec<String>) -> Option<u64> {
    link.unwrap_or_else(|err| {
        problems.push(err.to_string());
        None
    })
}

pub fn run(state_dir: &Path, as_json: bool) -> Result<(), CliError> {
    let listing = listing(state_dir)?;
    if as_json {
        let text = serde_json::to_string_pretty(&to_json(&listing))
            .map_err(|err| CliError::system(format!("cannot print the generations: {err}")))?;
        println!("{text}");
    } else {
        print!("{}", table(&listing));
    }
    for problem in warnings(&listing) {
        eprintln!("warning: {problem}");
    }
    Ok(())
}

/// The broken records and unreadable links, each with what to do.
pub fn warnings(listing: &Listing) -> Vec<String> {
    let broken = listing.entries.iter().filter_map(|entry| match entry {
        GenerationEntry::Broken(broken) => Some(StoreError::from(broken.clone()).to_string()),
        GenerationEntry::Valid(_) => None,
    });
    broken
        .chain(listing.link_problems.iter().cloned())
        .collect()
}

/// The first 12 hex digits of a root: enough to tell generations apart.
fn short_root(root: &str) -> &str {
    root.get(..12).unwrap_or(root)
}

/// `current`, `last good`, both or neither, for one generation.
fn markers(listing: &Listing, number: u64) -> Vec<&'static str> {
    let mut markers = Vec::new();
    if listing.current == Some(number) {
        markers.push("current");
    }
    if listing.last_good == Some(number) {
        markers.push("last good");
    }
    markers
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
        let markers = markers(listing, number);
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
                "current": listing.current == Some(record.number),
                "last_good": listing.last_good == Some(record.number),
            }),
            GenerationEntry::Broken(broken) => json!({
                "number": broken.number,
                "broken": broken.reason,
                "path": broken.path.display().to_string(),
                "current": listing.current == Some(broken.number),
                "last_good": listing.last_good == Some(broken.number),
            }),
        })
        .collect();
    json!({
        "current": listing.current,
        "last_good": listing.last_good,
        "generations": generations,
    })
}

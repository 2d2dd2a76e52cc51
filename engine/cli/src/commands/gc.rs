//! `archy gc [--keep N]`: delete old generations and the objects no kept
//! generation needs.

use std::fmt::Write as _;
use std::path::Path;

use archy_store::GcReport;

use crate::CliError;
use crate::commands::store::{self, count, human_bytes, store_error};

/// How many of the newest generations `archy gc` keeps by default: enough
/// to roll back a few releases, few enough that a small disk does not fill.
pub const DEFAULT_KEEP: usize = 5;

/// What `current` and `last-good` pointed at when GC ran, to say why an old
/// generation was kept.
#[derive(Debug, Clone, Copy, Default)]
pub struct Links {
    pub current: Option<u64>,
    pub last_good: Option<u64>,
}

pub fn run(state_dir: &Path, keep: usize, wait: bool) -> Result<(), CliError> {
    let _lock = store::lock(state_dir, "archy gc", wait)?;
    let store = store::open(state_dir)?;
    let links = Links {
        current: store.current().map_err(store_error)?,
        last_good: store.last_good().map_err(store_error)?,
    };
    let report = store.gc(keep).map_err(store_error)?;
    print!("{}", summary(&report, links));
    if !report.objects_kept_for_broken_records.is_empty() {
        let numbers: Vec<String> = report
            .objects_kept_for_broken_records
            .iter()
            .map(ToString::to_string)
            .collect();
        eprintln!(
            "warning: no object was deleted: the {} of generation {} cannot be read, so what \
             {} cannot be known; restore or delete {}, then run `archy gc` again",
            if numbers.len() == 1 {
                "record"
            } else {
                "records"
            },
            numbers.join(", "),
            if numbers.len() == 1 {
                "it needs"
            } else {
                "they need"
            },
            if numbers.len() == 1 { "it" } else { "them" },
        );
    }
    Ok(())
}

/// What GC did, for people.
pub fn summary(report: &GcReport, links: Links) -> String {
    let mut out = String::new();
    let kept: Vec<String> = report
        .generations_kept
        .iter()
        .map(|&number| with_markers(number, links))
        .collect();
    if kept.is_empty() {
        let _ = writeln!(out, "kept no generations");
    } else {
        let _ = writeln!(
            out,
            "kept {}: {}",
            count(kept.len(), "generation"),
            kept.join(", ")
        );
    }
    if !report.generations_deleted.is_empty() {
        let deleted: Vec<String> = report
            .generations_deleted
            .iter()
            .map(ToString::to_string)
            .collect();
        let _ = writeln!(
            out,
            "deleted {}: {}",
            count(deleted.len(), "generation"),
            deleted.join(", ")
        );
    }
    if !report.objects_kept_for_broken_records.is_empty() {
        let _ = writeln!(out, "deleted no objects: a generation record is broken");
    } else if report.objects_deleted.is_empty() {
        let _ = writeln!(out, "no objects to delete");
    } else {
        let _ = writeln!(
            out,
            "deleted {}, freed {}",
            count(report.objects_deleted.len(), "object"),
            human_bytes(report.bytes_freed)
        );
    }
    if report.temp_files_deleted > 0 {
        let _ = writeln!(
            out,
            "deleted {} left by an interrupted write",
            count(report.temp_files_deleted, "temp file")
        );
    }
    out
}

/// `3`, or `1 (current, last good)` for a generation a link points at.
fn with_markers(number: u64, links: Links) -> String {
    let mut markers = Vec::new();
    if links.current == Some(number) {
        markers.push("current");
    }
    if links.last_good == Some(number) {
        markers.push("last good");
    }
    if markers.is_empty() {
        number.to_string()
    } else {
        format!("{number} ({})", markers.join(", "))
    }
}

//! `archy gc [--keep N]`: delete old generations and the objects no kept
//! generation needs.

use std::fmt::Write as _;

use archy_node::types::GcReport;
use archy_node::{Exit, Links, Node, NodeError};

use super::{count, human_bytes};

/// How many of the newest generations `archy gc` keeps by default: enough
/// to roll back a few releases, few enough that a small disk does not fill.
pub const DEFAULT_KEEP: usize = 5;

pub fn run(node: &Node, keep: usize, wait: bool) -> Result<Exit, NodeError> {
    let session = node.open("archy gc", wait)?;
    super::switch::notices(session.recovery());
    let (report, links) = session.gc(keep)?;
    print!("{}", summary(&report, links));
    if !report.objects_kept_for_broken_records.is_empty() {
        let numbers: Vec<String> = report
            .objects_kept_for_broken_records
            .iter()
            .map(ToString::to_string)
            .collect();
        let one = numbers.len() == 1;
        eprintln!(
            "warning: no object was deleted: the {} of generation {} cannot be read, so what \
             {} cannot be known; restore or delete {}, then run `archy gc` again",
            if one { "record" } else { "records" },
            numbers.join(", "),
            if one { "it needs" } else { "they need" },
            if one { "it" } else { "them" },
        );
    }
    Ok(Exit::Done)
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
    let markers = links.markers(number);
    if markers.is_empty() {
        number.to_string()
    } else {
        format!("{number} ({})", markers.join(", "))
    }
}

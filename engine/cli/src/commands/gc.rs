//! `archy gc [--keep N]`: delete old generations and the objects no kept
//! generation needs, by the node's GC settings (see `archy_node::gc`), and
//! say what was freed. A good switch ends with the same GC; its summary is
//! printed by [`after_switch`].

use std::fmt::Write as _;

use archy_node::gc::SwitchGc;
use archy_node::types::GcReport;
use archy_node::{Exit, Links, Node, NodeError};

use super::{count, human_bytes};

/// `keep`: replaces the count of the node's settings (default
/// [`archy_node::gc::DEFAULT_KEEP`]).
pub fn run(node: &Node, keep: Option<usize>, wait: bool) -> Result<Exit, NodeError> {
    let session = node.open("archy gc", wait)?;
    super::switch::notices(session.recovery());
    let (report, links) = session.gc(keep)?;
    print!("{}", summary(&report, links));
    if let Some(warning) = short_of_min_free(&report) {
        eprintln!("warning: {warning}");
    }
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
        let _ = writeln!(
            out,
            "deleted {}: {}{}",
            count(report.generations_deleted.len(), "generation"),
            numbers(&report.generations_deleted),
            for_space(report),
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
    if !report.snapshots_deleted.is_empty() {
        let _ = writeln!(
            out,
            "deleted the data snapshots taken by {}: {}",
            count(report.snapshots_deleted.len(), "generation"),
            numbers(&report.snapshots_deleted),
        );
    }
    if report.temp_files_deleted > 0 {
        let _ = writeln!(
            out,
            "deleted {} left by an interrupted write",
            count(report.temp_files_deleted, "temp file")
        );
    }
    if let (Some(before), Some(after)) = (report.free_before, report.free_after) {
        let _ = writeln!(
            out,
            "free space: {} before, {} after",
            human_bytes(before),
            human_bytes(after)
        );
    }
    out
}

/// What the GC after a good switch did, in one line (none when it deleted
/// nothing), or its failure as a warning on stderr: the switch stands
/// either way.
pub fn after_switch(gc: &SwitchGc) {
    match gc {
        SwitchGc::Done { report, .. } => {
            if !report.generations_deleted.is_empty() || !report.objects_deleted.is_empty() {
                let generations = if report.generations_deleted.is_empty() {
                    String::new()
                } else {
                    format!(
                        "{} {}{}, ",
                        count(report.generations_deleted.len(), "generation"),
                        numbers(&report.generations_deleted),
                        for_space(report),
                    )
                };
                let free = report
                    .free_after
                    .map(|free| format!("; {} free", human_bytes(free)))
                    .unwrap_or_default();
                println!(
                    "gc: deleted {generations}{}, freed {}{free}",
                    count(report.objects_deleted.len(), "object"),
                    human_bytes(report.bytes_freed),
                );
            }
            if let Some(warning) = short_of_min_free(report) {
                eprintln!("warning: {warning}");
            }
        }
        SwitchGc::Failed(why) => eprintln!(
            "warning: gc after the switch failed, the switch stands: {why}; run `archy gc` to \
             try again"
        ),
    }
}

/// `1, 2, 3`.
fn numbers(numbers: &[u64]) -> String {
    numbers
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// ` (3, 4 for free space: below 20.0 GiB)`, or nothing.
fn for_space(report: &GcReport) -> String {
    if report.generations_deleted_for_space.is_empty() {
        return String::new();
    }
    format!(
        " ({} for free space: less than {} was free)",
        numbers(&report.generations_deleted_for_space),
        human_bytes(report.min_free)
    )
}

/// The warning when even with every generation that may go gone, the
/// store's file system has less free space than the settings want.
fn short_of_min_free(report: &GcReport) -> Option<String> {
    report.short_of_min_free().then(|| {
        format!(
            "{} free, less than the {} the node's gc settings want, with every generation \
             but current, previous and last-good deleted; free space on that disk",
            report.free_after.map(human_bytes).unwrap_or_default(),
            human_bytes(report.min_free)
        )
    })
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

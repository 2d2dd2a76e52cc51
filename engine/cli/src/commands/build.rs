//! `archy build [NODE] [--fact K=V]...`: evaluate the node description,
//! write every object into the store and record the generation.

use std::fmt::Write as _;

use archy_node::types::BuildReport;
use archy_node::{Exit, Node, NodeError, Source};

use super::{count, human_bytes};

pub fn run(node: &Node, source: &Source, wait: bool) -> Result<Exit, NodeError> {
    let session = node.open("archy build", wait)?;
    super::switch::notices(session.recovery());
    print!("{}", summary(&session.build(source)?));
    Ok(Exit::Done)
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

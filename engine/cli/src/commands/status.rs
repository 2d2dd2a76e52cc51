//! `archy status [--json]`: how the running node differs from its current
//! generation, each difference with what `archy reconcile` would do about
//! it. Exit 0 when the node is as its generation says, 4 when it differs.

use archy_node::status::Entry;
use archy_node::{Exit, Node, NodeError};

/// Prints the entries, one difference a line and its repair under it.
pub fn print(entries: &[Entry]) {
    for e in entries {
        println!("  {}", e.drift);
        println!("    -> {}", e.repair.join(", "));
    }
}

pub fn run(node: &Node, json: bool, generation: Option<u64>) -> Result<Exit, NodeError> {
    let status = node.status_of(generation)?;
    if json {
        super::print_json("the status", &status)?;
    } else {
        match status.generation {
            None => println!("archy has not switched this node yet"),
            Some(n) if status.is_clean() => println!("generation {n}: the node is as it says"),
            Some(n) => {
                println!("generation {n}: the node differs from it:");
                print(&status.drift);
            }
        }
        for name in &status.hand_over_pending {
            println!(
                "  container {name}: adopted, hand-over pending (at the next switch that restarts it, `archy adopt --now {name}`, or the next boot)"
            );
        }
    }
    if !status.is_clean() {
        eprintln!(
            "archy: {} difference(s) from generation {}; `archy reconcile` repairs each as its line says",
            status.drift.len(),
            status.generation.unwrap_or_default()
        );
    }
    Ok(Exit::from(&status))
}

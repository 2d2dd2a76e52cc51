//! `archy reconcile`: repair what differs from the current generation (as
//! `archy status` lists it) with a switch's machinery and the fewest
//! actions. Exit 3 when something cannot be repaired: a lost secret that
//! must not be made anew, podman not answering, or a health check that
//! still fails after the repairs (there is nothing to roll back to).

use archy_node::reconcile::{Reconciled, Repairs};
use archy_node::types::render_plan;
use archy_node::{Exit, Node, NodeError};

pub fn run(node: &Node, wait: bool) -> Result<Exit, NodeError> {
    let Some(session) = node.open_reconcile(wait)? else {
        println!(
            "a switch is in flight: it leaves the node in one generation; nothing to reconcile now"
        );
        return Ok(Exit::Done);
    };
    super::switch::notices(session.recovery());
    match session.reconcile() {
        Ok(Reconciled::NeverSwitched) => {
            println!("archy has not switched this node yet: nothing to reconcile");
        }
        Ok(Reconciled::Clean { generation }) => {
            println!("generation {generation}: the node is as it says; nothing to do");
        }
        Ok(Reconciled::Repaired(repairs)) => print(&repairs),
        Err(NodeError::Unrepaired(repairs)) => {
            print(&repairs);
            return Err(NodeError::Unrepaired(repairs));
        }
        Err(e) => return Err(e),
    }
    Ok(Exit::Done)
}

/// What differed and what was done about it.
fn print(repairs: &Repairs) {
    let generation = repairs.generation;
    println!("generation {generation}: the node differed from it:");
    super::status::print(&repairs.entries);
    match &repairs.plan {
        Some(plan) => {
            print!("{}", render_plan(plan));
            println!("generation {generation}: repaired; every health check passed");
        }
        None if repairs.advice.is_empty() => {
            println!("generation {generation}: nothing archy can repair here");
        }
        None => {}
    }
}

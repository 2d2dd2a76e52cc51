//! `archy diff`, `archy switch [--dry-run] [--adopt]`, `archy rollback
//! [--to N]` and `archy recover`: the plan of a switch, the switch itself
//! through the health gate, and what a session found and dealt with first.

use archy_node::types::{Outcome, Plan, render_plan};
use archy_node::{Exit, Node, NodeError, Offline, Recovered, Recovery, Source, Switched};

/// `archy diff` and `archy switch --dry-run`: the plan, nothing written.
pub fn plan(node: &Node, source: &Source, adopt: bool, json: bool) -> Result<Exit, NodeError> {
    let planned = node.plan(source, adopt)?;
    if json {
        super::print_json("the plan", &planned.plan)?;
    } else {
        print!("{}", planned.headline());
        print!("{}", render_plan(&planned.plan));
    }
    Ok(Exit::Done)
}

pub fn run(node: &Node, source: &Source, adopt: bool, wait: bool) -> Result<Exit, NodeError> {
    // One lock for building and switching, so nothing runs in between.
    let session = node.open("archy switch", wait)?;
    notices(session.recovery());
    if node.is_offline() {
        offline(&session.realize_offline(source, adopt)?);
    } else {
        switched(&session.switch(source, adopt)?);
    }
    Ok(Exit::Done)
}

/// `archy adopt --now CONTAINER|APP`: the hand-over of adopted containers.
pub fn adopt_now(node: &Node, name: &str, wait: bool) -> Result<Exit, NodeError> {
    let session = node.open("archy adopt --now", wait)?;
    notices(session.recovery());
    switched(&session.adopt_now(name)?);
    Ok(Exit::Done)
}

/// `archy switch --clobber APP [--yes]`: the plan, with the data it
/// removes, confirmed on a terminal (y/N) or by `--yes`; refused without
/// either.
pub fn clobber(
    node: &Node,
    source: &Source,
    adopt: bool,
    app: &str,
    yes: bool,
    wait: bool,
) -> Result<Exit, NodeError> {
    if node.is_offline() {
        return Err(NodeError::RootNotHere {
            command: "archy switch --clobber",
        });
    }
    let session = node.open("archy switch --clobber", wait)?;
    notices(session.recovery());
    let done = session.switch_clobbering(source, adopt, app, |plan| confirm(plan, app, yes))?;
    switched(&done);
    Ok(Exit::Done)
}

/// Shows the plan and asks whether to remove `app`'s data, unless `yes`
/// said so already.
fn confirm(plan: &Plan, app: &str, yes: bool) -> Result<(), String> {
    use std::io::{BufRead as _, IsTerminal as _, Write as _};
    if plan.clobber.is_empty() {
        println!("app {app} declares no data directories: nothing of its data to remove");
    }
    if yes {
        // The plan is printed once it is carried out, as a switch's is.
        return Ok(());
    }
    print!("{}", render_plan(plan));
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(
            "removing an app's data needs a yes, and there is no terminal to ask on (pass --yes)"
                .into(),
        );
    }
    print!("remove app {app}'s data? It is deleted for good: no rollback brings it back. [y/N] ");
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    stdin
        .lock()
        .read_line(&mut answer)
        .map_err(|e| format!("cannot read the answer: {e}"))?;
    match answer.trim() {
        "y" | "Y" | "yes" => Ok(()),
        _ => Err("not confirmed".into()),
    }
}

pub fn rollback(
    node: &Node,
    to: Option<u64>,
    keep_app: &[String],
    wait: bool,
) -> Result<Exit, NodeError> {
    let session = node.open("archy rollback", wait)?;
    notices(session.recovery());
    let keep = keep_app.iter().cloned().collect();
    switched(&session.rollback_keeping(to, &keep)?);
    Ok(Exit::Done)
}

/// `archy recover`: exit 0 when no switch was in flight or it was
/// finished, 2 when it was rolled back.
pub fn recover(node: &Node) -> Result<Exit, NodeError> {
    let recovery = match node.recover()? {
        Recovered::OtherArchy => {
            println!("another archy is running and recovers by itself: nothing to do");
            return Ok(Exit::Done);
        }
        Recovered::Done(recovery) => recovery,
    };
    if let Some(release) = &recovery.release {
        println!("{release}");
    }
    match recovery.switch {
        None => println!("no interrupted switch: nothing to do"),
        Some(outcome) => return outcome_of(&outcome),
    }
    Ok(Exit::Done)
}

/// Prints a switch that ended on its generation.
pub fn switched(done: &Switched) {
    match done {
        Switched::To {
            generation,
            plan,
            gc,
        } => {
            ended_on(*generation, Some(plan));
            super::gc::after_switch(gc);
        }
        Switched::Already { generation } => ended_on(*generation, None),
    }
}

/// The node runs `generation`: switched to it with `plan`, or it ran
/// already.
fn ended_on(generation: u64, plan: Option<&Plan>) {
    match plan {
        Some(plan) => {
            print!("{}", render_plan(plan));
            println!("switched to generation {generation}: every health check passed");
        }
        None => println!("generation {generation} is already running: nothing to do"),
    }
}

/// An interrupted switch's end; a rollback as the error it is.
fn outcome_of(outcome: &Outcome) -> Result<Exit, NodeError> {
    match outcome {
        Outcome::Switched { to, plan } => ended_on(*to, Some(plan)),
        Outcome::Unchanged { to } => ended_on(*to, None),
        Outcome::RolledBack {
            failed,
            back_to,
            why,
            held,
        } => {
            return Err(NodeError::RolledBack {
                failed: *failed,
                back_to: *back_to,
                why: why.clone(),
                held: held.clone(),
                release: None,
            });
        }
    }
    Ok(Exit::Done)
}

/// What opening a session dealt with first, for the operator (stderr, so
/// the command's own output stays as it is).
pub fn notices(recovery: &Recovery) {
    if let Some(outcome) = &recovery.switch {
        eprintln!("archy: an interrupted switch was found and dealt with first:");
        if let Err(rolled_back) = outcome_of(outcome) {
            eprintln!("{rolled_back}");
        }
    }
    if let Some(release) = &recovery.release {
        eprintln!("archy: {release}");
    }
}

/// `archy --root DIR switch`: what was realized, and what the image lacks.
fn offline(done: &Offline) {
    print!("{}", render_plan(&done.plan));
    println!(
        "realized generation {} under {} (no systemd here: its units start at the first boot)",
        done.generation,
        done.root.display()
    );
    if !done.images.is_empty() {
        // Containers never pull at start (Pull=never): the image must
        // carry them, or a first `archy switch` on the node makes them.
        println!("no podman here: the node needs these images before its containers start:");
        for i in &done.images {
            println!("  {i}");
        }
    }
}

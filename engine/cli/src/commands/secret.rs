//! `archy secret rotate NAME` and `archy secret list [--json]`: rotating a
//! secret without editing the node description, and seeing the secrets of
//! the current generation. Never a value: not printed, not read.
//!
//! A rotation is a version bump recorded on the node (see
//! [`crate::rotations`]): the next evaluation adds it to the declared
//! version, so the secret's hash changes, and with it the hash of every
//! file derived from it and of every unit and container that reads either.
//! The next `archy switch` makes a new value and restarts exactly those.

use std::fmt::Write as _;
use std::path::Path;

use archy_build::LoadedGeneration;
use archy_eval::{Inputs, Rotations};
use archy_graph::resource::SecretSpec;
use archy_graph::{Graph, Resource};
use archy_plan::{Observed, UnitOp};
use clap::Subcommand;
use serde_json::json;

use crate::commands::diff::current_generation;
use crate::commands::eval::evaluate_with;
use crate::commands::store;
use crate::{CliError, facts, rotations};

/// `archy secret ...`.
#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Rotate secret NAME: record a version bump on this node. The next
    /// `archy switch` makes a new value and restarts what reads it, or a
    /// file derived from it. Prints no value.
    Rotate {
        /// The secret, as the current generation declares it.
        name: String,
    },
    /// The current generation's secrets: version, rotations recorded on
    /// this node, whether the value is on disk, mode. Never the values.
    List {
        /// Print them as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(
    command: &SecretCommand,
    state_dir: &Path,
    wait: bool,
    color: bool,
) -> Result<(), CliError> {
    match command {
        SecretCommand::Rotate { name } => rotate(state_dir, name, wait, color),
        SecretCommand::List { json } => list(state_dir, *json),
    }
}

fn no_generation() -> CliError {
    CliError::input("no generation yet: run archy switch first")
        .hint("a secret is rotated once a generation that declares it is running")
}

/// The secrets a graph declares, by name.
fn secrets(graph: &Graph) -> Vec<&SecretSpec> {
    graph
        .nodes
        .iter()
        .filter_map(|n| match &n.resource {
            Resource::Secret(s) => Some(s),
            _ => None,
        })
        .collect()
}

fn find<'g>(graph: &'g Graph, name: &str) -> Option<&'g SecretSpec> {
    secrets(graph).into_iter().find(|s| s.name.as_str() == name)
}

/// `archy secret rotate NAME`.
fn rotate(state_dir: &Path, name: &str, wait: bool, color: bool) -> Result<(), CliError> {
    // Checked before the lock too, so a node never switched is left as it
    // is (taking the lock creates the state dir).
    if std::fs::symlink_metadata(state_dir.join("current")).is_err() {
        return Err(no_generation());
    }
    let lock = store::lock(state_dir, "archy secret rotate", wait)?;
    let live = current_generation(state_dir)?.ok_or_else(no_generation)?;
    let n = live.record.number;
    let Some(spec) = find(&live.graph, name) else {
        let names: Vec<String> = secrets(&live.graph)
            .iter()
            .map(|s| s.name.to_string())
            .collect();
        let error = CliError::input(format!(
            "the current generation ({n}) declares no secret `{name}`"
        ));
        return Err(if names.is_empty() {
            error.hint("it declares no secrets at all")
        } else {
            error.hint(format!("the secrets it declares: {}", names.join(", ")))
        });
    };
    let mut counts = rotations::read(state_dir)?;
    let before = counts.get(name).copied().unwrap_or(0);
    let overflow = || {
        CliError::input(format!(
            "secret {name} cannot be rotated again: its version would pass {}",
            u32::MAX
        ))
    };
    let after = before.checked_add(1).ok_or_else(overflow)?;
    let fallback = spec.version.checked_add(1).ok_or_else(overflow)?;
    counts.insert(name.to_string(), after);
    rotations::write(state_dir, &counts)?;
    drop(lock);

    // What the next switch will do, if the description the current
    // generation was built from can still be evaluated.
    let preview = preview(state_dir, &live, name, &counts, color);
    let next = preview.as_ref().map_or(fallback, |p| p.version);
    let mut out = format!(
        "secret {name}: rotation recorded (version {} -> {next}); the next `archy switch` makes \
         a new value and restarts what derives from it\n",
        spec.version
    );
    match preview {
        Ok(p) => {
            let _ = writeln!(out, "  {}", p.units);
        }
        Err(why) => {
            let _ = writeln!(
                out,
                "  (no preview of that switch: {why}; `archy diff NODE` shows its plan)"
            );
        }
    }
    print!("{out}");
    Ok(())
}

/// What the next switch would do after a rotation.
struct Preview {
    /// The secret's version in it.
    version: u32,
    /// The units it restarts or reloads, as a line.
    units: String,
}

/// Evaluates the description the current generation was built from, with
/// that generation's host facts and the new rotations, and plans the
/// switch to it: the secret's next version and the units that restart.
fn preview(
    state_dir: &Path,
    live: &LoadedGeneration,
    name: &str,
    counts: &Rotations,
    color: bool,
) -> Result<Preview, String> {
    let source = Path::new(&live.record.source);
    if !source.is_file() {
        return Err(format!(
            "{} (the current generation's description) is not here",
            source.display()
        ));
    }
    let mut host = facts::discover(state_dir);
    host.extend(live.graph.facts.clone());
    let inputs = Inputs {
        facts: host,
        rotations: counts.clone(),
    };
    let new = evaluate_with(source, inputs, color)
        .map_err(|_| format!("{} does not evaluate", source.display()))?
        .graph;
    let version = find(&new, name)
        .ok_or_else(|| format!("{} no longer declares it", source.display()))?
        .version;
    let plan = archy_plan::plan(Some(&live.graph), &new, &Observed::default());
    let units = |op: UnitOp| -> Vec<String> {
        plan.units
            .iter()
            .filter(|u| u.op == op)
            .map(|u| u.unit.to_string())
            .collect()
    };
    let (restarts, reloads) = (units(UnitOp::Restart), units(UnitOp::Reload));
    let source = source.display();
    let units = match (restarts.is_empty(), reloads.is_empty()) {
        (true, true) => format!("a switch of {source} restarts no unit"),
        (false, true) => format!("a switch of {source} restarts: {}", restarts.join(", ")),
        (true, false) => format!("a switch of {source} reloads: {}", reloads.join(", ")),
        (false, false) => format!(
            "a switch of {source} restarts: {}; reloads: {}",
            restarts.join(", "),
            reloads.join(", ")
        ),
    };
    Ok(Preview { version, units })
}

/// One secret as `archy secret list` shows it.
#[derive(Debug, serde::Serialize)]
struct Listed {
    name: String,
    /// The version in the current generation (the declared version plus
    /// the rotations it was built with).
    version: u32,
    /// The rotations recorded on this node now.
    rotations: u32,
    /// Whether the value's file exists (its content is never read).
    present: bool,
    mode: String,
    owner: String,
    group: String,
    length: u32,
}

/// `archy secret list [--json]`.
fn list(state_dir: &Path, as_json: bool) -> Result<(), CliError> {
    let counts = rotations::read(state_dir)?;
    let live = current_generation(state_dir)?;
    let listed: Vec<Listed> = live
        .as_ref()
        .map(|l| secrets(&l.graph))
        .unwrap_or_default()
        .into_iter()
        .map(|s| {
            let name = s.name.to_string();
            let file = state_dir.join("secrets").join(&name);
            Listed {
                rotations: counts.get(&name).copied().unwrap_or(0),
                present: std::fs::symlink_metadata(&file).is_ok_and(|m| m.is_file()),
                version: s.version,
                mode: s.mode.to_string(),
                owner: s.owner.as_ref().map_or("root".into(), |o| o.to_string()),
                group: s.group.as_ref().map_or("root".into(), |g| g.to_string()),
                length: s.length,
                name,
            }
        })
        .collect();
    let generation = live.as_ref().map(|l| l.record.number);
    if as_json {
        let value = json!({ "generation": generation, "secrets": listed });
        let text = serde_json::to_string_pretty(&value)
            .map_err(|e| CliError::system(format!("cannot print the secrets: {e}")))?;
        println!("{text}");
        return Ok(());
    }
    let Some(n) = generation else {
        println!("no generation yet: run archy switch first");
        return Ok(());
    };
    print!("{}", table(n, &listed));
    Ok(())
}

/// The secrets for people.
fn table(generation: u64, listed: &[Listed]) -> String {
    let mut out = String::new();
    if listed.is_empty() {
        let _ = writeln!(out, "generation {generation} declares no secrets");
        return out;
    }
    let width = listed
        .iter()
        .map(|s| s.name.len())
        .max()
        .unwrap_or(0)
        .max(4);
    let _ = writeln!(
        out,
        "{:<width$}  VERSION  ROTATIONS  ON DISK  MODE  OWNER:GROUP",
        "NAME"
    );
    for s in listed {
        let _ = writeln!(
            out,
            "{:<width$}  {:>7}  {:>9}  {:<7}  {}  {}:{}",
            s.name,
            s.version,
            s.rotations,
            if s.present { "yes" } else { "no" },
            s.mode,
            s.owner,
            s.group
        );
    }
    let _ = writeln!(
        out,
        "generation {generation}; VERSION counts the rotations it was built with, ROTATIONS those recorded now"
    );
    out
}

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

use archy_node::{Exit, ListedSecret, Node, NodeError, Rotated};
use clap::Subcommand;
use serde_json::json;

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

pub fn run(command: &SecretCommand, node: &Node, wait: bool) -> Result<Exit, NodeError> {
    match command {
        SecretCommand::Rotate { name } => rotated(&node.rotate_secret(name, wait)?),
        SecretCommand::List { json } => list(node, *json)?,
    }
    Ok(Exit::Done)
}

/// A rotation, and what the next switch will do.
fn rotated(r: &Rotated) {
    let mut out = format!(
        "secret {}: rotation recorded (version {} -> {}); the next `archy switch` makes \
         a new value and restarts what derives from it\n",
        r.name, r.from, r.to
    );
    match &r.preview {
        Ok(p) => {
            let source = &p.source;
            let units = match (p.restarts.is_empty(), p.reloads.is_empty()) {
                (true, true) => format!("a switch of {source} restarts no unit"),
                (false, true) => {
                    format!("a switch of {source} restarts: {}", p.restarts.join(", "))
                }
                (true, false) => format!("a switch of {source} reloads: {}", p.reloads.join(", ")),
                (false, false) => format!(
                    "a switch of {source} restarts: {}; reloads: {}",
                    p.restarts.join(", "),
                    p.reloads.join(", ")
                ),
            };
            let _ = writeln!(out, "  {units}");
        }
        Err(why) => {
            let _ = writeln!(
                out,
                "  (no preview of that switch: {why}; `archy diff NODE` shows its plan)"
            );
        }
    }
    print!("{out}");
}

/// `archy secret list [--json]`.
fn list(node: &Node, as_json: bool) -> Result<(), NodeError> {
    let listed = node.secrets()?;
    if as_json {
        let value = json!({ "generation": listed.generation, "secrets": listed.secrets });
        return super::print_json("the secrets", &value);
    }
    let Some(n) = listed.generation else {
        println!("no generation yet: run archy switch first");
        return Ok(());
    };
    print!("{}", table(n, &listed.secrets));
    Ok(())
}

/// The secrets for people.
fn table(generation: u64, listed: &[ListedSecret]) -> String {
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

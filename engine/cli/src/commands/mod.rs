//! One module per `archy` subcommand: each makes one call on the facade
//! and renders its outcome. [`run`] picks the module.

pub mod build;
pub mod eval;
pub mod gc;
pub mod generations;
pub mod hash;
pub mod ota;
pub mod reconcile;
pub mod release;
pub mod secret;
pub mod status;
pub mod store;
pub mod switch;

use archy_node::{Exit, Node, NodeError};

use crate::Command;

/// Runs `command` on `node` (`wait`: wait for the state lock instead of
/// failing when another archy holds it).
pub fn run(command: &Command, node: &Node, wait: bool) -> Result<Exit, NodeError> {
    match command {
        Command::Eval { node: args, json } => eval::run(node, &args.source(), *json),
        Command::Build { node: args } => build::run(node, &args.source(), wait),
        Command::Diff { node: args, json } => switch::plan(node, &args.source(), false, *json),
        Command::Switch {
            node: args,
            dry_run: true,
            json,
            adopt,
            ..
        } => switch::plan(node, &args.source(), *adopt, *json),
        Command::Switch {
            node: args,
            adopt,
            clobber: Some(app),
            yes,
            ..
        } => switch::clobber(node, &args.source(), *adopt, app, *yes, wait),
        Command::Switch {
            node: args, adopt, ..
        } => switch::run(node, &args.source(), *adopt, wait),
        Command::Adopt { name, .. } => switch::adopt_now(node, name, wait),
        Command::Rollback { to, keep_app } => switch::rollback(node, *to, keep_app, wait),
        Command::Recover => switch::recover(node),
        Command::Generations { json } => generations::run(node, *json),
        Command::Gc { keep } => gc::run(node, *keep, wait),
        Command::Status { json, generation } => status::run(node, *json, *generation),
        Command::Reconcile => reconcile::run(node, wait),
        Command::Secret { command } => secret::run(command, node, wait),
        Command::Ota { command } => ota::run(command, node, wait),
        Command::Release { command } => release::run(command),
        Command::Store { command } => store::run(command, node),
        Command::Hash { command } => hash::run(command),
    }
}

/// `n thing` or `n things`.
pub fn count(n: usize, thing: &str) -> String {
    if n == 1 {
        format!("1 {thing}")
    } else {
        format!("{n} {thing}s")
    }
}

/// A size for people: `512 B`, `3.4 KiB`, `1.2 GiB`.
pub use archy_store::human_bytes;

/// Pretty JSON on stdout, written as it is serialized (no copy of the
/// whole text is held: a graph of large file texts prints in the memory
/// the graph already takes).
pub fn print_json(what: &'static str, value: &impl serde::Serialize) -> Result<(), NodeError> {
    use std::io::Write as _;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    serde_json::to_writer_pretty(&mut out, value)
        .and_then(|()| {
            writeln!(out)
                .and_then(|()| out.flush())
                .map_err(serde_json::Error::io)
        })
        .map_err(|source| NodeError::Json { what, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_people_write_them() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1024), "1.0 KiB");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(256 * 1024 * 1024), "256.0 MiB");
    }
}

//! The `archy` command line: each subcommand parses its arguments, makes
//! one call on the engine facade (`archy-node`) and renders what comes
//! back. The work itself, and the exit code a failure means, live in the
//! facade.

pub mod commands;
pub mod logging;
pub mod render;

use std::path::PathBuf;
use std::process::ExitCode;

use archy_node::{Exit, Node};
use clap::{Parser, Subcommand};

const EXIT_CODES: &str = "\
Exit codes:
  0  done
  1  the input is wrong (node description, arguments, bundle): nothing was changed
  2  the switch failed and the node was rolled back
  3  the system is in a state archy cannot fix alone
  4  archy status: the node differs from its current generation (archy reconcile repairs it)";

/// Runs a self-hosted Bitcoin node appliance the way NixOS runs a machine.
#[derive(Debug, Parser)]
#[command(name = "archy", version, after_help = EXIT_CODES)]
pub struct Cli {
    /// Where archy keeps its store, generations and secrets.
    #[arg(
        long,
        global = true,
        default_value = "/var/lib/archy",
        env = "ARCHY_STATE_DIR"
    )]
    pub state_dir: PathBuf,
    /// A prefix for everything written (for building an image offline).
    #[arg(long, global = true)]
    pub root: Option<PathBuf>,
    /// When another archy holds the state lock, wait for it instead of
    /// failing.
    #[arg(long, global = true)]
    pub wait: bool,
    /// Wall time allowed for evaluating a node description, in seconds
    /// (default 2). An evaluation that takes longer stops with an error
    /// naming the line it had reached; the other limits (5,000,000
    /// operations, 1 GiB of memory, 16 MiB of text per file and 256 MiB
    /// for all files) stay.
    #[arg(long, global = true, value_name = "SECS", value_parser = parse_seconds)]
    pub eval_timeout: Option<std::time::Duration>,
    #[command(subcommand)]
    pub command: Command,
}

/// The node description and its host facts, as the commands that
/// evaluate one take them.
#[derive(Debug, clap::Args)]
pub struct NodeArgs {
    /// The node description.
    #[arg(default_value = "node.rhai")]
    pub node: PathBuf,
    /// Override or add a host fact, e.g. --fact hostname=node1.
    #[arg(long = "fact", value_name = "K=V")]
    pub facts: Vec<String>,
}

impl NodeArgs {
    /// The description and its facts, as the facade takes them.
    pub fn source(&self) -> archy_node::Source {
        archy_node::Source::new(&self.node, self.facts.clone())
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Evaluate a node description and print its graph.
    Eval {
        #[command(flatten)]
        node: NodeArgs,
        /// Print the canonical graph as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Evaluate a node description, write it into the store and record a
    /// generation.
    Build {
        #[command(flatten)]
        node: NodeArgs,
    },
    /// The plan a switch to NODE would carry out, without applying it.
    Diff {
        #[command(flatten)]
        node: NodeArgs,
        /// Print the plan as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Build NODE and switch the node to it, through the health gate.
    Switch {
        #[command(flatten)]
        node: NodeArgs,
        /// Print the plan and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// With --dry-run: print the plan as JSON (as `archy diff --json`).
        #[arg(long, requires = "dry_run")]
        json: bool,
        /// Take over files archy did not write (they are backed up and
        /// restored when archy stops managing them).
        #[arg(long)]
        adopt: bool,
        /// Remove the data directories of app APP (one the new generation
        /// stops or drops), after its units stop. The plan lists them and
        /// asks y/N on a terminal; nothing brings the data back.
        #[arg(long, value_name = "APP", conflicts_with = "dry_run")]
        clobber: Option<String>,
        /// With --clobber: go on without asking (needed without a terminal).
        #[arg(long, requires = "clobber")]
        yes: bool,
    },
    /// Hand a container adopted in place over to its Quadlet unit now: the
    /// old container is stopped (with its declared stop timeout) and the
    /// unit started in its place, through the health gate.
    Adopt {
        /// Hand it over now (the only way there is: without it, the
        /// hand-over waits for the next switch that restarts the app, or
        /// the next boot).
        #[arg(long, required = true)]
        now: bool,
        /// The adopted container (as `archy status` lists it), or an app:
        /// its adopted containers.
        #[arg(value_name = "CONTAINER|APP")]
        name: String,
    },
    /// Switch back to the generation that ran before this one (or --to N),
    /// without evaluating anything.
    Rollback {
        /// The generation to switch to.
        #[arg(long)]
        to: Option<u64>,
        /// Leave app APP as the current generation has it (its newer code
        /// stays): for an app whose forward-only data (lnd's channels) its
        /// newer code migrated. The rest goes back; the result is a new
        /// generation that must pass its health gate. Repeatable.
        #[arg(long, value_name = "APP")]
        keep_app: Vec<String>,
    },
    /// Finish or undo a switch that was interrupted (run at boot by
    /// archy-recover.service, and first by every switch and rollback).
    Recover,
    /// List the generations, the current one and the last known good one.
    Generations {
        /// Print them as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Delete old generations and the store objects only they need, and
    /// say what was freed.
    ///
    /// Keeps the newest generations (the current generation's
    /// `archy::units(#{ gc: #{ keep } })`, default 10), and while the
    /// store's disk has less free space than its `min_free`, deletes the
    /// oldest further ones. Never deletes the current, the previous or the
    /// last known good generation, however old. Every good switch ends
    /// with the same GC.
    Gc {
        /// How many of the newest generations to keep (instead of the
        /// node's setting).
        #[arg(long)]
        keep: Option<usize>,
    },
    /// How the running node differs from its current generation (files,
    /// directories, unit files, units, containers, secrets), each
    /// difference with what a repair would do. Exit 4 when it differs.
    Status {
        /// Print it as JSON.
        #[arg(long)]
        json: bool,
        /// Compare with this generation instead of the current one (what a
        /// switch asks a new archy binary, to know it works).
        #[arg(long, value_name = "N")]
        generation: Option<u64>,
    },
    /// Repair what differs from the current generation (as `archy status`
    /// lists it), with a switch's machinery and the fewest actions, then
    /// run the health gate. Exit 3 when something cannot be repaired: a
    /// lost secret that must not be made anew, or a health check that
    /// still fails (there is nothing to roll back to).
    Reconcile,
    /// Rotate a secret (a version bump recorded on this node, applied by
    /// the next `archy switch`) and list the secrets; never their values.
    Secret {
        #[command(subcommand)]
        command: commands::secret::SecretCommand,
    },
    /// Install signed releases (over-the-air updates), see what a release
    /// offers, hold updates.
    Ota {
        #[command(subcommand)]
        command: commands::ota::OtaCommand,
    },
    /// Make signed release bundles (for publishers).
    Release {
        #[command(subcommand)]
        command: commands::release::ReleaseCommand,
    },
    /// Inspect the store.
    Store {
        #[command(subcommand)]
        command: commands::store::StoreCommand,
    },
    /// The hash to declare software by: `archy hash file F`, `archy hash tree DIR`.
    Hash {
        #[command(subcommand)]
        command: commands::hash::HashCommand,
    },
}

/// Runs the parsed command line and returns the process's exit code.
pub fn run(cli: Cli) -> ExitCode {
    use std::io::IsTerminal;
    let color = std::io::stderr().is_terminal();
    let mut limits = archy_eval::Limits::default();
    if let Some(t) = cli.eval_timeout {
        limits.wall_time = t;
    }
    let node = Node::new(&cli.state_dir, cli.root.as_deref()).with_eval_limits(limits);
    let result = commands::run(&cli.command, &node, cli.wait);
    let exit = match result {
        Ok(exit) => exit,
        Err(e) => {
            eprint!("{}", render::error(&e, color));
            Exit::from(&e)
        }
    };
    ExitCode::from(exit.code())
}

/// `--eval-timeout`: a positive number of seconds, fractions allowed.
fn parse_seconds(text: &str) -> Result<std::time::Duration, String> {
    let secs: f64 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number of seconds"))?;
    if !(secs > 0.0 && secs <= 86_400.0) {
        return Err(format!("{text} s is not between 0 and 86400 seconds"));
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

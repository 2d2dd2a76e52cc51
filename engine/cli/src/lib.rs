//! The `archy` command line: argument parsing, host facts, rendering of
//! problems and the subcommands. The work itself lives in the engine crates.

pub mod commands;
pub mod facts;
pub mod logging;
pub mod podman;
pub mod render;
pub mod rotations;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

const EXIT_CODES: &str = "\
Exit codes:
  0  done
  1  the input is wrong (node description, arguments, bundle): nothing was changed
  2  the switch failed and the node was rolled back
  3  the system is in a state archy cannot fix alone";

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
        /// Take over files archy did not write (they are backed up and
        /// restored when archy stops managing them).
        #[arg(long)]
        adopt: bool,
    },
    /// Switch back to the generation that ran before this one (or --to N),
    /// without evaluating anything.
    Rollback {
        /// The generation to switch to.
        #[arg(long)]
        to: Option<u64>,
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
    /// Delete old generations and the store objects only they need.
    ///
    /// Never deletes the current or the last known good generation, however
    /// old.
    Gc {
        /// How many of the newest generations to keep.
        #[arg(long, default_value_t = commands::gc::DEFAULT_KEEP)]
        keep: usize,
    },
    /// How the running node differs from its current generation (files,
    /// directories, unit files, units, containers, secrets), each
    /// difference with what a repair would do. Exit 1 when it differs.
    Status {
        /// Print it as JSON.
        #[arg(long)]
        json: bool,
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
}

/// A failure of a command, with the exit code it means.
#[derive(Debug)]
pub struct CliError {
    pub code: u8,
    pub message: String,
    pub hint: Option<String>,
    /// Already rendered for the terminal (evaluation problems).
    pub rendered: bool,
}

impl CliError {
    /// The user's input is wrong (exit 1).
    pub fn input(message: impl Into<String>) -> Self {
        CliError {
            code: 1,
            message: message.into(),
            hint: None,
            rendered: false,
        }
    }

    /// Problems already rendered with their sources (exit 1).
    pub fn rendered(text: String) -> Self {
        CliError {
            code: 1,
            message: text,
            hint: None,
            rendered: true,
        }
    }

    /// The system is in a state archy cannot fix alone (exit 3).
    pub fn system(message: impl Into<String>) -> Self {
        CliError {
            code: 3,
            message: message.into(),
            hint: None,
            rendered: false,
        }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// Runs the parsed command line and returns the process's exit code.
pub fn run(cli: Cli) -> ExitCode {
    use std::io::IsTerminal;
    let color = std::io::stderr().is_terminal();
    // Where the state lives: under --root when building an image offline.
    let state_dir = commands::store::state_dir(&cli.state_dir, cli.root.as_deref());
    // Rollback and recover act on the running node, so only switch gets --root.
    let switch_args = |with_root: bool, adopt: bool| commands::switch::SwitchArgs {
        state_dir: &state_dir,
        root: cli.root.as_deref().filter(|_| with_root),
        wait: cli.wait,
        adopt,
        color,
    };
    let result = match &cli.command {
        Command::Eval { node, json } => {
            commands::eval::run(&node.node, *json, &node.facts, &state_dir, color)
        }
        Command::Diff { node, json } => {
            commands::diff::run(&node.node, *json, &node.facts, &state_dir, color)
        }
        Command::Switch {
            node,
            dry_run,
            adopt,
        } => commands::switch::run(&node.node, &node.facts, *dry_run, switch_args(true, *adopt)),
        Command::Rollback { .. } | Command::Recover if cli.root.is_some() => Err(CliError::input(
            "--root realizes a node image offline with `archy switch`; rollback and recover act on a running node",
        )),
        Command::Rollback { to } => commands::switch::rollback(*to, switch_args(false, false)),
        Command::Recover => commands::switch::recover(switch_args(false, false)),
        Command::Build { node } => commands::build::run(commands::build::BuildArgs {
            node: &node.node,
            overrides: &node.facts,
            state_dir: &state_dir,
            wait: cli.wait,
            color,
        }),
        Command::Generations { json } => commands::generations::run(&state_dir, *json),
        Command::Gc { keep } => commands::gc::run(&state_dir, *keep, cli.wait),
        Command::Status { json } => commands::status::run(&state_dir, *json),
        Command::Reconcile if cli.root.is_some() => Err(CliError::input(
            "--root realizes a node image offline with `archy switch`; reconcile acts on a running node",
        )),
        Command::Reconcile => commands::reconcile::run(switch_args(false, false)),
        Command::Secret { command } => commands::secret::run(command, &state_dir, cli.wait, color),
        Command::Store { command } => commands::store::run(command, &state_dir),
        Command::Ota { .. } if cli.root.is_some() => Err(CliError::input(
            "--root realizes a node image offline with `archy switch`; ota acts on a running node",
        )),
        Command::Ota { command } => commands::ota::run(command, switch_args(false, false)),
        Command::Release { command } => commands::release::run(command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if e.rendered {
                eprint!("{}", e.message);
            } else {
                eprintln!("error: {}", e.message);
                if let Some(h) = &e.hint {
                    eprintln!("  hint: {h}");
                }
            }
            ExitCode::from(e.code)
        }
    }
}

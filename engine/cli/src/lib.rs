//! The `archy` command line: argument parsing, host facts, rendering of
//! problems and the subcommands. The work itself lives in the engine crates.

pub mod commands;
pub mod facts;
pub mod logging;
pub mod render;

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
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Evaluate a node description and print its graph.
    Eval {
        /// The node description.
        #[arg(default_value = "node.rhai")]
        node: PathBuf,
        /// Print the canonical graph as JSON.
        #[arg(long)]
        json: bool,
        /// Override or add a host fact, e.g. --fact hostname=node1.
        #[arg(long = "fact", value_name = "K=V")]
        facts: Vec<String>,
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
    let result = match &cli.command {
        Command::Eval { node, json, facts } => {
            commands::eval::run(node, *json, facts, &cli.state_dir, color)
        }
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

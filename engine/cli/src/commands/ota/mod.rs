//! `archy ota apply|check|status|hold|unhold`: install signed releases
//! through the same switch as `archy switch` (see `archy_node::ota` for
//! the order of things), and show the node's record of them.

use std::path::PathBuf;

mod show;

use archy_node::ota::{Applied, BundleSource, HoldChange, Release};
use archy_node::{Exit, Node, NodeError};
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum OtaCommand {
    /// Verify a release and switch to it through the health gate. A release
    /// that fails the gate is rolled back (exit 2) and never applied again.
    Apply {
        #[command(flatten)]
        source: SourceArgs,
        /// Apply a release older than the one the node runs.
        #[arg(long)]
        allow_downgrade: bool,
        /// Run by archy-ota.service: do nothing while updates are held.
        #[arg(long)]
        scheduled: bool,
    },
    /// Verify a release and fetch the software it needs that the store
    /// lacks, without building or switching: a later apply finds it there.
    Fetch {
        #[command(flatten)]
        source: SourceArgs,
    },
    /// What a release offers, the software this node would download for
    /// it, and whether this node would apply it.
    Check {
        #[command(flatten)]
        source: SourceArgs,
        /// Print it as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The installed, pending and failed releases, and any hold.
    Status {
        /// Print it as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Hold updates: archy-ota.service applies nothing until `unhold`.
    Hold {
        /// Why, for whoever looks next.
        #[arg(long, default_value = "held by the operator")]
        reason: String,
    },
    /// Lift a hold.
    Unhold,
}

/// Where a release comes from and what the node trusts.
#[derive(Debug, clap::Args)]
pub struct SourceArgs {
    /// A bundle (.tar.gz with its .minisig beside it): a file or an
    /// http(s) URL.
    pub bundle: String,
    /// Another URL of the same bundle, tried in order after BUNDLE.
    #[arg(long = "mirror", value_name = "URL")]
    pub mirrors: Vec<String>,
    /// The folder of public keys a release must be signed with.
    #[arg(long, default_value = archy_node::ota::TRUSTED_KEYS)]
    pub keys: PathBuf,
    /// Take only releases published for this channel.
    #[arg(long)]
    pub channel: Option<String>,
}

impl SourceArgs {
    fn source(&self) -> BundleSource {
        BundleSource {
            bundle: self.bundle.clone(),
            mirrors: self.mirrors.clone(),
            keys: self.keys.clone(),
            channel: self.channel.clone(),
        }
    }
}

pub fn run(command: &OtaCommand, node: &Node, wait: bool) -> Result<Exit, NodeError> {
    match command {
        OtaCommand::Apply {
            source,
            allow_downgrade,
            scheduled,
        } => {
            let session = node.open("archy ota apply", wait)?;
            super::switch::notices(session.recovery());
            let announce = &mut |r: &Release| {
                println!(
                    "release {} ({}) from {}: signed by trusted key {}",
                    r.version, r.channel, r.from, r.key
                );
            };
            applied(&session.ota_apply(
                &source.source(),
                *allow_downgrade,
                *scheduled,
                announce,
            )?);
        }
        OtaCommand::Fetch { source } => {
            let session = node.open("archy ota fetch", wait)?;
            super::switch::notices(session.recovery());
            let done = session.ota_fetch(&source.source())?;
            let r = &done.release;
            println!(
                "release {} ({}) from {}: signed by trusted key {}",
                r.version, r.channel, r.from, r.key
            );
            println!("{}", show::software(&done.needed));
            println!(
                "fetched {} objects ({}) into the store",
                done.fetched.objects,
                super::human_bytes(done.fetched.bytes)
            );
        }
        OtaCommand::Check { source, json } => {
            let session = node.open("archy ota check", wait)?;
            super::switch::notices(session.recovery());
            show::checked(&session.ota_check(&source.source())?, *json);
        }
        OtaCommand::Status { json } => show::status(&node.ota_status()?, *json)?,
        OtaCommand::Hold { reason } => hold(
            node.open("archy ota hold", wait)?
                .ota_hold(Some(reason.clone()))?,
        ),
        OtaCommand::Unhold => hold(node.open("archy ota hold", wait)?.ota_hold(None)?),
    }
    Ok(Exit::Done)
}

fn applied(done: &Applied) {
    match done {
        Applied::Held(h) => println!(
            "updates are held since {} ({}): nothing done; `archy ota unhold` lifts the hold",
            h.at, h.reason
        ),
        Applied::AlreadyInstalled { version } => {
            println!("release {version} is installed already: nothing to do");
        }
        Applied::Installed {
            release,
            switched,
            seconds,
            software,
        } => {
            if software.objects > 0 {
                println!(
                    "software: fetched {} objects ({}) the store lacked",
                    software.objects,
                    super::human_bytes(software.bytes)
                );
            }
            super::switch::switched(switched);
            let to = match switched {
                archy_node::Switched::To { generation, .. }
                | archy_node::Switched::Already { generation } => generation,
            };
            println!(
                "release {} is installed as generation {to} ({seconds:.1} s)",
                release.version
            );
        }
    }
}

fn hold(change: HoldChange) {
    println!(
        "{}",
        match change {
            HoldChange::Held => {
                "updates are held: archy-ota.service applies nothing until `archy ota unhold`"
            }
            HoldChange::Lifted => "updates are no longer held",
            HoldChange::WasNotHeld => "updates were not held: nothing to do",
        }
    );
}

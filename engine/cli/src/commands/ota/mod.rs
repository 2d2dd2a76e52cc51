//! `archy ota apply|check|status|hold|unhold`: install signed releases
//! through the same switch as `archy switch` (see `archy_node::ota` for
//! the order of things), and show the node's record of them.

use std::path::PathBuf;
use std::time::SystemTime;

mod show;

use archy_node::ota::{Applied, BundleSource, HoldChange, Release, RepoSource};
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
    /// http(s) URL. Or --repo.
    #[arg(required_unless_present = "repo", conflicts_with = "repo")]
    pub bundle: Option<String>,
    /// A TUF repository (file:///PATH or http(s)://HOST/PATH, the folder
    /// `archy release init` made); repeat it for mirrors, tried in order.
    #[arg(long = "repo", value_name = "URL")]
    pub repo: Vec<String>,
    /// The repository's root of trust (--repo).
    #[arg(long, default_value = archy_node::ota::TRUSTED_ROOT)]
    pub trusted_root: PathBuf,
    /// Where the node description writes the channel the node follows.
    #[arg(long, default_value = archy_node::ota::CHANNEL_FILE, hide = true)]
    pub channel_file: PathBuf,
    /// The time rollout waves are measured against (RFC 3339), to
    /// rehearse a rollout; default: now.
    #[arg(long, env = "ARCHY_OTA_NOW", hide = true, value_parser = parse_time)]
    pub now: Option<SystemTime>,
    /// Another URL of the same bundle, tried in order after BUNDLE.
    #[arg(long = "mirror", value_name = "URL")]
    pub mirrors: Vec<String>,
    /// The folder of public keys a release must be signed with.
    #[arg(long, default_value = archy_node::ota::TRUSTED_KEYS)]
    pub keys: PathBuf,
    /// Take only releases published for this channel [default: the one
    /// the node's description follows (ota.channel), else any].
    #[arg(long)]
    pub channel: Option<String>,
}

fn parse_time(text: &str) -> Result<SystemTime, String> {
    humantime::parse_rfc3339_weak(text)
        .map_err(|e| format!("{e}: use RFC 3339, e.g. 2026-12-05T10:00:00Z"))
}

impl SourceArgs {
    fn source(&self) -> BundleSource {
        BundleSource {
            bundle: self.bundle.clone().unwrap_or_default(),
            mirrors: self.mirrors.clone(),
            keys: self.keys.clone(),
            channel: self.channel.clone(),
            channel_file: self.channel_file.clone(),
        }
    }

    /// The repository source, for --repo.
    fn repo(&self) -> Option<RepoSource> {
        (!self.repo.is_empty()).then(|| RepoSource {
            mirrors: self.repo.clone(),
            trusted_root: self.trusted_root.clone(),
            channel: self.channel.clone(),
            channel_file: self.channel_file.clone(),
            now: self.now.unwrap_or_else(SystemTime::now),
        })
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
            let done = match source.repo() {
                Some(repo) => session.ota_apply_repo(&repo, *scheduled, &mut |r: &Release| {
                    println!(
                        "release {} ({}) from {}: its length and sha256 match the repository's signed targets",
                        r.version, r.channel, r.from
                    );
                })?,
                None => {
                    session.ota_apply(&source.source(), *allow_downgrade, *scheduled, announce)?
                }
            };
            applied(&done);
        }
        OtaCommand::Fetch { source } => {
            if source.repo().is_some() {
                return Err(NodeError::Repository(archy_node::ota::repo_usage(
                    "`archy ota fetch` takes a bundle; with --repo, `archy ota apply` fetches what the release needs",
                )));
            }
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
            match source.repo() {
                Some(repo) => show::repo_checked(&session.ota_check_repo(&repo)?, *json),
                None => show::checked(&session.ota_check(&source.source())?, *json),
            }
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
        Applied::Waiting { version, opens } => println!(
            "release {version} is out; this node's wave opens at {opens}: nothing done until then"
        ),
        Applied::UpToDate => println!("nothing newer for this node: it is up to date"),
        Applied::PulledNoWayBack { version } => println!(
            "release {version}, which this node runs, was pulled, but the repository offers no release it ran before: it stays on {version}"
        ),
        Applied::WentBack {
            pulled,
            release,
            switched,
            seconds,
            ..
        } => {
            super::switch::switched(switched);
            println!(
                "release {pulled} was pulled: this node went back to release {} ({seconds:.1} s)",
                release.version
            );
        }
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

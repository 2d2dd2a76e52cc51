//! `archy release keygen` and `archy release build`: what a publisher runs
//! to make the signed bundles `archy ota apply` installs; `init`, `add`,
//! `pull`, `refresh`, `rotate` and `list` keep the TUF repository that
//! nodes follow with `archy ota apply --repo` (see `repository.rs`).

use std::path::PathBuf;

use archy_node::{Exit, NodeError, release};
use clap::Subcommand;
use semver::Version;

#[path = "release_repository.rs"]
mod repository;

pub use repository::RepoArgs;

#[derive(Debug, Subcommand)]
pub enum ReleaseCommand {
    /// Make a key pair that signs releases: PREFIX.key (secret, mode 0600;
    /// keep it offline) and PREFIX.pub (goes to every node's trusted keys).
    Keygen {
        /// Where the pair goes, without the extension.
        #[arg(long, default_value = "archy-release")]
        out: PathBuf,
    },
    /// Pack a node's sources (node.rhai, stdlib/, apps/ with their build
    /// contexts) into a signed bundle: OUT and OUT.minisig.
    Build {
        /// The folder holding node.rhai.
        src: PathBuf,
        /// The secret key (from `archy release keygen`).
        #[arg(long)]
        key: PathBuf,
        /// The release's version (semver, e.g. 1.4.0); nodes take only
        /// releases newer than the one they run.
        #[arg(long)]
        version: Version,
        /// The channel nodes follow (`--channel` of `archy ota apply`).
        #[arg(long, default_value = "stable")]
        channel: String,
        /// The oldest archy that may install it [default: this archy].
        #[arg(long)]
        min_archy: Option<Version>,
        /// The bundle to write [default: archy-release-VERSION.tar.gz].
        /// The software the node declares goes beside it, as
        /// objects/<blake3>: publish that folder with the bundle.
        #[arg(long, short)]
        out: Option<PathBuf>,
        /// Override a fact of this machine (K=V) when evaluating the node
        /// to find the software it declares.
        #[arg(long = "fact", value_name = "K=V")]
        facts: Vec<String>,
    },
    /// Make a TUF repository in REPO (metadata/ and targets/, for any
    /// static file server) and the keys the key folder lacks: root.key
    /// (keep it offline), targets.key, snapshot.key, timestamp.key (the
    /// one `refresh` needs), each mode 0600.
    Init {
        #[command(flatten)]
        at: RepoArgs,
    },
    /// Add a release bundle (from `archy release build`) and the software
    /// objects beside it to the repository, with the waves it rolls out in.
    Add {
        #[command(flatten)]
        at: RepoArgs,
        /// The bundle.
        bundle: PathBuf,
        /// A wave: SHARE%@DELAY, e.g. `--wave 20%@0s --wave 100%@1d` (the
        /// first fifth of the fleet at once, everyone a day later). None:
        /// every node at once.
        #[arg(long = "wave", value_name = "SHARE%@DELAY")]
        waves: Vec<String>,
    },
    /// Pull a release: nodes that have not taken it never will, and nodes
    /// that run it go back to the release they ran before.
    Pull {
        #[command(flatten)]
        at: RepoArgs,
        version: Version,
    },
    /// Re-sign timestamp.json (expires in a day): run it on a schedule,
    /// with the timestamp key alone.
    Refresh {
        #[command(flatten)]
        at: RepoArgs,
    },
    /// Replace a role's key: a new root, signed by the old root key (and
    /// the new one), lists the new key; the old key file is kept as
    /// ROLE.key.retired-N.
    Rotate {
        #[command(flatten)]
        at: RepoArgs,
        #[arg(value_enum)]
        role: repository::RoleArg,
    },
    /// The releases in the repository, their waves and whether pulled.
    List {
        #[command(flatten)]
        at: RepoArgs,
    },
}

pub fn run(command: &ReleaseCommand) -> Result<Exit, NodeError> {
    match command {
        ReleaseCommand::Init { at } => repository::init(at)?,
        ReleaseCommand::Add { at, bundle, waves } => repository::add(at, bundle, waves)?,
        ReleaseCommand::Pull { at, version } => repository::pull(at, version)?,
        ReleaseCommand::Refresh { at } => repository::refresh(at)?,
        ReleaseCommand::Rotate { at, role } => repository::rotate(at, *role)?,
        ReleaseCommand::List { at } => repository::list(at)?,
        ReleaseCommand::Keygen { out } => {
            let pair = release::keygen(out)?;
            println!("key {}:", pair.key_id);
            println!(
                "  secret {} (mode 0600: keep it offline; it signs releases)",
                pair.secret.display()
            );
            println!(
                "  public {} (copy it to each node's /etc/archy/trusted-keys/, or list it in ota.keys of node.rhai)",
                pair.public.display()
            );
        }
        ReleaseCommand::Build {
            src,
            key,
            version,
            channel,
            min_archy,
            out,
            facts,
        } => {
            let out = out
                .clone()
                .unwrap_or_else(|| PathBuf::from(format!("archy-release-{version}.tar.gz")));
            let built = release::build(&release::ReleaseRequest {
                src,
                key,
                version,
                channel,
                min_archy: min_archy.as_ref(),
                out: &out,
                facts,
            })?;
            let report = &built.report;
            println!(
                "release {version} ({channel}): {} files, {} bytes, signed by key {}",
                report.files, report.bytes, built.key_id
            );
            println!("  {}", report.bundle.display());
            println!("  {}", report.signature.display());
            println!("  blake3 {}", report.blake3);
            if report.objects > 0 {
                let dir = match out.parent() {
                    Some(p) if !p.as_os_str().is_empty() => p.join("objects"),
                    _ => PathBuf::from("objects"),
                };
                println!(
                    "  software: {} objects, {} ({} new) in {}/ (publish it beside the bundle; needs archy {} or newer)",
                    report.objects,
                    super::human_bytes(report.object_bytes),
                    report.objects_written,
                    dir.display(),
                    report.min_archy
                );
            }
        }
    }
    Ok(Exit::Done)
}

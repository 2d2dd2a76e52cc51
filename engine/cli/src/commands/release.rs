//! `archy release keygen` and `archy release build`: what a publisher runs
//! to make the signed bundles `archy ota apply` installs.

use std::path::PathBuf;

use archy_node::{Exit, NodeError, release};
use clap::Subcommand;
use semver::Version;

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
}

pub fn run(command: &ReleaseCommand) -> Result<Exit, NodeError> {
    match command {
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

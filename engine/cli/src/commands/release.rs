//! `archy release keygen` and `archy release build`: what a publisher runs
//! to make the signed bundles `archy ota apply` installs.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use archy_ota::{keys, pack};
use clap::Subcommand;
use semver::Version;

use crate::CliError;

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
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
}

pub fn run(command: &ReleaseCommand) -> Result<(), CliError> {
    match command {
        ReleaseCommand::Keygen { out } => keygen(out),
        ReleaseCommand::Build {
            src,
            key,
            version,
            channel,
            min_archy,
            out,
        } => {
            let out = out
                .clone()
                .unwrap_or_else(|| PathBuf::from(format!("archy-release-{version}.tar.gz")));
            build(src, key, version, channel, min_archy.as_ref(), &out)
        }
    }
}

/// This archy's own version, which a release's minimum is compared with.
pub fn archy_version() -> Version {
    Version::parse(env!("CARGO_PKG_VERSION")).unwrap_or_else(|_| Version::new(0, 0, 0))
}

fn keygen(prefix: &Path) -> Result<(), CliError> {
    let with = |ext: &str| {
        let mut name = prefix.as_os_str().to_owned();
        name.push(ext);
        PathBuf::from(name)
    };
    let (secret_path, public_path) = (with(".key"), with(".pub"));
    for p in [&secret_path, &public_path] {
        if p.exists() {
            return Err(CliError::input(format!("{} exists already", p.display())).hint(
                "a release key is never replaced by accident: move it away, or pass another --out",
            ));
        }
    }
    let comment = format!(
        "archy release key {}",
        prefix.file_name().map_or_else(
            || "archy-release".into(),
            |n| n.to_string_lossy().into_owned()
        )
    );
    let pair = keys::generate(&comment).map_err(|e| CliError::system(e.to_string()))?;
    // The secret key is created 0600 from its first byte, and never
    // replaces a file (create_new), so a racing writer cannot swap it.
    write_new(&secret_path, pair.secret.as_bytes(), 0o600)?;
    if let Err(e) = write_new(&public_path, pair.public.as_bytes(), 0o644) {
        let _ = std::fs::remove_file(&secret_path);
        return Err(e);
    }
    println!("key {}:", pair.key_id);
    println!(
        "  secret {} (mode 0600: keep it offline; it signs releases)",
        secret_path.display()
    );
    println!(
        "  public {} (copy it to each node's /etc/archy/trusted-keys/, or list it in ota.keys of node.rhai)",
        public_path.display()
    );
    Ok(())
}

fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), CliError> {
    let err = |e: std::io::Error| CliError::system(format!("cannot write {}: {e}", path.display()));
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(err)?;
    file.write_all(bytes).map_err(err)?;
    file.sync_all().map_err(err)
}

fn build(
    src: &Path,
    key: &Path,
    version: &Version,
    channel: &str,
    min_archy: Option<&Version>,
    out: &Path,
) -> Result<(), CliError> {
    if channel.is_empty()
        || !channel
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return Err(
            CliError::input(format!("the channel {channel:?} is not a plain name"))
                .hint("use letters, digits and '-', e.g. stable or beta"),
        );
    }
    let key = keys::SigningKey::load(key).map_err(|e| {
        CliError::input(e.to_string()).hint("pass the .key file `archy release keygen` wrote")
    })?;
    let report = pack::build(&pack::PackRequest {
        src,
        key: &key,
        version: version.clone(),
        channel: channel.to_string(),
        min_archy: min_archy.cloned().unwrap_or_else(archy_version),
        out,
    })
    .map_err(|e| CliError::input(e.to_string()))?;
    println!(
        "release {version} ({channel}): {} files, {} bytes, signed by key {}",
        report.files,
        report.bytes,
        key.key_id()
    );
    println!("  {}", report.bundle.display());
    println!("  {}", report.signature.display());
    println!("  blake3 {}", report.blake3);
    Ok(())
}

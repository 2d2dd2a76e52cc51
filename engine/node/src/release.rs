//! What a publisher runs: a key pair that signs releases, and the signed
//! bundles `archy ota apply` installs. No node is involved.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use archy_ota::{keys, pack};
use semver::Version;

use crate::NodeError;

pub use archy_ota::pack::PackReport;

/// This archy's own version, which a release's minimum is compared with.
pub fn archy_version() -> Version {
    Version::parse(env!("CARGO_PKG_VERSION")).unwrap_or_else(|_| Version::new(0, 0, 0))
}

/// A key pair written by [`keygen`].
#[derive(Debug)]
pub struct KeyPair {
    pub key_id: String,
    pub secret: PathBuf,
    pub public: PathBuf,
}

/// Makes a key pair: `PREFIX.key` (secret, mode 0600) and `PREFIX.pub`.
/// Never replaces a file.
pub fn keygen(prefix: &Path) -> Result<KeyPair, NodeError> {
    let with = |ext: &str| {
        let mut name = prefix.as_os_str().to_owned();
        name.push(ext);
        PathBuf::from(name)
    };
    let (secret, public) = (with(".key"), with(".pub"));
    if let Some(p) = [&secret, &public].into_iter().find(|p| p.exists()) {
        return Err(NodeError::KeyExists(p.clone()));
    }
    let comment = format!(
        "archy release key {}",
        prefix.file_name().map_or_else(
            || "archy-release".into(),
            |n| n.to_string_lossy().into_owned()
        )
    );
    let pair = keys::generate(&comment).map_err(NodeError::Keygen)?;
    // The secret key is created 0600 from its first byte, and never
    // replaces a file (create_new), so a racing writer cannot swap it.
    write_new(&secret, pair.secret.as_bytes(), 0o600)?;
    if let Err(e) = write_new(&public, pair.public.as_bytes(), 0o644) {
        let _ = std::fs::remove_file(&secret);
        return Err(e);
    }
    Ok(KeyPair {
        key_id: pair.key_id,
        secret,
        public,
    })
}

fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), NodeError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(NodeError::io("write", path))?;
    file.write_all(bytes)
        .map_err(NodeError::io("write", path))?;
    file.sync_all().map_err(NodeError::io("write", path))
}

/// What a release bundle is made of.
#[derive(Debug)]
pub struct ReleaseRequest<'a> {
    /// The folder holding node.rhai.
    pub src: &'a Path,
    /// The secret key's file.
    pub key: &'a Path,
    pub version: &'a Version,
    pub channel: &'a str,
    /// The oldest archy that may install it (default: this one).
    pub min_archy: Option<&'a Version>,
    pub out: &'a Path,
}

/// A signed bundle and the key that signed it.
#[derive(Debug)]
pub struct Built {
    pub report: PackReport,
    pub key_id: String,
}

/// Packs a node's sources into a signed bundle.
pub fn build(req: &ReleaseRequest<'_>) -> Result<Built, NodeError> {
    let channel = req.channel;
    if channel.is_empty()
        || !channel
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return Err(NodeError::BadChannel(channel.to_string()));
    }
    let key = keys::SigningKey::load(req.key).map_err(NodeError::SigningKey)?;
    let report = pack::build(&pack::PackRequest {
        src: req.src,
        key: &key,
        version: req.version.clone(),
        channel: channel.to_string(),
        min_archy: req.min_archy.cloned().unwrap_or_else(archy_version),
        out: req.out,
    })
    .map_err(NodeError::Pack)?;
    Ok(Built {
        report,
        key_id: key.key_id(),
    })
}

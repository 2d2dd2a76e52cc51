//! Getting a release bundle and deciding about it: download it (streamed,
//! resumed, mirrors in order) or read it from a file, verify its signature
//! against the node's trusted keys before anything else reads it, and
//! decide whether this node applies it.

use std::fmt;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use archy_ota::state::{Candidate, Decision, OtaState, Policy};
use archy_ota::{download, keys::TrustedKeys, verify};
use archy_store::StateDir;
use semver::Version;

use crate::NodeError;
use crate::release::archy_version;

/// The largest bundle a node downloads.
const MAX_BUNDLE: u64 = 512 << 20;

/// Where a release comes from and what the node trusts.
#[derive(Debug, Clone)]
pub struct BundleSource {
    /// A bundle (.tar.gz with its .minisig beside it): a file or an
    /// http(s) URL.
    pub bundle: String,
    /// Other URLs of the same bundle, tried in order after it.
    pub mirrors: Vec<String>,
    /// The folder of public keys a release must be signed with.
    pub keys: PathBuf,
    /// Take only releases published for this channel (None: the one in
    /// `channel_file`, if there is one).
    pub channel: Option<String>,
    /// Where the node description writes the channel it follows.
    pub channel_file: PathBuf,
}

/// A verified bundle on disk, and whether it is a download to delete.
#[derive(Debug)]
pub(crate) struct Bundle {
    pub path: PathBuf,
    downloaded: bool,
    pub from: String,
    pub verified: verify::Verified,
}

impl Bundle {
    /// A bundle a TUF repository vouched for (its length and sha256 are
    /// in the signed targets metadata): `release` comes from the same
    /// signed metadata, and the manifest inside must say the same.
    pub(crate) fn from_repository(
        path: PathBuf,
        from: String,
        release: archy_ota::manifest::ReleaseInfo,
    ) -> Bundle {
        Bundle {
            path,
            downloaded: true,
            from,
            verified: verify::Verified {
                key_id: "the repository's targets role (TUF)".to_string(),
                release,
            },
        }
    }

    /// A download is of no use once unpacked or refused; a file the
    /// operator named is theirs.
    pub fn discard(&self) {
        if self.downloaded {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

/// Fetches (or reads) the bundle and its signature, and verifies it.
/// Nothing of the bundle is read beyond the signature check.
pub(crate) fn obtain(source: &BundleSource, state_dir: &StateDir) -> Result<Bundle, NodeError> {
    let trusted = TrustedKeys::load(&source.keys).map_err(NodeError::TrustedKeys)?;
    let (path, signature, downloaded, from) = if is_url(&source.bundle) {
        download_bundle(source, state_dir)?
    } else {
        if !source.mirrors.is_empty() {
            return Err(NodeError::MirrorWithFile);
        }
        let path = PathBuf::from(&source.bundle);
        let sig_path = PathBuf::from(format!("{}.minisig", source.bundle));
        let signature = std::fs::read_to_string(&sig_path).map_err(|e| NodeError::Signature {
            path: sig_path,
            source: e,
        })?;
        (path, signature, false, source.bundle.clone())
    };
    match verify::verify(&path, &signature, &trusted) {
        Ok(verified) => Ok(Bundle {
            path,
            downloaded,
            from,
            verified,
        }),
        Err(e) => {
            if downloaded {
                let _ = std::fs::remove_file(&path);
            }
            // A download is named after its URL; a file names itself.
            Err(NodeError::Unverified {
                from: downloaded.then_some(from),
                source: e,
            })
        }
    }
}

/// Downloads into `<state>/ota/downloads/`: streamed, resumed from a
/// `.part` an earlier run left, mirrors in order.
fn download_bundle(
    source: &BundleSource,
    state_dir: &StateDir,
) -> Result<(PathBuf, String, bool, String), NodeError> {
    let urls: Vec<String> = std::iter::once(source.bundle.clone())
        .chain(source.mirrors.iter().cloned())
        .collect();
    if let Some(u) = urls.iter().find(|u| !is_url(u)) {
        return Err(NodeError::NotUrl(u.clone()));
    }
    let dir = state_dir.ota_downloads();
    std::fs::create_dir_all(&dir).map_err(NodeError::io("create", &dir))?;
    // Named after the first URL, so a rerun resumes its own `.part`.
    let name = blake3::hash(urls[0].as_bytes()).to_hex();
    let dest = dir.join(format!("{}.tar.gz", &name[..16]));
    // A complete file from an earlier run may be stale (a "latest" URL
    // moves on); only a partial download is resumed.
    let _ = std::fs::remove_file(&dest);
    let fetched = download::fetch(
        &urls,
        &dest,
        &download::FetchOptions {
            progress: std::io::stderr().is_terminal(),
            max_bytes: MAX_BUNDLE,
            timeout: Duration::from_secs(60),
        },
    )
    .map_err(NodeError::Download)?;
    // The signature from the source that served the bundle first: mirrors
    // may lag behind one another, and a bundle only matches its own.
    let sig_urls: Vec<String> = std::iter::once(&fetched.from)
        .chain(urls.iter().filter(|u| **u != fetched.from))
        .map(|u| format!("{u}.minisig"))
        .collect();
    let (_, sig) = download::fetch_small(&sig_urls, 64 << 10, Duration::from_secs(30))
        .map_err(NodeError::SignatureFetch)?;
    let signature = String::from_utf8(sig).map_err(|_| NodeError::SignatureText {
        url: fetched.from.clone(),
    })?;
    if fetched.resumed_from > 0 {
        tracing::info!(
            "resumed the download at byte {} from {}",
            fetched.resumed_from,
            fetched.from
        );
    }
    Ok((dest, signature, true, fetched.from))
}

/// What the node makes of a verified release.
pub(crate) fn decide(
    state: &OtaState,
    current: Option<u64>,
    bundle: &Bundle,
    channel: Option<&str>,
    allow_downgrade: bool,
) -> Decision {
    let r = &bundle.verified.release;
    let archy = archy_version();
    state.decide(
        current,
        Candidate {
            version: &r.version,
            channel: &r.channel,
            min_archy: &r.min_archy,
        },
        Policy {
            archy: &archy,
            channel,
            allow_downgrade,
        },
    )
}

/// Why a verified release is not applied on this node.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub version: Version,
    pub decision: Decision,
}

impl Refusal {
    /// The refusal in `decision`; `None` for a release to apply, or one
    /// that is installed already (not an error).
    pub(crate) fn of(version: &Version, decision: &Decision) -> Option<Refusal> {
        match decision {
            Decision::Apply { .. } | Decision::Installed => None,
            _ => Some(Refusal {
                version: version.clone(),
                decision: decision.clone(),
            }),
        }
    }

    pub fn hint(&self) -> Option<&'static str> {
        match self.decision {
            Decision::Downgrade { .. } => {
                Some("pass --allow-downgrade to go back to it on purpose")
            }
            Decision::FailedBefore(_) => Some("publish a newer release with the fix"),
            Decision::NeedsArchy { .. } => Some("update archy on this node first"),
            _ => None,
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let version = &self.version;
        match &self.decision {
            Decision::Apply { .. } | Decision::Installed => {
                write!(f, "release {version} would be applied")
            }
            Decision::Downgrade { installed } => write!(
                f,
                "release {version} is older than release {installed}, which this node runs"
            ),
            Decision::FailedBefore(failed) => write!(
                f,
                "release {version} failed on this node at {} ({}); it is not tried again",
                failed.at, failed.reason
            ),
            Decision::NeedsArchy { needs, have } => write!(
                f,
                "release {version} needs archy {needs} or newer; this is archy {have}"
            ),
            Decision::OtherChannel { release, node } => write!(
                f,
                "release {version} is published for the channel {release:?}; this node follows {node:?}"
            ),
        }
    }
}

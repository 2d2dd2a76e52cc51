//! The node's side: load the repository's metadata through tough from the
//! mirrors in order, starting from the root pinned on the node (or a newer
//! one it verified since, kept in its datastore), and download a release
//! bundle checked against its signed length and sha256 as it streams in.
//!
//! The datastore (`<state>/ota/tuf/`) keeps the newest metadata the node
//! has verified: what makes an older version from a mirror a refused
//! rollback rather than news.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::StreamExt;
use tough::schema::{Root, Signed};
use tough::{Repository, RepositoryLoader, TargetName};
use url::Url;

use super::meta::ReleaseMeta;
use super::publish::release_meta;
use super::transport::{Cache, Mirrors};
use super::{TufError, block_on};
use crate::objects::ObjectSource;

/// Where a node's releases come from and what it trusts.
#[derive(Debug, Clone)]
pub struct Remote {
    /// Each mirror's repository root (`file:///srv/repo`,
    /// `https://updates.example/archy`), tried in order.
    pub mirrors: Vec<String>,
    /// The root of trust (`/etc/archy/trusted-root.json`).
    pub trusted_root: PathBuf,
    /// The node's datastore of verified metadata.
    pub datastore: PathBuf,
}

/// A release the verified targets metadata offers.
#[derive(Debug, Clone, PartialEq)]
pub struct Offered {
    pub target: String,
    pub meta: ReleaseMeta,
    pub length: u64,
}

/// The verified metadata, and the way to its targets.
#[derive(Debug)]
pub struct Listing {
    pub releases: Vec<Offered>,
    repo: Repository,
    bases: Vec<Url>,
    fetched: Arc<AtomicU64>,
}

fn base(mirror: &str) -> Result<Url, TufError> {
    let with_slash = if mirror.ends_with('/') {
        mirror.to_string()
    } else {
        format!("{mirror}/")
    };
    let url = Url::parse(&with_slash).map_err(|e| {
        TufError::Invalid(format!(
            "the repository URL {} is not a URL ({e}); use file:///PATH or http(s)://HOST/PATH",
            super::meta::cut(mirror, 200)
        ))
    })?;
    match url.scheme() {
        "file" | "http" | "https" => Ok(url),
        other => Err(TufError::Invalid(format!(
            "the repository URL {} has the scheme {other}; use file:// or http(s)://",
            super::meta::cut(mirror, 200)
        ))),
    }
}

/// The root to start from: the pinned one, or a newer one this node
/// verified before (a mirror that hides the newer roots must not take the
/// node back to keys that were rotated out).
fn starting_root(remote: &Remote) -> Result<Vec<u8>, TufError> {
    let pinned = std::fs::read(&remote.trusted_root).map_err(|e| TufError::TrustedRoot {
        path: remote.trusted_root.clone(),
        reason: format!("{e} (the node description writes it from ota.root)"),
    })?;
    let version = |bytes: &[u8]| {
        serde_json::from_slice::<Signed<Root>>(bytes)
            .ok()
            .map(|r| r.signed.version.get())
    };
    let Some(pinned_version) = version(&pinned) else {
        return Err(TufError::TrustedRoot {
            path: remote.trusted_root.clone(),
            reason: "it is not a TUF root.json".to_string(),
        });
    };
    let seen = std::fs::read(remote.datastore.join("root.json")).ok();
    Ok(match seen {
        Some(seen) if version(&seen).is_some_and(|v| v > pinned_version) => seen,
        _ => pinned,
    })
}

/// Fetches and verifies the metadata.
pub fn load(remote: &Remote) -> Result<Listing, TufError> {
    if remote.mirrors.is_empty() {
        return Err(TufError::Invalid("no repository URL given".to_string()));
    }
    let bases = remote
        .mirrors
        .iter()
        .map(|m| base(m))
        .collect::<Result<Vec<_>, _>>()?;
    let root = starting_root(remote)?;
    std::fs::create_dir_all(&remote.datastore)
        .map_err(TufError::io("create", &remote.datastore))?;
    let fetched = Arc::new(AtomicU64::new(0));
    let cache = Cache {
        dir: remote.datastore.join("cache"),
    };
    let transport = Mirrors {
        bases: bases.clone(),
        fetched: fetched.clone(),
        cache: cache.clone(),
    };
    let join = |u: &Url, p: &str| {
        u.join(p)
            .map_err(|e| TufError::Invalid(format!("cannot join {p} to {u}: {e}")))
    };
    let metadata = join(&bases[0], "metadata/")?;
    let targets = join(&bases[0], "targets/")?;
    let loaded = block_on(
        RepositoryLoader::new(&root, metadata, targets)
            .transport(transport)
            .datastore(&remote.datastore)
            .load(),
    )?;
    let repo = match loaded {
        Ok(repo) => repo,
        Err(e) => {
            cache.discard();
            return Err(TufError::of_load(e));
        }
    };
    cache.commit(&[
        format!("{}.snapshot.json", repo.snapshot().signed.version),
        format!("{}.targets.json", repo.targets().signed.version),
    ]);
    let mut releases: Vec<Offered> = repo
        .targets()
        .signed
        .targets
        .iter()
        .filter_map(|(name, t)| {
            Some(Offered {
                target: name.raw().to_string(),
                meta: release_meta(t)?,
                length: t.length,
            })
        })
        .collect();
    releases.sort_by(|a, b| a.meta.version.cmp(&b.meta.version));
    Ok(Listing {
        releases,
        repo,
        bases,
        fetched,
    })
}

impl Listing {
    /// Bytes fetched from the mirrors so far (metadata and targets).
    pub fn bytes_fetched(&self) -> u64 {
        self.fetched.load(Ordering::Relaxed)
    }

    /// The timestamp's version (what an up-to-date node compares).
    pub fn timestamp_version(&self) -> u64 {
        self.repo.timestamp().signed.version.get()
    }

    /// Downloads `target` into `dest` (through a temp file beside it):
    /// tough checks each byte against the signed length and sha256, and a
    /// target that differs is never named `dest`.
    pub fn download(&self, target: &str, dest: &Path) -> Result<u64, TufError> {
        let name = TargetName::new(target).map_err(|_| TufError::NoTarget(target.to_string()))?;
        let dir = dest.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(TufError::io("create", dir))?;
        let mut temp =
            tempfile::NamedTempFile::new_in(dir).map_err(TufError::io("create a file in", dir))?;
        let written = block_on(async {
            let stream = self
                .repo
                .read_target(&name)
                .await
                .map_err(|e| TufError::of_target(target, e))?;
            let Some(mut stream) = stream else {
                return Err(TufError::NoTarget(target.to_string()));
            };
            let mut written = 0u64;
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| TufError::of_target(target, e))?;
                temp.write_all(&chunk)
                    .map_err(TufError::io("write", dest))?;
                written += chunk.len() as u64;
            }
            Ok(written)
        })??;
        temp.as_file()
            .sync_all()
            .map_err(TufError::io("sync", dest))?;
        temp.persist(dest)
            .map_err(|e| TufError::io("write", dest)(e.error))?;
        Ok(written)
    }

    /// Where the release's software objects are: `targets/objects/` of
    /// the first mirror on a disk, or of each http mirror in order. Their
    /// blake3s come from the bundle's manifest, which the targets metadata
    /// pins, so they need no TUF of their own on the way in.
    pub fn objects(&self) -> ObjectSource {
        if let Some(path) = self
            .bases
            .iter()
            .find(|b| b.scheme() == "file")
            .and_then(|b| b.to_file_path().ok())
        {
            return ObjectSource::Folder(path.join("targets"));
        }
        ObjectSource::Urls(
            self.bases
                .iter()
                .map(|b| format!("{}targets", b.as_str()))
                .collect(),
        )
    }
}

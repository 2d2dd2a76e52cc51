//! Installing software: an artifact's or a tree's path made to point into
//! the store by one `rename(2)`, so the old software or the new one is in
//! place at every moment, and a rollback puts the old one back as fast.

use std::fs;
use std::path::{Path, PathBuf};

use archy_build::software::{artifact_object, ensure_tree};
use archy_graph::resource::{ArtifactSpec, Placement, TreeSpec};
use archy_store::{StateDir, Store};

use crate::apply::Session;
use crate::error::{Error, Result};
use crate::fsops;
use crate::record::OwnedKind;

/// `host` as the node sees it: the state dir on the node is under `/`,
/// wherever the root is mounted here.
pub(crate) fn node_view(root: &Path, host: &Path) -> PathBuf {
    match host.strip_prefix(root) {
        Ok(rest) => Path::new("/").join(rest),
        Err(_) => host.to_path_buf(),
    }
}

fn store(state_dir: &StateDir) -> Result<Store> {
    Store::open(state_dir).map_err(|e| Error::Software {
        path: state_dir.path().display().to_string(),
        why: e.to_string(),
    })
}

/// The crash tests' hook (feature `crash-points` only): with
/// `ARCHY_PAUSE_AFTER="installed <path>"` in its environment, the realizer
/// stops for a minute right after that artifact or tree is in place (the
/// others of the switch maybe not yet), so a test can kill it there.
#[cfg(feature = "crash-points")]
fn pause_point(path: &str) {
    if std::env::var("ARCHY_PAUSE_AFTER").is_ok_and(|s| s.strip_prefix("installed ") == Some(path))
    {
        tracing::warn!("pausing after installing {path} (ARCHY_PAUSE_AFTER)");
        std::thread::sleep(std::time::Duration::from_secs(60));
    }
}

/// Without the feature `crash-points`, a production realizer has no hook.
#[cfg(not(feature = "crash-points"))]
fn pause_point(_path: &str) {}

impl Session<'_> {
    /// Puts `a` in place: a symlink to its store object, or a copy of it
    /// with the artifact's own mode and owner.
    pub(crate) fn install_artifact(&mut self, a: &ArtifactSpec, adopt: bool) -> Result<()> {
        let path = a.path.to_string();
        let missing = |why: String| Error::Software {
            path: path.clone(),
            why,
        };
        let store = store(self.state_dir)?;
        let id = artifact_object(&store, a)
            .map_err(|e| missing(e.to_string()))?
            .ok_or_else(|| {
                missing(format!(
                    "its bytes ({}) are not in the store; build the generation again",
                    a.hash
                ))
            })?;
        let object = store.object_path(&id);
        let target = self.target(&path);
        let (uid, gid) = self.ids(
            a.owner.as_ref().map(|o| o.as_str()),
            a.group.as_ref().map(|g| g.as_str()),
            &target.host.display().to_string(),
        )?;
        let fresh = self.claim(&path, &target, OwnedKind::File, adopt)?;
        let root = self.root;
        self.write_claimed(&path, fresh, || match a.place {
            Placement::Link => fsops::write_link(&target.host, &node_view(root, &object)),
            Placement::Copy => {
                let bytes = fs::read(&object).map_err(|e| Error::io("read", &object)(e))?;
                fsops::write_file(&target.host, &bytes, a.mode.bits(), uid, gid)
            }
        })?;
        tracing::info!(%path, object = %id, "installed");
        pause_point(&path);
        self.applied.written.push(path);
        Ok(())
    }

    /// Links `t`'s path to the tree laid out in the state dir (laid out
    /// again from the store if it went missing).
    pub(crate) fn install_tree(&mut self, t: &TreeSpec, adopt: bool) -> Result<()> {
        let path = t.path.to_string();
        let store = store(self.state_dir)?;
        let folder = ensure_tree(&store, t.manifest).map_err(|e| Error::Software {
            path: path.clone(),
            why: e.to_string(),
        })?;
        let target = self.target(&path);
        let fresh = self.claim(&path, &target, OwnedKind::File, adopt)?;
        let root = self.root;
        self.write_claimed(&path, fresh, || {
            fsops::write_link(&target.host, &node_view(root, &folder))
        })?;
        tracing::info!(%path, tree = %t.manifest, "installed");
        pause_point(&path);
        self.applied.written.push(path);
        Ok(())
    }
}

/// Whether the regular file at `host` holds exactly the bytes `hash`
/// declares.
pub(crate) fn holds(host: &Path, hash: &archy_graph::resource::ContentHash) -> bool {
    fs::symlink_metadata(host).is_ok_and(|m| m.is_file())
        && archy_build::software::expected(hash).matches_file(host)
}

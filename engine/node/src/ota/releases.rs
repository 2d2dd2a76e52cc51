//! The unpacked releases, `<state>/ota/releases/VERSION-HASH12/`: where a
//! verified bundle is unpacked to be evaluated and built, and how many of
//! them are kept afterwards.

use std::path::{Path, PathBuf};

use archy_ota::manifest::Manifest;
use archy_ota::manifest::ReleaseInfo;
use archy_store::StateDir;
use semver::Version;

use crate::NodeError;

/// How many unpacked releases are kept (the newest, by when they were
/// unpacked): a generation needs none of them once built, they are kept
/// to look at what a recent release contained.
const KEEP_RELEASES: usize = 3;

/// The folder release `version` (bundle hash `blake3`) is unpacked into,
/// emptied of an interrupted earlier attempt; its parent exists.
pub(crate) fn folder(
    state_dir: &StateDir,
    version: &Version,
    blake3: &str,
) -> Result<PathBuf, NodeError> {
    let dir = state_dir.ota_release(version, blake3);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(NodeError::io("remove", &dir))?;
    }
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent).map_err(NodeError::io("create", parent))?;
    }
    Ok(dir)
}

/// The signed comment decided; the manifest must say the same.
pub(crate) fn same_release(manifest: &Manifest, signed: &ReleaseInfo) -> Result<(), String> {
    if manifest.version == signed.version
        && manifest.channel == signed.channel
        && manifest.min_archy == signed.min_archy
    {
        return Ok(());
    }
    Err(format!(
        "its manifest names release {} ({}, archy {}), its signature release {} ({}, archy {})",
        manifest.version,
        manifest.channel,
        manifest.min_archy,
        signed.version,
        signed.channel,
        signed.min_archy
    ))
}

/// Deletes all but the newest [`KEEP_RELEASES`] unpacked releases beside
/// `installed` (which is always kept). A failure only costs disk space.
pub(crate) fn prune(installed: &Path) {
    let Some(parent) = installed.parent() else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    let mut dirs: Vec<(std::time::SystemTime, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path() != installed)
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    dirs.sort_by_key(|d| std::cmp::Reverse(d.0));
    for (_, old) in dirs.into_iter().skip(KEEP_RELEASES - 1) {
        if let Err(e) = std::fs::remove_dir_all(&old) {
            tracing::warn!("cannot remove the old release {}: {e}", old.display());
        }
    }
}

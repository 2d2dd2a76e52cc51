//! Laying a stored tree out as a folder, `<state>/trees/<hash>`, which a
//! `tree()` path links to.
//!
//! The folder is made under a temp name and renamed into place once
//! complete and flushed, so it exists whole or not at all. Files are hard
//! links to their store objects (no copy, and the same read-only inodes
//! `archy store verify` checks); folders are 0755 and root's.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, symlink};
use std::path::{Path, PathBuf};

use archy_graph::Digest;
use archy_graph::resource::TREE_OBJECT_NAME;
use archy_graph::tree::{TreeEntry, TreeManifest};
use archy_store::{ObjectId, ObjectName, Store};

use super::tree_source::{TreeError, file_object};

/// The manifest object of the tree `digest`.
pub fn manifest_object(digest: Digest) -> ObjectId {
    ObjectId::new(
        digest,
        ObjectName::try_from(TREE_OBJECT_NAME).unwrap_or_else(|e| unreachable!("{e}")),
    )
}

/// Reads the stored manifest of the tree `digest`.
pub fn stored_manifest(store: &Store, digest: Digest) -> Result<TreeManifest, TreeError> {
    let bytes = store.read(&manifest_object(digest))?;
    TreeManifest::decode(&bytes).map_err(|e| TreeError::Io {
        path: store.object_path(&manifest_object(digest)),
        source: io::Error::new(io::ErrorKind::InvalidData, e.to_string()),
    })
}

/// The folder of the tree `digest`, laid out from the store if it is not
/// there yet.
pub fn ensure_tree(store: &Store, digest: Digest) -> Result<PathBuf, TreeError> {
    let trees = store.state_dir().trees();
    let done = trees.join(digest.to_string());
    if done.is_dir() {
        return Ok(done);
    }
    let manifest = stored_manifest(store, digest)?;
    let io_err = |path: &Path, e| TreeError::Io {
        path: path.to_owned(),
        source: e,
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(&trees)
        .map_err(|e| io_err(&trees, e))?;
    let temp = trees.join(format!(".tmp-{digest}"));
    // A leftover of an interrupted layout: made again from the start.
    if temp.exists() {
        fs::remove_dir_all(&temp).map_err(|e| io_err(&temp, e))?;
    }
    make_dir(&temp)?;
    for entry in &manifest.entries {
        let at = temp.join(entry.path());
        match entry {
            TreeEntry::Dir { .. } => make_dir(&at)?,
            TreeEntry::File {
                path,
                executable,
                content,
                ..
            } => {
                let object = store.object_path(&file_object(path, *executable, *content));
                if let Err(e) = fs::hard_link(&object, &at) {
                    // Another file system (a bind-mounted store): a copy,
                    // read-only like the object.
                    if e.raw_os_error() != Some(rustix::io::Errno::XDEV.raw_os_error()) {
                        return Err(io_err(&object, e));
                    }
                    fs::copy(&object, &at).map_err(|e| io_err(&at, e))?;
                }
            }
            TreeEntry::Link { target, .. } => symlink(target, &at).map_err(|e| io_err(&at, e))?,
        }
    }
    // One flush of the file system for every entry, before the name.
    let dir = fs::File::open(&temp).map_err(|e| io_err(&temp, e))?;
    rustix::fs::syncfs(&dir).map_err(|e| io_err(&temp, e.into()))?;
    fs::rename(&temp, &done).map_err(|e| io_err(&done, e))?;
    fs::File::open(&trees)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err(&trees, e))?;
    Ok(done)
}

fn make_dir(path: &Path) -> Result<(), TreeError> {
    fs::DirBuilder::new()
        .mode(0o755)
        .create(path)
        .map_err(|e| TreeError::Io {
            path: path.to_owned(),
            source: e,
        })?;
    // The umask may have taken bits away: 0755 exactly.
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).map_err(|e| TreeError::Io {
        path: path.to_owned(),
        source: e,
    })
}

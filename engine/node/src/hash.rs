//! `archy hash`: the hash a node author declares software by.

use std::path::Path;

use archy_build::software::{TreeError, read_tree};
use archy_graph::Digest;

use crate::NodeError;

pub use archy_store::FileHashes;

/// Hashes the file at `path` (what `artifact(path, #{ blake3 })` or
/// `#{ sha256 }` declares).
pub fn file(path: &Path) -> Result<FileHashes, NodeError> {
    FileHashes::of(path).map_err(|source| NodeError::Io {
        what: "read",
        path: path.to_owned(),
        source,
    })
}

/// Hashes the tree in `path` (a folder, `.tar`, `.tar.gz` or `.tar.zst`)
/// as a build normalizes it (what `tree(path, #{ blake3 })` declares),
/// with its file count and size.
pub fn tree(path: &Path) -> Result<(Digest, usize, u64), NodeError> {
    let manifest = read_tree(path, None).map_err(|e: TreeError| NodeError::Tree {
        path: path.to_owned(),
        why: e.to_string(),
    })?;
    let files = manifest
        .entries
        .iter()
        .filter(|e| matches!(e, archy_graph::tree::TreeEntry::File { .. }))
        .count();
    Ok((manifest.digest(), files, manifest.size()))
}

//! `archy hash`: the hash a node author declares software by.

use std::path::Path;

use archy_build::software::{TreeError, read_tree};
use archy_graph::Digest;

use crate::NodeError;

/// A file's blake3 and sha256, read once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileHashes {
    pub blake3: Digest,
    pub sha256: String,
    pub size: u64,
}

/// Hashes the file at `path` (what `artifact(path, #{ blake3 })` declares).
pub fn file(path: &Path) -> Result<FileHashes, NodeError> {
    use sha2::Digest as _;
    use std::io::Read as _;
    let io = |source| NodeError::Io {
        what: "read",
        path: path.to_owned(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut blake = blake3::Hasher::new();
    let mut sha = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        blake.update(&buf[..n]);
        sha.update(&buf[..n]);
        size += n as u64;
    }
    Ok(FileHashes {
        blake3: blake.finalize().into(),
        sha256: sha.finalize().iter().map(|b| format!("{b:02x}")).collect(),
        size,
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

//! Directory trees of software (`tree(path, #{ source, blake3 })`): what
//! a tree's hash covers, after normalization.
//!
//! A tree is stored as one object per file (by content) and a manifest
//! whose bytes are exactly what the tree's hash is taken over, as build
//! contexts are. The manifest holds only what normalization keeps: each
//! entry's path, whether a file is a program, its content digest, and a
//! symlink's target. Modes, owners and times from the source are not part
//! of it, so a source folder with a 0700 directory, a file owned by the
//! uid of whoever packed it, or a setuid bit hashes like a clean one and
//! is installed clean (directories 0755, files 0444 or 0555, root's).

use serde::{Deserialize, Serialize};

use crate::Digest;
use crate::encode::DecodeError;

/// The domain string of a tree manifest. Part of every tree's hash.
const TREE_DOMAIN: &str = "archy.tree.v1";

/// One entry below the tree's root, by its `/`-separated relative path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TreeEntry {
    Dir {
        path: String,
    },
    File {
        path: String,
        executable: bool,
        content: Digest,
        size: u64,
    },
    /// A relative link that stays inside the tree.
    Link {
        path: String,
        target: String,
    },
}

impl TreeEntry {
    pub fn path(&self) -> &str {
        match self {
            TreeEntry::Dir { path }
            | TreeEntry::File { path, .. }
            | TreeEntry::Link { path, .. } => path,
        }
    }
}

/// What a tree's hash covers: its entries in path order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeManifest {
    pub domain: String,
    pub entries: Vec<TreeEntry>,
}

impl TreeManifest {
    /// A manifest of `entries`, sorted by path so the hash does not depend
    /// on the order a folder or an archive listed them in.
    pub fn new(mut entries: Vec<TreeEntry>) -> Self {
        entries.sort_by(|a, b| a.path().cmp(b.path()));
        TreeManifest {
            domain: TREE_DOMAIN.to_string(),
            entries,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        // Plain structs into a Vec cannot fail (see `encode`).
        postcard::to_stdvec(self).unwrap_or_else(|e| unreachable!("postcard encoding failed: {e}"))
    }

    /// The tree's hash: blake3 of [`Self::encode`].
    pub fn digest(&self) -> Digest {
        Digest::of(&self.encode())
    }

    /// Reads a manifest back, refusing another encoding version.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let m: TreeManifest =
            postcard::from_bytes(bytes).map_err(|source| DecodeError::new("tree", source))?;
        if m.domain != TREE_DOMAIN {
            return Err(DecodeError::new(
                "tree",
                postcard::Error::DeserializeBadEncoding,
            ));
        }
        Ok(m)
    }

    /// The bytes of every file, summed.
    pub fn size(&self) -> u64 {
        self.entries
            .iter()
            .map(|e| match e {
                TreeEntry::File { size, .. } => *size,
                _ => 0,
            })
            .sum()
    }
}

/// Whether the relative link `target`, placed at the relative path `at`,
/// resolves inside the tree (lexically: `..` may not climb above the root,
/// and an absolute target always leaves it).
pub fn link_stays_inside(at: &str, target: &str) -> bool {
    if target.is_empty() || target.starts_with('/') {
        return false;
    }
    // The link's own folder, then the target's parts on top of it.
    let mut depth: usize = at
        .split('/')
        .filter(|p| !p.is_empty())
        .count()
        .saturating_sub(1);
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => match depth.checked_sub(1) {
                Some(d) => depth = d,
                None => return false,
            },
            _ => depth += 1,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> TreeManifest {
        TreeManifest::new(vec![
            TreeEntry::File {
                path: "index.html".into(),
                executable: false,
                content: Digest::of(b"<h1>ui</h1>\n"),
                size: 12,
            },
            TreeEntry::Dir {
                path: "assets".into(),
            },
            TreeEntry::Link {
                path: "assets/home.html".into(),
                target: "../index.html".into(),
            },
        ])
    }

    /// If this fails, the tree encoding changed and every tree's hash with
    /// it: every author's declared `blake3` would stop matching. Only
    /// update it for a deliberate change (and bump the domain).
    #[test]
    fn pinned_tree_digest() {
        assert_eq!(
            sample().digest().to_string(),
            "e12c4788063c64b9a68d3d6acd3e21bed5873b360bd3db8bd834280d0c233182"
        );
    }

    #[test]
    fn entries_are_sorted_and_round_trip() {
        let m = sample();
        let paths: Vec<&str> = m.entries.iter().map(TreeEntry::path).collect();
        assert_eq!(paths, ["assets", "assets/home.html", "index.html"]);
        assert_eq!(TreeManifest::decode(&m.encode()).ok(), Some(m.clone()));
        let mut other = m.clone();
        other.domain = "archy.tree.v0".into();
        assert!(TreeManifest::decode(&other.encode()).is_err());
        assert_eq!(m.size(), 12);
    }

    #[test]
    fn links_must_stay_inside() {
        assert!(link_stays_inside("a/b", "../index.html"));
        assert!(link_stays_inside("a", "b/c"));
        assert!(!link_stays_inside("a", "../x"));
        assert!(!link_stays_inside("a/b", "../../x"));
        assert!(!link_stays_inside("a", "/etc/passwd"));
        assert!(!link_stays_inside("a", ""));
    }
}

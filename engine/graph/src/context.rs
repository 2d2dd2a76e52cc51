//! Container build contexts: the files an image built from the node's own
//! sources (`build: "apps/x"`) is made of.
//!
//! A container names its image by the context's tree digest, a field of the
//! container, so the files themselves are not part of any resource's hash.
//! They still have to travel with the generation: a switch, and a rollback
//! run after the Rhai sources are gone, need them to run `podman build`. So
//! the graph carries them beside the resources (like file texts), and the
//! store keeps them as objects: one per file, by content, and a manifest
//! whose bytes are exactly what the tree digest is taken over, so the
//! manifest object's store digest *is* the tree digest.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Digest;
use crate::encode::DecodeError;

/// The domain string of a context manifest. Part of every tree digest:
/// changing it renames every built image.
const CONTEXT_DOMAIN: &str = "archy.context.v1";

/// The files of one build context, sorted by path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildContext {
    pub files: Vec<ContextFile>,
}

/// One file of a build context.
#[derive(Clone, PartialEq, Eq)]
pub struct ContextFile {
    /// Relative to the context folder, `/`-separated.
    pub path: String,
    pub executable: bool,
    pub bytes: Vec<u8>,
}

// By hand: a derived Debug would print every byte of every file, and a
// context can hold megabytes.
impl fmt::Debug for ContextFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContextFile")
            .field("path", &self.path)
            .field("executable", &self.executable)
            .field("bytes", &format_args!("<{} bytes>", self.bytes.len()))
            .finish()
    }
}

/// One file as the manifest lists it: its content by digest, so the
/// manifest is small and each file's bytes are a store object of their own
/// (shared by every context and generation that has them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    pub path: String,
    pub executable: bool,
    pub content: Digest,
}

/// What a context's tree digest covers: every file's path, executable bit
/// and content digest, in path order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContextManifest {
    pub domain: String,
    pub entries: Vec<ManifestEntry>,
}

impl BuildContext {
    /// A context of `files`, sorted by path so the digest does not depend on
    /// the order a folder was read in.
    pub fn new(mut files: Vec<ContextFile>) -> Self {
        files.sort_by(|a, b| a.path.cmp(&b.path));
        BuildContext { files }
    }

    /// The manifest of this context.
    pub fn manifest(&self) -> ContextManifest {
        ContextManifest::new(
            self.files
                .iter()
                .map(|f| ManifestEntry {
                    path: f.path.clone(),
                    executable: f.executable,
                    content: Digest::of(&f.bytes),
                })
                .collect(),
        )
    }

    /// The canonical bytes of the manifest: what [`Self::tree_digest`] is
    /// taken over and what the store keeps.
    pub fn manifest_bytes(&self) -> Vec<u8> {
        self.manifest().encode()
    }

    /// The hash that names the image built from this context: blake3 of
    /// [`Self::manifest_bytes`].
    pub fn tree_digest(&self) -> Digest {
        Digest::of(&self.manifest_bytes())
    }
}

impl ContextManifest {
    pub fn new(entries: Vec<ManifestEntry>) -> Self {
        ContextManifest {
            domain: CONTEXT_DOMAIN.to_string(),
            entries,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        // As in `encode`: plain structs into a Vec cannot fail.
        postcard::to_stdvec(self).unwrap_or_else(|e| unreachable!("postcard encoding failed: {e}"))
    }

    /// Reads a manifest back. The domain is not checked here: the caller
    /// compares it with [`ContextManifest::new`]'s to tell an old encoding
    /// from garbage.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        postcard::from_bytes(bytes).map_err(|source| DecodeError::new("context", source))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// `tests/eval/contexts/web`, whose tree digest is in the golden
    /// snapshot `okay-build-context`.
    fn web() -> BuildContext {
        BuildContext::new(vec![
            ContextFile {
                path: "index.html".into(),
                executable: false,
                bytes: b"<h1>archy</h1>\n".to_vec(),
            },
            ContextFile {
                path: "Containerfile".into(),
                executable: false,
                bytes: b"FROM localhost/testbed/busybox:latest\n\
                         COPY index.html /www/index.html\n\
                         CMD [\"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n"
                    .to_vec(),
            },
        ])
    }

    /// If this fails, the context encoding changed: every built image gets
    /// a new name and every container that has one a new hash. Only update
    /// the pinned value for a deliberate change (and bump the domain).
    #[test]
    fn pinned_tree_digest() {
        assert_eq!(
            web().tree_digest().to_string(),
            "f1336450ee75ccafb50a0f28abdeb496eeee851344c3ebae31dc2132053dc509"
        );
    }

    #[test]
    fn the_tree_digest_is_the_digest_of_the_manifest_bytes() {
        let ctx = web();
        assert_eq!(Digest::of(&ctx.manifest_bytes()), ctx.tree_digest());
        let back = ContextManifest::decode(&ctx.manifest_bytes()).unwrap();
        assert_eq!(back, ctx.manifest());
        assert_eq!(back.entries[0].path, "Containerfile", "sorted by path");
        assert!(ContextManifest::decode(b"").is_err());
    }

    #[test]
    fn the_digest_covers_paths_modes_and_contents() {
        let base = web().tree_digest();
        let mut exec = web();
        exec.files[0].executable = true;
        let mut renamed = web();
        renamed.files[1].path = "main.html".into();
        let mut edited = web();
        edited.files[1].bytes.push(b'\n');
        for other in [exec, renamed, edited] {
            assert_ne!(other.tree_digest(), base);
        }
    }

    #[test]
    fn debug_does_not_print_the_bytes() {
        let text = format!("{:?}", web());
        assert!(text.contains("<15 bytes>"), "{text}");
        assert!(!text.contains("archy</h1>"), "{text}");
    }
}

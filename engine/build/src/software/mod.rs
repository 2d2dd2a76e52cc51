//! Software in the store: every artifact's bytes and every tree's files,
//! fetched from where the node description says, checked against the
//! declared hash before anything is named, and stored as objects of the
//! generation.
//!
//! The evaluator never sees these bytes; this is the first step that does.
//! A source is a path relative to the node's sources (for a release, a file
//! inside the bundle) or a URL; a URL is tried after the release's mirrors
//! (`<mirror>/objects/<blake3>`), and a download resumes where the last one
//! stopped. Software already in the store is never fetched again.

pub mod materialize;
pub mod tree_source;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use archy_graph::resource::{ArtifactSpec, ContentHash, TreeSpec};
use archy_graph::tree::{TreeEntry, TreeManifest};
use archy_graph::{Graph, Node, Resource, ResourceKey};
use archy_store::{Expected, Inserted, ObjectId, ObjectName, Store, StoreError};

/// The source that names the running archy binary (as the evaluator
/// spells it).
pub const RUNNING_ARCHY: &str = "archy:running";

pub use materialize::{ensure_tree, manifest_object, stored_manifest};
pub use tree_source::{TreeError, file_object, read_tree};

/// Fetches a URL into a file, resuming a partial download (`<dest>.part`).
/// The node facade gives the OTA downloader; tests give their own.
pub trait Download {
    /// Downloads the first of `urls` that works into `dest`.
    fn download(&self, urls: &[String], dest: &Path) -> Result<(), String>;
}

/// Where a build finds software that is not in the store yet.
#[derive(Default)]
pub struct Origin<'a> {
    /// The node's sources (the folder with `stdlib/`): relative sources
    /// are read from here and may not leave it.
    pub root: Option<PathBuf>,
    /// Release mirrors that keep software by blake3, tried before a URL.
    pub object_mirrors: Vec<String>,
    pub download: Option<&'a dyn Download>,
    /// The running archy binary: the source `archy:running` (the default
    /// binary `archy::units()` installs).
    pub running: Option<PathBuf>,
}

impl std::fmt::Debug for Origin<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Origin")
            .field("root", &self.root)
            .field("object_mirrors", &self.object_mirrors)
            .field("download", &self.download.is_some())
            .field("running", &self.running)
            .finish()
    }
}

/// Why software could not be stored. The build records no generation.
#[derive(Debug, thiserror::Error)]
pub enum SoftwareError {
    #[error("{what}: its bytes are not in the store and the graph says nowhere to get them")]
    NoSource { what: String },
    #[error("{what}: source {source_path:?} is not inside the node's sources ({})", root.display())]
    OutsideRoot {
        what: String,
        source_path: String,
        root: PathBuf,
    },
    #[error("{what}: cannot read its source {}: {error}", path.display())]
    Missing {
        what: String,
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{what}: download failed: {why}")]
    Download { what: String, why: String },
    #[error("{what}: {error}")]
    Store {
        what: String,
        error: Box<StoreError>,
    },
    #[error("{what}: {error}")]
    Tree { what: String, error: Box<TreeError> },
    #[error(
        "{what}: the tree from {source_path} hashes to blake3:{actual}, but the node declares blake3:{declared}; \
         nothing was stored. Check the source, or declare the hash `archy hash tree` prints"
    )]
    TreeMismatch {
        what: String,
        source_path: String,
        declared: String,
        actual: String,
    },
}

impl SoftwareError {
    /// Whether the error says the node description (or what it names) is
    /// wrong, rather than the machine.
    pub fn is_input(&self) -> bool {
        let machine = |e: &StoreError| {
            matches!(
                e,
                StoreError::DiskFull { .. }
                    | StoreError::NotWritable { .. }
                    | StoreError::Io { .. }
            )
        };
        match self {
            SoftwareError::Store { error, .. } => !machine(error),
            SoftwareError::Tree { error, .. } => match &**error {
                TreeError::Store(e) => !machine(e),
                _ => true,
            },
            _ => true,
        }
    }
}

/// What storing software did: the objects the generation needs, and how
/// many were new.
#[derive(Debug, Default)]
pub struct Stored {
    pub objects: BTreeSet<ObjectId>,
    pub written: usize,
    pub present: usize,
    pub bytes: u64,
}

impl Stored {
    fn count(&mut self, id: ObjectId, inserted: Inserted) {
        match inserted {
            Inserted::Written(n) => {
                self.written += 1;
                self.bytes += n;
            }
            Inserted::AlreadyPresent => self.present += 1,
        }
        self.objects.insert(id);
    }
}

/// Stores every artifact's and tree's bytes of `graph`, fetching what the
/// store lacks, and lays every tree out.
pub fn store_software(
    store: &Store,
    graph: &Graph,
    origin: &Origin,
) -> Result<Stored, SoftwareError> {
    let mut stored = Stored::default();
    for node in &graph.nodes {
        match &node.resource {
            Resource::Artifact(a) => artifact(store, graph, node, a, origin, &mut stored)?,
            Resource::Tree(t) => tree(store, graph, node, t, origin, &mut stored)?,
            _ => {}
        }
    }
    Ok(stored)
}

/// What the store checks software against: the declared hash.
pub fn expected(hash: &ContentHash) -> Expected {
    match hash {
        ContentHash::Blake3(d) => Expected::Blake3(*d),
        ContentHash::Sha256(h) => Expected::Sha256(h.clone()),
    }
}

fn object_name(name: &str) -> ObjectName {
    ObjectName::try_from(name)
        .or_else(|_| ObjectName::try_from("artifact"))
        .unwrap_or_else(|e| unreachable!("{e}"))
}

/// The store object holding an artifact's bytes, if the store has it.
pub fn artifact_object(store: &Store, spec: &ArtifactSpec) -> Result<Option<ObjectId>, StoreError> {
    let name = object_name(&spec.object_name());
    match &spec.hash {
        ContentHash::Blake3(d) => {
            let id = ObjectId::new(*d, name);
            Ok(store.contains(&id)?.then_some(id))
        }
        ContentHash::Sha256(_) => store.find_named(&name),
    }
}

/// The resource and where it was declared, for messages: the node file
/// and line to fix (a loaded generation says which generation).
fn described(node: &Node) -> String {
    format!("{} (declared at {})", node.key, node.at)
}

fn artifact(
    store: &Store,
    graph: &Graph,
    node: &Node,
    spec: &ArtifactSpec,
    origin: &Origin,
    stored: &mut Stored,
) -> Result<(), SoftwareError> {
    let key = &node.key;
    let what = described(node);
    let store_err = |error| SoftwareError::Store {
        what: what.clone(),
        error: Box::new(error),
    };
    if let Some(id) = artifact_object(store, spec).map_err(store_err)? {
        stored.count(id, Inserted::AlreadyPresent);
        return Ok(());
    }
    let name = object_name(&spec.object_name());
    let want = expected(&spec.hash);
    let blake3 = match &spec.hash {
        ContentHash::Blake3(d) => Some(d.to_string()),
        ContentHash::Sha256(_) => None,
    };
    let (path, downloaded) = fetch(store, graph, key, what.clone(), origin, blake3.as_deref())?;
    let result = store.insert_checked(&name, &path, &want, spec.executable());
    if downloaded {
        // Fetched, checked (or refused): the download is no longer needed,
        // and a wrong one must not be resumed.
        let _ = fs::remove_file(&path);
    }
    let (id, inserted) = result.map_err(store_err)?;
    stored.count(id, inserted);
    Ok(())
}

fn tree(
    store: &Store,
    graph: &Graph,
    node: &Node,
    spec: &TreeSpec,
    origin: &Origin,
    stored: &mut Stored,
) -> Result<(), SoftwareError> {
    let key = &node.key;
    let what = described(node);
    let manifest_id = manifest_object(spec.manifest);
    let in_store = store
        .contains(&manifest_id)
        .map_err(|error| SoftwareError::Store {
            what: what.clone(),
            error: Box::new(error),
        })?;
    let tree_err = |error| SoftwareError::Tree {
        what: what.clone(),
        error: Box::new(error),
    };
    let manifest = if in_store {
        stored_manifest(store, spec.manifest).map_err(tree_err)?
    } else {
        let (path, downloaded) = fetch(store, graph, key, what.clone(), origin, None)?;
        let result = store_tree(store, spec, &what, &path);
        if downloaded {
            let _ = fs::remove_file(&path);
        }
        let manifest = result?;
        let (id, inserted) = store
            .insert_bytes(manifest_id.name(), &manifest.encode())
            .map_err(|error| SoftwareError::Store {
                what: what.clone(),
                error: Box::new(error),
            })?;
        stored.count(id, inserted);
        manifest
    };
    stored.objects.insert(manifest_id);
    for entry in &manifest.entries {
        if let TreeEntry::File {
            path,
            executable,
            content,
            ..
        } = entry
        {
            stored
                .objects
                .insert(file_object(path, *executable, *content));
        }
    }
    ensure_tree(store, spec.manifest).map_err(tree_err)?;
    Ok(())
}

/// Reads the tree at `path`, checks its hash, then stores its files.
fn store_tree(
    store: &Store,
    spec: &TreeSpec,
    what: &str,
    path: &Path,
) -> Result<TreeManifest, SoftwareError> {
    let tree_err = |error| SoftwareError::Tree {
        what: what.to_string(),
        error: Box::new(error),
    };
    let manifest = read_tree(path, None).map_err(tree_err)?;
    if manifest.digest() != spec.manifest {
        return Err(SoftwareError::TreeMismatch {
            what: what.to_string(),
            source_path: path.display().to_string(),
            declared: spec.manifest.to_string(),
            actual: manifest.digest().to_string(),
        });
    }
    let again = read_tree(path, Some(store)).map_err(tree_err)?;
    if again != manifest {
        return Err(tree_err(TreeError::Io {
            path: path.to_owned(),
            source: std::io::Error::other("it changed while it was being read; try again"),
        }));
    }
    Ok(manifest)
}

/// A local file with the bytes of `key`'s source, and whether it is a
/// download (to delete once stored).
fn fetch(
    store: &Store,
    graph: &Graph,
    key: &ResourceKey,
    what: String,
    origin: &Origin,
    blake3: Option<&str>,
) -> Result<(PathBuf, bool), SoftwareError> {
    let Some(source) = graph.sources.get(key) else {
        return Err(SoftwareError::NoSource { what });
    };
    if source == RUNNING_ARCHY {
        return match &origin.running {
            Some(path) => Ok((path.clone(), false)),
            None => Err(SoftwareError::NoSource { what }),
        };
    }
    let is_url = source.starts_with("https://") || source.starts_with("http://");
    if !is_url {
        let Some(root) = &origin.root else {
            return Err(SoftwareError::NoSource { what });
        };
        let joined = root.join(source);
        let path = joined
            .canonicalize()
            .map_err(|error| SoftwareError::Missing {
                what: what.clone(),
                path: joined.clone(),
                error,
            })?;
        let root = root.canonicalize().unwrap_or_else(|_| root.clone());
        if !path.starts_with(&root) {
            return Err(SoftwareError::OutsideRoot {
                what,
                source_path: source.clone(),
                root,
            });
        }
        return Ok((path, false));
    }
    let Some(download) = origin.download else {
        return Err(SoftwareError::Download {
            what,
            why: format!("{source} needs the network, and this build has none"),
        });
    };
    let mut urls: Vec<String> = blake3
        .map(|d| {
            origin
                .object_mirrors
                .iter()
                .map(|m| format!("{}/objects/{d}", m.trim_end_matches('/')))
                .collect()
        })
        .unwrap_or_default();
    urls.push(source.clone());
    let downloads = store.state_dir().downloads();
    fs::create_dir_all(&downloads).map_err(|error| SoftwareError::Missing {
        what: what.clone(),
        path: downloads.clone(),
        error,
    })?;
    // Named by what is fetched, so an interrupted download of the same
    // software resumes, and another's never mixes in.
    let dest = downloads.join(blake3::hash(source.as_bytes()).to_hex().as_str());
    download
        .download(&urls, &dest)
        .map_err(|why| SoftwareError::Download { what, why })?;
    Ok((dest, true))
}

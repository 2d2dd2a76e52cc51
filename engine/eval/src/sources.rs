//! What the evaluator may read: the node's Rhai sources and build contexts,
//! through this trait only (the evaluator itself never touches the file
//! system). Paths are *logical*: relative to the sources root, `/`-separated,
//! already checked to have no `..` and no leading `/`.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The largest Rhai file or build-context file read, so a stray huge file
/// fails clearly instead of filling memory.
pub const MAX_SOURCE_BYTES: u64 = 8 << 20;

/// Why a source could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SourceError {
    pub message: String,
    pub hint: Option<String>,
}

impl SourceError {
    fn new(message: impl Into<String>, hint: Option<&str>) -> Self {
        SourceError {
            message: message.into(),
            hint: hint.map(str::to_string),
        }
    }
}

/// One file of a build context: the graph's type, since the files travel
/// with the graph into the store.
pub use archy_graph::ContextFile;

/// Read access to the node's sources.
pub trait Sources: Send {
    /// The text of a Rhai file.
    fn read(&self, logical: &str) -> Result<String, SourceError>;
    /// Every file below a folder, sorted by path.
    fn read_tree(&self, logical: &str) -> Result<Vec<ContextFile>, SourceError>;
}

/// The sources on disk. Reads are confined to the node file's folder and
/// the root's `stdlib/` and `apps/`, after resolving symlinks, so a link
/// cannot reach outside them.
#[derive(Debug)]
pub struct FsSources {
    root: PathBuf,
    allowed: Vec<PathBuf>,
}

impl FsSources {
    /// `root` is the sources root; `node_dir` the logical folder of the node
    /// file (`""` when it sits at the root).
    pub fn new(root: &Path, node_dir: &str) -> io::Result<Self> {
        let root = fs::canonicalize(root)?;
        let mut allowed = vec![fs::canonicalize(root.join(node_dir))?];
        for lib in ["stdlib", "apps"] {
            if let Ok(p) = fs::canonicalize(root.join(lib)) {
                allowed.push(p);
            }
        }
        Ok(FsSources { root, allowed })
    }

    /// The real path of a logical path, refused when it leaves the roots.
    fn confined(&self, logical: &str) -> Result<PathBuf, SourceError> {
        let path = self.root.join(logical);
        let real = fs::canonicalize(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => SourceError::new(format!("{logical} does not exist"), None),
            _ => SourceError::new(format!("cannot read {logical}: {e}"), None),
        })?;
        if self.allowed.iter().any(|a| real.starts_with(a)) {
            Ok(real)
        } else {
            Err(SourceError::new(
                format!(
                    "{logical} leads to {}, outside the node's sources",
                    real.display()
                ),
                Some(
                    "a node may only read its own folder, stdlib/ and apps/; replace the symlink by the file itself",
                ),
            ))
        }
    }
}

fn read_limited(path: &Path, logical: &str) -> Result<Vec<u8>, SourceError> {
    let meta = fs::metadata(path)
        .map_err(|e| SourceError::new(format!("cannot read {logical}: {e}"), None))?;
    if meta.len() > MAX_SOURCE_BYTES {
        return Err(SourceError::new(
            format!("{logical} is larger than {MAX_SOURCE_BYTES} bytes"),
            None,
        ));
    }
    fs::read(path).map_err(|e| SourceError::new(format!("cannot read {logical}: {e}"), None))
}

impl Sources for FsSources {
    fn read(&self, logical: &str) -> Result<String, SourceError> {
        let real = self.confined(logical)?;
        if !real.is_file() {
            return Err(SourceError::new(format!("{logical} is not a file"), None));
        }
        String::from_utf8(read_limited(&real, logical)?)
            .map_err(|_| SourceError::new(format!("{logical} is not UTF-8 text"), None))
    }

    fn read_tree(&self, logical: &str) -> Result<Vec<ContextFile>, SourceError> {
        let real = self.confined(logical)?;
        if !real.is_dir() {
            return Err(SourceError::new(
                format!("{logical} is not a folder"),
                Some("`build` names a folder of the node's sources holding a Containerfile"),
            ));
        }
        let mut out = Vec::new();
        walk(&real, "", logical, &mut out)?;
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }
}

fn walk(
    dir: &Path,
    rel: &str,
    logical: &str,
    out: &mut Vec<ContextFile>,
) -> Result<(), SourceError> {
    let err = |e: io::Error| SourceError::new(format!("cannot read {logical}/{rel}: {e}"), None);
    for entry in fs::read_dir(dir).map_err(err)? {
        let entry = entry.map_err(err)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let child = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        let kind = entry.file_type().map_err(err)?;
        if kind.is_symlink() {
            return Err(SourceError::new(
                format!("{logical}/{child} is a symlink"),
                Some("build contexts hold plain files and folders only; copy the file in"),
            ));
        } else if kind.is_dir() {
            walk(&entry.path(), &child, logical, out)?;
        } else if kind.is_file() {
            let meta = entry.metadata().map_err(err)?;
            let bytes = read_limited(&entry.path(), &format!("{logical}/{child}"))?;
            out.push(ContextFile {
                path: child,
                executable: meta.permissions().mode() & 0o111 != 0,
                bytes,
            });
        }
    }
    Ok(())
}

/// Sources held in memory, for tests and for bundles already unpacked.
#[derive(Debug, Default, Clone)]
pub struct MemSources {
    pub files: BTreeMap<String, String>,
}

impl MemSources {
    pub fn with(mut self, path: &str, text: &str) -> Self {
        self.files.insert(path.to_string(), text.to_string());
        self
    }
}

impl Sources for MemSources {
    fn read(&self, logical: &str) -> Result<String, SourceError> {
        self.files
            .get(logical)
            .cloned()
            .ok_or_else(|| SourceError::new(format!("{logical} does not exist"), None))
    }

    fn read_tree(&self, logical: &str) -> Result<Vec<ContextFile>, SourceError> {
        let prefix = format!("{logical}/");
        let out: Vec<ContextFile> = self
            .files
            .iter()
            .filter_map(|(p, text)| {
                p.strip_prefix(&prefix).map(|rel| ContextFile {
                    path: rel.to_string(),
                    executable: false,
                    bytes: text.as_bytes().to_vec(),
                })
            })
            .collect();
        if out.is_empty() {
            return Err(SourceError::new(format!("{logical} is not a folder"), None));
        }
        Ok(out)
    }
}

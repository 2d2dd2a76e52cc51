//! Publishing a release's software beside its bundle: each store object the
//! release's node needs becomes `objects/<blake3>` in the bundle's folder,
//! once per content however many names it has and however many releases
//! share it, so a mirror holds each piece of software once and a node
//! downloads only what its store lacks.
//!
//! A file already there is kept when its content hashes to its name (the
//! next release reuses it); anything else is written through a temp file
//! and a rename, so a mirror syncing the folder never sees half an object.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::OtaError;
use crate::manifest::{OBJECTS_DIR, ObjectEntry};

/// A store object to publish: its store name and a file with its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackObject {
    /// The name the node's build looks it up by (`validator+x`).
    pub name: String,
    pub path: PathBuf,
}

/// What [`publish`] listed and wrote.
#[derive(Debug, Default)]
pub(crate) struct Published {
    /// Sorted by blake3 and name, for the manifest.
    pub entries: Vec<ObjectEntry>,
    /// Distinct contents (files under `objects/`).
    pub files: usize,
    /// Their total size.
    pub bytes: u64,
    /// Files that were not there before.
    pub written: usize,
}

/// Publishes `objects` into `<dir>/objects/` and lists them.
pub(crate) fn publish(dir: &Path, objects: &[PackObject]) -> Result<Published, OtaError> {
    let mut published = Published::default();
    if objects.is_empty() {
        return Ok(published);
    }
    // Every name first: a refused release writes nothing.
    for object in objects {
        archy_store::ObjectName::try_from(object.name.as_str()).map_err(|e| {
            OtaError::InvalidSource {
                path: object.path.clone(),
                reason: format!("its object name is not one a store holds ({e})"),
            }
        })?;
    }
    let objects_dir = dir.join(OBJECTS_DIR);
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(&objects_dir)
        .map_err(|e| OtaError::io("create", &objects_dir, e))?;
    // blake3 -> size of the contents published by this run.
    let mut done: BTreeMap<String, u64> = BTreeMap::new();
    for object in objects {
        let (blake3, size) = hash_file(&object.path)?;
        if !done.contains_key(&blake3) {
            if place(&objects_dir, &object.path, &blake3)? {
                published.written += 1;
            }
            published.bytes += size;
            done.insert(blake3.clone(), size);
        }
        published.entries.push(ObjectEntry {
            blake3,
            name: object.name.clone(),
            size,
        });
    }
    sync(&objects_dir)?;
    published.entries.sort();
    published.entries.dedup();
    published.files = done.len();
    Ok(published)
}

/// Makes `<objects_dir>/<blake3>` hold `src`'s bytes; whether it wrote it.
pub(crate) fn place(objects_dir: &Path, src: &Path, blake3: &str) -> Result<bool, OtaError> {
    let target = objects_dir.join(blake3);
    if target.is_file() && hash_file(&target)?.0 == blake3 {
        return Ok(false);
    }
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{blake3}."))
        .suffix(".tmp")
        .tempfile_in(objects_dir)
        .map_err(|e| OtaError::io("create a temporary file in", objects_dir, e))?;
    let mut source = File::open(src).map_err(|e| OtaError::io("open", src, e))?;
    let mut hasher = blake3::Hasher::new();
    {
        let mut out = BufWriter::new(tmp.as_file());
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = match source.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(OtaError::io("read", src, e)),
            };
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n])
                .map_err(|e| OtaError::io("write", tmp.path(), e))?;
        }
        out.flush()
            .map_err(|e| OtaError::io("write", tmp.path(), e))?;
    }
    if hasher.finalize().to_hex().as_str() != blake3 {
        return Err(OtaError::InvalidSource {
            path: src.to_path_buf(),
            reason: "it changed while it was being published; build the release again".to_string(),
        });
    }
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o644))
        .map_err(|e| OtaError::io("set the permissions of", tmp.path(), e))?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| OtaError::io("write", tmp.path(), e))?;
    tmp.persist(&target)
        .map_err(|e| OtaError::io("move the finished object to", &target, e.error))?;
    Ok(true)
}

/// blake3 (hex) and size of a file.
pub(crate) fn hash_file(path: &Path) -> Result<(String, u64), OtaError> {
    let mut file = File::open(path).map_err(|e| OtaError::io("open", path, e))?;
    let mut hasher = blake3::Hasher::new();
    let size = io::copy(&mut file, &mut hasher).map_err(|e| OtaError::io("read", path, e))?;
    Ok((hasher.finalize().to_hex().to_string(), size))
}

fn sync(dir: &Path) -> Result<(), OtaError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| OtaError::io("sync the folder", dir, e))
}

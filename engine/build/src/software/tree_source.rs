//! Reading a tree's source (a folder, or a `.tar`, `.tar.gz` or `.tar.zst`
//! archive) into its normalized manifest, and its files into the store.
//!
//! Normalization keeps paths, file contents, the execute bit and links
//! that stay inside the tree; it drops modes, owners, times and setuid
//! bits. What cannot be made safe is refused with the path named: a link
//! out of the tree, a device, a fifo or socket, a path with `..`.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use archy_graph::Digest;
use archy_graph::resource::{clean_object_name, software_object_name};
use archy_graph::tree::{TreeEntry, TreeManifest, link_stays_inside};
use archy_store::{Expected, ObjectId, ObjectName, Store};

/// Why a tree's source cannot become a tree.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    #[error("cannot read {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{}: {entry:?} {why}", origin.display())]
    Refused {
        origin: PathBuf,
        entry: String,
        why: &'static str,
    },
    #[error(transparent)]
    Store(#[from] archy_store::StoreError),
}

/// The store object a tree file's bytes are kept in.
pub fn file_object(path: &str, executable: bool, content: Digest) -> ObjectId {
    let base = clean_object_name(path.rsplit('/').next().unwrap_or(path));
    let name = software_object_name(&base, executable);
    ObjectId::new(
        content,
        ObjectName::try_from(name.as_str()).unwrap_or_else(|_| {
            ObjectName::try_from("file").unwrap_or_else(|e| unreachable!("{e}"))
        }),
    )
}

/// Reads `source` into its manifest. With `store`, also stores every
/// file (each checked against the content the first pass found: a source
/// that changed in between is refused).
pub fn read_tree(source: &Path, store: Option<&Store>) -> Result<TreeManifest, TreeError> {
    let io_err = |e| TreeError::Io {
        path: source.to_owned(),
        source: e,
    };
    let meta = fs::metadata(source).map_err(io_err)?;
    let mut entries = Entries::new(source);
    if meta.is_dir() {
        walk(source, "", &mut entries, store)?;
    } else {
        read_archive(source, &mut entries, store)?;
    }
    entries.finish()
}

struct Entries<'a> {
    source: &'a Path,
    by_path: BTreeMap<String, TreeEntry>,
}

impl<'a> Entries<'a> {
    fn new(source: &'a Path) -> Self {
        Entries {
            source,
            by_path: BTreeMap::new(),
        }
    }

    fn refuse(&self, entry: &str, why: &'static str) -> TreeError {
        TreeError::Refused {
            origin: self.source.to_owned(),
            entry: entry.to_string(),
            why,
        }
    }

    /// Adds `entry` and every folder above it (an archive may list a file
    /// without its folders).
    fn add(&mut self, entry: TreeEntry) -> Result<(), TreeError> {
        let path = entry.path().to_string();
        let mut at = path.as_str();
        while let Some((parent, _)) = at.rsplit_once('/') {
            match self.by_path.get(parent) {
                Some(TreeEntry::Dir { .. }) => {}
                Some(_) => return Err(self.refuse(&path, "lies inside a file or link of the tree")),
                None => {
                    self.by_path.insert(
                        parent.to_string(),
                        TreeEntry::Dir {
                            path: parent.to_string(),
                        },
                    );
                }
            }
            at = parent;
        }
        if matches!(self.by_path.get(&path), Some(TreeEntry::Dir { .. }))
            && !matches!(entry, TreeEntry::Dir { .. })
        {
            return Err(self.refuse(&path, "is both a folder and a file"));
        }
        self.by_path.insert(path, entry);
        Ok(())
    }

    fn finish(self) -> Result<TreeManifest, TreeError> {
        Ok(TreeManifest::new(self.by_path.into_values().collect()))
    }
}

/// Hashes a file's bytes, or stores them when `store` is given (checked
/// against `known`, what the first pass hashed).
fn take_file(
    reader: &mut impl Read,
    path: &str,
    origin: &Path,
    executable: bool,
    store: Option<&Store>,
    known: Option<(Digest, u64)>,
) -> Result<(Digest, u64), TreeError> {
    match (store, known) {
        (Some(store), Some((digest, size))) => {
            let id = file_object(path, executable, digest);
            if !store.contains(&id)? {
                store.insert_reader_checked(
                    id.name(),
                    reader,
                    origin,
                    &Expected::Blake3(digest),
                    executable,
                )?;
            }
            Ok((digest, size))
        }
        _ => {
            let mut hasher = blake3::Hasher::new();
            let size = io::copy(reader, &mut hasher).map_err(|e| TreeError::Io {
                path: origin.to_owned(),
                source: e,
            })?;
            Ok((hasher.finalize().into(), size))
        }
    }
}

fn walk(
    dir: &Path,
    rel: &str,
    entries: &mut Entries,
    store: Option<&Store>,
) -> Result<(), TreeError> {
    let io_err = |p: &Path, e| TreeError::Io {
        path: p.to_owned(),
        source: e,
    };
    let mut names: Vec<_> = fs::read_dir(dir)
        .map_err(|e| io_err(dir, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| io_err(dir, e))?;
    names.sort_by_key(|e| e.file_name());
    for item in names {
        let host = item.path();
        let Some(name) = item.file_name().to_str().map(str::to_string) else {
            return Err(entries.refuse(&host.display().to_string(), "is not a UTF-8 name"));
        };
        let path = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        let meta = fs::symlink_metadata(&host).map_err(|e| io_err(&host, e))?;
        let kind = meta.file_type();
        if kind.is_dir() {
            entries.add(TreeEntry::Dir { path: path.clone() })?;
            walk(&host, &path, entries, store)?;
        } else if kind.is_file() {
            let executable = meta.permissions().mode() & 0o111 != 0;
            let mut file = File::open(&host).map_err(|e| io_err(&host, e))?;
            let (content, size) = take_file(&mut file, &path, &host, executable, None, None)?;
            if let Some(store) = store {
                let mut file = File::open(&host).map_err(|e| io_err(&host, e))?;
                take_file(
                    &mut file,
                    &path,
                    &host,
                    executable,
                    Some(store),
                    Some((content, size)),
                )?;
            }
            entries.add(TreeEntry::File {
                path,
                executable,
                content,
                size,
            })?;
        } else if kind.is_symlink() {
            let target = fs::read_link(&host).map_err(|e| io_err(&host, e))?;
            let target = target.to_string_lossy().into_owned();
            if !link_stays_inside(&path, &target) {
                return Err(entries.refuse(&path, "links out of the tree"));
            }
            entries.add(TreeEntry::Link { path, target })?;
        } else {
            return Err(entries.refuse(&path, "is a device, fifo or socket"));
        }
    }
    Ok(())
}

/// Opens an archive, uncompressed by its first bytes (gzip, zstd or none).
fn open_archive(source: &Path) -> Result<Box<dyn Read>, TreeError> {
    let io_err = |e| TreeError::Io {
        path: source.to_owned(),
        source: e,
    };
    let mut file = BufReader::new(File::open(source).map_err(io_err)?);
    let mut magic = [0u8; 4];
    let n = {
        use std::io::BufRead;
        let buf = file.fill_buf().map_err(io_err)?;
        let n = buf.len().min(4);
        magic[..n].copy_from_slice(&buf[..n]);
        n
    };
    Ok(if n >= 2 && magic[..2] == [0x1f, 0x8b] {
        Box::new(flate2::read::GzDecoder::new(file))
    } else if n == 4 && magic == [0x28, 0xb5, 0x2f, 0xfd] {
        Box::new(
            ruzstd::decoding::StreamingDecoder::new(file)
                .map_err(|e| io_err(io::Error::new(io::ErrorKind::InvalidData, e.to_string())))?,
        )
    } else {
        Box::new(file)
    })
}

/// The target an archive's link entry names.
fn link_name<R: Read>(entry: &tar::Entry<'_, R>) -> String {
    entry
        .link_name_bytes()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// Records a file of an archive, for the hard links after it and the
/// second pass.
fn add_file(
    entries: &mut Entries,
    seen: &mut BTreeMap<String, (Digest, u64, bool)>,
    path: String,
    (content, size, executable): (Digest, u64, bool),
) -> Result<(), TreeError> {
    seen.insert(path.clone(), (content, size, executable));
    entries.add(TreeEntry::File {
        path,
        executable,
        content,
        size,
    })
}

/// A relative path in an archive, cleaned: `./a/b/` is `a/b`; `None` for
/// the root itself. Absolute paths and `..` are refused.
fn archive_path(raw: &str, entries: &Entries) -> Result<Option<String>, TreeError> {
    if raw.starts_with('/') {
        return Err(entries.refuse(raw, "is an absolute path"));
    }
    let mut parts = Vec::new();
    for part in raw.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(entries.refuse(raw, "climbs out of the tree with `..`")),
            p => parts.push(p),
        }
    }
    Ok((!parts.is_empty()).then(|| parts.join("/")))
}

fn read_archive(
    source: &Path,
    entries: &mut Entries,
    store: Option<&Store>,
) -> Result<(), TreeError> {
    // The first pass hashes; the second (with a store) stores what the
    // first found, so nothing is stored before the tree's hash is checked.
    let io_err = |e| TreeError::Io {
        path: source.to_owned(),
        source: e,
    };
    let mut seen: BTreeMap<String, (Digest, u64, bool)> = BTreeMap::new();
    let mut archive = tar::Archive::new(open_archive(source)?);
    for entry in archive.entries().map_err(io_err)? {
        let mut entry = entry.map_err(io_err)?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let Some(path) = archive_path(&raw, entries)? else {
            continue;
        };
        let kind = entry.header().entry_type();
        let mode = entry.header().mode().unwrap_or(0o644);
        use tar::EntryType;
        match kind {
            EntryType::Directory => entries.add(TreeEntry::Dir { path })?,
            EntryType::Regular | EntryType::Continuous => {
                if seen.contains_key(&path) {
                    return Err(entries.refuse(&path, "is listed twice in the archive"));
                }
                let executable = mode & 0o111 != 0;
                let (content, size) = take_file(&mut entry, &path, source, executable, None, None)?;
                add_file(entries, &mut seen, path, (content, size, executable))?;
            }
            EntryType::Symlink => {
                let target = link_name(&entry);
                if !link_stays_inside(&path, &target) {
                    return Err(entries.refuse(&path, "links out of the tree"));
                }
                entries.add(TreeEntry::Link { path, target })?;
            }
            EntryType::Link => {
                // A hard link: the same bytes as a file listed before it.
                let target = archive_path(&link_name(&entry), entries)?.unwrap_or_default();
                let Some(&(content, size, executable)) = seen.get(&target) else {
                    return Err(entries.refuse(
                        &path,
                        "is a hard link to a file the archive does not have before it",
                    ));
                };
                add_file(entries, &mut seen, path, (content, size, executable))?;
            }
            EntryType::XGlobalHeader
            | EntryType::XHeader
            | EntryType::GNULongName
            | EntryType::GNULongLink => {}
            _ => return Err(entries.refuse(&path, "is a device, fifo or other special file")),
        }
    }
    let Some(store) = store else { return Ok(()) };
    let mut archive = tar::Archive::new(open_archive(source)?);
    for entry in archive.entries().map_err(io_err)? {
        let mut entry = entry.map_err(io_err)?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let Some(path) = archive_path(&raw, entries)? else {
            continue;
        };
        if !matches!(
            entry.header().entry_type(),
            tar::EntryType::Regular | tar::EntryType::Continuous
        ) {
            continue;
        }
        let Some(&(content, size, executable)) = seen.get(&path) else {
            continue;
        };
        take_file(
            &mut entry,
            &path,
            source,
            executable,
            Some(store),
            Some((content, size)),
        )?;
    }
    Ok(())
}

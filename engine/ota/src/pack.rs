//! Packing a node source folder into a signed bundle. The tarball is
//! byte-for-byte reproducible: entries in sorted order, fixed ownership,
//! times and modes, a fixed gzip header and level. Anything a node would
//! extract wrongly (links, special files, odd names, oversized files) is
//! refused here, on the publisher's machine, rather than at the node.
//!
//! Software objects (see [`crate::manifest`]) are published first, into
//! `objects/` beside the bundle, and listed in its manifest: a bundle is
//! never on disk before every object it names.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use flate2::{Compression, GzBuilder};
use semver::Version;

use crate::error::OtaError;
use crate::keys::SigningKey;
use crate::manifest::{
    FORMAT, FORMAT_OBJECTS, FileEntry, MANIFEST_NAME, MODE_DIR, MODE_EXEC, MODE_FILE, Manifest,
    ReleaseInfo, check_channel, check_rel_path, objects_min_archy,
};
use crate::publish::{self, PackObject};
use crate::unpack::Limits;
use crate::verify::sign_file;

/// The folders of a node source tree that go into a bundle, besides
/// `node.rhai`.
const TREES: [&str; 2] = ["stdlib", "apps"];
/// Fixed so the same tree gives the same bytes on every machine.
const GZIP_LEVEL: u32 = 9;
/// gzip's "unknown OS" byte: the bundle should not say where it was made.
const GZIP_OS_UNKNOWN: u8 = 255;

#[derive(Debug)]
pub struct PackRequest<'a> {
    pub src: &'a Path,
    pub key: &'a SigningKey,
    pub version: Version,
    pub channel: String,
    pub min_archy: Version,
    /// Where the bundle goes; must end in `.tar.gz`. The signature goes
    /// next to it, with `.minisig` appended.
    pub out: &'a Path,
    /// The software the release's node needs, published as
    /// `objects/<blake3>` beside `out` and listed in the manifest.
    pub objects: &'a [PackObject],
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackReport {
    pub bundle: PathBuf,
    pub signature: PathBuf,
    /// Regular files packed (directories not counted).
    pub files: usize,
    /// Size of the `.tar.gz`.
    pub bytes: u64,
    /// blake3 of the `.tar.gz`, hex.
    pub blake3: String,
    /// The software objects listed (one file per distinct blake3).
    pub objects: usize,
    /// Their total size, each distinct content once.
    pub object_bytes: u64,
    /// Of those files, how many were not beside the bundle before.
    pub objects_written: usize,
    /// The oldest archy that may install it, as signed: a release with
    /// software needs one that reads it.
    pub min_archy: Version,
}

/// Packs with the default [`Limits`], the same a node unpacks with.
pub fn build(req: &PackRequest) -> Result<PackReport, OtaError> {
    build_with_limits(req, &Limits::default())
}

/// Packs, refusing what a node with these limits would refuse.
pub fn build_with_limits(req: &PackRequest, limits: &Limits) -> Result<PackReport, OtaError> {
    let signature = signature_path(req.out)?;
    check_channel(&req.channel).map_err(|reason| OtaError::InvalidRequest { reason })?;
    let items = walk::collect(req.src, limits)?;
    let dir = parent_dir(req.out);
    let published = publish::publish(&dir, req.objects)?;
    let min_archy = if published.entries.is_empty() {
        req.min_archy.clone()
    } else {
        // An archy that cannot read the objects refuses the release up
        // front ("needs archy N") rather than failing to unpack it.
        req.min_archy.clone().max(objects_min_archy())
    };
    let manifest = Manifest {
        format: if published.entries.is_empty() {
            FORMAT
        } else {
            FORMAT_OBJECTS
        },
        version: req.version.clone(),
        min_archy: min_archy.clone(),
        channel: req.channel.clone(),
        files: items
            .iter()
            .filter_map(|item| match &item.kind {
                walk::Kind::File(file) => Some((item.rel.clone(), file.entry.clone())),
                walk::Kind::Dir => None,
            })
            .collect(),
        objects: published.entries,
    };
    let (bundle_tmp, bytes, blake3) = write_tarball(&dir, req.out, &manifest, &items)?;
    let info = ReleaseInfo {
        version: req.version.clone(),
        channel: req.channel.clone(),
        min_archy: min_archy.clone(),
        size: bytes,
        blake3: blake3.clone(),
    };
    let sig_text = sign_file(bundle_tmp.path(), req.key, &info.to_comment())?;
    let sig_tmp = temp_in(&dir, &signature)?;
    write_all_synced(sig_tmp.as_file(), sig_text.as_bytes(), sig_tmp.path())?;
    persist(bundle_tmp, req.out)?;
    if let Err(e) = persist(sig_tmp, &signature) {
        // A bundle without its signature is useless and would confuse the
        // next publish: take it back.
        let _ = fs::remove_file(req.out);
        return Err(e);
    }
    Ok(PackReport {
        bundle: req.out.to_path_buf(),
        signature,
        files: manifest.files.len(),
        bytes,
        blake3,
        objects: published.files,
        object_bytes: published.bytes,
        objects_written: published.written,
        min_archy,
    })
}

fn signature_path(out: &Path) -> Result<PathBuf, OtaError> {
    let name = out.file_name().map(|n| n.as_bytes()).unwrap_or_default();
    if name.len() <= ".tar.gz".len() || !name.ends_with(b".tar.gz") {
        return Err(OtaError::InvalidRequest {
            reason: format!(
                "the bundle path {} must end in .tar.gz (for example archy-1.2.0.tar.gz)",
                out.display()
            ),
        });
    }
    let mut sig = out.as_os_str().to_owned();
    sig.push(".minisig");
    Ok(PathBuf::from(sig))
}

pub(crate) fn parent_dir(out: &Path) -> PathBuf {
    match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// A temp file next to `target`, so the final rename stays in one
/// filesystem and is atomic. Removed on drop unless persisted.
fn temp_in(dir: &Path, target: &Path) -> Result<tempfile::NamedTempFile, OtaError> {
    let stem = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{stem}."))
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| OtaError::io("create a temporary file in", dir, e))?;
    // Bundles are published: readable by everyone, like any release file.
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o644))
        .map_err(|e| OtaError::io("set the permissions of", tmp.path(), e))?;
    Ok(tmp)
}

fn persist(tmp: tempfile::NamedTempFile, target: &Path) -> Result<(), OtaError> {
    tmp.persist(target)
        .map(drop)
        .map_err(|e| OtaError::io("move the finished file to", target, e.error))
}

fn write_all_synced(mut file: &File, bytes: &[u8], path: &Path) -> Result<(), OtaError> {
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| OtaError::io("write", path, e))
}

/// Writes the tarball into a temp file; returns it with its size and hash.
fn write_tarball(
    dir: &Path,
    out: &Path,
    manifest: &Manifest,
    items: &[walk::Item],
) -> Result<(tempfile::NamedTempFile, u64, String), OtaError> {
    let tmp = temp_in(dir, out)?;
    let write_err = |e: io::Error| OtaError::io("write the bundle", tmp.path(), e);
    let counted = HashingWriter {
        inner: BufWriter::new(tmp.as_file()),
        hasher: blake3::Hasher::new(),
        bytes: 0,
    };
    let gz = GzBuilder::new()
        .mtime(0)
        .operating_system(GZIP_OS_UNKNOWN)
        .write(counted, Compression::new(GZIP_LEVEL));
    let mut tar = tar::Builder::new(gz);
    let json = manifest.to_json()?;
    let mut header = fixed_header(tar::EntryType::Regular, MODE_FILE, json.len() as u64);
    tar.append_data(&mut header, MANIFEST_NAME, json.as_slice())
        .map_err(write_err)?;
    for item in items {
        match &item.kind {
            walk::Kind::Dir => {
                let mut header = fixed_header(tar::EntryType::Directory, MODE_DIR, 0);
                tar.append_data(&mut header, format!("{}/", item.rel), io::empty())
                    .map_err(write_err)?;
            }
            walk::Kind::File(file) => append_file(&mut tar, item, file)?,
        }
    }
    let gz = tar.into_inner().map_err(write_err)?;
    let mut counted = gz.finish().map_err(write_err)?;
    counted.inner.flush().map_err(write_err)?;
    let (bytes, hash) = (
        counted.bytes,
        counted.hasher.finalize().to_hex().to_string(),
    );
    drop(counted);
    tmp.as_file().sync_all().map_err(write_err)?;
    Ok((tmp, bytes, hash))
}

/// A header with everything but type, mode and size fixed: no owner, no
/// names, no time, so the bytes depend on the content only.
fn fixed_header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_size(size);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header
}

fn append_file<W: Write>(
    tar: &mut tar::Builder<W>,
    item: &walk::Item,
    file: &walk::SourceFile,
) -> Result<(), OtaError> {
    let source = open_regular(&file.path)?;
    let mut reader = CheckedReader {
        inner: source.take(file.entry.size),
        hasher: blake3::Hasher::new(),
        read: 0,
        expected: file.entry.size,
    };
    let mut header = fixed_header(tar::EntryType::Regular, file.entry.mode, file.entry.size);
    tar.append_data(&mut header, &item.rel, &mut reader)
        .map_err(|e| OtaError::InvalidSource {
            path: file.path.clone(),
            reason: format!("it could not be read into the bundle ({e})"),
        })?;
    let mut rest = [0u8; 1];
    let grew = reader.inner.into_inner().read(&mut rest).unwrap_or(0) > 0;
    if grew || reader.hasher.finalize().to_hex().as_str() != file.entry.blake3 {
        return Err(OtaError::InvalidSource {
            path: file.path.clone(),
            reason:
                "it changed while it was being packed; pack again when nothing writes to the folder"
                    .to_string(),
        });
    }
    Ok(())
}

/// Opens a regular file without following a symlink that replaced it
/// since the walk looked at it.
pub(crate) fn open_regular(path: &Path) -> Result<File, OtaError> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)
        .map_err(|e| OtaError::io("open", path, e))?;
    let meta = file
        .metadata()
        .map_err(|e| OtaError::io("inspect", path, e))?;
    if !meta.is_file() {
        return Err(OtaError::InvalidSource {
            path: path.to_path_buf(),
            reason: "it stopped being a regular file while it was being packed; pack again"
                .to_string(),
        });
    }
    Ok(file)
}

/// Counts and hashes what it passes on: the bundle's size and blake3 come
/// out of the same pass that writes it.
struct HashingWriter<W> {
    inner: W,
    hasher: blake3::Hasher,
    bytes: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Feeds a file into the tar and errors if it is shorter than the size
/// already written into the header (a short entry would corrupt the
/// archive), hashing it so a changed file is caught.
struct CheckedReader<R> {
    inner: R,
    hasher: blake3::Hasher,
    read: u64,
    expected: u64,
}

impl<R: Read> Read for CheckedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && self.read < self.expected {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file shrank while it was being packed",
            ));
        }
        self.hasher.update(&buf[..n]);
        self.read += n as u64;
        Ok(n)
    }
}

/// Walking the source folder and deciding what goes in.
mod walk {
    use super::*;

    #[derive(Debug)]
    pub(super) struct Item {
        /// Relative, `/`-separated, checked by `check_rel_path`.
        pub rel: String,
        pub kind: Kind,
    }

    #[derive(Debug)]
    pub(super) enum Kind {
        Dir,
        File(SourceFile),
    }

    #[derive(Debug)]
    pub(super) struct SourceFile {
        pub path: PathBuf,
        pub entry: FileEntry,
    }

    struct Walk<'l> {
        limits: &'l Limits,
        items: Vec<Item>,
        total: u64,
    }

    /// Everything to pack, sorted by path (so parents precede children).
    pub(super) fn collect(src: &Path, limits: &Limits) -> Result<Vec<Item>, OtaError> {
        let meta =
            fs::metadata(src).map_err(|e| OtaError::io("open the node source folder", src, e))?;
        if !meta.is_dir() {
            return Err(OtaError::InvalidSource {
                path: src.to_path_buf(),
                reason: "it is not a folder; point it at a node source folder (one with node.rhai at its top)".to_string(),
            });
        }
        let mut walk = Walk {
            limits,
            items: Vec::new(),
            total: 0,
        };
        let node = src.join("node.rhai");
        match fs::symlink_metadata(&node) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(OtaError::InvalidSource {
                    path: node,
                    reason: "the node source folder has no node.rhai; point it at a node source folder (one with node.rhai at its top)".to_string(),
                });
            }
            Err(e) => return Err(OtaError::io("inspect", &node, e)),
            Ok(meta) => walk.visit(&node, "node.rhai".to_string(), &meta)?,
        }
        for tree in TREES {
            let path = src.join(tree);
            match fs::symlink_metadata(&path) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(OtaError::io("inspect", &path, e)),
                Ok(meta) => walk.visit(&path, tree.to_string(), &meta)?,
            }
        }
        // +1: the manifest is an entry too, and a node counts it.
        if walk.items.len() + 1 > limits.max_entries {
            return Err(OtaError::TooLarge {
                what: format!(
                    "the node source folder {} with {} files and folders",
                    src.display(),
                    walk.items.len()
                ),
                limit: limits.max_entries as u64,
                hint: "a node would refuse a bundle with that many entries; remove what the node does not need".to_string(),
            });
        }
        let mut items = walk.items;
        items.sort_by(|a, b| a.rel.as_bytes().cmp(b.rel.as_bytes()));
        Ok(items)
    }

    impl Walk<'_> {
        fn visit(&mut self, path: &Path, rel: String, meta: &fs::Metadata) -> Result<(), OtaError> {
            let refuse = |reason: String| OtaError::InvalidSource {
                path: path.to_path_buf(),
                reason,
            };
            let kind = meta.file_type();
            if kind.is_symlink() {
                let target = fs::read_link(path)
                    .map(|t| format!(" (to {})", t.display()))
                    .unwrap_or_default();
                return Err(refuse(format!(
                    "it is a symbolic link{target}, and bundles carry no links; replace it with a copy of what it points to"
                )));
            }
            if kind.is_dir() {
                self.items.push(Item {
                    rel: rel.clone(),
                    kind: Kind::Dir,
                });
                return self.visit_dir(path, &rel);
            }
            if !kind.is_file() {
                let what = if kind.is_fifo() {
                    "a named pipe (fifo)"
                } else if kind.is_socket() {
                    "a socket"
                } else if kind.is_char_device() {
                    "a character device"
                } else if kind.is_block_device() {
                    "a block device"
                } else {
                    "not a regular file"
                };
                return Err(refuse(format!(
                    "it is {what}, and bundles carry only files and folders; remove it"
                )));
            }
            let file = self.hash_file(path)?;
            self.items.push(Item {
                rel,
                kind: Kind::File(file),
            });
            Ok(())
        }

        fn visit_dir(&mut self, dir: &Path, rel: &str) -> Result<(), OtaError> {
            let listing = fs::read_dir(dir).map_err(|e| OtaError::io("list", dir, e))?;
            let mut children = Vec::new();
            for child in listing {
                let child = child.map_err(|e| OtaError::io("list", dir, e))?;
                children.push(child.file_name());
            }
            children.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
            for name in children {
                let path = dir.join(&name);
                let Some(name) = name.to_str() else {
                    return Err(OtaError::InvalidSource {
                        path,
                        reason: "its name is not valid UTF-8; rename it".to_string(),
                    });
                };
                let child_rel = format!("{rel}/{name}");
                if let Err(why) = check_rel_path(&child_rel) {
                    return Err(OtaError::InvalidSource {
                        path,
                        reason: format!("its bundle path {child_rel:?} {why}; rename it"),
                    });
                }
                let meta =
                    fs::symlink_metadata(&path).map_err(|e| OtaError::io("inspect", &path, e))?;
                self.visit(&path, child_rel, &meta)?;
            }
            Ok(())
        }

        fn hash_file(&mut self, path: &Path) -> Result<SourceFile, OtaError> {
            let file = open_regular(path)?;
            let mode = file
                .metadata()
                .map_err(|e| OtaError::io("inspect", path, e))?
                .permissions()
                .mode();
            let mut hasher = blake3::Hasher::new();
            let mut limited = file.take(self.limits.max_file + 1);
            let size =
                io::copy(&mut limited, &mut hasher).map_err(|e| OtaError::io("read", path, e))?;
            if size > self.limits.max_file {
                return Err(OtaError::TooLarge {
                    what: format!("the file {}", path.display()),
                    limit: self.limits.max_file,
                    hint: "a node would refuse it; keep large data out of the node source folder"
                        .to_string(),
                });
            }
            self.total += size;
            if self.total > self.limits.max_total {
                return Err(OtaError::TooLarge {
                    what: format!("the node source folder's total size (reached at {})", path.display()),
                    limit: self.limits.max_total,
                    hint: "a node would refuse the bundle; keep large data out of the node source folder".to_string(),
                });
            }
            Ok(SourceFile {
                path: path.to_path_buf(),
                entry: FileEntry {
                    blake3: hasher.finalize().to_hex().to_string(),
                    size,
                    // Any execute bit makes a script; everything else is data.
                    mode: if mode & 0o111 != 0 {
                        MODE_EXEC
                    } else {
                        MODE_FILE
                    },
                },
            })
        }
    }
}

//! Unpacking a verified bundle without trusting a byte of its layout. A
//! valid signature says who made the bundle, not that their tooling was
//! sound, so every entry is checked before anything is written: names,
//! types, modes, sizes, and each file against the manifest. Extraction
//! goes into a temp sibling of `dest` that is renamed into place only when
//! everything checked out; any error leaves nothing behind.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use flate2::read::GzDecoder;

use crate::error::OtaError;
use crate::manifest::{
    MANIFEST_NAME, MODE_DIR, MODE_EXEC, MODE_FILE, Manifest, check_bundle_root, check_rel_path,
};

/// The manifest lists every file and software object with a hash; 8 MiB is
/// tens of thousands of them, far beyond any node.
const MAX_MANIFEST: u64 = 8 * 1024 * 1024;
/// A GNU long name longer than this is not a path `pack` writes.
const MAX_LONG_NAME: u64 = 4096;
/// Per entry, what the tar format adds on top of content: a header, a
/// possible long-name header with its name, and padding.
const ENTRY_OVERHEAD: u64 = 512 + 512 + MAX_LONG_NAME + 2 * 512;

/// How much a bundle may hold. A node refuses bundles beyond these, and
/// `pack` refuses to make them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest single file, in bytes.
    pub max_file: u64,
    /// Largest sum of file sizes, in bytes.
    pub max_total: u64,
    /// Most entries (files, directories and the manifest).
    pub max_entries: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_file: 64 * 1024 * 1024,
            max_total: 256 * 1024 * 1024,
            max_entries: 10_000,
        }
    }
}

/// Unpacks `bundle` (already verified) into `dest`, which must not exist.
/// Returns the bundle's manifest; every file it lists is in `dest` with
/// the listed content and mode, and nothing else is.
pub fn unpack(bundle: &Path, dest: &Path, limits: &Limits) -> Result<Manifest, OtaError> {
    if fs::symlink_metadata(dest).is_ok() {
        return Err(OtaError::DestExists {
            path: dest.to_path_buf(),
        });
    }
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let stem = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{stem}.unpack."))
        .tempdir_in(&parent)
        .map_err(|e| OtaError::io("create a temporary folder in", &parent, e))?;
    let mut extractor = Extractor {
        bundle,
        root: tmp.path(),
        limits,
        manifest: None,
        seen: BTreeMap::new(),
        total: 0,
        entries: 0,
    };
    // On any error `tmp` is dropped here and takes the partial tree along.
    let manifest = extractor.run()?;
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(MODE_DIR))
        .map_err(|e| OtaError::io("set the permissions of", tmp.path(), e))?;
    sync_dir(tmp.path())?;
    let staged = tmp.keep();
    if let Err(e) = rename_noreplace(&staged, dest) {
        let _ = fs::remove_dir_all(&staged);
        return Err(e);
    }
    sync_dir(&parent)?;
    Ok(manifest)
}

/// Reads only the manifest of a verified bundle (its first entry): what a
/// release carries, without unpacking it.
pub fn read_manifest(bundle: &Path) -> Result<Manifest, OtaError> {
    let file = File::open(bundle).map_err(|e| OtaError::io("open the bundle", bundle, e))?;
    let mut archive = tar::Archive::new(GzDecoder::new(BufReader::new(file)));
    let corrupt_bundle = |e: io::Error| OtaError::Corrupt {
        path: bundle.to_path_buf(),
        reason: e.to_string(),
    };
    let mut entries = archive.entries().map_err(corrupt_bundle)?.raw(true);
    let Some(entry) = entries.next() else {
        return Err(OtaError::Manifest {
            reason: "the bundle is empty".to_string(),
        });
    };
    let mut entry = entry.map_err(corrupt_bundle)?;
    let name = String::from_utf8_lossy(&entry.header().path_bytes()).into_owned();
    if name != MANIFEST_NAME || !entry.header().entry_type().is_file() {
        return Err(OtaError::Manifest {
            reason: format!("the bundle's first entry is {name:?}, not the file {MANIFEST_NAME}"),
        });
    }
    let size = entry_size(&entry, &name)?;
    if size > MAX_MANIFEST {
        return Err(OtaError::Manifest {
            reason: format!("it is {size} bytes, more than the {MAX_MANIFEST} a manifest may have"),
        });
    }
    let mut json = Vec::new();
    entry
        .read_to_end(&mut json)
        .map_err(|e| corrupt(bundle, &name, e))?;
    Manifest::parse(&json)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    Dir,
    File,
}

struct Extractor<'a> {
    bundle: &'a Path,
    root: &'a Path,
    limits: &'a Limits,
    manifest: Option<Manifest>,
    seen: BTreeMap<String, Seen>,
    total: u64,
    entries: usize,
}

impl Extractor<'_> {
    fn run(&mut self) -> Result<Manifest, OtaError> {
        let file =
            File::open(self.bundle).map_err(|e| OtaError::io("open the bundle", self.bundle, e))?;
        // Counts decompressed bytes, so a gzip bomb stops at the limit
        // whatever the tar headers claim.
        let hit = Rc::new(Cell::new(false));
        let budget = self.limits.max_total
            + MAX_MANIFEST
            + (self.limits.max_entries as u64 + 2) * ENTRY_OVERHEAD;
        let reader = Bounded {
            inner: GzDecoder::new(BufReader::new(file)),
            left: budget,
            hit: Rc::clone(&hit),
        };
        let mut archive = tar::Archive::new(reader);
        // Raw: long names are handled here, with a bound, and pax headers
        // (which pack never writes) are refused instead of interpreted.
        let entries = archive
            .entries()
            .map_err(|e| self.read_error(e, &hit, budget))?
            .raw(true);
        let mut long_name: Option<Vec<u8>> = None;
        for entry in entries {
            let mut entry = entry.map_err(|e| self.read_error(e, &hit, budget))?;
            if entry.header().entry_type().is_gnu_longname() {
                long_name =
                    Some(self.read_long_name(&mut entry, long_name.is_some(), &hit, budget)?);
                continue;
            }
            let raw_name = match long_name.take() {
                Some(name) => name,
                None => entry.header().path_bytes().into_owned(),
            };
            self.entries += 1;
            if self.entries > self.limits.max_entries {
                return Err(OtaError::TooLarge {
                    what: "the bundle's number of entries".to_string(),
                    limit: self.limits.max_entries as u64,
                    hint: "do not install this bundle".to_string(),
                });
            }
            self.entry(&mut entry, &raw_name)
                .map_err(|e| self.budget_error(e, &hit, budget))?;
        }
        if long_name.is_some() {
            return Err(OtaError::Corrupt {
                path: self.bundle.to_path_buf(),
                reason: "it ends with a long name that names no entry".to_string(),
            });
        }
        let Some(manifest) = self.manifest.take() else {
            return Err(OtaError::Manifest {
                reason: "the bundle is empty".to_string(),
            });
        };
        let missing: Vec<String> = manifest
            .files
            .keys()
            .filter(|path| self.seen.get(*path) != Some(&Seen::File))
            .cloned()
            .collect();
        if !missing.is_empty() {
            return Err(OtaError::MissingFiles { missing });
        }
        Ok(manifest)
    }

    fn read_long_name<R: Read>(
        &self,
        entry: &mut tar::Entry<'_, R>,
        pending: bool,
        hit: &Cell<bool>,
        budget: u64,
    ) -> Result<Vec<u8>, OtaError> {
        let unsafe_entry = |reason: &str| OtaError::UnsafeEntry {
            entry: "(GNU long name)".to_string(),
            reason: reason.to_string(),
        };
        if pending {
            return Err(unsafe_entry(
                "follows another long name; one entry has one name",
            ));
        }
        let size = entry
            .header()
            .entry_size()
            .map_err(|e| self.read_error(e, hit, budget))?;
        if size > MAX_LONG_NAME {
            return Err(unsafe_entry(&format!(
                "is {size} bytes, longer than any path a bundle holds"
            )));
        }
        let mut name = Vec::new();
        entry
            .read_to_end(&mut name)
            .map_err(|e| self.read_error(e, hit, budget))?;
        while name.last() == Some(&0) {
            name.pop();
        }
        Ok(name)
    }

    fn entry<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        raw_name: &[u8],
    ) -> Result<(), OtaError> {
        let header = entry.header();
        let kind = header.entry_type();
        let name = entry_name(raw_name, kind.is_dir())?;
        let mode = header
            .mode()
            .map_err(|e| unsafe_entry(&name, &format!("has an unreadable mode ({e})")))?
            & 0o7777;
        if self.manifest.is_none() {
            return self.manifest_entry(entry, &name);
        }
        if let Some(seen) = self.seen.get(&name) {
            let what = if *seen == Seen::Dir {
                "a directory"
            } else {
                "a file"
            };
            return Err(unsafe_entry(
                &name,
                &format!("appears twice in the bundle (it was already {what})"),
            ));
        }
        if name == MANIFEST_NAME {
            return Err(unsafe_entry(&name, "appears twice in the bundle"));
        }
        match kind {
            tar::EntryType::Directory => self.directory(entry, &name, mode),
            tar::EntryType::Regular => self.file(entry, &name, mode),
            _ => Err(unsafe_entry(&name, &refused_type(header, &name))),
        }
    }

    fn manifest_entry<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        name: &str,
    ) -> Result<(), OtaError> {
        if name != MANIFEST_NAME || !entry.header().entry_type().is_file() {
            return Err(OtaError::Manifest {
                reason: format!(
                    "the bundle's first entry is {name:?}, not the file {MANIFEST_NAME}"
                ),
            });
        }
        let size = entry_size(entry, name)?;
        if size > MAX_MANIFEST {
            return Err(OtaError::Manifest {
                reason: format!(
                    "it is {size} bytes, more than the {MAX_MANIFEST} a manifest may have"
                ),
            });
        }
        let mut json = Vec::new();
        entry
            .read_to_end(&mut json)
            .map_err(|e| corrupt(self.bundle, name, e))?;
        self.manifest = Some(Manifest::parse(&json)?);
        Ok(())
    }

    fn directory<R: Read>(
        &mut self,
        entry: &tar::Entry<'_, R>,
        name: &str,
        mode: u32,
    ) -> Result<(), OtaError> {
        // tar would skip a directory's "content" unread: refuse it instead,
        // so every byte of the bundle is either checked or refused.
        if entry_size(entry, name)? != 0 {
            return Err(unsafe_entry(name, "is a directory that carries content"));
        }
        if mode != MODE_DIR {
            return Err(unsafe_entry(
                name,
                &format!(
                    "is a directory with mode {mode:o}; bundles carry directories as 755 only"
                ),
            ));
        }
        check_bundle_root(name, true).map_err(|why| unsafe_entry(name, &why))?;
        self.check_parent(name)?;
        let path = self.root.join(name);
        fs::DirBuilder::new()
            .mode(MODE_DIR)
            .create(&path)
            .map_err(|e| OtaError::io("create the folder", &path, e))?;
        // The umask may have taken bits away; the mode is part of the tree.
        fs::set_permissions(&path, fs::Permissions::from_mode(MODE_DIR))
            .map_err(|e| OtaError::io("set the permissions of", &path, e))?;
        self.seen.insert(name.to_string(), Seen::Dir);
        Ok(())
    }

    fn file<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        name: &str,
        mode: u32,
    ) -> Result<(), OtaError> {
        if mode != MODE_FILE && mode != MODE_EXEC {
            return Err(unsafe_entry(
                name,
                &format!("is a file with mode {mode:o}; bundles carry files as 644 or 755 only"),
            ));
        }
        let manifest = self.manifest.as_ref().ok_or_else(|| OtaError::Manifest {
            reason: "it was not read before the files".to_string(),
        })?;
        let Some(expected) = manifest.files.get(name).cloned() else {
            return Err(OtaError::NotInManifest {
                entry: name.to_string(),
            });
        };
        let size = entry_size(entry, name)?;
        if size > self.limits.max_file {
            return Err(OtaError::TooLarge {
                what: format!("the bundle's file {name:?} ({size} bytes)"),
                limit: self.limits.max_file,
                hint: "do not install this bundle".to_string(),
            });
        }
        if size != expected.size {
            return Err(OtaError::ContentMismatch {
                entry: name.to_string(),
                reason: format!("is {size} bytes, and the manifest says {}", expected.size),
            });
        }
        if mode != expected.mode {
            return Err(OtaError::ContentMismatch {
                entry: name.to_string(),
                reason: format!(
                    "has mode {mode:o}, and the manifest says {:o}",
                    expected.mode
                ),
            });
        }
        self.total += size;
        if self.total > self.limits.max_total {
            return Err(OtaError::TooLarge {
                what: format!("the bundle's total size (reached at {name:?})"),
                limit: self.limits.max_total,
                hint: "do not install this bundle".to_string(),
            });
        }
        self.check_parent(name)?;
        let path = self.root.join(name);
        // create_new: never opens what is already there, so never follows
        // a link; the folders above are ones this extraction made.
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&path)
            .map_err(|e| OtaError::io("create", &path, e))?;
        let mut out = HashingFile {
            file: io::BufWriter::new(&file),
            hasher: blake3::Hasher::new(),
        };
        let written =
            io::copy(&mut entry.take(size), &mut out).map_err(|e| corrupt(self.bundle, name, e))?;
        out.file
            .flush()
            .map_err(|e| OtaError::io("write", &path, e))?;
        let hash = out.hasher.finalize().to_hex().to_string();
        if written != size {
            return Err(corrupt(
                self.bundle,
                name,
                io::Error::from(io::ErrorKind::UnexpectedEof),
            ));
        }
        if hash != expected.blake3 {
            let _ = fs::remove_file(&path);
            return Err(OtaError::ContentMismatch {
                entry: name.to_string(),
                reason: format!(
                    "has blake3 {hash}, and the manifest says {}",
                    expected.blake3
                ),
            });
        }
        file.set_permissions(fs::Permissions::from_mode(mode))
            .and_then(|()| file.sync_all())
            .map_err(|e| OtaError::io("finish writing", &path, e))?;
        self.seen.insert(name.to_string(), Seen::File);
        Ok(())
    }

    /// Entries come parents first, as `pack` writes them; a file whose
    /// folder did not come before it is not from `pack`.
    fn check_parent(&self, name: &str) -> Result<(), OtaError> {
        let Some((parent, _)) = name.rsplit_once('/') else {
            return Ok(());
        };
        if self.seen.get(parent) == Some(&Seen::Dir) {
            Ok(())
        } else {
            Err(unsafe_entry(
                name,
                &format!("comes before its directory {parent:?}"),
            ))
        }
    }

    /// A read error from the tar layer: the budget, or a corrupt bundle.
    fn read_error(&self, e: io::Error, hit: &Cell<bool>, budget: u64) -> OtaError {
        self.budget_error(
            OtaError::Corrupt {
                path: self.bundle.to_path_buf(),
                reason: e.to_string(),
            },
            hit,
            budget,
        )
    }

    fn budget_error(&self, e: OtaError, hit: &Cell<bool>, budget: u64) -> OtaError {
        if hit.get() {
            OtaError::TooLarge {
                what: "the bundle's decompressed size".to_string(),
                limit: budget,
                hint: "do not install this bundle".to_string(),
            }
        } else {
            e
        }
    }
}

fn unsafe_entry(name: &str, reason: &str) -> OtaError {
    OtaError::UnsafeEntry {
        entry: name.to_string(),
        reason: reason.to_string(),
    }
}

fn corrupt(bundle: &Path, name: &str, e: io::Error) -> OtaError {
    OtaError::Corrupt {
        path: bundle.to_path_buf(),
        reason: format!("entry {name:?} could not be read ({e})"),
    }
}

fn entry_size<R: Read>(entry: &tar::Entry<'_, R>, name: &str) -> Result<u64, OtaError> {
    entry
        .header()
        .entry_size()
        .map_err(|e| unsafe_entry(name, &format!("has an unreadable size ({e})")))
}

/// The entry's path, checked: UTF-8, relative, no `.`/`..`/empty parts.
/// Directories may carry one trailing `/`, as tar writes them.
fn entry_name(raw: &[u8], is_dir: bool) -> Result<String, OtaError> {
    let text = std::str::from_utf8(raw).map_err(|_| {
        unsafe_entry(
            &String::from_utf8_lossy(raw),
            "has a name that is not valid UTF-8",
        )
    })?;
    let name = if is_dir {
        text.strip_suffix('/').unwrap_or(text)
    } else {
        text
    };
    check_rel_path(name).map_err(|why| unsafe_entry(text, &format!("has a path that {why}")))?;
    Ok(name.to_string())
}

/// Why an entry of any type but file or directory is refused.
fn refused_type(header: &tar::Header, name: &str) -> String {
    let target = header
        .link_name_bytes()
        .map(|t| String::from_utf8_lossy(&t).into_owned())
        .unwrap_or_default();
    match header.entry_type() {
        tar::EntryType::Symlink => {
            let leaves = if escapes(name, &target) {
                ", which points outside the bundle's tree"
            } else {
                ""
            };
            format!("is a symbolic link to {target:?}{leaves}; bundles carry no links")
        }
        tar::EntryType::Link => format!("is a hard link to {target:?}; bundles carry no links"),
        tar::EntryType::Char => {
            "is a character device; bundles carry only files and directories".to_string()
        }
        tar::EntryType::Block => {
            "is a block device; bundles carry only files and directories".to_string()
        }
        tar::EntryType::Fifo => {
            "is a named pipe (fifo); bundles carry only files and directories".to_string()
        }
        tar::EntryType::Continuous => {
            "is a contiguous file, a type archy bundles never contain".to_string()
        }
        tar::EntryType::XHeader | tar::EntryType::XGlobalHeader => {
            "is a pax extended header, which archy bundles never contain".to_string()
        }
        tar::EntryType::GNULongLink => {
            "is a GNU long link name, which archy bundles never contain".to_string()
        }
        tar::EntryType::GNUSparse => {
            "is a sparse file, which archy bundles never contain".to_string()
        }
        other => format!(
            "has the unknown entry type {:?}",
            char::from(other.as_byte())
        ),
    }
}

/// Whether a link at `name` pointing to `target` would resolve outside the
/// tree it sits in.
fn escapes(name: &str, target: &str) -> bool {
    if target.starts_with('/') {
        return true;
    }
    // The link's own folder depth, then walk the target's components.
    let mut depth = name.split('/').count() as i64 - 1;
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => depth -= 1,
            _ => depth += 1,
        }
        if depth < 0 {
            return true;
        }
    }
    false
}

/// Stops the decompressed stream at a budget; `hit` tells the caller the
/// error it sees came from here.
struct Bounded<R> {
    inner: R,
    left: u64,
    hit: Rc<Cell<bool>>,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            // One byte more would exceed the budget: probe, without keeping it.
            let mut probe = [0u8; 1];
            if self.inner.read(&mut probe)? == 0 {
                return Ok(0);
            }
            self.hit.set(true);
            return Err(io::Error::other(
                "the decompressed bundle exceeds its size budget",
            ));
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.left -= n as u64;
        Ok(n)
    }
}

struct HashingFile<W> {
    file: W,
    hasher: blake3::Hasher,
}

impl<W: Write> Write for HashingFile<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Moves the finished tree into place, refusing to replace anything that
/// appeared at `dest` meanwhile (a plain rename would replace an empty
/// folder).
fn rename_noreplace(from: &Path, to: &Path) -> Result<(), OtaError> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    use rustix::io::Errno;
    match renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
        Ok(()) => Ok(()),
        Err(Errno::EXIST) | Err(Errno::NOTEMPTY) => Err(OtaError::DestExists {
            path: to.to_path_buf(),
        }),
        // Filesystems without RENAME_NOREPLACE: check, then rename.
        Err(Errno::INVAL) | Err(Errno::NOSYS) => {
            if fs::symlink_metadata(to).is_ok() {
                return Err(OtaError::DestExists {
                    path: to.to_path_buf(),
                });
            }
            fs::rename(from, to).map_err(|e| OtaError::io("move the unpacked release to", to, e))
        }
        Err(e) => Err(OtaError::io(
            "move the unpacked release to",
            to,
            io::Error::from(e),
        )),
    }
}

fn sync_dir(dir: &Path) -> Result<(), OtaError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| OtaError::io("sync the folder", dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_escape_is_computed_from_the_link_folder() {
        assert!(escapes("stdlib/x", "/etc/passwd"));
        assert!(escapes("stdlib/x", "../../x"));
        assert!(!escapes("stdlib/x", "../apps/y"));
        assert!(escapes("x", "../y"));
        assert!(!escapes("stdlib/a/x", "../b"));
    }

    #[test]
    fn the_budget_stops_a_stream_and_says_so() {
        let hit = Rc::new(Cell::new(false));
        let mut bounded = Bounded {
            inner: io::Cursor::new(vec![0u8; 100]),
            left: 10,
            hit: Rc::clone(&hit),
        };
        let mut out = Vec::new();
        assert!(bounded.read_to_end(&mut out).is_err());
        assert_eq!(out.len(), 10);
        assert!(hit.get());

        let hit = Rc::new(Cell::new(false));
        let mut exact = Bounded {
            inner: io::Cursor::new(vec![0u8; 10]),
            left: 10,
            hit: Rc::clone(&hit),
        };
        assert_eq!(exact.read_to_end(&mut Vec::new()).expect("fits"), 10);
        assert!(!hit.get());
    }
}

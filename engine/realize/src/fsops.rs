//! The file system operations the realizer is made of: paths resolved
//! under a root prefix, atomic writes (temp file, fsync, rename, fsync the
//! directory), symlinks, and metadata.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// How many symbolic links resolving one path may follow (as Linux).
const MAX_LINKS: usize = 40;

/// A node path placed under the root prefix.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// The parent directory's components below the root, symbolic links
    /// resolved as if the root were `/`.
    pub parents: Vec<String>,
    /// The full path on this machine.
    pub host: PathBuf,
}

impl Target {
    /// The parent directory on this machine.
    pub fn parent_host(&self, root: &Path) -> PathBuf {
        join(root, &self.parents)
    }
}

pub(crate) fn join(root: &Path, components: &[String]) -> PathBuf {
    let mut p = root.to_path_buf();
    for c in components {
        p.push(c);
    }
    p
}

/// Places `node_path` (absolute) under `root`. Under a root other than
/// `/`, symbolic links among the parents are followed inside the root (an
/// image's `/var/run -> /run` must not lead to this machine's `/run`); the
/// last component is never followed, so a rename replaces a link itself.
pub(crate) fn locate(root: &Path, node_path: &str) -> Target {
    let mut parts: Vec<String> = node_path
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .map(str::to_string)
        .collect();
    let name = parts.pop().unwrap_or_default();
    let parents = if root == Path::new("/") {
        parts
    } else {
        resolve_in_root(root, parts)
    };
    let mut host = join(root, &parents);
    host.push(&name);
    Target { parents, host }
}

fn resolve_in_root(root: &Path, parts: Vec<String>) -> Vec<String> {
    let mut queue: std::collections::VecDeque<String> = parts.into();
    let mut resolved: Vec<String> = Vec::new();
    let mut hops = 0;
    while let Some(c) = queue.pop_front() {
        if c == ".." {
            resolved.pop();
            continue;
        }
        if c == "." || c.is_empty() {
            continue;
        }
        let here = join(root, &resolved).join(&c);
        let link = fs::symlink_metadata(&here)
            .ok()
            .filter(|m| m.file_type().is_symlink())
            .and_then(|_| fs::read_link(&here).ok());
        match link {
            Some(target) if hops < MAX_LINKS => {
                hops += 1;
                if target.is_absolute() {
                    resolved.clear();
                }
                let mut more: Vec<String> = target
                    .to_string_lossy()
                    .split('/')
                    .map(str::to_string)
                    .collect();
                more.extend(queue.drain(..));
                queue = more.into();
            }
            _ => resolved.push(c),
        }
    }
    resolved
}

/// True when something (even a dangling link) is at `path`.
pub(crate) fn exists(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok()
}

/// Creates the missing parent directories of `target` (0755, root),
/// calling `created` with each one's node path before it is made, so the
/// caller can record it first.
pub(crate) fn ensure_parents(
    root: &Path,
    target: &Target,
    mut created: impl FnMut(&str) -> Result<()>,
) -> Result<()> {
    for i in 1..=target.parents.len() {
        let host = join(root, &target.parents[..i]);
        match fs::metadata(&host) {
            Ok(m) if m.is_dir() => continue,
            Ok(_) => {
                return Err(Error::io("create directory", &host)(io::Error::from(
                    io::ErrorKind::NotADirectory,
                )));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("create directory", &host)(e)),
        }
        created(&format!("/{}", target.parents[..i].join("/")))?;
        make_dir(&host, 0o755, 0, 0)?;
    }
    Ok(())
}

/// Creates one directory with this mode and owner.
pub(crate) fn make_dir(path: &Path, mode: u32, uid: u32, gid: u32) -> Result<()> {
    match fs::create_dir(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && path.is_dir() => {}
        Err(e) => return Err(Error::io("create directory", path)(e)),
    }
    set_meta(path, mode, uid, gid)?;
    if let Some(parent) = path.parent() {
        sync_dir(parent)?;
    }
    Ok(())
}

/// The temporary name a write goes through, next to the target.
fn temp_for(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.archy-new"))
}

/// Replaces `path` atomically: `make` creates the new version at a temp
/// name beside it, which is then renamed over `path`, and the directory
/// is flushed. A failure removes the temp and leaves `path` as it was.
fn replace(
    path: &Path,
    action: &'static str,
    make: impl FnOnce(&Path) -> io::Result<()>,
) -> Result<()> {
    let temp = temp_for(path);
    let fail = |e| Error::io(action, path)(e);
    remove_if_there(&temp).map_err(fail)?;
    if let Err(e) = make(&temp).and_then(|()| fs::rename(&temp, path)) {
        let _ = fs::remove_file(&temp);
        return Err(fail(e));
    }
    if let Some(parent) = path.parent() {
        sync_dir(parent)?;
    }
    Ok(())
}

/// Writes `bytes` to `path` atomically: a temp file in the same directory
/// (created 0600, so nobody reads it half-made), write, owner and mode,
/// fsync, rename over, fsync the directory.
pub(crate) fn write_file(path: &Path, bytes: &[u8], mode: u32, uid: u32, gid: u32) -> Result<()> {
    replace(path, "write", |temp| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(temp)?;
        f.write_all(bytes)?;
        // Owner before mode: chown clears the set-id bits.
        std::os::unix::fs::fchown(&f, Some(uid), Some(gid))?;
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        f.sync_all()
    })
}

/// Makes `path` a symbolic link to `to`, atomically.
pub(crate) fn write_link(path: &Path, to: &Path) -> Result<()> {
    replace(path, "link", |temp| std::os::unix::fs::symlink(to, temp))
}

fn remove_if_there(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Removes a file or link (not a directory); a missing one is fine.
pub(crate) fn remove_file(path: &Path) -> Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => {
            if let Some(parent) = path.parent() {
                sync_dir(parent)?;
            }
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io("remove", path)(e)),
    }
}

/// Sets owner, then mode, of what `path` names (never through a link).
pub(crate) fn set_meta(path: &Path, mode: u32, uid: u32, gid: u32) -> Result<()> {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))
        .map_err(|e| Error::io("change the owner of", path)(e))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| Error::io("change the mode of", path)(e))
}

/// True when `path` is a regular file (or directory, with `dir`) with
/// exactly this mode and owner.
pub(crate) fn has_meta(path: &Path, dir: bool, mode: u32, uid: u32, gid: u32) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| {
        (if dir { m.is_dir() } else { m.is_file() })
            && m.mode() & 0o7777 == mode
            && m.uid() == uid
            && m.gid() == gid
    })
}

/// fsync a directory, so a rename or an unlink in it survives a crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("sync directory", dir)(e))
}

/// Copies a file or link to `to`, keeping bytes, mode and owner (adopted
/// backups and their restoration). A missing `from` is an error.
pub(crate) fn copy_preserving(from: &Path, to: &Path) -> Result<()> {
    let meta = fs::symlink_metadata(from).map_err(|e| Error::io("read", from)(e))?;
    if meta.file_type().is_symlink() {
        let target = fs::read_link(from).map_err(|e| Error::io("read", from)(e))?;
        write_link(to, &target)?;
        return std::os::unix::fs::lchown(to, Some(meta.uid()), Some(meta.gid()))
            .map_err(|e| Error::io("change the owner of", to)(e));
    }
    let bytes = fs::read(from).map_err(|e| Error::io("read", from)(e))?;
    write_file(to, &bytes, meta.mode() & 0o7777, meta.uid(), meta.gid())
}

//! The atomic file protocol every write in the state dir follows: write a
//! temp file next to the target, fsync it, rename it into place, fsync the
//! directory. A reader (or a crash) sees the old state or the new one, never
//! a half-written file.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io;
use std::path::Path;

use rustix::fs::{CWD, RenameFlags, renameat_with};
use rustix::io::Errno;
use tempfile::{NamedTempFile, TempPath};

use crate::error::{Result, StoreError};

/// Every temp file and temp link the store creates starts with this. Object
/// names cannot start with '.' and generation records are numbers, so a
/// leftover from a crash is recognisable and safe to delete.
pub(crate) const TEMP_PREFIX: &str = ".tmp-";

/// Whether a directory entry is a leftover temp file or link.
pub(crate) fn is_temp_name(name: &OsStr) -> bool {
    name.as_encoded_bytes().starts_with(TEMP_PREFIX.as_bytes())
}

/// A new empty temp file in `dir`; it is deleted when dropped, so any error
/// before it is persisted leaves nothing behind.
pub(crate) fn create_temp(dir: &Path) -> Result<NamedTempFile> {
    tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .rand_bytes(12)
        .tempfile_in(dir)
        .map_err(|err| StoreError::write("create a temp file in", dir, err))
}

/// Flushes a written temp file to disk. Without this, a crash after the
/// rename could leave an object whose name is right and whose content is
/// empty.
pub(crate) fn sync_file(temp: &NamedTempFile, dir: &Path) -> Result<()> {
    temp.as_file()
        .sync_all()
        .map_err(|err| StoreError::write("flush a temp file in", dir, err))
}

/// What happened when a temp file was moved to a name that must not be
/// replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Placed {
    /// The temp file now has the name.
    Renamed,
    /// Something else already had the name; the temp file was deleted.
    AlreadyThere,
}

/// Renames `temp` to `target` unless `target` exists. A racing writer of
/// the same object wins harmlessly: its file has the same content.
pub(crate) fn place_noclobber(temp: NamedTempFile, target: &Path, dir: &Path) -> Result<Placed> {
    place_path_noclobber(temp.into_temp_path(), target, dir)
}

/// [`place_noclobber`] for a temp file already closed, as a batch keeps
/// them: thousands of open files would run out of descriptors.
pub(crate) fn place_path_noclobber(
    mut temp: TempPath,
    target: &Path,
    dir: &Path,
) -> Result<Placed> {
    match rename_noreplace(&temp, target) {
        Ok(()) => {
            // The temp path no longer exists; stop its drop from deleting
            // whatever might get that name later.
            temp.disable_cleanup(true);
            Ok(Placed::Renamed)
        }
        // Dropping `temp` deletes it.
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => Ok(Placed::AlreadyThere),
        Err(err) => Err(StoreError::write("rename a temp file in", dir, err)),
    }
}

/// Renames `temp` over `target`, replacing it atomically.
pub(crate) fn place_replacing(mut temp: NamedTempFile, target: &Path, dir: &Path) -> Result<()> {
    fs::rename(temp.path(), target)
        .map_err(|err| StoreError::write("rename a temp file in", dir, err))?;
    temp.disable_cleanup(true);
    Ok(())
}

/// `rename(2)` that fails with `AlreadyExists` instead of replacing.
fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    match renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
        // Some file systems (and old kernels) lack RENAME_NOREPLACE; a hard
        // link is also atomic and also refuses to replace.
        Err(Errno::INVAL | Errno::NOSYS) => {
            fs::hard_link(from, to)?;
            fs::remove_file(from)
        }
        result => result.map_err(io::Error::from),
    }
}

/// Replaces the small file `target` (a record in the state dir: the switch
/// journal, the rotations, the release record) by the same protocol as the
/// store's own writes: `.tmp-<name>` beside it, created with `mode`,
/// flushed, renamed over `target`, the directory flushed. A crash leaves
/// the old file or the new one, and at worst the temp file, which the next
/// write replaces. The caller holds the state lock, so one temp name is
/// enough.
pub fn replace_file(target: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let (Some(dir), Some(name)) = (target.parent(), target.file_name()) else {
        return Err(io::Error::other(format!(
            "{} is not a file in a folder",
            target.display()
        )));
    };
    let mut temp_name = std::ffi::OsString::from(TEMP_PREFIX);
    temp_name.push(name);
    let temp = dir.join(temp_name);
    match fs::remove_file(&temp) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let written = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&temp)
        .and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_all()
        })
        .and_then(|()| fs::rename(&temp, target));
    if let Err(e) = written {
        let _ = fs::remove_file(&temp);
        return Err(e);
    }
    File::open(dir).and_then(|d| d.sync_all())
}

/// Flushes a directory so that renames and deletions in it survive a
/// power loss.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|handle| handle.sync_all())
        .map_err(|err| StoreError::write("flush the directory", dir, err))
}

/// Flushes everything written to the file system that holds `dir`
/// (`syncfs(2)`): one flush for many files' content, instead of one
/// `fsync` each. The kernel reports a write-back error of any file since
/// the last call here, so an error means some content may not be durable.
pub(crate) fn sync_file_system(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|handle| rustix::fs::syncfs(&handle).map_err(io::Error::from))
        .map_err(|err| StoreError::write("flush the file system of", dir, err))
}

/// Deletes a file, treating "already gone" as success: deletions are
/// repeated after a crash, and the goal is only that the file is gone.
pub(crate) fn remove_if_present(path: &Path) -> Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(err) => Err(StoreError::write("delete", path, err)),
    }
}

/// Deletes leftover temp files and links (from a crash) in `dir`, returning
/// how many there were. Only call this while holding the state lock: a temp
/// file of a running insert looks the same as a leftover.
pub(crate) fn remove_temp_leftovers(dir: &Path) -> Result<usize> {
    let mut removed = 0;
    for entry in read_dir(dir)? {
        let entry = entry.map_err(|err| StoreError::read("list", dir, err))?;
        if is_temp_name(&entry.file_name()) && remove_if_present(&entry.path())? {
            removed += 1;
        }
    }
    Ok(removed)
}

/// Lists `dir`, naming it in the error.
pub(crate) fn read_dir(dir: &Path) -> Result<fs::ReadDir> {
    fs::read_dir(dir).map_err(|err| StoreError::read("list", dir, err))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_replaced_file_has_the_new_bytes_and_mode_and_no_temp_is_left() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("record.json");
        fs::write(&target, b"old").expect("old");
        // A crash's leftover temp file does not stop the write.
        fs::write(dir.path().join(".tmp-record.json"), b"half").expect("leftover");
        replace_file(&target, b"new", 0o600).expect("replace");
        assert_eq!(fs::read(&target).expect("read"), b"new");
        let mode = fs::metadata(&target).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let names: Vec<_> = fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["record.json"]);
    }

    #[test]
    fn a_failed_replace_keeps_the_old_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("record.json");
        fs::write(&target, b"old").expect("old");
        // The temp name is taken by a folder: the write cannot start.
        fs::create_dir(dir.path().join(".tmp-record.json")).expect("dir");
        assert!(replace_file(&target, b"new", 0o644).is_err());
        assert_eq!(fs::read(&target).expect("read"), b"old");
    }
}

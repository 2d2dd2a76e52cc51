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
use tempfile::NamedTempFile;

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
pub(crate) fn place_noclobber(
    mut temp: NamedTempFile,
    target: &Path,
    dir: &Path,
) -> Result<Placed> {
    match rename_noreplace(temp.path(), target) {
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

/// Flushes a directory so that renames and deletions in it survive a
/// power loss.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|handle| handle.sync_all())
        .map_err(|err| StoreError::write("flush the directory", dir, err))
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

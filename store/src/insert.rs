//! Writing and reading objects.

use std::fs::{self, File, Permissions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

use crate::Store;
use crate::atomic::{self, Placed};
use crate::digest::Digest;
use crate::error::{Result, StoreError, is_disk_full};
use crate::objects::{ObjectId, ObjectName};

/// Objects are read-only for everyone: nothing may change an object after
/// it is named by its hash.
const OBJECT_MODE: u32 = 0o444;

/// What an insert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    /// The object was new; this many bytes were written.
    Written(u64),
    /// An object with this id was already there (perhaps written by a
    /// racing writer at the same moment); nothing was changed.
    AlreadyPresent,
}

impl Store {
    /// Where the object `id` lives (whether or not it exists).
    pub fn object_path(&self, id: &ObjectId) -> PathBuf {
        self.objects_dir.join(id.to_string())
    }

    /// Whether the object `id` is in the store.
    pub fn contains(&self, id: &ObjectId) -> Result<bool> {
        let path = self.object_path(id);
        path.try_exists()
            .map_err(|err| StoreError::read("look for", &path, err))
    }

    /// Adds `bytes` as an object named `name`. If the object is already
    /// there nothing is written: building the same inputs twice is free.
    pub fn insert_bytes(&self, name: &ObjectName, bytes: &[u8]) -> Result<(ObjectId, Inserted)> {
        let (id, inserted) = self.insert_bytes_unflushed(name, bytes)?;
        if let Inserted::Written(_) = inserted {
            atomic::sync_dir(&self.objects_dir)?;
        }
        Ok((id, inserted))
    }

    /// [`Store::insert_bytes`] without the final flush of the store
    /// directory: the content is durable, the name may not be until the
    /// directory is flushed. For [`ObjectBatch`](crate::ObjectBatch), which
    /// flushes once for many objects.
    pub(crate) fn insert_bytes_unflushed(
        &self,
        name: &ObjectName,
        bytes: &[u8],
    ) -> Result<(ObjectId, Inserted)> {
        let id = ObjectId::of(name, bytes);
        if self.contains(&id)? {
            return Ok((id, Inserted::AlreadyPresent));
        }
        let mut temp = atomic::create_temp(&self.objects_dir)?;
        temp.write_all(bytes)
            .map_err(|err| StoreError::write("write a temp file in", &self.objects_dir, err))?;
        let inserted = self.seal_and_rename(temp, &id, bytes.len() as u64)?;
        Ok((id, inserted))
    }

    /// Adds the content of the file `src` as an object named `name`,
    /// streaming: the file is never held in memory.
    ///
    /// The file is hashed first, so an object that is already there costs
    /// one read and no write. A new one is copied by the kernel
    /// (`copy_file_range`, a reflink where the file system can) and the copy
    /// is hashed again: that is the content the name must promise, and a
    /// source that changed in between is refused rather than stored torn.
    pub fn insert_file(&self, name: &ObjectName, src: &Path) -> Result<(ObjectId, Inserted)> {
        let id = ObjectId::new(
            hash_file(src).map_err(|err| StoreError::read("read", src, err))?,
            name.clone(),
        );
        if self.contains(&id)? {
            return Ok((id, Inserted::AlreadyPresent));
        }
        let mut temp = atomic::create_temp(&self.objects_dir)?;
        let len = copy_into(src, &mut temp, &self.objects_dir)?;
        if hash_temp(&mut temp, &self.objects_dir)? != id.digest() {
            return Err(StoreError::SourceChanged {
                path: src.to_owned(),
            });
        }
        let inserted = self.seal_and_place(temp, &id, len)?;
        Ok((id, inserted))
    }

    /// Reads the whole object `id`, checking that its content still hashes
    /// to its name.
    pub fn read(&self, id: &ObjectId) -> Result<Vec<u8>> {
        let path = self.object_path(id);
        let bytes = fs::read(&path).map_err(|err| match err.kind() {
            io::ErrorKind::NotFound => StoreError::ObjectNotFound {
                id: id.clone(),
                path: path.clone(),
            },
            _ => StoreError::read("read", &path, err),
        })?;
        let actual = Digest::of(&bytes);
        if actual != id.digest() {
            return Err(StoreError::CorruptObject {
                id: id.clone(),
                path,
                actual,
            });
        }
        Ok(bytes)
    }

    /// Turns a fully written temp file into the object `id`: read-only,
    /// flushed, renamed into place without replacing, directory flushed.
    fn seal_and_place(&self, temp: NamedTempFile, id: &ObjectId, len: u64) -> Result<Inserted> {
        let inserted = self.seal_and_rename(temp, id, len)?;
        if let Inserted::Written(_) = inserted {
            atomic::sync_dir(&self.objects_dir)?;
        }
        Ok(inserted)
    }

    /// [`Self::seal_and_place`] up to the rename: the directory is not
    /// flushed.
    fn seal_and_rename(&self, temp: NamedTempFile, id: &ObjectId, len: u64) -> Result<Inserted> {
        let dir = &self.objects_dir;
        temp.as_file()
            .set_permissions(Permissions::from_mode(OBJECT_MODE))
            .map_err(|err| StoreError::write("make a temp file read-only in", dir, err))?;
        atomic::sync_file(&temp, dir)?;
        match atomic::place_noclobber(temp, &self.object_path(id), dir)? {
            Placed::Renamed => Ok(Inserted::Written(len)),
            Placed::AlreadyThere => Ok(Inserted::AlreadyPresent),
        }
    }
}

/// Copies the file `src` into `temp`, returning the length. `io::copy`
/// between two files lets the kernel do it (`copy_file_range`), which
/// beats any user-space buffer size.
fn copy_into(src: &Path, temp: &mut NamedTempFile, dir: &Path) -> Result<u64> {
    let mut source = File::open(src).map_err(|err| StoreError::read("open", src, err))?;
    io::copy(&mut source, temp.as_file_mut()).map_err(|err| {
        // `io::copy` does not say which side failed. Only the destination
        // can be full; anything else is reported against the source, with
        // the OS error itself to tell the rest.
        if is_disk_full(&err) {
            StoreError::write("copy into", dir, err)
        } else {
            StoreError::read("copy", src, err)
        }
    })
}

/// Hashes what was written to `temp`, from its start.
fn hash_temp(temp: &mut NamedTempFile, dir: &Path) -> Result<Digest> {
    let file = temp.as_file_mut();
    let hashed = file
        .seek(SeekFrom::Start(0))
        .and_then(|_| hash_reader(file));
    hashed.map_err(|err| StoreError::read("read back a temp file in", dir, err))
}

/// Hashes the file at `path` without reading it into memory.
pub(crate) fn hash_file(path: &Path) -> io::Result<Digest> {
    hash_reader(&mut File::open(path)?)
}

/// Hashes everything `reader` yields.
fn hash_reader(reader: &mut impl Read) -> io::Result<Digest> {
    let mut hasher = blake3::Hasher::new();
    hasher.update_reader(reader)?;
    Ok(hasher.finalize().into())
}

//! Writing and reading objects.

use std::fs::{self, File, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::SystemTime;

use tempfile::NamedTempFile;

use crate::Store;
use crate::atomic::{self, Placed};
use crate::digest::Digest;
use crate::error::{Result, StoreError, is_disk_full};
use crate::objects::{ObjectId, ObjectName};

/// Objects are read-only for everyone: nothing may change an object after
/// it is named by its hash.
pub(crate) const OBJECT_MODE: u32 = 0o444;

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
    /// directory is flushed.
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
        let inserted = self.seal_and_rename(temp, &id, bytes.len() as u64, OBJECT_MODE)?;
        Ok((id, inserted))
    }

    /// Adds the content of the file `src` as an object named `name`,
    /// streaming: the file is never held in memory.
    ///
    /// One pass: the kernel copies the file into a temp file
    /// (`copy_file_range`, a reflink where the file system can) while a
    /// second thread hashes what has been copied so far. The digest is of
    /// the copy itself, so the name always promises the content stored. A
    /// source that changed during the copy (its size, times or inode moved;
    /// for a file changed in the last seconds, its content, see
    /// [`SourceState`]) is refused rather than stored torn. An object
    /// already there costs the copy, which is deleted before it is flushed.
    pub fn insert_file(&self, name: &ObjectName, src: &Path) -> Result<(ObjectId, Inserted)> {
        let source = File::open(src).map_err(|err| StoreError::read("open", src, err))?;
        let before = SourceState::of(&source, src)?;
        let temp = atomic::create_temp(&self.objects_dir)?;
        let (digest, len) = copy_hashing(&source, src, &temp, &self.objects_dir)?;
        let changed = SourceState::of(&source, src)? != before
            || len != before.len
            || (before.is_racy()
                && hash_file(src).map_err(|err| StoreError::read("read", src, err))? != digest);
        if changed {
            return Err(StoreError::SourceChanged {
                path: src.to_owned(),
            });
        }
        let id = ObjectId::new(digest, name.clone());
        if self.contains(&id)? {
            return Ok((id, Inserted::AlreadyPresent));
        }
        let inserted = self.seal_and_place(temp, &id, len, OBJECT_MODE)?;
        Ok((id, inserted))
    }

    /// Adds the file `src` as the object `name` with the declared blake3
    /// `expected`, with file mode `mode` (0444, or 0555 for a program):
    /// the fast path of [`insert_file`](Self::insert_file) (the kernel's
    /// copy, hashed as it lands), and the copy's digest must be the
    /// declared one before it gets a name. No check of the source's times
    /// is needed: whatever was copied is what is checked. A mismatch
    /// stores nothing.
    pub(crate) fn insert_file_declared(
        &self,
        name: &ObjectName,
        src: &Path,
        expected: Digest,
        mode: u32,
    ) -> Result<(ObjectId, Inserted)> {
        let source = File::open(src).map_err(|err| StoreError::read("open", src, err))?;
        let temp = atomic::create_temp(&self.objects_dir)?;
        let (digest, len) = copy_hashing(&source, src, &temp, &self.objects_dir)?;
        if digest != expected {
            return Err(StoreError::HashMismatch {
                path: src.to_owned(),
                declared: format!("blake3:{expected}"),
                actual: format!("blake3:{digest}"),
            });
        }
        let id = ObjectId::new(digest, name.clone());
        let inserted = self.seal_and_place(temp, &id, len, mode)?;
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

    /// Turns a fully written temp file into the object `id`: read-only
    /// (`mode`: [`OBJECT_MODE`], or 0555 for a program), flushed, renamed
    /// into place without replacing, directory flushed.
    pub(crate) fn seal_and_place(
        &self,
        temp: NamedTempFile,
        id: &ObjectId,
        len: u64,
        mode: u32,
    ) -> Result<Inserted> {
        let inserted = self.seal_and_rename(temp, id, len, mode)?;
        if let Inserted::Written(_) = inserted {
            atomic::sync_dir(&self.objects_dir)?;
        }
        Ok(inserted)
    }

    /// [`Self::seal_and_place`] up to the rename: the directory is not
    /// flushed.
    fn seal_and_rename(
        &self,
        temp: NamedTempFile,
        id: &ObjectId,
        len: u64,
        mode: u32,
    ) -> Result<Inserted> {
        let dir = &self.objects_dir;
        temp.as_file()
            .set_permissions(Permissions::from_mode(mode))
            .map_err(|err| StoreError::write("make a temp file read-only in", dir, err))?;
        atomic::sync_file(&temp, dir)?;
        match atomic::place_noclobber(temp, &self.object_path(id), dir)? {
            Placed::Renamed => Ok(Inserted::Written(len)),
            Placed::AlreadyThere => Ok(Inserted::AlreadyPresent),
        }
    }
}

/// How much the kernel copies before the hashing thread is told to hash
/// it: large enough that the copy's system calls cost nothing, small
/// enough that the hashing finishes soon after the copy.
const COPY_CHUNK: u64 = 8 << 20;

/// How much the hashing thread reads at once: fits the CPU's cache, so
/// the hash reads what was just read rather than memory.
const HASH_READ: usize = 256 << 10;

/// Copies the file `source` into `temp` and hashes the copy, returning its
/// digest and length. The copy is made by the kernel in chunks on this
/// thread; another thread reads each chunk back from `temp` once it is
/// there and hashes it, so the two overlap.
fn copy_hashing(
    source: &File,
    src: &Path,
    temp: &NamedTempFile,
    dir: &Path,
) -> Result<(Digest, u64)> {
    let copy = temp.as_file();
    let (copied_tx, copied_rx) = mpsc::channel::<u64>();
    std::thread::scope(|scope| {
        let hasher = scope.spawn(move || hash_copied(copy, &copied_rx));
        let mut len = 0;
        let copied = loop {
            // `io::copy` between files lets the kernel do it, falling back
            // to a buffer where it cannot (another file system, a pipe).
            match io::copy(&mut Read::take(source, COPY_CHUNK), &mut &*copy) {
                Ok(0) => break Ok(len),
                Ok(n) => {
                    len += n;
                    // A closed channel means the hasher failed; its error
                    // is reported below.
                    if copied_tx.send(len).is_err() {
                        break Ok(len);
                    }
                }
                Err(err) => break Err(err),
            }
        };
        drop(copied_tx);
        let hashed = hasher
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        let len = copied.map_err(|err| {
            // `io::copy` does not say which side failed. Only the
            // destination can be full; anything else is reported against
            // the source, with the OS error itself to tell the rest.
            if is_disk_full(&err) {
                StoreError::write("copy into", dir, err)
            } else {
                StoreError::read("copy", src, err)
            }
        })?;
        let (digest, hashed_len) =
            hashed.map_err(|err| StoreError::read("read back a temp file in", dir, err))?;
        debug_assert_eq!(hashed_len, len, "the hasher saw every copied byte");
        Ok((digest, len))
    })
}

/// Hashes `copy` from its start, up to each length received from the
/// copier, returning the digest and the length hashed once the copier
/// hangs up.
fn hash_copied(copy: &File, copied: &mpsc::Receiver<u64>) -> io::Result<(Digest, u64)> {
    let mut hasher = blake3::Hasher::new();
    let mut buffer = vec![0u8; HASH_READ];
    let mut hashed = 0u64;
    for end in copied {
        while hashed < end {
            let want = usize::try_from(end - hashed).map_or(HASH_READ, |left| left.min(HASH_READ));
            let read = copy.read_at(&mut buffer[..want], hashed)?;
            if read == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the copy is shorter than what was copied into it",
                ));
            }
            hasher.update(&buffer[..read]);
            hashed += read as u64;
        }
    }
    Ok((hasher.finalize().into(), hashed))
}

/// What changes when a file is written to, from `fstat`: a copy made
/// between two equal states is not torn. A write updates the change time
/// (which no one can set back); a rename-over or truncate moves the inode
/// or size.
#[derive(Debug, PartialEq, Eq)]
struct SourceState {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

/// How recent a change time makes a file "racy": a file system whose
/// clock ticks coarsely (whole seconds on some, two on FAT) may give a
/// write just after the first `fstat` the same change time as the one
/// before it. Such a file is hashed again after the copy.
const RACY_WINDOW_SECS: i64 = 3;

impl SourceState {
    fn of(file: &File, path: &Path) -> Result<Self> {
        let meta = file
            .metadata()
            .map_err(|err| StoreError::read("look at", path, err))?;
        Ok(Self {
            dev: meta.dev(),
            ino: meta.ino(),
            len: meta.len(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        })
    }

    /// Whether the file changed so recently that a further change might
    /// not move its change time; see [`RACY_WINDOW_SECS`].
    fn is_racy(&self) -> bool {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |since| {
                i64::try_from(since.as_secs()).unwrap_or(i64::MAX)
            });
        self.ctime.0 >= now.saturating_sub(RACY_WINDOW_SECS)
    }
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

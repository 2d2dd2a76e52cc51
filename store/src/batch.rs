//! Many inserts, one flush.
//!
//! A single insert flushes the object's content, renames it into place and
//! flushes the store directory: two waits for the disk per object. For a
//! build of thousands of small objects those waits are nearly all of the
//! time. A batch keeps the guarantee that matters, that a name never points
//! at content that is not durable, with two waits in all:
//!
//! 1. each new object is written to a read-only temp file and left there,
//!    unflushed and unnamed;
//! 2. [`ObjectBatch::finish`] flushes the whole file system once
//!    (`syncfs(2)`), so every pending content is durable, then renames each
//!    temp file to its name (never replacing one) and flushes the store
//!    directory once, so the names are durable too.
//!
//! Until `finish` returns, nothing may refer to the batch's objects, and in
//! particular no generation may be recorded: they have no names yet. A
//! batch dropped without `finish` deletes its temp files; one cut short by
//! a crash leaves only temp files, which `gc` deletes.

use std::collections::HashSet;
use std::fs::Permissions;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;

use tempfile::TempPath;

use crate::Store;
use crate::atomic::{self, TEMP_PREFIX};
use crate::error::{Result, StoreError};
use crate::insert::{Inserted, OBJECT_MODE};
use crate::objects::{ObjectId, ObjectName};

/// Inserts that share one flush; see the module docs.
#[derive(Debug)]
#[must_use = "the batch's objects have no names until `finish` is called"]
pub struct ObjectBatch<'a> {
    store: &'a Store,
    /// Written, not yet flushed or named, in insertion order. Closed files
    /// (paths only): a build has more objects than a process may open.
    pending: Vec<(ObjectId, TempPath)>,
    /// The ids in `pending`, so an object inserted twice is written once.
    pending_ids: HashSet<ObjectId>,
}

impl Store {
    /// Starts a batch of inserts; see [`ObjectBatch`].
    pub fn batch(&self) -> ObjectBatch<'_> {
        ObjectBatch {
            store: self,
            pending: Vec::new(),
            pending_ids: HashSet::new(),
        }
    }
}

impl ObjectBatch<'_> {
    /// Adds `bytes` as an object named `name` once [`Self::finish`]
    /// returns. `Written` means this call wrote the content (it gets its
    /// name in `finish`); `AlreadyPresent` means the store already has the
    /// object or this batch already holds it, and nothing was written.
    pub fn insert_bytes(
        &mut self,
        name: &ObjectName,
        bytes: &[u8],
    ) -> Result<(ObjectId, Inserted)> {
        let id = ObjectId::of(name, bytes);
        if self.contains(&id)? {
            return Ok((id, Inserted::AlreadyPresent));
        }
        let temp = write_read_only_temp(self.store, bytes)?;
        self.pending_ids.insert(id.clone());
        self.pending.push((id.clone(), temp));
        Ok((id, Inserted::Written(bytes.len() as u64)))
    }

    /// Whether the object `id` is in the store or will be once this batch
    /// is finished.
    pub fn contains(&self, id: &ObjectId) -> Result<bool> {
        Ok(self.pending_ids.contains(id) || self.store.contains(id)?)
    }

    /// Makes the batch's objects durable and names them: one flush of the
    /// file system for all their content, then the renames, then one flush
    /// of the store directory. After this the objects are as durable as
    /// after single inserts. On an error, the objects not yet named are
    /// deleted; those named are whole.
    pub fn finish(self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let dir = self.store.objects_dir();
        // The one step the guarantee rests on: every content is durable
        // before any name exists.
        atomic::sync_file_system(dir)?;
        for (id, temp) in self.pending {
            // `AlreadyThere`: a racing writer named the same content first;
            // our copy is deleted.
            atomic::place_path_noclobber(temp, &self.store.object_path(&id), dir)?;
        }
        atomic::sync_dir(dir)
    }
}

/// Writes `bytes` to a new read-only temp file in the store directory,
/// closed and unflushed. Created read-only (the mode applies only to later
/// opens), so the object needs no `chmod` when it is named.
fn write_read_only_temp(store: &Store, bytes: &[u8]) -> Result<TempPath> {
    let dir = store.objects_dir();
    let mut temp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .rand_bytes(12)
        .permissions(Permissions::from_mode(OBJECT_MODE))
        .tempfile_in(dir)
        .map_err(|err| StoreError::write("create a temp file in", dir, err))?;
    temp.write_all(bytes)
        .map_err(|err| StoreError::write("write a temp file in", dir, err))?;
    Ok(temp.into_temp_path())
}

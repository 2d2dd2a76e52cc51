//! Many inserts, one directory flush.
//!
//! An insert flushes the object's content, renames it into place and then
//! flushes the store directory so the new name survives a power loss. For
//! a build of thousands of objects, those directory flushes are half of the
//! time. A batch keeps every content flush (a name must never point at
//! unflushed content) and flushes the directory once, in
//! [`ObjectBatch::finish`].
//!
//! Until `finish` returns, a crash may lose some of the batch's names (the
//! content stays flushed, under a temp name `gc` deletes): nothing may refer
//! to the objects, and in particular no generation may be recorded, before
//! it. Dropping a batch without `finish` is safe for the same reason.

use crate::Store;
use crate::atomic;
use crate::error::Result;
use crate::insert::Inserted;
use crate::objects::{ObjectId, ObjectName};

/// Inserts whose directory flush is shared; see the module docs.
#[derive(Debug)]
#[must_use = "the objects' names are not durable until `finish` is called"]
pub struct ObjectBatch<'a> {
    store: &'a Store,
    /// Whether a name was added since the last flush.
    unflushed: bool,
}

impl Store {
    /// Starts a batch of inserts; see [`ObjectBatch`].
    pub fn batch(&self) -> ObjectBatch<'_> {
        ObjectBatch {
            store: self,
            unflushed: false,
        }
    }
}

impl ObjectBatch<'_> {
    /// [`Store::insert_bytes`], except that the new name is durable only
    /// once [`Self::finish`] returns.
    pub fn insert_bytes(
        &mut self,
        name: &ObjectName,
        bytes: &[u8],
    ) -> Result<(ObjectId, Inserted)> {
        let (id, inserted) = self.store.insert_bytes_unflushed(name, bytes)?;
        if let Inserted::Written(_) = inserted {
            self.unflushed = true;
        }
        Ok((id, inserted))
    }

    /// Flushes the store directory once for every object the batch wrote.
    /// After this, the objects are as durable as after single inserts.
    pub fn finish(self) -> Result<()> {
        if self.unflushed {
            atomic::sync_dir(self.store.objects_dir())?;
        }
        Ok(())
    }
}

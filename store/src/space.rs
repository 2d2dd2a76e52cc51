//! The free space of the store's file system, and what an object costs on
//! it: what a build checks before it writes, and what GC frees space for.

use std::io;

use serde::Serialize;

use crate::Store;
use crate::error::{Result, StoreError};

/// The free space of the file system holding the store, as statvfs(2)
/// reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FreeSpace {
    /// Bytes an unprivileged writer may still use (`f_bavail`): what archy,
    /// running as root, is sure to have without eating the reserve.
    pub available: u64,
    /// The file system's allocation unit (`f_frsize`): every file takes a
    /// whole number of them.
    pub block: u64,
}

impl FreeSpace {
    /// What a file of `len` bytes takes on this file system: a whole
    /// number of blocks, and at least one for its inode's data (a small
    /// object costs a block, not its length, on ext4 and tmpfs alike).
    pub fn on_disk(&self, len: u64) -> u64 {
        let block = self.block.max(1);
        len.div_ceil(block).max(1).saturating_mul(block)
    }
}

impl Store {
    /// The free space of the file system the objects live on.
    pub fn free_space(&self) -> Result<FreeSpace> {
        let dir = self.objects_dir();
        let stat = rustix::fs::statvfs(dir).map_err(|errno| {
            StoreError::read("measure the free space of", dir, io::Error::from(errno))
        })?;
        let block = if stat.f_frsize > 0 {
            stat.f_frsize
        } else {
            stat.f_bsize
        };
        Ok(FreeSpace {
            available: stat.f_bavail.saturating_mul(block),
            block,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_object_takes_whole_blocks_and_at_least_one() {
        let space = FreeSpace {
            available: 0,
            block: 4096,
        };
        assert_eq!(space.on_disk(0), 4096);
        assert_eq!(space.on_disk(1), 4096);
        assert_eq!(space.on_disk(4096), 4096);
        assert_eq!(space.on_disk(4097), 8192);
    }
}

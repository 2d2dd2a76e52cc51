//! One archy at a time: an exclusive `flock` on `<state>/lock`.
//!
//! `flock` rather than a pid file because the kernel drops the lock when its
//! holder dies, however it dies: a crashed archy never blocks the next one,
//! and there is no stale-pid guessing. The file also holds the holder's pid
//! and command, only so that the next archy can say who it is waiting for.
//! That record is cleared on release, but a killed holder cannot clear it,
//! and any process may take the lock: so a refused archy names the recorded
//! holder only when the kernel (`/proc/locks`) says that very process holds
//! the lock, and otherwise says which process does, if it can tell.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rustix::fs::{FlockOperation, flock};
use rustix::io::Errno;
use serde::{Deserialize, Serialize};

use crate::StateDir;
use crate::error::{Result, StoreError};

/// Who holds the state lock, as written in the lock file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockHolder {
    /// The holder's process id.
    pub pid: u32,
    /// What it is doing (`archy switch`).
    pub command: String,
}

/// The held state lock; dropping it releases it.
#[derive(Debug)]
pub struct StateLock {
    // The open file description holds the lock.
    file: File,
    path: PathBuf,
}

impl StateLock {
    /// Takes the lock on `state_dir` for `command`. If another process holds
    /// it, waits when `wait` is set, and otherwise fails at once with
    /// [`StoreError::LockHeld`] naming the holder.
    pub fn acquire(state_dir: &StateDir, command: &str, wait: bool) -> Result<Self> {
        crate::create_dir_if_missing(state_dir.path())?;
        let path = state_dir.lock();
        let mut file = open_lock_file(&path)?;
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(Errno::WOULDBLOCK) if wait => {
                let (holder, other_pid) = holder(&mut file);
                tracing::info!(?holder, ?other_pid, path = %path.display(), "waiting for the state lock");
                lock_blocking(&file, &path)?;
            }
            Err(Errno::WOULDBLOCK) => {
                let (holder, other_pid) = holder(&mut file);
                return Err(StoreError::LockHeld {
                    path,
                    holder,
                    other_pid,
                });
            }
            Err(errno) => return Err(StoreError::write("lock", &path, errno.into())),
        }
        let holder = LockHolder {
            pid: std::process::id(),
            command: command.to_owned(),
        };
        write_holder(&mut file, &holder, &path)?;
        Ok(Self { file, path })
    }

    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for StateLock {
    /// Unlocks explicitly rather than relying on the close: a child process
    /// forked by another thread at this moment shares the open file
    /// description until it execs, and the close alone would leave the lock
    /// held through that child.
    fn drop(&mut self) {
        // The record names the holder only while it holds the lock; a
        // failure to clear it is harmless (the next holder checks).
        let _ = self.file.set_len(0);
        if let Err(errno) = flock(&self.file, FlockOperation::Unlock) {
            tracing::warn!(path = %self.path.display(), %errno, "cannot unlock; closing releases it");
        }
    }
}

/// Opens (creating) the lock file. Never truncated here: until the lock is
/// ours, its content belongs to the holder.
fn open_lock_file(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o644)
        .open(path)
        .map_err(|err| StoreError::write("open the lock file", path, err))
}

/// Waits for the lock; a signal interrupting the wait is not a failure.
fn lock_blocking(file: &File, path: &Path) -> Result<()> {
    loop {
        match flock(file, FlockOperation::LockExclusive) {
            Err(Errno::INTR) => continue,
            result => return result.map_err(|errno| StoreError::write("lock", path, errno.into())),
        }
    }
}

/// The holder named in the lock file, if it can be read: the holder may be
/// between truncating and writing it, or be an older archy.
fn read_holder(file: &mut File) -> Option<LockHolder> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut text).ok()?;
    serde_json::from_str(&text).ok()
}

/// Who holds the lock, as far as can be told: the recorded archy when the
/// kernel says that process holds a lock on the file (or, where
/// `/proc/locks` cannot be read, when it is alive); otherwise the pid of
/// the process the kernel names, if any.
fn holder(file: &mut File) -> (Option<LockHolder>, Option<u32>) {
    let recorded = read_holder(file);
    let lockers = file
        .metadata()
        .ok()
        .and_then(|m| flock_holders(std::os::unix::fs::MetadataExt::ino(&m)));
    match lockers {
        Some(pids) => match recorded {
            Some(h) if pids.contains(&h.pid) => (Some(h), None),
            _ => (None, pids.first().copied()),
        },
        None => (
            recorded.filter(|h| Path::new(&format!("/proc/{}", h.pid)).exists()),
            None,
        ),
    }
}

/// The pids holding a `flock` on the file with inode `ino`, as
/// `/proc/locks` lists them (`None` when it cannot be read). Waiters
/// (`->` lines) are not holders.
fn flock_holders(ino: u64) -> Option<Vec<u32>> {
    let text = std::fs::read_to_string("/proc/locks").ok()?;
    Some(parse_locks(&text, ino))
}

/// The holders of `flock` locks on inode `ino` in the text of
/// `/proc/locks`: `1: FLOCK  ADVISORY  WRITE 1234 fe:00:5365990 0 EOF`.
fn parse_locks(text: &str, ino: u64) -> Vec<u32> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.get(1) != Some(&"FLOCK") {
                return None;
            }
            let pid: u32 = fields.get(4)?.parse().ok()?;
            let file_ino: u64 = fields.get(5)?.rsplit(':').next()?.parse().ok()?;
            (file_ino == ino && pid != 0).then_some(pid)
        })
        .collect()
}

/// Replaces the lock file's content with `holder`.
fn write_holder(file: &mut File, holder: &LockHolder, path: &Path) -> Result<()> {
    let json = serde_json::to_string(holder).map_err(io::Error::other);
    json.and_then(|json| {
        file.set_len(0)?;
        file.seek(SeekFrom::Start(0))?;
        file.write_all(format!("{json}\n").as_bytes())
    })
    .map_err(|err| StoreError::write("write the lock file", path, err))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_locks_lines_name_the_holders_of_one_inode() {
        let text = "1: FLOCK  ADVISORY  WRITE 26488 fe:00:5365990 0 EOF\n\
                    1: -> FLOCK  ADVISORY  WRITE 300 fe:00:5365990 0 EOF\n\
                    2: FLOCK  ADVISORY  WRITE 2028 fe:00:5308941 0 EOF\n\
                    3: POSIX  ADVISORY  WRITE 77 fe:00:5365990 0 EOF\n";
        assert_eq!(parse_locks(text, 5365990), [26488]);
        assert_eq!(parse_locks(text, 5308941), [2028]);
        assert!(parse_locks(text, 1).is_empty());
    }
}

//! Errors, written for the operator who reads them: each names the path
//! involved and what to do next.

use std::io;
use std::path::{Path, PathBuf};

use crate::digest::Digest;
use crate::lock::LockHolder;
use crate::objects::ObjectId;
use crate::versioned::NewerFormat;

/// Shorthand for results of store operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Text that is not a valid digest, object name or object id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Not 64 lowercase hex digits.
    #[error("invalid digest {input:?}: {reason}")]
    Digest { input: String, reason: &'static str },
    /// Not a valid `<name>` part.
    #[error("invalid object name {input:?}: {reason}")]
    ObjectName { input: String, reason: &'static str },
    /// Not of the form `<digest>-<name>`.
    #[error("invalid object id {input:?}: {reason}")]
    ObjectId { input: String, reason: &'static str },
}

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Writing failed with EACCES, EPERM or EROFS.
    #[error("cannot write to {}: {}", path.display(), not_writable_hint(source))]
    NotWritable { path: PathBuf, source: io::Error },

    /// Writing failed with ENOSPC or EDQUOT. The half-written temp file has
    /// been removed, so the store is as it was before.
    #[error(
        "the disk holding {} is full; free some space (`archy gc` removes old generations) \
         and try again; nothing was left half-written",
        path.display()
    )]
    DiskFull { path: PathBuf, source: io::Error },

    /// Any other I/O failure.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },

    /// An object's content does not hash to the digest in its name.
    #[error(
        "store object {} is corrupt: its content hashes to {actual}, not to the digest in its \
         name; delete it and run `archy build` to write it again",
        path.display()
    )]
    CorruptObject {
        id: ObjectId,
        path: PathBuf,
        actual: Digest,
    },

    /// An object that was asked for is not in the store.
    #[error("object {id} is not in the store (no {}); run `archy build` to write it", path.display())]
    ObjectNotFound { id: ObjectId, path: PathBuf },

    /// A generation was to be recorded while objects it lists are missing:
    /// a record must never point at objects that are not there.
    #[error(
        "cannot record the generation: {} of the objects it needs {} missing from {} \
         (first: {}); build again so every object is written first",
        missing.len(),
        if missing.len() == 1 { "is" } else { "are" },
        store.display(),
        missing.first().map(ToString::to_string).unwrap_or_default()
    )]
    MissingObjects {
        missing: Vec<ObjectId>,
        store: PathBuf,
    },

    /// A generation record exists but cannot be read or parsed.
    #[error(
        "generation record {} is broken: {reason}; restore it from a backup or delete it \
         (the other generations are unaffected)",
        path.display()
    )]
    BrokenRecord {
        number: u64,
        path: PathBuf,
        reason: String,
    },

    /// The generation asked for has no record.
    #[error(
        "generation {number} does not exist (no {}); `archy generations` lists the ones that do",
        path.display()
    )]
    NoSuchGeneration { number: u64, path: PathBuf },

    /// `current` or `last-good` is not a link to `generations/<N>`.
    #[error(
        "{} should be a symlink to generations/<N>, but {reason}; remove it and run \
         `archy rollback --to N`",
        path.display()
    )]
    BadLink { path: PathBuf, reason: String },

    /// A generation's root is not 64 lowercase hex digits.
    #[error("invalid generation root: {0}")]
    InvalidRoot(#[source] ParseError),

    /// A file given to `insert_file` changed while it was being copied, so
    /// the copy may mix old and new content.
    #[error(
        "{} changed while it was being copied into the store; try again once nothing writes to it",
        path.display()
    )]
    SourceChanged { path: PathBuf },

    /// Software whose bytes are not what its author declared: nothing was
    /// stored.
    #[error(
        "{} hashes to {actual}, but the node declares {declared}; nothing was stored. \
         Check the source, or declare the right hash (`archy hash file` prints a file's)",
        path.display()
    )]
    HashMismatch {
        path: PathBuf,
        declared: String,
        actual: String,
    },

    /// A record of the state dir was written by a newer archy.
    #[error(transparent)]
    NewerFormat(#[from] NewerFormat),

    /// Another process holds the state lock: `holder`, the archy that
    /// does; otherwise `other_pid`, the process the kernel says holds it,
    /// if it can tell.
    #[error(
        "{}; wait for it or pass --wait",
        holder_text(holder.as_ref(), *other_pid, path)
    )]
    LockHeld {
        path: PathBuf,
        holder: Option<LockHolder>,
        other_pid: Option<u32>,
    },
}

impl StoreError {
    /// An I/O failure while writing under `path`: classified so that a full
    /// disk or a read-only state dir get their own, actionable message.
    pub(crate) fn write(action: &'static str, path: &Path, source: io::Error) -> Self {
        let path = path.to_owned();
        if is_disk_full(&source) {
            Self::DiskFull { path, source }
        } else if is_not_writable(&source) {
            Self::NotWritable { path, source }
        } else {
            Self::Io {
                action,
                path,
                source,
            }
        }
    }

    /// An I/O failure while reading `path`.
    pub(crate) fn read(action: &'static str, path: &Path, source: io::Error) -> Self {
        Self::Io {
            action,
            path: path.to_owned(),
            source,
        }
    }
}

/// Whether `error` means "no space left" (ENOSPC) or "quota exceeded"
/// (EDQUOT): both are cured by freeing space.
pub fn is_disk_full(error: &io::Error) -> bool {
    use rustix::io::Errno;
    matches!(
        error.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    ) || [Errno::NOSPC, Errno::DQUOT]
        .iter()
        .any(|errno| error.raw_os_error() == Some(errno.raw_os_error()))
}

/// Whether `error` means the state dir cannot be written at all.
fn is_not_writable(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem
    )
}

/// The reason and the fix for a [`StoreError::NotWritable`].
fn not_writable_hint(error: &io::Error) -> &'static str {
    if error.kind() == io::ErrorKind::ReadOnlyFilesystem {
        "the file system is mounted read-only; remount it read-write or pass --state-dir"
    } else {
        "permission denied; run as root or pass --state-dir"
    }
}

/// Who holds the lock, for [`StoreError::LockHeld`].
fn holder_text(holder: Option<&LockHolder>, other_pid: Option<u32>, path: &Path) -> String {
    match (holder, other_pid) {
        (Some(holder), _) => format!(
            "another archy is running (pid {}: {})",
            holder.pid, holder.command
        ),
        (None, Some(pid)) => {
            let name = std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .map(|c| format!(" ({})", c.trim()))
                .unwrap_or_default();
            format!(
                "the state lock {} is held by another process: pid {pid}{name}",
                path.display()
            )
        }
        (None, None) => format!(
            "the state lock {} is held by another process",
            path.display()
        ),
    }
}

#[cfg(test)]
mod tests {
    use rustix::io::Errno;

    use super::*;

    fn os_error(errno: Errno) -> io::Error {
        io::Error::from_raw_os_error(errno.raw_os_error())
    }

    #[test]
    fn permission_denied_says_to_run_as_root_and_names_the_path() {
        let err = StoreError::write(
            "write",
            Path::new("/var/lib/archy/store"),
            os_error(Errno::ACCESS),
        );
        assert!(matches!(err, StoreError::NotWritable { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "cannot write to /var/lib/archy/store: permission denied; run as root or pass --state-dir"
        );
    }

    #[test]
    fn no_space_and_quota_are_a_full_disk() {
        for errno in [Errno::NOSPC, Errno::DQUOT] {
            let err = StoreError::write("write", Path::new("/x"), os_error(errno));
            assert!(
                matches!(err, StoreError::DiskFull { .. }),
                "{errno:?}: {err:?}"
            );
            assert!(
                err.to_string().starts_with("the disk holding /x is full"),
                "{err}"
            );
        }
    }

    #[test]
    fn other_failures_keep_the_action_and_the_cause() {
        let err = StoreError::write(
            "rename a temp file in",
            Path::new("/x"),
            os_error(Errno::IO),
        );
        assert!(matches!(err, StoreError::Io { .. }), "{err:?}");
        assert!(
            err.to_string()
                .starts_with("cannot rename a temp file in /x: "),
            "{err}"
        );
    }
}

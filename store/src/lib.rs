//! archy's content-addressed store and its generations.
//!
//! Everything lives under one state dir (`/var/lib/archy` on a node),
//! whose layout [`StateDir`] names; the store's part of it:
//!
//! ```text
//! <state>/store/<64-hex-blake3>-<name>   immutable objects, mode 0444
//! <state>/generations/<N>                one JSON record per generation
//! <state>/current -> generations/N       flipped by an atomic rename
//! <state>/last-good -> generations/N     likewise
//! <state>/previous -> generations/N      likewise
//! <state>/lock                           flock'ed by the running archy
//! ```
//!
//! Every JSON record of the state dir names its format ([`versioned`]), so
//! a newer archy's record is refused rather than misread.
//!
//! The store knows nothing about what objects mean: an object is bytes named
//! by their blake3 digest, so verifying one is re-hashing it. Every write
//! follows the same protocol (temp file, fsync, atomic rename, directory
//! fsync; a batch flushes all its temp files with one `syncfs` instead),
//! so a crash at any point leaves a valid store.
//!
//! Operations that change the state dir assume the caller holds the
//! [`StateLock`]; the primitives never overwrite an object or a record
//! either way, but GC and temp-file cleanup cannot tell a running insert
//! from a leftover of a crash.

mod atomic;
mod batch;
mod digest;
mod error;
mod gc;
mod generations;
mod insert;
mod links;
mod lock;
mod objects;
pub mod retention;
mod rotations;
mod software;
mod space;
mod state_dir;
mod verify;
pub mod versioned;

use std::fs::DirBuilder;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

pub use atomic::replace_file;
pub use batch::ObjectBatch;
pub use digest::Digest;
pub use error::{ParseError, Result, StoreError, is_disk_full};
pub use gc::GcReport;
pub use generations::{BrokenRecord, GenerationDraft, GenerationEntry, GenerationRecord, Outcome};
pub use insert::Inserted;
pub use lock::{LockHolder, StateLock};
pub use objects::{MAX_NAME_LEN, ObjectId, ObjectName};
pub use retention::GcPolicy;
pub use rotations::{RotationsError, SecretRotations};
pub use software::{Expected, FileHashes};
pub use space::FreeSpace;
pub use state_dir::{DEFAULT_STATE_DIR, Link, StateDir};
pub use verify::{CorruptObject, MissingReference, UnreadableObject, VerifyReport};
pub use versioned::{NewerFormat, VersionedRecord};

/// The store and generations under one state dir.
#[derive(Debug, Clone)]
pub struct Store {
    state_dir: StateDir,
    objects_dir: PathBuf,
    generations_dir: PathBuf,
}

impl Store {
    /// Opens the store under `state_dir`, creating the directories that are
    /// missing (an existing store on a read-only disk opens fine, for
    /// reading).
    pub fn open(state_dir: &StateDir) -> Result<Self> {
        let store = Self {
            state_dir: state_dir.clone(),
            objects_dir: state_dir.objects(),
            generations_dir: state_dir.generations(),
        };
        for dir in [
            store.state_dir.path(),
            &store.objects_dir,
            &store.generations_dir,
        ] {
            create_dir_if_missing(dir)?;
        }
        Ok(store)
    }

    /// The state dir this store lives in.
    pub fn state_dir(&self) -> &StateDir {
        &self.state_dir
    }

    /// The directory holding the objects (`<state>/store`).
    pub fn objects_dir(&self) -> &Path {
        &self.objects_dir
    }

    /// The directory holding the generation records (`<state>/generations`).
    pub fn generations_dir(&self) -> &Path {
        &self.generations_dir
    }
}

/// A size for people: `512 B`, `3.4 KiB`, `1.2 GiB` (for messages and
/// reports).
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    // Precision is irrelevant here; the value is only printed.
    #[allow(clippy::cast_precision_loss)]
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Creates `dir` (mode 0755: objects are world-readable so that services
/// running as their own users can read the files archy links to) unless it
/// exists. Checking first keeps opening an existing store from writing.
fn create_dir_if_missing(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)
        .map_err(|err| StoreError::write("create the directory", dir, err))
}

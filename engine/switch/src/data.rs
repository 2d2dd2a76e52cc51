//! Data on the node: the version each contract's directory is at
//! (`<state>/data/<name>.json`), the snapshots taken before migrations
//! (`<state>/snapshots/<N>/<name>/`), and the steps a plan asks for
//! (see `archy_plan::data`).
//!
//! Every step can be cut off at any moment and run again: a snapshot is
//! made under a temporary name and renamed when whole; a restore or a
//! rebuild makes the new contents beside the directory and swaps the two
//! in one `renameat2(RENAME_EXCHANGE)`, so the directory is always wholly
//! the old data or wholly the new, never half of each; the version is
//! recorded after the data is in place.

use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use archy_graph::Graph;
use archy_graph::data::{DataKind, contracts};
use archy_plan::Observed;
use archy_plan::data::{DataStep, SnapshotSeen};
use archy_store::{Digest, StateDir};
use serde::{Deserialize, Serialize};

/// A plain (not reflinked) snapshot copies at most this many bytes by
/// default: past it, the migration goes ahead without a snapshot (and a
/// failed one then leaves the app for the operator). A reflink copy
/// shares the blocks and has no limit. `ARCHY_SNAPSHOT_COPY_LIMIT`
/// (bytes) sets another.
pub const COPY_LIMIT: u64 = 8 << 30;

/// What `<state>/data/<name>.json` says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataRecord {
    pub version: u32,
    pub path: String,
    pub kind: DataKind,
    /// The generation whose switch recorded it.
    pub generation: u64,
}

/// What a snapshot's `meta.json` says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotMeta {
    pub version: u32,
    pub path: String,
    pub bytes: u64,
    pub reflink: bool,
}

/// How a directory was copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Copied {
    pub bytes: u64,
    /// The copy shares its blocks with the original (btrfs, xfs).
    pub reflink: bool,
}

/// Why a snapshot was not taken.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error(
        "{bytes} bytes, over the {limit}-byte limit of a plain copy (this file system cannot reflink)"
    )]
    TooLarge { bytes: u64, limit: u64 },
    #[error("{0}")]
    Io(#[from] io::Error),
}

fn record_path(state: &StateDir, name: &str) -> PathBuf {
    state.data_versions().join(format!("{name}.json"))
}

fn snapshot_dir(state: &StateDir, generation: u64, name: &str) -> PathBuf {
    state.snapshots().join(generation.to_string()).join(name)
}

/// `path` (absolute) under the node's root.
fn on_node(root: &Path, path: &str) -> PathBuf {
    root.join(path.trim_start_matches('/'))
}

/// The recorded version of data `name`, if any.
pub fn recorded(state: &StateDir, name: &str) -> Option<DataRecord> {
    let bytes = fs::read(record_path(state, name)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Fills in what a plan for `new` needs to know of data: the versions on
/// disk, and the complete snapshots (with, for forward-only data newer
/// than `new` reads, whether the app opened it since).
pub fn observe(state: &StateDir, root: &Path, new: &Graph, observed: &mut Observed) {
    for c in contracts(new) {
        let name = c.name.as_str();
        let Some(record) = recorded(state, name) else {
            continue;
        };
        observed.data.insert(name.to_string(), record.version);
        let needs_opened = record.version > c.version && c.kind == DataKind::ForwardOnly;
        let mut seen = Vec::new();
        for (generation, dir) in snapshots_of(state, name) {
            let Some(meta) = read_meta(&dir) else {
                continue;
            };
            let opened = match (&c.opened, needs_opened && meta.version == c.version) {
                (Some(file), true) => Some(differs(
                    &on_node(root, c.path.as_str()).join(file),
                    &dir.join("data").join(file),
                )),
                _ => None,
            };
            seen.push(SnapshotSeen {
                generation,
                version: meta.version,
                opened,
            });
        }
        if !seen.is_empty() {
            observed.snapshots.insert(name.to_string(), seen);
        }
    }
}

/// The apps of `graph` whose data is newer than their code reads (a
/// rollback left them stopped for the operator), each as its drift and
/// the units that stay stopped.
pub fn held(state: &StateDir, graph: &Graph) -> Vec<(archy_plan::Drift, Vec<String>)> {
    contracts(graph)
        .filter_map(|c| {
            let record = recorded(state, c.name.as_str())?;
            if record.version <= c.version {
                return None;
            }
            let app = archy_graph::data::owner(graph, c)
                .map_or_else(|| c.name.to_string(), |a| a.name.to_string());
            let units = archy_graph::data::units(graph, c)
                .iter()
                .map(ToString::to_string)
                .collect();
            let drift = archy_plan::Drift::DataHeld {
                app,
                data: c.name.to_string(),
                on_disk: record.version,
                reads: c.version,
            };
            Some((drift, units))
        })
        .collect()
}

/// The complete snapshots of data `name`, by generation.
fn snapshots_of(state: &StateDir, name: &str) -> Vec<(u64, PathBuf)> {
    let Ok(dir) = fs::read_dir(state.snapshots()) else {
        return Vec::new();
    };
    let mut out: Vec<(u64, PathBuf)> = dir
        .flatten()
        .filter_map(|e| {
            let generation = e.file_name().to_str()?.parse::<u64>().ok()?;
            let snap = e.path().join(name);
            snap.join("meta.json")
                .is_file()
                .then_some((generation, snap))
        })
        .collect();
    out.sort();
    out
}

fn read_meta(dir: &Path) -> Option<SnapshotMeta> {
    serde_json::from_slice(&fs::read(dir.join("meta.json")).ok()?).ok()
}

/// Whether two files differ: one there and not the other, or other bytes.
/// A file that cannot be read counts as changed (the safe answer).
fn differs(a: &Path, b: &Path) -> bool {
    match (a.exists(), b.exists()) {
        (false, false) => false,
        (true, true) => match (Digest::of_file(a), Digest::of_file(b)) {
            (Ok(x), Ok(y)) => x != y,
            _ => true,
        },
        _ => true,
    }
}

/// Records that the data of `step` is at version `step.to`, written by
/// generation `generation`'s switch (temp file, fsync, rename).
pub fn record(state: &StateDir, step: &DataStep, generation: u64) -> io::Result<()> {
    write_record(state, step, step.to, generation)
}

fn write_record(
    state: &StateDir,
    step: &DataStep,
    version: u32,
    generation: u64,
) -> io::Result<()> {
    let record = DataRecord {
        version,
        path: step.path.clone(),
        kind: step.kind,
        generation,
    };
    let dir = state.data_versions();
    fs::create_dir_all(&dir)?;
    let bytes = serde_json::to_vec_pretty(&record).map_err(io::Error::other)?;
    archy_store::replace_file(&record_path(state, &step.name), &bytes, 0o644)
}

/// Snapshots the data of `step` (at version `step.from`) for the switch
/// to generation `generation`. None: there was nothing to snapshot (the
/// directory does not exist).
pub fn snapshot(
    state: &StateDir,
    root: &Path,
    step: &DataStep,
    generation: u64,
    copied_hook: impl Fn(),
) -> Result<Option<Copied>, CopyError> {
    let source = on_node(root, &step.path);
    if !source.is_dir() {
        return Ok(None);
    }
    let started = Instant::now();
    let done = snapshot_dir(state, generation, &step.name);
    let parent = done.parent().unwrap_or(Path::new("/"));
    fs::create_dir_all(parent)?;
    // Only root reads what apps keep (a wallet, keys).
    fs::set_permissions(state.snapshots(), fs::Permissions::from_mode(0o700))?;
    let partial = parent.join(format!(".{}.partial", step.name));
    remove_if_present(&partial)?;
    if done.exists() {
        // Taken already, by this switch before it was cut off.
        return Ok(read_meta(&done).map(|m| Copied {
            bytes: m.bytes,
            reflink: m.reflink,
        }));
    }
    fs::create_dir(&partial)?;
    let copied = copy_dir(&source, &partial.join("data"), copy_limit())?;
    copied_hook();
    let meta = SnapshotMeta {
        version: step.from.unwrap_or(step.to),
        path: step.path.clone(),
        bytes: copied.bytes,
        reflink: copied.reflink,
    };
    let bytes = serde_json::to_vec_pretty(&meta).map_err(io::Error::other)?;
    archy_store::replace_file(&partial.join("meta.json"), &bytes, 0o600)?;
    fs::rename(&partial, &done)?;
    sync_dir(parent)?;
    tracing::info!(
        target: "archy::timing",
        "snapshot of {} ({} bytes, {}): {:.1} ms",
        step.path,
        copied.bytes,
        if copied.reflink { "reflink" } else { "copy" },
        started.elapsed().as_secs_f64() * 1e3
    );
    Ok(Some(copied))
}

fn copy_limit() -> u64 {
    std::env::var("ARCHY_SNAPSHOT_COPY_LIMIT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(COPY_LIMIT)
}

/// Copies directory `from` to `to` (which must not exist) with owners,
/// modes, times and extended attributes: as reflinks where the file
/// system can (btrfs, xfs made with reflink=1, the default since
/// xfsprogs 5.1), otherwise as a plain copy of at most `limit` bytes
/// (ext4 and tmpfs cannot reflink). `cp` does this well; archy does not
/// do it again.
pub fn copy_dir(from: &Path, to: &Path, limit: u64) -> Result<Copied, CopyError> {
    let bytes = dir_bytes(from)?;
    if cp(from, to, "always").is_ok() {
        return Ok(Copied {
            bytes,
            reflink: true,
        });
    }
    remove_if_present(to)?;
    if bytes > limit {
        return Err(CopyError::TooLarge { bytes, limit });
    }
    cp(from, to, "never")?;
    Ok(Copied {
        bytes,
        reflink: false,
    })
}

fn cp(from: &Path, to: &Path, reflink: &str) -> io::Result<()> {
    let out = Command::new("cp")
        .arg("-a")
        .arg(format!("--reflink={reflink}"))
        .arg("--")
        .arg(from)
        .arg(to)
        .output()?;
    if out.status.success() {
        // The copy is on disk before anything depends on it.
        Command::new("sync").arg("-f").arg(to).status()?;
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "cp {} {}: {}",
            from.display(),
            to.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// The bytes of the regular files under `dir`.
fn dir_bytes(dir: &Path) -> io::Result<u64> {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d)? {
            let entry = entry?;
            let meta = entry.metadata()?;
            if meta.is_dir() {
                stack.push(entry.path());
            } else if meta.is_file() {
                total += meta.len();
            }
        }
    }
    Ok(total)
}

/// Puts the data of `step` back from the snapshot generation
/// `generation`'s switch took, then records its version.
pub fn restore(
    state: &StateDir,
    root: &Path,
    step: &DataStep,
    generation: u64,
    now: u64,
    copied_hook: impl Fn(),
) -> io::Result<()> {
    let snap = snapshot_dir(state, generation, &step.name);
    let meta = read_meta(&snap).ok_or_else(|| {
        io::Error::other(format!(
            "the snapshot {} is missing or incomplete",
            snap.display()
        ))
    })?;
    let target = on_node(root, &step.path);
    let staged = beside(&target, "archy-restore");
    remove_if_present(&staged)?;
    copy_dir(&snap.join("data"), &staged, u64::MAX).map_err(|e| match e {
        CopyError::Io(e) => e,
        other => io::Error::other(other.to_string()),
    })?;
    copied_hook();
    swap_in(&target, &staged)?;
    write_record(state, step, meta.version, now)
}

/// Empties the data of `step` (its app makes it again), keeping the
/// directory's owner and mode, then records the version.
pub fn rebuild(state: &StateDir, root: &Path, step: &DataStep, now: u64) -> io::Result<()> {
    let target = on_node(root, &step.path);
    if let Ok(meta) = fs::metadata(&target) {
        let staged = beside(&target, "archy-rebuild");
        remove_if_present(&staged)?;
        fs::create_dir(&staged)?;
        std::os::unix::fs::chown(&staged, Some(meta.uid()), Some(meta.gid()))?;
        fs::set_permissions(&staged, fs::Permissions::from_mode(meta.mode() & 0o7777))?;
        swap_in(&target, &staged)?;
    }
    record(state, step, now)
}

/// `<dir>/.<name>.<what>`: beside `target`, on its file system.
fn beside(target: &Path, what: &str) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    target.with_file_name(format!(".{name}.{what}"))
}

/// Makes `staged` the contents of `target` in one step, then removes what
/// was there. A target that does not exist is simply renamed into place.
fn swap_in(target: &Path, staged: &Path) -> io::Result<()> {
    if target.exists() {
        rustix::fs::renameat_with(
            rustix::fs::CWD,
            staged,
            rustix::fs::CWD,
            target,
            rustix::fs::RenameFlags::EXCHANGE,
        )?;
    } else {
        fs::rename(staged, target)?;
    }
    if let Some(parent) = target.parent() {
        sync_dir(parent)?;
    }
    remove_if_present(staged)
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_dir_all(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Flushes a directory, so the renames in it survive a power loss.
fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

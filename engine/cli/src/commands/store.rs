//! `archy store verify`, and what every command that uses the store shares:
//! where the state dir is, taking the lock, and turning store errors into
//! messages with exit codes.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use archy_build::{BuildError, LoadError};
use archy_store::{StateLock, Store, StoreError, VerifyReport};
use clap::Subcommand;

use crate::CliError;

/// `archy store ...`: inspecting the store itself.
#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Re-hash every object and check that every generation can be loaded;
    /// exits 3 if anything is corrupt or missing.
    Verify,
}

/// The state dir as seen from here: under `--root` when one is given, so an
/// image can be built offline into a mounted file system.
pub fn state_dir(state_dir: &Path, root: Option<&Path>) -> PathBuf {
    archy_store::StateDir::under_root(state_dir, root)
        .path()
        .to_owned()
}

/// Takes the state lock for `command` (waiting for it with `wait`).
pub fn lock(state_dir: &Path, command: &str, wait: bool) -> Result<StateLock, CliError> {
    StateLock::acquire(&archy_store::StateDir::new(state_dir), command, wait).map_err(store_error)
}

/// Opens the store under `state_dir`.
pub fn open(state_dir: &Path) -> Result<Store, CliError> {
    Store::open(&archy_store::StateDir::new(state_dir)).map_err(store_error)
}

/// A store error as the CLI reports it. The store's messages already say
/// what happened and what to do; the exit code says whose problem it is.
pub fn store_error(err: StoreError) -> CliError {
    let message = err.to_string();
    match err {
        // Another archy is working: the command was fine, just not now.
        StoreError::LockHeld { .. } => CliError::input(message),
        StoreError::NoSuchGeneration { .. } | StoreError::SourceChanged { .. } => {
            CliError::input(message)
        }
        // A full disk, a read-only state dir, corruption: nothing the
        // node description can fix.
        _ => CliError::system(message),
    }
}

/// A build error as the CLI reports it.
pub fn build_error(err: BuildError) -> CliError {
    match err {
        BuildError::Store(err) => store_error(err),
        other => CliError::system(other.to_string()),
    }
}

/// A size for people: `512 B`, `3.4 KiB`, `1.2 GiB`.
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

/// `n thing` or `n things`.
pub fn count(n: usize, thing: &str) -> String {
    if n == 1 {
        format!("1 {thing}")
    } else {
        format!("{n} {thing}s")
    }
}

pub fn run(command: &StoreCommand, state_dir: &Path) -> Result<(), CliError> {
    match command {
        StoreCommand::Verify => verify(state_dir),
    }
}

/// Checks every object and every generation. Takes no lock: it only reads,
/// and must work on a store whose disk has gone read-only.
fn verify(state_dir: &Path) -> Result<(), CliError> {
    // Opening creates a missing store; checking must not write.
    if !state_dir.join("store").is_dir() {
        println!(
            "no store in {} yet; `archy build` creates it",
            state_dir.display()
        );
        return Ok(());
    }
    let store = open(state_dir)?;
    let report = store.verify().map_err(store_error)?;
    let unloadable = unloadable_generations(&store)?;
    print!("{}", verify_text(&store, &report, &unloadable));
    let problems = problem_summary(&report, unloadable.len());
    if problems.is_empty() {
        return Ok(());
    }
    Err(CliError::system(format!(
        "the store at {} has problems: {}",
        store.state_dir().path().display(),
        problems.join(", ")
    ))
    .hint(
        "delete the corrupt objects and run `archy build` to write them again; a broken \
         generation record can be restored from a backup or deleted",
    ))
}

/// The generations whose records parse but whose graph cannot be loaded
/// (an object missing, corrupt or not what the graph says). A rollback to
/// them would fail, which is what an operator needs to know.
fn unloadable_generations(store: &Store) -> Result<Vec<(u64, LoadError)>, CliError> {
    let mut unloadable = Vec::new();
    for entry in store.generations().map_err(store_error)? {
        let Some(record) = entry.record() else {
            // Already in the verify report as a broken record.
            continue;
        };
        if let Err(err) = archy_build::load(store, record.number) {
            unloadable.push((record.number, err));
        }
    }
    Ok(unloadable)
}

/// What is wrong, by kind (`1 corrupt object`), empty if nothing is.
fn problem_summary(report: &VerifyReport, unloadable: usize) -> Vec<String> {
    [
        (report.corrupt.len(), "corrupt object", "corrupt objects"),
        (
            report.unreadable.len(),
            "unreadable object",
            "unreadable objects",
        ),
        (
            report.unknown.len(),
            "entry that is not an object",
            "entries that are not objects",
        ),
        (report.missing.len(), "missing object", "missing objects"),
        (
            report.broken_records.len(),
            "broken generation record",
            "broken generation records",
        ),
        (
            unloadable,
            "generation that cannot be loaded",
            "generations that cannot be loaded",
        ),
    ]
    .into_iter()
    .filter(|(n, _, _)| *n > 0)
    .map(|(n, one, many)| format!("{n} {}", if n == 1 { one } else { many }))
    .collect()
}

/// The report for people: one line per problem.
fn verify_text(store: &Store, report: &VerifyReport, unloadable: &[(u64, LoadError)]) -> String {
    let mut out = String::new();
    for corrupt in &report.corrupt {
        let _ = writeln!(
            out,
            "corrupt: {}\n  its content hashes to {}",
            corrupt.path.display(),
            corrupt.actual
        );
    }
    for unreadable in &report.unreadable {
        let _ = writeln!(
            out,
            "unreadable: {}: {}",
            unreadable.path.display(),
            unreadable.error
        );
    }
    for path in &report.unknown {
        let _ = writeln!(out, "not an object: {}", path.display());
    }
    for missing in &report.missing {
        let _ = writeln!(
            out,
            "missing: generation {} needs {}",
            missing.generation, missing.id
        );
    }
    for broken in &report.broken_records {
        let _ = writeln!(
            out,
            "broken record: generation {} ({}): {}",
            broken.number,
            broken.path.display(),
            broken.reason
        );
    }
    for (number, err) in unloadable {
        let _ = writeln!(out, "generation {number} cannot be loaded: {err}");
    }
    if !report.temp_leftovers.is_empty() {
        let _ = writeln!(
            out,
            "{} left by an interrupted write (harmless; `archy gc` deletes them)",
            count(report.temp_leftovers.len(), "temp file")
        );
    }
    let verdict = if problem_summary(report, unloadable.len()).is_empty() {
        "all intact"
    } else {
        "problems found"
    };
    let _ = writeln!(
        out,
        "checked {} in {}: {verdict}",
        count(report.objects_checked, "object"),
        store.objects_dir().display()
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_people_write_them() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1024), "1.0 KiB");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(256 * 1024 * 1024), "256.0 MiB");
    }

    #[test]
    fn the_state_dir_moves_under_the_root() {
        let dir = Path::new("/var/lib/archy");
        assert_eq!(state_dir(dir, None), dir);
        assert_eq!(
            state_dir(dir, Some(Path::new("/mnt/image"))),
            Path::new("/mnt/image/var/lib/archy")
        );
    }
}

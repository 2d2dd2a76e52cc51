//! The node's secret rotations, `<state-dir>/rotations.json`, as the CLI
//! reports them: the record itself (how often each secret was rotated,
//! never values) is read and written by `archy_store`; this only turns its
//! errors into messages with exit codes. Every command that evaluates
//! reads the counts through [`read`], so `eval`, `build`, `diff` and
//! `switch` see the same versions.

use std::path::{Path, PathBuf};

use archy_eval::Rotations;
use archy_store::{RotationsError, StateDir};

use crate::CliError;

/// Where the rotations of the node with this state dir are kept.
pub fn path(state_dir: &Path) -> PathBuf {
    StateDir::new(state_dir).rotations()
}

/// The recorded rotations; none when the file does not exist. A file that
/// is not a JSON object of secret names to counts is an error that names
/// the file and says what to do.
pub fn read(state_dir: &Path) -> Result<Rotations, CliError> {
    StateDir::new(state_dir)
        .read_rotations()
        .map_err(rotations_error)
}

/// Replaces the recorded rotations atomically. The caller holds the state
/// lock.
pub fn write(state_dir: &Path, rotations: &Rotations) -> Result<(), CliError> {
    StateDir::new(state_dir)
        .write_rotations(rotations)
        .map_err(rotations_error)
}

/// A rotations error as the CLI reports it: a malformed file is the
/// operator's to fix (exit 1, with what to do); the rest are the system's.
fn rotations_error(err: RotationsError) -> CliError {
    match err {
        RotationsError::Malformed { .. } => {
            CliError::input(err.to_string()).hint(RotationsError::MALFORMED_HINT)
        }
        other => CliError::system(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    /// The temp file a write goes through (archy_store::replace_file).
    const TEMP: &str = ".tmp-rotations.json";

    #[test]
    fn a_missing_file_is_no_rotations_and_a_write_reads_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(read(dir.path()).expect("read").is_empty());
        let counts: Rotations = [("rpc".to_string(), 2)].into();
        write(dir.path(), &counts).expect("write");
        assert_eq!(read(dir.path()).expect("read"), counts);
        assert!(!dir.path().join(TEMP).exists());
        // A leftover temp file of a crash does not stop the next write.
        fs::write(dir.path().join(TEMP), "{").expect("leftover");
        write(dir.path(), &Rotations::new()).expect("write");
        assert!(read(dir.path()).expect("read").is_empty());
    }

    #[test]
    fn a_malformed_file_names_itself_and_what_to_do() {
        let dir = tempfile::tempdir().expect("tempdir");
        for bad in [
            "{",
            "[1]",
            r#"{"rpc": -1}"#,
            r#"{"rpc": "2"}"#,
            "{\"rpc\": 4294967296}",
        ] {
            fs::write(path(dir.path()), bad).expect("write");
            let e = read(dir.path()).expect_err(bad);
            assert_eq!(e.code, 1);
            assert!(e.message.contains("rotations.json"), "{}", e.message);
            assert!(e.hint.is_some_and(|h| h.contains("delete it")));
        }
    }
}

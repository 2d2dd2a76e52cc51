//! The node's secret rotations: `<state-dir>/rotations.json`, how often
//! `archy secret rotate` rotated each secret (`{"bitcoin-rpc-password": 1}`).
//! It holds counts, never values. Like the host facts, the counts are read
//! here, by the facade, and given to the evaluator as an input: every command
//! that evaluates reads them through [`read`], so `eval`, `build`, `diff`
//! and `switch` see the same versions.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use archy_eval::Rotations;

/// Why the rotations could not be read or recorded.
#[derive(Debug, thiserror::Error)]
pub enum RotationsError {
    #[error("cannot read the secret rotations {}: {source}", .path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("{} is not a valid rotations file: {why}", .path.display())]
    Malformed { path: PathBuf, why: String },
    #[error("cannot record the secret rotations in {}: {what}: {source}", .path.display())]
    Write {
        path: PathBuf,
        what: &'static str,
        source: io::Error,
    },
}

impl RotationsError {
    /// A file a person can fix (as opposed to a disk that fails).
    pub fn is_malformed(&self) -> bool {
        matches!(self, RotationsError::Malformed { .. })
    }

    pub fn hint(&self) -> Option<&'static str> {
        self.is_malformed().then_some(
            "it holds how often each secret was rotated, as a JSON object like \
             {\"bitcoin-rpc-password\": 1}; fix it, or delete it to forget every rotation \
             (the next switch then makes new values for the secrets that were rotated)",
        )
    }
}

/// The file's name in the state dir.
pub const FILE: &str = "rotations.json";

/// Where the rotations of the node with this state dir are kept.
pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(FILE)
}

/// The recorded rotations; none when the file does not exist. A file that
/// is not a JSON object of secret names to counts is an error that names
/// the file and says what to do.
pub fn read(state_dir: &Path) -> Result<Rotations, RotationsError> {
    let path = path(state_dir);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Rotations::new()),
        Err(source) => return Err(RotationsError::Read { path, source }),
    };
    serde_json::from_slice::<Rotations>(&bytes).map_err(|e| RotationsError::Malformed {
        path,
        why: e.to_string(),
    })
}

/// Replaces the recorded rotations atomically: a temp file in the state
/// dir, flushed, renamed over the old file, the directory flushed. A crash
/// leaves the old file or the new one. The caller holds the state lock.
pub fn write(state_dir: &Path, rotations: &Rotations) -> Result<(), RotationsError> {
    let path = path(state_dir);
    let fail = |what, source| RotationsError::Write {
        path: path.clone(),
        what,
        source,
    };
    let mut text =
        serde_json::to_string_pretty(rotations).map_err(|e| fail("encode", io::Error::other(e)))?;
    text.push('\n');
    archy_store::replace_file(&path, text.as_bytes(), 0o644).map_err(|e| fail("write", e))
}

#[cfg(test)]
mod tests {
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
            assert!(e.is_malformed());
            assert!(e.to_string().contains("rotations.json"), "{e}");
            assert!(e.hint().is_some_and(|h| h.contains("delete it")));
        }
    }
}

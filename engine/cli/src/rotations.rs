//! The node's secret rotations: `<state-dir>/rotations.json`, how often
//! `archy secret rotate` rotated each secret (`{"bitcoin-rpc-password": 1}`).
//! It holds counts, never values. Like the host facts, the counts are read
//! here, by the CLI, and given to the evaluator as an input: every command
//! that evaluates reads them through [`read`], so `eval`, `build`, `diff`
//! and `switch` see the same versions.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use archy_eval::Rotations;

use crate::CliError;

/// The file's name in the state dir.
pub const FILE: &str = "rotations.json";

/// Where the rotations of the node with this state dir are kept.
pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(FILE)
}

/// The recorded rotations; none when the file does not exist. A file that
/// is not a JSON object of secret names to counts is an error that names
/// the file and says what to do.
pub fn read(state_dir: &Path) -> Result<Rotations, CliError> {
    let path = path(state_dir);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Rotations::new()),
        Err(e) => {
            return Err(CliError::system(format!(
                "cannot read the secret rotations {}: {e}",
                path.display()
            )));
        }
    };
    serde_json::from_slice::<Rotations>(&bytes).map_err(|e| malformed(&path, &e.to_string()))
}

/// The error for a rotations file that cannot be used.
fn malformed(path: &Path, why: &str) -> CliError {
    CliError::input(format!(
        "{} is not a valid rotations file: {why}",
        path.display()
    ))
    .hint(
        "it holds how often each secret was rotated, as a JSON object like \
         {\"bitcoin-rpc-password\": 1}; fix it, or delete it to forget every rotation \
         (the next switch then makes new values for the secrets that were rotated)",
    )
}

/// Replaces the recorded rotations atomically: a temp file in the state
/// dir, flushed, renamed over the old file, the directory flushed. A crash
/// leaves the old file or the new one. The caller holds the state lock.
pub fn write(state_dir: &Path, rotations: &Rotations) -> Result<(), CliError> {
    let target = path(state_dir);
    let fail = |what: &str, e: io::Error| {
        CliError::system(format!(
            "cannot record the secret rotations in {}: {what}: {e}",
            target.display()
        ))
    };
    let mut text =
        serde_json::to_string_pretty(rotations).map_err(|e| fail("encode", io::Error::other(e)))?;
    text.push('\n');
    archy_store::replace_file(&target, text.as_bytes(), 0o644).map_err(|e| fail("write", e))
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
            assert_eq!(e.code, 1);
            assert!(e.message.contains("rotations.json"), "{}", e.message);
            assert!(e.hint.is_some_and(|h| h.contains("delete it")));
        }
    }
}

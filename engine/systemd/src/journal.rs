//! A unit's journal, by running `journalctl`.
//!
//! systemd-journald has no D-Bus API for reading the journal (its bus
//! interface only flushes and rotates), and reading the journal files
//! directly means parsing their binary format; `journalctl` is on every
//! systemd machine and prints exactly what an operator would see.

use std::ffi::OsStr;
use std::process::Command;

use crate::Error;

/// Runs `command` (`["journalctl"]`, or a prefix that runs it elsewhere, such
/// as `["nsenter", "-t", "PID", "-a", "journalctl"]`) with `--unit=UNIT
/// --lines=LINES --no-pager --output=short` and returns what it printed.
///
/// # Panics
///
/// If `command` is empty.
pub fn journal_tail_with<S: AsRef<OsStr>>(
    command: &[S],
    unit: &str,
    lines: u32,
) -> Result<String, Error> {
    let (program, args) = command.split_first().expect("a journalctl command line");
    let mut cmd = Command::new(program);
    cmd.args(args)
        .arg(format!("--unit={unit}"))
        .arg(format!("--lines={lines}"))
        .args(["--no-pager", "--output=short"]);
    let shown = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ");
    let out = match cmd.output() {
        Ok(out) => out,
        Err(source) => {
            return Err(Error::JournalSpawn {
                command: shown,
                source,
            });
        }
    };
    if !out.status.success() {
        return Err(Error::JournalFailed {
            command: shown,
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_passes_the_unit_and_the_line_count() {
        let out = journal_tail_with(&["echo", "journalctl"], "a b.service", 7).unwrap();
        assert_eq!(
            out,
            "journalctl --unit=a b.service --lines=7 --no-pager --output=short\n"
        );
    }

    #[test]
    fn a_failing_reader_is_an_error_with_what_it_said() {
        let err = journal_tail_with(&["sh", "-c", "echo nope >&2; exit 3", "sh"], "x.service", 1)
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("exit status: 3"), "{msg}");
        assert!(msg.ends_with(": nope"), "{msg}");
        let err = journal_tail_with(&["/nonexistent/journalctl"], "x.service", 1).unwrap_err();
        assert!(matches!(err, Error::JournalSpawn { .. }), "{err:?}");
    }
}

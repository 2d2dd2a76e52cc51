//! archy's own log. On a terminal (or any plain stderr): human lines,
//! filtered by `ARCHY_LOG` (default `warn`; `ARCHY_LOG=info` shows timings
//! and what scripts `print`). When systemd runs archy as a unit (the
//! recovery unit, later reconcile and OTA), stderr is the journal: entries
//! go to journald as structured records instead (target, level, fields),
//! at `info` unless `ARCHY_LOG` says otherwise.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// True when stderr is connected to the journal: systemd sets
/// `JOURNAL_STREAM` to the device and inode of that stream.
fn stderr_is_journal() -> bool {
    use std::os::unix::fs::MetadataExt;
    let Some(value) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = value.to_str().and_then(|v| v.split_once(':')) else {
        return false;
    };
    let Ok(meta) = std::fs::metadata("/proc/self/fd/2") else {
        return false;
    };
    dev.parse() == Ok(meta.dev()) && ino.parse() == Ok(meta.ino())
}

fn filter(default: &str) -> EnvFilter {
    EnvFilter::try_from_env("ARCHY_LOG").unwrap_or_else(|_| EnvFilter::new(default))
}

pub fn init() {
    if stderr_is_journal()
        && let Ok(journald) = tracing_journald::layer()
    {
        let journald = journald.with_syslog_identifier("archy".to_string());
        let _ = tracing_subscriber::registry()
            .with(filter("info"))
            .with(journald)
            .try_init();
        return;
    }
    // Colors only for a person at a terminal: escape codes in a log file
    // or a test's captured output are noise.
    use std::io::IsTerminal;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter("warn"))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .without_time()
        .try_init();
}

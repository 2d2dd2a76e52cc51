//! A failed mirror is logged. Alone in its own test binary: tracing caches
//! per call site whether anyone listens, and a parallel test hitting the
//! same call site with no subscriber would race with the one set here.

mod support;

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use archy_ota::download::{self, FetchOptions};
use support::server::{Mode, Server, payload};

/// Collects what the subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().expect("log").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_failing_mirror_is_logged_with_its_url_and_reason() {
    let data = payload(10_000);
    let bad = Server::start(&[("r.tar.gz", &data)], Mode::Fail500);
    let good = Server::start(&[("r.tar.gz", &data)], Mode::Ok);
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("r.tar.gz");
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let options = FetchOptions {
        progress: false,
        max_bytes: 1 << 20,
        timeout: Duration::from_secs(5),
    };
    let sources = [bad.url("r.tar.gz"), good.url("r.tar.gz")];
    let fetched = tracing::subscriber::with_default(subscriber, || {
        download::fetch(&sources, &dest, &options)
    })
    .expect("fetch");
    assert_eq!(fetched.from, sources[1]);
    let log = String::from_utf8_lossy(&captured.0.lock().expect("log")).into_owned();
    assert!(log.contains("WARN"), "{log}");
    assert!(log.contains(&sources[0]) && log.contains("500"), "{log}");
    assert!(!log.contains(&sources[1]), "{log}");
}

//! Downloading from mirrors against a local test server: failover,
//! resuming after a cut body (within one call and across calls), the size
//! bound, and the error that lists every source.

mod support;

use std::fs;
use std::path::Path;
use std::time::Duration;

use archy_ota::OtaError;
use archy_ota::download::{self, FetchOptions, Fetched};
use support::server::{Hit, Mode, Server, payload};

const NAME: &str = "archy-1.0.0.tar.gz";

fn opts(max_bytes: u64) -> FetchOptions {
    FetchOptions {
        progress: false,
        max_bytes,
        timeout: Duration::from_secs(5),
    }
}

fn part_of(dest: &Path) -> std::path::PathBuf {
    dest.with_file_name(format!("{NAME}.part"))
}

fn hit(range: Option<&str>) -> Hit {
    Hit {
        path: format!("/{NAME}"),
        range: range.map(str::to_string),
    }
}

#[test]
fn a_failing_mirror_is_skipped_and_the_next_one_serves() {
    let data = payload(50_000);
    let bad = Server::start(&[(NAME, &data)], Mode::Fail500);
    let good = Server::start(&[(NAME, &data)], Mode::Ok);
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join(NAME);
    let sources = [bad.url(NAME), good.url(NAME)];
    let fetched = download::fetch(&sources, &dest, &opts(1 << 20)).expect("fetch");
    assert_eq!(
        fetched,
        Fetched {
            from: good.url(NAME),
            bytes: data.len() as u64,
            resumed_from: 0
        }
    );
    assert_eq!(fs::read(&dest).expect("dest"), data);
    assert!(!part_of(&dest).exists());
    assert_eq!(bad.hits(), [hit(None)]);
    assert_eq!(good.hits(), [hit(None)]);
}

#[test]
fn a_cut_body_is_resumed_from_the_next_mirror_with_a_range() {
    let data = payload(80_000);
    let cut = Server::start(&[(NAME, &data)], Mode::CutAfter(30_000));
    let good = Server::start(&[(NAME, &data)], Mode::Ok);
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join(NAME);
    let fetched =
        download::fetch(&[cut.url(NAME), good.url(NAME)], &dest, &opts(1 << 20)).expect("fetch");
    assert_eq!(fetched.from, good.url(NAME));
    assert_eq!(fetched.resumed_from, 30_000);
    assert_eq!(fetched.bytes, data.len() as u64);
    assert_eq!(good.hits(), [hit(Some("bytes=30000-"))]);
    assert_eq!(fs::read(&dest).expect("dest"), data);
}

#[test]
fn when_every_source_fails_the_error_lists_them_and_the_part_is_kept() {
    let data = payload(40_000);
    let cut = Server::start(&[(NAME, &data)], Mode::CutAfter(10_000));
    let bad = Server::start(&[(NAME, &data)], Mode::Fail500);
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join(NAME);
    let sources = [cut.url(NAME), bad.url(NAME)];
    let err = download::fetch(&sources, &dest, &opts(1 << 20)).expect_err("all fail");
    match &err {
        OtaError::Download { attempts } => {
            let urls: Vec<&str> = attempts.iter().map(|(url, _)| url.as_str()).collect();
            assert_eq!(urls, [sources[0].as_str(), sources[1].as_str()]);
            assert!(attempts[1].1.contains("500"), "{attempts:?}");
        }
        other => panic!("unexpected {other:?}"),
    }
    let message = err.to_string();
    assert!(
        message.contains(&sources[0]) && message.contains(&sources[1]),
        "{message}"
    );
    assert!(!dest.exists());
    assert_eq!(fs::read(part_of(&dest)).expect("part"), data[..10_000]);
    // The failing mirror was asked to continue from what the cut one gave.
    assert_eq!(bad.hits(), [hit(Some("bytes=10000-"))]);
}

#[test]
fn a_later_call_resumes_the_part() {
    let data = payload(60_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join(NAME);
    {
        let cut = Server::start(&[(NAME, &data)], Mode::CutAfter(25_000));
        download::fetch(&[cut.url(NAME)], &dest, &opts(1 << 20)).expect_err("cut");
    }
    assert_eq!(fs::metadata(part_of(&dest)).expect("part").len(), 25_000);
    let good = Server::start(&[(NAME, &data)], Mode::Ok);
    let fetched = download::fetch(&[good.url(NAME)], &dest, &opts(1 << 20)).expect("resume");
    assert_eq!(fetched.resumed_from, 25_000);
    assert_eq!(good.hits(), [hit(Some("bytes=25000-"))]);
    assert_eq!(fs::read(&dest).expect("dest"), data);
}

#[test]
fn a_server_ignoring_ranges_restarts_from_zero() {
    let data = payload(30_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join(NAME);
    fs::write(part_of(&dest), &data[..5_000]).expect("part");
    let server = Server::start(&[(NAME, &data)], Mode::NoRange);
    let fetched = download::fetch(&[server.url(NAME)], &dest, &opts(1 << 20)).expect("fetch");
    assert_eq!(fetched.resumed_from, 0);
    assert_eq!(server.hits(), [hit(Some("bytes=5000-"))]);
    assert_eq!(fs::read(&dest).expect("dest"), data);
}

#[test]
fn an_unsatisfiable_range_restarts_from_zero_once() {
    let data = payload(30_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join(NAME);
    // A stale part longer than the file (an older, larger release).
    fs::write(part_of(&dest), payload(40_000)).expect("part");
    let server = Server::start(&[(NAME, &data)], Mode::Ok);
    let fetched = download::fetch(&[server.url(NAME)], &dest, &opts(1 << 20)).expect("fetch");
    assert_eq!(fetched.resumed_from, 0);
    assert_eq!(server.hits(), [hit(Some("bytes=40000-")), hit(None)]);
    assert_eq!(fs::read(&dest).expect("dest"), data);
}

#[test]
fn a_file_larger_than_max_bytes_is_refused_up_front() {
    let data = payload(50_000);
    let server = Server::start(&[(NAME, &data)], Mode::Ok);
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join(NAME);
    let err = download::fetch(&[server.url(NAME)], &dest, &opts(10_000)).expect_err("too big");
    match &err {
        OtaError::Download { attempts } => {
            assert_eq!(attempts.len(), 1);
            assert!(
                attempts[0].1.contains("more than the 10000"),
                "{attempts:?}"
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(!dest.exists());
    assert_eq!(
        fs::metadata(part_of(&dest)).map(|m| m.len()).unwrap_or(0),
        0
    );
}

#[test]
fn a_body_without_length_stops_at_max_bytes() {
    let data = payload(50_000);
    let server = Server::start(&[(NAME, &data)], Mode::NoLength);
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join(NAME);
    let err = download::fetch(&[server.url(NAME)], &dest, &opts(10_000)).expect_err("too big");
    match &err {
        OtaError::Download { attempts } => {
            assert!(attempts[0].1.contains("grew past"), "{attempts:?}")
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(!dest.exists());
    assert!(fs::metadata(part_of(&dest)).expect("part").len() <= 10_000);
}

#[test]
fn a_silent_mirror_times_out_and_the_next_one_serves() {
    let data = payload(20_000);
    let stall = Server::start(&[(NAME, &data)], Mode::Stall);
    let good = Server::start(&[(NAME, &data)], Mode::Ok);
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join(NAME);
    let options = FetchOptions {
        timeout: Duration::from_millis(300),
        ..opts(1 << 20)
    };
    let fetched =
        download::fetch(&[stall.url(NAME), good.url(NAME)], &dest, &options).expect("fetch");
    assert_eq!(fetched.from, good.url(NAME));
    assert_eq!(fs::read(&dest).expect("dest"), data);
}

#[test]
fn a_url_that_is_not_http_is_an_attempt_that_fails() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join(NAME);
    let err = download::fetch(&["file:///etc/passwd".to_string()], &dest, &opts(1 << 20))
        .expect_err("not http");
    assert!(
        matches!(err, OtaError::Download { ref attempts } if attempts[0].1.contains("http")),
        "{err:?}"
    );
    assert!(!dest.exists());
}

#[test]
fn fetch_small_takes_the_first_source_that_answers() {
    let sig = b"untrusted comment: x\n".to_vec();
    let bad = Server::start(&[], Mode::Ok);
    let good = Server::start(&[("r.minisig", &sig)], Mode::Ok);
    let sources = [bad.url("r.minisig"), good.url("r.minisig")];
    let (from, body) =
        download::fetch_small(&sources, 4096, Duration::from_secs(5)).expect("fetch");
    assert_eq!(from, sources[1]);
    assert_eq!(body, sig);
}

#[test]
fn fetch_small_refuses_more_than_max() {
    let big = payload(10_000);
    let server = Server::start(&[("r.minisig", &big)], Mode::Ok);
    let err = download::fetch_small(&[server.url("r.minisig")], 4096, Duration::from_secs(5))
        .expect_err("too big");
    assert!(
        matches!(err, OtaError::Download { ref attempts } if attempts[0].1.contains("4096")),
        "{err:?}"
    );
}

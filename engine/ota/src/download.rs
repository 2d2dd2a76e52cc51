//! Downloading a bundle from mirrors. Nodes sit on slow, flaky links (often
//! behind Tor), so a download streams into `<dest>.part`, survives a mirror
//! failing halfway (the next mirror continues with a `Range` request) and
//! survives archy being stopped (the next run resumes the same `.part`).
//! Nothing downloaded is trusted: the caller verifies the signature.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use ureq::Agent;
use ureq::http::{StatusCode, header};

use crate::error::OtaError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchOptions {
    /// Draw a progress bar on stderr (the caller checks it is a terminal).
    pub progress: bool,
    /// The largest file accepted; a larger one is refused up front when the
    /// server announces its size, or as soon as it streams past it.
    pub max_bytes: u64,
    /// How long a mirror may stay silent (resolving, connecting, waiting
    /// for an answer, or between two chunks of the body) before it counts
    /// as failed. Slow but steady downloads are never cut.
    pub timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// The URL that completed the download.
    pub from: String,
    /// The size of the downloaded file.
    pub bytes: u64,
    /// How many bytes were already in `.part` when that URL took over.
    pub resumed_from: u64,
}

/// Downloads the first source that works into `dest`, resuming whatever
/// `<dest>.part` holds. On failure the `.part` stays for the next call.
pub fn fetch(sources: &[String], dest: &Path, opts: &FetchOptions) -> Result<Fetched, OtaError> {
    let part = part_path(dest);
    let agent = agent(opts.timeout, None);
    let mut attempts = Vec::new();
    for url in sources {
        match Attempt::new(&agent, url, &part, opts).run() {
            Ok((bytes, resumed_from)) => {
                fs::rename(&part, dest)
                    .map_err(|e| OtaError::io("move the finished download to", dest, e))?;
                sync_parent(dest)?;
                return Ok(Fetched {
                    from: url.clone(),
                    bytes,
                    resumed_from,
                });
            }
            Err(Failure::Local(e)) => return Err(e),
            Err(Failure::Remote(why)) => {
                tracing::warn!(url = %url, reason = %why, "download source failed, trying the next one");
                attempts.push((url.clone(), why));
            }
        }
    }
    Err(OtaError::Download { attempts })
}

/// Downloads a small file (a signature) whole into memory: the first
/// source that answers 200 with at most `max` bytes wins.
pub fn fetch_small(
    sources: &[String],
    max: u64,
    timeout: Duration,
) -> Result<(String, Vec<u8>), OtaError> {
    let agent = agent(timeout, Some(timeout));
    let mut attempts = Vec::new();
    for url in sources {
        match fetch_one_small(&agent, url, max) {
            Ok(body) => return Ok((url.clone(), body)),
            Err(why) => {
                tracing::warn!(url = %url, reason = %why, "download source failed, trying the next one");
                attempts.push((url.clone(), why));
            }
        }
    }
    Err(OtaError::Download { attempts })
}

fn fetch_one_small(agent: &Agent, url: &str, max: u64) -> Result<Vec<u8>, String> {
    check_scheme(url)?;
    let response = agent.get(url).call().map_err(|e| describe(&e))?;
    if response.status() != StatusCode::OK {
        return Err(format!("the server answered HTTP {}", response.status()));
    }
    if let Some(length) = content_length(response.headers())
        && length > max
    {
        return Err(format!("it is {length} bytes, more than the {max} allowed"));
    }
    let mut body = Vec::new();
    response
        .into_body()
        .into_reader()
        .take(max + 1)
        .read_to_end(&mut body)
        .map_err(|e| format!("the connection broke after {} bytes ({e})", body.len()))?;
    if body.len() as u64 > max {
        return Err(format!("it is more than the {max} bytes allowed"));
    }
    Ok(body)
}

fn part_path(dest: &Path) -> PathBuf {
    let mut part = dest.as_os_str().to_owned();
    part.push(".part");
    PathBuf::from(part)
}

fn agent(silence: Duration, total: Option<Duration>) -> Agent {
    let config = Agent::config_builder()
        // Statuses are answers to interpret (206, 416), not errors.
        .http_status_as_error(false)
        .timeout_resolve(Some(silence))
        .timeout_connect(Some(silence))
        .timeout_send_request(Some(silence))
        .timeout_recv_response(Some(silence))
        .timeout_per_read(Some(silence))
        .timeout_global(total)
        .build();
    Agent::new_with_config(config)
}

/// Why one source failed: the mirror's fault (try the next) or ours (stop:
/// the next mirror would fail the same way).
enum Failure {
    Remote(String),
    Local(OtaError),
}

impl From<OtaError> for Failure {
    fn from(e: OtaError) -> Self {
        Failure::Local(e)
    }
}

/// One source's turn at completing the `.part`.
struct Attempt<'a> {
    agent: &'a Agent,
    url: &'a str,
    part: &'a Path,
    opts: &'a FetchOptions,
}

impl<'a> Attempt<'a> {
    fn new(agent: &'a Agent, url: &'a str, part: &'a Path, opts: &'a FetchOptions) -> Self {
        Attempt {
            agent,
            url,
            part,
            opts,
        }
    }

    /// Returns the final size and how much was there before.
    fn run(&self) -> Result<(u64, u64), Failure> {
        check_scheme(self.url).map_err(Failure::Remote)?;
        let mut have = self.part_len()?;
        if have > self.opts.max_bytes {
            // Left over from something else: it cannot be a prefix.
            self.truncate()?;
            have = 0;
        }
        let mut response = self.request(have)?;
        if response.status() == StatusCode::RANGE_NOT_SATISFIABLE && have > 0 {
            // The .part does not fit this file (a newer release under the
            // same name, or a complete stale one): start over, once.
            self.truncate()?;
            have = 0;
            response = self.request(0)?;
        }
        let status = response.status();
        let (start, total) = if status == StatusCode::PARTIAL_CONTENT && have > 0 {
            let (start, total) = content_range(response.headers()).ok_or_else(|| {
                Failure::Remote("it answered 206 without a usable Content-Range".to_string())
            })?;
            if start != have {
                return Err(Failure::Remote(format!(
                    "it answered with bytes from {start}, and {have} were asked for"
                )));
            }
            (have, total)
        } else if status == StatusCode::OK {
            // A full answer (the server ignores ranges, or none was asked).
            if have > 0 {
                self.truncate()?;
            }
            (0, content_length(response.headers()))
        } else {
            return Err(Failure::Remote(format!(
                "the server answered HTTP {status}"
            )));
        };
        if let Some(total) = total
            && total > self.opts.max_bytes
        {
            return Err(Failure::Remote(format!(
                "it is {total} bytes, more than the {} allowed",
                self.opts.max_bytes
            )));
        }
        let end = self.stream(response.into_body().into_reader(), start, total)?;
        if let Some(total) = total
            && end != total
        {
            return Err(Failure::Remote(format!(
                "the body ended after {end} of {total} bytes"
            )));
        }
        Ok((end, start))
    }

    fn request(&self, from: u64) -> Result<ureq::http::Response<ureq::Body>, Failure> {
        let mut request = self.agent.get(self.url);
        if from > 0 {
            request = request.header(header::RANGE, format!("bytes={from}-"));
        }
        request.call().map_err(|e| Failure::Remote(describe(&e)))
    }

    /// Appends the body to the `.part` from `start`; returns the new length.
    /// What arrived before an error is kept, flushed, for the next source.
    fn stream(&self, mut body: impl Read, start: u64, total: Option<u64>) -> Result<u64, Failure> {
        let io_err = |e: io::Error| Failure::Local(OtaError::io("write", self.part, e));
        let mut file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(self.part)
            .map_err(io_err)?;
        file.set_len(start).map_err(io_err)?;
        file.seek(SeekFrom::Start(start)).map_err(io_err)?;
        let bar = self.progress(start, total);
        let mut out = BufWriter::new(&file);
        let mut at = start;
        let mut buf = vec![0u8; 64 * 1024];
        let outcome = loop {
            let n = match body.read(&mut buf) {
                Ok(0) => break Ok(()),
                Ok(n) => n,
                Err(e) => break Err(format!("the connection broke after {at} bytes ({e})")),
            };
            let room = self.opts.max_bytes - at;
            if n as u64 > room {
                // Keep only what fits: the part stays a valid prefix.
                out.write_all(&buf[..room as usize]).map_err(io_err)?;
                at += room;
                break Err(format!(
                    "it grew past the {} bytes allowed",
                    self.opts.max_bytes
                ));
            }
            out.write_all(&buf[..n]).map_err(io_err)?;
            at += n as u64;
            if let Some(bar) = &bar {
                bar.set_position(at);
            }
        };
        out.flush().map_err(io_err)?;
        drop(out);
        file.sync_all().map_err(io_err)?;
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        outcome.map(|()| at).map_err(Failure::Remote)
    }

    fn progress(&self, start: u64, total: Option<u64>) -> Option<ProgressBar> {
        if !self.opts.progress {
            return None;
        }
        let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
        let template = if total.is_some() {
            "{spinner} {msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}"
        } else {
            "{spinner} {msg} {bytes} {bytes_per_sec}"
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(self.url.to_string());
        bar.set_position(start);
        Some(bar)
    }

    fn part_len(&self) -> Result<u64, Failure> {
        match fs::metadata(self.part) {
            Ok(meta) if meta.is_file() => Ok(meta.len()),
            Ok(_) => Err(Failure::Local(OtaError::io(
                "resume the download in",
                self.part,
                io::Error::other("it is not a regular file; remove it"),
            ))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(Failure::Local(OtaError::io("inspect", self.part, e))),
        }
    }

    fn truncate(&self) -> Result<(), Failure> {
        match OpenOptions::new().write(true).open(self.part) {
            Ok(file) => file
                .set_len(0)
                .map_err(|e| Failure::Local(OtaError::io("empty", self.part, e))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Failure::Local(OtaError::io("empty", self.part, e))),
        }
    }
}

fn check_scheme(url: &str) -> Result<(), String> {
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(())
    } else {
        Err("it is not an http:// or https:// URL".to_string())
    }
}

fn describe(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Timeout(_) => format!("it did not answer in time ({e})"),
        ureq::Error::ConnectionFailed | ureq::Error::HostNotFound => {
            format!("it could not be reached ({e})")
        }
        _ => e.to_string(),
    }
}

fn content_length(headers: &ureq::http::HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// `bytes START-END/TOTAL` → (START, TOTAL if known).
fn content_range(headers: &ureq::http::HeaderMap) -> Option<(u64, Option<u64>)> {
    let value = headers.get(header::CONTENT_RANGE)?.to_str().ok()?;
    let range = value.trim().strip_prefix("bytes ")?;
    let (span, total) = range.split_once('/')?;
    let (start, end) = span.split_once('-')?;
    let start: u64 = start.trim().parse().ok()?;
    let end: u64 = end.trim().parse().ok()?;
    if end < start {
        return None;
    }
    let total = match total.trim() {
        "*" => None,
        n => Some(n.parse::<u64>().ok()?),
    };
    // The span's end is what this answer delivers; trust it over a total
    // that disagrees.
    match total {
        Some(t) if t != end + 1 => None,
        _ => Some((start, Some(end + 1))),
    }
}

fn sync_parent(dest: &Path) -> Result<(), OtaError> {
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(parent)
        .and_then(|d| d.sync_all())
        .map_err(|e| OtaError::io("sync the folder", parent, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(range: &str) -> ureq::http::HeaderMap {
        let mut map = ureq::http::HeaderMap::new();
        map.insert(header::CONTENT_RANGE, range.parse().expect("header value"));
        map
    }

    #[test]
    fn content_range_is_parsed() {
        assert_eq!(
            content_range(&headers("bytes 10-99/100")),
            Some((10, Some(100)))
        );
        assert_eq!(
            content_range(&headers("bytes 10-99/*")),
            Some((10, Some(100)))
        );
        assert_eq!(content_range(&headers("bytes 10-99/200")), None);
        assert_eq!(content_range(&headers("bytes */100")), None);
    }
}

//! How the node's TUF client reaches a repository: `file://` URLs (a
//! mirror on a disk or a shared folder) and plain http(s) through ureq,
//! the mirrors tried in order for each file, and every byte counted.
//!
//! A snapshot or targets file of a consistent-snapshot repository never
//! changes under its name (`N.snapshot.json`), so the node keeps the ones
//! of its last verified load and does not fetch them again: a node that is
//! up to date fetches `timestamp.json` alone. What a load fetched waits in
//! `pending/` and joins the cache only once tough has verified the whole
//! load ([`Cache::commit`]); tough checks a cached file's hash against the
//! signed metadata that names it as it checks a download.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::TryStreamExt;
use tough::{FilesystemTransport, Transport, TransportError, TransportErrorKind, TransportStream};
use url::Url;

/// Fetches a file of the repository from each mirror in turn.
#[derive(Debug, Clone)]
pub(crate) struct Mirrors {
    /// Each mirror's root (ending in `/`); tough is given the first.
    pub bases: Vec<Url>,
    /// Bytes received so far.
    pub fetched: Arc<AtomicU64>,
    pub cache: Cache,
}

/// The largest metadata file kept (tough's own limit for targets is 10 MiB).
const MAX_CACHED: usize = 16 << 20;

/// The node's copies of immutable metadata files.
#[derive(Debug, Clone)]
pub(crate) struct Cache {
    pub dir: PathBuf,
}

impl Cache {
    fn pending(&self) -> PathBuf {
        self.dir.join("pending")
    }

    /// `N.snapshot.json` and `N.targets.json`: the names that never change.
    fn immutable(name: &str) -> bool {
        let Some((n, role)) = name.split_once('.') else {
            return false;
        };
        !n.is_empty()
            && n.bytes().all(|b| b.is_ascii_digit())
            && matches!(role, "snapshot.json" | "targets.json")
    }

    /// After a verified load: what it fetched joins the cache, and the
    /// files of other versions than `keep` leave it.
    pub fn commit(&self, keep: &[String]) {
        let pending = self.pending();
        if let Ok(entries) = std::fs::read_dir(&pending) {
            for e in entries.filter_map(Result::ok) {
                let _ = std::fs::rename(e.path(), self.dir.join(e.file_name()));
            }
        }
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            for e in entries.filter_map(Result::ok) {
                let name = e.file_name().to_string_lossy().into_owned();
                if Cache::immutable(&name) && !keep.contains(&name) {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
    }

    /// After a refused load: nothing it fetched is kept.
    pub fn discard(&self) {
        let _ = std::fs::remove_dir_all(self.pending());
    }
}

fn file_name(url: &Url) -> &str {
    url.path().rsplit('/').next().unwrap_or_default()
}

fn one_chunk(bytes: Vec<u8>) -> TransportStream {
    Box::pin(futures::stream::iter([Ok(tough::Bytes::from(bytes))]))
}

#[tough::async_trait]
impl Transport for Mirrors {
    async fn fetch(&self, url: Url) -> Result<TransportStream, TransportError> {
        let primary = self.bases.first().map(Url::as_str).unwrap_or_default();
        let Some(rest) = url.as_str().strip_prefix(primary).map(str::to_string) else {
            return self.one(url).await;
        };
        let mut last = None;
        for base in &self.bases {
            let Ok(candidate) = base.join(&rest) else {
                continue;
            };
            match self.one(candidate).await {
                Ok(stream) => return Ok(stream),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| TransportError::new(TransportErrorKind::Other, url)))
    }
}

impl Mirrors {
    async fn one(&self, url: Url) -> Result<TransportStream, TransportError> {
        let name = file_name(&url).to_string();
        if !Cache::immutable(&name) {
            return self.fetch_counted(url).await;
        }
        if let Ok(bytes) = std::fs::read(self.cache.dir.join(&name)) {
            return Ok(one_chunk(bytes));
        }
        let mut stream = self.fetch_counted(url.clone()).await?;
        let mut bytes = Vec::new();
        while let Some(chunk) = stream.try_next().await? {
            bytes.extend_from_slice(&chunk);
            if bytes.len() > MAX_CACHED {
                return Err(TransportError::new_with_cause(
                    TransportErrorKind::Other,
                    &url,
                    format!("more than {MAX_CACHED} bytes of metadata"),
                ));
            }
        }
        keep_pending(&self.cache.pending(), &name, &bytes);
        Ok(one_chunk(bytes))
    }

    async fn fetch_counted(&self, url: Url) -> Result<TransportStream, TransportError> {
        let stream = match url.scheme() {
            "file" => FilesystemTransport.fetch(url).await?,
            "http" | "https" => http(url)?,
            _ => {
                return Err(TransportError::new(
                    TransportErrorKind::UnsupportedUrlScheme,
                    url,
                ));
            }
        };
        let counter = self.fetched.clone();
        Ok(Box::pin(stream.inspect_ok(move |bytes| {
            counter.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        })))
    }
}

/// A GET whose body streams in 64 KiB pieces (tough bounds how many it
/// reads: each role's size, each target's signed length).
fn http(url: Url) -> Result<TransportStream, TransportError> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(60)))
        .http_status_as_error(false)
        .build()
        .into();
    let response = agent
        .get(url.as_str())
        .call()
        .map_err(|e| TransportError::new_with_cause(TransportErrorKind::Other, &url, e))?;
    let status = response.status().as_u16();
    if status == 404 || status == 410 {
        return Err(TransportError::new(TransportErrorKind::FileNotFound, &url));
    }
    if status != 200 {
        return Err(TransportError::new_with_cause(
            TransportErrorKind::Other,
            &url,
            format!("HTTP status {status}"),
        ));
    }
    let reader: Box<dyn Read + Send> = Box::new(response.into_body().into_reader());
    let reader = Arc::new(Mutex::new(reader));
    let stream = futures::stream::unfold((reader, url), |(reader, url)| async move {
        let mut buf = vec![0u8; 64 << 10];
        let read = match reader.lock() {
            Ok(mut r) => r.read(&mut buf),
            Err(_) => Err(std::io::Error::other("a reader panicked")),
        };
        match read {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(tough::Bytes::from(buf)), (reader, url)))
            }
            Err(e) => Some((
                Err(TransportError::new_with_cause(
                    TransportErrorKind::Other,
                    &url,
                    e,
                )),
                (reader, url),
            )),
        }
    });
    Ok(Box::pin(stream))
}

/// A failure to keep a copy only costs a download next time.
fn keep_pending(dir: &Path, name: &str, bytes: &[u8]) {
    if std::fs::create_dir_all(dir).is_ok() {
        let _ = std::fs::write(dir.join(name), bytes);
    }
}

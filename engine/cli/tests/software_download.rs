//! An artifact fetched from a URL through the real downloader, switched
//! into an offline root (`archy --root DIR switch`): a download cut halfway
//! fails the switch, keeps its `.part`, and the next switch resumes it with
//! a range request and installs the right bytes; a download whose bytes do
//! not match the declared hash changes nothing at all.

// Test helpers: a failure should panic, and the panic says where.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::thread;

/// A one-thread HTTP server of fixed files that honours `Range: bytes=N-`
/// and cuts the body of its first answer after `cut` bytes (then closes),
/// as a dropped connection does. Written on std's TcpListener because an
/// HTTP server crate would not let a handler cut a body short.
struct Server {
    addr: SocketAddr,
    ranges: Arc<Mutex<Vec<Request>>>,
}

/// A request's path and its `Range` header.
type Request = (String, Option<String>);

impl Server {
    fn start(files: BTreeMap<String, Vec<u8>>, cut: Option<usize>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let ranges = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&ranges);
        // The thread ends with the test process.
        thread::spawn(move || {
            let mut cut = cut;
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let Some((path, range)) = read_head(&mut stream) else {
                    continue;
                };
                seen.lock().unwrap().push((path.clone(), range.clone()));
                let Some(data) = files.get(&path) else {
                    let _ = stream.write_all(
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                    continue;
                };
                let start = range
                    .as_deref()
                    .and_then(|r| r.strip_prefix("bytes=")?.strip_suffix('-')?.parse().ok())
                    .unwrap_or(0usize);
                let body = &data[start..];
                let mut head = if start > 0 {
                    format!(
                        "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {start}-{}/{}\r\n",
                        data.len() - 1,
                        data.len()
                    )
                } else {
                    "HTTP/1.1 200 OK\r\n".to_string()
                };
                head.push_str(&format!(
                    "Content-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                ));
                let send = cut.take().map_or(body.len(), |n| n.min(body.len()));
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(&body[..send]);
            }
        });
        Server { addr, ranges }
    }

    fn url(&self, name: &str) -> String {
        format!("http://{}/{name}", self.addr)
    }

    fn requests(&self) -> Vec<Request> {
        self.ranges.lock().unwrap().clone()
    }
}

fn read_head(stream: &mut TcpStream) -> Option<Request> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 16 * 1024 || stream.read(&mut byte).ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).ok()?;
    let mut lines = head.split("\r\n");
    let path = lines.next()?.split(' ').nth(1)?.to_string();
    let range = lines.find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("range")
            .then(|| value.trim().to_string())
    });
    Some((path, range))
}

/// Bytes that differ at every offset, so a wrong resume shows.
fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

struct Offline {
    dir: tempfile::TempDir,
    image: PathBuf,
}

impl Offline {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("image");
        fs::create_dir(&image).unwrap();
        Offline { dir, image }
    }

    /// `archy --root image switch node.rhai` of a node with one artifact.
    fn switch(&self, url: &str, blake3: &str) -> std::process::Output {
        let node = format!(
            "[\n    artifact(\"/usr/local/bin/validator\", #{{ source: \"{url}\", blake3: \"{blake3}\", mode: 0o755 }}),\n]\n"
        );
        fs::write(self.dir.path().join("node.rhai"), node).unwrap();
        Command::new(env!("CARGO_BIN_EXE_archy"))
            .args([
                "--root",
                self.image.to_str().unwrap(),
                "switch",
                "node.rhai",
            ])
            .current_dir(self.dir.path())
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    }

    fn state(&self) -> PathBuf {
        self.image.join("var/lib/archy")
    }

    fn listing(&self, sub: &str) -> Vec<String> {
        let mut names: Vec<String> = match fs::read_dir(self.state().join(sub)) {
            Ok(dir) => dir
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect(),
            Err(_) => Vec::new(),
        };
        names.sort();
        names
    }

    /// What the node sees at `/usr/local/bin/validator`: the link is made
    /// for the node's `/`, so it is followed inside the image.
    fn installed(&self) -> Vec<u8> {
        let link = self.image.join("usr/local/bin/validator");
        let target = fs::read_link(&link).unwrap();
        let inside = self.image.join(target.strip_prefix("/").unwrap());
        fs::read(inside).unwrap()
    }

    fn current(&self) -> PathBuf {
        fs::read_link(self.state().join("current")).unwrap()
    }
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn a_cut_download_resumes_at_the_next_switch_and_a_wrong_hash_changes_nothing() {
    let v1 = payload(600_000);
    let tampered = payload(600_001);
    let files = BTreeMap::from([
        ("/v1/validator".to_string(), v1.clone()),
        ("/v2/validator".to_string(), tampered.clone()),
    ]);
    let half = v1.len() / 2;
    let server = Server::start(files, Some(half));
    let node = Offline::new();
    let v1_hash = blake3::hash(&v1).to_hex().to_string();

    // The connection drops halfway: the switch fails, nothing is recorded,
    // and the half is kept to resume.
    let out = node.switch(&server.url("v1/validator"), &v1_hash);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("download failed"), "{}", text(&out));
    assert!(
        node.listing("generations").is_empty(),
        "{:?}",
        node.listing("generations")
    );
    let parts: Vec<String> = node
        .listing("downloads")
        .into_iter()
        .filter(|n| n.ends_with(".part"))
        .collect();
    assert_eq!(parts.len(), 1, "{:?}", node.listing("downloads"));
    let part = node.state().join("downloads").join(&parts[0]);
    assert_eq!(fs::metadata(&part).unwrap().len(), half as u64);
    assert!(!node.image.join("usr/local/bin/validator").exists());

    // The next switch asks only for the rest, and installs the whole.
    let out = node.switch(&server.url("v1/validator"), &v1_hash);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        server.requests(),
        [
            ("/v1/validator".to_string(), None),
            ("/v1/validator".to_string(), Some(format!("bytes={half}-"))),
        ]
    );
    assert_eq!(node.installed(), v1);
    assert_eq!(node.current(), Path::new("generations/1"));
    assert!(
        node.listing("downloads").is_empty(),
        "{:?}",
        node.listing("downloads")
    );
    let objects = node.listing("store");

    // v2 declares bytes the server does not serve: refused, naming both
    // hashes; no object, no generation, the download deleted, v1 still
    // current and in place.
    let declared = blake3::hash(b"the validator v2 that was released")
        .to_hex()
        .to_string();
    let out = node.switch(&server.url("v2/validator"), &declared);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("blake3:{declared}")),
        "{}",
        text(&out)
    );
    let actual = blake3::hash(&tampered).to_hex().to_string();
    assert!(
        text(&out).contains(&format!("blake3:{actual}")),
        "{}",
        text(&out)
    );
    assert_eq!(node.listing("store"), objects, "no object");
    assert_eq!(node.listing("generations"), ["1"]);
    assert!(
        node.listing("downloads").is_empty(),
        "{:?}",
        node.listing("downloads")
    );
    assert_eq!(node.current(), Path::new("generations/1"));
    assert_eq!(node.installed(), v1);
}

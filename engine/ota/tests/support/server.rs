//! A tiny HTTP/1.1 server for the download tests, on 127.0.0.1:0, serving
//! in-memory files and honouring `Range: bytes=N-`. It is written on
//! std's TcpListener rather than an HTTP crate because one mode must cut
//! a body short and close the socket, which keep-alive servers do not let
//! a handler do. Every response says `Connection: close`.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Serve files, with ranges.
    Ok,
    /// Answer every request with 500.
    Fail500,
    /// Announce the full length, send this many body bytes, close.
    CutAfter(usize),
    /// Serve files whole, ignoring `Range` (always 200).
    NoRange,
    /// Serve files whole without a Content-Length (body ends at close).
    NoLength,
    /// Accept, read the request, never answer (until the server stops).
    Stall,
}

/// Bytes that differ at every offset, so a wrong resume shows.
pub fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// What a request asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub path: String,
    pub range: Option<String>,
}

pub struct Server {
    addr: SocketAddr,
    hits: Arc<Mutex<Vec<Hit>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    pub fn start(files: &[(&str, &[u8])], mode: Mode) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let files: BTreeMap<String, Vec<u8>> = files
            .iter()
            .map(|(name, data)| (format!("/{name}"), data.to_vec()))
            .collect();
        let hits = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (hits, stop) = (Arc::clone(&hits), Arc::clone(&stop));
            thread::spawn(move || {
                let mut stalled = Vec::new();
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    if let Some(kept) = serve(stream, &files, mode, &hits) {
                        stalled.push(kept);
                    }
                }
            })
        };
        Server {
            addr,
            hits,
            stop,
            thread: Some(thread),
        }
    }

    pub fn url(&self, name: &str) -> String {
        format!("http://{}/{name}", self.addr)
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.hits.lock().expect("hits").clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept so the thread sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Handles one connection; returns it when it must stay open unanswered.
fn serve(
    mut stream: TcpStream,
    files: &BTreeMap<String, Vec<u8>>,
    mode: Mode,
    hits: &Mutex<Vec<Hit>>,
) -> Option<TcpStream> {
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let (path, range) = read_request(&mut stream)?;
    hits.lock().expect("hits").push(Hit {
        path: path.clone(),
        range: range.clone(),
    });
    if mode == Mode::Stall {
        return Some(stream);
    }
    if mode == Mode::Fail500 {
        respond(&mut stream, "500 Internal Server Error", &[], b"boom", None);
        return None;
    }
    let Some(data) = files.get(&path) else {
        respond(&mut stream, "404 Not Found", &[], b"", None);
        return None;
    };
    let start = match (mode, range.as_deref().and_then(parse_range)) {
        (Mode::Ok | Mode::CutAfter(_), Some(start)) => start,
        _ => 0,
    };
    if start > 0 && start >= data.len() {
        let unsatisfiable = format!("Content-Range: bytes */{}", data.len());
        respond(
            &mut stream,
            "416 Range Not Satisfiable",
            &[&unsatisfiable],
            b"",
            None,
        );
        return None;
    }
    let body = &data[start..];
    let content_range = format!(
        "Content-Range: bytes {start}-{}/{}",
        data.len() - 1,
        data.len()
    );
    let (status, extra): (&str, Vec<&str>) = if start > 0 {
        ("206 Partial Content", vec![&content_range])
    } else {
        ("200 OK", Vec::new())
    };
    match mode {
        Mode::CutAfter(n) => respond(&mut stream, status, &extra, body, Some(n.min(body.len()))),
        Mode::NoLength => {
            let head = format!("HTTP/1.1 {status}\r\nConnection: close\r\n\r\n");
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(body);
        }
        _ => respond(&mut stream, status, &extra, body, None),
    }
    None
}

/// Writes a response announcing the whole `body`; sends only `send` bytes
/// of it when given, then the socket closes as `stream` drops.
fn respond(stream: &mut TcpStream, status: &str, extra: &[&str], body: &[u8], send: Option<usize>) {
    let mut head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for line in extra {
        head.push_str(line);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&body[..send.unwrap_or(body.len())]);
    let _ = stream.flush();
}

/// Reads a request head; returns the path and the Range header.
fn read_request(stream: &mut TcpStream) -> Option<(String, Option<String>)> {
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

/// `bytes=N-` → N.
fn parse_range(value: &str) -> Option<usize> {
    value
        .strip_prefix("bytes=")?
        .strip_suffix('-')?
        .parse()
        .ok()
}

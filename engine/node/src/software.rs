//! Where a build fetches software from: the node's own sources, the
//! release's mirrors, and URLs through the OTA downloader (resumed, with a
//! progress bar on a terminal).

use std::io::IsTerminal as _;
use std::path::Path;
use std::time::Duration;

use archy_build::software::{Download, Origin};
use archy_ota::download;

/// The largest piece of software a build downloads (a full bitcoind
/// release is about 50 MB; a frontend bundle a few).
const MAX_SOFTWARE: u64 = 8 << 30;

/// The OTA downloader as a build's [`Download`].
#[derive(Debug, Default)]
pub struct Downloader;

impl Download for Downloader {
    fn download(&self, urls: &[String], dest: &Path) -> Result<(), String> {
        download::fetch(
            urls,
            dest,
            &download::FetchOptions {
                progress: std::io::stderr().is_terminal(),
                max_bytes: MAX_SOFTWARE,
                timeout: Duration::from_secs(60),
            },
        )
        .map(|_| ())
        .map_err(|e| e.to_string())
    }
}

static DOWNLOADER: Downloader = Downloader;

/// The origin of a node file's software: relative sources from its sources
/// root, URLs after `mirrors` (a release's, which keep objects by hash).
pub fn origin(node: &Path, mirrors: &[String]) -> Origin<'static> {
    let root = archy_eval::locate(node).ok().map(|(root, _)| root);
    Origin {
        root,
        object_mirrors: mirrors.to_vec(),
        download: Some(&DOWNLOADER),
        running: std::env::current_exe().ok(),
    }
}

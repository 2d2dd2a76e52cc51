//! OTA figures on a real node (`cargo bench -p archy --bench ota`; needs
//! root and the test node's base image, see tests/node):
//!
//! - from `archy ota apply URL` to verified, for a release that changes
//!   one app (a new page for the `web` container; `clock` stays);
//! - from `archy ota apply URL` to rolled back, for a release whose health
//!   check fails (its deadline is `BAD_DEADLINE_S`).
//!
//! Each run is a new release (a node takes only newer ones), served by the
//! node's busybox httpd after a mirror that has nothing. Wall times are
//! taken from outside the node, so they include entering it (`nsenter`).
//! `ARCHY_LOG=info` in the environment passes archy's own timing lines
//! through.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use support::node::TestNode;
use support::releases::{self, BAD_DEADLINE_S, Publisher};

const RUNS: usize = 5;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    if !TestNode::available() {
        return;
    }
    let publisher = Publisher::new();
    let n = releases::node_with_mirrors("benchota", &publisher);
    let log = std::env::var("ARCHY_LOG").ok();
    let apply = |version: &str, bad: bool| -> (Duration, String) {
        let bundle = publisher.release(version, bad);
        let name = format!("r{version}.tar.gz");
        releases::publish(&n, &bundle, &name);
        let mut argv: Vec<String> = Vec::new();
        if let Some(level) = &log {
            argv.extend(["env".into(), format!("ARCHY_LOG={level}")]);
        }
        argv.extend(releases::apply_args(&name));
        let args: Vec<&str> = argv.iter().map(String::as_str).collect();
        let start = Instant::now();
        let out = n.node.exec(&args);
        let wall = start.elapsed();
        let code = out.status.code();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let expected = if bad { Some(2) } else { Some(0) };
        assert_eq!(code, expected, "release {version}:\n{text}");
        (wall, text)
    };
    apply("1.0.0", false);
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for i in 0..RUNS {
        let (wall, text) = apply(&format!("2.{i}.0"), false);
        assert_eq!(releases::page(&n), format!("release 2.{i}.0"));
        if log.is_some() {
            eprintln!("{text}");
        }
        good.push(wall);
        let (wall, text) = apply(&format!("3.{i}.0"), true);
        assert_eq!(releases::page(&n), format!("release 2.{i}.0"));
        if log.is_some() {
            eprintln!("{text}");
        }
        bad.push(wall);
    }
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!("ota apply, one app changed, to verified: {good:.1?}");
    println!("  median {:.0} ms", ms(median(good)));
    println!(
        "ota apply, failing health check ({BAD_DEADLINE_S} s deadline), to rolled back: {bad:.1?}"
    );
    let m = median(bad);
    println!(
        "  median {:.0} ms: the deadline plus {:.0} ms",
        ms(m),
        ms(m) - (BAD_DEADLINE_S * 1000) as f64
    );
}

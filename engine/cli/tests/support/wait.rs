//! Waiting in real-node tests for what the node does in its own time.

use std::time::{Duration, Instant};

/// Polls `cond` every 100 ms until it holds; panics after `secs`, saying
/// what it waited for.
#[track_caller]
pub fn wait_for(what: &str, secs: u64, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "gave up after {secs} s waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

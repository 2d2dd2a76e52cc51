//! archy's own log: human lines on stderr, filtered by `ARCHY_LOG`
//! (default `warn`; `ARCHY_LOG=info` shows what scripts `print`).

use tracing_subscriber::EnvFilter;

pub fn init() {
    let filter = EnvFilter::try_from_env("ARCHY_LOG").unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time()
        .try_init();
}

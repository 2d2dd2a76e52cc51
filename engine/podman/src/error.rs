//! What can go wrong talking to podman, each failure saying what was being
//! done and, where there is one, what to do about it.

use std::path::PathBuf;
use std::time::Duration;

/// A failed podman call.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API socket is not there: podman.socket is not listening.
    #[error(
        "no podman API socket at {}: start podman.socket (systemctl start podman.socket)",
        socket.display()
    )]
    SocketMissing { socket: PathBuf },

    /// The socket is there but nothing answers on it.
    #[error(
        "cannot reach podman at {}: {message}; is podman.socket running? (systemctl start podman.socket)",
        socket.display()
    )]
    Unreachable { socket: PathBuf, message: String },

    /// podman did not answer in time.
    #[error("podman did not {what} within {after:?}; see its log (journalctl -u podman.service)")]
    Timeout { what: String, after: Duration },

    /// A pull that failed.
    #[error(
        "cannot pull {reference}: {message}; check the reference and that its registry is reachable"
    )]
    Pull { reference: String, message: String },

    /// A build that failed; `output` is the end of what the build printed.
    #[error("cannot build {tag} from {}: {message}{}", context.display(), output_block(output))]
    Build {
        context: PathBuf,
        tag: String,
        message: String,
        output: String,
    },

    /// Any other call podman refused or failed: `what` says which (`list
    /// containers`, `remove secret db-password`, ...).
    #[error("podman failed to {what}: {message}")]
    Api { what: String, message: String },

    /// Clearing the network state of containers podman lost failed: `what`
    /// says at what (`run nft`, `remove /run/containers/networks/ipam.db`).
    #[error("cannot {what}: {source}")]
    LostState {
        what: String,
        #[source]
        source: std::io::Error,
    },

    /// `ip netns delete` refused to remove a lost container's namespace.
    #[error("cannot remove network namespace {name}: {message}")]
    Netns { name: String, message: String },

    /// The runtime the API calls run on could not be started.
    #[error("cannot start the runtime for podman's API calls: {0}")]
    Runtime(#[source] std::io::Error),
}

/// The build output as the last part of the message, if there is any.
fn output_block(output: &str) -> String {
    if output.trim().is_empty() {
        String::new()
    } else {
        format!(
            "\n--- last lines of the build output\n{}",
            output.trim_end()
        )
    }
}

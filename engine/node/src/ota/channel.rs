//! The channel a node follows: `--channel` when given, else the one its
//! description names (`ota.channel` of `archy::units`, written to
//! `/etc/archy/ota-channel`), so that a node on "stable" never takes a
//! "beta" release because someone ran `archy ota apply` by hand without
//! the flag.

use std::path::{Path, PathBuf};

use crate::{NodeError, Session};

/// Where the node description writes the channel it follows.
pub const CHANNEL_FILE: &str = "/etc/archy/ota-channel";

impl Session<'_> {
    /// `explicit`, or the channel in `file` (under the node's root), or
    /// None: any channel.
    pub(crate) fn channel(
        &self,
        explicit: Option<&str>,
        file: &Path,
    ) -> Result<Option<String>, NodeError> {
        if let Some(c) = explicit {
            return Ok(Some(c.to_string()));
        }
        let path = match &self.node.root {
            Some(root) => root.join(file.strip_prefix("/").unwrap_or(file)),
            None => PathBuf::from(file),
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let channel = text.trim();
                let plain = !channel.is_empty()
                    && channel
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-');
                if !plain {
                    return Err(NodeError::BadChannel(format!(
                        "{} in {}",
                        archy_ota::tuf::meta::cut(channel, 64),
                        path.display()
                    )));
                }
                Ok(Some(channel.to_string()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(NodeError::io("read", &path)(e)),
        }
    }
}

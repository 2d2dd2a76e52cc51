//! What a bundle says about itself: the manifest inside the tarball (every
//! file with its hash, size and mode) and the release details in the
//! signature's trusted comment (version, channel, and the size and hash of
//! the tarball itself, so a node can check them before unpacking).

use std::collections::BTreeMap;

use semver::Version;
use serde::{Deserialize, Serialize};

use crate::error::OtaError;

/// The manifest format this crate writes and accepts.
pub const FORMAT: u32 = 1;
/// The name of the tarball's first entry.
pub const MANIFEST_NAME: &str = "manifest.json";
/// The only file modes a bundle carries.
pub const MODE_FILE: u32 = 0o644;
pub const MODE_EXEC: u32 = 0o755;
pub const MODE_DIR: u32 = 0o755;

/// Paths no node's source tree needs to exceed; also keeps a hostile
/// manifest from carrying megabyte-long names.
const MAX_PATH: usize = 1024;
const MAX_COMPONENT: usize = 255;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: u32,
    pub version: Version,
    pub min_archy: Version,
    pub channel: String,
    pub files: BTreeMap<String, FileEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// blake3 of the content, 64 lowercase hex digits.
    pub blake3: String,
    pub size: u64,
    /// 0o644 or 0o755.
    pub mode: u32,
}

impl Manifest {
    /// Parses and checks a manifest: format 1, known fields only, every
    /// path one a node's source tree may hold.
    pub fn parse(bytes: &[u8]) -> Result<Self, OtaError> {
        let bad = |reason: String| OtaError::Manifest { reason };
        let manifest: Manifest = serde_json::from_slice(bytes)
            .map_err(|e| bad(format!("it is not the expected JSON ({e})")))?;
        if manifest.format != FORMAT {
            return Err(bad(format!(
                "it has format {}, and this archy reads format {FORMAT}; update archy first",
                manifest.format
            )));
        }
        check_channel(&manifest.channel).map_err(bad)?;
        if !manifest.files.contains_key("node.rhai") {
            return Err(bad("it does not list node.rhai".to_string()));
        }
        for (path, entry) in &manifest.files {
            check_rel_path(path).map_err(|why| bad(format!("file {path:?} {why}")))?;
            check_bundle_root(path, false).map_err(|why| bad(format!("file {path:?} {why}")))?;
            if entry.mode != MODE_FILE && entry.mode != MODE_EXEC {
                return Err(bad(format!(
                    "file {path:?} has mode {:o}, and bundles carry only 644 or 755",
                    entry.mode
                )));
            }
            check_hex_hash(&entry.blake3)
                .map_err(|why| bad(format!("file {path:?} has a blake3 that {why}")))?;
        }
        Ok(manifest)
    }

    /// The manifest as written into a bundle: stable field and key order,
    /// so the same tree always packs to the same bytes.
    pub fn to_json(&self) -> Result<Vec<u8>, OtaError> {
        let mut json = serde_json::to_vec_pretty(self).map_err(|e| OtaError::Manifest {
            reason: format!("it cannot be written as JSON ({e})"),
        })?;
        json.push(b'\n');
        Ok(json)
    }
}

/// The release details carried in the signature's trusted comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseInfo {
    pub version: Version,
    pub channel: String,
    pub min_archy: Version,
    /// Size of the `.tar.gz` in bytes.
    pub size: u64,
    /// blake3 of the `.tar.gz`, lowercase hex.
    pub blake3: String,
}

const COMMENT_TAG: &str = "archy-release";

impl ReleaseInfo {
    /// Parses `archy-release version=.. channel=.. min-archy=.. size=..
    /// blake3=..`. Each known key must appear once; unknown keys are
    /// ignored so a later publisher can add details old nodes skip.
    pub fn parse(trusted_comment: &str) -> Result<Self, OtaError> {
        let shown: String = trusted_comment.chars().take(300).collect();
        let bad = |reason: String| OtaError::ReleaseInfo {
            comment: shown.clone(),
            reason,
        };
        let mut words = trusted_comment.split_ascii_whitespace();
        if words.next() != Some(COMMENT_TAG) {
            return Err(bad(format!(
                "it does not start with {COMMENT_TAG:?}; this signature is not for an archy release"
            )));
        }
        let mut fields: BTreeMap<&str, &str> = BTreeMap::new();
        for word in words {
            let (key, value) = word
                .split_once('=')
                .ok_or_else(|| bad(format!("{word:?} is not key=value")))?;
            if fields.insert(key, value).is_some() {
                return Err(bad(format!("{key} appears twice")));
            }
        }
        let field = |key: &str| {
            fields
                .get(key)
                .copied()
                .ok_or_else(|| bad(format!("{key}= is missing")))
        };
        let version = |key: &str| {
            let text = field(key)?;
            Version::parse(text)
                .map_err(|e| bad(format!("{key}={text} is not a semantic version ({e})")))
        };
        let info = ReleaseInfo {
            version: version("version")?,
            channel: field("channel")?.to_string(),
            min_archy: version("min-archy")?,
            size: field("size")?
                .parse()
                .map_err(|_| bad("size= is not a number of bytes".to_string()))?,
            blake3: field("blake3")?.to_string(),
        };
        check_channel(&info.channel).map_err(bad)?;
        check_hex_hash(&info.blake3).map_err(|why| bad(format!("blake3= {why}")))?;
        Ok(info)
    }

    pub fn to_comment(&self) -> String {
        format!(
            "{COMMENT_TAG} version={} channel={} min-archy={} size={} blake3={}",
            self.version, self.channel, self.min_archy, self.size, self.blake3
        )
    }
}

/// Channels are names in URLs and in a space-separated comment.
pub(crate) fn check_channel(channel: &str) -> Result<(), String> {
    let ok = !channel.is_empty()
        && channel.len() <= 64
        && channel
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "channel {channel:?} is not a name of 1 to 64 lowercase letters, digits, '-', '_' or '.'"
        ))
    }
}

fn check_hex_hash(hash: &str) -> Result<(), String> {
    if hash.len() == 64
        && hash
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(())
    } else {
        Err("is not 64 lowercase hex digits".to_string())
    }
}

/// A path a bundle may hold: relative, `/`-separated, no `.`/`..`/empty
/// component, no control characters or backslashes (which other tools
/// read as separators). The reason is phrased to follow the path.
pub(crate) fn check_rel_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("is empty".to_string());
    }
    if path.len() > MAX_PATH {
        return Err(format!("is longer than {MAX_PATH} bytes"));
    }
    if path.starts_with('/') {
        return Err("is an absolute path".to_string());
    }
    if let Some(c) = path.chars().find(|c| c.is_control()) {
        return Err(format!("contains the control character {c:?}"));
    }
    if path.contains('\\') {
        return Err("contains a backslash".to_string());
    }
    for component in path.split('/') {
        match component {
            "" => return Err("has an empty component (\"//\" or a trailing '/')".to_string()),
            "." | ".." => return Err(format!("has a {component:?} component")),
            c if c.len() > MAX_COMPONENT => {
                return Err(format!("has a component longer than {MAX_COMPONENT} bytes"));
            }
            _ => {}
        }
    }
    Ok(())
}

/// What a node's source tree is: the file `node.rhai` and the folders
/// `stdlib/` and `apps/`. A bundle carrying anything else (or a file
/// named `stdlib`) is not one `pack` made.
pub(crate) fn check_bundle_root(path: &str, is_dir: bool) -> Result<(), String> {
    let ok = match path.split_once('/') {
        None if is_dir => path == "stdlib" || path == "apps",
        None => path == "node.rhai",
        Some((top, _)) => top == "stdlib" || top == "apps",
    };
    if ok {
        Ok(())
    } else {
        Err("is outside node.rhai, stdlib/ and apps/".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> ReleaseInfo {
        ReleaseInfo {
            version: Version::new(1, 2, 0),
            channel: "stable".to_string(),
            min_archy: Version::new(0, 1, 0),
            size: 1234,
            blake3: "ab".repeat(32),
        }
    }

    #[test]
    fn comment_round_trips() {
        let info = info();
        assert_eq!(ReleaseInfo::parse(&info.to_comment()).expect("parse"), info);
    }

    #[test]
    fn comment_rejects_missing_and_duplicate_keys() {
        let comment = info().to_comment();
        let missing = comment.replace(" size=1234", "");
        assert!(ReleaseInfo::parse(&missing).is_err());
        let twice = format!("{comment} size=1");
        assert!(ReleaseInfo::parse(&twice).is_err());
        assert!(ReleaseInfo::parse("timestamp:123").is_err());
    }

    #[test]
    fn paths_are_checked() {
        for bad in [
            "", "/etc/x", "a/../b", "./a", "a//b", "a/", "a\\b", "a\u{7}",
        ] {
            assert!(check_rel_path(bad).is_err(), "{bad:?}");
        }
        assert!(check_rel_path("stdlib/app.rhai").is_ok());
    }

    #[test]
    fn only_the_node_tree_is_accepted() {
        assert!(check_bundle_root("node.rhai", false).is_ok());
        assert!(check_bundle_root("stdlib/a.rhai", false).is_ok());
        assert!(check_bundle_root("apps", true).is_ok());
        assert!(check_bundle_root("stdlib", false).is_err());
        assert!(check_bundle_root("node.rhai", true).is_err());
        assert!(check_bundle_root("etc/passwd", false).is_err());
        assert!(check_bundle_root("node.rhai/x", false).is_err());
    }

    #[test]
    fn manifest_is_strict() {
        let good = br#"{"format":1,"version":"1.0.0","min_archy":"0.1.0","channel":"stable","files":{"node.rhai":{"blake3":"0000000000000000000000000000000000000000000000000000000000000000","size":1,"mode":420}}}"#;
        assert!(Manifest::parse(good).is_ok());
        let unknown = String::from_utf8_lossy(good).replace("\"format\":1", "\"format\":1,\"x\":2");
        assert!(Manifest::parse(unknown.as_bytes()).is_err());
        let format2 = String::from_utf8_lossy(good).replace("\"format\":1", "\"format\":2");
        assert!(Manifest::parse(format2.as_bytes()).is_err());
    }
}

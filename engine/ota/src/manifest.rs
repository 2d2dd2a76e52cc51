//! What a bundle says about itself: the manifest inside the tarball (every
//! file with its hash, size and mode, and every software object the release
//! carries beside it) and the release details in the signature's trusted
//! comment (version, channel, and the size and hash of the tarball itself,
//! so a node can check them before unpacking).
//!
//! Software (the bytes of `artifact()` and `tree()`) does not travel inside
//! the tarball: each store object is a file `objects/<blake3>` next to the
//! bundle on every mirror, listed here with its blake3, size and the store
//! object name the node's build looks it up by. The signature covers the
//! tarball, the tarball holds the manifest, and the manifest names each
//! object by hash: a node checks every object it downloads against it, and
//! downloads only the objects its store lacks.
//!
//! Formats: a bundle without software is format 1, byte for byte what an
//! archy before software wrote, so older nodes still read it. A bundle with
//! software is format 2 (the `objects` list). A format this archy does not
//! know is refused as "update archy first" before any other field is read.

use std::collections::BTreeMap;

use semver::Version;
use serde::{Deserialize, Serialize};

use crate::error::OtaError;

/// The manifest format of a bundle without software (and of every bundle
/// before software).
pub const FORMAT: u32 = 1;
/// The manifest format of a bundle that lists software objects.
pub const FORMAT_OBJECTS: u32 = 2;
/// The first archy that reads format 2: a release with software is signed
/// as needing at least this one.
pub fn objects_min_archy() -> Version {
    Version::new(0, 1, 0)
}

/// The folder beside a bundle that holds its software, one file per
/// object named by its blake3.
pub const OBJECTS_DIR: &str = "objects";
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
    /// The software objects the release's node needs, sorted by blake3 and
    /// name; empty (and absent from the JSON) in a format 1 manifest.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub objects: Vec<ObjectEntry>,
}

/// One store object a release carries beside its bundle.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectEntry {
    /// blake3 of the content, 64 lowercase hex digits: its file name under
    /// `objects/` and the first half of its store name.
    pub blake3: String,
    /// The name the node's build looks it up by (`validator+x`, `tree`,
    /// `index.html`): a store object name.
    pub name: String,
    pub size: u64,
}

impl ObjectEntry {
    /// Whether the store keeps it runnable (0555): a program's object name
    /// ends in `+x`, as the build names it.
    pub fn executable(&self) -> bool {
        self.name.ends_with("+x")
    }

    /// Its path relative to the folder holding the bundle.
    pub fn rel_path(&self) -> String {
        format!("{OBJECTS_DIR}/{}", self.blake3)
    }
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
    /// Parses and checks a manifest: format 1 or 2, known fields only,
    /// every path one a node's source tree may hold, every object a store
    /// object with a blake3.
    pub fn parse(bytes: &[u8]) -> Result<Self, OtaError> {
        let bad = |reason: String| OtaError::Manifest { reason };
        // The format first, on its own: a newer manifest has fields this
        // archy does not know, and "update archy" is the useful answer.
        #[derive(Deserialize)]
        struct Format {
            format: u32,
        }
        let format = serde_json::from_slice::<Format>(bytes)
            .map_err(|e| bad(format!("it is not the expected JSON ({e})")))?
            .format;
        if format != FORMAT && format != FORMAT_OBJECTS {
            return Err(bad(format!(
                "it has format {format}, and this archy reads formats {FORMAT} and {FORMAT_OBJECTS}; update archy first"
            )));
        }
        let manifest: Manifest = serde_json::from_slice(bytes)
            .map_err(|e| bad(format!("it is not the expected JSON ({e})")))?;
        if manifest.format == FORMAT && !manifest.objects.is_empty() {
            return Err(bad(format!(
                "it has format {FORMAT} and lists software objects, which only format {FORMAT_OBJECTS} does"
            )));
        }
        check_objects(&manifest.objects).map_err(bad)?;
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

/// Every object a store can hold under its name and hash, each once.
fn check_objects(objects: &[ObjectEntry]) -> Result<(), String> {
    let mut sizes: BTreeMap<&str, u64> = BTreeMap::new();
    for (i, object) in objects.iter().enumerate() {
        let what = format!("object {:?} ({})", object.name, object.blake3);
        archy_store::ObjectName::try_from(object.name.as_str())
            .map_err(|e| format!("{what} has a name no store holds ({e})"))?;
        check_hex_hash(&object.blake3).map_err(|why| format!("{what} has a blake3 that {why}"))?;
        if i > 0 && objects[i - 1] >= *object {
            return Err(format!(
                "{what} is out of order or listed twice; objects are sorted by blake3 and name"
            ));
        }
        // Two names of one content are one file: one size.
        if let Some(size) = sizes.insert(&object.blake3, object.size)
            && size != object.size
        {
            return Err(format!("{what} has two sizes, {size} and {}", object.size));
        }
    }
    Ok(())
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
        let format3 = String::from_utf8_lossy(good).replace("\"format\":1", "\"format\":3");
        assert!(Manifest::parse(format3.as_bytes()).is_err());
    }

    fn object(blake3: &str, name: &str, size: u64) -> ObjectEntry {
        ObjectEntry {
            blake3: blake3.repeat(32),
            name: name.to_string(),
            size,
        }
    }

    fn with_objects(objects: Vec<ObjectEntry>) -> Manifest {
        let mut files = BTreeMap::new();
        files.insert(
            "node.rhai".to_string(),
            FileEntry {
                blake3: "00".repeat(32),
                size: 1,
                mode: MODE_FILE,
            },
        );
        Manifest {
            format: FORMAT_OBJECTS,
            version: Version::new(2, 0, 0),
            min_archy: Version::new(0, 1, 0),
            channel: "stable".to_string(),
            files,
            objects,
        }
    }

    #[test]
    fn objects_round_trip_in_format_2() {
        let manifest = with_objects(vec![
            object("0a", "tree", 61),
            object("1b", "index.html", 3),
            object("1b", "index.html+x", 3),
            object("2c", "validator+x", 5 << 20),
        ]);
        let json = manifest.to_json().expect("json");
        let text = String::from_utf8_lossy(&json);
        assert!(text.contains("\"objects\""), "{text}");
        assert!(text.contains("\"validator+x\""), "{text}");
        assert_eq!(Manifest::parse(&json).expect("parse"), manifest);
        assert!(manifest.objects[3].executable());
        assert!(!manifest.objects[1].executable());
        assert_eq!(
            manifest.objects[3].rel_path(),
            format!("objects/{}", "2c".repeat(32))
        );
    }

    #[test]
    fn a_manifest_without_objects_is_format_1_as_before() {
        let mut manifest = with_objects(Vec::new());
        manifest.format = FORMAT;
        let json = manifest.to_json().expect("json");
        // No `objects` key: an archy from before software reads it.
        assert!(!String::from_utf8_lossy(&json).contains("objects"));
        assert_eq!(Manifest::parse(&json).expect("parse"), manifest);
    }

    #[test]
    fn objects_are_checked() {
        let refused = |objects: Vec<ObjectEntry>, format: u32, why: &str| {
            let mut manifest = with_objects(objects);
            manifest.format = format;
            let json = serde_json::to_vec(&manifest).expect("json");
            let err = Manifest::parse(&json).expect_err(why).to_string();
            assert!(err.contains(why), "{why}: {err}");
        };
        refused(vec![object("0a", "tree", 1)], FORMAT, "only format 2");
        refused(
            vec![object("1b", "b", 1), object("0a", "a", 1)],
            FORMAT_OBJECTS,
            "out of order",
        );
        refused(
            vec![object("0a", "a", 1), object("0a", "a", 1)],
            FORMAT_OBJECTS,
            "listed twice",
        );
        refused(
            vec![object("0a", "a", 1), object("0a", "b", 2)],
            FORMAT_OBJECTS,
            "two sizes",
        );
        refused(
            vec![object("0a", "../x", 1)],
            FORMAT_OBJECTS,
            "no store holds",
        );
        refused(vec![object("0A", "a", 1)], FORMAT_OBJECTS, "lowercase hex");
    }

    #[test]
    fn a_newer_format_asks_for_a_newer_archy_before_anything_else() {
        let json = br#"{"format":3,"something":"new"}"#;
        let err = Manifest::parse(json).expect_err("format 3").to_string();
        assert!(err.contains("format 3"), "{err}");
        assert!(err.contains("update archy first"), "{err}");
    }
}

//! Shared by the integration tests: keys, a small node source tree,
//! hand-made tarballs signed so that verify passes and unpack is what has
//! to refuse them, and a test HTTP server. Each test binary uses a part.
#![allow(dead_code)]

pub mod server;

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use archy_ota::keys::{self, SigningKey, TrustedKeys};
use archy_ota::manifest::ReleaseInfo;
use archy_ota::verify;
use flate2::Compression;
use flate2::write::GzEncoder;
use semver::Version;

/// A generated key, loaded the way a publisher and a node load it.
pub struct Keys {
    pub signing: SigningKey,
    pub trusted: TrustedKeys,
    pub dir: tempfile::TempDir,
}

pub fn keys() -> Keys {
    let generated = keys::generate("archy test release key").expect("generate key");
    let dir = tempfile::tempdir().expect("tempdir");
    let secret = dir.path().join("release.key");
    fs::write(&secret, &generated.secret).expect("write secret");
    let trusted_dir = dir.path().join("trusted");
    fs::create_dir(&trusted_dir).expect("mkdir trusted");
    fs::write(trusted_dir.join("release.pub"), &generated.public).expect("write public");
    let signing = SigningKey::load(&secret).expect("load secret");
    assert_eq!(signing.key_id(), generated.key_id);
    let trusted = TrustedKeys::load(&trusted_dir).expect("load trusted");
    Keys {
        signing,
        trusted,
        dir,
    }
}

pub fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
}

pub fn mode_of(path: &Path) -> u32 {
    fs::symlink_metadata(path)
        .expect("stat")
        .permissions()
        .mode()
        & 0o7777
}

/// A deep path, so packing needs a GNU long name (over 100 bytes).
pub const LONG_PATH: &str = "apps/x/context/a-folder-name-that-is-quite-long-to-push-the-path-past-one-hundred-bytes/and-a-long-file-name.txt";

/// node.rhai, stdlib/a.rhai, apps/x (a 0700 folder) with a Containerfile,
/// an executable script and a deeply nested file.
pub fn source_tree(root: &Path) {
    fs::write(root.join("node.rhai"), "import \"stdlib/a\";\n[]\n").expect("node.rhai");
    fs::create_dir_all(root.join("stdlib")).expect("stdlib");
    fs::write(root.join("stdlib/a.rhai"), "fn a() { 1 }\n").expect("a.rhai");
    let app = root.join("apps/x");
    fs::create_dir_all(&app).expect("apps/x");
    fs::write(app.join("Containerfile"), "FROM scratch\n").expect("Containerfile");
    set_mode(&app.join("Containerfile"), 0o600);
    fs::write(app.join("entry.sh"), "#!/bin/sh\nexec true\n").expect("entry.sh");
    set_mode(&app.join("entry.sh"), 0o700);
    let long = root.join(LONG_PATH);
    fs::create_dir_all(long.parent().expect("parent")).expect("long dir");
    fs::write(&long, "deep\n").expect("long file");
    set_mode(&app, 0o700);
}

pub fn release(version: &str) -> (Version, Version) {
    (
        Version::parse(version).expect("version"),
        Version::new(0, 1, 0),
    )
}

/// One entry of a hand-made tarball, written with raw header fields so
/// that anything (`..`, absolute paths, links, devices) can be expressed.
pub struct Raw {
    pub name: Vec<u8>,
    pub kind: tar::EntryType,
    pub mode: u32,
    pub data: Vec<u8>,
    pub link: Option<Vec<u8>>,
    /// Overrides the header's size (the data written stays `data`).
    pub size: Option<u64>,
}

pub fn file(name: &str, mode: u32, data: &[u8]) -> Raw {
    Raw {
        name: name.as_bytes().to_vec(),
        kind: tar::EntryType::Regular,
        mode,
        data: data.to_vec(),
        link: None,
        size: None,
    }
}

pub fn dir(name: &str, mode: u32) -> Raw {
    Raw {
        name: format!("{name}/").into_bytes(),
        kind: tar::EntryType::Directory,
        mode,
        data: Vec::new(),
        link: None,
        size: None,
    }
}

pub fn link(name: &str, kind: tar::EntryType, target: &str) -> Raw {
    Raw {
        name: name.as_bytes().to_vec(),
        kind,
        mode: 0o777,
        data: Vec::new(),
        link: Some(target.as_bytes().to_vec()),
        size: None,
    }
}

/// A manifest entry whose content is `data`.
pub fn manifest(files: &[(&str, &[u8], u32)]) -> Raw {
    let files: serde_json::Map<String, serde_json::Value> = files
        .iter()
        .map(|(path, data, mode)| {
            (
                path.to_string(),
                serde_json::json!({
                    "blake3": blake3::hash(data).to_hex().to_string(),
                    "size": data.len(),
                    "mode": mode,
                }),
            )
        })
        .collect();
    let json = serde_json::json!({
        "format": 1,
        "version": "1.0.0",
        "min_archy": "0.1.0",
        "channel": "stable",
        "files": files,
    });
    file(
        "manifest.json",
        0o644,
        &serde_json::to_vec(&json).expect("json"),
    )
}

pub const NODE: &[u8] = b"[]\n";

/// The usual good start: a manifest listing node.rhai, then node.rhai.
pub fn node_only() -> Vec<Raw> {
    vec![
        manifest(&[("node.rhai", NODE, 0o644)]),
        file("node.rhai", 0o644, NODE),
    ]
}

/// Writes `entries` as a .tar.gz in `dir`, signs it with `key` (with the
/// right size and blake3 in the comment) and returns (bundle, .minisig).
pub fn craft(dir: &Path, key: &SigningKey, entries: &[Raw]) -> (PathBuf, String) {
    let bundle = dir.join("crafted.tar.gz");
    let file = fs::File::create(&bundle).expect("create bundle");
    let mut tar = tar::Builder::new(GzEncoder::new(file, Compression::default()));
    for entry in entries {
        let mut header = tar::Header::new_gnu();
        let name = &mut header.as_old_mut().name;
        assert!(
            entry.name.len() < name.len(),
            "test names fit the old header"
        );
        name[..entry.name.len()].copy_from_slice(&entry.name);
        header.set_entry_type(entry.kind);
        header.set_mode(entry.mode);
        header.set_size(entry.size.unwrap_or(entry.data.len() as u64));
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        if let Some(target) = &entry.link {
            header.set_link_name_literal(target).expect("link name");
        }
        header.set_cksum();
        tar.append(&header, entry.data.as_slice()).expect("append");
    }
    let mut gz = tar.into_inner().expect("finish tar");
    gz.flush().expect("flush");
    gz.finish().expect("finish gzip");
    let sig = sign(&bundle, key);
    (bundle, sig)
}

/// Signs a file the way `pack` does, with honest release details.
pub fn sign(path: &Path, key: &SigningKey) -> String {
    let bytes = fs::read(path).expect("read");
    let info = ReleaseInfo {
        version: Version::new(1, 0, 0),
        channel: "stable".to_string(),
        min_archy: Version::new(0, 1, 0),
        size: bytes.len() as u64,
        blake3: blake3::hash(&bytes).to_hex().to_string(),
    };
    verify::sign_file(path, key, &info.to_comment()).expect("sign")
}

/// Names in `dir`, sorted: to check that nothing was left behind.
pub fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

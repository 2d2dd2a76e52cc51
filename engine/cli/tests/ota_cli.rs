//! `archy release` and `archy ota` on bad bundles, without a node: every
//! refusal happens before the switch, so each test checks the exit code,
//! the message, and that nothing was unpacked, built or switched (no
//! generation, no release folder), and what the release record says.

// Test helpers: a failure should panic, and the panic says where.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use archy_ota::keys::SigningKey;
use archy_ota::manifest::{FileEntry, Manifest, ReleaseInfo};
use archy_ota::state::OtaState;
use common::{Run, Workspace};
use semver::Version;

const NODE: &str = r#"import "stdlib/archy" as archy;
[file("/etc/demo/release", #{ text: "1\n" }), archy::units()]
"#;

/// A workspace with a release key pair (`k1`, trusted in `keys/`) and a
/// node source folder `src/` (node.rhai and a copy of the stdlib).
struct Publisher {
    ws: Workspace,
}

impl Publisher {
    fn new() -> Self {
        let ws = Workspace::new();
        let p = Publisher { ws };
        p.run(&["release", "keygen", "--out", "k1"]).ok();
        fs::create_dir(p.path("keys")).unwrap();
        fs::copy(p.path("k1.pub"), p.path("keys/k1.pub")).unwrap();
        p.source("src", NODE);
        p
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.ws.path().join(rel)
    }

    fn run(&self, args: &[&str]) -> Run {
        self.ws.archy(args)
    }

    /// A node source folder with this node.rhai.
    fn source(&self, name: &str, node: &str) {
        let dir = self.path(name);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("node.rhai"), node).unwrap();
        let stdlib = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../stdlib"));
        copy_tree(stdlib, &dir.join("stdlib"));
    }

    /// `archy release build` of `src` as `out`.
    fn release(&self, src: &str, version: &str, extra: &[&str], out: &str) -> String {
        let mut args = vec![
            "release",
            "build",
            src,
            "--key",
            "k1.key",
            "--version",
            version,
            "-o",
            out,
        ];
        args.extend_from_slice(extra);
        self.run(&args).ok();
        out.to_string()
    }

    fn apply(&self, bundle: &str) -> Run {
        self.run(&["ota", "apply", bundle, "--keys", "keys"])
    }

    /// Asserts nothing was built and no release folder is left.
    fn untouched(&self) {
        let generations = self.ws.state.join("generations");
        let count = fs::read_dir(&generations).map_or(0, |d| d.count());
        assert_eq!(count, 0, "a generation was recorded");
        let releases = self.ws.state.join("ota/releases");
        let left: Vec<_> = fs::read_dir(&releases)
            .map(|d| d.map(|e| e.unwrap().file_name()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "release folders left: {left:?}");
    }

    fn record(&self) -> OtaState {
        OtaState::load(&archy_store::StateDir::new(&self.ws.state)).unwrap()
    }

    /// Signs `bytes` as bundle `name` of `version` with k1, as
    /// `archy release build` would, however wrong its content.
    fn signed(&self, name: &str, version: &str, bytes: &[u8]) -> String {
        let path = self.path(name);
        fs::write(&path, bytes).unwrap();
        let info = ReleaseInfo {
            version: Version::parse(version).unwrap(),
            channel: "stable".into(),
            min_archy: Version::new(0, 1, 0),
            size: bytes.len() as u64,
            blake3: blake3::hash(bytes).to_hex().to_string(),
        };
        let key = SigningKey::load(&self.path("k1.key")).unwrap();
        let sig = archy_ota::verify::sign_file(&path, &key, &info.to_comment()).unwrap();
        fs::write(self.path(&format!("{name}.minisig")), sig).unwrap();
        name.to_string()
    }
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// One entry of a hand-made tarball.
enum Entry<'a> {
    File(&'a str, u32, &'a [u8]),
    Dir(&'a str, u32),
    Symlink(&'a str, &'a str),
}

/// A gzipped tarball of `entries` after a manifest listing `listed` (path,
/// content), with names written raw so `..` and `/` survive.
fn tarball(listed: &[(&str, &[u8])], entries: &[Entry<'_>]) -> Vec<u8> {
    let manifest = Manifest {
        format: 1,
        version: Version::new(1, 0, 0),
        min_archy: Version::new(0, 1, 0),
        channel: "stable".into(),
        files: listed
            .iter()
            .map(|(p, c)| {
                (
                    p.to_string(),
                    FileEntry {
                        blake3: blake3::hash(c).to_hex().to_string(),
                        size: c.len() as u64,
                        mode: 0o644,
                    },
                )
            })
            .collect(),
        objects: Vec::new(),
    };
    let json = manifest.to_json().unwrap();
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    let mut add = |name: &str, kind: tar::EntryType, mode: u32, data: &[u8], link: Option<&str>| {
        let mut h = tar::Header::new_gnu();
        let raw = &mut h.as_old_mut().name;
        raw[..name.len()].copy_from_slice(name.as_bytes());
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(data.len() as u64);
        if let Some(l) = link {
            h.set_link_name(l).unwrap();
        }
        h.set_cksum();
        tar.append(&h, data).unwrap();
    };
    add("manifest.json", tar::EntryType::Regular, 0o644, &json, None);
    for e in entries {
        match e {
            Entry::File(p, mode, data) => add(p, tar::EntryType::Regular, *mode, data, None),
            Entry::Dir(p, mode) => add(p, tar::EntryType::Directory, *mode, &[], None),
            Entry::Symlink(p, target) => add(p, tar::EntryType::Symlink, 0o777, &[], Some(target)),
        }
    }
    let mut gz = tar.into_inner().unwrap();
    gz.flush().unwrap();
    gz.finish().unwrap()
}

const GOOD_NODE: &[u8] = b"[]\n";

#[test]
fn a_good_bundle_checks_out_and_would_be_applied() {
    let p = Publisher::new();
    let bundle = p.release("src", "1.0.0", &[], "r1.tar.gz");
    let out = p.run(&["ota", "check", &bundle, "--keys", "keys"]).ok();
    assert!(out.contains("release 1.0.0 (stable"), "{out}");
    assert!(out.contains("it would be applied"), "{out}");
    // The secret key is the publisher's alone.
    let mode = fs::metadata(p.path("k1.key")).unwrap().permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o600
    );
    // keygen never replaces a key.
    let again = p.run(&["release", "keygen", "--out", "k1"]);
    assert_eq!(again.code, 1, "{}", again.stderr);
    assert!(again.stderr.contains("exists already"), "{}", again.stderr);
}

#[test]
fn a_wrong_signature_is_refused() {
    let p = Publisher::new();
    let r1 = p.release("src", "1.0.0", &[], "r1.tar.gz");
    // The signature line with one character of its end changed: the key
    // id and the signed comment stay, the signature no longer matches.
    let sig_path = p.path(&format!("{r1}.minisig"));
    let text = fs::read_to_string(&sig_path).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let sig = &mut lines[1];
    let at = sig.len() - 5;
    let flipped = if &sig[at..=at] == "A" { "B" } else { "A" };
    sig.replace_range(at..=at, flipped);
    fs::write(&sig_path, lines.join("\n") + "\n").unwrap();
    let run = p.apply(&r1);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("signature"), "{}", run.stderr);
    assert!(
        run.stderr.contains("nothing was unpacked"),
        "{}",
        run.stderr
    );
    p.untouched();
    assert!(
        p.record().failed.is_empty(),
        "a forgery is not the release's failure"
    );
}

#[test]
fn a_bundle_signed_by_an_unknown_key_is_refused() {
    let p = Publisher::new();
    p.run(&["release", "keygen", "--out", "k2"]).ok();
    let out = p
        .run(&[
            "release",
            "build",
            "src",
            "--key",
            "k2.key",
            "--version",
            "1.0.0",
            "-o",
            "r.tar.gz",
        ])
        .ok();
    let id = out
        .split("signed by key ")
        .nth(1)
        .and_then(|rest| rest.lines().next())
        .unwrap()
        .trim();
    let run = p.apply("r.tar.gz");
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains(id),
        "names the key {id}: {}",
        run.stderr
    );
    assert!(run.stderr.contains("does not trust"), "{}", run.stderr);
    p.untouched();
}

#[test]
fn a_truncated_bundle_is_refused() {
    let p = Publisher::new();
    let r = p.release("src", "1.0.0", &[], "r.tar.gz");
    let bytes = fs::read(p.path(&r)).unwrap();
    fs::write(p.path(&r), &bytes[..bytes.len() - 100]).unwrap();
    let run = p.apply(&r);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("truncated"), "{}", run.stderr);
    p.untouched();
}

#[test]
fn a_file_whose_hash_differs_from_the_manifest_is_refused() {
    let p = Publisher::new();
    let bytes = tarball(
        &[("node.rhai", GOOD_NODE)],
        &[Entry::File(
            "node.rhai",
            0o644,
            b"[file(\"/etc/x\", #{ text: \"evil\" })]\n",
        )],
    );
    let b = p.signed("r.tar.gz", "1.0.0", &bytes);
    let run = p.apply(&b);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("node.rhai"), "{}", run.stderr);
    assert!(run.stderr.contains("manifest"), "{}", run.stderr);
    p.untouched();
    // Signed but broken: the publisher's fault, never tried again.
    assert_eq!(p.record().failed.len(), 1);
    assert!(p.apply(&b).stderr.contains("failed on this node"));
}

#[test]
fn a_path_traversal_entry_is_refused() {
    let p = Publisher::new();
    let bytes = tarball(
        &[("node.rhai", GOOD_NODE)],
        &[
            Entry::File("node.rhai", 0o644, GOOD_NODE),
            Entry::File("../../escaped", 0o644, b"x"),
        ],
    );
    let b = p.signed("r.tar.gz", "1.0.0", &bytes);
    let run = p.apply(&b);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("../../escaped"), "{}", run.stderr);
    p.untouched();
    assert!(!p.ws.state.join("ota/escaped").exists());
    assert!(!p.ws.state.join("escaped").exists());
}

#[test]
fn a_symlink_leaving_the_tree_is_refused() {
    let p = Publisher::new();
    let bytes = tarball(
        &[("node.rhai", GOOD_NODE)],
        &[
            Entry::File("node.rhai", 0o644, GOOD_NODE),
            Entry::Dir("stdlib/", 0o755),
            Entry::Symlink("stdlib/passwd", "/etc/passwd"),
        ],
    );
    let b = p.signed("r.tar.gz", "1.0.0", &bytes);
    let run = p.apply(&b);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("stdlib/passwd"), "{}", run.stderr);
    assert!(run.stderr.contains("/etc/passwd"), "{}", run.stderr);
    p.untouched();
}

#[test]
fn a_0700_directory_is_refused() {
    let p = Publisher::new();
    let bytes = tarball(
        &[
            ("node.rhai", GOOD_NODE),
            ("apps/x/Containerfile", b"FROM x\n"),
        ],
        &[
            Entry::File("node.rhai", 0o644, GOOD_NODE),
            Entry::Dir("apps/", 0o755),
            Entry::Dir("apps/x/", 0o700),
            Entry::File("apps/x/Containerfile", 0o644, b"FROM x\n"),
        ],
    );
    let b = p.signed("r.tar.gz", "1.0.0", &bytes);
    let run = p.apply(&b);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("apps/x"), "{}", run.stderr);
    assert!(run.stderr.contains("700"), "{}", run.stderr);
    p.untouched();
}

#[test]
fn a_downgrade_is_refused_unless_allowed() {
    let p = Publisher::new();
    let mut state = OtaState::default();
    state.mark_installed(Version::new(2, 0, 0), "b".repeat(64), 7);
    fs::create_dir_all(&p.ws.state).unwrap();
    state
        .save(&archy_store::StateDir::new(&p.ws.state))
        .unwrap();
    let r = p.release("src", "1.0.0", &[], "r.tar.gz");
    let run = p.apply(&r);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("older than release 2.0.0"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("--allow-downgrade"), "{}", run.stderr);
    p.untouched();
    // The same version: nothing to do, not an error.
    let same = p.release("src", "2.0.0", &[], "same.tar.gz");
    let run = p.apply(&same);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("installed already"), "{}", run.stdout);
    p.untouched();
}

#[test]
fn a_release_that_failed_before_is_refused() {
    let p = Publisher::new();
    let mut state = OtaState::default();
    state.mark_failed(
        Version::new(1, 0, 0),
        "c".repeat(64),
        "health check demo.service".into(),
    );
    fs::create_dir_all(&p.ws.state).unwrap();
    state
        .save(&archy_store::StateDir::new(&p.ws.state))
        .unwrap();
    let r = p.release("src", "1.0.0", &[], "r.tar.gz");
    let run = p.apply(&r);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("failed on this node"), "{}", run.stderr);
    assert!(
        run.stderr.contains("health check demo.service"),
        "{}",
        run.stderr
    );
    p.untouched();
}

#[test]
fn a_release_that_needs_a_newer_archy_is_refused() {
    let p = Publisher::new();
    let r = p.release("src", "1.0.0", &["--min-archy", "99.0.0"], "r.tar.gz");
    let run = p.apply(&r);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("needs archy 99.0.0 or newer"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("update archy"), "{}", run.stderr);
    p.untouched();
    // Not the release's fault: it is not recorded as failed.
    assert!(p.record().failed.is_empty());
}

#[test]
fn a_release_whose_node_rhai_fails_to_evaluate_is_recorded_failed() {
    let p = Publisher::new();
    let bad: &[u8] = b"[file(\"/etc/demo/x\", #{ text: \"1\", nope: 1 })]\n";
    p.source("bad", std::str::from_utf8(bad).unwrap());
    // The publisher's archy evaluates the node to find its software, so it
    // refuses to pack it: the broken release is signed by hand here.
    let refused = p.run(&[
        "release",
        "build",
        "bad",
        "--key",
        "k1.key",
        "--version",
        "1.0.0",
        "-o",
        "r.tar.gz",
    ]);
    assert_eq!(refused.code, 1, "{}{}", refused.stdout, refused.stderr);
    assert!(refused.stderr.contains("nope"), "{}", refused.stderr);
    assert!(!p.path("r.tar.gz").exists());
    let r = p.signed(
        "r.tar.gz",
        "1.0.0",
        &tarball(
            &[("node.rhai", bad)],
            &[Entry::File("node.rhai", 0o644, bad)],
        ),
    );
    let run = p.apply(&r);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("nope"),
        "the evaluation problem: {}",
        run.stderr
    );
    assert!(run.stderr.contains("does not evaluate"), "{}", run.stderr);
    let generations = fs::read_dir(p.ws.state.join("generations")).map_or(0, |d| d.count());
    assert_eq!(generations, 0);
    let record = p.record();
    assert!(record.pending.is_none());
    assert_eq!(record.failed.len(), 1);
    assert_eq!(record.failed[0].version, Version::new(1, 0, 0));
    assert!(p.apply(&r).stderr.contains("failed on this node"));
}

#[test]
fn the_packer_refuses_a_tree_a_node_would_extract_wrongly() {
    let p = Publisher::new();
    std::os::unix::fs::symlink("/etc/passwd", p.path("src/stdlib/passwd")).unwrap();
    let run = p.run(&[
        "release",
        "build",
        "src",
        "--key",
        "k1.key",
        "--version",
        "1.0.0",
        "-o",
        "r.tar.gz",
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("stdlib/passwd"), "{}", run.stderr);
    assert!(!p.path("r.tar.gz").exists());
    assert!(!p.path("r.tar.gz.minisig").exists());
}

#[test]
fn hold_and_unhold_are_recorded() {
    let p = Publisher::new();
    fs::create_dir_all(&p.ws.state).unwrap();
    p.run(&["ota", "hold", "--reason", "exchange audit"]).ok();
    let status = p.run(&["ota", "status"]).ok();
    assert!(status.contains("held"), "{status}");
    assert!(status.contains("exchange audit"), "{status}");
    // A scheduled run does nothing while held, not even a download.
    let r = p.release("src", "1.0.0", &[], "r.tar.gz");
    let run = p.run(&["ota", "apply", "--scheduled", &r, "--keys", "keys"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("held"), "{}", run.stdout);
    p.untouched();
    p.run(&["ota", "unhold"]).ok();
    assert!(p.record().hold.is_none());
}

#[test]
fn the_nodes_own_channel_is_followed_without_the_flag() {
    let p = Publisher::new();
    let r = p.release("src", "1.0.0", &["--channel", "beta"], "beta.tar.gz");
    // The node's description follows stable (ota.channel).
    fs::write(p.path("ota-channel"), "stable\n").unwrap();
    let check = |extra: &[&str]| {
        let mut args = vec![
            "ota",
            "check",
            &r,
            "--keys",
            "keys",
            "--channel-file",
            "ota-channel",
        ];
        args.extend_from_slice(extra);
        p.run(&args)
    };
    let run = check(&[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .contains("published for the channel \"beta\"; this node follows \"stable\""),
        "{}",
        run.stdout
    );
    let run = p.run(&[
        "ota",
        "apply",
        &r,
        "--keys",
        "keys",
        "--channel-file",
        "ota-channel",
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("this node follows \"stable\""),
        "{}",
        run.stderr
    );
    p.untouched();
    // --channel on the command line still decides.
    let run = check(&["--channel", "beta"]);
    assert!(run.stdout.contains("it would be applied"), "{}", run.stdout);
}

#[test]
fn a_hostile_long_entry_name_is_cut_in_messages_and_status() {
    let p = Publisher::new();
    let long = "x".repeat(3000);
    let manifest = Manifest {
        format: 1,
        version: Version::new(1, 0, 0),
        min_archy: Version::new(0, 1, 0),
        channel: "stable".into(),
        files: [(
            "node.rhai".to_string(),
            FileEntry {
                blake3: blake3::hash(GOOD_NODE).to_hex().to_string(),
                size: GOOD_NODE.len() as u64,
                mode: 0o644,
            },
        )]
        .into(),
        objects: Vec::new(),
    };
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    for (name, data) in [
        ("manifest.json", manifest.to_json().unwrap()),
        ("node.rhai", GOOD_NODE.to_vec()),
        (long.as_str(), b"x".to_vec()),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        tar.append_data(&mut h, name, data.as_slice()).unwrap();
    }
    let bytes = tar.into_inner().unwrap().finish().unwrap();
    let b = p.signed("long.tar.gz", "1.0.0", &bytes);
    let run = p.apply(&b);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("(3000 bytes)"), "{}", run.stderr);
    assert!(
        run.stderr.len() < 1500,
        "the message is {} bytes",
        run.stderr.len()
    );
    p.untouched();
    let status = p.run(&["ota", "status"]);
    assert_eq!(status.code, 0, "{}", status.stderr);
    assert!(status.stdout.contains("1.0.0"), "{}", status.stdout);
    assert!(
        status.stdout.len() < 800 && !status.stdout.contains(&"x".repeat(400)),
        "{}",
        status.stdout
    );
}

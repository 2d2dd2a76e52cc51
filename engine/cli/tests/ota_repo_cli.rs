//! `archy ota apply --repo` and `archy ota check --repo` without a node:
//! each attack on the repository is built as bad metadata (or bytes) on a
//! `file://` mirror and refused before anything is unpacked, built or
//! switched: exit 1, a message naming the attack, and the node's release
//! record, generations and release folders untouched.

// Test helpers: a failure should panic, and the panic says where.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use archy_ota::tuf::publish::{Lifetimes, Publisher};
use archy_ota::tuf::{SignedDuration, Timestamp};
use common::{Run, Workspace};

const NODE: &str = r#"import "stdlib/archy" as archy;
[file("/etc/demo/release", #{ text: "1\n" }), archy::units()]
"#;

/// A publisher's repository (`repo/`, keys in `keys/`) and a node state
/// dir that pins its first root.
struct Fleet {
    ws: Workspace,
}

impl Fleet {
    fn new() -> Fleet {
        let ws = Workspace::new();
        let f = Fleet { ws };
        f.run(&["release", "keygen", "--out", "k1"]).ok();
        fs::create_dir_all(f.path("src")).unwrap();
        fs::write(f.path("src/node.rhai"), NODE).unwrap();
        let stdlib = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../stdlib"));
        copy_tree(stdlib, &f.path("src/stdlib"));
        fs::create_dir_all(f.path("out")).unwrap();
        f.run(&["release", "init", "--repo", "repo", "--keys", "keys"])
            .ok();
        fs::copy(
            f.path("repo/metadata/1.root.json"),
            f.path("trusted-root.json"),
        )
        .unwrap();
        f
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.ws.path().join(rel)
    }

    fn run(&self, args: &[&str]) -> Run {
        self.ws.archy(args)
    }

    /// Builds release `version` and adds it to the repository.
    /// Builds release `version` of `src` as a signed bundle; its path
    /// (relative to the fleet's folder).
    fn build(&self, version: &str) -> String {
        let out = format!("out/archy-{version}.tar.gz");
        self.run(&[
            "release",
            "build",
            "src",
            "--key",
            "k1.key",
            "--version",
            version,
            "-o",
            &out,
        ])
        .ok();
        out
    }

    fn add(&self, version: &str) {
        let out = self.build(version);
        self.run(&["release", "add", "--repo", "repo", "--keys", "keys", &out])
            .ok();
    }

    fn repo_url(&self) -> String {
        format!("file://{}", self.path("repo").display())
    }

    fn ota(&self, verb: &str) -> Run {
        let url = self.repo_url();
        self.run(&[
            "ota",
            verb,
            "--repo",
            &url,
            "--trusted-root",
            "trusted-root.json",
        ])
    }

    /// The library's publisher on this repository, at `hours` from now.
    fn publisher_at(&self, hours: i64, lifetimes: Lifetimes) -> Publisher {
        Publisher {
            repo: self.path("repo"),
            keys: self.path("keys"),
            lifetimes,
            now: Timestamp::from_second(Timestamp::now().as_second() + hours * 3600).unwrap(),
        }
    }

    fn save_metadata(&self, name: &str) -> PathBuf {
        let to = self.path(name);
        copy_tree(&self.path("repo/metadata"), &to);
        to
    }

    fn restore_metadata(&self, from: &Path) {
        fs::remove_dir_all(self.path("repo/metadata")).unwrap();
        copy_tree(from, &self.path("repo/metadata"));
    }

    /// What a refusal must leave as it was: the release record, no
    /// generation, no unpacked release, no download.
    fn snapshot(&self) -> (Option<Vec<u8>>, usize, usize, usize) {
        let count = |rel: &str| fs::read_dir(self.ws.state.join(rel)).map_or(0, |d| d.count());
        (
            fs::read(self.ws.state.join("ota.json")).ok(),
            count("generations"),
            count("ota/releases"),
            count("ota/downloads"),
        )
    }

    /// `archy ota apply --repo` refuses with exit 1, saying `says`, and
    /// changes nothing.
    fn refused(&self, says: &str) -> String {
        let before = self.snapshot();
        let run = self.ota("apply");
        assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
        assert!(run.stderr.contains(says), "{}", run.stderr);
        assert!(
            run.stderr.contains("nothing was changed on this node")
                || run.stderr.contains("nothing was installed"),
            "{}",
            run.stderr
        );
        assert_eq!(self.snapshot(), before, "a refusal changed the node");
        assert_eq!(before.1, 0, "no generation");
        run.stderr
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

fn hours(h: i64) -> SignedDuration {
    SignedDuration::from_hours(h)
}

#[test]
fn a_release_in_the_repository_checks_out_and_would_be_applied() {
    let f = Fleet::new();
    f.add("1.0.0");
    let run = f.ota("check");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("release 1.0.0 would be applied"),
        "{}",
        run.stdout
    );
    // The key files are the owner's alone.
    for role in ["root", "targets", "snapshot", "timestamp"] {
        let mode = fs::metadata(f.path(&format!("keys/{role}.key")))
            .unwrap()
            .permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600
        );
    }
}

#[test]
fn a_release_in_a_later_wave_waits_and_check_says_when() {
    let f = Fleet::new();
    let bundle = f.build("1.0.0");
    // One wave, for everyone, a day after publication.
    f.run(&[
        "release", "add", "--repo", "repo", "--keys", "keys", &bundle, "--wave", "100%@1d",
    ])
    .ok();
    let run = f.ota("check");
    assert!(
        run.stdout.contains("this node's wave opens at"),
        "{}",
        run.stdout
    );
    let before = f.snapshot();
    let run = f.ota("apply");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("wave opens at"), "{}", run.stdout);
    assert_eq!(f.snapshot().1, before.1, "nothing built");
    // Two days on (an injected clock), the wave is open.
    let later = humantime::format_rfc3339(
        std::time::SystemTime::now() + std::time::Duration::from_secs(2 * 86_400),
    )
    .to_string();
    let url = f.repo_url();
    let run =
        f.ws.command(&[
            "ota",
            "check",
            "--repo",
            &url,
            "--trusted-root",
            "trusted-root.json",
        ])
        .env("ARCHY_OTA_NOW", later)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&run.stdout);
    assert!(out.contains("release 1.0.0 would be applied"), "{out}");
}

#[test]
fn an_expired_timestamp_is_refused() {
    let f = Fleet::new();
    f.add("1.0.0");
    f.publisher_at(-48, Lifetimes::default()).refresh().unwrap();
    let err = f.refused("timestamp metadata has expired");
    assert!(err.contains("freeze attack"), "{err}");
    assert!(err.contains("archy release refresh"), "{err}");
}

#[test]
fn an_expired_snapshot_is_refused() {
    let f = Fleet::new();
    let bundle = f.build("1.0.0");
    let short = Lifetimes {
        snapshot: hours(1),
        ..Lifetimes::default()
    };
    f.publisher_at(-48, short)
        .add(&f.path(&bundle), &[])
        .unwrap();
    f.run(&["release", "refresh", "--repo", "repo", "--keys", "keys"])
        .ok();
    f.refused("snapshot metadata has expired");
}

#[test]
fn expired_targets_are_refused() {
    let f = Fleet::new();
    let bundle = f.build("1.0.0");
    let short = Lifetimes {
        targets: hours(1),
        ..Lifetimes::default()
    };
    f.publisher_at(-48, short)
        .add(&f.path(&bundle), &[])
        .unwrap();
    f.run(&["release", "refresh", "--repo", "repo", "--keys", "keys"])
        .ok();
    f.refused("targets metadata has expired");
}

#[test]
fn a_metadata_rollback_is_refused() {
    let f = Fleet::new();
    f.add("1.0.0");
    let old = f.save_metadata("old");
    f.add("1.1.0");
    assert_eq!(f.ota("check").code, 0);
    f.restore_metadata(&old);
    f.refused("older than version");
}

#[test]
fn mixed_snapshot_and_targets_are_refused() {
    let f = Fleet::new();
    let before = f.save_metadata("before");
    f.add("1.0.0");
    let with_one = f.save_metadata("with-one");
    f.restore_metadata(&before);
    f.add("1.0.1");
    let foreign = fs::read(f.path("repo/metadata/2.targets.json")).unwrap();
    f.restore_metadata(&with_one);
    fs::write(f.path("repo/metadata/2.targets.json"), foreign).unwrap();
    f.refused("mix-and-match");
}

#[test]
fn a_bundle_with_other_bytes_is_refused() {
    let f = Fleet::new();
    f.add("1.0.0");
    let target = fs::read_dir(f.path("repo/targets"))
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with(".archy-1.0.0.tar.gz"))
        .unwrap();
    let mut bytes = fs::read(&target).unwrap();
    bytes.extend_from_slice(b"appended");
    fs::write(&target, bytes).unwrap();
    f.refused("another length or hash");
}

#[test]
fn a_root_not_signed_by_the_old_root_key_is_refused() {
    let f = Fleet::new();
    f.add("1.0.0");
    // A rotation whose new root lacks the old root key's signature: sign
    // it properly, then strip that signature.
    f.run(&[
        "release", "rotate", "--repo", "repo", "--keys", "keys", "root",
    ])
    .ok();
    let path = f.path("repo/metadata/2.root.json");
    let mut root: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    let old: serde_json::Value =
        serde_json::from_slice(&fs::read(f.path("trusted-root.json")).unwrap()).unwrap();
    let old_root_key = old["signed"]["roles"]["root"]["keyids"][0].clone();
    root["signatures"]
        .as_array_mut()
        .unwrap()
        .retain(|s| s["keyid"] != old_root_key);
    assert_eq!(root["signatures"].as_array().unwrap().len(), 1);
    fs::write(&path, serde_json::to_vec_pretty(&root).unwrap()).unwrap();
    f.refused("not signed by the keys this node trusts");
}

#[test]
fn a_rotated_key_is_followed() {
    let f = Fleet::new();
    f.add("1.0.0");
    assert_eq!(f.ota("check").code, 0);
    for role in ["timestamp", "root"] {
        let run = f.run(&[
            "release", "rotate", "--repo", "repo", "--keys", "keys", role,
        ]);
        assert_eq!(run.code, 0, "{}", run.stderr);
    }
    assert!(f.path("keys/root.key.retired-2").exists());
    f.add("1.1.0");
    let run = f.ota("check");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("release 1.1.0 would be applied"),
        "{}",
        run.stdout
    );
}

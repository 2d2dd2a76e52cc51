//! The TUF repository end to end without a node: a publisher's folder, the
//! node's client loading it from a `file://` URL, and one test per attack
//! that builds the bad metadata (or bytes) and sees it refused, naming the
//! attack, with nothing downloaded.

mod support;

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use archy_ota::pack::{self, PackRequest};
use archy_ota::publish::PackObject;
use archy_ota::tuf::TufError;
use archy_ota::tuf::client::{self, Listing, Remote};
use archy_ota::tuf::keys;
use archy_ota::tuf::meta::Wave;
use archy_ota::tuf::publish::{Lifetimes, Publisher};
use tough::schema::{KeyHolder, RoleKeys, RoleType, Root, Signed};

struct Fixture {
    work: tempfile::TempDir,
    publisher: Publisher,
    release_keys: support::Keys,
}

impl Fixture {
    fn new() -> Fixture {
        let work = tempfile::tempdir().expect("tempdir");
        let publisher = Publisher {
            repo: work.path().join("repo"),
            keys: work.path().join("keys"),
            lifetimes: Lifetimes::default(),
            now: jiff::Timestamp::now(),
        };
        fs::create_dir_all(&publisher.repo).expect("repo");
        publisher.init().expect("init");
        Fixture {
            work,
            publisher,
            release_keys: support::keys(),
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.work.path().join(rel)
    }

    /// A signed bundle of a small node source, for release `version`.
    fn bundle(&self, version: &str) -> PathBuf {
        let src = self.path(&format!("src-{version}"));
        fs::create_dir_all(&src).expect("src");
        support::source_tree(&src);
        fs::write(src.join("node.rhai"), format!("// {version}\n[]\n")).expect("node.rhai");
        let out = self.path(&format!("out/archy-{version}.tar.gz"));
        fs::create_dir_all(out.parent().expect("parent")).expect("out");
        let (version, min_archy) = support::release(version);
        pack::build(&PackRequest {
            src: &src,
            key: &self.release_keys.signing,
            version,
            channel: "stable".to_string(),
            min_archy,
            out: &out,
            objects: &[],
        })
        .expect("pack");
        out
    }

    fn add(&self, version: &str) {
        let bundle = self.bundle(version);
        self.publisher.add(&bundle, &[]).expect("add");
    }

    /// The node's view: the root pinned at init, its own datastore.
    fn remote(&self, node: &str) -> Remote {
        let pinned = self.path(&format!("{node}-trusted-root.json"));
        if !pinned.exists() {
            fs::copy(self.publisher.repo.join("metadata/1.root.json"), &pinned).expect("pin");
        }
        Remote {
            mirrors: vec![format!("file://{}", self.publisher.repo.display())],
            trusted_root: pinned,
            datastore: self.path(&format!("{node}-datastore")),
        }
    }

    fn load(&self, node: &str) -> Result<Listing, TufError> {
        client::load(&self.remote(node))
    }

    /// The publisher at another moment.
    fn at(&self, offset_hours: i64, lifetimes: Lifetimes) -> Publisher {
        Publisher {
            now: jiff::Timestamp::now()
                .checked_add(jiff::SignedDuration::from_hours(offset_hours))
                .expect("time"),
            lifetimes,
            ..self.publisher.clone()
        }
    }

    /// Copies the repository's metadata folder aside.
    fn save_metadata(&self, name: &str) -> PathBuf {
        let to = self.path(name);
        copy_dir(&self.publisher.repo.join("metadata"), &to);
        to
    }

    fn restore_metadata(&self, from: &Path) {
        let metadata = self.publisher.repo.join("metadata");
        fs::remove_dir_all(&metadata).expect("rm metadata");
        copy_dir(from, &metadata);
    }
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("mkdir");
    for entry in fs::read_dir(from).expect("readdir") {
        let entry = entry.expect("entry");
        fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
    }
}

fn hours(h: i64) -> jiff::SignedDuration {
    jiff::SignedDuration::from_hours(h)
}

#[test]
fn a_published_release_is_offered_with_its_waves_and_downloads_checked() {
    let f = Fixture::new();
    let bundle = f.bundle("1.0.0");
    let waves = [
        Wave::parse("20%@0s").expect("wave"),
        Wave::parse("100%@1d").expect("wave"),
    ];
    let added = f.publisher.add(&bundle, &waves).expect("add");
    assert_eq!(added.target, "archy-1.0.0.tar.gz");
    assert_eq!(added.published.targets_version, 2);

    let listing = f.load("n1").expect("load");
    assert_eq!(listing.releases.len(), 1);
    let offered = &listing.releases[0];
    assert_eq!(offered.meta.version.to_string(), "1.0.0");
    assert_eq!(offered.meta.channel, "stable");
    assert_eq!(offered.meta.waves, waves);
    assert!(offered.meta.pulled.is_none());

    let dest = f.path("dl/bundle.tar.gz");
    listing.download(&offered.target, &dest).expect("download");
    assert_eq!(
        fs::read(&dest).expect("dl"),
        fs::read(&bundle).expect("bundle")
    );
}

#[test]
fn key_files_are_private() {
    let f = Fixture::new();
    for role in keys::ROLES {
        let mode = support::mode_of(&keys::path(&f.publisher.keys, role));
        assert_eq!(mode, 0o600, "{role}");
    }
}

#[test]
fn an_up_to_date_node_fetches_the_timestamp_alone() {
    let f = Fixture::new();
    f.add("1.0.0");
    f.load("n1").expect("first load");
    let listing = f.load("n1").expect("second load");
    let timestamp = fs::metadata(f.publisher.repo.join("metadata/timestamp.json"))
        .expect("timestamp")
        .len();
    assert_eq!(listing.bytes_fetched(), timestamp);
}

#[test]
fn an_expired_timestamp_is_refused_as_a_freeze() {
    let f = Fixture::new();
    f.add("1.0.0");
    // Signed two days ago with a one-day timestamp, never refreshed.
    f.at(-48, Lifetimes::default()).refresh().expect("refresh");
    let err = f
        .load("n1")
        .expect_err("an expired timestamp must be refused");
    assert!(
        matches!(
            err,
            TufError::Expired {
                role: RoleType::Timestamp
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("freeze attack"), "{err}");
}

#[test]
fn an_expired_snapshot_is_refused_even_with_a_fresh_timestamp() {
    let f = Fixture::new();
    let short = Lifetimes {
        snapshot: hours(1),
        ..Lifetimes::default()
    };
    let bundle = f.bundle("1.0.0");
    f.at(-48, short).add(&bundle, &[]).expect("add");
    f.publisher.refresh().expect("refresh");
    let err = f
        .load("n1")
        .expect_err("an expired snapshot must be refused");
    assert!(
        matches!(
            err,
            TufError::Expired {
                role: RoleType::Snapshot
            }
        ),
        "{err}"
    );
}

#[test]
fn expired_targets_are_refused() {
    let f = Fixture::new();
    let short = Lifetimes {
        targets: hours(1),
        ..Lifetimes::default()
    };
    let bundle = f.bundle("1.0.0");
    f.at(-48, short).add(&bundle, &[]).expect("add");
    f.publisher.refresh().expect("refresh");
    let err = f.load("n1").expect_err("expired targets must be refused");
    assert!(
        matches!(
            err,
            TufError::Expired {
                role: RoleType::Targets
            }
        ),
        "{err}"
    );
}

#[test]
fn older_metadata_than_the_node_has_seen_is_refused_as_a_rollback() {
    let f = Fixture::new();
    f.add("1.0.0");
    let old = f.save_metadata("old-metadata");
    f.add("1.1.0");
    let listing = f.load("n1").expect("the node sees 1.1.0");
    assert_eq!(listing.releases.len(), 2);
    // A mirror serves the publication from before 1.1.0 again.
    f.restore_metadata(&old);
    let err = f.load("n1").expect_err("a rollback must be refused");
    assert!(matches!(err, TufError::Rollback { .. }), "{err}");
    assert!(err.to_string().contains("rollback"), "{err}");
    // A node that never saw 1.1.0 cannot tell, and loads the old one.
    assert_eq!(f.load("n2").expect("fresh node").releases.len(), 1);
}

#[test]
fn targets_that_the_snapshot_does_not_name_are_refused_as_mix_and_match() {
    let f = Fixture::new();
    let before = f.save_metadata("before");
    f.add("1.0.0");
    let a = f.save_metadata("with-1.0.0");
    // Another publication from the same state: its targets have the same
    // version number and other contents.
    f.restore_metadata(&before);
    f.add("1.0.1");
    let b_targets = f.publisher.repo.join("metadata/2.targets.json");
    let foreign = fs::read(&b_targets).expect("targets");
    f.restore_metadata(&a);
    fs::write(&b_targets, foreign).expect("mix");
    let err = f.load("n1").expect_err("mixed metadata must be refused");
    assert!(matches!(err, TufError::Mismatch { .. }), "{err}");
    assert!(err.to_string().contains("mix-and-match"), "{err}");
}

fn tamper_bundle(f: &Fixture, change: impl Fn(&mut Vec<u8>)) -> TufError {
    f.add("1.0.0");
    let targets = f.publisher.repo.join("targets");
    let file = fs::read_dir(&targets)
        .expect("targets")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with("archy-1.0.0.tar.gz"))
        .expect("the bundle target");
    let mut bytes = fs::read(&file).expect("read");
    change(&mut bytes);
    fs::write(&file, bytes).expect("write");
    let listing = f.load("n1").expect("the metadata is sound");
    let dest = f.path("dl/bundle.tar.gz");
    let err = listing
        .download("archy-1.0.0.tar.gz", &dest)
        .expect_err("other bytes must be refused");
    assert!(!dest.exists(), "nothing is named after a refused target");
    assert_eq!(
        fs::read_dir(f.path("dl")).expect("dl").count(),
        0,
        "no temp file is left"
    );
    err
}

#[test]
fn a_target_with_another_hash_is_refused() {
    let f = Fixture::new();
    let err = tamper_bundle(&f, |b| {
        let last = b.len() - 1;
        b[last] ^= 0xff;
    });
    assert!(matches!(err, TufError::TargetMismatch { .. }), "{err}");
}

#[test]
fn a_target_with_another_length_is_refused() {
    let f = Fixture::new();
    let err = tamper_bundle(&f, |b| b.extend_from_slice(b"more"));
    assert!(matches!(err, TufError::TargetMismatch { .. }), "{err}");
}

#[test]
fn rotated_keys_are_followed_from_the_pinned_root() {
    let f = Fixture::new();
    f.add("1.0.0");
    f.load("n1").expect("before");
    let rotated = f
        .publisher
        .rotate(RoleType::Timestamp)
        .expect("rotate timestamp");
    assert_eq!(rotated.root_version, 2);
    let rotated = f.publisher.rotate(RoleType::Root).expect("rotate root");
    assert_eq!(rotated.root_version, 3);
    assert!(f.publisher.keys.join("root.key.retired-2").exists());
    f.add("1.1.0");
    assert_eq!(f.load("n1").expect("after").releases.len(), 2);
    assert_eq!(f.load("n2").expect("new node").releases.len(), 2);
}

#[test]
fn a_new_root_not_signed_by_the_old_threshold_is_refused() {
    let f = Fixture::new();
    f.add("1.0.0");
    f.load("n1").expect("before");
    // Whoever holds a mirror makes a root of their own keys.
    let metadata = f.publisher.repo.join("metadata");
    let old: Signed<Root> =
        serde_json::from_slice(&fs::read(metadata.join("1.root.json")).expect("root"))
            .expect("parse");
    let theirs = f.path("theirs.key");
    keys::generate(&theirs).expect("key");
    let signed = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
        .block_on(async {
            let (id, key) = keys::public(&theirs).await.expect("public");
            let mut root = old.signed.clone();
            root.version = root.version.checked_add(1).expect("version");
            root.keys = HashMap::from([(id.clone(), key)]);
            for role in keys::ROLES {
                root.roles.insert(
                    role,
                    RoleKeys {
                        keyids: vec![id.clone()],
                        threshold: std::num::NonZeroU64::MIN,
                        _extra: HashMap::new(),
                    },
                );
            }
            let holder = KeyHolder::Root(root.clone());
            let rng = aws_lc_rs::rand::SystemRandom::new();
            tough::editor::signed::SignedRole::new(root, &holder, &[keys::source(&theirs)], &rng)
                .await
                .expect("sign")
        });
    fs::write(metadata.join("2.root.json"), signed.buffer()).expect("write");
    let err = f
        .load("n1")
        .expect_err("a root not signed by the old keys must be refused");
    assert!(matches!(err, TufError::Untrusted { .. }), "{err}");
    assert!(err.to_string().contains("threshold"), "{err}");
}

#[test]
fn a_pulled_release_says_so_in_its_signed_metadata() {
    let f = Fixture::new();
    f.add("1.0.0");
    let pulled = f
        .publisher
        .pull(&semver::Version::new(1, 0, 0))
        .expect("pull");
    assert!(pulled.pulled.is_some());
    let listing = f.load("n1").expect("load");
    assert!(listing.releases[0].meta.pulled.is_some());
    assert!(
        f.publisher.pull(&semver::Version::new(1, 0, 0)).is_err(),
        "a second pull is refused"
    );
}

#[test]
fn a_rotation_cut_short_after_its_root_is_finished_by_the_next_rotate() {
    let f = Fixture::new();
    f.add("1.0.0");
    f.load("n1").expect("before");
    // What the rotation would make, done in a copy.
    let copy = Publisher {
        repo: f.path("copy-repo"),
        keys: f.path("copy-keys"),
        ..f.publisher.clone()
    };
    copy_dir(
        &f.publisher.repo.join("metadata"),
        &copy.repo.join("metadata"),
    );
    fs::create_dir_all(copy.repo.join("targets")).expect("targets");
    copy_dir(&f.publisher.keys, &copy.keys);
    copy.rotate(RoleType::Timestamp).expect("rotate the copy");
    // The crash: the new root is in, and the new key beside the old one;
    // the rest of the publication is the old one.
    fs::copy(
        copy.repo.join("metadata/2.root.json"),
        f.publisher.repo.join("metadata/2.root.json"),
    )
    .expect("root");
    fs::copy(
        copy.keys.join("timestamp.key"),
        f.publisher.keys.join("timestamp.key.new"),
    )
    .expect("key");
    let err = f.load("n2").expect_err("half a rotation does not verify");
    assert!(matches!(err, TufError::Untrusted { .. }), "{err}");
    let done = f.publisher.rotate(RoleType::Timestamp).expect("finish");
    assert_eq!(done.root_version, 2);
    assert!(!f.publisher.keys.join("timestamp.key.new").exists());
    assert!(f.publisher.keys.join("timestamp.key.retired-1").exists());
    assert_eq!(f.load("n1").expect("after").releases.len(), 1);
    f.publisher.refresh().expect("refresh with the new key");
    f.load("n3").expect("a new node");
}

fn files_under(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
    for entry in fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            files_under(root, &path, out);
        } else {
            let name = path.strip_prefix(root).expect("under root");
            out.push((
                name.to_string_lossy().into_owned(),
                fs::read(&path).expect("read"),
            ));
        }
    }
}

#[test]
fn http_mirrors_are_tried_in_order_file_by_file() {
    use support::server::{Mode, Server};
    let f = Fixture::new();
    f.add("1.0.0");
    let mut files = Vec::new();
    files_under(&f.publisher.repo, &f.publisher.repo, &mut files);
    let served: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_slice()))
        .collect();
    let broken = Server::start(&served, Mode::Fail500);
    let good = Server::start(&served, Mode::Ok);
    let remote = Remote {
        mirrors: vec![
            broken.url("").trim_end_matches('/').to_string(),
            good.url(""),
        ],
        ..f.remote("n1")
    };
    let listing = client::load(&remote).expect("the second mirror serves");
    assert_eq!(listing.releases.len(), 1);
    let dest = f.path("dl/bundle.tar.gz");
    listing
        .download("archy-1.0.0.tar.gz", &dest)
        .expect("the bundle from the second mirror");
    assert!(
        !broken.hits().is_empty(),
        "the first mirror was asked first"
    );
    assert!(
        good.hits()
            .iter()
            .any(|h| h.path.ends_with("archy-1.0.0.tar.gz"))
    );
    // Nobody answers: said so.
    let remote = Remote {
        mirrors: vec![broken.url("")],
        ..f.remote("n2")
    };
    let err = client::load(&remote).expect_err("no mirror");
    assert!(matches!(err, TufError::Unreachable { .. }), "{err}");
}

#[test]
fn a_release_with_software_lists_each_object_as_a_target() {
    let f = Fixture::new();
    let src = f.path("src-sw");
    fs::create_dir_all(&src).expect("src");
    fs::write(src.join("node.rhai"), "[]\n").expect("node.rhai");
    let binary = f.path("validator");
    fs::write(&binary, b"a program").expect("object");
    let out = f.path("sw/archy-2.0.0.tar.gz");
    fs::create_dir_all(out.parent().expect("parent")).expect("out");
    let (version, min_archy) = support::release("2.0.0");
    pack::build(&PackRequest {
        src: &src,
        key: &f.release_keys.signing,
        version,
        channel: "stable".to_string(),
        min_archy,
        out: &out,
        objects: &[PackObject {
            name: "validator+x".to_string(),
            path: binary.clone(),
        }],
    })
    .expect("pack");
    let added = f.publisher.add(&out, &[]).expect("add");
    assert_eq!(added.objects, 1);
    let blake3 = blake3::hash(b"a program").to_hex().to_string();
    assert_eq!(
        fs::read(f.publisher.repo.join(format!("targets/objects/{blake3}"))).expect("object"),
        b"a program"
    );
    let targets = fs::read_to_string(f.publisher.repo.join(format!(
        "metadata/{}.targets.json",
        added.published.targets_version
    )))
    .expect("targets");
    assert!(targets.contains(&format!("objects/{blake3}")), "{targets}");
    let listing = f.load("n1").expect("load");
    assert_eq!(
        listing.objects(),
        archy_ota::objects::ObjectSource::Folder(f.publisher.repo.join("targets"))
    );
}

//! The publisher's side: a TUF repository in a folder that any static file
//! server can serve.
//!
//! ```text
//! REPO/metadata/N.root.json       every root; nodes walk them from the one they pin
//! REPO/metadata/N.targets.json    each release bundle and software object: length, sha256, archy's details
//! REPO/metadata/N.snapshot.json   the targets' version, length and hash
//! REPO/metadata/timestamp.json    the snapshot's; expires within a day unless refreshed
//! REPO/targets/SHA256.archy-VERSION.tar.gz
//! REPO/targets/objects/BLAKE3     the software, as `archy release build` publishes it
//! ```
//!
//! Every change is signed in a staging folder and moved in with renames,
//! the timestamp last: a mirror syncing meanwhile, or a crash, leaves the
//! previous publication whole (consistent snapshots keep each version's
//! files under their own names).

use std::collections::HashMap;
use std::num::NonZeroU64;
use std::path::{Path, PathBuf};

use semver::Version;
use tough::editor::RepositoryEditor;
use tough::editor::signed::SignedRole;
use tough::key_source::KeySource;
use tough::schema::{KeyHolder, RoleKeys, RoleType, Root, Target, Timestamp};
use tough::{ExpirationEnforcement, Repository, RepositoryLoader, TargetName};
use url::Url;

mod folder;
mod rotate;

use folder::{copy_in, hex};
use rotate::sign_root;

use super::meta::{CUSTOM_KEY, ReleaseMeta, Wave};
use super::{TufError, block_on, keys};
use crate::manifest::OBJECTS_DIR;

/// How long each role's metadata stays valid once signed.
#[derive(Debug, Clone, Copy)]
pub struct Lifetimes {
    pub root: jiff::SignedDuration,
    pub targets: jiff::SignedDuration,
    pub snapshot: jiff::SignedDuration,
    pub timestamp: jiff::SignedDuration,
}

impl Default for Lifetimes {
    fn default() -> Self {
        let days = |d: i64| jiff::SignedDuration::from_hours(24 * d);
        Lifetimes {
            root: days(365),
            targets: days(90),
            snapshot: days(90),
            timestamp: days(1),
        }
    }
}

/// A repository folder, the publisher's key folder, and the clock.
#[derive(Debug, Clone)]
pub struct Publisher {
    pub repo: PathBuf,
    pub keys: PathBuf,
    pub lifetimes: Lifetimes,
    /// When the signing happens (tests sign in the past to build expired
    /// metadata).
    pub now: jiff::Timestamp,
}

/// What a change published.
#[derive(Debug, Clone)]
pub struct Published {
    pub targets_version: u64,
    pub snapshot_version: u64,
    pub timestamp_version: u64,
    pub root_version: u64,
    /// When the timestamp expires: refresh before.
    pub timestamp_expires: jiff::Timestamp,
}

/// A release as `add` published it.
#[derive(Debug, Clone)]
pub struct Added {
    pub target: String,
    pub meta: ReleaseMeta,
    pub objects: usize,
    pub published: Published,
}

fn one() -> NonZeroU64 {
    NonZeroU64::MIN
}

fn next(v: NonZeroU64) -> NonZeroU64 {
    v.checked_add(1).unwrap_or(v)
}

/// The target name of a release's bundle.
pub fn bundle_target(version: &Version) -> String {
    format!("archy-{version}.tar.gz")
}

impl Publisher {
    fn metadata(&self) -> PathBuf {
        self.repo.join("metadata")
    }

    fn targets(&self) -> PathBuf {
        self.repo.join("targets")
    }

    fn fail(&self, reason: impl std::fmt::Display) -> TufError {
        TufError::Publish {
            repo: self.repo.clone(),
            reason: reason.to_string(),
        }
    }

    fn at(&self, d: jiff::SignedDuration) -> jiff::Timestamp {
        self.now.checked_add(d).unwrap_or(jiff::Timestamp::MAX)
    }

    fn key(&self, role: RoleType) -> Box<dyn KeySource> {
        keys::source(&keys::path(&self.keys, role))
    }

    /// The keys that sign a publication: targets, snapshot, timestamp
    /// (never the root key, which stays offline).
    fn online_keys(&self) -> Vec<Box<dyn KeySource>> {
        [RoleType::Targets, RoleType::Snapshot, RoleType::Timestamp]
            .into_iter()
            .map(|r| self.key(r))
            .collect()
    }

    /// Makes the keys the folder lacks and a new repository: root version
    /// 1 (one key per role, threshold 1) and empty targets.
    pub fn init(&self) -> Result<Published, TufError> {
        if self.metadata().join("1.root.json").exists() {
            return Err(self.fail("it holds a repository already (metadata/1.root.json)"));
        }
        std::fs::create_dir_all(&self.keys).map_err(TufError::io("create", &self.keys))?;
        for role in keys::ROLES {
            let path = keys::path(&self.keys, role);
            if !path.exists() {
                keys::generate(&path)?;
            }
        }
        for dir in [self.metadata(), self.targets()] {
            std::fs::create_dir_all(&dir).map_err(TufError::io("create", &dir))?;
        }
        block_on(async {
            let mut root = Root {
                spec_version: "1.0.0".to_string(),
                consistent_snapshot: true,
                version: one(),
                expires: self.at(self.lifetimes.root),
                keys: HashMap::new(),
                roles: HashMap::new(),
                _extra: HashMap::new(),
            };
            for role in keys::ROLES {
                let (id, key) = keys::public(&keys::path(&self.keys, role)).await?;
                root.keys.insert(id.clone(), key);
                root.roles.insert(
                    role,
                    RoleKeys {
                        keyids: vec![id],
                        threshold: one(),
                        _extra: HashMap::new(),
                    },
                );
            }
            let signed = sign_root(root, &[self.key(RoleType::Root)], &[]).await?;
            let staging = self.staging()?;
            signed
                .write(staging.path(), true)
                .await
                .map_err(|e| self.fail(e))?;
            self.move_in(staging.path())?;
            let mut editor = RepositoryEditor::new(self.latest_root()?.0)
                .await
                .map_err(|e| self.fail(e))?;
            self.versions(&mut editor, one(), one(), one());
            self.sign_and_write(editor, 1).await
        })?
    }

    /// Adds a release bundle (made by `archy release build`) and the
    /// software objects beside it as targets, with the waves it rolls out
    /// in.
    pub fn add(&self, bundle: &Path, waves: &[Wave]) -> Result<Added, TufError> {
        Wave::check_all(waves).map_err(TufError::Invalid)?;
        let manifest = crate::unpack::read_manifest(bundle).map_err(|e| {
            TufError::Invalid(format!("{} is not a release bundle: {e}", bundle.display()))
        })?;
        let name = bundle_target(&manifest.version);
        block_on(async {
            let (root_path, root_version) = self.latest_root()?;
            let repo = self.load(&root_path).await?;
            if find(&repo, &name).is_some() {
                return Err(self.fail(format!(
                    "release {} is published already; publish a newer version",
                    manifest.version
                )));
            }
            let meta = ReleaseMeta {
                version: manifest.version.clone(),
                channel: manifest.channel.clone(),
                min_archy: manifest.min_archy.clone(),
                published: self.now,
                waves: waves.to_vec(),
                pulled: None,
            };
            let mut target = Target::from_path(bundle).await.map_err(|e| self.fail(e))?;
            target.custom.insert(
                CUSTOM_KEY.to_string(),
                serde_json::to_value(&meta).map_err(|e| self.fail(e))?,
            );
            // The bytes first, under their hash: nothing names them yet.
            let sha = hex(&target.hashes.sha256);
            copy_in(bundle, &self.targets().join(format!("{sha}.{name}")))?;
            let source_objects = bundle.parent().unwrap_or(Path::new(".")).join(OBJECTS_DIR);
            let objects_dir = self.targets().join(OBJECTS_DIR);
            let mut object_targets = Vec::new();
            for object in &manifest.objects {
                let from = source_objects.join(&object.blake3);
                std::fs::create_dir_all(&objects_dir)
                    .map_err(TufError::io("create", &objects_dir))?;
                crate::publish::place(&objects_dir, &from, &object.blake3)
                    .map_err(|e| self.fail(e))?;
                let t = Target::from_path(objects_dir.join(&object.blake3))
                    .await
                    .map_err(|e| self.fail(e))?;
                object_targets.push((format!("{OBJECTS_DIR}/{}", object.blake3), t));
            }
            let mut targets = vec![(name.clone(), target)];
            targets.extend(object_targets);
            let published = self
                .publish_targets(&root_path, repo, targets, root_version)
                .await?;
            Ok(Added {
                target: name.clone(),
                meta,
                objects: manifest.objects.len(),
                published,
            })
        })?
    }

    /// Marks release `version` pulled: nodes that have not taken it never
    /// will, and nodes running it go back to their previous release.
    pub fn pull(&self, version: &Version) -> Result<ReleaseMeta, TufError> {
        let name = bundle_target(version);
        block_on(async {
            let (root_path, root_version) = self.latest_root()?;
            let repo = self.load(&root_path).await?;
            let Some(mut target) = find(&repo, &name) else {
                return Err(self.fail(format!("it has no release {version}")));
            };
            let mut meta = release_meta(&target)
                .ok_or_else(|| self.fail(format!("the target {name} has no archy details")))?;
            if meta.pulled.is_some() {
                return Err(self.fail(format!("release {version} is pulled already")));
            }
            meta.pulled = Some(self.now);
            target.custom.insert(
                CUSTOM_KEY.to_string(),
                serde_json::to_value(&meta).map_err(|e| self.fail(e))?,
            );
            self.publish_targets(&root_path, repo, vec![(name.clone(), target)], root_version)
                .await?;
            Ok(meta)
        })?
    }

    /// Re-signs `timestamp.json` alone, with a new version and expiry:
    /// what a publisher runs on a schedule, with only the timestamp key.
    pub fn refresh(&self) -> Result<Published, TufError> {
        block_on(async {
            let (root_path, root_version) = self.latest_root()?;
            let repo = self.load(&root_path).await?;
            let old = repo.timestamp().signed.clone();
            let mut timestamp = Timestamp::new(
                old.spec_version.clone(),
                next(old.version),
                self.at(self.lifetimes.timestamp),
            );
            timestamp.meta = old.meta.clone();
            let holder = KeyHolder::Root(repo.root().signed.clone());
            let rng = aws_lc_rs::rand::SystemRandom::new();
            let signed =
                SignedRole::new(timestamp, &holder, &[self.key(RoleType::Timestamp)], &rng)
                    .await
                    .map_err(|e| self.fail(e))?;
            let staging = self.staging()?;
            signed
                .write(staging.path(), true)
                .await
                .map_err(|e| self.fail(e))?;
            self.move_in(staging.path())?;
            Ok(Published {
                targets_version: repo.targets().signed.version.get(),
                snapshot_version: repo.snapshot().signed.version.get(),
                timestamp_version: signed.signed().signed.version.get(),
                root_version,
                timestamp_expires: signed.signed().signed.expires,
            })
        })?
    }

    /// The releases the repository lists, oldest first.
    pub fn releases(&self) -> Result<Vec<ReleaseMeta>, TufError> {
        block_on(async {
            let (root_path, _) = self.latest_root()?;
            let repo = self.load(&root_path).await?;
            let mut out: Vec<ReleaseMeta> = repo
                .targets()
                .signed
                .targets
                .values()
                .filter_map(release_meta)
                .collect();
            out.sort_by(|a, b| a.version.cmp(&b.version));
            Ok(out)
        })?
    }

    fn versions(
        &self,
        editor: &mut RepositoryEditor,
        targets: NonZeroU64,
        snapshot: NonZeroU64,
        timestamp: NonZeroU64,
    ) {
        let _ = editor.targets_version(targets);
        let _ = editor.targets_expires(self.at(self.lifetimes.targets));
        editor.snapshot_version(snapshot);
        editor.snapshot_expires(self.at(self.lifetimes.snapshot));
        editor.timestamp_version(timestamp);
        editor.timestamp_expires(self.at(self.lifetimes.timestamp));
    }

    async fn sign_and_write(
        &self,
        editor: RepositoryEditor,
        root_version: u64,
    ) -> Result<Published, TufError> {
        let signed = editor
            .sign(&self.online_keys())
            .await
            .map_err(|e| self.fail(e))?;
        let staging = self.staging()?;
        signed
            .write(staging.path())
            .await
            .map_err(|e| self.fail(e))?;
        self.move_in(staging.path())?;
        self.published(root_version).await
    }

    /// `targets` added to (or replacing theirs in) `repo`, every other
    /// role's version raised, signed and moved in.
    async fn publish_targets(
        &self,
        root_path: &Path,
        repo: Repository,
        targets: Vec<(String, Target)>,
        root_version: u64,
    ) -> Result<Published, TufError> {
        let versions = Versions::after(&repo);
        let mut editor = RepositoryEditor::from_repo(root_path, repo)
            .await
            .map_err(|e| self.fail(e))?;
        for (name, target) in targets {
            editor
                .add_target(name.as_str(), target)
                .map_err(|e| self.fail(e))?;
        }
        self.versions(
            &mut editor,
            versions.targets,
            versions.snapshot,
            versions.timestamp,
        );
        self.sign_and_write(editor, root_version).await
    }

    /// The repository as written, read back: the numbers the operator is
    /// shown.
    async fn published(&self, root_version: u64) -> Result<Published, TufError> {
        let repo = self.load(&self.latest_root()?.0).await?;
        Ok(Published {
            targets_version: repo.targets().signed.version.get(),
            snapshot_version: repo.snapshot().signed.version.get(),
            timestamp_version: repo.timestamp().signed.version.get(),
            root_version,
            timestamp_expires: repo.timestamp().signed.expires,
        })
    }

    /// The newest `N.root.json` and its N.
    pub fn latest_root(&self) -> Result<(PathBuf, u64), TufError> {
        let dir = self.metadata();
        let entries = std::fs::read_dir(&dir).map_err(TufError::io("read", &dir))?;
        let newest = entries
            .filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let n: u64 = name.strip_suffix(".root.json")?.parse().ok()?;
                Some((n, e.path()))
            })
            .max_by_key(|(n, _)| *n);
        let (n, path) =
            newest.ok_or_else(|| self.fail("it has no root (run `archy release init` first)"))?;
        Ok((path, n))
    }

    /// The repository as it stands, expired or not (the publisher may be
    /// here to refresh it).
    async fn load(&self, root_path: &Path) -> Result<Repository, TufError> {
        let root = std::fs::read(root_path).map_err(TufError::io("read", root_path))?;
        let datastore = tempfile::tempdir()
            .map_err(TufError::io("create a temporary folder for", &self.repo))?;
        let url = |p: PathBuf| {
            Url::from_directory_path(&p)
                .map_err(|()| self.fail(format!("{} is not an absolute path", p.display())))
        };
        let absolute =
            std::path::absolute(&self.repo).map_err(TufError::io("resolve", &self.repo))?;
        RepositoryLoader::new(
            &root,
            url(absolute.join("metadata"))?,
            url(absolute.join("targets"))?,
        )
        .expiration_enforcement(ExpirationEnforcement::Unsafe)
        .datastore(datastore.path())
        .load()
        .await
        .map_err(|e| self.fail(TufError::of_load(e)))
    }
}

/// The next versions of targets, snapshot and timestamp.
struct Versions {
    targets: NonZeroU64,
    snapshot: NonZeroU64,
    timestamp: NonZeroU64,
}

impl Versions {
    fn after(repo: &Repository) -> Versions {
        Versions {
            targets: next(repo.targets().signed.version),
            snapshot: next(repo.snapshot().signed.version),
            timestamp: next(repo.timestamp().signed.version),
        }
    }
}

fn find(repo: &Repository, name: &str) -> Option<Target> {
    let name = TargetName::new(name).ok()?;
    repo.targets().signed.targets.get(&name).cloned()
}

/// archy's details of a target (None for a software object).
pub fn release_meta(target: &Target) -> Option<ReleaseMeta> {
    serde_json::from_value(target.custom.get(CUSTOM_KEY)?.clone()).ok()
}

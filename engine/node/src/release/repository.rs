//! What a publisher runs on the TUF repository that nodes follow with
//! `archy ota apply --repo`: make it, add a release bundle to it (with the
//! waves it rolls out in), pull a release, refresh the timestamp, rotate a
//! key. Each is a typed call; `archy_ota::tuf::publish` does the signing.

use std::path::{Path, PathBuf};

use archy_ota::tuf::meta::{ReleaseMeta, Wave};
pub use archy_ota::tuf::publish::{Added, Published};
use archy_ota::tuf::publish::{Lifetimes, Publisher};
use semver::Version;

use crate::NodeError;

/// A top-level TUF role, whose key `rotate` replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Root,
    Targets,
    Snapshot,
    Timestamp,
}

/// A repository folder and the folder of its keys.
#[derive(Debug, Clone)]
pub struct Repository {
    pub repo: PathBuf,
    pub keys: PathBuf,
    pub lifetimes: Lifetimes,
}

impl Repository {
    pub fn new(repo: &Path, keys: &Path) -> Repository {
        Repository {
            repo: repo.to_path_buf(),
            keys: keys.to_path_buf(),
            lifetimes: Lifetimes::default(),
        }
    }

    fn publisher(&self) -> Publisher {
        Publisher {
            repo: self.repo.clone(),
            keys: self.keys.clone(),
            lifetimes: self.lifetimes,
            now: archy_ota::tuf::Timestamp::now(),
        }
    }

    /// Makes the keys the key folder lacks (0600) and an empty repository.
    pub fn init(&self) -> Result<Published, NodeError> {
        std::fs::create_dir_all(&self.repo).map_err(NodeError::io("create", &self.repo))?;
        self.publisher().init().map_err(NodeError::Repository)
    }

    /// Adds a release bundle and its software; `waves` are `SHARE%@DELAY`.
    pub fn add(&self, bundle: &Path, waves: &[String]) -> Result<Added, NodeError> {
        let waves = waves
            .iter()
            .map(|w| Wave::parse(w))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| NodeError::Repository(archy_ota::tuf::TufError::Invalid(e)))?;
        self.publisher()
            .add(bundle, &waves)
            .map_err(NodeError::Repository)
    }

    /// Marks `version` pulled.
    pub fn pull(&self, version: &Version) -> Result<ReleaseMeta, NodeError> {
        self.publisher()
            .pull(version)
            .map_err(NodeError::Repository)
    }

    /// Re-signs the timestamp (the timestamp key alone).
    pub fn refresh(&self) -> Result<Published, NodeError> {
        self.publisher().refresh().map_err(NodeError::Repository)
    }

    /// Replaces `role`'s key by a new root signed by the old root's key.
    pub fn rotate(&self, role: Role) -> Result<Published, NodeError> {
        use archy_ota::tuf::RoleType;
        let role = match role {
            Role::Root => RoleType::Root,
            Role::Targets => RoleType::Targets,
            Role::Snapshot => RoleType::Snapshot,
            Role::Timestamp => RoleType::Timestamp,
        };
        self.publisher().rotate(role).map_err(NodeError::Repository)
    }

    /// The releases it lists, oldest first.
    pub fn releases(&self) -> Result<Vec<ReleaseMeta>, NodeError> {
        self.publisher().releases().map_err(NodeError::Repository)
    }

    /// The root a node pins: the newest `N.root.json`.
    pub fn root(&self) -> Result<PathBuf, NodeError> {
        Ok(self
            .publisher()
            .latest_root()
            .map_err(NodeError::Repository)?
            .0)
    }
}

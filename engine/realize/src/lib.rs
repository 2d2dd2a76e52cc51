//! archy's realizer: the half of a switch that is not systemd. It carries
//! out a plan's files, directories, accounts, secrets and unit files on a
//! file system rooted at a prefix (`/` on a node, any folder with `--root`
//! to build a node image offline), and it observes that file system for
//! the planner (which paths are in the way, which secrets are missing).
//!
//! archy keeps an ownership record (`<state_dir>/owned.json`, see
//! [`Record`]) of every path it wrote, and never modifies or deletes a
//! path the record does not list. Writes are atomic (temp file, fsync,
//! rename, fsync the directory); the record is rewritten after each step.
//!
//! Files derived from secrets are filled in here, at activation
//! ([`derive`]): the graph and the store keep their templates.
//!
//! No systemd, no D-Bus, no podman here: reloading systemd and acting on
//! units is the switch's job, after [`Realizer::apply_changes`].

mod accounts;
mod apply;
mod clobber;
pub mod derive;
mod drift;
mod error;
mod fsops;
pub mod imports;
mod install;
mod record;
mod secrets;
mod software;
mod temps;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use archy_graph::{Graph, Resource};
use archy_plan::{Observed, Plan};
use archy_store::StateDir;
use archy_units::UnitSource;
use serde::Serialize;

pub use clobber::Clobbered;
pub use error::{Error, Result};
pub use record::{OwnedKind, OwnedPath, Record, SecretRecord};

/// Realizes plans under one root, keeping its record in one state folder.
#[derive(Debug, Clone)]
pub struct Realizer {
    root: PathBuf,
    state_dir: StateDir,
}

/// What [`Realizer::apply_changes`] did. Paths are node paths (as the
/// graph names them, without the root prefix); secrets are names only.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Applied {
    /// Files, directories and [Install] links created or rewritten.
    pub written: Vec<String>,
    /// Files and directories whose mode or owner only was set.
    pub chmodded: Vec<String>,
    /// Files, directories and links removed.
    pub removed: Vec<String>,
    /// Paths left as they are: not archy's, holding data, or already
    /// right.
    pub kept: Vec<String>,
    /// Paths that existed, were backed up and are now archy's.
    pub adopted: Vec<String>,
    /// Adopted paths given back their backup.
    pub restored: Vec<String>,
    /// Accounts made, as `user NAME` or `group NAME`.
    pub accounts_created: Vec<String>,
    /// Accounts (`user NAME`, `group NAME`) that existed already (left exactly as they are), or that
    /// left the description (never deleted).
    pub accounts_kept: Vec<String>,
    /// Existing users added to supplementary groups, as `user NAME +GROUP
    /// +GROUP`.
    pub accounts_changed: Vec<String>,
    pub secrets_generated: Vec<String>,
    /// Secrets whose value stays (mode and owner are still set).
    pub secrets_kept: Vec<String>,
    /// Unit names whose file was written.
    pub unit_files_written: Vec<String>,
    /// Unit names whose file was removed (or given back its backup).
    pub unit_files_removed: Vec<String>,
}

impl Realizer {
    /// A realizer for the file system under `root`, keeping its ownership
    /// record, secrets and backups in `state_dir` (a path on this machine,
    /// such as `<root>/var/lib/archy`). Relative paths are taken from the
    /// current directory (the file system is not touched here).
    pub fn new(root: &Path, state_dir: &StateDir) -> Realizer {
        let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        Realizer {
            root: absolute(root),
            state_dir: StateDir::new(absolute(state_dir.path())),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn state_dir(&self) -> &StateDir {
        &self.state_dir
    }

    /// Where the value of secret `name` is kept.
    pub fn secret_path(&self, name: &str) -> PathBuf {
        self.state_dir.secret(name)
    }

    /// The path on this machine of a node path (symbolic links among its
    /// parents followed inside the root).
    pub fn host_path(&self, node_path: &str) -> PathBuf {
        fsops::locate(&self.root, node_path).host
    }

    /// The ownership record as it is on disk (empty before the first
    /// switch).
    pub fn record(&self) -> Result<Record> {
        Record::load(&self.state_dir)
    }

    /// What the planner needs to know about the disk for `new`: its target
    /// paths (files, unit files) that exist but are not archy's, and its
    /// secrets whose value is missing.
    pub fn observe(&self, new: &Graph, adopt: bool) -> Result<Observed> {
        let record = Record::load(&self.state_dir)?;
        let mut unowned = BTreeSet::new();
        let mut missing_secrets = BTreeSet::new();
        let mut identical = BTreeSet::new();
        for node in &new.nodes {
            let target = match &node.resource {
                Resource::File(f) => f.path.to_string(),
                Resource::Artifact(a) => a.path.to_string(),
                Resource::Tree(t) => t.path.to_string(),
                Resource::Unit(_)
                | Resource::Container(_)
                | Resource::Network(_)
                | Resource::Volume(_)
                | Resource::Dropin(_) => match UnitSource::of(node) {
                    Some(u) => u.path,
                    None => continue,
                },
                Resource::Secret(s) => {
                    if !fsops::exists(&self.secret_path(s.name.as_str())) {
                        missing_secrets.insert(s.name.to_string());
                    }
                    continue;
                }
                _ => continue,
            };
            if !record.owns(&target) && fsops::exists(&self.host_path(&target)) {
                if let Resource::Artifact(a) = &node.resource
                    && crate::software::holds(&self.host_path(&target), &a.hash)
                {
                    identical.insert(target.clone());
                }
                unowned.insert(target);
            }
        }
        // Each missing secret the description imports: whether its old
        // file can give the value.
        let imports = imports::declared(new)
            .into_iter()
            .filter(|(name, _)| missing_secrets.contains(name))
            .map(|(name, from)| {
                let unusable = imports::unusable(&self.host_path(&from));
                (name, archy_plan::Import { from, unusable })
            })
            .collect();
        Ok(Observed {
            unowned,
            missing_secrets,
            identical,
            adopt,
            imports,
            ..Observed::default()
        })
    }

    /// Carries out the non-systemd part of `plan` (made for `new`), in the
    /// plan's order: groups, users, directories, secrets, files, then the
    /// unit files and their [Install] links. A plan with refusals is not
    /// applied at all. After an error, the record and the disk agree on
    /// everything done so far, and applying the same plan again finishes
    /// the job.
    pub fn apply_changes(&self, new: &Graph, plan: &Plan) -> Result<Applied> {
        apply::apply(self, new, plan)
    }
}

//! Carrying out a plan's changes, step by step, with the ownership record
//! rewritten after each one.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use archy_graph::resource::{DirSpec, FileSpec, GroupSpec, SecretSpec, UserSpec};
use archy_graph::{Graph, Kind, Resource};
use archy_plan::{Change, ChangeOp, Plan, Reason};
use archy_store::StateDir;
use archy_units::{GraphUnits as _, UnitFile, UnitSource};

use crate::accounts::{self, Accounts};
use crate::error::{Error, Result};
use crate::fsops::{self, Target};
use crate::install;
use crate::record::{OwnedKind, OwnedPath, Record, SecretRecord};
use crate::secrets;
use crate::{Applied, Realizer};

/// The secrets folder: nobody can list it, but a service user can reach its
/// own 0600 secret by path.
const SECRETS_DIR_MODE: u32 = 0o711;

pub(crate) fn apply(r: &Realizer, new: &Graph, plan: &Plan) -> Result<Applied> {
    let refused: Vec<String> = plan.refusals().map(|c| c.key.to_string()).collect();
    if !refused.is_empty() {
        return Err(Error::Refused { ids: refused });
    }
    let mut s = Session {
        root: &r.root,
        state_dir: &r.state_dir,
        new,
        record: Record::load(&r.state_dir)?,
        accounts: None,
        applied: Applied::default(),
    };
    for change in &plan.changes {
        s.change(change)?;
    }
    let sources = new.unit_sources();
    for file in &plan.unit_files_changed {
        match sources.iter().find(|u| u.path == file.path) {
            Some(source) => s.write_unit(source)?,
            None => s.remove_unit(file)?,
        }
    }
    Ok(s.applied)
}

pub(crate) struct Session<'a> {
    pub(crate) root: &'a Path,
    pub(crate) state_dir: &'a StateDir,
    pub(crate) new: &'a Graph,
    pub(crate) record: Record,
    /// The root's account tables, read when first needed after the last
    /// account was created.
    pub(crate) accounts: Option<Accounts>,
    pub(crate) applied: Applied,
}

/// `/etc/x` -> `etc%2Fx`: the file name of an adopted path's backup.
fn backup_name(node_path: &str) -> String {
    node_path
        .trim_start_matches('/')
        .replace('%', "%25")
        .replace('/', "%2F")
}

impl<'a> Session<'a> {
    // ---- the record ----

    /// Adds `path` to the record and saves it, before the path is written.
    fn remember(&mut self, path: &str, entry: OwnedPath) -> Result<()> {
        if self.record.paths.get(path) == Some(&entry) {
            return Ok(());
        }
        self.record.paths.insert(path.to_string(), entry);
        self.record.save(self.state_dir)
    }

    /// Drops `path` from the record and saves it, after the path is gone.
    fn forget(&mut self, path: &str) -> Result<()> {
        if self.record.paths.remove(path).is_some() {
            self.record.save(self.state_dir)?;
        }
        Ok(())
    }

    fn accounts(&mut self) -> Result<&Accounts> {
        if self.accounts.is_none() {
            self.accounts = Some(Accounts::load(self.root)?);
        }
        Ok(self.accounts.get_or_insert_with(Accounts::default))
    }

    pub(crate) fn ids(
        &mut self,
        owner: Option<&str>,
        group: Option<&str>,
        path: &str,
    ) -> Result<(u32, u32)> {
        let accounts = self.accounts()?;
        Ok((accounts.uid(owner, path)?, accounts.gid(group, path)?))
    }

    pub(crate) fn target(&self, node_path: &str) -> Target {
        fsops::locate(self.root, node_path)
    }

    /// Makes the missing parents of `target`, recording each one first.
    fn parents(&mut self, target: &Target) -> Result<()> {
        let root = self.root;
        fsops::ensure_parents(root, target, |p| {
            self.remember(p, OwnedPath::new(OwnedKind::Parent))
        })
    }

    /// After a removal: removes the empty directories archy made only for
    /// the removed path, deepest first.
    fn prune_parents(&mut self, target: &Target) -> Result<()> {
        for i in (1..=target.parents.len()).rev() {
            let node = format!("/{}", target.parents[..i].join("/"));
            let made_for_files = self
                .record
                .paths
                .get(&node)
                .is_some_and(|e| e.kind == OwnedKind::Parent);
            if !made_for_files {
                return Ok(());
            }
            let host = fsops::join(self.root, &target.parents[..i]);
            match fs::remove_dir(&host) {
                Ok(()) => {
                    self.forget(&node)?;
                    self.applied.removed.push(node);
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => self.forget(&node)?,
                // Not empty (something else lives there now): it stays.
                Err(_) => return Ok(()),
            }
        }
        Ok(())
    }

    fn backup_path(&self, name: &str) -> PathBuf {
        self.state_dir.adopted_backup(name)
    }

    /// Backs up what is at `node_path` (not archy's) and records the path
    /// as archy's, with its backup.
    fn adopt(&mut self, node_path: &str, host: &Path, kind: OwnedKind) -> Result<()> {
        let meta = fs::symlink_metadata(host).map_err(|e| Error::io("read", host)(e))?;
        let what = if meta.is_dir() {
            Some("directory")
        } else if !meta.is_file() && !meta.file_type().is_symlink() {
            Some("special file")
        } else {
            None
        };
        if let Some(what) = what {
            return Err(Error::CannotAdopt {
                path: host.display().to_string(),
                what,
            });
        }
        let dir = self.state_dir.adopted();
        if !dir.is_dir() {
            let state = self.state_dir.path();
            fs::create_dir_all(state).map_err(|e| Error::io("create directory", state)(e))?;
            fsops::make_dir(&dir, 0o700, 0, 0)?;
        }
        let name = backup_name(node_path);
        fsops::copy_preserving(host, &self.backup_path(&name))?;
        let mut entry = OwnedPath::new(kind);
        entry.backup = Some(name);
        self.remember(node_path, entry)?;
        tracing::info!(path = node_path, "adopted: backed up, now managed");
        self.applied.adopted.push(node_path.to_string());
        Ok(())
    }

    /// Lets go of an owned file or link: its backup back in place if it
    /// was adopted, else removed. Returns false when it was not archy's.
    pub(crate) fn release(&mut self, node_path: &str) -> Result<bool> {
        let Some(entry) = self.record.paths.get(node_path).cloned() else {
            return Ok(false);
        };
        let target = self.target(node_path);
        if let Some(name) = &entry.backup {
            let backup = self.backup_path(name);
            if fsops::exists(&backup) {
                self.parents(&target)?;
                fsops::copy_preserving(&backup, &target.host)?;
                self.forget(node_path)?;
                fsops::remove_file(&backup)?;
                tracing::info!(path = node_path, "restored the adopted original");
                self.applied.restored.push(node_path.to_string());
                return Ok(true);
            }
            tracing::warn!(
                path = node_path,
                backup = %backup.display(),
                "the backup of an adopted path is missing; removing archy's version"
            );
        }
        let is_dir = fs::symlink_metadata(&target.host).is_ok_and(|m| m.is_dir());
        if !is_dir {
            if fsops::remove_file(&target.host)? {
                self.applied.removed.push(node_path.to_string());
            }
        } else {
            self.applied.kept.push(node_path.to_string());
        }
        self.forget(node_path)?;
        self.prune_parents(&target)?;
        Ok(true)
    }

    // ---- the plan's changes ----

    fn resource(&self, c: &Change) -> Result<&'a Resource> {
        let new = self.new;
        new.get(&c.key)
            .map(|n| &n.resource)
            .ok_or_else(|| Error::NotInGraph { key: c.key.clone() })
    }

    fn change(&mut self, c: &Change) -> Result<()> {
        let id = &c.key.id;
        match (c.op.clone(), c.key.kind) {
            (ChangeOp::Keep, Kind::User | Kind::Group) => {
                self.applied.accounts_kept.push(c.key.to_string());
            }
            (ChangeOp::Keep, Kind::Secret) => self.applied.secrets_kept.push(id.clone()),
            (ChangeOp::Keep, _) => self.applied.kept.push(id.clone()),
            (ChangeOp::Refuse, _) => {}
            (ChangeOp::Remove, Kind::File | Kind::Artifact | Kind::Tree) => {
                if !self.release(id)? && fsops::exists(&self.target(id).host) {
                    // Not archy's: it stays exactly as it is.
                    self.applied.kept.push(id.clone());
                }
            }
            (ChangeOp::Remove, Kind::Dir) => self.remove_dir(id)?,
            (ChangeOp::Remove, _) => self.applied.kept.push(id.clone()),
            (op, _) => match self.resource(c)? {
                Resource::Group(g) => self.group(g)?,
                Resource::User(u) => self.user(u)?,
                Resource::Dir(d) => self.dir(d)?,
                Resource::Secret(sec) => self.secret(sec, op, &c.reason)?,
                Resource::File(f) if op == ChangeOp::Chmod => self.chmod_file(f)?,
                Resource::File(f) => self.write_file(f, c.reason == Reason::Adopted)?,
                Resource::Artifact(a) => self.install_artifact(a, c.reason == Reason::Adopted)?,
                Resource::Tree(t) => self.install_tree(t, c.reason == Reason::Adopted)?,
                // Units are written from `unit_files_changed`; podman
                // resources and health checks are not the realizer's.
                _ => {}
            },
        }
        Ok(())
    }

    fn group(&mut self, g: &GroupSpec) -> Result<()> {
        let name = g.name.to_string();
        if self.accounts()?.groups.contains_key(&name) {
            self.applied.accounts_kept.push(format!("group {name}"));
            return Ok(());
        }
        accounts::create_group(self.root, g)?;
        self.accounts = None;
        self.account_created(format!("group {name}"))
    }

    fn user(&mut self, u: &UserSpec) -> Result<()> {
        let name = u.name.to_string();
        let accounts = self.accounts()?.clone();
        if !accounts.users.contains_key(&name) {
            accounts::create_user(self.root, u, &accounts)?;
            self.accounts = None;
            return self.account_created(format!("user {name}"));
        }
        // An existing user is left as it is, but for the supplementary
        // groups it is declared with and not in yet.
        let added = accounts::add_to_groups(self.root, u, &accounts)?;
        if added.is_empty() {
            self.applied.accounts_kept.push(format!("user {name}"));
        } else {
            self.accounts = None;
            let groups: Vec<&str> = added.iter().map(|g| g.as_str()).collect();
            self.applied
                .accounts_changed
                .push(format!("user {name} +{}", groups.join(" +")));
        }
        Ok(())
    }

    fn account_created(&mut self, name: String) -> Result<()> {
        if !self.record.accounts.contains(&name) {
            self.record.accounts.push(name.clone());
            self.record.save(self.state_dir)?;
        }
        self.applied.accounts_created.push(name);
        Ok(())
    }

    fn dir(&mut self, d: &DirSpec) -> Result<()> {
        let path = d.path.to_string();
        let target = self.target(&path);
        let (uid, gid) = self.ids(
            d.owner.as_ref().map(|o| o.as_str()),
            d.group.as_ref().map(|g| g.as_str()),
            &target.host.display().to_string(),
        )?;
        let mode = d.mode.bits();
        match fs::symlink_metadata(&target.host) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.parents(&target)?;
                self.remember(&path, OwnedPath::new(OwnedKind::Dir))?;
                self.write_claimed(&path, true, || {
                    fsops::make_dir(&target.host, mode, uid, gid)
                })?;
                self.applied.written.push(path);
            }
            Err(e) => return Err(Error::io("read", &target.host)(e)),
            Ok(m) if m.is_dir() => {
                // A directory archy made for a file becomes a declared
                // one; one that was there before is managed (mode, owner)
                // but never removed.
                let created = self.record.paths.get(&path).is_some_and(|e| {
                    e.created && matches!(e.kind, OwnedKind::Dir | OwnedKind::Parent)
                });
                let mut entry = OwnedPath::new(OwnedKind::Dir);
                entry.created = created;
                self.remember(&path, entry)?;
                if !fsops::has_meta(&target.host, true, mode, uid, gid) {
                    fsops::set_meta(&target.host, mode, uid, gid)?;
                    self.applied.chmodded.push(path);
                }
            }
            // A symbolic link (to wherever the image keeps it): left alone.
            Ok(m) if m.file_type().is_symlink() => self.applied.kept.push(path),
            Ok(_) => {
                return Err(Error::io("create directory", &target.host)(
                    io::Error::from(io::ErrorKind::AlreadyExists),
                ));
            }
        }
        Ok(())
    }

    /// Only a disposable directory archy created is removed (the planner
    /// asks only for those), and never one that still holds a path of
    /// the new generation.
    fn remove_dir(&mut self, path: &str) -> Result<()> {
        let created = self
            .record
            .paths
            .get(path)
            .is_some_and(|e| e.created && matches!(e.kind, OwnedKind::Dir | OwnedKind::Parent));
        if !created || self.holds_new_paths(path) {
            self.applied.kept.push(path.to_string());
            return Ok(());
        }
        let target = self.target(path);
        match fs::symlink_metadata(&target.host) {
            Ok(m) if m.is_dir() => {
                fs::remove_dir_all(&target.host)
                    .map_err(|e| Error::io("remove", &target.host)(e))?;
                if let Some(parent) = target.host.parent() {
                    fsops::sync_dir(parent)?;
                }
                self.applied.removed.push(path.to_string());
            }
            Ok(_) => {
                self.applied.kept.push(path.to_string());
                return self.forget(path);
            }
            Err(_) => {}
        }
        // Everything archy recorded inside it went with it.
        let prefix = format!("{path}/");
        let inside: Vec<String> = self
            .record
            .paths
            .keys()
            .filter(|p| p.starts_with(&prefix) || *p == path)
            .cloned()
            .collect();
        for p in inside {
            self.record.paths.remove(&p);
        }
        self.record.save(self.state_dir)?;
        self.prune_parents(&target)
    }

    fn holds_new_paths(&self, dir: &str) -> bool {
        let prefix = format!("{dir}/");
        self.new.nodes.iter().any(|n| {
            let p = match &n.resource {
                Resource::File(f) => f.path.to_string(),
                Resource::Dir(d) => d.path.to_string(),
                _ => match UnitSource::of(n) {
                    Some(u) => u.path,
                    None => return false,
                },
            };
            p.starts_with(&prefix)
        })
    }

    fn secret(&mut self, sec: &SecretSpec, op: ChangeOp, reason: &Reason) -> Result<()> {
        let name = sec.name.to_string();
        let dir = self.state_dir.secrets();
        let path = self.state_dir.secret(&name);
        let shown = path.display().to_string();
        let (uid, gid) = self.ids(
            sec.owner.as_ref().map(|o| o.as_str()),
            sec.group.as_ref().map(|g| g.as_str()),
            &shown,
        )?;
        if !fsops::has_meta(&dir, true, SECRETS_DIR_MODE, 0, 0) {
            let state = self.state_dir.path();
            fs::create_dir_all(state).map_err(|e| Error::io("create directory", state)(e))?;
            fsops::make_dir(&dir, SECRETS_DIR_MODE, 0, 0)?;
        }
        let wanted = SecretRecord {
            version: sec.version,
            length: sec.length,
        };
        let present = fs::symlink_metadata(&path).is_ok_and(|m| m.is_file());
        // A value in place is kept unless its declaration moved on (a
        // bumped version or length); without a record of what it was made
        // for, the plan's reason says whether it did.
        let bumped = matches!(reason, Reason::Metadata { what } if what.starts_with("version"));
        let regenerate = !present
            || match self.record.secrets.get(&name) {
                Some(made_for) => *made_for != wanted,
                None => op == ChangeOp::Generate && bumped,
            };
        let mode = sec.mode.bits();
        if let (false, Reason::Imported { from }) = (present, reason) {
            // The old node's value, taken as it is; its file stays.
            let source = crate::fsops::locate(self.root, from).host;
            let mut value = crate::imports::read(&source)
                .map_err(|e| Error::io("import the secret from", &source)(e))?;
            let written = fsops::write_file(&path, &value, mode, uid, gid);
            value.fill(0);
            written?;
            tracing::info!(secret = %name, from = %from, "imported the old node's value");
            self.applied.secrets_generated.push(name.clone());
        } else if regenerate {
            secrets::write_new(&name, &path, sec.length as usize, mode, uid, gid)?;
            tracing::info!(secret = %name, "generated a new value");
            self.applied.secrets_generated.push(name.clone());
        } else {
            if !fsops::has_meta(&path, false, mode, uid, gid) {
                fsops::set_meta(&path, mode, uid, gid)?;
            }
            self.applied.secrets_kept.push(name.clone());
        }
        // Recorded after the value is in place: a crash in between makes
        // the next run generate it again, never keep a stale one.
        if self.record.secrets.get(&name) != Some(&wanted) {
            self.record.secrets.insert(name, wanted);
            self.record.save(self.state_dir)?;
        }
        Ok(())
    }

    fn content(&self, f: &FileSpec) -> Result<&'a str> {
        let new = self.new;
        new.blobs
            .get(&f.content)
            .map(|t| &**t)
            .ok_or_else(|| Error::MissingContent {
                path: f.path.to_string(),
                digest: f.content.to_string(),
            })
    }

    /// Claims `node_path` for writing: already archy's, free (recorded
    /// first), or, with `adopt`, backed up first. Anything else refuses.
    /// True when the path was free and is newly recorded.
    pub(crate) fn claim(
        &mut self,
        node_path: &str,
        target: &Target,
        kind: OwnedKind,
        adopt: bool,
    ) -> Result<bool> {
        if self.record.owns(node_path) {
            self.parents(target)?;
            return Ok(false);
        }
        if fsops::exists(&target.host) {
            if !adopt {
                return Err(Error::NotOwned {
                    action: "write",
                    path: target.host.display().to_string(),
                });
            }
            self.adopt(node_path, &target.host, kind)?;
            return Ok(false);
        }
        self.parents(target)?;
        self.remember(node_path, OwnedPath::new(kind))?;
        Ok(true)
    }

    /// Writes a claimed path; when the write fails, a path recorded just
    /// for it is forgotten again (nothing was made there).
    pub(crate) fn write_claimed(
        &mut self,
        node_path: &str,
        fresh: bool,
        write: impl FnOnce() -> Result<()>,
    ) -> Result<()> {
        let result = write();
        if result.is_err() && fresh {
            let _ = self.forget(node_path);
        }
        result
    }

    fn write_file(&mut self, f: &FileSpec, adopt: bool) -> Result<()> {
        let path = f.path.to_string();
        let template = self.content(f)?;
        let text = if f.derives.is_empty() {
            std::borrow::Cow::Borrowed(template)
        } else {
            // Filled from the secrets here, at activation; the store keeps
            // the template. An error names the secret, never a value.
            let filled =
                crate::derive::render(template, |name| fs::read(self.state_dir.secret(name)).ok())
                    .map_err(|e| Error::Derive {
                        path: path.clone(),
                        why: e.message,
                    })?;
            std::borrow::Cow::Owned(filled)
        };
        let target = self.target(&path);
        let (uid, gid) = self.ids(
            f.owner.as_ref().map(|o| o.as_str()),
            f.group.as_ref().map(|g| g.as_str()),
            &target.host.display().to_string(),
        )?;
        let fresh = self.claim(&path, &target, OwnedKind::File, adopt)?;
        self.write_claimed(&path, fresh, || {
            fsops::write_file(&target.host, text.as_bytes(), f.mode.bits(), uid, gid)
        })?;
        tracing::info!(%path, "wrote");
        self.applied.written.push(path);
        Ok(())
    }

    fn chmod_file(&mut self, f: &FileSpec) -> Result<()> {
        let path = f.path.to_string();
        let target = self.target(&path);
        let is_file = fs::symlink_metadata(&target.host).is_ok_and(|m| m.is_file());
        if !self.record.owns(&path) || !is_file {
            // Gone, replaced, or never recorded: write it whole (which
            // refuses a path that is not archy's).
            return self.write_file(f, false);
        }
        let (uid, gid) = self.ids(
            f.owner.as_ref().map(|o| o.as_str()),
            f.group.as_ref().map(|g| g.as_str()),
            &target.host.display().to_string(),
        )?;
        let mode = f.mode.bits();
        if !fsops::has_meta(&target.host, false, mode, uid, gid) {
            fsops::set_meta(&target.host, mode, uid, gid)?;
            fsops::sync_dir(&target.parent_host(self.root))?;
        }
        self.applied.chmodded.push(path);
        Ok(())
    }

    // ---- unit files ----

    /// The unit (or Quadlet) file, then its [Install] links: stale ones
    /// removed, the missing ones made (Quadlet makes its own). A file in
    /// the way was let through by the planner only with --adopt, so it is
    /// backed up.
    fn write_unit(&mut self, u: &UnitSource) -> Result<()> {
        let name = u.unit.to_string();
        let links = install::links_of_source(u, self.new)?;
        let path = u.path.clone();
        if !u.is_instance() {
            // An instance has no file of its own: only its links.
            let target = self.target(&path);
            let fresh = self.claim(&path, &target, OwnedKind::UnitFile, true)?;
            self.write_claimed(&path, fresh, || {
                fsops::write_file(&target.host, u.text().as_bytes(), 0o644, 0, 0)
            })?;
            tracing::info!(unit = %name, %path, "wrote the unit file");
            self.applied.unit_files_written.push(name.clone());
        }
        if u.is_dropin() {
            // The unit's own links are its own file's business.
            return Ok(());
        }
        for stale in self.links_of(&name) {
            if !links.contains_key(&stale) {
                self.remove_link(&stale)?;
            }
        }
        for (link, to) in &links {
            self.write_link(link, to, &name)?;
        }
        Ok(())
    }

    fn links_of(&self, unit: &str) -> Vec<String> {
        self.record
            .paths
            .iter()
            .filter(|(_, e)| e.kind == OwnedKind::Link && e.unit.as_deref() == Some(unit))
            .map(|(p, _)| p.clone())
            .collect()
    }

    fn write_link(&mut self, link: &str, to: &str, unit: &str) -> Result<()> {
        let target = self.target(link);
        let mut entry = OwnedPath::new(OwnedKind::Link);
        entry.unit = Some(unit.to_string());
        let fresh = !self.record.owns(link);
        if fresh {
            match fs::symlink_metadata(&target.host) {
                // Someone enabled it already: the link does its job, and
                // stays theirs.
                Ok(m) if m.file_type().is_symlink() => {
                    self.applied.kept.push(link.to_string());
                    return Ok(());
                }
                Ok(_) => {
                    return Err(Error::NotOwned {
                        action: "link",
                        path: target.host.display().to_string(),
                    });
                }
                Err(_) => {}
            }
        }
        self.parents(&target)?;
        self.remember(link, entry)?;
        let current = fs::read_link(&target.host).ok();
        if current.as_deref() != Some(Path::new(to)) {
            self.write_claimed(link, fresh, || {
                fsops::write_link(&target.host, Path::new(to))
            })?;
            self.applied.written.push(link.to_string());
        }
        Ok(())
    }

    /// The unit of the new generation other than `unit` that wants `link`,
    /// and what the link points to.
    fn wanted_by_another(&self, link: &str, unit: &str) -> Result<Option<(String, String)>> {
        for u in self.new.unit_sources() {
            if u.is_dropin() || u.unit.as_str() == unit {
                continue;
            }
            if let Some(to) = install::links_of_source(&u, self.new)?.remove(link) {
                return Ok(Some((u.unit.to_string(), to)));
            }
        }
        Ok(None)
    }

    fn remove_link(&mut self, link: &str) -> Result<()> {
        let target = self.target(link);
        let is_link = fs::symlink_metadata(&target.host).is_ok_and(|m| m.file_type().is_symlink());
        if is_link && fsops::remove_file(&target.host)? {
            self.applied.removed.push(link.to_string());
        }
        self.forget(link)?;
        self.prune_parents(&target)
    }

    /// Removes the unit or Quadlet file, and the [Install] links archy
    /// made for its unit.
    fn remove_unit(&mut self, file: &UnitFile) -> Result<()> {
        let unit = file.unit.to_string();
        // A drop-in's unit keeps its links (and its own file).
        let links = if file.is_dropin() {
            Vec::new()
        } else {
            self.links_of(&unit)
        };
        for link in links {
            match self.wanted_by_another(&link, &unit)? {
                // One link two units want (a template's DefaultInstance=
                // and its declared instance): handed over, not removed.
                Some((owner, to)) => self.write_link(&link, &to, &owner)?,
                None => self.remove_link(&link)?,
            }
        }
        if self.release(&file.path)? {
            self.applied.unit_files_removed.push(unit);
        } else if fsops::exists(&self.target(&file.path).host) {
            self.applied.kept.push(file.path.clone());
        }
        Ok(())
    }
}

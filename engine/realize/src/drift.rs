//! The disk half of drift: files, directories, unit files, their [Install]
//! links and secrets compared with the generation the node runs, for
//! `archy status` and `archy reconcile`.
//!
//! Reads only, and only what it must: a file's bytes are hashed (blake3)
//! only when its size is right. A file filled from secrets is compared
//! with what activation would write from the secrets on disk; the filled
//! text is wiped after the comparison and never leaves this module. Paths
//! archy's ownership record does not list are none of archy's business
//! and are skipped, unless nothing is there at all (then a repair writes
//! a path that is free).

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;

use archy_graph::names::{AccountName, Mode};
use archy_graph::resource::{ArtifactSpec, DirSpec, FileSpec, Placement, SecretSpec, TreeSpec};
use archy_graph::{Digest, Graph, Kind, Resource};
use archy_plan::Drift;
use archy_units::{GraphUnits as _, UnitSource};

use crate::Realizer;
use crate::accounts::Accounts;
use crate::error::{Error, Result};
use crate::install;
use crate::record::Record;

/// What is at a path, as far as drift goes.
enum Found {
    Nothing,
    File(fs::Metadata),
    Dir(fs::Metadata),
    Link,
    Other,
}

fn look(path: &Path) -> Result<Found> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_file() => Ok(Found::File(m)),
        Ok(m) if m.is_dir() => Ok(Found::Dir(m)),
        Ok(m) if m.file_type().is_symlink() => Ok(Found::Link),
        Ok(_) => Ok(Found::Other),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Found::Nothing),
        Err(e) => Err(Error::io("read", path)(e)),
    }
}

/// The blake3 of a file's bytes, read in one go (the files archy writes
/// are configs, not data).
fn digest_of(path: &Path) -> Result<Digest> {
    let bytes = fs::read(path).map_err(|e| Error::io("read", path)(e))?;
    Ok(Digest::of(&bytes))
}

struct Checker<'a> {
    realizer: &'a Realizer,
    graph: &'a Graph,
    record: Record,
    accounts: Accounts,
    out: Vec<Drift>,
}

impl Realizer {
    /// How the disk differs from `graph` (the generation the node runs):
    /// missing or edited files and unit files, wrong modes and owners,
    /// missing directories and secrets, units whose [Install] links are
    /// gone. Empty when the disk is as the generation says.
    pub fn drift(&self, graph: &Graph) -> Result<Vec<Drift>> {
        let mut c = Checker {
            realizer: self,
            graph,
            record: Record::load(&self.state_dir)?,
            accounts: Accounts::load(&self.root)?,
            out: Vec::new(),
        };
        for node in &graph.nodes {
            match &node.resource {
                Resource::File(f) => c.file(f)?,
                Resource::Dir(d) => c.dir(d)?,
                Resource::Secret(s) => c.secret(s)?,
                Resource::Artifact(a) => c.artifact(a)?,
                Resource::Tree(t) => c.tree(t)?,
                _ => {
                    if let Some(u) = graph.unit_source(node) {
                        c.unit(&u)?;
                    }
                }
            }
        }
        Ok(c.out)
    }
}

impl Checker<'_> {
    /// A path in the generation that exists and that the record does not
    /// list: a switch refused or adopted it, and drift leaves it alone.
    fn foreign(&self, node_path: &str, found: &Found) -> bool {
        !matches!(found, Found::Nothing) && !self.record.owns(node_path)
    }

    fn file(&mut self, f: &FileSpec) -> Result<()> {
        let path = f.path.to_string();
        let host = self.realizer.host_path(&path);
        let found = look(&host)?;
        if self.foreign(&path, &found) {
            return Ok(());
        }
        let meta = match found {
            Found::Nothing => {
                self.out.push(Drift::Missing {
                    kind: Kind::File,
                    id: path,
                });
                return Ok(());
            }
            Found::File(m) => m,
            _ => {
                self.out.push(Drift::Content {
                    kind: Kind::File,
                    id: path,
                    what: "not a regular file".into(),
                });
                return Ok(());
            }
        };
        if !self.content_matches(f, &host, meta.len())? {
            self.out.push(Drift::Content {
                kind: Kind::File,
                id: path.clone(),
                what: "content differs from the generation".into(),
            });
        }
        self.metadata(Kind::File, &path, &meta, f.mode, &f.owner, &f.group);
        Ok(())
    }

    /// Whether the file's bytes are what a switch writes. `None`-like
    /// answers (a secret it is filled from is missing) count as matching:
    /// the missing secret is reported on its own.
    fn content_matches(&self, f: &FileSpec, host: &Path, len: u64) -> Result<bool> {
        let Some(template) = self.graph.blobs.get(&f.content) else {
            // A generation loaded from the store has every blob; without
            // one there is nothing to compare with.
            return Ok(true);
        };
        if f.derives.is_empty() {
            return Ok(len == f.size && digest_of(host)? == f.content);
        }
        let Ok(filled) = crate::derive::render(template, |name| {
            fs::read(self.realizer.secret_path(name)).ok()
        }) else {
            return Ok(true);
        };
        let mut expected = filled.into_bytes();
        let same = len == expected.len() as u64 && digest_of(host)? == Digest::of(&expected);
        // The filled text holds secret values: wiped, not just dropped.
        expected.fill(0);
        Ok(same)
    }

    /// An artifact: its link points at its object, or its copy has its
    /// bytes, mode and owner.
    fn artifact(&mut self, a: &ArtifactSpec) -> Result<()> {
        let path = a.path.to_string();
        let host = self.realizer.host_path(&path);
        let found = look(&host)?;
        if self.foreign(&path, &found) {
            return Ok(());
        }
        let store =
            archy_store::Store::open(self.realizer.state_dir()).map_err(|e| Error::Software {
                path: path.clone(),
                why: e.to_string(),
            })?;
        let object = archy_build::software::artifact_object(&store, a)
            .ok()
            .flatten();
        let what = match (&found, a.place, &object) {
            (Found::Nothing, ..) => {
                self.out.push(Drift::Missing {
                    kind: Kind::Artifact,
                    id: path,
                });
                return Ok(());
            }
            // Its bytes left the store: reported by `archy store verify`,
            // and nothing here could put them back.
            (_, _, None) => None,
            (Found::Link, Placement::Link, Some(id)) => {
                let want = crate::software::node_view(&self.realizer.root, &store.object_path(id));
                (fs::read_link(&host).ok().as_deref() != Some(want.as_path()))
                    .then(|| "links elsewhere than its store object".to_string())
            }
            (Found::File(m), Placement::Copy, Some(id)) => {
                let same = m.len()
                    == fs::metadata(store.object_path(id))
                        .map(|o| o.len())
                        .unwrap_or(u64::MAX)
                    && digest_of(&host)? == id.digest();
                let meta = m.clone();
                self.metadata(Kind::Artifact, &path, &meta, a.mode, &a.owner, &a.group);
                (!same).then(|| "content differs from the generation".to_string())
            }
            _ => Some("not what the generation installs there".to_string()),
        };
        if let Some(what) = what {
            self.out.push(Drift::Content {
                kind: Kind::Artifact,
                id: path,
                what,
            });
        }
        Ok(())
    }

    /// A tree: its link points at the tree's folder, which is there.
    fn tree(&mut self, t: &TreeSpec) -> Result<()> {
        let path = t.path.to_string();
        let host = self.realizer.host_path(&path);
        let found = look(&host)?;
        if self.foreign(&path, &found) {
            return Ok(());
        }
        let folder = self
            .realizer
            .state_dir()
            .trees()
            .join(t.manifest.to_string());
        let want = crate::software::node_view(&self.realizer.root, &folder);
        let what = match found {
            Found::Nothing => {
                self.out.push(Drift::Missing {
                    kind: Kind::Tree,
                    id: path,
                });
                return Ok(());
            }
            Found::Link if fs::read_link(&host).ok().as_deref() != Some(want.as_path()) => {
                "links elsewhere than its tree"
            }
            Found::Link if !folder.is_dir() => "its tree's folder is missing",
            Found::Link => return Ok(()),
            _ => "not a link to its tree",
        };
        self.out.push(Drift::Content {
            kind: Kind::Tree,
            id: path,
            what: what.into(),
        });
        Ok(())
    }

    fn dir(&mut self, d: &DirSpec) -> Result<()> {
        let path = d.path.to_string();
        let host = self.realizer.host_path(&path);
        let found = look(&host)?;
        if self.foreign(&path, &found) {
            return Ok(());
        }
        match found {
            Found::Nothing => self.out.push(Drift::Missing {
                kind: Kind::Dir,
                id: path,
            }),
            Found::Dir(m) => self.metadata(Kind::Dir, &path, &m, d.mode, &d.owner, &d.group),
            // A link (to where an image keeps the folder): left alone, as
            // a switch leaves it.
            Found::Link => {}
            _ => self.out.push(Drift::Content {
                kind: Kind::Dir,
                id: path,
                what: "not a directory".into(),
            }),
        }
        Ok(())
    }

    fn secret(&mut self, s: &SecretSpec) -> Result<()> {
        let name = s.name.to_string();
        let host = self.realizer.secret_path(&name);
        match look(&host)? {
            Found::File(m) => self.metadata(Kind::Secret, &name, &m, s.mode, &s.owner, &s.group),
            _ => self.out.push(Drift::Missing {
                kind: Kind::Secret,
                id: name,
            }),
        }
        Ok(())
    }

    fn unit(&mut self, u: &UnitSource) -> Result<()> {
        let host = self.realizer.host_path(&u.path);
        let found = look(&host)?;
        if self.foreign(&u.path, &found) && !u.is_instance() {
            return Ok(());
        }
        let what = match found {
            // An instance has no file of its own: only its links count.
            _ if u.is_instance() => None,
            Found::Nothing => Some("missing"),
            Found::File(m) => {
                let text = u.text();
                let same = m.len() == text.len() as u64
                    && digest_of(&host)? == Digest::of(text.as_bytes());
                (!same).then_some("edited: it differs from the generation")
            }
            _ => Some("not a regular file"),
        };
        if let Some(what) = what {
            self.out.push(Drift::UnitFile {
                unit: u.unit.clone(),
                path: u.path.clone(),
                what: what.into(),
            });
        }
        if matches!(u.node.resource, Resource::Unit(_) | Resource::Instance(_)) {
            let links = install::links_of_source(u, self.graph)?;
            let gone = links.keys().any(|link| {
                !fs::symlink_metadata(self.realizer.host_path(link))
                    .is_ok_and(|m| m.file_type().is_symlink())
            });
            if gone {
                self.out.push(Drift::Disabled {
                    unit: u.unit.clone(),
                });
            }
        }
        Ok(())
    }

    /// Mode, owner and group against the declared ones. An owner the
    /// account tables lack is not drift of this path (a switch reports
    /// it).
    fn metadata(
        &mut self,
        kind: Kind,
        id: &str,
        meta: &fs::Metadata,
        mode: Mode,
        owner: &Option<AccountName>,
        group: &Option<AccountName>,
    ) {
        let (Ok(uid), Ok(gid)) = (
            self.accounts.uid(owner.as_ref().map(|o| o.as_str()), id),
            self.accounts.gid(group.as_ref().map(|g| g.as_str()), id),
        ) else {
            return;
        };
        let mut parts = Vec::new();
        let actual = meta.mode() & 0o7777;
        if actual != mode.bits() {
            parts.push(format!(
                "mode {}, not {mode}",
                Mode::try_from(actual).map_or_else(|_| format!("{actual:o}"), |m| m.to_string())
            ));
        }
        if meta.uid() != uid {
            parts.push(format!(
                "owner {}, not {}",
                self.accounts.user_name(meta.uid()),
                owner.as_ref().map_or("root", |o| o.as_str())
            ));
        }
        if meta.gid() != gid {
            parts.push(format!(
                "group {}, not {}",
                self.accounts.group_name(meta.gid()),
                group.as_ref().map_or("root", |g| g.as_str())
            ));
        }
        if !parts.is_empty() {
            self.out.push(Drift::Metadata {
                kind,
                id: id.to_string(),
                what: parts.join(", "),
            });
        }
    }
}

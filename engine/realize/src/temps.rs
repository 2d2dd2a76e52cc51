//! The temp files an interrupted write leaves: every write goes through
//! `.NAME.archy-new` beside its target (see `fsops`), and a crash between
//! creating it and renaming it over the target leaves it there. Recovery
//! removes them from every directory the interrupted steps could have
//! written to.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use archy_graph::{Graph, Kind, Resource};
use archy_plan::Plan;
use archy_units::UnitSource;

use crate::error::{Error, Result};
use crate::{Realizer, Record, fsops, install};

/// The suffix of a write's temp file.
const SUFFIX: &str = ".archy-new";

/// Whether `name` is a write's temp file name (`.NAME.archy-new`).
pub(crate) fn is_temp(name: &str) -> bool {
    name.len() > 1 + SUFFIX.len() && name.starts_with('.') && name.ends_with(SUFFIX)
}

impl Realizer {
    /// Removes every write's temp file (`.NAME.archy-new`) beside a path
    /// that applying one of `plans` (made for one of `graphs`) could have
    /// written: their files, unit files and [Install] links, every path
    /// the ownership record names, the record itself, the secrets and the
    /// adopted backups. Returns what was removed.
    pub fn remove_temp_files(&self, graphs: &[&Graph], plans: &[&Plan]) -> Result<Vec<PathBuf>> {
        let mut node_paths: BTreeSet<String> = BTreeSet::new();
        for plan in plans {
            for c in &plan.changes {
                if matches!(c.key.kind, Kind::File) {
                    node_paths.insert(c.key.id.clone());
                }
            }
            for u in &plan.unit_files_changed {
                node_paths.insert(u.path.to_string());
            }
        }
        for graph in graphs {
            for node in &graph.nodes {
                match &node.resource {
                    Resource::File(f) => {
                        node_paths.insert(f.path.to_string());
                    }
                    Resource::Unit(spec) => {
                        // A unit whose [Install] cannot be read has no
                        // links to look beside.
                        if let Ok(links) = install::links(spec) {
                            node_paths.extend(links.into_keys());
                        }
                    }
                    _ => {}
                }
                if let Some(u) = UnitSource::of(node) {
                    node_paths.insert(u.path);
                }
            }
        }
        // What the record names: links and files of what was there before.
        if let Ok(record) = Record::load(&self.state_dir) {
            node_paths.extend(record.paths.into_keys());
        }
        let mut dirs: BTreeSet<PathBuf> = node_paths
            .iter()
            .filter_map(|p| self.host_path(p).parent().map(Path::to_path_buf))
            .collect();
        dirs.insert(self.state_dir.path().to_path_buf());
        dirs.insert(self.state_dir.secrets());
        dirs.insert(self.state_dir.adopted());
        let mut removed = Vec::new();
        for dir in dirs {
            remove_in(&dir, &mut removed)?;
        }
        Ok(removed)
    }
}

/// Removes the temp files directly in `dir` (a missing `dir` has none).
fn remove_in(dir: &Path, removed: &mut Vec<PathBuf>) -> Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(_) => return Ok(()),
    };
    let mut any = false;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("read directory", dir)(e))?;
        let name = entry.file_name();
        if !name.to_str().is_some_and(is_temp) {
            continue;
        }
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if is_dir {
            continue;
        }
        let path = entry.path();
        match fs::remove_file(&path) {
            Ok(()) => {
                any = true;
                removed.push(path);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("remove", &path)(e)),
        }
    }
    if any {
        fsops::sync_dir(dir)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names() {
        assert!(is_temp(".hello.conf.archy-new"));
        assert!(!is_temp("hello.conf"));
        assert!(!is_temp(".archy-new"));
        assert!(!is_temp("x.archy-new"));
    }
}

//! A node root in a temp folder, graphs evaluated from small descriptions,
//! and a switch that observes, plans and applies the way `archy switch`
//! does (minus systemd).

#![allow(dead_code)]
#![allow(clippy::unwrap_used)] // Helpers of tests, not tests, to clippy.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use archy_eval::{Limits, MemSources, evaluate};
use archy_graph::Graph;
use archy_plan::{Plan, plan};
use archy_realize::{Applied, Realizer, Result};
use archy_store::StateDir;
use tempfile::TempDir;

pub const TESTER_UID: u32 = 1500;
pub const TESTER_GID: u32 = 1501;

pub fn graph(node: &str) -> Graph {
    let src = MemSources::default().with("node.rhai", node);
    match evaluate(src, "node.rhai", BTreeMap::new(), &Limits::default()) {
        Ok(ev) => ev.graph,
        Err(f) => panic!("{:#?}", f.problems),
    }
}

/// A root with `/etc/passwd` and `/etc/group` holding root and `tester`,
/// and archy's state in `<root>/var/lib/archy`.
pub struct Node {
    pub dir: TempDir,
    pub root: PathBuf,
    pub state: PathBuf,
    pub realizer: Realizer,
}

impl Node {
    pub fn new() -> Node {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        fs::create_dir_all(root.join("etc")).unwrap();
        fs::write(
            root.join("etc/passwd"),
            format!(
                "root:x:0:0:root:/root:/bin/sh\ntester:x:{TESTER_UID}:{TESTER_GID}::/home/tester:/bin/sh\n"
            ),
        )
        .unwrap();
        fs::write(
            root.join("etc/group"),
            format!("root:x:0:\ntester:x:{TESTER_GID}:\n"),
        )
        .unwrap();
        let state = root.join("var/lib/archy");
        let realizer = Realizer::new(&root, &StateDir::new(&state));
        Node {
            dir,
            root,
            state,
            realizer,
        }
    }

    /// The path on this machine of a node path.
    pub fn at(&self, node_path: &str) -> PathBuf {
        self.root.join(node_path.trim_start_matches('/'))
    }

    pub fn read(&self, node_path: &str) -> String {
        fs::read_to_string(self.at(node_path)).unwrap()
    }

    pub fn exists(&self, node_path: &str) -> bool {
        fs::symlink_metadata(self.at(node_path)).is_ok()
    }

    /// (mode, uid, gid) of a node path, not following a last link.
    pub fn meta(&self, node_path: &str) -> (u32, u32, u32) {
        meta(&self.at(node_path))
    }

    pub fn plan(&self, live: Option<&Graph>, new: &Graph, adopt: bool) -> Plan {
        let observed = self.realizer.observe(new, adopt).unwrap();
        plan(live, new, &observed)
    }

    /// Observe, plan, apply.
    pub fn switch(&self, live: Option<&Graph>, new: &Graph) -> Result<Applied> {
        self.switch_with(live, new, false)
    }

    pub fn switch_with(&self, live: Option<&Graph>, new: &Graph, adopt: bool) -> Result<Applied> {
        let p = self.plan(live, new, adopt);
        self.realizer.apply_changes(new, &p)
    }

    pub fn owned(&self) -> Vec<String> {
        self.realizer
            .record()
            .unwrap()
            .paths
            .keys()
            .cloned()
            .collect()
    }

    /// Every file or link under the root that archy left behind as a
    /// temp file of an interrupted write.
    pub fn temp_files(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        walk(&self.root, &mut |p| {
            if p.file_name()
                .is_some_and(|n| n.to_string_lossy().ends_with(".archy-new"))
            {
                out.push(p.to_path_buf());
            }
        });
        out
    }
}

pub fn meta(path: &Path) -> (u32, u32, u32) {
    let m = fs::symlink_metadata(path).unwrap();
    (m.mode() & 0o7777, m.uid(), m.gid())
}

pub fn walk(dir: &Path, f: &mut dyn FnMut(&Path)) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        f(&p);
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            walk(&p, f);
        }
    }
}

/// Every regular file and link under `dir`, as paths relative to it.
pub fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    walk(dir, &mut |p| {
        if let Ok(rel) = p.strip_prefix(dir) {
            out.push(rel.display().to_string());
        }
    });
    out.sort();
    out
}

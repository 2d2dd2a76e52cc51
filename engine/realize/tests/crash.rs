//! A switch that fails midway: the ownership record agrees with the disk
//! after every step, nothing that was not archy's is touched, and the same
//! plan applied again finishes the job.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use archy_realize::Error;
use common::{Node, graph};

fn description() -> archy_graph::Graph {
    graph(
        r#"[
            dir("/srv/data", #{ owner: "tester" }),
            secret("tok", #{ length: 20 }),
            file("/etc/a.conf", #{ text: "a" }),
            file("/etc/m/blocked.conf", #{ text: "b" }),
            file("/etc/z.conf", #{ text: "z" }),
            unit("z.service", #{ Service: #{ ExecStart: "/bin/z" }, Install: #{ WantedBy: "multi-user.target" } }),
        ]"#,
    )
}

/// Node paths under the root, outside archy's state folder.
fn node_paths(n: &Node) -> BTreeSet<String> {
    common::tree(&n.root)
        .into_iter()
        .filter(|p| !p.starts_with("var/lib/archy") && p != "var" && p != "var/lib")
        .map(|p| format!("/{p}"))
        .collect()
}

/// The record lists exactly what archy made: every recorded path exists,
/// and every path that exists now and did not before is recorded.
fn assert_consistent(n: &Node, before: &BTreeSet<String>) {
    let owned: BTreeSet<String> = n.owned().into_iter().collect();
    let now = node_paths(n);
    for p in &owned {
        assert!(now.contains(p), "{p} is recorded but not on disk");
    }
    for p in now.difference(before) {
        assert!(owned.contains(p), "{p} is on disk but not recorded");
    }
}

#[test]
fn a_failed_step_leaves_record_and_disk_in_agreement() {
    let n = Node::new();
    // A file where the next file needs a folder: that step fails.
    fs::write(n.at("/etc/m"), "someone's file").unwrap();
    let before = node_paths(&n);
    let g = description();
    let p = n.plan(None, &g, false);

    let err = n.realizer.apply_changes(&g, &p).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("/etc/m: not a directory"), "{err}");
    assert_consistent(&n, &before);
    // The steps before it are done, the ones after it are not.
    assert!(n.exists("/srv/data"));
    assert!(n.realizer.secret_path("tok").exists());
    assert_eq!(n.read("/etc/a.conf"), "a");
    assert!(!n.exists("/etc/z.conf"));
    assert!(!n.exists("/etc/systemd"));
    assert_eq!(n.read("/etc/m"), "someone's file");
    assert!(n.temp_files().is_empty(), "{:?}", n.temp_files());
    let secret = fs::read_to_string(n.realizer.secret_path("tok")).unwrap();

    // The obstacle is moved away; the same plan finishes the switch, and
    // what was done already is not done twice.
    fs::remove_file(n.at("/etc/m")).unwrap();
    let applied = n.realizer.apply_changes(&g, &p).unwrap();
    assert!(applied.secrets_generated.is_empty());
    assert_eq!(
        fs::read_to_string(n.realizer.secret_path("tok")).unwrap(),
        secret
    );
    assert_consistent(&n, &before);
    assert_eq!(n.read("/etc/m/blocked.conf"), "b");
    assert_eq!(n.read("/etc/z.conf"), "z");
    assert!(n.exists("/etc/systemd/system/multi-user.target.wants/z.service"));
    assert!(n.realizer.observe(&g, false).unwrap().unowned.is_empty());

    // And back to nothing: everything archy made goes, the data folder
    // stays (not disposable), /etc/passwd and /etc/group are untouched.
    let empty = graph("[]");
    n.switch(Some(&g), &empty).unwrap();
    assert_eq!(
        node_paths(&n),
        ["/etc", "/etc/group", "/etc/passwd", "/srv", "/srv/data"]
            .into_iter()
            .map(String::from)
            .collect()
    );
    assert_consistent(&n, &before);
}

/// A directory made read-only by a read-only bind mount, unmounted on
/// drop. `None` where this machine cannot mount (no privilege).
struct ReadOnly(PathBuf);

impl ReadOnly {
    fn new(dir: &Path) -> Option<ReadOnly> {
        let run = |args: &[&str]| {
            Command::new("mount")
                .args(args)
                .arg(dir)
                .arg(dir)
                .output()
                .is_ok_and(|o| o.status.success())
        };
        if !run(&["--bind"]) {
            return None;
        }
        let guard = ReadOnly(dir.to_path_buf());
        run(&["-o", "remount,bind,ro"]).then_some(guard)
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_read_only_file_system_midway() {
    let n = Node::new();
    fs::create_dir_all(n.at("/etc/ro")).unwrap();
    let Some(_ro) = ReadOnly::new(&n.at("/etc/ro")) else {
        eprintln!("skipped: cannot make a read-only bind mount here");
        return;
    };
    let before = node_paths(&n);
    let g = graph(
        r#"[ file("/etc/a.conf", #{ text: "a" }), file("/etc/ro/x.conf", #{ text: "x" }), file("/etc/z.conf", #{ text: "z" }) ]"#,
    );
    let p = n.plan(None, &g, false);
    let err = n.realizer.apply_changes(&g, &p).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!(
            "cannot write {}: read-only file system; ",
            n.at("/etc/ro/x.conf").display()
        )),
        "{msg}"
    );
    assert_consistent(&n, &before);
    assert_eq!(n.owned(), vec!["/etc/a.conf"]);
    assert!(!n.exists("/etc/z.conf"));
}

/// A kill between writing a temp file and renaming it leaves
/// `.NAME.archy-new` beside the target: recovery removes every one beside
/// a path the plan could have written (files, unit files, [Install] links)
/// and touches nothing else.
#[test]
fn temp_files_of_an_interrupted_write_are_removed() {
    let n = Node::new();
    let g = description();
    let p = n.plan(None, &g, false);
    fs::create_dir_all(n.at("/etc/m")).unwrap();
    fs::create_dir_all(n.at("/etc/systemd/system/multi-user.target.wants")).unwrap();
    let temps = [
        "/etc/.a.conf.archy-new",
        "/etc/m/.blocked.conf.archy-new",
        "/etc/systemd/system/.z.service.archy-new",
        "/etc/systemd/system/multi-user.target.wants/.z.service.archy-new",
    ];
    for t in temps {
        fs::write(n.at(t), "half").unwrap();
    }
    // Not a temp file of archy's, and not beside anything it writes.
    fs::write(n.at("/etc/.other.archy-old"), "keep").unwrap();
    fs::create_dir_all(n.at("/srv/elsewhere")).unwrap();
    fs::write(n.at("/srv/elsewhere/.x.archy-new"), "keep").unwrap();
    let removed = n.realizer.remove_temp_files(&[&g], &[&p]).unwrap();
    assert_eq!(removed.len(), temps.len(), "{removed:?}");
    for t in temps {
        assert!(!n.exists(t), "{t} is still there");
    }
    assert!(n.exists("/etc/.other.archy-old"));
    assert!(n.exists("/srv/elsewhere/.x.archy-new"));
    // Then the switch applies as if nothing had happened.
    n.realizer.apply_changes(&g, &p).unwrap();
    assert_eq!(n.read("/etc/a.conf"), "a");
}

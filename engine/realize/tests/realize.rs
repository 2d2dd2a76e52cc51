//! The realizer on a temp root: files, directories, unit files and their
//! links, adoption, the ownership record, and what observe reports.

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;

use archy_plan::{ChangeOp, Reason};
use archy_realize::{Error, OwnedKind, Realizer};
use archy_store::StateDir;
use archy_units::unit_file::UnitFile as _;
use common::{Node, TESTER_GID, TESTER_UID, graph};

fn one_file(path: &str, opts: &str) -> archy_graph::Graph {
    graph(&format!(r#"[ file("{path}", #{{ {opts} }}) ]"#))
}

#[test]
fn files_are_written_atomically_with_mode_and_owner() {
    let n = Node::new();
    let g = one_file(
        "/etc/app/app.conf",
        r#"text: "port=1\n", mode: "0640", owner: "tester", group: "tester""#,
    );
    let applied = n.switch(None, &g).unwrap();
    assert_eq!(applied.written, vec!["/etc/app/app.conf"]);
    assert_eq!(n.read("/etc/app/app.conf"), "port=1\n");
    assert_eq!(n.meta("/etc/app/app.conf"), (0o640, TESTER_UID, TESTER_GID));
    // The missing parent is made 0755 root, and archy owns it too.
    assert_eq!(n.meta("/etc/app"), (0o755, 0, 0));
    let record = n.realizer.record().unwrap();
    assert_eq!(record.paths["/etc/app/app.conf"].kind, OwnedKind::File);
    assert_eq!(record.paths["/etc/app"].kind, OwnedKind::Parent);
    assert!(!record.owns("/etc"), "/etc existed: not archy's");
    assert!(n.temp_files().is_empty(), "{:?}", n.temp_files());
    assert_eq!(n.meta("/var/lib/archy/owned.json").0, 0o644);

    // A new content replaces the file by rename: a new inode, never a
    // half-written one.
    let before = fs::metadata(n.at("/etc/app/app.conf")).unwrap().ino();
    let g2 = one_file(
        "/etc/app/app.conf",
        r#"text: "port=2\n", mode: "0640", owner: "tester", group: "tester""#,
    );
    let p = n.plan(Some(&g), &g2, false);
    assert_eq!(p.changes[0].op, ChangeOp::Update);
    n.realizer.apply_changes(&g2, &p).unwrap();
    assert_eq!(n.read("/etc/app/app.conf"), "port=2\n");
    assert_ne!(
        fs::metadata(n.at("/etc/app/app.conf")).unwrap().ino(),
        before
    );
    assert!(n.temp_files().is_empty());
}

#[test]
fn a_chmod_only_change_keeps_the_file() {
    let n = Node::new();
    let g1 = one_file("/etc/a.conf", r#"text: "a""#);
    n.switch(None, &g1).unwrap();
    assert_eq!(n.meta("/etc/a.conf"), (0o644, 0, 0));
    let ino = fs::metadata(n.at("/etc/a.conf")).unwrap().ino();

    let g2 = one_file("/etc/a.conf", r#"text: "a", mode: "0600", owner: "tester""#);
    let p = n.plan(Some(&g1), &g2, false);
    assert_eq!(p.changes.len(), 1);
    assert_eq!(p.changes[0].op, ChangeOp::Chmod);
    let applied = n.realizer.apply_changes(&g2, &p).unwrap();
    assert_eq!(applied.chmodded, vec!["/etc/a.conf"]);
    assert!(applied.written.is_empty());
    assert_eq!(n.meta("/etc/a.conf"), (0o600, TESTER_UID, 0));
    assert_eq!(fs::metadata(n.at("/etc/a.conf")).unwrap().ino(), ino);
    assert_eq!(n.read("/etc/a.conf"), "a");
}

#[test]
fn only_owned_files_are_removed() {
    let n = Node::new();
    // The live generation declares /etc/theirs.conf, but what is on disk
    // there was never written by archy (its record was lost, or someone
    // replaced it).
    let live = graph(
        r#"[ file("/etc/app/a.conf", #{ text: "a" }), file("/etc/theirs.conf", #{ text: "t" }) ]"#,
    );
    n.switch(
        None,
        &graph(r#"[ file("/etc/app/a.conf", #{ text: "a" }) ]"#),
    )
    .unwrap();
    fs::write(n.at("/etc/theirs.conf"), "not archy's").unwrap();

    let empty = graph("[]");
    let p = n.plan(Some(&live), &empty, false);
    let removes: Vec<_> = p
        .changes
        .iter()
        .filter(|c| c.op == ChangeOp::Remove)
        .map(|c| c.key.id.as_str())
        .collect();
    assert_eq!(removes, vec!["/etc/app/a.conf", "/etc/theirs.conf"]);
    let applied = n.realizer.apply_changes(&empty, &p).unwrap();
    assert!(!n.exists("/etc/app/a.conf"));
    // The folder archy made only for the file goes with it.
    assert!(!n.exists("/etc/app"));
    assert_eq!(applied.removed, vec!["/etc/app/a.conf", "/etc/app"]);
    assert_eq!(n.read("/etc/theirs.conf"), "not archy's");
    assert_eq!(applied.kept, vec!["/etc/theirs.conf"]);
    assert!(n.owned().is_empty(), "{:?}", n.owned());
    assert!(n.exists("/etc/passwd"));
}

#[test]
fn a_written_path_that_archy_does_not_own_is_refused() {
    let n = Node::new();
    let g = one_file("/etc/x.conf", r#"text: "x""#);
    // Planned while the path was free, then someone wrote it.
    let p = n.plan(None, &g, false);
    fs::write(n.at("/etc/x.conf"), "theirs").unwrap();
    let err = n.realizer.apply_changes(&g, &p).unwrap_err();
    assert!(matches!(err, Error::NotOwned { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("/etc/x.conf") && msg.contains("--adopt"),
        "{msg}"
    );
    assert_eq!(n.read("/etc/x.conf"), "theirs");
    assert!(n.owned().is_empty());
}

#[test]
fn unit_files_and_their_install_links() {
    let n = Node::new();
    let v1 = graph(
        r#"[
            unit("a.service", #{ Service: #{ ExecStart: "/bin/a" }, Install: #{ WantedBy: "multi-user.target", Alias: "alpha.service" } }),
            unit("b.service", #{ Service: #{ ExecStart: "/bin/b" }, Install: #{ RequiredBy: "a.service" } }),
            unit("w@.service", #{ Service: #{ ExecStart: "/bin/w %i" }, Install: #{ WantedBy: "multi-user.target", DefaultInstance: "one" } }),
            unit("plain.service", #{ Service: #{ ExecStart: "/bin/p" } }),
        ]"#,
    );
    let applied = n.switch(None, &v1).unwrap();
    assert_eq!(
        applied.unit_files_written,
        vec!["a.service", "b.service", "plain.service", "w@.service"]
    );
    let a = match &v1
        .nodes
        .iter()
        .find(|x| x.key.id == "a.service")
        .unwrap()
        .resource
    {
        archy_graph::Resource::Unit(u) => u.unit_file(),
        _ => unreachable!(),
    };
    assert_eq!(n.read("/etc/systemd/system/a.service"), a);
    assert_eq!(n.meta("/etc/systemd/system/a.service"), (0o644, 0, 0));
    let link = |p: &str| fs::read_link(n.at(p)).unwrap().display().to_string();
    assert_eq!(
        link("/etc/systemd/system/multi-user.target.wants/a.service"),
        "../a.service"
    );
    assert_eq!(link("/etc/systemd/system/alpha.service"), "a.service");
    assert_eq!(
        link("/etc/systemd/system/a.service.requires/b.service"),
        "../b.service"
    );
    assert_eq!(
        link("/etc/systemd/system/multi-user.target.wants/w@one.service"),
        "../w@.service"
    );
    // The links resolve (systemd reads them under the root).
    assert!(fs::metadata(n.at("/etc/systemd/system/multi-user.target.wants/a.service")).is_ok());
    let record = n.realizer.record().unwrap();
    let wants = &record.paths["/etc/systemd/system/multi-user.target.wants/a.service"];
    assert_eq!(wants.kind, OwnedKind::Link);
    assert_eq!(wants.unit.as_deref(), Some("a.service"));
    assert_eq!(
        record.paths["/etc/systemd/system/a.service"].kind,
        OwnedKind::UnitFile
    );

    // Only [Install] changes: the stale links go, the new ones come.
    let v2 = graph(
        r#"[
            unit("a.service", #{ Service: #{ ExecStart: "/bin/a" }, Install: #{ WantedBy: "graphical.target" } }),
            unit("b.service", #{ Service: #{ ExecStart: "/bin/b" }, Install: #{ RequiredBy: "a.service" } }),
            unit("w@.service", #{ Service: #{ ExecStart: "/bin/w %i" }, Install: #{ WantedBy: "multi-user.target", DefaultInstance: "one" } }),
            unit("plain.service", #{ Service: #{ ExecStart: "/bin/p" } }),
        ]"#,
    );
    let applied = n.switch(Some(&v1), &v2).unwrap();
    assert_eq!(applied.unit_files_written, vec!["a.service"]);
    assert!(!n.exists("/etc/systemd/system/multi-user.target.wants/a.service"));
    assert!(!n.exists("/etc/systemd/system/alpha.service"));
    assert_eq!(
        link("/etc/systemd/system/graphical.target.wants/a.service"),
        "../a.service"
    );
    assert!(n.exists("/etc/systemd/system/multi-user.target.wants/w@one.service"));

    // Units leave: their files and links go, and the link folders archy
    // made go too once empty.
    let v3 = graph(r#"[ unit("plain.service", #{ Service: #{ ExecStart: "/bin/p" } }) ]"#);
    let applied = n.switch(Some(&v2), &v3).unwrap();
    assert_eq!(
        applied.unit_files_removed,
        vec!["a.service", "b.service", "w@.service"]
    );
    assert_eq!(
        common::tree(&n.at("/etc/systemd/system")),
        vec!["plain.service"]
    );
    assert_eq!(
        n.owned(),
        vec![
            "/etc/systemd",
            "/etc/systemd/system",
            "/etc/systemd/system/plain.service"
        ]
    );
}

#[test]
fn an_existing_link_made_by_someone_else_stays_theirs() {
    let n = Node::new();
    let wants = n.at("/etc/systemd/system/multi-user.target.wants");
    fs::create_dir_all(&wants).unwrap();
    std::os::unix::fs::symlink("/lib/systemd/system/a.service", wants.join("a.service")).unwrap();
    let g = graph(
        r#"[ unit("a.service", #{ Service: #{ ExecStart: "/bin/a" }, Install: #{ WantedBy: "multi-user.target" } }) ]"#,
    );
    let applied = n.switch(None, &g).unwrap();
    assert_eq!(
        applied.kept,
        vec!["/etc/systemd/system/multi-user.target.wants/a.service"]
    );
    n.switch(Some(&g), &graph("[]")).unwrap();
    assert_eq!(
        fs::read_link(wants.join("a.service")).unwrap(),
        Path::new("/lib/systemd/system/a.service")
    );
    assert!(!n.exists("/etc/systemd/system/a.service"));
}

#[test]
fn adopt_backs_up_and_restores() {
    use std::os::unix::fs::PermissionsExt as _;
    let n = Node::new();
    fs::write(n.at("/etc/motd"), "the image's motd\n").unwrap();
    fs::set_permissions(n.at("/etc/motd"), fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::chown(n.at("/etc/motd"), Some(TESTER_UID), Some(TESTER_GID)).unwrap();
    fs::create_dir_all(n.at("/etc/systemd/system")).unwrap();
    fs::write(
        n.at("/etc/systemd/system/a.service"),
        "[Service]\nExecStart=/old\n",
    )
    .unwrap();
    let g = graph(
        r#"[
            file("/etc/motd", #{ text: "archy's motd\n" }),
            unit("a.service", #{ Service: #{ ExecStart: "/bin/a" } }),
        ]"#,
    );

    // Without --adopt: refused, and nothing is touched.
    let p = n.plan(None, &g, false);
    assert_eq!(p.refusals().count(), 2);
    let err = n.realizer.apply_changes(&g, &p).unwrap_err();
    assert!(matches!(err, Error::Refused { .. }), "{err:?}");
    assert!(err.to_string().contains("file /etc/motd"), "{err}");
    assert_eq!(n.read("/etc/motd"), "the image's motd\n");

    // With --adopt: backed up (bytes, mode, owner), then written.
    let p = n.plan(None, &g, true);
    assert_eq!(p.changes[0].reason, Reason::Adopted);
    let applied = n.realizer.apply_changes(&g, &p).unwrap();
    assert_eq!(
        applied.adopted,
        vec!["/etc/motd", "/etc/systemd/system/a.service"]
    );
    assert_eq!(n.read("/etc/motd"), "archy's motd\n");
    assert_eq!(n.meta("/etc/motd"), (0o644, 0, 0));
    let backup = n.state.join("adopted/etc%2Fmotd");
    assert_eq!(fs::read_to_string(&backup).unwrap(), "the image's motd\n");
    assert_eq!(common::meta(&backup), (0o600, TESTER_UID, TESTER_GID));
    assert_eq!(common::meta(&n.state.join("adopted")).0, 0o700);
    let record = n.realizer.record().unwrap();
    assert_eq!(
        record.paths["/etc/motd"].backup.as_deref(),
        Some("etc%2Fmotd")
    );
    // Now archy's: a later observe does not report it.
    assert!(n.realizer.observe(&g, false).unwrap().unowned.is_empty());

    // Switching again with the same plan (a re-run after a crash) does not
    // back up archy's own version over the original.
    n.realizer.apply_changes(&g, &p).unwrap();
    assert_eq!(fs::read_to_string(&backup).unwrap(), "the image's motd\n");

    // archy stops managing the paths: the originals come back.
    let applied = n.switch(Some(&g), &graph("[]")).unwrap();
    assert_eq!(
        applied.restored,
        vec!["/etc/motd", "/etc/systemd/system/a.service"]
    );
    assert_eq!(n.read("/etc/motd"), "the image's motd\n");
    assert_eq!(n.meta("/etc/motd"), (0o600, TESTER_UID, TESTER_GID));
    assert_eq!(
        n.read("/etc/systemd/system/a.service"),
        "[Service]\nExecStart=/old\n"
    );
    assert!(!backup.exists());
    assert!(n.owned().is_empty(), "{:?}", n.owned());
}

#[test]
fn observe_reports_unowned_paths_and_missing_secrets() {
    let n = Node::new();
    let g = graph(
        r#"[
            file("/etc/mine.conf", #{ text: "m" }),
            file("/etc/theirs.conf", #{ text: "t" }),
            file("/etc/free.conf", #{ text: "f" }),
            unit("x.service", #{ Service: #{ ExecStart: "/bin/x" } }),
            secret("s1", #{ length: 16 }),
        ]"#,
    );
    let o = n.realizer.observe(&g, true).unwrap();
    assert!(o.unowned.is_empty());
    assert_eq!(o.missing_secrets.iter().collect::<Vec<_>>(), vec!["s1"]);
    assert!(o.adopt);

    n.switch(None, &one_file("/etc/mine.conf", r#"text: "m""#))
        .unwrap();
    fs::write(n.at("/etc/theirs.conf"), "t").unwrap();
    fs::create_dir_all(n.at("/etc/systemd/system")).unwrap();
    std::os::unix::fs::symlink("/dev/null", n.at("/etc/systemd/system/x.service")).unwrap();
    let o = n.realizer.observe(&g, false).unwrap();
    assert_eq!(
        o.unowned.iter().collect::<Vec<_>>(),
        vec!["/etc/systemd/system/x.service", "/etc/theirs.conf"]
    );
    assert!(!o.adopt);
}

#[test]
fn directories_are_made_and_only_disposable_ones_removed() {
    let n = Node::new();
    fs::create_dir_all(n.at("/srv/existing")).unwrap();
    let g1 = graph(
        r#"[
            dir("/var/lib/app", #{ mode: "0750", owner: "tester", group: "tester" }),
            dir("/var/cache/app", #{ disposable: true }),
            dir("/srv/existing", #{ mode: "0700", disposable: true }),
            file("/var/cache/app/seed", #{ text: "s" }),
        ]"#,
    );
    let applied = n.switch(None, &g1).unwrap();
    assert_eq!(n.meta("/var/lib/app"), (0o750, TESTER_UID, TESTER_GID));
    assert_eq!(n.meta("/var/cache/app"), (0o755, 0, 0));
    // A directory that was there is managed (mode, owner), not created.
    assert_eq!(n.meta("/srv/existing"), (0o700, 0, 0));
    assert_eq!(applied.chmodded, vec!["/srv/existing"]);
    let record = n.realizer.record().unwrap();
    assert!(!record.paths["/srv/existing"].created);
    assert!(record.paths["/var/lib/app"].created);

    fs::write(n.at("/var/lib/app/data"), "precious").unwrap();
    fs::write(n.at("/var/cache/app/blob"), "cache").unwrap();
    let g2 = graph(
        r#"[
            dir("/var/lib/app", #{ mode: "0700", owner: "tester", group: "tester" }),
        ]"#,
    );
    let applied = n.switch(Some(&g1), &g2).unwrap();
    assert_eq!(n.meta("/var/lib/app"), (0o700, TESTER_UID, TESTER_GID));
    assert_eq!(n.read("/var/lib/app/data"), "precious");
    assert!(!n.exists("/var/cache/app"));
    assert!(applied.removed.contains(&"/var/cache/app".to_string()));
    // Disposable, but archy did not create it: it stays.
    assert!(n.exists("/srv/existing"));
    assert!(applied.kept.contains(&"/srv/existing".to_string()));
    let owned = n.owned();
    assert!(
        !owned.iter().any(|p| p.starts_with("/var/cache/app")),
        "{owned:?}"
    );

    // A directory that leaves the description keeps its data.
    let applied = n.switch(Some(&g2), &graph("[]")).unwrap();
    assert_eq!(applied.kept, vec!["/var/lib/app"]);
    assert_eq!(n.read("/var/lib/app/data"), "precious");
}

#[test]
fn an_unknown_owner_is_a_clear_error() {
    let n = Node::new();
    let g = one_file("/etc/x.conf", r#"text: "x", owner: "nobody-here""#);
    let err = n.switch(None, &g).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("/etc/x.conf")
            && msg.contains("\"nobody-here\"")
            && msg.contains("etc/passwd")
            && msg.contains("user(\"nobody-here\""),
        "{msg}"
    );
    assert!(!n.exists("/etc/x.conf"));
    assert!(n.owned().is_empty());
}

#[test]
fn symlinks_in_an_image_root_stay_inside_it() {
    let n = Node::new();
    fs::create_dir_all(n.at("/run")).unwrap();
    fs::create_dir_all(n.at("/var")).unwrap();
    // An absolute link, as images have: under --root it means <root>/run.
    std::os::unix::fs::symlink("/run", n.at("/var/run")).unwrap();
    let g = one_file("/var/run/archy-realize-test/x.conf", r#"text: "x""#);
    n.switch(None, &g).unwrap();
    assert_eq!(n.read("/run/archy-realize-test/x.conf"), "x");
    assert!(!Path::new("/run/archy-realize-test").exists());
    assert_eq!(
        n.realizer.host_path("/var/run/archy-realize-test/x.conf"),
        n.at("/run/archy-realize-test/x.conf")
    );
}

#[test]
fn errors_name_the_path_and_what_to_do() {
    let n = Node::new();
    fs::write(n.at("/blocker"), "a file where a folder is needed").unwrap();
    let err = n
        .switch(None, &one_file("/blocker/x.conf", r#"text: "x""#))
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with("cannot create directory ") && msg.contains("/blocker: not a directory"),
        "{msg}"
    );
    assert!(msg.contains("move that away"), "{msg}");
}

#[test]
fn a_fresh_root_needs_nothing_but_the_prefix() {
    // A bare image root: no /etc at all, state elsewhere.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("img");
    fs::create_dir(&root).unwrap();
    let r = Realizer::new(&root, &StateDir::new(dir.path().join("state")));
    let g = graph(
        r#"[ file("/etc/hostname", #{ text: "node\n" }), unit("a.service", #{ Service: #{ ExecStart: "/bin/a" }, Install: #{ WantedBy: "multi-user.target" } }) ]"#,
    );
    let p = archy_plan::plan(None, &g, &r.observe(&g, false).unwrap());
    r.apply_changes(&g, &p).unwrap();
    assert_eq!(
        common::tree(&root),
        vec![
            "etc",
            "etc/hostname",
            "etc/systemd",
            "etc/systemd/system",
            "etc/systemd/system/a.service",
            "etc/systemd/system/multi-user.target.wants",
            "etc/systemd/system/multi-user.target.wants/a.service",
        ]
    );
    assert!(dir.path().join("state/owned.json").exists());
}

//! Users and groups, created with the system's `useradd` and `groupadd`
//! inside the temp root (`--root`). Skipped where those tools are missing
//! or cannot run (they need root).

#![allow(clippy::unwrap_used)] // Helpers of tests, not tests, to clippy.

mod common;

use std::fs;
use std::path::Path;

use common::{Node, graph};

fn tools_usable() -> bool {
    let found = ["/usr/sbin/useradd", "/sbin/useradd", "/usr/bin/useradd"]
        .iter()
        .any(|p| Path::new(p).is_file());
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    found && root
}

fn passwd_entry(n: &Node, name: &str) -> Option<Vec<String>> {
    fs::read_to_string(n.at("/etc/passwd"))
        .unwrap()
        .lines()
        .map(|l| l.split(':').map(String::from).collect::<Vec<_>>())
        .find(|f| f[0] == name)
}

fn gid_of(n: &Node, name: &str) -> Option<u32> {
    fs::read_to_string(n.at("/etc/group"))
        .unwrap()
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f[0] == name)
        .map(|f| f[2].parse().unwrap())
}

#[test]
fn accounts_are_created_before_what_they_own() {
    if !tools_usable() {
        eprintln!("skipped: useradd is missing or this test does not run as root");
        return;
    }
    let n = Node::new();
    let g = graph(
        r#"[
            group("svc", #{ gid: 2345 }),
            user("svc", #{ uid: 2345, group: "svc" }),
            user("helper", #{}),
            user("homed", #{ home: "/var/lib/homed" }),
            user("tester", #{}),
            file("/etc/svc.conf", #{ text: "x", mode: "0640", owner: "svc", group: "svc" }),
            dir("/var/lib/helper", #{ owner: "helper", group: "helper" }),
        ]"#,
    );
    let applied = n.switch(None, &g).unwrap();
    assert_eq!(
        applied.accounts_created,
        vec!["group svc", "user helper", "user homed", "user svc"]
    );
    assert_eq!(applied.accounts_kept, vec!["user tester"]);

    let svc = passwd_entry(&n, "svc").unwrap();
    assert_eq!((svc[2].as_str(), svc[3].as_str()), ("2345", "2345"));
    assert_eq!(svc[6], "/usr/sbin/nologin");
    assert_eq!(gid_of(&n, "svc"), Some(2345));
    // A user without a group gets one of its name.
    let helper = passwd_entry(&n, "helper").unwrap();
    let helper_gid = gid_of(&n, "helper").unwrap();
    assert_eq!(helper[3], helper_gid.to_string());
    assert!(helper[2].parse::<u32>().unwrap() < 1000, "a system uid");
    assert!(n.exists("/var/lib/homed"));
    assert!(!n.exists("/home/helper"));
    // Names resolve through the root's own tables, after the accounts were
    // made.
    assert_eq!(n.meta("/etc/svc.conf"), (0o640, 2345, 2345));
    let helper_uid: u32 = helper[2].parse().unwrap();
    assert_eq!(n.meta("/var/lib/helper"), (0o755, helper_uid, helper_gid));
    assert_eq!(
        n.realizer.record().unwrap().accounts,
        vec!["group svc", "user helper", "user homed", "user svc"]
    );

    // Existing accounts are left exactly as they are.
    let passwd = fs::read_to_string(n.at("/etc/passwd")).unwrap();
    let p = archy_plan::plan(None, &g, &n.realizer.observe(&g, false).unwrap());
    let applied = n.realizer.apply_changes(&g, &p).unwrap();
    assert!(applied.accounts_created.is_empty());
    assert_eq!(applied.accounts_kept.len(), 5);
    assert_eq!(fs::read_to_string(n.at("/etc/passwd")).unwrap(), passwd);

    // Accounts that leave the description are never deleted.
    let applied = n.switch(Some(&g), &graph("[]")).unwrap();
    assert_eq!(applied.accounts_kept.len(), 5);
    assert!(passwd_entry(&n, "svc").is_some());
}

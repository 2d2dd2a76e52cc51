//! Users' supplementary groups, with the system's `useradd` and `usermod`
//! inside the temp root (`--root`): a new user is made in its groups, an
//! existing one is added to those it lacks, and no membership is ever
//! taken away. Skipped where those tools are missing or cannot run (they
//! need root).

#![allow(clippy::unwrap_used)] // Helpers of tests, not tests, to clippy.

mod common;

use std::path::Path;

use common::{Node, graph};

fn tools_usable() -> bool {
    let found = ["useradd", "usermod"].iter().all(|tool| {
        ["/usr/sbin", "/sbin", "/usr/bin"]
            .iter()
            .any(|dir| Path::new(dir).join(tool).is_file())
    });
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    found && root
}

/// The members `/etc/group` lists for `group`.
fn members(n: &Node, group: &str) -> Vec<String> {
    n.read("/etc/group")
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f[0] == group)
        .unwrap_or_else(|| panic!("no group {group}"))
        .get(3)
        .map(|m| {
            m.split(',')
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

const GROUPS: &str = r#"
    group("bitcoin", #{ gid: 2100 }),
    group("tor", #{ gid: 2101 }),
"#;

#[test]
fn a_new_user_is_made_in_its_groups() {
    if !tools_usable() {
        eprintln!("skipped: useradd/usermod are missing or this test does not run as root");
        return;
    }
    let n = Node::new();
    let g = graph(&format!(
        r#"[ {GROUPS} user("lnd", #{{ uid: 2200, groups: ["bitcoin", "tor"] }}) ]"#
    ));
    let applied = n.switch(None, &g).unwrap();
    assert_eq!(
        applied.accounts_created,
        vec!["group bitcoin", "group tor", "user lnd"]
    );
    assert_eq!(members(&n, "bitcoin"), ["lnd"]);
    assert_eq!(members(&n, "tor"), ["lnd"]);
    assert!(applied.accounts_changed.is_empty());

    // Nothing to do the second time: the groups are found in the table.
    let group_table = n.read("/etc/group");
    let p = archy_plan::plan(None, &g, &n.realizer.observe(&g, false).unwrap());
    let applied = n.realizer.apply_changes(&g, &p).unwrap();
    assert!(applied.accounts_changed.is_empty(), "{applied:?}");
    assert_eq!(n.read("/etc/group"), group_table);
}

#[test]
fn an_existing_user_is_added_to_the_groups_it_lacks_and_never_removed() {
    if !tools_usable() {
        eprintln!("skipped: useradd/usermod are missing or this test does not run as root");
        return;
    }
    let n = Node::new();
    let passwd = n.read("/etc/passwd");
    // `tester` exists already (made by someone else); it is declared in
    // one group, then in two.
    let one = graph(&format!(
        r#"[ {GROUPS} user("tester", #{{ groups: ["bitcoin"] }}) ]"#
    ));
    let applied = n.switch(None, &one).unwrap();
    assert_eq!(applied.accounts_created, vec!["group bitcoin", "group tor"]);
    assert_eq!(applied.accounts_changed, vec!["user tester +bitcoin"]);
    assert_eq!(members(&n, "bitcoin"), ["tester"]);
    assert!(members(&n, "tor").is_empty());

    // Its primary group counts as one it is in: nothing to add there.
    let two = graph(&format!(
        r#"[ {GROUPS} user("tester", #{{ groups: ["bitcoin", "tor", "tester"] }}) ]"#
    ));
    let applied = n.switch(Some(&one), &two).unwrap();
    assert_eq!(applied.accounts_changed, vec!["user tester +tor"]);
    assert_eq!(members(&n, "bitcoin"), ["tester"]);
    assert_eq!(members(&n, "tor"), ["tester"]);
    assert!(members(&n, "tester").is_empty());

    // Dropped from the description: the memberships stay.
    let none = graph(&format!(r#"[ {GROUPS} user("tester", #{{}}) ]"#));
    let applied = n.switch(Some(&two), &none).unwrap();
    assert!(applied.accounts_changed.is_empty(), "{applied:?}");
    assert_eq!(members(&n, "bitcoin"), ["tester"]);
    assert_eq!(members(&n, "tor"), ["tester"]);
    // Only the group table changed; the user itself is as it was.
    assert_eq!(n.read("/etc/passwd"), passwd);
    assert!(
        n.realizer
            .record()
            .unwrap()
            .accounts
            .iter()
            .all(|a| a != "user tester")
    );
}

#[test]
fn a_group_the_node_lacks_is_an_error_that_says_how_to_declare_it() {
    if !tools_usable() {
        eprintln!("skipped: useradd/usermod are missing or this test does not run as root");
        return;
    }
    for user in [
        r#"user("lnd", #{ groups: ["nope"] })"#,
        r#"user("tester", #{ groups: ["nope"] })"#,
    ] {
        let n = Node::new();
        let g = graph(&format!("[ {user} ]"));
        let e = n.switch(None, &g).unwrap_err().to_string();
        assert!(e.contains(r#"group "nope""#), "{e}");
        assert!(e.contains(r#"group("nope", #{})"#), "{e}");
        assert!(e.contains("etc/group"), "{e}");
    }
}

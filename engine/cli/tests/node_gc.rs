//! GC after a good switch on a real node: generations beyond the node's
//! `archy::units(#{ gc: #{ keep } })` are deleted, never current,
//! previous or last-good, and `archy rollback` still works. Needs root;
//! see `support/node.rs`.

mod support;

use support::archy_node::ArchyNode;
use support::node::TestNode;

/// A node with one service reading a config file of text `conf`, keeping
/// `keep` generations.
fn description(conf: &str, keep: u32) -> String {
    format!(
        r#"import "stdlib/systemd" as systemd;
import "stdlib/archy" as archy;
[
    file("/etc/demo/gc.conf", #{{ text: "{conf}\n" }}),
    systemd::service("demo-gc", #{{ exec: "/bin/sh -c 'cat /etc/demo/gc.conf; exec sleep infinity'" }}),
    health_unit("demo-gc.service"),
    archy::units(#{{ reconcile: #{{ every: "off" }}, gc: #{{ keep: {keep} }} }}),
]"#
    )
}

/// The generation numbers in the node's state dir.
fn generations(n: &ArchyNode) -> Vec<u64> {
    let out = n.node.exec_ok(&["ls", "/var/lib/archy/generations"]);
    let mut numbers: Vec<u64> = out
        .split_whitespace()
        .filter_map(|name| name.parse().ok())
        .collect();
    numbers.sort_unstable();
    numbers
}

fn link(n: &ArchyNode, name: &str) -> String {
    n.node
        .exec_ok(&["readlink", &format!("/var/lib/archy/{name}")])
        .trim()
        .to_owned()
}

fn switch(n: &ArchyNode) -> String {
    let out = n.archy(&["switch", "/etc/archy/node.rhai"]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "switch failed:\n{text}");
    text
}

#[test]
fn a_good_switch_deletes_generations_beyond_keep_and_rollback_still_works() {
    if !TestNode::available() {
        return;
    }
    let n = ArchyNode::up("gc");

    // keep 2: each good switch keeps the two newest (here also current
    // and previous) and deletes the rest.
    for (i, conf) in ["one", "two", "three"].iter().enumerate() {
        n.write(&description(conf, 2));
        let out = switch(&n);
        assert!(
            out.contains(&format!("switched to generation {}", i + 1)),
            "{out}"
        );
    }
    // Generation 3's GC: keep 2 leaves 2 and 3 (2 is previous).
    assert_eq!(generations(&n), [2, 3]);

    n.write(&description("four", 2));
    let out = switch(&n);
    assert!(out.contains("switched to generation 4"), "{out}");
    assert!(out.contains("gc: deleted 1 generation 2, "), "{out}");
    assert_eq!(generations(&n), [3, 4]);
    assert_eq!(link(&n, "current"), "generations/4");
    assert_eq!(link(&n, "previous"), "generations/3");
    assert_eq!(link(&n, "last-good"), "generations/4");

    // A rollback is a good switch too: back to 3, with 4 as previous.
    let out = n.archy(&["rollback"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(link(&n, "current"), "generations/3");
    assert_eq!(link(&n, "previous"), "generations/4");
    assert_eq!(
        n.node.exec_ok(&["cat", "/etc/demo/gc.conf"]),
        "three\n",
        "the rollback restored generation 3's file"
    );
    assert_eq!(generations(&n), [3, 4]);

    // keep 0 in a new generation: only current, previous and last-good
    // stay, by the settings of the generation just switched to.
    n.write(&description("five", 0));
    let out = switch(&n);
    assert!(out.contains("switched to generation 5"), "{out}");
    assert_eq!(link(&n, "previous"), "generations/3");
    // current 5 (also last-good), previous 3; 4 goes.
    assert_eq!(generations(&n), [3, 5]);
    let out = n.archy(&["rollback"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(n.node.exec_ok(&["cat", "/etc/demo/gc.conf"]), "three\n");
    // Every object the remaining generations need is there.
    let out = n.archy(&["store", "verify"]);
    assert!(out.status.success(), "{out:?}");
}

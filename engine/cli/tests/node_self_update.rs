//! archy updating itself through the switch, on a real node: its binary is
//! an artifact of the generation, `/usr/local/bin/archy` links into the
//! store, a new archy that cannot run is rolled back by the gate (the old
//! binary back before the failure is recorded), and the boot-time
//! recovery runs the last good archy, so a broken new binary never breaks
//! it. Needs root; see `support/node.rs`.

mod support;

use support::archy_node::ArchyNode;
use support::node::TestNode;

fn blake3_hex(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

/// A node description with archy's units; `binary` is the option given to
/// `archy::units`, if any.
fn node(binary: Option<(&str, &str)>) -> String {
    let opts = match binary {
        None => "#{}".to_string(),
        Some((source, hash)) => {
            format!("#{{ binary: #{{ source: \"{source}\", blake3: \"{hash}\" }} }}")
        }
    };
    format!(
        "import \"stdlib/archy\" as archy;\n[\n    file(\"/etc/marker\", #{{ text: \"{}\" }}),\n    archy::units({opts}),\n]\n",
        if binary.is_some() { "two" } else { "one" }
    )
}

fn sha_of(n: &ArchyNode, path: &str) -> String {
    n.node
        .exec_ok(&["sha256sum", path])
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn a_broken_new_archy_is_rolled_back_and_recovery_still_runs_the_good_one() {
    if !TestNode::available() {
        return;
    }
    let n = ArchyNode::up("selfup");
    let original = sha_of(&n, "/usr/local/bin/archy");

    // Generation 1: the running archy goes into the store and
    // /usr/local/bin/archy (installed by hand, the same bytes) links to it
    // without --adopt.
    n.write(&node(None));
    let out = n.archy(&["switch", "/etc/archy/node.rhai"]);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let link = n.node.exec_ok(&["readlink", "/usr/local/bin/archy"]);
    assert!(
        link.trim().starts_with("/var/lib/archy/store/") && link.trim().ends_with("-archy+x"),
        "{link}"
    );
    assert_eq!(sha_of(&n, "/usr/local/bin/archy"), original);
    let recovery = n.node.exec_ok(&["readlink", "/var/lib/archy/bin/archy"]);
    assert_eq!(recovery.trim(), link.trim(), "recovery runs the good archy");
    assert!(
        n.node
            .exec_ok(&[
                "systemctl",
                "show",
                "-P",
                "ExecStart",
                "archy-recover.service"
            ])
            .contains("/var/lib/archy/bin/archy"),
    );

    // Generation 2 brings an archy that exits 1: the gate runs it, fails,
    // and the old binary is back.
    let broken = b"#!/bin/sh\necho 'archy: broken build' >&2\nexit 1\n";
    std::fs::write(n.node.root_path().join("etc/archy/broken-archy"), broken).expect("write");
    n.write(&node(Some(("broken-archy", &blake3_hex(broken)))));
    let out = n.archy(&["switch", "/etc/archy/node.rhai"]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(2), "rolled back: {text}");
    assert!(
        text.contains("archy:/usr/local/bin/archy"),
        "names the check: {text}"
    );
    assert_eq!(
        sha_of(&n, "/usr/local/bin/archy"),
        original,
        "the old archy is back"
    );
    assert_eq!(n.node.exec_ok(&["cat", "/etc/marker"]), "one");
    let generations: serde_json::Value =
        serde_json::from_str(&n.node.exec_ok(&["archy", "generations", "--json"])).expect("json");
    let failed = generations["generations"]
        .as_array()
        .expect("list")
        .iter()
        .find(|g| g["number"] == 2)
        .expect("generation 2");
    assert_eq!(failed["outcome"], "failed", "{failed}");
    assert_eq!(
        n.node
            .exec_ok(&["readlink", "/var/lib/archy/bin/archy"])
            .trim(),
        link.trim(),
        "recovery still runs the good archy"
    );

    // The boot-time recovery still works: it runs, finds nothing to do,
    // and the node is as generation 1 says.
    n.node
        .exec_ok(&["systemctl", "start", "archy-recover.service"]);
    assert_eq!(
        n.node
            .exec_ok(&["systemctl", "show", "-P", "Result", "archy-recover.service"])
            .trim(),
        "success"
    );
    let status = n.archy(&["status"]);
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stdout)
    );

    // A working new archy (the same build, another file: bytes appended
    // to an ELF do not stop it) passes its gate, and recovery follows it.
    let mut newer = std::fs::read(env!("CARGO_BIN_EXE_archy")).expect("archy");
    newer.extend_from_slice(b"\narchy-next\n");
    std::fs::write(n.node.root_path().join("etc/archy/archy-next"), &newer).expect("write");
    n.write(&node(Some(("archy-next", &blake3_hex(&newer)))));
    let out = n.archy(&["switch", "/etc/archy/node.rhai"]);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let next = n.node.exec_ok(&["readlink", "/usr/local/bin/archy"]);
    assert_ne!(next.trim(), link.trim());
    assert_eq!(
        n.node
            .exec_ok(&["readlink", "/var/lib/archy/bin/archy"])
            .trim(),
        next.trim()
    );
    let version = n.node.exec_ok(&["/usr/local/bin/archy", "--version"]);
    assert!(version.starts_with("archy "), "{version}");

    // Back to generation 1: its archy again, byte for byte.
    let out = n.archy(&["rollback", "--to", "1"]);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(sha_of(&n, "/usr/local/bin/archy"), original);
    assert_eq!(
        n.node
            .exec_ok(&["readlink", "/var/lib/archy/bin/archy"])
            .trim(),
        link.trim()
    );
}

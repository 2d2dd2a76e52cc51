//! `archy diff` and `archy switch --dry-run` on a real node print one plan:
//! both observe what the node has (here a file archy did not write in the
//! way, and an image podman does not have), so neither can promise what
//! the switch would not do. Needs root; see `support/node.rs`.

mod support;

use support::archy_node::ArchyNode;
use support::node::TestNode;

const NODE: &str = r#"import "stdlib/systemd" as systemd;
[
    file("/etc/demo/in-the-way.conf", #{ text: "archy's\n" }),
    systemd::service("demo", #{ exec: "/bin/sleep infinity" }),
    container("absent", #{ image: "localhost/archy-test/absent:1", exec: ["sleep", "1000"] }),
]"#;

fn stdout(n: &ArchyNode, args: &[&str]) -> String {
    let out = n.archy(args);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "archy {args:?} failed:\n{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

#[test]
fn diff_prints_the_plan_a_dry_run_prints() {
    if !TestNode::available() {
        return;
    }
    let n = ArchyNode::up("plan");
    n.write(NODE);
    n.node.exec_ok(&[
        "sh",
        "-c",
        "mkdir -p /etc/demo && echo mine > /etc/demo/in-the-way.conf",
    ]);

    let node = "/etc/archy/node.rhai";
    let diff = stdout(&n, &["diff", node, "--json"]);
    let dry_run = stdout(&n, &["switch", "--dry-run", node, "--json"]);
    assert_eq!(diff, dry_run, "diff and switch --dry-run disagree");

    let plan: serde_json::Value = serde_json::from_str(&diff).expect("the plan is JSON");
    let refused = plan["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .any(|c| c["id"] == "/etc/demo/in-the-way.conf" && c["op"] == "refuse");
    assert!(refused, "the file in the way is not refused:\n{diff}");
    let images: Vec<&str> = plan["images"]
        .as_array()
        .expect("images")
        .iter()
        .filter_map(|i| i["reference"].as_str())
        .collect();
    assert_eq!(images, ["localhost/archy-test/absent:1"], "{diff}");

    // The text forms agree as well, and nothing was written.
    assert_eq!(
        stdout(&n, &["diff", node]),
        stdout(&n, &["switch", "--dry-run", node])
    );
    assert_eq!(
        n.node.exec_ok(&["cat", "/etc/demo/in-the-way.conf"]),
        "mine\n"
    );
    let state = n.node.exec(&["test", "-e", "/var/lib/archy/current"]);
    assert!(
        !state.status.success(),
        "a dry run made a generation current"
    );
}

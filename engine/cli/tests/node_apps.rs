//! The Bitcoin node itself on a real node: `examples/regtest.rhai`
//! (bitcoind, lnd, electrs, the three web UIs, the firewall) with stand-in
//! images tagged under the real images' names (`tests/standins/`). The
//! stand-ins check the credentials they are given against bitcoind's
//! `rpcauth=` line, so a passing health gate means every config archy
//! derived from the RPC secret agrees with it. Needs root; see
//! `support/node.rs`.

mod support;

use support::archy_node::ArchyNode;
use support::node::TestNode;

const NODE: &str = "/etc/archy/examples/regtest.rhai";
const RPC_URL: &str = "http://10.21.21.10:18443/";
const SECRET: &str = "var/lib/archy/secrets/bitcoin-rpc-password";

/// The containers of the regtest node and their units.
const APPS: [&str; 6] = [
    "bitcoind",
    "lnd",
    "electrs",
    "bitcoin-ui",
    "lnd-ui",
    "electrs-ui",
];

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn archy_ok(n: &ArchyNode, args: &[&str]) -> String {
    let out = n.archy(args);
    let t = text(&out);
    assert!(out.status.success(), "archy {args:?} failed:\n{t}");
    t
}

/// The HTTP status bitcoind's RPC gives `getblockchaininfo` with these
/// credentials, asked from the node, and the body.
fn rpc(n: &ArchyNode, user: &str, password: &str) -> (String, String) {
    let out = n.node.exec(&[
        "curl",
        "-sS",
        "-o",
        "/tmp/rpc-body",
        "-w",
        "%{http_code}",
        "--user",
        &format!("{user}:{password}"),
        "--data-binary",
        r#"{"jsonrpc":"1.0","id":"t","method":"getblockchaininfo","params":[]}"#,
        RPC_URL,
    ]);
    let code = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let body = n.node.exec_ok(&["cat", "/tmp/rpc-body"]);
    (code, body)
}

fn secret_value(n: &ArchyNode) -> String {
    std::fs::read_to_string(n.node.root_path().join(SECRET)).expect("the RPC secret")
}

#[test]
fn regtest_node_switches_and_rotating_the_rpc_password_restarts_its_readers() {
    if !TestNode::available() {
        return;
    }
    let n = ArchyNode::with_apps("apps");

    // Generation 1: every app up, the health gate passed (bitcoind's RPC
    // answers, lnd's REST, electrs's port, the UIs' pages).
    let out = archy_ok(&n, &["switch", NODE]);
    assert!(out.contains("switched to generation 1"), "{out}");
    for app in APPS {
        assert!(n.active(&format!("{app}.service")), "{app} is not active");
    }

    // The rpcauth line matches the secret: the right password gets an
    // answer from bitcoind, a wrong one is refused.
    let first = secret_value(&n);
    let (code, body) = rpc(&n, "node", &first);
    assert_eq!(code, "200", "{body}");
    assert!(body.contains(r#""chain":"regtest""#), "{body}");
    assert_eq!(rpc(&n, "node", "not-the-password").0, "401");
    // The conf holds the derived line, never the password.
    let conf = std::fs::read_to_string(n.node.root_path().join("etc/bitcoin/bitcoin.conf"))
        .expect("bitcoin.conf");
    assert!(conf.contains("\nrpcauth=node:"), "{conf}");
    assert!(!conf.contains(&first), "bitcoin.conf holds the password");

    // The UIs serve their pages; lnd's REST answers on the loopback.
    for (port, title) in [(8081, "bitcoind"), (8082, "lnd"), (8083, "electrs")] {
        let page = n
            .node
            .exec_ok(&["curl", "-fsS", &format!("http://127.0.0.1:{port}/")]);
        assert!(page.contains(&format!("<h1>{title}</h1>")), "{page}");
    }
    let state = n
        .node
        .exec_ok(&["curl", "-fsS", "http://127.0.0.1:8080/v1/state"]);
    assert!(state.contains("state"), "{state}");

    // The node's API user reads the admin macaroon through its group.
    let id = n.node.exec_ok(&["id", "-nG", "archy-api"]);
    assert!(id.split_whitespace().any(|g| g == "lnd-admin"), "{id}");
    let macaroon = "/var/lib/lnd/data/chain/bitcoin/regtest/admin.macaroon";
    n.node
        .exec_ok(&["runuser", "-u", "archy-api", "--", "cat", macaroon]);
    let other = n
        .node
        .exec(&["runuser", "-u", "nobody", "--", "cat", macaroon]);
    assert!(!other.status.success(), "anyone can read the macaroon");

    // The daily channel backup runs (started by hand here) and is
    // persistent across downtime.
    assert_eq!(n.prop("lnd-channel-backup.timer", "Persistent"), "yes");
    n.node
        .exec_ok(&["systemctl", "start", "lnd-channel-backup.service"]);
    assert!(
        n.node
            .root_path()
            .join("var/lib/lnd-backup/channel.backup")
            .exists(),
        "no channel backup"
    );

    // The firewall lets in the UIs, electrs and SSH, and nothing of
    // regtest's P2P (no inbound peers on a development node).
    let rules = n.node.exec_ok(&["nft", "list", "table", "inet", "archy"]);
    for port in ["22", "8081", "8082", "8083", "50001"] {
        assert!(
            rules.contains(&format!("tcp dport {port} accept")),
            "{port} is not open:\n{rules}"
        );
    }
    assert!(!rules.contains("18444"), "{rules}");

    // Rotate the RPC password: the next switch makes a new value, rewrites
    // what derives from it, and restarts exactly its readers.
    let ids: Vec<String> = APPS.iter().map(|a| n.container_id(a)).collect();
    let untouched = [
        "lnd-ui.service",
        "archy-firewall.service",
        "lnd-channel-backup.timer",
        "lnd-macaroon-access.path",
    ];
    let before: Vec<u64> = untouched.iter().map(|u| n.started_at(u)).collect();
    archy_ok(&n, &["secret", "rotate", "bitcoin-rpc-password"]);
    let plan = archy_ok(&n, &["switch", "--dry-run", NODE]);
    for app in ["bitcoind", "lnd", "electrs", "bitcoin-ui", "electrs-ui"] {
        assert!(
            plan.contains(&format!("restart  {app}.service")),
            "{app} is not restarted:\n{plan}"
        );
    }
    assert!(!plan.contains("lnd-ui.service"), "{plan}");
    let out = archy_ok(&n, &["switch", NODE]);
    assert!(out.contains("switched to generation 2"), "{out}");

    let second = secret_value(&n);
    // Compared without printing: a failure must not show the values.
    assert!(first != second, "the secret was not made anew");
    assert_eq!(rpc(&n, "node", &second).0, "200");
    assert_eq!(rpc(&n, "node", &first).0, "401", "the old password works");
    for (app, old) in APPS.iter().zip(&ids) {
        let now = n.container_id(app);
        if *app == "lnd-ui" {
            assert_eq!(&now, old, "lnd-ui does not derive from the secret");
        } else {
            assert_ne!(&now, old, "{app} was not restarted");
        }
    }
    for (unit, at) in untouched.iter().zip(&before) {
        assert_eq!(&n.started_at(unit), at, "{unit} was restarted");
    }
    // bitcoind restarted before the apps that require it.
    let bitcoind = n.started_at("bitcoind.service");
    for app in ["lnd", "electrs"] {
        let t = n.started_at(&format!("{app}.service"));
        assert!(bitcoind < t, "{app} started before bitcoind");
    }
    let status = n.archy(&["status"]);
    assert!(status.status.success(), "{}", text(&status));
}

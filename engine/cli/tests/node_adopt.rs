//! Adopting a running node without a restart, on a real node: containers
//! started with plain `podman run` as the old first-boot script did (its
//! names, its network, its folders) are adopted by `archy switch` as they
//! run; the switch that changes one app's config hands that one over to
//! its Quadlet unit; a reboot brings everything up from the units. Needs
//! root; see `support/node.rs`.

mod support;

use std::os::unix::fs::PermissionsExt as _;

use support::archy_node::ArchyNode;
use support::node::TestNode;

const BUSYBOX: &str = "localhost/testbed/busybox:latest";

/// The old script's containers: name, address, port (published on
/// 127.0.0.1), what each serves from, and what more it mounts.
const OLD: [(&str, u8, u16, &str, &str); 4] = [
    (
        "bitcoin-knots",
        10,
        18332,
        "/var/lib/archipelago/bitcoin",
        "",
    ),
    (
        "lnd",
        11,
        18080,
        "/var/lib/archipelago/lnd",
        "/etc/lnd/lnd.conf:/www/lnd.conf:ro",
    ),
    ("electrumx", 12, 50001, "/var/lib/archipelago/electrumx", ""),
    (
        "archy-bitcoin-ui",
        20,
        18090,
        "/var/lib/archipelago/bitcoin-ui",
        "",
    ),
];

/// The old script's secrets, as it wrote them (`echo VALUE > FILE`).
const OLD_SECRETS: [(&str, &str); 2] = [
    ("bitcoin-rpc-password", "oldRpcPassword1234"),
    ("lnd-wallet-password", "oldWalletPassword5678"),
];

/// What the old script ran: each container serves its folder over HTTP.
fn start_old_node(n: &ArchyNode) {
    for (name, value) in OLD_SECRETS {
        n.node.exec_ok(&[
            "sh",
            "-c",
            &format!(
                "mkdir -p /var/lib/archipelago/secrets && echo {value} > /var/lib/archipelago/secrets/{name} && chmod 0644 /var/lib/archipelago/secrets/{name}"
            ),
        ]);
    }
    n.node.exec_ok(&[
        "podman",
        "network",
        "create",
        "--subnet",
        "10.21.21.0/24",
        "bitcoin",
    ]);
    n.node.exec_ok(&[
        "sh",
        "-c",
        "mkdir -p /etc/lnd && echo 'alias=old' > /etc/lnd/lnd.conf",
    ]);
    for (name, host, port, data, extra) in OLD {
        n.node.exec_ok(&[
            "sh",
            "-c",
            &format!("mkdir -p {data} && echo {name} > {data}/index.html"),
        ]);
        let ip = format!("--ip=10.21.21.{host}");
        let publish = format!("127.0.0.1:{port}:{port}");
        let volume = format!("{data}:/www");
        let listen = port.to_string();
        let mut argv = vec![
            "podman",
            "run",
            "-d",
            "--name",
            name,
            "--network",
            "bitcoin",
            &ip,
            "-p",
            &publish,
            "-v",
            &volume,
        ];
        if !extra.is_empty() {
            argv.extend(["-v", extra]);
        }
        argv.extend([BUSYBOX, "httpd", "-f", "-p", &listen, "-h", "/www"]);
        n.node.exec_ok(&argv);
    }
}

/// A node description that matches the old node; `lnd_conf` is lnd's
/// config file.
fn description(lnd_conf: &str) -> String {
    let mut out = format!(
        r#"[
    network("bitcoin", #{{ subnet: "10.21.21.0/24" }}),
    file("/etc/lnd/lnd.conf", #{{ text: "{lnd_conf}\n" }}),
    secret("bitcoin-rpc-password", #{{ regenerate: true, "import": "/var/lib/archipelago/secrets/bitcoin-rpc-password" }}),
    secret("lnd-wallet-password", #{{ import_from: "/var/lib/archipelago/secrets/lnd-wallet-password" }}),
    file("/etc/bitcoin/bitcoin.conf", #{{ text: "rpcauth={{{{secret.bitcoin-rpc-password | rpcauth node}}}}\n", mode: "0600" }}),
"#
    );
    for (name, host, port, data, extra) in OLD {
        let mut volumes = format!("\"{data}:/www\"");
        if !extra.is_empty() {
            volumes.push_str(&format!(", \"{extra}\""));
        }
        let requires = if name == "bitcoin-knots" {
            ""
        } else {
            r#"requires: ["bitcoin-knots"],"#
        };
        out.push_str(&format!(
            r#"    container("{name}", #{{
        image: "{BUSYBOX}",
        network: "bitcoin",
        podman_args: ["--ip=10.21.21.{host}"],
        ports: ["127.0.0.1:{port}:{port}"],
        volumes: [{volumes}],
        exec: ["httpd", "-f", "-p", "{port}", "-h", "/www"],
        {requires}
    }}),
    health_http("http://127.0.0.1:{port}/", #{{ within: "30s" }}),
"#
        ));
    }
    out.push(']');
    out
}

/// Each old container's id and start time.
fn ids(n: &ArchyNode) -> Vec<String> {
    OLD.iter()
        .map(|(name, ..)| {
            n.node
                .exec_ok(&[
                    "podman",
                    "inspect",
                    "--format",
                    "{{.Id}} {{.State.StartedAt}}",
                    name,
                ])
                .trim()
                .to_string()
        })
        .collect()
}

/// The HTTP status each container's port answers with.
fn probes(n: &ArchyNode) -> Vec<String> {
    OLD.iter()
        .map(|(_, _, port, ..)| {
            let out = n.node.exec(&[
                "curl",
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                &format!("http://127.0.0.1:{port}/"),
            ]);
            String::from_utf8_lossy(&out.stdout).to_string()
        })
        .collect()
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn ok(n: &ArchyNode, args: &[&str]) -> String {
    let out = n.archy(args);
    let t = text(&out);
    assert!(out.status.success(), "archy {}:\n{t}", args.join(" "));
    t
}

#[test]
fn a_running_node_is_adopted_in_place_handed_over_and_rebooted() {
    if !TestNode::available() {
        return;
    }
    let mut n = ArchyNode::up("adopt-run");
    start_old_node(&n);
    let before = ids(&n);
    let all_200 = vec!["200".to_string(); OLD.len()];
    assert_eq!(probes(&n), all_200);
    n.write(&description("alias=old"));

    // The dry run says how each is adopted, and touches nothing.
    let plan = ok(
        &n,
        &["switch", "--dry-run", "--adopt", "/etc/archy/node.rhai"],
    );
    for (name, ..) in OLD {
        let line = plan
            .lines()
            .find(|l| l.contains("adopt") && l.contains(&format!(" {name} ")))
            .unwrap_or_else(|| panic!("no adoption of {name} in:\n{plan}"));
        assert!(line.ends_with("adopt in place"), "{line}");
    }
    assert!(
        !n.node
            .root_path()
            .join("etc/containers/systemd/lnd.container")
            .exists()
    );

    // The switch adopts them as they run: same containers, same starts,
    // every probe answers, the units are written and enabled, not started.
    let out = ok(&n, &["switch", "--adopt", "/etc/archy/node.rhai"]);
    assert!(out.contains("switched to generation 1"), "{out}");
    assert_eq!(ids(&n), before, "a container was restarted:\n{out}");
    assert_eq!(probes(&n), all_200);
    for (name, ..) in OLD {
        let unit = format!("{name}.service");
        assert_eq!(n.prop(&unit, "ActiveState"), "inactive", "{unit}");
        assert_eq!(
            n.prop(&unit, "SourcePath"),
            format!("/etc/containers/systemd/{name}.container")
        );
        // Quadlet's generator turns [Install] into this link: the unit
        // starts at the next boot.
        assert!(
            n.node
                .root_path()
                .join(format!(
                    "run/systemd/generator/multi-user.target.wants/{unit}"
                ))
                .exists(),
            "{unit} is not enabled"
        );
    }

    // The old node's secrets were imported, not made anew: bitcoind's
    // rpcauth= derives from the old RPC password, the wallet password is
    // the old one; both 0600, the old files left in place.
    let secrets = n.node.root_path().join("var/lib/archy/secrets");
    for (name, value) in OLD_SECRETS {
        let path = secrets.join(name);
        assert_eq!(std::fs::read_to_string(&path).expect(name), value);
        let mode = std::fs::metadata(&path).expect(name).permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{name}");
        assert!(
            n.node
                .root_path()
                .join("var/lib/archipelago/secrets")
                .join(name)
                .exists()
        );
    }
    assert_eq!(
        std::fs::read_to_string(n.node.root_path().join("etc/bitcoin/bitcoin.conf"))
            .expect("bitcoin.conf"),
        format!(
            "rpcauth={}\n",
            archy_realize::derive::rpcauth("node", OLD_SECRETS[0].1.as_bytes())
        )
    );

    // Status: clean but for the pending hand-overs; reconcile does nothing.
    let status = n.archy(&["status"]);
    let said = text(&status);
    assert_eq!(status.status.code(), Some(0), "{said}");
    for (name, ..) in OLD {
        assert!(
            said.contains(&format!("container {name}: adopted, hand-over pending")),
            "{said}"
        );
    }
    let out = ok(&n, &["reconcile"]);
    assert!(
        out.contains("the node is as it says; nothing to do"),
        "{out}"
    );
    assert_eq!(ids(&n), before);
    // A switch to the same description does nothing either.
    let out = ok(&n, &["switch", "/etc/archy/node.rhai"]);
    assert!(out.contains("is already running: nothing to do"), "{out}");

    // lnd's config changes: lnd alone is handed over to its unit.
    n.write(&description("alias=new"));
    let out = ok(&n, &["switch", "/etc/archy/node.rhai"]);
    assert!(out.contains("hand-over of the adopted container"), "{out}");
    let after = ids(&n);
    for (i, (name, ..)) in OLD.iter().enumerate() {
        if *name == "lnd" {
            assert_ne!(after[i], before[i], "lnd was not handed over");
        } else {
            assert_eq!(after[i], before[i], "{name} was restarted:\n{out}");
        }
    }
    assert!(n.active("lnd.service"));
    assert_eq!(
        n.node
            .exec_ok(&[
                "podman",
                "inspect",
                "--format",
                "{{index .Config.Labels \"io.archy.container\"}}",
                "lnd"
            ])
            .trim(),
        "lnd"
    );
    assert_eq!(n.prop("bitcoin-knots.service", "ActiveState"), "inactive");
    assert_eq!(probes(&n), all_200);
    assert_eq!(
        n.node
            .exec_ok(&["curl", "-fsS", "http://127.0.0.1:18080/lnd.conf"]),
        "alias=new\n"
    );

    // `archy adopt --now` hands one over on the operator's word.
    ok(&n, &["adopt", "--now", "electrumx"]);
    assert!(n.active("electrumx.service"));
    let refused = n.archy(&["adopt", "--now", "electrumx"]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));

    // A reboot: every container comes up from its Quadlet unit.
    n.node.reboot();
    for (name, ..) in OLD {
        let unit = format!("{name}.service");
        assert!(n.active(&unit), "{unit} is not active after the reboot");
    }
    assert_eq!(probes(&n), all_200);
    let status = n.archy(&["status"]);
    let said = text(&status);
    assert_eq!(status.status.code(), Some(0), "{said}");
    assert!(!said.contains("hand-over pending"), "{said}");
}

#[test]
fn a_container_that_differs_is_adopted_and_never_handed_over() {
    if !TestNode::available() {
        return;
    }
    let n = ArchyNode::up("adopt-diff");
    start_old_node(&n);
    let before = ids(&n);
    // The description puts bitcoind's data somewhere else than the old
    // container has it: starting the unit would start an empty node.
    let text_of = description("alias=old").replace(
        "\"/var/lib/archipelago/bitcoin:/www\"",
        "\"/var/lib/bitcoind:/www\"",
    );
    n.write(&text_of);
    // The wallet password's old file is gone: it must not be made anew,
    // so the switch refuses, changing nothing.
    let wallet = "/var/lib/archipelago/secrets/lnd-wallet-password";
    n.node.exec_ok(&["mv", wallet, "/root/wallet.bak"]);
    let refused = n.archy(&["switch", "--adopt", "/etc/archy/node.rhai"]);
    let said = text(&refused);
    assert_eq!(refused.status.code(), Some(1), "{said}");
    assert!(
        said.contains(&format!(
            "secret lnd-wallet-password: to be imported from {wallet}, but it does not exist"
        )),
        "{said}"
    );
    assert!(
        !n.node
            .root_path()
            .join("var/lib/archy/secrets/lnd-wallet-password")
            .exists()
    );
    n.node.exec_ok(&["mv", "/root/wallet.bak", wallet]);
    let plan = ok(
        &n,
        &["switch", "--dry-run", "--adopt", "/etc/archy/node.rhai"],
    );
    assert!(
        plan.contains(
            "differs: mount /var/lib/archipelago/bitcoin:/www (declared /var/lib/bitcoind:/www)"
        ),
        "{plan}"
    );
    assert!(
        plan.contains(&format!("imported from {wallet} (left in place)")),
        "{plan}"
    );
    ok(&n, &["switch", "--adopt", "/etc/archy/node.rhai"]);
    assert_eq!(ids(&n), before);
    let refused = n.archy(&["adopt", "--now", "bitcoin-knots"]);
    let said = text(&refused);
    assert_eq!(refused.status.code(), Some(1), "{said}");
    assert!(said.contains("differs from its declaration"), "{said}");
    assert_eq!(ids(&n), before);
}

/// The password the old script gave bitcoind's RPC.
const OLD_RPC_PASSWORD: &str = "oldScriptRpcPassword42";

/// bitcoind's RPC answer to `getblockchaininfo` as user `node` with
/// `password`: the HTTP status.
fn rpc_status(n: &ArchyNode, password: &str) -> String {
    let out = n.node.exec(&[
        "curl",
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-u",
        &format!("node:{password}"),
        "--data-binary",
        r#"{"method":"getblockchaininfo","id":1}"#,
        "http://10.21.21.10:8332/",
    ]);
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn bitcoin_knots_started_by_the_old_script_is_adopted_by_the_bitcoind_app() {
    if !TestNode::available() {
        return;
    }
    let n = ArchyNode::with_apps("adopt-knots");
    // The stand-in answers to Knots's name too.
    n.node.exec_ok(&[
        "podman",
        "tag",
        "docker.io/bitcoin/bitcoin:29.0",
        "docker.io/bitcoinknots/bitcoin:29.2",
    ]);
    // The old script: its network, its folders, its secret, its own
    // bitcoin.conf (an rpcauth line with a salt of its own), and bitcoind
    // started with plain `podman run`.
    let salt = "00112233445566778899aabbccddeeff";
    let hmac = archy_realize::derive::rpcauth_hmac(salt, OLD_RPC_PASSWORD.as_bytes());
    let conf = format!(
        "chain=regtest\nserver=1\nrpcauth=node:{salt}${hmac}\nrpcallowip=10.21.21.0/24\n\
         rpcallowip=127.0.0.1\n[regtest]\nrpcbind=0.0.0.0\nrpcport=8332\n"
    );
    let root = n.node.root_path();
    std::fs::create_dir_all(root.join("etc/bitcoin")).expect("mkdir");
    std::fs::write(root.join("etc/bitcoin/bitcoin.conf"), conf).expect("conf");
    n.node.exec_ok(&[
        "sh",
        "-c",
        &format!(
            "mkdir -p /var/lib/archipelago/bitcoin /var/lib/archipelago/secrets && \
             chown 2101:2101 /var/lib/archipelago/bitcoin && \
             echo {OLD_RPC_PASSWORD} > /var/lib/archipelago/secrets/bitcoin-rpc-password"
        ),
    ]);
    n.node.exec_ok(&[
        "podman",
        "network",
        "create",
        "--subnet",
        "10.21.21.0/24",
        "bitcoin",
    ]);
    n.node.exec_ok(&[
        "podman",
        "run",
        "-d",
        "--name",
        "bitcoin-knots",
        "--network",
        "bitcoin",
        "--ip",
        "10.21.21.10",
        "--user",
        "2101:2101",
        "-v",
        "/var/lib/archipelago/bitcoin:/data",
        "-v",
        "/etc/bitcoin/bitcoin.conf:/etc/bitcoin/bitcoin.conf:ro",
        "--entrypoint",
        r#"["bitcoind"]"#,
        "docker.io/bitcoinknots/bitcoin:29.2",
        "-conf=/etc/bitcoin/bitcoin.conf",
        "-datadir=/data",
    ]);
    let rpc_up = || {
        for _ in 0..100 {
            if rpc_status(&n, OLD_RPC_PASSWORD) == "200" {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("the old bitcoind does not answer");
    };
    rpc_up();
    let id = n.container_id("bitcoin-knots");

    n.write(
        r#"import "stdlib/app" as app;
import "stdlib/archy" as archy;
import "apps/bitcoind" as bitcoind;
let bitcoin = bitcoind::app(#{
    implementation: "knots",
    network: "regtest",
    container: "bitcoin-knots",
    data_dir: "/var/lib/archipelago/bitcoin",
    rpc_port: 8332,
});
[
    app::resources(bitcoin),
    archy::secret_imports(#{
        "bitcoin-rpc-password": "/var/lib/archipelago/secrets/bitcoin-rpc-password",
    }),
]
"#,
    );
    let plan = ok(
        &n,
        &["switch", "--dry-run", "--adopt", "/etc/archy/node.rhai"],
    );
    assert!(
        plan.contains("bitcoin-knots") && plan.contains("adopt in place"),
        "{plan}"
    );
    let out = ok(&n, &["switch", "--adopt", "/etc/archy/node.rhai"]);
    assert!(out.contains("switched to generation 1"), "{out}");
    assert_eq!(
        n.container_id("bitcoin-knots"),
        id,
        "bitcoind was restarted"
    );
    assert_eq!(rpc_status(&n, OLD_RPC_PASSWORD), "200");
    let said = ok(&n, &["status"]);
    assert!(
        said.contains("container bitcoin-knots: adopted, hand-over pending"),
        "{said}"
    );
    // archy's bitcoin.conf derives rpcauth= from the imported password.
    let written = std::fs::read_to_string(root.join("etc/bitcoin/bitcoin.conf")).expect("conf");
    let line = format!(
        "rpcauth={}\n",
        archy_realize::derive::rpcauth("node", OLD_RPC_PASSWORD.as_bytes())
    );
    assert!(written.contains(&line), "{written}");

    // The app's name hands its container over: bitcoind restarts once,
    // under its unit, with archy's config, and the old password still
    // opens its RPC.
    ok(&n, &["adopt", "--now", "bitcoind"]);
    assert_ne!(n.container_id("bitcoin-knots"), id);
    assert!(n.active("bitcoin-knots.service"));
    rpc_up();
    assert_eq!(rpc_status(&n, "wrong-password"), "401");
    let said = ok(&n, &["status"]);
    assert!(!said.contains("hand-over pending"), "{said}");
}

#[test]
fn electrumx_keeps_electrs_contract() {
    if !TestNode::available() {
        return;
    }
    // electrumx's environment derived from the RPC secret reaches a
    // bitcoind that checks it: the stand-in exits at once on a wrong
    // password, and the gate waits for its Electrum port.
    let n = ArchyNode::with_apps("electrumx");
    n.write(
        r#"import "stdlib/app" as app;
import "apps/bitcoind" as bitcoind;
import "apps/electrumx" as electrumx;
let bitcoin = bitcoind::app(#{ network: "regtest" });
let electrum = electrumx::app(bitcoin, #{});
[app::resources(bitcoin), app::resources(electrum)]
"#,
    );
    let out = ok(&n, &["switch", "/etc/archy/node.rhai"]);
    assert!(out.contains("switched to generation 1"), "{out}");
    assert!(n.active("electrumx.service"));
    let env = std::fs::metadata(n.node.root_path().join("etc/electrumx/electrumx.env"))
        .expect("the environment file");
    assert_eq!(env.permissions().mode() & 0o777, 0o600);
}

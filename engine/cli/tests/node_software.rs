//! Software by hash on a real node: the validator example's binaries
//! changed and rolled back (exactly the units that run them restart, the
//! old bytes come back), a web tree from a folder with a 0700 directory
//! served over HTTP, and archy killed with SIGKILL between two artifacts
//! of a switch. Needs root; see `support/node.rs`.

mod support;

use std::path::Path;
use std::process::Output;

use support::archy_node::ArchyNode;
use support::node::TestNode;
use support::parity::Switched;
use support::wait::wait_for;

const NODE: &str = "/etc/archy/node.rhai";
const VALIDATOR_NODE: &str = "/etc/archy/examples/validator.rhai";
const VALIDATOR_PROGRAM: &str = "/etc/archy/examples/validator/validator";
const ACCOUNTS: [&str; 2] = ["alice", "bob"];

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn run(n: &ArchyNode, args: &[&str]) -> Switched {
    let out = n.archy(args);
    Switched {
        code: out.status.code(),
        out: text(&out),
    }
}

fn sh(n: &ArchyNode, script: &str) -> String {
    n.node.exec_ok(&["/bin/sh", "-c", script])
}

fn write(n: &ArchyNode, path: &str, bytes: impl AsRef<[u8]>) {
    let host = n.node.root_path().join(path.trim_start_matches('/'));
    std::fs::create_dir_all(host.parent().expect("a parent")).expect("mkdir");
    std::fs::write(host, bytes).expect("write into the node");
}

/// The bytes the node sees at `path`, links followed inside the node.
fn bytes_at(n: &ArchyNode, path: &str) -> Vec<u8> {
    n.node.exec(&["cat", path]).stdout
}

fn blake3_hex(bytes: impl AsRef<[u8]>) -> String {
    blake3::hash(bytes.as_ref()).to_hex().to_string()
}

fn repo_file(path: &str) -> String {
    let at = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path);
    std::fs::read_to_string(&at).unwrap_or_else(|e| panic!("{}: {e}", at.display()))
}

/// `text` with `from`, which it holds exactly once, replaced by `to`.
#[track_caller]
fn edited(text: &str, from: &str, to: &str) -> String {
    assert_eq!(
        text.matches(from).count(),
        1,
        "{from:?} is not there exactly once"
    );
    text.replace(from, to)
}

fn validator_status(n: &ArchyNode, account: &str) -> String {
    sh(
        n,
        &format!("cat /home/{account}/validator.status 2>/dev/null || true"),
    )
}

/// The example: v1 switched, v2 with a changed validator binary restarts
/// exactly the validator instances and runs the new binary; a rollback
/// restores v1's bytes and restarts the validators again.
#[test]
fn validator_example_new_binary_and_rollback() {
    if !TestNode::available() {
        return;
    }
    let n = ArchyNode::up("software-validator");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    n.node.cp(repo.join("examples"), "/etc/archy/examples");

    let s = run(&n, &["switch", VALIDATOR_NODE]).ok();
    for account in ACCOUNTS {
        let bitcoind = format!("arch-bitcoind@{account}.service");
        let validator = format!("arch-validator@{account}.service");
        assert_eq!(s.ops_of(&bitcoind), ["start"], "{}", s.out);
        assert_eq!(s.ops_of(&validator), ["start"], "{}", s.out);
        assert!(n.active(&bitcoind) && n.active(&validator), "{}", s.out);
        assert_eq!(n.prop(&validator, "User"), account);
        assert_eq!(
            n.prop(&bitcoind, "WorkingDirectory"),
            format!("/home/{account}")
        );
        assert!(validator_status(&n, account).starts_with("version=1\n"));
        let log = sh(&n, &format!("cat /home/{account}/logs/bitcoin.log"));
        assert!(
            log.contains(&format!("bitcoind 1 for {account} in /home/{account}")),
            "{log}"
        );
        // systemd opens the append: file as root; the program runs as %i.
        let pid = n.prop(&bitcoind, "MainPID");
        assert_eq!(sh(&n, &format!("ps -o user= -p {pid}")).trim(), account);
    }
    let answer = sh(&n, "curl -fsS http://127.0.0.1:18543/");
    assert!(answer.contains("\"user\":\"bob\""), "{answer}");
    let v1 = repo_file("examples/validator/validator");
    assert_eq!(bytes_at(&n, "/usr/local/bin/validator"), v1.as_bytes());
    let bitcoind_pids: Vec<String> = ACCOUNTS
        .iter()
        .map(|a| n.prop(&format!("arch-bitcoind@{a}.service"), "MainPID"))
        .collect();

    // v2: a new validator program and its hash.
    let v2 = edited(&v1, "VERSION=1\n", "VERSION=2\n");
    write(&n, VALIDATOR_PROGRAM, &v2);
    let node_v1 = repo_file("examples/validator.rhai");
    write(
        &n,
        VALIDATOR_NODE,
        edited(&node_v1, &blake3_hex(&v1), &blake3_hex(&v2)),
    );
    let s = run(&n, &["switch", VALIDATOR_NODE]).ok();
    s.assert_jobs(&[
        "restart arch-validator@alice.service",
        "restart arch-validator@bob.service",
    ]);
    for (_, unit, why) in s.jobs() {
        assert_eq!(
            why, "reads /usr/local/bin/validator, which changed",
            "{unit}"
        );
    }
    assert_eq!(bytes_at(&n, "/usr/local/bin/validator"), v2.as_bytes());
    for account in ACCOUNTS {
        wait_for("the new validator to say so", 20, || {
            validator_status(&n, account).starts_with("version=2\n")
        });
    }
    let now: Vec<String> = ACCOUNTS
        .iter()
        .map(|a| n.prop(&format!("arch-bitcoind@{a}.service"), "MainPID"))
        .collect();
    assert_eq!(now, bitcoind_pids, "bitcoind kept running");

    // Back to v1: the same bytes, behind a link into the store, and the
    // validators restarted onto them.
    let s = run(&n, &["rollback"]).ok();
    s.assert_jobs(&[
        "restart arch-validator@alice.service",
        "restart arch-validator@bob.service",
    ]);
    for (_, unit, why) in s.jobs() {
        assert_eq!(
            why, "reads /usr/local/bin/validator, which changed",
            "{unit}"
        );
    }
    let target = sh(&n, "readlink /usr/local/bin/validator");
    assert!(
        target.starts_with(&format!("/var/lib/archy/store/{}", blake3_hex(&v1))),
        "{target}"
    );
    assert_eq!(bytes_at(&n, "/usr/local/bin/validator"), v1.as_bytes());
    let behind = sh(
        &n,
        "sha256sum < \"$(readlink -f /usr/local/bin/validator)\"",
    );
    let host = std::process::Command::new("sha256sum")
        .arg(repo.join("examples/validator/validator"))
        .output()
        .expect("sha256sum");
    let host = String::from_utf8_lossy(&host.stdout);
    assert_eq!(
        behind.split_whitespace().next(),
        host.split_whitespace().next(),
        "v1's binary, byte for byte"
    );
    for account in ACCOUNTS {
        wait_for("the old validator to say so", 20, || {
            validator_status(&n, account).starts_with("version=1\n")
        });
    }
}

/// Answers one HTTP GET per connection (inetd style) with the file of
/// /srv/ui it names, or 404.
const SERVE: &str = r#"#!/bin/sh
cr=$(printf '\r')
IFS= read -r request
path=$(printf '%s' "$request" | cut -d' ' -f2)
while IFS= read -r line; do
    if [ -z "$line" ] || [ "$line" = "$cr" ]; then break; fi
done
case "$path" in
    *..*) path=/missing ;;
esac
if [ -f "/srv/ui$path" ] && cat "/srv/ui$path" > /dev/null 2>&1; then
    printf 'HTTP/1.0 200 OK\r\nConnection: close\r\n\r\n'
    cat "/srv/ui$path"
else
    printf 'HTTP/1.0 404 Not Found\r\nConnection: close\r\n\r\n'
fi
"#;

fn ui_node(tree_hash: &str) -> String {
    format!(
        r#"[
    tree("/srv/ui", #{{ source: "ui", blake3: "{tree_hash}" }}),
    file("/usr/local/lib/ui-web/serve", #{{ text: {serve:?}, mode: 0o755 }}),
    unit("ui-web.service", #{{
        Service: #{{
            ExecStart: "/usr/bin/systemd-socket-activate --inetd --accept --listen=127.0.0.1:8090 /usr/local/lib/ui-web/serve",
            DynamicUser: true,
        }},
        Install: #{{ WantedBy: "multi-user.target" }},
        reads: ["/srv/ui"],
    }}),
    health_http("http://127.0.0.1:8090/assets/app.js", #{{ expect: 200 }}),
]"#,
        serve = SERVE
    )
}

/// The field incident: a web UI's files shipped with their folder 0700,
/// which the web server's user cannot enter. As a tree it is normalized
/// on the way into the store, and the server answers 200.
#[test]
fn a_tree_from_a_folder_with_a_0700_directory_is_served() {
    if !TestNode::available() {
        return;
    }
    let n = ArchyNode::up("software-tree");
    sh(
        &n,
        "mkdir -p /etc/archy/ui/assets && echo '<p>ui</p>' > /etc/archy/ui/index.html \
         && echo 'console.log(1)' > /etc/archy/ui/assets/app.js && chmod 700 /etc/archy/ui/assets",
    );
    // As shipped, an unprivileged user cannot read it.
    let denied = n.node.exec(&[
        "runuser",
        "-u",
        "nobody",
        "--",
        "cat",
        "/etc/archy/ui/assets/app.js",
    ]);
    assert!(
        !denied.status.success(),
        "the source folder must really be closed"
    );

    let hashed = sh(&n, "archy hash tree /etc/archy/ui");
    let tree_hash = hashed
        .lines()
        .find_map(|l| l.strip_prefix("blake3 "))
        .unwrap_or_else(|| panic!("{hashed}"))
        .trim()
        .to_string();
    n.write(&ui_node(&tree_hash));
    let s = run(&n, &["switch", NODE]).ok();
    assert_eq!(s.ops_of("ui-web.service"), ["start"], "{}", s.out);

    let body = sh(&n, "curl -fsS http://127.0.0.1:8090/assets/app.js");
    assert_eq!(body, "console.log(1)\n");
    let status = sh(
        &n,
        "curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8090/assets/app.js",
    );
    assert_eq!(status, "200");
    assert_eq!(
        sh(
            &n,
            "stat -L -c '%a %U' /srv/ui/assets /srv/ui/assets/app.js"
        ),
        "755 root\n444 root\n"
    );
    let target = sh(&n, "readlink /srv/ui");
    assert_eq!(target.trim(), format!("/var/lib/archy/trees/{tree_hash}"));
}

const TOOLS: [&str; 2] = ["/usr/local/bin/a-tool", "/usr/local/bin/b-tool"];

fn tool(name: &str, version: u32) -> String {
    // Big enough that a torn copy could not pass for whole.
    format!(
        "#!/bin/sh\n# {}\necho {name} {version}\n",
        "x".repeat(200_000)
    )
}

fn tools_node(version: u32) -> String {
    let mut out = String::from("[\n");
    for path in TOOLS {
        let name = path.rsplit('/').next().expect("a name");
        let source = format!("sw/v{version}/{name}");
        out.push_str(&format!(
            "    artifact(\"{path}\", #{{ source: \"{source}\", blake3: \"{}\", mode: 0o755 }}),\n",
            blake3_hex(tool(name, version))
        ));
    }
    out.push_str("]\n");
    out
}

/// Which version each tool is: the whole of v1's or v2's bytes, never
/// anything else.
fn versions(n: &ArchyNode) -> Vec<u32> {
    TOOLS
        .iter()
        .map(|path| {
            let name = path.rsplit('/').next().expect("a name");
            let bytes = bytes_at(n, path);
            (1..=2)
                .find(|v| bytes == tool(name, *v).as_bytes())
                .unwrap_or_else(|| panic!("{path} is neither v1 nor v2 ({} bytes)", bytes.len()))
        })
        .collect()
}

/// SIGKILL between two artifacts of a switch: `archy recover` ends on one
/// generation, and every artifact is entirely that generation's.
#[test]
fn a_kill_between_two_artifacts_leaves_old_or_new_never_a_mix() {
    if !TestNode::available() {
        return;
    }
    let n = ArchyNode::up("software-kill");
    for version in [1, 2] {
        for path in TOOLS {
            let name = path.rsplit('/').next().expect("a name");
            write(
                &n,
                &format!("/etc/archy/sw/v{version}/{name}"),
                tool(name, version),
            );
        }
    }
    n.write(&tools_node(1));
    run(&n, &["switch", NODE]).ok();
    assert_eq!(versions(&n), [1, 1]);

    n.write(&tools_node(2));
    n.switch_paused_after(NODE, &format!("installed {}", TOOLS[0]));
    // Paused with the first tool new and the second still old.
    wait_for("the first tool to be v2", 60, || {
        bytes_at(&n, TOOLS[0]) == tool("a-tool", 2).as_bytes()
    });
    assert_eq!(versions(&n), [2, 1], "paused between the two");
    n.kill_paused_switch();

    // Recover finishes the switch (0) or rolls it back (2, "back on
    // generation 1"); either way every artifact matches where it ends.
    let recovered = n.archy(&["recover"]);
    assert!(
        matches!(recovered.status.code(), Some(0 | 2)),
        "recover:\n{}",
        text(&recovered)
    );
    let current = sh(&n, "readlink /var/lib/archy/current");
    let expect = match current.trim() {
        "generations/1" => 1,
        "generations/2" => 2,
        other => panic!("current is {other}:\n{}", text(&recovered)),
    };
    assert_eq!(versions(&n), [expect, expect], "recover ended on {current}");
    let leftovers = sh(&n, "ls -A /usr/local/bin");
    let mut names: Vec<&str> = leftovers.lines().collect();
    names.sort();
    assert_eq!(names, ["a-tool", "archy", "b-tool"], "no temp file left");

    // And the next switch to v2 completes.
    run(&n, &["switch", NODE]).ok();
    assert_eq!(versions(&n), [2, 2]);
}

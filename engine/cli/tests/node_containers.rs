//! Containers on a real node: Quadlet files that systemd (257) turns into
//! services, podman (5.4) running them, images built from contexts kept in
//! the store, secrets, adoption and rollback. Needs root; see
//! `support/node.rs`.

mod support;

use support::archy_node::ArchyNode;
use support::node::TestNode;

const BUSYBOX: &str = "localhost/testbed/busybox:latest";

/// A backend built from `apps/backend` and a UI on a named network; the UI
/// serves a config file derived from a secret (`{{secret.ui-pass |
/// sha256}}`); `ui_extra` is more of the UI's config.
fn description(ui_extra: &str) -> String {
    format!(
        r#"[
    network("appnet", #{{}}),
    volume("backend-data", #{{}}),
    secret("ui-pass", #{{ length: 24 }}),
    file("/etc/ui/ui.conf", #{{ text: "hash={{{{secret.ui-pass | sha256}}}}\n{ui_extra}\n" }}),
    container("backend", #{{
        build: "apps/backend",
        network: "appnet",
        volumes: ["backend-data:/data"],
        ports: ["127.0.0.1:18080:8080"],
        exec: ["httpd", "-f", "-p", "8080", "-h", "/www"],
    }}),
    container("ui", #{{
        image: "{BUSYBOX}",
        network: "appnet",
        requires: ["backend"],
        volumes: ["/etc/ui/ui.conf:/www/ui.conf:ro"],
        ports: ["127.0.0.1:18081:8081"],
        exec: ["httpd", "-f", "-p", "8081", "-h", "/www"],
    }}),
    health_tcp(18080, #{{ within: "30s" }}),
    health_tcp(18081, #{{ within: "30s" }}),
]"#
    )
}

trait ContainerNode {
    fn put(&self, path: &str, text: &str);
    fn switch(&self) -> (bool, String);
    fn switch_ok(&self) -> String;
    fn get(&self, port: u16, path: &str) -> String;
}

impl ContainerNode for ArchyNode {
    /// Writes a file of the node's sources (under /etc/archy).
    fn put(&self, path: &str, text: &str) {
        let host = self.node.root_path().join("etc/archy").join(path);
        std::fs::create_dir_all(host.parent().expect("parent")).expect("mkdir");
        std::fs::write(host, text).expect("write");
    }

    fn switch(&self) -> (bool, String) {
        let out = self.archy(&["switch", "/etc/archy/node.rhai"]);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    fn switch_ok(&self) -> String {
        let (ok, text) = self.switch();
        assert!(ok, "switch failed:\n{text}");
        text
    }

    /// What a port of the node serves, probed from inside the node.
    fn get(&self, port: u16, path: &str) -> String {
        self.node
            .exec_ok(&["curl", "-fsS", &format!("http://127.0.0.1:{port}{path}")])
    }
}

/// The hex SHA-256 of `bytes`, by the host's `sha256sum`.
fn sha256_hex(bytes: &[u8]) -> String {
    let out = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write as _;
            c.stdin.take().expect("stdin").write_all(bytes)?;
            c.wait_with_output()
        })
        .expect("sha256sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn backend_and_ui_switch_change_fail_and_roll_back() {
    if !TestNode::available() {
        return;
    }
    let n = ArchyNode::up("ctr");
    n.put(
        "apps/backend/Containerfile",
        &format!("FROM {BUSYBOX}\nCOPY index.html /www/index.html\n"),
    );
    n.put("apps/backend/index.html", "backend v1\n");
    n.write(&description(""));

    // Generation 1: the image is built, both serve, systemd owns them.
    let out = n.switch_ok();
    assert!(out.contains("build"), "{out}");
    assert!(out.contains("switched to generation 1"), "{out}");
    assert_eq!(n.get(18080, "/"), "backend v1\n");
    for (unit, file) in [
        (
            "backend.service",
            "/etc/containers/systemd/backend.container",
        ),
        ("ui.service", "/etc/containers/systemd/ui.container"),
    ] {
        assert!(n.active(unit), "{unit} is not active");
        assert_eq!(n.prop(unit, "SourcePath"), file);
    }
    // The UI serves the hash of the secret, filled in on the node.
    let secret = std::fs::read(n.node.root_path().join("var/lib/archy/secrets/ui-pass"))
        .expect("the secret");
    let served = n.get(18081, "/ui.conf");
    assert!(
        served.starts_with(&format!("hash={}\n", sha256_hex(&secret))),
        "the UI does not serve the secret's hash"
    );
    // Neither the value nor its hash is in the store or a Quadlet file.
    let value = String::from_utf8_lossy(&secret).to_string();
    let grep = n.node.exec(&[
        "grep",
        "-rqF",
        &value,
        "/var/lib/archy/store",
        "/etc/containers/systemd",
    ]);
    assert_eq!(grep.status.code(), Some(1), "the secret leaked");
    let backend = n.container_id("backend");
    let ui = n.container_id("ui");

    // The same again: nothing to do.
    assert!(n.switch_ok().contains("already running"));

    // Only the UI's config changes: only the UI restarts.
    n.write(&description("title=two"));
    let out = n.switch_ok();
    assert!(out.contains("restart  ui.service"), "{out}");
    assert_eq!(n.container_id("backend"), backend);
    assert_ne!(n.container_id("ui"), ui);
    assert!(n.get(18081, "/ui.conf").contains("title=two"));
    let ui = n.container_id("ui");

    // The backend's image changes: the backend restarts, and the UI (which
    // requires it) after it.
    n.put("apps/backend/index.html", "backend v2\n");
    let out = n.switch_ok();
    assert!(out.contains("restart  backend.service"), "{out}");
    assert!(out.contains("restart  ui.service"), "{out}");
    assert_eq!(n.get(18080, "/"), "backend v2\n");
    assert_ne!(n.container_id("backend"), backend);
    assert_ne!(n.container_id("ui"), ui);
    assert!(n.started_at("backend.service") < n.started_at("ui.service"));
    let backend = n.container_id("backend");
    let ui = n.container_id("ui");

    // A context that does not build: the switch stops before anything is
    // stopped, and says why.
    n.put(
        "apps/backend/Containerfile",
        &format!("FROM {BUSYBOX}\nCOPY missing.html /www/index.html\n"),
    );
    let (ok, out) = n.switch();
    assert!(!ok, "{out}");
    assert!(out.contains("build"), "{out}");
    assert!(out.contains("nothing was changed"), "{out}");
    assert_eq!(n.container_id("backend"), backend);
    assert_eq!(n.container_id("ui"), ui);
    assert!(
        !n.node
            .root_path()
            .join("var/lib/archy/switch.json")
            .exists(),
        "a journal was left"
    );
    let gens = n.archy(&["generations"]);
    let gens = String::from_utf8_lossy(&gens.stdout);
    assert!(gens.contains("current"), "{gens}");

    // Rollback to generation 2 (backend v1), its image deleted meanwhile,
    // with the sources gone: it is built again from the store.
    let v1 = n.node.exec_ok(&[
        "podman",
        "images",
        "--format",
        "{{.Repository}}:{{.Tag}}",
        "--filter",
        "reference=localhost/archy/*",
    ]);
    let v1_tags: Vec<&str> = v1.lines().collect();
    assert_eq!(v1_tags.len(), 2, "{v1}");
    n.node
        .exec_ok(&["rm", "-r", "/etc/archy/apps", "/etc/archy/node.rhai"]);
    for tag in &v1_tags {
        let _ = n.node.exec(&["podman", "rmi", tag]);
    }
    let out = n.archy(&["rollback", "--to", "2"]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert_eq!(n.get(18080, "/"), "backend v1\n");
    assert!(n.get(18081, "/ui.conf").contains("title=two"));
    assert!(n.active("ui.service"));
    let status = n.archy(&["status"]);
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stdout)
    );
}

#[test]
fn a_container_started_by_hand_is_adopted_with_its_data() {
    if !TestNode::available() {
        return;
    }
    let n = ArchyNode::up("adopt");
    n.node.exec_ok(&[
        "podman",
        "run",
        "-d",
        "--name",
        "legacy",
        "-v",
        "legacy-data:/data",
        BUSYBOX,
        "sh",
        "-c",
        "echo kept > /data/state; exec sleep 1000",
    ]);
    n.write(&format!(
        r#"[
    volume("legacy-data", #{{}}),
    container("legacy", #{{
        image: "{BUSYBOX}",
        volumes: ["legacy-data:/data"],
        exec: ["sleep", "1000"],
    }}),
    health_unit("legacy.service"),
]"#
    ));
    let plan = n.archy(&["switch", "--dry-run", "/etc/archy/node.rhai"]);
    let plan = String::from_utf8_lossy(&plan.stdout).to_string();
    assert!(plan.contains("adopt    container legacy"), "{plan}");
    // It runs another command than declared: adopted as it runs, the
    // command corrected at the hand-over.
    assert!(
        plan.contains("adopt, hand over at next restart (then corrected: command"),
        "{plan}"
    );
    let out = n.switch_ok();
    assert!(out.contains("switched to generation 1"), "{out}");
    let status = n.archy(&["status"]);
    let said = String::from_utf8_lossy(&status.stdout).to_string();
    assert!(status.status.success(), "{said}");
    assert!(
        said.contains("container legacy: adopted, hand-over pending"),
        "{said}"
    );
    let out = n.archy(&["adopt", "--now", "legacy"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // One container of that name, archy's, with the data it had.
    let all = n
        .node
        .exec_ok(&["podman", "ps", "-a", "--format", "{{.Names}}"]);
    assert_eq!(all.trim(), "legacy", "{all}");
    assert_eq!(
        n.node
            .exec_ok(&[
                "podman",
                "inspect",
                "--format",
                "{{index .Config.Labels \"io.archy.container\"}}",
                "legacy"
            ])
            .trim(),
        "legacy"
    );
    assert_eq!(
        n.node
            .exec_ok(&["podman", "exec", "legacy", "cat", "/data/state"]),
        "kept\n"
    );
    assert!(n.active("legacy.service"));
    assert!(n.archy(&["status"]).status.success());

    // Status sees a container that went missing.
    n.node.exec_ok(&["podman", "rm", "-f", "legacy"]);
    let status = n.archy(&["status"]);
    assert_eq!(status.status.code(), Some(4));
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(text.contains("container legacy: missing"), "{text}");
}

#[test]
fn container_options_reach_podman() {
    if !TestNode::available() {
        return;
    }
    let n = ArchyNode::up("opts");
    n.write(&format!(
        r#"[
    secret("opt-token", #{{ length: 20 }}),
    dir("/srv/opt-data", #{{}}),
    container("opts", #{{
        image: "{BUSYBOX}",
        entrypoint: ["/bin/sh", "-c"],
        exec: ["exec httpd -f -p 8090 -h /"],
        ports: ["127.0.0.1:18090:8090"],
        volumes: ["/srv/opt-data:/data", "opt-vol:/vol"],
        tmpfs: ["/scratch:size=1m,mode=0700"],
        env: #{{ PLAIN: "a b 100% $HOME \"q\"" }},
        derived_env: #{{ NODE_NAME: "{{{{host.hostname}}}}" }},
        secret_env: #{{ TOKEN: "opt-token" }},
        data_uid: 1234,
        podman_args: ["--hostname=opts-host"],
        stop_timeout: "40s",
    }}),
    volume("opt-vol", #{{}}),
    container("on-host", #{{ image: "{BUSYBOX}", network: "host", exec: ["sleep", "1000"] }}),
    container("isolated", #{{ image: "{BUSYBOX}", network: "none", user: "1234", exec: ["sleep", "1000"] }}),
    health_unit("opts.service"),
    health_unit("on-host.service"),
    health_unit("isolated.service"),
]"#
    ));
    n.switch_ok();
    let exec = |args: &[&str]| {
        let mut argv = vec!["podman", "exec", "opts"];
        argv.extend_from_slice(args);
        n.node.exec_ok(&argv)
    };
    let inspect = |name: &str, format: &str| {
        n.node
            .exec_ok(&["podman", "inspect", "--format", format, name])
            .trim()
            .to_string()
    };
    // ports, entrypoint
    assert!(n.get(18090, "/etc/hostname").contains("opts-host"));
    assert_eq!(inspect("opts", "{{.Config.Entrypoint}}"), "[/bin/sh -c]");
    // env with spaces and the characters systemd would expand
    // The image's busybox has no printenv applet: its shell prints.
    let env_of = |var: &str| exec(&["sh", "-c", &format!("echo \"${var}\"")]);
    assert_eq!(env_of("PLAIN"), "a b 100% $HOME \"q\"\n");
    let hostname = n.node.exec_ok(&["hostname"]);
    assert_eq!(env_of("NODE_NAME"), hostname);
    // secret_env: the value of the node's secret, and not in the Quadlet file
    let secret =
        std::fs::read(n.node.root_path().join("var/lib/archy/secrets/opt-token")).expect("secret");
    let token = env_of("TOKEN");
    assert!(
        token.trim_end().as_bytes() == secret.as_slice(),
        "TOKEN is not the secret"
    );
    let quadlet = std::fs::read_to_string(
        n.node
            .root_path()
            .join("etc/containers/systemd/opts.container"),
    )
    .expect("quadlet file");
    assert!(!quadlet.contains(&*String::from_utf8_lossy(&secret)));
    let journal = n.node.exec_ok(&["journalctl", "--no-pager", "-o", "cat"]);
    assert!(
        !journal.contains(&*String::from_utf8_lossy(&secret)),
        "the secret is in the journal"
    );
    // stop_timeout: podman's and systemd's (with podman's margin)
    assert_eq!(inspect("opts", "{{.Config.StopTimeout}}"), "40");
    assert_eq!(n.prop("opts.service", "TimeoutStopUSec"), "1min 10s");
    // data_uid: the writable bind mount belongs to the container's uid
    assert_eq!(
        n.node
            .exec_ok(&["stat", "-c", "%u:%g", "/srv/opt-data"])
            .trim(),
        "1234:1234"
    );
    // Memory and CPU limits: the test node's cgroups have no memory or cpu
    // controller to give (see tests/node/README.md), so a limited
    // container cannot start here. What archy writes is checked through
    // Quadlet's own generator, and that podman takes those values.
    n.node.exec_ok(&[
        "sh",
        "-c",
        &format!(
            "mkdir -p /tmp/img && cat > /etc/archy/limited.rhai <<'EOF'\n\
             [ container(\"limited\", #{{ image: \"{BUSYBOX}\", memory: \"64Mi\", cpus: 0.5 }}) ]\nEOF"
        ),
    ]);
    n.node.exec_ok(&[
        "archy",
        "--root",
        "/tmp/img",
        "switch",
        "/etc/archy/limited.rhai",
    ]);
    let generated = n.node.exec_ok(&[
        "env",
        "QUADLET_UNIT_DIRS=/tmp/img/etc/containers/systemd",
        "/usr/libexec/podman/quadlet",
        "-dryrun",
    ]);
    assert!(
        generated.contains(" --memory=67108864 --cpus=0.500 "),
        "{generated}"
    );
    n.node.exec_ok(&[
        "podman",
        "create",
        "--name",
        "limits",
        "--memory=67108864",
        "--cpus=0.500",
        BUSYBOX,
    ]);
    assert_eq!(inspect("limits", "{{.HostConfig.Memory}}"), "67108864");
    assert_eq!(inspect("limits", "{{.HostConfig.NanoCpus}}"), "500000000");
    // tmpfs with its options, the named volume
    let mounts = exec(&["cat", "/proc/mounts"]);
    let scratch = mounts
        .lines()
        .find(|l| l.contains(" /scratch "))
        .unwrap_or_else(|| panic!("no /scratch in\n{mounts}"));
    assert!(scratch.starts_with("tmpfs"), "{scratch}");
    assert!(scratch.contains("size=1024k"), "{scratch}");
    assert!(scratch.contains("mode=700"), "{scratch}");
    assert!(
        n.node
            .exec(&["podman", "volume", "exists", "opt-vol"])
            .status
            .success()
    );
    // host.containers.internal is the gateway of the container's network
    let gateway = n
        .node
        .exec_ok(&[
            "podman",
            "network",
            "inspect",
            "podman",
            "--format",
            "{{range .Subnets}}{{.Gateway}}{{end}}",
        ])
        .trim()
        .to_string();
    let hosts = exec(&["cat", "/etc/hosts"]);
    assert!(
        hosts
            .lines()
            .any(|l| l.starts_with(&format!("{gateway}\t"))
                && l.contains("host.containers.internal")),
        "gateway {gateway}:\n{hosts}"
    );
    // host and none networks, user
    assert_eq!(inspect("on-host", "{{.HostConfig.NetworkMode}}"), "host");
    assert_eq!(inspect("isolated", "{{.HostConfig.NetworkMode}}"), "none");
    assert_eq!(
        n.node
            .exec_ok(&["podman", "exec", "isolated", "id", "-u"])
            .trim(),
        "1234"
    );
}

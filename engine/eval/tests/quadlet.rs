//! The Quadlet files a container, a network and a volume render to, with
//! every container option set: what systemd's Quadlet generator reads.
//! (`engine/cli/tests/node_containers.rs` checks what podman makes of them
//! on a real node.)

use std::collections::BTreeMap;

use archy_eval::{Limits, MemSources, evaluate};
use archy_graph::Fact;
use archy_units::GraphUnits as _;

const NODE: &str = r#"[
    network("appnet", #{ internal: true, subnet: "10.90.0.0/24" }),
    volume("data", #{}),
    secret("token", #{ length: 16 }),
    dir("/srv/web", #{}),
    container("backend", #{ image: "localhost/backend@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" }),
    container("web", #{
        build: "apps/web",
        entrypoint: ["/bin/sh", "-c"],
        exec: ["exec httpd -f -p 8080", "100%", "$HOME"],
        network: "appnet",
        ports: ["127.0.0.1:8080:8080", "53:53/udp", "[::1]:8443:443"],
        volumes: ["/srv/web:/data", "data:/var/lib/web:rw", "/etc/web.conf:/etc/web.conf:ro"],
        tmpfs: ["/tmp:size=16m,mode=1777", "/run"],
        env: #{ GREETING: "hello \"world\"" },
        derived_env: #{ NODE_NAME: "{{host.hostname}}" },
        secret_env: #{ TOKEN: "token" },
        user: "1000:1000",
        memory: "512Mi",
        cpus: 1.5,
        requires: ["backend"],
        data_uid: 1000,
        podman_args: ["--hostname=web"],
        stop_timeout: "5min",
    }),
    container("hosted", #{ image: "localhost/testbed/busybox:latest", network: "host" }),
]"#;

#[test]
fn quadlet_files() {
    let src = MemSources::default().with("node.rhai", NODE).with(
        "apps/web/Containerfile",
        "FROM localhost/testbed/busybox:latest\n",
    );
    let facts = BTreeMap::from([("hostname".to_string(), Fact::Text("node1".into()))]);
    let graph = match evaluate(src, "node.rhai", facts, &Limits::default()) {
        Ok(ev) => ev.graph,
        Err(f) => panic!("{:#?}", f.problems),
    };
    let mut out = String::new();
    for u in graph.unit_sources() {
        out.push_str(&format!("==> {} ({})\n{}\n", u.path, u.unit, u.text()));
    }
    insta::assert_snapshot!(out);
}

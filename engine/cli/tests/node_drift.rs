//! Drift on a real node: one node (files, one derived from a secret, two
//! services, a busybox container with a volume, a bind mount, a fixed
//! address and a published port, a secret that may be made anew and one
//! that may not), then one kind of drift after another. For each, `archy
//! status` names it (exit 4), `archy reconcile` repairs it (or refuses,
//! for the wallet password, saying why and leaving what uses it alone),
//! and `status` is clean again (exit 0). One node for every case keeps the
//! suite's time down. Needs root; see `support/node.rs`.

mod support;

use std::process::Output;

use support::archy_node::ArchyNode;
use support::node::TestNode;

const BUSYBOX: &str = "localhost/testbed/busybox:latest";
const NODE: &str = "/etc/archy/node.rhai";

fn description() -> String {
    format!(
        r#"import "stdlib/systemd" as systemd;
import "stdlib/archy" as archy;
[
    // The reconcile service without its timer: no run of its own while
    // this test breaks things on purpose.
    archy::units(#{{ reconcile: #{{ every: "off" }} }}),
    network("driftnet", #{{ subnet: "10.78.0.0/24" }}),
    volume("drift-data", #{{}}),
    dir("/srv/drift", #{{}}),
    secret("rpc", #{{ length: 24, regenerate: true }}),
    secret("wallet", #{{ length: 24 }}),
    file("/etc/drift/plain.conf", #{{ text: "greeting=hello\n" }}),
    file("/etc/drift/auth.conf", #{{ text: "auth={{{{secret.rpc | sha256}}}}\n" }}),
    file("/etc/drift/wallet", #{{ text: "{{{{secret.wallet}}}}" }}),
    systemd::service("drift-app", #{{ exec: "/bin/sh -c 'cat /etc/drift/plain.conf /etc/drift/auth.conf; exec sleep infinity'" }}),
    systemd::service("drift-wallet", #{{ exec: "/bin/sh -c 'test -s /etc/drift/wallet; exec sleep infinity'" }}),
    container("web", #{{
        image: "{BUSYBOX}",
        network: "driftnet",
        volumes: ["drift-data:/data", "/srv/drift:/bind"],
        ports: ["127.0.0.1:18090:8080"],
        exec: ["httpd", "-f", "-p", "8080", "-h", "/data"],
        // busybox's httpd ignores SIGTERM: do not wait podman's 10 s.
        stop_timeout: "1s",
        podman_args: ["--ip=10.78.0.50"],
    }}),
    health_unit("drift-app.service"),
    health_tcp(18090, #{{ within: "30s" }}),
]"#
    )
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// What only this test needs beyond the shared node.
trait DriftNode {
    fn sh(&self, script: &str) -> String;
    fn status_reports(&self, needles: &[&str]) -> String;
    fn reconcile_ok(&self) -> String;
    fn assert_clean(&self, after: &str);
    fn read(&self, path: &str) -> Vec<u8>;
    fn main_pid(&self, unit: &str) -> String;
}

impl DriftNode for ArchyNode {
    fn sh(&self, script: &str) -> String {
        self.node.exec_ok(&["sh", "-c", script])
    }

    /// `archy status` exits 4 (the node differs) and names each of `needles`.
    fn status_reports(&self, needles: &[&str]) -> String {
        let out = self.archy(&["status"]);
        let t = text(&out);
        assert_eq!(out.status.code(), Some(4), "status did not see drift:\n{t}");
        for needle in needles {
            assert!(t.contains(needle), "status does not say {needle:?}:\n{t}");
        }
        t
    }

    fn reconcile_ok(&self) -> String {
        let out = self.archy(&["reconcile"]);
        let t = text(&out);
        assert!(out.status.success(), "reconcile failed:\n{t}");
        assert!(t.contains("repaired; every health check passed"), "{t}");
        t
    }

    fn assert_clean(&self, after: &str) {
        let out = self.archy(&["status"]);
        assert!(
            out.status.success(),
            "status after {after} is not clean:\n{}",
            text(&out)
        );
    }

    fn read(&self, path: &str) -> Vec<u8> {
        std::fs::read(self.node.root_path().join(path.trim_start_matches('/')))
            .unwrap_or_else(|e| panic!("read {path}: {e}"))
    }

    fn main_pid(&self, unit: &str) -> String {
        self.prop(unit, "MainPID")
    }
}

#[test]
fn every_kind_of_drift_is_reported_then_repaired() {
    if !TestNode::available() {
        return;
    }
    let n = ArchyNode::up("drift");
    n.write(&description());
    let out = n.archy(&["switch", NODE]);
    assert!(out.status.success(), "{}", text(&out));
    n.assert_clean("the switch");

    // Nothing to do: one line, nothing written (no journal, the ownership
    // record untouched), no unit touched. The same through the unit.
    let record = || n.sh("stat -c %Y.%s /var/lib/archy/owned.json");
    let before = (record(), n.main_pid("drift-app.service"));
    let out = n.archy(&["reconcile"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "generation 1: the node is as it says; nothing to do\n"
    );
    assert_eq!((record(), n.main_pid("drift-app.service")), before);
    assert!(
        !n.node
            .root_path()
            .join("var/lib/archy/switch.json")
            .exists()
    );
    let logged = n.sh(
        "systemctl start archy-reconcile.service; \
         journalctl --no-pager -o cat _SYSTEMD_INVOCATION_ID=$(systemctl show -P InvocationID archy-reconcile.service)",
    );
    assert_eq!(
        logged,
        "generation 1: the node is as it says; nothing to do\n"
    );

    // A managed file edited by hand: rewritten, and its reader restarted.
    let app = n.main_pid("drift-app.service");
    n.sh("echo edited > /etc/drift/plain.conf");
    n.status_reports(&[
        "file /etc/drift/plain.conf: content differs",
        "rewrite /etc/drift/plain.conf, restart drift-app.service",
    ]);
    n.reconcile_ok();
    assert_eq!(n.read("/etc/drift/plain.conf"), b"greeting=hello\n");
    assert_ne!(
        n.main_pid("drift-app.service"),
        app,
        "its reader kept running"
    );
    n.assert_clean("an edited file");

    // Deleted: written again.
    n.sh("rm /etc/drift/plain.conf");
    n.status_reports(&["file /etc/drift/plain.conf: missing"]);
    n.reconcile_ok();
    assert_eq!(n.read("/etc/drift/plain.conf"), b"greeting=hello\n");
    n.assert_clean("a deleted file");

    // chmodded: its mode back, and nothing restarted for it.
    let app = n.main_pid("drift-app.service");
    n.sh("chmod 0666 /etc/drift/plain.conf");
    n.status_reports(&["file /etc/drift/plain.conf: mode 0666, not 0644"]);
    n.reconcile_ok();
    assert_eq!(n.sh("stat -c %a /etc/drift/plain.conf"), "644\n");
    assert_eq!(n.main_pid("drift-app.service"), app);
    n.assert_clean("a chmod");

    // A unit stopped: started.
    n.sh("systemctl stop drift-app.service");
    n.status_reports(&[
        "unit drift-app.service: inactive",
        "start drift-app.service",
    ]);
    n.reconcile_ok();
    assert!(n.active("drift-app.service"));
    n.assert_clean("a stopped unit");

    // A unit disabled: enabled again, and left running as it was.
    let app = n.main_pid("drift-app.service");
    n.sh("systemctl disable drift-app.service");
    n.status_reports(&["unit drift-app.service: disabled"]);
    n.reconcile_ok();
    assert_eq!(n.sh("systemctl is-enabled drift-app.service"), "enabled\n");
    assert_eq!(n.main_pid("drift-app.service"), app);
    n.assert_clean("a disabled unit");

    // A container removed: made anew by its unit. Quadlet's Restart=always
    // would have systemd do that itself within a second, before status
    // could look; a runtime drop-in turns that off for this case (as if
    // systemd had given up restarting it).
    n.sh("mkdir -p /run/systemd/system/web.service.d && \
         printf '[Service]\\nRestart=no\\n' > /run/systemd/system/web.service.d/test.conf && \
         systemctl daemon-reload && podman rm -f -t 0 web");
    n.status_reports(&["container web: missing", "restart web.service"]);
    n.reconcile_ok();
    assert!(n.active("web.service"));
    n.sh("rm -r /run/systemd/system/web.service.d && systemctl daemon-reload");
    n.assert_clean("a removed container");

    // The RPC secret deleted: it may be made anew, so it is, and what is
    // derived from it rewritten and its reader restarted (as a rotation).
    let rpc = n.read("/var/lib/archy/secrets/rpc");
    let auth = n.read("/etc/drift/auth.conf");
    let app = n.main_pid("drift-app.service");
    n.sh("rm /var/lib/archy/secrets/rpc");
    n.status_reports(&["secret rpc: missing", "make secret rpc anew"]);
    n.reconcile_ok();
    assert!(
        n.read("/var/lib/archy/secrets/rpc") != rpc,
        "the same value"
    );
    assert!(
        n.read("/etc/drift/auth.conf") != auth,
        "auth.conf not rewritten"
    );
    assert_ne!(n.main_pid("drift-app.service"), app);
    n.assert_clean("a deleted regenerable secret");

    // The wallet password deleted: not made anew. Status and reconcile
    // say what to do; nothing that uses it is touched; a switch refuses.
    let wallet = n.read("/var/lib/archy/secrets/wallet");
    let file = n.read("/etc/drift/wallet");
    let reader = n.main_pid("drift-wallet.service");
    n.sh("rm /var/lib/archy/secrets/wallet");
    n.status_reports(&[
        "secret wallet: missing",
        "not safe",
        "/var/lib/archy/secrets/wallet (mode 0600)",
    ]);
    let out = n.archy(&["reconcile"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(3), "{t}");
    assert!(t.contains("restore its value from a backup"), "{t}");
    assert!(t.contains("archy secret rotate wallet"), "{t}");
    let out = n.archy(&["switch", NODE]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(3), "{t}");
    assert!(t.contains("nothing was changed"), "{t}");
    assert!(
        !n.node
            .root_path()
            .join("var/lib/archy/secrets/wallet")
            .exists()
    );
    assert!(
        n.read("/etc/drift/wallet") == file,
        "the wallet file changed"
    );
    assert_eq!(n.main_pid("drift-wallet.service"), reader);
    // The operator restores it from a backup: clean again.
    std::fs::write(
        n.node.root_path().join("var/lib/archy/secrets/wallet"),
        &wallet,
    )
    .expect("restore the wallet password");
    n.sh("chmod 0600 /var/lib/archy/secrets/wallet");
    n.assert_clean("the wallet password restored");

    // podman's state wiped (its database deleted while podman's API
    // service is down): the containers keep running unknown to podman.
    // Reconcile ends what is left of them and their units make them anew,
    // with the volume's and the bind mount's data as they were.
    n.sh("echo kept > /srv/drift/bind-data");
    n.sh("podman exec web sh -c 'echo kept > /data/volume-data'");
    n.sh("systemctl stop podman.service 2>/dev/null; \
         rm /var/lib/containers/storage/db.sql");
    assert_eq!(
        n.sh("podman ps -a -q"),
        "",
        "podman still knows the container"
    );
    n.status_reports(&["container web: its unit runs, but podman has no record of it"]);
    n.reconcile_ok();
    assert_eq!(
        n.sh("curl -fsS http://127.0.0.1:18090/volume-data"),
        "kept\n",
        "the volume's data"
    );
    assert_eq!(n.sh("cat /srv/drift/bind-data"), "kept\n");
    assert_eq!(n.sh("podman ps --format '{{.Names}}'"), "web\n");
    n.assert_clean("podman's state wiped");
}

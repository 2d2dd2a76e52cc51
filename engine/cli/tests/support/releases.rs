//! Signed releases of a small node, and the mirrors that serve them inside
//! a test node, for the OTA tests and benchmark.
//!
//! Each release is two apps: `web`, a busybox httpd container whose page
//! names the release, and `clock`, a plain service no release changes (a
//! switch must leave it alone). A bad release adds a health check `web`
//! cannot pass. Bundles are made on this machine with this build's
//! `archy release build` and copied into the node, where busybox's httpd
//! serves them: the good mirror on 127.0.0.1:18200 and, on :18201, a
//! mirror that has nothing (404 for every bundle).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::archy_node::ArchyNode;

pub const GOOD_MIRROR: &str = "http://127.0.0.1:18200";
pub const EMPTY_MIRROR: &str = "http://127.0.0.1:18201";
pub const WEB_PORT: u16 = 18100;
/// How long the bad release's failing check waits before it gives up.
pub const BAD_DEADLINE_S: u64 = 5;

/// A release key and the bundles made with it, in a temporary folder.
pub struct Publisher {
    pub dir: tempfile::TempDir,
    /// The public key's base64 line.
    pub public: String,
}

/// Runs this build's `archy` in `cwd`; its stdout, or a panic with all it
/// said when it fails.
pub fn archy(args: &[&str], cwd: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_archy"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("run archy");
    assert!(
        out.status.success(),
        "archy {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Copies the folder `from` to `to`, recursively.
pub fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("mkdir");
    for entry in fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).expect("copy");
        }
    }
}

impl Publisher {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        archy(&["release", "keygen", "--out", "release"], dir.path());
        let text = fs::read_to_string(dir.path().join("release.pub")).expect("pub");
        let public = text
            .lines()
            .find(|l| !l.starts_with("untrusted comment:") && !l.trim().is_empty())
            .expect("a key line")
            .trim()
            .to_string();
        Publisher { dir, public }
    }

    /// The node description of release `version`; `bad` adds a check web
    /// never passes.
    pub fn node_text(&self, version: &str, bad: bool) -> String {
        let failing = if bad {
            format!(
                "health_http(\"http://127.0.0.1:{WEB_PORT}/ready\", #{{ expect: 200, within: \"{BAD_DEADLINE_S}s\" }}),"
            )
        } else {
            String::new()
        };
        format!(
            r#"// Release {version} of the OTA test node.
import "apps/web" as web;
import "stdlib/archy" as archy;

[
    web::app("{version}"),
    unit("clock.service", #{{
        Service: #{{ ExecStart: "/bin/sleep infinity" }},
        Install: #{{ WantedBy: "multi-user.target" }},
    }}),
    health_unit("clock.service"),
    {failing}
    archy::units(#{{ ota: #{{
        url: "{EMPTY_MIRROR}/stable/latest.tar.gz",
        mirrors: ["{GOOD_MIRROR}/stable/latest.tar.gz"],
        keys: ["{key}"],
        channel: "stable",
    }} }}),
]
"#,
            key = self.public
        )
    }

    /// Packs and signs release `version` as `r<version>.tar.gz`; returns
    /// the bundle's path.
    pub fn release(&self, version: &str, bad: bool) -> PathBuf {
        let src = self.dir.path().join(format!("src-{version}"));
        fs::create_dir_all(src.join("apps")).expect("mkdir");
        fs::write(src.join("node.rhai"), self.node_text(version, bad)).expect("node");
        fs::write(src.join("apps/web.rhai"), WEB_APP).expect("app");
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        copy_tree(&repo.join("stdlib"), &src.join("stdlib"));
        let name = format!("r{version}.tar.gz");
        archy(
            &[
                "release",
                "build",
                src.to_str().expect("utf-8"),
                "--key",
                "release.key",
                "--version",
                version,
                "-o",
                &name,
            ],
            self.dir.path(),
        );
        self.dir.path().join(name)
    }
}

impl Default for Publisher {
    fn default() -> Self {
        Self::new()
    }
}

/// The web app: a page naming the release, served by busybox's httpd from
/// a bind-mounted file (so a new page restarts exactly this container).
/// The shell traps TERM so a stop is immediate (busybox httpd as PID 1
/// ignores it).
const WEB_APP: &str = r#"// A page that names the release it came with.
fn app(version) {
    [
        file("/etc/web/index.html", #{ text: "release " + version + "\n" }),
        container("web", #{
            image: "localhost/testbed/busybox:latest",
            volumes: ["/etc/web/index.html:/www/index.html:ro"],
            ports: ["127.0.0.1:18100:8100"],
            entrypoint: ["/bin/sh", "-c"],
            exec: ["trap 'exit 0' TERM; httpd -f -p 8100 -h /www & wait"],
        }),
        health_http("http://127.0.0.1:18100/index.html", #{ expect: 200, within: "30s" }),
    ]
}
"#;

/// A test node with busybox's httpd serving `/srv/mirror` on the good
/// mirror's port and an empty folder on the other, and `publisher`'s key
/// put in the trusted keys as at provisioning.
pub fn node_with_mirrors(prefix: &str, publisher: &Publisher) -> ArchyNode {
    let n = ArchyNode::up(prefix);
    n.node.cp("/bin/busybox", "/usr/local/bin/busybox");
    n.node.exec_ok(&[
        "mkdir",
        "-p",
        "/srv/mirror/stable",
        "/srv/empty",
        "/etc/archy/trusted-keys",
    ]);
    n.node.cp(
        publisher.dir.path().join("release.pub"),
        "/etc/archy/trusted-keys/provisioned.pub",
    );
    for (unit, port, dir) in [
        ("mirror-good", 18200, "/srv/mirror"),
        ("mirror-empty", 18201, "/srv/empty"),
    ] {
        n.node.exec_ok(&[
            "systemd-run",
            &format!("--unit={unit}"),
            "/usr/local/bin/busybox",
            "httpd",
            "-f",
            "-p",
            &format!("127.0.0.1:{port}"),
            "-h",
            dir,
        ]);
    }
    n
}

/// Copies a bundle and its signature into the good mirror as `name`.
pub fn publish(n: &ArchyNode, bundle: &Path, name: &str) {
    let sig = PathBuf::from(format!("{}.minisig", bundle.display()));
    n.node.cp(bundle, &format!("/srv/mirror/{name}"));
    n.node.cp(&sig, &format!("/srv/mirror/{name}.minisig"));
}

/// `archy ota apply` of `name` from the mirrors (the empty one first).
pub fn apply_args(name: &str) -> Vec<String> {
    vec![
        "archy".into(),
        "ota".into(),
        "apply".into(),
        format!("{EMPTY_MIRROR}/{name}"),
        "--mirror".into(),
        format!("{GOOD_MIRROR}/{name}"),
    ]
}

/// The page web serves now.
pub fn page(n: &ArchyNode) -> String {
    n.node
        .exec_ok(&[
            "/usr/local/bin/busybox",
            "wget",
            "-q",
            "-O",
            "-",
            &format!("http://127.0.0.1:{WEB_PORT}/index.html"),
        ])
        .trim()
        .to_string()
}

//! Running the `archy` binary against a temporary state dir and node
//! folder, and redacting what varies between runs from its output.

#![allow(dead_code)]
// Each test file uses a different part of this.
// Test helpers: a failure should panic, and the panic says where.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Host facts fixed on the command line, so roots do not depend on the
/// machine the tests run on.
pub const FACTS: [&str; 8] = [
    "--fact",
    "hostname=node1",
    "--fact",
    "ip=192.0.2.10",
    "--fact",
    "mdns=node1.local",
    "--fact",
    "disk_bytes=2T",
];

/// A small node whose greeting varies, so each greeting is a generation.
pub fn node_text(greeting: &str) -> String {
    format!(
        r#"import "stdlib/systemd" as systemd;
[
    file("/etc/demo/greeting.conf", #{{ text: "greeting={greeting} from " + host.hostname + "\n" }}),
    secret("demo-token", #{{ length: 32 }}),
    systemd::service("demo", #{{
        exec: "/usr/bin/demo --config /etc/demo/greeting.conf",
        secrets: ["demo-token"],
    }}),
    health_unit("demo.service"),
]
"#
    )
}

/// What one run of `archy` did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(output: Output) -> Self {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

impl Run {
    /// Asserts the run succeeded and returns its stdout.
    pub fn ok(self) -> String {
        assert_eq!(
            self.code, 0,
            "archy failed:\n{}{}",
            self.stdout, self.stderr
        );
        self.stdout
    }
}

/// A temporary folder with a state dir and a node file next to a link to
/// the repository's stdlib.
#[derive(Debug)]
pub struct Workspace {
    // Declared first so it is dropped first: unmounted before the folder
    // it is mounted in is deleted.
    mount: Option<Tmpfs>,
    pub dir: tempfile::TempDir,
    pub state: PathBuf,
}

impl Workspace {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        Self::with_state(dir, state)
    }

    fn with_state(dir: tempfile::TempDir, state: PathBuf) -> Self {
        let stdlib = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../stdlib"));
        std::os::unix::fs::symlink(stdlib.canonicalize().unwrap(), dir.path().join("stdlib"))
            .unwrap();
        Workspace {
            mount: None,
            dir,
            state,
        }
    }

    /// A workspace whose state dir is a tmpfs mounted with `options`
    /// (`size=512k`, `ro`), or None where mounting is not allowed.
    pub fn on_tmpfs(options: &str) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let mount = Tmpfs::mount(&state, options)?;
        let mut ws = Self::with_state(dir, state);
        ws.mount = Some(mount);
        Some(ws)
    }

    /// The tmpfs the state dir is on.
    pub fn tmpfs(&self) -> &Tmpfs {
        self.mount.as_ref().expect("a workspace made by on_tmpfs")
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `text` as the node file `node.rhai` and returns its path.
    pub fn node(&self, text: &str) -> PathBuf {
        let path = self.path().join("node.rhai");
        fs::write(&path, text).unwrap();
        path
    }

    /// A command running archy on this workspace's state dir.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_archy"));
        command
            .arg("--state-dir")
            .arg(&self.state)
            .args(args)
            .current_dir(self.path())
            .env_remove("ARCHY_STATE_DIR")
            .env("NO_COLOR", "1");
        command
    }

    pub fn archy(&self, args: &[&str]) -> Run {
        self.command(args).output().unwrap().into()
    }

    /// `archy build` of `text` with the fixed facts.
    pub fn build(&self, text: &str) -> Run {
        self.node(text);
        let mut args = vec!["build"];
        args.extend(FACTS);
        self.archy(&args)
    }

    pub fn store(&self) -> archy_store::Store {
        archy_store::Store::open(&archy_store::StateDir::new(&self.state)).unwrap()
    }

    /// Replaces this workspace's paths with `[TMP]`; [`snapshot_settings`]
    /// redacts the rest.
    pub fn redact(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for dir in [self.path().canonicalize().unwrap(), self.path().to_owned()] {
            text = text.replace(dir.to_str().unwrap(), "[TMP]");
        }
        text
    }
}

/// Insta settings that redact what differs between runs or machines:
/// hashes (they cover the stdlib, which changes independently of these
/// tests), times, sizes, pids. Bind them for the length of a test:
/// `let _settings = snapshot_settings().bind_to_scope();`.
pub fn snapshot_settings() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    for (pattern, replacement) in [
        (r"\b[0-9a-f]{64}\b", "[HASH]"),
        // As wide as what they replace, so tables stay aligned.
        (r"\b[0-9a-f]{12}\b", "[short root]"),
        (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "YYYY-MM-DDThh:mm:ssZ"),
        (r"\b\d+(\.\d)? (B|KiB|MiB|GiB|TiB)\b", "[SIZE]"),
        (r"pid \d+", "pid [PID]"),
    ] {
        settings.add_filter(pattern, replacement);
    }
    settings
}

/// A tmpfs mounted over a folder for the length of a test; unmounted when
/// dropped. Needs root: without it, the test that asked is skipped.
#[derive(Debug)]
pub struct Tmpfs {
    pub path: PathBuf,
}

impl Tmpfs {
    pub fn mount(path: &Path, options: &str) -> Option<Self> {
        fs::create_dir_all(path).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(path)
            .status();
        match status {
            Ok(status) if status.success() => Some(Tmpfs {
                path: path.to_owned(),
            }),
            _ => {
                eprintln!("skipped: cannot mount a tmpfs (this test needs root)");
                None
            }
        }
    }

    /// Makes the mount read-only (or read-write again).
    pub fn remount(&self, options: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(&self.path)
            .status()
            .unwrap();
        assert!(status.success(), "remount {options} failed");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// The names in a directory, sorted.
pub fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// Overwrites a file the store made read-only, as a failing disk or a
/// careless operator would.
pub fn overwrite(path: &Path, bytes: &[u8]) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(0o644)).unwrap();
    fs::write(path, bytes).unwrap();
}

//! Real nodes for tests: a disposable Debian 13 machine with systemd 257 as
//! PID 1 and podman 5.4, booted in a second by `tests/node/node` (see
//! `tests/node/README.md`) and gone when its [`TestNode`] is dropped.
//!
//! A real-node test starts with
//!
//! ```ignore
//! if !TestNode::available() {
//!     return;
//! }
//! let node = TestNode::up("switch");
//! ```
//!
//! They need root (and, the first time, the network, to build the cached
//! base image). As another user, or with `ARCHY_SKIP_NODE_TESTS=1`, they
//! print why they were skipped and pass. CI runs as root and sets nothing
//! that skips them.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

/// Set to `1` to skip the real-node tests (they then pass without running).
pub const SKIP_VAR: &str = "ARCHY_SKIP_NODE_TESTS";

/// The longest node name the script accepts (`^[a-z0-9][a-z0-9-]{0,30}$`).
const MAX_NAME: usize = 31;

/// Nodes booted by this process so far, to tell their names apart.
static BOOTED: AtomicU32 = AtomicU32::new(0);

/// A running node, stopped and erased (with everything it wrote) on drop.
#[derive(Debug)]
pub struct TestNode {
    name: String,
    /// PID of the node's init as seen from this machine.
    pid: u32,
}

/// The harness script: `tests/node/node` at the top of the repository.
pub fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/node/node")
}

/// Why real-node tests cannot run here, if they cannot.
pub fn skip_reason() -> Option<String> {
    if std::env::var_os(SKIP_VAR).is_some_and(|v| v == "1") {
        return Some(format!("{SKIP_VAR}=1 is set"));
    }
    match effective_uid() {
        Some(0) => None,
        Some(uid) => Some(format!("real-node tests need root (running as uid {uid})")),
        None => Some("cannot read the effective uid from /proc/self/status".into()),
    }
}

/// The effective uid of this process (the second field of `Uid:`).
fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// A node name the script accepts: the prefix (lowercased, anything else
/// than `[a-z0-9-]` made `-`, shortened to fit) then `-<pid>-<n>`.
fn node_name(prefix: &str, pid: u32, n: u32) -> String {
    let suffix = format!("-{pid}-{n}");
    let mut name: String = prefix
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '-') => c,
            _ => '-',
        })
        .collect();
    let name_starts_well = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !name_starts_well {
        name.insert(0, 't');
    }
    name.truncate(MAX_NAME.saturating_sub(suffix.len()));
    name + &suffix
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs the script; panics, with what it said, if it fails.
fn run_script(args: &[&str]) -> String {
    let out = Command::new(script())
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script().display()));
    assert!(
        out.status.success(),
        "node {} failed ({}):\n--- stdout\n{}--- stderr\n{}",
        args.join(" "),
        out.status,
        text(&out.stdout),
        text(&out.stderr),
    );
    text(&out.stdout)
}

/// A named check of `S` on a node, run by [`run_scenarios`].
pub type Scenario<S> = (&'static str, fn(&S, &TestNode));

/// Runs every scenario at once, each in a thread named after it, against
/// `subject` on `node`; returns the names of those that panicked (their
/// panics are printed as they happen). Scenarios share one node so the
/// suite boots few of them; each must keep to names of its own.
pub fn run_scenarios<S: Sync>(
    subject: &S,
    node: &TestNode,
    scenarios: &[Scenario<S>],
) -> Vec<&'static str> {
    std::thread::scope(|s| {
        let running: Vec<_> = scenarios
            .iter()
            .map(|&(name, scenario)| {
                let thread = std::thread::Builder::new()
                    .name(name.to_owned())
                    .spawn_scoped(s, move || {
                        let t = std::time::Instant::now();
                        scenario(subject, node);
                        eprintln!("{name}: ok in {:?}", t.elapsed());
                    })
                    .expect("spawn a scenario thread");
                (name, thread)
            })
            .collect();
        running
            .into_iter()
            .filter_map(|(name, thread)| thread.join().is_err().then_some(name))
            .collect()
    })
}

impl TestNode {
    /// Whether real-node tests can run here. When not, prints a
    /// `skipped: ...` line (past the test harness's capture, so it shows)
    /// and returns false: the test should return at once.
    pub fn available() -> bool {
        match skip_reason() {
            None => true,
            Some(reason) => {
                let test = std::thread::current()
                    .name()
                    .unwrap_or("a real-node test")
                    .to_owned();
                let _ = writeln!(std::io::stderr(), "skipped: {test}: {reason}");
                false
            }
        }
    }

    /// Boots a fresh node named after `name_prefix`, this process and a
    /// counter, building the base image first if there is none yet (other
    /// tests that call this meanwhile wait for that one build). Panics, with
    /// the tail of the node's console, if it does not boot.
    pub fn up(name_prefix: &str) -> TestNode {
        let n = BOOTED.fetch_add(1, Ordering::Relaxed);
        let name = node_name(name_prefix, std::process::id(), n);
        run_script(&["up", &name]);
        // From here on, drop takes the node down again, even if `pid` fails.
        let mut node = TestNode { name, pid: 0 };
        let pid = run_script(&["pid", &node.name]);
        node.pid = pid
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("node pid {}: not a PID: {pid:?}", node.name));
        node
    }

    /// Powers the node off and boots it again on the same root (`node
    /// reboot`): what it wrote stays, `/run` starts empty.
    pub fn reboot(&mut self) {
        run_script(&["reboot", &self.name]);
        let pid = run_script(&["pid", &self.name]);
        self.pid = pid
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("node pid {}: not a PID: {pid:?}", self.name));
    }

    /// The node's name, as `tests/node/node` knows it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `argv` inside the node as root, with a clean environment.
    pub fn exec(&self, argv: &[&str]) -> Output {
        Command::new(script())
            .args(["exec", &self.name])
            .args(argv)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script().display()))
    }

    /// Runs `argv` inside the node and returns its stdout; panics with its
    /// stdout and stderr if it fails.
    pub fn exec_ok(&self, argv: &[&str]) -> String {
        let out = self.exec(argv);
        assert!(
            out.status.success(),
            "in node {}: `{}` failed ({}):\n--- stdout\n{}--- stderr\n{}",
            self.name,
            argv.join(" "),
            out.status,
            text(&out.stdout),
            text(&out.stderr),
        );
        text(&out.stdout)
    }

    /// Copies a file or folder of this machine to `dst` in the node
    /// (creating `dst`'s parent folders; a folder is copied as `dst`).
    pub fn cp(&self, src: impl AsRef<Path>, dst: &str) {
        let src = src.as_ref().to_str().expect("a UTF-8 source path");
        run_script(&["cp", src, &format!("{}:{dst}", self.name)]);
    }

    /// The node's file system seen from this machine (`/proc/<pid>/root`).
    pub fn root_path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root", self.pid))
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        let down = Command::new(script()).args(["down", &self.name]).output();
        match down {
            Ok(out) if out.status.success() => {}
            Ok(out) => eprintln!(
                "node down {} failed ({}): {}",
                self.name,
                out.status,
                text(&out.stderr)
            ),
            Err(e) => eprintln!("cannot run node down {}: {e}", self.name),
        }
    }
}

#[test]
fn node_names_fit_the_script() {
    let ok = |s: &str| {
        s.len() <= MAX_NAME
            && s.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    };
    for prefix in [
        "smoke",
        "",
        "-x",
        "Switch_Rollback",
        "a-very-long-prefix-for-a-node-name",
    ] {
        let name = node_name(prefix, 4_194_304, 12);
        assert!(ok(&name), "{prefix:?} gave {name:?}");
        assert!(name.ends_with("-4194304-12"), "{name}");
    }
    assert_eq!(node_name("smoke", 42, 0), "smoke-42-0");
}

//! Users and groups: created with `useradd` and `groupadd` (never modified,
//! never deleted), and names resolved to ids from the root's own
//! `/etc/passwd` and `/etc/group`, never through this machine's NSS.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use archy_graph::resource::{GroupSpec, UserSpec};

use crate::error::{Error, Result};

/// The account tables of a root.
#[derive(Debug, Clone, Default)]
pub(crate) struct Accounts {
    /// user -> (uid, primary gid)
    pub users: BTreeMap<String, (u32, u32)>,
    pub groups: BTreeMap<String, u32>,
    pub passwd: PathBuf,
    pub group: PathBuf,
}

fn read_table(path: &Path) -> Result<String> {
    match fs::read_to_string(path) {
        Ok(t) => Ok(t),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(Error::io("read", path)(e)),
    }
}

impl Accounts {
    /// Reads `<root>/etc/passwd` and `<root>/etc/group` (missing ones are
    /// empty: a bare image root has only what archy creates).
    pub fn load(root: &Path) -> Result<Accounts> {
        let passwd = root.join("etc/passwd");
        let group = root.join("etc/group");
        let mut users = BTreeMap::new();
        for line in read_table(&passwd)?.lines() {
            let f: Vec<&str> = line.split(':').collect();
            if let (Some(name), Some(uid), Some(gid)) = (f.first(), f.get(2), f.get(3))
                && let (Ok(uid), Ok(gid)) = (uid.parse(), gid.parse())
            {
                users.entry(name.to_string()).or_insert((uid, gid));
            }
        }
        let mut groups = BTreeMap::new();
        for line in read_table(&group)?.lines() {
            let f: Vec<&str> = line.split(':').collect();
            if let (Some(name), Some(gid)) = (f.first(), f.get(2))
                && let Ok(gid) = gid.parse()
            {
                groups.entry(name.to_string()).or_insert(gid);
            }
        }
        Ok(Accounts {
            users,
            groups,
            passwd,
            group,
        })
    }

    /// The uid of `owner` (root when none is given).
    pub fn uid(&self, owner: Option<&str>, path: &str) -> Result<u32> {
        let Some(name) = owner else { return Ok(0) };
        self.users
            .get(name)
            .map(|(uid, _)| *uid)
            .ok_or_else(|| Error::UnknownAccount {
                path: path.to_string(),
                what: "owner",
                name: name.to_string(),
                table: self.passwd.display().to_string(),
                constructor: "user",
            })
    }

    /// The gid of `group` (root when none is given).
    pub fn gid(&self, group: Option<&str>, path: &str) -> Result<u32> {
        let Some(name) = group else { return Ok(0) };
        self.groups
            .get(name)
            .copied()
            .ok_or_else(|| Error::UnknownAccount {
                path: path.to_string(),
                what: "group",
                name: name.to_string(),
                table: self.group.display().to_string(),
                constructor: "group",
            })
    }
}

/// Where a shadow tool is: PATH first, then the usual sbin folders (PATH
/// of a non-login root shell often lacks them).
fn find_tool(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

fn run(
    tool: &'static str,
    what: &'static str,
    name: &str,
    root: &Path,
    mut args: Vec<String>,
) -> Result<()> {
    let exe = find_tool(tool).ok_or_else(|| Error::ToolMissing {
        what,
        name: name.to_string(),
        tool,
    })?;
    if root != Path::new("/") {
        args.splice(0..0, ["--root".to_string(), root.display().to_string()]);
    }
    args.push(name.to_string());
    let command = format!("{tool} {}", args.join(" "));
    tracing::info!(%command, "creating {what} {name}");
    let out = Command::new(&exe)
        .args(&args)
        .output()
        .map_err(|e| Error::Account {
            what,
            name: name.to_string(),
            command: command.clone(),
            status: "not started".into(),
            stderr: e.to_string(),
        })?;
    if out.status.success() {
        return Ok(());
    }
    Err(Error::Account {
        what,
        name: name.to_string(),
        command,
        status: out.status.to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
    })
}

/// `groupadd --system [--gid N] [--root R] NAME`.
pub(crate) fn create_group(root: &Path, g: &GroupSpec) -> Result<()> {
    let mut args = vec!["--system".to_string()];
    if let Some(gid) = g.gid {
        args.extend(["--gid".into(), gid.to_string()]);
    }
    run("groupadd", "group", g.name.as_str(), root, args)
}

/// `useradd [--system] [--uid N] (--gid G | --user-group)
/// (--no-create-home | --create-home --home-dir H) [--root R] NAME`.
pub(crate) fn create_user(root: &Path, u: &UserSpec, accounts: &Accounts) -> Result<()> {
    let name = u.name.as_str();
    let mut args = Vec::new();
    if u.system {
        args.push("--system".to_string());
        args.extend(["--shell".into(), "/usr/sbin/nologin".into()]);
    }
    if let Some(uid) = u.uid {
        args.extend(["--uid".into(), uid.to_string()]);
    }
    match &u.group {
        Some(g) => args.extend(["--gid".into(), g.to_string()]),
        // A group of the user's name: join it if it exists, else make it
        // (login.defs' USERGROUPS_ENAB is not relied upon).
        None if accounts.groups.contains_key(name) => {
            args.extend(["--gid".into(), name.to_string()]);
        }
        None => args.push("--user-group".into()),
    }
    match &u.home {
        Some(home) => args.extend([
            "--create-home".into(),
            "--home-dir".into(),
            home.to_string(),
        ]),
        None => args.push("--no-create-home".into()),
    }
    run("useradd", "user", name, root, args)
}

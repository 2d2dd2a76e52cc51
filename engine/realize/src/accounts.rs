//! Users and groups: created with `useradd` and `groupadd` (never deleted),
//! and names resolved to ids from the root's own `/etc/passwd` and
//! `/etc/group`, never through this machine's NSS.
//!
//! The one change made to an existing user is adding it to the
//! supplementary groups it is declared with (`usermod --append --groups`).
//! archy never takes a user out of a group: it cannot tell a membership it
//! added from one an admin or a package did, and removing the wrong one
//! locks a service out of its files. Dropping a group from `groups` leaves
//! the membership as it is.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use archy_graph::names::AccountName;
use archy_graph::resource::{GroupSpec, UserSpec};

use crate::error::{Error, Result};

/// The account tables of a root.
#[derive(Debug, Clone, Default)]
pub(crate) struct Accounts {
    /// user -> (uid, primary gid)
    pub users: BTreeMap<String, (u32, u32)>,
    pub groups: BTreeMap<String, u32>,
    /// group -> the users listed as its members (not those that have it
    /// as their primary group)
    pub members: BTreeMap<String, BTreeSet<String>>,
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
        let mut members = BTreeMap::new();
        for line in read_table(&group)?.lines() {
            let f: Vec<&str> = line.split(':').collect();
            if let (Some(name), Some(gid)) = (f.first(), f.get(2))
                && let Ok(gid) = gid.parse()
                && !groups.contains_key(*name)
            {
                groups.insert(name.to_string(), gid);
                let listed = f.get(3).map_or("", |m| m.trim());
                let names = listed.split(',').filter(|m| !m.is_empty());
                members.insert(name.to_string(), names.map(String::from).collect());
            }
        }
        Ok(Accounts {
            users,
            groups,
            members,
            passwd,
            group,
        })
    }

    /// Whether `user` is in `group`: listed as a member, or having it as
    /// its primary group.
    pub fn in_group(&self, user: &str, group: &str) -> bool {
        let listed = self.members.get(group).is_some_and(|m| m.contains(user));
        let primary = match (self.users.get(user), self.groups.get(group)) {
            (Some((_, gid)), Some(g)) => gid == g,
            _ => false,
        };
        listed || primary
    }

    /// The first of `u`'s supplementary groups that the root does not have,
    /// as an error that says how to declare it.
    fn check_groups(&self, u: &UserSpec) -> Result<()> {
        match u
            .groups
            .iter()
            .find(|g| !self.groups.contains_key(g.as_str()))
        {
            None => Ok(()),
            Some(g) => Err(Error::UnknownGroup {
                user: u.name.to_string(),
                group: g.to_string(),
                table: self.group.display().to_string(),
            }),
        }
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

    /// The name of user `uid`, or the number when the table has none.
    pub fn user_name(&self, uid: u32) -> String {
        self.users
            .iter()
            .find(|(_, (u, _))| *u == uid)
            .map_or_else(|| uid.to_string(), |(name, _)| name.clone())
    }

    /// The name of group `gid`, or the number when the table has none.
    pub fn group_name(&self, gid: u32) -> String {
        self.groups
            .iter()
            .find(|(_, g)| **g == gid)
            .map_or_else(|| gid.to_string(), |(name, _)| name.clone())
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

/// What a shadow tool is run for, for logs and errors: `create user` svc.
struct Task<'a> {
    tool: &'static str,
    /// `create user`, `create group`, `add groups to user`.
    doing: &'static str,
    name: &'a str,
}

fn run(task: Task<'_>, root: &Path, mut args: Vec<String>) -> Result<()> {
    let Task { tool, doing, name } = task;
    let exe = find_tool(tool).ok_or_else(|| Error::ToolMissing {
        task: doing,
        name: name.to_string(),
        tool,
    })?;
    if root != Path::new("/") {
        args.splice(0..0, ["--root".to_string(), root.display().to_string()]);
    }
    args.push(name.to_string());
    let command = format!("{tool} {}", args.join(" "));
    tracing::info!(%command, "{doing} {name}");
    let failed = |status: String, stderr: String| Error::Account {
        task: doing,
        name: name.to_string(),
        command: command.clone(),
        status,
        stderr,
    };
    let out = Command::new(&exe)
        .args(&args)
        .output()
        .map_err(|e| failed("not started".into(), e.to_string()))?;
    if out.status.success() {
        return Ok(());
    }
    Err(failed(
        out.status.to_string(),
        String::from_utf8_lossy(&out.stderr).trim().to_string(),
    ))
}

/// `groupadd --system [--gid N] [--root R] NAME`.
pub(crate) fn create_group(root: &Path, g: &GroupSpec) -> Result<()> {
    let mut args = vec!["--system".to_string()];
    if let Some(gid) = g.gid {
        args.extend(["--gid".into(), gid.to_string()]);
    }
    let task = Task {
        tool: "groupadd",
        doing: "create group",
        name: g.name.as_str(),
    };
    run(task, root, args)
}

/// `useradd [--system] [--uid N] (--gid G | --user-group) [--groups A,B]
/// (--no-create-home | --create-home --home-dir H) [--root R] NAME`.
/// Groups are made before users, so the supplementary groups are there.
pub(crate) fn create_user(root: &Path, u: &UserSpec, accounts: &Accounts) -> Result<()> {
    accounts.check_groups(u)?;
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
    if !u.groups.is_empty() {
        args.extend(["--groups".into(), comma_list(&u.groups)]);
    }
    match &u.home {
        Some(home) => args.extend([
            "--create-home".into(),
            "--home-dir".into(),
            home.to_string(),
        ]),
        None => args.push("--no-create-home".into()),
    }
    let task = Task {
        tool: "useradd",
        doing: "create user",
        name,
    };
    run(task, root, args)
}

fn comma_list(names: &[AccountName]) -> String {
    names
        .iter()
        .map(AccountName::as_str)
        .collect::<Vec<_>>()
        .join(",")
}

/// Adds the existing user `u` to those of its supplementary groups it is
/// not in yet: `usermod --append --groups A,B [--root R] NAME`. Returns the
/// groups added (none: nothing was run). Never removes a membership (see
/// the module's comment).
pub(crate) fn add_to_groups(
    root: &Path,
    u: &UserSpec,
    accounts: &Accounts,
) -> Result<Vec<AccountName>> {
    let name = u.name.as_str();
    let missing: Vec<AccountName> = u
        .groups
        .iter()
        .filter(|g| !accounts.in_group(name, g.as_str()))
        .cloned()
        .collect();
    if missing.is_empty() {
        return Ok(missing);
    }
    accounts.check_groups(u)?;
    let args = vec!["--append".into(), "--groups".into(), comma_list(&missing)];
    let task = Task {
        tool: "usermod",
        doing: "add groups to user",
        name,
    };
    run(task, root, args)?;
    Ok(missing)
}

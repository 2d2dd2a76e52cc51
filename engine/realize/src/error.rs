//! What can go wrong while realizing a plan. Every message names the path
//! (or account, or secret) and says what to do; none carries a secret's
//! value, because no value ever reaches an error.

use std::io;
use std::path::Path;

/// A realizer error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file system operation failed.
    #[error("cannot {action} {path}: {}{}", describe(source), hint(source))]
    Io {
        /// What archy was doing: `write`, `create directory`, `remove`, ...
        action: &'static str,
        /// The path on this machine (under the root prefix).
        path: String,
        #[source]
        source: io::Error,
    },
    /// The plan has refusals; a plan with refusals is never applied.
    #[error(
        "the plan refuses to touch {}, which exist and which archy did not write; move them away, or switch with --adopt to back them up and take them over",
        ids.join(", ")
    )]
    Refused { ids: Vec<String> },
    /// A path that archy's ownership record does not list is in the way.
    #[error(
        "refusing to {action} {path}: it exists and archy did not write it; move it away, or switch with --adopt to back it up and take it over"
    )]
    NotOwned { action: &'static str, path: String },
    /// Something that cannot be backed up sits at a path to adopt.
    #[error(
        "cannot adopt {path}: it is a {what}, and only files and symbolic links can be backed up; move it away and switch again"
    )]
    CannotAdopt { path: String, what: &'static str },
    /// An owner or group name that the root's account tables do not have.
    #[error(
        "cannot set the {what} of {path}: there is no {what} named {name:?} in {table}; declare it with {constructor}(\"{name}\", #{{}}) or use an existing name"
    )]
    UnknownAccount {
        path: String,
        /// `owner` or `group`.
        what: &'static str,
        name: String,
        table: String,
        /// `user` or `group`, the constructor that declares one.
        constructor: &'static str,
    },
    /// A supplementary group of a user that the root's group table lacks.
    #[error(
        "cannot add user {user} to group {group:?}: there is no such group in {table}; declare it with group(\"{group}\", #{{}}), or remove it from the user's `groups`"
    )]
    UnknownGroup {
        user: String,
        group: String,
        table: String,
    },
    /// `useradd`, `groupadd` or `usermod` failed.
    #[error("cannot {task} {name}: `{command}` failed ({status}): {stderr}")]
    Account {
        /// `create user`, `create group`, `add groups to user`.
        task: &'static str,
        name: String,
        command: String,
        status: String,
        stderr: String,
    },
    /// `useradd`, `groupadd` or `usermod` is not installed.
    #[error(
        "cannot {task} {name}: {tool} was not found in PATH, /usr/sbin or /sbin; install the passwd package (shadow-utils)"
    )]
    ToolMissing {
        task: &'static str,
        name: String,
        tool: &'static str,
    },
    /// A file of the graph whose text is not in the graph's blob table.
    #[error(
        "cannot write {path}: its content {digest} is not in the generation; rebuild it with `archy build` and switch again"
    )]
    MissingContent { path: String, digest: String },
    /// An artifact or tree cannot be installed from the store.
    #[error("cannot install {path}: {why}")]
    Software { path: String, why: String },
    /// A file derived from a secret could not be filled in.
    #[error("cannot write {path}: {why}")]
    Derive { path: String, why: String },
    /// A resource of the plan that the new graph does not have.
    #[error(
        "the plan names {key}, which the new generation does not declare; plan again against this generation"
    )]
    NotInGraph { key: archy_graph::ResourceKey },
    /// An [Install] value that is not a unit name.
    #[error(
        "unit {unit}: {key}={value} is not a unit name, so it cannot be enabled; fix the [Install] section"
    )]
    BadInstall {
        unit: String,
        key: &'static str,
        value: String,
    },
    /// The ownership record cannot be read.
    #[error(
        "cannot read archy's ownership record {path}: {detail}; restore it from a backup, or move it away (archy then owns nothing and refuses every existing path)"
    )]
    Record { path: String, detail: String },
    /// The system's random source failed.
    #[error(
        "cannot generate secret {name}: the system's random source failed ({detail}); check /dev/urandom and switch again"
    )]
    Random { name: String, detail: String },
    /// A record of the state dir (the ownership record) that a newer archy
    /// wrote.
    #[error(transparent)]
    NewerRecord(#[from] archy_store::NewerFormat),
}

impl Error {
    pub(crate) fn io(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> Error {
        let path = path.display().to_string();
        move |source| Error::Io {
            action,
            path,
            source,
        }
    }
}

/// "Read-only file system (os error 30)" -> "read-only file system".
fn describe(e: &io::Error) -> String {
    let text = e.to_string();
    let text = match text.find(" (os error") {
        Some(i) => &text[..i],
        None => &text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// What to do about an I/O error, as a sentence after the cause.
fn hint(e: &io::Error) -> &'static str {
    match e.kind() {
        io::ErrorKind::ReadOnlyFilesystem => {
            "; remount it read-write, or realize into another --root"
        }
        io::ErrorKind::PermissionDenied => "; run archy as root",
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => {
            "; free some space and switch again"
        }
        io::ErrorKind::NotADirectory => "; a parent of it is not a directory: move that away",
        io::ErrorKind::IsADirectory => "; a directory is in the way: move it away",
        _ => "",
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

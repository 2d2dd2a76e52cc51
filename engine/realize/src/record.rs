//! archy's ownership record, `<state>/owned.json`: every path archy
//! wrote on the node and every backup it keeps of an adopted path. archy
//! never modifies or deletes a target path that the record does not list.
//!
//! The record is rewritten atomically after each step. A path is recorded
//! *before* it is first written (a crash in between leaves a recorded path
//! that does not exist, which is harmless) and forgotten *after* it is
//! removed, so a crash never leaves archy's own files unaccounted for.

use std::collections::BTreeMap;
use std::fs;

use archy_store::versioned::{self, FIRST_FORMAT, RecordError};
use archy_store::{StateDir, VersionedRecord};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::fsops;

/// What an owned path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OwnedKind {
    /// A file of the graph.
    File,
    /// `/etc/systemd/system/<unit>`.
    UnitFile,
    /// An [Install] symlink (`.wants/`, `.requires/`, `.upholds/`, alias).
    Link,
    /// A directory of the graph.
    Dir,
    /// A directory archy made only because a file needed it.
    Parent,
}

/// One path in the record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnedPath {
    pub kind: OwnedKind,
    /// For a link: the unit it enables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// For an adopted path: its backup's file name under
    /// `<state_dir>/adopted/`, restored when archy lets go of the path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<String>,
    /// For a directory: false when it existed before archy managed it
    /// (archy then sets its mode and owner but never removes it).
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub created: bool,
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

impl OwnedPath {
    pub(crate) fn new(kind: OwnedKind) -> Self {
        OwnedPath {
            kind,
            unit: None,
            backup: None,
            created: true,
        }
    }
}

/// A secret archy generated: the declaration it was generated for, so a
/// bumped version (or length) is told from a value already in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretRecord {
    pub version: u32,
    pub length: u32,
}

/// The whole record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Always 1: before records named their format ([`VersionedRecord`])
    /// this said it, and an older archy refuses a record without it.
    pub version: u32,
    /// Node paths (as the graph names them, without the root prefix).
    pub paths: BTreeMap<String, OwnedPath>,
    /// Accounts archy created, as `user NAME` or `group NAME` (it never
    /// deletes one).
    #[serde(default)]
    pub accounts: Vec<String>,
    /// Secrets archy generated, by name; the values live in
    /// `<state_dir>/secrets/<name>`.
    #[serde(default)]
    pub secrets: BTreeMap<String, SecretRecord>,
}

pub(crate) const RECORD_VERSION: u32 = 1;

/// Format 1 is the record of the archy that first kept one.
impl VersionedRecord for Record {
    const WHAT: &'static str = "archy's ownership record";
    const FORMAT: u32 = FIRST_FORMAT;
}

impl Record {
    /// Reads the record; a missing one is empty (archy owns nothing yet).
    pub(crate) fn load(state_dir: &StateDir) -> Result<Record> {
        let path = state_dir.owned();
        let record = match versioned::read::<Record>(&path) {
            Ok(Some(record)) => record,
            Ok(None) => {
                return Ok(Record {
                    version: RECORD_VERSION,
                    ..Record::default()
                });
            }
            Err(RecordError::Io(e)) => return Err(Error::io("read", &path)(e)),
            Err(RecordError::Parse(e)) => {
                return Err(Error::Record {
                    path: path.display().to_string(),
                    detail: e.to_string(),
                });
            }
            Err(RecordError::Newer(newer)) => return Err(newer.into()),
        };
        if record.version != RECORD_VERSION {
            return Err(Error::Record {
                path: path.display().to_string(),
                detail: format!(
                    "it is version {}, this archy reads version {RECORD_VERSION}",
                    record.version
                ),
            });
        }
        Ok(record)
    }

    /// Writes the record atomically.
    pub(crate) fn save(&self, state_dir: &StateDir) -> Result<()> {
        let path = state_dir.owned();
        let state = state_dir.path();
        fs::create_dir_all(state).map_err(|e| Error::io("create directory", state)(e))?;
        let text = versioned::encode(self).map_err(|e| Error::Record {
            path: path.display().to_string(),
            detail: e.to_string(),
        })?;
        fsops::write_file(&path, &text, 0o644, 0, 0)
    }

    /// True when archy wrote `node_path` (a node path, without the root).
    pub fn owns(&self, node_path: &str) -> bool {
        self.paths.contains_key(node_path)
    }
}

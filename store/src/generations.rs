//! Generation records: `generations/<N>`, one JSON file per build of the
//! node, naming the graph root and every object the generation needs.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::path::PathBuf;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::Store;
use crate::atomic::{self, Placed};
use crate::digest::Digest;
use crate::error::{Result, StoreError};
use crate::objects::ObjectId;
use crate::versioned::{self, FIRST_FORMAT, NewerFormat, RecordError, VersionedRecord};

/// How far a generation got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Built into the store, never switched to (or the switch is running).
    Built,
    /// Switched to and passed its health checks.
    Good,
    /// Switched to and failed its health checks.
    Failed,
    /// Switched to, then switched away from by a rollback.
    RolledBack,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Built => "built",
            Self::Good => "good",
            Self::Failed => "failed",
            Self::RolledBack => "rolled-back",
        })
    }
}

/// One generation, as stored in `generations/<N>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerationRecord {
    /// N, the same as in the file name.
    pub number: u64,
    /// The graph's root hash (64 hex digits); opaque to the store, it only
    /// tells whether two builds are the same.
    pub root: String,
    /// When the generation was recorded, RFC 3339 in UTC.
    pub created: String,
    /// Where the description came from: a node file path, "ota release 1.2.0".
    pub source: String,
    /// The host facts the evaluation used.
    #[serde(default)]
    pub facts: BTreeMap<String, serde_json::Value>,
    /// How far the generation got.
    pub outcome: Outcome,
    /// Why, for `failed` and `rolled-back` (which check failed, say).
    #[serde(default)]
    pub outcome_reason: Option<String>,
    /// Every object this generation needs (its closure); GC keeps these.
    pub objects: Vec<ObjectId>,
    /// The object holding the graph itself.
    pub graph: ObjectId,
}

impl GenerationRecord {
    /// Every object the generation keeps alive: its closure and its graph.
    pub fn referenced_objects(&self) -> impl Iterator<Item = &ObjectId> {
        self.objects.iter().chain(std::iter::once(&self.graph))
    }
}

/// What a build knows about a generation; the store adds the number, the
/// time and the outcome ([`Outcome::Built`]).
#[derive(Debug, Clone, PartialEq)]
pub struct GenerationDraft {
    /// The graph's root hash (64 lowercase hex digits).
    pub root: String,
    /// Where the description came from.
    pub source: String,
    /// The host facts the evaluation used.
    pub facts: BTreeMap<String, serde_json::Value>,
    /// Every object the generation needs; all must be in the store already.
    pub objects: Vec<ObjectId>,
    /// The object holding the graph; must be in the store already.
    pub graph: ObjectId,
}

/// A generation record that exists but cannot be read or parsed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BrokenRecord {
    /// N, from the file name.
    pub number: u64,
    /// The record's path.
    pub path: PathBuf,
    /// Why it could not be read.
    pub reason: String,
}

impl From<BrokenRecord> for StoreError {
    fn from(broken: BrokenRecord) -> Self {
        Self::BrokenRecord {
            number: broken.number,
            path: broken.path,
            reason: broken.reason,
        }
    }
}

/// Why a generation record could not be loaded.
#[derive(Debug)]
enum Unloadable {
    /// It cannot be read or parsed.
    Broken(BrokenRecord),
    /// A newer archy wrote it.
    Newer(NewerFormat),
}

impl From<BrokenRecord> for Unloadable {
    fn from(broken: BrokenRecord) -> Self {
        Self::Broken(broken)
    }
}

impl From<Unloadable> for StoreError {
    fn from(unloadable: Unloadable) -> Self {
        match unloadable {
            Unloadable::Broken(broken) => broken.into(),
            Unloadable::Newer(newer) => newer.into(),
        }
    }
}

impl VersionedRecord for GenerationRecord {
    const WHAT: &'static str = "the generation record";
    const FORMAT: u32 = FIRST_FORMAT;
}

/// One entry of the generation listing. A broken record is listed rather
/// than failing the listing: one bad file must not hide the generations an
/// operator could roll back to.
#[derive(Debug, Clone, PartialEq)]
pub enum GenerationEntry {
    /// A record that parsed.
    Valid(GenerationRecord),
    /// A record that did not.
    Broken(BrokenRecord),
}

impl GenerationEntry {
    /// The generation number.
    pub fn number(&self) -> u64 {
        match self {
            Self::Valid(record) => record.number,
            Self::Broken(broken) => broken.number,
        }
    }

    /// The record, if it parsed.
    pub fn record(&self) -> Option<&GenerationRecord> {
        match self {
            Self::Valid(record) => Some(record),
            Self::Broken(_) => None,
        }
    }
}

impl Store {
    /// The path of generation `number`'s record.
    pub fn generation_path(&self, number: u64) -> PathBuf {
        self.state_dir.generation(number)
    }

    /// Every generation, oldest first; unparsable records are listed as
    /// broken. Temp files and names that are not numbers are skipped.
    pub fn generations(&self) -> Result<Vec<GenerationEntry>> {
        let mut entries = Vec::new();
        for number in self.generation_numbers()? {
            entries.push(match self.load(number) {
                Ok(record) => GenerationEntry::Valid(record),
                Err(Unloadable::Broken(broken)) => GenerationEntry::Broken(broken),
                // Listed as broken for this archy, the reason saying so.
                Err(Unloadable::Newer(newer)) => GenerationEntry::Broken(BrokenRecord {
                    number,
                    path: newer.path.clone(),
                    reason: newer.to_string(),
                }),
            });
        }
        Ok(entries)
    }

    /// The record of generation `number`.
    pub fn generation(&self, number: u64) -> Result<GenerationRecord> {
        if !self.generation_exists(number)? {
            return Err(StoreError::NoSuchGeneration {
                number,
                path: self.generation_path(number),
            });
        }
        self.load(number).map_err(StoreError::from)
    }

    /// Records a new generation for `draft` and returns it. If a generation
    /// with the same root exists it is returned unchanged and nothing is
    /// written: building the same inputs again is not a new generation.
    ///
    /// Every object the draft lists must be in the store, so that a record
    /// never points at missing objects.
    pub fn record_generation(&self, draft: GenerationDraft) -> Result<GenerationRecord> {
        draft
            .root
            .parse::<Digest>()
            .map_err(StoreError::InvalidRoot)?;
        let existing = self.generations()?;
        if let Some(same) = existing
            .iter()
            .filter_map(GenerationEntry::record)
            .find(|record| record.root == draft.root)
        {
            return Ok(same.clone());
        }
        self.check_objects_present(&draft)?;
        let next = existing.last().map_or(1, |entry| entry.number() + 1);
        self.write_new_record(draft, next)
    }

    /// Rewrites generation `number` with a new outcome (atomically: readers
    /// see the old record or the new one).
    pub fn set_outcome(
        &self,
        number: u64,
        outcome: Outcome,
        reason: Option<String>,
    ) -> Result<GenerationRecord> {
        let mut record = self.generation(number)?;
        record.outcome = outcome;
        record.outcome_reason = reason;
        let temp = self.write_temp_record(&record)?;
        atomic::place_replacing(temp, &self.generation_path(number), &self.generations_dir)?;
        atomic::sync_dir(&self.generations_dir)?;
        Ok(record)
    }

    /// The numbers of all records on disk, ascending.
    fn generation_numbers(&self) -> Result<Vec<u64>> {
        let mut numbers = Vec::new();
        for entry in atomic::read_dir(&self.generations_dir)? {
            let entry =
                entry.map_err(|err| StoreError::read("list", &self.generations_dir, err))?;
            match entry.file_name().to_str().and_then(parse_number) {
                Some(number) => numbers.push(number),
                None if atomic::is_temp_name(&entry.file_name()) => {}
                None => {
                    tracing::warn!(path = %entry.path().display(), "not a generation record; ignored")
                }
            }
        }
        numbers.sort_unstable();
        Ok(numbers)
    }

    /// Whether generation `number` has a record (parsable or not).
    fn generation_exists(&self, number: u64) -> Result<bool> {
        let path = self.generation_path(number);
        path.try_exists()
            .map_err(|err| StoreError::read("look for", &path, err))
    }

    /// Reads and parses generation `number`; any failure but a newer
    /// format makes it broken.
    fn load(&self, number: u64) -> Result<GenerationRecord, Unloadable> {
        let path = self.generation_path(number);
        let broken = |reason: String| BrokenRecord {
            number,
            path: path.clone(),
            reason,
        };
        let bytes = fs::read(&path).map_err(|err| broken(format!("cannot read it: {err}")))?;
        let record: GenerationRecord =
            versioned::decode(&path, &bytes).map_err(|err| match err {
                RecordError::Newer(newer) => Unloadable::Newer(newer),
                RecordError::Parse(err) => broken(format!("not a valid record: {err}")).into(),
                RecordError::Io(err) => broken(format!("cannot read it: {err}")).into(),
            })?;
        if record.number != number {
            return Err(broken(format!(
                "it says it is generation {} but its file name says {number}",
                record.number
            ))
            .into());
        }
        Ok(record)
    }

    /// Fails unless every object `draft` refers to is in the store.
    fn check_objects_present(&self, draft: &GenerationDraft) -> Result<()> {
        let mut missing = Vec::new();
        for id in draft.objects.iter().chain(std::iter::once(&draft.graph)) {
            if !self.contains(id)? {
                missing.push(id.clone());
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        Err(StoreError::MissingObjects {
            missing,
            store: self.objects_dir.clone(),
        })
    }

    /// Writes `draft` as a new record numbered `first` or, if a concurrent
    /// writer took that number, the next free one. No-clobber renames make
    /// it impossible to overwrite another generation.
    fn write_new_record(&self, draft: GenerationDraft, first: u64) -> Result<GenerationRecord> {
        let mut record = GenerationRecord {
            number: first,
            root: draft.root,
            created: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
            source: draft.source,
            facts: draft.facts,
            outcome: Outcome::Built,
            outcome_reason: None,
            objects: draft.objects,
            graph: draft.graph,
        };
        loop {
            let temp = self.write_temp_record(&record)?;
            let target = self.generation_path(record.number);
            match atomic::place_noclobber(temp, &target, &self.generations_dir)? {
                Placed::Renamed => break,
                Placed::AlreadyThere => record.number += 1,
            }
        }
        atomic::sync_dir(&self.generations_dir)?;
        Ok(record)
    }

    /// A flushed temp file in `generations/` holding `record` as JSON.
    fn write_temp_record(&self, record: &GenerationRecord) -> Result<tempfile::NamedTempFile> {
        let dir = &self.generations_dir;
        let json = versioned::encode(record)
            .map_err(|err| StoreError::write("encode a record for", dir, io::Error::other(err)))?;
        let mut temp = atomic::create_temp(dir)?;
        temp.write_all(&json)
            .map_err(|err| StoreError::write("write a temp file in", dir, err))?;
        atomic::sync_file(&temp, dir)?;
        Ok(temp)
    }
}

/// A generation number from a file name: decimal, positive, no leading
/// zeros (so that each number has exactly one file name).
fn parse_number(name: &str) -> Option<u64> {
    let canonical = !name.is_empty()
        && name.bytes().all(|byte| byte.is_ascii_digit())
        && !name.starts_with('0');
    canonical.then(|| name.parse().ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_only_canonical_numbers() {
        assert_eq!(parse_number("1"), Some(1));
        assert_eq!(parse_number("42"), Some(42));
        for bad in [
            "",
            "0",
            "01",
            "-1",
            "+1",
            "1a",
            ".tmp-1",
            "99999999999999999999999",
        ] {
            assert_eq!(parse_number(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn outcome_serializes_kebab_case() -> Result<(), serde_json::Error> {
        assert_eq!(
            serde_json::to_string(&Outcome::RolledBack)?,
            "\"rolled-back\""
        );
        assert_eq!(Outcome::RolledBack.to_string(), "rolled-back");
        assert_eq!(serde_json::from_str::<Outcome>("\"good\"")?, Outcome::Good);
        Ok(())
    }
}

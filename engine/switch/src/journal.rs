//! The switch journal, `<state>/switch.json`: written before the first
//! change of a switch and updated as it goes, removed when the switch is
//! committed or rolled back. Finding it at start-up means a switch was
//! interrupted (a crash, a kill, a power cut): recovery reads it to finish
//! or undo that switch, so the node ends in the old generation or the new
//! one, never between.

use std::fs::{self, File};
use std::path::PathBuf;

use archy_plan::Plan;
use archy_store::versioned::{self, FIRST_FORMAT, RecordError};
use archy_store::{NewerFormat, StateDir, VersionedRecord};
use serde::{Deserialize, Serialize};

/// Which step a switch had reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// The plan is recorded; nothing on the node has changed yet.
    Planned,
    /// Stopping units, writing files, reloading systemd, starting units.
    Applying,
    /// Everything is applied; the health checks are running.
    HealthGate,
    /// The new generation failed; going back to `back_to`.
    RollingBack,
}

/// What a switch in flight is doing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journal {
    /// The generation the node was on (none before the first switch).
    pub from: Option<u64>,
    /// The generation being switched to.
    pub to: u64,
    /// Where a failure goes back to: the last known good generation.
    pub back_to: Option<u64>,
    pub phase: Phase,
    /// What the switch does, as planned before the first change.
    pub plan: Plan,
    /// Unit actions finished so far, in order.
    pub done: Vec<String>,
    /// Who started it: `archy switch`, `archy rollback`, `archy ota apply`.
    pub command: String,
}

/// Why the journal could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("cannot write the switch journal {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read the switch journal {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the switch journal {path} is damaged ({source}); archy cannot tell what the interrupted switch did"
    )]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    /// A newer archy's switch was interrupted: this one cannot finish it.
    #[error(transparent)]
    Newer(#[from] NewerFormat),
}

/// Format 1 is the journal of the archy that first journaled switches.
impl VersionedRecord for Journal {
    const WHAT: &'static str = "the switch journal";
    const FORMAT: u32 = FIRST_FORMAT;
}

impl Journal {
    /// Writes the journal atomically: a reader (or a recovery after a
    /// crash) sees the previous version or this one, never a torn file.
    pub fn save(&self, state_dir: &StateDir) -> Result<(), JournalError> {
        let path = state_dir.switch_journal();
        versioned::write(&path, self, 0o644).map_err(|source| JournalError::Write { path, source })
    }

    /// The journal of an interrupted switch, if there is one.
    pub fn load(state_dir: &StateDir) -> Result<Option<Journal>, JournalError> {
        let path = state_dir.switch_journal();
        versioned::read(&path).map_err(|err| match err {
            RecordError::Io(source) => JournalError::Read { path, source },
            RecordError::Parse(source) => JournalError::Parse { path, source },
            RecordError::Newer(newer) => newer.into(),
        })
    }

    /// Ends the switch: removes the journal (durably).
    pub fn finish(state_dir: &StateDir) -> Result<(), JournalError> {
        let target = state_dir.switch_journal();
        let err = |source| JournalError::Write {
            path: target.clone(),
            source,
        };
        match fs::remove_file(&target) {
            Ok(()) => File::open(state_dir.path())
                .and_then(|d| d.sync_all())
                .map_err(err),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(err(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn journal() -> Journal {
        Journal {
            from: Some(1),
            to: 2,
            back_to: Some(1),
            phase: Phase::Planned,
            plan: Plan {
                changes: vec![],
                images: vec![],
                unit_files_changed: vec![archy_units::UnitFile {
                    unit: "a.service".try_into().unwrap(),
                    path: "/etc/systemd/system/a.service".into(),
                }],
                units: vec![],
                unchanged: 3,
            },
            done: vec![],
            command: "archy switch".into(),
        }
    }

    #[test]
    fn save_load_finish() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        assert_eq!(Journal::load(&state).unwrap(), None);
        let mut j = journal();
        j.save(&state).unwrap();
        assert_eq!(Journal::load(&state).unwrap(), Some(j.clone()));
        j.phase = Phase::HealthGate;
        j.done.push("restart a.service".into());
        j.save(&state).unwrap();
        assert_eq!(
            Journal::load(&state).unwrap().unwrap().phase,
            Phase::HealthGate
        );
        Journal::finish(&state).unwrap();
        assert_eq!(Journal::load(&state).unwrap(), None);
        Journal::finish(&state).unwrap();
    }

    #[test]
    fn a_damaged_journal_is_an_error_not_a_missing_one() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        fs::write(state.switch_journal(), b"{ half").unwrap();
        let e = Journal::load(&state).unwrap_err();
        assert!(e.to_string().contains("damaged"), "{e}");
    }

    #[test]
    fn a_saved_journal_names_its_format_and_its_writer() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        journal().save(&state).unwrap();
        let text = fs::read_to_string(state.switch_journal()).unwrap();
        assert!(
            text.starts_with("{\n  \"format\": 1,\n  \"written_by\": \"archy "),
            "{text}"
        );
    }
}

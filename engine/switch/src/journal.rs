//! The switch journal, `<state>/switch.json`: written before the first
//! change of a switch and updated as it goes, removed when the switch is
//! committed or rolled back. Finding it at start-up means a switch was
//! interrupted (a crash, a kill, a power cut): recovery reads it to finish
//! or undo that switch, so the node ends in the old generation or the new
//! one, never between.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use archy_plan::Plan;
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
}

pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join("switch.json")
}

impl Journal {
    /// Writes the journal atomically: a reader (or a recovery after a
    /// crash) sees the previous version or this one, never a torn file.
    pub fn save(&self, state_dir: &Path) -> Result<(), JournalError> {
        let target = path(state_dir);
        let err = |source| JournalError::Write {
            path: target.clone(),
            source,
        };
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| err(e.into()))?;
        archy_store::replace_file(&target, &bytes, 0o644).map_err(err)
    }

    /// The journal of an interrupted switch, if there is one.
    pub fn load(state_dir: &Path) -> Result<Option<Journal>, JournalError> {
        let target = path(state_dir);
        let bytes = match fs::read(&target) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(JournalError::Read {
                    path: target,
                    source,
                });
            }
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| JournalError::Parse {
                path: target,
                source,
            })
    }

    /// Ends the switch: removes the journal (durably).
    pub fn finish(state_dir: &Path) -> Result<(), JournalError> {
        let target = path(state_dir);
        let err = |source| JournalError::Write {
            path: target.clone(),
            source,
        };
        match fs::remove_file(&target) {
            Ok(()) => File::open(state_dir)
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
                unit_files_changed: vec![archy_graph::UnitFile {
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
        assert_eq!(Journal::load(dir.path()).unwrap(), None);
        let mut j = journal();
        j.save(dir.path()).unwrap();
        assert_eq!(Journal::load(dir.path()).unwrap(), Some(j.clone()));
        j.phase = Phase::HealthGate;
        j.done.push("restart a.service".into());
        j.save(dir.path()).unwrap();
        assert_eq!(
            Journal::load(dir.path()).unwrap().unwrap().phase,
            Phase::HealthGate
        );
        Journal::finish(dir.path()).unwrap();
        assert_eq!(Journal::load(dir.path()).unwrap(), None);
        Journal::finish(dir.path()).unwrap();
    }

    #[test]
    fn a_damaged_journal_is_an_error_not_a_missing_one() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(path(dir.path()), b"{ half").unwrap();
        let e = Journal::load(dir.path()).unwrap_err();
        assert!(e.to_string().contains("damaged"), "{e}");
    }
}

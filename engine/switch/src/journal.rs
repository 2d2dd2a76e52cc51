//! The switch journal, `<state>/switch.json`: written before the first
//! change of a switch and updated as it goes, removed when the switch is
//! committed or rolled back. Finding it at start-up means a switch was
//! interrupted (a crash, a kill, a power cut): recovery reads it to finish
//! or undo that switch, so the node ends in the old generation or the new
//! one, never between.
//!
//! Format 2 adds [`Journal::rollback`]: once a switch fails, the way back
//! is journaled apart from the switch itself, so a recovery knows that a
//! rollback was in flight (and how far it got) and finishes it, rather
//! than taking the rollback's health gate for the failed generation's.

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
    /// The new generation failed; going back to `back_to`. Since format 2
    /// the rollback's own progress is in [`Journal::rollback`].
    RollingBack,
}

impl Phase {
    /// The phase as the journal spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Planned => "planned",
            Phase::Applying => "applying",
            Phase::HealthGate => "health-gate",
            Phase::RollingBack => "rolling-back",
        }
    }
}

/// The way back from a failed (or interrupted) switch, journaled on its own
/// so that its steps never pass for the switch's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rollback {
    /// Why the switch is being undone, as the failed generation records it.
    pub why: Vec<String>,
    /// The switch was cut off (a crash, a kill), rather than the new
    /// generation failing a unit job or its health gate.
    pub interrupted: bool,
    /// How far the rollback got: planned, applying or health-gate.
    pub phase: Phase,
    /// The rollback's own plan: from the failed generation to `back_to`
    /// (none until it is planned).
    pub plan: Option<Plan>,
    /// The rollback's steps finished so far, in order.
    pub done: Vec<String>,
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
    /// Set once the switch failed and is being undone: from then on
    /// `phase` is [`Phase::RollingBack`] and the steps go here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<Rollback>,
    /// Read from a format 1 journal, whose rollback overwrote the switch's
    /// phase and plan with its own: see [`Journal::upgrade`].
    #[serde(skip)]
    pub format1: bool,
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

/// Format 1 is the journal of the archy that first journaled switches;
/// format 2 journals a rollback apart ([`Journal::rollback`]).
impl VersionedRecord for Journal {
    const WHAT: &'static str = "the switch journal";
    const FORMAT: u32 = 2;

    /// A format 1 journal has the same fields but no `rollback`: a
    /// rollback in flight wrote `rolling-back` first, then its own plan and
    /// steps with `applying` and `health-gate`. Recovery tells those apart
    /// from the switch's by the failed generation's record.
    fn upgrade(format: u32, fields: serde_json::Value) -> Result<Self, serde_json::Error> {
        let mut journal = Journal::deserialize(fields)?;
        journal.format1 = format == FIRST_FORMAT;
        Ok(journal)
    }
}

impl Journal {
    /// The phase of what is in flight: the rollback's once there is one.
    pub fn step_phase(&self) -> Phase {
        self.rollback.as_ref().map_or(self.phase, |r| r.phase)
    }

    /// The rollback's plan, once it is planned.
    pub fn rollback_plan(&self) -> Option<&Plan> {
        self.rollback.as_ref().and_then(|r| r.plan.as_ref())
    }

    /// The last step finished, of the rollback once there is one.
    pub fn last_done(&self) -> Option<&str> {
        let done = self.rollback.as_ref().map_or(&self.done, |r| &r.done);
        done.last().map(String::as_str)
    }

    /// Records that the step in flight (the rollback's once there is one)
    /// reached `phase`.
    pub(crate) fn set_phase(&mut self, phase: Phase) {
        match &mut self.rollback {
            Some(r) => r.phase = phase,
            None => self.phase = phase,
        }
    }

    /// Records a finished step (the rollback's once there is one).
    pub(crate) fn push_done(&mut self, step: String) {
        match &mut self.rollback {
            Some(r) => r.done.push(step),
            None => self.done.push(step),
        }
    }

    /// Where this journal leaves the OTA release it was for, as the phase
    /// the release's settling reads: a rollback after a failure (a unit
    /// job, the health gate) is the release's failure; a rollback of a
    /// switch that was cut off is not.
    pub fn release_phase(&self) -> Phase {
        match &self.rollback {
            Some(r) if r.interrupted => Phase::Applying,
            Some(_) => Phase::RollingBack,
            None => self.phase,
        }
    }

    /// The generations this journal names (from, to, back_to): a `gc`
    /// must keep them until the switch is recovered.
    pub fn generations(&self) -> impl Iterator<Item = u64> + use<> {
        [self.from, Some(self.to), self.back_to]
            .into_iter()
            .flatten()
    }

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
                clobber: vec![],
                data: vec![],
            },
            done: vec![],
            command: "archy switch".into(),
            rollback: None,
            format1: false,
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
            text.starts_with("{\n  \"format\": 2,\n  \"written_by\": \"archy "),
            "{text}"
        );
    }

    #[test]
    fn a_rollback_is_journaled_apart_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        let mut j = journal();
        j.phase = Phase::RollingBack;
        j.done.push("start a.service".into());
        j.rollback = Some(Rollback {
            why: vec!["start a.service: failed".into()],
            interrupted: false,
            phase: Phase::Planned,
            plan: None,
            done: vec![],
        });
        j.set_phase(Phase::HealthGate);
        j.push_done("files".into());
        j.save(&state).unwrap();
        let read = Journal::load(&state).unwrap().unwrap();
        assert_eq!(read, j);
        assert!(!read.format1);
        // The switch's own phase and steps are as the failure left them.
        assert_eq!(read.phase, Phase::RollingBack);
        assert_eq!(read.done, ["start a.service"]);
        assert_eq!(read.step_phase(), Phase::HealthGate);
        assert_eq!(read.last_done(), Some("files"));
        assert_eq!(read.release_phase(), Phase::RollingBack);
        assert_eq!(read.generations().collect::<Vec<_>>(), [1, 2, 1]);
    }

    #[test]
    fn a_format_1_journal_is_read_and_marked_as_such() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        // As the archy before format 2 wrote it, mid-rollback.
        let text = r#"{
  "format": 1,
  "written_by": "archy 0.1.0",
  "from": 2,
  "to": 4,
  "back_to": 2,
  "phase": "health-gate",
  "plan": {"changes": [], "unit_files_changed": [], "units": [], "unchanged": 0},
  "done": ["files"],
  "command": "archy switch"
}"#;
        fs::write(state.switch_journal(), text).unwrap();
        let j = Journal::load(&state).unwrap().unwrap();
        assert!(j.format1);
        assert_eq!(j.rollback, None);
        assert_eq!((j.from, j.to, j.phase), (Some(2), 4, Phase::HealthGate));
        // Without the header at all: format 1 too.
        let bare = text.replace("  \"format\": 1,\n  \"written_by\": \"archy 0.1.0\",\n", "");
        fs::write(state.switch_journal(), bare).unwrap();
        assert!(Journal::load(&state).unwrap().unwrap().format1);
    }
}

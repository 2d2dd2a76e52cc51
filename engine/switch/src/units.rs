//! Carrying out the unit half of a plan through systemd: every job waits
//! for its result, and a failed one is reported with the tail of the
//! unit's journal.

use std::time::Duration;

use archy_plan::{Plan, UnitAction, UnitOp};
use archy_systemd::{JobKind, JobResult, ServiceManager, UnitName};

/// How long one unit's job may take before the switch counts it as failed.
pub const JOB_TIMEOUT: Duration = Duration::from_secs(90);

/// How many journal lines a failure report carries.
const JOURNAL_LINES: u32 = 15;

/// A unit job that did not end in `done`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitFailure {
    pub unit: UnitName,
    pub op: UnitOp,
    /// systemd's job result, or the error that stopped the job.
    pub result: String,
    /// The last lines of the unit's journal (may be empty).
    pub journal: String,
}

impl std::fmt::Display for UnitFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.op, self.unit, self.result)?;
        if !self.journal.trim().is_empty() {
            write!(f, "\n  journal of {}:", self.unit)?;
            for line in self.journal.lines() {
                write!(f, "\n    {line}")?;
            }
        }
        Ok(())
    }
}

fn job_kind(op: UnitOp) -> Option<JobKind> {
    match op {
        UnitOp::Stop => Some(JobKind::Stop),
        UnitOp::Reload => Some(JobKind::Reload),
        UnitOp::Restart => Some(JobKind::Restart),
        UnitOp::Start => Some(JobKind::Start),
        UnitOp::Skip => None,
    }
}

/// Runs one action; `Ok` when systemd says `done`.
pub fn run(
    action: &UnitAction,
    systemd: &dyn ServiceManager,
    timeout: Duration,
) -> Result<(), UnitFailure> {
    let Some(kind) = job_kind(action.op) else {
        return Ok(());
    };
    let fail = |result: String| UnitFailure {
        unit: action.unit.clone(),
        op: action.op,
        result,
        journal: systemd
            .journal_tail(&action.unit, JOURNAL_LINES)
            .unwrap_or_default(),
    };
    if matches!(action.op, UnitOp::Start | UnitOp::Restart) {
        // archy's own restarts must not trip the crash-loop start limit.
        systemd
            .reset_failed(&action.unit)
            .map_err(|e| fail(e.to_string()))?;
    }
    match systemd.run_job(kind, &action.unit, timeout) {
        Ok(JobResult::Done) => Ok(()),
        // Stopping a unit systemd no longer knows (its file is already
        // gone) leaves it stopped: that is what was asked.
        Err(archy_systemd::Error::UnitNotFound { .. }) if action.op == UnitOp::Stop => Ok(()),
        Ok(other) => Err(fail(format!("the job ended \"{}\"", other.as_str()))),
        Err(e) => Err(fail(e.to_string())),
    }
}

/// The stops of a plan, which come before any file changes.
pub fn stops(plan: &Plan) -> impl Iterator<Item = &UnitAction> {
    plan.units.iter().filter(|u| u.op == UnitOp::Stop)
}

/// The reloads, restarts and starts, which come after the files and a
/// daemon-reload, in the plan's dependency order.
pub fn starts(plan: &Plan) -> impl Iterator<Item = &UnitAction> {
    plan.units
        .iter()
        .filter(|u| matches!(u.op, UnitOp::Reload | UnitOp::Restart | UnitOp::Start))
}

#[cfg(test)]
mod tests {
    use super::*;
    use archy_plan::Reason;
    use archy_systemd::fake::{FakeServiceManager, Scripted};

    fn action(unit: &str, op: UnitOp) -> UnitAction {
        UnitAction {
            unit: UnitName::try_from(unit).unwrap(),
            op,
            reason: Reason::New,
            with: None,
        }
    }

    #[test]
    fn a_failed_job_carries_the_journal() {
        let fake = FakeServiceManager::new();
        fake.set_unit("a.service", archy_systemd::fake::inactive());
        fake.script_job(
            JobKind::Start,
            "a.service",
            Scripted::Result(JobResult::Failed),
        );
        fake.set_journal("a.service", "a.service: exited with status 1");
        let e = run(&action("a.service", UnitOp::Start), &fake, JOB_TIMEOUT).unwrap_err();
        assert_eq!(e.result, "the job ended \"failed\"");
        assert!(e.to_string().contains("exited with status 1"), "{e}");
    }

    #[test]
    fn stopping_an_unknown_unit_is_fine_and_skip_does_nothing() {
        let fake = FakeServiceManager::new();
        assert!(run(&action("gone.service", UnitOp::Stop), &fake, JOB_TIMEOUT).is_ok());
        assert!(run(&action("gone.service", UnitOp::Skip), &fake, JOB_TIMEOUT).is_ok());
        assert!(run(&action("gone.service", UnitOp::Start), &fake, JOB_TIMEOUT).is_err());
    }
}

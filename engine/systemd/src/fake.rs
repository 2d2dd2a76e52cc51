//! [`FakeServiceManager`]: a [`ServiceManager`] without systemd, for the
//! tests of code that drives one (the switch planner, the apply step).
//!
//! It records every call, answers jobs from a script, and keeps a table of
//! unit states that its successful jobs update as systemd would (a started
//! unit is active with a main PID, a stopped one inactive, a restarted one
//! has a new main PID), so that code reading states after its jobs sees
//! their effect.
//!
//! ```
//! use std::time::Duration;
//! use archy_systemd::fake::{self, Call, FakeServiceManager, Scripted};
//! use archy_systemd::{JobKind, JobResult, ServiceManager};
//!
//! let un = |n: &str| archy_systemd::UnitName::try_from(n).unwrap();
//! let systemd = FakeServiceManager::new();
//! systemd.set_unit("bitcoind.service", fake::inactive());
//! systemd.set_unit("lnd.service", fake::inactive());
//! systemd.script_job(JobKind::Start, "lnd.service", Scripted::Result(JobResult::Failed));
//!
//! let t = Duration::from_secs(5);
//! assert_eq!(systemd.start(&un("bitcoind.service"), t).unwrap(), JobResult::Done);
//! assert_eq!(systemd.start(&un("lnd.service"), t).unwrap(), JobResult::Failed);
//! assert!(systemd.unit_state(&un("bitcoind.service")).unwrap().is_active());
//! assert_eq!(
//!     systemd.jobs(),
//!     [(JobKind::Start, "bitcoind.service".to_owned()), (JobKind::Start, "lnd.service".to_owned())]
//! );
//! ```

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use crate::{
    ActiveState, Error, JobKind, JobResult, LoadState, ServiceManager, UnitName, UnitState,
};

/// One call made to a [`FakeServiceManager`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// [`ServiceManager::daemon_reload`].
    DaemonReload,
    /// A job: [`ServiceManager::run_job`] or one of the methods that call it.
    Job {
        /// The kind of job.
        kind: JobKind,
        /// Its unit.
        unit: String,
        /// The timeout it was given.
        timeout: Duration,
    },
    /// [`ServiceManager::reset_failed`].
    ResetFailed {
        /// Its unit.
        unit: String,
    },
    /// [`ServiceManager::unit_state`].
    UnitState {
        /// The unit asked about.
        unit: String,
    },
    /// [`ServiceManager::kill`].
    Kill {
        /// Its unit.
        unit: String,
        /// The signal.
        signal: i32,
    },
    /// [`ServiceManager::journal_tail`].
    JournalTail {
        /// The unit.
        unit: String,
        /// The lines asked for.
        lines: u32,
    },
}

/// How a scripted job ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scripted {
    /// It runs and ends with this result.
    Result(JobResult),
    /// systemd has no such unit: [`Error::UnitNotFound`].
    UnitNotFound,
    /// systemd refuses it: [`Error::Refused`] with this D-Bus error name
    /// (such as `org.freedesktop.systemd1.JobTypeNotApplicable`) and message.
    Refused {
        /// The D-Bus error name.
        name: String,
        /// systemd's explanation.
        message: String,
    },
    /// It does not end in time: [`Error::Timeout`] (at once; the fake does
    /// not wait).
    Timeout,
}

/// A [`ServiceManager`] that records its calls and answers from a script.
///
/// A job on a unit with a scripted outcome ([`script_job`](Self::script_job))
/// takes the oldest one; without one, a job on a unit the fake knows
/// ([`set_unit`](Self::set_unit)) is `done`, and a job on any other unit is
/// [`Error::UnitNotFound`], as with systemd. A `done` job updates the unit's
/// state; `failed` leaves a start or restart `failed`.
#[derive(Debug, Default)]
pub struct FakeServiceManager {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    calls: Vec<Call>,
    scripts: HashMap<(JobKind, String), VecDeque<Scripted>>,
    units: BTreeMap<String, UnitState>,
    journals: HashMap<String, String>,
    reload_failure: Option<String>,
    last_pid: u32,
}

/// A loaded unit that is not running.
pub fn inactive() -> UnitState {
    UnitState {
        load_state: LoadState::Loaded,
        active_state: ActiveState::Inactive,
        sub_state: "dead".to_owned(),
        main_pid: 0,
        n_restarts: 0,
        fragment_path: String::new(),
        unit_file_state: "static".to_owned(),
        need_daemon_reload: false,
        active_since_us: 0,
    }
}

/// A loaded unit that is running, with main PID `main_pid`.
pub fn active(main_pid: u32) -> UnitState {
    UnitState {
        active_state: ActiveState::Active,
        sub_state: "running".to_owned(),
        main_pid,
        ..inactive()
    }
}

impl FakeServiceManager {
    /// A fake that knows no units and has no script.
    pub fn new() -> FakeServiceManager {
        FakeServiceManager::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock leaves the state as
        // it was: still the best account of what happened.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes `unit` known, in `state` (replacing what the fake had).
    pub fn set_unit(&self, unit: &str, state: UnitState) {
        self.lock().units.insert(unit.to_owned(), state);
    }

    /// Makes the next `kind` job on `unit` that has no earlier outcome
    /// scripted end as `outcome`.
    pub fn script_job(&self, kind: JobKind, unit: &str, outcome: Scripted) {
        self.lock()
            .scripts
            .entry((kind, unit.to_owned()))
            .or_default()
            .push_back(outcome);
    }

    /// What [`journal_tail`](ServiceManager::journal_tail) shows for `unit`
    /// (its last lines; nothing if never set).
    pub fn set_journal(&self, unit: &str, text: &str) {
        self.lock()
            .journals
            .insert(unit.to_owned(), text.to_owned());
    }

    /// Makes every [`daemon_reload`](ServiceManager::daemon_reload) from now
    /// on fail with [`Error::Bus`] saying `message` (`None`: succeed again).
    pub fn fail_daemon_reload(&self, message: Option<&str>) {
        self.lock().reload_failure = message.map(str::to_owned);
    }

    /// Every call so far, oldest first.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// Every call so far, oldest first, forgetting them.
    pub fn take_calls(&self) -> Vec<Call> {
        std::mem::take(&mut self.lock().calls)
    }

    /// The jobs asked for so far (the [`Call::Job`]s, without timeouts),
    /// oldest first.
    pub fn jobs(&self) -> Vec<(JobKind, String)> {
        self.lock()
            .calls
            .iter()
            .filter_map(|c| match c {
                Call::Job { kind, unit, .. } => Some((*kind, unit.clone())),
                _ => None,
            })
            .collect()
    }
}

impl State {
    fn next_pid(&mut self) -> u32 {
        self.last_pid = self.last_pid.max(999) + 1;
        self.last_pid
    }

    /// What a job that ended with `result` does to `unit`'s state.
    fn apply(&mut self, kind: JobKind, unit: &str, result: &JobResult) {
        let Some(was_active) = self.units.get(unit).map(UnitState::is_active) else {
            return;
        };
        let becomes = match (kind, result) {
            (JobKind::Stop, JobResult::Done) => inactive(),
            (JobKind::Reload, _) | (JobKind::Stop, _) => return,
            (JobKind::Start, JobResult::Done) if was_active => return,
            (JobKind::TryRestart, JobResult::Done) if !was_active => return,
            (_, JobResult::Done) => active(self.next_pid()),
            (_, JobResult::Failed) => UnitState {
                active_state: ActiveState::Failed,
                sub_state: "failed".to_owned(),
                ..inactive()
            },
            _ => return,
        };
        if let Some(state) = self.units.get_mut(unit) {
            *state = becomes.with_file_of(state);
        }
    }
}

impl UnitState {
    /// This state, with `other`'s unit file facts.
    fn with_file_of(self, other: &UnitState) -> UnitState {
        UnitState {
            load_state: other.load_state.clone(),
            fragment_path: other.fragment_path.clone(),
            unit_file_state: other.unit_file_state.clone(),
            need_daemon_reload: other.need_daemon_reload,
            ..self
        }
    }
}

impl ServiceManager for FakeServiceManager {
    fn daemon_reload(&self, _timeout: Duration) -> Result<(), Error> {
        let mut state = self.lock();
        state.calls.push(Call::DaemonReload);
        match &state.reload_failure {
            Some(message) => Err(Error::Bus {
                what: "reload its unit files (daemon-reload)".to_owned(),
                source: zbus::Error::Failure(message.clone()),
            }),
            None => {
                for unit in state.units.values_mut() {
                    unit.need_daemon_reload = false;
                }
                Ok(())
            }
        }
    }

    fn reset_failed(&self, unit: &UnitName) -> Result<(), Error> {
        self.lock().calls.push(Call::ResetFailed {
            unit: unit.to_string(),
        });
        Ok(())
    }

    fn run_job(
        &self,
        kind: JobKind,
        unit: &UnitName,
        timeout: Duration,
    ) -> Result<JobResult, Error> {
        let mut state = self.lock();
        state.calls.push(Call::Job {
            kind,
            unit: unit.to_string(),
            timeout,
        });
        let scripted = state
            .scripts
            .get_mut(&(kind, unit.to_string()))
            .and_then(VecDeque::pop_front);
        let outcome = match scripted {
            Some(outcome) => outcome,
            None if state.units.contains_key(unit.as_str()) => Scripted::Result(JobResult::Done),
            None => Scripted::UnitNotFound,
        };
        match outcome {
            Scripted::Result(result) => {
                state.apply(kind, unit.as_str(), &result);
                Ok(result)
            }
            Scripted::UnitNotFound => Err(Error::UnitNotFound {
                unit: unit.to_string(),
            }),
            Scripted::Refused { name, message } => Err(Error::Refused {
                what: format!("{kind} {unit}"),
                name,
                message,
            }),
            Scripted::Timeout => Err(Error::Timeout {
                what: format!("{kind} {unit}"),
                after: timeout,
            }),
        }
    }

    fn unit_state(&self, unit: &UnitName) -> Result<UnitState, Error> {
        let mut state = self.lock();
        state.calls.push(Call::UnitState {
            unit: unit.to_string(),
        });
        Ok(state
            .units
            .get(unit.as_str())
            .cloned()
            .unwrap_or_else(UnitState::not_found))
    }

    fn kill(&self, unit: &UnitName, signal: i32) -> Result<(), Error> {
        let mut state = self.lock();
        state.calls.push(Call::Kill {
            unit: unit.to_string(),
            signal,
        });
        if !state.units.contains_key(unit.as_str()) {
            return Err(Error::UnitNotFound {
                unit: unit.to_string(),
            });
        }
        // Every process gets the signal: the fake's units stop at once.
        if let Some(s) = state.units.get_mut(unit.as_str()) {
            *s = inactive().with_file_of(s);
        }
        Ok(())
    }

    fn journal_tail(&self, unit: &UnitName, lines: u32) -> Result<String, Error> {
        let mut state = self.lock();
        state.calls.push(Call::JournalTail {
            unit: unit.to_string(),
            lines,
        });
        let text = state
            .journals
            .get(unit.as_str())
            .map(String::as_str)
            .unwrap_or("");
        let all: Vec<&str> = text.lines().collect();
        let keep = all.len().saturating_sub(lines as usize);
        Ok(all[keep..].iter().map(|l| format!("{l}\n")).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn un(name: &str) -> UnitName {
        UnitName::try_from(name).expect("a unit name")
    }

    const T: Duration = Duration::from_secs(3);

    #[test]
    fn jobs_change_the_states_they_would_change() {
        let fake = FakeServiceManager::new();
        fake.set_unit("a.service", inactive());
        assert_eq!(
            fake.unit_state(&un("a.service")).unwrap().active_state,
            ActiveState::Inactive
        );

        assert_eq!(fake.start(&un("a.service"), T).unwrap(), JobResult::Done);
        let started = fake.unit_state(&un("a.service")).unwrap();
        assert!(started.is_active());
        assert!(started.main_pid > 0);

        fake.restart(&un("a.service"), T).unwrap();
        let restarted = fake.unit_state(&un("a.service")).unwrap();
        assert!(restarted.is_active());
        assert_ne!(restarted.main_pid, started.main_pid);

        fake.reload(&un("a.service"), T).unwrap();
        assert_eq!(fake.unit_state(&un("a.service")).unwrap(), restarted);

        fake.stop(&un("a.service"), T).unwrap();
        assert_eq!(fake.unit_state(&un("a.service")).unwrap(), inactive());

        fake.try_restart(&un("a.service"), T).unwrap();
        assert_eq!(fake.unit_state(&un("a.service")).unwrap(), inactive());
    }

    #[test]
    fn scripted_outcomes_come_in_order_then_done() {
        let fake = FakeServiceManager::new();
        fake.set_unit("b.service", inactive());
        fake.script_job(
            JobKind::Start,
            "b.service",
            Scripted::Result(JobResult::Failed),
        );
        fake.script_job(JobKind::Start, "b.service", Scripted::Timeout);
        fake.script_job(
            JobKind::Reload,
            "b.service",
            Scripted::Refused {
                name: "org.freedesktop.systemd1.JobTypeNotApplicable".to_owned(),
                message: "Job type reload is not applicable for unit b.service.".to_owned(),
            },
        );

        assert_eq!(fake.start(&un("b.service"), T).unwrap(), JobResult::Failed);
        let failed = fake.unit_state(&un("b.service")).unwrap();
        assert_eq!(failed.active_state, ActiveState::Failed);

        let err = fake.start(&un("b.service"), T).unwrap_err();
        assert_eq!(
            err.to_string(),
            "timed out after 3s waiting for systemd to start b.service"
        );
        let err = fake.reload(&un("b.service"), T).unwrap_err();
        assert_eq!(
            err.to_string(),
            "systemd refused to reload b.service: Job type reload is not applicable for unit \
             b.service. (org.freedesktop.systemd1.JobTypeNotApplicable)"
        );
        assert_eq!(fake.start(&un("b.service"), T).unwrap(), JobResult::Done);
    }

    #[test]
    fn unknown_units_are_not_found_and_every_call_is_recorded() {
        let fake = FakeServiceManager::new();
        let err = fake.stop(&un("gone.service"), T).unwrap_err();
        assert!(matches!(err, Error::UnitNotFound { ref unit } if unit == "gone.service"));
        assert_eq!(
            fake.unit_state(&un("gone.service")).unwrap(),
            UnitState::not_found()
        );
        fake.set_journal("gone.service", "one\ntwo\nthree\n");
        assert_eq!(
            fake.journal_tail(&un("gone.service"), 2).unwrap(),
            "two\nthree\n"
        );
        fake.fail_daemon_reload(Some("bus on fire"));
        let err = fake.daemon_reload(T).unwrap_err();
        assert!(err.to_string().contains("daemon-reload"), "{err}");
        fake.fail_daemon_reload(None);
        fake.daemon_reload(T).unwrap();

        assert_eq!(
            fake.take_calls(),
            [
                Call::Job {
                    kind: JobKind::Stop,
                    unit: "gone.service".to_owned(),
                    timeout: T
                },
                Call::UnitState {
                    unit: "gone.service".to_owned()
                },
                Call::JournalTail {
                    unit: "gone.service".to_owned(),
                    lines: 2
                },
                Call::DaemonReload,
                Call::DaemonReload,
            ]
        );
        assert!(fake.calls().is_empty());
    }
}

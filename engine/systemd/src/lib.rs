//! systemd, driven over D-Bus, for `archy switch`: reload the manager's
//! configuration, run start/stop/restart/reload jobs and wait for their
//! results, read a unit's state, and tail its journal.
//!
//! [`ServiceManager`] is what a switch needs, as a blocking, object-safe
//! trait. [`SystemdBus`] is the real one: it talks to PID 1 through the D-Bus
//! system bus with [zbus] (systemd's private socket,
//! `/run/systemd/private`, speaks a peer-to-peer dialect zbus cannot use), and
//! runs the async zbus calls on zbus's own executor with [`zbus::block_on`],
//! so its callers need no async runtime. `fake::FakeServiceManager` records
//! calls and answers from a script, for the planner's and apply step's tests:
//! it is compiled only with the cargo feature `testing`, which those crates
//! enable in their `[dev-dependencies]`, so no production build carries it.
//!
//! Unit names are full, checked names ([`UnitName`]: `bitcoind.service`,
//! `lnd.socket`): systemd's D-Bus API, unlike `systemctl`, adds no
//! `.service`.

mod bus;
mod error;
#[cfg(feature = "testing")]
pub mod fake;
mod journal;

use std::fmt;
use std::time::Duration;

pub use archy_graph::names::UnitName;
pub use bus::SystemdBus;
pub use error::Error;
pub use journal::journal_tail_with;

/// What a switch asks of systemd. Blocking and object-safe: a switch holds
/// a `&dyn ServiceManager`.
///
/// Each job method submits one job with mode `replace` (a conflicting queued
/// job is replaced, as `systemctl` does) and waits, at most `timeout`, for
/// systemd to say the job is over. It returns how it ended, [`JobResult`]:
/// `Ok(JobResult::Failed)` is a job systemd ran and that failed. `Err` is a
/// job that was never queued ([`Error::UnitNotFound`], [`Error::Refused`]),
/// one whose end did not come in time ([`Error::Timeout`], the job is left to
/// systemd), or a bus failure.
// Sync: the health gate runs its checks in parallel, on one manager.
pub trait ServiceManager: fmt::Debug + Sync {
    /// Has systemd reload its unit files (`systemctl daemon-reload`) and
    /// returns once it has finished: systemd answers the `Reload` call only
    /// after the reload is complete, so the answer is the wait (no need for
    /// the `Reloading` signal). Fails with [`Error::Timeout`] if there is no
    /// answer within `timeout`.
    fn daemon_reload(&self, timeout: Duration) -> Result<(), Error>;

    /// `systemctl reset-failed UNIT`: forgets the unit's failed state and
    /// its start-rate counter. A switch calls it before each start or
    /// restart it asks for, so restarts archy makes on purpose never count
    /// toward `StartLimitBurst=` (five within ten seconds by default),
    /// which is there to stop crash loops. A unit systemd does not know is
    /// not an error.
    fn reset_failed(&self, unit: &UnitName) -> Result<(), Error>;

    /// Runs one job of `kind` on `unit` and waits for its result: the
    /// method the convenience methods below call.
    fn run_job(
        &self,
        kind: JobKind,
        unit: &UnitName,
        timeout: Duration,
    ) -> Result<JobResult, Error>;

    /// The state of `unit`, loading it if systemd has not yet. A unit with
    /// no unit file is not an error: its [`UnitState::load_state`] is
    /// [`LoadState::NotFound`] (and it is inactive).
    fn unit_state(&self, unit: &UnitName) -> Result<UnitState, Error>;

    /// Whether each of `units` runs, asked in one call
    /// (`ListUnitsByNames`, which loads units systemd has not loaded yet):
    /// what `archy status` needs of every unit it checks, without a round
    /// trip per unit. In the order asked.
    fn unit_activity(&self, units: &[UnitName]) -> Result<Vec<UnitActivity>, Error> {
        units
            .iter()
            .map(|u| {
                self.unit_state(u).map(|s| UnitActivity {
                    unit: u.clone(),
                    load_state: s.load_state,
                    active_state: s.active_state,
                    sub_state: s.sub_state,
                    condition_failed: false,
                })
            })
            .collect()
    }

    /// `systemctl kill --kill-whom=all --signal=SIGNAL UNIT`: sends
    /// `signal` to every process of the unit. For processes a unit's own
    /// stop cannot reach (a container podman lost track of).
    fn kill(&self, unit: &UnitName, signal: i32) -> Result<(), Error>;

    /// The last `lines` lines of `unit`'s journal, as `journalctl -u UNIT -n
    /// LINES --no-pager -o short` prints them: the unit's own output and what
    /// systemd logged about it (how its process exited, why it failed).
    fn journal_tail(&self, unit: &UnitName, lines: u32) -> Result<String, Error>;

    /// `systemctl start`: [`JobKind::Start`].
    fn start(&self, unit: &UnitName, timeout: Duration) -> Result<JobResult, Error> {
        self.run_job(JobKind::Start, unit, timeout)
    }

    /// `systemctl stop`: [`JobKind::Stop`].
    fn stop(&self, unit: &UnitName, timeout: Duration) -> Result<JobResult, Error> {
        self.run_job(JobKind::Stop, unit, timeout)
    }

    /// `systemctl restart`: [`JobKind::Restart`].
    fn restart(&self, unit: &UnitName, timeout: Duration) -> Result<JobResult, Error> {
        self.run_job(JobKind::Restart, unit, timeout)
    }

    /// `systemctl try-restart`: [`JobKind::TryRestart`].
    fn try_restart(&self, unit: &UnitName, timeout: Duration) -> Result<JobResult, Error> {
        self.run_job(JobKind::TryRestart, unit, timeout)
    }

    /// `systemctl reload`: [`JobKind::Reload`].
    fn reload(&self, unit: &UnitName, timeout: Duration) -> Result<JobResult, Error> {
        self.run_job(JobKind::Reload, unit, timeout)
    }

    /// `systemctl reload-or-restart`: [`JobKind::ReloadOrRestart`].
    fn reload_or_restart(&self, unit: &UnitName, timeout: Duration) -> Result<JobResult, Error> {
        self.run_job(JobKind::ReloadOrRestart, unit, timeout)
    }
}

/// A kind of job, named as `systemctl` names its command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum JobKind {
    /// Start the unit (a job that is done at once if it is active).
    Start,
    /// Stop the unit.
    Stop,
    /// Stop the unit if it is active, then start it.
    Restart,
    /// Restart the unit if it is active; nothing (`done`) if it is not.
    TryRestart,
    /// Run the unit's `ExecReload=`. Refused ([`Error::Refused`],
    /// `JobTypeNotApplicable`) for a unit that has none.
    Reload,
    /// Reload the unit if it can be reloaded, else restart it; start it if
    /// it is not active.
    ReloadOrRestart,
}

impl JobKind {
    /// Every kind, in declaration order.
    pub const ALL: [JobKind; 6] = [
        JobKind::Start,
        JobKind::Stop,
        JobKind::Restart,
        JobKind::TryRestart,
        JobKind::Reload,
        JobKind::ReloadOrRestart,
    ];

    /// The `org.freedesktop.systemd1.Manager` method that queues this job.
    pub fn method(self) -> &'static str {
        match self {
            JobKind::Start => "StartUnit",
            JobKind::Stop => "StopUnit",
            JobKind::Restart => "RestartUnit",
            JobKind::TryRestart => "TryRestartUnit",
            JobKind::Reload => "ReloadUnit",
            JobKind::ReloadOrRestart => "ReloadOrRestartUnit",
        }
    }

    /// The `systemctl` command for this job: `start`, `try-restart`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Start => "start",
            JobKind::Stop => "stop",
            JobKind::Restart => "restart",
            JobKind::TryRestart => "try-restart",
            JobKind::Reload => "reload",
            JobKind::ReloadOrRestart => "reload-or-restart",
        }
    }
}

impl fmt::Display for JobKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a job ended: the `result` of systemd's `JobRemoved` signal.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum JobResult {
    /// The job succeeded.
    Done,
    /// The job failed (the unit's process failed, or its start timed out in
    /// systemd, see the unit's state and journal).
    Failed,
    /// systemd's own job timeout (`JobTimeoutSec=`) ran out.
    Timeout,
    /// The job was canceled before it finished, such as by a conflicting job
    /// queued in `replace` mode.
    Canceled,
    /// A job this one depended on failed.
    Dependency,
    /// systemd skipped the job: it no longer applied to the unit when its
    /// turn came.
    Skipped,
    /// The job could not apply to the unit's state: a reload of a unit that
    /// is not active (`systemctl` says "not active, cannot reload").
    Invalid,
    /// Any other result systemd reports (`assert`,
    /// `unsupported`, `collected`, `once`, `frozen`, ...), as it spells it.
    Other(String),
}

impl JobResult {
    /// The result as systemd spells it (`done`, `failed`, ...).
    pub fn parse(result: &str) -> JobResult {
        match result {
            "done" => JobResult::Done,
            "failed" => JobResult::Failed,
            "timeout" => JobResult::Timeout,
            "canceled" => JobResult::Canceled,
            "dependency" => JobResult::Dependency,
            "skipped" => JobResult::Skipped,
            "invalid" => JobResult::Invalid,
            other => JobResult::Other(other.to_owned()),
        }
    }

    /// The result as systemd spells it.
    pub fn as_str(&self) -> &str {
        match self {
            JobResult::Done => "done",
            JobResult::Failed => "failed",
            JobResult::Timeout => "timeout",
            JobResult::Canceled => "canceled",
            JobResult::Dependency => "dependency",
            JobResult::Skipped => "skipped",
            JobResult::Invalid => "invalid",
            JobResult::Other(other) => other,
        }
    }

    /// Whether the job succeeded.
    pub fn is_done(&self) -> bool {
        *self == JobResult::Done
    }

    /// `Ok` for [`JobResult::Done`], else [`Error::JobFailed`] naming the
    /// job: for a caller to whom only success will do.
    pub fn require_done(self, kind: JobKind, unit: &UnitName) -> Result<(), Error> {
        match self {
            JobResult::Done => Ok(()),
            result => Err(Error::JobFailed {
                kind,
                unit: unit.to_string(),
                result,
            }),
        }
    }
}

impl fmt::Display for JobResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether systemd could load a unit: the unit's `LoadState`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LoadState {
    /// Its unit file was read.
    Loaded,
    /// There is no unit file for it.
    NotFound,
    /// Its unit file has a setting systemd cannot use.
    BadSetting,
    /// It could not be loaded for another reason.
    Error,
    /// It is masked (its unit file is a link to `/dev/null`).
    Masked,
    /// Any other state, as systemd spells it (`stub`, `merged`, ...).
    Other(String),
}

impl LoadState {
    /// The state as systemd spells it.
    pub fn parse(state: &str) -> LoadState {
        match state {
            "loaded" => LoadState::Loaded,
            "not-found" => LoadState::NotFound,
            "bad-setting" => LoadState::BadSetting,
            "error" => LoadState::Error,
            "masked" => LoadState::Masked,
            other => LoadState::Other(other.to_owned()),
        }
    }

    /// The state as systemd spells it.
    pub fn as_str(&self) -> &str {
        match self {
            LoadState::Loaded => "loaded",
            LoadState::NotFound => "not-found",
            LoadState::BadSetting => "bad-setting",
            LoadState::Error => "error",
            LoadState::Masked => "masked",
            LoadState::Other(other) => other,
        }
    }
}

impl fmt::Display for LoadState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a unit runs: the unit's `ActiveState`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ActiveState {
    /// It is up.
    Active,
    /// It is up and reloading.
    Reloading,
    /// It is down, and did not fail the last time.
    Inactive,
    /// It is down, and failed (see `sub_state`, the journal).
    Failed,
    /// It is starting (or waiting to restart, with `Restart=`).
    Activating,
    /// It is stopping.
    Deactivating,
    /// Any other state, as systemd spells it (`maintenance`, `refreshing`).
    Other(String),
}

impl ActiveState {
    /// The state as systemd spells it.
    pub fn parse(state: &str) -> ActiveState {
        match state {
            "active" => ActiveState::Active,
            "reloading" => ActiveState::Reloading,
            "inactive" => ActiveState::Inactive,
            "failed" => ActiveState::Failed,
            "activating" => ActiveState::Activating,
            "deactivating" => ActiveState::Deactivating,
            other => ActiveState::Other(other.to_owned()),
        }
    }

    /// The state as systemd spells it.
    pub fn as_str(&self) -> &str {
        match self {
            ActiveState::Active => "active",
            ActiveState::Reloading => "reloading",
            ActiveState::Inactive => "inactive",
            ActiveState::Failed => "failed",
            ActiveState::Activating => "activating",
            ActiveState::Deactivating => "deactivating",
            ActiveState::Other(other) => other,
        }
    }
}

impl fmt::Display for ActiveState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a unit runs, as `systemctl list-units` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitActivity {
    /// The unit, as asked for.
    pub unit: UnitName,
    /// `LoadState`.
    pub load_state: LoadState,
    /// `ActiveState`.
    pub active_state: ActiveState,
    /// `SubState`.
    pub sub_state: String,
    /// It is inactive because a `Condition...=` of its last start did not
    /// hold (systemd skipped it, nothing failed).
    pub condition_failed: bool,
}

impl UnitActivity {
    /// Whether it is up, or on its way up ([`ActiveState::Activating`]:
    /// starting, or waiting to restart).
    pub fn is_up(&self) -> bool {
        matches!(
            self.active_state,
            ActiveState::Active | ActiveState::Reloading | ActiveState::Activating
        )
    }
}

/// A unit's state, as `systemctl show` has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitState {
    /// `LoadState`: whether its unit file was read.
    pub load_state: LoadState,
    /// `ActiveState`: whether it runs.
    pub active_state: ActiveState,
    /// `SubState`: the type-specific state (`running`, `exited`, `dead`,
    /// `auto-restart`, `failed`, `listening`, ...).
    pub sub_state: String,
    /// `MainPID` of a service (0 when it has no main process, and for other
    /// unit types).
    pub main_pid: u32,
    /// `NRestarts` of a service: how often `Restart=` restarted it since it
    /// was last started by a job (0 for other unit types). A number that
    /// keeps climbing is a restart loop.
    pub n_restarts: u32,
    /// `FragmentPath`: the unit file systemd read ("" if none).
    pub fragment_path: String,
    /// `UnitFileState`: `enabled`, `disabled`, `static`, `linked`, ... (""
    /// if it has no unit file).
    pub unit_file_state: String,
    /// `NeedDaemonReload`: its unit file (or a drop-in) changed on disk
    /// since systemd read it.
    pub need_daemon_reload: bool,
    /// `ActiveEnterTimestampMonotonic`: when it last became active, in
    /// microseconds of CLOCK_MONOTONIC (0: never, or not known).
    pub active_since_us: u64,
}

impl UnitState {
    /// The state systemd reports for a unit that has no unit file.
    pub fn not_found() -> UnitState {
        UnitState {
            load_state: LoadState::NotFound,
            active_state: ActiveState::Inactive,
            sub_state: "dead".to_owned(),
            main_pid: 0,
            n_restarts: 0,
            fragment_path: String::new(),
            unit_file_state: String::new(),
            need_daemon_reload: false,
            active_since_us: 0,
        }
    }

    /// Whether it is up ([`ActiveState::Active`] or
    /// [`ActiveState::Reloading`]).
    pub fn is_active(&self) -> bool {
        matches!(
            self.active_state,
            ActiveState::Active | ActiveState::Reloading
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn un(name: &str) -> UnitName {
        UnitName::try_from(name).expect("a unit name")
    }

    #[test]
    fn states_and_results_round_trip_through_systemd_spelling() {
        for s in [
            "done",
            "failed",
            "timeout",
            "canceled",
            "dependency",
            "skipped",
            "invalid",
            "once",
        ] {
            assert_eq!(JobResult::parse(s).as_str(), s);
        }
        assert_eq!(JobResult::parse("skipped"), JobResult::Skipped);
        for s in [
            "loaded",
            "not-found",
            "bad-setting",
            "error",
            "masked",
            "stub",
        ] {
            assert_eq!(LoadState::parse(s).as_str(), s);
        }
        for s in [
            "active",
            "reloading",
            "inactive",
            "failed",
            "activating",
            "deactivating",
            "maintenance",
        ] {
            assert_eq!(ActiveState::parse(s).as_str(), s);
        }
        assert_eq!(ActiveState::parse("maintenance").to_string(), "maintenance");
    }

    #[test]
    fn require_done_names_the_job() {
        assert!(
            JobResult::Done
                .require_done(JobKind::Start, &un("a.service"))
                .is_ok()
        );
        let err = JobResult::Failed
            .require_done(JobKind::Restart, &un("lnd.service"))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "restart lnd.service failed: job result `failed`"
        );
    }

    #[test]
    fn job_kinds_name_their_manager_methods() {
        let methods: Vec<_> = JobKind::ALL.iter().map(|k| k.method()).collect();
        assert_eq!(
            methods,
            [
                "StartUnit",
                "StopUnit",
                "RestartUnit",
                "TryRestartUnit",
                "ReloadUnit",
                "ReloadOrRestartUnit"
            ]
        );
    }

    #[test]
    fn the_trait_is_object_safe_and_its_implementations_cross_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<SystemdBus>();
        send_sync::<fake::FakeServiceManager>();
        let fake = fake::FakeServiceManager::new();
        fake.set_unit("a.service", fake::inactive());
        let manager: &dyn ServiceManager = &fake;
        assert_eq!(
            manager
                .start(&un("a.service"), Duration::from_secs(1))
                .unwrap(),
            JobResult::Done
        );
    }
}

//! [`SystemdBus`]: the real [`ServiceManager`], systemd's manager object
//! (`org.freedesktop.systemd1`) on a D-Bus bus.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::time::Duration;

use futures_core::Stream;
use zbus::{Address, DBusError, OwnedObjectPath, OwnedVariant, Proxy};

use crate::{
    ActiveState, Error, JobKind, JobResult, LoadState, ServiceManager, UnitActivity, UnitName,
    UnitState,
};

const SYSTEMD: &str = "org.freedesktop.systemd1";
const MANAGER_PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
const UNIT: &str = "org.freedesktop.systemd1.Unit";
const SERVICE: &str = "org.freedesktop.systemd1.Service";
const PROPERTIES: &str = "org.freedesktop.DBus.Properties";

/// How long [`SystemdBus::connect`] waits for the bus and systemd to answer.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// How long [`ServiceManager::unit_state`] waits for systemd to answer (the
/// D-Bus reference implementation's default reply timeout).
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(25);

/// systemd's manager, reached over a D-Bus bus: the system bus of this
/// machine, or any bus address (a test node's, from outside it).
///
/// Its methods block the calling thread: each runs its D-Bus calls on
/// zbus's own executor with [`zbus::block_on`]. Do not call them from inside
/// an async task (a `block_on` of zbus, or of another runtime): zbus panics,
/// or the task's thread is blocked. It can be shared between threads.
///
/// A job is waited for by its `JobRemoved` signal, subscribed to before the
/// job is asked for, so that a job that ends at once is not missed. The
/// connection also calls the manager's `Subscribe`. systemd sends a job's
/// `JobRemoved` to the client that asked for the job without it (tested), so
/// this only makes delivery not hang on that; the cost, systemd emitting its
/// unit signals while archy is connected, is nothing for a short-lived CLI.
///
/// One connection serves any number of jobs (700 in a row were tried): each
/// job's signal match is removed again when the job is over.
pub struct SystemdBus {
    address: String,
    manager: Proxy<'static>,
    version: String,
    journalctl: Vec<OsString>,
}

impl fmt::Debug for SystemdBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SystemdBus")
            .field("address", &self.address)
            .field("version", &self.version)
            .field("journalctl", &self.journalctl)
            .finish_non_exhaustive()
    }
}

impl SystemdBus {
    /// Connects to systemd on this machine's system bus
    /// (`$DBUS_SYSTEM_BUS_ADDRESS`, else
    /// `unix:path=/var/run/dbus/system_bus_socket`).
    pub fn connect() -> Result<SystemdBus, Error> {
        let address = Address::system().map_err(|source| Error::Unreachable {
            address: "the system bus ($DBUS_SYSTEM_BUS_ADDRESS)".to_owned(),
            source,
        })?;
        SystemdBus::connect_to(address)
    }

    /// Connects to systemd on the bus at `address`, a D-Bus address such as
    /// `unix:path=/proc/1234/root/run/dbus/system_bus_socket` (a container's
    /// system bus, reached from outside it: the bus authenticates this
    /// process by its uid, as the container sees it).
    pub fn connect_address(address: &str) -> Result<SystemdBus, Error> {
        let parsed = address
            .parse::<Address>()
            .map_err(|source| Error::Unreachable {
                address: address.to_owned(),
                source,
            })?;
        SystemdBus::connect_to(parsed)
    }

    fn connect_to(address: Address) -> Result<SystemdBus, Error> {
        let shown = address.to_string();
        let unreachable = |source| Error::Unreachable {
            address: shown.clone(),
            source,
        };
        let connected = zbus::block_on(async {
            let connect = async {
                let conn = zbus::connection::Builder::address(address).build().await?;
                // No property cache: zbus would fetch every property of
                // the manager (GetAll) and watch them on the first read,
                // when archy reads one (Version) once.
                let manager: Proxy<'static> = zbus::proxy::Builder::new(&conn)
                    .destination(SYSTEMD)
                    .path(MANAGER_PATH)
                    .interface(MANAGER)
                    .cache_properties(zbus::proxy::CacheProperties::No)
                    .build()
                    .await?;
                // Both also prove that systemd is on the bus.
                let version: String = manager.get_property("Version").await?;
                if let Err(e) = manager.call_method("Subscribe", &()).await
                    && error_name(&e).as_deref()
                        != Some("org.freedesktop.systemd1.AlreadySubscribed")
                {
                    return Err(e);
                }
                Ok((manager, version))
            };
            match with_timeout(CONNECT_TIMEOUT, connect).await {
                Ok(connected) => connected.map_err(unreachable),
                Err(TimedOut) => Err(unreachable(zbus::Error::from(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no answer within {CONNECT_TIMEOUT:?}"),
                )))),
            }
        })?;
        let (manager, version) = connected;
        Ok(SystemdBus {
            address: shown,
            manager,
            version,
            journalctl: vec!["journalctl".into()],
        })
    }

    /// Reads journals with `command` instead of `journalctl`: for a
    /// `SystemdBus` connected to another machine's bus, a command that runs
    /// `journalctl` there (`["nsenter", "-t", "PID", "-a", "journalctl"]`).
    /// [`journal_tail`](ServiceManager::journal_tail) appends its arguments
    /// to it, see [`journal_tail_with`](crate::journal_tail_with).
    ///
    /// # Panics
    ///
    /// If `command` is empty.
    pub fn with_journalctl<I, S>(mut self, command: I) -> SystemdBus
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.journalctl = command.into_iter().map(Into::into).collect();
        assert!(!self.journalctl.is_empty(), "an empty journalctl command");
        self
    }

    /// The D-Bus address connected to.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// systemd's version, as its manager reports it (`257.13-1~deb13u1`).
    pub fn systemd_version(&self) -> &str {
        &self.version
    }

    /// Runs `work` on zbus's executor, giving up after `timeout` with
    /// [`Error::Timeout`] for `what`.
    fn block_on<T>(
        &self,
        what: impl FnOnce() -> String,
        timeout: Duration,
        work: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        zbus::block_on(async {
            match with_timeout(timeout, work).await {
                Ok(done) => done,
                Err(TimedOut) => Err(Error::Timeout {
                    what: what(),
                    after: timeout,
                }),
            }
        })
    }

    async fn job(&self, kind: JobKind, unit: &str) -> Result<JobResult, Error> {
        let what = || format!("{kind} {unit}");
        let mut removed = self
            .manager
            .receive_signal("JobRemoved")
            .await
            .map_err(|source| Error::Bus {
                what: format!("subscribe to JobRemoved to {}", what()),
                source,
            })?;
        let job: OwnedObjectPath = self
            .manager
            .call(kind.method(), &(unit, "replace"))
            .await
            .map_err(|e| call_error(&what(), Some(unit), e))?;
        loop {
            let signal = poll_fn(|cx| Pin::new(&mut removed).poll_next(cx))
                .await
                .ok_or_else(|| Error::Bus {
                    what: format!("wait for the end of job {job} ({})", what()),
                    source: zbus::Error::from(std::io::Error::new(
                        std::io::ErrorKind::ConnectionAborted,
                        "the bus connection closed",
                    )),
                })?;
            let (_id, path, _unit, result): (u32, OwnedObjectPath, String, String) =
                signal.body().deserialize().map_err(|source| Error::Bus {
                    what: format!("read a JobRemoved signal while waiting for {}", what()),
                    source,
                })?;
            if path == job {
                return Ok(JobResult::parse(&result));
            }
        }
    }

    async fn state(&self, unit: &str) -> Result<UnitState, Error> {
        let what = || format!("read the state of {unit}");
        let path: OwnedObjectPath = self
            .manager
            .call("LoadUnit", &(unit,))
            .await
            .map_err(|e| call_error(&format!("load {unit}"), Some(unit), e))?;
        let conn = self.manager.connection();
        let bus = |source| Error::Bus {
            what: what(),
            source,
        };
        let mut props: HashMap<String, OwnedVariant> = conn
            .call_method(Some(SYSTEMD), &path, Some(PROPERTIES), "GetAll", &(UNIT,))
            .await
            .map_err(bus)?
            .body()
            .deserialize()
            .map_err(bus)?;
        let mut take = |name: &str| {
            props.remove(name).ok_or_else(|| Error::Bus {
                what: what(),
                source: zbus::Error::Failure(format!("{path} has no {UNIT}.{name}")),
            })
        };
        let string = |v: OwnedVariant| String::try_from(v).map_err(bus);
        let mut state = UnitState {
            load_state: LoadState::parse(&string(take("LoadState")?)?),
            active_state: ActiveState::parse(&string(take("ActiveState")?)?),
            sub_state: string(take("SubState")?)?,
            main_pid: 0,
            n_restarts: 0,
            fragment_path: string(take("FragmentPath")?)?,
            unit_file_state: string(take("UnitFileState")?)?,
            need_daemon_reload: bool::try_from(take("NeedDaemonReload")?).map_err(bus)?,
            active_since_us: u64::try_from(take("ActiveEnterTimestampMonotonic")?).map_err(bus)?,
        };
        if unit.ends_with(".service") {
            let path = &path;
            let get = |name: &'static str| async move {
                let value: OwnedVariant = conn
                    .call_method(
                        Some(SYSTEMD),
                        path,
                        Some(PROPERTIES),
                        "Get",
                        &(SERVICE, name),
                    )
                    .await?
                    .body()
                    .deserialize()?;
                u32::try_from(value)
            };
            state.main_pid = get("MainPID").await.map_err(bus)?;
            state.n_restarts = get("NRestarts").await.map_err(bus)?;
        }
        Ok(state)
    }
}

/// One row of `ListUnitsByNames`: name, description, load state, active
/// state, sub state, followed unit, object path, job id, job type, job
/// path.
type UnitRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    OwnedObjectPath,
    u32,
    String,
    OwnedObjectPath,
);

impl SystemdBus {
    async fn activity(&self, units: &[UnitName]) -> Result<Vec<UnitActivity>, Error> {
        let names: Vec<&str> = units.iter().map(UnitName::as_str).collect();
        let what = || format!("list the units {}", names.join(" "));
        let rows: Vec<UnitRow> = self
            .manager
            .call("ListUnitsByNames", &(&names,))
            .await
            .map_err(|e| call_error(&what(), None, e))?;
        let mut out = Vec::with_capacity(rows.len());
        // systemd answers in the order asked: each row is the asked unit's.
        for (asked, (unit, _, load, active, sub, _, path, _, _, _)) in units.iter().zip(rows) {
            let active_state = ActiveState::parse(&active);
            // Only an inactive unit can have been skipped by a condition;
            // asking just those keeps this one round trip in the usual case.
            let condition_failed = if active_state == ActiveState::Inactive {
                self.condition_failed(&unit, &path).await?
            } else {
                false
            };
            out.push(UnitActivity {
                unit: asked.clone(),
                load_state: LoadState::parse(&load),
                active_state,
                sub_state: sub,
                condition_failed,
            });
        }
        Ok(out)
    }
}

impl SystemdBus {
    /// Whether the last start of the unit at `path` was skipped because a
    /// `Condition...=` did not hold: its condition was checked (a unit
    /// never started has no check, and reads false too) and failed.
    async fn condition_failed(&self, unit: &str, path: &OwnedObjectPath) -> Result<bool, Error> {
        let conn = self.manager.connection();
        let bus = |source| Error::Bus {
            what: format!("read the condition result of {unit}"),
            source,
        };
        let get = |name: &'static str| async move {
            conn.call_method(Some(SYSTEMD), path, Some(PROPERTIES), "Get", &(UNIT, name))
                .await?
                .body()
                .deserialize::<OwnedVariant>()
        };
        let checked =
            u64::try_from(get("ConditionTimestampMonotonic").await.map_err(bus)?).map_err(bus)?;
        let held = bool::try_from(get("ConditionResult").await.map_err(bus)?).map_err(bus)?;
        Ok(checked != 0 && !held)
    }
}

impl ServiceManager for SystemdBus {
    fn daemon_reload(&self, timeout: Duration) -> Result<(), Error> {
        let what = "reload its unit files (daemon-reload)";
        self.block_on(|| what.to_owned(), timeout, async {
            // systemd keeps the reply to `Reload` until the reload is done.
            self.manager
                .call_method("Reload", &())
                .await
                .map_err(|e| call_error(what, None, e))?;
            Ok(())
        })
    }

    fn reset_failed(&self, unit: &UnitName) -> Result<(), Error> {
        let what = "reset a unit's failed state";
        let result = self.block_on(|| format!("reset-failed {unit}"), QUERY_TIMEOUT, async {
            self.manager
                .call_method("ResetFailedUnit", &(unit.as_str(),))
                .await
                .map_err(|e| call_error(what, Some(unit.as_str()), e))?;
            Ok(())
        });
        match result {
            Err(Error::UnitNotFound { .. }) => Ok(()),
            other => other,
        }
    }

    fn run_job(
        &self,
        kind: JobKind,
        unit: &UnitName,
        timeout: Duration,
    ) -> Result<JobResult, Error> {
        self.block_on(
            || format!("{kind} {unit}"),
            timeout,
            self.job(kind, unit.as_str()),
        )
    }

    fn unit_state(&self, unit: &UnitName) -> Result<UnitState, Error> {
        self.block_on(
            || format!("report the state of {unit}"),
            QUERY_TIMEOUT,
            self.state(unit.as_str()),
        )
    }

    fn unit_activity(&self, units: &[UnitName]) -> Result<Vec<UnitActivity>, Error> {
        if units.is_empty() {
            return Ok(Vec::new());
        }
        self.block_on(
            || format!("list {} units", units.len()),
            QUERY_TIMEOUT,
            self.activity(units),
        )
    }

    fn kill(&self, unit: &UnitName, signal: i32) -> Result<(), Error> {
        let what = format!("kill {unit}");
        self.block_on(|| what.clone(), QUERY_TIMEOUT, async {
            self.manager
                .call_method("KillUnit", &(unit.as_str(), "all", signal))
                .await
                .map_err(|e| call_error(&what, Some(unit.as_str()), e))?;
            Ok(())
        })
    }

    fn journal_tail(&self, unit: &UnitName, lines: u32) -> Result<String, Error> {
        crate::journal_tail_with(&self.journalctl, unit.as_str(), lines)
    }
}

/// The time a [`with_timeout`] gave ran out.
struct TimedOut;

/// `work`, or [`TimedOut`] once `timeout` has passed: on the timer of the
/// runtime that [`zbus::block_on`] runs on this thread.
async fn with_timeout<T>(timeout: Duration, work: impl Future<Output = T>) -> Result<T, TimedOut> {
    match zruntime::SharedRuntime::current() {
        Ok(runtime) => runtime.timeout(timeout, work).await.map_err(|_| TimedOut),
        // The runtime could not make its reactor (out of file descriptors):
        // zbus itself cannot run then, and will say so.
        Err(_) => Ok(work.await),
    }
}

/// The name of the D-Bus error `e` is, if it is an error reply.
fn error_name(e: &zbus::Error) -> Option<String> {
    match e {
        zbus::Error::MethodError(name, _, _) => Some(name.to_string()),
        zbus::Error::FDO(fdo) => Some(fdo.name().to_string()),
        _ => None,
    }
}

/// `e`, the failure of a call to do `what`, as an [`Error`]: an error
/// reply from systemd is [`Error::UnitNotFound`] (for `unit`) or
/// [`Error::Refused`]; the rest is [`Error::Bus`].
fn call_error(what: &str, unit: Option<&str>, e: zbus::Error) -> Error {
    let refused = |name: String, message: Option<&str>| Error::Refused {
        what: what.to_owned(),
        name,
        message: message.unwrap_or("no explanation").to_owned(),
    };
    match &e {
        zbus::Error::MethodError(name, message, _) => match unit {
            Some(unit) if name.as_str() == "org.freedesktop.systemd1.NoSuchUnit" => {
                Error::UnitNotFound {
                    unit: unit.to_owned(),
                }
            }
            _ => refused(name.to_string(), message.as_deref()),
        },
        zbus::Error::FDO(fdo)
            if matches!(
                **fdo,
                zbus::fdo::Error::InvalidArgs(_)
                    | zbus::fdo::Error::AccessDenied(_)
                    | zbus::fdo::Error::AuthFailed(_)
                    | zbus::fdo::Error::InteractiveAuthorizationRequired(_)
                    | zbus::fdo::Error::NotSupported(_)
                    | zbus::fdo::Error::Failed(_)
                    | zbus::fdo::Error::UnknownMethod(_)
            ) =>
        {
            refused(fdo.name().to_string(), fdo.description())
        }
        _ => Error::Bus {
            what: what.to_owned(),
            source: e,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_bus_is_a_clear_error() {
        let dir = std::env::temp_dir().join(format!("archy-systemd-{}", std::process::id()));
        let address = format!("unix:path={}/no-bus-here", dir.display());
        let err = SystemdBus::connect_address(&address).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("cannot reach systemd over D-Bus at {address}; is this a systemd machine?")
        );
        assert!(matches!(err, Error::Unreachable { .. }), "{err:?}");
    }

    #[test]
    fn a_malformed_address_is_unreachable_too() {
        let err = SystemdBus::connect_address("no-such-transport:x=1").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("cannot reach systemd over D-Bus at no-such-transport:x=1;"),
            "{err}"
        );
    }

    #[test]
    fn timeouts_fire_on_the_block_on_runtime() {
        let started = std::time::Instant::now();
        let late = zbus::block_on(with_timeout(
            Duration::from_millis(20),
            std::future::pending::<()>(),
        ));
        assert!(late.is_err());
        assert!(started.elapsed() >= Duration::from_millis(20));
        let in_time = zbus::block_on(with_timeout(Duration::from_secs(60), async { 7 }));
        assert!(matches!(in_time, Ok(7)));
    }
}

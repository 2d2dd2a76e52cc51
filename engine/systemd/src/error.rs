//! What can go wrong talking to systemd.

use std::time::Duration;

use crate::{JobKind, JobResult};

/// An error from a [`ServiceManager`](crate::ServiceManager).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No bus at the address, or no systemd on the bus.
    #[error("cannot reach systemd over D-Bus at {address}; is this a systemd machine?")]
    Unreachable {
        /// The D-Bus address tried (`unix:path=/run/dbus/system_bus_socket`).
        address: String,
        /// What failed: the connection, or the call to systemd on the bus.
        #[source]
        source: zbus::Error,
    },

    /// A job was asked for a unit systemd has no unit file for.
    #[error("unit {unit} not found: systemd has no unit file for it")]
    UnitNotFound {
        /// The unit, as the caller named it.
        unit: String,
    },

    /// systemd refused a request: a job it cannot queue (a reload of a unit
    /// without `ExecReload=` is `org.freedesktop.systemd1.JobTypeNotApplicable`;
    /// a masked unit is `UnitMasked`), a unit name that is not valid, ...
    #[error("systemd refused to {what}: {message} ({name})")]
    Refused {
        /// What was asked, such as `reload web.service`.
        what: String,
        /// The D-Bus error name systemd answered with.
        name: String,
        /// systemd's own explanation.
        message: String,
    },

    /// A job ended with another result than `done`, for a caller that
    /// required it ([`JobResult::require_done`]).
    #[error("{kind} {unit} failed: job result `{result}`")]
    JobFailed {
        /// The kind of job.
        kind: JobKind,
        /// Its unit.
        unit: String,
        /// How it ended.
        result: JobResult,
    },

    /// systemd did not finish in the time the caller gave it. For a job, the
    /// job stays with systemd, which may still finish it.
    #[error("timed out after {after:?} waiting for systemd to {what}")]
    Timeout {
        /// What was waited for, such as `start bitcoind.service`.
        what: String,
        /// The time the caller gave it.
        after: Duration,
    },

    /// A D-Bus failure past the connection: the bus went away, an answer
    /// did not have the expected shape, ...
    #[error("D-Bus call to systemd failed: {what}")]
    Bus {
        /// What was being done, such as `read the state of lnd.service`.
        what: String,
        /// The D-Bus error.
        #[source]
        source: zbus::Error,
    },

    /// The journal reader could not be run.
    #[error("cannot run `{command}` to read the journal")]
    JournalSpawn {
        /// The command line.
        command: String,
        /// Why it did not run.
        #[source]
        source: std::io::Error,
    },

    /// The journal reader ran and failed.
    #[error("`{command}` failed ({status}): {stderr}")]
    JournalFailed {
        /// The command line.
        command: String,
        /// How it exited.
        status: std::process::ExitStatus,
        /// What it said.
        stderr: String,
    },
}

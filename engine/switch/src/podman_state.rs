//! After podman lost its database: what is left of a lost container's
//! processes, ended through its unit before the switch starts it again.
//!
//! Found on podman 5.4 (see `engine/cli/tests/node_drift.rs`): with
//! `/var/lib/containers/storage/db.sql` gone, the containers keep running
//! and podman lists none of them. This is the systemd side of the repair:
//! [`stop_lost`] stops them; the network state podman kept for them is then
//! podman's to clear ([`archy_podman::Podman::clear_lost_networking`]).

use std::time::{Duration, Instant};

use archy_graph::{Graph, Resource};
use archy_systemd::{ActiveState, JobKind, ServiceManager, UnitName};
use archy_units::GraphUnits as _;

/// SIGTERM and SIGKILL (the same on every Linux architecture archy runs on).
const SIGTERM: i32 = 15;
const SIGKILL: i32 = 9;

/// How long the processes of a lost container get to stop on their own
/// when the container declares no stop timeout (podman's own default).
const DEFAULT_STOP: Duration = Duration::from_secs(10);

/// Ends what is left of a container podman lost, and stops its unit so
/// that `Restart=always` does not make the container again before the
/// stale network state is cleared
/// ([`archy_podman::Podman::clear_lost_networking`]); the start
/// that follows makes it.
///
/// The unit's own stop cannot do it alone: its `podman rm` finds no
/// container, and systemd then waits out `TimeoutStopSec=` for conmon. So
/// every process of the unit first gets SIGTERM, as `podman stop` sends
/// (bitcoind flushes its cache on it), and the container's stop timeout
/// to exit. What is still running then is killed while systemd stops the
/// unit, so that systemd cleans up after it as after any stop (killing it
/// outside a stop leaves the unit's cgroup behind, and a start into it was
/// seen to die at once).
pub fn stop_lost(
    systemd: &dyn ServiceManager,
    graph: &Graph,
    unit: &UnitName,
    timeout: Duration,
) -> Result<(), String> {
    let grace = graph
        .unit_sources()
        .into_iter()
        .find(|u| u.unit == *unit)
        .and_then(|u| match &u.node.resource {
            Resource::Container(c) => c.stop_timeout.map(|t| Duration::from_millis(t.0)),
            _ => None,
        })
        .unwrap_or(DEFAULT_STOP);
    let state = |unit: &UnitName| systemd.unit_state(unit).map_err(|e| e.to_string());
    let before = state(unit)?.main_pid;
    tracing::info!(
        %unit,
        "podman lost its container: stopping what is left of it"
    );
    systemd.kill(unit, SIGTERM).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + grace;
    while state(unit)?.main_pid == before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let stop = || {
        systemd
            .run_job(JobKind::Stop, unit, timeout)
            .and_then(|r| r.require_done(JobKind::Stop, unit))
            .map_err(|e| e.to_string())
    };
    if state(unit)?.main_pid != before {
        return stop();
    }
    tracing::warn!(%unit, "still running after {grace:?}: killing it");
    std::thread::scope(|scope| {
        let job = scope.spawn(stop);
        let deadline = Instant::now() + timeout;
        while !job.is_finished() && Instant::now() < deadline {
            // Once its `podman rm` has run (killing podman itself could
            // leave its locks held) and systemd waits for conmon.
            let now = state(unit)?;
            if now.active_state == ActiveState::Deactivating && now.sub_state == "stop-sigterm" {
                systemd.kill(unit, SIGKILL).map_err(|e| e.to_string())?;
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        job.join()
            .unwrap_or_else(|_| Err(format!("stopping {unit} panicked")))
    })
}

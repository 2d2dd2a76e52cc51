//! After podman lost its database: what is left of the lost containers'
//! networking, cleared away so that their Quadlet units can make them
//! anew.
//!
//! Found on podman 5.4 (see `engine/cli/tests/node_drift.rs`): with
//! `/var/lib/containers/storage/db.sql` gone, the containers keep running
//! and podman lists none of them. Killing them leaves behind what podman's
//! own teardown would have removed, all of it runtime state under `/run`
//! and in the kernel: the port forwards in nftables' `inet netavark` table
//! (the stale one comes first and points at the dead address, so the
//! published port refuses), the IP addresses allocated in
//! `/run/containers/networks/ipam.db` (a container with a fixed `--ip`
//! cannot start: "already allocated"), aardvark-dns's name records, and
//! the network namespaces in `/run/netns` with their veth on the bridge
//! (same address twice on one link). A reboot clears all of it; this does
//! the same, without the reboot. Network definitions
//! (`/etc/containers/networks`) and volume data are not touched.
//!
//! It runs only when podman runs no container it knows of: runtime state
//! that might belong to a live container is never removed.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use archy_graph::{Graph, Resource};
use archy_podman::Podman;
use archy_systemd::{ActiveState, JobKind, ServiceManager, UnitName};

/// podman's runtime network state, under the node's `/run`.
const NETWORKS: &str = "containers/networks";
const NETNS: &str = "netns";

/// Clears podman's runtime network state (see the module comment) under
/// `run` (the node's `/run`). Returns what it did, one line each, or why
/// it left everything as it was.
pub fn clear_lost_networking(podman: &dyn Podman, run: &Path) -> Result<Vec<String>, String> {
    let running: Vec<String> = podman
        .containers()
        .map_err(|e| format!("podman: {e}"))?
        .into_iter()
        .filter(|c| c.is_running())
        .map(|c| c.name)
        .collect();
    if !running.is_empty() {
        return Ok(vec![format!(
            "podman's network state left as it is: it runs {} since it lost its database",
            running.join(", ")
        )]);
    }
    let mut done = Vec::new();
    let nft = Command::new("nft")
        .args(["delete", "table", "inet", "netavark"])
        .output()
        .map_err(|e| format!("cannot run nft: {e}"))?;
    if nft.status.success() {
        done.push("removed podman's nftables rules (table inet netavark)".to_string());
    }
    let networks = run.join(NETWORKS);
    let mut files = vec![networks.join("ipam.db")];
    for dir in ["aardvark-dns", "firewall/ports", "firewall/networks"] {
        files.extend(entries(&networks.join(dir))?);
    }
    for file in files {
        // aardvark-dns keeps running and reads its records again when the
        // next container's network is set up.
        if file.file_name().is_some_and(|n| n == "aardvark.pid") {
            continue;
        }
        match fs::remove_file(&file) {
            Ok(()) => done.push(format!("removed {}", file.display())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot remove {}: {e}", file.display())),
        }
    }
    for ns in stale_namespaces(&run.join(NETNS))? {
        let name = ns
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let out = Command::new("ip")
            .args(["netns", "delete", &name])
            .output()
            .map_err(|e| format!("cannot run ip: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "cannot remove network namespace {name}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        done.push(format!("removed network namespace {name}"));
    }
    Ok(done)
}

/// The files of a folder (none when it does not exist).
fn entries(dir: &Path) -> Result<Vec<std::path::PathBuf>, String> {
    match fs::read_dir(dir) {
        Ok(list) => Ok(list
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .map(|e| e.path())
            .collect()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(format!("cannot list {}: {e}", dir.display())),
    }
}

/// The network namespaces podman made (`netns-<uuid>`) that no process is
/// in: those of containers that are gone.
fn stale_namespaces(dir: &Path) -> Result<Vec<std::path::PathBuf>, String> {
    let in_use: std::collections::BTreeSet<u64> = fs::read_dir("/proc")
        .map_err(|e| format!("cannot list /proc: {e}"))?
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|e| fs::metadata(e.path().join("ns/net")).ok())
        .map(|m| m.ino())
        .collect();
    Ok(entries(dir)?
        .into_iter()
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("netns-"))
        })
        .filter(|p| fs::metadata(p).is_ok_and(|m| !in_use.contains(&m.ino())))
        .collect())
}

/// SIGTERM and SIGKILL (the same on every Linux architecture archy runs on).
const SIGTERM: i32 = 15;
const SIGKILL: i32 = 9;

/// How long the processes of a lost container get to stop on their own
/// when the container declares no stop timeout (podman's own default).
const DEFAULT_STOP: Duration = Duration::from_secs(10);

/// Ends what is left of a container podman lost, and stops its unit so
/// that `Restart=always` does not make the container again before the
/// stale network state is cleared ([`clear_lost_networking`]); the start
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

//! After podman lost its database: what is left of the lost containers'
//! networking, cleared away so that their Quadlet units can make them
//! anew ([`Podman::clear_lost_networking`](crate::Podman::clear_lost_networking)).
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

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{ContainerInfo, Error, Result};

/// podman's runtime network state, under the node's `/run`.
const NETWORKS: &str = "containers/networks";
const NETNS: &str = "netns";

/// Why nothing may be cleared, when podman runs containers (of those it
/// lists) since it lost its database: their state is live.
pub(crate) fn left_alone(containers: &[ContainerInfo]) -> Option<String> {
    let running: Vec<&str> = containers
        .iter()
        .filter(|c| c.is_running())
        .map(|c| c.name.as_str())
        .collect();
    (!running.is_empty()).then(|| {
        format!(
            "podman's network state left as it is: it runs {} since it lost its database",
            running.join(", ")
        )
    })
}

/// Clears podman's runtime network state (see the module comment) under
/// `run` (the node's `/run`), and in the kernel. Returns what it did, one
/// line each. The caller has checked [`left_alone`] first.
pub(crate) fn clear(run: &Path) -> Result<Vec<String>> {
    let mut done = Vec::new();
    let nft = Command::new("nft")
        .args(["delete", "table", "inet", "netavark"])
        .output()
        .map_err(|e| io_error("run nft", e))?;
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
            Err(e) => return Err(io_error(&format!("remove {}", file.display()), e)),
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
            .map_err(|e| io_error("run ip", e))?;
        if !out.status.success() {
            return Err(Error::Netns {
                name,
                message: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            });
        }
        done.push(format!("removed network namespace {name}"));
    }
    Ok(done)
}

fn io_error(what: &str, source: io::Error) -> Error {
    Error::LostState {
        what: what.to_owned(),
        source,
    }
}

/// The files of a folder (none when it does not exist).
fn entries(dir: &Path) -> Result<Vec<PathBuf>> {
    match fs::read_dir(dir) {
        Ok(list) => Ok(list
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .map(|e| e.path())
            .collect()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(io_error(&format!("list {}", dir.display()), e)),
    }
}

/// The network namespaces podman made (`netns-<uuid>`) that no process is
/// in: those of containers that are gone.
fn stale_namespaces(dir: &Path) -> Result<Vec<PathBuf>> {
    let in_use: BTreeSet<u64> = fs::read_dir("/proc")
        .map_err(|e| io_error("list /proc", e))?
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

#[cfg(test)]
mod tests {
    use super::*;

    fn container(name: &str, state: &str) -> ContainerInfo {
        ContainerInfo {
            id: "a".repeat(64),
            name: name.to_owned(),
            state: state.to_owned(),
            image_id: "b".repeat(64),
            image: "localhost/testbed/busybox:latest".to_owned(),
            labels: Default::default(),
        }
    }

    #[test]
    fn live_containers_keep_the_state_and_are_named() {
        assert_eq!(left_alone(&[]), None);
        assert_eq!(left_alone(&[container("old", "exited")]), None);
        let why = left_alone(&[container("web", "running"), container("db", "running")]);
        assert_eq!(
            why.as_deref(),
            Some(
                "podman's network state left as it is: it runs web, db since it lost its database"
            )
        );
    }

    #[test]
    fn namespaces_are_only_podmans_and_files_only_files() {
        let run = tempfile::tempdir().unwrap();
        let netns = run.path().join(NETNS);
        fs::create_dir_all(netns.join("netns-sub")).unwrap();
        fs::write(netns.join("netns-1234"), b"").unwrap();
        fs::write(netns.join("other"), b"").unwrap();
        assert_eq!(
            stale_namespaces(&netns).unwrap(),
            [netns.join("netns-1234")]
        );
        assert!(entries(&run.path().join("missing")).unwrap().is_empty());
    }
}

//! `archy status [--json]`: how the running node differs from its current
//! generation. For now: containers that are missing, stopped, made outside
//! archy, or running an image other than the declared one.

use std::path::Path;

use archy_switch::containers::{ContainerDrift, PodmanAccess, drift, uses_podman};
use serde::Serialize;

use crate::CliError;
use crate::commands::diff::live_graph;
use crate::podman::NodePodman;

#[derive(Debug, Serialize)]
struct Status {
    generation: Option<u64>,
    clean: bool,
    containers: Vec<ContainerDrift>,
}

/// Exit 0 when the node is as its current generation says, 1 when it
/// drifted.
pub fn run(state_dir: &Path, json: bool) -> Result<(), CliError> {
    let live = live_graph(state_dir)?;
    let mut status = Status {
        generation: live.as_ref().map(|(n, _)| *n),
        clean: true,
        containers: Vec::new(),
    };
    if let Some((_, graph)) = &live
        && uses_podman(graph)
    {
        let systemd = archy_systemd::SystemdBus::connect().ok();
        let access = NodePodman::new(systemd.as_ref().map(|s| s as _));
        let podman = access
            .podman()
            .map_err(|e| CliError::system(format!("cannot ask podman: {e}")))?;
        let containers = podman
            .containers()
            .map_err(|e| CliError::system(format!("podman: {e}")))?;
        let images = podman
            .images()
            .map_err(|e| CliError::system(format!("podman: {e}")))?;
        status.containers = drift(graph, &containers, &images);
    }
    status.clean = status.containers.is_empty();
    if json {
        let text = serde_json::to_string_pretty(&status)
            .map_err(|e| CliError::system(format!("cannot print the status: {e}")))?;
        println!("{text}");
    } else {
        match status.generation {
            None => println!("archy has not switched this node yet"),
            Some(n) if status.clean => println!("generation {n}: the node is as it says"),
            Some(n) => {
                println!("generation {n}: the node differs:");
                for d in &status.containers {
                    println!("  {d}");
                }
            }
        }
    }
    if status.clean {
        Ok(())
    } else {
        Err(CliError {
            code: 1,
            message: format!(
                "{} difference(s) from generation {}",
                status.containers.len(),
                status.generation.unwrap_or_default()
            ),
            hint: None,
            rendered: false,
        })
    }
}

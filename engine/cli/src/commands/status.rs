//! `archy status [--json]`: how the running node differs from its current
//! generation (files, directories, unit files and [Install] links, units
//! that should run, containers, secrets), each difference with what `archy
//! reconcile` would do about it. Reads only: the generation comes from the
//! store (nothing is evaluated or built), systemd is asked about every
//! unit in one call.

use std::path::Path;
use std::time::Instant;

use archy_graph::Graph;
use archy_plan::{Drift, Observed};
use archy_realize::Realizer;
use serde::Serialize;

use crate::CliError;
use crate::commands::diff::live_graph;
use crate::podman::NodePodman;

/// One difference and its repair.
#[derive(Debug, Serialize)]
pub struct Entry {
    #[serde(flatten)]
    pub drift: Drift,
    /// What `archy reconcile` does about it, one phrase per action.
    pub repair: Vec<String>,
}

#[derive(Debug, Serialize)]
struct Status {
    generation: Option<u64>,
    clean: bool,
    drift: Vec<Entry>,
}

/// What repairing `drift` alone takes: the plan of the generation against
/// itself with only that drift observed, in words.
pub fn repair_of(graph: &Graph, drift: &Drift, secrets_dir: &str) -> Vec<String> {
    let observed = Observed {
        drift: vec![drift.clone()],
        ..Observed::default()
    };
    let plan = archy_plan::plan(Some(graph), graph, &observed);
    let mut out = archy_plan::drift::repairs(&plan, secrets_dir);
    if out.is_empty()
        && let Drift::PodmanUnreachable { .. } = drift
    {
        out.push(
            "none until podman answers: see `journalctl -u podman.service`; if its database \
             is damaged, move /var/lib/containers/storage/db.sql aside, then `archy reconcile` \
             makes the containers anew (volumes and data kept)"
                .into(),
        );
    }
    out
}

/// The drift of the node from generation `graph`, with repairs.
pub fn entries(state_dir: &Path, graph: &Graph) -> Result<Vec<Entry>, CliError> {
    let realizer = Realizer::new(Path::new("/"), &archy_store::StateDir::new(state_dir));
    let systemd = archy_systemd::SystemdBus::connect()
        .map_err(|e| CliError::system(format!("cannot ask systemd which units run: {e}")))?;
    let podman = NodePodman::new(Some(&systemd));
    let drift = archy_switch::drift::observe(&realizer, &systemd, &podman, graph)
        .map_err(|e| CliError::system(e.to_string()))?;
    let secrets_dir = realizer.secret_path("").display().to_string();
    let secrets_dir = secrets_dir.trim_end_matches('/');
    Ok(drift
        .into_iter()
        .map(|d| Entry {
            repair: repair_of(graph, &d, secrets_dir),
            drift: d,
        })
        .collect())
}

/// Prints the entries, one difference a line and its repair under it.
pub fn print(entries: &[Entry]) {
    for e in entries {
        println!("  {}", e.drift);
        println!("    -> {}", e.repair.join(", "));
    }
}

/// Exit 0 when the node is as its current generation says, 1 when it
/// drifted.
pub fn run(state_dir: &Path, json: bool) -> Result<(), CliError> {
    let started = Instant::now();
    let live = live_graph(state_dir)?;
    let mut status = Status {
        generation: live.as_ref().map(|(n, _)| *n),
        clean: true,
        drift: Vec::new(),
    };
    if let Some((_, graph)) = &live {
        status.drift = entries(state_dir, graph)?;
    }
    status.clean = status.drift.is_empty();
    tracing::info!(
        target: "archy::timing",
        "status: {:.1} ms",
        started.elapsed().as_secs_f64() * 1e3
    );
    if json {
        let text = serde_json::to_string_pretty(&status)
            .map_err(|e| CliError::system(format!("cannot print the status: {e}")))?;
        println!("{text}");
    } else {
        match status.generation {
            None => println!("archy has not switched this node yet"),
            Some(n) if status.clean => println!("generation {n}: the node is as it says"),
            Some(n) => {
                println!("generation {n}: the node differs from it:");
                print(&status.drift);
            }
        }
    }
    if status.clean {
        Ok(())
    } else {
        Err(CliError {
            code: 1,
            message: format!(
                "{} difference(s) from generation {}; `archy reconcile` repairs each as its line says",
                status.drift.len(),
                status.generation.unwrap_or_default()
            ),
            hint: None,
            rendered: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use archy_graph::Kind;

    #[test]
    fn an_entry_is_its_drift_and_its_repair_in_one_json_object() {
        let entry = Entry {
            drift: Drift::Content {
                kind: Kind::File,
                id: "/etc/app.conf".into(),
                what: "content differs from the generation".into(),
            },
            repair: vec!["rewrite /etc/app.conf".into(), "restart app.service".into()],
        };
        assert_eq!(
            serde_json::to_value(&entry).expect("json"),
            serde_json::json!({
                "drift": "content",
                "kind": "file",
                "id": "/etc/app.conf",
                "what": "content differs from the generation",
                "repair": ["rewrite /etc/app.conf", "restart app.service"],
            })
        );
    }
}

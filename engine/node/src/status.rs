//! `archy status`: how the running node differs from its current
//! generation (files, directories, unit files and [Install] links, units
//! that should run, containers, secrets), each difference with what
//! `archy reconcile` would do about it. Reads only: the generation comes
//! from the store (nothing is evaluated or built), systemd is asked about
//! every unit in one call.

use std::path::Path;
use std::time::Instant;

use archy_graph::Graph;
use archy_plan::{Drift, Observed};
use archy_realize::Realizer;
use archy_store::StateDir;
use serde::Serialize;

use crate::podman::NodePodman;
use crate::session::connect_for;
use crate::{Node, NodeError};

/// One difference and its repair.
#[derive(Debug, Serialize)]
pub struct Entry {
    #[serde(flatten)]
    pub drift: Drift,
    /// What `archy reconcile` does about it, one phrase per action.
    pub repair: Vec<String>,
}

/// The node against its current generation.
#[derive(Debug, Serialize)]
pub struct Status {
    /// `None`: archy has not switched this node yet.
    pub generation: Option<u64>,
    pub clean: bool,
    pub drift: Vec<Entry>,
    /// Containers adopted in place whose hand-over is pending (their
    /// units held): not drift.
    pub hand_over_pending: Vec<String>,
}

impl Status {
    pub fn is_clean(&self) -> bool {
        self.clean
    }

    /// Whether an app is held stopped with data newer than its code: the
    /// node needs its operator.
    pub fn needs_operator(&self) -> bool {
        self.drift
            .iter()
            .any(|e| matches!(e.drift, Drift::DataHeld { .. }))
    }
}

/// What repairing `drift` alone takes: the plan of the generation against
/// itself with only that drift observed, in words.
pub(crate) fn repair_of(graph: &Graph, drift: &Drift, secrets_dir: &str) -> Vec<String> {
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
    if let Drift::DataHeld { app, on_disk, .. } = drift {
        out.push(format!(
            "none by archy: {app} stays stopped until a switch brings {app} code that reads version {on_disk}"
        ));
    }
    out
}

/// Each difference with its repair.
pub(crate) fn with_repairs(graph: &Graph, drift: Vec<Drift>, secrets_dir: &str) -> Vec<Entry> {
    drift
        .into_iter()
        .map(|d| Entry {
            repair: repair_of(graph, &d, secrets_dir),
            drift: d,
        })
        .collect()
}

/// Where the secrets' values are kept, as the operator reads it.
pub(crate) fn secrets_dir(realizer: &Realizer) -> String {
    realizer
        .secret_path("")
        .display()
        .to_string()
        .trim_end_matches('/')
        .to_string()
}

/// The drift of the running node from generation `graph`, with repairs.
/// And the containers whose hand-over is pending.
fn entries(state_dir: &StateDir, graph: &Graph) -> Result<(Vec<Entry>, Vec<String>), NodeError> {
    let realizer = Realizer::new(Path::new("/"), state_dir);
    let systemd = connect_for("cannot ask systemd which units run")?;
    let podman = NodePodman::new(Some(&systemd));
    let drift = archy_switch::drift::observe(&realizer, &systemd, &podman, graph)
        .map_err(archy_switch::switch::SwitchError::from)?;
    let pending = archy_switch::drift::pending_hand_overs(&realizer, graph);
    Ok((with_repairs(graph, drift, &secrets_dir(&realizer)), pending))
}

impl Node {
    /// How the running node differs from its current generation.
    pub fn status(&self) -> Result<Status, NodeError> {
        self.status_of(None)
    }

    /// How the running node differs from generation `number` (the current
    /// one when `None`). A switch asks a new archy binary for the status of
    /// the generation it switches to, to know that binary works.
    pub fn status_of(&self, number: Option<u64>) -> Result<Status, NodeError> {
        self.running("status")?;
        let started = Instant::now();
        let live = match number {
            None => self.current()?,
            Some(n) => {
                let store = archy_store::Store::open(&self.state_dir)?;
                Some(
                    archy_build::load(&store, n).map_err(|source| NodeError::Load {
                        generation: n,
                        source: Box::new(source),
                    })?,
                )
            }
        };
        let (drift, hand_over_pending) = match &live {
            Some(l) => entries(&self.state_dir, &l.graph)?,
            None => Default::default(),
        };
        tracing::info!(
            target: "archy::timing",
            "status: {:.1} ms",
            started.elapsed().as_secs_f64() * 1e3
        );
        Ok(Status {
            generation: live.map(|l| l.record.number),
            clean: drift.is_empty(),
            drift,
            hand_over_pending,
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

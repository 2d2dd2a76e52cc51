//! Drift: how the node differs from the generation it runs, as `archy
//! status` and `archy reconcile` observe it. The observations come in as
//! data ([`crate::Observed::drift`]); the planner turns each into the same
//! kind of actions a switch takes (rewrite a file and restart what reads
//! it, start a unit, start a container's unit again), with
//! [`crate::Reason::Drifted`] as their reason.

use std::fmt;

use archy_graph::graph::generated_unit;
use archy_graph::names::UnitName;
use archy_graph::{Kind, ResourceKey};
use serde::{Deserialize, Serialize};

use crate::plan::{ChangeOp, Plan, Reason};

/// One difference between the node and its generation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "drift", rename_all = "kebab-case")]
pub enum Drift {
    /// A file, directory or secret of the generation is not on disk.
    Missing { kind: Kind, id: String },
    /// A file's bytes are not what the generation says (for a file derived
    /// from secrets: not what activation would write from them), or
    /// something else than a file is at its path.
    Content {
        kind: Kind,
        id: String,
        what: String,
    },
    /// A file's, directory's or secret's mode or owner differs.
    Metadata {
        kind: Kind,
        id: String,
        what: String,
    },
    /// A unit or Quadlet file is missing or was edited.
    UnitFile {
        unit: UnitName,
        path: String,
        what: String,
    },
    /// A unit the generation enables is not enabled: its [Install] links
    /// are gone (`systemctl disable`).
    Disabled { unit: UnitName },
    /// A unit that should run does not (`systemctl stop`, or it failed).
    Inactive { unit: UnitName, state: String },
    /// No container has the name of one the generation runs.
    ContainerMissing { container: String },
    /// The container exists but does not run.
    ContainerStopped { container: String, state: String },
    /// A container archy did not make holds a declared name.
    ContainerForeign { container: String },
    /// The container runs another image than the declared one.
    ContainerImage {
        container: String,
        declared: String,
        running: String,
    },
    /// The container's unit runs, but podman has no record of the
    /// container: podman lost its state (its database was deleted).
    PodmanLost { container: String },
    /// podman does not answer, so the containers cannot be checked.
    PodmanUnreachable { why: String },
    /// An app's data is at a newer version than the generation's code
    /// reads (a rollback could not put it back): the app is held stopped
    /// until a switch brings code that reads it. Not repaired by archy.
    DataHeld {
        app: String,
        data: String,
        on_disk: u32,
        reads: u32,
    },
}

impl fmt::Display for Drift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Drift::Missing { kind, id } => write!(f, "{kind} {id}: missing"),
            Drift::Content { kind, id, what } | Drift::Metadata { kind, id, what } => {
                write!(f, "{kind} {id}: {what}")
            }
            Drift::UnitFile { path, what, .. } => write!(f, "unit file {path}: {what}"),
            Drift::Disabled { unit } => write!(f, "unit {unit}: disabled"),
            Drift::Inactive { unit, state } => write!(f, "unit {unit}: {state}, not running"),
            Drift::ContainerMissing { container } => write!(f, "container {container}: missing"),
            Drift::ContainerStopped { container, state } => {
                write!(f, "container {container}: {state}, not running")
            }
            Drift::ContainerForeign { container } => {
                write!(f, "container {container}: made outside archy")
            }
            Drift::ContainerImage {
                container,
                declared,
                running,
            } => write!(
                f,
                "container {container}: runs image {running}, not the declared {declared}"
            ),
            Drift::PodmanLost { container } => write!(
                f,
                "container {container}: its unit runs, but podman has no record of it (podman lost its state)"
            ),
            Drift::PodmanUnreachable { why } => {
                write!(f, "podman: cannot list the containers ({why})")
            }
            Drift::DataHeld {
                app,
                data,
                on_disk,
                reads,
            } => write!(
                f,
                "app {app}: held stopped, its data {data} is at version {on_disk} and its code reads {reads}; \
                 switch to code that reads {on_disk} (or `archy rollback --keep-app {app}`): archy never starts it on data it cannot read"
            ),
        }
    }
}

impl Drift {
    /// The file, directory or secret this drift is about, if it is one.
    pub(crate) fn resource(&self) -> Option<(Kind, &str)> {
        match self {
            Drift::Missing { kind, id }
            | Drift::Content { kind, id, .. }
            | Drift::Metadata { kind, id, .. } => Some((*kind, id.as_str())),
            _ => None,
        }
    }

    /// The systemd unit this drift is about, if it is one.
    pub(crate) fn unit(&self) -> Option<UnitName> {
        match self {
            Drift::UnitFile { unit, .. }
            | Drift::Disabled { unit }
            | Drift::Inactive { unit, .. } => Some(unit.clone()),
            Drift::ContainerMissing { container }
            | Drift::ContainerStopped { container, .. }
            | Drift::ContainerImage { container, .. }
            | Drift::PodmanLost { container } => generated_unit(&ResourceKey {
                kind: Kind::Container,
                id: container.clone(),
            }),
            _ => None,
        }
    }

    /// What a person reads in a reason: the drift without its subject.
    pub(crate) fn what(&self) -> String {
        match self {
            Drift::Missing { .. } => "missing".into(),
            Drift::Content { what, .. }
            | Drift::Metadata { what, .. }
            | Drift::UnitFile { what, .. } => what.clone(),
            Drift::Disabled { .. } => "disabled".into(),
            Drift::Inactive { state, .. } => format!("{state}, not running"),
            Drift::ContainerMissing { .. } => "its container is missing".into(),
            Drift::ContainerStopped { state, .. } => format!("its container is {state}"),
            Drift::ContainerImage { running, .. } => {
                format!("its container runs another image ({running})")
            }
            other => other.to_string(),
        }
    }
}

/// What repairing `plan` does, one short phrase per action, in the order
/// apply takes them: "rewrite /etc/app.conf", "restart app.service". A
/// secret that cannot be made anew says what the operator must do
/// instead; `secrets_dir` is where its value belongs.
pub fn repairs(plan: &Plan, secrets_dir: &str) -> Vec<String> {
    let mut out = Vec::new();
    for i in &plan.images {
        out.push(format!("make image {}", i.reference));
    }
    for c in &plan.changes {
        let id = &c.key.id;
        let phrase = match (&c.op, c.key.kind, &c.reason) {
            (ChangeOp::Keep, Kind::Secret, Reason::SecretLost) => {
                format!("none by archy: {}", lost_secret_advice(id, secrets_dir))
            }
            (ChangeOp::Keep, _, Reason::FromLostSecret { secret }) => {
                format!("none until secret {secret} is restored: {id} is made from it")
            }
            (ChangeOp::Keep, _, _) | (ChangeOp::Refuse, _, _) => continue,
            (ChangeOp::Create, Kind::Dir, _) => format!("create {id}"),
            (ChangeOp::Create | ChangeOp::Update, _, _) => format!("rewrite {id}"),
            (ChangeOp::Chmod, _, _) => format!("set the mode and owner of {}", c.key),
            (ChangeOp::Generate, _, _) => format!("make secret {id} anew"),
            (ChangeOp::Adopt, _, _) => format!("remove the container {id} made outside archy"),
            (ChangeOp::Remove, _, _) => format!("remove {id}"),
        };
        out.push(phrase);
    }
    for file in &plan.unit_files_changed {
        out.push(format!("rewrite {} and its [Install] links", file.path));
    }
    if !plan.unit_files_changed.is_empty() {
        out.push("reload systemd".into());
    }
    for u in plan.touched_units() {
        let phrase = match (&u.reason, u.op) {
            (Reason::PodmanLost, _) => format!(
                "stop what is left of {} and start it again (volumes and data kept)",
                u.unit
            ),
            (_, op) => match &u.with {
                Some(root) => format!("{op} {} (with {root})", u.unit),
                None => format!("{op} {}", u.unit),
            },
        };
        out.push(phrase);
    }
    out
}

/// What to do about a secret whose value is lost and must not be made
/// anew.
pub fn lost_secret_advice(name: &str, secrets_dir: &str) -> String {
    format!(
        "secret {name} is lost, and making it anew is not safe (regenerate: false); restore its \
         value from a backup to {secrets_dir}/{name} (mode 0600), or rotate it on purpose \
         (`archy secret rotate {name}`, then `archy switch`); what uses it is left as it is"
    )
}

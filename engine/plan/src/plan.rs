//! What a switch will do: the plan that `archy diff` and `switch --dry-run`
//! print, that the switch journal records, and that apply carries out.

use std::fmt;

use archy_graph::names::UnitName;
use archy_graph::{Kind, ResourceKey};
use archy_units::UnitFile;
use serde::{Deserialize, Serialize};

/// Why something is in the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "why", rename_all = "kebab-case")]
pub enum Reason {
    /// Not in the live generation.
    New,
    /// Not in the new generation.
    Removed,
    /// Its own settings changed, in these sections.
    UnitChanged { sections: Vec<String> },
    /// Something it refers to changed.
    Reads { what: String },
    /// Only its mode or owner changed.
    Metadata { what: String },
    /// Only what a person reads changed (Description=, ...).
    Cosmetic,
    /// It changed but says it must not be restarted (`on_change: "keep"`).
    KeptRunning,
    /// It changed, but only its [Install] section: nothing to restart.
    InstallOnly,
    /// A directory that left the description: its data stays on disk.
    DataKept,
    /// A template (`foo@.service`) is never started itself.
    Template,
    /// It has no [Install] section: something else starts it.
    NotInstalled,
    /// A file archy did not write is in the way.
    NotOwned,
    /// With `--adopt`: backed up, then managed.
    Adopted,
    /// A container with this name runs that archy did not make: it is
    /// removed (its volumes and data stay) and its Quadlet unit takes over.
    ForeignContainer,
    /// It needs a unit that restarts, so systemd restarts it too.
    Follows { unit: UnitName },
    /// The node differs from the generation here (`archy reconcile`).
    Drifted { what: String },
    /// Its value is missing on disk, and making it anew is not safe (the
    /// secret says `regenerate: false`): it is left missing, and nothing
    /// that uses it is touched.
    SecretLost,
    /// It is made from a secret whose value is lost (see `SecretLost`):
    /// it cannot be written, and is left as it is.
    FromLostSecret { secret: String },
    /// A container with this name runs that archy did not make, and it is
    /// adopted as it runs (see [`crate::adopt`]): its unit is written and
    /// held, not started.
    Adopting {
        mode: crate::AdoptMode,
        differences: Vec<String>,
    },
    /// Its adopted container runs in its place: the unit is not started
    /// until the hand-over.
    HandOverPending { mode: crate::AdoptMode },
    /// The switch restarts it anyway (`because`): the adopted container is
    /// stopped and the unit started in its place.
    HandOver { because: Box<Reason> },
    /// `archy adopt --now`: the adopted container is stopped and the unit
    /// started in its place.
    HandOverAsked,
    /// A container of this name runs under rootless podman as user `uid`:
    /// a rootful archy cannot adopt it, and its unit would fight it.
    Rootless { uid: u32 },
    /// Its value is taken from the old node's file `from`, which stays.
    Imported { from: String },
    /// It is to be imported from `from`, which cannot give the value
    /// (`problem`), and it must not be made anew: the switch refuses.
    ImportMissing { from: String, problem: String },
    /// It is to be imported from `from`, which cannot give the value
    /// (`problem`); everything that uses it derives from it, so a new value is
    /// made.
    ImportMissingGenerated { from: String, problem: String },
    /// Its unit runs, but podman lost its record of the container: what
    /// is left of it is stopped and the unit started again, which makes
    /// the container anew (volumes and bind-mounted data stay).
    PodmanLost,
    /// It changed, but it is not running (a socket- or timer-activated
    /// service that was not triggered, or one stopped by hand): it stays
    /// inactive and its next start reads the new definition.
    NotRunning,
    /// `RefuseManualStart=yes`: systemd refuses a start or restart archy
    /// asks for, so archy asks for none.
    RefusesManualStart,
    /// `RefuseManualStop=yes`: systemd refuses a stop or restart archy
    /// asks for, so archy asks for none.
    RefusesManualStop,
    /// A slice is never restarted (that would restart every unit in it):
    /// systemd applies its new settings at the daemon-reload.
    Slice,
    /// A socket whose service runs is not restarted: the service holds its
    /// listening socket, so a new one could not bind. The change applies
    /// at the socket's next start.
    SocketInUse { service: UnitName },
    /// It activates a `stop-start` service: it is stopped first, so a
    /// client cannot start the service again with its old definition
    /// between the stop and the new files, and started after them.
    Activates { service: UnitName },
    /// A drop-in for it is new or changed, in these sections.
    Dropin { name: String, sections: Vec<String> },
    /// A drop-in for it left the description: its file is removed.
    DropinRemoved { name: String },
    /// Of an app declared `state: "stopped"`: stopped and disabled, never
    /// started; its data is kept.
    AppStopped { app: String },
    /// Of an app that was stopped and runs again: started.
    AppStarted { app: String },
    /// `--clobber APP` removed the app's data: its directory is made again,
    /// empty.
    Clobbered { app: String },
    /// Stopped before its app's data is snapshotted, restored or emptied,
    /// started after; or started as its data is readable again (`what`).
    Data { what: String },
    /// Its app's data is newer than its code: left stopped for the
    /// operator (see the plan's data steps).
    DataHeld { app: String },
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::New => f.write_str("new"),
            Reason::Removed => f.write_str("removed"),
            Reason::UnitChanged { sections } => {
                let list: Vec<String> = sections.iter().map(|s| format!("[{s}]")).collect();
                write!(f, "unit changed: {}", list.join(" "))
            }
            Reason::Reads { what } => write!(f, "reads {what}, which changed"),
            Reason::Metadata { what } => f.write_str(what),
            Reason::Cosmetic => f.write_str("only cosmetic keys changed"),
            Reason::KeptRunning => f.write_str("changed, but on_change is \"keep\""),
            Reason::InstallOnly => f.write_str("only [Install] changed"),
            Reason::DataKept => f.write_str("left the description; its data stays on disk"),
            Reason::Template => f.write_str("a template is not started itself"),
            Reason::NotInstalled => f.write_str("no [Install]: started by what needs it"),
            Reason::NotOwned => {
                f.write_str("exists and archy did not write it; pass --adopt to take it over")
            }
            Reason::Adopted => f.write_str("exists; backed up and taken over (--adopt)"),
            Reason::ForeignContainer => {
                f.write_str("runs, made outside archy: replaced by its Quadlet unit, volumes kept")
            }
            Reason::Follows { unit } => write!(f, "needs {unit}, which restarts"),
            Reason::Drifted { what } => write!(f, "drifted: {what}"),
            Reason::SecretLost => f.write_str(
                "missing on disk, and making it anew is not safe (regenerate: false): restore it or rotate it",
            ),
            Reason::FromLostSecret { secret } => {
                write!(f, "made from secret {secret}, which is lost: left as it is")
            }
            Reason::Adopting { mode, differences } => {
                f.write_str("runs, made outside archy: ")?;
                match mode {
                    crate::AdoptMode::InPlace => f.write_str("adopt in place"),
                    crate::AdoptMode::AtRestart => write!(
                        f,
                        "adopt, hand over at next restart (then corrected: {})",
                        differences.join(", ")
                    ),
                    crate::AdoptMode::Differs => write!(
                        f,
                        "differs: {}; adopted as it runs, never handed over by a switch",
                        differences.join(", ")
                    ),
                }
            }
            Reason::HandOverPending { mode } => match mode {
                crate::AdoptMode::Differs => f.write_str(
                    "adopted, hand-over refused (the container differs): not started",
                ),
                _ => f.write_str("adopted, hand-over pending: not started while its container runs"),
            },
            Reason::HandOver { because } => {
                write!(f, "hand-over of the adopted container ({because})")
            }
            Reason::HandOverAsked => f.write_str("hand-over of the adopted container (asked)"),
            Reason::Rootless { uid } => write!(
                f,
                "runs under rootless podman as uid {uid}: not adoptable by a rootful archy; stop it as that user (podman stop, or its systemctl --user unit), make its data readable to the declared container, then switch again; or leave it out of the description"
            ),
            Reason::Imported { from } => write!(f, "imported from {from} (left in place)"),
            Reason::ImportMissing { from, problem } => write!(
                f,
                "to be imported from {from}, but {problem}, and a new value is not safe (regenerate: false): put the old value back there, then switch again"
            ),
            Reason::ImportMissingGenerated { from, problem } => write!(
                f,
                "to be imported from {from}, but {problem}: a new value is made (everything that uses it derives from it)"
            ),
            Reason::PodmanLost => {
                f.write_str("podman lost the container: its unit is started again, volumes kept")
            }
            Reason::NotRunning => {
                f.write_str("changed, not running: left inactive, its next start reads the change")
            }
            Reason::RefusesManualStart => {
                f.write_str("not started: refuses manual start (RefuseManualStart=yes)")
            }
            Reason::RefusesManualStop => {
                f.write_str("not restarted: refuses manual stop (RefuseManualStop=yes)")
            }
            Reason::Slice => f.write_str(
                "a slice is never restarted: systemd applies its settings at the daemon-reload",
            ),
            Reason::SocketInUse { service } => write!(
                f,
                "{service} runs and holds this socket: not restarted, the change applies at its next start"
            ),
            Reason::Activates { service } => write!(
                f,
                "activates {service}, which is stopped with its old definition: stopped first, started after"
            ),
            Reason::Dropin { name, sections } if sections.is_empty() => {
                write!(f, "unit changed: drop-in {name}")
            }
            Reason::Dropin { name, sections } => {
                let list: Vec<String> = sections.iter().map(|s| format!("[{s}]")).collect();
                write!(f, "unit changed: drop-in {name} {}", list.join(" "))
            }
            Reason::DropinRemoved { name } => write!(f, "unit changed: drop-in {name} removed"),
            Reason::AppStopped { app } => {
                write!(f, "app {app} is stopped: disabled, not started, data kept")
            }
            Reason::AppStarted { app } => write!(f, "app {app} runs again"),
            Reason::Clobbered { app } => {
                write!(f, "app {app}'s data was clobbered: made again, empty")
            }
            Reason::Data { what } => f.write_str(what),
            Reason::DataHeld { app } => {
                write!(f, "app {app}'s data is newer than its code: left stopped")
            }
        }
    }
}

/// A change to a file, directory, account or secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeOp {
    /// Write (files) or create (directories, accounts).
    Create,
    /// Rewrite with new content.
    Update,
    /// Only mode or owner.
    Chmod,
    Remove,
    /// Left as it is on disk, and reported.
    Keep,
    /// Generate a secret (missing, or its version was bumped).
    Generate,
    /// Refused: the switch will not run.
    Refuse,
    /// A container made outside archy, taken over.
    Adopt,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// What changes: a file, directory, account or secret (or the unit or
    /// container in the way). Flattened, so the JSON has `kind` and `id`.
    #[serde(flatten)]
    pub key: ResourceKey,
    pub op: ChangeOp,
    pub reason: Reason,
}

/// What happens to a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UnitOp {
    Stop,
    Reload,
    Restart,
    Start,
    /// Its file changes (or not), but it is not touched.
    Skip,
}

impl fmt::Display for UnitOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UnitOp::Stop => "stop",
            UnitOp::Reload => "reload",
            UnitOp::Restart => "restart",
            UnitOp::Start => "start",
            UnitOp::Skip => "skip",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitAction {
    pub unit: UnitName,
    pub op: UnitOp,
    pub reason: Reason,
    /// A restart that systemd carries out itself when it restarts this
    /// unit (which this one `Requires=`): no job of its own, so that it
    /// restarts once, not twice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub with: Option<UnitName>,
}

/// How a missing image is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ImageOp {
    Pull,
    /// From a build context kept in the store with the generation.
    Build,
}

/// An image the new generation needs and the node does not have. Every one
/// is in place before the first unit is touched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageAction {
    pub reference: String,
    pub op: ImageOp,
    /// The containers that run it.
    pub containers: Vec<String>,
}

/// A data directory `archy switch --clobber APP` removes, after the
/// app's units are stopped. Nothing brings it back, not even a rollback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Clobber {
    pub app: String,
    pub path: String,
}

/// A switch from one generation to another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// Files, directories, accounts and secrets, in the order apply makes
    /// them: groups, users, directories, secrets, files.
    pub changes: Vec<Change>,
    /// Images to pull or build, before anything else.
    #[serde(default)]
    pub images: Vec<ImageAction>,
    /// The unit and Quadlet files to write or remove (so systemd must
    /// reload), in path order. An older archy wrote only their paths: see
    /// [`crate::legacy`].
    #[serde(deserialize_with = "crate::legacy::unit_files")]
    pub unit_files_changed: Vec<UnitFile>,
    /// Stops first (dependents before what they need), then reloads,
    /// restarts and starts (in dependency order), then the skipped ones.
    pub units: Vec<UnitAction>,
    /// How many resources stay exactly as they are.
    pub unchanged: usize,
    /// Data directories removed on the operator's explicit word
    /// (`--clobber APP`), after the stops and before the files.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clobber: Vec<Clobber>,
    /// What happens to data with a contract (`data(...)`): versions
    /// recorded, snapshots before migrations, restores and rebuilds when
    /// code goes back, after the stops and before the files.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data: Vec<crate::data::DataStep>,
}

impl Plan {
    /// True when the switch would change nothing at all.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
            && self.clobber.is_empty()
            && self
                .data
                .iter()
                .all(|d| d.op == crate::data::DataOp::Record)
            && self.images.is_empty()
            && self.unit_files_changed.is_empty()
            && self.units.iter().all(|u| u.op == UnitOp::Skip)
    }

    /// The refusals that stop the switch before it starts.
    pub fn refusals(&self) -> impl Iterator<Item = &Change> {
        self.changes.iter().filter(|c| c.op == ChangeOp::Refuse)
    }

    /// The secrets whose value is lost and must not be made anew: the plan
    /// keeps them missing; a switch refuses, a reconcile reports them.
    pub fn lost_secrets(&self) -> impl Iterator<Item = &Change> {
        self.changes
            .iter()
            .filter(|c| c.key.kind == Kind::Secret && c.reason == Reason::SecretLost)
    }

    /// The units a switch touches (every op but skip).
    pub fn touched_units(&self) -> impl Iterator<Item = &UnitAction> {
        self.units.iter().filter(|u| u.op != UnitOp::Skip)
    }
}

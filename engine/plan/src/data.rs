//! Data across switches: each data contract's directory is at some version
//! on the node (recorded by archy), and each generation's code reads one
//! version. A switch that raises it migrates (snapshot first, unless the
//! data is rebuildable); one that lowers it restores a snapshot, empties
//! rebuildable data, or, for forward-only data, refuses (a switch or
//! `archy rollback`) or leaves the app stopped for the operator (the
//! rollback of a failed switch, which cannot refuse).
//!
//! Pure like the rest of the planner: the versions on disk, the snapshots
//! kept and whether forward-only data was opened since its snapshot come
//! in as [`Observed`] data.

use std::fmt;

use archy_graph::Graph;
use archy_graph::data::{DataKind, DataSpec, contracts, owner};
use archy_graph::names::UnitName;
use archy_units::UnitSource;
use serde::{Deserialize, Serialize};

use crate::diff::Observed;
use crate::plan::{Reason, UnitAction, UnitOp};

/// What the plan may do with data newer than the new generation's code.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DataMode {
    /// A switch or `archy rollback`, which the operator asked for: going
    /// back over forward-only data is refused, as is restoring a snapshot
    /// the node does not have.
    #[default]
    Switch,
    /// The rollback of a switch that failed: it cannot refuse, so what
    /// cannot go back safely is held (its app left stopped).
    UndoFailed,
    /// A reconcile or status: the generation stays; data newer than its
    /// code is held, nothing is restored or emptied.
    Keep,
}

/// A complete snapshot the node keeps of a contract's directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotSeen {
    /// The generation whose switch took it (before its migration).
    pub generation: u64,
    /// The version the data was at in it.
    pub version: u32,
    /// Forward-only data: whether the contract's `opened` file differs
    /// between the directory and the snapshot (the app opened the data for
    /// writing since). None: not known (no `opened` file declared).
    pub opened: Option<bool>,
}

/// What happens to one contract's directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "op")]
pub enum DataOp {
    /// The version is recorded; the data is not touched.
    Record,
    /// The app was held (its data newer than the live generation's code);
    /// the new code reads the data again, so its units are started.
    Resume,
    /// The new code migrates it: the version is raised (after a snapshot
    /// when `snapshot`) before the app starts.
    Migrate { snapshot: bool },
    /// Put back from the snapshot taken by the switch to `generation`.
    Restore { generation: u64 },
    /// Emptied: the older code makes it again, at this cost.
    Rebuild { cost: String },
    /// Left as it is, with its app stopped: the node needs an operator.
    Hold { why: String },
    /// The switch is refused before anything is done.
    Refuse { why: String },
}

/// One contract's step in a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataStep {
    pub name: String,
    /// The app whose data it is (its units are stopped around the step).
    pub app: Option<String>,
    pub path: String,
    pub kind: DataKind,
    /// The version on the node; none: never recorded.
    pub from: Option<u32>,
    /// The version the new generation's code reads.
    pub to: u32,
    #[serde(flatten)]
    pub op: DataOp,
}

impl DataStep {
    /// Whether the step touches the data (so the app must be stopped).
    pub fn touches_data(&self) -> bool {
        match &self.op {
            DataOp::Migrate { snapshot } => *snapshot,
            DataOp::Restore { .. } | DataOp::Rebuild { .. } => true,
            _ => false,
        }
    }

    /// Whether the step changes what is recorded (and so is journaled).
    pub fn records(&self) -> bool {
        !matches!(
            self.op,
            DataOp::Hold { .. } | DataOp::Refuse { .. } | DataOp::Resume
        )
    }

    /// What the app's units are stopped for.
    fn while_(&self) -> String {
        match &self.op {
            DataOp::Migrate { .. } => format!("stopped while data {} is snapshotted", self.name),
            DataOp::Restore { .. } => format!("stopped while data {} is restored", self.name),
            _ => format!("stopped while data {} is emptied", self.name),
        }
    }
}

impl fmt::Display for DataStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let from = self
            .from
            .map_or_else(|| "none".to_string(), |v| v.to_string());
        let versions = format!("{} data {from} -> {} ({})", self.name, self.to, self.kind);
        match &self.op {
            DataOp::Record => write!(
                f,
                "record   {} data at version {} ({}), {}",
                self.name, self.to, self.kind, self.path
            ),
            DataOp::Resume => write!(
                f,
                "resume   {} data at version {} ({}): the new code reads it, its app starts again",
                self.name, self.to, self.kind
            ),
            DataOp::Migrate { snapshot: true } => {
                write!(f, "migrate  {versions}, snapshot first")
            }
            DataOp::Migrate { snapshot: false } => write!(f, "migrate  {versions}"),
            DataOp::Restore { generation } => write!(
                f,
                "restore  {versions} from the snapshot taken before generation {generation}"
            ),
            DataOp::Rebuild { cost } => write!(f, "rebuild  {versions}: emptied; {cost}"),
            DataOp::Hold { why } => write!(f, "HOLD     {versions}: {why}"),
            DataOp::Refuse { why } => write!(f, "REFUSE   {versions}: {why}"),
        }
    }
}

/// The data steps of a switch from `live` to `new`: one per contract of
/// `new` whose directory's version changes or was never recorded.
pub fn steps(live: Option<&Graph>, new: &Graph, observed: &Observed) -> Vec<DataStep> {
    contracts(new)
        .filter_map(|c| {
            let app = owner(new, c)
                .or_else(|| live.and_then(|g| owner(g, c)))
                .map(|a| a.name.to_string());
            let from = observed.data.get(c.name.as_str()).copied();
            // Held under the live generation: its code read less.
            let was_held = live
                .and_then(|g| archy_graph::data::contract(g, c.name.as_str()))
                .zip(from)
                .is_some_and(|(old, from)| from > old.version);
            let op = match decide(c, from, app.as_deref(), observed) {
                None if was_held => DataOp::Resume,
                other => other?,
            };
            Some(DataStep {
                name: c.name.to_string(),
                app,
                path: c.path.to_string(),
                kind: c.kind,
                from,
                to: c.version,
                op,
            })
        })
        .collect()
}

fn decide(c: &DataSpec, from: Option<u32>, app: Option<&str>, o: &Observed) -> Option<DataOp> {
    let Some(from) = from else {
        return Some(DataOp::Record);
    };
    if from == c.version {
        return None;
    }
    if from < c.version {
        return Some(match o.data_mode {
            // The generation that runs already runs on it.
            DataMode::Keep => DataOp::Record,
            _ => DataOp::Migrate {
                snapshot: c.kind.snapshots(),
            },
        });
    }
    let app = app.unwrap_or(c.name.as_str());
    let snapshot = || {
        o.snapshots
            .get(c.name.as_str())
            .into_iter()
            .flatten()
            .filter(|s| s.version == c.version)
            .max_by_key(|s| s.generation)
    };
    Some(match (o.data_mode, c.kind) {
        (DataMode::Keep, _) => DataOp::Hold {
            why: format!(
                "{app}'s code reads version {}; it stays stopped until a switch brings code that reads {from}",
                c.version
            ),
        },
        (_, DataKind::Rebuildable) => DataOp::Rebuild {
            cost: c
                .rebuild
                .clone()
                .unwrap_or_else(|| format!("{app} makes it again")),
        },
        (DataMode::Switch, DataKind::Snapshot) => match snapshot() {
            Some(s) => DataOp::Restore {
                generation: s.generation,
            },
            None => DataOp::Refuse {
                why: format!(
                    "the node keeps no snapshot of it at version {}; `--keep-app {app}` goes back with everything else",
                    c.version
                ),
            },
        },
        (DataMode::Switch, DataKind::ForwardOnly) => DataOp::Refuse {
            why: format!(
                "{app} ran on it at version {from}, and forward-only data is never put back; \
                 `archy rollback --keep-app {app}` goes back with everything else, {app} staying on its newer code"
            ),
        },
        (DataMode::UndoFailed, DataKind::Snapshot) => match snapshot() {
            Some(s) => DataOp::Restore {
                generation: s.generation,
            },
            None => DataOp::Hold {
                why: format!("there is no snapshot of it at version {}", c.version),
            },
        },
        (DataMode::UndoFailed, DataKind::ForwardOnly) => match snapshot() {
            Some(s) if s.opened == Some(false) => DataOp::Restore {
                generation: s.generation,
            },
            Some(s) if s.opened == Some(true) => DataOp::Hold {
                why: format!(
                    "{app} opened it for writing after the migration ({} changed since the snapshot), so the snapshot is never put back",
                    c.opened.as_deref().unwrap_or("its data")
                ),
            },
            Some(_) => DataOp::Hold {
                why: "its contract names no file that shows whether the new code opened it, so the snapshot is never put back".into(),
            },
            None => DataOp::Hold {
                why: format!("there is no snapshot of it at version {}", c.version),
            },
        },
    })
}

/// The data steps that stop a switch before it starts.
pub fn refusals(steps: &[DataStep]) -> impl Iterator<Item = &DataStep> {
    steps
        .iter()
        .filter(|s| matches!(s.op, DataOp::Refuse { .. }))
}

/// The data steps that leave an app stopped for the operator.
pub fn holds(steps: &[DataStep]) -> impl Iterator<Item = &DataStep> {
    steps.iter().filter(|s| matches!(s.op, DataOp::Hold { .. }))
}

/// The unit jobs around the data steps: an app whose data is snapshotted,
/// restored or emptied is stopped before (with its old definition) and
/// started after; an app whose data is held is stopped and not started.
pub(crate) fn stop_for_data(
    new: &Graph,
    steps: &[DataStep],
    sources: &[UnitSource],
    observed: &Observed,
    actions: &mut Vec<UnitAction>,
    stops: &mut Vec<UnitName>,
    stop_first: &mut Vec<UnitName>,
) {
    let runs = |u: &UnitSource| {
        !u.is_template()
            && !observed.inactive_units.contains(&u.unit)
            && !u.refuses_manual_stop()
            && u.stopped_app.is_none()
    };
    for step in steps {
        let who = step.app.clone().unwrap_or_else(|| step.name.clone());
        let units = archy_graph::data::contract(new, &step.name)
            .map(|c| archy_graph::data::units(new, c))
            .unwrap_or_default();
        let ours = sources.iter().filter(|u| units.contains(&u.unit));
        if step.op == DataOp::Resume {
            for u in ours.filter(|u| {
                u.installed()
                    && !u.is_template()
                    && u.stopped_app.is_none()
                    && !u.refuses_manual_start()
                    && observed.inactive_units.contains(&u.unit)
            }) {
                let what = format!("data {} was held; its code reads it again", step.name);
                start(actions, &u.unit, Reason::Data { what }, true);
            }
        } else if matches!(step.op, DataOp::Hold { .. }) {
            for u in ours {
                actions.retain(|a| a.unit != u.unit);
                stop_first.retain(|s| *s != u.unit);
                // A repair leaves a held app as the rollback left it.
                let stop = observed.data_mode != DataMode::Keep && runs(u);
                if stop && !stops.contains(&u.unit) {
                    stops.push(u.unit.clone());
                }
                actions.push(UnitAction {
                    unit: u.unit.clone(),
                    op: UnitOp::Skip,
                    reason: Reason::DataHeld { app: who.clone() },
                    with: None,
                });
            }
        } else if step.touches_data() {
            for u in ours {
                let running = runs(u);
                let restarted = actions
                    .iter()
                    .any(|a| a.unit == u.unit && matches!(a.op, UnitOp::Restart | UnitOp::Start));
                if !running && !restarted {
                    continue;
                }
                if running && !stop_first.contains(&u.unit) {
                    stop_first.push(u.unit.clone());
                }
                let what = step.while_();
                start(actions, &u.unit, Reason::Data { what }, false);
            }
        }
    }
}

/// Makes `unit`'s job a start, for `reason`: the reason of a job it had
/// already is kept unless it says less (`replace`: always replaced).
fn start(actions: &mut Vec<UnitAction>, unit: &UnitName, reason: Reason, replace: bool) {
    match actions.iter_mut().find(|a| &a.unit == unit) {
        Some(a) => {
            a.op = UnitOp::Start;
            if replace || matches!(a.reason, Reason::KeptRunning | Reason::NotRunning) {
                a.reason = reason;
            }
        }
        None => actions.push(UnitAction {
            unit: unit.clone(),
            op: UnitOp::Start,
            reason,
            with: None,
        }),
    }
}

//! A switch from the current generation to another: plan, record the plan
//! in the journal, apply (stops, files, daemon-reload, starts), run the
//! health gate, then commit, or go back to the last good generation with
//! the same machinery.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use archy_graph::{Digest, Graph, Resource};
use archy_plan::{Change, ChangeOp, Observed, Plan, Reason, UnitOp};
use archy_realize::Realizer;
use archy_store::{Outcome as Recorded, Store};
use archy_systemd::ServiceManager;

use crate::containers::{self, ContainerError, ImageFailure, PodmanAccess, Unreachable};
use crate::health::{self, DeadUnit, Unhealthy};
use crate::journal::{Journal, Phase, Rollback};
use crate::units::{self, UnitFailure};

mod reconcile;
pub use reconcile::Reconciled;

/// What a switch needs.
#[derive(Debug)]
pub struct Switcher<'a> {
    pub store: &'a Store,
    pub realizer: &'a Realizer,
    pub systemd: &'a dyn ServiceManager,
    /// Reached only for generations with containers, networks or volumes.
    pub podman: &'a dyn PodmanAccess,
    /// Take over files archy did not write (backing them up).
    pub adopt: bool,
    /// Who is switching, for the journal.
    pub command: String,
    /// How long one unit job may take.
    pub job_timeout: Duration,
    /// Apps whose data directories this switch removes (`--clobber APP`,
    /// confirmed by the operator). Never the rollback's: data removed
    /// stays removed.
    pub clobber: archy_plan::Clobbering,
}

/// How a switch ended.
#[derive(Debug)]
pub enum Outcome {
    /// The node runs the new generation and it passed its health gate.
    Switched { to: u64, plan: Plan },
    /// The node already ran it: nothing was done.
    Unchanged { to: u64 },
    /// The new generation failed; the node is back on `back_to` (none: the
    /// node runs nothing archy manages, as before the first switch).
    RolledBack {
        failed: u64,
        back_to: Option<u64>,
        why: Vec<String>,
        /// Apps whose data could not go back with their code: left
        /// stopped, data kept, for the operator (one line each, with what
        /// to do).
        held: Vec<String>,
    },
}

/// A switch that could not run, or could not finish cleanly.
#[derive(Debug, thiserror::Error)]
pub enum SwitchError {
    /// The plan refuses (a file archy did not write is in the way):
    /// nothing was changed.
    #[error("the switch would overwrite what archy did not write:\n{}", list(.0))]
    Refused(Vec<Change>),
    /// The plan refuses for a reason of the node's own (a secret to be
    /// imported whose file cannot give it and that must not be made anew,
    /// a container that runs rootless): nothing was changed.
    #[error("{}; nothing was changed", list_refusals(.0))]
    RefusedBecause(Vec<Change>),
    /// Code would go back over data it cannot read, and the data may not
    /// be put back (forward-only) or has no snapshot: nothing was changed.
    #[error(
        "the switch would run code older than its data, which may not go back:\n{}\nnothing was changed",
        .0.iter().map(|s| format!("  {s}")).collect::<Vec<_>>().join("\n")
    )]
    DataRefused(Vec<archy_plan::data::DataStep>),
    /// An image could not be pulled or built: nothing was changed.
    #[error("an image the generation needs could not be made, so nothing was changed: {0}")]
    Image(#[from] ImageFailure),
    /// podman could not be reached.
    #[error("podman: {0}")]
    PodmanUnreachable(#[from] Unreachable),
    /// podman could not be asked what the plan needs to know.
    #[error("podman: {0}")]
    Podman(#[from] archy_podman::Error),
    /// podman does not list its containers, so a reconcile cannot tell
    /// what to repair; `why` is what podman said.
    #[error(
        "podman: it cannot list the containers, so archy cannot tell what to repair ({why}); \
         see `journalctl -u podman.service`. If podman's database is damaged, move \
         /var/lib/containers/storage/db.sql aside: the next reconcile makes the \
         containers anew from the generation, their volumes and data kept"
    )]
    PodmanUnlisted { why: String },
    #[error("cannot load generation {generation}: {source}")]
    Load {
        generation: u64,
        #[source]
        source: Box<archy_build::LoadError>,
    },
    #[error("the store: {0}")]
    Store(#[from] archy_store::StoreError),
    #[error("the switch journal: {0}")]
    Journal(#[from] crate::journal::JournalError),
    #[error("cannot look at the node: {0}")]
    Observe(#[source] archy_realize::Error),
    #[error("systemd: {0}")]
    Systemd(#[from] archy_systemd::Error),
    /// A secret the node had is gone and must not be made anew (its
    /// `regenerate` is false): nothing was changed.
    #[error(
        "{}; nothing was changed",
        .0.iter().map(|c| archy_plan::drift::lost_secret_advice(&c.key.id, &.1)).collect::<Vec<_>>().join("\n")
    )]
    SecretsLost(Vec<Change>, String),
    #[error("{0}")]
    Drift(#[from] crate::drift::DriftError),
    /// A reconcile applied its repairs, but the generation's health checks
    /// still fail. There is no other generation to go back to.
    #[error(
        "generation {generation} was repaired, but the node is still not healthy (nothing to roll back to):\n  {}",
        .why.join("\n  ")
    )]
    Unrepaired { generation: u64, why: Vec<String> },
    /// Going back failed too: the node needs a person.
    #[error(
        "generation {failed} failed ({why}), and going back to {back_to} failed as well: {rollback}"
    )]
    RollbackFailed {
        failed: u64,
        back_to: String,
        why: String,
        rollback: String,
    },
}

fn list_refusals(changes: &[Change]) -> String {
    changes
        .iter()
        .map(|c| format!("{} {}: {}", c.key.kind.as_str(), c.key.id, c.reason))
        .collect::<Vec<_>>()
        .join("\n")
}

fn list(changes: &[Change]) -> String {
    changes
        .iter()
        .map(|c| format!("  {}: {}", c.key, c.reason))
        .collect::<Vec<_>>()
        .join("\n")
}

/// What the node has that a plan for `graph` depends on: paths in the way
/// and missing secrets (the realizer), missing images and containers archy
/// did not make (podman, asked only when the graph has containers).
pub fn observe(
    realizer: &Realizer,
    podman: &dyn PodmanAccess,
    graph: &Graph,
    adopt: bool,
) -> Result<Observed, SwitchError> {
    let mut observed = realizer
        .observe(graph, adopt)
        .map_err(SwitchError::Observe)?;
    if containers::uses_podman(graph) {
        containers::observe(podman.podman()?, graph, &mut observed)?;
        for (name, adoption) in &mut observed.adoptions {
            adoption.held = crate::adopt::is_held(realizer.root(), name);
        }
        observed.rootless = crate::rootless::rootless_containers(&realizer.root().join("proc"));
    }
    Ok(observed)
}

/// The units of `live` that systemd reports not running, in one call: a
/// changed unit is restarted only if it runs (NixOS's rule), so the plan
/// needs to know. Without systemd (an image built offline) every unit is
/// taken to run.
pub fn observe_units(
    systemd: Option<&dyn ServiceManager>,
    live: Option<&Graph>,
    new: &Graph,
    observed: &mut Observed,
) -> Result<(), SwitchError> {
    use archy_units::GraphUnits as _;
    let Some(systemd) = systemd else {
        return Ok(());
    };
    // The new generation's drop-ins too: a drop-in restarts its unit (which
    // may not be archy's) only if it runs.
    let new_dropins = new.unit_sources().into_iter().filter(|u| u.is_dropin());
    let mut units: Vec<_> = live
        .map(|g| g.unit_sources())
        .unwrap_or_default()
        .into_iter()
        .chain(new_dropins)
        .filter(|u| !u.is_template())
        .map(|u| u.unit)
        .collect();
    units.sort();
    units.dedup();
    if units.is_empty() {
        return Ok(());
    }
    observed.inactive_units = systemd
        .unit_activity(&units)?
        .into_iter()
        .filter(|a| !a.is_up())
        .map(|a| a.unit)
        .collect();
    Ok(())
}

/// The plan of a switch from `live` to `new`, from what the node has: the
/// one plan that `archy diff`, `archy switch --dry-run` and the switch
/// itself carry out. Without `podman` (an image built offline under
/// `--root`, where no podman runs) the images and containers are not
/// looked at: the node makes them at its first switch.
pub fn plan_switch(
    realizer: &Realizer,
    podman: Option<&dyn PodmanAccess>,
    systemd: Option<&dyn ServiceManager>,
    live: Option<&Graph>,
    new: &Graph,
    adopt: bool,
) -> Result<Plan, SwitchError> {
    plan_switch_clobbering(
        realizer,
        podman,
        systemd,
        live,
        new,
        adopt,
        &Default::default(),
    )
}

/// [`plan_switch`], removing the data directories of the apps `clobber`
/// names (`archy switch --clobber APP`).
pub fn plan_switch_clobbering(
    realizer: &Realizer,
    podman: Option<&dyn PodmanAccess>,
    systemd: Option<&dyn ServiceManager>,
    live: Option<&Graph>,
    new: &Graph,
    adopt: bool,
    clobber: &archy_plan::Clobbering,
) -> Result<Plan, SwitchError> {
    let mut observed = observe_all(realizer, podman, systemd, live, new, adopt)?;
    observed.clobber = clobber.clone();
    Ok(archy_plan::plan(live, new, &observed))
}

/// Everything a plan from `live` to `new` depends on (see [`plan_switch`]).
fn observe_all(
    realizer: &Realizer,
    podman: Option<&dyn PodmanAccess>,
    systemd: Option<&dyn ServiceManager>,
    live: Option<&Graph>,
    new: &Graph,
    adopt: bool,
) -> Result<Observed, SwitchError> {
    let mut observed = match podman {
        Some(podman) => observe(realizer, podman, new, adopt)?,
        None => realizer.observe(new, adopt).map_err(SwitchError::Observe)?,
    };
    observe_units(systemd, live, new, &mut observed)?;
    crate::data::observe(realizer.state_dir(), realizer.root(), new, &mut observed);
    Ok(observed)
}

/// The crash tests' hook (feature `crash-points` only): with
/// `ARCHY_PAUSE_AFTER=<step>` in its environment, a switch stops for a
/// minute right after recording `step` (`planned`, `applying`, `files`,
/// `daemon-reload`, `restart x.service`, `health-gate`, ...) in its
/// journal, so a test can kill it exactly there. A rollback's steps are
/// `rollback <step>` (`rollback planned`, `rollback files`, `rollback
/// health-gate`, ...). Unset, it does nothing.
#[cfg(feature = "crash-points")]
fn pause_point(step: &str) {
    if std::env::var("ARCHY_PAUSE_AFTER").is_ok_and(|s| s == step) {
        tracing::warn!("pausing after {step} (ARCHY_PAUSE_AFTER)");
        std::thread::sleep(Duration::from_secs(60));
    }
}

/// Without the feature `crash-points`, a production switch has no hook.
#[cfg(not(feature = "crash-points"))]
fn pause_point(_step: &str) {}

/// The crash point of `step`: a rollback's steps are `rollback <step>`, so
/// that a test can stop the way back rather than the switch.
fn crash_point(journal: &Journal, step: &str) -> String {
    if journal.rollback.is_some() {
        format!("rollback {step}")
    } else {
        step.to_string()
    }
}

/// The units `graph` wants running, which the default failed-unit gate
/// watches after a switch's jobs: those started at boot (an [Install]
/// section), containers' services, and those `plan` starts or restarts;
/// not templates, not oneshot services that are done once their command
/// ran, not units that refuse a manual start, and not units that opted
/// out with `health: false`.
pub fn wanted_running(graph: &Graph, plan: &Plan) -> Vec<archy_systemd::UnitName> {
    use archy_units::GraphUnits as _;
    let started: std::collections::BTreeSet<&str> = plan
        .units
        .iter()
        .filter(|a| matches!(a.op, UnitOp::Start | UnitOp::Restart))
        .map(|a| a.unit.as_str())
        .collect();
    graph
        .unit_sources()
        .into_iter()
        .filter(|u| {
            let opted_in = match &u.node.resource {
                Resource::Unit(spec) => spec.health,
                Resource::Container(spec) => spec.health,
                Resource::Instance(spec) => spec.health,
                _ => true,
            };
            // A drop-in's unit is watched only when the plan starts or
            // restarts it: archy does not own it.
            let wanted = match u.role {
                archy_units::units::Role::Dropin => started.contains(u.unit.as_str()),
                _ => {
                    u.installed()
                        || matches!(u.node.resource, Resource::Container(_))
                        || started.contains(u.unit.as_str())
                }
            };
            // A stopped app's units are not run, so not watched.
            opted_in
                && wanted
                && u.stopped_app.is_none()
                && !u.refuses_manual_start()
                && !u.is_template()
                && u.stays_active()
        })
        .map(|u| u.unit)
        // A unit and a drop-in of it are one unit.
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// A graph with nothing in it: where a failed first switch goes back to.
pub fn empty_graph() -> Graph {
    Graph {
        root: Digest::of(b""),
        facts: BTreeMap::new(),
        nodes: Vec::new(),
        blobs: BTreeMap::new(),
        contexts: BTreeMap::new(),
        sources: BTreeMap::new(),
    }
}

/// What the operator of a node whose app `step` holds is told.
fn held_advice(step: &archy_plan::data::DataStep, failed: u64, back_to: Option<u64>) -> String {
    let app = step.app.as_deref().unwrap_or(step.name.as_str());
    let on = back_to.map_or("no generation".to_string(), |n| format!("generation {n}"));
    let why = match &step.op {
        archy_plan::data::DataOp::Hold { why } => why.as_str(),
        _ => "",
    };
    format!(
        "{app} is stopped and its data kept as generation {failed} left it: {} is at data version {} and {on} reads {} ({why}). \
         Do not start {app} by hand. Fix what failed and switch to a description whose {app} reads version {} or later \
         (`archy switch`), or `archy rollback --keep-app {app}` to run the rest as before with {app} on its newer code",
        step.path,
        step.from.map_or_else(|| "?".into(), |v| v.to_string()),
        step.to,
        step.from.map_or_else(|| "?".into(), |v| v.to_string()),
    )
}

/// Why applying or the gate failed, in words.
enum Failure {
    Unit(UnitFailure),
    Files(archy_realize::Error),
    Reload(archy_systemd::Error),
    Unhealthy(Vec<Unhealthy>),
    /// Units the generation wants running died after their jobs.
    Dead(Vec<DeadUnit>),
    Journal(crate::journal::JournalError),
    Podman(Box<ContainerError>),
    /// The images of a rollback's target could not be made.
    Images(Box<SwitchError>),
    /// podman's lost state could not be cleared.
    LostState(String),
    /// A data step (snapshot, restore, rebuild, record) failed.
    Data {
        name: String,
        why: String,
    },
}

impl Failure {
    fn lines(&self) -> Vec<String> {
        match self {
            Failure::Unit(u) => vec![u.to_string()],
            Failure::Files(e) => vec![format!("writing files: {e}")],
            Failure::Reload(e) => vec![format!("daemon-reload: {e}")],
            Failure::Unhealthy(checks) => {
                checks.iter().map(|c| format!("health check {c}")).collect()
            }
            Failure::Dead(units) => units.iter().map(ToString::to_string).collect(),
            Failure::Journal(e) => vec![format!("the switch journal: {e}")],
            Failure::Podman(e) => vec![format!("podman: {e}")],
            Failure::Images(e) => vec![format!("podman: {e}")],
            Failure::LostState(e) => vec![format!("podman: {e}")],
            Failure::Data { name, why } => vec![format!("data {name}: {why}")],
        }
    }
}

impl Switcher<'_> {
    fn load(&self, n: u64) -> Result<Graph, SwitchError> {
        archy_build::load(self.store, n)
            .map(|l| l.graph)
            .map_err(|source| SwitchError::Load {
                generation: n,
                source: Box::new(source),
            })
    }

    /// What the node has that the plan depends on: paths in the way and
    /// missing secrets (the realizer), missing images and containers archy
    /// did not make (podman).
    fn observe(&self, graph: &Graph, adopt: bool) -> Result<Observed, SwitchError> {
        observe(self.realizer, self.podman, graph, adopt)
    }

    /// Where the secrets' values are kept, for what the operator reads.
    fn secrets_dir(&self) -> String {
        self.realizer.state_dir().secrets().display().to_string()
    }

    /// Pulls and builds the plan's images, before anything is changed.
    fn make_images(&self, graph: &Graph, plan: &Plan) -> Result<(), SwitchError> {
        if plan.images.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        containers::make_images(self.podman.podman()?, graph, plan)?;
        tracing::info!(
            target: "archy::timing",
            "images: {} made in {:.1} ms",
            plan.images.len(),
            started.elapsed().as_secs_f64() * 1e3
        );
        Ok(())
    }

    /// Switches the node to generation `to`: see the module comment.
    pub fn switch(&self, to: u64) -> Result<Outcome, SwitchError> {
        self.switch_handing_over(to, &Default::default())
    }

    /// [`Switcher::switch`], handing over the adopted containers
    /// `hand_over` names as well (`archy adopt --now`): each is stopped
    /// and its unit started in its place.
    pub fn switch_handing_over(
        &self,
        to: u64,
        hand_over: &std::collections::BTreeSet<String>,
    ) -> Result<Outcome, SwitchError> {
        let from = self.store.current()?;
        let live = from.map(|n| self.load(n)).transpose()?;
        let new = self.load(to)?;
        let mut observed = observe_all(
            self.realizer,
            Some(self.podman),
            Some(self.systemd),
            live.as_ref(),
            &new,
            self.adopt,
        )?;
        observed.clobber = self.clobber.clone();
        observed.hand_over = hand_over.clone();
        let mut plan = archy_plan::plan(live.as_ref(), &new, &observed);
        if from == Some(to) && plan.is_empty() {
            // The generation that runs: nothing to write, but the units it
            // wants running that are not (stopped by hand) are started,
            // as a reconcile would.
            let stopped = self.stopped_units(&new, &observed.inactive_units)?;
            if stopped.is_empty() {
                return Ok(Outcome::Unchanged { to });
            }
            // What the node has was just observed: only the stopped units
            // are added.
            observed.drift = stopped;
            plan = archy_plan::plan(live.as_ref(), &new, &observed);
        }
        let (own, refused): (Vec<Change>, Vec<Change>) = plan.refusals().cloned().partition(|c| {
            matches!(
                c.reason,
                Reason::ImportMissing { .. } | Reason::Rootless { .. }
            )
        });
        if !own.is_empty() {
            return Err(SwitchError::RefusedBecause(own));
        }
        if !refused.is_empty() {
            return Err(SwitchError::Refused(refused));
        }
        let refused: Vec<_> = archy_plan::data::refusals(&plan.data).cloned().collect();
        if !refused.is_empty() {
            return Err(SwitchError::DataRefused(refused));
        }
        // A lost wallet password must not be replaced by a new one behind
        // the operator's back: the switch waits until it is restored (or
        // rotated on purpose).
        let lost: Vec<Change> = plan.lost_secrets().cloned().collect();
        if !lost.is_empty() {
            return Err(SwitchError::SecretsLost(lost, self.secrets_dir()));
        }
        if from == Some(to) && plan.is_empty() {
            return Ok(Outcome::Unchanged { to });
        }
        // Recovery will run `<state>/bin/archy` once this generation's
        // archy-recover.service is written: it must exist first.
        if crate::self_update::archy_artifact(&new).is_some() {
            crate::self_update::ensure_recovery_binary(self.store);
        }
        // Every image is in place before the journal exists: a failed pull
        // or build ends the switch with nothing changed.
        self.make_images(&new, &plan)?;
        let mut journal = Journal {
            from,
            to,
            back_to: self
                .store
                .last_good()?
                .filter(|g| *g != to)
                .or(from.filter(|f| *f != to)),
            phase: Phase::Planned,
            plan: plan.clone(),
            done: Vec::new(),
            command: self.command.clone(),
            rollback: None,
            format1: false,
        };
        journal.save(self.store.state_dir())?;
        pause_point("planned");
        let result = self
            .apply(&new, &plan, &mut journal)
            .and_then(|()| self.gate(&new, &mut journal));
        match result {
            Ok(()) => {
                self.commit(from, to, &new)?;
                Ok(Outcome::Switched { to, plan })
            }
            // A switch to the generation that runs (a secret made anew) has
            // no other generation to go back to: going "back" to nothing
            // would remove everything archy manages.
            Err(failure) if from == Some(to) && journal.back_to.is_none() => {
                Journal::finish(self.store.state_dir())?;
                Err(SwitchError::Unrepaired {
                    generation: to,
                    why: failure.lines(),
                })
            }
            Err(failure) => self.roll_back(&new, &mut journal, failure.lines(), false),
        }
    }

    /// The units `graph` wants running that are not (stopped by hand), as
    /// drift. Only those the plan saw down (`inactive`, from the same
    /// generation) can be: they are asked again, for a failed condition,
    /// and no question at all is asked when every unit runs.
    fn stopped_units(
        &self,
        graph: &Graph,
        inactive: &std::collections::BTreeSet<archy_systemd::UnitName>,
    ) -> Result<Vec<archy_plan::Drift>, SwitchError> {
        use archy_units::GraphUnits as _;
        let refuses: std::collections::BTreeSet<String> = graph
            .unit_sources()
            .iter()
            .filter(|u| u.refuses_manual_start())
            .map(|u| u.unit.to_string())
            .collect();
        // A held unit waits for its hand-over: its adopted container runs.
        let root = self.realizer.root();
        let held = |u: &archy_systemd::UnitName| {
            crate::adopt::is_held(root, u.as_str().trim_end_matches(".service"))
        };
        let units: Vec<_> = crate::drift::units_that_run(graph)
            .into_iter()
            .filter(|u| !refuses.contains(u.as_str()) && inactive.contains(u) && !held(u))
            .collect();
        if units.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self
            .systemd
            .unit_activity(&units)?
            .into_iter()
            .filter(|a| !a.is_up() && !a.condition_failed)
            .map(|a| archy_plan::Drift::Inactive {
                state: format!("{} ({})", a.active_state, a.sub_state),
                unit: a.unit,
            })
            .collect())
    }

    /// Finishes or undoes a switch that was interrupted (archy killed, the
    /// node rebooted), from its journal: nothing had changed yet (planned)
    /// ends it; an interrupted apply goes back to where the switch came
    /// from; an interrupted health gate is run again, and the switch is
    /// committed or rolled back by its result; an interrupted rollback, at
    /// whatever step, is finished (the failed generation is never
    /// committed). Every temp file the interrupted steps could have left
    /// is removed first. `None` when no switch was in flight.
    pub fn recover(&self) -> Result<Option<Outcome>, SwitchError> {
        let Some(mut journal) = Journal::load(self.store.state_dir())? else {
            return Ok(None);
        };
        let to = journal.to;
        let new = self.load(to)?;
        self.remove_temp_files(&journal, &new)?;
        if journal.from == Some(to) {
            // A reconcile (or a switch to the generation that already ran)
            // has no other generation to go back to: the node stays on it,
            // and the next reconcile repairs whatever is still off.
            Journal::finish(self.store.state_dir())?;
            return Ok(Some(Outcome::Unchanged { to }));
        }
        if let Some(rollback) = journal.rollback.clone() {
            // The switch failed (or was cut off) and its rollback was
            // interrupted: whatever step it reached, it is carried out
            // again from the start (each step is idempotent) and finished.
            return self
                .roll_back(&new, &mut journal, rollback.why, rollback.interrupted)
                .map(Some);
        }
        if journal.format1 && journal.phase != Phase::Planned && self.failed_before(to)? {
            // A format 1 journal of a rollback in flight: that archy marked
            // the generation failed, then journaled the rollback's steps
            // over the switch's. The rollback is finished, never the
            // switch committed.
            let why = self
                .store
                .generation(to)?
                .outcome_reason
                .map_or_else(Vec::new, |r| vec![r]);
            return self.roll_back(&new, &mut journal, why, false).map(Some);
        }
        match journal.phase {
            Phase::Planned => {
                Journal::finish(self.store.state_dir())?;
                Ok(Some(Outcome::Unchanged {
                    to: journal.from.unwrap_or(to),
                }))
            }
            Phase::HealthGate => match self.gate(&new, &mut journal) {
                Ok(()) => {
                    self.commit(journal.from, to, &new)?;
                    Ok(Some(Outcome::Switched {
                        to,
                        plan: journal.plan,
                    }))
                }
                Err(failure) => self
                    .roll_back(&new, &mut journal, failure.lines(), false)
                    .map(Some),
            },
            Phase::Applying | Phase::RollingBack => {
                let why = format!(
                    "the switch was interrupted ({} after: {})",
                    journal.command,
                    journal.last_done().unwrap_or("nothing")
                );
                let interrupted = journal.phase == Phase::Applying;
                self.roll_back(&new, &mut journal, vec![why], interrupted)
                    .map(Some)
            }
        }
    }

    /// Whether the store records generation `n` as failed.
    fn failed_before(&self, n: u64) -> Result<bool, SwitchError> {
        Ok(self.store.generation(n)?.outcome == Recorded::Failed)
    }

    /// Removes the temp files (`.NAME.archy-new`) that the interrupted
    /// steps of `journal` could have left beside the paths they write: the
    /// switch's and the rollback's files, unit files and links.
    fn remove_temp_files(&self, journal: &Journal, new: &Graph) -> Result<(), SwitchError> {
        let mut graphs = vec![new.clone()];
        for n in [journal.from, journal.back_to].into_iter().flatten() {
            if n != journal.to {
                // Best effort: a generation that cannot be loaded is what
                // the rollback will report; its paths are in the record.
                if let Ok(g) = self.load(n) {
                    graphs.push(g);
                }
            }
        }
        let mut plans = vec![&journal.plan];
        if let Some(plan) = journal.rollback.as_ref().and_then(|r| r.plan.as_ref()) {
            plans.push(plan);
        }
        let graphs: Vec<&Graph> = graphs.iter().collect();
        let removed = self
            .realizer
            .remove_temp_files(&graphs, &plans)
            .map_err(SwitchError::Observe)?;
        for path in removed {
            tracing::info!(path = %path.display(), "removed a temp file the interrupted switch left");
        }
        Ok(())
    }

    /// Stops, files, daemon-reload, reloads/restarts/starts, each step
    /// recorded in the journal before the next.
    fn apply(&self, new: &Graph, plan: &Plan, journal: &mut Journal) -> Result<(), Failure> {
        let started = Instant::now();
        // Time spent waiting for systemd, apart from archy's own work.
        let mut in_systemd = Duration::ZERO;
        self.enter(journal, Phase::Applying)?;
        for action in units::stops(plan) {
            let t = Instant::now();
            units::run(action, self.systemd, self.job_timeout).map_err(Failure::Unit)?;
            in_systemd += t.elapsed();
            self.done(journal, format!("{} {}", action.op, action.unit))?;
        }
        self.data_steps(plan, journal)?;
        // The app's units are stopped: its data goes, on the operator's
        // word (`--clobber`), before the files (which make a directory the
        // new generation still declares again, empty).
        for c in &plan.clobber {
            let how = self.realizer.clobber(&c.path).map_err(Failure::Files)?;
            tracing::warn!(app = %c.app, path = %c.path, ?how, "clobbered the app's data");
            self.done(journal, format!("clobber {}", c.path))?;
        }
        let applied = self
            .realizer
            .apply_changes(new, plan)
            .map_err(Failure::Files)?;
        // Adopted containers' units are held before systemd reads them, and
        // those handed over let go, so that the reload sees both.
        let held = self.hold_and_release(plan, journal)?;
        if containers::uses_podman(new) {
            let podman = self.podman_for_apply()?;
            containers::sync_secrets(podman, self.realizer, new, &applied.secrets_generated)
                .map_err(|e| Failure::Podman(Box::new(e)))?;
        }
        self.done(journal, "files".to_string())?;
        if !plan.unit_files_changed.is_empty() || held {
            let t = Instant::now();
            self.systemd
                .daemon_reload(self.job_timeout)
                .map_err(Failure::Reload)?;
            in_systemd += t.elapsed();
            self.done(journal, "daemon-reload".to_string())?;
        }
        // What is left of containers podman lost goes before any unit job:
        // their units' own stop cannot reach it. Then the network state
        // podman kept for them, which would stop them from starting again.
        let lost: Vec<_> = plan
            .units
            .iter()
            .filter(|a| a.reason == Reason::PodmanLost)
            .collect();
        for action in &lost {
            crate::podman_state::stop_lost(self.systemd, new, &action.unit, self.job_timeout)
                .map_err(|e| {
                    Failure::Unit(UnitFailure {
                        unit: action.unit.clone(),
                        op: action.op,
                        result: format!("stopping what is left of its lost container: {e}"),
                        journal: String::new(),
                    })
                })?;
            self.done(journal, format!("stop-lost {}", action.unit))?;
        }
        if !lost.is_empty() {
            let podman = self.podman_for_apply()?;
            let run = self.realizer.root().join("run");
            for line in podman
                .clear_lost_networking(&run)
                .map_err(|e| Failure::LostState(e.to_string()))?
            {
                tracing::info!("podman lost its state: {line}");
            }
            self.done(journal, "clear-lost-networking".to_string())?;
        }
        for action in units::starts(plan) {
            if action.with.is_some() {
                // systemd restarted it along with the unit it needs.
                continue;
            }
            let replaces = matches!(
                action.reason,
                Reason::ForeignContainer | Reason::HandOver { .. } | Reason::HandOverAsked
            );
            if replaces && action.op == UnitOp::Start {
                let podman = self.podman_for_apply()?;
                let name = action.unit.as_str().trim_end_matches(".service");
                containers::remove_foreign(podman, new, name)
                    .map_err(|e| Failure::Podman(Box::new(e)))?;
                self.done(journal, format!("adopt {name}"))?;
            }
            let t = Instant::now();
            units::run(action, self.systemd, self.job_timeout).map_err(Failure::Unit)?;
            in_systemd += t.elapsed();
            self.done(journal, format!("{} {}", action.op, action.unit))?;
        }
        tracing::info!(
            target: "archy::timing",
            "applied: {} unit jobs, {:.1} ms in all, {:.1} ms of it waiting for systemd",
            plan.touched_units().count(),
            started.elapsed().as_secs_f64() * 1e3,
            in_systemd.as_secs_f64() * 1e3,
        );
        Ok(())
    }

    /// Holds the units of the containers `plan` adopts, and lets go of
    /// those it hands over (their start follows). Whether any drop-in was
    /// written or removed (so systemd must reload).
    fn hold_and_release(&self, plan: &Plan, journal: &mut Journal) -> Result<bool, Failure> {
        let root = self.realizer.root();
        let failed = |source: std::io::Error| {
            Failure::Files(archy_realize::Error::Io {
                action: "hold or release an adopted container's unit",
                path: root.join("run/systemd/system").display().to_string(),
                source,
            })
        };
        let mut touched = false;
        for c in &plan.changes {
            if c.op == ChangeOp::Adopt && matches!(c.reason, Reason::Adopting { .. }) {
                crate::adopt::hold(root, &c.key.id).map_err(failed)?;
                self.done(journal, format!("hold {}", c.key.id))?;
                touched = true;
            }
        }
        for a in &plan.units {
            let starts = matches!(a.op, UnitOp::Start | UnitOp::Restart);
            let name = a.unit.as_str().trim_end_matches(".service");
            if starts && crate::adopt::release(root, name).map_err(failed)? {
                self.done(journal, format!("release {name}"))?;
                touched = true;
            }
        }
        Ok(touched)
    }

    /// podman, for a step of apply that needs it.
    fn podman_for_apply(&self) -> Result<&dyn archy_podman::Podman, Failure> {
        self.podman
            .podman()
            .map_err(|e| Failure::Podman(Box::new(ContainerError::Unreachable(e))))
    }

    /// Records a finished step, then stops at its crash point: `step`
    /// for the switch's own steps, `rollback step` for a rollback's.
    fn done(&self, journal: &mut Journal, step: String) -> Result<(), Failure> {
        let point = crash_point(journal, &step);
        journal.push_done(step);
        journal
            .save(self.store.state_dir())
            .map_err(Failure::Journal)?;
        pause_point(&point);
        Ok(())
    }

    /// Records that the switch (or its rollback) reached `phase`, then
    /// stops at the crash point named after the phase (`applying`,
    /// `rollback health-gate`, ...).
    fn enter(&self, journal: &mut Journal, phase: Phase) -> Result<(), Failure> {
        journal.set_phase(phase);
        journal
            .save(self.store.state_dir())
            .map_err(Failure::Journal)?;
        pause_point(&crash_point(journal, phase.as_str()));
        Ok(())
    }

    /// Every health check of `graph` must pass within its deadline.
    fn gate(&self, graph: &Graph, journal: &mut Journal) -> Result<(), Failure> {
        self.enter(journal, Phase::HealthGate)?;
        let started = Instant::now();
        let plan = journal.rollback_plan().unwrap_or(&journal.plan);
        // A new archy is run only when this switch brings one.
        let brought = |path: &archy_graph::names::AbsPath| {
            plan.changes.iter().any(|c| {
                c.key.kind == archy_graph::Kind::Artifact
                    && c.key.id == path.as_str()
                    && matches!(c.op, ChangeOp::Create | ChangeOp::Update)
            })
        };
        let root = self.realizer.root();
        let held = |unit: &archy_graph::names::UnitName| {
            crate::adopt::is_held(root, unit.as_str().trim_end_matches(".service"))
        };
        let checks: Vec<_> = graph
            .nodes
            .iter()
            .filter_map(|n| match &n.resource {
                Resource::Health(h) => match &h.probe {
                    archy_graph::resource::HealthProbe::Archy(p) if !brought(p) => None,
                    // A held unit does not run: its adopted container does,
                    // which the app's other checks reach.
                    archy_graph::resource::HealthProbe::Unit(u) if held(u) => None,
                    _ => Some(h),
                },
                _ => None,
            })
            .collect();
        // An adopted container runs in place of its held unit: the unit
        // is not watched, its app's checks are (they reach the container).
        let mut wanted = wanted_running(graph, plan);
        wanted.retain(|u| !crate::adopt::is_held(root, u.as_str().trim_end_matches(".service")));
        // The declared checks and the failed-unit watch run side by side:
        // the gate takes as long as the slower of them.
        let (failed, dead) = std::thread::scope(|scope| {
            let dead = scope.spawn(|| health::dead_units(&wanted, self.systemd));
            let ctx = health::SwitchContext {
                generation: journal
                    .rollback
                    .as_ref()
                    .and(journal.back_to)
                    .unwrap_or(journal.to),
                state_dir: self.store.state_dir().path().to_path_buf(),
            };
            let failed: Vec<Unhealthy> = health::check_all_in(&checks, self.systemd, &ctx);
            (failed, dead.join().unwrap_or_default())
        });
        tracing::info!(
            target: "archy::timing",
            "health gate: {:.1} ms ({} units watched)",
            started.elapsed().as_secs_f64() * 1e3,
            wanted.len(),
        );
        if !failed.is_empty() {
            return Err(Failure::Unhealthy(failed));
        }
        if dead.is_empty() {
            Ok(())
        } else if journal.rollback.is_some() {
            // Going back to the last good generation is the best there is:
            // a unit that died there too is the operator's to look at, not
            // a reason to leave the node between generations.
            for d in &dead {
                tracing::warn!("after the rollback, {d}");
            }
            Ok(())
        } else {
            Err(Failure::Dead(dead))
        }
    }

    /// The switch passed: `current` flips, the generation is good.
    /// `graph` is generation `to`'s.
    fn commit(&self, from: Option<u64>, to: u64, graph: &Graph) -> Result<(), SwitchError> {
        self.store.set_outcome(to, Recorded::Good, None)?;
        self.store.set_last_good(to)?;
        crate::self_update::keep_recovery_binary(self.store, self.realizer.root(), graph);
        if let Some(from) = from.filter(|f| *f != to) {
            self.store.set_previous(from)?;
        }
        self.store.set_current(to)?;
        Journal::finish(self.store.state_dir())?;
        Ok(())
    }

    /// The new generation failed (`interrupted`: the switch was cut off):
    /// mark it, journal the rollback apart from the switch, then switch
    /// from it back to the last good generation (or to nothing) with the
    /// same machinery. Run again by recovery, it starts over: each step
    /// is idempotent.
    fn roll_back(
        &self,
        failed_graph: &Graph,
        journal: &mut Journal,
        why: Vec<String>,
        interrupted: bool,
    ) -> Result<Outcome, SwitchError> {
        let failed = journal.to;
        // A new archy that failed goes first: the old binary is back
        // before the verdict is recorded.
        // Loaded once, here; an error is reported once the rollback is
        // journaled, where it always was.
        let loaded = journal.back_to.map(|n| self.load(n));
        if let Some(Ok(target)) = &loaded
            && let Some(first) = crate::self_update::restore_archy_first(failed_graph, target)
            && let Err(e) = self.realizer.apply_changes(target, &first)
        {
            tracing::warn!("cannot put the old archy back first: {e}");
        }
        self.store
            .set_outcome(failed, Recorded::Failed, Some(why.join("; ")))?;
        // From here on, the journal says a rollback is in flight, before
        // anything of it is done or even planned.
        journal.phase = Phase::RollingBack;
        journal.rollback = Some(Rollback {
            why: why.clone(),
            interrupted,
            phase: Phase::Planned,
            plan: None,
            done: Vec::new(),
        });
        journal.save(self.store.state_dir())?;
        let back_to = journal.back_to;
        let target = match loaded {
            Some(graph) => graph?,
            None => empty_graph(),
        };
        // Going back starts what the good generation ran, also the units
        // that went down in the failed one.
        let mut observed = observe_all(
            self.realizer,
            Some(self.podman),
            Some(self.systemd),
            Some(failed_graph),
            &target,
            true,
        )?;
        observed.start_wanted = true;
        observed.data_mode = archy_plan::data::DataMode::UndoFailed;
        let plan = archy_plan::plan(Some(failed_graph), &target, &observed);
        let held: Vec<String> = archy_plan::data::holds(&plan.data)
            .map(|s| held_advice(s, failed, back_to))
            .collect();
        if let Some(r) = &mut journal.rollback {
            r.plan = Some(plan.clone());
        }
        journal.save(self.store.state_dir())?;
        pause_point("rollback planned");
        let result = self
            .make_images(&target, &plan)
            .map_err(|e| Failure::Images(Box::new(e)))
            .and_then(|()| self.apply(&target, &plan, journal))
            .and_then(|()| match self.gate(&target, journal) {
                // A held app is stopped, so its checks fail: the node
                // needs its operator either way, and is told so.
                Err(Failure::Unhealthy(checks)) if !held.is_empty() => {
                    for c in &checks {
                        tracing::warn!("after the rollback, with an app held: health check {c}");
                    }
                    Ok(())
                }
                other => other,
            });
        if let Err(e) = result {
            return Err(SwitchError::RollbackFailed {
                failed,
                back_to: back_to.map_or("nothing".into(), |n| format!("generation {n}")),
                why: why.join("; "),
                rollback: e.lines().join("; "),
            });
        }
        if let Some(n) = back_to {
            self.store.set_current(n)?;
        }
        Journal::finish(self.store.state_dir())?;
        Ok(Outcome::RolledBack {
            failed,
            back_to,
            why,
            held,
        })
    }

    /// Carries out the plan's data steps (the apps' units are stopped),
    /// each journaled once done: snapshot before a migration, then the
    /// new version recorded; restores and rebuilds record the version
    /// they leave.
    fn data_steps(&self, plan: &Plan, journal: &mut Journal) -> Result<(), Failure> {
        use archy_plan::data::DataOp;
        // The generation being put on the node: a snapshot belongs to it.
        let applying = match journal.rollback {
            Some(_) => journal.back_to.unwrap_or(0),
            None => journal.to,
        };
        let state = self.realizer.state_dir();
        let root = self.realizer.root();
        let fail = |name: &str, why: String| Failure::Data {
            name: name.to_string(),
            why,
        };
        for step in &plan.data {
            let name = step.name.as_str();
            match &step.op {
                DataOp::Migrate { snapshot: true } => {
                    // The crash tests' point inside the snapshot: copied,
                    // not yet named complete.
                    let hook = || pause_point(&crash_point(journal, &format!("copied {name}")));
                    match crate::data::snapshot(state, root, step, applying, hook) {
                        Ok(_) => self.done(journal, format!("snapshot {name}"))?,
                        Err(crate::data::CopyError::TooLarge { bytes, limit }) => {
                            tracing::warn!(
                                "data {name}: no snapshot before its migration: {} is {}, over the {} a plain copy may take on a file system without reflinks; a failed switch will leave {name} for the operator",
                                step.path,
                                archy_store::human_bytes(bytes),
                                archy_store::human_bytes(limit)
                            );
                            self.done(journal, format!("snapshot {name} skipped"))?;
                        }
                        Err(e) => return Err(fail(name, format!("snapshot: {e}"))),
                    }
                    crate::data::record(state, step, applying)
                        .map_err(|e| fail(name, format!("recording its version: {e}")))?;
                }
                DataOp::Migrate { snapshot: false } | DataOp::Record => {
                    crate::data::record(state, step, applying)
                        .map_err(|e| fail(name, format!("recording its version: {e}")))?;
                }
                DataOp::Restore { generation } => {
                    let hook = || pause_point(&crash_point(journal, &format!("copied {name}")));
                    crate::data::restore(state, root, step, *generation, applying, hook)
                        .map_err(|e| fail(name, format!("restoring its snapshot: {e}")))?;
                    tracing::warn!(
                        "data {name}: restored from the snapshot taken before generation {generation}"
                    );
                }
                DataOp::Rebuild { cost } => {
                    crate::data::rebuild(state, root, step, applying)
                        .map_err(|e| fail(name, format!("emptying it: {e}")))?;
                    tracing::warn!("data {name}: emptied for older code; {cost}");
                }
                DataOp::Hold { .. } | DataOp::Refuse { .. } | DataOp::Resume => continue,
            }
            if step.records() {
                self.done(journal, format!("data {name} {}", step.to))?;
            }
        }
        Ok(())
    }
}

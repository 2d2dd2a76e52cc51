//! Switching the node: to a node description (build, then switch through
//! the health gate), back to an earlier generation (`archy rollback`, no
//! evaluation), into an image offline (`--root`), and recovery of a switch
//! a crash interrupted (`archy recover`, what the boot-time unit runs).

use std::collections::BTreeSet;
use std::path::PathBuf;

use archy_plan::Plan;
use archy_realize::Realizer;
use archy_store::{StateLock, StoreError};
use archy_switch::switch::{Outcome, SwitchError, plan_switch, plan_switch_clobbering};

use crate::evaluate::Source;
use crate::gc::SwitchGc;
use crate::{Node, NodeError, Recovery, Session};

/// A switch that ended with the node on the generation it was asked for.
#[derive(Debug)]
pub enum Switched {
    /// The node runs `generation` and it passed its health gate; `gc`
    /// is what the GC that follows did (a failure of it is a warning: the
    /// switch stands).
    To {
        generation: u64,
        plan: Plan,
        gc: Box<SwitchGc>,
    },
    /// The node already ran it: nothing was done.
    Already { generation: u64 },
}

/// A generation realized into an image offline.
#[derive(Debug)]
pub struct Offline {
    pub generation: u64,
    pub plan: Plan,
    pub root: PathBuf,
    /// The images its containers need (containers never pull at start:
    /// the image must carry them, or a first switch on the node makes
    /// them).
    pub images: BTreeSet<String>,
}

/// What `archy recover` did.
#[derive(Debug)]
pub enum Recovered {
    /// Another archy holds the lock: a switch or rollback, which recovers
    /// first itself.
    OtherArchy,
    /// What opening a session found and dealt with (empty: nothing).
    Done(Box<Recovery>),
}

impl Session<'_> {
    /// A switch's end as an outcome, a rollback as the error it is for the
    /// caller. The one place every committed switch (switch, rollback, OTA
    /// apply) passes: a good switch is followed by GC here, by the
    /// settings of the generation it switched to. (A reconcile commits no
    /// generation, and a switch that recovery commits is collected by the
    /// next one.)
    pub(crate) fn finished(
        &self,
        result: Result<Outcome, SwitchError>,
    ) -> Result<Switched, NodeError> {
        match result? {
            Outcome::Switched { to, plan } => Ok(Switched::To {
                generation: to,
                plan,
                gc: Box::new(self.gc_after_switch(to)),
            }),
            Outcome::Unchanged { to } => Ok(Switched::Already { generation: to }),
            Outcome::RolledBack {
                failed,
                back_to,
                why,
                held,
            } => Err(NodeError::RolledBack {
                failed,
                back_to,
                why,
                held,
                release: None,
            }),
        }
    }
}

impl Node {
    /// Finishes or undoes an interrupted switch. Another archy holding the
    /// lock is a switch or rollback, which recovers first itself; the boot
    /// unit must not wait for it (a switch that starts the boot unit would
    /// wait for the boot unit), so this never waits.
    pub fn recover(&self) -> Result<Recovered, NodeError> {
        self.running("recover")?;
        let lock = match StateLock::acquire(&self.state_dir, "archy recover", false) {
            Err(StoreError::LockHeld { .. }) => return Ok(Recovered::OtherArchy),
            other => other?,
        };
        let mut session = self.session(lock, "archy recover")?;
        Ok(Recovered::Done(Box::new(session.take_recovery())))
    }
}

impl Session<'_> {
    /// Generation `n`'s graph, from the store.
    fn load_graph(&self, n: u64) -> Result<archy_graph::Graph, NodeError> {
        archy_build::load(&self.store, n)
            .map(|l| l.graph)
            .map_err(|source| NodeError::Load {
                generation: n,
                source: Box::new(source),
            })
    }

    /// Builds `source` and switches the node to it through the health gate
    /// (with `adopt`, files archy did not write are backed up and taken
    /// over). A generation that fails is rolled back:
    /// [`NodeError::RolledBack`].
    pub fn switch(&self, source: &Source, adopt: bool) -> Result<Switched, NodeError> {
        self.node.running("switch")?;
        let generation = self.build(source)?.number();
        let result = self.on_node_adopting(adopt, |switch| Ok(switch.switch(generation)))?;
        self.finished(result)
    }

    /// Builds `source` and switches the node to it removing the data of
    /// app `app` (`archy switch --clobber APP`): an app the new generation
    /// does not run, of it, of the current one or of an earlier one (an
    /// app dropped by an earlier switch keeps its data until then). `confirm` is
    /// shown the plan, which lists the directories removed, and says
    /// whether to go on; nothing is changed unless it does. Data removed
    /// is not brought back by anything, a rollback included.
    pub fn switch_clobbering(
        &self,
        source: &Source,
        adopt: bool,
        app: &str,
        confirm: impl FnOnce(&Plan) -> Result<(), String>,
    ) -> Result<Switched, NodeError> {
        self.node.running("switch")?;
        let generation = self.build(source)?.number();
        let load = |n: u64| self.load_graph(n);
        let live = self.store.current()?.map(load).transpose()?;
        let new = load(generation)?;
        let earlier = match archy_graph::app::app(&new, app) {
            Some(spec) if spec.state == archy_graph::app::AppState::Running => {
                return Err(NodeError::AppStillRuns {
                    app: app.to_string(),
                });
            }
            Some(_) => Vec::new(),
            None if live
                .as_ref()
                .is_some_and(|g| archy_graph::app::app(g, app).is_some()) =>
            {
                Vec::new()
            }
            None => vec![self.last_declared(app, [live.as_ref(), Some(&new)])?],
        };
        let clobber = archy_plan::Clobbering {
            apps: BTreeSet::from([app.to_string()]),
            earlier,
        };
        self.on_node_clobbering(adopt, clobber.clone(), |switch| {
            let plan = plan_switch_clobbering(
                switch.realizer,
                Some(switch.podman),
                Some(switch.systemd),
                live.as_ref(),
                &new,
                adopt,
                &clobber,
            )?;
            confirm(&plan).map_err(|why| NodeError::ClobberNotConfirmed {
                app: app.to_string(),
                why,
            })?;
            self.finished(switch.switch(generation))
        })
    }

    /// App `app` as the newest generation of the store that declares it
    /// says, for `--clobber` of an app that neither `checked` (the current
    /// and the new generation) declares. A generation that cannot be
    /// loaded is passed over: it says nothing of the app.
    fn last_declared<'g>(
        &self,
        app: &str,
        checked: impl IntoIterator<Item = Option<&'g archy_graph::Graph>>,
    ) -> Result<archy_graph::app::AppSpec, NodeError> {
        let mut names: BTreeSet<String> = checked
            .into_iter()
            .flatten()
            .flat_map(archy_graph::app::apps)
            .map(|a| a.name.to_string())
            .collect();
        for entry in self.store.generations()?.iter().rev() {
            let Ok(loaded) = archy_build::load(&self.store, entry.number()) else {
                continue;
            };
            if let Some(spec) = archy_graph::app::app(&loaded.graph, app) {
                return Ok(spec.clone());
            }
            names.extend(archy_graph::app::apps(&loaded.graph).map(|a| a.name.to_string()));
        }
        Err(NodeError::NoSuchApp {
            app: app.to_string(),
            apps: names.into_iter().collect(),
        })
    }

    /// Switches back to generation `to`, or to the one that ran before the
    /// current one, without evaluating anything.
    pub fn rollback(&self, to: Option<u64>) -> Result<Switched, NodeError> {
        self.node.running("rollback")?;
        let target = match to {
            Some(n) => n,
            None => self.store.previous()?.ok_or(NodeError::NoPrevious)?,
        };
        let result = self.on_node(|switch| Ok(switch.switch(target)))?;
        self.finished(result)
    }

    /// [`Session::rollback`], with apps `keep` left as the current
    /// generation has them (`archy rollback --keep-app APP`): the earlier
    /// generation with those apps of the current one is built as a new
    /// generation and switched to, health gate and all. For an app whose
    /// forward-only data its newer code migrated.
    pub fn rollback_keeping(
        &self,
        to: Option<u64>,
        keep: &BTreeSet<String>,
    ) -> Result<Switched, NodeError> {
        if keep.is_empty() {
            return self.rollback(to);
        }
        self.node.running("rollback")?;
        let current = self.store.current()?.ok_or(NodeError::NeverSwitched)?;
        let target = match to {
            Some(n) => n,
            None => self.store.previous()?.ok_or(NodeError::NoPrevious)?,
        };
        let composed =
            archy_graph::keep::keeping(&self.load_graph(target)?, &self.load_graph(current)?, keep)
                .map_err(|problems| NodeError::KeepApp {
                    target,
                    current,
                    apps: keep.iter().cloned().collect(),
                    problems: problems.iter().map(ToString::to_string).collect(),
                })?;
        let name = format!(
            "generation {target}, keeping {} of generation {current}",
            keep.iter().cloned().collect::<Vec<_>>().join(", ")
        );
        let generation = archy_build::build(&self.store, &composed, &name)?.number();
        let result = self.on_node(|switch| Ok(switch.switch(generation)))?;
        self.finished(result)
    }

    /// `archy --root DIR switch`: builds `source` and realizes it under the
    /// root: its files, unit files and [Install] links (a node image built
    /// offline). No systemd is involved and no health check runs: the
    /// units start at the image's first boot, so the generation stays
    /// `built`, not `good`.
    pub fn realize_offline(&self, source: &Source, adopt: bool) -> Result<Offline, NodeError> {
        let root = self.node.fs_root().to_owned();
        let generation = self.build(source)?.number();
        let load = |n: u64| self.load_graph(n);
        let live = self.store.current()?.map(load).transpose()?;
        let new = load(generation)?;
        let realizer = Realizer::new(&root, self.state_dir());
        let plan = plan_switch(&realizer, None, None, live.as_ref(), &new, adopt)?;
        let refused: Vec<_> = plan.refusals().cloned().collect();
        if !refused.is_empty() {
            return Err(SwitchError::Refused(refused).into());
        }
        realizer.apply_changes(&new, &plan)?;
        archy_switch::self_update::keep_recovery_binary(&self.store, &root, &new);
        self.store.set_current(generation)?;
        let images = new
            .nodes
            .iter()
            .filter_map(|n| match &n.resource {
                archy_graph::Resource::Container(c) => Some(c.image.reference()),
                _ => None,
            })
            .collect();
        Ok(Offline {
            generation,
            plan,
            root,
            images,
        })
    }
}

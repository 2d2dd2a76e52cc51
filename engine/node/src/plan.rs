//! The plan of a switch, without applying it: what `archy diff` and
//! `archy switch --dry-run` print. Both go through the switch's own plan
//! function (`archy_switch::switch::plan_switch`) with what the node has
//! (files in the way, missing secrets and images, containers archy did not
//! make), so they print exactly the plan `archy switch` would carry out.

use archy_build::LoadedGeneration;
use archy_graph::Graph;
use archy_plan::Plan;
use archy_realize::Realizer;
use archy_store::{Link, Store};
use archy_switch::switch::plan_switch;

use crate::evaluate::{self, Source};
use crate::podman::NodePodman;
use crate::session::connect;
use crate::{Node, NodeError};

/// A switch as it would run: from which generation, to which graph, how.
#[derive(Debug)]
pub struct PlannedSwitch {
    /// The current generation's number and graph; `None` before the first
    /// switch.
    pub live: Option<(u64, Graph)>,
    pub new: Graph,
    pub plan: Plan,
}

impl PlannedSwitch {
    /// From which generation to which root.
    pub fn headline(&self) -> String {
        match &self.live {
            Some((n, g)) => format!(
                "plan: generation {n} ({}) -> {}\n",
                g.root.short(),
                self.new.root.short()
            ),
            None => format!("plan: first switch -> {}\n", self.new.root.short()),
        }
    }
}

impl Node {
    /// The current generation, loaded from the store alone; `None` on a
    /// node archy never switched. Reads only: creates nothing.
    pub fn current(&self) -> Result<Option<LoadedGeneration>, NodeError> {
        if std::fs::symlink_metadata(self.state_dir.link(Link::Current)).is_err() {
            return Ok(None);
        }
        let store = Store::open(&self.state_dir)?;
        let Some(generation) = store.current()? else {
            return Ok(None);
        };
        archy_build::load(&store, generation)
            .map(Some)
            .map_err(|source| NodeError::Current {
                generation,
                source: Box::new(source),
            })
    }

    /// Evaluates `source` and plans the switch to it against the current
    /// generation and what the node has. Writes nothing; takes no lock.
    pub fn plan(&self, source: &Source, adopt: bool) -> Result<PlannedSwitch, NodeError> {
        let new = evaluate::evaluate(source, &self.state_dir)?.graph;
        let live = self.current()?.map(|l| (l.record.number, l.graph));
        let realizer = Realizer::new(self.fs_root(), &self.state_dir);
        let plan = if self.root.is_some() {
            // An image built offline: no podman runs here.
            plan_switch(
                &realizer,
                None,
                None,
                live.as_ref().map(|(_, g)| g),
                &new,
                adopt,
            )?
        } else {
            // Only a plan with containers asks podman, through systemd.
            let systemd = connect().ok();
            let podman = NodePodman::new(systemd.as_ref().map(|s| s as _));
            plan_switch(
                &realizer,
                Some(&podman),
                systemd.as_ref().map(|s| s as _),
                live.as_ref().map(|(_, g)| g),
                &new,
                adopt,
            )?
        };
        Ok(PlannedSwitch { live, new, plan })
    }
}

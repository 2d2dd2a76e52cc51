//! `archy adopt --now NAME`: the hand-over of a container adopted in place
//! (see `archy_plan::adopt`): the old container is stopped (with its
//! declared stop timeout) and its Quadlet unit started in its place,
//! through a switch to the current generation, so the journal, the health
//! gate and recovery cover it like any switch.

use std::collections::BTreeSet;

use archy_plan::AdoptMode;

use crate::{NodeError, Session, Switched};

impl Session<'_> {
    /// Hands the adopted container `name` (or those of app `name`) over to
    /// its unit now. Refused
    /// (nothing changed) when no adopted container of that name waits, or
    /// when it differs from its declaration in what a hand-over could lose.
    pub fn adopt_now(&self, name: &str) -> Result<Switched, NodeError> {
        self.node.running("adopt")?;
        let Some(current) = self.store.current()? else {
            return Err(NodeError::NeverSwitched);
        };
        let graph = archy_build::load(&self.store, current)
            .map_err(|source| NodeError::Load {
                generation: current,
                source: Box::new(source),
            })?
            .graph;
        // An app's name stands for its containers (bitcoind's may be
        // called bitcoin-knots).
        let named: Vec<String> = match archy_graph::app::app(&graph, name) {
            Some(app) => app
                .units
                .iter()
                .filter_map(|u| u.as_str().strip_suffix(".service"))
                .map(str::to_owned)
                .collect(),
            None => vec![name.to_owned()],
        };
        self.on_node(|switch| {
            let observed =
                archy_switch::switch::observe(switch.realizer, switch.podman, &graph, false)?;
            let held: Vec<(&String, &archy_plan::Adoption)> = named
                .iter()
                .filter_map(|n| observed.adoptions.get_key_value(n))
                .filter(|(_, a)| a.held)
                .collect();
            if held.is_empty() {
                return Err(NodeError::NotAdopted {
                    name: name.to_owned(),
                    pending: archy_switch::drift::pending_hand_overs(switch.realizer, &graph),
                });
            }
            let differs: Vec<String> = held
                .iter()
                .filter(|(_, a)| a.mode() == AdoptMode::Differs)
                .flat_map(|(n, a)| a.listed().into_iter().map(move |d| format!("{n}: {d}")))
                .collect();
            if !differs.is_empty() {
                return Err(NodeError::AdoptedDiffers {
                    name: name.to_owned(),
                    differences: differs,
                });
            }
            let hand_over: BTreeSet<String> = held.iter().map(|(n, _)| (*n).clone()).collect();
            self.finished(switch.switch_handing_over(current, &hand_over))
        })
    }
}

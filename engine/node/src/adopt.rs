//! `archy adopt --now NAME`: the hand-over of a container adopted in place
//! (see `archy_plan::adopt`): the old container is stopped (with its
//! declared stop timeout) and its Quadlet unit started in its place,
//! through a switch to the current generation, so the journal, the health
//! gate and recovery cover it like any switch.

use std::collections::BTreeSet;

use archy_plan::AdoptMode;

use crate::{NodeError, Session, Switched};

impl Session<'_> {
    /// Hands the adopted container `name` over to its unit now. Refused
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
        self.on_node(|switch| {
            let observed =
                archy_switch::switch::observe(switch.realizer, switch.podman, &graph, false)?;
            let adoption = observed.adoptions.get(name).filter(|a| a.held);
            let Some(adoption) = adoption else {
                return Err(NodeError::NotAdopted {
                    name: name.to_owned(),
                    pending: archy_switch::drift::pending_hand_overs(switch.realizer, &graph),
                });
            };
            if adoption.mode() == AdoptMode::Differs {
                return Err(NodeError::AdoptedDiffers {
                    name: name.to_owned(),
                    differences: adoption.listed(),
                });
            }
            let hand_over = BTreeSet::from([name.to_owned()]);
            self.finished(switch.switch_handing_over(current, &hand_over))
        })
    }
}

//! `archy reconcile`: the current generation planned against itself with
//! the drift observed on the node, carried out with the switch's own
//! machinery. A child of the switch module, so that it shares the
//! switch's private steps (apply, the health gate, images) rather than
//! copying them.

use archy_plan::{Change, ChangeOp, Drift, Observed, Plan};

use super::{SwitchError, Switcher};
use crate::journal::{Journal, Phase};

/// How a reconcile ended.
#[derive(Debug)]
pub enum Reconciled {
    /// archy never switched this node: there is nothing to compare with.
    NeverSwitched,
    /// The node is as `generation` says, but for the `lost` secrets (which
    /// nothing can make anew). `plan` is what was repaired (none: nothing
    /// was, or could be); `drift` is what was found.
    Done {
        generation: u64,
        drift: Vec<Drift>,
        plan: Option<Box<Plan>>,
        lost: Vec<Change>,
    },
}

impl Switcher<'_> {
    /// Puts the node back as its current generation says (`archy
    /// reconcile`): observes the drift, plans the current generation
    /// against itself with it, and carries that out with a switch's
    /// machinery (journal, images first, files, daemon-reload, unit jobs),
    /// then runs the health gate. Nothing to repair: nothing is written,
    /// not even the journal. A failed repair or gate is not rolled back
    /// (there is nothing to go back to): [`SwitchError::Unrepaired`].
    pub fn reconcile(&self) -> Result<Reconciled, SwitchError> {
        let Some(current) = self.store.current()? else {
            return Ok(Reconciled::NeverSwitched);
        };
        let graph = self.load(current)?;
        let drift = crate::drift::observe(self.realizer, self.systemd, self.podman, &graph)?;
        if let Some(Drift::PodmanUnreachable { why }) = drift
            .iter()
            .find(|d| matches!(d, Drift::PodmanUnreachable { .. }))
        {
            return Err(SwitchError::PodmanUnlisted { why: why.clone() });
        }
        let mut observed = if drift.is_empty() {
            Observed::default()
        } else {
            self.observe(&graph, false)?
        };
        observed.drift = drift.clone();
        // Data newer than the generation's code is held, never restored
        // or emptied by a repair.
        crate::data::observe(
            self.realizer.state_dir(),
            self.realizer.root(),
            &graph,
            &mut observed,
        );
        observed.data_mode = archy_plan::data::DataMode::Keep;
        let plan = archy_plan::plan(Some(&graph), &graph, &observed);
        let refused: Vec<Change> = plan.refusals().cloned().collect();
        if !refused.is_empty() {
            return Err(SwitchError::Refused(refused));
        }
        let lost: Vec<Change> = plan.lost_secrets().cloned().collect();
        let to_do = !plan.images.is_empty()
            || !plan.unit_files_changed.is_empty()
            || plan.touched_units().next().is_some()
            || plan.changes.iter().any(|c| c.op != ChangeOp::Keep);
        if !to_do {
            return Ok(Reconciled::Done {
                generation: current,
                drift,
                plan: None,
                lost,
            });
        }
        self.make_images(&graph, &plan)?;
        let mut journal = Journal {
            from: Some(current),
            to: current,
            back_to: Some(current),
            phase: Phase::Planned,
            plan: plan.clone(),
            done: Vec::new(),
            command: self.command.clone(),
            rollback: None,
            format1: false,
        };
        journal.save(self.store.state_dir())?;
        let result = self
            .apply(&graph, &plan, &mut journal)
            .and_then(|()| self.gate(&graph, &mut journal));
        Journal::finish(self.store.state_dir())?;
        match result {
            Ok(()) => Ok(Reconciled::Done {
                generation: current,
                drift,
                plan: Some(Box::new(plan)),
                lost,
            }),
            Err(failure) => Err(SwitchError::Unrepaired {
                generation: current,
                why: failure.lines(),
            }),
        }
    }
}

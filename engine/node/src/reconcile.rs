//! `archy reconcile`: puts the node back as its current generation says,
//! with a switch's machinery (the state lock, the journal, images first,
//! files, daemon-reload, unit jobs, the health gate) and the fewest
//! actions: an edited file is rewritten and what reads it restarted, a
//! stopped unit started, a disabled one enabled again, a missing container
//! made anew by its Quadlet unit. It never touches what archy does not own.
//! archy-reconcile.service runs it at boot and archy-reconcile.timer every
//! few minutes; a run with nothing to do writes nothing.

use std::time::{Duration, Instant};

use archy_plan::Plan;
use archy_store::{StateLock, StoreError};
use archy_switch::journal::Journal;
use archy_switch::switch::Reconciled as Done;

use crate::status::{Entry, secrets_dir, with_repairs};
use crate::{Node, NodeError, Session};

/// How often a waiting reconcile looks at the lock again.
const POLL: Duration = Duration::from_millis(200);

/// What a reconcile found and did.
#[derive(Debug)]
pub enum Reconciled {
    /// archy has not switched this node yet.
    NeverSwitched,
    /// The node is as generation `generation` says.
    Clean { generation: u64 },
    /// It differed: what, and the plan that repaired it (`None`: nothing
    /// archy can repair here).
    Repaired(Repairs),
}

/// The differences of a reconcile and what was done about them.
#[derive(Debug)]
pub struct Repairs {
    pub generation: u64,
    pub entries: Vec<Entry>,
    pub plan: Option<Plan>,
    /// For each secret that is lost and must not be made anew, what to do.
    pub advice: Vec<String>,
}

impl Node {
    /// A session for a reconcile, or `None` when a switch is in flight and
    /// this run should leave the node to it. A switch that installs
    /// archy-reconcile.service starts it and waits for it; a reconcile
    /// waiting for that switch's lock would never end, so with a switch
    /// journal on disk it steps aside instead of waiting (the switch leaves
    /// the node in one generation, and the timer's next run checks it).
    pub fn open_reconcile(&self, wait: bool) -> Result<Option<Session<'_>>, NodeError> {
        self.running("reconcile")?;
        let in_flight = || {
            Journal::load(&self.state_dir)
                .map(|j| j.is_some())
                .map_err(NodeError::recovery)
        };
        let lock = loop {
            match StateLock::acquire(&self.state_dir, "archy reconcile", false) {
                Ok(lock) => break lock,
                Err(StoreError::LockHeld { .. }) if in_flight()? => return Ok(None),
                Err(StoreError::LockHeld { .. }) if wait => std::thread::sleep(POLL),
                Err(e) => return Err(e.into()),
            }
        };
        self.session(lock, "archy reconcile").map(Some)
    }
}

impl Session<'_> {
    /// Repairs what differs from the current generation. A lost secret that
    /// must not be made anew is [`NodeError::Unrepaired`] (with everything
    /// else that was found and done).
    pub fn reconcile(&self) -> Result<Reconciled, NodeError> {
        let started = Instant::now();
        let result = self.repair();
        // debug, not info: a run with nothing to do logs one line only.
        tracing::debug!(
            target: "archy::timing",
            "reconcile: {:.1} ms",
            started.elapsed().as_secs_f64() * 1e3
        );
        result
    }

    fn repair(&self) -> Result<Reconciled, NodeError> {
        if self.store.current()?.is_none() {
            return Ok(Reconciled::NeverSwitched);
        }
        let (done, secrets) =
            self.on_node(|switch| Ok((switch.reconcile()?, secrets_dir(switch.realizer))))?;
        let Done::Done {
            generation,
            drift,
            plan,
            lost,
        } = done
        else {
            return Ok(Reconciled::NeverSwitched);
        };
        if drift.is_empty() {
            return Ok(Reconciled::Clean { generation });
        }
        let graph = archy_build::load(&self.store, generation)
            .map_err(|source| NodeError::Load {
                generation,
                source: Box::new(source),
            })?
            .graph;
        let repairs = Repairs {
            generation,
            entries: with_repairs(&graph, drift, &secrets),
            plan: plan.map(|p| *p),
            advice: lost
                .iter()
                .map(|c| archy_plan::drift::lost_secret_advice(&c.key.id, &secrets))
                .collect(),
        };
        // An app held with data newer than its code: no repair is archy's.
        let mut repairs = repairs;
        repairs.advice.extend(
            repairs
                .entries
                .iter()
                .filter(|e| matches!(e.drift, archy_plan::Drift::DataHeld { .. }))
                .map(|e| e.drift.to_string()),
        );
        if repairs.advice.is_empty() {
            Ok(Reconciled::Repaired(repairs))
        } else {
            Err(NodeError::Unrepaired(Box::new(repairs)))
        }
    }
}

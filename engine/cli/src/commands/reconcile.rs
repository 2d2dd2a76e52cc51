//! `archy reconcile`: puts the node back as its current generation says,
//! with a switch's machinery (the state lock, the journal, images first,
//! files, daemon-reload, unit jobs, the health gate) and the fewest
//! actions: an edited file is rewritten and what reads it restarted, a
//! stopped unit started, a disabled one enabled again, a missing container
//! made anew by its Quadlet unit. It never touches what archy does not own.
//! archy-reconcile.service runs it at boot and archy-reconcile.timer every
//! few minutes; a run with nothing to do writes nothing and says one line.
//!
//! Exit codes: 0 the node is as its generation says (repaired or not), 3
//! what archy cannot repair alone: a secret that must not be made anew is
//! missing, podman does not answer, or the health gate still fails after
//! the repairs (there is no other generation to roll back to; the message
//! names the failing check).

use std::path::Path;
use std::time::{Duration, Instant};

use archy_store::{StateLock, StoreError};
use archy_switch::journal::Journal;
use archy_switch::switch::Reconciled;

use crate::CliError;
use crate::commands::status::{print, repair_of};
use crate::commands::store;
use crate::commands::switch::{SwitchArgs, on_node, recover_first, report};

/// How often a waiting reconcile looks at the lock again.
const POLL: Duration = Duration::from_millis(200);

/// The state lock, or `None` when a switch is in flight and this run
/// should leave the node to it. A switch that installs
/// archy-reconcile.service starts it and waits for it; a reconcile waiting
/// for that switch's lock would never end, so with a switch journal on
/// disk it steps aside instead of waiting (the switch leaves the node in
/// one generation, and the timer's next run checks it).
fn lock(state_dir: &Path, wait: bool) -> Result<Option<StateLock>, CliError> {
    loop {
        match StateLock::acquire(state_dir, "archy reconcile", false) {
            Ok(lock) => return Ok(Some(lock)),
            Err(StoreError::LockHeld { .. }) if in_flight(state_dir)? => return Ok(None),
            Err(StoreError::LockHeld { .. }) if wait => std::thread::sleep(POLL),
            Err(e) => return Err(store::store_error(e)),
        }
    }
}

fn in_flight(state_dir: &Path) -> Result<bool, CliError> {
    Journal::load(state_dir)
        .map(|j| j.is_some())
        .map_err(|e| CliError::system(e.to_string()))
}

pub fn run(args: SwitchArgs<'_>) -> Result<(), CliError> {
    let started = Instant::now();
    let result = reconcile(args);
    // debug, not info: a run with nothing to do logs one line only.
    tracing::debug!(
        target: "archy::timing",
        "reconcile: {:.1} ms",
        started.elapsed().as_secs_f64() * 1e3
    );
    result
}

fn reconcile(args: SwitchArgs<'_>) -> Result<(), CliError> {
    let Some(_lock) = lock(args.state_dir, args.wait)? else {
        println!(
            "a switch is in flight: it leaves the node in one generation; nothing to reconcile now"
        );
        return Ok(());
    };
    if std::fs::symlink_metadata(args.state_dir.join("current")).is_err() {
        println!("archy has not switched this node yet: nothing to reconcile");
        return Ok(());
    }
    let store = store::open(args.state_dir)?;
    on_node(&store, args, "archy reconcile", |switch| {
        repair(switch, &store, args)
    })
}

/// Reconciles with `switch`: recovers first, plans the repairs, applies.
fn repair(
    switch: &archy_switch::switch::Switcher<'_>,
    store: &archy_store::Store,
    args: SwitchArgs<'_>,
) -> Result<(), CliError> {
    // A switch that was killed is finished or undone first, so that the
    // generation compared with is the one the node runs.
    if Journal::load(args.state_dir)
        .map_err(|e| CliError::system(e.to_string()))?
        .is_some()
    {
        recover_first(switch)?;
    }
    let (generation, drift, plan, lost) = match switch.reconcile() {
        Ok(Reconciled::NeverSwitched) => {
            println!("archy has not switched this node yet: nothing to reconcile");
            return Ok(());
        }
        Ok(Reconciled::Done {
            generation,
            drift,
            plan,
            lost,
        }) => (generation, drift, plan, lost),
        Err(e) => return report(Err(e)),
    };
    if drift.is_empty() {
        println!("generation {generation}: the node is as it says; nothing to do");
        return Ok(());
    }
    let secrets_dir = switch.realizer.secret_path("").display().to_string();
    let secrets_dir = secrets_dir.trim_end_matches('/');
    let graph = archy_build::load(store, generation)
        .map_err(|e| CliError::system(format!("cannot load generation {generation}: {e}")))?
        .graph;
    let entries: Vec<_> = drift
        .into_iter()
        .map(|d| crate::commands::status::Entry {
            repair: repair_of(&graph, &d, secrets_dir),
            drift: d,
        })
        .collect();
    println!("generation {generation}: the node differed from it:");
    print(&entries);
    match &plan {
        Some(plan) => {
            print!("{}", archy_plan::display::render(plan));
            println!("generation {generation}: repaired; every health check passed");
        }
        None if lost.is_empty() => {
            println!("generation {generation}: nothing archy can repair here")
        }
        None => {}
    }
    if lost.is_empty() {
        return Ok(());
    }
    let advice: Vec<String> = lost
        .iter()
        .map(|c| archy_plan::drift::lost_secret_advice(&c.key.id, secrets_dir))
        .collect();
    Err(CliError::system(advice.join("\n  ")))
}

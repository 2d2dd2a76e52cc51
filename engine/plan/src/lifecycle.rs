//! Apps' lifecycles in a plan: a stopped app's units are stopped (when
//! they ran under a generation that did not stop them) and never started,
//! restarted or reloaded; `--clobber APP` removes an app's data
//! directories after its units are stopped.
//!
//! A stopped app's units reach the planner without their `[Install]` (see
//! `archy_units::UnitSource::stopped_app`), so their files are rewritten
//! (a Quadlet file without `[Install]` gets no boot link) and their links
//! removed by the ordinary unit-file path: this module only decides jobs.

use std::collections::{BTreeMap, BTreeSet};

use archy_graph::app::AppSpec;
use archy_graph::names::UnitName;
use archy_graph::{Graph, Kind, ResourceKey, app};
use archy_units::UnitSource;

use crate::diff::Observed;
use crate::plan::{Change, ChangeOp, Clobber, Plan, Reason, UnitAction, UnitOp};

/// The apps `archy switch --clobber APP` removes the data of.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Clobbering {
    /// The apps named. Each is looked up in the new generation, else the
    /// live one, else `earlier`.
    pub apps: BTreeSet<String>,
    /// Apps that neither the live nor the new generation declares, as the
    /// last generation that declared each says: an app an earlier switch
    /// dropped keeps its data until `--clobber` names it.
    pub earlier: Vec<AppSpec>,
}

/// Takes every job of a stopped app's unit out of `actions` (and out of
/// `stop_first`, whose start it would be); adds the stop of those that run
/// and were not stopped already, to `stops`. A unit whose job was taken
/// out and that is not stopped is listed as left alone, with why.
pub(crate) fn stop_stopped_apps(
    live_sources: &[UnitSource],
    sources: &[UnitSource],
    observed: &Observed,
    actions: &mut Vec<UnitAction>,
    stops: &mut Vec<UnitName>,
    stop_first: &mut Vec<UnitName>,
) {
    let before: BTreeMap<&UnitName, &UnitSource> =
        live_sources.iter().map(|u| (&u.unit, u)).collect();
    for u in sources {
        let Some(app) = &u.stopped_app else {
            continue;
        };
        let had_job = actions.iter().any(|a| a.unit == u.unit) || stop_first.contains(&u.unit);
        actions.retain(|a| a.unit != u.unit);
        stop_first.retain(|s| *s != u.unit);
        // A unit of an app that was stopped already and runs was started
        // by hand: it is left as it is. One that is new in this
        // generation has not run.
        let ran_wanted = before.get(&u.unit).is_some_and(|o| o.stopped_app.is_none());
        let stop = ran_wanted
            && !u.is_template()
            && !observed.inactive_units.contains(&u.unit)
            && !u.refuses_manual_stop();
        if stop {
            if !stops.contains(&u.unit) {
                stops.push(u.unit.clone());
            }
        } else if had_job || ran_wanted {
            actions.push(UnitAction {
                unit: u.unit.clone(),
                op: UnitOp::Skip,
                reason: Reason::AppStopped {
                    app: app.to_string(),
                },
                with: None,
            });
        }
    }
}

/// Starts the units of an app that runs again (stopped in the live
/// generation) that are down: their [Install] comes back, which alone
/// would start nothing.
pub(crate) fn start_restarted_apps(
    live_sources: &[UnitSource],
    sources: &[UnitSource],
    observed: &Observed,
    actions: &mut Vec<UnitAction>,
) {
    let before: BTreeMap<&UnitName, &UnitSource> =
        live_sources.iter().map(|u| (&u.unit, u)).collect();
    for u in sources {
        let Some(app) = before.get(&u.unit).and_then(|o| o.stopped_app.as_ref()) else {
            continue;
        };
        let wanted = u.stopped_app.is_none()
            && u.installed()
            && !u.is_template()
            && !u.refuses_manual_start()
            && observed.inactive_units.contains(&u.unit);
        if !wanted {
            continue;
        }
        let action = UnitAction {
            unit: u.unit.clone(),
            op: UnitOp::Start,
            reason: Reason::AppStarted {
                app: app.to_string(),
            },
            with: None,
        };
        match actions.iter_mut().find(|a| a.unit == u.unit) {
            Some(a) if matches!(a.op, UnitOp::Skip | UnitOp::Reload) => *a = action,
            Some(a) => a.op = UnitOp::Start,
            None => actions.push(action),
        }
    }
}

/// The stop's reason for `unit`, when it is of a stopped app.
pub(crate) fn stop_reason(sources: &[UnitSource], unit: &UnitName) -> Option<Reason> {
    sources
        .iter()
        .find(|u| &u.unit == unit)
        .and_then(|u| u.stopped_app.as_ref())
        .map(|app| Reason::AppStopped {
            app: app.to_string(),
        })
}

/// The data directories of the apps `observed.clobber` names, from the new
/// generation or, for an app it drops, the live one, or, for an app an
/// earlier switch dropped, the last generation that declared it. Each is
/// removed after the stops; one the new generation still declares is made
/// again, empty.
pub(crate) fn clobber(live: Option<&Graph>, new: &Graph, observed: &Observed, plan: &mut Plan) {
    let mut seen = BTreeSet::new();
    for name in &observed.clobber.apps {
        let spec = app::app(new, name)
            .or_else(|| live.and_then(|g| app::app(g, name)))
            .or_else(|| {
                let earlier = &observed.clobber.earlier;
                earlier.iter().find(|a| a.name.as_str() == name)
            });
        let Some(spec) = spec else {
            continue;
        };
        for path in &spec.data {
            if !seen.insert(path.clone()) {
                continue;
            }
            plan.clobber.push(Clobber {
                app: name.clone(),
                path: path.to_string(),
            });
            let key = ResourceKey {
                kind: Kind::Dir,
                id: path.to_string(),
            };
            // A dropped app's directory is no longer "kept": the clobber
            // line says what happens to it.
            plan.changes
                .retain(|c| !(c.key == key && c.reason == Reason::DataKept));
            let declared = new.get(&key).is_some();
            let planned = plan.changes.iter().any(|c| c.key == key);
            if declared && !planned {
                plan.unchanged = plan.unchanged.saturating_sub(1);
                // Directories before secrets and files, as apply makes them.
                let at = plan
                    .changes
                    .iter()
                    .position(|c| matches!(c.key.kind, Kind::Secret | Kind::File))
                    .unwrap_or(plan.changes.len());
                plan.changes.insert(
                    at,
                    Change {
                        key,
                        op: ChangeOp::Create,
                        reason: Reason::Clobbered { app: name.clone() },
                    },
                );
            }
        }
    }
}

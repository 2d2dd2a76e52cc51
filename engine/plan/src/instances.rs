//! Drop-ins: `/etc/systemd/system/UNIT.d/NAME.conf`, for a unit archy owns
//! or one it does not (a distro's `systemd-networkd.service`). A drop-in is
//! compared section by section like a unit file (cosmetic keys ignored);
//! a new, changed or removed drop-in restarts (or reloads) its unit once,
//! as a change of the unit's own file would, merged with whatever the unit
//! itself needs. A drop-in on a template acts on the template's instances.
//!
//! Instances of templates need nothing here: each is a unit of its own
//! (see [`archy_units::Role::Instance`]) whose hash follows its template's
//! and its own reads, so the ordinary unit planning starts, restarts and
//! stops them.

use std::collections::{BTreeMap, BTreeSet};

use archy_graph::names::UnitName;
use archy_graph::resource::OnChange;
use archy_graph::{Graph, ResourceKey};
use archy_units::UnitSource;

use crate::diff::{Observed, changed_references};
use crate::drift::Drift;
use crate::plan::{Change, ChangeOp, Plan, Reason, UnitAction, UnitOp};
use crate::repair::stronger;

/// What one drop-in asks of its unit.
struct Ask {
    unit: UnitName,
    on_change: OnChange,
    reason: Reason,
}

/// Plans the drop-ins `live_dropins` (the live generation's) and
/// `dropins` (the new one's): their files into `plan.unit_files_changed`,
/// and what their units need merged into `actions`. `units` are the new
/// generation's other units (archy's own, and instances); `stopping`
/// those the switch stops (removed ones): nothing more is asked of them.
#[allow(clippy::too_many_arguments)]
pub(crate) fn plan_dropins(
    live: Option<&Graph>,
    new: &Graph,
    live_dropins: &[UnitSource],
    dropins: &[UnitSource],
    units: &[UnitSource],
    observed: &Observed,
    remade: &BTreeSet<ResourceKey>,
    stopping: &[UnitName],
    plan: &mut Plan,
    actions: &mut Vec<UnitAction>,
) {
    let before: BTreeMap<&str, &UnitSource> =
        live_dropins.iter().map(|u| (u.path.as_str(), u)).collect();
    let now: BTreeSet<&str> = dropins.iter().map(|u| u.path.as_str()).collect();
    let mut asks: Vec<Ask> = Vec::new();
    for d in dropins {
        let name = dropin_name(&d.path);
        let drift: Vec<&Drift> = observed
            .drift
            .iter()
            .filter(|x| matches!(x, Drift::UnitFile { path, .. } if *path == d.path))
            .collect();
        let reason = match (before.get(d.path.as_str()), live) {
            (Some(o), _) if o.node.hash == d.node.hash => {
                let reread = d.node.refs.iter().find(|r| remade.contains(r));
                if !drift.is_empty() {
                    plan.unit_files_changed.push(d.file());
                    let what = drift.iter().map(|x| x.what()).collect::<Vec<_>>();
                    Reason::Drifted {
                        what: format!("drop-in {name}: {}", what.join(", ")),
                    }
                } else if let Some(r) = reread {
                    Reason::Reads { what: r.id.clone() }
                } else {
                    plan.unchanged += 1;
                    continue;
                }
            }
            (Some(o), Some(live)) => {
                if o.sections != d.sections {
                    plan.unit_files_changed.push(d.file());
                }
                let sections = d.changed_sections(o);
                if !sections.is_empty() {
                    Reason::Dropin { name, sections }
                } else if let Some(r) = changed_references(o.node, d.node, live, new).first() {
                    Reason::Reads { what: r.id.clone() }
                } else {
                    // Only cosmetic keys: the file is written, nothing restarts.
                    continue;
                }
            }
            _ => {
                if observed.unowned.contains(&d.path) && !observed.adopt {
                    plan.changes.push(Change {
                        key: d.node.key.clone(),
                        op: ChangeOp::Refuse,
                        reason: Reason::NotOwned,
                    });
                    continue;
                }
                plan.unit_files_changed.push(d.file());
                let sections = d.sections.iter().map(|s| s.name.clone()).collect();
                Reason::Dropin { name, sections }
            }
        };
        asks.push(Ask {
            unit: d.unit.clone(),
            on_change: d.on_change,
            reason,
        });
    }
    for (path, o) in &before {
        if now.contains(path) {
            continue;
        }
        plan.unit_files_changed.push(o.file());
        asks.push(Ask {
            unit: o.unit.clone(),
            on_change: o.on_change,
            reason: Reason::DropinRemoved {
                name: dropin_name(path),
            },
        });
    }
    let owned: BTreeMap<&UnitName, &UnitSource> = units.iter().map(|u| (&u.unit, u)).collect();
    for ask in asks {
        // A template's drop-in is every instance's.
        let targets: Vec<&UnitSource> = if ask.unit.is_template() {
            units
                .iter()
                .filter(|u| u.is_instance() && template_of(&u.unit) == ask.unit.as_str())
                .collect()
        } else {
            owned.get(&ask.unit).copied().into_iter().collect()
        };
        if ask.unit.is_template() {
            for t in targets {
                ask_of(
                    actions,
                    stopping,
                    &observed.inactive_units,
                    &t.unit,
                    t.on_change,
                    &ask.reason,
                );
            }
        } else {
            // A unit archy owns changes as its own file says; another
            // as the drop-in says.
            let on_change = targets.first().map_or(ask.on_change, |t| t.on_change);
            ask_of(
                actions,
                stopping,
                &observed.inactive_units,
                &ask.unit,
                on_change,
                &ask.reason,
            );
        }
    }
}

/// Merges what a drop-in asks of `unit` into the unit's action: one job
/// per unit, the one that does both (a unit that starts anyway reads its
/// new drop-in when it starts).
fn ask_of(
    actions: &mut Vec<UnitAction>,
    stopping: &[UnitName],
    inactive: &BTreeSet<UnitName>,
    unit: &UnitName,
    on_change: OnChange,
    reason: &Reason,
) {
    if stopping.contains(unit) {
        return;
    }
    let (op, reason) = match on_change {
        // Only what runs is restarted or reloaded; a unit that is down
        // reads its drop-ins at its next start.
        _ if inactive.contains(unit) => (UnitOp::Skip, Reason::NotRunning),
        OnChange::Keep => (UnitOp::Skip, Reason::KeptRunning),
        OnChange::Reload => (UnitOp::Reload, reason.clone()),
        // A drop-in cannot stop its unit with the old definition first
        // (the unit may not be archy's): a restart.
        OnChange::Restart | OnChange::StopStart => (UnitOp::Restart, reason.clone()),
    };
    match actions.iter_mut().find(|a| a.unit == *unit) {
        None => actions.push(UnitAction {
            unit: unit.clone(),
            op,
            reason,
            with: None,
        }),
        Some(a) if a.op == UnitOp::Skip => {
            // A template is never started; a unit nothing starts reads
            // the drop-in at its next start.
            if op != UnitOp::Skip && !matches!(a.reason, Reason::Template | Reason::NotInstalled) {
                a.op = op;
                a.reason = reason;
            }
        }
        Some(a) if a.op == UnitOp::Start => {}
        Some(a) => {
            if stronger(op, a.op) != a.op {
                a.op = op;
                a.reason = reason;
                a.with = None;
            }
        }
    }
}

/// `archy-br0` of `/etc/systemd/system/x.service.d/archy-br0.conf`.
fn dropin_name(path: &str) -> String {
    let file = path.rsplit('/').next().unwrap_or(path);
    file.strip_suffix(".conf").unwrap_or(file).to_string()
}

/// `a@.service` of `a@b.service`.
fn template_of(unit: &UnitName) -> String {
    let s = unit.as_str();
    match (s.split_once('@'), s.rsplit_once('.')) {
        (Some((prefix, _)), Some((_, ty))) => format!("{prefix}@.{ty}"),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            dropin_name("/etc/systemd/system/x.service.d/archy-br0.conf"),
            "archy-br0"
        );
        let u = UnitName::try_from("a@b.c.service").unwrap();
        assert_eq!(template_of(&u), "a@.service");
    }
}

//! Drift turned into repairs: what the planner does with
//! [`Observed::drift`] when it plans a generation against itself (`archy
//! reconcile`). Each repair is an action a switch knows (rewrite, chmod,
//! create, start, restart), with [`Reason::Drifted`] as its reason.

use std::collections::BTreeSet;

use archy_graph::resource::OnChange;
use archy_graph::{Graph, Kind, Node, Resource};
use archy_units::UnitSource;

use crate::diff::{Observed, change};
use crate::drift::Drift;
use crate::plan::{Change, ChangeOp, Reason, UnitOp};

/// `observed` with what its drift implies added to the sets a switch
/// fills itself: a missing secret, a container made outside archy.
pub(crate) fn merged(observed: &Observed) -> Observed {
    let mut out = observed.clone();
    for d in &observed.drift {
        match d {
            Drift::Missing {
                kind: Kind::Secret,
                id,
            } => {
                out.missing_secrets.insert(id.clone());
            }
            Drift::ContainerForeign { container } => {
                out.foreign_containers.insert(container.clone());
            }
            _ => {}
        }
    }
    out
}

/// The secrets of `new` whose value is missing and must not be made anew.
pub(crate) fn lost_secrets(new: &Graph, observed: &Observed) -> BTreeSet<String> {
    new.nodes
        .iter()
        .filter_map(|n| match &n.resource {
            Resource::Secret(s)
                if !s.regenerate && observed.missing_secrets.contains(&n.key.id) =>
            {
                Some(n.key.id.clone())
            }
            _ => None,
        })
        .collect()
}

/// A file, directory or secret that is as the generation says, but not on
/// the node: written again (what is missing, or whose bytes differ) or
/// given back its mode and owner. A file made from a lost secret cannot
/// be written, and is left as it is.
pub(crate) fn drifted(n: &Node, observed: &Observed, lost: &BTreeSet<String>) -> Option<Change> {
    let found: Vec<&Drift> = observed
        .drift
        .iter()
        .filter(|d| d.resource() == Some((n.key.kind, n.key.id.as_str())))
        .collect();
    if found.is_empty() {
        return None;
    }
    let what = found
        .iter()
        .map(|d| d.what())
        .collect::<Vec<_>>()
        .join(", ");
    let rewrite = found
        .iter()
        .any(|d| matches!(d, Drift::Missing { .. } | Drift::Content { .. }));
    if let Resource::File(f) = &n.resource
        && let Some(secret) = f.derives.iter().find(|s| lost.contains(s.as_str()))
        && rewrite
    {
        let secret = secret.to_string();
        return Some(change(n, ChangeOp::Keep, Reason::FromLostSecret { secret }));
    }
    let op = match (n.key.kind, rewrite) {
        // A secret's value is never rewritten here: a missing one is
        // `secret_missing`'s.
        (Kind::Secret, _) | (_, false) => ChangeOp::Chmod,
        (Kind::Dir, true) => ChangeOp::Create,
        (_, true) => ChangeOp::Update,
    };
    Some(change(n, op, Reason::Drifted { what }))
}

/// What a unit that drifted needs, and why: its container made anew
/// (whatever its `on_change`; started again after apply stopped what is
/// left of it, when podman lost it), its file written again and the unit
/// restarted as a changed one would be (only if it is started at boot:
/// one that something else starts reads the file at its next start), or
/// started. `None` when nothing about it drifted.
pub(crate) fn drifted_unit(u: &UnitSource, drift: &[&Drift]) -> Option<(UnitOp, Reason)> {
    if drift.is_empty() {
        return None;
    }
    let what = drift
        .iter()
        .map(|d| d.what())
        .collect::<Vec<_>>()
        .join(", ");
    let lost = drift.iter().any(|d| matches!(d, Drift::PodmanLost { .. }));
    let reason = if lost {
        Reason::PodmanLost
    } else {
        Reason::Drifted { what }
    };
    let inactive = drift.iter().any(|d| matches!(d, Drift::Inactive { .. }));
    let container = drift.iter().any(|d| {
        matches!(
            d,
            Drift::ContainerMissing { .. }
                | Drift::ContainerStopped { .. }
                | Drift::ContainerImage { .. }
        )
    });
    let file = drift.iter().any(|d| matches!(d, Drift::UnitFile { .. }));
    let op = if u.is_template() {
        UnitOp::Skip
    } else if lost {
        // Apply first ends what is left of the container and stops its
        // unit; the start makes the container anew.
        UnitOp::Start
    } else if container {
        UnitOp::Restart
    } else if file && u.installed() {
        match (u.on_change, inactive) {
            (OnChange::Restart | OnChange::StopStart, _) => UnitOp::Restart,
            (OnChange::Reload, false) => UnitOp::Reload,
            (_, true) => UnitOp::Start,
            (OnChange::Keep, false) => UnitOp::Skip,
        }
    } else if inactive {
        UnitOp::Start
    } else {
        UnitOp::Skip
    };
    Some((op, reason))
}

/// Of two ops a unit needs, the one that does both: a restart covers a
/// start and a reload; a start (of a unit that is down) reads what a
/// reload would.
pub(crate) fn stronger(a: UnitOp, b: UnitOp) -> UnitOp {
    let rank = |op: UnitOp| match op {
        UnitOp::Skip => 0,
        UnitOp::Reload => 1,
        UnitOp::Start => 2,
        UnitOp::Restart | UnitOp::Stop => 3,
    };
    if rank(a) >= rank(b) { a } else { b }
}

//! Computing a plan: the live generation and the new one in (plus what
//! apply observed on disk), the actions out. Pure.
//!
//! Units follow NixOS's switch-to-configuration: a unit is compared section
//! by section, ignoring cosmetic keys; a changed unit is restarted, or
//! reloaded, or left running, as its resource says; removed units are
//! stopped; new installed units are started. Restart triggers come from
//! the graph: a unit whose referenced file or secret changed has a new
//! hash, and the changed reference is the reason.

use std::collections::{BTreeMap, BTreeSet};

use archy_graph::resource::{OnChange, UnitSpec};
use archy_graph::{Graph, Kind, Node, Resource, ResourceKey};

use crate::order::{dependency_order, stop_order};
use crate::plan::{Change, ChangeOp, Plan, Reason, UnitAction, UnitOp};

/// What apply saw on the node before planning.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// Target paths (files, unit files) that exist and that archy did not
    /// write.
    pub unowned: BTreeSet<String>,
    /// Secrets of the new generation whose value is missing on disk.
    pub missing_secrets: BTreeSet<String>,
    /// Take over unowned paths (backing them up) instead of refusing.
    pub adopt: bool,
}

/// Where a unit's file lives.
pub fn unit_file_path(unit: &str) -> String {
    format!("/etc/systemd/system/{unit}")
}

/// The order changes are applied in: accounts before the files they own.
const CHANGE_KINDS: [Kind; 5] = [Kind::Group, Kind::User, Kind::Dir, Kind::Secret, Kind::File];

/// Plans the switch from `live` (none on a node archy never switched) to
/// `new`.
pub fn plan(live: Option<&Graph>, new: &Graph, observed: &Observed) -> Plan {
    let old: BTreeMap<&ResourceKey, &Node> = live
        .map(|g| g.nodes.iter().map(|n| (&n.key, n)).collect())
        .unwrap_or_default();
    let now: BTreeMap<&ResourceKey, &Node> = new.nodes.iter().map(|n| (&n.key, n)).collect();
    let mut plan = Plan {
        changes: Vec::new(),
        unit_files_changed: Vec::new(),
        units: Vec::new(),
        unchanged: 0,
    };
    for kind in CHANGE_KINDS {
        for n in new.nodes.iter().filter(|n| n.key.kind == kind) {
            match old.get(&n.key) {
                None => plan.changes.push(created(n, observed)),
                Some(o) if o.hash == n.hash => match secret_missing(n, observed) {
                    Some(c) => plan.changes.push(c),
                    None => plan.unchanged += 1,
                },
                Some(o) => plan.changes.push(changed(o, n)),
            }
        }
        let gone = live
            .into_iter()
            .flat_map(|g| &g.nodes)
            .filter(|o| o.key.kind == kind);
        for o in gone.filter(|o| !now.contains_key(&o.key)) {
            plan.changes.push(removed(o));
        }
    }
    plan_units(live, new, &old, &now, observed, &mut plan);
    plan
}

fn change(n: &Node, op: ChangeOp, reason: Reason) -> Change {
    Change {
        kind: n.key.kind.to_string(),
        id: n.key.id.clone(),
        op,
        reason,
    }
}

fn created(n: &Node, observed: &Observed) -> Change {
    let in_the_way = n.key.kind == Kind::File && observed.unowned.contains(&n.key.id);
    match (in_the_way, observed.adopt, n.key.kind) {
        (true, false, _) => change(n, ChangeOp::Refuse, Reason::NotOwned),
        (true, true, _) => change(n, ChangeOp::Create, Reason::Adopted),
        (_, _, Kind::Secret) => change(n, ChangeOp::Generate, Reason::New),
        _ => change(n, ChangeOp::Create, Reason::New),
    }
}

/// An unchanged secret whose value went missing on disk is generated again.
fn secret_missing(n: &Node, observed: &Observed) -> Option<Change> {
    (n.key.kind == Kind::Secret && observed.missing_secrets.contains(&n.key.id)).then(|| {
        change(
            n,
            ChangeOp::Generate,
            Reason::Metadata {
                what: "missing on disk".into(),
            },
        )
    })
}

fn changed(o: &Node, n: &Node) -> Change {
    match (&o.resource, &n.resource) {
        (Resource::File(a), Resource::File(b)) if a.content != b.content => change(
            n,
            ChangeOp::Update,
            Reason::Metadata {
                what: "content changed".into(),
            },
        ),
        (Resource::File(a), Resource::File(b)) => {
            let what = metadata_change((a.mode, &a.owner, &a.group), (b.mode, &b.owner, &b.group));
            change(n, ChangeOp::Chmod, Reason::Metadata { what })
        }
        (Resource::Dir(a), Resource::Dir(b)) => {
            let what = metadata_change((a.mode, &a.owner, &a.group), (b.mode, &b.owner, &b.group));
            change(n, ChangeOp::Chmod, Reason::Metadata { what })
        }
        (Resource::Secret(a), Resource::Secret(b))
            if a.version != b.version || a.length != b.length =>
        {
            let what = format!("version {} -> {}", a.version, b.version);
            change(n, ChangeOp::Generate, Reason::Metadata { what })
        }
        (Resource::Secret(a), Resource::Secret(b)) => {
            let what = metadata_change((a.mode, &a.owner, &a.group), (b.mode, &b.owner, &b.group));
            change(n, ChangeOp::Chmod, Reason::Metadata { what })
        }
        _ => change(
            n,
            ChangeOp::Update,
            Reason::Metadata {
                what: "settings changed".into(),
            },
        ),
    }
}

type Meta<'a> = (
    archy_graph::names::Mode,
    &'a Option<archy_graph::names::AccountName>,
    &'a Option<archy_graph::names::AccountName>,
);

/// "mode 0644 -> 0640, owner root -> app".
fn metadata_change(a: Meta, b: Meta) -> String {
    let name = |o: &Option<archy_graph::names::AccountName>| {
        o.as_ref()
            .map(|n| n.to_string())
            .unwrap_or_else(|| "root".into())
    };
    let mut parts = Vec::new();
    if a.0 != b.0 {
        parts.push(format!("mode {} -> {}", a.0, b.0));
    }
    if a.1 != b.1 {
        parts.push(format!("owner {} -> {}", name(a.1), name(b.1)));
    }
    if a.2 != b.2 {
        parts.push(format!("group {} -> {}", name(a.2), name(b.2)));
    }
    parts.join(", ")
}

fn removed(o: &Node) -> Change {
    let disposable = matches!(&o.resource, Resource::Dir(d) if d.disposable);
    match o.key.kind {
        Kind::File => change(o, ChangeOp::Remove, Reason::Removed),
        Kind::Dir if disposable => change(o, ChangeOp::Remove, Reason::Removed),
        // Directories, secrets and accounts hold data or own files: a
        // switch never deletes them.
        _ => change(o, ChangeOp::Keep, Reason::DataKept),
    }
}

fn unit_spec(n: &Node) -> Option<&UnitSpec> {
    match &n.resource {
        Resource::Unit(u) => Some(u),
        _ => None,
    }
}

fn has_install(u: &UnitSpec) -> bool {
    u.sections
        .iter()
        .any(|s| s.name == "Install" && !s.entries.is_empty())
}

/// The first reference whose hash differs between the generations.
fn changed_reference(o: &Node, n: &Node, live: &Graph, new: &Graph) -> Option<String> {
    n.refs
        .iter()
        .find(|r| {
            let before = live.get(r).map(|x| x.hash);
            let after = new.get(r).map(|x| x.hash);
            before != after || !o.refs.contains(r)
        })
        .map(|r| r.id.clone())
}

fn plan_units(
    live: Option<&Graph>,
    new: &Graph,
    old: &BTreeMap<&ResourceKey, &Node>,
    now: &BTreeMap<&ResourceKey, &Node>,
    observed: &Observed,
    plan: &mut Plan,
) {
    let mut actions: Vec<UnitAction> = Vec::new();
    for n in new.nodes.iter().filter(|n| n.key.kind == Kind::Unit) {
        let Some(spec) = unit_spec(n) else { continue };
        let name = n.key.id.clone();
        let act = |op, reason| UnitAction {
            unit: name.clone(),
            op,
            reason,
        };
        let action = match (old.get(&n.key), live) {
            (Some(o), _) if o.hash == n.hash => {
                plan.unchanged += 1;
                continue;
            }
            (None, _) => {
                let path = unit_file_path(&name);
                if observed.unowned.contains(&path) && !observed.adopt {
                    plan.changes.push(Change {
                        kind: "unit".into(),
                        id: name.clone(),
                        op: ChangeOp::Refuse,
                        reason: Reason::NotOwned,
                    });
                    continue;
                }
                plan.unit_files_changed.push(name.clone());
                if spec.name.is_template() {
                    act(UnitOp::Skip, Reason::Template)
                } else if !has_install(spec) {
                    act(UnitOp::Skip, Reason::NotInstalled)
                } else {
                    act(UnitOp::Start, Reason::New)
                }
            }
            (Some(o), Some(live)) => {
                let before = unit_spec(o);
                if before != Some(spec) {
                    plan.unit_files_changed.push(name.clone());
                }
                let sections = before.map(|b| spec.changed_sections(b)).unwrap_or_default();
                let running: Vec<String> = sections
                    .iter()
                    .filter(|s| *s != "Install")
                    .cloned()
                    .collect();
                let reference = changed_reference(o, n, live, new);
                let reason = match (running.is_empty(), reference) {
                    (false, _) => Reason::UnitChanged { sections: running },
                    (true, Some(what)) => Reason::Reads { what },
                    (true, None) if sections.is_empty() => Reason::Cosmetic,
                    (true, None) => Reason::InstallOnly,
                };
                let restart_worthy =
                    matches!(reason, Reason::UnitChanged { .. } | Reason::Reads { .. });
                match (restart_worthy, spec.on_change) {
                    (false, _) => act(UnitOp::Skip, reason),
                    (true, _) if spec.name.is_template() => act(UnitOp::Skip, Reason::Template),
                    (true, OnChange::Keep) => act(UnitOp::Skip, Reason::KeptRunning),
                    (true, OnChange::Reload) => act(UnitOp::Reload, reason),
                    (true, OnChange::Restart) => act(UnitOp::Restart, reason),
                }
            }
            (Some(_), None) => continue,
        };
        actions.push(action);
    }
    let mut stops = Vec::new();
    if let Some(live) = live {
        for o in live
            .nodes
            .iter()
            .filter(|o| o.key.kind == Kind::Unit && !now.contains_key(&o.key))
        {
            plan.unit_files_changed.push(o.key.id.clone());
            if unit_spec(o).is_some_and(|u| !u.name.is_template()) {
                stops.push(o.key.id.clone());
            }
        }
    }
    plan.unit_files_changed.sort();
    let by_op = |op: UnitOp| -> Vec<String> {
        actions
            .iter()
            .filter(|a| a.op == op)
            .map(|a| a.unit.clone())
            .collect()
    };
    let reason_of = |unit: &str| {
        actions
            .iter()
            .find(|a| a.unit == unit)
            .map(|a| a.reason.clone())
            .unwrap_or(Reason::Removed)
    };
    if let Some(live) = live {
        for unit in stop_order(live, &stops) {
            plan.units.push(UnitAction {
                unit,
                op: UnitOp::Stop,
                reason: Reason::Removed,
            });
        }
    }
    for op in [UnitOp::Reload, UnitOp::Restart, UnitOp::Start] {
        for unit in dependency_order(new, &by_op(op)) {
            let reason = reason_of(&unit);
            plan.units.push(UnitAction { unit, op, reason });
        }
    }
    plan.units
        .extend(actions.iter().filter(|a| a.op == UnitOp::Skip).cloned());
}

//! The order units are acted on: what a unit needs comes before it (for
//! starts, restarts and reloads) and after it (for stops), by the
//! dependencies its own file declares.

use std::collections::{BTreeMap, BTreeSet};

use archy_graph::names::UnitName;
use archy_units::UnitSource;

/// For each unit of a generation, the units it needs (among its units),
/// from its own `[Unit]` keys and, for containers, what Quadlet adds.
fn needs(sources: &[UnitSource]) -> BTreeMap<UnitName, BTreeSet<UnitName>> {
    let units: BTreeSet<&UnitName> = sources.iter().map(|u| &u.unit).collect();
    sources
        .iter()
        .map(|u| {
            let deps = u
                .needs()
                .into_iter()
                .filter(|d| units.contains(d))
                .collect();
            (u.unit.clone(), deps)
        })
        .collect()
}

/// `units` with every unit after the units it needs (directly or through
/// others in the graph); ties by name. A dependency cycle (which systemd
/// would break arbitrarily too) falls back to name order for the rest.
pub fn dependency_order(sources: &[UnitSource], units: &[UnitName]) -> Vec<UnitName> {
    let needs = needs(sources);
    let wanted: BTreeSet<&UnitName> = units.iter().collect();
    let mut done: BTreeSet<UnitName> = BTreeSet::new();
    let mut out = Vec::new();
    // Depth-first over each unit's needs, so transitive order holds even
    // through units that are not acted on.
    fn visit(
        unit: &UnitName,
        needs: &BTreeMap<UnitName, BTreeSet<UnitName>>,
        done: &mut BTreeSet<UnitName>,
        on_path: &mut BTreeSet<UnitName>,
        order: &mut Vec<UnitName>,
    ) {
        if done.contains(unit) || !on_path.insert(unit.clone()) {
            return;
        }
        for dep in needs.get(unit).into_iter().flatten() {
            visit(dep, needs, done, on_path, order);
        }
        on_path.remove(unit);
        done.insert(unit.clone());
        order.push(unit.clone());
    }
    let mut all = Vec::new();
    let mut sorted: Vec<&UnitName> = units.iter().collect();
    sorted.sort();
    for unit in sorted {
        visit(unit, &needs, &mut done, &mut BTreeSet::new(), &mut all);
    }
    for unit in all {
        if wanted.contains(&unit) {
            out.push(unit);
        }
    }
    out
}

/// `units` with dependents before what they need, by the live
/// generation's units.
pub fn stop_order(live: &[UnitSource], units: &[UnitName]) -> Vec<UnitName> {
    let mut order = dependency_order(live, units);
    order.reverse();
    order
}

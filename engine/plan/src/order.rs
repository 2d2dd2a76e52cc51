//! The order units are acted on: what a unit needs comes before it (for
//! starts, restarts and reloads) and after it (for stops), by the
//! dependencies its own file declares.

use std::collections::{BTreeMap, BTreeSet};

use archy_units::UnitSource;

/// For each unit of a generation, the units it needs (among its units),
/// from its own `[Unit]` keys and, for containers, what Quadlet adds.
fn needs(sources: &[UnitSource]) -> BTreeMap<String, BTreeSet<String>> {
    let units: BTreeSet<&str> = sources.iter().map(|u| u.unit.as_str()).collect();
    sources
        .iter()
        .map(|u| {
            let deps = u
                .needs()
                .into_iter()
                .filter(|d| units.contains(d.as_str()))
                .collect();
            (u.unit.clone(), deps)
        })
        .collect()
}

/// `units` with every unit after the units it needs (directly or through
/// others in the graph); ties by name. A dependency cycle (which systemd
/// would break arbitrarily too) falls back to name order for the rest.
pub fn dependency_order(sources: &[UnitSource], units: &[String]) -> Vec<String> {
    let needs = needs(sources);
    let wanted: BTreeSet<&String> = units.iter().collect();
    let mut done: BTreeSet<String> = BTreeSet::new();
    let mut out = Vec::new();
    // Depth-first over each unit's needs, so transitive order holds even
    // through units that are not acted on.
    fn visit(
        unit: &str,
        needs: &BTreeMap<String, BTreeSet<String>>,
        done: &mut BTreeSet<String>,
        on_path: &mut BTreeSet<String>,
        order: &mut Vec<String>,
    ) {
        if done.contains(unit) || !on_path.insert(unit.to_string()) {
            return;
        }
        for dep in needs.get(unit).into_iter().flatten() {
            visit(dep, needs, done, on_path, order);
        }
        on_path.remove(unit);
        done.insert(unit.to_string());
        order.push(unit.to_string());
    }
    let mut all = Vec::new();
    let mut sorted: Vec<&String> = units.iter().collect();
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
pub fn stop_order(live: &[UnitSource], units: &[String]) -> Vec<String> {
    let mut order = dependency_order(live, units);
    order.reverse();
    order
}

//! `archy rollback --keep-app APP`: an earlier generation with some apps
//! taken from the current one, for when an app's data may not go back
//! with its code (forward-only data a newer version migrated).
//!
//! An app is its lifecycle resource, its units (unit files, containers,
//! template instances), its data directories and contracts, and what
//! those refer to (config files, secrets, software). The composed graph is
//! checked like an evaluated one; a resource the kept app shares with the
//! rest that differs between the two generations is refused, since
//! taking either version would change what the other side runs.

use std::collections::{BTreeMap, BTreeSet};

use crate::graph::{Declarations, Declared, Graph, Node};
use crate::problem::Problem;
use crate::resource::{Kind, ResourceKey};

/// The keys of app `name`'s resources in `graph`, with what they refer
/// to (files, directories, secrets, software); none if the graph does not
/// declare the app.
pub fn members(graph: &Graph, name: &str) -> Option<BTreeSet<ResourceKey>> {
    let app = crate::app::app(graph, name)?;
    let key = |kind, id: &str| ResourceKey {
        kind,
        id: id.to_string(),
    };
    let mut out = BTreeSet::from([key(Kind::App, name)]);
    for unit in &app.units {
        let unit = unit.as_str();
        for k in [
            key(Kind::Unit, unit),
            key(Kind::Instance, unit),
            key(Kind::Container, unit.trim_end_matches(".service")),
        ] {
            if graph.get(&k).is_some() {
                out.insert(k);
            }
        }
    }
    for path in &app.data {
        out.insert(key(Kind::Dir, path.as_str()));
    }
    for c in crate::data::contracts(graph).filter(|c| app.data.contains(&c.path)) {
        out.insert(key(Kind::Data, c.name.as_str()));
    }
    // What they refer to, transitively: the app's own config and secrets.
    let mut todo: Vec<ResourceKey> = out.iter().cloned().collect();
    while let Some(k) = todo.pop() {
        let Some(node) = graph.get(&k) else { continue };
        for r in &node.refs {
            let owned = matches!(
                r.kind,
                Kind::File | Kind::Dir | Kind::Secret | Kind::Artifact | Kind::Tree
            );
            if owned && out.insert(r.clone()) {
                todo.push(r.clone());
            }
        }
    }
    Some(out)
}

/// `target` with apps `keep` as `current` has them.
pub fn keeping(
    target: &Graph,
    current: &Graph,
    keep: &BTreeSet<String>,
) -> Result<Graph, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut from_current: BTreeSet<ResourceKey> = BTreeSet::new();
    let mut from_target: BTreeSet<ResourceKey> = BTreeSet::new();
    for app in keep {
        match members(current, app) {
            Some(m) => from_current.extend(m),
            None => problems.push(Problem::new(
                None,
                format!("--keep-app {app}: the current generation has no app {app}"),
            )),
        }
        if let Some(m) = members(target, app) {
            from_target.extend(m);
        }
    }
    // Resources the rest of the target refers to: shared with the kept
    // apps, they must be the same in both generations.
    let rest: Vec<&Node> = target
        .nodes
        .iter()
        .filter(|n| !from_target.contains(&n.key) && !from_current.contains(&n.key))
        .collect();
    let shared: BTreeSet<&ResourceKey> = rest.iter().flat_map(|n| &n.refs).collect();
    for k in &from_current {
        let (Some(now), Some(then)) = (current.get(k), target.get(k)) else {
            continue;
        };
        if shared.contains(k) && now.hash != then.hash {
            problems.push(Problem::new(None, format!(
                "--keep-app: {k} belongs to a kept app and to the rest, and differs between the two generations"
            )));
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let mut resources: BTreeMap<ResourceKey, Declared> = BTreeMap::new();
    for n in rest {
        resources.insert(n.key.clone(), declared(n));
    }
    for k in &from_current {
        if let Some(n) = current.get(k) {
            resources.insert(k.clone(), declared(n));
        }
    }
    let mut facts = current.facts.clone();
    facts.extend(target.facts.clone());
    let mut blobs = current.blobs.clone();
    blobs.extend(target.blobs.clone());
    let mut contexts = current.contexts.clone();
    contexts.extend(target.contexts.clone());
    crate::graph::assemble(Declarations {
        resources: resources.into_values().collect(),
        blobs,
        contexts,
        facts,
        sources: BTreeMap::new(),
        invalid: BTreeSet::new(),
    })
}

fn declared(n: &Node) -> Declared {
    Declared {
        resource: n.resource.clone(),
        at: n.at.clone(),
    }
}

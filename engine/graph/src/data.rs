//! Data contracts: what an app's data directory is, which format version
//! the app's code reads and writes, and what may happen to it when code
//! goes back to an older version (`data(name, #{ path, version, kind })`).
//!
//! A contract names a directory. When it is some app's data
//! (`app_lifecycle`'s `data`), that app's units are the ones stopped while
//! the data is snapshotted or restored, and the app is what `archy rollback
//! --keep-app` leaves on its newer code; otherwise the units that refer to
//! the directory (a container mounting it) are.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::app::AppSpec;
use crate::graph::{Declared, Graph, generated_unit};
use crate::names::{AbsPath, AppName, UnitName};
use crate::problem::Problem;
use crate::resource::{Kind, Resource, ResourceKey};

/// What may be done with data when code older than the data runs again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DataKind {
    /// Never put back once the app ran on it (lnd's channel state: an old
    /// state broadcast is punished by the peer). Going back to code older
    /// than the data is refused.
    ForwardOnly,
    /// Small state that is safe to restore: snapshotted before a version
    /// change, restored when that change is rolled back.
    Snapshot,
    /// An index or cache the app makes again from elsewhere: going back
    /// empties it, at the cost the contract states.
    Rebuildable,
}

impl DataKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DataKind::ForwardOnly => "forward-only",
            DataKind::Snapshot => "snapshot",
            DataKind::Rebuildable => "rebuildable",
        }
    }

    /// Whether a migration snapshots the data first: a rebuildable index
    /// is made again instead of kept twice.
    pub fn snapshots(self) -> bool {
        !matches!(self, DataKind::Rebuildable)
    }
}

impl fmt::Display for DataKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `data(name, #{ path, version, kind, opened, rebuild })`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataSpec {
    pub name: AppName,
    pub path: AbsPath,
    /// The data format the app's code of this generation reads and writes.
    pub version: u32,
    pub kind: DataKind,
    /// Forward-only data: a file under `path` (relative) that the app
    /// changes once it has opened the data for writing (lnd: its channel
    /// database). The data is put back after a failed migration only when
    /// this file is exactly as it was before the switch. None: never.
    pub opened: Option<String>,
    /// Rebuildable data: what going back costs, in words ("electrs indexes
    /// the chain again, hours").
    pub rebuild: Option<String>,
}

/// The data contracts of `graph`.
pub fn contracts(graph: &Graph) -> impl Iterator<Item = &DataSpec> {
    let start = graph.nodes.partition_point(|n| n.key.kind < Kind::Data);
    graph.nodes[start..]
        .iter()
        .filter_map(|n| match &n.resource {
            Resource::Data(d) => Some(d),
            _ => None,
        })
}

/// The contract named `name` in `graph`.
pub fn contract<'g>(graph: &'g Graph, name: &str) -> Option<&'g DataSpec> {
    contracts(graph).find(|d| d.name.as_str() == name)
}

/// The app whose data `contract` is, in `graph`.
pub fn owner<'g>(graph: &'g Graph, contract: &DataSpec) -> Option<&'g AppSpec> {
    crate::app::apps(graph).find(|a| a.data.contains(&contract.path))
}

/// The units stopped around `contract`'s data steps and held with it: its
/// app's, or, when no app lists the directory, the units that refer to it
/// (a container mounting it).
pub fn units(graph: &Graph, contract: &DataSpec) -> BTreeSet<UnitName> {
    if let Some(app) = owner(graph, contract) {
        return app.units.iter().cloned().collect();
    }
    let dir = ResourceKey {
        kind: Kind::Dir,
        id: contract.path.to_string(),
    };
    graph
        .nodes
        .iter()
        .filter(|n| n.refs.contains(&dir))
        .filter_map(|n| match &n.resource {
            Resource::Unit(u) => Some(u.name.clone()),
            Resource::Instance(i) => UnitName::try_from(i.unit().as_str()).ok(),
            Resource::Container(_) => generated_unit(&n.key),
            _ => None,
        })
        .collect()
}

/// Every directory has at most one contract.
pub(crate) fn check_contracts(
    by_key: &BTreeMap<ResourceKey, Declared>,
    problems: &mut Vec<Problem>,
) {
    let mut paths: BTreeMap<&AbsPath, &AppName> = BTreeMap::new();
    for d in by_key.values() {
        let Resource::Data(c) = &d.resource else {
            continue;
        };
        if let Some(first) = paths.insert(&c.path, &c.name) {
            problems.push(
                Problem::at(
                    &d.at,
                    format!("data {} and data {first} both describe {}", c.name, c.path),
                )
                .hint("a directory has one contract: remove one of them"),
            );
        }
    }
}

//! Apps: a named set of the node's units with a lifecycle, and the
//! directories that hold its data.
//!
//! An app resource names what already is in the graph (its units, its data
//! directories); it refers to nothing by hash, so declaring an app, or
//! stopping one, changes no other resource's hash. What it changes is what
//! a switch does with those units: a stopped app's units lose their
//! `[Install]` (so nothing starts them at boot) and are stopped, never
//! started, watched or reported as down (see `archy_units::UnitSource`).
//! Its data directories are removed only by `archy switch --clobber APP`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::graph::{Declared, Graph, generated_unit};
use crate::names::{AbsPath, AppName, UnitName};
use crate::problem::Problem;
use crate::resource::{Kind, Resource, ResourceKey};

/// Whether an app's units run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AppState {
    Running,
    /// Declared, data kept, units stopped and disabled.
    Stopped,
}

impl fmt::Display for AppState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AppState::Running => "running",
            AppState::Stopped => "stopped",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppSpec {
    pub name: AppName,
    pub state: AppState,
    /// The units that are the app: its unit files, its containers'
    /// services, its template instances.
    pub units: Vec<UnitName>,
    /// Its data directories: declared directories, kept by every switch
    /// and removed only by `archy switch --clobber APP`.
    pub data: Vec<AbsPath>,
}

/// Directories no app may call its data: clobbering one would wreck the
/// system, whatever the description says.
const NEVER_DATA: &[&str] = &[
    "/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/opt", "/proc", "/root", "/run",
    "/sbin", "/srv", "/sys", "/tmp", "/usr", "/var", "/var/lib", "/var/log",
];

/// The apps of `graph`. The graph lists its nodes by kind, and apps are
/// the last kind: they are the tail of the list.
pub fn apps(graph: &Graph) -> impl Iterator<Item = &AppSpec> {
    let start = graph.nodes.partition_point(|n| n.key.kind < Kind::App);
    graph.nodes[start..]
        .iter()
        .filter_map(|n| match &n.resource {
            Resource::App(a) => Some(a),
            _ => None,
        })
}

/// The app named `name` in `graph`.
pub fn app<'g>(graph: &'g Graph, name: &str) -> Option<&'g AppSpec> {
    apps(graph).find(|a| a.name.as_str() == name)
}

/// The units of `graph`'s stopped apps, each with its app.
pub fn stopped_units(graph: &Graph) -> BTreeMap<UnitName, AppName> {
    apps(graph)
        .filter(|a| a.state == AppState::Stopped)
        .flat_map(|a| a.units.iter().map(|u| (u.clone(), a.name.clone())))
        .collect()
}

/// The unit each declared resource is or makes.
fn declared_units(by_key: &BTreeMap<ResourceKey, Declared>) -> BTreeSet<String> {
    by_key
        .iter()
        .filter_map(|(key, d)| match (&d.resource, key.kind) {
            (Resource::Unit(u), _) => Some(u.name.to_string()),
            (Resource::Instance(i), _) => Some(i.unit()),
            (_, Kind::Container | Kind::Network | Kind::Volume) => {
                generated_unit(key).map(|u| u.to_string())
            }
            _ => None,
        })
        .collect()
}

/// An app names units and directories the node declares, each unit is
/// one app's, its data is no system directory, and no container that runs
/// requires one of a stopped app (systemd would start it again).
pub(crate) fn check_apps(by_key: &BTreeMap<ResourceKey, Declared>, problems: &mut Vec<Problem>) {
    check_declared(by_key, problems);
    let stopped: BTreeMap<&UnitName, &AppName> = by_key
        .values()
        .filter_map(|d| match &d.resource {
            Resource::App(a) if a.state == AppState::Stopped => Some(a),
            _ => None,
        })
        .flat_map(|a| a.units.iter().map(move |u| (u, &a.name)))
        .collect();
    for d in by_key.values() {
        let Resource::Container(c) = &d.resource else {
            continue;
        };
        let own = format!("{}.service", c.name);
        if stopped.keys().any(|u| u.as_str() == own) {
            continue;
        }
        for r in &c.requires {
            let needed = format!("{r}.service");
            if let Some((_, app)) = stopped.iter().find(|(u, _)| u.as_str() == needed) {
                problems.push(
                    Problem::at(
                        &d.at,
                        format!("container {} requires {r}, but app {app} is stopped: systemd would start it again", c.name),
                    )
                    .hint(format!("stop the app of {} too, or run app {app}", c.name)),
                );
            }
        }
    }
}

fn check_declared(by_key: &BTreeMap<ResourceKey, Declared>, problems: &mut Vec<Problem>) {
    let units = declared_units(by_key);
    let mut owner: BTreeMap<&UnitName, &AppName> = BTreeMap::new();
    for d in by_key.values() {
        let Resource::App(a) = &d.resource else {
            continue;
        };
        for u in &a.units {
            if !units.contains(u.as_str()) {
                problems.push(
                    Problem::at(
                        &d.at,
                        format!("app {} names unit {u}, which is not declared", a.name),
                    )
                    .hint(
                        "declare the unit (or its container), or remove it from the app's `units`",
                    ),
                );
            }
            if let Some(first) = owner.insert(u, &a.name)
                && first != &a.name
            {
                problems.push(
                    Problem::at(
                        &d.at,
                        format!("unit {u} is in both app {first} and app {}", a.name),
                    )
                    .hint("a unit belongs to one app: remove it from one of them"),
                );
            }
        }
        for p in &a.data {
            let dir = ResourceKey {
                kind: Kind::Dir,
                id: p.to_string(),
            };
            if NEVER_DATA.contains(&p.as_str()) {
                problems.push(
                    Problem::at(&d.at, format!("app {} calls {p} its data", a.name)).hint(
                        "name the app's own directory (like /var/lib/APP): `archy switch --clobber` removes what an app calls its data",
                    ),
                );
            } else if !by_key.contains_key(&dir) {
                problems.push(
                    Problem::at(
                        &d.at,
                        format!(
                            "app {} calls {p} its data, which is not a declared directory",
                            a.name
                        ),
                    )
                    .hint(format!(
                        "declare it: dir(\"{p}\", #{{}}), or remove it from the app's `data`"
                    )),
                );
            }
        }
    }
}

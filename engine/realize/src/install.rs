//! A unit's [Install] section as the symlinks `systemctl enable` would
//! make, made by archy itself (so they work offline, under `--root`).

use std::collections::BTreeMap;

use archy_graph::names::UnitName;
use archy_graph::resource::UnitSpec;
use archy_units::unit_file::UnitFile as _;

use crate::error::{Error, Result};

/// Where unit files and their links live.
pub(crate) const UNIT_DIR: &str = "/etc/systemd/system";

/// The [Install] keys that make a `<target>.<suffix>/` link.
const DEPENDENCY_KEYS: [(&str, &str); 3] = [
    ("WantedBy", "wants"),
    ("RequiredBy", "requires"),
    ("UpheldBy", "upholds"),
];

fn unit_name(unit: &UnitSpec, key: &'static str, value: &str) -> Result<UnitName> {
    UnitName::try_from(value).map_err(|_| Error::BadInstall {
        unit: unit.name.to_string(),
        key,
        value: value.to_string(),
    })
}

/// The links enabling `unit`: node path -> what the link points to
/// (relative, so the tree is right under any root).
pub(crate) fn links(unit: &UnitSpec) -> Result<BTreeMap<String, String>> {
    let name = unit.name.as_str();
    let mut out = BTreeMap::new();
    // A template is enabled through an instance: its DefaultInstance=, or
    // none at all (as `systemctl enable foo@.service` without one).
    let link_name = if unit.name.is_template() {
        unit.values("Install", "DefaultInstance")
            .first()
            .map(|inst| name.replacen("@.", &format!("@{inst}."), 1))
    } else {
        Some(name.to_string())
    };
    if let Some(link_name) = link_name {
        unit_name(unit, "DefaultInstance", &link_name)?;
        for (key, suffix) in DEPENDENCY_KEYS {
            for target in unit.values("Install", key) {
                let target = unit_name(unit, key, target)?;
                out.insert(
                    format!("{UNIT_DIR}/{target}.{suffix}/{link_name}"),
                    format!("../{name}"),
                );
            }
        }
    }
    for alias in unit.values("Install", "Alias") {
        let alias = unit_name(unit, "Alias", alias)?;
        if alias.as_str() != name {
            out.insert(format!("{UNIT_DIR}/{alias}"), name.to_string());
        }
    }
    Ok(out)
}

/// The links enabling instance `instance` (`app@x.service`) of `template`:
/// the template's [Install] links, named for the instance, pointing at
/// the template's file (as `systemctl enable app@x.service` makes them).
pub(crate) fn instance_links(
    template: &UnitSpec,
    instance: &UnitName,
) -> Result<BTreeMap<String, String>> {
    let name = template.name.as_str();
    let mut out = BTreeMap::new();
    for (key, suffix) in DEPENDENCY_KEYS {
        for target in template.values("Install", key) {
            let target = unit_name(template, key, target)?;
            out.insert(
                format!("{UNIT_DIR}/{target}.{suffix}/{instance}"),
                format!("../{name}"),
            );
        }
    }
    Ok(out)
}

/// The links `u` needs: a unit's [Install] links, an instance's (from its
/// template's [Install]); none for a Quadlet unit (Quadlet makes its own)
/// or a drop-in.
pub(crate) fn links_of_source(
    u: &archy_units::UnitSource,
    graph: &archy_graph::Graph,
) -> Result<BTreeMap<String, String>> {
    use archy_graph::{Kind, Resource, ResourceKey};
    if u.stopped_app.is_some() {
        // A stopped app's unit is disabled: no links.
        return Ok(BTreeMap::new());
    }
    match &u.node.resource {
        Resource::Unit(spec) if spec.name.is_template() => {
            // A template's DefaultInstance= link is the declared
            // instance's of that name when there is one: one owner per
            // link, so removing either leaves the other's links alone.
            let declared: Vec<String> = graph
                .nodes
                .iter()
                .filter_map(|n| match &n.resource {
                    Resource::Instance(i) if i.template == spec.name => Some(i.unit()),
                    _ => None,
                })
                .collect();
            let mut out = links(spec)?;
            out.retain(|link, _| {
                let name = link.rsplit('/').next().unwrap_or_default();
                !declared.iter().any(|d| d == name)
            });
            Ok(out)
        }
        Resource::Unit(spec) => links(spec),
        Resource::Instance(i) => {
            let template = graph.get(&ResourceKey {
                kind: Kind::Unit,
                id: i.template.to_string(),
            });
            match template.map(|t| &t.resource) {
                Some(Resource::Unit(t)) => instance_links(t, &u.unit),
                _ => Ok(BTreeMap::new()),
            }
        }
        _ => Ok(BTreeMap::new()),
    }
}

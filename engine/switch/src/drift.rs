//! Observing drift, for `archy status` and `archy reconcile`: the disk (the
//! realizer), the units that should run (systemd, all in one call) and the
//! containers (podman), compared with the generation the node runs.

use std::collections::BTreeMap;
use std::time::Instant;

use archy_graph::{Graph, Kind};
use archy_plan::Drift;
use archy_podman::{ContainerInfo, ImageInfo};
use archy_realize::Realizer;
use archy_systemd::{ServiceManager, UnitActivity, UnitName};
use archy_units::GraphUnits as _;

use crate::containers::{ContainerDrift, ContainerError, PodmanAccess, drift as container_drift};

/// Why drift could not be observed.
#[derive(Debug, thiserror::Error)]
pub enum DriftError {
    #[error("cannot look at the node's files: {0}")]
    Disk(#[from] archy_realize::Error),
    #[error("cannot ask systemd which units run: {0}")]
    Systemd(#[from] archy_systemd::Error),
}

/// The units of `graph` that should be up whenever the node is: started at
/// boot (an [Install] section), not templates, and not oneshot services
/// that are done once their command ran.
pub fn units_that_run(graph: &Graph) -> Vec<UnitName> {
    graph
        .unit_sources()
        .iter()
        .filter(|u| u.installed() && !u.is_template() && u.stays_active())
        .map(|u| u.unit.clone())
        .collect()
}

/// Everything that differs between the node and `graph`: files and
/// directories, unit files and [Install] links, secrets, units that should
/// run, containers. podman is asked only when `graph` has containers; when
/// it does not answer, that is one drift ([`Drift::PodmanUnreachable`]),
/// not an error, so the rest is still reported.
pub fn observe(
    realizer: &Realizer,
    systemd: &dyn ServiceManager,
    podman: &dyn PodmanAccess,
    graph: &Graph,
) -> Result<Vec<Drift>, DriftError> {
    let started = Instant::now();
    // podman before systemd: a container removed by hand has no process
    // left in its unit by the time podman stops listing it, so its unit
    // read afterwards is not mistaken for one that runs a lost container.
    let listed = has_containers(graph).then(|| list(podman));
    let in_podman = started.elapsed();
    let mut out = realizer.drift(graph)?;
    let disk = started.elapsed() - in_podman;
    let units = units_that_run(graph);
    let activity = systemd.unit_activity(&units)?;
    let by_unit: BTreeMap<&str, &UnitActivity> =
        activity.iter().map(|a| (a.unit.as_str(), a)).collect();
    // An adopted container's held unit does not run until its hand-over.
    let held =
        |unit: &str| crate::adopt::is_held(realizer.root(), unit.trim_end_matches(".service"));
    for a in &activity {
        if !a.is_up() && !a.condition_failed && !held(a.unit.as_str()) {
            out.push(Drift::Inactive {
                unit: a.unit.clone(),
                state: format!("{} ({})", a.active_state, a.sub_state),
            });
        }
    }
    let in_systemd = started.elapsed() - disk - in_podman;
    if let Some(listed) = listed {
        out.extend(containers(listed, graph, &by_unit, realizer.root()));
    }
    // An app held with its data is down on purpose: that it is held is
    // the one difference, not its units or containers.
    for (held, units) in crate::data::held(realizer.state_dir(), graph) {
        out.retain(|d| {
            let unit = match d {
                Drift::Inactive { unit, .. } => unit.to_string(),
                Drift::ContainerMissing { container }
                | Drift::ContainerStopped { container, .. } => format!("{container}.service"),
                _ => return true,
            };
            !units.contains(&unit)
        });
        out.push(held);
    }
    // debug, not info: a reconcile with nothing to do logs one line only.
    tracing::debug!(
        target: "archy::timing",
        "drift: {} found in {:.1} ms (podman {:.1} ms, disk {:.1} ms, systemd {:.1} ms)",
        out.len(),
        started.elapsed().as_secs_f64() * 1e3,
        in_podman.as_secs_f64() * 1e3,
        disk.as_secs_f64() * 1e3,
        in_systemd.as_secs_f64() * 1e3,
    );
    Ok(out)
}

/// The containers of `graph` adopted in place whose hand-over is pending
/// (their units held), from the node's disk alone.
pub fn pending_hand_overs(realizer: &Realizer, graph: &Graph) -> Vec<String> {
    graph
        .nodes
        .iter()
        .filter(|n| n.key.kind == Kind::Container)
        .map(|n| n.key.id.clone())
        .filter(|name| crate::adopt::is_held(realizer.root(), name))
        .collect()
}

/// What podman lists: its containers and images, or why it could not.
type Listed = Result<(Vec<ContainerInfo>, Vec<ImageInfo>), ContainerError>;

fn list(podman: &dyn PodmanAccess) -> Listed {
    Ok(podman.podman()?.containers_and_images()?)
}

fn has_containers(graph: &Graph) -> bool {
    graph.nodes.iter().any(|n| n.key.kind == Kind::Container)
}

/// The containers' drift. A container podman does not know while its unit
/// runs is not merely missing: podman lost its state (its database), and
/// the processes its unit still has must go before the unit can make the
/// container anew.
fn containers(
    listed: Listed,
    graph: &Graph,
    units: &BTreeMap<&str, &UnitActivity>,
    root: &std::path::Path,
) -> Vec<Drift> {
    let (running, images) = match listed {
        Ok(l) => l,
        Err(why) => {
            return vec![Drift::PodmanUnreachable {
                why: why.to_string(),
            }];
        }
    };
    // A unit that systemd is starting (at boot, or a start someone asked
    // for) makes its container in a moment: not drift, and a repair would
    // only restart the start.
    let starting = |container: &str| {
        units
            .get(format!("{container}.service").as_str())
            .is_some_and(|a| {
                a.active_state == archy_systemd::ActiveState::Activating
                    && a.sub_state != "auto-restart"
            })
    };
    container_drift(graph, &running, &images)
        .into_iter()
        .filter(|d| match d {
            // Adopted and running, its hand-over pending: as it should be.
            ContainerDrift::Foreign { container } => {
                let runs = running
                    .iter()
                    .any(|r| r.name == *container && r.is_running());
                !(runs && crate::adopt::is_held(root, container))
            }
            ContainerDrift::Missing { container }
            | ContainerDrift::Stopped { container, .. }
            | ContainerDrift::OtherImage { container, .. } => !starting(container),
        })
        .map(|d| match d {
            ContainerDrift::Missing { container } => {
                let unit = format!("{container}.service");
                let runs = units
                    .get(unit.as_str())
                    .is_some_and(|a| a.active_state == archy_systemd::ActiveState::Active);
                if runs {
                    Drift::PodmanLost { container }
                } else {
                    Drift::ContainerMissing { container }
                }
            }
            ContainerDrift::Stopped { container, state } => {
                Drift::ContainerStopped { container, state }
            }
            ContainerDrift::Foreign { container } => Drift::ContainerForeign { container },
            ContainerDrift::OtherImage {
                container,
                declared,
                running,
            } => Drift::ContainerImage {
                container,
                declared,
                running,
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use archy_eval::{Limits, MemSources, evaluate};

    use super::units_that_run;

    #[test]
    fn instances_run_and_templates_and_dropins_do_not() {
        let node = r#"[
            unit("w@.service", #{ Service: #{ ExecStart: "/bin/w %i" }, Install: #{ WantedBy: "multi-user.target" }, instances: ["a", "b"] }),
            dropin("systemd-networkd.service", "x", #{ Service: #{ Environment: "A=1" } }),
        ]"#;
        let src = MemSources::default().with("node.rhai", node);
        let graph = match evaluate(src, "node.rhai", BTreeMap::new(), &Limits::default()) {
            Ok(ev) => ev.graph,
            Err(f) => panic!("{:#?}", f.problems),
        };
        let units: Vec<String> = units_that_run(&graph)
            .iter()
            .map(|u| u.to_string())
            .collect();
        assert_eq!(units, vec!["w@a.service", "w@b.service"]);
    }
}

//! What a switch does around the containers that systemd runs: it looks at
//! podman before planning (which images are missing, which declared names
//! are taken by containers archy did not make), makes every missing image
//! before the first unit is touched, copies the secrets containers read into
//! podman secrets, and removes an adopted container right before its
//! Quadlet unit starts in its place.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use archy_graph::resource::ImageSource;
use archy_graph::{Graph, Kind, Resource};
use archy_plan::{ImageOp, Observed, Plan};
use archy_podman::Podman;
use archy_realize::Realizer;
use archy_units::quadlet::{CONTAINER_LABEL, podman_secret_name};

/// How a switch reaches podman: only when a generation has containers, so
/// a node without any never needs podman at all.
pub trait PodmanAccess: std::fmt::Debug {
    fn podman(&self) -> Result<&dyn Podman, Unreachable>;
}

/// Why podman could not be reached. Cloneable (its sources shared), so
/// that a [`PodmanAccess`] that tries once can give the same answer to
/// every later ask.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Unreachable {
    /// The unit that makes podman's API socket did not start.
    #[error("starting {unit} ended \"{result}\"")]
    SocketNotStarted {
        unit: String,
        result: archy_systemd::JobResult,
    },
    /// systemd could not be asked to start it.
    #[error("starting {unit}: {source}")]
    SocketStart {
        unit: String,
        #[source]
        source: Arc<archy_systemd::Error>,
    },
    /// podman's API does not answer.
    #[error("{0}")]
    Connect(#[source] Arc<archy_podman::Error>),
}

/// What went wrong doing a switch's container work through podman.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error(transparent)]
    Unreachable(#[from] Unreachable),
    /// A podman call failed.
    #[error(transparent)]
    Podman(#[from] archy_podman::Error),
    #[error("cannot read secret {name} ({}): {source}", path.display())]
    ReadSecret {
        name: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("copying secret {name} into podman: {source}")]
    CopySecret {
        name: String,
        #[source]
        source: archy_podman::Error,
    },
    #[error("adopting container {name}: {source}")]
    Adopt {
        name: String,
        #[source]
        source: archy_podman::Error,
    },
}

/// How long a container made outside archy has to stop before it is
/// killed, unless its declaration gives its own stop timeout.
const ADOPT_STOP: Duration = Duration::from_secs(30);

/// An image that could not be made: the switch stops before changing
/// anything.
#[derive(Debug, thiserror::Error)]
#[error("{op} {reference} (for {containers}): {why}")]
pub struct ImageFailure {
    pub op: &'static str,
    pub reference: String,
    pub containers: String,
    pub why: String,
}

/// Whether a generation has anything podman runs.
pub fn uses_podman(graph: &Graph) -> bool {
    graph
        .nodes
        .iter()
        .any(|n| matches!(n.key.kind, Kind::Container | Kind::Network | Kind::Volume))
}

/// Adds what podman says to what the realizer saw: missing images and
/// foreign containers with declared names, and of those that run, how they
/// differ from their declaration (`held` is the caller's to fill in, from
/// the node's disk).
pub fn observe(
    podman: &dyn Podman,
    graph: &Graph,
    observed: &mut Observed,
) -> Result<(), archy_podman::Error> {
    let declared: Vec<_> = graph
        .nodes
        .iter()
        .filter_map(|n| match &n.resource {
            Resource::Container(c) => Some(c),
            _ => None,
        })
        .collect();
    if declared.is_empty() {
        return Ok(());
    }
    let images = podman.images()?;
    for c in &declared {
        let reference = c.image.reference();
        let present = images.iter().any(|i| i.answers_to(&reference))
            // A short reference (or a digest under another spelling of the
            // repository) is not listed as written: ask podman to resolve it.
            || (!reference.starts_with("localhost/archy/")
                && podman.image_exists(&reference)?);
        if !present {
            observed.missing_images.insert(reference);
        }
    }
    for c in podman.containers()? {
        let ours = c.labels.get(CONTAINER_LABEL) == Some(&c.name);
        let Some(spec) = declared.iter().find(|d| d.name.as_str() == c.name) else {
            continue;
        };
        if ours {
            continue;
        }
        // One that runs is adopted as it runs: compared with what its
        // Quadlet file would make.
        if c.is_running()
            && let Some(details) = podman.inspect_container(&c.name)?
            && details.running
        {
            let declared = spec.image.reference();
            let declared_id = images
                .iter()
                .find(|i| i.answers_to(&declared))
                .map(|i| i.id.as_str());
            let differences = crate::adopt::compare(spec, &details, declared_id);
            observed.adoptions.insert(
                c.name.clone(),
                archy_plan::Adoption {
                    differences,
                    held: false,
                },
            );
        }
        observed.foreign_containers.insert(c.name);
    }
    Ok(())
}

/// Pulls or builds every image of the plan, in its order. Built images come
/// from the context kept with the generation, so a rollback builds them
/// again with the sources gone.
pub fn make_images(podman: &dyn Podman, graph: &Graph, plan: &Plan) -> Result<(), ImageFailure> {
    for image in &plan.images {
        let fail = |op: &'static str, why: String| ImageFailure {
            op,
            reference: image.reference.clone(),
            containers: image.containers.join(", "),
            why,
        };
        match image.op {
            ImageOp::Pull => {
                tracing::info!(image = %image.reference, "pulling");
                podman
                    .pull(&image.reference)
                    .map_err(|e| fail("pull", e.to_string()))?;
            }
            ImageOp::Build => {
                let context = build_context(graph, &image.reference)
                    .ok_or_else(|| fail("build", "its context is not in the generation".into()))?;
                let dir = tempfile::tempdir().map_err(|e| fail("build", e.to_string()))?;
                archy_build::write_context(context, dir.path())
                    .map_err(|e| fail("build", format!("writing the context: {e}")))?;
                tracing::info!(image = %image.reference, "building");
                podman
                    .build(dir.path(), &image.reference)
                    .map_err(|e| fail("build", e.to_string()))?;
            }
        }
    }
    Ok(())
}

fn build_context<'g>(
    graph: &'g Graph,
    reference: &str,
) -> Option<&'g archy_graph::context::BuildContext> {
    graph.nodes.iter().find_map(|n| match &n.resource {
        Resource::Container(c) if c.image.reference() == reference => match &c.image {
            ImageSource::Build { tree, .. } => graph.contexts.get(tree).map(|c| c.as_ref()),
            ImageSource::Reference(_) => None,
        },
        _ => None,
    })
}

/// Copies the secrets that containers read (`secret_env`) into podman
/// secrets: those just generated, and those podman does not have.
pub fn sync_secrets(
    podman: &dyn Podman,
    realizer: &Realizer,
    graph: &Graph,
    generated: &[String],
) -> Result<(), ContainerError> {
    let used: BTreeSet<String> = graph
        .nodes
        .iter()
        .filter_map(|n| match &n.resource {
            Resource::Container(c) => Some(c.secret_env.values().map(|s| s.to_string())),
            _ => None,
        })
        .flatten()
        .collect();
    if used.is_empty() {
        return Ok(());
    }
    let present = podman.secret_names()?;
    for name in used {
        let in_podman = podman_secret_name(&name);
        if present.contains(&in_podman) && !generated.contains(&name) {
            continue;
        }
        let path = realizer.secret_path(&name);
        let value = match std::fs::read(&path) {
            Ok(value) => value,
            Err(source) => return Err(ContainerError::ReadSecret { name, path, source }),
        };
        if let Err(source) = podman.put_secret(&in_podman, &value) {
            return Err(ContainerError::CopySecret { name, source });
        }
        tracing::info!(secret = %name, "copied into podman secret {in_podman}");
    }
    Ok(())
}

/// Removes the container archy did not make that holds a declared name;
/// its volumes stay.
pub fn remove_foreign(
    podman: &dyn Podman,
    graph: &Graph,
    name: &str,
) -> Result<(), ContainerError> {
    // bitcoind flushes its cache on the way down: it gets what its
    // declaration gives it, as under its unit.
    let stop = graph
        .nodes
        .iter()
        .find_map(|n| match &n.resource {
            Resource::Container(c) if c.name.as_str() == name => c.stop_timeout,
            _ => None,
        })
        .map_or(ADOPT_STOP, |t| Duration::from_millis(t.0).max(ADOPT_STOP));
    tracing::info!(
        container = name,
        "adopting: removing the container made outside archy"
    );
    podman
        .remove_container(name, stop)
        .map_err(|source| ContainerError::Adopt {
            name: name.to_string(),
            source,
        })
}

/// How a container of the current generation differs from what podman runs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "drift", rename_all = "kebab-case")]
pub enum ContainerDrift {
    /// No container has its name.
    Missing { container: String },
    /// It exists but does not run.
    Stopped { container: String, state: String },
    /// A container archy did not make holds its name.
    Foreign { container: String },
    /// It runs another image than the declared one.
    OtherImage {
        container: String,
        declared: String,
        running: String,
    },
}

impl std::fmt::Display for ContainerDrift {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ContainerDrift::Missing { container } => {
                write!(
                    f,
                    "container {container}: missing (a switch or restart of {container}.service recreates it)"
                )
            }
            ContainerDrift::Stopped { container, state } => {
                write!(
                    f,
                    "container {container}: {state}, not running (see journalctl -u {container}.service)"
                )
            }
            ContainerDrift::Foreign { container } => write!(
                f,
                "container {container}: made outside archy (the next switch adopts it)"
            ),
            ContainerDrift::OtherImage {
                container,
                declared,
                running,
            } => write!(
                f,
                "container {container}: runs image {running}, not the declared {declared}"
            ),
        }
    }
}

/// The containers of `graph` that podman does not run as declared. Pure:
/// what podman lists comes in as data.
pub fn drift(
    graph: &Graph,
    running: &[archy_podman::ContainerInfo],
    images: &[archy_podman::ImageInfo],
) -> Vec<ContainerDrift> {
    // A digest-pinned reference is found among the images' digests: podman
    // does not list it as a name.
    let image_id = |reference: &str| {
        images
            .iter()
            .find(|i| i.answers_to(reference))
            .map(|i| i.id.as_str())
    };
    // A stopped app's containers are not run: none of them missing,
    // stopped or on another image is drift.
    let stopped = archy_graph::app::stopped_units(graph);
    let mut out = Vec::new();
    for n in &graph.nodes {
        let Resource::Container(c) = &n.resource else {
            continue;
        };
        let name = c.name.to_string();
        let of_stopped_app = stopped
            .keys()
            .any(|u| u.as_str() == format!("{name}.service"));
        let found = running.iter().find(|r| r.name == name);
        if of_stopped_app && found.is_none_or(|r| r.labels.get(CONTAINER_LABEL) == Some(&name)) {
            continue;
        }
        let Some(found) = found else {
            out.push(ContainerDrift::Missing { container: name });
            continue;
        };
        if found.labels.get(CONTAINER_LABEL) != Some(&name) {
            out.push(ContainerDrift::Foreign { container: name });
            continue;
        }
        if !found.is_running() {
            out.push(ContainerDrift::Stopped {
                container: name,
                state: found.state.clone(),
            });
            continue;
        }
        let declared = c.image.reference();
        if image_id(&declared) != Some(found.image_id.as_str()) {
            let running = images
                .iter()
                .find(|i| i.id == found.image_id)
                .and_then(|i| i.names.first().or(i.digests.first()).cloned())
                .unwrap_or_else(|| found.image_id.chars().take(12).collect());
            out.push(ContainerDrift::OtherImage {
                container: name,
                declared,
                running,
            });
        }
    }
    out
}

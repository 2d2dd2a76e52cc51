//! archy updating itself through the switch: the binary recovery runs.
//!
//! `archy-recover.service` runs `<state>/bin/archy`, a link the switch
//! keeps pointing at the archy of the last good generation. A generation
//! that brings a new archy never moves it until the new archy passed its
//! gate (`health_archy`) and the generation is committed good, so a broken
//! new binary cannot break recovery: the old one finishes or undoes the
//! switch at the next boot.

use std::path::{Path, PathBuf};

use archy_build::software::artifact_object;
use archy_graph::resource::{HealthProbe, Resource};
use archy_graph::{Digest, Graph};
use archy_store::{Expected, ObjectId, ObjectName, Store};

/// The archy binary `graph` installs and gates: the artifact at the path
/// of its `health_archy` check.
pub fn archy_artifact(graph: &Graph) -> Option<&archy_graph::resource::ArtifactSpec> {
    let path = graph.nodes.iter().find_map(|n| match &n.resource {
        Resource::Health(h) => match &h.probe {
            HealthProbe::Archy(p) => Some(p),
            _ => None,
        },
        _ => None,
    })?;
    graph.nodes.iter().find_map(|n| match &n.resource {
        Resource::Artifact(a) if &a.path == path => Some(a),
        _ => None,
    })
}

/// Points `<state>/bin/archy` at `object` (one rename).
fn point_at(store: &Store, object: &Path) -> std::io::Result<()> {
    let link = store.state_dir().recovery_binary();
    let dir = link.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(dir)?;
    let temp = dir.join(".archy.archy-new");
    let _ = std::fs::remove_file(&temp);
    std::os::unix::fs::symlink(object, &temp)?;
    std::fs::rename(&temp, &link)?;
    std::fs::File::open(dir)?.sync_all()
}

/// The store path as the node under `root` sees it (the state dir is
/// `/var/lib/archy` on the node, wherever it is mounted here).
fn object_path(store: &Store, root: &Path, id: &ObjectId) -> PathBuf {
    let host = store.object_path(id);
    match host.strip_prefix(root) {
        Ok(rest) => Path::new("/").join(rest),
        Err(_) => host,
    }
}

/// After `graph` is committed good (or realized offline under `root`):
/// recovery runs its archy from now on.
pub fn keep_recovery_binary(store: &Store, root: &Path, graph: &Graph) {
    let Some(spec) = archy_artifact(graph) else {
        return;
    };
    match artifact_object(store, spec) {
        Ok(Some(id)) => {
            if let Err(e) = point_at(store, &object_path(store, root, &id)) {
                tracing::warn!("cannot point the recovery binary at {id}: {e}");
            }
        }
        _ => tracing::warn!("the archy of the good generation is not in the store"),
    }
}

/// Before a switch writes anything: recovery has an archy to run. On a
/// node that never had one, it is the running archy (kept in the store,
/// so replacing `/usr/local/bin/archy` cannot take it away).
pub fn ensure_recovery_binary(store: &Store) {
    let link = store.state_dir().recovery_binary();
    if std::fs::metadata(&link).is_ok() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let kept = (|| -> Result<ObjectId, String> {
        if let Some(id) = exe
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.parse::<ObjectId>().ok())
            .filter(|id| store.contains(id).unwrap_or(false))
        {
            return Ok(id);
        }
        let digest = Digest::of_file(&exe).map_err(|e| e.to_string())?;
        let name = ObjectName::try_from("archy+x").map_err(|e| e.to_string())?;
        store
            .insert_checked(&name, &exe, &Expected::Blake3(digest), true)
            .map(|(id, _)| id)
            .map_err(|e| e.to_string())
    })();
    let root = Path::new("/");
    match kept
        .and_then(|id| point_at(store, &object_path(store, root, &id)).map_err(|e| e.to_string()))
    {
        Ok(()) => {}
        Err(e) => tracing::warn!("cannot keep the running archy for recovery: {e}"),
    }
}

/// A plan that puts back only `target`'s archy binary, when `failed`
/// brought another one: run first when a generation is rolled back, so
/// the old archy is in place before anything records the failure.
pub fn restore_archy_first(failed: &Graph, target: &Graph) -> Option<archy_plan::Plan> {
    let new = archy_artifact(failed)?;
    let old = archy_artifact(target)?;
    if new == old || new.path != old.path {
        return None;
    }
    let key = archy_graph::ResourceKey {
        kind: archy_graph::Kind::Artifact,
        id: old.path.to_string(),
    };
    Some(archy_plan::Plan {
        changes: vec![archy_plan::Change {
            key,
            op: archy_plan::ChangeOp::Update,
            reason: archy_plan::Reason::Metadata {
                what: "the archy of the last good generation, put back first".into(),
            },
        }],
        images: Vec::new(),
        unit_files_changed: Vec::new(),
        units: Vec::new(),
        unchanged: 0,
        clobber: Default::default(),
        data: Vec::new(),
    })
}

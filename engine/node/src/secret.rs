//! Secrets as an operator handles them: rotating one without editing the
//! node description, and listing the current generation's. Never a value:
//! not returned, not read.
//!
//! A rotation is a version bump recorded on the node (`rotations.json`):
//! the next evaluation adds it to the declared version, so the secret's
//! hash changes, and with it the hash of every file derived from it and of
//! every unit and container that reads either. The next `archy switch`
//! makes a new value and restarts exactly those.

use std::path::Path;

use archy_build::LoadedGeneration;
use archy_eval::{Inputs, Rotations};
use archy_graph::resource::SecretSpec;
use archy_graph::{Graph, Resource};
use archy_plan::{Observed, UnitOp};
use serde::Serialize;

use crate::evaluate::evaluate_with;
use archy_store::{Link, StateDir};

use crate::{Node, NodeError, Session, facts};

/// A rotation recorded, and what the next switch will do about it.
#[derive(Debug)]
pub struct Rotated {
    pub name: String,
    /// The secret's version in the current generation.
    pub from: u32,
    /// Its version in the next switch.
    pub to: u32,
    /// The units the next switch restarts and reloads, from the description
    /// the current generation was built from; or why there is no preview.
    pub preview: Result<Preview, String>,
}

/// What the next switch would do after a rotation.
#[derive(Debug)]
pub struct Preview {
    /// The description it evaluated.
    pub source: String,
    pub restarts: Vec<String>,
    pub reloads: Vec<String>,
}

/// One secret as `archy secret list` shows it.
#[derive(Debug, Serialize)]
pub struct ListedSecret {
    pub name: String,
    /// The version in the current generation (the declared version plus
    /// the rotations it was built with).
    pub version: u32,
    /// The rotations recorded on this node now.
    pub rotations: u32,
    /// Whether the value's file exists (its content is never read).
    pub present: bool,
    pub mode: String,
    pub owner: String,
    pub group: String,
    pub length: u32,
}

/// The current generation's secrets.
#[derive(Debug)]
pub struct Secrets {
    /// `None`: no generation yet.
    pub generation: Option<u64>,
    pub secrets: Vec<ListedSecret>,
}

/// The secrets a graph declares.
fn declared(graph: &Graph) -> impl Iterator<Item = &SecretSpec> {
    graph.nodes.iter().filter_map(|n| match &n.resource {
        Resource::Secret(s) => Some(s),
        _ => None,
    })
}

fn find<'g>(graph: &'g Graph, name: &str) -> Option<&'g SecretSpec> {
    declared(graph).find(|s| s.name.as_str() == name)
}

impl Node {
    /// The current generation's secrets: version, rotations, whether the
    /// value is on disk, mode. Never the values.
    pub fn secrets(&self) -> Result<Secrets, NodeError> {
        let counts = self.state_dir.read_rotations()?;
        let live = self.current()?;
        let secrets = live
            .as_ref()
            .map(|l| declared(&l.graph).collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .map(|s| {
                let name = s.name.to_string();
                let file = self.state_dir.secret(&name);
                ListedSecret {
                    rotations: counts.get(&name).copied().unwrap_or(0),
                    present: std::fs::symlink_metadata(&file).is_ok_and(|m| m.is_file()),
                    version: s.version,
                    mode: s.mode.to_string(),
                    owner: s.owner.as_ref().map_or("root".into(), |o| o.to_string()),
                    group: s.group.as_ref().map_or("root".into(), |g| g.to_string()),
                    length: s.length,
                    name,
                }
            })
            .collect();
        Ok(Secrets {
            generation: live.map(|l| l.record.number),
            secrets,
        })
    }

    /// Rotates secret `name`: opens a session, records a version bump.
    /// Checked before the lock too, so a node never switched is left as it
    /// is (taking the lock creates the state dir).
    pub fn rotate_secret(&self, name: &str, wait: bool) -> Result<Rotated, NodeError> {
        if std::fs::symlink_metadata(self.state_dir.link(Link::Current)).is_err() {
            return Err(NodeError::NeverSwitched);
        }
        self.open("archy secret rotate", wait)?.secret_rotate(name)
    }
}

impl Session<'_> {
    /// Records a rotation of secret `name` (the next `archy switch` makes a
    /// new value and restarts what derives from it).
    pub fn secret_rotate(&self, name: &str) -> Result<Rotated, NodeError> {
        let live = self.node.current()?.ok_or(NodeError::NeverSwitched)?;
        let generation = live.record.number;
        let Some(spec) = find(&live.graph, name) else {
            return Err(NodeError::NoSuchSecret {
                generation,
                name: name.to_string(),
                declared: declared(&live.graph).map(|s| s.name.to_string()).collect(),
            });
        };
        let overflow = || NodeError::RotationOverflow {
            name: name.to_string(),
        };
        let mut counts = self.state_dir().read_rotations()?;
        let before = counts.get(name).copied().unwrap_or(0);
        let after = before.checked_add(1).ok_or_else(overflow)?;
        let fallback = spec.version.checked_add(1).ok_or_else(overflow)?;
        counts.insert(name.to_string(), after);
        self.state_dir().write_rotations(&counts)?;
        let preview = preview(
            self.state_dir(),
            &live,
            name,
            &counts,
            self.node.eval_limits(),
        );
        Ok(Rotated {
            name: name.to_string(),
            from: spec.version,
            to: preview.as_ref().map_or(fallback, |p| p.1),
            preview: preview.map(|p| p.0),
        })
    }
}

/// Evaluates the description the current generation was built from, with
/// that generation's host facts and the new rotations, and plans the
/// switch to it: the units that restart and the secret's next version.
fn preview(
    state_dir: &StateDir,
    live: &LoadedGeneration,
    name: &str,
    counts: &Rotations,
    limits: &archy_eval::Limits,
) -> Result<(Preview, u32), String> {
    let source = Path::new(&live.record.source);
    if !source.is_file() {
        return Err(format!(
            "{} (the current generation's description) is not here",
            source.display()
        ));
    }
    let mut host = facts::discover(state_dir.path());
    host.extend(live.graph.facts.clone());
    let inputs = Inputs {
        facts: host,
        rotations: counts.clone(),
        deferred: facts::deferred(),
    };
    let new = evaluate_with(source, inputs, limits)
        .map_err(|_| format!("{} does not evaluate", source.display()))?
        .graph;
    let version = find(&new, name)
        .ok_or_else(|| format!("{} no longer declares it", source.display()))?
        .version;
    let plan = archy_plan::plan(Some(&live.graph), &new, &Observed::default());
    let units = |op: UnitOp| -> Vec<String> {
        plan.units
            .iter()
            .filter(|u| u.op == op)
            .map(|u| u.unit.to_string())
            .collect()
    };
    Ok((
        Preview {
            source: source.display().to_string(),
            restarts: units(UnitOp::Restart),
            reloads: units(UnitOp::Reload),
        },
        version,
    ))
}

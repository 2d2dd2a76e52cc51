//! archy's engine facade. [`Node`] is a node's state dir (under `--root`
//! when an image is built offline); its read-only operations take no lock.
//! [`Node::open`] gives a [`Session`]: it holds the state lock, finishes or
//! undoes a switch a crash interrupted, and settles the OTA release that
//! switch was for, exactly once, before any operation runs. Every
//! operation is a typed call returning a typed outcome or a [`NodeError`];
//! the CLI parses, makes one call and renders what it gets back.
//!
//! | operation | where |
//! |---|---|
//! | evaluate, build | `evaluate.rs`, `build.rs` |
//! | plan (`diff`, `switch --dry-run`), switch, rollback, recover, offline realize | `plan.rs`, `switch.rs` |
//! | status, reconcile | `status.rs`, `reconcile.rs` |
//! | secrets: rotate, list | `secret.rs` |
//! | generations, store verify | `store.rs` |
//! | gc (`archy gc`, and after every good switch) | `gc.rs` |
//! | OTA: apply, check, status, hold; release keys and bundles | `ota/`, `release.rs` |

mod adopt;
mod build;
mod error;
mod evaluate;
mod exit;
pub mod facts;
pub mod gc;
pub mod hash;
pub mod ota;
mod plan;
mod podman;
pub mod reconcile;
pub mod release;
mod secret;
mod session;
mod software;
pub mod status;
mod store;
mod switch;

use std::path::{Path, PathBuf};

use archy_store::StateDir;

pub use error::{NodeError, ReleaseFailed};
pub use evaluate::{Source, evaluate_with};
pub use exit::Exit;
pub use plan::PlannedSwitch;
pub use secret::{ListedSecret, Rotated, Secrets};
pub use session::{Recovery, Session};
pub use store::{Links, Listing, StoreCheck};
pub use switch::{Offline, Recovered, Switched};

/// What the CLI renders, from the crates beneath the facade.
pub mod types {
    pub use archy_build::BuildReport;
    pub use archy_eval::{Evaluation, Failure};
    pub use archy_plan::display::render as render_plan;
    pub use archy_plan::{Drift, Plan};
    pub use archy_store::{GcReport, GenerationEntry, GenerationRecord, StoreError, VerifyReport};
    pub use archy_switch::switch::Outcome;
}

/// The node whose state lives in one state dir.
#[derive(Debug, Clone)]
pub struct Node {
    state_dir: StateDir,
    root: Option<PathBuf>,
    /// The limits every evaluation on this node runs under.
    eval_limits: archy_eval::Limits,
}

impl Node {
    /// The node with state dir `state_dir`; with `root`, the image under
    /// that folder (its state dir is `root/state_dir`). Touches nothing.
    pub fn new(state_dir: &Path, root: Option<&Path>) -> Node {
        Node {
            state_dir: StateDir::under_root(state_dir, root),
            root: root.map(Path::to_owned),
            eval_limits: archy_eval::Limits::default(),
        }
    }

    /// The node, evaluating descriptions under `limits` (`archy
    /// --eval-timeout` raises the wall time).
    #[must_use]
    pub fn with_eval_limits(mut self, limits: archy_eval::Limits) -> Node {
        self.eval_limits = limits;
        self
    }

    /// The limits every evaluation on this node runs under.
    pub fn eval_limits(&self) -> &archy_eval::Limits {
        &self.eval_limits
    }

    /// The state dir as seen from here (under the root, if any).
    pub fn state_dir(&self) -> &StateDir {
        &self.state_dir
    }

    /// The folder everything is written under: `/` on a running node.
    fn fs_root(&self) -> &Path {
        self.root.as_deref().unwrap_or(Path::new("/"))
    }

    /// True for an image built offline (`--root`): only `archy switch`
    /// works on one, realizing its generation without systemd.
    pub fn is_offline(&self) -> bool {
        self.root.is_some()
    }

    /// Refuses `command` when this is an offline image (`--root`): only a
    /// switch realizes one; the rest acts on a running node.
    fn running(&self, command: &'static str) -> Result<(), NodeError> {
        match self.root {
            Some(_) => Err(NodeError::RootNotHere { command }),
            None => Ok(()),
        }
    }

    /// Evaluates a node description with this node's host facts and
    /// secret rotations. Writes nothing.
    pub fn evaluate(&self, source: &Source) -> Result<types::Evaluation, NodeError> {
        evaluate::evaluate(source, &self.state_dir, &self.eval_limits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_dir_moves_under_the_root() {
        let dir = Path::new("/var/lib/archy");
        assert_eq!(Node::new(dir, None).state_dir().path(), dir);
        assert_eq!(
            Node::new(dir, Some(Path::new("/mnt/image")))
                .state_dir()
                .path(),
            Path::new("/mnt/image/var/lib/archy")
        );
    }
}

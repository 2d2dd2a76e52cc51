//! A session on a node: the state lock, held for as long as the session
//! lives, and the one place where an interrupted switch is finished or
//! undone and its OTA release settled before anything else runs. Every
//! operation that changes the node runs in a session.

use std::path::Path;
use std::time::Duration;

use archy_realize::Realizer;
use archy_store::{StateDir, StateLock, Store};
use archy_switch::journal::Journal;
use archy_switch::switch::{Outcome, Switcher};
use archy_systemd::SystemdBus;

use crate::ota::settle::{self, Settled};
use crate::podman::NodePodman;
use crate::{Node, NodeError};

/// How long one unit job may take.
const JOB_TIMEOUT: Duration = Duration::from_secs(90);

/// What opening a session found and dealt with first.
#[derive(Debug, Default)]
pub struct Recovery {
    /// The interrupted switch, finished or undone; `None`: none was in
    /// flight.
    pub switch: Option<Outcome>,
    /// What became of the OTA release that switch was for.
    pub release: Option<Settled>,
}

impl Recovery {
    pub fn is_empty(&self) -> bool {
        self.switch.is_none() && self.release.is_none()
    }
}

/// The state lock and the store, with the node in one generation.
#[derive(Debug)]
pub struct Session<'n> {
    pub(crate) node: &'n Node,
    pub(crate) store: Store,
    /// Who holds the lock, for the journal: `archy switch`, ...
    pub(crate) command: &'static str,
    recovery: Recovery,
    _lock: StateLock,
}

impl Node {
    /// Takes the state lock for `command` (waiting for it with `wait`),
    /// then recovers: see [`Session`].
    pub fn open(&self, command: &'static str, wait: bool) -> Result<Session<'_>, NodeError> {
        let lock = StateLock::acquire(&self.state_dir, command, wait)?;
        self.session(lock, command)
    }

    /// A session under a lock the caller took (recover and reconcile take
    /// it their own way).
    pub(crate) fn session(
        &self,
        lock: StateLock,
        command: &'static str,
    ) -> Result<Session<'_>, NodeError> {
        let store = Store::open(&self.state_dir)?;
        let mut session = Session {
            node: self,
            store,
            command,
            recovery: Recovery::default(),
            _lock: lock,
        };
        // An offline image has no running switch to recover.
        if self.root.is_none() {
            session.recovery = session.recover()?;
        }
        Ok(session)
    }
}

impl Session<'_> {
    /// What opening this session found and dealt with first.
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    pub(crate) fn take_recovery(&mut self) -> Recovery {
        std::mem::take(&mut self.recovery)
    }

    pub(crate) fn state_dir(&self) -> &StateDir {
        &self.node.state_dir
    }

    /// Finishes or undoes an interrupted switch (connecting to systemd
    /// only when there is one), then settles the release it was for.
    fn recover(&self) -> Result<Recovery, NodeError> {
        let phase = Journal::load(self.state_dir())
            .map_err(NodeError::recovery)?
            .map(|j| j.release_phase());
        let switch = match phase {
            None => None,
            Some(_) => self.on_node(|switch| switch.recover().map_err(NodeError::recovery))?,
        };
        let release = settle::pending(self.state_dir(), &self.store, phase)?;
        Ok(Recovery { switch, release })
    }

    /// Runs `work` with a switcher for the running node: the realizer at
    /// `/`, systemd over the bus, podman reached through systemd.
    pub(crate) fn on_node<T>(
        &self,
        work: impl FnOnce(&Switcher<'_>) -> Result<T, NodeError>,
    ) -> Result<T, NodeError> {
        self.on_node_adopting(false, work)
    }

    /// [`Session::on_node`], taking over files archy did not write when
    /// `adopt`.
    pub(crate) fn on_node_adopting<T>(
        &self,
        adopt: bool,
        work: impl FnOnce(&Switcher<'_>) -> Result<T, NodeError>,
    ) -> Result<T, NodeError> {
        self.on_node_clobbering(adopt, Default::default(), work)
    }

    /// [`Session::on_node_adopting`], removing the data of the apps
    /// `clobber` names (`archy switch --clobber APP`, confirmed).
    pub(crate) fn on_node_clobbering<T>(
        &self,
        adopt: bool,
        clobber: archy_plan::Clobbering,
        work: impl FnOnce(&Switcher<'_>) -> Result<T, NodeError>,
    ) -> Result<T, NodeError> {
        let realizer = Realizer::new(Path::new("/"), self.state_dir());
        let systemd = connect()?;
        let podman = NodePodman::new(Some(&systemd));
        work(&Switcher {
            store: &self.store,
            realizer: &realizer,
            systemd: &systemd,
            podman: &podman,
            adopt,
            command: self.command.to_string(),
            job_timeout: JOB_TIMEOUT,
            clobber,
        })
    }
}

/// systemd over the system bus.
pub(crate) fn connect() -> Result<SystemdBus, NodeError> {
    connect_for("cannot reach systemd")
}

/// systemd over the system bus, saying `what` could not be done without it.
pub(crate) fn connect_for(what: &'static str) -> Result<SystemdBus, NodeError> {
    SystemdBus::connect().map_err(|source| NodeError::Systemd { what, source })
}

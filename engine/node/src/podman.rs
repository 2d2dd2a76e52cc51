//! The node's podman, reached on first need: a node without containers
//! never starts podman's API service, and one with containers starts it
//! through systemd (`podman.socket`, socket-activated) only when a switch,
//! a plan or `archy status` has to ask podman something.

use std::cell::OnceCell;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use archy_podman::{DEFAULT_SOCKET, Podman, PodmanApi};
use archy_switch::containers::{PodmanAccess, Unreachable};
use archy_systemd::{JobKind, JobResult, ServiceManager, UnitName};

/// The unit that listens on podman's API socket.
const SOCKET_UNIT: &str = "podman.socket";

#[derive(Debug)]
pub struct NodePodman<'a> {
    socket: PathBuf,
    /// Starts `podman.socket` when its socket is missing; without it, a
    /// missing socket is an error that says how to start it.
    systemd: Option<&'a dyn ServiceManager>,
    api: OnceCell<Result<PodmanApi, Unreachable>>,
}

impl<'a> NodePodman<'a> {
    pub fn new(systemd: Option<&'a dyn ServiceManager>) -> Self {
        NodePodman {
            socket: PathBuf::from(DEFAULT_SOCKET),
            systemd,
            api: OnceCell::new(),
        }
    }

    fn connect(&self) -> Result<PodmanApi, Unreachable> {
        if !self.socket.exists()
            && let Some(systemd) = self.systemd
        {
            let unit = SOCKET_UNIT.to_string();
            // `podman.socket` is a valid unit name: this never fails.
            let socket_unit =
                UnitName::try_from(SOCKET_UNIT).map_err(|_| Unreachable::SocketNotStarted {
                    unit: unit.clone(),
                    result: JobResult::Invalid,
                })?;
            match systemd.run_job(JobKind::Start, &socket_unit, Duration::from_secs(30)) {
                Ok(JobResult::Done) => {}
                Ok(result) => return Err(Unreachable::SocketNotStarted { unit, result }),
                Err(e) => {
                    return Err(Unreachable::SocketStart {
                        unit,
                        source: Arc::new(e),
                    });
                }
            }
        }
        PodmanApi::connect(&self.socket).map_err(|e| Unreachable::Connect(Arc::new(e)))
    }
}

impl PodmanAccess for NodePodman<'_> {
    fn podman(&self) -> Result<&dyn Podman, Unreachable> {
        match self.api.get_or_init(|| self.connect()) {
            Ok(api) => Ok(api),
            Err(e) => Err(e.clone()),
        }
    }
}

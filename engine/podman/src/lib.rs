//! The node's podman (5.4, rootful), as much of it as a switch and `archy
//! status` need: the images there are (to pull or build the missing ones
//! before a switch), the containers there are (to adopt the ones archy did
//! not create), and podman secrets (archy's secrets copied in, for
//! containers that read them with `--secret`).
//!
//! [`Podman`] is that access as a blocking, object-safe trait. [`PodmanApi`]
//! is the real one: it talks to podman's REST API on its unix socket with
//! the [podman-api] crate, driven by a private single-threaded tokio runtime
//! so that its callers need no async (and must not call it from async code:
//! a runtime cannot be blocked on inside another). `fake::FakePodman` keeps
//! everything in memory, for the library tests of the crates that use this
//! one: it is compiled only with the cargo feature `testing`, which those
//! crates enable in their `[dev-dependencies]`, so no production build
//! carries it.
//!
//! Containers themselves are run by systemd (Quadlet), never by archy: there
//! is no "run" here, only what a switch does around it.

mod api;
mod convert;
mod error;
#[cfg(feature = "testing")]
pub mod fake;
mod inspect;
mod lost;
mod output;
mod raw;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;
use std::time::Duration;

pub use api::{DEFAULT_CALL_TIMEOUT, PodmanApi};
pub use error::Error;
pub use inspect::{ContainerDetails, MountInfo, PODMAN_ENV};

/// The API socket of the rootful podman (socket-activated by
/// `podman.socket`).
pub const DEFAULT_SOCKET: &str = "/run/podman/podman.sock";

/// What every call here returns.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What archy asks of podman. Blocking and object-safe: callers hold a
/// `&dyn Podman`.
pub trait Podman: fmt::Debug {
    /// Every image (not the intermediate layers of builds): its id and the
    /// names it is tagged with. An untagged (dangling) image has no names.
    fn images(&self) -> Result<Vec<ImageInfo>>;

    /// Whether `reference` (a name such as `localhost/app:1`, a short name
    /// podman resolves, or an id or id prefix) is a local image.
    fn image_exists(&self, reference: &str) -> Result<bool>;

    /// Pulls `reference` from its registry. The error names the reference
    /// and says what podman said.
    fn pull(&self, reference: &str) -> Result<()>;

    /// Builds the folder `context` (which holds a `Containerfile` or a
    /// `Dockerfile`) and tags the image `tag`. A failed build is an
    /// [`Error::Build`] carrying the last lines of the build's output.
    fn build(&self, context: &Path, tag: &str) -> Result<()>;

    /// Every container, running or not.
    fn containers(&self) -> Result<Vec<ContainerInfo>>;

    /// What podman knows of the container `name` (`podman inspect`), with
    /// the environment keys its image sets: what a running container archy
    /// did not make is compared with its declaration by. `None`: there is
    /// no such container.
    fn inspect_container(&self, name: &str) -> Result<Option<ContainerDetails>>;

    /// Stops the container `name` (SIGKILL after `timeout` if it has not
    /// exited by then) and removes it. Its volumes stay: they hold the
    /// node's data. A container that does not exist is already removed: Ok.
    fn remove_container(&self, name: &str, timeout: Duration) -> Result<()>;

    /// [`containers`](Self::containers) and [`images`](Self::images) at
    /// once, for `archy status`: listing images is podman's slowest quick
    /// answer (tens of ms), and the two need not wait for each other.
    fn containers_and_images(&self) -> Result<(Vec<ContainerInfo>, Vec<ImageInfo>)> {
        Ok((self.containers()?, self.images()?))
    }

    /// The names of the podman secrets.
    fn secret_names(&self) -> Result<BTreeSet<String>>;

    /// Creates the podman secret `name` holding `value`, replacing it if it
    /// exists (also when containers use it: they see the new value when they
    /// are next created). The value goes to podman in a request body only:
    /// never on a command line, in a log or in an error.
    fn put_secret(&self, name: &str, value: &[u8]) -> Result<()>;

    /// Removes the podman secret `name`. A secret that does not exist is
    /// already removed: Ok.
    fn remove_secret(&self, name: &str) -> Result<()>;

    /// After podman lost its database and the units of its lost containers
    /// were stopped: clears the runtime network state podman kept for them
    /// under `run` (the node's `/run`) and in the kernel (netavark's
    /// nftables table, IP allocations, DNS records, network namespaces), so
    /// that their units can make them anew. Leaves everything as it is
    /// while podman runs a container it knows of. Returns what it did, one
    /// line each, or why it did nothing.
    fn clear_lost_networking(&self, run: &Path) -> Result<Vec<String>>;
}

/// One image, as `podman images` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    /// The full image id: 64 hex digits, without `sha256:`.
    pub id: String,
    /// Its names, `repository:tag` (`localhost/testbed/busybox:latest`);
    /// empty for a dangling image.
    pub names: Vec<String>,
    /// Its digests, `repository@sha256:<64 hex>` (podman's `RepoDigests`).
    /// An image pulled by digest is listed here, not among its names.
    pub digests: Vec<String>,
}

impl ImageInfo {
    /// Whether `reference` names this image: one of its names, its id, or,
    /// for `repository@sha256:...`, one of its digests. podman records the
    /// full repository (`docker.io/library/nginx`) where a description may
    /// write a short one (`nginx`): a digest names the content, so the
    /// repository only has to end the same way.
    pub fn answers_to(&self, reference: &str) -> bool {
        if self.names.iter().any(|n| n == reference) || self.id == reference {
            return true;
        }
        let Some((repo, digest)) = reference.split_once('@') else {
            return false;
        };
        self.digests.iter().any(|listed| {
            listed
                .split_once('@')
                .is_some_and(|(r, d)| d == digest && same_repository(r, repo))
        })
    }
}

/// `docker.io/library/nginx` is what `nginx` and `library/nginx` resolve to.
fn same_repository(full: &str, written: &str) -> bool {
    full == written
        || full
            .strip_suffix(written)
            .is_some_and(|head| head.ends_with('/'))
}

/// One container, as `podman ps --all` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerInfo {
    /// The full container id (64 hex digits).
    pub id: String,
    /// Its name, without the leading `/` Docker's API gives.
    pub name: String,
    /// podman's state: `created`, `running`, `paused`, `stopping`, `exited`,
    /// `stopped`, `removing`, ... (kept a string: podman adds states).
    pub state: String,
    /// The id of the image it was created from (64 hex digits).
    pub image_id: String,
    /// The image name it was created with (`localhost/testbed/busybox:latest`).
    pub image: String,
    /// Its labels (Quadlet's `PODMAN_SYSTEMD_UNIT`, archy's own, ...).
    pub labels: BTreeMap<String, String>,
}

impl ContainerInfo {
    /// Whether the container is running now.
    pub fn is_running(&self) -> bool {
        self.state == "running"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_references_match_the_listed_digests() {
        let digest = format!("sha256:{}", "ab".repeat(32));
        let image = ImageInfo {
            id: "c".repeat(64),
            names: vec![],
            digests: vec![format!("docker.io/library/nginx@{digest}")],
        };
        for written in ["nginx", "library/nginx", "docker.io/library/nginx"] {
            assert!(
                image.answers_to(&format!("{written}@{digest}")),
                "{written}"
            );
        }
        // Another digest, or a repository that only ends in the same
        // letters, is another image.
        assert!(!image.answers_to(&format!("nginx@sha256:{}", "cd".repeat(32))));
        assert!(!image.answers_to(&format!("ginx@{digest}")));
        assert!(!image.answers_to("nginx:latest"));
        assert!(image.answers_to(&"c".repeat(64)));
    }
}

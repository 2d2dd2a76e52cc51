//! [`FakePodman`]: a [`Podman`] in memory, for the library tests of the
//! crates that use this one (the switch, `archy status`). It records every
//! call, starts empty, and lets a test add images and containers, make a
//! pull or a build fail, or make podman unreachable.
//!
//! It behaves like podman where callers could tell: a pull or a build adds
//! the image, a build moves its tag off the image that had it, removals of
//! what is not there succeed, `put_secret` replaces.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use crate::{ContainerInfo, DEFAULT_SOCKET, Error, ImageInfo, Podman, Result};

/// One call made to a [`FakePodman`], in the order made. A secret's value
/// is not recorded: read it with [`FakePodman::secret_value`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    Images,
    ImageExists(String),
    Pull(String),
    Build { context: PathBuf, tag: String },
    Containers,
    RemoveContainer { name: String, timeout: Duration },
    SecretNames,
    PutSecret(String),
    RemoveSecret(String),
    ClearLostNetworking(PathBuf),
    InspectContainer(String),
}

/// A secret's value, kept out of `Debug` output.
struct SecretValue(Vec<u8>);

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} bytes>", self.0.len())
    }
}

#[derive(Debug, Default)]
struct State {
    images: Vec<ImageInfo>,
    containers: Vec<ContainerInfo>,
    /// What `inspect_container` answers, by name (a listed container
    /// without details is inspected from its listing).
    details: BTreeMap<String, crate::ContainerDetails>,
    secrets: BTreeMap<String, SecretValue>,
    /// Reference -> podman's message.
    failing_pulls: BTreeMap<String, String>,
    /// Tag -> podman's message.
    failing_builds: BTreeMap<String, String>,
    unreachable: bool,
    calls: Vec<Call>,
    /// The last id handed out.
    last_id: u64,
}

impl State {
    /// A new, unique 64-hex-digit id.
    fn new_id(&mut self) -> String {
        self.last_id += 1;
        format!("{:064x}", self.last_id)
    }

    /// Records `call`, then fails if podman is unreachable.
    fn call(&mut self, call: Call) -> Result<()> {
        self.calls.push(call);
        if self.unreachable {
            Err(Error::Unreachable {
                socket: PathBuf::from(DEFAULT_SOCKET),
                message: "the fake podman is unreachable".into(),
            })
        } else {
            Ok(())
        }
    }

    /// Takes `name` off every image (podman gives a name to one image).
    fn untag(&mut self, name: &str) {
        for image in &mut self.images {
            image.names.retain(|n| n != name);
        }
    }
}

/// The name podman gives `reference`: `:latest` added when it has no tag.
fn full_name(reference: &str) -> String {
    let last = reference.rsplit('/').next().unwrap_or(reference);
    if last.contains(':') || last.contains('@') {
        reference.to_owned()
    } else {
        format!("{reference}:latest")
    }
}

/// A podman in memory. Interior mutability: tests share it as `&FakePodman`
/// (or `&dyn Podman`) with the code under test.
#[derive(Debug, Default)]
pub struct FakePodman {
    state: Mutex<State>,
}

impl FakePodman {
    /// No images, no containers, no secrets.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock has failed already;
        // the state is still worth reading.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds an image with these names (none: a dangling image), taking
    /// them off any other image; returns it, with its new id.
    pub fn add_image(&self, names: &[&str]) -> ImageInfo {
        self.add_image_with_digests(names, &[])
    }

    /// Like [`FakePodman::add_image`], with these `repository@sha256:...`
    /// digests (podman's `RepoDigests`): an image pulled by digest has no
    /// names, only a digest.
    pub fn add_image_with_digests(&self, names: &[&str], digests: &[&str]) -> ImageInfo {
        let mut state = self.state();
        for name in names {
            state.untag(name);
        }
        let image = ImageInfo {
            id: state.new_id(),
            names: names.iter().map(|n| (*n).to_owned()).collect(),
            digests: digests.iter().map(|d| (*d).to_owned()).collect(),
        };
        state.images.push(image.clone());
        image
    }

    /// Adds a container (replacing one of the same name).
    pub fn add_container(&self, container: ContainerInfo) {
        let mut state = self.state();
        state.containers.retain(|c| c.name != container.name);
        state.containers.push(container);
    }

    /// Adds a secret without recording a call.
    /// Sets what inspecting the container `details.name` answers (it must
    /// be listed too, with [`add_container`](Self::add_container)).
    pub fn set_details(&self, details: crate::ContainerDetails) {
        self.state().details.insert(details.name.clone(), details);
    }

    pub fn add_secret(&self, name: &str, value: &[u8]) {
        let value = SecretValue(value.to_vec());
        self.state().secrets.insert(name.to_owned(), value);
    }

    /// Makes pulls of `reference` fail with podman's `message`.
    pub fn fail_pull(&self, reference: &str, message: &str) {
        let mut state = self.state();
        state
            .failing_pulls
            .insert(reference.to_owned(), message.to_owned());
    }

    /// Makes builds tagged `tag` fail with podman's `message`.
    pub fn fail_build(&self, tag: &str, message: &str) {
        let mut state = self.state();
        state
            .failing_builds
            .insert(tag.to_owned(), message.to_owned());
    }

    /// Makes every call fail as when podman.socket is down (or not).
    pub fn set_unreachable(&self, unreachable: bool) {
        self.state().unreachable = unreachable;
    }

    /// The calls made so far.
    pub fn calls(&self) -> Vec<Call> {
        self.state().calls.clone()
    }

    /// The calls made so far, forgetting them.
    pub fn take_calls(&self) -> Vec<Call> {
        std::mem::take(&mut self.state().calls)
    }

    /// The value of secret `name`, if there is one.
    pub fn secret_value(&self, name: &str) -> Option<Vec<u8>> {
        self.state().secrets.get(name).map(|v| v.0.clone())
    }
}

/// A container named `name` in `state`, from a made-up busybox image,
/// without labels: a start for [`FakePodman::add_container`], to change
/// with struct update syntax.
pub fn container(name: &str, state: &str) -> ContainerInfo {
    ContainerInfo {
        // Unique per name (of up to 32 bytes), like a real id in shape.
        id: format!("{:0<64.64}", hex(name.as_bytes())),
        name: name.to_owned(),
        state: state.to_owned(),
        image_id: "b".repeat(64),
        image: "localhost/testbed/busybox:latest".to_owned(),
        labels: BTreeMap::new(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Podman for FakePodman {
    fn images(&self) -> Result<Vec<ImageInfo>> {
        let mut state = self.state();
        state.call(Call::Images)?;
        Ok(state.images.clone())
    }

    /// A name (`:latest` is implied), a `name@sha256:...` digest, a full
    /// id, or an id prefix of at least 3 hex digits, as podman resolves
    /// them (short names aside).
    fn image_exists(&self, reference: &str) -> Result<bool> {
        let mut state = self.state();
        state.call(Call::ImageExists(reference.to_owned()))?;
        let name = full_name(reference);
        let is_id_prefix = reference.len() >= 3 && reference.chars().all(|c| c.is_ascii_hexdigit());
        Ok(state.images.iter().any(|image| {
            image.names.contains(&name)
                || image.answers_to(reference)
                || (is_id_prefix && image.id.starts_with(reference))
        }))
    }

    fn pull(&self, reference: &str) -> Result<()> {
        let mut state = self.state();
        state.call(Call::Pull(reference.to_owned()))?;
        if let Some(message) = state.failing_pulls.get(reference) {
            return Err(Error::Pull {
                reference: reference.to_owned(),
                message: message.clone(),
            });
        }
        // podman lists an image pulled by digest under its digest only.
        let (names, digests) = if reference.contains('@') {
            (vec![], vec![reference.to_owned()])
        } else {
            (vec![full_name(reference)], vec![])
        };
        let present = state
            .images
            .iter()
            .any(|i| i.answers_to(reference) || names.iter().any(|n| i.names.contains(n)));
        if !present {
            let id = state.new_id();
            state.images.push(ImageInfo { id, names, digests });
        }
        Ok(())
    }

    fn build(&self, context: &Path, tag: &str) -> Result<()> {
        let mut state = self.state();
        state.call(Call::Build {
            context: context.to_path_buf(),
            tag: tag.to_owned(),
        })?;
        if let Some(message) = state.failing_builds.get(tag) {
            return Err(Error::Build {
                context: context.to_path_buf(),
                tag: tag.to_owned(),
                message: message.clone(),
                output: String::new(),
            });
        }
        let name = full_name(tag);
        state.untag(&name);
        let id = state.new_id();
        state.images.push(ImageInfo {
            id,
            names: vec![name],
            digests: vec![],
        });
        Ok(())
    }

    fn containers(&self) -> Result<Vec<ContainerInfo>> {
        let mut state = self.state();
        state.call(Call::Containers)?;
        Ok(state.containers.clone())
    }

    fn inspect_container(&self, name: &str) -> Result<Option<crate::ContainerDetails>> {
        let mut state = self.state();
        state.call(Call::InspectContainer(name.to_owned()))?;
        let Some(listed) = state.containers.iter().find(|c| c.name == name) else {
            return Ok(None);
        };
        let from_listing = crate::ContainerDetails {
            id: listed.id.clone(),
            name: listed.name.clone(),
            running: listed.is_running(),
            image_id: listed.image_id.clone(),
            image_name: listed.image.clone(),
            labels: listed.labels.clone(),
            ..Default::default()
        };
        Ok(Some(
            state.details.get(name).cloned().unwrap_or(from_listing),
        ))
    }

    fn remove_container(&self, name: &str, timeout: Duration) -> Result<()> {
        let mut state = self.state();
        state.call(Call::RemoveContainer {
            name: name.to_owned(),
            timeout,
        })?;
        state.containers.retain(|c| c.name != name);
        state.details.remove(name);
        Ok(())
    }

    fn secret_names(&self) -> Result<BTreeSet<String>> {
        let mut state = self.state();
        state.call(Call::SecretNames)?;
        Ok(state.secrets.keys().cloned().collect())
    }

    fn put_secret(&self, name: &str, value: &[u8]) -> Result<()> {
        let mut state = self.state();
        state.call(Call::PutSecret(name.to_owned()))?;
        state
            .secrets
            .insert(name.to_owned(), SecretValue(value.to_vec()));
        Ok(())
    }

    fn remove_secret(&self, name: &str) -> Result<()> {
        let mut state = self.state();
        state.call(Call::RemoveSecret(name.to_owned()))?;
        state.secrets.remove(name);
        Ok(())
    }

    /// Refuses as podman does while a container it knows of runs; else
    /// clears nothing: the state it stands for is the kernel's and the
    /// node's `/run`, which a fake has none of.
    fn clear_lost_networking(&self, run: &Path) -> Result<Vec<String>> {
        let mut state = self.state();
        state.call(Call::ClearLostNetworking(run.to_path_buf()))?;
        Ok(crate::lost::left_alone(&state.containers)
            .into_iter()
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pulls_and_builds_add_images_unless_told_to_fail() {
        let podman = FakePodman::new();
        let busybox = podman.add_image(&["localhost/testbed/busybox:latest"]);
        assert!(podman.image_exists("localhost/testbed/busybox").unwrap());
        assert!(podman.image_exists(&busybox.id[..12]).unwrap());
        assert!(!podman.image_exists("localhost/app:1").unwrap());

        podman.pull("docker.io/library/alpine").unwrap();
        assert!(
            podman
                .image_exists("docker.io/library/alpine:latest")
                .unwrap()
        );
        podman.fail_pull("localhost:1/nothing:1", "connection refused");
        let e = podman.pull("localhost:1/nothing:1").unwrap_err();
        assert!(
            matches!(&e, Error::Pull { reference, .. } if reference == "localhost:1/nothing:1")
        );

        podman
            .build(Path::new("/apps/app"), "localhost/app:1")
            .unwrap();
        let first = podman.images().unwrap();
        podman
            .build(Path::new("/apps/app"), "localhost/app:1")
            .unwrap();
        let images = podman.images().unwrap();
        let tagged: Vec<&ImageInfo> = images
            .iter()
            .filter(|i| i.names == ["localhost/app:1"])
            .collect();
        assert_eq!(tagged.len(), 1, "one image has the tag: {images:?}");
        assert!(!first.contains(tagged[0]), "a new image has it");
        assert_eq!(images.iter().filter(|i| i.names.is_empty()).count(), 1);

        podman.fail_build("localhost/bad:1", "building at STEP \"RUN false\"");
        let e = podman
            .build(Path::new("/apps/bad"), "localhost/bad:1")
            .unwrap_err();
        assert!(e.to_string().contains("RUN false"), "{e}");
        assert!(!podman.image_exists("localhost/bad:1").unwrap());
    }

    #[test]
    fn images_are_found_and_pulled_by_digest() {
        let podman = FakePodman::new();
        let digest = format!("sha256:{}", "ab".repeat(32));
        let pinned = format!("localhost/testbed/busybox@{digest}");
        podman.add_image_with_digests(&["localhost/testbed/busybox:latest"], &[&pinned]);
        assert!(podman.image_exists(&pinned).unwrap());
        let other = format!("localhost/testbed/busybox@sha256:{}", "cd".repeat(32));
        assert!(!podman.image_exists(&other).unwrap());

        // Pulled by digest: listed by its digest, no name, found again.
        podman.pull(&other).unwrap();
        assert!(podman.image_exists(&other).unwrap());
        let images = podman.images().unwrap();
        let pulled = images.iter().find(|i| i.answers_to(&other)).unwrap();
        assert!(pulled.names.is_empty(), "{pulled:?}");
        podman.pull(&other).unwrap();
        assert_eq!(podman.images().unwrap().len(), 2, "pulled once");
    }

    #[test]
    fn containers_are_listed_and_removed_and_calls_recorded() {
        let podman = FakePodman::new();
        let web = ContainerInfo {
            labels: BTreeMap::from([("a".to_owned(), "b".to_owned())]),
            ..container("web", "running")
        };
        podman.add_container(web.clone());
        podman.add_container(container("old", "exited"));
        assert_eq!(podman.containers().unwrap().len(), 2);
        podman
            .remove_container("old", Duration::from_secs(5))
            .unwrap();
        podman.remove_container("missing", Duration::ZERO).unwrap();
        assert_eq!(podman.containers().unwrap(), [web]);
        assert_eq!(
            podman.take_calls(),
            [
                Call::Containers,
                Call::RemoveContainer {
                    name: "old".into(),
                    timeout: Duration::from_secs(5)
                },
                Call::RemoveContainer {
                    name: "missing".into(),
                    timeout: Duration::ZERO
                },
                Call::Containers,
            ]
        );
        assert!(podman.calls().is_empty());
    }

    #[test]
    fn lost_networking_is_left_alone_while_a_known_container_runs() {
        let podman = FakePodman::new();
        let run = Path::new("/run");
        assert!(podman.clear_lost_networking(run).unwrap().is_empty());
        podman.add_container(container("web", "running"));
        let left = podman.clear_lost_networking(run).unwrap();
        assert!(left.len() == 1 && left[0].contains("runs web"), "{left:?}");
        assert_eq!(
            podman.take_calls(),
            [
                Call::ClearLostNetworking(run.to_path_buf()),
                Call::ClearLostNetworking(run.to_path_buf()),
            ]
        );
    }

    #[test]
    fn secrets_are_replaced_and_their_values_never_shown() {
        let podman = FakePodman::new();
        podman.put_secret("db", b"first").unwrap();
        podman.put_secret("db", b"second").unwrap();
        podman.add_secret("other", b"x");
        assert_eq!(
            podman.secret_names().unwrap(),
            BTreeSet::from(["db".to_owned(), "other".to_owned()])
        );
        assert_eq!(podman.secret_value("db").unwrap(), b"second");
        let shown = format!("{podman:?} {:?}", podman.calls());
        assert!(
            !shown.contains("second") && !shown.contains("first"),
            "{shown}"
        );
        podman.remove_secret("db").unwrap();
        podman.remove_secret("db").unwrap();
        assert_eq!(podman.secret_value("db"), None);
    }

    #[test]
    fn an_unreachable_podman_fails_every_call_and_says_how_to_fix_it() {
        let podman = FakePodman::new();
        podman.set_unreachable(true);
        let dyn_podman: &dyn Podman = &podman;
        let e = dyn_podman.containers().unwrap_err();
        assert!(
            e.to_string().contains("systemctl start podman.socket"),
            "{e}"
        );
        assert!(dyn_podman.put_secret("x", b"y").is_err());
        assert_eq!(podman.secret_value("x"), None);
        podman.set_unreachable(false);
        assert!(dyn_podman.images().unwrap().is_empty());
    }
}

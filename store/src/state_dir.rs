//! The state directory's layout: the one place that spells the name of
//! every file and folder archy keeps under `/var/lib/archy`. Every crate
//! asks a [`StateDir`] for a path instead of joining names by hand, so the
//! layout can only change here.
//!
//! ```text
//! <state>/store/                  objects (the store)
//! <state>/generations/<N>         generation records
//! <state>/current, last-good, previous -> generations/N
//! <state>/lock                    the state lock
//! <state>/switch.json             the journal of a switch in flight
//! <state>/owned.json              what archy wrote on the node
//! <state>/secrets/<name>          generated secret values
//! <state>/adopted/<backup>        backups of paths archy took over
//! <state>/rotations.json          how often each secret was rotated
//! <state>/ota.json                the release record
//! <state>/ota/downloads/          bundles being downloaded
//! <state>/ota/releases/<V>-<H12>  unpacked releases
//! ```

use std::fmt;
use std::path::{Path, PathBuf};

/// Where archy keeps its state on a node.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/archy";

/// How many hex digits of a bundle's hash name its release folder: enough
/// to tell two builds of one version apart, short enough to read.
const RELEASE_HASH_DIGITS: usize = 12;

/// One of the links to a generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// The generation the node runs.
    Current,
    /// The newest generation that passed its health checks: the target of
    /// an automatic rollback.
    LastGood,
    /// The generation that was current before the current one: the target
    /// of `archy rollback`, so two rollbacks return to where they started.
    Previous,
}

impl Link {
    /// The link's file name in the state dir.
    pub fn file_name(self) -> &'static str {
        match self {
            Self::Current => "current",
            Self::LastGood => "last-good",
            Self::Previous => "previous",
        }
    }
}

/// A state directory: a path on this machine (under `--root` when an
/// image is built offline) and the names of everything in it. Naming a
/// path touches nothing on disk.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StateDir {
    path: PathBuf,
}

impl StateDir {
    /// The state dir at `path` on this machine.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The state dir `state_dir` as seen from here: under `root` when one
    /// is given (`--root`), so an image can be built offline into a mounted
    /// file system.
    pub fn under_root(state_dir: &Path, root: Option<&Path>) -> Self {
        match root {
            Some(root) => Self::new(root.join(state_dir.strip_prefix("/").unwrap_or(state_dir))),
            None => Self::new(state_dir),
        }
    }

    /// The state dir itself.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The store's objects (`store/`).
    pub fn objects(&self) -> PathBuf {
        self.path.join("store")
    }

    /// Software trees laid out from their store objects, one folder per
    /// tree hash (`trees/<hash>`): what a `tree()` path links to.
    pub fn trees(&self) -> PathBuf {
        self.path.join("trees")
    }

    /// The archy that recovery runs (`bin/archy`): a link to the archy of
    /// the last good generation, which a switch to a new archy never
    /// touches before that archy proved itself.
    pub fn recovery_binary(&self) -> PathBuf {
        self.path.join("bin").join("archy")
    }

    /// Downloads of software in progress (`downloads/`), resumed by the
    /// next build.
    pub fn downloads(&self) -> PathBuf {
        self.path.join("downloads")
    }

    /// The version each data contract's directory is at (`data/<name>.json`),
    /// as the last code that ran on it left it.
    pub fn data_versions(&self) -> PathBuf {
        self.path.join("data")
    }

    /// Snapshots of data taken before migrations (`snapshots/<N>/<name>`,
    /// N the generation whose switch took it): deleted with generation N.
    pub fn snapshots(&self) -> PathBuf {
        self.path.join("snapshots")
    }

    /// The generation records (`generations/`).
    pub fn generations(&self) -> PathBuf {
        self.path.join("generations")
    }

    /// Generation `number`'s record (`generations/<N>`).
    pub fn generation(&self, number: u64) -> PathBuf {
        self.generations().join(number.to_string())
    }

    /// The link `link` (`current`, `last-good`, `previous`).
    pub fn link(&self, link: Link) -> PathBuf {
        self.path.join(link.file_name())
    }

    /// The state lock (`lock`).
    pub fn lock(&self) -> PathBuf {
        self.path.join("lock")
    }

    /// The journal of a switch in flight (`switch.json`).
    pub fn switch_journal(&self) -> PathBuf {
        self.path.join("switch.json")
    }

    /// The ownership record (`owned.json`).
    pub fn owned(&self) -> PathBuf {
        self.path.join("owned.json")
    }

    /// The folder of generated secret values (`secrets/`).
    pub fn secrets(&self) -> PathBuf {
        self.path.join("secrets")
    }

    /// Where the value of secret `name` (a checked secret name: a plain
    /// file name) is kept (`secrets/<name>`).
    pub fn secret(&self, name: &str) -> PathBuf {
        self.secrets().join(name)
    }

    /// The folder of backups of adopted paths (`adopted/`).
    pub fn adopted(&self) -> PathBuf {
        self.path.join("adopted")
    }

    /// The backup named `backup` (a name the realizer made) (`adopted/<backup>`).
    pub fn adopted_backup(&self, backup: &str) -> PathBuf {
        self.adopted().join(backup)
    }

    /// How often each secret was rotated (`rotations.json`).
    pub fn rotations(&self) -> PathBuf {
        self.path.join("rotations.json")
    }

    /// The release record (`ota.json`).
    pub fn ota_record(&self) -> PathBuf {
        self.path.join("ota.json")
    }

    /// Bundles being downloaded (`ota/downloads/`).
    pub fn ota_downloads(&self) -> PathBuf {
        self.path.join("ota").join("downloads")
    }

    /// Unpacked releases (`ota/releases/`).
    pub fn ota_releases(&self) -> PathBuf {
        self.path.join("ota").join("releases")
    }

    /// The folder release `version` with bundle hash `bundle` (hex) is
    /// unpacked into (`ota/releases/<version>-<first 12 hex digits>`).
    pub fn ota_release(&self, version: &impl fmt::Display, bundle: &str) -> PathBuf {
        let short = bundle.get(..RELEASE_HASH_DIGITS).unwrap_or(bundle);
        self.ota_releases().join(format!("{version}-{short}"))
    }
}

impl From<PathBuf> for StateDir {
    fn from(path: PathBuf) -> Self {
        Self::new(path)
    }
}

impl From<&Path> for StateDir {
    fn from(path: &Path) -> Self {
        Self::new(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_every_path_of_the_layout() {
        let state = StateDir::new(DEFAULT_STATE_DIR);
        let at = |p: PathBuf| p.to_string_lossy().into_owned();
        assert_eq!(at(state.objects()), "/var/lib/archy/store");
        assert_eq!(at(state.generation(7)), "/var/lib/archy/generations/7");
        assert_eq!(at(state.link(Link::Current)), "/var/lib/archy/current");
        assert_eq!(at(state.link(Link::LastGood)), "/var/lib/archy/last-good");
        assert_eq!(at(state.link(Link::Previous)), "/var/lib/archy/previous");
        assert_eq!(at(state.lock()), "/var/lib/archy/lock");
        assert_eq!(at(state.switch_journal()), "/var/lib/archy/switch.json");
        assert_eq!(at(state.owned()), "/var/lib/archy/owned.json");
        assert_eq!(at(state.secret("rpc")), "/var/lib/archy/secrets/rpc");
        assert_eq!(
            at(state.adopted_backup("etc%2Fmotd")),
            "/var/lib/archy/adopted/etc%2Fmotd"
        );
        assert_eq!(at(state.rotations()), "/var/lib/archy/rotations.json");
        assert_eq!(at(state.ota_record()), "/var/lib/archy/ota.json");
        assert_eq!(at(state.ota_downloads()), "/var/lib/archy/ota/downloads");
        assert_eq!(
            at(state.ota_release(&"1.2.0", &"ab".repeat(32))),
            "/var/lib/archy/ota/releases/1.2.0-abababababab"
        );
    }

    #[test]
    fn a_root_holds_the_state_dir_and_no_root_leaves_it() {
        let dir = Path::new(DEFAULT_STATE_DIR);
        assert_eq!(StateDir::under_root(dir, None).path(), dir);
        assert_eq!(
            StateDir::under_root(dir, Some(Path::new("/mnt/image"))).path(),
            Path::new("/mnt/image/var/lib/archy")
        );
        assert_eq!(
            StateDir::under_root(Path::new("state"), Some(Path::new("/mnt"))).path(),
            Path::new("/mnt/state")
        );
    }
}

//! What can go wrong in an operation on a node, as one typed enum with the
//! engine's errors as sources, and the hint an operator reads with each.
//! Whose problem it is (the exit code) is decided in `exit.rs`.

use std::path::PathBuf;

use archy_build::{BuildError, LoadError};
use archy_eval::Failure;
use archy_ota::OtaError;
use archy_ota::state::StateError;
use archy_store::StoreError;
use archy_switch::switch::SwitchError;

use crate::facts::BadFact;
use crate::reconcile::Repairs;
use archy_store::RotationsError;

/// A failed operation. The message says what happened; [`NodeError::hint`]
/// what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The node description does not evaluate: every problem, with the
    /// sources to show them in (the CLI renders them like a compiler).
    #[error(
        "{} problem{} in the node description; nothing was changed",
        .0.problems.len(),
        if .0.problems.len() == 1 { "" } else { "s" }
    )]
    Eval(Box<Failure>),
    #[error(transparent)]
    Fact(#[from] BadFact),
    #[error("cannot read the node description {}: {source}", .path.display())]
    NodeFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read {}: {source}", .path.display())]
    Sources {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("there is no previous generation to roll back to")]
    NoPrevious,
    /// `--clobber APP` names no app of any generation, the new one included.
    #[error(
        "--clobber {app}: no generation, the new one included, has an app {app}; nothing was changed"
    )]
    NoSuchApp { app: String, apps: Vec<String> },
    /// `--clobber APP` of an app the new generation runs.
    #[error(
        "--clobber {app}: the new generation runs app {app}, so its data cannot be removed under it; nothing was changed"
    )]
    AppStillRuns { app: String },
    /// `archy adopt --now NAME`: no adopted container of that name waits
    /// for its hand-over.
    #[error("adopt --now {name}: no adopted container of that name (or app) waits for its hand-over ({})", pending_list(.pending))]
    NotAdopted { name: String, pending: Vec<String> },
    /// `archy adopt --now NAME` of a container that differs from its
    /// declaration in what a hand-over could lose.
    #[error("adopt --now {name}: the container differs from its declaration: {}; nothing was changed", .differences.join(", "))]
    AdoptedDiffers {
        name: String,
        differences: Vec<String>,
    },
    /// The operator did not confirm `--clobber APP` (or could not: no
    /// terminal and no `--yes`).
    #[error("--clobber {app}: {why}; nothing was changed")]
    ClobberNotConfirmed { app: String, why: String },
    /// `--root` builds an image offline; only `archy switch` does that.
    #[error(
        "--root realizes a node image offline with `archy switch`; {command} acts on a running node"
    )]
    RootNotHere { command: &'static str },
    /// `archy secret rotate` before any switch.
    #[error("no generation yet: run archy switch first")]
    NeverSwitched,
    #[error("the current generation ({generation}) declares no secret `{name}`")]
    NoSuchSecret {
        generation: u64,
        name: String,
        declared: Vec<String>,
    },
    #[error(
        "secret {name} cannot be rotated again: its version would pass {}",
        u32::MAX
    )]
    RotationOverflow { name: String },
    #[error(transparent)]
    Rotations(#[from] RotationsError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error("the current generation {generation} cannot be loaded: {source}")]
    Current {
        generation: u64,
        source: Box<LoadError>,
    },
    #[error("cannot load generation {generation}: {source}")]
    Load {
        generation: u64,
        source: Box<LoadError>,
    },
    #[error(transparent)]
    Switch(Box<SwitchError>),
    /// `archy rollback --keep-app`: the earlier generation with the kept
    /// apps of the current one does not hold together; nothing was changed.
    #[error(
        "generation {target} with {} of generation {current} does not hold together, so nothing was changed:\n  {}",
        .apps.join(", "),
        .problems.join("\n  ")
    )]
    KeepApp {
        target: u64,
        current: u64,
        apps: Vec<String>,
        problems: Vec<String>,
    },
    #[error(transparent)]
    Realize(#[from] archy_realize::Error),
    /// `archy store verify` found corrupt, missing or unloadable things.
    #[error("the store at {} has problems: {}", .state_dir.display(), .problems.join(", "))]
    StoreDamaged {
        state_dir: PathBuf,
        problems: Vec<String>,
    },
    /// Finishing or undoing an interrupted switch failed.
    #[error("an interrupted switch could not be recovered: {0}")]
    Recovery(#[source] Box<SwitchError>),
    #[error("{what}: {source}")]
    Systemd {
        what: &'static str,
        source: archy_systemd::Error,
    },
    /// The new generation failed its health gate (or a unit job) and the
    /// node went back.
    #[error("{}", rolled_back(.failed, .back_to, .why, .held, .release.as_deref()))]
    RolledBack {
        failed: u64,
        back_to: Option<u64>,
        why: Vec<String>,
        /// Apps left stopped because their data could not go back with
        /// their code: the node needs its operator (exit 3).
        held: Vec<String>,
        /// The OTA release it was, which is not tried again.
        release: Option<Box<ReleaseFailed>>,
    },
    /// A reconcile could not repair everything (a lost secret that must not
    /// be made anew): what it found and did, then what the operator does.
    #[error("{}", .0.advice.join("\n  "))]
    Unrepaired(Box<Repairs>),
    #[error(transparent)]
    OtaRecord(#[from] StateError),
    /// A verified bundle is not to be applied here (its signature is fine).
    #[error("{0}")]
    ReleaseRefused(Box<crate::ota::Refusal>),
    /// A bundle whose manifest disagrees with its signed comment, or that
    /// does not unpack safely; recorded as failed.
    #[error("release {version}: {why}")]
    ReleaseBroken {
        version: semver::Version,
        why: String,
    },
    /// A verified release whose software could not be put into the store:
    /// nothing was switched, and it is not recorded as failed.
    #[error("release {version}: {source}")]
    ReleaseSoftware {
        version: semver::Version,
        source: archy_ota::OtaError,
    },
    #[error("--mirror goes with a bundle URL, not a file")]
    MirrorWithFile,
    #[error("{0} is not an http(s) URL")]
    NotUrl(String),
    #[error("cannot read the signature {}: {source}", .path.display())]
    Signature {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{url}.minisig is not a minisign signature")]
    SignatureText { url: String },
    /// A bundle that did not verify (named after its URL when downloaded).
    #[error("{}{source}", .from.as_ref().map(|f| format!("{f}: ")).unwrap_or_default())]
    Unverified {
        from: Option<String>,
        source: OtaError,
    },
    #[error("{0}")]
    TrustedKeys(#[source] OtaError),
    #[error("{0}")]
    Download(#[source] OtaError),
    #[error("{0}")]
    SignatureFetch(#[source] OtaError),
    #[error("{0}")]
    SigningKey(#[source] OtaError),
    #[error("{0}")]
    Pack(#[source] OtaError),
    #[error("{0}")]
    Keygen(#[source] OtaError),
    /// A verified release whose own node.rhai does not evaluate: wrong on
    /// every try, so recorded as failed; its folder is kept for a look.
    #[error(
        "release {version}: its node.rhai does not evaluate (unpacked in {}); nothing was changed on this node and the release is recorded as failed",
        .dir.display()
    )]
    ReleaseEval {
        version: semver::Version,
        dir: PathBuf,
        failure: Box<Failure>,
    },
    #[error("{} exists already", .0.display())]
    KeyExists(PathBuf),
    #[error("the channel {0:?} is not a plain name")]
    BadChannel(String),
    /// A TUF repository refused (an attack named), unreachable, or a
    /// publisher's change to it that failed.
    #[error("{0}")]
    Repository(#[source] archy_ota::tuf::TufError),
    #[error("{}: {why}", path.display())]
    Tree { path: PathBuf, why: String },
    #[error("cannot {what} {}: {source}", .path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot print {what}: {source}")]
    Json {
        what: &'static str,
        source: serde_json::Error,
    },
}

impl From<SwitchError> for NodeError {
    fn from(e: SwitchError) -> Self {
        NodeError::Switch(Box::new(e))
    }
}

impl NodeError {
    /// A failure to finish or undo an interrupted switch.
    pub(crate) fn recovery(e: impl Into<SwitchError>) -> Self {
        NodeError::Recovery(Box::new(e.into()))
    }
}

/// The release a rolled-back switch was for.
#[derive(Debug, Clone)]
pub struct ReleaseFailed {
    pub version: semver::Version,
    pub seconds: f64,
}

fn rolled_back(
    failed: &u64,
    back_to: &Option<u64>,
    why: &[String],
    held: &[String],
    release: Option<&ReleaseFailed>,
) -> String {
    let back = back_to.map_or("nothing (as before the first switch)".to_string(), |n| {
        format!("generation {n}")
    });
    let mut message = format!("generation {failed} failed and the node is back on {back}:");
    for line in why {
        message.push_str(&format!("\n  {line}"));
    }
    if !held.is_empty() {
        message.push_str("\nthe node needs its operator:");
        for line in held {
            message.push_str(&format!("\n  {line}"));
        }
    }
    match release {
        Some(ReleaseFailed { version, seconds }) => format!(
            "release {version}: {message}\nrelease {version} is recorded as failed and is not tried again ({seconds:.1} s)"
        ),
        None => message,
    }
}

impl NodeError {
    /// An I/O error on a path, with what archy was doing.
    pub(crate) fn io(
        what: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| NodeError::Io { what, path, source }
    }

    /// What the operator can do about it, where there is something to say.
    pub fn hint(&self) -> Option<String> {
        let text = match self {
            NodeError::NodeFile { .. } => {
                "pass the path of a node.rhai, or run archy in its folder"
            }
            NodeError::NoPrevious => "pass --to N; see archy generations",
            NodeError::NoSuchApp { apps, .. } if apps.is_empty() => {
                "no generation declares any app"
            }
            NodeError::NoSuchApp { apps, .. } => {
                return Some(format!("the apps: {}", apps.join(", ")));
            }
            NodeError::AppStillRuns { .. } => {
                "declare it state: \"stopped\" (or drop it from the node), then switch with --clobber again"
            }
            NodeError::NotAdopted { .. } => {
                "`archy status` lists the adopted containers whose hand-over is pending"
            }
            NodeError::AdoptedDiffers { .. } => {
                "make the description match the running container (image, mounts, network), switch, then hand it over; or stop and remove the container yourself, and the next switch starts its unit"
            }
            NodeError::ClobberNotConfirmed { .. } => {
                "read the plan, then answer y on a terminal, or pass --yes where there is none"
            }
            NodeError::NeverSwitched => {
                "a secret is rotated once a generation that declares it is running"
            }
            NodeError::NoSuchSecret { declared, .. } if declared.is_empty() => {
                "it declares no secrets at all"
            }
            NodeError::NoSuchSecret { declared, .. } => {
                return Some(format!("the secrets it declares: {}", declared.join(", ")));
            }
            NodeError::Rotations(RotationsError::Malformed { .. }) => {
                RotationsError::MALFORMED_HINT
            }
            NodeError::Current { .. } => "run `archy store verify` to see what is damaged",
            NodeError::StoreDamaged { .. } => {
                "delete the corrupt objects and run `archy build` to write them again; a broken \
                 generation record can be restored from a backup or deleted"
            }
            NodeError::Switch(e) if matches!(**e, SwitchError::Image(_)) => {
                "fix the image reference or its build context (the error above says what failed) and switch again"
            }
            NodeError::Switch(e) if matches!(**e, SwitchError::RefusedBecause(_)) => {
                "each line says what to do; nothing was changed"
            }
            NodeError::Switch(e) if matches!(**e, SwitchError::Refused(_)) => {
                "nothing was changed; move the file away, or pass --adopt to back it up and manage it"
            }
            NodeError::ReleaseRefused(r) => return r.hint().map(str::to_string),
            NodeError::ReleaseBroken { .. } => {
                "nothing was changed on this node; the release is recorded as failed"
            }
            NodeError::Unverified { .. } => "nothing was unpacked or changed on this node",
            NodeError::ReleaseSoftware { .. } => {
                "the release is not recorded as failed; what was fetched stays in the store, and the next apply fetches only what is still missing"
            }
            NodeError::Signature { .. } => {
                "a bundle comes with its signature, NAME.tar.gz.minisig, beside it"
            }
            NodeError::Download(_) => "what was downloaded is kept: the next run resumes it",
            NodeError::TrustedKeys(_) => "or pass --keys DIR to use the keys in another folder",
            NodeError::SignatureFetch(_) => "check the URL and the mirrors",
            NodeError::SigningKey(_) => "pass the .key file `archy release keygen` wrote",
            NodeError::KeyExists(_) => {
                "a release key is never replaced by accident: move it away, or pass another --out"
            }
            NodeError::BadChannel(_) => "use letters, digits and '-', e.g. stable or beta",
            NodeError::Repository(e) => return crate::ota::repo_hint(e),
            _ => return None,
        };
        Some(text.to_string())
    }
}

/// The adopted containers waiting for their hand-over, for an error.
fn pending_list(pending: &[String]) -> String {
    if pending.is_empty() {
        "none does".to_owned()
    } else {
        format!("pending: {}", pending.join(", "))
    }
}

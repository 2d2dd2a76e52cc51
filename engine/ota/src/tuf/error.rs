//! What goes wrong with a TUF repository, in words an operator acts on.
//! Every refusal of the node's client names the attack it looks like, so
//! that a mirror serving stale or forged metadata is told apart from a
//! mirror that is down.

use std::path::PathBuf;

use tough::schema::RoleType;

#[derive(Debug, thiserror::Error)]
pub enum TufError {
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the TUF client's runtime: {0}")]
    Runtime(String),
    #[error("the key file {} cannot be used: {reason}", path.display())]
    Key { path: PathBuf, reason: String },
    #[error("{0}")]
    Invalid(String),
    #[error("the repository in {} cannot be updated: {reason}", repo.display())]
    Publish { repo: PathBuf, reason: String },
    #[error("the trusted root {} cannot be read: {reason}", path.display())]
    TrustedRoot { path: PathBuf, reason: String },
    #[error(
        "the repository's {role} metadata has expired: a mirror is serving stale metadata \
         (a freeze attack), or the publisher has not refreshed it (`archy release refresh`); \
         nothing was installed"
    )]
    Expired { role: RoleType },
    #[error(
        "the repository offers {role} metadata version {offered}, older than version {seen} \
         this node has already seen: a rollback of the metadata; nothing was installed"
    )]
    Rollback {
        role: RoleType,
        seen: u64,
        offered: u64,
    },
    #[error(
        "the repository's metadata does not agree with itself ({detail}): files of different \
         publications are mixed (a mix-and-match attack, or a mirror caught mid-sync); \
         nothing was installed"
    )]
    Mismatch { detail: String },
    #[error(
        "the target {name} has another length or hash than the signed targets metadata says \
         ({detail}): the mirror serves other bytes; nothing was installed"
    )]
    TargetMismatch { name: String, detail: String },
    #[error(
        "the repository's {role} metadata is not signed by the keys this node trusts ({detail}); \
         a new root must be signed by the threshold of the old root's keys; nothing was installed"
    )]
    Untrusted { role: String, detail: String },
    #[error("no mirror of the repository answered: {detail}")]
    Unreachable { detail: String },
    #[error("the repository cannot be read: {detail}")]
    Other { detail: String },
    #[error("the repository lists no target {0}")]
    NoTarget(String),
}

/// The whole chain of a tough error, one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

impl TufError {
    /// Names the attack a tough refusal of the metadata looks like.
    pub(crate) fn of_load(e: tough::error::Error) -> TufError {
        let detail = chain(&e);
        classify(&e, detail, None)
    }

    /// A refusal while a target streams in.
    pub(crate) fn of_target(name: &str, e: tough::error::Error) -> TufError {
        let detail = chain(&e);
        classify(&e, detail, Some(name))
    }

    pub(crate) fn io(
        action: &'static str,
        path: &std::path::Path,
    ) -> impl Fn(std::io::Error) -> TufError {
        let path = path.to_path_buf();
        move |source| TufError::Io {
            action,
            path: path.clone(),
            source,
        }
    }
}

/// The refusal a tough error stands for. A check that fails while a file
/// streams in (its hash, its length) reaches here wrapped in the
/// transport's error: the wrapped error decides.
fn classify(e: &tough::error::Error, detail: String, target: Option<&str>) -> TufError {
    use tough::error::Error as E;
    match e {
        E::Transport { source, .. } => {
            let inner = std::error::Error::source(source)
                .and_then(|s| s.downcast_ref::<tough::error::Error>());
            match inner {
                Some(inner) => classify(inner, detail, target),
                None => TufError::Unreachable { detail },
            }
        }
        E::HashMismatch { .. } | E::MaxSizeExceeded { .. } if let Some(name) = target => {
            TufError::TargetMismatch {
                name: super::meta::cut(name, 120),
                detail,
            }
        }
        E::ExpiredMetadata { role, .. } => TufError::Expired { role: *role },
        E::OlderMetadata {
            role,
            current_version,
            new_version,
            ..
        } => TufError::Rollback {
            role: *role,
            seen: *current_version,
            offered: *new_version,
        },
        E::OlderSnapshotInTimestamp { .. } | E::SnapshotRoleRollback { .. } => TufError::Mismatch {
            detail: format!("a rollback inside the snapshot: {detail}"),
        },
        E::HashMismatch { .. }
        | E::VersionMismatch { .. }
        | E::MetaMissing { .. }
        | E::SnapshotTargetsMetaMissing { .. }
        | E::SnapshotRoleMissing { .. }
        | E::MissingSnapshotMeta { .. }
        | E::MaxSizeExceeded { .. } => TufError::Mismatch { detail },
        E::VerifyMetadata { role, .. } => TufError::Untrusted {
            role: role.to_string(),
            detail,
        },
        E::VerifyTrustedMetadata { .. } => TufError::Untrusted {
            role: "trusted root".to_string(),
            detail,
        },
        E::VerifyRoleMetadata { role, .. } => TufError::Untrusted {
            role: role.clone(),
            detail,
        },
        _ => TufError::Other { detail },
    }
}

//! The repository's signing keys: one Ed25519 key per top-level role, each
//! a PKCS#8 file of mode 0600 in the publisher's key folder
//! (`root.key`, `targets.key`, `snapshot.key`, `timestamp.key`).
//!
//! The root key signs only a new root (`archy release init` and `rotate`):
//! keep it offline. The timestamp key re-signs `timestamp.json` every day
//! (`archy release refresh`): it is the one key a publishing machine keeps
//! online. A key that is replaced stays beside the new one as
//! `ROLE.key.retired-N` (N the root version that dropped it).

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use aws_lc_rs::signature::Ed25519KeyPair;
use tough::key_source::{KeySource, LocalKeySource};
use tough::schema::RoleType;
use tough::schema::decoded::{Decoded, Hex};
use tough::schema::key::Key;

use super::TufError;

/// The top-level roles, each with its own key.
pub const ROLES: [RoleType; 4] = [
    RoleType::Root,
    RoleType::Targets,
    RoleType::Snapshot,
    RoleType::Timestamp,
];

/// Where `role`'s key is in the key folder `dir`.
pub fn path(dir: &Path, role: RoleType) -> PathBuf {
    dir.join(format!("{role}.key"))
}

/// Writes a new Ed25519 key to `path` (mode 0600 from its first byte;
/// never replaces a file).
pub fn generate(path: &Path) -> Result<(), TufError> {
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|e| TufError::Key {
        path: path.to_path_buf(),
        reason: format!("cannot generate a key: {e}"),
    })?;
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(TufError::io("create the key file", path))?;
    file.write_all(pkcs8.as_ref())
        .and_then(|()| file.sync_all())
        .map_err(TufError::io("write the key file", path))
}

/// The key in `path`, for signing.
pub fn source(path: &Path) -> Box<dyn KeySource> {
    Box::new(LocalKeySource {
        path: path.to_path_buf(),
    })
}

/// The public half of the key in `path`, and its TUF key id.
pub async fn public(path: &Path) -> Result<(Decoded<Hex>, Key), TufError> {
    if !path.exists() {
        return Err(TufError::Key {
            path: path.to_path_buf(),
            reason: "there is no such file".to_string(),
        });
    }
    let bad = |reason: String| TufError::Key {
        path: path.to_path_buf(),
        reason,
    };
    let sign = source(path)
        .as_sign()
        .await
        .map_err(|e| bad(format!("it is not a PKCS#8 signing key ({e})")))?;
    let key = sign.tuf_key();
    let id = key.key_id().map_err(|e| bad(e.to_string()))?;
    Ok((id, key))
}

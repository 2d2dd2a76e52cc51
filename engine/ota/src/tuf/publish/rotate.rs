//! Replacing a role's key: a new root that lists the new key, signed by
//! the old root's key (what a node that trusts the old root checks) and
//! the new root's, then the rest of the publication signed under it. The
//! root goes in first; a rotation cut short after that is finished by the
//! next `rotate`.

use std::collections::HashMap;
use std::path::Path;

use tough::editor::RepositoryEditor;
use tough::editor::signed::SignedRole;
use tough::key_source::KeySource;
use tough::schema::{KeyHolder, RoleKeys, RoleType, Root, Signed, Timestamp};

use super::{Published, Publisher, next, one};
use crate::tuf::{TufError, block_on, keys};

impl Publisher {
    /// Replaces `role`'s key: a new key file, and a new root (version
    /// N+1) listing it, signed by the old root's keys and the new root's
    /// (a node accepts it only so). The old key is kept as
    /// `ROLE.key.retired-N`. Then targets, snapshot and timestamp are
    /// signed again under the new root.
    pub fn rotate(&self, role: RoleType) -> Result<Published, TufError> {
        if role == RoleType::DelegatedTargets {
            return Err(TufError::Invalid(
                "archy keeps no delegated roles".to_string(),
            ));
        }
        block_on(async {
            let (root_path, root_version) = self.latest_root()?;
            let new_path = self.keys.join(format!("{role}.key.new"));
            if new_path.exists() {
                let (new_id, _) = keys::public(&new_path).await?;
                let root: Signed<Root> = read_json(&root_path)?;
                if root
                    .signed
                    .roles
                    .get(&role)
                    .is_some_and(|k| k.keyids.contains(&new_id))
                {
                    // An interrupted rotation: its root is in, the rest
                    // of the publication and the key files maybe not.
                    return self.finish_rotation(role, root_version).await;
                }
            } else {
                keys::generate(&new_path)?;
            }
            let repo = self.load(&root_path).await?;
            let old_root = repo.root().signed.clone();
            let (new_id, new_key) = keys::public(&new_path).await?;
            let mut root = old_root.clone();
            root.version = next(root.version);
            root.expires = self.at(self.lifetimes.root);
            if let Some(old) = root.roles.get(&role) {
                for id in old.keyids.clone() {
                    let still_used = root
                        .roles
                        .iter()
                        .any(|(r, k)| *r != role && k.keyids.contains(&id));
                    if !still_used {
                        root.keys.remove(&id);
                    }
                }
            }
            root.keys.insert(new_id.clone(), new_key);
            root.roles.insert(
                role,
                RoleKeys {
                    keyids: vec![new_id],
                    threshold: one(),
                    _extra: HashMap::new(),
                },
            );
            let new_root_key = if role == RoleType::Root {
                keys::source(&new_path)
            } else {
                self.key(RoleType::Root)
            };
            // The old root's keys sign the new root's contents: that is
            // what a node that trusts the old root checks.
            let rng = aws_lc_rs::rand::SystemRandom::new();
            let by_old = SignedRole::new(
                root.clone(),
                &KeyHolder::Root(old_root),
                &[self.key(RoleType::Root)],
                &rng,
            )
            .await
            .map_err(|e| self.fail(format!("the old root key cannot sign the new root: {e}")))?;
            let signed = sign_root(root, &[new_root_key], &by_old.signed().signatures).await?;
            let staging = self.staging()?;
            signed
                .write(staging.path(), true)
                .await
                .map_err(|e| self.fail(e))?;
            // The root first; `finish_rotation` then signs the rest with
            // the new key and swaps the key files. A crash in between
            // leaves `ROLE.key.new` listed by the newest root, and
            // `rotate` again finishes the job.
            self.move_in(staging.path())?;
            self.finish_rotation(role, signed.signed().signed.version.get())
                .await
        })?
    }

    /// Signs targets, snapshot and timestamp under root `root_version`
    /// (the rotated role with `ROLE.key.new`), then makes the new key
    /// `ROLE.key` and keeps the old one as `ROLE.key.retired-N`. Reads the
    /// folder's own files, unverified: under the new root the old
    /// signatures may not check out any more.
    async fn finish_rotation(
        &self,
        role: RoleType,
        root_version: u64,
    ) -> Result<Published, TufError> {
        let metadata = self.metadata();
        let timestamp: Signed<Timestamp> = read_json(&metadata.join("timestamp.json"))?;
        let snapshot_version = timestamp
            .signed
            .meta
            .get("snapshot.json")
            .map(|m| m.version)
            .ok_or_else(|| self.fail("timestamp.json names no snapshot"))?;
        let snapshot: Signed<tough::schema::Snapshot> =
            read_json(&metadata.join(format!("{snapshot_version}.snapshot.json")))?;
        let targets_version = snapshot
            .signed
            .meta
            .get("targets.json")
            .map(|m| m.version)
            .ok_or_else(|| self.fail("the snapshot names no targets"))?;
        let targets: Signed<tough::schema::Targets> =
            read_json(&metadata.join(format!("{targets_version}.targets.json")))?;
        let mut editor = RepositoryEditor::new(metadata.join(format!("{root_version}.root.json")))
            .await
            .map_err(|e| self.fail(e))?;
        let targets_next = next(targets.signed.version);
        editor.targets(targets).map_err(|e| self.fail(e))?;
        self.versions(
            &mut editor,
            targets_next,
            next(snapshot.signed.version),
            next(timestamp.signed.version),
        );
        let new_path = self.keys.join(format!("{role}.key.new"));
        let keys: Vec<Box<dyn KeySource>> =
            [RoleType::Targets, RoleType::Snapshot, RoleType::Timestamp]
                .into_iter()
                .map(|r| {
                    if r == role {
                        keys::source(&new_path)
                    } else {
                        self.key(r)
                    }
                })
                .collect();
        let signed = editor.sign(&keys).await.map_err(|e| self.fail(e))?;
        let staging = self.staging()?;
        signed
            .write(staging.path())
            .await
            .map_err(|e| self.fail(e))?;
        self.move_in(staging.path())?;
        let key_path = keys::path(&self.keys, role);
        let retired = self
            .keys
            .join(format!("{role}.key.retired-{}", root_version - 1));
        // A crash between the two renames left no ROLE.key: the retired
        // one is there already.
        if key_path.exists() {
            std::fs::rename(&key_path, &retired).map_err(TufError::io("retire", &key_path))?;
        }
        std::fs::rename(&new_path, &key_path).map_err(TufError::io("install", &new_path))?;
        self.published(root_version).await
    }
}

/// Signs `root` with `keys` (those the root lists for itself) and adds
/// `old` signatures: a rotation's new root carries both thresholds'.
pub(super) async fn sign_root(
    root: Root,
    keys: &[Box<dyn KeySource>],
    old: &[tough::schema::Signature],
) -> Result<SignedRole<Root>, TufError> {
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let holder = KeyHolder::Root(root.clone());
    let fail = |e: tough::error::Error| TufError::Invalid(format!("cannot sign the root: {e}"));
    let signed = SignedRole::new(root, &holder, keys, &rng)
        .await
        .map_err(fail)?;
    let signed = signed.add_old_signatures(old.to_vec()).map_err(fail)?;
    if signed.signed().signatures.is_empty() {
        return Err(TufError::Invalid(
            "none of the given keys is a root key of this repository".to_string(),
        ));
    }
    Ok(signed)
}

/// A metadata file of the publisher's own folder.
pub(super) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, TufError> {
    let bytes = std::fs::read(path).map_err(TufError::io("read", path))?;
    serde_json::from_slice(&bytes).map_err(|e| TufError::Publish {
        repo: path.to_path_buf(),
        reason: format!("it is not valid metadata: {e}"),
    })
}

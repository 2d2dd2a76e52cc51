//! The repository folder on disk: every change is signed in a staging
//! folder and moved into `metadata/` by renames, `timestamp.json` last;
//! targets are copied in under their hash before anything names them.

use std::path::{Path, PathBuf};

use super::Publisher;
use crate::tuf::TufError;

impl Publisher {
    pub(super) fn staging(&self) -> Result<tempfile::TempDir, TufError> {
        tempfile::Builder::new()
            .prefix(".archy-staging.")
            .tempdir_in(&self.repo)
            .map_err(TufError::io("create a staging folder in", &self.repo))
    }

    /// Moves the signed files in, `timestamp.json` last: it is what names
    /// the rest, so a mirror never sees it before what it names.
    pub(super) fn move_in(&self, staging: &Path) -> Result<(), TufError> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(staging)
            .map_err(TufError::io("read", staging))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .collect();
        names.sort_by_key(|p| p.file_name().is_some_and(|n| n == "timestamp.json"));
        for from in names {
            let Some(name) = from.file_name() else {
                continue;
            };
            let to = self.metadata().join(name);
            // A root once published never changes.
            if name.to_string_lossy().ends_with(".root.json") && to.exists() {
                continue;
            }
            let file = std::fs::File::open(&from).map_err(TufError::io("open", &from))?;
            file.sync_all().map_err(TufError::io("sync", &from))?;
            std::fs::rename(&from, &to).map_err(TufError::io("move in", &to))?;
        }
        let dir =
            std::fs::File::open(self.metadata()).map_err(TufError::io("open", &self.metadata()))?;
        dir.sync_all()
            .map_err(TufError::io("sync", &self.metadata()))
    }
}

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Copies `from` to `to` through a temp file and a rename (kept when it
/// is there already: its name is its hash).
pub(super) fn copy_in(from: &Path, to: &Path) -> Result<(), TufError> {
    if to.exists() {
        return Ok(());
    }
    let dir = to.parent().unwrap_or(Path::new("."));
    let temp =
        tempfile::NamedTempFile::new_in(dir).map_err(TufError::io("create a file in", dir))?;
    std::fs::copy(from, temp.path()).map_err(TufError::io("copy", from))?;
    temp.as_file()
        .sync_all()
        .map_err(TufError::io("sync", temp.path()))?;
    let mut perms = std::fs::metadata(temp.path())
        .map_err(TufError::io("stat", temp.path()))?
        .permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o644);
    std::fs::set_permissions(temp.path(), perms).map_err(TufError::io("chmod", temp.path()))?;
    temp.persist(to)
        .map_err(|e| TufError::io("move in", to)(e.error))?;
    Ok(())
}

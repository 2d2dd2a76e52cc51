//! Removing an app's data directory on the operator's explicit word
//! (`archy switch --clobber APP`): the one place archy deletes data.

use std::fs;
use std::io;

use crate::error::{Error, Result};
use crate::{Realizer, fsops};

/// What removing a data directory found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clobbered {
    /// The directory and everything in it are gone.
    Removed,
    /// Nothing was there.
    Absent,
    /// A symbolic link (to wherever the node keeps the data): the link is
    /// removed, what it points to is not followed.
    Link,
}

impl Realizer {
    /// Removes the directory at `node_path` with everything in it. Only a
    /// directory (or a link) is removed: anything else there is refused.
    pub fn clobber(&self, node_path: &str) -> Result<Clobbered> {
        let target = fsops::locate(self.root(), node_path);
        let host = &target.host;
        let found = match fs::symlink_metadata(host) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Clobbered::Absent),
            Err(e) => return Err(Error::io("read", host)(e)),
            Ok(m) => m,
        };
        let clobbered = if found.file_type().is_symlink() {
            fsops::remove_file(host)?;
            Clobbered::Link
        } else if found.is_dir() {
            fs::remove_dir_all(host).map_err(|e| Error::io("remove", host)(e))?;
            Clobbered::Removed
        } else {
            return Err(Error::io("remove the data directory", host)(
                io::Error::new(io::ErrorKind::NotADirectory, "it is not a directory"),
            ));
        };
        if let Some(parent) = host.parent() {
            fsops::sync_dir(parent)?;
        }
        Ok(clobbered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn realizer(root: &std::path::Path) -> Realizer {
        let state = archy_store::StateDir::new(root.join("state"));
        Realizer::new(root, &state)
    }

    #[test]
    fn a_data_directory_goes_with_everything_in_it() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("var/lib/x");
        fs::create_dir_all(data.join("deep")).unwrap();
        fs::write(data.join("deep/chain"), b"blocks").unwrap();
        let r = realizer(tmp.path());
        assert_eq!(r.clobber("/var/lib/x").unwrap(), Clobbered::Removed);
        assert!(!data.exists());
        assert!(tmp.path().join("var/lib").is_dir());
        assert_eq!(r.clobber("/var/lib/x").unwrap(), Clobbered::Absent);
    }

    #[test]
    fn a_link_is_removed_and_what_it_points_to_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let elsewhere = tmp.path().join("disk/x");
        fs::create_dir_all(&elsewhere).unwrap();
        fs::write(elsewhere.join("chain"), b"blocks").unwrap();
        fs::create_dir_all(tmp.path().join("var/lib")).unwrap();
        std::os::unix::fs::symlink(&elsewhere, tmp.path().join("var/lib/x")).unwrap();
        let r = realizer(tmp.path());
        assert_eq!(r.clobber("/var/lib/x").unwrap(), Clobbered::Link);
        assert!(elsewhere.join("chain").exists());
    }

    #[test]
    fn a_file_in_the_place_of_the_directory_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir_all(tmp.path().join("var/lib")).unwrap();
        fs::write(tmp.path().join("var/lib/x"), b"not a dir").unwrap();
        assert!(realizer(tmp.path()).clobber("/var/lib/x").is_err());
        assert!(tmp.path().join("var/lib/x").exists());
    }
}

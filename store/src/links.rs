//! The `current` and `last-good` links: `<state>/current -> generations/N`.
//!
//! A link is changed by creating a new link under a temp name and renaming
//! it over the old one, which is atomic: a reader (or a crash) finds the old
//! target or the new one, never no link at all.

use std::fs;
use std::io;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use crate::atomic::{self, TEMP_PREFIX};
use crate::error::{Result, StoreError};
use crate::{Link, Store};

impl Store {
    /// The generation `current` points at, if the link exists.
    pub fn current(&self) -> Result<Option<u64>> {
        self.read_link(Link::Current)
    }

    /// The generation `last-good` points at, if the link exists.
    pub fn last_good(&self) -> Result<Option<u64>> {
        self.read_link(Link::LastGood)
    }

    /// The generation `previous` points at, if the link exists.
    pub fn previous(&self) -> Result<Option<u64>> {
        self.read_link(Link::Previous)
    }

    /// Points `previous` at generation `number` (which must exist).
    pub fn set_previous(&self, number: u64) -> Result<()> {
        self.set_link(Link::Previous, number)
    }

    /// Points `current` at generation `number` (which must exist).
    pub fn set_current(&self, number: u64) -> Result<()> {
        self.set_link(Link::Current, number)
    }

    /// Points `last-good` at generation `number` (which must exist).
    pub fn set_last_good(&self, number: u64) -> Result<()> {
        self.set_link(Link::LastGood, number)
    }

    /// Reads the link and returns the N in its `generations/N`.
    fn read_link(&self, link: Link) -> Result<Option<u64>> {
        let path = self.state_dir.link(link);
        let target = match fs::read_link(&path) {
            Ok(target) => target,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(err) if err.kind() == io::ErrorKind::InvalidInput => {
                return Err(bad_link(path, "it is not a symlink".to_owned()));
            }
            Err(err) => return Err(StoreError::read("read the link", &path, err)),
        };
        link_number(&target)
            .map(Some)
            .ok_or_else(|| bad_link(path, format!("it points at {:?}", target.display())))
    }

    /// Points the link at generation `number`: temp link, rename over
    /// the old link, flush the state dir so the flip survives a power loss.
    fn set_link(&self, link: Link, number: u64) -> Result<()> {
        // A link must never point at a record that is missing or broken.
        self.generation(number)?;
        let dir = self.state_dir.path();
        let name = link.file_name();
        let target = link_target(number);
        let mut temp = tempfile::Builder::new()
            .prefix(&format!("{TEMP_PREFIX}{name}-"))
            .rand_bytes(12)
            .make_in(dir, |temp_path| symlink(&target, temp_path))
            .map_err(|err| StoreError::write("create a temp link in", dir, err))?;
        fs::rename(temp.path(), self.state_dir.link(link))
            .map_err(|err| StoreError::write("rename a temp link in", dir, err))?;
        temp.disable_cleanup(true);
        atomic::sync_dir(dir)
    }
}

/// The link target for generation `number`. Relative, so that a state dir
/// built under a prefix (`--root`, an offline image) is still right once it
/// is mounted at its real path.
fn link_target(number: u64) -> PathBuf {
    Path::new("generations").join(number.to_string())
}

/// The N of a `generations/N` link target.
fn link_number(target: &Path) -> Option<u64> {
    let number: u64 = target
        .strip_prefix("generations")
        .ok()?
        .to_str()?
        .parse()
        .ok()?;
    (link_target(number) == target).then_some(number)
}

fn bad_link(path: PathBuf, reason: String) -> StoreError {
    StoreError::BadLink { path, reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_numbers_round_trip_and_reject_other_targets() {
        assert_eq!(link_number(&link_target(7)), Some(7));
        for bad in [
            "generations/07",
            "generations/x",
            "/abs/generations/1",
            "gens/1",
            "generations",
        ] {
            assert_eq!(link_number(Path::new(bad)), None, "{bad}");
        }
    }
}

//! A build context written out as a folder, for `podman build`: the one
//! place a context leaves the store as files again.

use std::fs::{self, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use archy_graph::BuildContext;

/// Writes every file of `ctx` below `dir` (created if missing, as are the
/// folders inside it), mode 0755 for executable files and 0644 for the
/// rest, whatever the umask: the image must not depend on who ran the build.
///
/// Every path is checked before anything is written, so a context with a
/// path that is absolute or climbs out with `..` (which the evaluator never
/// makes, but a store object could hold) writes nothing and fails with
/// [`io::ErrorKind::InvalidInput`]. `dir` should be empty: a file already
/// there is replaced, and a symlink already there would be followed.
pub fn write_context(ctx: &BuildContext, dir: &Path) -> io::Result<()> {
    let targets = ctx
        .files
        .iter()
        .map(|file| Ok((dir.join(relative(&file.path)?), file)))
        .collect::<io::Result<Vec<_>>>()?;
    fs::create_dir_all(dir)?;
    for (target, file) in targets {
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent)?;
        }
        let mode = if file.executable { 0o755 } else { 0o644 };
        let mut out = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&target)?;
        out.write_all(&file.bytes)?;
        // `mode` above is cut by the umask and ignored for a file that
        // existed; this is not.
        out.set_permissions(Permissions::from_mode(mode))?;
    }
    Ok(())
}

/// `path` as a relative path that stays below the folder it is joined to:
/// not empty, not absolute, and no `..`, `.` or empty component.
fn relative(path: &str) -> io::Result<PathBuf> {
    let bad = |why: &str| {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("build context path {path:?} {why}"),
        ))
    };
    if path.is_empty() {
        return bad("is empty");
    }
    if path.starts_with('/') {
        return bad("is absolute");
    }
    if path.split('/').any(|part| part == "..") {
        return bad("leaves the context with `..`");
    }
    if path.split('/').any(|part| part.is_empty() || part == ".") {
        return bad("is not a plain relative path");
    }
    Ok(PathBuf::from(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_relative_paths_pass() {
        for ok in ["Containerfile", "src/main.rs", "a/b/c", "..hidden", "a..b"] {
            assert!(relative(ok).is_ok(), "{ok:?}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "..",
            "../x",
            "a/../../x",
            "a/..",
            "a//b",
            "./a",
            "a/",
        ] {
            assert!(relative(bad).is_err(), "{bad:?}");
        }
    }
}

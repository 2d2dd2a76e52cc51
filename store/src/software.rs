//! Software into the store: a file whose declared hash is checked before it
//! gets a name, and programs stored executable.
//!
//! The source is read once: each chunk is hashed (blake3 for the object's
//! name, and sha256 when that is what the author declared) and written to
//! a temp file in the store. Only when the hash matches the declaration is
//! the temp file named; otherwise it is deleted and nothing was stored.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use sha2::{Digest as _, Sha256};

use crate::Store;
use crate::atomic;
use crate::digest::Digest;
use crate::error::{Result, StoreError};
use crate::insert::Inserted;
use crate::objects::{ObjectId, ObjectName};

/// Read-only for all, and runnable: a program in the store.
const PROGRAM_MODE: u32 = 0o555;
const DATA_MODE: u32 = crate::insert::OBJECT_MODE;

/// The hash a piece of software was declared with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expected {
    Blake3(Digest),
    /// 64 lowercase hex digits.
    Sha256(String),
}

impl std::fmt::Display for Expected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Expected::Blake3(d) => write!(f, "blake3:{d}"),
            Expected::Sha256(h) => write!(f, "sha256:{h}"),
        }
    }
}

impl Store {
    /// Adds the file `src` as the object `name` if its content hashes to
    /// `expected`, read-only and, when `executable`, runnable by all. An
    /// object with a declared blake3 that is already there costs nothing
    /// (the source is not even opened).
    pub fn insert_checked(
        &self,
        name: &ObjectName,
        src: &Path,
        expected: &Expected,
        executable: bool,
    ) -> Result<(ObjectId, Inserted)> {
        if let Expected::Blake3(d) = expected {
            let id = ObjectId::new(*d, name.clone());
            if self.contains(&id)? {
                return Ok((id, Inserted::AlreadyPresent));
            }
        }
        let mode = if executable { PROGRAM_MODE } else { DATA_MODE };
        if let Expected::Blake3(d) = expected {
            // The store's own digest: the kernel copies, a thread hashes.
            return self.insert_file_declared(name, src, *d, mode);
        }
        let mut source = File::open(src).map_err(|err| StoreError::read("open", src, err))?;
        self.insert_reader_checked(name, &mut source, src, expected, executable)
    }

    /// [`Store::insert_checked`] from a reader (an entry of an archive);
    /// `src` names it in errors.
    pub fn insert_reader_checked(
        &self,
        name: &ObjectName,
        source: &mut impl Read,
        src: &Path,
        expected: &Expected,
        executable: bool,
    ) -> Result<(ObjectId, Inserted)> {
        let dir = self.objects_dir();
        let mut temp = atomic::create_temp(dir)?;
        let mut blake = blake3::Hasher::new();
        let mut sha = matches!(expected, Expected::Sha256(_)).then(Sha256::new);
        // Large chunks: the file system and blake3's SIMD both like them.
        let mut buf = vec![0u8; 1 << 20];
        let mut len = 0u64;
        loop {
            let n = match source.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(StoreError::read("read", src, err)),
            };
            let chunk = &buf[..n];
            blake.update(chunk);
            if let Some(sha) = sha.as_mut() {
                sha.update(chunk);
            }
            temp.write_all(chunk)
                .map_err(|err| StoreError::write("write a temp file in", dir, err))?;
            len += n as u64;
        }
        let digest: Digest = blake.finalize().into();
        let actual = match (expected, sha) {
            (Expected::Sha256(_), Some(sha)) => Expected::Sha256(hex(&sha.finalize())),
            _ => Expected::Blake3(digest),
        };
        if &actual != expected {
            // The temp file goes with `temp`: nothing was stored.
            return Err(StoreError::HashMismatch {
                path: src.to_owned(),
                declared: expected.to_string(),
                actual: actual.to_string(),
            });
        }
        let id = ObjectId::new(digest, name.clone());
        let mode = if executable { PROGRAM_MODE } else { DATA_MODE };
        let inserted = self.seal_and_place(temp, &id, len, mode)?;
        Ok((id, inserted))
    }

    /// The object named `name`, whatever its digest: how software declared
    /// by sha256 is found again (its name carries the sha256). Reads the
    /// store's listing.
    pub fn find_named(&self, name: &ObjectName) -> Result<Option<ObjectId>> {
        let suffix = format!("-{name}");
        for entry in atomic::read_dir(self.objects_dir())? {
            let entry = entry.map_err(|err| StoreError::read("list", self.objects_dir(), err))?;
            let file = entry.file_name();
            let Some(file) = file.to_str() else { continue };
            if file.len() == 64 + suffix.len()
                && file.ends_with(&suffix)
                && let Ok(id) = file.parse::<ObjectId>()
            {
                return Ok(Some(id));
            }
        }
        Ok(None)
    }
}

/// A file's blake3 and sha256 (64 lowercase hex digits) and its size,
/// read once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileHashes {
    pub blake3: Digest,
    pub sha256: String,
    pub size: u64,
}

impl FileHashes {
    /// Hashes the file at `path` without holding it in memory.
    pub fn of(path: &Path) -> io::Result<FileHashes> {
        let mut file = File::open(path)?;
        let mut blake = blake3::Hasher::new();
        let mut sha = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut size = 0u64;
        loop {
            let n = match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(err),
            };
            blake.update(&buf[..n]);
            sha.update(&buf[..n]);
            size += n as u64;
        }
        Ok(FileHashes {
            blake3: blake.finalize().into(),
            sha256: hex(&sha.finalize()),
            size,
        })
    }
}

impl Expected {
    /// Whether the regular file at `path` holds exactly the declared
    /// bytes (false when it cannot be read).
    pub fn matches_file(&self, path: &Path) -> bool {
        match self {
            Expected::Blake3(d) => Digest::of_file(path).is_ok_and(|actual| actual == *d),
            Expected::Sha256(hex) => FileHashes::of(path).is_ok_and(|h| h.sha256 == *hex),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::StateDir;
    use std::os::unix::fs::MetadataExt;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&StateDir::new(dir.path().join("state"))).unwrap();
        (dir, store)
    }

    fn source(dir: &tempfile::TempDir, bytes: &[u8]) -> std::path::PathBuf {
        let path = dir.path().join("src.bin");
        std::fs::write(&path, bytes).unwrap();
        path
    }

    fn name(n: &str) -> ObjectName {
        ObjectName::try_from(n).unwrap()
    }

    fn listing(store: &Store) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(store.objects_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_matching_blake3_is_stored_runnable() {
        let (dir, store) = store();
        let src = source(&dir, b"#!/bin/sh\necho hi\n");
        let expected = Expected::Blake3(Digest::of(b"#!/bin/sh\necho hi\n"));
        let (id, inserted) = store
            .insert_checked(&name("hi+x"), &src, &expected, true)
            .unwrap();
        assert_eq!(inserted, Inserted::Written(18));
        let meta = std::fs::metadata(store.object_path(&id)).unwrap();
        assert_eq!(meta.mode() & 0o7777, 0o555);
        // Present: the source is not read again (it is gone and it works).
        std::fs::remove_file(&src).unwrap();
        let again = store
            .insert_checked(&name("hi+x"), &src, &expected, true)
            .unwrap();
        assert_eq!(again, (id, Inserted::AlreadyPresent));
    }

    #[test]
    fn a_mismatch_names_both_hashes_and_stores_nothing() {
        let (dir, store) = store();
        let src = source(&dir, b"evil");
        let declared = Digest::of(b"good");
        let err = store
            .insert_checked(&name("app"), &src, &Expected::Blake3(declared), false)
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains(&declared.to_string()), "{text}");
        assert!(text.contains(&Digest::of(b"evil").to_string()), "{text}");
        assert!(listing(&store).is_empty(), "{:?}", listing(&store));
    }

    #[test]
    fn sha256_is_checked_and_found_again_by_name() {
        let (dir, store) = store();
        let src = source(&dir, b"abc");
        // sha256("abc"), the FIPS 180-2 example.
        let sha = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        let n = name(&format!("app.sha256-{sha}"));
        let (id, _) = store
            .insert_checked(&n, &src, &Expected::Sha256(sha.into()), false)
            .unwrap();
        assert_eq!(id.digest(), Digest::of(b"abc"));
        assert_eq!(
            std::fs::metadata(store.object_path(&id)).unwrap().mode() & 0o7777,
            0o444
        );
        assert_eq!(store.find_named(&n).unwrap(), Some(id));
        assert_eq!(store.find_named(&name("other")).unwrap(), None);
        let wrong = Expected::Sha256("0".repeat(64));
        let err = store
            .insert_checked(&name("x"), &src, &wrong, false)
            .unwrap_err();
        assert!(err.to_string().contains(sha), "{err}");
    }
}

//! A release's software into the node's store: the objects its signed
//! manifest lists that the store lacks, from `objects/<blake3>` beside the
//! bundle (a folder next to a bundle file, or each URL's folder on the
//! mirrors), each checked against its listed blake3 before the store names
//! it. Objects already in the store are never fetched: a release that
//! changes one binary downloads one binary.
//!
//! A download resumes (`<downloads>/<blake3>.part`) and goes on with the
//! next mirror where one fails; bytes that do not hash to the listed blake3
//! are deleted and the next mirror is asked, so one bad mirror does not
//! sink a release the others serve.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use archy_store::{Digest, Expected, Inserted, ObjectId, ObjectName, Store, StoreError};

use crate::download::{self, FetchOptions};
use crate::error::OtaError;
use crate::manifest::{Manifest, ObjectEntry};

/// Where a release's objects are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectSource {
    /// The folder holding a bundle file: objects are `<folder>/objects/<blake3>`.
    Folder(PathBuf),
    /// The folders of the bundle's URLs, tried in order:
    /// `<base>/objects/<blake3>`.
    Urls(Vec<String>),
}

impl ObjectSource {
    /// The source for a bundle file or the bundle's URLs (first the one it
    /// was named by, then its mirrors).
    pub fn of_bundle(bundle: &str, mirrors: &[String]) -> ObjectSource {
        if bundle.starts_with("http://") || bundle.starts_with("https://") {
            let mut bases: Vec<String> = Vec::new();
            for url in std::iter::once(bundle).chain(mirrors.iter().map(String::as_str)) {
                let base = url_folder(url);
                if !bases.contains(&base) {
                    bases.push(base);
                }
            }
            ObjectSource::Urls(bases)
        } else {
            let folder = match Path::new(bundle).parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            };
            ObjectSource::Folder(folder)
        }
    }

    /// The URL folders a build may fetch software from by hash (none for
    /// a folder: everything is in the store by then).
    pub fn mirrors(&self) -> Vec<String> {
        match self {
            ObjectSource::Folder(_) => Vec::new(),
            ObjectSource::Urls(bases) => bases.clone(),
        }
    }
}

/// `https://host/stable/latest.tar.gz` -> `https://host/stable`.
fn url_folder(url: &str) -> String {
    let without_query = url.split(['?', '#']).next().unwrap_or(url);
    match without_query.rsplit_once('/') {
        Some((folder, _)) if folder.contains("://") && !folder.ends_with('/') => folder.to_string(),
        _ => without_query.trim_end_matches('/').to_string(),
    }
}

/// The objects of a release a store lacks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Needed {
    /// Objects the manifest lists.
    pub listed: usize,
    /// The ones the store lacks.
    pub missing: Vec<ObjectEntry>,
    /// Distinct contents to fetch (two names of one content are one file).
    pub files: usize,
    /// Bytes to fetch, each content once.
    pub bytes: u64,
}

/// Which of `manifest`'s objects `store` lacks.
pub fn needed(store: &Store, manifest: &Manifest) -> Result<Needed, OtaError> {
    let mut needed = Needed {
        listed: manifest.objects.len(),
        ..Needed::default()
    };
    let mut contents: BTreeMap<&str, u64> = BTreeMap::new();
    for entry in &manifest.objects {
        let id = object_id(entry)?;
        let present = store.contains(&id).map_err(|e| store_error(entry, e))?;
        if !present {
            contents.insert(&entry.blake3, entry.size);
            needed.missing.push(entry.clone());
        }
    }
    needed.files = contents.len();
    needed.bytes = contents.values().sum();
    Ok(needed)
}

/// What [`fetch`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fetched {
    /// Objects put into the store.
    pub objects: usize,
    /// Bytes read from the source (downloaded, or copied from the folder);
    /// a resumed download counts what this run transferred.
    pub bytes: u64,
}

/// Fetches every object of `needed` into `store`, each checked against its
/// blake3. `downloads` keeps partial downloads for the next run.
pub fn fetch(
    store: &Store,
    needed: &Needed,
    source: &ObjectSource,
    downloads: &Path,
    opts: &FetchOptions,
) -> Result<Fetched, OtaError> {
    let mut by_content: BTreeMap<&str, Vec<&ObjectEntry>> = BTreeMap::new();
    for entry in &needed.missing {
        by_content.entry(&entry.blake3).or_default().push(entry);
    }
    let mut fetched = Fetched::default();
    for (blake3, names) in by_content {
        let transferred = match source {
            ObjectSource::Folder(folder) => {
                let path = folder.join(names[0].rel_path());
                insert_all(store, &names, &path).map_err(|why| OtaError::Object {
                    name: names[0].name.clone(),
                    blake3: blake3.to_string(),
                    attempts: vec![(path.display().to_string(), why)],
                })?;
                names[0].size
            }
            ObjectSource::Urls(bases) => fetch_one(store, &names, bases, downloads, opts)?,
        };
        fetched.objects += names.len();
        fetched.bytes += transferred;
    }
    Ok(fetched)
}

/// Downloads one content from the first base that serves the right bytes
/// and stores it under each of its names; returns the bytes transferred.
fn fetch_one(
    store: &Store,
    names: &[&ObjectEntry],
    bases: &[String],
    downloads: &Path,
    opts: &FetchOptions,
) -> Result<u64, OtaError> {
    let entry = names[0];
    fs::create_dir_all(downloads).map_err(|e| OtaError::io("create", downloads, e))?;
    let dest = downloads.join(&entry.blake3);
    let opts = FetchOptions {
        // Never more than the signed manifest says.
        max_bytes: entry.size,
        ..opts.clone()
    };
    let mut attempts = Vec::new();
    for base in bases {
        let url = format!("{}/{}", base.trim_end_matches('/'), entry.rel_path());
        let got = match download::fetch(std::slice::from_ref(&url), &dest, &opts) {
            Ok(got) => got,
            Err(OtaError::Download { attempts: failed }) => {
                attempts.extend(failed);
                continue;
            }
            Err(e) => return Err(e),
        };
        let stored = insert_all(store, names, &dest);
        // Stored, or refused: either way these bytes are done with, and a
        // wrong download must not be resumed.
        let _ = fs::remove_file(&dest);
        match stored {
            Ok(()) => return Ok(got.bytes - got.resumed_from),
            Err(why) => attempts.push((url, why)),
        }
    }
    Err(OtaError::Object {
        name: entry.name.clone(),
        blake3: entry.blake3.clone(),
        attempts,
    })
}

/// Stores `path` under every name, checked against the listed blake3.
/// The error says why in words (a wrong hash, a missing file).
fn insert_all(store: &Store, names: &[&ObjectEntry], path: &Path) -> Result<(), String> {
    for entry in names {
        let id = object_id(entry).map_err(|e| e.to_string())?;
        let expected = Expected::Blake3(id.digest());
        match store.insert_checked(id.name(), path, &expected, entry.executable()) {
            Ok((_, Inserted::Written(_) | Inserted::AlreadyPresent)) => {}
            Err(StoreError::HashMismatch { actual, .. }) => {
                return Err(format!(
                    "its content hashes to {actual}, not the blake3:{} the release lists",
                    entry.blake3
                ));
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(())
}

fn object_id(entry: &ObjectEntry) -> Result<ObjectId, OtaError> {
    let bad = |why: String| OtaError::Manifest {
        reason: format!("object {:?} {why}", entry.name),
    };
    let digest: Digest = entry
        .blake3
        .parse()
        .map_err(|e| bad(format!("has a blake3 that is not one ({e})")))?;
    let name = ObjectName::try_from(entry.name.as_str())
        .map_err(|e| bad(format!("has a name no store holds ({e})")))?;
    Ok(ObjectId::new(digest, name))
}

fn store_error(entry: &ObjectEntry, e: StoreError) -> OtaError {
    OtaError::Object {
        name: entry.name.clone(),
        blake3: entry.blake3.clone(),
        attempts: vec![("the store".to_string(), e.to_string())],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bundle_url_gives_its_folder_and_its_mirrors() {
        let source = ObjectSource::of_bundle(
            "https://a.example/stable/latest.tar.gz",
            &[
                "https://b.example/r/latest.tar.gz?x=1".to_string(),
                "https://a.example/stable/other.tar.gz".to_string(),
            ],
        );
        assert_eq!(
            source,
            ObjectSource::Urls(vec![
                "https://a.example/stable".to_string(),
                "https://b.example/r".to_string(),
            ])
        );
        assert_eq!(
            ObjectSource::of_bundle("http://h:1/r.tar.gz", &[]).mirrors(),
            vec!["http://h:1".to_string()]
        );
        assert_eq!(
            ObjectSource::of_bundle("out/r.tar.gz", &[]),
            ObjectSource::Folder(PathBuf::from("out"))
        );
        assert_eq!(
            ObjectSource::of_bundle("r.tar.gz", &[]),
            ObjectSource::Folder(PathBuf::from("."))
        );
    }
}

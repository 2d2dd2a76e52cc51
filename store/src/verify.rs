//! Checking the store: every object re-hashed, every record's objects
//! present. The result is data; the CLI decides how to show it.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde::Serialize;

use crate::Store;
use crate::atomic;
use crate::digest::Digest;
use crate::error::{Result, StoreError};
use crate::generations::{BrokenRecord, GenerationEntry};
use crate::insert::hash_file;
use crate::objects::ObjectId;

/// What [`Store::verify`] found.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct VerifyReport {
    /// How many objects were re-hashed.
    pub objects_checked: usize,
    /// Objects whose content does not hash to their name.
    pub corrupt: Vec<CorruptObject>,
    /// Objects that could not be read.
    pub unreadable: Vec<UnreadableObject>,
    /// Entries of `store/` that are not objects (bad names, directories,
    /// symlinks): archy did not put them there.
    pub unknown: Vec<PathBuf>,
    /// Temp files left by an interrupted insert: harmless, `gc` deletes them.
    pub temp_leftovers: Vec<PathBuf>,
    /// Objects a generation record lists that are not in the store.
    pub missing: Vec<MissingReference>,
    /// Generation records that cannot be parsed.
    pub broken_records: Vec<BrokenRecord>,
}

impl VerifyReport {
    /// Whether nothing is wrong (temp leftovers are not wrong, just litter).
    pub fn is_clean(&self) -> bool {
        self.corrupt.is_empty()
            && self.unreadable.is_empty()
            && self.unknown.is_empty()
            && self.missing.is_empty()
            && self.broken_records.is_empty()
    }
}

/// An object whose content changed after it was written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CorruptObject {
    /// The object's id (its file name).
    pub id: ObjectId,
    /// Its path.
    pub path: PathBuf,
    /// The digest its name promises.
    pub expected: Digest,
    /// The digest of its content now.
    pub actual: Digest,
}

/// An object that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnreadableObject {
    /// Its path.
    pub path: PathBuf,
    /// The I/O error.
    pub error: String,
}

/// An object a generation needs that is not in the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MissingReference {
    /// The generation whose record lists it.
    pub generation: u64,
    /// The missing object.
    pub id: ObjectId,
}

impl Store {
    /// Re-hashes every object (streaming) and checks every generation
    /// record's objects are present. Problems are reported, not returned as
    /// errors, so one bad object does not hide the others; an error means
    /// the store could not be examined at all.
    pub fn verify(&self) -> Result<VerifyReport> {
        let mut report = VerifyReport::default();
        self.verify_objects(&mut report)?;
        self.verify_records(&mut report)?;
        Ok(report)
    }

    /// Re-hashes every object into `report`.
    fn verify_objects(&self, report: &mut VerifyReport) -> Result<()> {
        for (file_name, path, is_file) in self.store_entries()? {
            let id = match file_name.parse::<ObjectId>() {
                Ok(id) if is_file => id,
                _ if atomic::is_temp_name(file_name.as_ref()) => {
                    report.temp_leftovers.push(path);
                    continue;
                }
                _ => {
                    report.unknown.push(path);
                    continue;
                }
            };
            report.objects_checked += 1;
            match hash_file(&path) {
                Ok(actual) if actual == id.digest() => {}
                Ok(actual) => report.corrupt.push(CorruptObject {
                    expected: id.digest(),
                    id,
                    path,
                    actual,
                }),
                Err(err) => report.unreadable.push(UnreadableObject {
                    path,
                    error: err.to_string(),
                }),
            }
        }
        Ok(())
    }

    /// Checks that every parsable record's objects exist, and notes the
    /// records that do not parse.
    fn verify_records(&self, report: &mut VerifyReport) -> Result<()> {
        for entry in self.generations()? {
            match entry {
                GenerationEntry::Valid(record) => {
                    // A set: a record listing an object twice is reported once.
                    let ids: BTreeSet<&ObjectId> = record.referenced_objects().collect();
                    for id in ids {
                        if !self.contains(id)? {
                            report.missing.push(MissingReference {
                                generation: record.number,
                                id: id.clone(),
                            });
                        }
                    }
                }
                GenerationEntry::Broken(broken) => report.broken_records.push(broken),
            }
        }
        Ok(())
    }

    /// The entries of `store/`, sorted by name so reports are stable:
    /// (file name, path, whether it is a regular file).
    pub(crate) fn store_entries(&self) -> Result<Vec<(String, PathBuf, bool)>> {
        let dir = &self.objects_dir;
        let mut entries = Vec::new();
        for entry in atomic::read_dir(dir)? {
            let entry = entry.map_err(|err| StoreError::read("list", dir, err))?;
            let is_file = entry
                .file_type()
                .map_err(|err| StoreError::read("examine", &entry.path(), err))?
                .is_file();
            // A name that is not UTF-8 cannot be an object; keep it visible.
            let name = entry.file_name().to_string_lossy().into_owned();
            entries.push((name, entry.path(), is_file));
        }
        entries.sort();
        Ok(entries)
    }
}

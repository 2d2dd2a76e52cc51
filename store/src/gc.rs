//! Garbage collection: old generation records first, then the objects no
//! remaining record lists.
//!
//! The order is what makes a crash harmless: records go before the objects
//! they list, so at every moment each remaining record's objects exist.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fs;

use serde::Serialize;

use crate::Store;
use crate::atomic;
use crate::digest::Digest;
use crate::error::{Result, StoreError};
use crate::generations::{GenerationEntry, GenerationRecord};
use crate::objects::ObjectId;
use crate::retention::{self, GcPolicy, SpaceNow};
use crate::space::FreeSpace;

/// What [`Store::gc`] did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct GcReport {
    /// Generations whose records remain.
    pub generations_kept: Vec<u64>,
    /// Generations whose records were deleted (for the count and for
    /// space).
    pub generations_deleted: Vec<u64>,
    /// Those of `generations_deleted` that went because the free space was
    /// below the policy's `min_free`.
    pub generations_deleted_for_space: Vec<u64>,
    /// Objects deleted.
    pub objects_deleted: Vec<ObjectId>,
    /// The size of the deleted objects.
    pub bytes_freed: u64,
    /// Temp files and links left by interrupted writes, deleted.
    pub temp_files_deleted: usize,
    /// Laid-out software trees no generation needs, deleted.
    pub trees_deleted: usize,
    /// The generations whose data snapshots were deleted with them.
    pub snapshots_deleted: Vec<u64>,
    /// Broken records that stopped GC from deleting any object: what they
    /// list cannot be known, so every object is kept until they are fixed
    /// or deleted.
    pub objects_kept_for_broken_records: Vec<u64>,
    /// The free space of the store's file system before and after (`None`:
    /// it could not be measured).
    pub free_before: Option<u64>,
    pub free_after: Option<u64>,
    /// The free space the policy asked for (0: none).
    pub min_free: u64,
}

impl GcReport {
    /// Whether the free space is still below what the policy asked for,
    /// with every generation that may go gone.
    pub fn short_of_min_free(&self) -> bool {
        self.min_free > 0 && self.free_after.is_some_and(|free| free < self.min_free)
    }
}

impl Store {
    /// Keeps the newest `keep` generations, plus `current`, `previous` and
    /// `last-good` whatever their age (even with `keep == 0`) and any record
    /// that cannot be parsed; deletes the other records, then every object
    /// no remaining record lists, then leftover temp files. Call it holding
    /// the [`StateLock`](crate::StateLock).
    pub fn gc(&self, keep: usize) -> Result<GcReport> {
        self.gc_pinned(keep, &BTreeSet::new())
    }

    /// [`Store::gc`], keeping the `pinned` generations as well: those an
    /// interrupted switch names (its journal's from, to and back_to), which
    /// its recovery needs.
    pub fn gc_pinned(&self, keep: usize, pinned: &BTreeSet<u64>) -> Result<GcReport> {
        self.gc_with(GcPolicy::keep(keep), pinned)
    }

    /// GC by `policy` (see [`crate::retention`]): the count, then, when the
    /// store's file system has less than `policy.min_free` free, the
    /// oldest further generations down to the protected ones (`current`,
    /// `previous`, `last-good` and the `pinned`).
    pub fn gc_with(&self, policy: GcPolicy, pinned: &BTreeSet<u64>) -> Result<GcReport> {
        let space = self.free_space().ok();
        let mut report = GcReport {
            free_before: space.map(|s| s.available),
            min_free: policy.min_free,
            ..GcReport::default()
        };
        self.delete_old_records(policy, space, pinned, &mut report)?;
        self.delete_unlisted_objects(&mut report)?;
        self.delete_temp_leftovers(&mut report)?;
        self.delete_orphan_snapshots(&mut report)?;
        report.free_after = self.free_space().ok().map(|s| s.available);
        Ok(report)
    }

    /// The first half of GC: deletes the records not kept.
    fn delete_old_records(
        &self,
        policy: GcPolicy,
        space: Option<FreeSpace>,
        pinned: &BTreeSet<u64>,
        report: &mut GcReport,
    ) -> Result<()> {
        let entries = self.generations()?;
        let records: Vec<&GenerationRecord> =
            entries.iter().filter_map(GenerationEntry::record).collect();
        let broken: BTreeSet<u64> = entries
            .iter()
            .filter(|entry| entry.record().is_none())
            .map(GenerationEntry::number)
            .collect();
        let mut protected = self.linked_generations()?;
        protected.extend(pinned);
        // Measuring every object costs a stat each: only when the
        // free-space trigger can fire.
        let sizes = match space {
            Some(space) if space.available < policy.min_free => Some(self.object_sizes(space)?),
            _ => None,
        };
        let now = space.zip(sizes.as_ref()).map(|(space, sizes)| SpaceNow {
            free: space.available,
            sizes,
        });
        let retention = retention::choose(&records, &broken, &protected, policy, now);
        report.generations_kept = retention.kept.clone();
        report.generations_deleted = retention.deleted();
        report.generations_deleted_for_space = retention.for_space.clone();
        for &number in &report.generations_deleted {
            // Each deletion is atomic; a crash between two leaves some
            // old records, which the next GC deletes.
            atomic::remove_if_present(&self.generation_path(number))?;
        }
        if !report.generations_deleted.is_empty() {
            atomic::sync_dir(&self.generations_dir)?;
        }
        Ok(())
    }

    /// `current`, `previous` and `last-good`: never deleted.
    fn linked_generations(&self) -> Result<BTreeSet<u64>> {
        Ok([self.current()?, self.last_good()?, self.previous()?]
            .into_iter()
            .flatten()
            .collect())
    }

    /// What each object of the store takes on its file system.
    fn object_sizes(&self, space: FreeSpace) -> Result<HashMap<ObjectId, u64>> {
        let mut sizes = HashMap::new();
        for (name, path, is_file) in self.store_entries()? {
            let Ok(id) = name.parse::<ObjectId>() else {
                continue;
            };
            if !is_file {
                continue;
            }
            let len = fs::symlink_metadata(&path)
                .map_err(|err| StoreError::read("examine", &path, err))?
                .len();
            sizes.insert(id, space.on_disk(len));
        }
        Ok(sizes)
    }

    /// The second half of GC: deletes every object that no record on disk
    /// lists. Reads the records again rather than trusting the first half,
    /// so the invariant is checked against what is really there.
    fn delete_unlisted_objects(&self, report: &mut GcReport) -> Result<()> {
        let entries = self.generations()?;
        let broken: Vec<u64> = entries
            .iter()
            .filter(|entry| entry.record().is_none())
            .map(GenerationEntry::number)
            .collect();
        if !broken.is_empty() {
            report.objects_kept_for_broken_records = broken;
            return Ok(());
        }
        let mut listed: HashSet<String> = entries
            .iter()
            .filter_map(GenerationEntry::record)
            .flat_map(|record| record.referenced_objects())
            .map(ToString::to_string)
            .collect();
        // The archy that recovery runs (`<state>/bin/archy`) stays, even
        // when no generation lists it (it ran before archy kept itself in
        // the store).
        if let Some(object) = self.recovery_binary() {
            listed.insert(object);
        }
        for (name, path, is_file) in self.store_entries()? {
            // Only well-named regular files are objects; anything else in
            // store/ was not put there by archy and is left alone.
            let Ok(id) = name.parse::<ObjectId>() else {
                continue;
            };
            if !is_file || listed.contains(&name) {
                continue;
            }
            let size = fs::symlink_metadata(&path)
                .map_err(|err| StoreError::read("examine", &path, err))?
                .len();
            if atomic::remove_if_present(&path)? {
                report.objects_deleted.push(id);
                report.bytes_freed += size;
            }
        }
        if !report.objects_deleted.is_empty() {
            atomic::sync_dir(&self.objects_dir)?;
        }
        self.delete_unlisted_trees(&listed, report)
    }

    /// Deletes the data snapshots (`<state>/snapshots/<N>`) of generations
    /// that are gone: a snapshot lives as long as the generation whose
    /// switch took it, the one a rollback restores it for.
    fn delete_orphan_snapshots(&self, report: &mut GcReport) -> Result<()> {
        let snapshots = self.state_dir.snapshots();
        let Ok(dir) = fs::read_dir(&snapshots) else {
            return Ok(());
        };
        let alive: BTreeSet<u64> = self
            .generations()?
            .iter()
            .map(GenerationEntry::number)
            .collect();
        for entry in dir.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Ok(number) = name.parse::<u64>() else {
                continue;
            };
            if !alive.contains(&number) {
                let path = entry.path();
                fs::remove_dir_all(&path).map_err(|err| StoreError::write("delete", &path, err))?;
                report.snapshots_deleted.push(number);
            }
        }
        Ok(())
    }

    /// The object `<state>/bin/archy` links to, if it is one.
    fn recovery_binary(&self) -> Option<String> {
        let target = fs::read_link(self.state_dir.recovery_binary()).ok()?;
        let name = target.file_name()?.to_str()?.to_owned();
        name.parse::<ObjectId>().ok().map(|_| name)
    }

    /// Deletes the laid-out trees (`<state>/trees/<hash>`) whose manifest
    /// no record lists any more, and layouts a crash left half-made. Their
    /// files are hard links to objects: the space comes back only when
    /// both are gone.
    fn delete_unlisted_trees(&self, listed: &HashSet<String>, report: &mut GcReport) -> Result<()> {
        let trees = self.state_dir.trees();
        let Ok(dir) = fs::read_dir(&trees) else {
            return Ok(());
        };
        for entry in dir.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let unlisted =
                name.parse::<Digest>().is_ok() && !listed.contains(&format!("{name}-tree"));
            if unlisted || name.starts_with(atomic::TEMP_PREFIX) {
                let path = entry.path();
                fs::remove_dir_all(&path).map_err(|err| StoreError::write("delete", &path, err))?;
                report.trees_deleted += 1;
            }
        }
        Ok(())
    }

    /// Deletes temp files and links left by writes a crash interrupted.
    fn delete_temp_leftovers(&self, report: &mut GcReport) -> Result<()> {
        for dir in [
            &self.objects_dir,
            &self.generations_dir,
            self.state_dir.path(),
        ] {
            report.temp_files_deleted += atomic::remove_temp_leftovers(dir)?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::StateDir;
    use crate::digest::Digest;
    use crate::generations::GenerationDraft;
    use crate::objects::ObjectName;

    /// Records a generation with one object of its own (`content`) plus a
    /// graph object.
    fn build(store: &Store, content: &str) -> (u64, ObjectId) {
        let name = ObjectName::try_from("file.conf").unwrap();
        let (object, _) = store.insert_bytes(&name, content.as_bytes()).unwrap();
        let graph_name = ObjectName::try_from("graph.json").unwrap();
        let (graph, _) = store
            .insert_bytes(&graph_name, format!("graph of {content}").as_bytes())
            .unwrap();
        let record = store
            .record_generation(GenerationDraft {
                root: Digest::of(content.as_bytes()).to_string(),
                source: "test".to_owned(),
                facts: BTreeMap::new(),
                objects: vec![object.clone()],
                graph,
            })
            .unwrap();
        (record.number, object)
    }

    #[test]
    fn a_crash_between_the_two_halves_leaves_a_valid_store_that_gc_finishes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&StateDir::new(dir.path())).unwrap();
        let (_, old_object) = build(&store, "old");
        let (newest, new_object) = build(&store, "new");

        // "Crash" after deleting the records, before deleting any object.
        let mut first = GcReport::default();
        store
            .delete_old_records(GcPolicy::keep(1), None, &BTreeSet::new(), &mut first)
            .unwrap();
        assert_eq!(first.generations_deleted, vec![1]);
        assert!(
            store.contains(&old_object).unwrap(),
            "objects must outlive the crash"
        );
        assert!(store.verify().unwrap().is_clean());
        assert!(store.generation(newest).is_ok());

        let second = store.gc(1).unwrap();
        assert!(second.generations_deleted.is_empty());
        assert_eq!(
            second.objects_deleted.len(),
            2,
            "the old object and the old graph"
        );
        assert!(!store.contains(&old_object).unwrap());
        assert!(store.contains(&new_object).unwrap());
        assert!(store.verify().unwrap().is_clean());
    }
}

//! Which generations GC deletes: the policy, pure, so that it is tested
//! with any free-space figure without filling a disk.
//!
//! Two triggers, applied in order:
//!
//! 1. **Count**: the newest `keep` generations stay, older ones go.
//! 2. **Free space**: while the store's file system would still have less
//!    than `min_free` free after the count's deletions, the oldest of the
//!    remaining generations go too, one at a time, each freeing the objects
//!    no remaining generation shares.
//!
//! Never deleted by either: the protected generations (`current`,
//! `previous`, `last-good`, and those an interrupted switch's journal
//! names, which its recovery needs) and broken records (what they list
//! cannot be known; GC deletes no object while one exists, so deleting
//! records for space would free nothing either).

use std::collections::{BTreeSet, HashMap};

use crate::generations::GenerationRecord;
use crate::objects::ObjectId;

/// How many generations to keep and how much free space to want.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GcPolicy {
    /// The newest generations kept whatever the free space.
    pub keep: usize,
    /// The free bytes wanted on the store's file system; 0: no free-space
    /// trigger.
    pub min_free: u64,
}

impl GcPolicy {
    /// Keep `keep` generations, no free-space trigger.
    pub fn keep(keep: usize) -> Self {
        Self { keep, min_free: 0 }
    }
}

/// What the free-space trigger is decided from: the free bytes now and
/// what each object in the store takes on disk (objects no record lists
/// too: GC deletes those whatever is decided here).
#[derive(Debug, Clone, Copy)]
pub struct SpaceNow<'a> {
    pub free: u64,
    pub sizes: &'a HashMap<ObjectId, u64>,
}

/// The policy's verdict.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Retention {
    /// Generations kept, ascending.
    pub kept: Vec<u64>,
    /// Deleted for being older than the newest `keep`.
    pub beyond_count: Vec<u64>,
    /// Deleted, oldest first, to reach `min_free`.
    pub for_space: Vec<u64>,
    /// The free space expected once the deletions are done (`None`: the
    /// free-space trigger was not asked).
    pub expected_free: Option<u64>,
}

impl Retention {
    /// Every generation to delete, ascending.
    pub fn deleted(&self) -> Vec<u64> {
        let mut all: Vec<u64> = self
            .beyond_count
            .iter()
            .chain(&self.for_space)
            .copied()
            .collect();
        all.sort_unstable();
        all
    }
}

/// Decides which generations to delete. `records` are the valid records,
/// oldest first; `broken` the numbers of records that cannot be read;
/// `protected` what must stay whatever the policy says; `space`, when the
/// free-space trigger applies (a `min_free` above 0 and the free space
/// known).
pub fn choose(
    records: &[&GenerationRecord],
    broken: &BTreeSet<u64>,
    protected: &BTreeSet<u64>,
    policy: GcPolicy,
    space: Option<SpaceNow<'_>>,
) -> Retention {
    let newest: BTreeSet<u64> = records
        .iter()
        .rev()
        .take(policy.keep)
        .map(|record| record.number)
        .collect();
    let mut retention = Retention::default();
    let mut remaining: Vec<&GenerationRecord> = Vec::new();
    for record in records {
        if newest.contains(&record.number) || protected.contains(&record.number) {
            remaining.push(record);
        } else {
            retention.beyond_count.push(record.number);
        }
    }
    if let Some(space) = space.filter(|_| policy.min_free > 0 && broken.is_empty()) {
        let (for_space, expected) = free_up(&mut remaining, protected, policy.min_free, space);
        retention.for_space = for_space;
        retention.expected_free = Some(expected);
    }
    retention.kept = remaining
        .iter()
        .map(|record| record.number)
        .chain(broken.iter().copied())
        .collect();
    retention.kept.sort_unstable();
    retention
}

/// Takes the oldest unprotected generations out of `remaining` until the
/// free space expected reaches `min_free` (or none is left to take).
/// Returns what it took and the free space expected after.
fn free_up(
    remaining: &mut Vec<&GenerationRecord>,
    protected: &BTreeSet<u64>,
    min_free: u64,
    space: SpaceNow<'_>,
) -> (Vec<u64>, u64) {
    let mut users: HashMap<&ObjectId, usize> = HashMap::new();
    for record in remaining.iter() {
        for id in record.referenced_objects() {
            *users.entry(id).or_default() += 1;
        }
    }
    // Objects no remaining record lists go whatever else is decided.
    let mut expected = space.free.saturating_add(
        space
            .sizes
            .iter()
            .filter(|(id, _)| !users.contains_key(id))
            .map(|(_, size)| size)
            .sum(),
    );
    let mut taken = Vec::new();
    let mut index = 0;
    while expected < min_free && index < remaining.len() {
        let record = remaining[index];
        if protected.contains(&record.number) {
            index += 1;
            continue;
        }
        remaining.remove(index);
        taken.push(record.number);
        for id in record.referenced_objects() {
            if let Some(count) = users.get_mut(id) {
                *count -= 1;
                if *count == 0 {
                    expected = expected.saturating_add(space.sizes.get(id).copied().unwrap_or(0));
                }
            }
        }
    }
    (taken, expected)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::digest::Digest;
    use crate::generations::Outcome;
    use crate::objects::ObjectName;

    fn object(label: &str) -> ObjectId {
        ObjectId::of(&ObjectName::try_from("o").unwrap(), label.as_bytes())
    }

    /// Generation `number` with its own object `own-N` (and graph), plus
    /// the `shared` object every generation has.
    fn record(number: u64) -> GenerationRecord {
        GenerationRecord {
            number,
            root: Digest::of(number.to_string().as_bytes()).to_string(),
            created: String::new(),
            source: String::new(),
            facts: BTreeMap::new(),
            outcome: Outcome::Good,
            outcome_reason: None,
            objects: vec![object(&format!("own-{number}")), object("shared")],
            graph: object(&format!("graph-{number}")),
        }
    }

    /// Every object of generations 1..=n: own objects 100 bytes, graphs 10,
    /// the shared one 1000.
    fn sizes(n: u64) -> HashMap<ObjectId, u64> {
        let mut sizes = HashMap::from([(object("shared"), 1000)]);
        for number in 1..=n {
            sizes.insert(object(&format!("own-{number}")), 100);
            sizes.insert(object(&format!("graph-{number}")), 10);
        }
        sizes
    }

    fn numbers(n: u64) -> Vec<GenerationRecord> {
        (1..=n).map(record).collect()
    }

    fn refs(records: &[GenerationRecord]) -> Vec<&GenerationRecord> {
        records.iter().collect()
    }

    fn set(numbers: &[u64]) -> BTreeSet<u64> {
        numbers.iter().copied().collect()
    }

    #[test]
    fn the_count_keeps_the_newest_and_the_protected() {
        let records = numbers(14);
        let retention = choose(
            &refs(&records),
            &BTreeSet::new(),
            // current 14, previous 2, last-good 1
            &set(&[14, 2, 1]),
            GcPolicy::keep(10),
            None,
        );
        assert_eq!(retention.beyond_count, [3, 4]);
        assert!(retention.for_space.is_empty());
        assert_eq!(retention.kept, [1, 2, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]);
        assert_eq!(retention.expected_free, None);
    }

    #[test]
    fn keep_zero_leaves_only_the_protected() {
        let records = numbers(5);
        let retention = choose(
            &refs(&records),
            &BTreeSet::new(),
            &set(&[5, 4, 3]),
            GcPolicy::keep(0),
            None,
        );
        assert_eq!(retention.deleted(), [1, 2]);
        assert_eq!(retention.kept, [3, 4, 5]);
    }

    #[test]
    fn enough_free_space_deletes_nothing_beyond_the_count() {
        let records = numbers(6);
        let sizes = sizes(6);
        let retention = choose(
            &refs(&records),
            &BTreeSet::new(),
            &set(&[6, 5, 6]),
            GcPolicy {
                keep: 4,
                min_free: 1000,
            },
            Some(SpaceNow {
                free: 5000,
                sizes: &sizes,
            }),
        );
        assert_eq!(retention.beyond_count, [1, 2]);
        assert!(retention.for_space.is_empty());
        // 5000 free, plus what generations 1 and 2 alone had (2 x 110).
        assert_eq!(retention.expected_free, Some(5220));
    }

    #[test]
    fn low_free_space_deletes_the_oldest_until_it_is_enough() {
        let records = numbers(10);
        let sizes = sizes(10);
        let retention = choose(
            &refs(&records),
            &BTreeSet::new(),
            // current 10, previous 9, last-good 3 (an old good one)
            &set(&[10, 9, 3]),
            GcPolicy {
                keep: 8,
                min_free: 600,
            },
            Some(SpaceNow {
                free: 100,
                sizes: &sizes,
            }),
        );
        // The count takes 1 and 2 (+220): 320. Then 4, 5 and 6 (+110 each,
        // 3 is protected): 430, 540, 650 >= 600.
        assert_eq!(retention.beyond_count, [1, 2]);
        assert_eq!(retention.for_space, [4, 5, 6]);
        assert_eq!(retention.kept, [3, 7, 8, 9, 10]);
        assert_eq!(retention.expected_free, Some(650));
    }

    #[test]
    fn low_free_space_stops_at_the_protected_generations() {
        let records = numbers(6);
        let sizes = sizes(6);
        let retention = choose(
            &refs(&records),
            &BTreeSet::new(),
            &set(&[6, 5, 4]),
            GcPolicy {
                keep: 10,
                min_free: 1_000_000,
            },
            Some(SpaceNow {
                free: 0,
                sizes: &sizes,
            }),
        );
        assert!(retention.beyond_count.is_empty());
        assert_eq!(retention.for_space, [1, 2, 3]);
        assert_eq!(retention.kept, [4, 5, 6]);
        // The shared object stays: the protected generations list it.
        assert_eq!(retention.expected_free, Some(330));
    }

    #[test]
    fn objects_no_record_lists_count_as_freed_before_any_generation_goes() {
        let records = numbers(3);
        let mut sizes = sizes(3);
        sizes.insert(object("left by a failed build"), 500);
        let retention = choose(
            &refs(&records),
            &BTreeSet::new(),
            &set(&[3, 2]),
            GcPolicy {
                keep: 10,
                min_free: 400,
            },
            Some(SpaceNow {
                free: 0,
                sizes: &sizes,
            }),
        );
        assert!(retention.deleted().is_empty());
        assert_eq!(retention.expected_free, Some(500));
    }

    #[test]
    fn a_broken_record_stops_the_free_space_trigger_and_is_kept() {
        let records = numbers(4);
        let sizes = sizes(4);
        let retention = choose(
            &refs(&records),
            &set(&[5]),
            &set(&[4]),
            GcPolicy {
                keep: 2,
                min_free: 1_000_000,
            },
            Some(SpaceNow {
                free: 0,
                sizes: &sizes,
            }),
        );
        assert_eq!(retention.beyond_count, [1, 2]);
        assert!(retention.for_space.is_empty());
        assert_eq!(retention.kept, [3, 4, 5]);
    }

    #[test]
    fn a_protected_generation_older_than_the_count_stays() {
        let records = numbers(12);
        let retention = choose(
            &refs(&records),
            &BTreeSet::new(),
            // pinned by a journal: 1
            &set(&[12, 11, 1]),
            GcPolicy::keep(3),
            None,
        );
        assert_eq!(retention.beyond_count, (2..=9).collect::<Vec<_>>());
        assert_eq!(retention.kept, [1, 10, 11, 12]);
    }
}

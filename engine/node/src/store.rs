//! The store and its generations as an operator sees them: the listing
//! (`archy generations`) and the check of every object (`archy store verify`). Listing and checking only read:
//! they take no lock and create nothing.

use archy_build::LoadError;
use archy_store::{GenerationEntry, Store, StoreError, VerifyReport};

use crate::{Node, NodeError};

/// What `current` and `last-good` point at.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Links {
    pub current: Option<u64>,
    pub last_good: Option<u64>,
}

impl Links {
    /// `current`, `last good`, both or neither, for generation `number`.
    pub fn markers(&self, number: u64) -> Vec<&'static str> {
        let mut markers = Vec::new();
        if self.current == Some(number) {
            markers.push("current");
        }
        if self.last_good == Some(number) {
            markers.push("last good");
        }
        markers
    }
}

/// The generations and the two links, as read from the state dir.
#[derive(Debug, Default)]
pub struct Listing {
    pub entries: Vec<GenerationEntry>,
    pub links: Links,
    /// Links that exist but cannot be read: worth a warning, not a failure,
    /// since the listing is how an operator finds a generation to fix them.
    pub link_problems: Vec<String>,
}

impl Listing {
    /// The broken records and unreadable links, each with what to do.
    pub fn warnings(&self) -> Vec<String> {
        let broken = self.entries.iter().filter_map(|entry| match entry {
            GenerationEntry::Broken(broken) => Some(StoreError::from(broken.clone()).to_string()),
            GenerationEntry::Valid(_) => None,
        });
        broken.chain(self.link_problems.iter().cloned()).collect()
    }
}

/// What `archy store verify` found.
#[derive(Debug)]
pub struct StoreCheck {
    pub report: VerifyReport,
    /// Generations whose records parse but whose graph cannot be loaded
    /// (an object missing, corrupt or not what the graph says): a rollback
    /// to them would fail, which is what an operator needs to know.
    pub unloadable: Vec<(u64, LoadError)>,
    pub objects_dir: std::path::PathBuf,
    state_dir: std::path::PathBuf,
}

impl StoreCheck {
    /// A check that found problems is [`NodeError::StoreDamaged`].
    pub fn verdict(&self) -> Result<(), NodeError> {
        let problems = self.problems();
        if problems.is_empty() {
            return Ok(());
        }
        Err(NodeError::StoreDamaged {
            state_dir: self.state_dir.clone(),
            problems,
        })
    }

    /// What is wrong, by kind (`1 corrupt object`), empty if nothing is.
    pub fn problems(&self) -> Vec<String> {
        let r = &self.report;
        [
            (r.corrupt.len(), "corrupt object", "corrupt objects"),
            (
                r.unreadable.len(),
                "unreadable object",
                "unreadable objects",
            ),
            (
                r.unknown.len(),
                "entry that is not an object",
                "entries that are not objects",
            ),
            (r.missing.len(), "missing object", "missing objects"),
            (
                r.broken_records.len(),
                "broken generation record",
                "broken generation records",
            ),
            (
                self.unloadable.len(),
                "generation that cannot be loaded",
                "generations that cannot be loaded",
            ),
        ]
        .into_iter()
        .filter(|(n, _, _)| *n > 0)
        .map(|(n, one, many)| format!("{n} {}", if n == 1 { one } else { many }))
        .collect()
    }
}

impl Node {
    /// Every generation and the links. A state dir without generations is
    /// an empty listing, and is not created: listing must not write.
    pub fn generations(&self) -> Result<Listing, NodeError> {
        if !self.state_dir.generations().is_dir() {
            return Ok(Listing::default());
        }
        let store = Store::open(&self.state_dir)?;
        let mut problems = Vec::new();
        let mut read = |link: Result<Option<u64>, StoreError>| {
            link.unwrap_or_else(|err| {
                problems.push(err.to_string());
                None
            })
        };
        let links = Links {
            current: read(store.current()),
            last_good: read(store.last_good()),
        };
        Ok(Listing {
            entries: store.generations()?,
            links,
            link_problems: problems,
        })
    }

    /// Re-hashes every object and loads every generation; `None` when there
    /// is no store yet. Takes no lock: it only reads, and must work on a
    /// store whose disk has gone read-only.
    pub fn verify_store(&self) -> Result<Option<StoreCheck>, NodeError> {
        // Opening creates a missing store; checking must not write.
        if !self.state_dir.objects().is_dir() {
            return Ok(None);
        }
        let store = Store::open(&self.state_dir)?;
        let report = store.verify()?;
        let mut unloadable = Vec::new();
        for entry in store.generations()? {
            // A broken record is in the verify report already.
            let Some(record) = entry.record() else {
                continue;
            };
            if let Err(err) = archy_build::load(&store, record.number) {
                unloadable.push((record.number, err));
            }
        }
        Ok(Some(StoreCheck {
            report,
            unloadable,
            objects_dir: store.objects_dir().to_owned(),
            state_dir: store.state_dir().path().to_owned(),
        }))
    }
}

//! Garbage collection: `archy gc`, and the GC every good switch ends with.
//!
//! How many generations to keep and how much free space to want are the
//! node's own settings: `archy::units(#{ gc: #{ keep: 10, min_free: "20G" } })`
//! in the node description writes them to `/etc/archy/gc.json`, and GC reads
//! that file *from the generation's graph* (the store), never from the
//! disk. So the GC after a switch follows the generation just switched to
//! (a release that changes the settings is collected by its own settings,
//! and a file edited by hand cannot change what is deleted), `archy gc`
//! follows the current one, and a node without the file gets the defaults.
//! A file in the description rather than a CLI flag of every switch keeps
//! one source for the settings, covered by the generation's hash like the
//! rest of the node.

use std::collections::BTreeSet;

use archy_graph::{Graph, Resource};
use archy_store::{GcPolicy, GcReport};
use archy_switch::journal::Journal;
use serde::Deserialize;

use crate::store::Links;
use crate::{NodeError, Session};

/// Where `archy::units` puts the GC settings.
pub const SETTINGS_PATH: &str = "/etc/archy/gc.json";

/// How many generations GC keeps unless the node says otherwise: enough to
/// roll back over a few releases, few enough that software in the store
/// does not fill a disk that is mostly blockchain.
pub const DEFAULT_KEEP: usize = 10;

/// A node's GC settings, as `/etc/archy/gc.json` holds them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GcSettings {
    /// The newest generations kept.
    #[serde(default = "default_keep")]
    pub keep: usize,
    /// The free bytes wanted on the store's file system; below it, older
    /// generations go down to current, previous and last-good. 0: no such
    /// trigger (the default: how much a disk should keep free is the
    /// node's to say).
    #[serde(default)]
    pub min_free_bytes: u64,
}

fn default_keep() -> usize {
    DEFAULT_KEEP
}

impl Default for GcSettings {
    fn default() -> Self {
        Self {
            keep: DEFAULT_KEEP,
            min_free_bytes: 0,
        }
    }
}

impl GcSettings {
    /// The settings `graph` declares, the defaults if it has none; an
    /// error (in words) if its file is not what `archy::units` writes.
    pub fn of(graph: &Graph) -> Result<GcSettings, String> {
        let file = graph.nodes.iter().find_map(|node| match &node.resource {
            Resource::File(file) if file.path.as_str() == SETTINGS_PATH => Some(file),
            _ => None,
        });
        let Some(file) = file else {
            return Ok(GcSettings::default());
        };
        let text = graph
            .blobs
            .get(&file.content)
            .ok_or_else(|| format!("the generation has no text for {SETTINGS_PATH}"))?;
        serde_json::from_str(text).map_err(|err| {
            format!(
                "{SETTINGS_PATH} is not GC settings ({err}); let archy::units(#{{ gc: #{{ .. }} }}) \
                 write it"
            )
        })
    }

    pub fn policy(self) -> GcPolicy {
        GcPolicy {
            keep: self.keep,
            min_free: self.min_free_bytes,
        }
    }
}

/// What the GC after a good switch did. Never a reason to fail the
/// switch: the node runs the new generation whatever GC says.
#[derive(Debug)]
pub enum SwitchGc {
    /// GC ran.
    Done { report: Box<GcReport>, links: Links },
    /// GC could not run or stopped halfway (every step is atomic, so the
    /// store is valid); the switch stands. What went wrong, in words.
    Failed(String),
}

impl Session<'_> {
    /// `archy gc`: GC by the current generation's settings, `keep`
    /// replacing its count when given. Deletes the generations beyond the
    /// count (never `current`, `previous` or `last-good`), the oldest
    /// further ones while the store's file system has less than the
    /// settings' free space, then the objects no kept generation needs.
    ///
    /// A switch journal still there (a recovery that could not finish)
    /// pins every generation it names: recovering needs them.
    pub fn gc(&self, keep: Option<usize>) -> Result<(GcReport, Links), NodeError> {
        let mut settings = match self.store.current()? {
            Some(current) => self.settings_of(current).unwrap_or_else(|why| {
                tracing::warn!("gc uses its defaults: {why}");
                GcSettings::default()
            }),
            None => GcSettings::default(),
        };
        if let Some(keep) = keep {
            settings.keep = keep;
        }
        self.gc_by(settings)
    }

    /// The GC every good switch ends with (switch, rollback, OTA apply),
    /// by the settings of `generation`, the one just switched to. An
    /// error is returned as [`SwitchGc::Failed`], not raised: the switch
    /// was committed before GC began.
    pub(crate) fn gc_after_switch(&self, generation: u64) -> SwitchGc {
        let result = self
            .settings_of(generation)
            .and_then(|settings| self.gc_by(settings).map_err(|err| err.to_string()));
        match result {
            Ok((report, links)) => SwitchGc::Done {
                report: Box::new(report),
                links,
            },
            Err(why) => {
                tracing::warn!("gc after the switch to generation {generation} failed: {why}");
                SwitchGc::Failed(why)
            }
        }
    }

    /// The GC settings generation `generation` declares.
    fn settings_of(&self, generation: u64) -> Result<GcSettings, String> {
        let loaded = archy_build::load(&self.store, generation)
            .map_err(|err| format!("cannot load generation {generation}: {err}"))?;
        GcSettings::of(&loaded.graph)
    }

    /// GC by `settings`, keeping what a switch journal names.
    fn gc_by(&self, settings: GcSettings) -> Result<(GcReport, Links), NodeError> {
        let links = Links {
            current: self.store.current()?,
            last_good: self.store.last_good()?,
        };
        let pinned: BTreeSet<u64> = Journal::load(self.state_dir())
            .map_err(NodeError::recovery)?
            .map(|j| j.generations().collect())
            .unwrap_or_default();
        if !pinned.is_empty() {
            tracing::warn!(
                ?pinned,
                "an interrupted switch is not recovered yet: gc keeps the generations it names"
            );
        }
        Ok((self.store.gc_with(settings.policy(), &pinned)?, links))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_default_field_by_field_and_refuse_unknown_ones() {
        let parse = |s: &str| serde_json::from_str::<GcSettings>(s);
        assert_eq!(parse("{}").ok(), Some(GcSettings::default()));
        assert_eq!(
            parse(r#"{"keep": 3, "min_free_bytes": 1024}"#).ok(),
            Some(GcSettings {
                keep: 3,
                min_free_bytes: 1024
            })
        );
        assert!(parse(r#"{"keep": 3, "min_free": "20G"}"#).is_err());
        assert!(parse(r#"{"keep": -1}"#).is_err());
    }
}

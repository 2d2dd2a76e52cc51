//! The node's record of its releases, `<state>/ota.json`: which release is
//! installed, which generation each release became, the release a switch
//! is under way for, the releases that failed here (never tried again) and
//! whether the operator holds updates. Written atomically and only under
//! the state lock, like everything else in the state dir.

use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;
use std::time::SystemTime;

use archy_store::versioned::{self, FIRST_FORMAT, RecordError};
use archy_store::{NewerFormat, StateDir, VersionedRecord};
use semver::Version;
use serde::{Deserialize, Serialize};

/// How many interrupted attempts (archy killed, power cut) a release gets
/// before it counts as failed: one interruption is bad luck, two in a row
/// look like a release that brings the node down.
pub const MAX_INTERRUPTED: u32 = 2;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtaState {
    /// The last release that passed its health gate here.
    #[serde(default)]
    pub installed: Option<Installed>,
    /// Which release each generation was built from.
    #[serde(default)]
    pub generations: BTreeMap<u64, Version>,
    /// A release whose switch has begun and not ended.
    #[serde(default)]
    pub pending: Option<Pending>,
    /// Releases that failed here: never applied again.
    #[serde(default)]
    pub failed: Vec<FailedRelease>,
    /// Interrupted attempts per release version.
    #[serde(default)]
    pub interrupted: BTreeMap<String, u32>,
    /// Updates the timer must not apply, until the operator lifts it.
    #[serde(default)]
    pub hold: Option<Hold>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Installed {
    pub version: Version,
    pub generation: u64,
    /// blake3 of the bundle, hex.
    pub bundle: String,
    /// RFC 3339, UTC.
    pub at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    pub version: Version,
    pub bundle: String,
    /// The generation the release built; none while it is still being
    /// unpacked and built.
    pub generation: Option<u64>,
    pub started: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedRelease {
    pub version: Version,
    pub bundle: String,
    pub reason: String,
    pub at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    pub reason: String,
    pub at: String,
}

/// Why the state could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error(
        "{path} is damaged ({source}); move it away to start the release record afresh (the installed generations are unaffected)"
    )]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    /// A newer archy wrote the record.
    #[error(transparent)]
    Newer(#[from] NewerFormat),
}

/// Format 1 is the record of the archy that first took releases.
impl VersionedRecord for OtaState {
    const WHAT: &'static str = "the release record";
    const FORMAT: u32 = FIRST_FORMAT;
}

/// What a node would do with a release, before anything is unpacked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Newer than what is installed (or nothing is): apply it.
    Apply { installed: Option<Version> },
    /// The same version is installed: nothing to do.
    Installed,
    /// Older than the installed release, and no `--allow-downgrade`.
    Downgrade { installed: Version },
    /// It failed here before.
    FailedBefore(FailedRelease),
    /// It needs a newer archy than this one.
    NeedsArchy { needs: Version, have: Version },
    /// It is published for another channel than the node follows.
    OtherChannel { release: String, node: String },
}

/// What a release asks of the node, from its signed description.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    pub version: &'a Version,
    pub channel: &'a str,
    pub min_archy: &'a Version,
}

/// How the node is set up to take releases.
#[derive(Debug, Clone, Copy)]
pub struct Policy<'a> {
    /// This archy's version.
    pub archy: &'a Version,
    /// The channel the node follows; none takes any.
    pub channel: Option<&'a str>,
    pub allow_downgrade: bool,
}

/// Now, as the records write it.
pub fn now() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

impl OtaState {
    /// The record, or an empty one on a node that never took a release.
    pub fn load(state_dir: &StateDir) -> Result<Self, StateError> {
        let path = state_dir.ota_record();
        match versioned::read(&path) {
            Ok(record) => Ok(record.unwrap_or_default()),
            Err(RecordError::Io(source)) => Err(StateError::Read { path, source }),
            Err(RecordError::Parse(source)) => Err(StateError::Parse { path, source }),
            Err(RecordError::Newer(newer)) => Err(newer.into()),
        }
    }

    /// Writes the record atomically: a crash leaves the old one or the new.
    pub fn save(&self, state_dir: &StateDir) -> Result<(), StateError> {
        let path = state_dir.ota_record();
        versioned::write(&path, self, 0o600).map_err(|source| StateError::Write { path, source })
    }

    /// The release the node runs: the one generation `current` was built
    /// from, or (after a switch or rollback by hand to a generation no
    /// release made) the last one installed.
    pub fn running(&self, current: Option<u64>) -> Option<&Version> {
        current
            .and_then(|g| self.generations.get(&g))
            .or(self.installed.as_ref().map(|i| &i.version))
    }

    pub fn failed(&self, version: &Version) -> Option<&FailedRelease> {
        self.failed.iter().find(|f| &f.version == version)
    }

    /// Whether the node takes `release`, given what it runs (`current`).
    pub fn decide(
        &self,
        current: Option<u64>,
        release: Candidate<'_>,
        policy: Policy<'_>,
    ) -> Decision {
        if release.min_archy > policy.archy {
            return Decision::NeedsArchy {
                needs: release.min_archy.clone(),
                have: policy.archy.clone(),
            };
        }
        if let Some(channel) = policy.channel
            && channel != release.channel
        {
            return Decision::OtherChannel {
                release: release.channel.to_string(),
                node: channel.to_string(),
            };
        }
        if let Some(f) = self.failed(release.version) {
            return Decision::FailedBefore(f.clone());
        }
        let installed = self.running(current).cloned();
        match &installed {
            Some(v) if v == release.version => Decision::Installed,
            Some(v) if v > release.version && !policy.allow_downgrade => Decision::Downgrade {
                installed: v.clone(),
            },
            _ => Decision::Apply { installed },
        }
    }

    /// The release passed its health gate as generation `generation`.
    pub fn mark_installed(&mut self, version: Version, bundle: String, generation: u64) {
        self.generations.insert(generation, version.clone());
        self.interrupted.remove(&version.to_string());
        self.pending = None;
        self.installed = Some(Installed {
            version,
            generation,
            bundle,
            at: now(),
        });
    }

    /// The release failed here: it is never applied again.
    pub fn mark_failed(&mut self, version: Version, bundle: String, reason: String) {
        self.pending = None;
        self.interrupted.remove(&version.to_string());
        self.failed.retain(|f| f.version != version);
        self.failed.push(FailedRelease {
            version,
            bundle,
            reason,
            at: now(),
        });
    }

    /// The release's switch was interrupted and undone: it may be tried
    /// again, unless that already happened [`MAX_INTERRUPTED`] times.
    /// Returns whether it now counts as failed.
    pub fn mark_interrupted(&mut self, version: Version, bundle: String) -> bool {
        let key = version.to_string();
        let count = self.interrupted.get(&key).copied().unwrap_or(0) + 1;
        if count >= MAX_INTERRUPTED {
            self.mark_failed(
                version,
                bundle,
                format!(
                    "its switch was interrupted {count} times (archy killed or the node restarted)"
                ),
            );
            true
        } else {
            self.interrupted.insert(key, count);
            self.pending = None;
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).expect("a version")
    }

    fn policy(archy: &Version) -> Policy<'_> {
        Policy {
            archy,
            channel: Some("stable"),
            allow_downgrade: false,
        }
    }

    fn candidate<'a>(version: &'a Version, min: &'a Version) -> Candidate<'a> {
        Candidate {
            version,
            channel: "stable",
            min_archy: min,
        }
    }

    #[test]
    fn a_fresh_node_applies_any_release() {
        let (archy, r, min) = (v("0.1.0"), v("1.0.0"), v("0.1.0"));
        let d = OtaState::default().decide(None, candidate(&r, &min), policy(&archy));
        assert_eq!(d, Decision::Apply { installed: None });
    }

    #[test]
    fn newer_applies_same_is_installed_older_is_a_downgrade() {
        let mut state = OtaState::default();
        state.mark_installed(v("1.2.0"), "b".into(), 4);
        let (archy, min) = (v("0.1.0"), v("0.1.0"));
        let (newer, same, older) = (v("1.3.0"), v("1.2.0"), v("1.1.9"));
        assert_eq!(
            state.decide(Some(4), candidate(&newer, &min), policy(&archy)),
            Decision::Apply {
                installed: Some(v("1.2.0"))
            }
        );
        assert_eq!(
            state.decide(Some(4), candidate(&same, &min), policy(&archy)),
            Decision::Installed
        );
        assert_eq!(
            state.decide(Some(4), candidate(&older, &min), policy(&archy)),
            Decision::Downgrade {
                installed: v("1.2.0")
            }
        );
        let allow = Policy {
            allow_downgrade: true,
            ..policy(&archy)
        };
        assert!(matches!(
            state.decide(Some(4), candidate(&older, &min), allow),
            Decision::Apply { .. }
        ));
    }

    #[test]
    fn the_running_release_follows_the_current_generation() {
        let mut state = OtaState::default();
        state.mark_installed(v("1.0.0"), "a".into(), 2);
        state.mark_installed(v("2.0.0"), "b".into(), 5);
        // Rolled back by hand to generation 2: release 1.0.0 runs.
        assert_eq!(state.running(Some(2)), Some(&v("1.0.0")));
        // A generation no release made: the last installed.
        assert_eq!(state.running(Some(9)), Some(&v("2.0.0")));
    }

    #[test]
    fn a_failed_release_is_refused_and_the_archy_version_and_channel_checked() {
        let mut state = OtaState::default();
        state.mark_failed(v("3.0.0"), "c".into(), "health check x".into());
        let (archy, min) = (v("0.1.0"), v("0.1.0"));
        let r = v("3.0.0");
        assert!(matches!(
            state.decide(None, candidate(&r, &min), policy(&archy)),
            Decision::FailedBefore(f) if f.reason == "health check x"
        ));
        let needs = v("9.0.0");
        let r4 = v("4.0.0");
        assert_eq!(
            state.decide(None, candidate(&r4, &needs), policy(&archy)),
            Decision::NeedsArchy {
                needs: v("9.0.0"),
                have: v("0.1.0")
            }
        );
        let beta = Candidate {
            channel: "beta",
            ..candidate(&r4, &min)
        };
        assert!(matches!(
            state.decide(None, beta, policy(&archy)),
            Decision::OtherChannel { .. }
        ));
    }

    #[test]
    fn the_second_interruption_fails_the_release() {
        let mut state = OtaState::default();
        assert!(!state.mark_interrupted(v("2.0.0"), "b".into()));
        assert!(state.failed(&v("2.0.0")).is_none());
        assert!(state.mark_interrupted(v("2.0.0"), "b".into()));
        assert!(state.failed(&v("2.0.0")).is_some());
    }

    #[test]
    fn the_record_round_trips_and_a_missing_one_is_empty() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state_dir = StateDir::new(dir.path());
        assert_eq!(
            OtaState::load(&state_dir).expect("load"),
            OtaState::default()
        );
        let mut state = OtaState::default();
        state.mark_installed(v("1.0.0"), "a".into(), 2);
        state.hold = Some(Hold {
            reason: "exchange audit".into(),
            at: now(),
        });
        state.save(&state_dir).expect("save");
        assert_eq!(OtaState::load(&state_dir).expect("load"), state);
        std::fs::write(state_dir.ota_record(), b"{").expect("write");
        let err = OtaState::load(&state_dir).expect_err("damaged");
        assert!(err.to_string().contains("move it away"), "{err}");
    }
}

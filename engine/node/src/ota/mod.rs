//! Over-the-air updates: install signed releases through the same switch as
//! `archy switch`, and keep the node's record of them (`<state>/ota.json`).
//!
//! The order of [`Session::ota_apply`] is the point: nothing from a bundle
//! is unpacked before its signature checks out against the node's trusted
//! keys; nothing is switched before it unpacked safely, its software is in
//! the store (each object fetched from beside the bundle only if the store
//! lacks it, and checked against the blake3 its signed manifest lists) and
//! it evaluated; a release that fails its health gate is rolled back by the
//! switch and recorded as failed, so no node tries it twice.
//!
//! Software that cannot be fetched (no mirror has an object, or every copy
//! has other bytes) stops the apply before the build: nothing is switched,
//! and the release is not recorded as failed, because the bundle itself is
//! sound and the mirrors may yet be completed, as with a bundle whose
//! download fails. What was fetched stays in the store for the next try.

mod channel;
mod obtain;
mod releases;
mod repo;
pub mod settle;
mod software;

use std::time::Instant;

pub use archy_ota::objects::{Fetched, Needed};
use archy_ota::state::{Decision, Hold, OtaState, Pending};
use archy_ota::unpack;
use semver::Version;

use crate::evaluate::Source;
use crate::switch::Switched;
use crate::{Node, NodeError, ReleaseFailed, Session};

pub use archy_ota::tuf::choose::Choice;
pub use archy_ota::tuf::meta::cut;
pub use channel::CHANNEL_FILE;
pub use obtain::{BundleSource, Refusal};
pub(crate) use repo::repo_hint;
pub use repo::{RepoChecked, RepoSource, TRUSTED_ROOT, repo_usage};

/// How [`Session::install`] treats a verified bundle.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Install<'a> {
    /// The channel the node follows (None: any).
    pub channel: Option<&'a str>,
    pub allow_downgrade: bool,
    pub started: Instant,
}
pub use settle::Settled;

/// Where a node keeps the public keys releases must be signed with.
pub const TRUSTED_KEYS: &str = "/etc/archy/trusted-keys";

/// A verified release, as the operator is told about it.
#[derive(Debug, Clone)]
pub struct Release {
    pub version: Version,
    pub channel: String,
    pub min_archy: Version,
    pub size: u64,
    pub blake3: String,
    /// The trusted key that signed it.
    pub key: String,
    /// Where it came from (the URL that served it, or the file).
    pub from: String,
}

impl Release {
    fn of(bundle: &obtain::Bundle) -> Release {
        let r = &bundle.verified.release;
        Release {
            version: r.version.clone(),
            channel: r.channel.clone(),
            min_archy: r.min_archy.clone(),
            size: r.size,
            blake3: r.blake3.clone(),
            key: bundle.verified.key_id.clone(),
            from: bundle.from.clone(),
        }
    }
}

/// How an `archy ota apply` ended, short of a failure.
#[derive(Debug)]
pub enum Applied {
    /// `--repo`: a newer release is out, and this node's wave opens at
    /// `opens` (RFC 3339).
    Waiting { version: Version, opens: String },
    /// `--repo`: nothing newer for this node.
    UpToDate,
    /// `--repo`: the release it runs was pulled, and there is no release
    /// it ran before to go back to.
    PulledNoWayBack { version: Version },
    /// `--repo`: the release it ran was pulled; it went back to `release`
    /// through the switch and its health gate.
    WentBack {
        pulled: Version,
        release: Box<Release>,
        switched: Switched,
        seconds: f64,
        software: Fetched,
    },
    /// `--scheduled` while updates are held: nothing was done.
    Held(Hold),
    /// The release runs already.
    AlreadyInstalled { version: Version },
    /// The release was switched to and passed its gate.
    Installed {
        release: Box<Release>,
        switched: Switched,
        seconds: f64,
        /// The software objects fetched into the store for it.
        software: Fetched,
    },
}

/// What `archy ota fetch` put into the store.
#[derive(Debug)]
pub struct Prefetched {
    pub release: Release,
    /// What the store lacked.
    pub needed: Needed,
    pub fetched: Fetched,
}

/// What `archy ota check` found.
#[derive(Debug)]
pub struct Checked {
    pub release: Release,
    /// The release this node runs.
    pub running: Option<Version>,
    pub would_apply: bool,
    pub held: bool,
    /// The verdict in words.
    pub verdict: String,
    /// The release's software objects this node's store lacks (None when
    /// its manifest cannot be read: the verdict says why).
    pub software: Option<Needed>,
}

/// The node's release record and the generation it runs.
#[derive(Debug)]
pub struct OtaStatus {
    pub state: OtaState,
    pub current: Option<u64>,
}

/// What `archy ota hold` or `unhold` changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldChange {
    Held,
    Lifted,
    /// `unhold` with no hold in force.
    WasNotHeld,
}

impl Node {
    /// The installed, pending and failed releases, and any hold.
    pub fn ota_status(&self) -> Result<OtaStatus, NodeError> {
        self.running("ota")?;
        let state = OtaState::load(&self.state_dir)?;
        let current = self.current()?.map(|l| l.record.number);
        Ok(OtaStatus { state, current })
    }
}

impl Session<'_> {
    /// Verifies a release and switches to it through the health gate;
    /// `verified` is told about the release as soon as its signature checks
    /// out (before the switch, which takes a while). A release that fails
    /// the gate is rolled back ([`NodeError::RolledBack`]) and never
    /// applied again.
    pub fn ota_apply(
        &self,
        source: &BundleSource,
        allow_downgrade: bool,
        scheduled: bool,
        verified: &mut dyn FnMut(&Release),
    ) -> Result<Applied, NodeError> {
        self.node.running("ota")?;
        let started = Instant::now();
        let state_dir = self.state_dir();
        let state = OtaState::load(state_dir)?;
        if scheduled && let Some(h) = &state.hold {
            return Ok(Applied::Held(h.clone()));
        }
        let bundle = obtain::obtain(source, state_dir)?;
        let objects = software::source_of(&bundle, source);
        let channel = self.channel(source.channel.as_deref(), &source.channel_file)?;
        self.install(
            bundle,
            &objects,
            Install {
                channel: channel.as_deref(),
                allow_downgrade,
                started,
            },
            state,
            verified,
        )
    }

    /// The rest of an apply, once a bundle is verified: decide, unpack,
    /// fetch its software from `objects`, build, switch through the gate,
    /// and record how it went.
    pub(crate) fn install(
        &self,
        bundle: obtain::Bundle,
        objects: &archy_ota::objects::ObjectSource,
        how: Install<'_>,
        mut state: OtaState,
        verified: &mut dyn FnMut(&Release),
    ) -> Result<Applied, NodeError> {
        let Install {
            channel,
            allow_downgrade,
            started,
        } = how;
        let state_dir = self.state_dir();
        let release = Release::of(&bundle);
        let version = release.version.clone();
        let current = self.store.current()?;
        let decision = obtain::decide(&state, current, &bundle, channel, allow_downgrade);
        if let Some(refused) = Refusal::of(&version, &decision) {
            bundle.discard();
            return Err(NodeError::ReleaseRefused(Box::new(refused)));
        }
        if decision == Decision::Installed {
            bundle.discard();
            return Ok(Applied::AlreadyInstalled { version });
        }
        verified(&release);
        // The pending record comes first: a crash from here on is seen by
        // the next archy, which settles it (see settle::pending).
        state.pending = Some(Pending {
            version: version.clone(),
            bundle: release.blake3.clone(),
            generation: None,
            started: archy_ota::state::now(),
        });
        state.save(state_dir)?;
        let fail = |state: &mut OtaState, why: String| -> Result<(), NodeError> {
            // Kept short: a hostile bundle's names must not fill the record.
            let why = cut(&why, 1000);
            state.mark_failed(version.clone(), release.blake3.clone(), why);
            Ok(state.save(state_dir)?)
        };
        let dir = releases::folder(state_dir, &version, &release.blake3)?;
        let unpacked = unpack::unpack(&bundle.path, &dir, &unpack::Limits::default())
            .map_err(|e| e.to_string())
            .and_then(|manifest| {
                releases::same_release(&manifest, &bundle.verified.release).map(|()| manifest)
            });
        bundle.discard();
        let manifest = match unpacked {
            Ok(manifest) => manifest,
            Err(why) => {
                let _ = std::fs::remove_dir_all(&dir);
                fail(
                    &mut state,
                    format!("its bundle does not unpack safely: {why}"),
                )?;
                return Err(NodeError::ReleaseBroken { version, why });
            }
        };
        let software = match self
            .software_needed(&manifest)
            .and_then(|needed| self.fetch_software(&needed, objects))
        {
            Ok(fetched) => fetched,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                state.pending = None;
                state.save(state_dir)?;
                return Err(NodeError::ReleaseSoftware { version, source: e });
            }
        };
        let node = Source::new(dir.join("node.rhai"), Vec::new());
        let built = self.build_from(&node, &format!("ota release {version}"), &objects.mirrors());
        let generation = match built {
            Ok(report) => report.number(),
            Err(NodeError::Eval(failure)) => {
                // The release's own description is wrong: it would be wrong
                // on every try. Its folder is kept for a look.
                fail(&mut state, "its node.rhai does not evaluate".to_string())?;
                return Err(NodeError::ReleaseEval {
                    version,
                    dir,
                    failure,
                });
            }
            Err(e) => {
                state.pending = None;
                state.save(state_dir)?;
                return Err(e);
            }
        };
        if let Some(p) = state.pending.as_mut() {
            p.generation = Some(generation);
        }
        state.save(state_dir)?;
        let result = self.on_node(|switch| Ok(switch.switch(generation)))?;
        let result = self.finished(result);
        let seconds = started.elapsed().as_secs_f64();
        match result {
            Ok(switched) => {
                let to = match &switched {
                    Switched::To { generation, .. } | Switched::Already { generation } => {
                        *generation
                    }
                };
                state.mark_installed(version.clone(), release.blake3.clone(), to);
                state.save(state_dir)?;
                releases::prune(&dir);
                Ok(Applied::Installed {
                    release: Box::new(release),
                    switched,
                    seconds,
                    software,
                })
            }
            Err(NodeError::RolledBack {
                failed,
                back_to,
                why,
                held,
                ..
            }) => {
                fail(&mut state, why.join("; "))?;
                Err(NodeError::RolledBack {
                    failed,
                    back_to,
                    why,
                    held,
                    release: Some(Box::new(ReleaseFailed { version, seconds })),
                })
            }
            Err(e) => {
                // Nothing was switched (refused, an image could not be
                // made, podman or the store failed): the release may be
                // tried again.
                state.pending = None;
                state.save(state_dir)?;
                Err(e)
            }
        }
    }

    /// What a release offers and whether this node would apply it. The
    /// session's lock keeps two runs off one download.
    pub fn ota_check(&self, source: &BundleSource) -> Result<Checked, NodeError> {
        self.node.running("ota")?;
        let bundle = obtain::obtain(source, self.state_dir())?;
        let software = unpack::read_manifest(&bundle.path)
            .and_then(|manifest| self.software_needed(&manifest));
        bundle.discard();
        let current = self.store.current()?;
        let state = OtaState::load(self.state_dir())?;
        let channel = self.channel(source.channel.as_deref(), &source.channel_file)?;
        let decision = obtain::decide(&state, current, &bundle, channel.as_deref(), false);
        let release = Release::of(&bundle);
        let verdict = match Refusal::of(&release.version, &decision) {
            Some(refused) => format!("it would not be applied: {refused}"),
            None if let Err(e) = &software => format!("it would not be applied: {e}"),
            None if decision == Decision::Installed => "it is installed: nothing to do".to_string(),
            None if state.hold.is_some() => {
                "it would be applied by `archy ota apply`; the timer holds off (updates are held)"
                    .to_string()
            }
            None => "it would be applied".to_string(),
        };
        Ok(Checked {
            running: state.running(current).cloned(),
            would_apply: matches!(decision, Decision::Apply { .. }) && software.is_ok(),
            software: software.ok(),
            held: state.hold.is_some(),
            release,
            verdict,
        })
    }

    /// Fetches a verified release's software into the store without
    /// building or switching anything, so a later `apply` (or the timer's)
    /// finds it there: a slow link can fill the store ahead of time.
    /// Refused for a release this node would not apply.
    pub fn ota_fetch(&self, source: &BundleSource) -> Result<Prefetched, NodeError> {
        self.node.running("ota")?;
        let bundle = obtain::obtain(source, self.state_dir())?;
        let read = unpack::read_manifest(&bundle.path);
        bundle.discard();
        let release = Release::of(&bundle);
        let version = release.version.clone();
        let state = OtaState::load(self.state_dir())?;
        let channel = self.channel(source.channel.as_deref(), &source.channel_file)?;
        let decision = obtain::decide(
            &state,
            self.store.current()?,
            &bundle,
            channel.as_deref(),
            true,
        );
        if let Some(refused) = Refusal::of(&version, &decision) {
            return Err(NodeError::ReleaseRefused(Box::new(refused)));
        }
        let manifest = read.map_err(|e| NodeError::ReleaseSoftware {
            version: version.clone(),
            source: e,
        })?;
        let objects = software::source_of(&bundle, source);
        let software = |e| NodeError::ReleaseSoftware {
            version: version.clone(),
            source: e,
        };
        let needed = self.software_needed(&manifest).map_err(software)?;
        let fetched = self.fetch_software(&needed, &objects).map_err(software)?;
        Ok(Prefetched {
            release,
            needed,
            fetched,
        })
    }

    /// Holds updates (`Some(reason)`): archy-ota.service applies nothing
    /// until the hold is lifted (`None`).
    pub fn ota_hold(&self, reason: Option<String>) -> Result<HoldChange, NodeError> {
        self.node.running("ota")?;
        let mut state = OtaState::load(self.state_dir())?;
        let change = match reason {
            Some(reason) => {
                state.hold = Some(Hold {
                    reason,
                    at: archy_ota::state::now(),
                });
                HoldChange::Held
            }
            None if state.hold.is_none() => return Ok(HoldChange::WasNotHeld),
            None => {
                state.hold = None;
                HoldChange::Lifted
            }
        };
        state.save(self.state_dir())?;
        Ok(change)
    }
}

//! Releases from a TUF repository (`archy ota apply --repo URL`): the
//! metadata is fetched and verified through tough from the mirrors in
//! order, starting from the root pinned on the node; the node picks a
//! release with [`choose`] (its channel, its wave, a pulled release), and
//! the bundle, checked against its signed length and sha256 as it
//! downloads, goes through the same install as a bundle file: unpack,
//! software, build, switch through the health gate.
//!
//! A release that was pulled makes a node that runs it go back to the
//! release it ran before, through that same install (a downgrade on
//! purpose): a new generation of the older release, health gate and all.

use std::path::PathBuf;
use std::time::{Instant, SystemTime};

use archy_ota::manifest::ReleaseInfo;
use archy_ota::state::OtaState;
use archy_ota::tuf::choose::{Choice, Situation, choose};
use archy_ota::tuf::client::{self, Listing, Offered, Remote};
use archy_ota::tuf::{TufError, waves};
use semver::Version;

use super::obtain::Bundle;
use super::{Applied, Install, Release};
use crate::release::archy_version;
use crate::{NodeError, Session};

/// Where a node keeps the repository's root of trust.
pub const TRUSTED_ROOT: &str = "/etc/archy/trusted-root.json";

/// A repository and what the node trusts.
#[derive(Debug, Clone)]
pub struct RepoSource {
    /// The repository's root on each mirror, tried in order
    /// (`file:///srv/archy`, `https://updates.example/archy`).
    pub mirrors: Vec<String>,
    /// The pinned root (`/etc/archy/trusted-root.json`).
    pub trusted_root: PathBuf,
    /// Take only releases published for this channel (None: the one in
    /// `channel_file`, if there is one).
    pub channel: Option<String>,
    pub channel_file: PathBuf,
    /// The time waves are measured against (the clock, unless a test or
    /// an operator's rehearsal says otherwise).
    pub now: SystemTime,
}

/// What `archy ota check --repo` found.
#[derive(Debug)]
pub struct RepoChecked {
    pub running: Option<Version>,
    /// Releases the repository lists (every channel).
    pub releases: usize,
    pub channel: Option<String>,
    pub choice: Choice,
    /// The node's place in the fleet, in [0, 1).
    pub place: f64,
    /// Bytes this check fetched from the mirrors.
    pub fetched: u64,
    pub held: bool,
    /// The time the waves were measured against.
    pub now: archy_ota::tuf::Timestamp,
}

impl RepoChecked {
    /// The verdict in words.
    pub fn verdict(&self) -> String {
        match &self.choice {
            Choice::Take(o) => format!("release {} would be applied", o.meta.version),
            Choice::Wait { offered, opens } => format!(
                "release {} is out, but this node's wave opens at {opens} ({} from now)",
                offered.meta.version,
                until(*opens, self.now)
            ),
            Choice::GoBack { pulled, to } => format!(
                "release {pulled}, which this node runs, was pulled: it would go back to release {}",
                to.meta.version
            ),
            Choice::PulledNoWayBack { pulled } => format!(
                "release {pulled}, which this node runs, was pulled, and the repository offers no release it ran before: it stays"
            ),
            Choice::UpToDate => "nothing newer for this node: it is up to date".to_string(),
        }
    }
}

fn until(t: archy_ota::tuf::Timestamp, now: archy_ota::tuf::Timestamp) -> String {
    let secs = t.as_second().saturating_sub(now.as_second()).max(0);
    humantime_like(secs)
}

/// `3h 20m`, `2d 4h`: enough to tell an operator how long.
fn humantime_like(secs: i64) -> String {
    let (d, h, m) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60);
    match (d, h, m) {
        (0, 0, m) => format!("{m}m"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

/// A request the repository commands do not take.
pub fn repo_usage(why: &str) -> TufError {
    TufError::Invalid(why.to_string())
}

/// What the operator is told about a repository failure.
pub(crate) fn repo_hint(e: &TufError) -> Option<String> {
    let text = match e {
        TufError::Expired { .. } => {
            "nothing was changed on this node; a publisher refreshes the timestamp with `archy release refresh`, or another mirror may be current"
        }
        TufError::Rollback { .. } | TufError::Mismatch { .. } | TufError::TargetMismatch { .. } => {
            "nothing was changed on this node; check the mirror, or take it out of the list"
        }
        TufError::Untrusted { .. } => {
            "nothing was changed on this node; the pinned root is /etc/archy/trusted-root.json (ota.root in node.rhai)"
        }
        TufError::TrustedRoot { .. } => {
            "set ota.root in node.rhai to the repository's root.json, or pass --trusted-root"
        }
        TufError::Unreachable { .. } => {
            "nothing was changed on this node; check the URL and the mirrors"
        }
        _ => return None,
    };
    Some(text.to_string())
}

fn timestamp(now: SystemTime) -> Result<archy_ota::tuf::Timestamp, NodeError> {
    archy_ota::tuf::Timestamp::try_from(now).map_err(|e| {
        NodeError::Repository(TufError::Invalid(format!("the clock is out of range: {e}")))
    })
}

impl Session<'_> {
    /// `<state>/ota/`: the seed and the TUF datastore live there.
    fn ota_dir(&self) -> PathBuf {
        let downloads = self.state_dir().ota_downloads();
        downloads
            .parent()
            .map_or_else(|| downloads.clone(), std::path::Path::to_path_buf)
    }

    fn tuf_load(&self, source: &RepoSource) -> Result<Listing, NodeError> {
        let trusted_root = match &self.node.root {
            Some(root) if source.trusted_root.is_absolute() => root.join(
                source
                    .trusted_root
                    .strip_prefix("/")
                    .unwrap_or(&source.trusted_root),
            ),
            _ => source.trusted_root.clone(),
        };
        client::load(&Remote {
            mirrors: source.mirrors.clone(),
            trusted_root,
            datastore: self.ota_dir().join("tuf"),
        })
        .map_err(NodeError::Repository)
    }

    fn tuf_choose(
        &self,
        listing: &Listing,
        state: &OtaState,
        channel: Option<&str>,
        now: SystemTime,
    ) -> Result<(Choice, f64), NodeError> {
        let seed = waves::seed(&self.ota_dir()).map_err(NodeError::Repository)?;
        let place = waves::place(&seed);
        let current = self.store.current()?;
        let history: Vec<Version> = state.generations.values().cloned().collect();
        let failed: Vec<Version> = state.failed.iter().map(|f| f.version.clone()).collect();
        let archy = archy_version();
        let now = timestamp(now)?;
        let choice = choose(
            &listing.releases,
            &Situation {
                running: state.running(current),
                history: &history,
                failed: &failed,
                channel,
                archy: &archy,
                place,
                now,
            },
        );
        Ok((choice, place))
    }

    /// What the repository offers this node and what it would do.
    pub fn ota_check_repo(&self, source: &RepoSource) -> Result<RepoChecked, NodeError> {
        self.node.running("ota")?;
        let state = OtaState::load(self.state_dir())?;
        let channel = self.channel(source.channel.as_deref(), &source.channel_file)?;
        let listing = self.tuf_load(source)?;
        let (choice, place) = self.tuf_choose(&listing, &state, channel.as_deref(), source.now)?;
        Ok(RepoChecked {
            running: state.running(self.store.current()?).cloned(),
            releases: listing.releases.len(),
            channel,
            choice,
            place,
            fetched: listing.bytes_fetched(),
            held: state.hold.is_some(),
            now: timestamp(source.now)?,
        })
    }

    /// Takes the release this node's wave has opened, or goes back from a
    /// pulled one; see the module doc.
    pub fn ota_apply_repo(
        &self,
        source: &RepoSource,
        scheduled: bool,
        verified: &mut dyn FnMut(&Release),
    ) -> Result<Applied, NodeError> {
        self.node.running("ota")?;
        let started = Instant::now();
        let state = OtaState::load(self.state_dir())?;
        if scheduled && let Some(h) = &state.hold {
            return Ok(Applied::Held(h.clone()));
        }
        let channel = self.channel(source.channel.as_deref(), &source.channel_file)?;
        let listing = self.tuf_load(source)?;
        let (choice, _) = self.tuf_choose(&listing, &state, channel.as_deref(), source.now)?;
        let (offered, back_from) = match choice {
            Choice::Take(o) => (o, None),
            Choice::GoBack { pulled, to } => (to, Some(pulled)),
            Choice::Wait { offered, opens } => {
                return Ok(Applied::Waiting {
                    version: offered.meta.version,
                    opens: opens.to_string(),
                });
            }
            Choice::PulledNoWayBack { pulled } => {
                return Ok(Applied::PulledNoWayBack { version: pulled });
            }
            Choice::UpToDate => return Ok(Applied::UpToDate),
        };
        let bundle = self.tuf_download(&listing, &offered, source)?;
        let applied = self.install(
            bundle,
            &listing.objects(),
            Install {
                channel: channel.as_deref(),
                allow_downgrade: back_from.is_some(),
                started,
            },
            state,
            verified,
        )?;
        Ok(match (applied, back_from) {
            (
                Applied::Installed {
                    release,
                    switched,
                    seconds,
                    software,
                },
                Some(pulled),
            ) => Applied::WentBack {
                pulled,
                release,
                switched,
                seconds,
                software,
            },
            (applied, _) => applied,
        })
    }

    fn tuf_download(
        &self,
        listing: &Listing,
        offered: &Offered,
        source: &RepoSource,
    ) -> Result<Bundle, NodeError> {
        let name = blake3::hash(offered.target.as_bytes()).to_hex();
        let dest = self
            .state_dir()
            .ota_downloads()
            .join(format!("tuf-{}.tar.gz", &name[..16]));
        let size = listing
            .download(&offered.target, &dest)
            .map_err(NodeError::Repository)?;
        let mut hasher = blake3::Hasher::new();
        let file = std::fs::File::open(&dest).map_err(NodeError::io("read", &dest))?;
        hasher
            .update_reader(file)
            .map_err(NodeError::io("read", &dest))?;
        let meta = &offered.meta;
        Ok(Bundle::from_repository(
            dest,
            format!(
                "{} ({})",
                source.mirrors.first().map_or("", String::as_str),
                archy_ota::tuf::meta::cut(&offered.target, 80)
            ),
            ReleaseInfo {
                version: meta.version.clone(),
                channel: meta.channel.clone(),
                min_archy: meta.min_archy.clone(),
                size,
                blake3: hasher.finalize().to_hex().to_string(),
            },
        ))
    }
}

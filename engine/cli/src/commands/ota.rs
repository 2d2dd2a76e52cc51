//! `archy ota apply|check|status|hold|unhold`: install signed releases
//! through the same switch as `archy switch`, and keep the node's record of
//! them (`<state>/ota.json`).
//!
//! The order of `apply` is the point: nothing from a bundle is unpacked
//! before its signature checks out against the node's trusted keys; nothing
//! is switched before it unpacked safely and evaluated; a release that
//! fails its health gate is rolled back by the switch and recorded as
//! failed, so no node tries it twice.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use archy_ota::state::{Candidate, Decision, OtaState, Pending, Policy};
use archy_ota::{download, keys::TrustedKeys, unpack, verify};
use archy_store::{Outcome as Recorded, Store};
use archy_switch::journal::{Journal, Phase};
use archy_switch::switch::Outcome;
use clap::Subcommand;
use serde_json::json;

use crate::CliError;
use crate::commands::build::{BuildArgs, build_locked_as};
use crate::commands::release::archy_version;
use crate::commands::store;
use crate::commands::switch::{SwitchArgs, on_node, report};

/// Where a node keeps the public keys releases must be signed with.
pub const TRUSTED_KEYS: &str = "/etc/archy/trusted-keys";

/// The largest bundle a node downloads.
const MAX_BUNDLE: u64 = 512 << 20;

#[derive(Debug, Subcommand)]
pub enum OtaCommand {
    /// Verify a release and switch to it through the health gate. A release
    /// that fails the gate is rolled back (exit 2) and never applied again.
    Apply {
        #[command(flatten)]
        source: SourceArgs,
        /// Apply a release older than the one the node runs.
        #[arg(long)]
        allow_downgrade: bool,
        /// Run by archy-ota.service: do nothing while updates are held.
        #[arg(long)]
        scheduled: bool,
    },
    /// What a release offers and whether this node would apply it.
    Check {
        #[command(flatten)]
        source: SourceArgs,
        /// Print it as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The installed, pending and failed releases, and any hold.
    Status {
        /// Print it as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Hold updates: archy-ota.service applies nothing until `unhold`.
    Hold {
        /// Why, for whoever looks next.
        #[arg(long, default_value = "held by the operator")]
        reason: String,
    },
    /// Lift a hold.
    Unhold,
}

/// Where a release comes from and what the node trusts.
#[derive(Debug, clap::Args)]
pub struct SourceArgs {
    /// A bundle (.tar.gz with its .minisig beside it): a file or an
    /// http(s) URL.
    pub bundle: String,
    /// Another URL of the same bundle, tried in order after BUNDLE.
    #[arg(long = "mirror", value_name = "URL")]
    pub mirrors: Vec<String>,
    /// The folder of public keys a release must be signed with.
    #[arg(long, default_value = TRUSTED_KEYS)]
    pub keys: PathBuf,
    /// Take only releases published for this channel.
    #[arg(long)]
    pub channel: Option<String>,
}

pub fn run(command: &OtaCommand, args: SwitchArgs<'_>) -> Result<(), CliError> {
    match command {
        OtaCommand::Apply {
            source,
            allow_downgrade,
            scheduled,
        } => apply(source, *allow_downgrade, *scheduled, args),
        OtaCommand::Check { source, json } => check(source, *json, args),
        OtaCommand::Status { json } => status(args.state_dir, *json),
        OtaCommand::Hold { reason } => hold(Some(reason.clone()), args),
        OtaCommand::Unhold => hold(None, args),
    }
}

fn state_error(e: archy_ota::state::StateError) -> CliError {
    CliError::system(e.to_string())
}

/// A verified bundle on disk, and whether it is a download to delete.
struct Bundle {
    path: PathBuf,
    downloaded: bool,
    from: String,
    verified: verify::Verified,
}

impl Bundle {
    /// A download is of no use once unpacked or refused; a file the
    /// operator named is theirs.
    fn discard(&self) {
        if self.downloaded {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

/// Fetches (or reads) the bundle and its signature, and verifies it.
/// Nothing of the bundle is read beyond the signature check.
fn obtain(source: &SourceArgs, state_dir: &Path) -> Result<Bundle, CliError> {
    let trusted = TrustedKeys::load(&source.keys).map_err(|e| {
        CliError::input(e.to_string()).hint("or pass --keys DIR to use the keys in another folder")
    })?;
    let (path, signature, downloaded, from) = if is_url(&source.bundle) {
        download_bundle(source, state_dir)?
    } else {
        if !source.mirrors.is_empty() {
            return Err(CliError::input(
                "--mirror goes with a bundle URL, not a file",
            ));
        }
        let path = PathBuf::from(&source.bundle);
        let sig_path = PathBuf::from(format!("{}.minisig", source.bundle));
        let signature = std::fs::read_to_string(&sig_path).map_err(|e| {
            CliError::input(format!(
                "cannot read the signature {}: {e}",
                sig_path.display()
            ))
            .hint("a bundle comes with its signature, NAME.tar.gz.minisig, beside it")
        })?;
        (path, signature, false, source.bundle.clone())
    };
    match verify::verify(&path, &signature, &trusted) {
        Ok(verified) => Ok(Bundle {
            path,
            downloaded,
            from,
            verified,
        }),
        Err(e) => {
            if downloaded {
                let _ = std::fs::remove_file(&path);
            }
            // A download is named after its URL; a file names itself.
            let message = if downloaded {
                format!("{from}: {e}")
            } else {
                e.to_string()
            };
            Err(CliError::input(message).hint("nothing was unpacked or changed on this node"))
        }
    }
}

/// Downloads into `<state>/ota/downloads/`: streamed, resumed from a
/// `.part` an earlier run left, mirrors in order.
fn download_bundle(
    source: &SourceArgs,
    state_dir: &Path,
) -> Result<(PathBuf, String, bool, String), CliError> {
    let urls: Vec<String> = std::iter::once(source.bundle.clone())
        .chain(source.mirrors.iter().cloned())
        .collect();
    for u in &urls {
        if !is_url(u) {
            return Err(CliError::input(format!("{u} is not an http(s) URL")));
        }
    }
    let dir = state_dir.join("ota").join("downloads");
    std::fs::create_dir_all(&dir)
        .map_err(|e| CliError::system(format!("cannot create {}: {e}", dir.display())))?;
    // Named after the first URL, so a rerun resumes its own `.part`.
    let name = blake3::hash(urls[0].as_bytes()).to_hex();
    let dest = dir.join(format!("{}.tar.gz", &name[..16]));
    // A complete file from an earlier run may be stale (a "latest" URL
    // moves on); only a partial download is resumed.
    let _ = std::fs::remove_file(&dest);
    let fetched = download::fetch(
        &urls,
        &dest,
        &download::FetchOptions {
            progress: std::io::stderr().is_terminal(),
            max_bytes: MAX_BUNDLE,
            timeout: Duration::from_secs(60),
        },
    )
    .map_err(|e| {
        CliError::input(e.to_string()).hint("what was downloaded is kept: the next run resumes it")
    })?;
    // The signature from the source that served the bundle first: mirrors
    // may lag behind one another, and a bundle only matches its own.
    let sig_urls: Vec<String> = std::iter::once(&fetched.from)
        .chain(urls.iter().filter(|u| **u != fetched.from))
        .map(|u| format!("{u}.minisig"))
        .collect();
    let (_, sig) = download::fetch_small(&sig_urls, 64 << 10, Duration::from_secs(30))
        .map_err(|e| CliError::input(e.to_string()).hint("check the URL and the mirrors"))?;
    let signature = String::from_utf8(sig).map_err(|_| {
        CliError::input(format!(
            "{}.minisig is not a minisign signature",
            fetched.from
        ))
    })?;
    if fetched.resumed_from > 0 {
        tracing::info!(
            "resumed the download at byte {} from {}",
            fetched.resumed_from,
            fetched.from
        );
    }
    Ok((dest, signature, true, fetched.from))
}

/// What the node makes of a verified release.
fn decide(
    state: &OtaState,
    current: Option<u64>,
    bundle: &Bundle,
    source: &SourceArgs,
    allow_downgrade: bool,
) -> Decision {
    let r = &bundle.verified.release;
    let archy = archy_version();
    state.decide(
        current,
        Candidate {
            version: &r.version,
            channel: &r.channel,
            min_archy: &r.min_archy,
        },
        Policy {
            archy: &archy,
            channel: source.channel.as_deref(),
            allow_downgrade,
        },
    )
}

/// Why a release is not applied, as an error; `None` for one to apply, or
/// one that is installed already (not an error).
fn refusal(version: &semver::Version, decision: &Decision) -> Option<CliError> {
    Some(match decision {
        Decision::Apply { .. } | Decision::Installed => return None,
        Decision::Downgrade { installed } => CliError::input(format!(
            "release {version} is older than release {installed}, which this node runs"
        ))
        .hint("pass --allow-downgrade to go back to it on purpose"),
        Decision::FailedBefore(f) => CliError::input(format!(
            "release {version} failed on this node at {} ({}); it is not tried again",
            f.at, f.reason
        ))
        .hint("publish a newer release with the fix"),
        Decision::NeedsArchy { needs, have } => CliError::input(format!(
            "release {version} needs archy {needs} or newer; this is archy {have}"
        ))
        .hint("update archy on this node first"),
        Decision::OtherChannel { release, node } => CliError::input(format!(
            "release {version} is published for the channel {release:?}; this node follows {node:?}"
        )),
    })
}

fn apply(
    source: &SourceArgs,
    allow_downgrade: bool,
    scheduled: bool,
    args: SwitchArgs<'_>,
) -> Result<(), CliError> {
    let started = Instant::now();
    let state_dir = args.state_dir;
    let _lock = store::lock(state_dir, "archy ota apply", args.wait)?;
    let store = store::open(state_dir)?;
    recover_if_interrupted(&store, args)?;
    let mut state = OtaState::load(&archy_store::StateDir::new(state_dir)).map_err(state_error)?;
    if scheduled && let Some(h) = &state.hold {
        println!(
            "updates are held since {} ({}): nothing done; `archy ota unhold` lifts the hold",
            h.at, h.reason
        );
        return Ok(());
    }
    let bundle = obtain(source, state_dir)?;
    let release = bundle.verified.release.clone();
    let version = release.version.clone();
    let current = store.current().map_err(store::store_error)?;
    let decision = decide(&state, current, &bundle, source, allow_downgrade);
    if let Some(refused) = refusal(&version, &decision) {
        bundle.discard();
        return Err(refused);
    }
    if decision == Decision::Installed {
        bundle.discard();
        println!("release {version} is installed already: nothing to do");
        return Ok(());
    }
    println!(
        "release {version} ({}) from {}: signed by trusted key {}",
        release.channel, bundle.from, bundle.verified.key_id
    );
    // The pending record comes first: a crash from here on is seen by the
    // next archy, which settles it (see settle_pending).
    state.pending = Some(Pending {
        version: version.clone(),
        bundle: release.blake3.clone(),
        generation: None,
        started: archy_ota::state::now(),
    });
    state
        .save(&archy_store::StateDir::new(state_dir))
        .map_err(state_error)?;
    let fail = |state: &mut OtaState, why: String| -> Result<(), CliError> {
        state.mark_failed(version.clone(), release.blake3.clone(), why);
        state
            .save(&archy_store::StateDir::new(state_dir))
            .map_err(state_error)
    };
    let dir = state_dir
        .join("ota")
        .join("releases")
        .join(format!("{version}-{}", &release.blake3[..12]));
    // A folder from an interrupted earlier attempt is unpacked afresh.
    if dir.exists() {
        std::fs::remove_dir_all(&dir)
            .map_err(|e| CliError::system(format!("cannot remove {}: {e}", dir.display())))?;
    }
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| CliError::system(format!("cannot create {}: {e}", parent.display())))?;
    }
    let unpacked = unpack::unpack(&bundle.path, &dir, &unpack::Limits::default())
        .map_err(|e| e.to_string())
        .and_then(|manifest| {
            // The signed comment decided; the manifest must say the same.
            let same = manifest.version == release.version
                && manifest.channel == release.channel
                && manifest.min_archy == release.min_archy;
            if same {
                Ok(())
            } else {
                let _ = std::fs::remove_dir_all(&dir);
                Err(format!(
                    "its manifest names release {} ({}, archy {}), its signature release {version} ({}, archy {})",
                    manifest.version,
                    manifest.channel,
                    manifest.min_archy,
                    release.channel,
                    release.min_archy
                ))
            }
        });
    bundle.discard();
    if let Err(e) = unpacked {
        fail(
            &mut state,
            format!("its bundle does not unpack safely: {e}"),
        )?;
        return Err(CliError::input(format!("release {version}: {e}"))
            .hint("nothing was changed on this node; the release is recorded as failed"));
    }
    let built = build_locked_as(
        BuildArgs {
            node: &dir.join("node.rhai"),
            overrides: &[],
            state_dir,
            wait: args.wait,
            color: args.color,
        },
        &store,
        &format!("ota release {version}"),
    );
    let report_build = match built {
        Ok(r) => r,
        Err(e) if e.code == 1 => {
            // The release's own description is wrong: it would be wrong
            // on every try. Its folder is kept for a look.
            fail(&mut state, "its node.rhai does not evaluate".to_string())?;
            eprintln!(
                "release {version}: its node.rhai does not evaluate (unpacked in {}); nothing was changed on this node and the release is recorded as failed",
                dir.display()
            );
            return Err(e);
        }
        Err(e) => {
            state.pending = None;
            state
                .save(&archy_store::StateDir::new(state_dir))
                .map_err(state_error)?;
            return Err(e);
        }
    };
    let generation = report_build.number();
    if let Some(p) = state.pending.as_mut() {
        p.generation = Some(generation);
    }
    state
        .save(&archy_store::StateDir::new(state_dir))
        .map_err(state_error)?;
    let result = on_node(&store, args, "archy ota apply", |switch| {
        Ok(switch.switch(generation))
    })?;
    let seconds = started.elapsed().as_secs_f64();
    match result {
        Ok(Outcome::Switched { to, .. }) | Ok(Outcome::Unchanged { to }) => {
            state.mark_installed(version.clone(), release.blake3.clone(), to);
            state
                .save(&archy_store::StateDir::new(state_dir))
                .map_err(state_error)?;
            prune_releases(&dir);
            report(result)?;
            println!("release {version} is installed as generation {to} ({seconds:.1} s)");
            Ok(())
        }
        Ok(Outcome::RolledBack { ref why, .. }) => {
            fail(&mut state, why.join("; "))?;
            let err = report(result).expect_err("a rollback is an error");
            Err(CliError {
                message: format!(
                    "release {version}: {}\nrelease {version} is recorded as failed and is not tried again ({seconds:.1} s)",
                    err.message
                ),
                ..err
            })
        }
        Err(e) => {
            // Nothing was switched (refused, an image could not be made,
            // podman or the store failed): the release may be tried again.
            state.pending = None;
            state
                .save(&archy_store::StateDir::new(state_dir))
                .map_err(state_error)?;
            report(Err(e))
        }
    }
}

/// How many unpacked releases are kept (the newest, by when they were
/// unpacked): a generation needs none of them once built, they are kept
/// to look at what a recent release contained.
const KEEP_RELEASES: usize = 3;

/// Deletes all but the newest [`KEEP_RELEASES`] unpacked releases beside
/// `installed` (which is always kept). A failure only costs disk space.
fn prune_releases(installed: &Path) {
    let Some(parent) = installed.parent() else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    let mut dirs: Vec<(std::time::SystemTime, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path() != installed)
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    dirs.sort_by_key(|d| std::cmp::Reverse(d.0));
    for (_, old) in dirs.into_iter().skip(KEEP_RELEASES - 1) {
        if let Err(e) = std::fs::remove_dir_all(&old) {
            tracing::warn!("cannot remove the old release {}: {e}", old.display());
        }
    }
}

/// Finishes or undoes a switch a crash interrupted (connecting to systemd
/// only when there is one), then settles the release it was for.
fn recover_if_interrupted(store: &Store, args: SwitchArgs<'_>) -> Result<(), CliError> {
    let journal = Journal::load(&archy_store::StateDir::new(args.state_dir))
        .map_err(|e| CliError::system(e.to_string()))?;
    if journal.is_none() {
        if let Some(line) = settle_pending(args.state_dir, store, None)? {
            eprintln!("archy: {line}");
        }
        return Ok(());
    }
    on_node(store, args, "archy ota apply", |switch| {
        crate::commands::switch::recover_first(switch)
    })
}

/// After an interrupted switch was dealt with (`phase`: where recovery
/// found it; `None`: no switch was in flight), records what became of the
/// release it was for: installed when its generation runs and passed the
/// gate; failed when recovery ran its gate and it failed; to be tried again
/// when its switch was cut off before the gate (a power cut is not the
/// release's fault, unless it happens every time). Returns a line for the
/// operator, `None` when no release was pending.
pub(crate) fn settle_pending(
    state_dir: &Path,
    store: &Store,
    phase: Option<Phase>,
) -> Result<Option<String>, CliError> {
    let mut state = OtaState::load(&archy_store::StateDir::new(state_dir)).map_err(state_error)?;
    let Some(p) = state.pending.clone() else {
        return Ok(None);
    };
    let v = p.version.clone();
    let line = match p.generation {
        None => {
            state.pending = None;
            format!("release {v} was being prepared when archy stopped; nothing of it was applied")
        }
        Some(g) => {
            let current = store.current().map_err(store::store_error)?;
            let record = store.generation(g).map_err(store::store_error)?;
            if current == Some(g) && record.outcome == Recorded::Good {
                state.mark_installed(v.clone(), p.bundle, g);
                format!("release {v} passed its health gate: installed as generation {g}")
            } else {
                match phase {
                    Some(Phase::HealthGate) | Some(Phase::RollingBack) => {
                        let why = record
                            .outcome_reason
                            .unwrap_or_else(|| "it failed its health gate".into());
                        state.mark_failed(v.clone(), p.bundle, why);
                        format!("release {v} failed and was rolled back; it is not tried again")
                    }
                    Some(Phase::Applying) => {
                        if state.mark_interrupted(v.clone(), p.bundle) {
                            format!(
                                "release {v}'s switch was interrupted again and undone; it is recorded as failed"
                            )
                        } else {
                            format!(
                                "release {v}'s switch was interrupted and undone; the next update tries it again"
                            )
                        }
                    }
                    Some(Phase::Planned) | None => {
                        state.pending = None;
                        format!("release {v} was not switched to; the next update tries it again")
                    }
                }
            }
        }
    };
    state
        .save(&archy_store::StateDir::new(state_dir))
        .map_err(state_error)?;
    Ok(Some(line))
}

fn check(source: &SourceArgs, as_json: bool, args: SwitchArgs<'_>) -> Result<(), CliError> {
    // The lock keeps two runs off one download.
    let _lock = store::lock(args.state_dir, "archy ota check", args.wait)?;
    let bundle = obtain(source, args.state_dir)?;
    bundle.discard();
    let store = store::open(args.state_dir)?;
    let current = store.current().map_err(store::store_error)?;
    let state = OtaState::load(&archy_store::StateDir::new(args.state_dir)).map_err(state_error)?;
    let decision = decide(&state, current, &bundle, source, false);
    let r = &bundle.verified.release;
    let running = state.running(current).cloned();
    let verdict = match refusal(&r.version, &decision) {
        Some(e) => format!("it would not be applied: {}", e.message),
        None if decision == Decision::Installed => "it is installed: nothing to do".to_string(),
        None if state.hold.is_some() => {
            "it would be applied by `archy ota apply`; the timer holds off (updates are held)"
                .to_string()
        }
        None => "it would be applied".to_string(),
    };
    let would = matches!(decision, Decision::Apply { .. });
    if as_json {
        let value = json!({
            "version": r.version.to_string(),
            "channel": r.channel,
            "min_archy": r.min_archy.to_string(),
            "size": r.size,
            "blake3": r.blake3,
            "key": bundle.verified.key_id,
            "from": bundle.from,
            "running": running.map(|v| v.to_string()),
            "would_apply": would,
            "held": state.hold.is_some(),
            "verdict": verdict,
        });
        println!("{value:#}");
    } else {
        println!(
            "release {} ({}, {} bytes), signed by trusted key {}, from {}",
            r.version, r.channel, r.size, bundle.verified.key_id, bundle.from
        );
        match running {
            Some(v) => println!("this node runs release {v}"),
            None => println!("this node runs no release yet"),
        }
        println!("{verdict}");
    }
    Ok(())
}

fn status(state_dir: &Path, as_json: bool) -> Result<(), CliError> {
    let state = OtaState::load(&archy_store::StateDir::new(state_dir)).map_err(state_error)?;
    let current = crate::commands::diff::current_generation(state_dir)?.map(|l| l.record.number);
    if as_json {
        let mut value = serde_json::to_value(&state)
            .map_err(|e| CliError::system(format!("cannot print the release record: {e}")))?;
        value["running"] = json!(state.running(current).map(|v| v.to_string()));
        value["current_generation"] = json!(current);
        println!("{value:#}");
        return Ok(());
    }
    match (state.running(current), &state.installed) {
        (Some(v), Some(i)) => println!(
            "release {v} runs (last installed: {} as generation {} at {})",
            i.version, i.generation, i.at
        ),
        _ => println!("no release installed"),
    }
    if let Some(p) = &state.pending {
        println!("pending: release {} since {}", p.version, p.started);
    }
    if let Some(h) = &state.hold {
        println!("updates held since {}: {}", h.at, h.reason);
    }
    if !state.failed.is_empty() {
        println!("failed (never tried again):");
        for f in &state.failed {
            println!("  {} at {}: {}", f.version, f.at, f.reason);
        }
    }
    Ok(())
}

fn hold(reason: Option<String>, args: SwitchArgs<'_>) -> Result<(), CliError> {
    let _lock = store::lock(args.state_dir, "archy ota hold", args.wait)?;
    std::fs::create_dir_all(args.state_dir).map_err(|e| {
        CliError::system(format!("cannot create {}: {e}", args.state_dir.display()))
    })?;
    let mut state =
        OtaState::load(&archy_store::StateDir::new(args.state_dir)).map_err(state_error)?;
    match reason {
        Some(reason) => {
            state.hold = Some(archy_ota::state::Hold {
                reason,
                at: archy_ota::state::now(),
            });
            println!(
                "updates are held: archy-ota.service applies nothing until `archy ota unhold`"
            );
        }
        None if state.hold.is_none() => {
            println!("updates were not held: nothing to do");
            return Ok(());
        }
        None => {
            state.hold = None;
            println!("updates are no longer held");
        }
    }
    state
        .save(&archy_store::StateDir::new(args.state_dir))
        .map_err(state_error)
}

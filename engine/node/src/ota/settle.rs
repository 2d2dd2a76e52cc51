//! Settling an OTA release whose switch a crash interrupted: after recovery
//! dealt with the switch, the release record (`ota.json`) says what became
//! of the release, so the next update neither repeats a failed release nor
//! forgets one that a power cut (not the release) stopped.

use std::fmt;

use archy_ota::state::OtaState;
use archy_store::{Outcome as Recorded, StateDir, Store};
use archy_switch::journal::Phase;
use semver::Version;

use crate::NodeError;

/// What became of a pending release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// archy stopped before its generation was built.
    Abandoned { version: Version },
    /// Its generation runs and passed the gate.
    Installed { version: Version, generation: u64 },
    /// Recovery ran its gate and it failed: never tried again.
    Failed { version: Version },
    /// Its switch was cut off while applying: undone, tried again.
    Interrupted { version: Version },
    /// Cut off while applying a second time: recorded as failed.
    InterruptedTwice { version: Version },
    /// Its switch never started: tried again.
    NotSwitched { version: Version },
}

impl fmt::Display for Settled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Settled::Abandoned { version: v } => write!(
                f,
                "release {v} was being prepared when archy stopped; nothing of it was applied"
            ),
            Settled::Installed {
                version: v,
                generation: g,
            } => write!(
                f,
                "release {v} passed its health gate: installed as generation {g}"
            ),
            Settled::Failed { version: v } => write!(
                f,
                "release {v} failed and was rolled back; it is not tried again"
            ),
            Settled::Interrupted { version: v } => write!(
                f,
                "release {v}'s switch was interrupted and undone; the next update tries it again"
            ),
            Settled::InterruptedTwice { version: v } => write!(
                f,
                "release {v}'s switch was interrupted again and undone; it is recorded as failed"
            ),
            Settled::NotSwitched { version: v } => write!(
                f,
                "release {v} was not switched to; the next update tries it again"
            ),
        }
    }
}

/// After an interrupted switch was dealt with (`phase`: where recovery
/// found it; `None`: no switch was in flight), records what became of the
/// release it was for: installed when its generation runs and passed the
/// gate; failed when recovery ran its gate and it failed; to be tried again
/// when its switch was cut off before the gate (a power cut is not the
/// release's fault, unless it happens every time). `None` when no release
/// was pending.
pub(crate) fn pending(
    state_dir: &StateDir,
    store: &Store,
    phase: Option<Phase>,
) -> Result<Option<Settled>, NodeError> {
    if !state_dir.ota_record().exists() {
        return Ok(None);
    }
    let mut state = OtaState::load(state_dir)?;
    let Some(p) = state.pending.clone() else {
        return Ok(None);
    };
    let version = p.version.clone();
    let settled = match p.generation {
        None => {
            state.pending = None;
            Settled::Abandoned { version }
        }
        Some(g) => {
            let record = store.generation(g)?;
            if store.current()? == Some(g) && record.outcome == Recorded::Good {
                state.mark_installed(version.clone(), p.bundle, g);
                Settled::Installed {
                    version,
                    generation: g,
                }
            } else {
                match phase {
                    Some(Phase::HealthGate) | Some(Phase::RollingBack) => {
                        let why = record
                            .outcome_reason
                            .unwrap_or_else(|| "it failed its health gate".into());
                        state.mark_failed(version.clone(), p.bundle, why);
                        Settled::Failed { version }
                    }
                    Some(Phase::Applying) => {
                        if state.mark_interrupted(version.clone(), p.bundle) {
                            Settled::InterruptedTwice { version }
                        } else {
                            Settled::Interrupted { version }
                        }
                    }
                    Some(Phase::Planned) | None => {
                        state.pending = None;
                        Settled::NotSwitched { version }
                    }
                }
            }
        }
    };
    state.save(state_dir)?;
    Ok(Some(settled))
}

//! The exit codes of `archy`, decided here and only here: whose problem a
//! failure is follows from which engine error it came from.

use archy_build::BuildError;
use archy_store::{RotationsError, StoreError};
use archy_switch::switch::SwitchError;

use crate::NodeError;
use crate::status::Status;

/// What an `archy` run ends with. The numbers are part of the interface
/// (documented in `archy --help` and the README).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// Done.
    Done = 0,
    /// The input is wrong (node description, arguments, bundle): nothing
    /// was changed.
    Input = 1,
    /// The switch failed and the node was rolled back.
    RolledBack = 2,
    /// The system is in a state archy cannot fix alone.
    System = 3,
    /// `archy status`: the node differs from its current generation
    /// (`archy reconcile` repairs it). Not a failure of archy.
    Differs = 4,
}

impl Exit {
    pub fn code(self) -> u8 {
        self as u8
    }
}

impl From<&StoreError> for Exit {
    fn from(err: &StoreError) -> Self {
        match err {
            // Another archy is working: the command was fine, just not now.
            StoreError::LockHeld { .. }
            | StoreError::NoSuchGeneration { .. }
            | StoreError::SourceChanged { .. } => Exit::Input,
            // A full disk, a read-only state dir, corruption: nothing the
            // node description can fix.
            _ => Exit::System,
        }
    }
}

impl From<&SwitchError> for Exit {
    fn from(err: &SwitchError) -> Self {
        match err {
            // Nothing was changed, and the description or the operator can
            // fix it.
            SwitchError::Image(_)
            | SwitchError::Refused(_)
            | SwitchError::RefusedBecause(_)
            | SwitchError::DataRefused(_) => Exit::Input,
            _ => Exit::System,
        }
    }
}

impl From<&NodeError> for Exit {
    fn from(err: &NodeError) -> Self {
        match err {
            NodeError::Store(e) => e.into(),
            NodeError::Build(BuildError::Store(e)) => e.into(),
            NodeError::Build(BuildError::Software(e)) if e.is_input() => Exit::Input,
            // Refused before anything was written: the operator frees
            // space (`archy gc`) and runs it again.
            NodeError::Build(BuildError::NoSpace(_)) => Exit::Input,
            NodeError::Switch(e) => e.as_ref().into(),
            NodeError::Rotations(RotationsError::Malformed { .. }) => Exit::Input,
            NodeError::Rotations(RotationsError::Newer(_)) => Exit::System,
            // An app held with its data: a person must decide.
            NodeError::RolledBack { held, .. } if !held.is_empty() => Exit::System,
            NodeError::RolledBack { .. } => Exit::RolledBack,
            NodeError::Eval(_)
            | NodeError::Fact(_)
            | NodeError::NodeFile { .. }
            | NodeError::Sources { .. }
            | NodeError::NoPrevious
            | NodeError::KeepApp { .. }
            | NodeError::NoSuchApp { .. }
            | NodeError::AppStillRuns { .. }
            | NodeError::NotAdopted { .. }
            | NodeError::AdoptedDiffers { .. }
            | NodeError::ClobberNotConfirmed { .. }
            | NodeError::RootNotHere { .. }
            | NodeError::NeverSwitched
            | NodeError::NoSuchSecret { .. }
            | NodeError::RotationOverflow { .. }
            | NodeError::ReleaseRefused(_)
            | NodeError::Repository(_)
            | NodeError::ReleaseBroken { .. }
            | NodeError::ReleaseEval { .. }
            | NodeError::ReleaseSoftware { .. }
            | NodeError::MirrorWithFile
            | NodeError::NotUrl(_)
            | NodeError::Signature { .. }
            | NodeError::SignatureText { .. }
            | NodeError::Unverified { .. }
            | NodeError::TrustedKeys(_)
            | NodeError::Download(_)
            | NodeError::SignatureFetch(_)
            | NodeError::SigningKey(_)
            | NodeError::Pack(_)
            | NodeError::KeyExists(_)
            | NodeError::BadChannel(_)
            | NodeError::Tree { .. } => Exit::Input,
            NodeError::Build(_)
            | NodeError::Rotations(_)
            | NodeError::Current { .. }
            | NodeError::Load { .. }
            | NodeError::Realize(_)
            | NodeError::StoreDamaged { .. }
            | NodeError::Recovery(_)
            | NodeError::Systemd { .. }
            | NodeError::Unrepaired(_)
            | NodeError::OtaRecord(_)
            | NodeError::Keygen(_)
            | NodeError::Io { .. }
            | NodeError::Json { .. } => Exit::System,
        }
    }
}

impl From<&Status> for Exit {
    fn from(status: &Status) -> Self {
        if status.is_clean() {
            Exit::Done
        } else if status.needs_operator() {
            Exit::System
        } else {
            Exit::Differs
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_codes_are_the_documented_ones() {
        let codes: Vec<u8> = [
            Exit::Done,
            Exit::Input,
            Exit::RolledBack,
            Exit::System,
            Exit::Differs,
        ]
        .into_iter()
        .map(Exit::code)
        .collect();
        assert_eq!(codes, [0, 1, 2, 3, 4]);
    }

    #[test]
    fn a_held_lock_is_the_callers_problem_and_a_full_disk_the_systems() {
        let held = NodeError::Store(StoreError::LockHeld {
            path: "/var/lib/archy/lock".into(),
            holder: None,
            other_pid: None,
        });
        assert_eq!(Exit::from(&held), Exit::Input);
        let rolled = NodeError::RolledBack {
            failed: 2,
            back_to: Some(1),
            why: vec!["health check x".into()],
            held: Vec::new(),
            release: None,
        };
        assert_eq!(Exit::from(&rolled), Exit::RolledBack);
        // An app left stopped with its data is for a person to decide.
        let held_app = NodeError::RolledBack {
            failed: 2,
            back_to: Some(1),
            why: vec!["health check x".into()],
            held: vec!["lnd is stopped and its data kept".into()],
            release: None,
        };
        assert_eq!(Exit::from(&held_app), Exit::System);
        assert_eq!(Exit::from(&NodeError::NoPrevious), Exit::Input);
    }
}

//! Adopting a running container that archy did not make, without
//! restarting it: what podman says of it is compared with its declaration
//! (by the switch; the comparison comes in here as data), and the
//! differences decide how it is adopted.
//!
//! An adopted container keeps running as it is. Its Quadlet unit is
//! written and enabled (the generator adds its [Install] link, so a
//! reboot starts it), but held: a runtime drop-in keeps systemd from
//! starting it (a start, also one a dependent pulls in, is skipped as a
//! failed condition) until the hand-over, which stops the old container
//! and starts the unit. That happens at the first switch that restarts
//! the app anyway, at `archy adopt --now APP`, or at the next boot (the
//! drop-in is under /run).

use std::fmt;

use serde::{Deserialize, Serialize};

/// What a difference is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Aspect {
    Image,
    Mount,
    Network,
    Port,
    Env,
    Command,
    User,
}

impl Aspect {
    /// Whether starting the unit in the container's place could lose or
    /// hide what it has: other software, other data, another address the
    /// other apps reach it at. The rest a restart under the unit corrects.
    pub fn unsafe_to_hand_over(self) -> bool {
        matches!(self, Aspect::Image | Aspect::Mount | Aspect::Network)
    }

    fn as_str(self) -> &'static str {
        match self {
            Aspect::Image => "image",
            Aspect::Mount => "mount",
            Aspect::Network => "network",
            Aspect::Port => "port",
            Aspect::Env => "env",
            Aspect::Command => "command",
            Aspect::User => "user",
        }
    }
}

/// One way the running container is not what its Quadlet file would make.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Difference {
    pub aspect: Aspect,
    /// What the declaration makes (empty: nothing).
    pub declared: String,
    /// What runs (empty: nothing).
    pub running: String,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let either = |s: &str| {
            if s.is_empty() {
                "none".to_owned()
            } else {
                s.to_owned()
            }
        };
        write!(
            f,
            "{} {} (declared {})",
            self.aspect.as_str(),
            either(&self.running),
            either(&self.declared)
        )
    }
}

/// How a running container archy did not make is adopted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AdoptMode {
    /// It is what the declaration makes: adopted as it runs.
    InPlace,
    /// It differs only in what a restart under its unit corrects
    /// (command, environment keys, ports, user): adopted as it runs,
    /// corrected at the hand-over.
    AtRestart,
    /// It differs in image, mounts or network: adopted as it runs, and
    /// never handed over by a switch (the operator decides).
    Differs,
}

/// A running container with a declared name that archy did not make, as
/// the switch observed it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Adoption {
    /// How it differs from what its Quadlet file would make.
    pub differences: Vec<Difference>,
    /// Its unit is already held (an earlier switch adopted it).
    pub held: bool,
}

impl Adoption {
    pub fn mode(&self) -> AdoptMode {
        if self.differences.is_empty() {
            AdoptMode::InPlace
        } else if self
            .differences
            .iter()
            .any(|d| d.aspect.unsafe_to_hand_over())
        {
            AdoptMode::Differs
        } else {
            AdoptMode::AtRestart
        }
    }

    /// The differences in words, for the plan.
    pub fn listed(&self) -> Vec<String> {
        self.differences.iter().map(ToString::to_string).collect()
    }
}

/// The name of the runtime drop-in that holds an adopted container's unit.
pub const HOLD_DROPIN: &str = "50-archy-adopted.conf";

/// Where the hold drop-in of `unit` is (relative to the node's root).
pub fn hold_path(unit: &str) -> String {
    format!("run/systemd/system/{unit}.d/{HOLD_DROPIN}")
}

/// The hold drop-in's text: a condition that fails while the file itself
/// exists, so that removing it (the hand-over, or a reboot emptying /run)
/// is all that lets the unit start.
pub fn hold_text(unit: &str, container: &str) -> String {
    let path = format!("/{}", hold_path(unit));
    format!(
        "# Written by archy: the container {container} runs, made outside archy, and\n\
         # was adopted in place. This unit starts at its hand-over (archy adopt --now,\n\
         # or a switch that restarts it) or at the next boot, not before.\n\
         [Unit]\n\
         ConditionPathExists=!{path}\n"
    )
}

//! archy's switch: carrying out a plan through systemd, the health gate,
//! and the way back when the gate fails.
//!
//! # Cargo features
//!
//! - `crash-points` (off by default): the crash tests' hook. A switch built
//!   with it reads `ARCHY_PAUSE_AFTER=<step>` from its environment and stops
//!   for a minute right after recording `step` in its journal, so that a
//!   real-node test can kill it exactly there. `archy`'s `[dev-dependencies]`
//!   enable it, so the `archy` binary `cargo test` builds for those tests
//!   has the hook and a `cargo build` of archy does not.

pub mod adopt;
pub mod containers;
pub mod data;
pub mod drift;
pub mod health;
pub mod journal;
pub mod podman_state;
pub mod rootless;
pub mod self_update;
pub mod switch;
pub mod units;

//! archy's switch: carrying out a plan through systemd, the health gate,
//! and the way back when the gate fails.

pub mod containers;
pub mod drift;
pub mod health;
pub mod journal;
pub mod podman_state;
pub mod switch;
pub mod units;

//! archy's systemd and Quadlet vocabulary, beside the graph: which
//! `[Section]`s and keys systemd reads for each unit type ([`unit_keys`],
//! for the evaluator's checks), and a graph's resources read and rendered
//! as the files systemd runs: a `unit(...)` as its own unit file
//! ([`unit_file`]), a container, network or volume as a Quadlet file
//! ([`quadlet`]), all seen the same way as a [`UnitSource`] ([`units`]).
//!
//! The types are archy-graph's; this crate reads them through extension
//! traits ([`GraphUnits`], [`unit_file::UnitFile`],
//! [`quadlet::QuadletFile`]). archy-graph does not depend on it: a graph is
//! hashed from its resources' canonical encoding, never from their rendered
//! files, so rendering is needed only at planning and activation.

pub mod quadlet;
pub mod unit_file;
pub mod unit_keys;
pub mod units;

pub use units::{GraphUnits, UnitFile, UnitSource, unit_file_path};

//! Release bundles for over-the-air updates: a node's sources and a
//! manifest in a signed, compressed tarball. This crate packs them, checks
//! their signature against the node's trusted keys, unpacks them without
//! trusting a byte of their layout, downloads them from mirrors, and keeps
//! the node's record of what it installed, what is pending and what failed.
//! Switching to a release is the switch crate's job.

pub mod download;
pub mod error;
pub mod keys;
pub mod manifest;
pub mod objects;
pub mod pack;
pub mod publish;
pub mod state;
pub mod unpack;
pub mod verify;

pub use error::OtaError;
pub mod tuf;

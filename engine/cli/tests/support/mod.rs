//! Support for tests that need more than the `archy` binary.

#![allow(dead_code)] // Each test file uses a different part of this.

pub mod archy_node;
pub mod node;
pub mod parity;
pub mod releases;
pub mod wait;

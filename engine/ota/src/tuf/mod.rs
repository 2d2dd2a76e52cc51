//! Releases from a TUF repository (The Update Framework, through the
//! `tough` crate): a publisher keeps a folder any static file server can
//! serve (`metadata/` and `targets/`), and a node fetches it from mirrors
//! that it need not trust, starting from a root of trust pinned on the node.
//!
//! TUF is what stops a mirror from serving old metadata forever (every
//! role expires, the timestamp within a day), from replaying older
//! metadata (versions never go down on a node), from mixing files of two
//! publications (the snapshot pins the targets' hash) and from swapping a
//! bundle (each target's length and sha256 are signed); and it lets a lost
//! key be rotated out by a new root signed by the old one's threshold.
//!
//! On top of it, each release target carries archy's own signed details
//! ([`meta::ReleaseMeta`]): version, channel, when it was published, the
//! waves it rolls out in, and whether it was pulled.

pub mod choose;
pub mod client;
mod error;
pub mod keys;
pub mod meta;
pub mod publish;
mod transport;
pub mod waves;

pub use error::TufError;

/// tough is async; archy's engine is not. Each call runs on a runtime of
/// its own thread, for as long as that call lasts.
pub(crate) fn block_on<F: std::future::Future>(future: F) -> Result<F::Output, TufError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map_err(|e| TufError::Runtime(e.to_string()))?;
    Ok(runtime.block_on(future))
}

/// Metadata lifetimes (see [`publish::Lifetimes`]).
pub use jiff::SignedDuration;
/// The time type of the metadata (expiries, publication, waves).
pub use jiff::Timestamp;
/// The TUF roles, for `rotate`.
pub use tough::schema::RoleType;

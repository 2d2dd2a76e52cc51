//! archy's build step: a graph's objects written into the store and
//! recorded as a generation ([`build`]), a generation loaded back from the
//! store without any of its sources ([`load`]), and a loaded build context
//! written out as a folder for `podman build` ([`write_context`]).
//!
//! Between the two sits the invariant a rollback relies on: every object a
//! generation needs is in the store under the digest the graph gives it, so
//! the store alone is enough to realize any generation it lists.

mod build;
mod context;
mod error;
mod load;
pub mod objects;
pub mod software;
mod space;

pub use build::{BuildReport, build, build_with, facts_json};
pub use context::write_context;
pub use error::{BuildError, LoadError};
pub use load::{LoadedGeneration, load, loaded_span};
pub use space::SpaceNeed;

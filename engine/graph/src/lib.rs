//! archy's resource graph: the typed resources a node description evaluates
//! to, the checks that need the whole description, and the Merkle hashing
//! that names every resource and the graph itself.
//!
//! Pure: no I/O, no clock, no randomness. The evaluator (`archy-eval`)
//! produces [`Declarations`]; [`assemble`] turns them into a [`Graph`].

pub mod context;
pub mod derive;
pub mod encode;
pub mod graph;
pub mod json;
pub mod names;
pub mod problem;
pub mod quadlet;
pub mod quantity;
pub mod resource;
pub mod unit_file;
pub mod unit_keys;
pub mod units;

/// One digest type for the whole engine: the store names objects with the
/// same digests the graph names resources and blobs with.
pub use archy_store::Digest;
pub use context::{BuildContext, ContextFile};
pub use encode::{Fact, GraphRecord, ResourceRecord};
pub use graph::{Declarations, Declared, Graph, Node, assemble};
pub use problem::{Problem, Span};
pub use resource::{Kind, Resource, ResourceKey};
pub use units::{UnitFile, UnitSource, unit_file_path};

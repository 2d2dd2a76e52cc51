//! archy's resource graph: the typed resources a node description evaluates
//! to, the checks that need the whole description, and the Merkle hashing
//! that names every resource and the graph itself.
//!
//! Pure: no I/O, no clock, no randomness. The evaluator (`archy-eval`)
//! produces [`Declarations`]; [`assemble`] turns them into a [`Graph`].
//!
//! systemd's and Quadlet's vocabulary (which keys a unit may have, how a
//! resource is rendered as a unit or Quadlet file) is `archy-units`'s: a
//! graph is hashed from its resources' canonical encoding, never from
//! their rendered files.

/// Where the node's secret imports are written (`secret(name, #{ import })`
/// or `archy::secret_imports`): each secret's name and the old node's file
/// its value is taken from, as JSON; paths only, never a value.
pub const SECRET_IMPORTS_PATH: &str = "/etc/archy/secret-imports.json";

pub mod app;
pub mod context;
pub mod data;
pub mod derive;
pub mod encode;
pub mod graph;
pub mod json;
pub mod keep;
pub mod legacy;
pub mod names;
pub mod problem;
pub mod quantity;
pub mod resource;
pub mod tree;

/// One digest type for the whole engine: the store names objects with the
/// same digests the graph names resources and blobs with.
pub use archy_store::Digest;
pub use context::{BuildContext, ContextFile};
pub use encode::{Fact, GraphRecord, ResourceRecord};
pub use graph::{Declarations, Declared, Graph, Node, assemble};
pub use problem::{Problem, Span};
pub use resource::{Kind, Resource, ResourceKey};

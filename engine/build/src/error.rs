//! What can go wrong building a graph into the store or loading a
//! generation back from it.

use archy_graph::encode::DecodeError;
use archy_store::{ObjectId, StoreError};

use crate::space::SpaceNeed;

/// A build that did not record a generation. Objects written before the
/// failure stay in the store (they are valid, and the next build reuses
/// them); no record points at anything missing.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The store refused a write (disk full, not writable, ...).
    #[error(transparent)]
    Store(#[from] StoreError),

    /// Software could not be fetched or did not match its declared hash.
    #[error(transparent)]
    Software(Box<crate::software::SoftwareError>),

    /// The store's file system has less free space than the build needs:
    /// refused before anything was written.
    #[error(
        "not enough space for this build: {0}; run `archy gc` to delete old generations and \
         unused objects (`archy gc --keep 1` keeps the fewest), or free space on that disk, \
         then try again; nothing was written"
    )]
    NoSpace(Box<SpaceNeed>),

    /// The disk filled up while the build wrote (another writer took the
    /// space, or the file system ran out of inodes first).
    #[error("{source}; {need}")]
    DiskFull {
        /// Boxed, as every `BuildError` would pay for it.
        need: Box<SpaceNeed>,
        #[source]
        source: StoreError,
    },

    /// A file's content is not among the graph's blobs: the graph was not
    /// made by the evaluator, or the evaluator lost a text.
    #[error("the graph has no text for {key} (content {digest}); this is a bug in archy")]
    MissingBlob { key: String, digest: String },

    /// A container is built from a context whose files are not among the
    /// graph's contexts: the graph was not made by the evaluator, or the
    /// evaluator lost them. Without them no switch could build the image.
    #[error(
        "the graph has no files for the build context {context} of {key} (tree {tree}); \
         this is a bug in archy"
    )]
    MissingContext {
        key: String,
        context: String,
        tree: String,
    },

    /// An object's bytes do not hash to the digest the graph gives them: the
    /// canonical encoding is not deterministic. Storing it would make the
    /// generation unloadable, so the build stops.
    #[error(
        "{what} encodes to bytes with digest {stored}, but the graph names it {expected}; \
         this is a bug in archy's canonical encoding"
    )]
    HashMismatch {
        what: String,
        expected: String,
        stored: String,
    },
}

/// A generation that cannot be loaded from the store.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The record or an object cannot be read (missing, corrupt, broken
    /// record, no such generation).
    #[error(transparent)]
    Store(#[from] StoreError),

    /// The record's graph object is not the object its root names.
    #[error("generation {number}'s graph object {graph} is not named by its root {root}")]
    GraphNotRoot {
        number: u64,
        graph: ObjectId,
        root: String,
    },

    /// An object's bytes do not decode as the record they should be.
    #[error("object {id} of generation {number} cannot be read: {source}")]
    Decode {
        number: u64,
        id: ObjectId,
        source: DecodeError,
    },

    /// The graph was written by an archy with a different encoding.
    #[error(
        "generation {number} was built with encoding {found:?}, this archy reads {expected:?}; \
         build it again with this archy"
    )]
    Encoding {
        number: u64,
        found: String,
        expected: String,
    },

    /// The graph names a resource whose object the record does not list.
    #[error(
        "generation {number}'s graph has {key} with hash {hash}, but its record lists no \
         object with that digest"
    )]
    NotListed {
        number: u64,
        key: String,
        hash: String,
    },

    /// An object holds a different resource than the graph says.
    #[error("object {id} of generation {number} should hold {expected} but holds {found}")]
    WrongResource {
        number: u64,
        id: ObjectId,
        expected: String,
        found: String,
    },

    /// A resource refers to a resource with a hash the graph does not give it.
    #[error(
        "in generation {number}, {key} refers to {reference} with hash {hash}, which is not \
         the hash the graph gives it"
    )]
    DanglingRef {
        number: u64,
        key: String,
        reference: String,
        hash: String,
    },

    /// A container is built from a context whose manifest the record does
    /// not list: the generation was built without its build contexts, so
    /// its image cannot be built from the store.
    #[error(
        "generation {number}'s {key} is built from {context} (tree {tree}), but its record \
         lists no build context object with that digest"
    )]
    ContextNotListed {
        number: u64,
        key: String,
        context: String,
        tree: String,
    },

    /// A build context's manifest names a file whose object the record does
    /// not list.
    #[error(
        "generation {number}'s build context {context} has {path} with content {content}, \
         but its record lists no object with that digest"
    )]
    ContextFileNotListed {
        number: u64,
        context: String,
        path: String,
        content: String,
    },

    /// An object of a build context is listed but cannot be read (missing
    /// from the store, corrupt).
    #[error("generation {number}'s build context {context} cannot be read: {source}")]
    ContextUnreadable {
        number: u64,
        context: String,
        /// Boxed: a store error is large, and every `LoadError` would pay
        /// for it.
        source: Box<StoreError>,
    },

    /// A file's content object is not UTF-8 text.
    #[error("object {id} of generation {number} should be a file's text but is not UTF-8")]
    NotText { number: u64, id: ObjectId },
}

impl From<crate::software::SoftwareError> for BuildError {
    fn from(e: crate::software::SoftwareError) -> Self {
        BuildError::Software(Box::new(e))
    }
}

//! Bounding the memory an evaluation holds. rhai's own data-size limits
//! re-measure a whole array or map after every call that may change it
//! (`a.push(x)` walks all of `a`), which makes building a list quadratic;
//! archy turns them off and bounds the evaluation's memory instead.
//!
//! A binary that evaluates untrusted descriptions makes [`Allocator`] its
//! global allocator and registers it (`archy` does):
//!
//! ```ignore
//! #[global_allocator]
//! static ALLOC: archy_eval::memory::Allocator = archy_eval::memory::allocator();
//! fn main() {
//!     archy_eval::memory::register(&ALLOC);
//! }
//! ```
//!
//! The evaluator then stops an evaluation between two operations once the
//! bytes the process holds have grown by more than
//! [`Limits::memory_bytes`](crate::Limits::memory_bytes), and the allocator
//! refuses any allocation that would take them past three times that (the process
//! aborts then: better than the kernel's out-of-memory killer choosing a
//! victim on the node). Without a registered allocator only the
//! single-operation guards of [`crate::sandbox`] bound memory.

use std::alloc::System;
use std::sync::OnceLock;

/// The system allocator, counting the bytes held and able to refuse
/// allocations past a limit.
pub type Allocator = cap::Cap<System>;

/// An [`Allocator`] with no limit, for a `#[global_allocator]` static.
pub const fn allocator() -> Allocator {
    cap::Cap::new(System, usize::MAX)
}

static REGISTERED: OnceLock<&'static Allocator> = OnceLock::new();

/// Tells the evaluator which allocator counts this process's memory.
pub fn register(allocator: &'static Allocator) {
    let _ = REGISTERED.set(allocator);
}

/// The bytes the process holds, when an allocator is registered.
pub fn held() -> Option<usize> {
    REGISTERED.get().map(|a| a.allocated())
}

/// While alive, the registered allocator refuses allocations that would
/// take the process above `cap` bytes.
#[derive(Debug)]
pub(crate) struct Capped;

impl Capped {
    pub(crate) fn new(cap: usize) -> Capped {
        if let Some(a) = REGISTERED.get() {
            let _ = a.set_limit(cap.max(a.allocated()));
        }
        Capped
    }
}

impl Drop for Capped {
    fn drop(&mut self) {
        if let Some(a) = REGISTERED.get() {
            let _ = a.set_limit(usize::MAX);
        }
    }
}

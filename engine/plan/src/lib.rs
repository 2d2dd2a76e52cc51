//! archy's planner: the live generation and the new one in, the plan of a
//! switch out. Pure: what apply observed on the node comes in as data
//! ([`Observed`]), so every decision here is a library test.

pub mod adopt;
pub mod data;
mod diff;
pub mod display;
pub mod drift;
mod instances;
mod legacy;
mod lifecycle;
mod order;
pub mod plan;
mod repair;

pub use adopt::{AdoptMode, Adoption, Aspect, Difference};
pub use archy_units::unit_file_path;
pub use diff::{Import, Observed, plan};
pub use drift::Drift;
pub use lifecycle::Clobbering;
pub use order::{dependency_order, stop_order};
pub use plan::{Change, ChangeOp, Clobber, ImageAction, ImageOp, Plan, Reason, UnitAction, UnitOp};

//! One module per `archy` subcommand.

pub mod build;
pub mod eval;
pub mod gc;
pub mod generations;
pub mod store;

//! One module per `archy` subcommand.

pub mod build;
pub mod diff;
pub mod eval;
pub mod gc;
pub mod generations;
pub mod secret;
pub mod status;
pub mod store;
pub mod switch;

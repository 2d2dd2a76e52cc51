//! One module per `archy` subcommand.

pub mod build;
pub mod diff;
pub mod eval;
pub mod gc;
pub mod generations;
pub mod ota;
pub mod reconcile;
pub mod release;
pub mod secret;
pub mod status;
pub mod store;
pub mod switch;

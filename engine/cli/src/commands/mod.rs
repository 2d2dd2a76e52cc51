//! One module per `archy` subcommand.

pub mod eval;

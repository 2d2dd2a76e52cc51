//! `archy hash file PATH` / `archy hash tree PATH`: the hash to declare
//! software by, in `artifact(...)` and `tree(...)`.

use std::path::PathBuf;

use archy_node::{Exit, NodeError};
use clap::Subcommand;

use super::human_bytes;

#[derive(Debug, Subcommand)]
pub enum HashCommand {
    /// A file's blake3 (and sha256), for `artifact(path, #{ blake3 })`.
    File { path: PathBuf },
    /// A tree's blake3 as a build normalizes it, for `tree(path, #{ blake3 })`:
    /// a folder, `.tar`, `.tar.gz` or `.tar.zst`.
    Tree { path: PathBuf },
}

pub fn run(command: &HashCommand) -> Result<Exit, NodeError> {
    match command {
        HashCommand::File { path } => {
            let h = archy_node::hash::file(path)?;
            println!("blake3 {}", h.blake3);
            println!("sha256 {}", h.sha256);
            println!("size   {}", human_bytes(h.size));
        }
        HashCommand::Tree { path } => {
            let (digest, files, size) = archy_node::hash::tree(path)?;
            println!("blake3 {digest}");
            println!("files  {files} ({})", human_bytes(size));
        }
    }
    Ok(Exit::Done)
}

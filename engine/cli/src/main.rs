use clap::Parser;

/// Counts the memory held, so an evaluation can be bounded in memory (see
/// `archy_eval::memory`).
#[global_allocator]
static ALLOC: archy_eval::memory::Allocator = archy_eval::memory::allocator();

fn main() -> std::process::ExitCode {
    archy_eval::memory::register(&ALLOC);
    archy_cli::logging::init();
    archy_cli::run(archy_cli::Cli::parse())
}

use clap::Parser;

fn main() -> std::process::ExitCode {
    archy_cli::logging::init();
    archy_cli::run(archy_cli::Cli::parse())
}

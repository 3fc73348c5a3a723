//! The `relec` binary: parses the command line, loads the config, sets up telemetry and
//! hands over to the command; everything else lives in the library crates.

mod cli;
mod commands;

use std::process::ExitCode;

use clap::Parser;

/// glibc's allocator spends a fifth of the ingest path's time in malloc and free under
/// many threads (measured with `perf` on `relec bench ingest`); mimalloc does not.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

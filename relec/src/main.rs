//! The `relec` binary: parses the command line, loads the config, sets up telemetry and
//! hands over to the command; everything else lives in the library crates.

mod cli;
mod commands;

use std::process::ExitCode;

use clap::Parser;

/// glibc's allocator spends a fifth of the ingest path's time in malloc and free under
/// many threads (measured with `perf` on `relec bench ingest`); mimalloc does not. Built
/// without transparent huge pages (`no_thp`): where the kernel grants them on request, a
/// fresh 2 MiB page is zeroed at its first touch, and which runs paid for that was luck
/// (a routed copy cost 0.44 or 1.04 µs in `bench rules`, run to run; 0.47 without).
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

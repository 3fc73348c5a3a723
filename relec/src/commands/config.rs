//! `relec config check FILE`: every problem at once, with its key path.

use std::process::ExitCode;

use relec_plumbing::{Config, Error};

use crate::cli::ConfigCommand;

pub fn run(command: ConfigCommand) -> anyhow::Result<ExitCode> {
    let ConfigCommand::Check { file, print } = command;
    match Config::load(&file) {
        Ok(config) => {
            println!("{}: ok", file.display());
            if print {
                println!("{config:#?}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(Error::Config(problems)) => {
            let n = problems.len();
            let noun = if n == 1 { "problem" } else { "problems" };
            eprintln!("{}: {n} {noun}", file.display());
            for p in problems.iter() {
                eprintln!("  {}: {}", p.path, p.message);
            }
            Ok(ExitCode::FAILURE)
        }
        Err(e) => Err(e.into()),
    }
}

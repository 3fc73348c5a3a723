//! `relec rules check`: what an analyst runs before a rule goes live.

use std::process::ExitCode;

use relec_rules::{
    rule::load_dir,
    sandbox::{Limits, engine},
};

use crate::cli::RulesCommand;

pub fn run(command: RulesCommand) -> anyhow::Result<ExitCode> {
    let RulesCommand::Check { dir } = command;
    anyhow::ensure!(
        dir.is_dir(),
        "{}: not a directory of .rhai rule files",
        dir.display()
    );
    let engine = engine(&Limits::default());
    let (rules, errors) = load_dir(&engine, &dir);
    for rule in &rules {
        println!(
            "{}: ok  {} ({}, {}, trigger {:?}, version {})",
            rule.path.display(),
            rule.id,
            rule.title,
            format!("{:?}", rule.severity).to_lowercase(),
            rule.trigger,
            rule.version
        );
    }
    for error in &errors {
        eprintln!("{error}");
    }
    println!("{} rules ok, {} with problems", rules.len(), errors.len());
    Ok(if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

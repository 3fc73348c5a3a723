//! `relec publish FILE`: a bulk file of incidents through the same validation, country
//! binding, deduplication and producer as the HTTP API, with a progress bar, an error per
//! rejected line and a summary. Re-running the same file publishes nothing twice.

use std::{
    io::{BufRead, BufReader},
    process::ExitCode,
};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use relec_ingest::{
    Error,
    file::{self, Format, Line},
    publisher::{Item, Outcome, system_clock},
    validate::FieldError,
};
use relec_plumbing::{Config, kafka::Kafka, telemetry::Telemetry};

use crate::cli::PublishArgs;

pub async fn run(args: PublishArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let format = Format::from_path(&args.file).with_context(|| {
        format!(
            "{}: not .csv, .jsonl, .ndjson or .json",
            args.file.display()
        )
    })?;
    let kafka = Kafka::connect(config)?;
    let api = relec_ingest::build(config, &kafka, &Telemetry::new(), system_clock()).await?;
    let agency = api
        .agencies
        .authenticate(&args.key)
        .context("unknown API key: no [[ingest.agencies]] entry has its hash")?
        .clone();

    let total = count_lines(&args.file)?.saturating_sub(usize::from(format == Format::Csv));
    let bar = ProgressBar::new(total as u64).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} lines {per_sec} ({eta} left)")
            .expect("valid template"),
    );
    let name = args.file.display().to_string();
    let (mut published, mut duplicates, mut rejected) = (0u64, 0u64, 0u64);
    let report = |number: usize, errors: &[FieldError]| {
        for e in errors {
            let at = if e.pointer.is_empty() {
                String::new()
            } else {
                format!(" {}:", e.pointer)
            };
            bar.suspend(|| eprintln!("{name}:{number}:{at} {}", e.reason));
        }
    };

    let mut lines = file::read(&args.file, format)?.peekable();
    while lines.peek().is_some() {
        let chunk: Vec<Line> = lines.by_ref().take(args.batch.max(1)).collect();
        let mut numbers = Vec::new();
        let mut items = Vec::new();
        for line in chunk {
            // A line for another country is this line's error, not the whole file's.
            if let Item::Event(e) = &line.item
                && !agency.may_report_for(&e.reporting_country)
            {
                rejected += 1;
                let reason = format!(
                    "agency {} may not report for {}",
                    agency.id, e.reporting_country
                );
                report(
                    line.number,
                    &[FieldError::new("/reporting_country", reason)],
                );
                continue;
            }
            numbers.push(line.number);
            items.push(line.item);
        }
        let count = items.len() as u64;
        let outcomes = match api.publisher.publish(&agency, items).await {
            Ok(outcomes) => outcomes,
            Err(Error::Unavailable(reason)) => {
                bar.abandon();
                eprintln!(
                    "{name}: Kafka unavailable near line {}: {reason}\n\
                     published {published} before that; run the same command again to resume \
                     (nothing is published twice)",
                    numbers.first().copied().unwrap_or(0)
                );
                return Ok(ExitCode::from(2));
            }
            Err(e) => return Err(e.into()),
        };
        for (number, outcome) in numbers.into_iter().zip(outcomes) {
            match outcome {
                Outcome::Accepted(_) => published += 1,
                Outcome::Duplicate => duplicates += 1,
                Outcome::Rejected(errors) => {
                    rejected += 1;
                    report(number, &errors);
                }
            }
        }
        bar.inc(count);
    }
    bar.finish_and_clear();
    let lines = published + duplicates + rejected;
    println!(
        "{name}: {lines} events: {published} published, {duplicates} already published, {rejected} rejected"
    );
    Ok(if rejected == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Non-empty lines of `path`: the length of a progress bar over it.
pub(super) fn count_lines(path: &std::path::Path) -> anyhow::Result<usize> {
    let reader =
        BufReader::new(std::fs::File::open(path).with_context(|| path.display().to_string())?);
    Ok(reader
        .lines()
        .map_while(Result::ok)
        .filter(|l| !l.trim().is_empty())
        .count())
}

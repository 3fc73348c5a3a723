//! `relec rules backtest`: past incidents from a file (as `relec publish` reads it) or a
//! topic (from its beginning to its current end) replayed through the rules at full speed
//! with a progress bar; prints the transitions that would have fired, as a table or CSV,
//! and what each rule cost.

use std::{
    collections::BTreeMap,
    io::Write,
    path::Path,
    process::ExitCode,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use rdkafka::{
    Message, Offset, TopicPartitionList,
    consumer::{Consumer, StreamConsumer},
    error::KafkaError,
};
use relec_ingest::{
    file::{self, Format},
    publisher::Item,
};
use relec_plumbing::{Config, kafka::Kafka};
use relec_rules::{
    backtest::{Backtest, Fed, Report, RuleStats, Window, transition_day},
    fixture::parse_date,
    rule::{Rule, load_dir},
    sandbox::{Limits, engine},
    stage::settings,
    template::{date, format_number},
};
use relec_schemas::{Alert, Decoder, IncidentEvent, validate::validate};

use super::publish::count_lines;
use crate::cli::{BacktestArgs, TableFormat};

/// Invalid input records reported one by one; the rest are counted.
const MAX_SKIPS_SHOWN: u64 = 10;
/// Broker requests (metadata, watermarks) wait this long at most.
const KAFKA_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn run(args: BacktestArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let window = Window {
        from: day_arg("--from", args.from.as_deref())?,
        to: day_arg("--to", args.to.as_deref())?,
    };
    if let (Some(from), Some(to)) = (window.from, window.to) {
        anyhow::ensure!(from <= to, "--from is after --to");
    }
    let l = &config.rules.limits;
    let engine = Arc::new(engine(&Limits {
        max_operations: l.max_operations,
        max_call_levels: l.max_call_levels,
        max_string_size: l.max_string_size,
        max_array_size: l.max_array_size,
        max_map_size: l.max_map_size,
        time_budget: l.time_budget,
    }));
    let (rules, errors) = load_dir(&engine, &args.rules);
    if !errors.is_empty() {
        for error in &errors {
            eprintln!("{error}");
        }
        anyhow::bail!(
            "{} rule files with problems; `relec rules check {}` explains them",
            errors.len(),
            args.rules.display()
        );
    }
    anyhow::ensure!(!rules.is_empty(), "no rules in {}", args.rules.display());
    let rules: Vec<Arc<Rule>> = rules.into_iter().map(Arc::new).collect();
    let settings = settings(config);

    let started = Instant::now();
    let mut replay = Replay {
        skipped: 0,
        skew: config.ingest.clock_skew,
        bar: ProgressBar::hidden(),
    };
    let backtest = match (&args.input, &args.topic) {
        (Some(path), _) => {
            let backtest = Backtest::new(engine, rules, settings, window, 1);
            replay.file(path, backtest)?
        }
        (None, Some(topic)) => {
            let kafka = Kafka::connect(config)?;
            replay
                .topic(&kafka, topic, |sources| {
                    Backtest::new(engine, rules, settings, window, sources)
                })
                .await?
        }
        (None, None) => anyhow::bail!("give --input FILE or --topic TOPIC"),
    };
    replay.bar.finish_and_clear();
    let report = backtest.finish(settings.lateness_ms);
    let elapsed = started.elapsed();

    match args.format {
        TableFormat::Table => {
            let mut out = std::io::stdout().lock();
            print_table(&mut out, &report.transitions)?;
            writeln!(out)?;
            print_costs(&mut out, &report.rules)?;
            writeln!(out)?;
            writeln!(out, "{}", summary(&report, replay.skipped, elapsed))?;
        }
        TableFormat::Csv => {
            print_csv(std::io::stdout().lock(), &report.transitions)?;
            let mut err = std::io::stderr().lock();
            print_costs(&mut err, &report.rules)?;
            writeln!(err, "{}", summary(&report, replay.skipped, elapsed))?;
        }
    }
    let failed = report.rules.values().any(|r| r.errors > 0);
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn day_arg(flag: &str, value: Option<&str>) -> anyhow::Result<Option<i64>> {
    value
        .map(|v| parse_date(v).map_err(|e| anyhow::anyhow!("{flag}: {e}")))
        .transpose()
}

/// Reading the input: what was passed over, and the progress bar.
struct Replay {
    skipped: u64,
    skew: Duration,
    bar: ProgressBar,
}

impl Replay {
    fn progress(&mut self, total: u64, unit: &str) {
        self.bar = ProgressBar::new(total).with_style(
            ProgressStyle::with_template(&format!(
                "{{bar:40}} {{pos}}/{{len}} {unit} {{per_sec}} ({{eta}} left)"
            ))
            .expect("valid template"),
        );
    }

    /// Counts a record that is not a valid incident; the first few are shown.
    fn skip(&mut self, at: &str, reason: &str) {
        self.skipped += 1;
        if self.skipped <= MAX_SKIPS_SHOWN {
            self.bar.suspend(|| eprintln!("{at}: skipped: {reason}"));
        }
    }

    /// An incident as the rules stage would take it: valid, or passed over.
    fn check(&mut self, at: &str, event: IncidentEvent, written_ms: i64) -> Option<IncidentEvent> {
        match validate(&event, written_ms, self.skew).first() {
            None => Some(event),
            Some(e) => {
                self.skip(at, &format!("{}: {}", e.pointer, e.reason));
                None
            }
        }
    }

    /// A file, in its order (one input partition).
    fn file(&mut self, path: &Path, mut backtest: Backtest) -> anyhow::Result<Backtest> {
        let format = Format::from_path(path)
            .with_context(|| format!("{}: not .csv, .jsonl, .ndjson or .json", path.display()))?;
        let lines = count_lines(path)?.saturating_sub(usize::from(format == Format::Csv));
        self.progress(lines as u64, "lines");
        let name = path.display().to_string();
        let reader = file::read(path, format).with_context(|| name.clone())?;
        for line in reader {
            self.bar.inc(1);
            let at = format!("{name}:{}", line.number);
            let event = match line.item {
                Item::Event(event) => *event,
                Item::Invalid { errors, .. } => {
                    let reason = errors
                        .first()
                        .map(|e| format!("{} {}", e.pointer, e.reason))
                        .unwrap_or_default();
                    self.skip(&at, reason.trim());
                    continue;
                }
            };
            // A file has no write time: history is never "from the future".
            if let Some(event) = self.check(&at, event, i64::MAX) {
                backtest.feed(0, event);
            }
        }
        backtest.source_done(0);
        Ok(backtest)
    }

    /// A topic of the configured cluster, every partition from its first record to the end
    /// it had when the replay started, in either wire format. The consumer is assigned its
    /// partitions (no group membership) and commits nothing.
    async fn topic(
        &mut self,
        kafka: &Kafka,
        topic: &str,
        start: impl FnOnce(i32) -> Backtest,
    ) -> anyhow::Result<Backtest> {
        let group = format!("relec-backtest-{}", uuid::Uuid::new_v4().simple());
        let consumer: StreamConsumer = kafka
            .consumer_config("backtest", &group)
            .set("enable.partition.eof", "true")
            .create()
            .context("Kafka consumer")?;
        let metadata = consumer
            .fetch_metadata(Some(topic), KAFKA_TIMEOUT)
            .with_context(|| format!("{topic}: metadata"))?;
        let partitions: Vec<i32> = metadata
            .topics()
            .iter()
            .filter(|t| t.name() == topic && t.error().is_none())
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect();
        anyhow::ensure!(!partitions.is_empty(), "{topic}: no such topic");
        let count = partitions.iter().max().map_or(0, |p| p + 1);
        let mut backtest = start(count);

        // Where each partition ends now; records written during the replay are not waited for.
        let mut ends: BTreeMap<i32, i64> = BTreeMap::new();
        let mut assignment = TopicPartitionList::new();
        let mut total = 0;
        for &p in &partitions {
            let (low, high) = consumer
                .fetch_watermarks(topic, p, KAFKA_TIMEOUT)
                .with_context(|| format!("{topic}[{p}]: offsets"))?;
            if high > low {
                ends.insert(p, high);
                total += (high - low) as u64;
                assignment.add_partition_offset(topic, p, Offset::Beginning)?;
            } else {
                backtest.source_done(p);
            }
        }
        self.progress(total, "records");
        if ends.is_empty() {
            return Ok(backtest);
        }
        consumer.assign(&assignment)?;
        let decoder = Decoder::<IncidentEvent>::new(kafka.registry().cloned());
        while !ends.is_empty() {
            let (p, offset) = match consumer.recv().await {
                Ok(m) => {
                    self.bar.inc(1);
                    let (p, offset) = (m.partition(), m.offset());
                    let at = format!("{topic}[{p}]@{offset}");
                    match decoder.decode(m.payload().unwrap_or_default()).await {
                        Ok(event) => {
                            let written = m.timestamp().to_millis().unwrap_or(i64::MAX);
                            if let Some(event) = self.check(&at, event, written)
                                && backtest.feed(p, event) == Fed::AfterWindow
                            {
                                // Reports come in order within a partition, near enough;
                                // the rest of it lies after the window too.
                                (p, i64::MAX)
                            } else {
                                (p, offset)
                            }
                        }
                        Err(e) => {
                            self.skip(&at, &e.to_string());
                            (p, offset)
                        }
                    }
                }
                Err(KafkaError::PartitionEOF(p)) => (p, i64::MAX),
                Err(e) => return Err(e).context(format!("{topic}: reading")),
            };
            if ends.get(&p).is_some_and(|end| offset >= end - 1) {
                ends.remove(&p);
                backtest.source_done(p);
                if offset == i64::MAX {
                    let mut rest = TopicPartitionList::new();
                    rest.add_partition(topic, p);
                    // Stop fetching what will not be read; an error here only costs time.
                    let _ = consumer.pause(&rest);
                }
            }
        }
        Ok(backtest)
    }
}

/// The group labels of an alert (the `rule` label is its own column).
fn labels(alert: &Alert, separator: &str) -> String {
    alert
        .labels
        .iter()
        .filter(|(k, _)| *k != "rule")
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(separator)
}

fn status(alert: &Alert) -> &'static str {
    match alert.status {
        relec_schemas::AlertStatus::Firing => "firing",
        relec_schemas::AlertStatus::Resolved => "resolved",
    }
}

fn severity(alert: &Alert) -> String {
    format!("{:?}", alert.severity).to_lowercase()
}

fn print_table(out: &mut impl Write, transitions: &[Alert]) -> std::io::Result<()> {
    if transitions.is_empty() {
        return writeln!(out, "no alert transitions");
    }
    let header = [
        "day",
        "status",
        "rule",
        "severity",
        "value",
        "threshold",
        "labels",
    ];
    let rows: Vec<[String; 7]> = transitions
        .iter()
        .map(|a| {
            [
                date(transition_day(a)),
                status(a).to_owned(),
                a.rule_id.clone(),
                severity(a),
                format_number(a.value),
                a.threshold.map(format_number).unwrap_or_default(),
                labels(a, " "),
            ]
        })
        .collect();
    aligned(out, &header, &rows)
}

fn print_csv(out: impl Write, transitions: &[Alert]) -> anyhow::Result<()> {
    let mut csv = csv::Writer::from_writer(out);
    csv.write_record([
        "day",
        "status",
        "rule",
        "severity",
        "value",
        "threshold",
        "labels",
        "fingerprint",
        "summary",
    ])?;
    for a in transitions {
        csv.write_record([
            date(transition_day(a)),
            status(a).to_owned(),
            a.rule_id.clone(),
            severity(a),
            format_number(a.value),
            a.threshold.map(format_number).unwrap_or_default(),
            labels(a, ";"),
            a.fingerprint.clone(),
            a.annotations.get("summary").cloned().unwrap_or_default(),
        ])?;
    }
    csv.flush()?;
    Ok(())
}

/// Evaluations and time per rule, the costliest first.
fn print_costs(out: &mut impl Write, rules: &BTreeMap<String, RuleStats>) -> std::io::Result<()> {
    let mut by_cost: Vec<(&String, &RuleStats)> = rules.iter().collect();
    by_cost.sort_by(|a, b| b.1.time.cmp(&a.1.time).then(a.0.cmp(b.0)));
    let header = [
        "rule",
        "evaluations",
        "time",
        "per evaluation",
        "firing",
        "resolved",
        "errors",
    ];
    let rows: Vec<[String; 7]> = by_cost
        .iter()
        .map(|(id, s)| {
            let per = s
                .time
                .checked_div(s.evaluations.max(1) as u32)
                .unwrap_or_default();
            [
                (*id).clone(),
                s.evaluations.to_string(),
                seconds(s.time),
                micros(per),
                s.firing.to_string(),
                s.resolved.to_string(),
                s.errors.to_string(),
            ]
        })
        .collect();
    aligned(out, &header, &rows)?;
    for (id, s) in by_cost {
        if let Some(error) = &s.first_error {
            writeln!(
                out,
                "{id}: {} failed evaluations, the first: {error}",
                s.errors
            )?;
        }
    }
    Ok(())
}

fn summary(report: &Report, skipped: u64, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64().max(1e-9);
    let mut notes = vec![
        format!("{} duplicates", report.duplicates),
        format!("{} late", report.late),
        format!("{skipped} invalid (skipped)"),
    ];
    if report.after_window > 0 {
        notes.push(format!("{} after --to", report.after_window));
    }
    let mut line = format!(
        "replayed {} events ({}) in {secs:.2} s: {:.0} events/s; {} transitions",
        report.events,
        notes.join(", "),
        report.events as f64 / secs,
        report.transitions.len()
    );
    if report.before_window > 0 {
        line.push_str(&format!(
            " ({} before --from not shown)",
            report.before_window
        ));
    }
    line
}

fn seconds(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

fn micros(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

/// Columns padded to their widest cell, numbers as written.
fn aligned<const N: usize>(
    out: &mut impl Write,
    header: &[&str; N],
    rows: &[[String; N]],
) -> std::io::Result<()> {
    let mut widths = header.map(|h| h.chars().count());
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        padded.join("  ").trim_end().to_owned()
    };
    writeln!(out, "{}", line(header.to_vec()))?;
    for row in rows {
        writeln!(out, "{}", line(row.iter().map(String::as_str).collect()))?;
    }
    Ok(())
}

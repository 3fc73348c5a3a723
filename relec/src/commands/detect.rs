//! `relec detect METHOD --input FILE.csv [parameters]`: one aberration detector over a file
//! of counts, printed as CSV `t,observed,upperbound,alarm` (`NA` where the method gives no
//! bound or no verdict), so analysts can check a detector's settings on their own history.

use std::{
    fs::File,
    io::{self, Read},
    path::Path,
    process::ExitCode,
};

use anyhow::{Context, bail};
use relec_detect::{Detector, Evaluation};

use crate::cli::DetectArgs;

pub fn run(args: &DetectArgs) -> anyhow::Result<ExitCode> {
    // Parameters first: a typo in a flag is reported before the file is read.
    let detector = Detector::from_flags(&args.method, args.params.given())?;
    let series = read(&args.input)?;
    let evaluations = detector
        .run(&series.counts)
        .with_context(|| format!("{} over {}", detector.method(), args.input.display()))?;
    write(&series, &evaluations, io::stdout().lock())?;
    Ok(ExitCode::SUCCESS)
}

/// The counts of the input file and each row's label.
struct Series {
    counts: Vec<f64>,
    labels: Vec<String>,
}

fn read(path: &Path) -> anyhow::Result<Series> {
    let name = path.display();
    let source: Box<dyn Read> = if path == Path::new("-") {
        Box::new(io::stdin().lock())
    } else {
        Box::new(File::open(path).with_context(|| format!("cannot open {name}"))?)
    };
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(source);
    let headers = reader
        .headers()
        .with_context(|| format!("{name}: cannot read the header"))?
        .clone();
    let column = |wanted: &str| headers.iter().position(|h| h == wanted);
    let Some(count_at) = column("count") else {
        bail!(
            "{name}: the header has no `count` column (it has: {})",
            headers.iter().collect::<Vec<_>>().join(", ")
        );
    };
    let t_at = column("t");
    let mut series = Series {
        counts: Vec::new(),
        labels: Vec::new(),
    };
    for record in reader.records() {
        let record = record.with_context(|| format!("{name}: malformed CSV"))?;
        let line = record.position().map_or(0, csv::Position::line);
        let field = record.get(count_at).unwrap_or("");
        let count = match field.parse::<f64>() {
            Ok(c) if c.is_finite() && c >= 0.0 => c,
            _ => bail!("{name} line {line}: count {field:?} is not a number >= 0"),
        };
        series.counts.push(count);
        series.labels.push(match t_at {
            Some(i) => record.get(i).unwrap_or("").to_owned(),
            None => series.counts.len().to_string(),
        });
    }
    if series.counts.is_empty() {
        bail!("{name}: no rows of counts");
    }
    Ok(series)
}

fn write(series: &Series, evaluations: &[Evaluation], out: impl io::Write) -> anyhow::Result<()> {
    let mut writer = csv::Writer::from_writer(out);
    writer.write_record(["t", "observed", "upperbound", "alarm"])?;
    for e in evaluations {
        let upperbound = e
            .upperbound
            .map_or_else(|| "NA".to_owned(), |b| b.to_string());
        let alarm = match e.alarm {
            Some(true) => "1",
            Some(false) => "0",
            None => "NA",
        };
        writer.write_record([
            series.labels[e.t - 1].as_str(),
            &e.observed.to_string(),
            &upperbound,
            alarm,
        ])?;
    }
    writer.flush()?;
    Ok(())
}

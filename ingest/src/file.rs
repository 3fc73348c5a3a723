//! Bulk files for `relec publish`: JSON Lines (one event object per line, as the HTTP API
//! takes it) and CSV (one event per row, nested fields flattened as described in the
//! README). Every line becomes an [`Item`] with its line number, through the same JSON
//! mapping as the API, so errors name the same fields.

use std::{
    fs::File,
    io::{BufRead, BufReader, Read},
    path::Path,
};

use serde_json::{Map, Value, json};

use crate::{http::item_from_json, publisher::Item, validate::FieldError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    JsonLines,
}

impl Format {
    /// By extension: `.csv`, or `.jsonl` / `.ndjson` / `.json`.
    pub fn from_path(path: &Path) -> Option<Self> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "csv" => Some(Self::Csv),
            "jsonl" | "ndjson" | "json" => Some(Self::JsonLines),
            _ => None,
        }
    }
}

/// One line of a file (1-based, as an editor shows it) and what it holds.
#[derive(Debug)]
pub struct Line {
    pub number: usize,
    pub item: Item,
}

/// The CSV columns, in order. Empty cells are absent fields.
pub const CSV_COLUMNS: [&str; 24] = [
    "event_id",
    "reporting_agency",
    "reporting_country",
    "occurred_at",
    "reported_at",
    "category",
    "route",
    "border_section",
    "crossing_point",
    "lat",
    "lon",
    "direction",
    "persons",
    "nationalities",
    "facilitators",
    "victims",
    "dead",
    "missing",
    "modus_operandi",
    "source_reliability",
    "information_credibility",
    "handling",
    "notes",
    "attributes",
];

const INT_COLUMNS: [&str; 6] = [
    "persons",
    "facilitators",
    "victims",
    "dead",
    "missing",
    "information_credibility",
];

/// One CSV row for `event`, in [`CSV_COLUMNS`] order, without the line end; the inverse of
/// what [`read`] takes.
pub fn csv_row(event: &relec_schemas::IncidentEvent) -> String {
    let mut json = serde_json::to_value(event).expect("events serialise");
    let field = |json: &Value, name: &str| -> String {
        match &json[name] {
            Value::Null => String::new(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    };
    let location = json["location"].take();
    let cells: Vec<String> = CSV_COLUMNS
        .iter()
        .map(|&column| match column {
            "lat" | "lon" => field(&location, column),
            "nationalities" => event
                .nationalities
                .iter()
                .map(|n| format!("{}:{}:{}", n.nationality, n.count, n.minors))
                .collect::<Vec<_>>()
                .join(";"),
            "attributes" => event
                .attributes
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(";"),
            other => field(&json, other),
        })
        .collect();
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    writer.write_record(&cells).expect("writing to memory");
    let mut row = String::from_utf8(writer.into_inner().expect("flush to memory"))
        .expect("UTF-8 in, UTF-8 out");
    row.pop();
    row
}

/// Reads `path` lazily, line by line; bad lines are items with errors, never a stop.
pub fn read(path: &Path, format: Format) -> std::io::Result<Box<dyn Iterator<Item = Line>>> {
    let file = File::open(path)?;
    Ok(match format {
        Format::JsonLines => Box::new(read_json_lines(BufReader::new(file))),
        Format::Csv => Box::new(read_csv(file)),
    })
}

/// JSON Lines from any reader; blank lines are skipped but counted.
pub fn read_json_lines<R: BufRead>(reader: R) -> impl Iterator<Item = Line> {
    reader
        .lines()
        .enumerate()
        .filter(|(_, line)| line.as_ref().map_or(true, |l| !l.trim().is_empty()))
        .map(|(i, line)| Line {
            number: i + 1,
            item: match line
                .map_err(|e| e.to_string())
                .and_then(|l| serde_json::from_str::<Value>(&l).map_err(|e| e.to_string()))
            {
                Ok(value) => item_from_json(value),
                Err(reason) => invalid(None, "", reason),
            },
        })
}

/// CSV with a header row from any reader; the fuzz targets call this with arbitrary bytes.
pub fn read_csv<R: Read>(reader: R) -> impl Iterator<Item = Line> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(reader);
    let headers = reader.headers().cloned().unwrap_or_default();
    reader.into_records().map(move |record| match record {
        Ok(record) => Line {
            number: record.position().map_or(0, |p| p.line() as usize),
            item: csv_item(&headers, &record),
        },
        Err(e) => Line {
            number: e.position().map_or(0, |p| p.line() as usize),
            item: invalid(None, "", e.to_string()),
        },
    })
}

fn invalid(event_id: Option<String>, pointer: &str, reason: impl Into<String>) -> Item {
    Item::Invalid {
        event_id,
        errors: vec![FieldError::new(pointer, reason)],
    }
}

/// One CSV row as the JSON object the API would take.
fn csv_item(headers: &csv::StringRecord, record: &csv::StringRecord) -> Item {
    let mut object = Map::new();
    let mut location = Map::new();
    for (column, cell) in headers.iter().zip(record.iter()) {
        let cell = cell.trim();
        if cell.is_empty() {
            continue;
        }
        let value = match column {
            "occurred_at" | "reported_at" => match timestamp(cell) {
                Some(ms) => ms.into(),
                None => {
                    let id = record_id(headers, record);
                    return invalid(
                        id,
                        &format!("/{column}"),
                        format!("{cell:?} is neither milliseconds nor RFC 3339"),
                    );
                }
            },
            "lat" | "lon" => {
                let number = cell
                    .parse::<f64>()
                    .map(Value::from)
                    .unwrap_or_else(|_| cell.into());
                location.insert(column.to_owned(), number);
                continue;
            }
            "nationalities" => match nationalities(cell) {
                Ok(list) => list,
                Err(reason) => {
                    return invalid(record_id(headers, record), "/nationalities", reason);
                }
            },
            "attributes" => attributes(cell),
            c if INT_COLUMNS.contains(&c) => cell
                .parse::<i64>()
                .map(Value::from)
                .unwrap_or_else(|_| cell.into()),
            _ => cell.into(),
        };
        object.insert(column.to_owned(), value);
    }
    if !location.is_empty() {
        object.insert("location".into(), Value::Object(location));
    }
    item_from_json(Value::Object(object))
}

fn record_id(headers: &csv::StringRecord, record: &csv::StringRecord) -> Option<String> {
    headers
        .iter()
        .position(|h| h == "event_id")
        .and_then(|i| record.get(i))
        .map(str::to_owned)
}

fn timestamp(cell: &str) -> Option<i64> {
    cell.parse::<i64>().ok().or_else(|| {
        let t = humantime::parse_rfc3339_weak(cell).ok()?;
        t.duration_since(std::time::UNIX_EPOCH)
            .ok()
            .map(|d| d.as_millis() as i64)
    })
}

/// `AFG:12:3;PAK:4` is 12 Afghans (3 minors) and 4 Pakistanis.
fn nationalities(cell: &str) -> Result<Value, String> {
    cell.split(';')
        .map(|part| {
            let mut fields = part.trim().split(':');
            let nationality = fields.next().unwrap_or_default();
            let number = |s: Option<&str>| s.map_or(Ok(0), |s| s.trim().parse::<i64>());
            let count = number(fields.next())
                .map_err(|_| format!("{part:?} is not CODE:COUNT[:MINORS]"))?;
            let minors = number(fields.next())
                .map_err(|_| format!("{part:?} is not CODE:COUNT[:MINORS]"))?;
            Ok(json!({ "nationality": nationality, "count": count, "minors": minors }))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Value::Array)
}

/// `vehicle=truck;operation=OP-7`.
fn attributes(cell: &str) -> Value {
    let map: Map<String, Value> = cell
        .split(';')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), Value::from(v.trim())))
        .collect();
    Value::Object(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(format: Format, text: &str) -> Vec<Line> {
        let dir = std::env::temp_dir().join(format!("relec-file-{}", uuid::Uuid::new_v4()));
        std::fs::write(&dir, text).expect("write");
        let lines: Vec<Line> = read(&dir, format).expect("read").collect();
        let _ = std::fs::remove_file(&dir);
        lines
    }

    const HEADER: &str = "event_id,reporting_agency,reporting_country,occurred_at,reported_at,category,route,lat,lon,persons,nationalities,source_reliability,information_credibility,handling,attributes";

    #[test]
    fn csv_rows_map_onto_the_event() {
        let text = format!(
            "{HEADER}\n\
             6f1c2d1e-0000-4000-8000-000000000001,IRN-BG,IRN,2026-03-01T10:00:00Z,1772366400000,IRREGULAR_CROSSING,IRN-TUR-VAN,38.5,44.2,15,AFG:12:3;PAK:3,B,2,AMBER,vehicle=truck\n"
        );
        let lines = items(Format::Csv, &text);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].number, 2);
        let Item::Event(e) = &lines[0].item else {
            panic!("{:?}", lines[0].item)
        };
        assert_eq!(e.occurred_at, 1_772_359_200_000);
        assert_eq!(e.nationalities[0].minors, 3);
        assert_eq!(e.nationalities[1].count, 3);
        assert_eq!(e.location.map(|l| l.lat), Some(38.5));
        assert_eq!(
            e.attributes.get("vehicle").map(String::as_str),
            Some("truck")
        );
    }

    #[test]
    fn bad_cells_name_their_field() {
        let text = format!(
            "{HEADER}\n\
             id-1,IRN-BG,IRN,yesterday,1,IRREGULAR_CROSSING,R,,,1,,A,1,GREEN,\n\
             id-2,IRN-BG,IRN,1,1,IRREGULAR_CROSSING,R,,,many,,A,1,GREEN,\n"
        );
        let lines = items(Format::Csv, &text);
        let pointer = |l: &Line| match &l.item {
            Item::Invalid { errors, .. } => errors[0].pointer.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(pointer(&lines[0]), "/occurred_at");
        assert_eq!(pointer(&lines[1]), "/persons");
        assert_eq!(lines[1].number, 3);
    }

    #[test]
    fn csv_rows_written_read_back_the_same() {
        let events: Vec<_> = (0..200)
            .map(|i| relec_schemas::sample::incident(5, i))
            .collect();
        let text: String = std::iter::once(CSV_COLUMNS.join(","))
            .chain(events.iter().map(csv_row))
            .map(|l| l + "\n")
            .collect();
        let lines = items(Format::Csv, &text);
        assert_eq!(lines.len(), events.len());
        for (line, event) in lines.iter().zip(&events) {
            match &line.item {
                Item::Event(e) => assert_eq!(e.as_ref(), event),
                other => panic!("line {}: {other:?}", line.number),
            }
        }
    }

    #[test]
    fn json_lines_keep_their_line_numbers() {
        let event = serde_json::to_string(&relec_schemas::sample::incident(1, 1)).expect("json");
        let lines = items(
            Format::JsonLines,
            &format!("{event}\n\n{{not json\n{event}\n"),
        );
        let numbers: Vec<usize> = lines.iter().map(|l| l.number).collect();
        assert_eq!(numbers, [1, 3, 4]);
        assert!(matches!(lines[1].item, Item::Invalid { .. }));
    }
}

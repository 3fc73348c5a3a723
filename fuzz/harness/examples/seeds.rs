//! Writes the seed inputs the fuzz corpus grew from: well-formed examples of each input,
//! plus a few near misses, so libFuzzer starts past the first byte of every format.
//!
//! `cargo run -p relec-fuzz-harness --example seeds -- fuzz/corpus` (from the repository
//! root; fuzz/run.sh does it when a corpus directory is missing).

use std::{fs, path::Path};

use relec_fuzz_harness::{FOREIGN_ID, RELEASED_ID, confluent, foreign_schema};
use relec_ingest::file::{CSV_COLUMNS, csv_row};
use relec_schemas::{Encoder, sample};

fn main() -> std::io::Result<()> {
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "fuzz/corpus".into());
    let out = Path::new(&out);
    let write = |target: &str, name: &str, data: &[u8]| -> std::io::Result<()> {
        let dir = out.join(target);
        fs::create_dir_all(&dir)?;
        fs::write(dir.join(format!("seed-{name}")), data)
    };

    let incidents: Vec<_> = (0..4).map(|i| sample::incident(7, i)).collect();
    let alerts: Vec<_> = (0..2).map(|i| sample::alert(7, i)).collect();

    let single = Encoder::single_object();
    for (i, event) in incidents.iter().enumerate() {
        write(
            "avro_single_object",
            &format!("incident-{i}"),
            &single.encode(event).expect("encode"),
        )?;
    }
    let single_alert = Encoder::single_object();
    for (i, alert) in alerts.iter().enumerate() {
        write(
            "avro_single_object",
            &format!("alert-{i}"),
            &single_alert.encode(alert).expect("encode"),
        )?;
    }

    for (i, event) in incidents.iter().enumerate().take(2) {
        write(
            "avro_confluent",
            &format!("incident-{i}"),
            &confluent(RELEASED_ID, event, None),
        )?;
        let foreign = foreign_schema::<relec_schemas::IncidentEvent>();
        write(
            "avro_confluent",
            &format!("incident-foreign-{i}"),
            &confluent(FOREIGN_ID, event, Some(&foreign)),
        )?;
    }
    let foreign = foreign_schema::<relec_schemas::Alert>();
    write(
        "avro_confluent",
        "alert",
        &confluent(RELEASED_ID, &alerts[0], None),
    )?;
    write(
        "avro_confluent",
        "alert-foreign",
        &confluent(FOREIGN_ID, &alerts[0], Some(&foreign)),
    )?;

    let json = |e| serde_json::to_string(e).expect("json");
    write("json_events", "one", json(&incidents[0]).as_bytes())?;
    write(
        "json_events",
        "batch",
        serde_json::to_string(&incidents[..3])
            .expect("json")
            .as_bytes(),
    )?;
    let lines: String = incidents.iter().map(|e| json(e) + "\n").collect();
    write("json_events", "lines", lines.as_bytes())?;
    let mut bad = serde_json::to_value(&incidents[1]).expect("json");
    bad["persons"] = (-3).into();
    bad["nationalities"][0]["count"] = "many".into();
    bad["location"] = serde_json::json!({ "lat": 95.0, "lon": 10.0 });
    write(
        "json_events",
        "invalid",
        format!("[{},{bad}]", json(&incidents[0])).as_bytes(),
    )?;

    let csv: String = std::iter::once(CSV_COLUMNS.join(","))
        .chain(incidents.iter().map(csv_row))
        .map(|l| l + "\n")
        .collect();
    write("csv_import", "rows", csv.as_bytes())?;
    write(
        "csv_import",
        "bad-cells",
        b"event_id,reporting_country,occurred_at,persons,nationalities,attributes,lat\n\
          x,IRN,yesterday,many,AFG:x,k=v;w,91\n\"q\"\"uoted\",AFG,1,2,AFG:1:9;PAK:2,a=b=c,\n",
    )?;

    for entry in fs::read_dir("rules/pack")? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "rhai") {
            let name = path.file_stem().expect("file name").to_string_lossy();
            write("rule_metadata", &name, &fs::read(&path)?)?;
        }
    }
    write(
        "rule_metadata",
        "loop",
        b"fn condition(g) { true }\nlet n = 0; loop { n += 1; }\n#{ id: \"x\" }",
    )?;

    // Secrets by env or file reference would make a seed depend on the machine.
    let example = fs::read_to_string("deploy/subscriptions.example.toml")?;
    let example = regex_free_secrets(&example);
    write("subscriptions", "example", example.as_bytes())?;
    write(
        "subscriptions",
        "minimal",
        b"[[subscribers]]\nid = \"tur-ncp\"\ncountry = \"TUR\"\nclearance = \"AMBER\"\n\
          [subscribers.email]\naddresses = [\"ncp@egm.gov.tr.example\"]\n\n\
          [[receivers]]\nname = \"tur\"\nsubscribers = [\"tur-ncp\"]\n\n[route]\nreceiver = \"tur\"\n",
    )?;
    Ok(())
}

/// `{ env = "X" }` and `{ file = "..." }` secrets become inline ones.
fn regex_free_secrets(text: &str) -> String {
    text.lines()
        .map(
            |line| match line.find("{ env =").or_else(|| line.find("{ file =")) {
                Some(at) => match line[at..].find('}') {
                    Some(end) => format!(
                        "{}\"example-secret-0123456789abcdef\"{}",
                        &line[..at],
                        &line[at + end + 1..]
                    ),
                    None => line.to_owned(),
                },
                None => line.to_owned(),
            },
        )
        .map(|l| l + "\n")
        .collect()
}

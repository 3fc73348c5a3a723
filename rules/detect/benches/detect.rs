//! `cargo bench -p relec-detect`: what one evaluation (one time point) of each detector costs
//! on five years of weekly counts, measured side by side in one run.

use std::{hint::black_box, time::Instant};

use relec_detect::Detector;

/// Six years and four weeks of weekly data: the last year is evaluated, each point against
/// the five years before it (Farrington-flexible's default window reaches b years and w + 1
/// weeks back).
const WEEKS: usize = 6 * 52 + 4;
/// Seconds spent on each detector, at least.
const BUDGET_SECONDS: f64 = 1.0;

/// A seasonal count series with a mild trend and a deterministic wobble (no RNG needed).
fn series() -> Vec<f64> {
    (0..WEEKS)
        .map(|t| {
            let t = t as f64;
            let season = 1.0 + 0.5 * (2.0 * std::f64::consts::PI * t / 52.0).sin();
            let wobble = ((t * 12.9898).sin() * 43758.5453).fract().abs();
            (20.0 * season * (1.0 + t / 2000.0) + 8.0 * wobble).round()
        })
        .collect()
}

/// A label, a method and its flags.
type Case<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>);

fn main() {
    let counts = series();
    let last_year = format!("{}:{}", WEEKS - 51, WEEKS);
    let cases: [Case; 8] = [
        ("EARS C1", "ears-c1", vec![("range", &last_year)]),
        ("EARS C3", "ears-c3", vec![("range", &last_year)]),
        ("CUSUM", "cusum", vec![("range", &last_year)]),
        ("EWMA", "ewma", vec![("range", &last_year)]),
        ("Farrington 1996", "farrington", vec![("range", &last_year)]),
        (
            "Farrington-flexible",
            "farrington-flexible",
            vec![("range", &last_year)],
        ),
        (
            "Farrington-flexible nbPlugin",
            "farrington-flexible",
            vec![("range", &last_year), ("threshold-method", "nbPlugin")],
        ),
        (
            "Farrington-flexible 10 periods",
            "farrington-flexible",
            vec![
                ("range", &last_year),
                ("no-periods", "10"),
                ("past-weeks-not-included", "26"),
                ("b", "4"),
            ],
        ),
    ];
    println!(
        "detector cost per evaluation (one time point), {WEEKS} weekly points, the last 52 evaluated"
    );
    println!(
        "{:<32} {:>14} {:>12}",
        "detector", "µs/evaluation", "vs EARS C1"
    );
    let mut baseline = None;
    for (label, method, flags) in cases {
        let detector = Detector::from_flags(method, flags).expect("flags");
        let start = Instant::now();
        let mut evaluations = 0usize;
        while start.elapsed().as_secs_f64() < BUDGET_SECONDS {
            evaluations += black_box(detector.run(black_box(&counts)).expect("runs")).len();
        }
        let micros = start.elapsed().as_secs_f64() * 1e6 / evaluations as f64;
        let base = *baseline.get_or_insert(micros);
        println!("{label:<32} {micros:>14.3} {:>11.1}x", micros / base);
    }
}

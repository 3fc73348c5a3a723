//! Series a rule will meet in production that R's examples never show: all zeros, a constant,
//! a lone spike, wild alternation. Every detector must answer (a bound, or NA) without
//! panicking.

use relec_detect::{Detector, METHODS};

fn series() -> Vec<(&'static str, Vec<f64>)> {
    let n = 6 * 52 + 10;
    let mut spike = vec![0.0; n];
    spike[n - 3] = 40.0;
    vec![
        ("zeros", vec![0.0; n]),
        ("constant", vec![5.0; n]),
        ("spike", spike),
        (
            "alternating",
            (0..n)
                .map(|i| if i % 2 == 0 { 0.0 } else { 100.0 })
                .collect(),
        ),
        ("huge", (0..n).map(|i| 1e6 + (i % 7) as f64).collect()),
    ]
}

#[test]
fn no_detector_panics_on_degenerate_series() {
    let extra: [(&str, Vec<(&str, &str)>); 3] = [
        (
            "farrington-flexible",
            vec![("no-periods", "10"), ("past-weeks-not-included", "26")],
        ),
        ("farrington-flexible", vec![("threshold-method", "muan")]),
        (
            "farrington-flexible",
            vec![("threshold-method", "nbPlugin")],
        ),
    ];
    let runs = METHODS
        .iter()
        .map(|m| (*m, Vec::new()))
        .chain(extra)
        .collect::<Vec<_>>();
    for (name, counts) in series() {
        for (method, flags) in &runs {
            let detector = Detector::from_flags(method, flags.iter().copied()).expect("flags");
            let out = detector
                .run(&counts)
                .unwrap_or_else(|e| panic!("{method} {flags:?} on {name}: {e}"));
            assert!(!out.is_empty(), "{method} on {name}");
            for e in out {
                if let Some(b) = e.upperbound {
                    assert!(!b.is_nan(), "{method} on {name} t={}", e.t);
                }
            }
        }
    }
}

//! The simulator's distributions and vocabulary: which incidents happen at which kind of
//! place and hour, how agencies grade and mark them, and the words they use. Kept apart
//! from the drawing code so the numbers can be read and tuned in one place.

use relec_schemas::{IncidentCategory, SourceReliability, Tlp};

use super::geography::PointKind;

pub(crate) const CATEGORIES: [IncidentCategory; 7] = IncidentCategory::ALL;

/// Weights of `CATEGORIES` by kind of place. Apprehensions dominate the green border,
/// document fraud and refusals happen where documents are checked, and deaths are rare
/// (about 0.3 incidents a day network-wide, ~100 a year, the order IOM records here).
#[rustfmt::skip]
pub(crate) fn category_weights(kind: PointKind) -> [f64; 7] {
    match kind {
        //                     crossing smuggling trafficking fraud death refusal other
        PointKind::GreenBorder => [7800.0, 1500.0, 250.0, 0.0, 6.0, 0.0, 444.0],
        PointKind::Official => [3500.0, 1000.0, 400.0, 2500.0, 0.0, 2500.0, 100.0],
        PointKind::Airport => [0.0, 1000.0, 1500.0, 4000.0, 0.0, 3500.0, 0.0],
    }
}

/// Local hour-of-day weights: green-border crossings happen at night, checks at official
/// crossings in opening hours, airport exits follow the late-night Gulf departures.
#[rustfmt::skip]
pub(crate) fn hour_weights(kind: PointKind) -> &'static [f64; 24] {
    match kind {
        PointKind::GreenBorder => &[9., 9., 8., 7., 6., 4., 2., 1., 1., 1., 1., 1., 1., 1., 1., 1., 2., 3., 4., 6., 8., 9., 10., 10.],
        PointKind::Official => &[1., 1., 1., 1., 1., 2., 4., 6., 8., 9., 9., 9., 8., 8., 8., 8., 7., 6., 5., 4., 3., 2., 2., 1.],
        PointKind::Airport => &[6., 6., 5., 4., 3., 3., 4., 5., 5., 5., 5., 5., 5., 5., 5., 5., 5., 5., 5., 6., 6., 7., 7., 7.],
    }
}

pub(crate) const RELIABILITY: [SourceReliability; 6] = SourceReliability::ALL;
/// Admiralty gradings: controlled checks at crossings and airports are graded higher than
/// field reports from the green border.
pub(crate) const RELIABILITY_CHECKED: [f64; 6] = [25.0, 50.0, 18.0, 4.0, 1.0, 2.0];
pub(crate) const RELIABILITY_FIELD: [f64; 6] = [8.0, 42.0, 32.0, 9.0, 3.0, 6.0];
pub(crate) const CREDIBILITY_CHECKED: [f64; 6] = [35.0, 45.0, 12.0, 4.0, 1.0, 3.0];
pub(crate) const CREDIBILITY_FIELD: [f64; 6] = [12.0, 43.0, 27.0, 9.0, 3.0, 6.0];

pub(crate) const TLP: [Tlp; 5] = Tlp::ALL;
/// Mostly GREEN and AMBER; trafficking cases name victims and are held tighter.
pub(crate) fn tlp_weights(category: IncidentCategory) -> [f64; 5] {
    match category {
        IncidentCategory::Trafficking => [0.0, 8.0, 50.0, 28.0, 14.0],
        IncidentCategory::Smuggling => [2.0, 35.0, 48.0, 11.0, 4.0],
        IncidentCategory::DeathOrMissing => [10.0, 40.0, 45.0, 4.0, 1.0],
        _ => [4.0, 52.0, 36.0, 6.0, 2.0],
    }
}

pub(crate) const TRAFFICKING_PURPOSES: [&str; 6] = [
    "forced labour in construction",
    "sexual exploitation",
    "forced marriage",
    "debt bondage in agriculture",
    "forced begging",
    "domestic servitude",
];
pub(crate) const FRAUD_METHODS: [&str; 5] = [
    "forged passport",
    "counterfeit visa",
    "impostor using a genuine passport",
    "altered biodata page",
    "fraudulently obtained visa",
];
pub(crate) const REFUSAL_REASONS: [&str; 4] = [
    "no valid visa",
    "entry ban on record",
    "insufficient means of subsistence",
    "purpose of travel not credible",
];
pub(crate) const OTHER_FINDINGS: [&str; 3] = [
    "abandoned belongings found",
    "smuggling vehicle seized without passengers",
    "safe house identified",
];

/// Short field notes in the language of the reporting agency (English as the fallback):
/// every consumer must carry multi-byte UTF-8 intact.
pub(crate) fn notes(country: &str) -> &'static [&'static str] {
    match country {
        "AFG" | "IRN" => &[
            "گروهی از مهاجران غیرقانونی در نزدیکی مرز دستگیر شدند",
            "group apprehended near the border",
        ],
        "BGD" => &["সীমান্তে অবৈধ অভিবাসী আটক", "intercepted at exit control"],
        "IRQ" => &[
            "ضبط مجموعة من المهاجرين غير الشرعيين قرب الحدود",
            "group stopped near the border",
        ],
        "PAK" => &[
            "سرحد کے قریب غیر قانونی تارکین وطن گرفتار",
            "group stopped near the border",
        ],
        _ => &[
            "Düzensiz göçmen grubu yakalandı",
            "group apprehended near the border",
        ],
    }
}

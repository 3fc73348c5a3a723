//! Deterministic sample records that exercise every field of every schema (set and unset
//! options, every enum symbol, non-Latin text), for round-trip tests and codec benchmarks.
//! The realistic RELEC incident stream is the simulator's job, not this module's.

use std::collections::BTreeMap;

use crate::{
    Alert, AlertStatus, Direction, GeoPoint, IncidentCategory, IncidentEvent, NationalityCount,
    Severity, SourceReliability, Tlp,
};

const COUNTRIES: [&str; 6] = ["AFG", "BGD", "IRN", "IRQ", "PAK", "TUR"];
const ROUTES: [&str; 5] = [
    "AFG-IRN-NIMROZ",
    "PAK-IRN-TAFTAN",
    "IRN-TUR-VAN",
    "IRN-TUR-AGRI",
    "IRQ-TUR-HABUR",
];
const CATEGORIES: [IncidentCategory; 7] = IncidentCategory::ALL;
const DIRECTIONS: [Direction; 4] = Direction::ALL;
const RELIABILITY: [SourceReliability; 6] = SourceReliability::ALL;
const TLP: [Tlp; 5] = Tlp::ALL;
/// Notes in the RELEC working languages, so every codec sees multi-byte UTF-8.
const NOTES: [&str; 6] = [
    "گروه ۱۲ نفره در نزدیکی مرز دیده شد",
    "Van sınır kesiminde yakalama, Ağrı yönünde",
    "সীমান্তে ১৫ জন আটক",
    "قاچاقبر د پولې ته نږدې ونیول شو",
    "تم العثور على مجموعة قرب المعبر",
    "group of 12 seen near the border",
];

/// 2026-01-01T00:00:00Z.
const EPOCH_2026_MS: i64 = 1_767_225_600_000;

/// splitmix64: a tiny, well-mixed deterministic generator; no need for a rand dependency.
struct Mix(u64);

impl Mix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

/// The `i`-th sample incident of stream `seed`; the same arguments give the same event.
pub fn incident(seed: u64, i: u64) -> IncidentEvent {
    let mut r = Mix(seed ^ i.wrapping_mul(0xA24B_AED4_963E_E407));
    let country = r.pick(&COUNTRIES);
    let occurred_at = EPOCH_2026_MS + (r.below(300 * 86_400) as i64) * 1000;
    let delay_ms = (r.below(5 * 86_400) as i64) * 1000;
    let nationalities: Vec<_> = (0..r.below(4))
        .map(|_| {
            let count = 1 + r.below(20) as i32;
            NationalityCount {
                nationality: r.pick(&COUNTRIES).to_owned(),
                count,
                minors: (r.below(3) as i32).min(count),
            }
        })
        .collect();
    let persons = nationalities.iter().map(|n| n.count).sum::<i32>() + r.below(5) as i32;
    let mut attributes = BTreeMap::new();
    if r.chance(30) {
        attributes.insert("vehicle".to_owned(), "truck".to_owned());
        attributes.insert("operation".to_owned(), format!("OP-{}", r.below(1000)));
    }
    IncidentEvent {
        event_id: uuid::Uuid::from_u64_pair(seed, i).to_string(),
        reporting_agency: format!("{}-BORDER-{}", country, r.below(3)),
        reporting_country: country.to_owned(),
        occurred_at,
        reported_at: occurred_at + delay_ms,
        category: r.pick(&CATEGORIES),
        route: r.pick(&ROUTES).to_owned(),
        border_section: r.chance(70).then(|| format!("SECTION-{}", r.below(40))),
        crossing_point: r.chance(50).then(|| format!("CP-{}", r.below(200))),
        location: r.chance(60).then(|| GeoPoint {
            lat: 25.0 + r.below(150_000) as f64 / 10_000.0,
            lon: 44.0 + r.below(250_000) as f64 / 10_000.0,
        }),
        direction: r.chance(80).then(|| r.pick(&DIRECTIONS)),
        persons,
        nationalities,
        facilitators: r.below(3) as i32,
        victims: r.below(2) as i32,
        dead: i32::from(r.chance(2)),
        missing: i32::from(r.chance(3)),
        modus_operandi: r.chance(40).then(|| "concealed in truck".to_owned()),
        source_reliability: r.pick(&RELIABILITY),
        information_credibility: 1 + r.below(6) as i32,
        handling: r.pick(&TLP),
        notes: r.chance(50).then(|| r.pick(&NOTES).to_owned()),
        attributes,
    }
}

/// The `i`-th sample alert of stream `seed`.
pub fn alert(seed: u64, i: u64) -> Alert {
    let mut r = Mix(seed ^ i.wrapping_mul(0x9FB2_1C65_1E98_DF25));
    let route = r.pick(&ROUTES);
    let window_end = EPOCH_2026_MS + (r.below(300) as i64) * 86_400_000;
    let firing = r.chance(70);
    Alert {
        fingerprint: format!("{:016x}", r.next()),
        rule_id: "route_spike".to_owned(),
        rule_version: format!("{:08x}", r.next() as u32),
        status: if firing {
            AlertStatus::Firing
        } else {
            AlertStatus::Resolved
        },
        severity: r.pick(&[
            Severity::Info,
            Severity::Low,
            Severity::Medium,
            Severity::High,
            Severity::Critical,
        ]),
        labels: BTreeMap::from([
            ("route".to_owned(), route.to_owned()),
            ("country".to_owned(), r.pick(&COUNTRIES).to_owned()),
        ]),
        annotations: BTreeMap::from([("summary".to_owned(), r.pick(&NOTES).to_owned())]),
        starts_at: window_end,
        ends_at: (!firing).then_some(window_end + 86_400_000),
        window_start: window_end - 7 * 86_400_000,
        window_end,
        value: r.below(500) as f64 + 0.5,
        threshold: r.chance(80).then_some(120.0),
        handling: r.pick(&TLP),
        countries: vec![r.pick(&COUNTRIES).to_owned()],
        evidence: (0..r.below(Alert::MAX_EVIDENCE))
            .map(|j| uuid::Uuid::from_u64_pair(seed, j as u64).to_string())
            .collect(),
        generated_at: window_end + 1000,
    }
}

//! One simulated incident: its kind, the people involved and their nationalities, its
//! grading and handling code. Drafts are plain data, cheap to
//! hold in the generator's reorder buffer; `into_event` builds the `IncidentEvent` (and its
//! strings) only when the incident is published.

use std::collections::BTreeMap;

use relec_schemas::{
    Direction, GeoPoint, IncidentCategory, IncidentEvent, NationalityCount, SourceReliability, Tlp,
};

use super::geography::{CrossingPoint, NATIONALITIES, PointKind, ROUTES};
use super::plan::{HOUR_MS, RoutePlan};
use super::rng::Rng;
use super::tables::{
    CATEGORIES, CREDIBILITY_CHECKED, CREDIBILITY_FIELD, FRAUD_METHODS, OTHER_FINDINGS,
    REFUSAL_REASONS, RELIABILITY, RELIABILITY_CHECKED, RELIABILITY_FIELD, TLP,
    TRAFFICKING_PURPOSES, category_weights, notes, tlp_weights,
};
use super::timing::{report_time, time_of_day};

/// An incident before it is published; indices into the static tables stand for strings.
#[derive(Debug, Clone)]
pub(crate) struct Draft {
    pub(crate) occurred_at: i64,
    pub(crate) reported_at: i64,
    pub(crate) route: u8,
    pub(crate) point: u8,
    report_point: bool,
    report_section: bool,
    location: Option<(f64, f64)>,
    direction: Option<Direction>,
    pub(crate) category: IncidentCategory,
    persons: i32,
    /// (index into `NATIONALITIES`, count, minors); the first `nationality_count` are used.
    nationalities: [(u8, i32, i32); 3],
    nationality_count: u8,
    facilitators: i32,
    victims: i32,
    dead: i32,
    missing: i32,
    modus_operandi: Option<&'static str>,
    reliability: SourceReliability,
    credibility: i32,
    handling: Tlp,
    note: Option<&'static str>,
    operation: Option<u16>,
}

impl Draft {
    pub(crate) fn point(&self) -> &'static CrossingPoint {
        &ROUTES[usize::from(self.route)].points[usize::from(self.point)]
    }

    /// The published event, with the deterministic id the generator assigned.
    pub(crate) fn into_event(self, event_id: String) -> IncidentEvent {
        let route = &ROUTES[usize::from(self.route)];
        let point = self.point();
        let mut attributes = BTreeMap::new();
        if let Some(op) = self.operation {
            attributes.insert(
                "operation".to_owned(),
                format!("{}-OP-{op:04}", route.reporting_country),
            );
        }
        IncidentEvent {
            event_id,
            reporting_agency: point.agency.to_owned(),
            reporting_country: route.reporting_country.to_owned(),
            occurred_at: self.occurred_at,
            reported_at: self.reported_at,
            category: self.category,
            route: route.id.to_owned(),
            border_section: self.report_section.then(|| point.section.to_owned()),
            crossing_point: self.report_point.then(|| point.id.to_owned()),
            location: self.location.map(|(lat, lon)| GeoPoint { lat, lon }),
            direction: self.direction,
            persons: self.persons,
            nationalities: self.nationalities[..usize::from(self.nationality_count)]
                .iter()
                .map(|&(n, count, minors)| NationalityCount {
                    nationality: NATIONALITIES[usize::from(n)].to_owned(),
                    count,
                    minors,
                })
                .collect(),
            facilitators: self.facilitators,
            victims: self.victims,
            dead: self.dead,
            missing: self.missing,
            modus_operandi: self.modus_operandi.map(str::to_owned),
            source_reliability: self.reliability,
            information_credibility: self.credibility,
            handling: self.handling,
            notes: self.note.map(str::to_owned),
            attributes,
        }
    }
}

/// A group size: 1 plus an exponential tail, so most groups are small and a few trucks
/// carry dozens. Capped where a single vehicle or boat could not carry more.
fn group(rng: &mut Rng, mean: f64) -> i32 {
    1 + rng.exponential((mean - 1.0).max(0.0)).round().min(150.0) as i32
}

/// Draws one incident on `route` for the day starting at `day_ms`; `category` forces the
/// kind (trafficking surges), otherwise it follows the crossing point.
pub(crate) fn draft(
    rng: &mut Rng,
    route: usize,
    plan: &RoutePlan,
    day_ms: i64,
    category: Option<IncidentCategory>,
) -> Draft {
    let r = &ROUTES[route];
    let point = rng.weighted(&plan.points);
    let p = &r.points[point];
    let category = category.unwrap_or_else(|| CATEGORIES[rng.weighted(&category_weights(p.kind))]);
    let occurred_at = day_ms + time_of_day(rng, route, p.kind);
    let report_point = p.kind != PointKind::GreenBorder || rng.chance(0.8);
    let mut d = Draft {
        occurred_at,
        reported_at: occurred_at,
        route: route as u8,
        point: point as u8,
        report_point,
        report_section: report_point || rng.chance(0.9),
        location: rng.chance(0.85).then(|| location(rng, p)),
        direction: match rng.below(50) {
            0 => Some(Direction::Unknown),
            1..=4 => None,
            _ => Some(r.direction),
        },
        category,
        persons: 0,
        nationalities: [(0, 0, 0); 3],
        nationality_count: 0,
        facilitators: 0,
        victims: 0,
        dead: 0,
        missing: 0,
        modus_operandi: None,
        reliability: SourceReliability::F,
        credibility: 6,
        handling: Tlp::Amber,
        note: None,
        operation: None,
    };
    counts(rng, &mut d);
    let family_share = match category {
        IncidentCategory::Trafficking => 0.35,
        _ => r.family_share,
    };
    nationalities(rng, &mut d, plan, family_share);
    grade(rng, &mut d, p.kind);
    d.reported_at = report_time(rng, route, p.agency, occurred_at);
    d
}

/// Where the incident was recorded. Apprehensions on the green border are spread around
/// the point (about 4 km); official crossings and airports are where they are. Four
/// decimals (about 10 m), as a handheld GPS report would give.
fn location(rng: &mut Rng, p: &CrossingPoint) -> (f64, f64) {
    let spread = match p.kind {
        PointKind::GreenBorder => 0.04,
        _ => 0.0,
    };
    let mut jitter = |x: f64| ((x + spread * (2.0 * rng.unit() - 1.0)) * 1e4).round() / 1e4;
    let (lat, lon) = (jitter(p.lat), jitter(p.lon));
    (lat.clamp(-90.0, 90.0), lon.clamp(-180.0, 180.0))
}

/// The people of the incident as its kind implies: smuggling always has a facilitator,
/// trafficking a victim, a death-or-missing report a dead or missing person.
fn counts(rng: &mut Rng, d: &mut Draft) {
    let r = &ROUTES[usize::from(d.route)];
    match d.category {
        IncidentCategory::IrregularCrossing => {
            d.persons = group(rng, r.group_mean);
            d.facilitators = rng.maybe(0.15, 1, 1);
            d.modus_operandi = rng.chance(0.35).then(|| rng.pick(r.modus_operandi));
        }
        IncidentCategory::Smuggling => {
            d.persons = group(rng, r.group_mean * 1.3);
            d.facilitators = 1 + rng.maybe(0.4, 1, 2);
            d.modus_operandi = rng.chance(0.9).then(|| rng.pick(r.modus_operandi));
        }
        IncidentCategory::Trafficking => {
            d.victims = group(rng, 2.5).min(30);
            d.persons = d.victims + rng.maybe(0.5, 1, 2);
            d.facilitators = rng.maybe(0.6, 1, 2);
            d.modus_operandi = rng.chance(0.85).then(|| rng.pick(&TRAFFICKING_PURPOSES));
        }
        IncidentCategory::DocumentFraud => {
            d.persons = 1 + rng.maybe(0.2, 1, 3);
            d.facilitators = rng.maybe(0.1, 1, 1);
            d.modus_operandi = rng.chance(0.95).then(|| rng.pick(&FRAUD_METHODS));
        }
        IncidentCategory::DeathOrMissing => {
            d.dead = rng.maybe(0.7, 1, 2);
            d.missing = if d.dead == 0 {
                rng.maybe(1.0, 1, 3)
            } else {
                rng.maybe(0.3, 1, 3)
            };
            // Survivors of the same group are part of the incident.
            d.persons = d.dead + d.missing + group(rng, r.group_mean) - 1;
            d.modus_operandi = Some(r.hazard);
        }
        IncidentCategory::RefusalOfEntry => {
            d.persons = group(rng, 1.8);
            d.modus_operandi = rng.chance(0.3).then(|| rng.pick(&REFUSAL_REASONS));
        }
        IncidentCategory::Other => {
            d.persons = rng.maybe(0.75, 1, 3);
            d.modus_operandi = rng.chance(0.5).then(|| rng.pick(&OTHER_FINDINGS));
        }
    }
}

/// The mass-casualty incident of a `Scenario::MassCasualty`: on the green border where
/// there is one, reported within hours, graded as a confirmed report.
pub(crate) fn casualty(
    rng: &mut Rng,
    route: usize,
    plan: &RoutePlan,
    at_ms: i64,
    dead: i32,
    missing: i32,
) -> Draft {
    let r = &ROUTES[route];
    let category = Some(IncidentCategory::DeathOrMissing);
    // Times, place and counts of the ordinary draft are overwritten below.
    let mut d = draft(rng, route, plan, at_ms, category);
    if let Some(green) = r
        .points
        .iter()
        .position(|p| p.kind == PointKind::GreenBorder && p.weight > 0.0)
    {
        d.point = green as u8;
        let p = &r.points[green];
        d.location = Some((p.lat, p.lon));
    }
    d.report_point = true;
    d.report_section = true;
    d.occurred_at = at_ms + rng.below(HOUR_MS as u64) as i64;
    d.reported_at = d.occurred_at + HOUR_MS + rng.below(5 * HOUR_MS as u64) as i64;
    d.dead = dead;
    d.missing = missing;
    d.persons = dead + missing + group(rng, r.group_mean);
    d.nationality_count = 0;
    nationalities(rng, &mut d, plan, r.family_share);
    d.reliability = SourceReliability::B;
    d.credibility = 2;
    d.handling = Tlp::Amber;
    d.note = Some("mass-casualty incident: search and rescue under way");
    d
}

/// Splits `persons` over up to three nationalities drawn from the day's mix. Some groups
/// are not broken down at all and some members stay unidentified, so the counts add up to
/// at most `persons`, never more.
fn nationalities(rng: &mut Rng, d: &mut Draft, plan: &RoutePlan, family_share: f64) {
    if d.persons == 0 || rng.chance(0.06) {
        return;
    }
    let mut picked = [0u8; 3];
    let mut k = 1;
    picked[0] = rng.weighted(&plan.mix) as u8;
    for (min_persons, p) in [(2, 0.25), (3, 0.2)] {
        if k < picked.len() && d.persons >= min_persons && rng.chance(p) {
            let n = rng.weighted(&plan.mix) as u8;
            if !picked[..k].contains(&n) {
                picked[k] = n;
                k += 1;
            }
        }
    }
    let unidentified = if d.persons > 2 && rng.chance(0.1) {
        rng.between(1, i64::from(d.persons / 3).max(1)) as i32
    } else {
        0
    };
    let mut remaining = d.persons - unidentified;
    let family = rng.chance(family_share);
    for i in (0..k).rev() {
        // Secondary nationalities are minorities of the group; the main one keeps the rest.
        let count = if i == 0 {
            remaining
        } else {
            (1 + rng.below(u64::from((remaining / 3).max(1) as u32)) as i32).min(remaining - 1)
        };
        remaining -= count;
        let minors = if family {
            ((f64::from(count) * 0.4 + rng.unit()) as i32).min(count)
        } else {
            i32::from(count > 0 && rng.chance(0.05))
        };
        d.nationalities[i] = (picked[i], count, minors);
    }
    // A secondary nationality squeezed to zero persons is dropped rather than reported as 0.
    let mut kept = 0;
    for i in 0..k {
        if d.nationalities[i].1 > 0 {
            d.nationalities[kept] = d.nationalities[i];
            kept += 1;
        }
    }
    d.nationality_count = kept as u8;
}

fn grade(rng: &mut Rng, d: &mut Draft, kind: PointKind) {
    let checked = kind != PointKind::GreenBorder;
    let (reliability, credibility) = if checked {
        (&RELIABILITY_CHECKED, &CREDIBILITY_CHECKED)
    } else {
        (&RELIABILITY_FIELD, &CREDIBILITY_FIELD)
    };
    d.reliability = RELIABILITY[rng.weighted(reliability)];
    d.credibility = 1 + rng.weighted(credibility) as i32;
    d.handling = TLP[rng.weighted(&tlp_weights(d.category))];
    let country = ROUTES[usize::from(d.route)].reporting_country;
    d.note = rng.chance(0.05).then(|| rng.pick(notes(country)));
    d.operation = rng.chance(0.08).then(|| rng.below(10_000) as u16);
}

//! How many incidents each route should see on a given day, and of whom: the calendar
//! (weekly and annual seasonality) and the scenarios that bend volumes, mixes and points.
//! Everything here is expectation; the draws happen in `incident.rs`.

use relec_schemas::IncidentCategory;

use super::geography::{self, COUNTRIES, NATIONALITIES, PointKind, ROUTES};
use super::scenario::Scenario;
use super::tables::{CATEGORIES, category_weights};

pub(crate) const DAY_MS: i64 = 86_400_000;
pub(crate) const HOUR_MS: i64 = 3_600_000;

/// Volume on an official weekend day relative to the weekly mean: fewer patrols are out
/// and fewer apprehensions are booked. Working days make up the difference, so the weekly
/// total does not depend on how many weekend days a country has.
pub(crate) const WEEKEND_FACTOR: f64 = 0.7;
/// Day of the year with the most traffic (mid-July): mountain passes are open, nights warm.
const PEAK_DAY_OF_YEAR: f64 = 200.0;
const DAYS_PER_YEAR: f64 = 365.2425;

/// Monday = 0 for the UTC day containing `ms`. 1970-01-01 was a Thursday.
pub(crate) fn weekday(ms: i64) -> usize {
    (ms.div_euclid(DAY_MS) + 3).rem_euclid(7) as usize
}

/// Weekly factor of `country` on `weekday`; averages to 1 over a week.
pub(crate) fn weekly_factor(weekend: &[bool; 7], weekday: usize) -> f64 {
    if weekend[weekday] {
        return WEEKEND_FACTOR;
    }
    let weekend_days = weekend.iter().filter(|w| **w).count() as f64;
    (7.0 - WEEKEND_FACTOR * weekend_days) / (7.0 - weekend_days)
}

/// Annual factor: a cosine peaking in midsummer. Days since 1970 modulo the mean year
/// length stand in for the day of the year; a day's drift over a century is irrelevant
/// at this amplitude.
fn annual_factor(amplitude: f64, ms: i64) -> f64 {
    let day_of_year = (ms.div_euclid(DAY_MS) as f64).rem_euclid(DAYS_PER_YEAR);
    1.0 + amplitude
        * (std::f64::consts::TAU * (day_of_year - PEAK_DAY_OF_YEAR) / DAYS_PER_YEAR).cos()
}

/// The scenarios with names resolved to indices once, so a day's plan is arithmetic only.
#[derive(Debug, Default)]
pub(crate) struct Effects {
    spikes: Vec<(usize, u32, u32, f64)>,
    /// (nationality, from route, to route, day, days, fraction)
    shifts: Vec<(usize, usize, usize, u32, u32, f64)>,
    /// (route, point, day, share)
    new_points: Vec<(usize, usize, u32, f64)>,
    /// (reporting country, day, days, factor)
    surges: Vec<(&'static str, u32, u32, f64)>,
    /// (route, day, days, factor)
    smuggling: Vec<(usize, u32, u32, f64)>,
    /// (agency, from ms, until ms)
    pub(crate) silences: Vec<(&'static str, i64, i64)>,
    /// (route, day, hour, dead, missing)
    pub(crate) casualties: Vec<(usize, u32, u32, i32, i32)>,
}

fn within(day: u32, start: u32, days: u32) -> bool {
    day >= start && day - start < days
}

impl Effects {
    /// Resolves validated scenarios; an unknown name here is a bug in `Scenario::validate`.
    pub(crate) fn resolve(scenarios: &[Scenario], start_ms: i64) -> Self {
        let route = |id: &str| geography::route_index(id).expect("validated route");
        let mut e = Effects::default();
        for s in scenarios {
            match s {
                Scenario::RouteSpike {
                    route: r,
                    day,
                    days,
                    factor,
                } => {
                    e.spikes.push((route(r), *day, *days, *factor));
                }
                Scenario::RouteShift {
                    nationality,
                    from,
                    to,
                    day,
                    days,
                    fraction,
                } => {
                    let n = geography::nationality_index(nationality).expect("validated");
                    e.shifts
                        .push((n, route(from), route(to), *day, *days, *fraction));
                }
                Scenario::NewCrossingPoint { point, day, share } => {
                    let (r, p) = geography::find_point(point).expect("validated point");
                    e.new_points.push((r, p, *day, *share));
                }
                Scenario::ReportingSilence {
                    agency,
                    day,
                    hour,
                    hours,
                } => {
                    let agency = geography::agency(agency).expect("validated agency").id;
                    let from = start_ms + i64::from(*day) * DAY_MS + i64::from(*hour) * HOUR_MS;
                    e.silences
                        .push((agency, from, from + i64::from(*hours) * HOUR_MS));
                }
                Scenario::MassCasualty {
                    route: r,
                    day,
                    hour,
                    dead,
                    missing,
                } => {
                    e.casualties.push((route(r), *day, *hour, *dead, *missing));
                }
                Scenario::TraffickingSurge {
                    country,
                    day,
                    days,
                    factor,
                } => {
                    let iso3 = geography::country(country).expect("validated country").iso3;
                    e.surges.push((iso3, *day, *days, *factor));
                }
                Scenario::SmugglingSurge {
                    route: r,
                    day,
                    days,
                    factor,
                } => {
                    e.smuggling.push((route(r), *day, *days, *factor));
                }
            }
        }
        e
    }
}

/// One route's expectations for one day.
#[derive(Debug, Clone)]
pub(crate) struct RoutePlan {
    /// Expected incidents (Poisson mean).
    pub(crate) lambda: f64,
    /// Expected trafficking incidents on top, from a trafficking surge.
    pub(crate) extra_trafficking: f64,
    /// Expected smuggling incidents on top, from a smuggling surge.
    pub(crate) extra_smuggling: f64,
    /// Weight of each entry of `NATIONALITIES` as the group's main nationality.
    pub(crate) mix: [f64; NATIONALITIES.len()],
    /// Weight of each crossing point of the route (dormant ones 0 unless opened).
    pub(crate) points: Vec<f64>,
}

/// Expected share of `category` among a route's incidents, from its points' kinds.
fn category_share(route: usize, category: IncidentCategory) -> f64 {
    let points = ROUTES[route].points;
    let total: f64 = points.iter().map(|p| p.weight).sum();
    points
        .iter()
        .map(|p| p.weight / total * category_share_of(p.kind, category))
        .sum()
}

fn category_share_of(kind: PointKind, category: IncidentCategory) -> f64 {
    let w = category_weights(kind);
    let index = CATEGORIES.iter().position(|c| *c == category);
    w[index.expect("a category")] / w.iter().sum::<f64>()
}

/// The plan of every route (in `ROUTES` order) for `day` of a run starting at `start_ms`.
pub(crate) fn plan_day(effects: &Effects, scale: f64, start_ms: i64, day: u32) -> Vec<RoutePlan> {
    let day_ms = start_ms + i64::from(day) * DAY_MS;
    let weekday = weekday(day_ms);
    let mut plans: Vec<RoutePlan> = ROUTES
        .iter()
        .enumerate()
        .map(|(r, route)| {
            let country = route_country(r);
            let mut volume = route.base_daily
                * scale
                * weekly_factor(&country.weekend, weekday)
                * annual_factor(route.seasonal_amplitude, day_ms);
            for &(_, start, days, factor) in effects.spikes.iter().filter(|s| s.0 == r) {
                if within(day, start, days) {
                    volume *= factor;
                }
            }
            let mut mix = [0.0; NATIONALITIES.len()];
            for (iso3, share) in route.nationality_mix {
                mix[geography::nationality_index(iso3).expect("mix nationality")] = share * volume;
            }
            let mut points: Vec<f64> = route.points.iter().map(|p| p.weight).collect();
            for &(_, p, start, share) in effects.new_points.iter().filter(|n| n.0 == r) {
                if day >= start {
                    set_share(&mut points, p, share);
                }
            }
            let mut extra_trafficking = 0.0;
            for &(_, start, days, factor) in effects
                .surges
                .iter()
                .filter(|s| s.0 == route.reporting_country)
            {
                if within(day, start, days) {
                    extra_trafficking +=
                        volume * category_share(r, IncidentCategory::Trafficking) * (factor - 1.0);
                }
            }
            let mut extra_smuggling = 0.0;
            for &(_, start, days, factor) in effects.smuggling.iter().filter(|s| s.0 == r) {
                if within(day, start, days) {
                    extra_smuggling +=
                        volume * category_share(r, IncidentCategory::Smuggling) * (factor - 1.0);
                }
            }
            RoutePlan {
                lambda: 0.0,
                extra_trafficking,
                extra_smuggling,
                mix,
                points,
            }
        })
        .collect();

    // A shift takes effect on the expected counts per nationality: what leaves `from`
    // arrives on `to`, ramping up over `days` and then holding.
    for &(n, from, to, start, days, fraction) in &effects.shifts {
        if day >= start {
            let ramp = (f64::from(day - start + 1) / f64::from(days)).min(1.0);
            let moved = plans[from].mix[n] * fraction * ramp;
            plans[from].mix[n] -= moved;
            plans[to].mix[n] += moved;
        }
    }
    for plan in &mut plans {
        plan.lambda = plan.mix.iter().sum();
    }
    plans
}

/// Gives point `p` the `share` of the route's weight, the others keeping their proportions.
fn set_share(points: &mut [f64], p: usize, share: f64) {
    let others: f64 = points.iter().sum::<f64>() - points[p];
    if share >= 1.0 || others == 0.0 {
        points.iter_mut().for_each(|w| *w = 0.0);
        points[p] = 1.0;
    } else {
        points[p] = others * share / (1.0 - share);
    }
}

/// The reporting country's calendar entry for `route`.
pub(crate) fn route_country(route: usize) -> &'static geography::Country {
    let iso3 = ROUTES[route].reporting_country;
    COUNTRIES
        .iter()
        .find(|c| c.iso3 == iso3)
        .expect("route country")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weekly_factors_average_to_one() {
        for country in &COUNTRIES {
            let mean = (0..7)
                .map(|d| weekly_factor(&country.weekend, d))
                .sum::<f64>()
                / 7.0;
            assert!((mean - 1.0).abs() < 1e-12, "{}: {mean}", country.iso3);
        }
    }

    #[test]
    fn the_epoch_was_a_thursday_and_2026_01_05_a_monday() {
        assert_eq!(weekday(0), 3);
        assert_eq!(weekday(1_767_571_200_000), 0);
    }

    #[test]
    fn midsummer_is_busier_than_midwinter() {
        let july = 1_784_073_600_000; // 2026-07-15
        let january = 1_768_435_200_000; // 2026-01-15
        assert!(annual_factor(0.25, july) > 1.2);
        assert!(annual_factor(0.25, january) < 0.8);
    }
}

//! When things happen and when they are reported: the hour of the day by kind of place,
//! in the country's local time, and the agencies' reporting delays and weekends.

use super::geography::{self, PointKind};
use super::plan::{DAY_MS, HOUR_MS, route_country, weekday};
use super::rng::Rng;
use super::tables::hour_weights;

pub(crate) const MINUTE_MS: i64 = 60_000;

/// Minutes into the (UTC) day, drawn from the local hour profile of the place.
pub(crate) fn time_of_day(rng: &mut Rng, route: usize, kind: PointKind) -> i64 {
    let local_hour = rng.weighted(hour_weights(kind)) as i64;
    let offset = route_country(route).utc_offset_minutes;
    let minute = (local_hour * 60 + rng.below(60) as i64 - offset).rem_euclid(24 * 60);
    minute * MINUTE_MS + rng.below(MINUTE_MS as u64) as i64
}

/// When the agency's report arrives: most within hours, a quarter as next-day desk
/// reports, and the agency's late share days late. Desk reports wait out the country's
/// weekend and go in on the next working morning.
pub(crate) fn report_time(rng: &mut Rng, route: usize, agency: &str, occurred_at: i64) -> i64 {
    let late_share = geography::agency(agency).map_or(0.1, |a| a.late_share);
    let u = rng.unit();
    let delay = if u < late_share {
        2 * DAY_MS + (rng.exponential(3.0 * DAY_MS as f64) as i64).min(18 * DAY_MS)
    } else if u < late_share + 0.25 {
        12 * HOUR_MS + rng.below(24 * HOUR_MS as u64) as i64
    } else {
        10 * MINUTE_MS + rng.exponential(2.5 * HOUR_MS as f64) as i64
    };
    let reported = occurred_at + delay;
    if delay < 12 * HOUR_MS {
        return reported;
    }
    let country = route_country(route);
    let offset = country.utc_offset_minutes * MINUTE_MS;
    let mut local_day = (reported + offset).div_euclid(DAY_MS) * DAY_MS;
    if !country.weekend[weekday(local_day)] {
        return reported;
    }
    while country.weekend[weekday(local_day)] {
        local_day += DAY_MS;
    }
    local_day + 8 * HOUR_MS + rng.below(3 * HOUR_MS as u64) as i64 - offset
}

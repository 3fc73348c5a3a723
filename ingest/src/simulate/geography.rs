//! Where the simulated incidents happen: the RELEC countries, their reporting agencies, and
//! the routes with their border sections and crossing points. Coordinates are approximate
//! (a few kilometres) but real, so maps and per-point rules look like the region.

use relec_schemas::Direction;

/// A border or migration agency that publishes incidents. It reports only for its own
/// country, as ingest enforces for real publishers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Agency {
    /// The id agencies publish under, e.g. `IRN-BORDER-GUARD`.
    pub id: &'static str,
    /// ISO 3166-1 alpha-3 of the agency's country.
    pub country: &'static str,
    pub name: &'static str,
    /// Share of its reports filed days late (backlogs, paper reports from remote posts).
    pub late_share: f64,
}

/// What kind of place a crossing point is; it decides which incidents happen there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PointKind {
    /// A border crossing point with immigration control: fraud, refusals, concealment.
    Official,
    /// The green border between crossings: apprehensions, smuggling, deaths.
    GreenBorder,
    /// An international airport: fraud, refusals, trafficking victims at exit control.
    Airport,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BorderSection {
    pub id: &'static str,
    pub name: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CrossingPoint {
    pub id: &'static str,
    pub name: &'static str,
    /// Id of the border section (of the same route) the point lies on.
    pub section: &'static str,
    pub kind: PointKind,
    pub lat: f64,
    pub lon: f64,
    /// Id of the agency that reports incidents at this point.
    pub agency: &'static str,
    /// Relative share of the route's incidents. `0.0` marks a dormant point: never used
    /// unless a `Scenario::NewCrossingPoint` opens it.
    pub weight: f64,
}

/// A migration route as one reporting country sees it: the topic key of `relec.incidents`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Route {
    /// e.g. `AFG-IRN-NIMROZ`: origin, destination, area.
    pub id: &'static str,
    /// ISO3 of where people come from and go to on this leg (`EU` for the EU border).
    pub from: &'static str,
    pub to: &'static str,
    /// ISO3 of the country whose agencies report incidents on this route.
    pub reporting_country: &'static str,
    /// Movement relative to the reporting country.
    pub direction: Direction,
    /// Mean incidents per day at scale 1.0, before weekly and annual seasonality.
    pub base_daily: f64,
    /// Mean persons per incident; groups are larger where pickups and trucks carry them.
    pub group_mean: f64,
    /// Annual swing of volume, e.g. 0.25 = +25% in midsummer and -25% in midwinter;
    /// large on the snowbound Iran-Turkey mountain passes, small elsewhere.
    pub seasonal_amplitude: f64,
    /// Share of groups travelling as families (with minors) rather than single adults.
    pub family_share: f64,
    /// Nationalities of the people on this route (ISO3, share); shares sum to 1.
    pub nationality_mix: &'static [(&'static str, f64)],
    pub sections: &'static [BorderSection],
    pub points: &'static [CrossingPoint],
    /// How people are moved on this route, for smuggling and crossing reports.
    pub modus_operandi: &'static [&'static str],
    /// How people die or go missing here, for death-or-missing reports.
    pub hazard: &'static str,
}

impl Route {
    pub fn point(&self, id: &str) -> Option<&'static CrossingPoint> {
        self.points.iter().find(|p| p.id == id)
    }
}

/// Calendar facts the generator needs per reporting country.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Country {
    pub(crate) iso3: &'static str,
    /// Local time minus UTC, in minutes (no daylight saving in any of the six today).
    pub(crate) utc_offset_minutes: i64,
    /// Official weekend days, Monday = 0: fewer patrols and no desk reports on those days.
    pub(crate) weekend: [bool; 7],
}

const FRI: [bool; 7] = [false, false, false, false, true, false, false];
const FRI_SAT: [bool; 7] = [false, false, false, false, true, true, false];
const SAT_SUN: [bool; 7] = [false, false, false, false, false, true, true];

#[rustfmt::skip]
pub(crate) const COUNTRIES: [Country; 6] = [
    Country { iso3: "AFG", utc_offset_minutes: 270, weekend: FRI },
    Country { iso3: "BGD", utc_offset_minutes: 360, weekend: FRI_SAT },
    Country { iso3: "IRN", utc_offset_minutes: 210, weekend: FRI },
    Country { iso3: "IRQ", utc_offset_minutes: 180, weekend: FRI_SAT },
    Country { iso3: "PAK", utc_offset_minutes: 300, weekend: SAT_SUN },
    Country { iso3: "TUR", utc_offset_minutes: 180, weekend: SAT_SUN },
];

/// Every nationality the simulator writes: the six RELEC countries and those who travel
/// the same routes. Mixes index into this list, so it is the one place to add one.
pub(crate) const NATIONALITIES: [&str; 12] = [
    "AFG", "BGD", "IRN", "IRQ", "PAK", "TUR", "SYR", "SOM", "ERI", "MMR", "MAR", "TKM",
];

pub(crate) fn country(iso3: &str) -> Option<&'static Country> {
    COUNTRIES.iter().find(|c| c.iso3 == iso3)
}

pub(crate) fn agency(id: &str) -> Option<&'static Agency> {
    AGENCIES.iter().find(|a| a.id == id)
}

pub(crate) fn route_index(id: &str) -> Option<usize> {
    ROUTES.iter().position(|r| r.id == id)
}

pub(crate) fn nationality_index(iso3: &str) -> Option<usize> {
    NATIONALITIES.iter().position(|n| *n == iso3)
}

/// The route and index of the crossing point `id`.
pub(crate) fn find_point(id: &str) -> Option<(usize, usize)> {
    ROUTES
        .iter()
        .enumerate()
        .find_map(|(r, route)| route.points.iter().position(|p| p.id == id).map(|p| (r, p)))
}

#[rustfmt::skip]
pub(crate) const AGENCIES: &[Agency] = &[
    Agency { id: "AFG-BORDER-POLICE", country: "AFG", name: "Afghan Border Police", late_share: 0.25 },
    Agency { id: "BGD-BGB", country: "BGD", name: "Border Guard Bangladesh", late_share: 0.12 },
    Agency { id: "BGD-IMMIGRATION", country: "BGD", name: "Special Branch Immigration Police", late_share: 0.08 },
    Agency { id: "IRN-BORDER-GUARD", country: "IRN", name: "Border Guard Command", late_share: 0.15 },
    Agency { id: "IRQ-BORDER-GUARD", country: "IRQ", name: "Border Guard Forces", late_share: 0.20 },
    Agency { id: "IRQ-BORDER-PORTS", country: "IRQ", name: "Border Ports Commission", late_share: 0.10 },
    Agency { id: "PAK-FIA", country: "PAK", name: "Federal Investigation Agency, Immigration Wing", late_share: 0.10 },
    Agency { id: "PAK-FC", country: "PAK", name: "Frontier Corps", late_share: 0.20 },
    Agency { id: "TUR-JANDARMA", country: "TUR", name: "Gendarmerie General Command", late_share: 0.08 },
    Agency { id: "TUR-EGM", country: "TUR", name: "General Directorate of Security, Migrant Smuggling Dept.", late_share: 0.10 },
];

pub(crate) use super::routes::ROUTES;

//! Scenarios: the disturbances an early-warning rule should catch, injected into the
//! simulated stream at chosen days, each aimed at acceptance rules of the design brief. Each
//! parses from a short string so the CLI can take them as arguments:
//! `<kind>:<target>@<key>=<value>,...`, e.g. `spike:AFG-IRN-NIMROZ@day=60,days=7,factor=4`.

use std::fmt;
use std::str::FromStr;

use super::geography::{self, AGENCIES, COUNTRIES, NATIONALITIES, ROUTES};

/// One injected disturbance. Days count from the start of the run (day 0 is the first);
/// hours are UTC hours within that day.
#[derive(Debug, Clone, PartialEq)]
pub enum Scenario {
    /// The route's volume is multiplied by `factor` on days `day .. day + days`.
    /// `spike:<route>@day=D,days=N,factor=F`
    RouteSpike {
        route: String,
        day: u32,
        days: u32,
        factor: f64,
    },
    /// A share of `nationality`'s traffic on `from` moves to `to`, ramping up linearly to
    /// `fraction` over `days` from `day`, and stays there (a shift, not a blip).
    /// `shift:<nationality>@from=<route>,to=<route>,day=D,days=N,fraction=F`
    RouteShift {
        nationality: String,
        from: String,
        to: String,
        day: u32,
        days: u32,
        fraction: f64,
    },
    /// A dormant crossing point (one never used before) takes `share` of its route's
    /// incidents from `day` to the end of the run.
    /// `new-point:<point>@day=D[,share=S]` (share defaults to 0.15)
    NewCrossingPoint { point: String, day: u32, share: f64 },
    /// The agency publishes nothing for `hours` from `hour` of `day`; what it would have
    /// published comes as a backlog when it is back, as after an outage.
    /// `silence:<agency>@day=D,hours=H[,hour=h]` (hour defaults to 0)
    ReportingSilence {
        agency: String,
        day: u32,
        hour: u32,
        hours: u32,
    },
    /// One DEATH_OR_MISSING incident with `dead` dead and `missing` missing on the route,
    /// at `hour` of `day`. `casualty:<route>@day=D,dead=X,missing=Y[,hour=h]` (hour
    /// defaults to 2: most fatal crossings happen at night)
    MassCasualty {
        route: String,
        day: u32,
        hour: u32,
        dead: i32,
        missing: i32,
    },
    /// Trafficking incidents (victims identified) reported by `country` are multiplied by
    /// `factor` on days `day .. day + days`.
    /// `trafficking:<country>@day=D,days=N,factor=F`
    TraffickingSurge {
        country: String,
        day: u32,
        days: u32,
        factor: f64,
    },
    /// Smuggling incidents (facilitators detected) on the route are multiplied by `factor`
    /// on days `day .. day + days`: a new network at work, not more crossings.
    /// `smuggling:<route>@day=D,days=N,factor=F`
    SmugglingSurge {
        route: String,
        day: u32,
        days: u32,
        factor: f64,
    },
}

/// A scenario that does not parse or names something the simulator does not know; the
/// message names the offending part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioError {
    pub scenario: String,
    pub problem: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "scenario {:?}: {}", self.scenario, self.problem)
    }
}

impl std::error::Error for ScenarioError {}

const KINDS: &str = "spike, shift, new-point, silence, casualty, trafficking, smuggling";
/// Defaults for the optional keys, named so the docs above and the parser agree.
const DEFAULT_NEW_POINT_SHARE: f64 = 0.15;
const DEFAULT_SILENCE_HOUR: u32 = 0;
const DEFAULT_CASUALTY_HOUR: u32 = 2;

impl Scenario {
    /// Checks that every id names a known route, point, agency, country or nationality
    /// and every number is in range. Parsing already does this; call it for scenarios
    /// built in code.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        self.problem().map_or(Ok(()), |problem| {
            Err(ScenarioError {
                scenario: self.to_string(),
                problem,
            })
        })
    }

    /// The day the scenario starts.
    pub fn day(&self) -> u32 {
        match self {
            Scenario::RouteSpike { day, .. }
            | Scenario::RouteShift { day, .. }
            | Scenario::NewCrossingPoint { day, .. }
            | Scenario::ReportingSilence { day, .. }
            | Scenario::MassCasualty { day, .. }
            | Scenario::TraffickingSurge { day, .. }
            | Scenario::SmugglingSurge { day, .. } => *day,
        }
    }

    fn problem(&self) -> Option<String> {
        match self {
            Scenario::RouteSpike {
                route,
                days,
                factor,
                ..
            } => known_route(route)
                .or_else(|| at_least_one("days", *days))
                .or_else(|| positive("factor", *factor)),
            Scenario::RouteShift {
                nationality,
                from,
                to,
                days,
                fraction,
                ..
            } => known_route(from)
                .or_else(|| known_route(to))
                .or_else(|| (from == to).then(|| "from and to are the same route".into()))
                .or_else(|| travels_on(nationality, from))
                .or_else(|| at_least_one("days", *days))
                .or_else(|| share("fraction", *fraction)),
            Scenario::NewCrossingPoint {
                point, share: s, ..
            } => dormant_point(point).or_else(|| share("share", *s)),
            Scenario::ReportingSilence {
                agency,
                hour,
                hours,
                ..
            } => known_agency(agency)
                .or_else(|| hour_of_day(*hour))
                .or_else(|| at_least_one("hours", *hours)),
            Scenario::MassCasualty {
                route,
                hour,
                dead,
                missing,
                ..
            } => known_route(route)
                .or_else(|| hour_of_day(*hour))
                .or_else(|| casualties("dead", *dead))
                .or_else(|| casualties("missing", *missing))
                .or_else(|| {
                    (*dead == 0 && *missing == 0)
                        .then(|| "dead + missing must be at least 1".into())
                }),
            Scenario::TraffickingSurge {
                country,
                days,
                factor,
                ..
            } => known_country(country)
                .or_else(|| at_least_one("days", *days))
                .or_else(|| surge_factor(*factor)),
            Scenario::SmugglingSurge {
                route,
                days,
                factor,
                ..
            } => known_route(route)
                .or_else(|| at_least_one("days", *days))
                .or_else(|| surge_factor(*factor)),
        }
    }
}

fn list<'a>(items: impl Iterator<Item = &'a str>) -> String {
    items.collect::<Vec<_>>().join(", ")
}

fn known_route(id: &str) -> Option<String> {
    geography::route_index(id).is_none().then(|| {
        format!(
            "unknown route {id:?} (known: {})",
            list(ROUTES.iter().map(|r| r.id))
        )
    })
}

fn known_country(iso3: &str) -> Option<String> {
    geography::country(iso3).is_none().then(|| {
        format!(
            "unknown country {iso3:?} (known: {})",
            list(COUNTRIES.iter().map(|c| c.iso3))
        )
    })
}

fn known_agency(id: &str) -> Option<String> {
    geography::agency(id).is_none().then(|| {
        format!(
            "unknown agency {id:?} (known: {})",
            list(AGENCIES.iter().map(|a| a.id))
        )
    })
}

fn travels_on(nationality: &str, route: &str) -> Option<String> {
    if geography::nationality_index(nationality).is_none() {
        return Some(format!(
            "unknown nationality {nationality:?} (known: {})",
            list(NATIONALITIES.iter().copied())
        ));
    }
    let mix = ROUTES[geography::route_index(route)?].nationality_mix;
    (!mix.iter().any(|(n, _)| *n == nationality)).then(|| {
        format!(
            "nationality {nationality} does not travel on {route} (it carries {})",
            list(mix.iter().map(|(n, _)| *n))
        )
    })
}

fn dormant_point(id: &str) -> Option<String> {
    let dormant = || {
        list(
            ROUTES
                .iter()
                .flat_map(|r| r.points)
                .filter(|p| p.weight == 0.0)
                .map(|p| p.id),
        )
    };
    match geography::find_point(id) {
        None => Some(format!(
            "unknown crossing point {id:?} (dormant points: {})",
            dormant()
        )),
        Some((r, p)) if ROUTES[r].points[p].weight > 0.0 => Some(format!(
            "crossing point {id} is already in use (dormant points: {})",
            dormant()
        )),
        Some(_) => None,
    }
}

fn at_least_one(key: &str, value: u32) -> Option<String> {
    (value == 0).then(|| format!("{key}=0 must be at least 1"))
}

/// Factors beyond this are not a disturbance of the stream but another stream: use `scale`.
const MAX_FACTOR: f64 = 100.0;
/// More dead or missing than any recorded single incident in the region, by far.
const MAX_CASUALTIES: i32 = 10_000;

fn positive(key: &str, value: f64) -> Option<String> {
    (!(value > 0.0 && value <= MAX_FACTOR))
        .then(|| format!("{key}={value} must be above 0 and at most {MAX_FACTOR}"))
}

fn casualties(key: &str, value: i32) -> Option<String> {
    (!(0..=MAX_CASUALTIES).contains(&value))
        .then(|| format!("{key}={value} must be 0 to {MAX_CASUALTIES}"))
}

/// A surge adds incidents; a factor below 1 would have to remove victims already found.
fn surge_factor(value: f64) -> Option<String> {
    (!(1.0..=MAX_FACTOR).contains(&value))
        .then(|| format!("factor={value} must be at least 1 and at most {MAX_FACTOR}"))
}

fn share(key: &str, value: f64) -> Option<String> {
    (!(value > 0.0 && value <= 1.0)).then(|| format!("{key}={value} must be in (0, 1]"))
}

fn hour_of_day(hour: u32) -> Option<String> {
    (hour > 23).then(|| format!("hour={hour} must be 0 to 23"))
}

/// The `key=value` pairs after `@`, taken one by one so leftovers can be reported.
struct Params<'a> {
    pairs: Vec<(&'a str, &'a str)>,
}

impl<'a> Params<'a> {
    fn parse(text: &'a str) -> Result<Self, String> {
        let mut pairs = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?} is not key=value"))?;
            if pairs.iter().any(|(k, _)| *k == key.trim()) {
                return Err(format!("{:?} is given twice", key.trim()));
            }
            pairs.push((key.trim(), value.trim()));
        }
        Ok(Params { pairs })
    }

    fn take<T: FromStr>(&mut self, key: &str, default: Option<T>) -> Result<T, String> {
        match self.pairs.iter().position(|(k, _)| *k == key) {
            Some(i) => {
                let (_, value) = self.pairs.remove(i);
                value
                    .parse()
                    .map_err(|_| format!("{key}={value:?} is not a valid {key}"))
            }
            None => default.ok_or_else(|| format!("missing {key}=")),
        }
    }

    fn finish(self, kind: &str, keys: &str) -> Result<(), String> {
        match self.pairs.first() {
            Some((key, _)) => Err(format!("unknown key {key:?} ({kind} takes {keys})")),
            None => Ok(()),
        }
    }
}

impl FromStr for Scenario {
    type Err = ScenarioError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = |problem: String| ScenarioError {
            scenario: text.to_owned(),
            problem,
        };
        let (kind, rest) = text
            .trim()
            .split_once(':')
            .ok_or_else(|| error("expected <kind>:<target>@<key>=<value>,...".into()))?;
        let (target, params) = rest.split_once('@').unwrap_or((rest, ""));
        let target = target.trim().to_owned();
        let mut p = Params::parse(params).map_err(error)?;
        let scenario = parse_kind(kind.trim(), target, &mut p).map_err(error)?;
        let keys = match scenario {
            Scenario::RouteSpike { .. }
            | Scenario::TraffickingSurge { .. }
            | Scenario::SmugglingSurge { .. } => "day, days, factor",
            Scenario::RouteShift { .. } => "from, to, day, days, fraction",
            Scenario::NewCrossingPoint { .. } => "day, share",
            Scenario::ReportingSilence { .. } => "day, hours, hour",
            Scenario::MassCasualty { .. } => "day, dead, missing, hour",
        };
        p.finish(kind.trim(), keys).map_err(error)?;
        scenario
            .problem()
            .map_or(Ok(scenario), |problem| Err(error(problem)))
    }
}

fn parse_kind(kind: &str, target: String, p: &mut Params<'_>) -> Result<Scenario, String> {
    Ok(match kind {
        "spike" => Scenario::RouteSpike {
            route: target,
            day: p.take("day", None)?,
            days: p.take("days", None)?,
            factor: p.take("factor", None)?,
        },
        "shift" => Scenario::RouteShift {
            nationality: target,
            from: p.take("from", None)?,
            to: p.take("to", None)?,
            day: p.take("day", None)?,
            days: p.take("days", None)?,
            fraction: p.take("fraction", None)?,
        },
        "new-point" => Scenario::NewCrossingPoint {
            point: target,
            day: p.take("day", None)?,
            share: p.take("share", Some(DEFAULT_NEW_POINT_SHARE))?,
        },
        "silence" => Scenario::ReportingSilence {
            agency: target,
            day: p.take("day", None)?,
            hour: p.take("hour", Some(DEFAULT_SILENCE_HOUR))?,
            hours: p.take("hours", None)?,
        },
        "casualty" => Scenario::MassCasualty {
            route: target,
            day: p.take("day", None)?,
            hour: p.take("hour", Some(DEFAULT_CASUALTY_HOUR))?,
            dead: p.take("dead", None)?,
            missing: p.take("missing", None)?,
        },
        "trafficking" => Scenario::TraffickingSurge {
            country: target,
            day: p.take("day", None)?,
            days: p.take("days", None)?,
            factor: p.take("factor", None)?,
        },
        "smuggling" => Scenario::SmugglingSurge {
            route: target,
            day: p.take("day", None)?,
            days: p.take("days", None)?,
            factor: p.take("factor", None)?,
        },
        other => return Err(format!("unknown kind {other:?} (expected one of {KINDS})")),
    })
}

/// The canonical string form, which parses back to the same scenario.
impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scenario::RouteSpike {
                route,
                day,
                days,
                factor,
            } => {
                write!(f, "spike:{route}@day={day},days={days},factor={factor}")
            }
            Scenario::RouteShift {
                nationality,
                from,
                to,
                day,
                days,
                fraction,
            } => write!(
                f,
                "shift:{nationality}@from={from},to={to},day={day},days={days},fraction={fraction}"
            ),
            Scenario::NewCrossingPoint { point, day, share } => {
                write!(f, "new-point:{point}@day={day},share={share}")
            }
            Scenario::ReportingSilence {
                agency,
                day,
                hour,
                hours,
            } => {
                write!(f, "silence:{agency}@day={day},hour={hour},hours={hours}")
            }
            Scenario::MassCasualty {
                route,
                day,
                hour,
                dead,
                missing,
            } => {
                write!(
                    f,
                    "casualty:{route}@day={day},hour={hour},dead={dead},missing={missing}"
                )
            }
            Scenario::TraffickingSurge {
                country,
                day,
                days,
                factor,
            } => {
                write!(
                    f,
                    "trafficking:{country}@day={day},days={days},factor={factor}"
                )
            }
            Scenario::SmugglingSurge {
                route,
                day,
                days,
                factor,
            } => {
                write!(f, "smuggling:{route}@day={day},days={days},factor={factor}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Scenario;

    #[test]
    fn every_kind_parses_and_prints_back() {
        let cases = [
            "spike:AFG-IRN-NIMROZ@day=60,days=7,factor=4",
            "shift:AFG@from=AFG-IRN-NIMROZ,to=PAK-IRN-TAFTAN,day=70,days=14,fraction=0.3",
            "new-point:TUR-DIYADIN-GREEN@day=75,share=0.2",
            "silence:PAK-FIA@day=80,hour=6,hours=96",
            "casualty:IRN-TUR-VAN@day=90,hour=2,dead=12,missing=5",
            "trafficking:TUR@day=100,days=10,factor=5",
            "smuggling:TUR-EU-EDIRNE@day=110,days=7,factor=4",
        ];
        for text in cases {
            let scenario: Scenario = text.parse().unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(scenario.to_string(), text);
        }
        assert_eq!(
            "spike:AFG-IRN-NIMROZ@day=60,days=7,factor=4".parse::<Scenario>(),
            Ok(Scenario::RouteSpike {
                route: "AFG-IRN-NIMROZ".into(),
                day: 60,
                days: 7,
                factor: 4.0
            })
        );
    }

    #[test]
    fn optional_keys_take_their_defaults() {
        let silence: Scenario = "silence:PAK-FIA@day=80,hours=96".parse().unwrap();
        assert!(matches!(
            silence,
            Scenario::ReportingSilence {
                hour: 0,
                hours: 96,
                ..
            }
        ));
        let point: Scenario = "new-point:IRN-LUTAK-TRACK@day=3".parse().unwrap();
        assert!(matches!(point, Scenario::NewCrossingPoint { share, .. } if share == 0.15));
    }

    #[test]
    fn errors_name_the_bad_part() {
        let problem = |text: &str| text.parse::<Scenario>().unwrap_err().problem;
        assert!(
            problem("spike:AFG-IRN-NOWHERE@day=1,days=2,factor=3").contains("\"AFG-IRN-NOWHERE\"")
        );
        assert!(
            problem("spike:AFG-IRN-NIMROZ@day=1,days=2,factor=lots").contains("factor=\"lots\"")
        );
        assert!(problem("spike:AFG-IRN-NIMROZ@day=1,days=2").contains("missing factor="));
        assert!(problem("spike:AFG-IRN-NIMROZ@day=1,days=2,factor=3,hour=4").contains("\"hour\""));
        assert!(problem("spike:AFG-IRN-NIMROZ@day=1,days=0,factor=3").contains("days=0"));
        assert!(problem("surge:TUR@day=1").contains("\"surge\""));
        assert!(problem("silence:PAK-POLICE@day=1,hours=5").contains("\"PAK-POLICE\""));
        assert!(problem("new-point:TUR-GURBULAK-BCP@day=1").contains("already in use"));
        assert!(
            problem("shift:SOM@from=AFG-IRN-NIMROZ,to=PAK-IRN-TAFTAN,day=1,days=2,fraction=0.5")
                .contains("SOM does not travel on AFG-IRN-NIMROZ")
        );
        assert!(problem("casualty:IRN-TUR-VAN@day=9,dead=0,missing=0").contains("at least 1"));
        assert!(problem("trafficking:GRC@day=1,days=2,factor=3").contains("\"GRC\""));
        assert!(problem("trafficking:TUR@day=1,days=2,factor=0.5").contains("at least 1"));
        assert!(problem("smuggling:TUR@day=1,days=2,factor=3").contains("unknown route \"TUR\""));
        assert!(problem("smuggling:TUR-EU-EDIRNE@day=1,days=2,factor=0.5").contains("at least 1"));
        assert!(problem("spike:IRN-TUR-VAN@day=1,days=2,factor=1e9").contains("at most 100"));
        assert!(problem("casualty:IRN-TUR-VAN@day=9,dead=-1,missing=2").contains("dead=-1"));
        assert!(problem("just words").contains("expected <kind>:<target>@"));
        let shown = "spike:X@day=1".parse::<Scenario>().unwrap_err().to_string();
        assert!(shown.starts_with("scenario \"spike:X@day=1\": "), "{shown}");
    }
}

//! The statistical detectors as rule-script functions, registered by
//! [`crate::sandbox::engine`]: the series detectors of `relec-detect` (EARS C1/C2/C3, CUSUM,
//! EWMA, Farrington, Farrington-flexible) judge the last point of an array the script got
//! from `g.daily` or `g.weekly`; the point checks (spike, share shift, new term, flatline)
//! take the numbers they compare. Each returns a map, so a condition reads
//! `let r = ears_c2(g.daily("persons", 28)); #{ fire: r.alarm, value: r.observed }`.
//!
//! Options come as a map whose keys are checked: an unknown key or a bad value throws an
//! error naming the function and the key. A native call is one operation to the sandbox's
//! limits, so the work of each is bounded here instead: series longer than
//! [`MAX_SERIES`] points and models beyond [`MAX_BASELINE_POINTS`] and [`MAX_NO_PERIODS`]
//! are refused.

use relec_detect::{
    Activity, Alternative, CusumParams, CusumTrans, EarsMethod, EarsParams, Error, Evaluation,
    EwmaParams, FarringtonParams, FlatlineParams, FlexibleParams, NewTermParams, PowerTrans,
    Proportion, ShareShiftParams, SpikeParams, SpikeType, ThresholdMethod, TimeRange,
};
use rhai::{Array, Dynamic, Engine, EvalAltResult, FLOAT, INT, Map};

use crate::{
    sandbox::MAX_SPAN_DAYS,
    time::{DAY_MS, day_of},
};

type Res<T> = Result<T, Box<EvalAltResult>>;

/// The longest series a detector takes: as many days as any window may reach back, so
/// every series `g.daily` can make fits, and a detector's work stays within milliseconds.
pub const MAX_SERIES: usize = MAX_SPAN_DAYS as usize;
/// The Farrington detectors fit a GLM to the `b` periods before the point judged; its cost
/// grows with their points: 1,100 is 21 years of weeks or 3 of days.
pub const MAX_BASELINE_POINTS: usize = 1_100;
/// Farrington-flexible fits one GLM column per seasonal period, and the cost grows with
/// their square; 12 is a little above the package's usual 10 for weekly data. At both
/// maxima one call takes under 10 ms (optimised build).
pub const MAX_NO_PERIODS: usize = 12;

const EARS_KEYS: &[&str] = &["alpha", "baseline", "min_sigma"];
const CUSUM_KEYS: &[&str] = &["k", "h", "m", "trans", "alpha", "reference"];
const EWMA_KEYS: &[&str] = &["lambda", "l", "reference"];
const FARRINGTON_KEYS: &[&str] = &[
    "b",
    "w",
    "reweight",
    "trend",
    "alpha",
    "powertrans",
    "limit54",
    "period",
];
const FLEXIBLE_KEYS: &[&str] = &[
    "b",
    "w",
    "reweight",
    "trend",
    "alpha",
    "powertrans",
    "limit54",
    "period",
    "weights_threshold",
    "p_threshold_trend",
    "no_periods",
    "past_weeks_not_included",
    "threshold_method",
];
const SPIKE_KEYS: &[&str] = &[
    "spike_height",
    "spike_type",
    "threshold_ref",
    "threshold_cur",
];
const SHARE_SHIFT_KEYS: &[&str] = &["min_shift", "alpha", "alternative", "min_total", "min_part"];
const NEW_TERM_KEYS: &[&str] = &["within_days", "min_history_days"];
const FLATLINE_KEYS: &[&str] = &["timeframe", "threshold", "count", "first_seen"];

/// Registers every detector function on `engine`.
pub(crate) fn register(engine: &mut Engine) {
    for (name, method) in [
        ("ears_c1", EarsMethod::C1),
        ("ears_c2", EarsMethod::C2),
        ("ears_c3", EarsMethod::C3),
    ] {
        engine.register_fn(name, move |s: Array| ears(name, method, &s, Map::new()));
        engine.register_fn(name, move |s: Array, p: Map| ears(name, method, &s, p));
    }
    engine.register_fn("cusum", |s: Array| cusum(&s, Map::new()));
    engine.register_fn("cusum", |s: Array, p: Map| cusum(&s, p));
    engine.register_fn("ewma", |s: Array| ewma(&s, Map::new()));
    engine.register_fn("ewma", |s: Array, p: Map| ewma(&s, p));
    engine.register_fn("farrington", |s: Array| farrington(&s, Map::new()));
    engine.register_fn("farrington", |s: Array, p: Map| farrington(&s, p));
    engine.register_fn("farrington_flexible", |s: Array| flexible(&s, Map::new()));
    engine.register_fn("farrington_flexible", |s: Array, p: Map| flexible(&s, p));

    engine.register_fn("spike", |cur: Dynamic, r: Dynamic| {
        spike(cur, r, Map::new())
    });
    engine.register_fn("spike", spike);
    engine.register_fn(
        "share_shift",
        |part: Dynamic, total: Dynamic, part_before: Dynamic, total_before: Dynamic| {
            share_shift([part, total, part_before, total_before], Map::new())
        },
    );
    engine.register_fn(
        "share_shift",
        |part: Dynamic, total: Dynamic, part_before: Dynamic, total_before: Dynamic, p: Map| {
            share_shift([part, total, part_before, total_before], p)
        },
    );
    engine.register_fn("new_term", |first: Dynamic, now: INT, history: INT| {
        new_term(first, now, history, Map::new())
    });
    engine.register_fn("new_term", new_term);
    engine.register_fn("flatline", |last: Dynamic, now: INT| {
        flatline(last, now, Map::new())
    });
    engine.register_fn("flatline", flatline);
}

// ---------------------------------------------------------------------------------------
// Series detectors: judged at the last point of the series.

fn ears(name: &'static str, method: EarsMethod, series: &Array, params: Map) -> Res<Map> {
    let counts = counts(name, series)?;
    let mut p = Options::new(name, params, EARS_KEYS)?;
    let mut params = EarsParams::new(method);
    set(&mut params.alpha, p.float("alpha")?);
    set(&mut params.baseline, p.whole("baseline")?);
    set(&mut params.min_sigma, p.float("min_sigma")?);
    let guard = match method {
        EarsMethod::C1 => 0,
        EarsMethod::C2 => 2,
        EarsMethod::C3 => 4,
    };
    let needed = params.baseline + guard + 1;
    long_enough(
        name,
        &counts,
        needed,
        &format!(
            "a baseline of {} with {guard} points of guard band",
            params.baseline
        ),
    )?;
    params.range = Some(last_point(&counts));
    last(name, relec_detect::ears_c(&counts, &params))
}

fn cusum(series: &Array, params: Map) -> Res<Map> {
    const NAME: &str = "cusum";
    let counts = counts(NAME, series)?;
    let mut p = Options::new(NAME, params, CUSUM_KEYS)?;
    let mut params = CusumParams::default();
    set(&mut params.k, p.float("k")?);
    set(&mut params.h, p.float("h")?);
    params.m = p.float("m")?;
    set(&mut params.alpha, p.float("alpha")?);
    if let Some(name) = p.text("trans")? {
        params.trans = CusumTrans::parse(&name).ok_or_else(|| {
            p.bad(
                "trans",
                format!(
                    "{name:?} is not one of standard, rossi, anscombe, anscombe2nd, \
                     pearsonNegBin, none"
                ),
            )
        })?;
    }
    let min_reference = if params.m.is_some() { 0 } else { 1 };
    let reference = p.whole("reference")?.unwrap_or(counts.len() / 2);
    range_after(NAME, &counts, reference, min_reference, &mut params.range)?;
    last(NAME, relec_detect::cusum(&counts, &params))
}

fn ewma(series: &Array, params: Map) -> Res<Map> {
    const NAME: &str = "ewma";
    let counts = counts(NAME, series)?;
    let mut p = Options::new(NAME, params, EWMA_KEYS)?;
    let mut params = EwmaParams::default();
    set(&mut params.lambda, p.float("lambda")?);
    set(&mut params.l, p.float("l")?);
    let reference = p.whole("reference")?.unwrap_or(counts.len() / 2);
    range_after(NAME, &counts, reference, 2, &mut params.range)?;
    last(NAME, relec_detect::ewma(&counts, &params))
}

/// The options both Farrington detectors share.
#[derive(Debug, Clone, Copy)]
struct Seasonal {
    b: usize,
    w: usize,
    reweight: bool,
    trend: bool,
    alpha: f64,
    powertrans: PowerTrans,
    limit54: (f64, usize),
    period: usize,
}

impl Seasonal {
    /// These options from `p`, over `self` as the defaults.
    fn read(mut self, p: &mut Options) -> Res<Self> {
        set(&mut self.b, p.whole("b")?);
        set(&mut self.w, p.whole("w")?);
        set(&mut self.reweight, p.boolean("reweight")?);
        set(&mut self.trend, p.boolean("trend")?);
        set(&mut self.alpha, p.float("alpha")?);
        if let Some(name) = p.text("powertrans")? {
            self.powertrans = PowerTrans::parse(&name).ok_or_else(|| {
                p.bad(
                    "powertrans",
                    format!("{name:?} is not one of 2/3, 1/2, none"),
                )
            })?;
        }
        set(&mut self.limit54, p.limit54("limit54")?);
        set(&mut self.period, p.whole("period")?);
        // Bounds that keep every window inside the series and the products small.
        let Self { b, w, period, .. } = self;
        if period == 0 {
            return Err(p.bad("period", "must be at least 1".to_owned()));
        }
        if b == 0 {
            return Err(p.bad("b", "must be at least 1".to_owned()));
        }
        if b * period > MAX_BASELINE_POINTS {
            return Err(p.bad(
                "b",
                format!(
                    "{b} periods of {period} points are more than the \
                     {MAX_BASELINE_POINTS} baseline points a fit takes"
                ),
            ));
        }
        if 2 * w + 1 > period {
            return Err(p.bad(
                "w",
                format!("{w}: the window 2w + 1 must fit in a period of {period}"),
            ));
        }
        Ok(self)
    }

    /// Points the series needs: `b` whole periods back, and the window around the oldest.
    fn needed(&self) -> usize {
        self.period * self.b + self.w + 1
    }

    fn check_length(&self, name: &str, counts: &[f64]) -> Res<()> {
        let why = format!(
            "b = {} periods of {} points and a window of w = {} around the oldest",
            self.b, self.period, self.w
        );
        long_enough(name, counts, self.needed(), &why)
    }
}

fn farrington(series: &Array, params: Map) -> Res<Map> {
    const NAME: &str = "farrington";
    let counts = counts(NAME, series)?;
    let mut p = Options::new(NAME, params, FARRINGTON_KEYS)?;
    let d = FarringtonParams::default();
    let s = Seasonal {
        b: d.b,
        w: d.w,
        reweight: d.reweight,
        trend: d.trend,
        alpha: d.alpha,
        powertrans: d.powertrans,
        limit54: d.limit54,
        period: d.period,
    }
    .read(&mut p)?;
    s.check_length(NAME, &counts)?;
    let params = FarringtonParams {
        range: Some(last_point(&counts)),
        b: s.b,
        w: s.w,
        reweight: s.reweight,
        trend: s.trend,
        alpha: s.alpha,
        powertrans: s.powertrans,
        limit54: s.limit54,
        period: s.period,
    };
    last(NAME, relec_detect::farrington(&counts, &params))
}

fn flexible(series: &Array, params: Map) -> Res<Map> {
    const NAME: &str = "farrington_flexible";
    let counts = counts(NAME, series)?;
    let mut p = Options::new(NAME, params, FLEXIBLE_KEYS)?;
    let d = FlexibleParams::default();
    let s = Seasonal {
        b: d.b,
        w: d.w,
        reweight: d.reweight,
        trend: d.trend,
        alpha: d.alpha,
        powertrans: d.powertrans,
        limit54: d.limit54,
        period: d.period,
    }
    .read(&mut p)?;
    let mut params = FlexibleParams {
        b: s.b,
        w: s.w,
        reweight: s.reweight,
        trend: s.trend,
        alpha: s.alpha,
        powertrans: s.powertrans,
        limit54: s.limit54,
        period: s.period,
        ..d
    };
    set(&mut params.weights_threshold, p.float("weights_threshold")?);
    set(&mut params.p_threshold_trend, p.float("p_threshold_trend")?);
    if let Some(v) = p.whole("no_periods")? {
        if !(1..=MAX_NO_PERIODS).contains(&v) {
            return Err(p.bad("no_periods", format!("{v} must be 1 to {MAX_NO_PERIODS}")));
        }
        params.no_periods = v;
    }
    if let Some(v) = p.whole("past_weeks_not_included")? {
        if v >= params.period {
            return Err(p.bad(
                "past_weeks_not_included",
                format!("{v} must be less than the period ({})", params.period),
            ));
        }
        params.past_weeks_not_included = Some(v);
    }
    if let Some(name) = p.text("threshold_method")? {
        params.threshold_method = ThresholdMethod::parse(&name).ok_or_else(|| {
            p.bad(
                "threshold_method",
                format!("{name:?} is not one of delta, nbPlugin, muan"),
            )
        })?;
    }
    s.check_length(NAME, &counts)?;
    params.range = Some(last_point(&counts));
    last(NAME, relec_detect::farrington_flexible(&counts, &params))
}

/// The range from just after `reference` leading points to the end, or why there is none.
fn range_after(
    name: &str,
    counts: &[f64],
    reference: usize,
    min_reference: usize,
    range: &mut Option<TimeRange>,
) -> Res<()> {
    if reference < min_reference {
        return Err(format!(
            "{name}: reference: {reference} points; the in-control values need at least \
             {min_reference}"
        )
        .into());
    }
    if reference >= counts.len() {
        return Err(format!(
            "{name}: reference: {reference} points leave none of the {} to judge",
            counts.len()
        )
        .into());
    }
    *range = Some(TimeRange::new(reference + 1, counts.len()));
    Ok(())
}

fn last_point(counts: &[f64]) -> TimeRange {
    TimeRange::new(counts.len(), counts.len())
}

fn long_enough(name: &str, counts: &[f64], needed: usize, why: &str) -> Res<()> {
    if counts.len() < needed {
        return Err(format!(
            "{name}: the series has {} points; {why} needs at least {needed}",
            counts.len()
        )
        .into());
    }
    Ok(())
}

/// The verdict at the series' last point as the script sees it.
fn last(name: &str, result: Result<Vec<Evaluation>, Error>) -> Res<Map> {
    let evaluations = result.map_err(|e| detect_error(name, e))?;
    let e = evaluations
        .last()
        .ok_or_else(|| format!("{name}: no point was evaluated"))?;
    Ok(Map::from([
        ("alarm".into(), e.alarm.unwrap_or(false).into()),
        ("upperbound".into(), float_or_unit(e.upperbound)),
        ("observed".into(), Dynamic::from_float(e.observed)),
    ]))
}

/// The numbers of a series, checked and within [`MAX_SERIES`].
fn counts(name: &str, series: &Array) -> Res<Vec<f64>> {
    if series.len() > MAX_SERIES {
        return Err(format!(
            "{name}: the series has {} points, more than the {MAX_SERIES} a detector takes",
            series.len()
        )
        .into());
    }
    if series.is_empty() {
        return Err(format!("{name}: the series is empty").into());
    }
    series
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let x = number(v)
                .ok_or_else(|| format!("{name}: element {i} is {}, not a number", v.type_name()))?;
            if x.is_finite() && x >= 0.0 {
                Ok(x)
            } else {
                Err(format!("{name}: element {i} is {x}; counts must be finite and >= 0").into())
            }
        })
        .collect()
}

/// A detector's error in the script's words: options by their map key, positions as array
/// indices.
fn detect_error(name: &str, e: Error) -> Box<EvalAltResult> {
    match e {
        Error::InvalidParameter { flag, reason } => {
            format!("{name}: {}: {reason}", flag.replace('-', "_")).into()
        }
        Error::InvalidCount { t, value } => format!(
            "{name}: element {} is {value}; counts must be finite and >= 0",
            t - 1
        )
        .into(),
        Error::TooShort(reason) => format!("{name}: the series is too short: {reason}").into(),
        other => format!("{name}: {other}").into(),
    }
}

// ---------------------------------------------------------------------------------------
// Point checks.

fn spike(cur: Dynamic, reference: Dynamic, params: Map) -> Res<Map> {
    const NAME: &str = "spike";
    let cur = argument(NAME, "cur", &cur)?;
    let reference = argument(NAME, "ref", &reference)?;
    let mut p = Options::new(NAME, params, SPIKE_KEYS)?;
    let mut params = SpikeParams::default();
    set(&mut params.spike_height, p.float("spike_height")?);
    if let Some(name) = p.text("spike_type")? {
        params.spike_type = SpikeType::parse(&name).ok_or_else(|| {
            p.bad(
                "spike_type",
                format!("{name:?} is not one of up, down, both"),
            )
        })?;
    }
    set(&mut params.threshold_ref, p.float("threshold_ref")?);
    set(&mut params.threshold_cur, p.float("threshold_cur")?);
    let s = relec_detect::spike(cur, reference, &params).map_err(|e| detect_error(NAME, e))?;
    Ok(Map::from([
        ("alarm".into(), s.alarm.into()),
        ("observed".into(), Dynamic::from_float(cur)),
        ("reference".into(), Dynamic::from_float(reference)),
        ("ratio".into(), float_or_unit(s.ratio)),
        ("upperbound".into(), Dynamic::from_float(s.upper)),
        ("lowerbound".into(), Dynamic::from_float(s.lower)),
    ]))
}

fn share_shift(numbers: [Dynamic; 4], params: Map) -> Res<Map> {
    const NAME: &str = "share_shift";
    let names = ["part", "total", "part_before", "total_before"];
    let mut values = [0.0; 4];
    for ((value, n), out) in numbers.iter().zip(names).zip(&mut values) {
        *out = argument(NAME, n, value)?;
    }
    let [part, total, part_before, total_before] = values;
    let mut p = Options::new(NAME, params, SHARE_SHIFT_KEYS)?;
    let mut params = ShareShiftParams::default();
    set(&mut params.min_shift, p.float("min_shift")?);
    set(&mut params.alpha, p.float("alpha")?);
    if let Some(name) = p.text("alternative")? {
        params.alternative = Alternative::parse(&name).ok_or_else(|| {
            p.bad(
                "alternative",
                format!("{name:?} is not one of greater, less, two_sided"),
            )
        })?;
    }
    set(&mut params.min_total, p.float("min_total")?);
    set(&mut params.min_part, p.float("min_part")?);
    let now = Proportion { part, total };
    let before = Proportion {
        part: part_before,
        total: total_before,
    };
    let s = relec_detect::share_shift(now, before, &params).map_err(|e| match e {
        Error::InvalidParameter { flag, reason } if flag == "now" || flag == "before" => {
            let which = if flag == "now" {
                "part, total"
            } else {
                "part_before, total_before"
            };
            format!("{NAME}: {which}: {reason}").into()
        }
        e => detect_error(NAME, e),
    })?;
    Ok(Map::from([
        ("alarm".into(), s.alarm.into()),
        ("observed".into(), float_or_unit(s.share)),
        ("before".into(), float_or_unit(s.share_before)),
        ("shift".into(), float_or_unit(s.shift)),
        ("z".into(), float_or_unit(s.z)),
        ("p_value".into(), float_or_unit(s.p_value)),
    ]))
}

fn new_term(first_seen: Dynamic, now: INT, history_days: INT, params: Map) -> Res<Map> {
    const NAME: &str = "new_term";
    let first_seen = time_or_unit(NAME, "first_seen", &first_seen)?;
    let mut p = Options::new(NAME, params, NEW_TERM_KEYS)?;
    let mut params = NewTermParams::default();
    set(&mut params.within_days, p.int("within_days")?);
    set(&mut params.min_history_days, p.int("min_history_days")?);
    // `now` is g.now, the first instant after the evaluated day: that day is today.
    let today = day_of(now.saturating_sub(1));
    let t = relec_detect::new_term(first_seen.map(day_of), today, history_days, &params)
        .map_err(|e| detect_error(NAME, e))?;
    let age = t.age_days.map_or(Dynamic::UNIT, Dynamic::from_int);
    Ok(Map::from([
        ("alarm".into(), t.alarm.into()),
        ("observed".into(), age.clone()),
        ("age_days".into(), age),
    ]))
}

fn flatline(last_seen: Dynamic, now: INT, params: Map) -> Res<Map> {
    const NAME: &str = "flatline";
    let last_seen = time_or_unit(NAME, "last_seen", &last_seen)?;
    let mut p = Options::new(NAME, params, FLATLINE_KEYS)?;
    let mut params = FlatlineParams::default();
    set(&mut params.timeframe_ms, p.duration_ms("timeframe")?);
    set(&mut params.threshold, p.float("threshold")?);
    let count = p.float("count")?;
    let first_seen = match p.take("first_seen") {
        Some(v) => time_or_unit(NAME, "first_seen", &v)?,
        None => None,
    };
    let activity = Activity {
        now,
        first_seen,
        last_seen,
        count,
    };
    let f = relec_detect::flatline(&activity, &params).map_err(|e| detect_error(NAME, e))?;
    let hours = f.silent_ms.map_or(Dynamic::UNIT, |ms| {
        Dynamic::from_float(ms as FLOAT / 3_600_000.0)
    });
    Ok(Map::from([
        ("alarm".into(), f.alarm.into()),
        ("observed".into(), hours.clone()),
        ("silent_hours".into(), hours),
        ("count".into(), float_or_unit(f.count)),
    ]))
}

// ---------------------------------------------------------------------------------------
// Arguments and option maps.

fn number(v: &Dynamic) -> Option<f64> {
    v.as_float()
        .ok()
        .or_else(|| v.as_int().ok().map(|n| n as FLOAT))
}

fn float_or_unit(x: Option<f64>) -> Dynamic {
    x.filter(|x| x.is_finite())
        .map_or(Dynamic::UNIT, Dynamic::from_float)
}

fn argument(name: &str, arg: &str, v: &Dynamic) -> Res<f64> {
    number(v).ok_or_else(|| format!("{name}: {arg} is {}, not a number", v.type_name()).into())
}

/// A time in milliseconds as `g.first_seen()` gives it, or `()` for never.
fn time_or_unit(name: &str, arg: &str, v: &Dynamic) -> Res<Option<i64>> {
    if v.is_unit() {
        return Ok(None);
    }
    v.as_int().map(Some).map_err(|t| {
        format!("{name}: {arg} is {t}, not a time in milliseconds (or () for never)").into()
    })
}

/// An option map being read: every key must be one the function takes.
struct Options {
    function: &'static str,
    map: Map,
}

impl Options {
    fn new(function: &'static str, map: Map, keys: &[&str]) -> Res<Self> {
        if let Some(key) = map.keys().find(|k| !keys.contains(&k.as_str())) {
            return Err(format!(
                "{function}: unknown option {key:?} ({function} takes {})",
                keys.join(", ")
            )
            .into());
        }
        Ok(Self { function, map })
    }

    fn bad(&self, key: &str, reason: String) -> Box<EvalAltResult> {
        format!("{}: {key}: {reason}", self.function).into()
    }

    fn take(&mut self, key: &str) -> Option<Dynamic> {
        self.map.remove(key).filter(|v| !v.is_unit())
    }

    fn float(&mut self, key: &str) -> Res<Option<f64>> {
        let Some(v) = self.take(key) else {
            return Ok(None);
        };
        match number(&v) {
            Some(x) if x.is_finite() => Ok(Some(x)),
            Some(x) => Err(self.bad(key, format!("{x} is not a finite number"))),
            None => Err(self.bad(key, format!("must be a number, not {}", v.type_name()))),
        }
    }

    fn int(&mut self, key: &str) -> Res<Option<i64>> {
        let Some(v) = self.take(key) else {
            return Ok(None);
        };
        v.as_int()
            .map(Some)
            .map_err(|t| self.bad(key, format!("must be a whole number, not {t}")))
    }

    /// A whole number >= 0 within [`MAX_SERIES`] (counts of points, of periods...).
    fn whole(&mut self, key: &str) -> Res<Option<usize>> {
        match self.int(key)? {
            None => Ok(None),
            Some(n) if (0..=MAX_SERIES as i64).contains(&n) => Ok(Some(n as usize)),
            Some(n) => Err(self.bad(key, format!("{n} must be 0 to {MAX_SERIES}"))),
        }
    }

    fn boolean(&mut self, key: &str) -> Res<Option<bool>> {
        let Some(v) = self.take(key) else {
            return Ok(None);
        };
        v.as_bool()
            .map(Some)
            .map_err(|t| self.bad(key, format!("must be true or false, not {t}")))
    }

    fn text(&mut self, key: &str) -> Res<Option<String>> {
        let Some(v) = self.take(key) else {
            return Ok(None);
        };
        v.into_immutable_string()
            .map(|s| Some(s.to_string()))
            .map_err(|t| self.bad(key, format!("must be a string, not {t}")))
    }

    /// `[cases, period]`, e.g. `[5, 4]`.
    fn limit54(&mut self, key: &str) -> Res<Option<(f64, usize)>> {
        let Some(v) = self.take(key) else {
            return Ok(None);
        };
        let bad = |this: &Self| this.bad(key, "must be [cases, period], e.g. [5, 4]".to_owned());
        let Some(pair) = v.read_lock::<Array>().map(|a| a.clone()) else {
            return Err(bad(self));
        };
        let (Some(cases), Some(period)) = (
            pair.first().and_then(number),
            pair.get(1).and_then(|p| p.as_int().ok()),
        ) else {
            return Err(bad(self));
        };
        if pair.len() != 2 || !(cases.is_finite() && cases >= 0.0) {
            return Err(bad(self));
        }
        if !(1..=MAX_SERIES as i64).contains(&period) {
            return Err(self.bad(
                key,
                format!("the period {period} must be 1 to {MAX_SERIES}"),
            ));
        }
        Ok(Some((cases, period as usize)))
    }

    /// A duration such as `"72h"`, `"3d"` or `"2w"`, in milliseconds, within
    /// [`MAX_SPAN_DAYS`].
    fn duration_ms(&mut self, key: &str) -> Res<Option<i64>> {
        let Some(v) = self.take(key) else {
            return Ok(None);
        };
        let text = v
            .into_immutable_string()
            .map_err(|t| self.bad(key, format!("must be a duration like \"72h\", not {t}")))?;
        let text = text.trim();
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (digits, unit) = text.split_at(split);
        let unit_ms = match unit {
            "h" => 3_600_000,
            "d" => DAY_MS,
            "w" => 7 * DAY_MS,
            _ => 0,
        };
        match digits.parse::<i64>() {
            Ok(n)
                if unit_ms > 0 && n > 0 && n.saturating_mul(unit_ms) <= MAX_SPAN_DAYS * DAY_MS =>
            {
                Ok(Some(n * unit_ms))
            }
            _ => Err(self.bad(
                key,
                format!(
                    "{text:?} is not a duration like 72h, 3d or 2w (up to {MAX_SPAN_DAYS} days)"
                ),
            )),
        }
    }
}

/// Puts an option the script gave in place of its default.
fn set<T>(target: &mut T, given: Option<T>) {
    if let Some(v) = given {
        *target = v;
    }
}

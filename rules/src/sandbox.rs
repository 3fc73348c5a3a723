//! The sandbox rule scripts run in: a rhai engine with no way out (no files, network,
//! processes, imports or `eval`), hard limits on operations, memory, call depth and
//! time, and the script API over a group's state (`g.sum(..)`, `g.share(..)`, array
//! statistics). Rules are loaded and evaluated through [`crate::rule::Rule`].

use std::{
    cell::RefCell,
    sync::Arc,
    time::{Duration, Instant},
};

use relec_schemas::IncidentEvent;
use rhai::{Array, Dynamic, Engine, EvalAltResult, FLOAT, INT, Map, OptimizationLevel};

use crate::{
    dims::DIMENSIONS,
    group::Group,
    state::FIELDS,
    template,
    time::{Day, day_of, end_of, window_days},
};

/// Limits on one evaluation of one rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Script operations (roughly: expressions and statements evaluated).
    pub max_operations: u64,
    /// Nested script function calls.
    pub max_call_levels: usize,
    /// Bytes in one string.
    pub max_string_size: usize,
    /// Elements in one array.
    pub max_array_size: usize,
    /// Entries in one object map.
    pub max_map_size: usize,
    /// Wall time of one evaluation (checked every [`CHECK_TIME_EVERY`] operations).
    pub time_budget: Duration,
}

/// A rule is a few dozen lookups and comparisons; a million operations is several
/// hundred times what the acceptance pack needs and ends a runaway loop in ~0.2 s.
pub const DEFAULT_MAX_OPERATIONS: u64 = 1_000_000;
pub const DEFAULT_MAX_CALL_LEVELS: usize = 32;
pub const DEFAULT_MAX_STRING_SIZE: usize = 64 * 1024;
/// Ten years of daily values fit many times over.
pub const DEFAULT_MAX_ARRAY_SIZE: usize = 100_000;
pub const DEFAULT_MAX_MAP_SIZE: usize = 10_000;
/// Thousands of keys are evaluated per rule and day; one slow rule must not delay them.
pub const DEFAULT_TIME_BUDGET: Duration = Duration::from_millis(50);

/// How many operations pass between two looks at the clock: reading it on every
/// operation would cost more than the operations themselves.
pub const CHECK_TIME_EVERY: u64 = 1024;

/// The furthest back any window may reach, in days. It bounds what one script call can
/// allocate (`g.daily`) or loop over (`g.baseline`), which the operation limit cannot
/// see since a native call counts as one operation.
pub const MAX_SPAN_DAYS: i64 = 3660;

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_operations: DEFAULT_MAX_OPERATIONS,
            max_call_levels: DEFAULT_MAX_CALL_LEVELS,
            max_string_size: DEFAULT_MAX_STRING_SIZE,
            max_array_size: DEFAULT_MAX_ARRAY_SIZE,
            max_map_size: DEFAULT_MAX_MAP_SIZE,
            time_budget: DEFAULT_TIME_BUDGET,
        }
    }
}

/// Builds the engine every rule is compiled and evaluated with.
///
/// What a script can reach: `Engine::new()` holds only rhai's standard packages
/// (arithmetic, strings, arrays, maps, JSON parsing, an `Instant` clock): rhai has no
/// file, network, process or environment functions at all; those come only from extra
/// crates (rhai-fs, rhai-url...), which are not added. Three things are taken away:
/// `import` (`Engine::new()` installs a resolver that reads module files from disk),
/// `eval`, and the standard `sleep` and `timestamp`: `sleep` blocks the thread in one
/// operation, out of reach of the limits, and a wall clock would make alerts depend on
/// when a replay runs instead of on the events.
///
/// The optimizer must stay on (it is, at `Simple`): a rule's top-level constants reach
/// its functions by constant propagation at compile time (see `Rule::from_source`).
pub fn engine(limits: &Limits) -> Engine {
    let mut engine = Engine::new();
    engine.set_module_resolver(rhai::module_resolvers::DummyModuleResolver::new());
    engine.set_max_modules(0);
    engine.disable_symbol("import");
    engine.disable_symbol("eval");
    engine.set_optimization_level(OptimizationLevel::Simple);
    // A misspelt key of `g.event` or of a script's own map is a bug, not a `()`.
    engine.set_fail_on_invalid_map_property(true);

    engine.set_max_operations(limits.max_operations);
    engine.set_max_call_levels(limits.max_call_levels);
    engine.set_max_string_size(limits.max_string_size);
    engine.set_max_array_size(limits.max_array_size);
    engine.set_max_map_size(limits.max_map_size);
    let budget = limits.time_budget;
    engine.on_progress(move |operations| {
        if operations % CHECK_TIME_EVERY != 0 {
            return None;
        }
        let late =
            RUNNING.with_borrow(|r| r.as_ref().is_some_and(|r| r.started.elapsed() > budget));
        late.then(|| format!("time budget of {} ms exceeded", budget.as_millis()).into())
    });
    // Functions cannot see the top level in rhai. Constants in plain positions are
    // inlined at compile time; this resolves the rest (`ROUTES.len()`, `LIMITS[0]`)
    // from the running rule's constants. `on_var` is flagged volatile (may change in a
    // later rhai), not deprecated; rhai is pinned by the workspace.
    #[allow(deprecated)]
    engine.on_var(|name, index, context| {
        if index > 0 || context.scope().contains(name) {
            return Ok(None);
        }
        Ok(RUNNING.with_borrow(|r| {
            r.as_ref()
                .and_then(|r| r.context.constants.get(name).cloned())
        }))
    });

    engine.on_print(|text| tracing::debug!(target: "relec_rules::script", "{text}"));
    engine.on_debug(|text, source, position| {
        tracing::debug!(target: "relec_rules::script", source = source.unwrap_or(""), %position, "{text}");
    });
    forbid(&mut engine);
    register_group(&mut engine);
    register_event(&mut engine);
    register_stats(&mut engine);
    crate::detectors::register(&mut engine);
    engine
}

/// Replaces standard functions a rule must not call. Registered functions take
/// precedence over packages, also through `call(Fn("sleep"), ..)`; `disable_symbol`
/// only works for keywords and operators.
fn forbid(engine: &mut Engine) {
    fn refuse(what: &str) -> Box<EvalAltResult> {
        format!("{what} is not available to rules").into()
    }
    engine.register_fn("sleep", |_: INT| -> Result<(), _> { Err(refuse("sleep")) });
    engine.register_fn("sleep", |_: FLOAT| -> Result<(), _> {
        Err(refuse("sleep"))
    });
    engine.register_fn("timestamp", || -> Result<(), _> {
        Err(refuse(
            "timestamp() (wall-clock time; use g.now, the evaluated day's end)",
        ))
    });
}

// ---------------------------------------------------------------------------------------
// The running evaluation.

/// What one rule's evaluation may see besides its argument; installed by [`run`].
#[derive(Debug, Clone, Default)]
pub(crate) struct Context {
    /// Dimensions the rule declared in `breakdown`, the only ones its sub-key functions
    /// may ask about: the state keeps sub-keys only for declared breakdowns, so any other
    /// would silently read zeros.
    pub breakdown: Arc<[String]>,
    /// The rule file's top-level constants.
    pub constants: Arc<Map>,
}

struct Running {
    started: Instant,
    context: Context,
}

// rhai evaluates synchronously on the calling thread, so a thread-local is exactly
// "the evaluation in progress" and the engine's callbacks need no shared state.
thread_local! {
    static RUNNING: RefCell<Option<Running>> = const { RefCell::new(None) };
}

/// Runs `f` (one engine call) as an evaluation of a rule with `context`: starts its time
/// budget and lets the callbacks see the rule's constants and breakdowns. Outside `run`
/// only the operation and size limits apply.
pub(crate) fn run<T>(context: &Context, f: impl FnOnce() -> T) -> T {
    struct Restore(Option<Running>);
    impl Drop for Restore {
        fn drop(&mut self) {
            RUNNING.set(self.0.take());
        }
    }
    let running = Running {
        started: Instant::now(),
        context: context.clone(),
    };
    let _restore = Restore(RUNNING.replace(Some(running)));
    f()
}

// ---------------------------------------------------------------------------------------
// The script API over a group.

type Res<T> = Result<T, Box<EvalAltResult>>;

/// Parses a window (`7d`, `8w`, `72h`) into days, within [`MAX_SPAN_DAYS`].
pub(crate) fn parse_window(text: &str) -> Result<i64, String> {
    // window_days multiplies the number: keep it far from overflowing.
    if text.trim().chars().take_while(char::is_ascii_digit).count() > 6 {
        return Err(format!(
            "window {text:?} is longer than {MAX_SPAN_DAYS} days"
        ));
    }
    let days = window_days(text)?;
    if days > MAX_SPAN_DAYS {
        return Err(format!(
            "window {text:?} is longer than {MAX_SPAN_DAYS} days"
        ));
    }
    Ok(days)
}

fn window(function: &str, text: &str) -> Res<i64> {
    parse_window(text).map_err(|e| format!("{function}: {e}").into())
}

fn field<'a>(function: &str, name: &'a str) -> Res<&'a str> {
    if FIELDS.contains(&name) {
        Ok(name)
    } else {
        Err(format!(
            "{function}: {name:?} is not a field (one of {})",
            FIELDS.join(", ")
        )
        .into())
    }
}

/// A sub-key dimension: a dimension, and one the running rule declared in `breakdown`.
fn breakdown<'a>(function: &str, dim: &'a str) -> Res<&'a str> {
    if !DIMENSIONS.contains(&dim) {
        return Err(format!(
            "{function}: {dim:?} is not a dimension (one of {})",
            DIMENSIONS.join(", ")
        )
        .into());
    }
    let declared = RUNNING.with_borrow(|r| {
        r.as_ref()
            .is_none_or(|r| r.context.breakdown.iter().any(|d| d == dim))
    });
    if !declared {
        return Err(format!(
            "{function}: {dim:?} is not in the rule's breakdown; add `breakdown: [\"{dim}\"]`"
        )
        .into());
    }
    Ok(dim)
}

/// Checks a count (`n` of `daily`, `weekly`, `baseline`) or an offset in days.
fn days(function: &str, what: &str, n: INT, min: INT) -> Res<i64> {
    if (min..=MAX_SPAN_DAYS).contains(&n) {
        Ok(n)
    } else {
        Err(format!("{function}: {what} must be between {min} and {MAX_SPAN_DAYS}, got {n}").into())
    }
}

/// The inclusive day range of a window of `w` days ending `offset` days before `g.day`.
fn range(g: &Group, w: i64, offset: i64) -> (Day, Day) {
    let to = g.day - offset;
    (to - w + 1, to)
}

fn sum(g: &Group, field: &str, w: i64, offset: i64) -> FLOAT {
    let (from, to) = range(g, w, offset);
    g.state.sum(field, from, to).unwrap_or_default() as FLOAT
}

fn window_sum(g: &mut Group, f: &str, w: &str, offset: INT) -> Res<FLOAT> {
    const NAME: &str = "g.sum";
    Ok(sum(
        g,
        field(NAME, f)?,
        window(NAME, w)?,
        days(NAME, "offset", offset, 0)?,
    ))
}

/// The `n` sums of consecutive windows of `w` days ending `offset` days before g.day,
/// oldest first.
fn window_sums(g: &Group, f: &str, w: i64, n: i64, offset: i64, function: &str) -> Res<Vec<FLOAT>> {
    if w * n + offset > MAX_SPAN_DAYS {
        return Err(format!(
            "{function}: reaches {} days back, more than {MAX_SPAN_DAYS}",
            w * n + offset
        )
        .into());
    }
    let sums = g.state.windows(f, g.day - offset, w, n).unwrap_or_default();
    Ok(sums.into_iter().map(|s| s as FLOAT).collect())
}

/// The `n` window sums before the current window; `function` names the caller in errors.
fn baseline(function: &str, g: &Group, f: &str, w: &str, n: INT) -> Res<Vec<FLOAT>> {
    let w = window(function, w)?;
    window_sums(
        g,
        field(function, f)?,
        w,
        days(function, "n", n, 1)?,
        w,
        function,
    )
}

fn sub_sum(g: &Group, dim: &str, value: &str, f: &str, w: i64, offset: i64) -> FLOAT {
    let (from, to) = range(g, w, offset);
    g.state.sub_sum(dim, value, f, from, to).unwrap_or_default() as FLOAT
}

fn checked_sub_sum(
    g: &mut Group,
    dim: &str,
    value: &str,
    f: &str,
    w: &str,
    offset: INT,
) -> Res<FLOAT> {
    const NAME: &str = "g.sub_sum";
    let (dim, f) = (breakdown(NAME, dim)?, field(NAME, f)?);
    Ok(sub_sum(
        g,
        dim,
        value,
        f,
        window(NAME, w)?,
        days(NAME, "offset", offset, 0)?,
    ))
}

fn share(g: &mut Group, dim: &str, value: &str, f: &str, w: &str, offset: INT) -> Res<FLOAT> {
    const NAME: &str = "g.share";
    let (dim, f) = (breakdown(NAME, dim)?, field(NAME, f)?);
    let (w, offset) = (window(NAME, w)?, days(NAME, "offset", offset, 0)?);
    let part = sub_sum(g, dim, value, f, w, offset);
    // An event's persons may exceed its nationality counts (some unknown), so a
    // nationality's share is of the known nationalities, not of all persons.
    let total = if dim == "nationality" {
        let (from, to) = range(g, w, offset);
        g.state.sub_total(dim, f, from, to).unwrap_or_default() as FLOAT
    } else {
        sum(g, f, w, offset)
    };
    Ok(if total > 0.0 { part / total } else { 0.0 })
}

fn floats(values: Vec<FLOAT>) -> Array {
    values.into_iter().map(Dynamic::from_float).collect()
}

fn ms_or_unit(ms: Option<i64>) -> Dynamic {
    ms.map_or(Dynamic::UNIT, Dynamic::from_int)
}

/// Days from the last day with events before g.day to g.day (1 = yesterday), looking
/// back over the kept horizon; `()` if there was none.
fn days_since_seen(g: &mut Group) -> Dynamic {
    let back = g.horizon_days.clamp(1, MAX_SPAN_DAYS);
    let daily = g
        .state
        .daily("events", g.day - back, g.day - 1)
        .unwrap_or_default();
    match daily.iter().rposition(|&n| n > 0) {
        Some(i) => Dynamic::from_int(back - i as i64),
        None => Dynamic::UNIT,
    }
}

/// `g.event`: the event that triggered an immediate rule, read field by field as in its
/// JSON form (`g.event.dead`, `g.event["route"]`; absent options are `()`), or `()` for a
/// day evaluation. A handle, not a map: immediate rules run on every event and read a few
/// fields, and building the whole map each time was most of their cost.
#[derive(Debug, Clone)]
pub struct Event(Arc<IncidentEvent>);

fn event(g: &mut Group) -> Dynamic {
    g.event
        .clone()
        .map_or(Dynamic::UNIT, |e| Dynamic::from(Event(e)))
}

/// The fields of `g.event`, in key order.
pub const EVENT_FIELDS: [&str; 23] = [
    "attributes",
    "border_section",
    "category",
    "crossing_point",
    "dead",
    "direction",
    "event_id",
    "facilitators",
    "handling",
    "information_credibility",
    "location",
    "missing",
    "modus_operandi",
    "nationalities",
    "notes",
    "occurred_at",
    "persons",
    "reported_at",
    "reporting_agency",
    "reporting_country",
    "route",
    "source_reliability",
    "victims",
];

/// One field of `e` as in its JSON form; `None` if `name` is none of [`EVENT_FIELDS`].
/// The test `event_map_is_the_json_form` holds the two to the same values.
fn event_field(e: &IncidentEvent, name: &str) -> Option<Dynamic> {
    fn int(n: impl Into<INT>) -> Dynamic {
        Dynamic::from_int(n.into())
    }
    fn text(s: &str) -> Dynamic {
        s.into()
    }
    fn opt_text(s: &Option<String>) -> Dynamic {
        s.as_deref().map_or(Dynamic::UNIT, text)
    }
    // JSON has no NaN or infinity: serde_json makes them `null`.
    fn float(x: f64) -> Dynamic {
        if x.is_finite() {
            Dynamic::from_float(x)
        } else {
            Dynamic::UNIT
        }
    }
    Some(match name {
        "attributes" => Dynamic::from_map(
            (e.attributes.iter())
                .map(|(k, v)| (k.as_str().into(), text(v)))
                .collect(),
        ),
        "border_section" => opt_text(&e.border_section),
        "category" => text(e.category.as_str()),
        "crossing_point" => opt_text(&e.crossing_point),
        "dead" => int(e.dead),
        "direction" => e.direction.map_or(Dynamic::UNIT, |d| text(d.as_str())),
        "event_id" => text(&e.event_id),
        "facilitators" => int(e.facilitators),
        "handling" => text(e.handling.as_str()),
        "information_credibility" => int(e.information_credibility),
        "location" => e.location.map_or(Dynamic::UNIT, |p| {
            Dynamic::from_map(Map::from([
                ("lat".into(), float(p.lat)),
                ("lon".into(), float(p.lon)),
            ]))
        }),
        "missing" => int(e.missing),
        "modus_operandi" => opt_text(&e.modus_operandi),
        "nationalities" => (e.nationalities.iter())
            .map(|n| {
                Dynamic::from_map(Map::from([
                    ("count".into(), int(n.count)),
                    ("minors".into(), int(n.minors)),
                    ("nationality".into(), text(&n.nationality)),
                ]))
            })
            .collect::<Array>()
            .into(),
        "notes" => opt_text(&e.notes),
        "occurred_at" => int(e.occurred_at),
        "persons" => int(e.persons),
        "reported_at" => int(e.reported_at),
        "reporting_agency" => text(&e.reporting_agency),
        "reporting_country" => text(&e.reporting_country),
        "route" => text(&e.route),
        "source_reliability" => text(e.source_reliability.as_str()),
        "victims" => int(e.victims),
        _ => return None,
    })
}

/// The whole event as a map (`g.event.to_map()`).
fn event_map(e: &IncidentEvent) -> Map {
    (EVENT_FIELDS.iter())
        .map(|&name| {
            (
                name.into(),
                event_field(e, name).expect("a field of the event"),
            )
        })
        .collect()
}

fn register_event(engine: &mut Engine) {
    engine.register_type_with_name::<Event>("Event");
    for name in EVENT_FIELDS {
        engine.register_get(name, move |e: &mut Event| {
            event_field(&e.0, name).expect("a field of the event")
        });
    }
    engine.register_indexer_get(|e: &mut Event, name: &str| -> Res<Dynamic> {
        event_field(&e.0, name).ok_or_else(|| {
            format!(
                "g.event has no field {name:?} (it has: {})",
                EVENT_FIELDS.join(", ")
            )
            .into()
        })
    });
    engine.register_fn("to_map", |e: &mut Event| event_map(&e.0));
    engine.register_fn("keys", |_: &mut Event| -> Array {
        EVENT_FIELDS.iter().map(|&f| f.into()).collect()
    });
    // `"dead" in g.event`
    engine.register_fn("contains", |_: &mut Event, name: &str| {
        EVENT_FIELDS.contains(&name)
    });
    engine.register_fn("to_string", |e: &mut Event| {
        format!("Event({})", e.0.event_id)
    });
    engine.register_fn("to_debug", |e: &mut Event| {
        format!("{:?}", Dynamic::from_map(event_map(&e.0)))
    });
}

fn register_group(engine: &mut Engine) {
    engine.register_type_with_name::<Group>("Group");
    engine.register_fn("to_string", |g: &mut Group| {
        let labels: Vec<String> = g.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("Group({} {})", labels.join(","), template::date(g.day))
    });

    engine.register_get("now", |g: &mut Group| end_of(g.day));
    engine.register_get("history_days", |g: &mut Group| g.history_days);
    engine.register_get("day", |g: &mut Group| template::date(g.day));
    engine.register_get("event", event);
    engine.register_fn("label", |g: &mut Group, name: &str| -> Res<String> {
        let label = g.labels.iter().find(|(label, _)| label == name);
        label.map(|(_, value)| value.clone()).ok_or_else(|| {
            let known: Vec<&str> = g.labels.iter().map(|(label, _)| label.as_str()).collect();
            format!(
                "g.label: the group has no label {name:?} (it has: {})",
                known.join(", ")
            )
            .into()
        })
    });

    engine.register_fn("sum", |g: &mut Group, f: &str, w: &str| {
        window_sum(g, f, w, 0)
    });
    engine.register_fn("sum", window_sum);
    engine.register_fn("count", |g: &mut Group, w: &str| {
        window_sum(g, "events", w, 0)
    });
    engine.register_fn("count", |g: &mut Group, w: &str, offset: INT| {
        window_sum(g, "events", w, offset)
    });
    engine.register_fn("daily", |g: &mut Group, f: &str, n: INT| -> Res<Array> {
        const NAME: &str = "g.daily";
        Ok(floats(window_sums(
            g,
            field(NAME, f)?,
            1,
            days(NAME, "n", n, 1)?,
            0,
            NAME,
        )?))
    });
    engine.register_fn("weekly", |g: &mut Group, f: &str, n: INT| -> Res<Array> {
        const NAME: &str = "g.weekly";
        Ok(floats(window_sums(
            g,
            field(NAME, f)?,
            7,
            days(NAME, "n", n, 1)?,
            0,
            NAME,
        )?))
    });
    engine.register_fn("baseline", |g: &mut Group, f: &str, w: &str, n: INT| {
        baseline("g.baseline", g, f, w, n).map(floats)
    });
    engine.register_fn(
        "baseline_mean",
        |g: &mut Group, f: &str, w: &str, n: INT| {
            baseline("g.baseline_mean", g, f, w, n).map(|b| stats::mean(&b))
        },
    );
    engine.register_fn("baseline_sd", |g: &mut Group, f: &str, w: &str, n: INT| {
        baseline("g.baseline_sd", g, f, w, n).map(|b| stats::sd(&b))
    });

    engine.register_fn(
        "sub_sum",
        |g: &mut Group, d: &str, v: &str, f: &str, w: &str| checked_sub_sum(g, d, v, f, w, 0),
    );
    engine.register_fn("sub_sum", checked_sub_sum);
    engine.register_fn(
        "share",
        |g: &mut Group, d: &str, v: &str, f: &str, w: &str| share(g, d, v, f, w, 0),
    );
    engine.register_fn("share", share);
    engine.register_fn(
        "sub_keys",
        |g: &mut Group, dim: &str, w: &str| -> Res<Array> {
            const NAME: &str = "g.sub_keys";
            let (from, to) = range(g, window(NAME, w)?, 0);
            Ok(g.state
                .sub_keys(breakdown(NAME, dim)?, from, to)
                .into_iter()
                .map(Dynamic::from)
                .collect())
        },
    );

    engine.register_fn("first_seen", |g: &mut Group| {
        ms_or_unit(g.state.seen().map(|s| s.first))
    });
    engine.register_fn("last_seen", |g: &mut Group| {
        ms_or_unit(g.state.seen().map(|s| s.last))
    });
    engine.register_fn(
        "first_seen",
        |g: &mut Group, dim: &str, value: &str| -> Res<Dynamic> {
            let dim = breakdown("g.first_seen", dim)?;
            Ok(ms_or_unit(g.state.sub_seen(dim, value).map(|s| s.first)))
        },
    );
    engine.register_fn(
        "last_seen",
        |g: &mut Group, dim: &str, value: &str| -> Res<Dynamic> {
            let dim = breakdown("g.last_seen", dim)?;
            Ok(ms_or_unit(g.state.sub_seen(dim, value).map(|s| s.last)))
        },
    );
    engine.register_fn("last_reported", |g: &mut Group| {
        ms_or_unit(g.state.last_reported())
    });
    engine.register_fn("days_since_seen", days_since_seen);
    // For annotations: `date(g.last_reported())`.
    engine.register_fn("date", |ms: INT| template::date(day_of(ms)));
}

// ---------------------------------------------------------------------------------------
// Statistics over arrays of numbers. The detectors (EARS, CUSUM, EWMA...) are registered
// from `crate::detectors`.

fn numbers(function: &str, values: &Array) -> Res<Vec<FLOAT>> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            v.as_float()
                .or_else(|_| v.as_int().map(|n| n as FLOAT))
                .map_err(|t| format!("{function}: element {i} is {t}, not a number").into())
        })
        .collect()
}

fn register_stats(engine: &mut Engine) {
    engine.register_fn("sum", |a: Array| {
        numbers("sum", &a).map(|v| v.iter().sum::<FLOAT>())
    });
    engine.register_fn("mean", |a: Array| {
        numbers("mean", &a).map(|v| stats::mean(&v))
    });
    engine.register_fn("sd", |a: Array| numbers("sd", &a).map(|v| stats::sd(&v)));
    engine.register_fn("max", |a: Array| numbers("max", &a).map(|v| stats::max(&v)));
    engine.register_fn("min", |a: Array| numbers("min", &a).map(|v| stats::min(&v)));
}

/// Pure statistics, defined for every input (an empty series gives 0) so a quiet key
/// does not make a rule throw.
pub mod stats {
    pub fn mean(values: &[f64]) -> f64 {
        if values.is_empty() {
            0.0
        } else {
            values.iter().sum::<f64>() / values.len() as f64
        }
    }

    /// Sample standard deviation (n - 1); 0 for fewer than two values.
    pub fn sd(values: &[f64]) -> f64 {
        if values.len() < 2 {
            return 0.0;
        }
        let m = mean(values);
        let squares: f64 = values.iter().map(|v| (v - m) * (v - m)).sum();
        (squares / (values.len() - 1) as f64).sqrt()
    }

    pub fn max(values: &[f64]) -> f64 {
        values.iter().copied().reduce(f64::max).unwrap_or(0.0)
    }

    pub fn min(values: &[f64]) -> f64 {
        values.iter().copied().reduce(f64::min).unwrap_or(0.0)
    }
}

#[cfg(test)]
mod tests {
    use relec_schemas::{
        Direction, GeoPoint, IncidentCategory, IncidentEvent, NationalityCount, SourceReliability,
        Tlp, sample,
    };
    use rhai::{Array, Dynamic, FLOAT, Map};

    use super::event_map;

    /// How `g.event` was built before `event_map`: through the event's JSON form.
    fn via_json(event: &IncidentEvent) -> Dynamic {
        json(serde_json::to_value(event).expect("events serialise"))
    }

    fn json(value: serde_json::Value) -> Dynamic {
        use serde_json::Value;
        match value {
            Value::Null => Dynamic::UNIT,
            Value::Bool(b) => b.into(),
            Value::Number(n) => n.as_i64().map_or_else(
                || n.as_f64().unwrap_or(FLOAT::NAN).into(),
                Dynamic::from_int,
            ),
            Value::String(s) => s.into(),
            Value::Array(a) => a.into_iter().map(json).collect::<Array>().into(),
            Value::Object(o) => {
                Dynamic::from_map(o.into_iter().map(|(k, v)| (k.into(), json(v))).collect())
            }
        }
    }

    /// A `Dynamic` spelt out with the type of every value, since `Dynamic` has no `==`
    /// and `1` and `1.0` must not pass for each other.
    fn shape(value: &Dynamic) -> String {
        if let Some(map) = value.read_lock::<Map>() {
            let fields: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{k}: {}", shape(v)))
                .collect();
            format!("#{{{}}}", fields.join(", "))
        } else if let Some(array) = value.read_lock::<Array>() {
            let items: Vec<String> = array.iter().map(shape).collect();
            format!("[{}]", items.join(", "))
        } else {
            format!("{}({value:?})", value.type_name())
        }
    }

    fn assert_same(event: &IncidentEvent) {
        let expected = shape(&via_json(event));
        assert_eq!(
            shape(&Dynamic::from_map(event_map(event))),
            expected,
            "{event:?}"
        );
    }

    #[test]
    fn event_map_is_the_json_form_of_sample_events() {
        for seed in 0..4 {
            for i in 0..250 {
                assert_same(&sample::incident(seed, i));
            }
        }
    }

    #[test]
    fn event_map_is_the_json_form_with_every_field_set() {
        let mut e = sample::incident(7, 1);
        e.border_section = Some("SECTION-1".to_owned());
        e.crossing_point = Some("CP-9".to_owned());
        e.location = Some(GeoPoint {
            lat: 37.0,
            lon: -44.125,
        });
        e.modus_operandi = Some("on foot".to_owned());
        e.notes = Some("گروه ۱۲ نفره".to_owned());
        e.nationalities = vec![
            NationalityCount {
                nationality: "AFG".to_owned(),
                count: 3,
                minors: 1,
            },
            NationalityCount {
                nationality: "SYR".to_owned(),
                count: 0,
                minors: 0,
            },
        ];
        e.attributes = [("vehicle", "truck"), ("", "empty key"), ("x", "")]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .into();
        (e.dead, e.missing, e.persons) = (-1, i32::MAX, i32::MIN);
        e.occurred_at = i64::MIN;
        for (n, category) in IncidentCategory::ALL.into_iter().enumerate() {
            e.category = category;
            e.direction = Some(Direction::ALL[n % Direction::ALL.len()]);
            e.source_reliability = SourceReliability::ALL[n % SourceReliability::ALL.len()];
            e.handling = Tlp::ALL[n % Tlp::ALL.len()];
            assert_same(&e);
        }
    }

    #[test]
    fn event_map_is_the_json_form_with_nothing_optional_set() {
        let mut e = sample::incident(7, 2);
        (e.border_section, e.crossing_point, e.location, e.direction) = (None, None, None, None);
        (e.modus_operandi, e.notes) = (None, None);
        e.nationalities.clear();
        e.attributes.clear();
        assert_same(&e);
    }

    /// JSON cannot hold a NaN or infinite coordinate, so `g.event` has always shown it as `()`.
    #[test]
    fn event_map_shows_unrepresentable_coordinates_as_unit() {
        let mut e = sample::incident(7, 3);
        e.location = Some(GeoPoint {
            lat: f64::NAN,
            lon: f64::INFINITY,
        });
        assert_same(&e);
        let location = event_map(&e)["location"].clone_cast::<rhai::Map>();
        assert!(location["lat"].is_unit() && location["lon"].is_unit());
    }
}

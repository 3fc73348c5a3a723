//! A rule: one analyst-written `.rhai` file, its validated metadata (what it watches, when
//! it is evaluated, how its alerts are labelled) and its compiled `condition(g)`.

use std::{
    collections::{BTreeMap, HashMap},
    fmt, fs,
    path::{Path, PathBuf},
    sync::{Arc, OnceLock},
};

use relec_schemas::{IncidentEvent, Severity};
use rhai::{AST, CallFnOptions, Dynamic, Engine, FLOAT, Map, ParseErrorType, Position, Scope};
use sha2::{Digest, Sha256};

use self::metadata::Metadata;
use crate::{
    error::line_col,
    group::{Group, Verdict},
    sandbox::{self, Context, Limits},
    state::Counters,
    template,
    time::Day,
};

// The errors live in `error`; rule users find them here too.
pub use crate::error::{ErrorKind, EvalError, RuleError};

/// When a rule is evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Trigger {
    /// Each key on each day it had events, at the close of the day.
    Event,
    /// Every known key every day, events or not (silence rules).
    Daily,
    /// On each event as it arrives; the script sees it as `g.event`.
    Immediate,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Event => "event",
            Self::Daily => "daily",
            Self::Immediate => "immediate",
        }
    }
}

/// A loaded, validated rule. Cheap to share behind an `Arc`; evaluation takes `&self`.
#[derive(Clone)]
pub struct Rule {
    pub id: String,
    pub title: String,
    pub severity: Severity,
    pub description: String,
    /// Dimensions whose values make the group key, in order.
    pub group_by: Vec<String>,
    /// Dimensions the state keeps sub-keys of for this rule (`g.share`, `g.sub_sum`).
    pub breakdown: Vec<String>,
    /// Dimension -> allowed values; an event must pass every entry.
    pub filter: BTreeMap<String, Vec<String>>,
    /// Counts of which an event must have at least one above zero (none: every event).
    pub when_any: Vec<String>,
    pub trigger: Trigger,
    /// Days of events an alert is about, ending with the evaluated day: its evidence
    /// window (`window` in the metadata, default 1 day).
    pub window_days: i64,
    /// Days the condition must hold before the alert fires.
    pub for_days: i64,
    /// Days the alert keeps firing after the condition stops holding.
    pub keep_firing_days: i64,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// First 12 hex digits of the file's SHA-256: which text of the rule fired.
    pub version: String,
    pub path: PathBuf,
    /// The script's functions, with the top-level constants compiled in.
    ast: AST,
    context: Context,
}

impl fmt::Debug for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rule")
            .field("id", &self.id)
            .field("severity", &self.severity)
            .field("group_by", &self.group_by)
            .field("breakdown", &self.breakdown)
            .field("filter", &self.filter)
            .field("when_any", &self.when_any)
            .field("trigger", &self.trigger)
            .field("window_days", &self.window_days)
            .field("for_days", &self.for_days)
            .field("keep_firing_days", &self.keep_firing_days)
            .field("version", &self.version)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Rule {
    /// Reads, compiles and validates a rule file.
    pub fn load(engine: &Engine, path: &Path) -> Result<Rule, RuleError> {
        let source = fs::read_to_string(path).map_err(|source| RuleError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_source(engine, path, &source)
    }

    /// Compiles and validates a rule's text; `path` is used in messages and kept.
    ///
    /// The top level runs once, here: it declares constants and ends with the metadata
    /// map. rhai functions cannot see the top level, so the file is compiled again with
    /// the constants in scope, which the optimizer inlines into the functions (the rest
    /// are resolved during evaluation, see [`sandbox::engine`]). A strict compile first
    /// rejects any variable a function uses that is neither its own nor a constant,
    /// so a typo is reported at load, with its line, not on the day the branch runs.
    pub fn from_source(engine: &Engine, path: &Path, source: &str) -> Result<Rule, RuleError> {
        let script_error = |position: Position, message: String| RuleError::Script {
            path: path.to_owned(),
            position: line_col(position),
            message,
        };
        let parse_error = |e: rhai::ParseError| {
            let mut message = e.0.to_string();
            if keyword_key(source, e.1) {
                message.push_str(" (`for` is a rhai keyword: quote the key, \"for\": \"2d\")");
            }
            script_error(e.1, message)
        };

        let ast = engine.compile(source).map_err(parse_error)?;
        let mut top = Scope::new();
        let metadata = sandbox::run(&Context::default(), || {
            engine.eval_ast_with_scope::<Dynamic>(&mut top, &ast)
        })
        .map_err(|e| {
            let e = EvalError::from_script(String::new(), *e);
            RuleError::Script {
                path: path.to_owned(),
                position: e.position,
                message: e.message,
            }
        })?;

        let mut constants = Scope::new();
        let mut constant_values = Map::new();
        let mut variables = Vec::new();
        for (name, is_constant, value) in top.iter() {
            if is_constant {
                constants.push_constant(name, value.clone());
                constant_values.insert(name.into(), value);
            } else {
                variables.push(name.to_owned());
            }
        }
        strict()
            .compile_with_scope(&constants, source)
            .map_err(|e| {
                let mut message = e.0.to_string();
                if let ParseErrorType::VariableUndefined(name) = &*e.0
                    && variables.contains(name)
                {
                    message.push_str(
                        " (functions cannot see a top-level `let`; declare it with `const`)",
                    );
                }
                script_error(e.1, message)
            })?;
        let ast = engine
            .compile_with_scope(&constants, source)
            .map_err(parse_error)?
            .clone_functions_only();

        let mut problems = Vec::new();
        if !ast
            .iter_functions()
            .any(|f| f.name == "condition" && f.params.len() == 1)
        {
            problems.push("condition: the script must define `fn condition(g)`".to_owned());
        }
        let metadata = Metadata::parse(metadata, &mut problems);
        let Some(m) = metadata.filter(|_| problems.is_empty()) else {
            return Err(RuleError::Invalid {
                path: path.to_owned(),
                problems,
            });
        };
        let context = Context {
            breakdown: m.breakdown.clone().into(),
            constants: Arc::new(constant_values),
        };
        Ok(Rule {
            id: m.id,
            title: m.title,
            severity: m.severity,
            description: m.description,
            group_by: m.group_by,
            breakdown: m.breakdown,
            filter: m.filter,
            when_any: m.when_any,
            trigger: m.trigger,
            window_days: m.window_days,
            for_days: m.for_days,
            keep_firing_days: m.keep_firing_days,
            labels: m.labels,
            annotations: m.annotations,
            version: version(source),
            path: path.to_owned(),
            ast,
            context,
        })
    }

    /// The compiled functions, constants inlined: what `relec rules check` lints.
    pub(crate) fn ast(&self) -> &AST {
        &self.ast
    }

    /// Whether `event` passes the rule's filter: for every listed dimension, the event's
    /// value is allowed (for nationality, any of the event's nationalities is); and, with
    /// `when_any`, one of those counts of the event is above zero.
    pub fn matches(&self, event: &IncidentEvent) -> bool {
        if !self.when_any.is_empty() {
            let counts = Counters::of(event);
            if !(self.when_any.iter()).any(|f| counts.field(f).is_some_and(|n| n > 0)) {
                return false;
            }
        }
        self.filter.iter().all(|(dim, allowed)| {
            if dim == "nationality" {
                event
                    .nationalities
                    .iter()
                    .any(|n| allowed.contains(&n.nationality))
            } else {
                crate::dims::value(event, dim).is_some_and(|v| allowed.iter().any(|a| a == v))
            }
        })
    }

    /// Runs `condition(g)` within the engine's limits and this evaluation's time budget.
    pub fn evaluate(&self, engine: &Engine, g: Group) -> Result<Verdict, EvalError> {
        // A fresh scope per call: nothing a call leaves behind slows the next one down.
        let result = sandbox::run(&self.context, || {
            let options = CallFnOptions::new().eval_ast(false).rewind_scope(true);
            engine.call_fn_with_options::<Dynamic>(
                options,
                &mut Scope::new(),
                &self.ast,
                "condition",
                (g,),
            )
        });
        match result {
            Ok(value) => verdict(value).map_err(|message| EvalError {
                rule: self.id.clone(),
                kind: ErrorKind::Type,
                message,
                position: None,
            }),
            Err(e) => Err(EvalError::from_script(self.id.clone(), *e)),
        }
    }

    /// The rule's labels for one alert, templates filled in: `{{name}}` is a group label,
    /// else `value`, `threshold` (empty if none), `rule` (the id), `day` (YYYY-MM-DD),
    /// else an extra key of the verdict; anything else is left as written.
    pub fn render_labels(
        &self,
        group: &BTreeMap<String, String>,
        verdict: &Verdict,
        day: Day,
    ) -> BTreeMap<String, String> {
        self.render(&self.labels, group, verdict, day)
    }

    /// The rule's annotations for one alert, templates filled in as for the labels.
    pub fn render_annotations(
        &self,
        group: &BTreeMap<String, String>,
        verdict: &Verdict,
        day: Day,
    ) -> BTreeMap<String, String> {
        self.render(&self.annotations, group, verdict, day)
    }

    fn render(
        &self,
        templates: &BTreeMap<String, String>,
        group: &BTreeMap<String, String>,
        verdict: &Verdict,
        day: Day,
    ) -> BTreeMap<String, String> {
        templates
            .iter()
            .map(|(key, text)| {
                (
                    key.clone(),
                    template::render(text, |name| self.fill(name, group, verdict, day)),
                )
            })
            .collect()
    }

    /// What `{{name}}` stands for: a group label, else `value`, `threshold` (empty if
    /// none), `rule` (the id), `day` (YYYY-MM-DD), else an extra key of the verdict.
    fn fill(
        &self,
        name: &str,
        group: &BTreeMap<String, String>,
        verdict: &Verdict,
        day: Day,
    ) -> Option<String> {
        if let Some(label) = group.get(name) {
            return Some(label.clone());
        }
        match name {
            "value" => Some(template::format_number(verdict.value)),
            "threshold" => Some(
                verdict
                    .threshold
                    .map(template::format_number)
                    .unwrap_or_default(),
            ),
            "rule" => Some(self.id.clone()),
            "day" => Some(template::date(day)),
            _ => verdict.values.get(name).cloned(),
        }
    }
}

/// Loads every `*.rhai` file of `dir`, in file-name order. A file that fails is left out
/// and reported; so is a later file reusing an id.
pub fn load_dir(engine: &Engine, dir: &Path) -> (Vec<Rule>, Vec<RuleError>) {
    let mut rules = Vec::new();
    let mut errors = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(source) => {
            errors.push(RuleError::Read {
                path: dir.to_owned(),
                source,
            });
            return (rules, errors);
        }
    };
    let mut paths = Vec::new();
    for entry in entries {
        match entry {
            Ok(entry) => paths.push(entry.path()),
            Err(source) => errors.push(RuleError::Read {
                path: dir.to_owned(),
                source,
            }),
        }
    }
    paths.retain(|p| p.extension().is_some_and(|e| e == "rhai") && p.is_file());
    paths.sort();
    let mut ids: HashMap<String, PathBuf> = HashMap::new();
    for path in paths {
        match Rule::load(engine, &path) {
            Ok(rule) => match ids.get(&rule.id) {
                Some(first) => errors.push(RuleError::DuplicateId {
                    path,
                    id: rule.id,
                    first: first.clone(),
                }),
                None => {
                    ids.insert(rule.id.clone(), path);
                    rules.push(rule);
                }
            },
            Err(e) => errors.push(e),
        }
    }
    (rules, errors)
}

/// The engine used only to check variables at load: strictness is an engine setting,
/// and the caller's engine must stay lenient for the first compile, before the
/// constants are known.
fn strict() -> &'static Engine {
    static STRICT: OnceLock<Engine> = OnceLock::new();
    STRICT.get_or_init(|| {
        let mut engine = sandbox::engine(&Limits::default());
        engine.set_strict_variables(true);
        engine
    })
}

/// Whether a parse error sits on an unquoted `for:` key, the one metadata key that is a
/// rhai keyword.
fn keyword_key(source: &str, position: Position) -> bool {
    let (Some(line), Some(column)) = (position.line(), position.position()) else {
        return false;
    };
    let text = source.lines().nth(line - 1).unwrap_or_default();
    let rest: String = text.chars().skip(column - 1).collect();
    rest.strip_prefix("for")
        .is_some_and(|r| r.trim_start().starts_with(':'))
}

fn version(source: &str) -> String {
    Sha256::digest(source.as_bytes())[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Reads what `condition` returned: a bool, or a map with `fire` and optional `value`,
/// `threshold` and further keys for the templates.
fn verdict(value: Dynamic) -> Result<Verdict, String> {
    if let Ok(fire) = value.as_bool() {
        return Ok(Verdict {
            fire,
            ..Verdict::default()
        });
    }
    if !value.is_map() {
        return Err(format!(
            "condition must return a bool or a map with `fire`, not {}",
            value.type_name()
        ));
    }
    let map = value.cast::<Map>();
    let fire = map
        .get("fire")
        .ok_or("the returned map has no `fire`")?
        .as_bool()
        .map_err(|t| format!("`fire` must be a bool, not {t}"))?;
    let mut verdict = Verdict {
        fire,
        ..Verdict::default()
    };
    for (key, v) in map {
        match key.as_str() {
            "fire" => {}
            "value" if v.is_unit() => {}
            "value" => {
                verdict.value = number(&v)
                    .ok_or_else(|| format!("`value` must be a number, not {}", v.type_name()))?
            }
            "threshold" if v.is_unit() => {}
            "threshold" => {
                let t = number(&v).ok_or_else(|| {
                    format!("`threshold` must be a number, not {}", v.type_name())
                })?;
                verdict.threshold = Some(t);
            }
            // Only a firing alert's templates use them: an immediate rule returns them
            // for every event, and rendering each as text was much of its cost.
            _ if !fire => {}
            _ => {
                verdict.values.insert(key.to_string(), text(&v));
            }
        }
    }
    Ok(verdict)
}

fn number(value: &Dynamic) -> Option<FLOAT> {
    value
        .as_float()
        .ok()
        .or_else(|| value.as_int().ok().map(|n| n as FLOAT))
}

/// A template value as text: numbers without noise, `()` as nothing.
fn text(value: &Dynamic) -> String {
    if let Some(n) = number(value) {
        template::format_number(n)
    } else if value.is_unit() {
        String::new()
    } else {
        value.to_string()
    }
}

/// The metadata map at the end of a rule file, checked key by key so that every problem
/// is reported at once, each with its key path.
mod metadata {
    use std::collections::BTreeMap;

    use relec_schemas::{IncidentCategory, Severity};
    use rhai::{Array, Dynamic, Map};

    use super::Trigger;
    use crate::{dims::DIMENSIONS, sandbox, state::FIELDS, template};

    const KEYS: [&str; 14] = [
        "id",
        "title",
        "severity",
        "description",
        "group_by",
        "breakdown",
        "filter",
        "when_any",
        "trigger",
        "window",
        "for",
        "keep_firing_for",
        "labels",
        "annotations",
    ];

    const SEVERITIES: [(&str, Severity); 5] = [
        ("info", Severity::Info),
        ("low", Severity::Low),
        ("medium", Severity::Medium),
        ("high", Severity::High),
        ("critical", Severity::Critical),
    ];

    const TRIGGERS: [Trigger; 3] = [Trigger::Event, Trigger::Daily, Trigger::Immediate];

    const CATEGORIES: [IncidentCategory; 7] = IncidentCategory::ALL;

    pub(super) struct Metadata {
        pub id: String,
        pub title: String,
        pub severity: Severity,
        pub description: String,
        pub group_by: Vec<String>,
        pub breakdown: Vec<String>,
        pub filter: BTreeMap<String, Vec<String>>,
        pub when_any: Vec<String>,
        pub trigger: Trigger,
        pub window_days: i64,
        pub for_days: i64,
        pub keep_firing_days: i64,
        pub labels: BTreeMap<String, String>,
        pub annotations: BTreeMap<String, String>,
    }

    impl Metadata {
        /// The metadata, or `None` with `problems` saying why.
        pub fn parse(value: Dynamic, problems: &mut Vec<String>) -> Option<Metadata> {
            if !value.is_map() {
                problems.push(format!(
                    "metadata: the script must end with a map `#{{ id: ..., title: ..., severity: ... }}`, not {}",
                    describe(&value)
                ));
                return None;
            }
            let map = value.cast::<Map>();
            let mut p = Problems {
                map: &map,
                problems,
            };
            for key in map.keys() {
                if !KEYS.contains(&key.as_str()) {
                    p.push(key, format!("unknown key (keys are {})", KEYS.join(", ")));
                }
            }
            let id = p.string("id", true);
            if let Some(id) = &id
                && (id.is_empty()
                    || !id
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            {
                p.push(
                    "id",
                    format!("{id:?} must be lowercase letters, digits and _"),
                );
            }
            let title = p.string("title", true);
            let severity = p.string("severity", true).and_then(|s| {
                let found = SEVERITIES
                    .iter()
                    .find(|(name, _)| *name == s)
                    .map(|(_, sev)| *sev);
                if found.is_none() {
                    let names: Vec<&str> = SEVERITIES.iter().map(|(name, _)| *name).collect();
                    p.push(
                        "severity",
                        format!("{s:?} is not a severity (one of {})", names.join(", ")),
                    );
                }
                found
            });
            let description = p.string("description", false).unwrap_or_default();
            let group_by = p.dimensions("group_by", &[]);
            let breakdown = p.dimensions("breakdown", &group_by);
            let filter = p.filter();
            let when_any = p.when_any();
            let trigger = match p.string("trigger", false) {
                None => Some(Trigger::Event),
                Some(t) => {
                    let found = TRIGGERS.into_iter().find(|x| x.as_str() == t);
                    if found.is_none() {
                        let names: Vec<&str> = TRIGGERS.iter().map(|x| x.as_str()).collect();
                        p.push(
                            "trigger",
                            format!("{t:?} is not a trigger (one of {})", names.join(", ")),
                        );
                    }
                    found
                }
            };
            let window_days = match p.string("window", false) {
                None => Some(1),
                Some(w) => sandbox::parse_window(&w)
                    .map_err(|e| p.push("window", e))
                    .ok(),
            };
            let for_days = p.duration("for");
            let keep_firing_days = p.duration("keep_firing_for");
            let labels = p.templates("labels");
            let annotations = p.templates("annotations");
            Some(Metadata {
                id: id?,
                title: title?,
                severity: severity?,
                description,
                group_by,
                breakdown,
                filter,
                when_any,
                trigger: trigger?,
                window_days: window_days?,
                for_days: for_days?,
                keep_firing_days: keep_firing_days?,
                labels,
                annotations,
            })
        }
    }

    struct Problems<'a> {
        map: &'a Map,
        problems: &'a mut Vec<String>,
    }

    impl Problems<'_> {
        fn push(&mut self, key: &str, problem: String) {
            self.problems.push(format!("{key}: {problem}"));
        }

        fn get(&mut self, key: &str, required: bool) -> Option<&Dynamic> {
            let value = self.map.get(key);
            if value.is_none() && required {
                self.push(key, "missing (required)".to_owned());
            }
            value
        }

        fn string(&mut self, key: &str, required: bool) -> Option<String> {
            let value = self.get(key, required)?.clone();
            match value.into_string() {
                Ok(s) if required && s.trim().is_empty() => {
                    self.push(key, "must not be empty".to_owned());
                    None
                }
                Ok(s) => Some(s),
                Err(t) => {
                    self.push(key, format!("must be a string, not {}", article(t)));
                    None
                }
            }
        }

        /// An array of strings; `key[i]` in messages.
        fn strings(&mut self, key: &str, value: &Dynamic) -> Vec<String> {
            let Some(array) = value.read_lock::<Array>() else {
                self.push(
                    key,
                    format!("must be an array of strings, not {}", describe(value)),
                );
                return Vec::new();
            };
            let mut out = Vec::new();
            for (i, item) in array.iter().enumerate() {
                match item.clone().into_string() {
                    Ok(s) => out.push(s),
                    Err(t) => self.push(
                        &format!("{key}[{i}]"),
                        format!("must be a string, not {}", article(t)),
                    ),
                }
            }
            out
        }

        /// An array of distinct dimensions, none of them in `taken`.
        fn dimensions(&mut self, key: &str, taken: &[String]) -> Vec<String> {
            self.distinct(key, &DIMENSIONS, "dimension", taken)
        }

        /// An array of distinct names from `known` (each "a {what}"), none in `taken`;
        /// absent is none.
        fn distinct(
            &mut self,
            key: &str,
            known: &[&str],
            what: &str,
            taken: &[String],
        ) -> Vec<String> {
            let Some(value) = self.get(key, false).cloned() else {
                return Vec::new();
            };
            let names = self.strings(key, &value);
            let mut out: Vec<String> = Vec::new();
            for (i, name) in names.into_iter().enumerate() {
                let at = format!("{key}[{i}]");
                if !known.contains(&name.as_str()) {
                    self.push(
                        &at,
                        format!("{name:?} is not a {what} (one of {})", known.join(", ")),
                    );
                } else if out.contains(&name) {
                    self.push(&at, format!("{name:?} is listed twice"));
                } else if taken.contains(&name) {
                    self.push(&at, format!("{name:?} is already in group_by"));
                } else {
                    out.push(name);
                }
            }
            out
        }

        fn filter(&mut self) -> BTreeMap<String, Vec<String>> {
            let mut out = BTreeMap::new();
            let Some(value) = self.get("filter", false).cloned() else {
                return out;
            };
            let Some(map) = value.read_lock::<Map>() else {
                self.push(
                    "filter",
                    format!(
                        "must be a map of dimension to allowed values, not {}",
                        describe(&value)
                    ),
                );
                return out;
            };
            for (dim, allowed) in map.iter() {
                let key = format!("filter.{dim}");
                if !DIMENSIONS.contains(&dim.as_str()) {
                    self.push(
                        &key,
                        format!(
                            "{dim:?} is not a dimension (one of {})",
                            DIMENSIONS.join(", ")
                        ),
                    );
                    continue;
                }
                let values = self.strings(&key, allowed);
                if values.is_empty() && allowed.is_array() {
                    self.push(&key, "must list at least one value".to_owned());
                }
                if dim == "category" {
                    for (i, v) in values.iter().enumerate() {
                        if serde_json::from_value::<IncidentCategory>(serde_json::Value::String(
                            v.clone(),
                        ))
                        .is_err()
                        {
                            let names: Vec<String> =
                                CATEGORIES.iter().map(|c| c.as_str().to_owned()).collect();
                            self.push(
                                &format!("{key}[{i}]"),
                                format!("{v:?} is not a category (one of {})", names.join(", ")),
                            );
                        }
                    }
                }
                out.insert(dim.to_string(), values);
            }
            out
        }

        /// Distinct counts of an event (any of [`FIELDS`] but "events", which every event
        /// has one of); absent is none.
        fn when_any(&mut self) -> Vec<String> {
            let counts: Vec<&str> = FIELDS.into_iter().filter(|f| *f != "events").collect();
            let out = self.distinct("when_any", &counts, "count", &[]);
            let listed =
                (self.map.get("when_any")).and_then(|v| v.read_lock::<Array>().map(|a| a.len()));
            if listed == Some(0) {
                self.push("when_any", "must list at least one count".to_owned());
            }
            out
        }

        /// Days, from a window like "2d" or "72h"; "0d" is 0. Absent is 0.
        fn duration(&mut self, key: &str) -> Option<i64> {
            let Some(text) = self.string(key, false) else {
                return self.map.get(key).is_none().then_some(0);
            };
            let zero = text
                .trim()
                .strip_suffix(['h', 'd', 'w'])
                .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c == '0'));
            if zero {
                return Some(0);
            }
            match sandbox::parse_window(&text) {
                Ok(days) => Some(days),
                Err(e) => {
                    self.push(key, e);
                    None
                }
            }
        }

        /// A map of label (or annotation) name to template.
        fn templates(&mut self, key: &str) -> BTreeMap<String, String> {
            let mut out = BTreeMap::new();
            let Some(value) = self.get(key, false).cloned() else {
                return out;
            };
            let Some(map) = value.read_lock::<Map>() else {
                self.push(
                    key,
                    format!(
                        "must be a map of name to template, not {}",
                        describe(&value)
                    ),
                );
                return out;
            };
            for (name, text) in map.iter() {
                let at = format!("{key}.{name}");
                if !name
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                    || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                {
                    self.push(
                        &at,
                        "names are letters, digits and _, not starting with a digit".to_owned(),
                    );
                    continue;
                }
                match text.clone().into_string() {
                    Ok(text) => {
                        if let Err(e) = template::placeholders(&text) {
                            self.push(&at, e);
                        }
                        out.insert(name.to_string(), text);
                    }
                    Err(t) => self.push(&at, format!("must be a string, not {}", article(t))),
                }
            }
            out
        }
    }

    /// A value for a message: strings quoted, others by type.
    fn describe(value: &Dynamic) -> String {
        match value.clone().into_string() {
            Ok(s) => format!("{s:?}"),
            Err(t) => article(t),
        }
    }

    fn article(type_name: &str) -> String {
        match type_name {
            "i64" | "f64" => "a number".to_owned(),
            "bool" => "a bool".to_owned(),
            "()" => "()".to_owned(),
            "array" | "map" => format!("an {type_name}"),
            t => format!("a {t}"),
        }
    }
}

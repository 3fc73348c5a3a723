//! What `relec rules check` adds to loading a rule file, before the rule goes live: calls to
//! functions the engine does not have (rhai resolves calls only when they run, so a typo in
//! a rarely taken branch would throw on the day it is taken), window strings that do not
//! parse or reach further back than the stage keeps state, field and dimension names the
//! group functions would reject, and the line of every problem, metadata ones included.

use std::{
    collections::{BTreeMap, BTreeSet, HashSet},
    fmt, fs,
    path::{Path, PathBuf},
    sync::OnceLock,
};

use rhai::{AST, ASTNode, Engine, Expr, OptimizationLevel, Position, Stmt};

use crate::{
    dims::DIMENSIONS,
    error::{RuleError, line_col},
    rule::{Rule, load_dir},
    sandbox::{self, Limits},
    state::FIELDS,
};

/// One problem in a rule file, at a line and column when it has one.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    pub path: PathBuf,
    /// Line and column, 1-based.
    pub position: Option<(usize, usize)>,
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some((line, column)) => write!(
                f,
                "{}:{line}:{column}: {}",
                self.path.display(),
                self.message
            ),
            None => write!(f, "{}: {}", self.path.display(), self.message),
        }
    }
}

/// One rule file as checked: the rule if it loaded, and every problem found, in file order.
#[derive(Debug)]
pub struct FileReport {
    pub path: PathBuf,
    pub rule: Option<Rule>,
    pub findings: Vec<Finding>,
}

/// Loads every `*.rhai` file of `dir` as the stage would, then lints each: one report per
/// file, in file-name order. `horizon_days` is how much history the stage keeps
/// (`rules.horizon`). An unreadable directory is the only error.
pub fn check_dir(
    engine: &Engine,
    dir: &Path,
    horizon_days: i64,
) -> Result<Vec<FileReport>, RuleError> {
    let listing = fs::read_dir(dir).map_err(|source| RuleError::Read {
        path: dir.to_owned(),
        source,
    })?;
    let mut paths: Vec<PathBuf> = listing
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "rhai") && p.is_file())
        .collect();
    paths.sort();
    let (rules, errors) = load_dir(engine, dir);
    let mut rules: BTreeMap<PathBuf, Rule> =
        rules.into_iter().map(|r| (r.path.clone(), r)).collect();
    let known = Known::of(engine);
    let mut reports = Vec::new();
    for path in paths {
        let rule = rules.remove(&path);
        let source = fs::read_to_string(&path).ok();
        let mut findings = Vec::new();
        for error in errors.iter().filter(|e| e.path() == path) {
            findings.extend(locate(error, source.as_deref()));
        }
        if let Some(source) = &source {
            findings.extend(lint(&known, &path, source, rule.as_ref(), horizon_days));
        }
        findings.sort();
        findings.dedup();
        reports.push(FileReport {
            path,
            rule,
            findings,
        });
    }
    Ok(reports)
}

/// The functions an engine has, by name, with the parameter counts they are registered
/// with (a method call `x.f(a)` is `f(x, a)`).
#[derive(Debug, Default)]
pub struct Known {
    functions: BTreeMap<String, BTreeSet<usize>>,
}

/// Functions rhai handles in the parser or evaluator itself, not as registered functions.
const KEYWORD_FUNCTIONS: [&str; 9] = [
    "print",
    "debug",
    "type_of",
    "Fn",
    "call",
    "curry",
    "is_shared",
    "is_def_var",
    "is_def_fn",
];

impl Known {
    pub fn of(engine: &Engine) -> Self {
        let mut functions: BTreeMap<String, BTreeSet<usize>> = BTreeMap::new();
        let listed = engine.collect_fn_metadata(
            None,
            |info| Some((info.metadata.name.to_string(), info.metadata.num_params)),
            true,
        );
        for (name, params) in listed {
            functions.entry(name).or_default().insert(params);
        }
        Self { functions }
    }
}

/// Problems in one rule file that loading does not catch. `rule` is the loaded rule, if it
/// loaded: its functions have the file's constants compiled in, so a window given as a
/// constant is checked too, and its `breakdown` says which dimensions sub-key calls may use.
pub fn lint(
    known: &Known,
    path: &Path,
    source: &str,
    rule: Option<&Rule>,
    horizon_days: i64,
) -> Vec<Finding> {
    // Unoptimised, so that nothing is folded away: every call as written, every position.
    let Ok(ast) = lint_engine().compile(source) else {
        return Vec::new(); // loading reports the syntax error
    };
    let mut out = Vec::new();
    let mut push = |position: Position, message: String| {
        out.push(Finding {
            path: path.to_owned(),
            position: line_col(position),
            message,
        })
    };

    let scripted: Vec<(String, usize)> = ast
        .iter_functions()
        .map(|f| (f.name.to_owned(), f.params.len()))
        .collect();
    let variables = declared_variables(&ast);
    for call in calls(&ast) {
        if call.operator
            || call.qualified
            || KEYWORD_FUNCTIONS.contains(&call.name.as_str())
            || variables.contains(&call.name)
            || !rhai::is_valid_function_name(&call.name)
        {
            continue;
        }
        let args = call.args.len();
        if let Some(problem) = check_call(known, &scripted, &call.name, args, call.method) {
            push(call.position, problem);
        }
    }

    let windows_ast = rule.map_or(&ast, |r| r.ast());
    let breakdown = rule.map(|r| r.breakdown.as_slice());
    for call in calls(windows_ast).iter().filter(|c| c.method) {
        for (position, problem) in check_group_call(call, breakdown, horizon_days) {
            push(position, problem);
        }
    }

    if let Some(rule) = rule
        && rule.window_days > horizon_days
    {
        let position = metadata_position(&ast, "window");
        push(
            position,
            format!(
                "window: {} days, longer than the {horizon_days} days of state the stage keeps \
                 (rules.horizon)",
                rule.window_days
            ),
        );
    }
    out
}

/// The findings of a load error, each with its line: metadata problems at their key.
pub fn locate(error: &RuleError, source: Option<&str>) -> Vec<Finding> {
    let ast = source.and_then(|s| lint_engine().compile(s).ok());
    let at = |key: &str| {
        ast.as_ref()
            .map_or(Position::NONE, |ast| metadata_position(ast, key))
    };
    let finding = |position: Option<(usize, usize)>, message: String| Finding {
        path: error.path().to_owned(),
        position,
        message,
    };
    match error {
        RuleError::Read { source, .. } => {
            vec![finding(None, format!("cannot read the rule: {source}"))]
        }
        RuleError::Script {
            position, message, ..
        } => vec![finding(*position, message.clone())],
        RuleError::Invalid { problems, .. } => problems
            .iter()
            .map(|p| {
                let key = p.split_once(": ").map_or("", |(key, _)| key);
                finding(line_col(at(key)), p.clone())
            })
            .collect(),
        RuleError::DuplicateId { id, first, .. } => vec![finding(
            line_col(at("id")),
            format!("id: {id:?} is already used by {}", first.display()),
        )],
    }
}

/// The engine files are compiled with for linting: the same functions, no optimizer.
fn lint_engine() -> &'static Engine {
    static LINT: OnceLock<Engine> = OnceLock::new();
    LINT.get_or_init(|| {
        let mut engine = sandbox::engine(&Limits::default());
        engine.set_optimization_level(OptimizationLevel::None);
        engine
    })
}

/// A function call as written, with what the checks need of its arguments.
#[derive(Debug)]
struct Call {
    name: String,
    position: Position,
    /// `x.f(a)`, whose `x` is not among `args`.
    method: bool,
    /// An operator (`a + b`, `x in list`): not a call an analyst wrote by name.
    operator: bool,
    /// `module::f(..)`.
    qualified: bool,
    args: Vec<Arg>,
}

#[derive(Debug)]
enum Arg {
    Text(String, Position),
    Int(i64, Position),
    Other(Position),
}

impl Arg {
    fn position(&self) -> Position {
        match self {
            Self::Text(_, p) | Self::Int(_, p) | Self::Other(p) => *p,
        }
    }
}

/// Every function call in `ast`, function and closure bodies included. The walk lends
/// each node only for the callback, so the calls are copied out.
fn calls(ast: &AST) -> Vec<Call> {
    let mut found = Vec::new();
    ast.walk(&mut |path: &[ASTNode]| {
        let (call, position, method) = match path.last() {
            Some(ASTNode::Expr(Expr::FnCall(call, position)))
            | Some(ASTNode::Stmt(Stmt::FnCall(call, position))) => (call, *position, false),
            Some(ASTNode::Expr(Expr::MethodCall(call, position))) => (call, *position, true),
            _ => return true,
        };
        found.push(Call {
            name: call.name.to_string(),
            position,
            method,
            operator: call.is_operator_call(),
            qualified: call.is_qualified(),
            args: call.args.iter().map(arg).collect(),
        });
        true
    });
    found
}

fn arg(expr: &Expr) -> Arg {
    match expr {
        Expr::StringConstant(s, position) => Arg::Text(s.to_string(), *position),
        Expr::IntegerConstant(n, position) => Arg::Int(*n, *position),
        other => Arg::Other(other.start_position()),
    }
}

/// Names declared as variables or parameters anywhere in the file: `f(x)` may call a
/// function pointer held in a variable `f`.
fn declared_variables(ast: &AST) -> HashSet<String> {
    let mut names: HashSet<String> = ast
        .iter_functions()
        .flat_map(|f| f.params.into_iter().map(str::to_owned))
        .collect();
    ast.walk(&mut |path: &[ASTNode]| {
        match path.last() {
            Some(ASTNode::Stmt(Stmt::Var(x, ..))) => {
                names.insert(x.0.name.to_string());
            }
            Some(ASTNode::Stmt(Stmt::For(x, ..))) => {
                names.insert(x.0.name.to_string());
                if let Some(counter) = &x.1 {
                    names.insert(counter.name.to_string());
                }
            }
            _ => {}
        }
        true
    });
    names
}

/// Whether a call of `name` with `args` arguments (after the dot, for a method call)
/// reaches a function; what is wrong if not.
fn check_call(
    known: &Known,
    scripted: &[(String, usize)],
    name: &str,
    args: usize,
    method: bool,
) -> Option<String> {
    // Native functions take the value before the dot as their first parameter; a script
    // function called as a method sees it as `this`, or as its first parameter.
    let mut arities: BTreeSet<usize> = known
        .functions
        .get(name)
        .into_iter()
        .flatten()
        .filter_map(|&n| if method { n.checked_sub(1) } else { Some(n) })
        .collect();
    for (_, params) in scripted.iter().filter(|(n, _)| n == name) {
        arities.insert(*params);
        if method && let Some(rest) = params.checked_sub(1) {
            arities.insert(rest);
        }
    }
    let shown = if method {
        format!(".{name}(..)")
    } else {
        format!("{name}(..)")
    };
    if arities.is_empty() {
        let hint = suggestion(known, scripted, name)
            .map(|s| format!("; did you mean `{s}`?"))
            .unwrap_or_default();
        return Some(format!(
            "unknown function `{shown}`: neither a rule function, a rhai function nor a \
             function of this file{hint}"
        ));
    }
    if arities.contains(&args) {
        return None;
    }
    let counts: Vec<String> = arities.iter().map(ToString::to_string).collect();
    let counts = match counts.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    };
    Some(format!(
        "`{shown}` is called with {args} arguments, but takes {counts}"
    ))
}

/// The closest known name within two edits, for a misspelt call.
fn suggestion(known: &Known, scripted: &[(String, usize)], name: &str) -> Option<String> {
    known
        .functions
        .keys()
        .map(String::as_str)
        .chain(scripted.iter().map(|(n, _)| n.as_str()))
        .filter(|candidate| rhai::is_valid_function_name(candidate))
        .map(|candidate| (edit_distance(name, candidate), candidate))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, candidate)| candidate.to_owned())
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (row[j + 1] + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// Where the arguments of a group function are, by its name and argument count (after
/// the dot): which is a field, a dimension, a window, an offset or a count `n`, and how the
/// span it reads back follows from them.
#[derive(Debug, Clone, Copy)]
struct Signature {
    field: Option<usize>,
    dimension: Option<usize>,
    window: Option<usize>,
    /// Days the window is moved back.
    offset: Option<usize>,
    /// `n` windows (baseline) or days (daily) or weeks (weekly) before today.
    count: Option<usize>,
    span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Span {
    /// The window, moved back by the offset.
    Window,
    /// The `n` windows before the current one, and the current one.
    Baseline,
    /// `n` days.
    Days,
    /// `n` weeks.
    Weeks,
}

const fn signature(
    field: Option<usize>,
    dimension: Option<usize>,
    window: Option<usize>,
    offset: Option<usize>,
    count: Option<usize>,
    span: Span,
) -> Signature {
    Signature {
        field,
        dimension,
        window,
        offset,
        count,
        span,
    }
}

fn group_signature(name: &str, args: usize) -> Option<Signature> {
    use Span::*;
    Some(match (name, args) {
        ("sum", 2 | 3) => signature(Some(0), None, Some(1), Some(2), None, Window),
        ("count", 1 | 2) => signature(None, None, Some(0), Some(1), None, Window),
        ("daily", 2) => signature(Some(0), None, None, None, Some(1), Days),
        ("weekly", 2) => signature(Some(0), None, None, None, Some(1), Weeks),
        ("baseline" | "baseline_mean" | "baseline_sd", 3) => {
            signature(Some(0), None, Some(1), None, Some(2), Baseline)
        }
        ("sub_sum" | "share", 4 | 5) => signature(Some(2), Some(0), Some(3), Some(4), None, Window),
        ("sub_keys", 2) => signature(None, Some(0), Some(1), None, None, Window),
        ("first_seen" | "last_seen", 2) => signature(None, Some(0), None, None, None, Window),
        _ => return None,
    })
}

/// Problems with the literal arguments of a call of a group function (`g.sum("persons",
/// "7d")`): an unknown field or dimension, a window that does not parse, a span longer
/// than the state the stage keeps.
fn check_group_call(
    call: &Call,
    breakdown: Option<&[String]>,
    horizon_days: i64,
) -> Vec<(Position, String)> {
    let mut out = Vec::new();
    let Some(sig) = group_signature(&call.name, call.args.len()) else {
        return out;
    };
    let name = format!("g.{}", call.name);
    let text = |i: Option<usize>| match i.and_then(|i| call.args.get(i)) {
        Some(Arg::Text(s, position)) => Some((s.as_str(), *position)),
        _ => None,
    };
    let int = |i: Option<usize>| match i.and_then(|i| call.args.get(i)) {
        Some(Arg::Int(n, _)) => Some(*n),
        _ => None,
    };
    // Only string constants are checked: anything else is known when the rule runs.
    if let Some((field, position)) = text(sig.field)
        && !FIELDS.contains(&field)
    {
        out.push((
            position,
            format!(
                "{name}: {field:?} is not a field (one of {})",
                FIELDS.join(", ")
            ),
        ));
    }
    if let Some((dim, position)) = text(sig.dimension) {
        if !DIMENSIONS.contains(&dim) {
            out.push((
                position,
                format!(
                    "{name}: {dim:?} is not a dimension (one of {})",
                    DIMENSIONS.join(", ")
                ),
            ));
        } else if let Some(breakdown) = breakdown
            && !breakdown.iter().any(|b| b == dim)
        {
            out.push((
                position,
                format!(
                    "{name}: {dim:?} is not in the rule's breakdown; add `breakdown: [\"{dim}\"]`"
                ),
            ));
        }
    }
    let window = match text(sig.window) {
        Some((w, position)) => match sandbox::parse_window(w) {
            Ok(days) => Some(days),
            Err(e) => {
                out.push((position, format!("{name}: {e}")));
                return out;
            }
        },
        None if sig.window.is_some() => return out,
        None => None,
    };
    let count = int(sig.count);
    let offset = int(sig.offset).unwrap_or(0);
    let span = match sig.span {
        Span::Window => window.map(|w| w + offset),
        Span::Baseline => window.zip(count).map(|(w, n)| w.saturating_mul(n + 1)),
        Span::Days => count,
        Span::Weeks => count.map(|n| n.saturating_mul(7)),
    };
    if let Some(span) = span
        && span > horizon_days
    {
        let at = call
            .args
            .get(sig.window.or(sig.count).unwrap_or(0))
            .map_or(Position::NONE, Arg::position);
        out.push((
            at,
            format!(
                "{name} reads {span} days back, but the stage keeps {horizon_days} days of \
                 state (rules.horizon): the days before would read as nothing"
            ),
        ));
    }
    out
}

/// Where a metadata key (`labels.route`, `group_by[1]`) is written in the map that ends
/// the file: the deepest part of the path found, else the map, else nowhere.
fn metadata_position(ast: &AST, key: &str) -> Position {
    let Some(last) = ast.statements().last() else {
        return Position::NONE;
    };
    let Stmt::Expr(expr) = last else {
        return last.position();
    };
    if key == "metadata" {
        return expr.start_position();
    }
    let mut at = expr.start_position();
    let mut current: &Expr = expr;
    for segment in key_path(key) {
        let next = match (current, segment) {
            (Expr::Map(map, _), Segment::Key(name)) => map
                .0
                .iter()
                .find(|(ident, _)| ident.name == name)
                .map(|(ident, value)| (ident.pos, value)),
            (Expr::Array(items, _), Segment::Index(i)) => {
                items.get(i).map(|item| (item.start_position(), item))
            }
            _ => None,
        };
        let Some((position, value)) = next else { break };
        at = position;
        current = value;
    }
    at
}

enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

/// `filter.category[0]` as `filter`, `category`, `[0]`.
fn key_path(key: &str) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    for part in key.split('.') {
        let (name, indices) = part.split_once('[').unwrap_or((part, ""));
        if !name.is_empty() {
            out.push(Segment::Key(name));
        }
        for index in indices.split('[') {
            if let Ok(i) = index.trim_end_matches(']').parse() {
                out.push(Segment::Index(i));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const HORIZON: i64 = 400;

    fn lint_source(source: &str) -> Vec<String> {
        let engine = sandbox::engine(&Limits::default());
        let path = Path::new("x.rhai");
        let rule = Rule::from_source(&engine, path, source).ok();
        lint(&Known::of(&engine), path, source, rule.as_ref(), HORIZON)
            .into_iter()
            .map(|f| f.to_string())
            .collect()
    }

    const META: &str = "#{ id: \"x\", title: \"X\", severity: \"low\" }";

    #[test]
    fn a_clean_rule_has_no_findings() {
        let source = format!(
            "const W = \"7d\";\nfn helper(a) {{ a * 2 }}\nfn condition(g) {{\n  let f = |x| x > 1;\n  \
             g.daily(\"events\", 28).filter(f).len() > 0 && helper(g.sum(\"persons\", W, 7)) > \
             max(1, 2) && \"a\" in [\"a\"] && g.label(\"route\").len() > 0 && type_of(g) == \"Group\"\n}}\n{META}"
        );
        assert_eq!(lint_source(&source), Vec::<String>::new());
    }

    #[test]
    fn unknown_functions_and_wrong_argument_counts_have_their_line() {
        let source = format!(
            "fn condition(g) {{\n  if false {{ return baseline_maen(g); }}\n  \
             g.sum(\"persons\", \"7d\", 1, 2) > 0 && frobnicate() && max(1, 2, 3) > 0\n}}\n{META}"
        );
        let found = lint_source(&source);
        assert_eq!(found.len(), 4, "{found:#?}");
        assert!(
            found[0].starts_with("x.rhai:2:21: unknown function `baseline_maen(..)`")
                && found[0].ends_with("did you mean `baseline_mean`?"),
            "{found:#?}"
        );
        assert!(
            found[1].starts_with(
                "x.rhai:3:5: `.sum(..)` is called with 4 arguments, but takes 0, 2 or 3"
            ),
            "{found:#?}"
        );
        assert!(
            found[2].starts_with("x.rhai:3:39: unknown function `frobnicate(..)`"),
            "{found:#?}"
        );
        assert!(found[3].contains("`max(..)` is called with 3 arguments"));
    }

    #[test]
    fn windows_fields_and_dimensions_are_checked_even_through_constants() {
        let source = "const LONG = \"60w\";\nfn condition(g) {\n  g.sum(\"persons\", \"7x\") + \
                      g.count(LONG) + g.baseline(\"events\", \"7d\", 60).len() + g.sum(\"people\", \"1d\") + \
                      g.share(\"route\", \"A\", \"persons\", \"7d\") > 0\n}\n\
                      #{ id: \"x\", title: \"X\", severity: \"low\", window: \"500d\" }";
        let found = lint_source(source);
        let expected = [
            "x.rhai:3:20: g.sum: \"7x\": the unit must be h, d or w",
            "x.rhai:3:36: g.count reads 420 days back",
            "x.rhai:3:65: g.baseline reads 427 days back",
            "x.rhai:3:89: g.sum: \"people\" is not a field",
            "x.rhai:3:115: g.share: \"route\" is not in the rule's breakdown",
            "x.rhai:5:42: window: 500 days, longer than the 400 days",
        ];
        assert_eq!(found.len(), expected.len(), "{found:#?}");
        for (f, e) in found.iter().zip(expected) {
            assert!(f.starts_with(e), "{f}\ndoes not start with\n{e}");
        }
    }

    #[test]
    fn metadata_problems_get_the_line_of_their_key() {
        let source = "fn condition(g) { true }\n#{\n  id: \"Bad Id\",\n  title: \"t\",\n  \
                      severity: \"urgent\",\n  group_by: [\"route\", \"agency\"],\n}\n";
        let engine = sandbox::engine(&Limits::default());
        let error = Rule::from_source(&engine, Path::new("x.rhai"), source).unwrap_err();
        let found: Vec<String> = locate(&error, Some(source))
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(found.len(), 3, "{found:#?}");
        assert!(found[0].starts_with("x.rhai:3:3: id: "), "{found:#?}");
        assert!(found[1].starts_with("x.rhai:5:3: severity: "), "{found:#?}");
        assert!(
            found[2].starts_with("x.rhai:6:23: group_by[1]: "),
            "{found:#?}"
        );

        // A missing key is at the map.
        let source = "fn condition(g) { true }\n#{ id: \"x\" }\n";
        let error = Rule::from_source(&engine, Path::new("x.rhai"), source).unwrap_err();
        let found = locate(&error, Some(source));
        assert!(
            found
                .iter()
                .all(|f| f.position == Some((2, 1)) && f.message.contains("missing")),
            "{found:#?}"
        );
    }

    #[test]
    fn key_paths() {
        let parts: Vec<String> = key_path("filter.category[0]")
            .into_iter()
            .map(|s| match s {
                Segment::Key(k) => k.to_owned(),
                Segment::Index(i) => format!("[{i}]"),
            })
            .collect();
        assert_eq!(parts, ["filter", "category", "[0]"]);
        assert_eq!(edit_distance("baseline_maen", "baseline_mean"), 2);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}

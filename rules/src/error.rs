//! The rules stage's errors: rule files that cannot be loaded, and rule evaluations that
//! fail. A bad rule never stops the stage; these say what to fix, naming file and line.

use std::{fmt, path::PathBuf};

use rhai::EvalAltResult;

/// The crate's error type.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Rule(#[from] RuleError),
    #[error(transparent)]
    Eval(#[from] EvalError),
    /// A changelog entry that cannot be read back (written by another version, or damaged).
    #[error("changelog entry: {0}")]
    ChangelogKey(#[from] serde_json::Error),
    #[error("changelog value: {0}")]
    ChangelogValue(#[from] postcard::Error),
    #[error(transparent)]
    Kafka(#[from] relec_plumbing::Error),
    #[error("repartition partition {0} is not assigned to this instance")]
    NotAssigned(i32),
    /// A changelog record this version cannot read (written by an incompatible version,
    /// or damaged): the stage does not start on state it cannot trust.
    #[error("{topic}[{partition}]@{offset}: changelog entry {key} cannot be read: {reason}")]
    Changelog {
        topic: String,
        partition: i32,
        offset: i64,
        key: String,
        reason: String,
    },
    #[error("{topic}: partitions {partitions:?} could not be read to their end in time")]
    Restore { topic: String, partitions: Vec<i32> },
    #[error(transparent)]
    Schema(#[from] relec_schemas::Error),
    #[error("the rules worker thread failed: {0}")]
    Worker(String),
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// Why a rule file could not be loaded. Every variant names the file, so a line of
/// `relec rules check` output can be read on its own.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    #[error("{}: cannot read the rule: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A syntax error, an undefined variable, or a top level that failed when evaluated
    /// at load.
    #[error("{}{}: {message}", path.display(), Position(*position))]
    Script {
        path: PathBuf,
        /// Line and column, 1-based.
        position: Option<(usize, usize)>,
        message: String,
    },
    /// Every problem found in the metadata map and the script's functions, each starting
    /// with its key (`group_by[1]: ...`); displayed one per line.
    #[error("{}", problems.iter().map(|p| format!("{}: {p}", path.display())).collect::<Vec<_>>().join("\n"))]
    Invalid {
        path: PathBuf,
        problems: Vec<String>,
    },
    #[error("{}: id: {id:?} is already used by {}", path.display(), first.display())]
    DuplicateId {
        path: PathBuf,
        id: String,
        first: PathBuf,
    },
}

impl RuleError {
    /// The rule file the error is about.
    pub fn path(&self) -> &std::path::Path {
        match self {
            Self::Read { path, .. }
            | Self::Script { path, .. }
            | Self::Invalid { path, .. }
            | Self::DuplicateId { path, .. } => path,
        }
    }
}

/// A rule evaluation that failed: the script threw, ran too long, grew too big or
/// returned something that is not a verdict. The rule is skipped for that key and day.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rule {rule}: {kind}{}: {message}", At(*position))]
pub struct EvalError {
    /// The rule's id.
    pub rule: String,
    pub kind: ErrorKind,
    pub message: String,
    /// Line and column in the rule file, 1-based, when the script had one.
    pub position: Option<(usize, usize)>,
}

impl EvalError {
    /// Classifies a script error of rule `rule`, keeping the position of its innermost
    /// cause and the message without rhai's decorations.
    pub(crate) fn from_script(rule: String, error: EvalAltResult) -> Self {
        let mut error = error;
        let mut position = error.position();
        // Calls between script functions wrap the error; the cause is what to fix.
        while let EvalAltResult::ErrorInFunctionCall(.., inner, _) = error {
            error = *inner;
            if !error.position().is_none() {
                position = error.position();
            }
        }
        let kind = match &error {
            EvalAltResult::ErrorRuntime(..) => ErrorKind::Throw,
            EvalAltResult::ErrorTooManyOperations(..) => ErrorKind::TooManyOperations,
            EvalAltResult::ErrorTerminated(..) => ErrorKind::Timeout,
            EvalAltResult::ErrorDataTooLarge(..) => ErrorKind::TooBig,
            EvalAltResult::ErrorStackOverflow(..) => ErrorKind::TooDeep,
            EvalAltResult::ErrorMismatchDataType(..)
            | EvalAltResult::ErrorMismatchOutputType(..) => ErrorKind::Type,
            _ => ErrorKind::Runtime,
        };
        let message = match &error {
            // The thrown value itself, without rhai's "Runtime error: " prefix.
            EvalAltResult::ErrorRuntime(value, _) | EvalAltResult::ErrorTerminated(value, _) => {
                value.to_string()
            }
            EvalAltResult::ErrorTooManyOperations(_) => {
                "the operation limit was reached (an endless loop?)".to_owned()
            }
            _ => {
                let _ = error.take_position();
                error.to_string()
            }
        };
        Self {
            rule,
            kind,
            message,
            position: line_col(position),
        }
    }
}

/// A rhai position as 1-based line and column, if it has one.
pub(crate) fn line_col(position: rhai::Position) -> Option<(usize, usize)> {
    position
        .line()
        .map(|line| (line, position.position().unwrap_or(1)))
}

/// Why an evaluation failed, as a small closed set: it labels the rule-error metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The script threw (`throw`), or a script function rejected its arguments (an
    /// unknown field name, a bad window).
    Throw,
    /// The operation limit was reached.
    TooManyOperations,
    /// The time budget ran out.
    Timeout,
    /// A string, array or map outgrew its limit.
    TooBig,
    /// Functions called each other deeper than the call-level limit.
    TooDeep,
    /// The condition returned something that is not a verdict, or a value had the wrong
    /// type.
    Type,
    /// Any other script error: an unknown function or variable, arithmetic, indexing.
    Runtime,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 7] = [
        Self::Throw,
        Self::TooManyOperations,
        Self::Timeout,
        Self::TooBig,
        Self::TooDeep,
        Self::Type,
        Self::Runtime,
    ];

    /// The kind as a metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Throw => "throw",
            Self::TooManyOperations => "too_many_operations",
            Self::Timeout => "timeout",
            Self::TooBig => "too_big",
            Self::TooDeep => "too_deep",
            Self::Type => "type",
            Self::Runtime => "runtime",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Formats an optional position as `:line:column`, or nothing.
struct Position(Option<(usize, usize)>);

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some((line, column)) => write!(f, ":{line}:{column}"),
            None => Ok(()),
        }
    }
}

/// Formats an optional position as ` at line:column`, or nothing.
struct At(Option<(usize, usize)>);

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some((line, column)) => write!(f, " at {line}:{column}"),
            None => Ok(()),
        }
    }
}

/// A client error from the stage's own Kafka calls, as the plumbing reports them.
impl From<rdkafka::error::KafkaError> for Error {
    fn from(e: rdkafka::error::KafkaError) -> Self {
        Self::Kafka(relec_plumbing::Error::Kafka(e))
    }
}

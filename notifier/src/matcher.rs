//! Label matchers (`severity=~"high|critical"`) written as Alertmanager writes them: the one
//! way routes, silences and inhibition rules in the notifier say which alerts they concern.

use std::{cmp::Ordering, collections::BTreeMap, fmt, str::FromStr};

use regex::Regex;
use relec_schemas::{Alert, Severity};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Error;

/// An alert's labels as matchers see them.
pub type Labels = BTreeMap<String, String>;

/// The labels routing matches on: the alert's own labels, plus `severity` (lower case, as
/// Alertmanager users write it) and `rule` taken from the alert's fields. The fields win
/// over a label of the same name, so a rule cannot pass for another rule or severity.
pub fn labels_of(alert: &Alert) -> Labels {
    let mut labels = alert.labels.clone();
    labels.insert(
        "severity".to_owned(),
        severity_label(alert.severity).to_owned(),
    );
    labels.insert("rule".to_owned(), alert.rule_id.clone());
    labels
}

/// The value of the `severity` label for a severity.
pub fn severity_label(severity: Severity) -> &'static str {
    match severity {
        Severity::Info => "info",
        Severity::Low => "low",
        Severity::Medium => "medium",
        Severity::High => "high",
        Severity::Critical => "critical",
    }
}

/// Whether every matcher matches (an empty list matches everything).
pub fn matches_all(matchers: &[Matcher], labels: &Labels) -> bool {
    matchers.iter().all(|m| m.matches(labels))
}

/// A Prometheus label name: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `=`, `!=`, `=~` or `!~`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MatchOp {
    Equal,
    NotEqual,
    Regex,
    NotRegex,
}

impl MatchOp {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Equal => "=",
            Self::NotEqual => "!=",
            Self::Regex => "=~",
            Self::NotRegex => "!~",
        }
    }
}

/// One matcher on one label. A missing label has the value `""`, as in Alertmanager, so
/// `team!="x"` matches alerts without a `team` label and `team=""` matches only those.
#[derive(Clone)]
pub struct Matcher {
    name: String,
    op: MatchOp,
    value: String,
    /// Compiled for `=~` and `!~`, anchored at both ends as Alertmanager anchors it.
    regex: Option<Regex>,
}

impl Matcher {
    pub fn new(
        name: impl Into<String>,
        op: MatchOp,
        value: impl Into<String>,
    ) -> Result<Self, Error> {
        let (name, value) = (name.into(), value.into());
        let invalid = |reason: String| Error::Matcher {
            matcher: format!("{name}{}{}", op.as_str(), quote(&value)),
            reason,
        };
        if !is_label_name(&name) {
            return Err(invalid(format!(
                "{name:?} is not a label name ([a-zA-Z_][a-zA-Z0-9_]*)"
            )));
        }
        let regex = match op {
            MatchOp::Equal | MatchOp::NotEqual => None,
            MatchOp::Regex | MatchOp::NotRegex => Some(
                Regex::new(&format!("^(?:{value})$")).map_err(|e| invalid(regex_problem(&e)))?,
            ),
        };
        Ok(Self {
            name,
            op,
            value,
            regex,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn op(&self) -> MatchOp {
        self.op
    }

    pub fn value(&self) -> &str {
        &self.value
    }

    /// Whether the matcher accepts this value of its label.
    pub fn matches_value(&self, value: &str) -> bool {
        match (&self.op, &self.regex) {
            (MatchOp::Equal, _) => value == self.value,
            (MatchOp::NotEqual, _) => value != self.value,
            (MatchOp::Regex, Some(re)) => re.is_match(value),
            (MatchOp::NotRegex, Some(re)) => !re.is_match(value),
            (MatchOp::Regex | MatchOp::NotRegex, None) => unreachable!("compiled in new"),
        }
    }

    pub fn matches(&self, labels: &Labels) -> bool {
        self.matches_value(labels.get(&self.name).map_or("", String::as_str))
    }
}

/// The last line of the regex crate's message is the reason; the lines above repeat the
/// anchored pattern, which would only confuse whoever wrote the unanchored one.
fn regex_problem(e: &regex::Error) -> String {
    let text = e.to_string();
    let reason = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .trim_start_matches("error: ");
    format!("not a valid regular expression: {reason}")
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        (&self.name, self.op, &self.value) == (&other.name, other.op, &other.value)
    }
}

impl Eq for Matcher {}

impl PartialOrd for Matcher {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// By name, then operator, then value: the order Alertmanager sorts a route's matchers in
/// before it names the route.
impl Ord for Matcher {
    fn cmp(&self, other: &Self) -> Ordering {
        (&self.name, self.op, &self.value).cmp(&(&other.name, other.op, &other.value))
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{}", self.name, self.op.as_str(), quote(&self.value))
    }
}

impl fmt::Debug for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Matcher({self})")
    }
}

/// Parses one matcher: `name`, an operator, and a value, quoted (`"..."` with `\"`, `\\`,
/// `\n`, `\r`, `\t` escapes) or bare (`severity=critical`).
impl FromStr for Matcher {
    type Err = Error;

    fn from_str(input: &str) -> Result<Self, Error> {
        let invalid = |reason: &str| Error::Matcher {
            matcher: input.to_owned(),
            reason: reason.to_owned(),
        };
        let text = input.trim();
        let name_end = text
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(text.len());
        let name = &text[..name_end];
        if !is_label_name(name) {
            return Err(invalid(
                "expected a label name first, as in severity=~\"high|critical\"",
            ));
        }
        let rest = text[name_end..].trim_start();
        let Some((op, rest)) = [
            MatchOp::Regex,
            MatchOp::NotRegex,
            MatchOp::NotEqual,
            MatchOp::Equal,
        ]
        .into_iter()
        .find_map(|op| rest.strip_prefix(op.as_str()).map(|r| (op, r.trim_start()))) else {
            return Err(invalid("expected =, !=, =~ or !~ after the label name"));
        };
        let value = match rest.strip_prefix('"') {
            Some(quoted) => unquote(quoted).map_err(invalid)?,
            None if rest.contains('"') => {
                return Err(invalid("a value with quotes must be quoted as a whole"));
            }
            None if rest.contains(',') => {
                return Err(invalid(
                    "one matcher per string: give each matcher as its own list item",
                ));
            }
            None => rest.trim_end().to_owned(),
        };
        Matcher::new(name, op, value)
    }
}

/// The inside of a quoted value, after its opening quote; only whitespace may follow the
/// closing quote.
fn unquote(quoted: &str) -> Result<String, &'static str> {
    let mut value = String::new();
    let mut chars = quoted.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                let after = chars.as_str().trim();
                return match after.chars().next() {
                    None => Ok(value),
                    Some(',') => {
                        Err("one matcher per string: give each matcher as its own list item")
                    }
                    Some(_) => Err("unexpected text after the closing quote"),
                };
            }
            '\\' => match chars.next() {
                Some('"') => value.push('"'),
                Some('\\') => value.push('\\'),
                Some('n') => value.push('\n'),
                Some('r') => value.push('\r'),
                Some('t') => value.push('\t'),
                _ => return Err("unknown escape: use \\\", \\\\, \\n, \\r or \\t"),
            },
            c => value.push(c),
        }
    }
    Err("the value's closing quote is missing")
}

fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Written as its string form in files and in persisted silences.
impl Serialize for Matcher {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Matcher {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn m(text: &str) -> Matcher {
        text.parse().expect("valid matcher")
    }

    #[test]
    fn the_four_operators() {
        let l = labels(&[("severity", "high"), ("country", "TUR")]);
        assert!(m(r#"severity="high""#).matches(&l));
        assert!(!m(r#"severity!="high""#).matches(&l));
        assert!(m(r#"severity=~"high|critical""#).matches(&l));
        assert!(!m(r#"severity!~"high|critical""#).matches(&l));
        assert!(m(r#"country!~"IRN|IRQ""#).matches(&l));
    }

    #[test]
    fn regexes_are_anchored_at_both_ends() {
        let l = labels(&[("route", "IRN-TUR")]);
        assert!(!m(r#"route=~"IRN""#).matches(&l));
        assert!(!m(r#"route=~"TUR""#).matches(&l));
        assert!(m(r#"route=~"IRN.*""#).matches(&l));
        // An alternation is anchored as a whole, not just its first and last branch.
        assert!(!m(r#"route=~"IRN|TUR""#).matches(&l));
    }

    #[test]
    fn a_missing_label_is_the_empty_string() {
        let l = labels(&[("country", "TUR")]);
        assert!(m(r#"team="""#).matches(&l));
        assert!(m(r#"team!="x""#).matches(&l));
        assert!(m(r#"team=~".*""#).matches(&l));
        assert!(!m(r#"team=~".+""#).matches(&l));
    }

    #[test]
    fn bare_and_spaced_forms_parse() {
        assert_eq!(m("severity=critical"), m(r#"severity="critical""#));
        assert_eq!(m(r#" severity =~ "a|b" "#), m(r#"severity=~"a|b""#));
        assert_eq!(m(r#"x="a \"b\" \\ c""#).value(), r#"a "b" \ c"#);
    }

    #[test]
    fn bad_matchers_say_why() {
        let reason = |text: &str| match text.parse::<Matcher>() {
            Err(Error::Matcher { reason, .. }) => reason,
            other => panic!("{text}: expected a matcher error, got {other:?}"),
        };
        assert!(reason(r#"="x""#).contains("label name"));
        assert!(reason(r#"sev~"x""#).contains("expected =, !=, =~ or !~"));
        assert!(reason(r#"sev=~"(high""#).contains("not a valid regular expression"));
        assert!(reason(r#"a="x", b="y""#).contains("one matcher per string"));
        assert!(reason(r#"a="x"#).contains("closing quote"));
        assert!(reason(r#"a="x\q""#).contains("escape"));
    }

    #[test]
    fn alert_fields_become_labels() {
        let alert = relec_schemas::sample::alert(1, 0);
        let labels = labels_of(&alert);
        assert_eq!(labels["rule"], alert.rule_id);
        assert_eq!(labels["severity"], severity_label(alert.severity));
    }

    mod props {
        use proptest::prelude::*;

        use super::super::*;

        fn op() -> impl Strategy<Value = MatchOp> {
            prop_oneof![Just(MatchOp::Equal), Just(MatchOp::NotEqual)]
        }

        proptest! {
            #[test]
            fn display_parses_back(name in "[a-zA-Z_][a-zA-Z0-9_]{0,8}", op in op(), value in any::<String>()) {
                let matcher = Matcher::new(name, op, value).expect("valid");
                let again: Matcher = matcher.to_string().parse().expect("parses");
                prop_assert_eq!(again, matcher);
            }

            #[test]
            fn equal_and_not_equal_disagree(value in ".{0,6}", label in ".{0,6}") {
                let l = Labels::from([("k".to_owned(), label)]);
                let eq = Matcher::new("k", MatchOp::Equal, value.clone()).expect("valid");
                let ne = Matcher::new("k", MatchOp::NotEqual, value).expect("valid");
                prop_assert_ne!(eq.matches(&l), ne.matches(&l));
            }
        }
    }
}

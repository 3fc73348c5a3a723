//! What a rule's script sees of one group key when it is evaluated: the key's state as of
//! the evaluation day, its labels, and (for rules triggered by an event) the event.

use std::{collections::BTreeMap, sync::Arc};

use relec_schemas::IncidentEvent;

use crate::{dims::Key, state::KeyState, time::Day};

/// The handle a rule's `condition(g)` receives. Cheap to clone: the state is shared.
#[derive(Debug, Clone)]
pub struct Group {
    pub state: Arc<KeyState>,
    /// The day being evaluated; windows end with it (inclusive).
    pub day: Day,
    /// The group's labels, e.g. `route = AFG-IRN-NIMROZ`, in `group_by` order.
    pub labels: Key,
    /// The event that triggered an `immediate` rule; `None` for day evaluations.
    pub event: Option<Arc<IncidentEvent>>,
    /// How many days of buckets are kept; windows reaching further back see zeros.
    pub horizon_days: i64,
    /// Days the stage has evaluated so far (1 on its first day): rules that look for
    /// something new need enough history before "unseen" means anything.
    pub history_days: i64,
}

/// What a condition returned: a plain `bool`, or a map with `fire` and optional `value`,
/// `threshold` and further values for the annotation templates.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Verdict {
    pub fire: bool,
    pub value: f64,
    pub threshold: Option<f64>,
    /// Extra template values (`{{name}}`), rendered as strings; kept only when `fire`, as
    /// only a firing alert's templates read them.
    pub values: BTreeMap<String, String>,
}

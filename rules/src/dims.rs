//! Dimensions rules group by, how to read each from an incident event, and the group
//! keys they make.

use std::{collections::HashMap, hash::BuildHasher, sync::Arc};

use foldhash::fast::FixedState;
use relec_schemas::IncidentEvent;

/// Dimensions a rule may group by or break a group down by.
pub const DIMENSIONS: [&str; 7] = [
    "route",
    "border_section",
    "crossing_point",
    "nationality",
    "category",
    "reporting_country",
    "reporting_agency",
];

/// The event's value of a single-valued dimension; `None` if the event has none (an
/// unset crossing point) or the dimension is multi-valued (nationality).
pub fn value<'a>(event: &'a IncidentEvent, dim: &str) -> Option<&'a str> {
    match dim {
        "route" => Some(&event.route),
        "border_section" => event.border_section.as_deref(),
        "crossing_point" => event.crossing_point.as_deref(),
        "category" => Some(event.category.as_str()),
        "reporting_country" => Some(&event.reporting_country),
        "reporting_agency" => Some(&event.reporting_agency),
        _ => None,
    }
}

/// A group key: its labels, in `group_by` order. Shared: a copy of an event carries its
/// key to a shard, into the staged day and the changelog's entry names, all without
/// copying its strings.
pub type Key = Arc<[(String, String)]>;

/// Dimensions a key can have at most (every one of [`DIMENSIONS`]).
const MAX_DIMENSIONS: usize = DIMENSIONS.len();

/// Calls `f` with every group key `event` belongs to under `group_by`, as borrowed labels:
/// one for single-valued dimensions, one per nationality when grouping by nationality, none
/// if a dimension is unset (or `group_by` is longer than any valid one).
pub fn each_key(event: &IncidentEvent, group_by: &[String], f: &mut impl FnMut(&[(&str, &str)])) {
    fn walk<'e>(
        event: &'e IncidentEvent,
        rest: &'e [String],
        labels: &mut [(&'e str, &'e str); MAX_DIMENSIONS],
        depth: usize,
        f: &mut impl FnMut(&[(&str, &str)]),
    ) {
        let Some((dim, rest)) = rest.split_first() else {
            return f(&labels[..depth]);
        };
        if dim == "nationality" {
            for n in &event.nationalities {
                labels[depth] = (dim, &n.nationality);
                walk(event, rest, labels, depth + 1, f);
            }
        } else if let Some(value) = value(event, dim) {
            labels[depth] = (dim, value);
            walk(event, rest, labels, depth + 1, f);
        }
    }
    if group_by.len() <= MAX_DIMENSIONS {
        walk(event, group_by, &mut [("", ""); MAX_DIMENSIONS], 0, f);
    }
}

/// Every group key `event` belongs to under `group_by` (see [`each_key`]), built anew.
pub fn keys(event: &IncidentEvent, group_by: &[String]) -> Vec<Key> {
    let mut keys = Vec::new();
    each_key(event, group_by, &mut |labels| keys.push(owned(labels)));
    keys
}

/// The key with `labels`, built anew.
pub fn owned(labels: &[(&str, &str)]) -> Key {
    (labels.iter())
        .map(|(d, v)| ((*d).to_owned(), (*v).to_owned()))
        .collect()
}

/// Keys built once and handed out again, each with a value derived from it once (its
/// partition, say): the same keys come with event after event, and a shared key costs
/// no allocation to pass on or to drop. Holds at most [`Interner::MAX_KEYS`], then starts
/// over (keys of a long-gone day).
#[derive(Debug)]
pub struct Interner<V> {
    known: HashMap<u64, Vec<(Key, V)>, FixedState>,
    len: usize,
    hasher: FixedState,
}

impl<V> Default for Interner<V> {
    fn default() -> Self {
        Self {
            known: HashMap::default(),
            len: 0,
            hasher: FixedState::default(),
        }
    }
}

impl<V: Copy> Interner<V> {
    const MAX_KEYS: usize = 100_000;

    /// The key with `labels`, and its value (made by `value` the first time).
    pub fn get<E>(
        &mut self,
        labels: &[(&str, &str)],
        value: impl FnOnce(&Key) -> Result<V, E>,
    ) -> Result<(Key, V), E> {
        let hash = self.hasher.hash_one(labels);
        let same = |key: &Key| {
            key.len() == labels.len()
                && (key.iter().zip(labels)).all(|((d, v), (ld, lv))| d == ld && v == lv)
        };
        if let Some((key, v)) = self
            .known
            .get(&hash)
            .and_then(|bucket| bucket.iter().find(|(key, _)| same(key)))
        {
            return Ok((key.clone(), *v));
        }
        let key = owned(labels);
        let v = value(&key)?;
        if self.len >= Self::MAX_KEYS {
            self.known.clear();
            self.len = 0;
        }
        self.known.entry(hash).or_default().push((key.clone(), v));
        self.len += 1;
        Ok((key, v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_built_once_and_match_the_labels() {
        let mut event = relec_schemas::sample::incident(3, 1);
        event.route = "AFG-IRN".into();
        let group_by = ["reporting_country".to_owned(), "nationality".to_owned()];
        let built = keys(&event, &group_by);
        assert_eq!(built.len(), event.nationalities.len());
        let mut interner = Interner::default();
        let mut made = 0;
        for _ in 0..2 {
            let mut i = 0;
            each_key(&event, &group_by, &mut |labels| {
                let (key, n) = interner
                    .get(labels, |_| -> Result<usize, ()> {
                        made += 1;
                        Ok(made)
                    })
                    .unwrap();
                assert_eq!(key, built[i]);
                assert_eq!(n, i + 1, "the value made the first time");
                i += 1;
            });
        }
        assert_eq!(made, built.len());
        event.crossing_point = None;
        assert!(keys(&event, &["crossing_point".to_owned()]).is_empty());
    }
}

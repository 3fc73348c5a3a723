//! Silences, as in Alertmanager: operators mute alerts matching some matchers for a
//! while. Silences are JSON so the stage can keep them in a compacted topic keyed by id.

use std::collections::BTreeMap;

use relec_plumbing::config::Problems;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    Error,
    matcher::{Labels, Matcher, matches_all},
};

/// One silence. Times are milliseconds since the Unix epoch, as in `Alert`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Silence {
    pub id: Uuid,
    /// An alert is muted when it matches all of them.
    pub matchers: Vec<Matcher>,
    pub starts_at: i64,
    pub ends_at: i64,
    /// Who set it, for the audit trail.
    pub created_by: String,
    /// Why, for whoever wonders later where the warnings went.
    pub comment: String,
}

impl Silence {
    /// A new silence with a fresh id, checked.
    pub fn new(
        matchers: Vec<Matcher>,
        starts_at: i64,
        ends_at: i64,
        created_by: impl Into<String>,
        comment: impl Into<String>,
    ) -> Result<Self, Error> {
        let silence = Self {
            id: Uuid::new_v4(),
            matchers,
            starts_at,
            ends_at,
            created_by: created_by.into(),
            comment: comment.into(),
        };
        silence.check()?;
        Ok(silence)
    }

    /// Reads a silence as stored in the silences topic, checked.
    pub fn from_json(bytes: &[u8]) -> Result<Self, Error> {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let silence: Self = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            let at = if path == "." {
                "silence".to_owned()
            } else {
                path
            };
            problem(at, e.inner().to_string())
        })?;
        de.end()
            .map_err(|e| problem("silence".to_owned(), e.to_string()))?;
        silence.check()?;
        Ok(silence)
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a silence serialises")
    }

    /// Every problem at once, each with its field path.
    pub fn problems(&self) -> Problems {
        let mut problems = Problems::default();
        if self.matchers.is_empty() {
            problems.push("matchers", "list at least one matcher");
        } else if self.matchers.iter().all(|m| m.matches_value("")) {
            // Alertmanager's rule: otherwise one silence could mute every alert there is.
            problems.push(
                "matchers",
                "at least one matcher must not match the empty string, or every alert would be muted",
            );
        }
        if self.ends_at <= self.starts_at {
            problems.push("ends_at", "must be after starts_at");
        }
        if self.created_by.trim().is_empty() {
            problems.push("created_by", "must say who set the silence");
        }
        if self.comment.trim().is_empty() {
            problems.push("comment", "must say why");
        }
        problems
    }

    fn check(&self) -> Result<(), Error> {
        let problems = self.problems();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::Silence(problems))
        }
    }

    /// In force at `now`: from `starts_at` (inclusive) to `ends_at` (exclusive).
    pub fn is_active(&self, now: i64) -> bool {
        self.starts_at <= now && now < self.ends_at
    }

    pub fn is_expired(&self, now: i64) -> bool {
        self.ends_at <= now
    }

    pub fn mutes(&self, labels: &Labels, now: i64) -> bool {
        self.is_active(now) && matches_all(&self.matchers, labels)
    }

    /// Ends the silence at `now`; one that has not started yet ends before it starts.
    /// False if it had already expired, which changes nothing.
    pub fn expire(&mut self, now: i64) -> bool {
        if self.is_expired(now) {
            return false;
        }
        if self.starts_at > now {
            self.starts_at = now;
        }
        self.ends_at = now;
        true
    }
}

fn problem(path: String, message: String) -> Error {
    let mut problems = Problems::default();
    problems.push(path, message);
    Error::Silence(problems)
}

/// Every known silence by id, as read from the silences topic.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Silences {
    by_id: BTreeMap<Uuid, Silence>,
}

impl Silences {
    /// Adds a silence or replaces the one with its id.
    pub fn upsert(&mut self, silence: Silence) {
        self.by_id.insert(silence.id, silence);
    }

    /// Forgets a silence (a tombstone in the topic).
    pub fn remove(&mut self, id: &Uuid) -> Option<Silence> {
        self.by_id.remove(id)
    }

    pub fn get(&self, id: &Uuid) -> Option<&Silence> {
        self.by_id.get(id)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Silence> {
        self.by_id.values()
    }

    /// Expires a silence, returning it as changed so the stage can write it back; `None`
    /// if unknown or already expired.
    pub fn expire(&mut self, id: &Uuid, now: i64) -> Option<&Silence> {
        let silence = self.by_id.get_mut(id)?;
        silence.expire(now).then_some(&*silence)
    }

    /// Whether any silence active at `now` mutes an alert with `labels`.
    pub fn mutes(&self, labels: &Labels, now: i64) -> bool {
        self.by_id.values().any(|s| s.mutes(labels, now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn silence(matchers: &[&str]) -> Silence {
        Silence::new(
            matchers
                .iter()
                .map(|m| m.parse().expect("matcher"))
                .collect(),
            HOUR,
            3 * HOUR,
            "ops@relec",
            "maintenance of the IRN-TUR feed",
        )
        .expect("valid silence")
    }

    #[test]
    fn active_from_start_until_just_before_end() {
        let s = silence(&[r#"route="IRN-TUR""#]);
        let l = labels(&[("route", "IRN-TUR")]);
        assert!(!s.mutes(&l, HOUR - 1));
        assert!(s.mutes(&l, HOUR));
        assert!(s.mutes(&l, 3 * HOUR - 1));
        assert!(!s.mutes(&l, 3 * HOUR));
    }

    #[test]
    fn an_alert_must_match_every_matcher() {
        let s = silence(&[r#"route="IRN-TUR""#, r#"severity=~"low|info""#]);
        assert!(s.mutes(
            &labels(&[("route", "IRN-TUR"), ("severity", "low")]),
            2 * HOUR
        ));
        assert!(!s.mutes(
            &labels(&[("route", "IRN-TUR"), ("severity", "high")]),
            2 * HOUR
        ));
    }

    #[test]
    fn expiring_ends_it_now() {
        let mut silences = Silences::default();
        let s = silence(&[r#"route="IRN-TUR""#]);
        let id = s.id;
        silences.upsert(s);
        let l = labels(&[("route", "IRN-TUR")]);
        assert!(silences.mutes(&l, 2 * HOUR));
        let expired = silences.expire(&id, 2 * HOUR).expect("was active").clone();
        assert_eq!(expired.ends_at, 2 * HOUR);
        assert!(!silences.mutes(&l, 2 * HOUR));
        assert!(silences.expire(&id, 2 * HOUR).is_none(), "already expired");

        // One not yet started ends before it ever starts.
        let mut pending = silence(&[r#"route="IRN-TUR""#]);
        assert!(pending.expire(0));
        assert_eq!((pending.starts_at, pending.ends_at), (0, 0));
        assert!(!pending.is_active(0));
    }

    #[test]
    fn json_round_trip() {
        let s = silence(&[r#"route=~"IRN-.*""#]);
        let json = String::from_utf8(s.to_json()).expect("utf-8");
        assert!(
            json.contains(r#""matchers":["route=~\"IRN-.*\""]"#),
            "{json}"
        );
        assert_eq!(Silence::from_json(json.as_bytes()).expect("parses"), s);
    }

    #[test]
    fn bad_silences_are_refused_with_every_reason() {
        let err = Silence::new(vec![], 5, 5, " ", "").expect_err("invalid");
        let text = err.to_string();
        for expected in [
            "matchers: list at least one matcher",
            "ends_at: must be after starts_at",
            "created_by: must say who",
            "comment: must say why",
        ] {
            assert!(
                text.contains(expected),
                "{expected:?} missing from:\n{text}"
            );
        }
        let everything = Silence::new(
            vec![r#"route=~".*""#.parse().expect("matcher")],
            0,
            1,
            "me",
            "why",
        )
        .expect_err("mutes everything");
        assert!(
            everything
                .to_string()
                .contains("must not match the empty string")
        );
    }

    #[test]
    fn json_errors_name_the_field() {
        let id = Uuid::nil();
        let json = format!(
            r#"{{"id":"{id}","matchers":["route=~\"(\""],"starts_at":0,"ends_at":1,"created_by":"me","comment":"x"}}"#
        );
        let text = Silence::from_json(json.as_bytes())
            .expect_err("bad regex")
            .to_string();
        assert!(text.contains("matchers[0]: invalid matcher"), "{text}");
    }
}

//! Inhibition, as in Alertmanager: while a firing alert matches a rule's source matchers,
//! alerts matching its target matchers with the same `equal` label values are muted
//! (a route-wide spike on a route mutes the per-border-section warnings on it).

use serde::Deserialize;

use crate::matcher::{Labels, Matcher, matches_all};

/// One `[[inhibit_rules]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InhibitRule {
    /// What a firing alert must match to inhibit.
    pub source_matchers: Vec<Matcher>,
    /// What an alert must match to be inhibited.
    pub target_matchers: Vec<Matcher>,
    /// Labels whose values source and target must share; a label missing from both
    /// counts as equal (both are `""`), as in Alertmanager.
    #[serde(default)]
    pub equal: Vec<String>,
}

impl InhibitRule {
    /// Whether some alert among `firing` inhibits `target` under this rule. A source that
    /// also matches the target matchers is passed over when the target itself matches
    /// the source matchers, so an alert never inhibits itself, nor do two alerts that
    /// each match both sides inhibit each other.
    pub fn inhibits<'a>(
        &self,
        firing: impl IntoIterator<Item = &'a Labels>,
        target: &Labels,
    ) -> bool {
        if !matches_all(&self.target_matchers, target) {
            return false;
        }
        let target_is_source = matches_all(&self.source_matchers, target);
        firing.into_iter().any(|source| {
            matches_all(&self.source_matchers, source)
                && !(target_is_source && matches_all(&self.target_matchers, source))
                && self
                    .equal
                    .iter()
                    .all(|name| source.get(name) == target.get(name))
        })
    }
}

/// Whether any rule mutes `target` given the labels of every firing alert.
pub fn is_inhibited(rules: &[InhibitRule], firing: &[Labels], target: &Labels) -> bool {
    rules.iter().any(|rule| rule.inhibits(firing, target))
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

    fn rule(source: &[&str], target: &[&str], equal: &[&str]) -> InhibitRule {
        let parse = |ms: &[&str]| ms.iter().map(|m| m.parse().expect("matcher")).collect();
        InhibitRule {
            source_matchers: parse(source),
            target_matchers: parse(target),
            equal: equal.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn a_firing_source_mutes_targets_with_equal_labels() {
        let r = rule(
            &[r#"rule="route_spike""#],
            &[r#"rule="ears_c2""#],
            &["route"],
        );
        let spike = labels(&[("rule", "route_spike"), ("route", "IRN-TUR")]);
        let same_route = labels(&[
            ("rule", "ears_c2"),
            ("route", "IRN-TUR"),
            ("border_section", "B1"),
        ]);
        let other_route = labels(&[("rule", "ears_c2"), ("route", "AFG-IRN")]);
        assert!(r.inhibits([&spike], &same_route));
        assert!(!r.inhibits([&spike], &other_route));
        assert!(!r.inhibits([], &same_route), "no source, no inhibition");
        assert!(!r.inhibits([&spike], &spike), "the source is no target");
    }

    #[test]
    fn labels_missing_on_both_sides_count_as_equal() {
        let r = rule(
            &[r#"severity="critical""#],
            &[r#"severity="low""#],
            &["route"],
        );
        let source = labels(&[("severity", "critical")]);
        assert!(r.inhibits([&source], &labels(&[("severity", "low")])));
        assert!(!r.inhibits([&source], &labels(&[("severity", "low"), ("route", "X")])));
    }

    #[test]
    fn an_alert_matching_both_sides_does_not_inhibit_itself() {
        // Every alert of the rule is both source and target.
        let r = rule(&[r#"rule="surge""#], &[r#"rule="surge""#], &["country"]);
        let a = labels(&[("rule", "surge"), ("country", "TUR"), ("n", "1")]);
        let b = labels(&[("rule", "surge"), ("country", "TUR"), ("n", "2")]);
        let firing = [a.clone(), b.clone()];
        assert!(!r.inhibits(&firing, &a));
        assert!(!r.inhibits(&firing, &b));
    }

    #[test]
    fn any_rule_is_enough() {
        let rules = [
            rule(&[r#"rule="x""#], &[r#"rule="y""#], &[]),
            rule(
                &[r#"rule="death""#],
                &[r#"severity!="critical""#],
                &["route"],
            ),
        ];
        let death = labels(&[("rule", "death"), ("severity", "critical"), ("route", "R")]);
        let spike = labels(&[("rule", "spike"), ("severity", "high"), ("route", "R")]);
        let firing = [death.clone()];
        assert!(is_inhibited(&rules, &firing, &spike));
        assert!(!is_inhibited(&rules, &firing, &death));
        assert!(!is_inhibited(&rules, &[], &spike));
    }
}

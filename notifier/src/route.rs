//! The route tree of the notifier: which routes an alert takes and with which grouping
//! and timing, in Prometheus Alertmanager's semantics (`dispatch/route.go`).

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use serde::{Deserialize, Serialize};

use crate::{
    matcher::{Labels, Matcher, matches_all},
    subscriptions::RouteConfig,
};

/// How long a new group waits for more alerts before its first notification.
pub const DEFAULT_GROUP_WAIT: Duration = Duration::from_secs(30);
/// How long a group waits after a notification before it sends what changed since.
pub const DEFAULT_GROUP_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// How long before a notification that changed nothing is sent again as a reminder.
pub const DEFAULT_REPEAT_INTERVAL: Duration = Duration::from_secs(4 * 60 * 60);
/// NCPs want to know when a warning is over, as Alertmanager's webhooks default to.
pub const DEFAULT_SEND_RESOLVED: bool = true;

/// The `group_by` of a route: some labels, or every label (`["..."]`), which makes each
/// distinct label set its own group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum GroupBy {
    All,
    Labels(BTreeSet<String>),
}

/// A route with its parent's settings filled in.
#[derive(Debug, Clone)]
pub struct Route {
    /// Alertmanager's route id: the parent's id, the sorted matchers and the position
    /// among siblings (`{}/{severity="critical"}/0`), stable while the tree's shape is.
    pub id: String,
    pub receiver: String,
    pub matchers: Vec<Matcher>,
    pub group_by: GroupBy,
    pub group_wait: Duration,
    pub group_interval: Duration,
    pub repeat_interval: Duration,
    pub send_resolved: bool,
    /// Keep looking at later siblings after this route matched.
    pub continue_matching: bool,
    /// Subscribers this route sends RED alerts to; not inherited, as naming is explicit.
    pub red_recipients: Vec<String>,
    children: Vec<usize>,
}

impl Route {
    /// The labels that make up this route's group for an alert with `labels`.
    pub fn group_labels(&self, labels: &Labels) -> Labels {
        match &self.group_by {
            GroupBy::All => labels.clone(),
            GroupBy::Labels(names) => labels
                .iter()
                .filter(|(name, _)| names.contains(*name))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }
}

/// The whole tree, root first.
#[derive(Debug, Clone)]
pub struct RouteTree {
    routes: Vec<Route>,
    by_id: BTreeMap<String, usize>,
}

impl RouteTree {
    /// Builds the tree from a checked `[route]` (see `Subscriptions`), each route starting
    /// from its parent's settings and the root from the defaults.
    pub fn new(root: &RouteConfig) -> Self {
        let mut tree = Self {
            routes: Vec::new(),
            by_id: BTreeMap::new(),
        };
        let defaults = Route {
            id: String::new(),
            receiver: String::new(),
            matchers: Vec::new(),
            group_by: GroupBy::Labels(BTreeSet::new()),
            group_wait: DEFAULT_GROUP_WAIT,
            group_interval: DEFAULT_GROUP_INTERVAL,
            repeat_interval: DEFAULT_REPEAT_INTERVAL,
            send_resolved: DEFAULT_SEND_RESOLVED,
            continue_matching: false,
            red_recipients: Vec::new(),
            children: Vec::new(),
        };
        tree.add(root, &defaults, None);
        tree.by_id = (tree.routes.iter().enumerate())
            .map(|(i, r)| (r.id.clone(), i))
            .collect();
        tree
    }

    fn add(&mut self, config: &RouteConfig, parent: &Route, position: Option<usize>) -> usize {
        let mut matchers = config.matchers.clone();
        matchers.sort();
        let listed = matchers
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let id = match position {
            None => format!("{{{listed}}}"),
            Some(i) => format!("{}/{{{listed}}}/{i}", parent.id),
        };
        let group_by = match &config.group_by {
            None => parent.group_by.clone(),
            Some(names) if names.iter().any(|n| n == "...") => GroupBy::All,
            Some(names) => GroupBy::Labels(names.iter().cloned().collect()),
        };
        let route = Route {
            id,
            receiver: config
                .receiver
                .clone()
                .unwrap_or_else(|| parent.receiver.clone()),
            matchers,
            group_by,
            group_wait: config.group_wait.unwrap_or(parent.group_wait),
            group_interval: config.group_interval.unwrap_or(parent.group_interval),
            repeat_interval: config.repeat_interval.unwrap_or(parent.repeat_interval),
            send_resolved: config.send_resolved.unwrap_or(parent.send_resolved),
            continue_matching: config.continue_matching,
            red_recipients: config.red_recipients.clone(),
            children: Vec::new(),
        };
        let index = self.routes.len();
        self.routes.push(route.clone());
        let children = (config.routes.iter().enumerate())
            .map(|(i, child)| self.add(child, &route, Some(i)))
            .collect();
        self.routes[index].children = children;
        index
    }

    pub fn root(&self) -> &Route {
        &self.routes[0]
    }

    pub fn get(&self, id: &str) -> Option<&Route> {
        self.by_id.get(id).map(|&i| &self.routes[i])
    }

    /// Every route, depth first.
    pub fn iter(&self) -> impl Iterator<Item = &Route> {
        self.routes.iter()
    }

    /// The routes an alert with `labels` takes. Depth first: the first matching child
    /// wins unless it says `continue`; a route none of whose children match takes the
    /// alert itself. Never empty, as the root has no matchers.
    pub fn matching(&self, labels: &Labels) -> Vec<&Route> {
        let mut found = Vec::new();
        self.match_at(0, labels, &mut found);
        found.into_iter().map(|i| &self.routes[i]).collect()
    }

    fn match_at(&self, index: usize, labels: &Labels, found: &mut Vec<usize>) -> bool {
        let route = &self.routes[index];
        if !matches_all(&route.matchers, labels) {
            return false;
        }
        let before = found.len();
        for &child in &route.children {
            if self.match_at(child, labels, found) && !self.routes[child].continue_matching {
                break;
            }
        }
        if found.len() == before {
            found.push(index);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(text: &str) -> RouteConfig {
        toml::from_str(text).expect("route parses")
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn receivers(tree: &RouteTree, pairs: &[(&str, &str)]) -> Vec<String> {
        tree.matching(&labels(pairs))
            .into_iter()
            .map(|r| r.receiver.clone())
            .collect()
    }

    const TREE: &str = r#"
        receiver = "all"
        group_by = ["rule"]

        [[routes]]
        receiver = "critical"
        matchers = ['severity="critical"']
        continue = true

        [[routes]]
        receiver = "turkey"
        matchers = ['country="TUR"']
        group_wait = "10s"

          [[routes.routes]]
          receiver = "turkey-smuggling"
          matchers = ['category=~"smuggling|trafficking"']
          group_by = ["..."]

        [[routes]]
        receiver = "iran"
        matchers = ['country="IRN"']

        [[routes]]
        receiver = "never"
        matchers = ['country="TUR"']
    "#;

    #[test]
    fn first_matching_child_wins_and_continue_goes_on() {
        let tree = RouteTree::new(&route(TREE));
        assert_eq!(receivers(&tree, &[("country", "TUR")]), ["turkey"]);
        assert_eq!(
            receivers(&tree, &[("country", "TUR"), ("severity", "critical")]),
            ["critical", "turkey"]
        );
        assert_eq!(
            receivers(&tree, &[("country", "TUR"), ("category", "smuggling")]),
            ["turkey-smuggling"]
        );
        assert_eq!(receivers(&tree, &[("country", "IRN")]), ["iran"]);
    }

    #[test]
    fn no_matching_child_means_the_parent_takes_it() {
        let tree = RouteTree::new(&route(TREE));
        assert_eq!(receivers(&tree, &[("country", "PAK")]), ["all"]);
        assert_eq!(receivers(&tree, &[]), ["all"]);
        // A continue route alone still counts as a match, so the root does not take it too.
        assert_eq!(receivers(&tree, &[("severity", "critical")]), ["critical"]);
    }

    #[test]
    fn children_inherit_what_they_do_not_set() {
        let tree = RouteTree::new(&route(TREE));
        let all = tree.root();
        assert_eq!(all.group_wait, DEFAULT_GROUP_WAIT);
        assert_eq!(all.group_interval, DEFAULT_GROUP_INTERVAL);
        assert_eq!(all.repeat_interval, DEFAULT_REPEAT_INTERVAL);
        let [smuggling] =
            tree.matching(&labels(&[("country", "TUR"), ("category", "smuggling")]))[..]
        else {
            panic!("one route")
        };
        assert_eq!(smuggling.group_wait, Duration::from_secs(10), "from turkey");
        assert_eq!(smuggling.group_by, GroupBy::All);
        let turkey = tree.get("{}/{country=\"TUR\"}/1").expect("by id");
        assert_eq!(turkey.receiver, "turkey");
        assert_eq!(
            turkey.group_by,
            GroupBy::Labels(BTreeSet::from(["rule".to_owned()]))
        );
    }

    #[test]
    fn ids_are_unique_even_for_equal_matchers() {
        let tree = RouteTree::new(&route(TREE));
        let ids: BTreeSet<&str> = tree.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids.len(), tree.iter().count());
        assert!(ids.contains("{}/{country=\"TUR\"}/3"));
    }

    #[test]
    fn group_labels_keep_only_group_by() {
        let tree = RouteTree::new(&route(TREE));
        let l = labels(&[("rule", "r1"), ("country", "PAK"), ("route", "X")]);
        assert_eq!(tree.root().group_labels(&l), labels(&[("rule", "r1")]));
    }

    mod props {
        use proptest::prelude::*;

        use super::*;

        proptest! {
            #[test]
            fn every_alert_takes_at_least_one_route(
                country in "(TUR|IRN|PAK|AFG)",
                severity in "(high|critical|low)",
                category in "(smuggling|death|crossing)",
            ) {
                let tree = RouteTree::new(&route(TREE));
                let l = labels(&[("country", &country), ("severity", &severity), ("category", &category)]);
                let routes = tree.matching(&l);
                prop_assert!(!routes.is_empty());
                for r in routes {
                    prop_assert!(matches_all(&r.matchers, &l));
                }
            }
        }
    }
}

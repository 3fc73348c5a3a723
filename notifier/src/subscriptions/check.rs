//! The meaning checks of the subscriptions file, beyond what its types say: references
//! between subscribers, receivers and routes, addresses, URLs, intervals.

use std::{collections::BTreeSet, time::Duration};

use relec_plumbing::config::{Problems, key};

use super::{
    EmailChannel, MIN_SECRET_BYTES, Receiver, RouteConfig, Subscriber, WebhookChannel, channels_of,
    is_id,
};
use crate::{
    inhibit::InhibitRule,
    matcher::is_label_name,
    route::{DEFAULT_GROUP_INTERVAL, DEFAULT_REPEAT_INTERVAL},
};

/// Checks the parsed sections together, adding every problem found.
pub(super) fn all(
    subscribers: &[Subscriber],
    receivers: &[Receiver],
    route: &RouteConfig,
    inhibit_rules: &[InhibitRule],
    problems: &mut Problems,
) {
    let mut check = Check {
        subscribers,
        receivers,
        problems,
    };
    check.subscribers();
    check.receivers();
    check.root(route);
    check.inhibit_rules(inhibit_rules);
}

/// Headers the webhook channel sets itself, which extra headers may not override.
const RESERVED_HEADERS: [&str; 6] = [
    "content-type",
    "content-length",
    "host",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
];

/// A BCP 47 language tag, loosely: a 2-3 letter language, then optional subtags.
fn is_locale(text: &str) -> bool {
    let mut parts = text.split('-');
    parts
        .next()
        .is_some_and(|l| (2..=3).contains(&l.len()) && l.chars().all(|c| c.is_ascii_lowercase()))
        && parts.all(|p| (1..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()))
}

/// The meaning checks across the whole file.
struct Check<'a> {
    subscribers: &'a [Subscriber],
    receivers: &'a [Receiver],
    problems: &'a mut Problems,
}

/// The timing a route inherits, for the checks that need effective values.
#[derive(Clone)]
struct Inherited {
    receiver: Option<String>,
    group_interval: Duration,
    repeat_interval: Duration,
}

impl Check<'_> {
    fn subscriber(&self, id: &str) -> Option<&Subscriber> {
        self.subscribers.iter().find(|s| s.id == id)
    }

    fn subscribers(&mut self) {
        let mut seen = BTreeSet::new();
        for (i, s) in self.subscribers.iter().enumerate() {
            let p = format!("subscribers[{i}]");
            if !is_id(&s.id) {
                self.problems.push(
                    key(&p, "id"),
                    "use letters, digits, '.', '_' and '-', starting with a letter or digit",
                );
            } else if !seen.insert(s.id.as_str()) {
                self.problems
                    .push(key(&p, "id"), format!("{:?} appears twice", s.id));
            }
            if isocountry::CountryCode::for_alpha3(&s.country).is_err() {
                self.problems.push(
                    key(&p, "country"),
                    format!(
                        "{:?} is not an ISO 3166-1 alpha-3 code (e.g. TUR)",
                        s.country
                    ),
                );
            }
            if s.email.is_none() && s.webhooks.is_empty() {
                self.problems.push(
                    &p,
                    "no channel: give it [subscribers.email] or [[subscribers.webhooks]]",
                );
            }
            if let Some(email) = &s.email {
                email_problems(email, &key(&p, "email"), self.problems);
            }
            let mut names = BTreeSet::new();
            for (j, w) in s.webhooks.iter().enumerate() {
                let wp = format!("{}[{j}]", key(&p, "webhooks"));
                if !is_id(&w.name) {
                    self.problems.push(
                        key(&wp, "name"),
                        "use letters, digits, '.', '_' and '-', starting with a letter or digit",
                    );
                } else if !names.insert(w.name.as_str()) {
                    self.problems
                        .push(key(&wp, "name"), format!("{:?} appears twice", w.name));
                }
                webhook_problems(w, &wp, self.problems);
            }
        }
    }

    fn receivers(&mut self) {
        let mut seen = BTreeSet::new();
        for (i, r) in self.receivers.iter().enumerate() {
            let p = format!("receivers[{i}]");
            if r.name.trim().is_empty() {
                self.problems.push(key(&p, "name"), "must not be empty");
            } else if !seen.insert(r.name.as_str()) {
                self.problems
                    .push(key(&p, "name"), format!("{:?} appears twice", r.name));
            }
            if r.subscribers.is_empty() && r.channels.is_empty() {
                self.problems
                    .push(&p, "reaches nobody: list subscribers or channels");
            }
            for (j, id) in r.subscribers.iter().enumerate() {
                if self.subscriber(id).is_none() {
                    self.problems.push(
                        format!("{}[{j}]", key(&p, "subscribers")),
                        format!("no subscriber has id {id:?}"),
                    );
                }
            }
            for (j, channel) in r.channels.iter().enumerate() {
                let at = format!("{}[{j}]", key(&p, "channels"));
                match self.subscriber(&channel.subscriber) {
                    None => self
                        .problems
                        .push(at, format!("no subscriber has id {:?}", channel.subscriber)),
                    Some(s) if !channels_of(s).contains(channel) => self.problems.push(
                        at,
                        format!("subscriber {:?} has no channel {channel}", s.id),
                    ),
                    Some(_) => {}
                }
            }
            for (j, id) in r.red_recipients.iter().enumerate() {
                if !is_member(r, id) {
                    self.problems.push(
                        format!("{}[{j}]", key(&p, "red_recipients")),
                        format!("{id:?} is not among this receiver's subscribers or channels"),
                    );
                }
            }
        }
    }

    fn root(&mut self, route: &RouteConfig) {
        if route.receiver.is_none() {
            self.problems.push(
                "route.receiver",
                "the root route needs a receiver, for alerts no other route takes",
            );
        }
        if !route.matchers.is_empty() {
            self.problems.push(
                "route.matchers",
                "the root route takes every alert: it has no matchers",
            );
        }
        if route.continue_matching {
            self.problems.push(
                "route.continue",
                "the root route has no siblings to continue to",
            );
        }
        let inherited = Inherited {
            receiver: None,
            group_interval: DEFAULT_GROUP_INTERVAL,
            repeat_interval: DEFAULT_REPEAT_INTERVAL,
        };
        self.route(route, "route", inherited, true);
    }

    fn route(&mut self, route: &RouteConfig, path: &str, parent: Inherited, root: bool) {
        let here = Inherited {
            receiver: route.receiver.clone().or(parent.receiver),
            group_interval: route.group_interval.unwrap_or(parent.group_interval),
            repeat_interval: route.repeat_interval.unwrap_or(parent.repeat_interval),
        };
        let receiver = (here.receiver.as_ref())
            .and_then(|name| self.receivers.iter().find(|r| &r.name == name));
        if let Some(name) = &route.receiver
            && receiver.is_none()
        {
            self.problems.push(
                key(path, "receiver"),
                format!("no receiver is named {name:?}"),
            );
        }
        if let Some(names) = &route.group_by {
            group_by_problems(names, &key(path, "group_by"), self.problems);
        }
        if route.group_interval == Some(Duration::ZERO) {
            self.problems
                .push(key(path, "group_interval"), "must be more than 0");
        }
        if route.repeat_interval == Some(Duration::ZERO) {
            self.problems
                .push(key(path, "repeat_interval"), "must be more than 0");
        } else if (root || route.repeat_interval.is_some() || route.group_interval.is_some())
            && here.repeat_interval < here.group_interval
        {
            // Reminders only go out when a group is flushed, every group_interval.
            self.problems.push(
                key(path, "repeat_interval"),
                format!(
                    "{} is shorter than group_interval ({}); reminders cannot come more often",
                    humantime::format_duration(here.repeat_interval),
                    humantime::format_duration(here.group_interval),
                ),
            );
        }
        for (j, id) in route.red_recipients.iter().enumerate() {
            let at = format!("{}[{j}]", key(path, "red_recipients"));
            match receiver {
                Some(r) if !is_member(r, id) => self.problems.push(
                    at,
                    format!(
                        "{id:?} is not among the subscribers of receiver {:?}",
                        r.name
                    ),
                ),
                // A missing receiver is reported already.
                _ => {}
            }
        }
        for (i, child) in route.routes.iter().enumerate() {
            self.route(
                child,
                &format!("{}[{i}]", key(path, "routes")),
                here.clone(),
                false,
            );
        }
    }

    fn inhibit_rules(&mut self, rules: &[InhibitRule]) {
        for (i, rule) in rules.iter().enumerate() {
            let p = format!("inhibit_rules[{i}]");
            if rule.source_matchers.is_empty() {
                self.problems.push(
                    key(&p, "source_matchers"),
                    "list at least one: without, every firing alert would be a source",
                );
            }
            if rule.target_matchers.is_empty() {
                self.problems.push(
                    key(&p, "target_matchers"),
                    "list at least one: without, every alert could be muted",
                );
            }
            for (j, name) in rule.equal.iter().enumerate() {
                if !is_label_name(name) {
                    self.problems.push(
                        format!("{}[{j}]", key(&p, "equal")),
                        format!("{name:?} is not a label name"),
                    );
                }
            }
        }
    }
}

fn is_member(receiver: &Receiver, subscriber: &str) -> bool {
    receiver.subscribers.iter().any(|s| s == subscriber)
        || receiver.channels.iter().any(|c| c.subscriber == subscriber)
}

fn email_problems(email: &EmailChannel, path: &str, problems: &mut Problems) {
    if email.addresses.is_empty() {
        problems.push(key(path, "addresses"), "list at least one address");
    }
    for (i, address) in email.addresses.iter().enumerate() {
        if address.parse::<lettre::Address>().is_err() {
            problems.push(
                format!("{}[{i}]", key(path, "addresses")),
                format!("{address:?} is not an email address"),
            );
        }
    }
    if !is_locale(&email.locale) {
        problems.push(
            key(path, "locale"),
            format!(
                "{:?} is not a language tag such as \"fa\" or \"tr\"",
                email.locale
            ),
        );
    }
}

fn webhook_problems(webhook: &WebhookChannel, path: &str, problems: &mut Problems) {
    let url_ok = reqwest::Url::parse(&webhook.url)
        .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
    if !url_ok {
        problems.push(key(path, "url"), "not an http(s) URL");
    }
    if webhook.secret.expose().len() < MIN_SECRET_BYTES {
        problems.push(
            key(path, "secret"),
            format!("shorter than {MIN_SECRET_BYTES} bytes: too weak to sign with"),
        );
    }
    if webhook.timeout.is_zero() {
        problems.push(key(path, "timeout"), "must be more than 0");
    }
    for (name, value) in &webhook.headers {
        let at = format!("{}.{name:?}", key(path, "headers"));
        if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
            problems.push(at, "not a valid header name");
        } else if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
            problems.push(at, "set by the webhook channel itself");
        } else if reqwest::header::HeaderValue::from_str(value).is_err() {
            problems.push(at, "not a valid header value");
        }
    }
}

fn group_by_problems(names: &[String], path: &str, problems: &mut Problems) {
    let all = names.iter().any(|n| n == "...");
    if all && names.len() > 1 {
        problems.push(path, "\"...\" means every label and stands alone");
    }
    let mut seen = BTreeSet::new();
    for (i, name) in names.iter().enumerate() {
        if name != "..." && !is_label_name(name) {
            problems.push(
                format!("{path}[{i}]"),
                format!("{name:?} is not a label name"),
            );
        } else if !seen.insert(name) {
            problems.push(format!("{path}[{i}]"), format!("{name:?} appears twice"));
        }
    }
}

//! The subscriptions file the notifier stage routes by: who the National Contact Points
//! are (country, clearance, email and webhook channels), the receivers that group them,
//! the route tree and the inhibition rules. Parsed and checked as a whole, every problem
//! reported at once with its key path, as the relec config is.

use std::{collections::BTreeMap, fmt, path::Path, str::FromStr, time::Duration};

use relec_plumbing::config::{Problems, Secret, key};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::{Error, inhibit::InhibitRule, matcher::Matcher, route::RouteTree, tlp::Clearance};

/// Webhook requests that take longer are cut off and retried.
pub const DEFAULT_WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);
/// The language of emails to a subscriber that does not say.
pub const DEFAULT_LOCALE: &str = "en";
/// Webhook signing secrets shorter than this are refused: HMAC is only as strong as its key.
pub const MIN_SECRET_BYTES: usize = 16;

/// One National Contact Point (or another subscriber) and how it is reached.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subscriber {
    /// Unique id (letters, digits, `.`, `_`, `-`), used by receivers and in channel ids
    /// such as `tur-ncp/email`.
    pub id: String,
    /// ISO 3166-1 alpha-3 code of the subscriber's country (AFG, BGD, IRN, IRQ, PAK, TUR, ...).
    pub country: String,
    /// The most restrictive TLP code it may receive: CLEAR, GREEN, AMBER or AMBER_STRICT.
    pub clearance: Clearance,
    #[serde(default)]
    pub email: Option<EmailChannel>,
    #[serde(default)]
    pub webhooks: Vec<WebhookChannel>,
}

/// Delivery by email: one message per notification to all the addresses.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailChannel {
    pub addresses: Vec<String>,
    /// Language of the message, a BCP 47 tag such as "fa", "ps", "bn", "ur", "tr", "ar", "en".
    #[serde(default = "default_locale")]
    pub locale: String,
}

fn default_locale() -> String {
    DEFAULT_LOCALE.to_owned()
}

/// Delivery by signed HTTP POST.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookChannel {
    /// Unique within the subscriber; names the channel (`tur-ncp/webhook/NAME`), so
    /// renaming it starts its notification log afresh.
    pub name: String,
    /// http or https URL the notifications are POSTed to.
    pub url: String,
    /// HMAC-SHA256 signing key: a string, `{ file = "PATH" }` or `{ env = "VAR" }`.
    pub secret: Secret,
    #[serde(default)]
    pub format: WebhookFormat,
    #[serde(default = "default_webhook_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Extra request headers, e.g. a tenant id the receiving side expects.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

fn default_webhook_timeout() -> Duration {
    DEFAULT_WEBHOOK_TIMEOUT
}

/// The body a webhook receives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookFormat {
    /// relec's own JSON.
    #[default]
    Native,
    /// OASIS Common Alerting Protocol 1.2 XML.
    Cap,
    /// Alertmanager's webhook JSON (version 4).
    Alertmanager,
}

/// A named set of recipient channels that routes send to.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receiver {
    pub name: String,
    /// Subscribers reached on every channel they have.
    #[serde(default)]
    pub subscribers: Vec<String>,
    /// Single channels: `SUBSCRIBER/email` or `SUBSCRIBER/webhook/NAME`.
    #[serde(default)]
    pub channels: Vec<ChannelId>,
    /// Members of this receiver that receive its RED alerts. Nobody else ever does.
    #[serde(default)]
    pub red_recipients: Vec<String>,
}

/// A node of the route tree. Unset settings are inherited from the parent route (the
/// root's from the defaults).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Required on the root route.
    pub receiver: Option<String>,
    /// All must match, e.g. `['country="TUR"', 'severity=~"high|critical"']`.
    #[serde(default)]
    pub matchers: Vec<Matcher>,
    /// Labels whose values make a group; `["..."]` groups by every label.
    pub group_by: Option<Vec<String>>,
    /// Default 30s.
    #[serde(default, with = "humantime_serde")]
    pub group_wait: Option<Duration>,
    /// Default 5m.
    #[serde(default, with = "humantime_serde")]
    pub group_interval: Option<Duration>,
    /// Default 4h.
    #[serde(default, with = "humantime_serde")]
    pub repeat_interval: Option<Duration>,
    /// Keep matching later sibling routes after this one matched.
    #[serde(default, rename = "continue")]
    pub continue_matching: bool,
    /// Send notices when alerts resolve. Default true.
    pub send_resolved: Option<bool>,
    /// Members of this route's receiver that receive RED alerts routed here.
    #[serde(default)]
    pub red_recipients: Vec<String>,
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
}

/// One channel of one subscriber: what the notification log and idempotency keys are per.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChannelId {
    pub subscriber: String,
    pub channel: Channel,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Channel {
    Email,
    /// By the webhook's name.
    Webhook(String),
}

impl fmt::Display for ChannelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.channel {
            Channel::Email => write!(f, "{}/email", self.subscriber),
            Channel::Webhook(name) => write!(f, "{}/webhook/{name}", self.subscriber),
        }
    }
}

impl FromStr for ChannelId {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let channel = match text.split('/').collect::<Vec<_>>()[..] {
            [subscriber, "email"] => Some((subscriber, Channel::Email)),
            [subscriber, "webhook", name] => Some((subscriber, Channel::Webhook(name.to_owned()))),
            _ => None,
        };
        match channel {
            Some((subscriber, channel)) if is_id(subscriber) => Ok(Self {
                subscriber: subscriber.to_owned(),
                channel,
            }),
            _ => Err(format!(
                "{text:?} is not a channel: write SUBSCRIBER/email or SUBSCRIBER/webhook/NAME"
            )),
        }
    }
}

impl Serialize for ChannelId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ChannelId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// The checked subscriptions file.
#[derive(Debug, Clone)]
pub struct Subscriptions {
    subscribers: Vec<Subscriber>,
    receivers: Vec<Receiver>,
    routes: RouteTree,
    inhibit_rules: Vec<InhibitRule>,
}

impl Subscriptions {
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::SubscriptionsRead {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml(&text)
    }

    /// Parses and checks a subscriptions file, reporting every problem found.
    pub fn from_toml(text: &str) -> Result<Self, Error> {
        let mut problems = Problems::default();
        let mut table: toml::Table = match text.parse() {
            Ok(table) => table,
            Err(e) => {
                let at = e
                    .span()
                    .map(|s| format!("line {}", 1 + text[..s.start].matches('\n').count()))
                    .unwrap_or_else(|| "file".to_owned());
                problems.push(at, e.message().to_owned());
                return Err(Error::Subscriptions(problems));
            }
        };
        let subscribers = list(&mut table, "subscribers", &mut problems);
        let receivers = list(&mut table, "receivers", &mut problems);
        let inhibit_rules = list(&mut table, "inhibit_rules", &mut problems);
        let route: Option<RouteConfig> = match table.remove("route") {
            Some(value) => parse(value, "route", &mut problems),
            None => {
                problems.push(
                    "route",
                    "missing: the root route says where every alert goes",
                );
                None
            }
        };
        for unknown in table.keys() {
            problems.push(unknown.clone(), "unknown section");
        }
        // References between sections are only worth checking once each section parsed.
        let Some(route) = route.filter(|_| problems.is_empty()) else {
            return Err(Error::Subscriptions(problems));
        };
        check::all(
            &subscribers,
            &receivers,
            &route,
            &inhibit_rules,
            &mut problems,
        );
        if !problems.is_empty() {
            return Err(Error::Subscriptions(problems));
        }
        Ok(Self {
            subscribers,
            receivers,
            routes: RouteTree::new(&route),
            inhibit_rules,
        })
    }

    pub fn subscribers(&self) -> &[Subscriber] {
        &self.subscribers
    }

    pub fn subscriber(&self, id: &str) -> Option<&Subscriber> {
        self.subscribers.iter().find(|s| s.id == id)
    }

    pub fn receivers(&self) -> &[Receiver] {
        &self.receivers
    }

    pub fn receiver(&self, name: &str) -> Option<&Receiver> {
        self.receivers.iter().find(|r| r.name == name)
    }

    pub fn routes(&self) -> &RouteTree {
        &self.routes
    }

    pub fn inhibit_rules(&self) -> &[InhibitRule] {
        &self.inhibit_rules
    }

    /// Every channel a receiver reaches, each once, in a stable order.
    pub fn channels(&self, receiver: &str) -> Vec<ChannelId> {
        let Some(receiver) = self.receiver(receiver) else {
            return Vec::new();
        };
        let mut channels: Vec<ChannelId> = (receiver.subscribers.iter())
            .filter_map(|id| self.subscriber(id))
            .flat_map(channels_of)
            .chain(receiver.channels.iter().cloned())
            .collect();
        channels.sort();
        channels.dedup();
        channels
    }

    pub fn email(&self, channel: &ChannelId) -> Option<&EmailChannel> {
        let subscriber = self.subscriber(&channel.subscriber)?;
        match channel.channel {
            Channel::Email => subscriber.email.as_ref(),
            Channel::Webhook(_) => None,
        }
    }

    pub fn webhook(&self, channel: &ChannelId) -> Option<&WebhookChannel> {
        let subscriber = self.subscriber(&channel.subscriber)?;
        match &channel.channel {
            Channel::Webhook(name) => subscriber.webhooks.iter().find(|w| &w.name == name),
            Channel::Email => None,
        }
    }
}

fn channels_of(subscriber: &Subscriber) -> Vec<ChannelId> {
    let id = |channel| ChannelId {
        subscriber: subscriber.id.clone(),
        channel,
    };
    (subscriber.email.iter().map(|_| id(Channel::Email)))
        .chain((subscriber.webhooks.iter()).map(|w| id(Channel::Webhook(w.name.clone()))))
        .collect()
}

/// An array-of-tables section, each element parsed on its own so a mistake in one does
/// not hide the mistakes in the others.
fn list<T: DeserializeOwned>(
    table: &mut toml::Table,
    name: &str,
    problems: &mut Problems,
) -> Vec<T> {
    match table.remove(name) {
        None => Vec::new(),
        Some(toml::Value::Array(items)) => (items.into_iter().enumerate())
            .filter_map(|(i, item)| parse(item, &format!("{name}[{i}]"), problems))
            .collect(),
        Some(_) => {
            problems.push(name, format!("expected a list: write [[{name}]] sections"));
            Vec::new()
        }
    }
}

fn parse<T: DeserializeOwned>(
    value: toml::Value,
    path: &str,
    problems: &mut Problems,
) -> Option<T> {
    match serde_path_to_error::deserialize(value) {
        Ok(parsed) => Some(parsed),
        Err(e) => {
            let inner = e.path().to_string();
            let at = match inner.as_str() {
                "." => path.to_owned(),
                index if index.starts_with('[') => format!("{path}{index}"),
                _ => key(path, &inner),
            };
            problems.push(at, e.into_inner().message().to_owned());
            None
        }
    }
}

/// Subscriber ids and webhook names: they go into channel ids, logs and metrics.
fn is_id(text: &str) -> bool {
    text.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

mod check;
#[cfg(test)]
mod tests;

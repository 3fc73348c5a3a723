//! The one error type of the notifier crate: what can go wrong reading subscriptions and
//! silences (routing), and, as the channels grow, delivering.

use relec_plumbing::config::Problems;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("cannot read subscriptions file {path}: {source}")]
    SubscriptionsRead {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// Every problem in the subscriptions file at once, each with its key path.
    #[error("invalid subscriptions:\n{0}")]
    Subscriptions(Problems),
    /// A silence that cannot be applied, each problem with its field path.
    #[error("invalid silence:\n{0}")]
    Silence(Problems),
    #[error("invalid matcher {matcher:?}: {reason}")]
    Matcher { matcher: String, reason: String },
}

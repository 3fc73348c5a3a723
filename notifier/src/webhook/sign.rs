//! Standard Webhooks signatures (standardwebhooks.com): the sender signs
//! `{webhook-id}.{webhook-timestamp}.{body}` with HMAC-SHA256 and sends
//! `webhook-signature: v1,<base64>`; [`verify`] is the receiving side, used by the tests
//! and by receivers built on this crate.

use std::{
    fmt,
    time::{Duration, SystemTime},
};

use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use reqwest::header::HeaderMap;
use sha2::Sha256;

pub const HEADER_ID: &str = "webhook-id";
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
pub const HEADER_SIGNATURE: &str = "webhook-signature";
/// The same value as `webhook-id`, under the name many HTTP APIs use for deduplication.
pub const HEADER_IDEMPOTENCY_KEY: &str = "idempotency-key";

/// How far a request's timestamp may be from the receiver's clock, either way: the
/// specification's recommendation, long enough for clock skew, short enough to make a
/// captured request useless for replay soon.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// The specification's prefix of a base64-encoded secret.
const SECRET_PREFIX: &str = "whsec_";

/// A signing key. Written as the specification prescribes, `whsec_` followed by the key
/// in base64; any other string is taken as the key bytes themselves, so a receiver that
/// only knows "a shared string" still interoperates.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(Vec<u8>);

impl WebhookSecret {
    /// Reads `text`, failing only on a `whsec_` secret whose key is not valid base64.
    pub fn parse(text: &str) -> Result<Self, base64::DecodeError> {
        match text.strip_prefix(SECRET_PREFIX) {
            Some(encoded) => STANDARD.decode(encoded).map(Self),
            None => Ok(Self(text.as_bytes().to_vec())),
        }
    }

    /// The key bytes' length, for checking a minimum strength.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn mac(&self, id: &str, timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }

    /// The `webhook-signature` value for a message: `v1,<base64 of the HMAC>`.
    pub fn sign(&self, id: &str, timestamp: u64, body: &[u8]) -> String {
        let tag = self
            .mac(id, &timestamp.to_string(), body)
            .finalize()
            .into_bytes();
        format!("v1,{}", STANDARD.encode(tag))
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

/// Why a received webhook is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("header {0} is missing or not text")]
    MissingHeader(&'static str),
    #[error("webhook-timestamp is not a number of seconds since the epoch")]
    BadTimestamp,
    #[error("webhook-timestamp is {seconds} s away from now, more than the tolerance")]
    Stale { seconds: u64 },
    #[error("no v1 signature matches the body")]
    NoMatch,
}

/// Checks a received request: the timestamp within `tolerance` of `now` (replays of old
/// requests fail) and one of the space-separated `v1,` signatures matching, compared in
/// constant time. Several signatures are allowed so a sender can rotate its secret.
pub fn verify(
    secret: &WebhookSecret,
    headers: &HeaderMap,
    body: &[u8],
    now: SystemTime,
    tolerance: Duration,
) -> Result<(), VerifyError> {
    let header = |name: &'static str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .ok_or(VerifyError::MissingHeader(name))
    };
    let id = header(HEADER_ID)?;
    let timestamp = header(HEADER_TIMESTAMP)?;
    let signatures = header(HEADER_SIGNATURE)?;

    let sent: u64 = timestamp.parse().map_err(|_| VerifyError::BadTimestamp)?;
    let now = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let seconds = now.abs_diff(sent);
    if seconds > tolerance.as_secs() {
        return Err(VerifyError::Stale { seconds });
    }

    let mac = secret.mac(id, timestamp, body);
    let matches = signatures
        .split(' ')
        .filter_map(|s| s.strip_prefix("v1,"))
        .filter_map(|s| STANDARD.decode(s).ok())
        .any(|tag| mac.clone().verify_slice(&tag).is_ok());
    if matches {
        Ok(())
    } else {
        Err(VerifyError::NoMatch)
    }
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    /// The example of the Standard Webhooks specification.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TIMESTAMP: u64 = 1_614_265_330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn at(seconds: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(seconds)
    }

    fn headers(signature: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(HEADER_ID, HeaderValue::from_static(ID));
        headers.insert(HEADER_TIMESTAMP, TIMESTAMP.to_string().parse().unwrap());
        headers.insert(HEADER_SIGNATURE, signature.parse().unwrap());
        headers
    }

    #[test]
    fn signs_the_specification_example() {
        let secret = WebhookSecret::parse(SECRET).expect("valid");
        assert_eq!(secret.sign(ID, TIMESTAMP, BODY), SIGNATURE);
        assert_eq!(
            verify(
                &secret,
                &headers(SIGNATURE),
                BODY,
                at(TIMESTAMP),
                DEFAULT_TOLERANCE
            ),
            Ok(())
        );
    }

    #[test]
    fn raw_secrets_are_their_own_bytes() {
        let raw = WebhookSecret::parse("a shared string of 32 characters").expect("valid");
        assert_eq!(raw.len(), 32);
        assert!(WebhookSecret::parse("whsec_not base64!").is_err());
        assert!(!format!("{raw:?}").contains("shared"));
    }

    #[test]
    fn tampering_fails() {
        let secret = WebhookSecret::parse(SECRET).expect("valid");
        let now = at(TIMESTAMP);
        let check = |headers: &HeaderMap, body: &[u8]| {
            verify(&secret, headers, body, now, DEFAULT_TOLERANCE)
        };
        assert_eq!(
            check(&headers(SIGNATURE), br#"{"test": 2432232315}"#),
            Err(VerifyError::NoMatch)
        );
        let mut other_id = headers(SIGNATURE);
        other_id.insert(HEADER_ID, HeaderValue::from_static("msg_other"));
        assert_eq!(check(&other_id, BODY), Err(VerifyError::NoMatch));
        let other_key = WebhookSecret::parse("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAA").unwrap();
        let forged = other_key.sign(ID, TIMESTAMP, BODY);
        assert_eq!(check(&headers(&forged), BODY), Err(VerifyError::NoMatch));
        assert_eq!(check(&headers("v2,abc"), BODY), Err(VerifyError::NoMatch));
        let mut missing = headers(SIGNATURE);
        missing.remove(HEADER_SIGNATURE);
        assert_eq!(
            check(&missing, BODY),
            Err(VerifyError::MissingHeader(HEADER_SIGNATURE))
        );
    }

    #[test]
    fn stale_and_future_timestamps_fail() {
        let secret = WebhookSecret::parse(SECRET).expect("valid");
        let check = |now| {
            verify(
                &secret,
                &headers(SIGNATURE),
                BODY,
                at(now),
                DEFAULT_TOLERANCE,
            )
        };
        assert_eq!(check(TIMESTAMP + 300), Ok(()));
        assert_eq!(
            check(TIMESTAMP + 301),
            Err(VerifyError::Stale { seconds: 301 })
        );
        assert_eq!(
            check(TIMESTAMP - 301),
            Err(VerifyError::Stale { seconds: 301 })
        );
        let mut bad = headers(SIGNATURE);
        bad.insert(HEADER_TIMESTAMP, HeaderValue::from_static("2021-02-25"));
        assert_eq!(
            verify(&secret, &bad, BODY, at(TIMESTAMP), DEFAULT_TOLERANCE),
            Err(VerifyError::BadTimestamp)
        );
    }

    #[test]
    fn any_of_several_signatures_may_match() {
        let secret = WebhookSecret::parse(SECRET).expect("valid");
        let rotated = format!("v1,bm9wZQ== {SIGNATURE}");
        assert_eq!(
            verify(
                &secret,
                &headers(&rotated),
                BODY,
                at(TIMESTAMP),
                DEFAULT_TOLERANCE
            ),
            Ok(())
        );
    }
}

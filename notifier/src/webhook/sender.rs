//! Webhook delivery with reqwest: one signed POST per attempt, and what the receiver's
//! answer means for the retry policy (2xx delivered; 5xx, 408, 429 and network failures
//! retried, honouring Retry-After; any other answer final).

use std::time::{Duration, SystemTime};

use reqwest::{
    Client, StatusCode,
    header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER},
    redirect,
};

use super::{
    Error, WebhookOptions, body,
    sign::{HEADER_ID, HEADER_IDEMPOTENCY_KEY, HEADER_SIGNATURE, HEADER_TIMESTAMP, WebhookSecret},
};
use crate::{Notification, retry::Outcome, subscriptions::WebhookChannel};

/// Sends notifications to webhooks; one per process, its connection pool shared by all.
#[derive(Debug, Clone)]
pub struct WebhookSender {
    client: Client,
    options: WebhookOptions,
}

impl WebhookSender {
    pub fn new(options: WebhookOptions) -> Result<Self, Error> {
        let client = Client::builder()
            .user_agent(concat!("relec-notifier/", env!("CARGO_PKG_VERSION")))
            // A redirected POST may turn into a GET or land on another host with the
            // signed body: a receiver that moved must be reconfigured, not followed.
            .redirect(redirect::Policy::none())
            .build()
            .map_err(Error::Client)?;
        Ok(Self { client, options })
    }

    /// POSTs `notification` to `channel` in its format, signed, with `now` as the
    /// webhook timestamp. Never fails: what went wrong is in the outcome.
    pub async fn send(
        &self,
        channel: &WebhookChannel,
        notification: &Notification,
        now: SystemTime,
    ) -> Outcome {
        let request = match self.request(channel, notification, now) {
            Ok(request) => request,
            Err(e) => return Outcome::permanent(format!("webhook: {e}")),
        };
        match request.send().await {
            Ok(response) => classify(response.status(), response.headers(), now),
            Err(e) => classify_error(&e),
        }
    }

    fn request(
        &self,
        channel: &WebhookChannel,
        notification: &Notification,
        now: SystemTime,
    ) -> Result<reqwest::RequestBuilder, Error> {
        let (headers, body) = self.signed(channel, notification, now)?;
        Ok(self
            .client
            .post(&channel.url)
            .headers(headers)
            .timeout(channel.timeout)
            .body(body))
    }

    /// The headers (content type, Standard Webhooks id, timestamp and signature, the
    /// channel's extra headers) and body of the POST that [`WebhookSender::send`] makes,
    /// for the outbox to write as they are.
    pub fn signed(
        &self,
        channel: &WebhookChannel,
        notification: &Notification,
        now: SystemTime,
    ) -> Result<(HeaderMap, Vec<u8>), Error> {
        let secret = WebhookSecret::parse(channel.secret.expose()).map_err(Error::InvalidSecret)?;
        let (body, content_type) = body(channel.format, notification, &self.options)?;
        let id = notification.idempotency_key.as_str();
        let timestamp = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let signature = secret.sign(id, timestamp, &body);

        let mut headers = HeaderMap::new();
        for (name, value) in &channel.headers {
            let name = HeaderName::try_from(name.as_str())
                .map_err(|_| Error::InvalidHeader(name.clone()))?;
            let value = HeaderValue::try_from(value.as_str())
                .map_err(|_| Error::InvalidHeader(name.to_string()))?;
            headers.insert(name, value);
        }
        // Inserted last, so an extra header can never replace them.
        let id_value =
            HeaderValue::try_from(id).map_err(|_| Error::InvalidHeader(HEADER_ID.into()))?;
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers.insert(HEADER_ID, id_value.clone());
        headers.insert(HEADER_IDEMPOTENCY_KEY, id_value);
        headers.insert(HEADER_TIMESTAMP, HeaderValue::from(timestamp));
        headers.insert(
            HEADER_SIGNATURE,
            HeaderValue::try_from(signature).expect("base64 is a valid header value"),
        );

        Ok((headers, body))
    }
}

/// What a receiver's answer means for the retry policy.
pub fn classify(status: StatusCode, headers: &HeaderMap, now: SystemTime) -> Outcome {
    let reason = format!("webhook: HTTP {status}");
    if status.is_success() {
        Outcome::Delivered
    } else if status.is_server_error()
        || status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
    {
        let after = headers
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| retry_after(v, now));
        Outcome::Retry { after, reason }
    } else if status.is_redirection() {
        Outcome::permanent(format!("{reason} (redirects are not followed)"))
    } else {
        Outcome::permanent(reason)
    }
}

/// Failures before an answer: timeouts and connection trouble are worth retrying; a
/// request that cannot even be built (a bad URL) is not.
pub fn classify_error(error: &reqwest::Error) -> Outcome {
    // The URL may hold a token in its query: keep it out of the reason, which is logged.
    let reason = if error.is_timeout() {
        "webhook: timed out".to_owned()
    } else {
        format!("webhook: {}", error_chain(error))
    };
    if error.is_builder() {
        Outcome::permanent(reason)
    } else {
        Outcome::retry(reason)
    }
}

fn error_chain(error: &reqwest::Error) -> String {
    let mut text = if error.is_connect() {
        "cannot connect".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A Retry-After value: delay-seconds, or an HTTP-date (RFC 9110 §10.2.3), relative to
/// `now`. A date in the past means "now".
pub fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(seconds)
    }

    #[test]
    fn retry_after_takes_seconds_or_a_date() {
        let now = at(1_714_543_200); // Wed, 01 May 2024 06:00:00 GMT
        assert_eq!(retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            retry_after("Wed, 01 May 2024 06:01:30 GMT", now),
            Some(Duration::from_secs(90))
        );
        assert_eq!(
            retry_after("Wed, 01 May 2024 05:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after("soon", now), None);
        assert_eq!(retry_after("-5", now), None);
    }

    #[test]
    fn statuses_are_classified() {
        let now = at(0);
        let mut headers = HeaderMap::new();
        let outcome = |status: u16, headers: &HeaderMap| {
            classify(StatusCode::from_u16(status).unwrap(), headers, now)
        };
        for ok in [200, 201, 202, 204] {
            assert_eq!(outcome(ok, &headers), Outcome::Delivered);
        }
        for again in [500, 502, 503, 504, 408, 429] {
            assert!(matches!(
                outcome(again, &headers),
                Outcome::Retry { after: None, .. }
            ));
        }
        for fatal in [400, 401, 403, 404, 410, 413, 422, 301, 302] {
            assert!(
                matches!(outcome(fatal, &headers), Outcome::Permanent { .. }),
                "{fatal}"
            );
        }
        headers.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(
            outcome(503, &headers),
            Outcome::Retry {
                after: Some(Duration::from_secs(7)),
                reason: "webhook: HTTP 503 Service Unavailable".into()
            }
        );
    }
}

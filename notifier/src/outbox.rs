//! The outbox, at the end of the notifier where the channels would send: with
//! `notifier.outbox` set, each notification is written to a directory instead, so the
//! zero-setup `relec run` shows what National Contact Points would receive without a mail
//! server or an endpoint. Emails are RFC 5322 `.eml` files, the very message SMTP would
//! carry; webhook POSTs are their body (`.json` or `.xml`) beside a `.headers` file with
//! the URL and the signed headers.
//!
//! Layout: `DIR/<subscriber>/<time>-<rule>-<key>.<ext>`, where the time is when the newest
//! alert of the notification was generated and the key starts the idempotency key, so a
//! retried delivery writes the same file again instead of a second one.

use std::{
    io::Write,
    path::{Path, PathBuf},
};

use reqwest::header::{CONTENT_TYPE, HeaderMap};

use crate::{
    Error, Notification,
    retry::Outcome,
    subscriptions::{Channel, ChannelId},
};

/// Hex digits of the idempotency key in a file name: enough to tell notifications apart.
const KEY_DIGITS: usize = 12;

/// Where notifications are written instead of sent.
#[derive(Debug, Clone)]
pub struct Outbox {
    dir: PathBuf,
}

impl Outbox {
    /// Creates `dir` if it is missing.
    pub fn new(dir: &Path) -> Result<Self, Error> {
        std::fs::create_dir_all(dir).map_err(|source| Error::Outbox {
            path: dir.display().to_string(),
            source,
        })?;
        Ok(Self {
            dir: dir.to_owned(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes `message` (the formatted email) for `channel` as an `.eml` file.
    pub async fn email(
        &self,
        channel: &ChannelId,
        notification: &Notification,
        message: Vec<u8>,
    ) -> Outcome {
        let path = self.path(channel, notification, "eml");
        write_all(vec![(path, message)]).await
    }

    /// Writes a webhook POST to `url`: its body, and its headers in a file beside it.
    pub async fn webhook(
        &self,
        channel: &ChannelId,
        notification: &Notification,
        url: &str,
        headers: &HeaderMap,
        body: Vec<u8>,
    ) -> Outcome {
        let content_type = (headers.get(CONTENT_TYPE))
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let ext = if content_type.contains("xml") {
            "xml"
        } else {
            "json"
        };
        let mut head = format!("POST {url}\r\n");
        for (name, value) in headers {
            head.push_str(&format!(
                "{name}: {}\r\n",
                String::from_utf8_lossy(value.as_bytes())
            ));
        }
        // The body last: whoever watches the directory sees the headers before it.
        write_all(vec![
            (
                self.path(channel, notification, "headers"),
                head.into_bytes(),
            ),
            (self.path(channel, notification, ext), body),
        ])
        .await
    }

    fn path(&self, channel: &ChannelId, notification: &Notification, ext: &str) -> PathBuf {
        let newest = (notification.alerts.iter())
            .map(|a| a.generated_at)
            .max()
            .unwrap_or(0);
        let time = chrono::DateTime::from_timestamp_millis(newest)
            .map(|t| t.format("%Y%m%dT%H%M%S%.3fZ").to_string())
            .unwrap_or_else(|| newest.to_string());
        let rule = (notification.alerts.first()).map_or("alert", |a| a.rule_id.as_str());
        let key = (notification.idempotency_key.get(..KEY_DIGITS))
            .unwrap_or(&notification.idempotency_key);
        let kind = match &channel.channel {
            Channel::Email => "email".to_owned(),
            Channel::Webhook(name) => format!("webhook-{name}"),
        };
        self.dir.join(safe(&channel.subscriber)).join(format!(
            "{time}-{}-{}-{key}.{ext}",
            safe(rule),
            safe(&kind)
        ))
    }
}

/// Names from the subscriptions and rules are plain already; this keeps any other
/// character out of a path.
fn safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Writes each file whole under a temporary name and renames it into place, so a reader
/// never sees half a message.
async fn write_all(files: Vec<(PathBuf, Vec<u8>)>) -> Outcome {
    let written = tokio::task::spawn_blocking(move || -> Result<(), String> {
        for (path, bytes) in files {
            let fail = |e: std::io::Error| format!("outbox: cannot write {}: {e}", path.display());
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(fail)?;
            }
            let partial = path.with_extension("partial");
            let mut file = std::fs::File::create(&partial).map_err(fail)?;
            file.write_all(&bytes).map_err(fail)?;
            file.sync_all().map_err(fail)?;
            std::fs::rename(&partial, &path).map_err(fail)?;
        }
        Ok(())
    })
    .await;
    match written {
        Ok(Ok(())) => Outcome::Delivered,
        Ok(Err(reason)) => Outcome::retry(reason),
        Err(e) => Outcome::retry(format!("outbox: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use relec_schemas::{AlertStatus, Tlp};
    use reqwest::header::HeaderValue;

    use super::*;
    use crate::testkit::alert;

    fn notification() -> Notification {
        Notification {
            subscriber: "irn-ncp".into(),
            receiver: "all".into(),
            group_key: "{}:{}".into(),
            group_labels: Default::default(),
            status: AlertStatus::Firing,
            handling: Tlp::Green,
            idempotency_key: "0123456789abcdef0123".into(),
            alerts: vec![alert("fp", &[("route", "IRN-TUR-VAN")])],
        }
    }

    fn files(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .expect("subscriber dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[tokio::test]
    async fn a_retried_delivery_writes_the_same_files_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outbox = Outbox::new(&dir.path().join("outbox")).expect("outbox");
        let channel: ChannelId = "irn-ncp/email".parse().expect("channel");
        let n = notification();
        for _ in 0..2 {
            let outcome = outbox
                .email(&channel, &n, b"Subject: x\r\n\r\nbody".to_vec())
                .await;
            assert_eq!(outcome, Outcome::Delivered);
        }
        let names = files(&outbox.dir().join("irn-ncp"));
        assert_eq!(names.len(), 1, "{names:?}");
        assert!(names[0].ends_with("-email-0123456789ab.eml"), "{names:?}");
    }

    #[tokio::test]
    async fn a_webhook_is_its_body_and_its_headers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outbox = Outbox::new(dir.path()).expect("outbox");
        let channel: ChannelId = "irn-ncp/webhook/soc".parse().expect("channel");
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/xml"));
        headers.insert("webhook-id", HeaderValue::from_static("k"));
        let outcome = outbox
            .webhook(
                &channel,
                &notification(),
                "https://soc.example/x",
                &headers,
                b"<alert/>".to_vec(),
            )
            .await;
        assert_eq!(outcome, Outcome::Delivered);
        let sub = dir.path().join("irn-ncp");
        let names = files(&sub);
        assert_eq!(names.len(), 2, "{names:?}");
        let head = names
            .iter()
            .find(|n| n.ends_with(".headers"))
            .expect("headers");
        let body = names.iter().find(|n| n.ends_with(".xml")).expect("body");
        assert!(body.contains("-webhook-soc-"), "{body}");
        let head = std::fs::read_to_string(sub.join(head)).expect("read");
        assert!(head.starts_with("POST https://soc.example/x\r\n"), "{head}");
        assert!(head.contains("webhook-id: k\r\n"), "{head}");
        assert_eq!(std::fs::read(sub.join(body)).expect("read"), b"<alert/>");
    }
}

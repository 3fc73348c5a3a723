//! Golden files of rendered alert emails (subject, text and HTML parts) in English,
//! Persian, Bengali and Turkish, and a MIME round trip of every locale through lettre and
//! mail-parser. `UPDATE_GOLDEN=1 cargo test -p relec-notifier --test email_golden`
//! rewrites the goldens.

mod common;

use std::time::{Duration, SystemTime};

use lettre::message::Mailbox;
use mail_parser::MessageParser;
use relec_notifier::email::{Templates, message, message_id, render};

#[test]
fn rendered_emails_match_the_golden_files() {
    let templates = Templates::built_in();
    let notification = common::sample();
    for locale in ["en", "fa", "bn", "tr"] {
        let rendered = render(&templates, &notification, locale).expect("renders");
        let text = format!("Subject: {}\n\n{}", rendered.subject, rendered.text);
        common::assert_golden(&format!("email/{locale}.txt"), &text);
        common::assert_golden(&format!("email/{locale}.html"), &rendered.html);
    }
}

#[test]
fn subjects_carry_tlp_severity_rules_route_and_status() {
    let templates = Templates::built_in();
    let notification = common::sample();
    let subject = |locale| {
        render(&templates, &notification, locale)
            .expect("renders")
            .subject
    };
    assert_eq!(
        subject("en"),
        "TLP:AMBER [CRITICAL] route_spike, death_or_missing, route_shift: IRN-TUR-VAN \
         — firing (3 alerts)"
    );
    assert!(
        subject("fa").ends_with("— فعال (3 هشدار)"),
        "{}",
        subject("fa")
    );
    assert!(
        subject("bn").ends_with("— সক্রিয় (3 সতর্কতা)"),
        "{}",
        subject("bn")
    );
    assert!(
        subject("tr").ends_with("— etkin (3 uyarı)"),
        "{}",
        subject("tr")
    );
}

/// Every locale's message, encoded by lettre, decodes back to exactly what was rendered:
/// the RFC 2047 subject, both parts in UTF-8, and the language and direction.
#[test]
fn every_locale_survives_mime_encoding() {
    let templates = Templates::built_in();
    let notification = common::sample();
    let from: Mailbox = "RELEC Early Warning <alerts@relec.example>"
        .parse()
        .expect("address");
    let to: Mailbox = "NCP Türkiye <ncp@example.org>".parse().expect("address");
    let date = SystemTime::UNIX_EPOCH + Duration::from_secs(1_714_543_260);
    for locale in templates.locale_ids() {
        let rendered = render(&templates, &notification, locale).expect("renders");
        let id = message_id(&notification, "relec.example");
        let email =
            message(&rendered, &from, std::slice::from_ref(&to), &id, date).expect("builds");
        let raw = email.formatted();
        // Every non-ASCII header word is RFC 2047-encoded and the bodies are
        // transfer-encoded, so the message crosses any relay, 8BITMIME or not.
        assert!(raw.is_ascii(), "{locale}");
        let raw_subject = mail_parser::MessageParser::default()
            .parse_headers(&raw)
            .and_then(|m| m.header_raw("Subject").map(str::to_owned))
            .expect("a Subject header");
        assert!(
            raw_subject.contains("=?utf-8?b?"),
            "{locale}: {raw_subject}"
        );

        let parsed = MessageParser::default().parse(&raw).expect("parses");
        assert_eq!(
            parsed.subject(),
            Some(rendered.subject.as_str()),
            "{locale}"
        );
        // Text travels with CRLF line ends, MIME's canonical form.
        let lf = |text: std::borrow::Cow<str>| text.replace("\r\n", "\n");
        assert_eq!(
            parsed.body_text(0).map(lf),
            Some(rendered.text.clone()),
            "{locale}"
        );
        assert_eq!(
            parsed.body_html(0).map(lf),
            Some(rendered.html.clone()),
            "{locale}"
        );
        assert_eq!(parsed.message_id(), Some(id.trim_matches(['<', '>'])));
        assert_eq!(
            parsed.header_raw("Content-Language").map(str::trim),
            Some(rendered.lang.as_str())
        );
        assert_eq!(parsed.date().map(|d| d.to_timestamp()), Some(1_714_543_260));
        let rtl = matches!(locale, "fa" | "ps" | "prs" | "ar" | "ku" | "ur");
        assert_eq!(rendered.html.contains("dir=\"rtl\""), rtl, "{locale}");
    }
}

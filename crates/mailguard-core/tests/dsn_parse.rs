//! DSN parser against realistic Postfix and Exim bounces (tests/dsn_fixtures/).

use mailguard_core::dsn::{self, Action, DsnError, DsnOptions, EnhancedStatus};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/dsn_fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn crlf(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 20);
    for &b in raw {
        if b == b'\n' {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

fn status(s: &str) -> EnhancedStatus {
    EnhancedStatus::parse(s).unwrap()
}

#[test]
fn postfix_user_unknown() {
    let dsn = dsn::parse(&fixture("postfix_user_unknown.eml")).unwrap();
    assert_eq!(dsn.envelope_id, None);
    assert_eq!(dsn.verp_id.as_deref(), Some("01HQ3K9Z8XB4"));
    assert_eq!(dsn.header_id.as_deref(), Some("01HQ3K9Z8XB4"));
    assert_eq!(dsn.message_id(), Some("01HQ3K9Z8XB4"));
    assert_eq!(dsn.reporting_mta.as_deref(), Some("mail.shop.example.com"));
    assert_eq!(
        dsn.arrival_date.as_deref(),
        Some("Tue, 14 May 2024 10:12:01 +0200 (CEST)")
    );
    assert_eq!(dsn.recipients.len(), 1);
    let r = &dsn.recipients[0];
    assert_eq!(r.final_recipient, "nobody@example.org");
    assert_eq!(r.original_recipient.as_deref(), Some("nobody@example.org"));
    assert_eq!(r.action, Action::Failed);
    assert_eq!(r.status, status("5.1.1"));
    assert!(r.status.is_permanent());
    assert_eq!(r.remote_mta.as_deref(), Some("mx1.example.org"));
    assert_eq!(r.diagnostic_type.as_deref(), Some("smtp"));
    // The folded Diagnostic-Code comes back on one line.
    assert_eq!(
        r.diagnostic.as_deref(),
        Some(
            "550 5.1.1 <nobody@example.org>: Recipient address rejected: \
             User unknown in virtual mailbox table"
        )
    );
    assert_eq!(r.smtp_code(), Some(550));
    assert_eq!(r.diagnostic_status(), Some(status("5.1.1")));
    assert_eq!(dsn.failed().count(), 1);
}

#[test]
fn postfix_delay_warning_is_not_a_failure() {
    let dsn = dsn::parse(&fixture("postfix_delayed.eml")).unwrap();
    assert_eq!(dsn.message_id(), Some("7Q2M0AA1"));
    assert_eq!(dsn.header_id.as_deref(), Some("7Q2M0AA1"));
    let r = &dsn.recipients[0];
    assert_eq!(r.final_recipient, "reader@slow.example");
    assert_eq!(r.action, Action::Delayed);
    assert_eq!(r.status, status("4.4.1"));
    assert!(r.status.is_transient());
    assert_eq!(r.diagnostic_type.as_deref(), Some("x-postfix"));
    assert_eq!(
        r.diagnostic.as_deref(),
        Some("connect to mx.slow.example[198.51.100.7]:25: Connection timed out")
    );
    // Not an smtp diagnostic: no reply code to read.
    assert_eq!(r.smtp_code(), None);
    assert_eq!(dsn.failed().count(), 0);
}

#[test]
fn exim_two_recipients_and_id_from_returned_message() {
    let dsn = dsn::parse(&fixture("exim_two_failed.eml")).unwrap();
    // The bounce went to a plain address: no VERP id; the returned message has our header.
    assert_eq!(dsn.verp_id, None);
    assert_eq!(dsn.header_id.as_deref(), Some("01HXZC4TQ9"));
    assert_eq!(dsn.message_id(), Some("01HXZC4TQ9"));
    assert_eq!(dsn.reporting_mta.as_deref(), Some("smtp.hoster.example"));
    assert_eq!(dsn.recipients.len(), 2);

    let ghost = &dsn.recipients[0];
    assert_eq!(ghost.final_recipient, "ghost@example.com");
    assert_eq!(ghost.original_recipient, None);
    assert_eq!(ghost.action, Action::Failed);
    // Exim writes 5.0.0 in Status; the reply in the diagnostic is more precise.
    assert_eq!(ghost.status, status("5.0.0"));
    assert_eq!(ghost.smtp_code(), Some(550));
    assert_eq!(ghost.diagnostic_status(), Some(status("5.1.1")));

    let full = &dsn.recipients[1];
    assert_eq!(full.final_recipient, "full@example.net");
    assert_eq!(full.smtp_code(), Some(552));
    assert_eq!(full.diagnostic_status(), Some(status("5.2.2")));
    assert_eq!(full.diagnostic.as_deref(), Some("552 5.2.2 Mailbox full"));
    assert_eq!(dsn.failed().count(), 2);
}

#[test]
fn crlf_and_lf_give_the_same_result() {
    for name in [
        "postfix_user_unknown.eml",
        "postfix_delayed.eml",
        "exim_two_failed.eml",
    ] {
        let lf = fixture(name);
        assert_eq!(
            dsn::parse(&lf).unwrap(),
            dsn::parse(&crlf(&lf)).unwrap(),
            "{name}"
        );
    }
}

#[test]
fn envelope_id_wins_and_is_xtext_decoded() {
    let raw = String::from_utf8(fixture("postfix_user_unknown.eml")).unwrap();
    let raw = raw.replace(
        "X-Postfix-Queue-ID: 3F1A0120B34\n",
        "X-Postfix-Queue-ID: 3F1A0120B34\nOriginal-Envelope-Id: MG+2B01HQ3K9Z8XB4\n",
    );
    let dsn = dsn::parse(raw.as_bytes()).unwrap();
    assert_eq!(dsn.envelope_id.as_deref(), Some("MG+01HQ3K9Z8XB4"));
    assert_eq!(dsn.message_id(), Some("MG+01HQ3K9Z8XB4"));
    assert_eq!(dsn.verp_id.as_deref(), Some("01HQ3K9Z8XB4"));
}

#[test]
fn verp_found_in_returned_return_path_when_the_bounce_headers_lack_it() {
    let raw = String::from_utf8(fixture("postfix_user_unknown.eml")).unwrap();
    let raw = raw
        .replace(
            "Delivered-To: bounces+01HQ3K9Z8XB4@shop.example.com\n",
            "Delivered-To: postmaster@shop.example.com\n",
        )
        .replace(
            "To: bounces+01HQ3K9Z8XB4@shop.example.com\nAuto",
            "To: postmaster@shop.example.com\nAuto",
        )
        .replace("X-MailGuard-Id: 01HQ3K9Z8XB4\n", "");
    let dsn = dsn::parse(raw.as_bytes()).unwrap();
    assert_eq!(dsn.header_id, None);
    assert_eq!(dsn.verp_id.as_deref(), Some("01HQ3K9Z8XB4"));
}

#[test]
fn custom_verp_prefix_and_id_header() {
    let raw = String::from_utf8(fixture("postfix_user_unknown.eml")).unwrap();
    let raw = raw
        .replace("bounces+01HQ3K9Z8XB4@", "mg-return+AAA111@")
        .replace("X-MailGuard-Id: 01HQ3K9Z8XB4", "X-Queue-Ref: BBB222");
    let default = dsn::parse(raw.as_bytes()).unwrap();
    assert_eq!(default.verp_id, None);
    assert_eq!(default.header_id, None);
    assert_eq!(default.message_id(), None);

    let options = DsnOptions {
        verp_prefix: "mg-return".into(),
        id_header: "X-Queue-Ref".into(),
    };
    let custom = dsn::parse_with(raw.as_bytes(), &options).unwrap();
    assert_eq!(custom.verp_id.as_deref(), Some("AAA111"));
    assert_eq!(custom.header_id.as_deref(), Some("BBB222"));
}

#[test]
fn forwarded_bounce_nested_in_a_multipart_is_found() {
    let inner = fixture("postfix_user_unknown.eml");
    let mut outer = b"From: helpdesk@shop.example.com\n\
To: abuse@hoster.example\n\
Subject: Fwd: Undelivered Mail Returned to Sender\n\
MIME-Version: 1.0\n\
Content-Type: multipart/mixed; boundary=\"fwd-1\"\n\
\n\
--fwd-1\n\
Content-Type: text/plain\n\
\n\
see attached\n\
--fwd-1\n\
Content-Type: message/rfc822\n\
\n"
    .to_vec();
    outer.extend_from_slice(&inner);
    outer.extend_from_slice(b"\n--fwd-1--\n");
    let dsn = dsn::parse(&outer).unwrap();
    assert_eq!(dsn.recipients[0].final_recipient, "nobody@example.org");
    assert_eq!(dsn.header_id.as_deref(), Some("01HQ3K9Z8XB4"));
}

#[test]
fn base64_delivery_status_part() {
    let fields = "Reporting-MTA: dns; mx.b64.example\r\n\r\n\
Final-Recipient: rfc822; <gone@b64.example>\r\n\
Action: failed (bad mailbox)\r\n\
Status: 5.1.1 (mailbox unknown)\r\n\
Diagnostic-Code: smtp; 550-5.1.1 The email account that you tried to reach does not exist\r\n";
    let encoded = base64(fields.as_bytes());
    let raw = format!(
        "To: bounces+B64ID@site.example\r\n\
Content-Type: multipart/report; report-type=\"delivery-status\"; boundary=b\r\n\
\r\n\
--b\r\n\
Content-Type: text/plain\r\n\
\r\n\
failed\r\n\
--b\r\n\
Content-Type: message/delivery-status\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
{encoded}\r\n\
--b--\r\n"
    );
    let dsn = dsn::parse(raw.as_bytes()).unwrap();
    assert_eq!(dsn.message_id(), Some("B64ID"));
    let r = &dsn.recipients[0];
    assert_eq!(r.final_recipient, "gone@b64.example");
    assert_eq!(r.action, Action::Failed);
    assert_eq!(r.status, status("5.1.1"));
    assert_eq!(r.smtp_code(), Some(550));
    assert_eq!(r.diagnostic_status(), Some(status("5.1.1")));
}

fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for (i, chunk) in data.chunks(3).enumerate() {
        if i > 0 && i % 19 == 0 {
            out.push_str("\r\n");
        }
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(T[((n >> (18 - 6 * k)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn not_a_dsn() {
    let plain = b"From: a@b.example\nTo: c@d.example\nSubject: hi\n\nhello\n";
    assert_eq!(dsn::parse(plain), Err(DsnError::NotAReport));
    let other_report = b"Content-Type: multipart/report; report-type=disposition-notification; boundary=x\n\n--x\nContent-Type: message/disposition-notification\n\nDisposition: manual-action/MDN-sent-manually; displayed\n--x--\n";
    assert_eq!(dsn::parse(other_report), Err(DsnError::NotAReport));
    assert_eq!(dsn::parse(b""), Err(DsnError::NotAReport));
}

#[test]
fn broken_reports_name_what_is_wrong() {
    let base = String::from_utf8(fixture("exim_two_failed.eml")).unwrap();

    let no_status_part = base.replace(
        "Content-type: message/delivery-status",
        "Content-type: text/plain",
    );
    assert_eq!(
        dsn::parse(no_status_part.as_bytes()),
        Err(DsnError::NoDeliveryStatus)
    );

    let missing = base.replacen("Status: 5.0.0\n", "", 1);
    assert_eq!(
        dsn::parse(missing.as_bytes()),
        Err(DsnError::MissingField("Status"))
    );

    let bad_status = base.replacen("Status: 5.0.0", "Status: 550", 1);
    assert_eq!(
        dsn::parse(bad_status.as_bytes()),
        Err(DsnError::BadStatus("550".into()))
    );

    let bad_action = base.replacen("Action: failed", "Action: exploded", 1);
    assert_eq!(
        dsn::parse(bad_action.as_bytes()),
        Err(DsnError::BadAction("exploded".into()))
    );

    let only_per_message = base.split("Action: failed").next().unwrap().to_string()
        + "\n--1715841082-eximdsn-1804289383--\n";
    assert_eq!(
        dsn::parse(only_per_message.as_bytes()),
        Err(DsnError::NoRecipients)
    );
}

#[test]
fn truncated_and_mangled_input_never_panics() {
    for name in [
        "postfix_user_unknown.eml",
        "postfix_delayed.eml",
        "exim_two_failed.eml",
    ] {
        let raw = fixture(name);
        for cut in (0..raw.len()).step_by(7) {
            let _ = dsn::parse(&raw[..cut]);
        }
        // Invalid UTF-8 and NUL bytes sprinkled through the message.
        let mut mangled = raw.clone();
        for i in (0..mangled.len()).step_by(53) {
            mangled[i] = [0xff, 0x00, 0xc3, b'+', b'='][i % 5];
        }
        let _ = dsn::parse(&mangled);
    }
}

#[test]
fn verp_id_rules() {
    assert_eq!(
        dsn::verp_id("bounces+abc123@x.example", "bounces").as_deref(),
        Some("abc123")
    );
    assert_eq!(
        dsn::verp_id("Shop <Bounces+A.b_c=d-e@x.example>", "bounces").as_deref(),
        Some("A.b_c=d-e")
    );
    assert_eq!(dsn::verp_id("user+abc@x.example", "bounces"), None);
    assert_eq!(dsn::verp_id("bounces+@x.example", "bounces"), None);
    assert_eq!(dsn::verp_id("bounces+abc@", "bounces"), None);
    assert_eq!(dsn::verp_id("bounces+a;b@x.example", "bounces"), None);
    assert_eq!(dsn::verp_id("bounces+a b@x.example", "bounces"), None);
    assert_eq!(dsn::verp_id("bounces@x.example", "bounces"), None);
}

#[test]
fn enhanced_status_codes() {
    let s = status("5.1.1");
    assert_eq!((s.class, s.subject, s.detail), (5, 1, 1));
    assert_eq!(s.to_string(), "5.1.1");
    assert_eq!(status("4.7.0").to_string(), "4.7.0");
    assert!(status("2.0.0").is_success());
    assert_eq!("5.7.26".parse::<EnhancedStatus>().unwrap().detail, 26);
    for bad in [
        "", "5", "5.1", "6.1.1", "5.1.1.1", "5.1000.1", "5.a.1", "5..1", " 5.1.1",
    ] {
        assert_eq!(EnhancedStatus::parse(bad), None, "{bad:?}");
    }
    let (s, rest) = EnhancedStatus::parse_prefix("5.7.1 Message rejected as spam").unwrap();
    assert_eq!((s, rest), (status("5.7.1"), "Message rejected as spam"));
    assert_eq!(EnhancedStatus::parse_prefix("Message rejected"), None);
}

//! `mailguard bounce`: a Postfix-style DSN on stdin is matched to the message it is about
//! and counted like a 5xx; bad or unmatched input is kept, never dropped.

#[path = "runner_harness/mod.rs"]
mod harness;

use harness::{limits, message, run_with_input, text, State};
use mailguard_store::{now, MessageId, Outcome, Status};

/// A message submitted and delivered (as the extension does it for a green account).
fn sent(state: &State, account: &str, bounce: &str, rcpt: &str) -> MessageId {
    let id = state.submit_at(
        account,
        &limits(bounce),
        &[rcpt],
        &message(account, 1, rcpt),
        now(),
    );
    state
        .store()
        .record_delivery(id, &Outcome::Sent { rejected: vec![] }.into(), now())
        .unwrap();
    id
}

/// What Postfix sends back when `rcpt` does not exist; `id_header` is the returned
/// message's `X-MailGuard-Id` line, if any.
fn postfix_dsn(rcpt: &str, id_header: Option<MessageId>) -> Vec<u8> {
    let id_line = id_header
        .map(|id| format!("X-MailGuard-Id: {id}\n"))
        .unwrap_or_default();
    format!(
        "Return-Path: <>\n\
Delivered-To: www@shop.example\n\
Date: Tue, 14 May 2024 10:12:03 +0200 (CEST)\n\
From: MAILER-DAEMON@mail.hosting.test (Mail Delivery System)\n\
Subject: Undelivered Mail Returned to Sender\n\
To: www@shop.example\n\
Auto-Submitted: auto-replied\n\
MIME-Version: 1.0\n\
Content-Type: multipart/report; report-type=delivery-status;\n\
\tboundary=\"3F1A0120B34.1715674323/mail.hosting.test\"\n\
Content-Transfer-Encoding: 8bit\n\
\n\
This is a MIME-encapsulated message.\n\
\n\
--3F1A0120B34.1715674323/mail.hosting.test\n\
Content-Description: Notification\n\
Content-Type: text/plain; charset=utf-8\n\
\n\
<{rcpt}>: host mx1.example.org[203.0.113.25] said: 550 5.1.1 User unknown\n\
\n\
--3F1A0120B34.1715674323/mail.hosting.test\n\
Content-Description: Delivery report\n\
Content-Type: message/delivery-status\n\
\n\
Reporting-MTA: dns; mail.hosting.test\n\
X-Postfix-Queue-ID: 3F1A0120B34\n\
Arrival-Date: Tue, 14 May 2024 10:12:01 +0200 (CEST)\n\
\n\
Final-Recipient: rfc822; {rcpt}\n\
Original-Recipient: rfc822;{rcpt}\n\
Action: failed\n\
Status: 5.1.1\n\
Remote-MTA: dns; mx1.example.org\n\
Diagnostic-Code: smtp; 550 5.1.1 <{rcpt}>: Recipient address\n\
\x20   rejected: User unknown in virtual mailbox table\n\
\n\
--3F1A0120B34.1715674323/mail.hosting.test\n\
Content-Description: Undelivered Message Headers\n\
Content-Type: text/rfc822-headers\n\
\n\
Return-Path: <www@shop.example>\n\
To: {rcpt}\n\
Subject: order 1 from shop\n\
From: shop@shop.example\n\
{id_line}\
\n\
--3F1A0120B34.1715674323/mail.hosting.test--\n"
    )
    .into_bytes()
}

fn bounce(state: &State, input: &[u8]) -> std::process::Output {
    run_with_input(
        &["bounce", "--state-dir", state.dir.to_str().unwrap()],
        input,
    )
}

#[test]
fn a_postfix_dsn_is_matched_by_id_and_counted_once() {
    let state = State::new("bounce-id");
    let id = sent(&state, "shop", "0.1/20/24h", "nobody@example.org");
    let other = sent(&state, "shop", "0.1/20/24h", "nobody@example.org");
    let dsn = postfix_dsn("nobody@example.org", Some(id));
    let out = bounce(&state, &dsn);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("matched by id"),
        "{}",
        text(&out)
    );

    let mut store = state.store();
    let errors = store.errors("shop", 10, 0).unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
    let e = &errors[0];
    assert_eq!(
        e.message_id,
        Some(id),
        "the id header wins over the more recent message"
    );
    assert_eq!(e.recipient, "nobody@example.org");
    assert_eq!(e.code, Some(550));
    assert_eq!(e.enhanced.as_deref(), Some("5.1.1"));
    assert!(
        e.text.contains("User unknown in virtual mailbox table"),
        "{:?}",
        e.text
    );
    assert!(e.text.contains("mail.hosting.test"));
    assert_eq!(e.origin.file.as_deref(), Some("/var/www/shop/contact.php"));
    let snap = store.status_snapshot("shop", now()).unwrap();
    assert_eq!((snap.sent_total, snap.errors_total), (2, 1));
    assert_ne!(other, id);

    // The same DSN again (an MTA retry) is not counted twice.
    let out = bounce(&state, &dsn);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("already counted"));
    assert_eq!(
        state
            .store()
            .status_snapshot("shop", now())
            .unwrap()
            .errors_total,
        1
    );
    assert!(state.store().check_integrity().unwrap().is_ok());
}

#[test]
fn without_an_id_the_recent_message_to_that_recipient_matches_and_the_ratio_trips() {
    let state = State::new("bounce-rcpt");
    let a = sent(&state, "blog", "0.1/2/24h", "gone@example.org");
    let b = sent(&state, "blog", "0.1/2/24h", "alsogone@example.org");
    for rcpt in ["gone@example.org", "alsogone@example.org"] {
        let out = bounce(&state, &postfix_dsn(rcpt, None));
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("matched by recipient"),
            "{}",
            text(&out)
        );
    }
    let mut store = state.store();
    let mut ids: Vec<_> = store
        .errors("blog", 10, 0)
        .unwrap()
        .iter()
        .filter_map(|e| e.message_id)
        .collect();
    ids.sort();
    assert_eq!(ids, vec![a, b]);
    let snap = store.status_snapshot("blog", now()).unwrap();
    assert_eq!(snap.status, Status::Bounce, "2 failed of 2 is over 0.1");
    let t = store.transitions("blog").unwrap();
    assert_eq!(t.last().unwrap().actor, "rule:bounce-ratio");
}

#[test]
fn unmatched_and_unparseable_input_is_kept() {
    let state = State::new("bounce-keep");
    sent(&state, "shop", "0.1/20/24h", "someone@example.org");
    let out = bounce(&state, &postfix_dsn("stranger@example.org", None));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let kept: Vec<_> = std::fs::read_dir(state.dir.join("bounces/unmatched"))
        .unwrap()
        .collect();
    assert_eq!(kept.len(), 1);
    assert_eq!(
        std::fs::read(kept[0].as_ref().unwrap().path()).unwrap(),
        postfix_dsn("stranger@example.org", None)
    );
    assert_eq!(
        state
            .store()
            .status_snapshot("shop", now())
            .unwrap()
            .errors_total,
        0
    );

    let junk = b"From: someone\r\nSubject: hello\r\n\r\nnot a report\r\n";
    let out = bounce(&state, junk);
    assert_eq!(out.status.code(), Some(65), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a delivery-status notification"), "{err}");
    let kept: Vec<_> = std::fs::read_dir(state.dir.join("bounces/unparseable"))
        .unwrap()
        .collect();
    assert_eq!(kept.len(), 1);
    assert_eq!(
        std::fs::read(kept[0].as_ref().unwrap().path()).unwrap(),
        junk
    );

    let out = bounce(&state, b"");
    assert_eq!(out.status.code(), Some(65), "{}", text(&out));
    let out = harness::run(&["bounce", "--nope"]);
    assert_eq!(out.status.code(), Some(64));
}

//! `mailguard track`'s data: a message followed across a retry (with the relay's reply),
//! its delivery and a later bounce; by recipient, by Message-ID and by time.

mod common;

use common::*;
use mailguard_store::{Failure, Limits, Mode, Outcome, Submission, TrackQuery};

#[test]
fn a_message_is_tracked_across_a_retry_and_a_bounce() {
    let mut h = harness();
    let l: Limits = limits("quota= burst=");
    let body = b"To: Someone@Example.net\r\nSubject: Invoice\r\nMessage-ID: <abc.123@shop.example>\r\n\r\nhello\r\n";
    let rcpts = vec!["Someone@Example.net".to_string()];
    let o = origin();
    let a = h
        .store
        .submit(
            "shop",
            &l,
            Submission {
                raw: body,
                envelope_from: "shop@example.org",
                recipients: &rcpts,
                origin: &o,
                spam: None,
            },
            t(0),
            Mode::Enforce,
        )
        .unwrap();
    let id = a.id.unwrap();
    // Another message that must not match.
    submit(&mut h.store, "shop", &l, 7, t(1), Mode::Enforce);
    let temp = Outcome::TempFail {
        code: Some(451),
        enhanced: Some("4.3.0".into()),
        text: "greylisted, try later".into(),
    };
    h.store.record_delivery(id, &temp.into(), t(2)).unwrap();
    h.store
        .record_delivery(id, &Outcome::Sent { rejected: vec![] }.into(), t(400))
        .unwrap();
    h.store
        .record_bounce(
            id,
            &Failure {
                recipient: "someone@example.net".into(),
                code: Some(550),
                enhanced: Some("5.1.1".into()),
                text: "mailbox gone".into(),
            },
            t(900),
        )
        .unwrap();

    let by_rcpt = h
        .store
        .track(
            &TrackQuery {
                recipient: Some("someone@example.NET".into()),
                ..TrackQuery::default()
            },
            10,
        )
        .unwrap();
    assert_eq!(by_rcpt.len(), 1, "{by_rcpt:?}");
    let m = &by_rcpt[0];
    assert_eq!(m.id, id);
    assert_eq!(m.state, "sent");
    assert_eq!(m.message_id.as_deref(), Some("abc.123@shop.example"));
    assert_eq!(m.origin.file.as_deref(), o.file.as_deref());
    let path: Vec<(&str, &str)> = m
        .steps
        .iter()
        .map(|s| (s.what.as_str(), s.detail.as_str()))
        .collect();
    assert_eq!(path[0].0, "accepted");
    assert_eq!(path[1], ("retry", "451 4.3.0 greylisted, try later"));
    assert_eq!(path[2].0, "sent");
    assert_eq!(
        path[3],
        ("bounced", "someone@example.net: 550 5.1.1 mailbox gone")
    );
    assert_eq!(path.len(), 4, "{path:?}");

    let by_id = h
        .store
        .track(
            &TrackQuery {
                message_id: Some("<abc.123@shop.example>".into()),
                ..TrackQuery::default()
            },
            10,
        )
        .unwrap();
    assert_eq!(by_id.len(), 1);
    assert_eq!(by_id[0].id, id);
    let since = h
        .store
        .track(
            &TrackQuery {
                since: Some(t(1)),
                ..TrackQuery::default()
            },
            10,
        )
        .unwrap();
    assert_eq!(since.len(), 1);
    assert_ne!(since[0].id, id);
    // A LIKE wildcard in the address matches nothing by accident.
    let none = h
        .store
        .track(
            &TrackQuery {
                recipient: Some("%".into()),
                ..TrackQuery::default()
            },
            10,
        )
        .unwrap();
    assert!(none.is_empty());
    assert_integrity(&mut h.store);
}

//! The store end to end on one connection: admission, delivery, status changes, reports.

mod common;

use common::*;
use mailguard_store::{
    Action, DeliveryRecord, Failure, MessageState, Mode, Outcome, SpamSummary, Status, Store,
    StoreError, Submission,
};

const A: &str = "shop";

fn sent() -> Outcome {
    Outcome::Sent { rejected: vec![] }
}

fn perm(rcpt: &str) -> Outcome {
    Outcome::PermFail(vec![Failure {
        recipient: rcpt.into(),
        code: Some(550),
        enhanced: Some("5.1.1".into()),
        text: "no such user".into(),
    }])
}

fn temp() -> Outcome {
    Outcome::TempFail {
        code: Some(451),
        enhanced: Some("4.3.0".into()),
        text: "try later".into(),
    }
}

#[test]
fn deliver_now_then_sent_counts_once() {
    let mut h = harness();
    let l = limits("quota=10/1h burst=");
    let a = submit(&mut h.store, A, &l, 1, t(0), Mode::Enforce);
    assert_eq!(a.action, Action::DeliverNow);
    assert_eq!(a.status_after, Status::Active);
    let id = a.id.unwrap();
    let r = h.store.record_delivery(id, &sent().into(), t(1)).unwrap();
    assert_eq!(r.record, DeliveryRecord::Sent);
    // A second report of the same delivery is ignored, not counted twice.
    assert_eq!(
        h.store
            .record_delivery(id, &sent().into(), t(2))
            .unwrap()
            .record,
        DeliveryRecord::Ignored
    );
    let s = h.store.status_snapshot(A, t(3)).unwrap();
    assert_eq!((s.sent_total, s.sent_today, s.queued, s.held), (1, 1, 0, 0));
    assert_eq!(s.limits, l.to_string());
    assert_eq!(s.mode, "enforce");
    let shown = h.store.queue_show(id).unwrap();
    assert_eq!(shown.entry.state, MessageState::Sent);
    assert_eq!(shown.raw, None, "bodies are dropped once sent");
    assert_eq!(shown.origin, origin());
    assert_eq!(shown.entry.subject, "Order 1");
    assert_integrity(&mut h.store);
}

#[test]
fn over_quota_is_queued_and_released_when_the_window_frees() {
    let mut h = harness();
    let l = limits("quota=3/1h burst=");
    for n in 0..3 {
        let a = submit(&mut h.store, A, &l, n, t(n as i64), Mode::Enforce);
        assert_eq!(a.action, Action::DeliverNow);
        h.store
            .record_delivery(a.id.unwrap(), &sent().into(), t(n as i64))
            .unwrap();
    }
    let q = submit(&mut h.store, A, &l, 3, t(10), Mode::Enforce);
    assert_eq!(q.action, Action::Queued { until: t(3600) });
    let q2 = submit(&mut h.store, A, &l, 4, t(11), Mode::Enforce);
    // Queued messages are not releases: both wait for the first slot to free.
    assert_eq!(q2.action, Action::Queued { until: t(3600) });
    // Nothing is due before the window frees.
    assert!(h.store.due(t(3599), 10).unwrap().claimed.is_empty());
    let due = h.store.due(t(3600), 10).unwrap();
    assert_eq!(due.claimed.len(), 1, "one slot freed at 3600");
    assert_eq!(due.claimed[0].id, q.id.unwrap());
    assert_eq!(due.claimed[0].raw, raw(3));
    // The other one's next attempt was moved to when its slot frees.
    let due = h.store.due(t(3601), 10).unwrap();
    assert_eq!(due.claimed.len(), 1);
    assert_eq!(due.claimed[0].id, q2.id.unwrap());
    let s = h.store.status_snapshot(A, t(3601)).unwrap();
    assert_eq!(
        s.queued, 2,
        "claimed messages count as queued until recorded"
    );
    assert_integrity(&mut h.store);
}

#[test]
fn burst_trips_inactive_holds_and_unblock_releases() {
    let mut h = harness();
    let l = limits("quota= burst=3/1m");
    for n in 0..3 {
        assert_eq!(
            submit(&mut h.store, A, &l, n, t(n as i64), Mode::Enforce).action,
            Action::DeliverNow
        );
    }
    let a = submit(&mut h.store, A, &l, 3, t(5), Mode::Enforce);
    assert_eq!(a.action, Action::Held);
    assert_eq!(a.status_after, Status::Inactive);
    assert!(a.trip.as_ref().unwrap().applied);
    // Red: new mail is accepted and held; nothing is due.
    let b = submit(&mut h.store, A, &l, 4, t(6), Mode::Enforce);
    assert_eq!(b.action, Action::Held);
    assert!(h.store.due(t(100), 10).unwrap().claimed.is_empty());
    let tr = h.store.transitions(A).unwrap();
    assert_eq!(tr.len(), 1);
    assert_eq!(
        (
            tr[0].from,
            tr[0].to,
            tr[0].reason.as_str(),
            tr[0].actor.as_str()
        ),
        (
            Status::Active,
            Status::Inactive,
            "burst-limit",
            "rule:burst"
        )
    );
    assert!(
        tr[0].detail.contains("burst limit 3/1m"),
        "{}",
        tr[0].detail
    );
    let s = h.store.status_snapshot(A, t(7)).unwrap();
    assert_eq!((s.held, s.status), (2, Status::Inactive));
    let c = h.store.unblock(A, "alice", t(200)).unwrap();
    assert_eq!(
        (c.from, c.to, c.messages),
        (Status::Inactive, Status::Active, 2)
    );
    let due = h.store.due(t(200), 10).unwrap();
    assert_eq!(due.claimed.len(), 2);
    let tr = h.store.transitions(A).unwrap();
    assert_eq!(tr[1].actor, "operator:alice");
    assert_integrity(&mut h.store);
}

#[test]
fn block_holds_the_queue_and_purge_empties_it() {
    let mut h = harness();
    let l = limits("quota=1/1h burst=");
    submit(&mut h.store, A, &l, 0, t(0), Mode::Enforce);
    let q = submit(&mut h.store, A, &l, 1, t(1), Mode::Enforce);
    assert!(matches!(q.action, Action::Queued { .. }));
    let c = h.store.block(A, "root", t(2)).unwrap();
    assert_eq!((c.to, c.messages), (Status::Inactive, 1));
    assert!(matches!(
        h.store.block(A, "root", t(3)),
        Err(StoreError::Refused { .. })
    ));
    assert_eq!(h.store.status_snapshot(A, t(3)).unwrap().held, 1);
    let p = h.store.purge(A, "root", t(4)).unwrap();
    assert_eq!((p.from, p.to), (Status::Inactive, Status::Active));
    assert_eq!(
        p.messages, 2,
        "the held one and the one still claimed for delivery"
    );
    let s = h.store.status_snapshot(A, t(5)).unwrap();
    assert_eq!((s.queued, s.held, s.status), (0, 0, Status::Active));
    // A late report for a purged message is ignored.
    assert_eq!(
        h.store
            .record_delivery(q.id.unwrap(), &sent().into(), t(6))
            .unwrap()
            .record,
        DeliveryRecord::Ignored
    );
    assert_integrity(&mut h.store);
}

#[test]
fn temp_failures_back_off_then_expire_as_errors() {
    let mut h = harness();
    let l = limits("quota= burst= hold=1h retry=2m/1h/0");
    let id = submit(&mut h.store, A, &l, 0, t(0), Mode::Enforce)
        .id
        .unwrap();
    let mut now = t(0);
    let mut delays = Vec::new();
    loop {
        match h
            .store
            .record_delivery(id, &temp().into(), now)
            .unwrap()
            .record
        {
            DeliveryRecord::Retry { next_attempt, .. } => {
                delays.push((next_attempt.0 - now.0) / 1000);
                let due = h.store.due(next_attempt, 10).unwrap();
                assert_eq!(due.claimed.len(), 1);
                now = next_attempt;
            }
            DeliveryRecord::Expired => break,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        delays,
        [120, 240, 480, 960],
        "2m doubling until the 1h hold"
    );
    let s = h.store.status_snapshot(A, now).unwrap();
    assert_eq!((s.errors_total, s.sent_total, s.queued), (1, 0, 0));
    let e = h.store.errors(A, 10, 0).unwrap();
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].recipient, "rcpt0@example.net");
    assert!(e[0].text.contains("451 4.3.0 try later"), "{}", e[0].text);
    assert_eq!(e[0].origin, origin());
    assert_integrity(&mut h.store);
}

#[test]
fn jitter_spreads_retries() {
    let mut h = harness();
    let l = limits("quota= burst=");
    let mut nexts = std::collections::BTreeSet::new();
    for n in 0..20 {
        let id = submit(&mut h.store, A, &l, n, t(0), Mode::Enforce)
            .id
            .unwrap();
        if let DeliveryRecord::Retry { next_attempt, .. } = h
            .store
            .record_delivery(id, &temp().into(), t(0))
            .unwrap()
            .record
        {
            let d = next_attempt.0 - t(0).0;
            assert!((108_000..=132_000).contains(&d), "{d}");
            nexts.insert(d);
        }
    }
    assert!(nexts.len() > 5, "{nexts:?}");
}

#[test]
fn held_mail_expires_after_hold() {
    let mut h = harness();
    let l = limits("quota= burst= hold=72h");
    h.store.block(A, "root", t(0)).unwrap();
    let a = submit(&mut h.store, A, &l, 0, t(0), Mode::Enforce);
    assert_eq!(a.action, Action::Held);
    assert_eq!(h.store.due(t(72 * 3600 - 1), 10).unwrap().expired, 0);
    assert_eq!(h.store.due(t(72 * 3600), 10).unwrap().expired, 1);
    let s = h.store.status_snapshot(A, t(72 * 3600)).unwrap();
    assert_eq!((s.held, s.errors_total), (0, 1));
    assert!(h.store.errors(A, 1, 0).unwrap()[0].text.contains("held"));
    assert_integrity(&mut h.store);
}

#[test]
fn bounce_ratio_trips_bounce_unblock_gives_force_purge_gives_active() {
    let mut h = harness();
    let l = limits("quota= burst= bounce=0.1/10/1d");
    let mut n = 0;
    let mut deliver = |h: &mut Harness, o: &Outcome, at: i64| {
        n += 1;
        let id = submit(&mut h.store, A, &l, n, t(at), Mode::Enforce)
            .id
            .unwrap();
        h.store
            .record_delivery(id, &o.clone().into(), t(at))
            .unwrap()
    };
    for i in 0..8 {
        assert!(deliver(&mut h, &sent(), i).trip.is_none());
    }
    assert!(
        deliver(&mut h, &perm("a@x"), 9).trip.is_none(),
        "9 outcomes: under the minimum"
    );
    let r = deliver(&mut h, &perm("b@x"), 10);
    let trip = r.trip.expect("2 of 10 failed: over 10 %");
    assert_eq!(trip.transition.to, Status::Bounce);
    assert_eq!(
        h.store.status_snapshot(A, t(11)).unwrap().status,
        Status::Bounce
    );
    let c = h.store.unblock(A, "root", t(12)).unwrap();
    assert_eq!(c.to, Status::Force);
    // In force the allowed ratio is 20 %: 3 of 12 (25 %) trips, 2 of 11 does not.
    let r = deliver(&mut h, &sent(), 13);
    assert!(r.trip.is_none(), "2/11 in force");
    let r = deliver(&mut h, &perm("c@x"), 14);
    assert_eq!(r.trip.unwrap().transition.from, Status::Force);
    let p = h.store.purge(A, "root", t(15)).unwrap();
    assert_eq!((p.from, p.to), (Status::Bounce, Status::Active));
    // The error log survives purge and unblock.
    assert_eq!(h.store.errors(A, 100, 0).unwrap().len(), 3);
    assert_eq!(h.store.errors(A, 1, 1).unwrap().len(), 1);
    assert_integrity(&mut h.store);
}

#[test]
fn spam_refusals_turn_spam_and_only_purge_recovers() {
    let mut h = harness();
    let l = limits("quota= burst= spam=3/1h");
    let verdict = SpamSummary {
        score: 12.5,
        rules: vec!["shouting-subject".into(), "raw-ip-link".into()],
        refuse: true,
    };
    let body = raw(0);
    let rcpts = vec!["x@example.net".to_string()];
    let o = origin();
    let sub = Submission {
        raw: &body,
        envelope_from: "a@b",
        recipients: &rcpts,
        origin: &o,
        spam: Some(&verdict),
    };
    let first = h.store.submit(A, &l, sub, t(0), Mode::Enforce).unwrap();
    assert_eq!(first.status_after, Status::Active);
    h.store.submit(A, &l, sub, t(1), Mode::Enforce).unwrap();
    let third = h.store.submit(A, &l, sub, t(2), Mode::Enforce).unwrap();
    assert_eq!(third.status_after, Status::Spam);
    assert_eq!(
        third.trip.unwrap().transition.actor.to_string(),
        "rule:spam-limit"
    );
    // Refused messages are kept for review, never due.
    let shown = h.store.queue_show(first.id.unwrap()).unwrap();
    assert_eq!(shown.entry.state, MessageState::RefusedSpam);
    assert!(shown.checksum_ok);
    assert_eq!(shown.spam.unwrap().rules.len(), 2);
    // Spam status: new mail refused, unblock refused, purge mandatory.
    let a = submit(&mut h.store, A, &l, 1, t(3), Mode::Enforce);
    assert!(matches!(a.action, Action::Refused(_)));
    assert_eq!(a.id, None);
    let err = h.store.unblock(A, "root", t(4)).unwrap_err();
    assert!(err.to_string().contains("purge"), "{err}");
    h.store.purge(A, "root", t(5)).unwrap();
    assert_eq!(
        submit(&mut h.store, A, &l, 2, t(6), Mode::Enforce).action,
        Action::DeliverNow
    );
    assert_eq!(h.store.status_snapshot(A, t(6)).unwrap().refused_total, 4);
    assert_eq!(h.store.history(A, 1, t(6)).unwrap()[0].refused, 4);
    assert_integrity(&mut h.store);
}

#[test]
fn observe_mode_records_but_never_blocks() {
    let mut h = harness();
    let l = limits("quota=2/1h burst=3/1m spam=2/1h");
    let mut verdicts = Vec::new();
    for n in 0..6 {
        let a = submit(&mut h.store, A, &l, n, t(n as i64), Mode::Observe);
        assert_eq!(a.action, Action::DeliverNow, "message {n}");
        assert_eq!(a.status_after, Status::Active);
        verdicts.push(a.verdict.as_str());
    }
    assert_eq!(
        verdicts,
        ["deliver", "deliver", "queue", "hold", "hold", "hold"]
    );
    let tr = h.store.transitions(A).unwrap();
    assert_eq!(
        tr.len(),
        1,
        "one observed burst trip, not one per message: {tr:?}"
    );
    assert!(!tr[0].applied);
    // Observed spam refusals count toward an observed spam trip, and mail still flows.
    let spam = SpamSummary {
        score: 9.0,
        rules: vec!["porn-phrase".into()],
        refuse: true,
    };
    let body = raw(9);
    let rcpts = vec!["x@example.net".to_string()];
    let o = origin();
    for i in 0..2 {
        let a = h
            .store
            .submit(
                A,
                &l,
                Submission {
                    raw: &body,
                    envelope_from: "a@b",
                    recipients: &rcpts,
                    origin: &o,
                    spam: Some(&spam),
                },
                t(100 + i),
                Mode::Observe,
            )
            .unwrap();
        assert_eq!(a.action, Action::DeliverNow);
    }
    let tr = h.store.transitions(A).unwrap();
    assert!(
        tr.iter().any(|t| t.reason == "spam-limit" && !t.applied),
        "{tr:?}"
    );
    assert_eq!(
        h.store.status_snapshot(A, t(200)).unwrap().status,
        Status::Active
    );
    assert!(h
        .store
        .queue_show(mailguard_store::MessageId(3))
        .unwrap()
        .verdict
        .starts_with("queue until"));
    assert_integrity(&mut h.store);
}

#[test]
fn partial_rejections_and_permanent_failures_fill_the_error_log() {
    let mut h = harness();
    let l = limits("quota= burst=");
    let a = submit(&mut h.store, A, &l, 0, t(0), Mode::Enforce)
        .id
        .unwrap();
    let rejected = vec![Failure {
        recipient: "gone@x".into(),
        code: Some(550),
        enhanced: Some("5.1.1".into()),
        text: "unknown".into(),
    }];
    h.store
        .record_delivery(a, &Outcome::Sent { rejected }.into(), t(1))
        .unwrap();
    let b = submit(&mut h.store, A, &l, 1, t(2), Mode::Enforce)
        .id
        .unwrap();
    assert_eq!(
        h.store
            .record_delivery(b, &Outcome::PermFail(vec![]).into(), t(3))
            .unwrap()
            .record,
        DeliveryRecord::Failed
    );
    let e = h.store.errors(A, 10, 0).unwrap();
    assert_eq!(
        e.iter().map(|e| e.recipient.as_str()).collect::<Vec<_>>(),
        ["*", "gone@x"]
    );
    assert_eq!(e[1].code, Some(550));
    assert_eq!(e[1].enhanced.as_deref(), Some("5.1.1"));
    let s = h.store.status_snapshot(A, t(4)).unwrap();
    assert_eq!((s.sent_total, s.errors_total, s.errors_today), (1, 2, 2));
    assert_integrity(&mut h.store);
}

#[test]
fn corrupt_bodies_are_quarantined_never_sent_never_deleted() {
    let mut h = harness();
    let l = limits("quota=1/1h burst=");
    let first = submit(&mut h.store, A, &l, 0, t(0), Mode::Enforce)
        .id
        .unwrap();
    h.store
        .record_delivery(first, &sent().into(), t(0))
        .unwrap();
    let q = submit(&mut h.store, A, &l, 1, t(1), Mode::Enforce)
        .id
        .unwrap();
    {
        // Flip one stored byte behind the store's back.
        let conn = rusqlite::Connection::open(h.store.db_path()).unwrap();
        let mut body: Vec<u8> = conn
            .query_row("SELECT raw FROM messages WHERE id = ?1", [q.0], |r| {
                r.get(0)
            })
            .unwrap();
        body[10] ^= 0x20;
        conn.execute(
            "UPDATE messages SET raw = ?2 WHERE id = ?1",
            rusqlite::params![q.0, body],
        )
        .unwrap();
    }
    let report = h.store.check_integrity().unwrap();
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    let due = h.store.due(t(4000), 10).unwrap();
    assert!(due.claimed.is_empty());
    assert_eq!(due.quarantined, vec![q]);
    let shown = h.store.queue_show(q).unwrap();
    assert_eq!(shown.entry.state, MessageState::Quarantined);
    assert!(!shown.checksum_ok);
    // Never sent, and purge does not delete it either.
    h.store.purge(A, "root", t(4001)).unwrap();
    assert!(h.store.due(t(9000), 10).unwrap().claimed.is_empty());
    assert!(h.store.queue_show(q).is_ok());
    assert_eq!(h.store.status_snapshot(A, t(9000)).unwrap().quarantined, 1);
    // Only the operator's explicit delete removes it.
    h.store.queue_delete(q).unwrap();
    assert!(matches!(
        h.store.queue_show(q),
        Err(StoreError::NoSuchMessage(_))
    ));
    assert_integrity(&mut h.store);
}

#[test]
fn stale_claims_go_back_to_the_queue() {
    let mut h = harness();
    let l = limits("quota= burst=");
    let id = submit(&mut h.store, A, &l, 0, t(0), Mode::Enforce)
        .id
        .unwrap();
    // The deliverer died: after the lease the runner takes the message over.
    assert!(h.store.due(t(60), 10).unwrap().claimed.is_empty());
    let due = h.store.due(t(31 * 60), 10).unwrap();
    assert_eq!(due.reclaimed, 1);
    assert_eq!(due.claimed[0].id, id);
    assert_eq!(
        h.store
            .record_delivery(id, &sent().into(), t(32 * 60))
            .unwrap()
            .record,
        DeliveryRecord::Sent
    );
    assert_integrity(&mut h.store);
}

#[test]
fn queue_cap_and_disk_reserve_refuse() {
    let mut h = harness();
    let l = limits("quota=1/1h burst= queue_messages=2");
    submit(&mut h.store, A, &l, 0, t(0), Mode::Enforce);
    submit(&mut h.store, A, &l, 1, t(1), Mode::Enforce);
    let body = raw(2);
    let r = vec!["a@b".to_string()];
    let o = origin();
    let sub = Submission {
        raw: &body,
        envelope_from: "a@b",
        recipients: &r,
        origin: &o,
        spam: None,
    };
    let e = h.store.submit(A, &l, sub, t(2), Mode::Enforce).unwrap_err();
    assert!(
        matches!(e, StoreError::QueueFull { messages: 2, .. }),
        "{e}"
    );
    assert!(e.is_transient());
    let bytes = limits("quota= burst= queue_bytes=700");
    assert!(matches!(
        h.store.submit("other", &bytes, sub, t(3), Mode::Enforce),
        Err(StoreError::QueueFull { .. })
    ));
    let mut huge = limits("quota= burst=");
    huge.disk_reserve_bytes = u64::MAX / 4;
    let e = h
        .store
        .submit(A, &huge, sub, t(4), Mode::Enforce)
        .unwrap_err();
    assert!(matches!(e, StoreError::DiskReserve { .. }), "{e}");
    assert!(
        e.to_string().contains(h.store.dir().to_str().unwrap()),
        "{e}"
    );
    assert_integrity(&mut h.store);
}

#[test]
fn history_fills_missing_days_and_report_to_is_kept() {
    let mut h = harness();
    let l = limits("quota= burst=");
    let id = submit(&mut h.store, A, &l, 0, t(0), Mode::Enforce)
        .id
        .unwrap();
    h.store.record_delivery(id, &sent().into(), t(0)).unwrap();
    let id = submit(&mut h.store, A, &l, 1, t(2 * 86400), Mode::Enforce)
        .id
        .unwrap();
    h.store
        .record_delivery(id, &perm("z@x").into(), t(2 * 86400))
        .unwrap();
    let hist = h.store.history(A, 4, t(2 * 86400 + 5)).unwrap();
    let rows: Vec<(String, u64, u64)> = hist
        .iter()
        .map(|d| (d.day.to_string(), d.sent, d.errors))
        .collect();
    assert_eq!(
        rows,
        [
            ("2026-03-31".into(), 0, 0),
            ("2026-04-01".into(), 1, 0),
            ("2026-04-02".into(), 0, 0),
            ("2026-04-03".into(), 0, 1)
        ]
    );
    h.store
        .set_report_to(A, Some("owner@example.org"), t(0))
        .unwrap();
    let s = h.store.status_snapshot(A, t(2 * 86400)).unwrap();
    assert_eq!(s.report_to.as_deref(), Some("owner@example.org"));
    assert_eq!((s.sent_today, s.errors_today, s.sent_total), (0, 1, 1));
    let j = s.to_json();
    for k in [
        "account",
        "status",
        "sent_total",
        "sent_today",
        "errors_total",
        "queued",
        "held",
        "limits",
        "mode",
    ] {
        assert!(j.get(k).is_some(), "{k} missing in {j}");
    }
    assert_eq!(j["colour"], "green");
}

#[test]
fn unknown_accounts_read_as_fresh_and_list_filters() {
    let mut h = harness();
    let s = h.store.status_snapshot("nobody", t(0)).unwrap();
    assert_eq!((s.status, s.sent_total), (Status::Active, 0));
    let l = limits("quota=1/1h burst=");
    submit(&mut h.store, "a", &l, 0, t(0), Mode::Enforce);
    submit(&mut h.store, "b", &l, 1, t(0), Mode::Enforce);
    assert_eq!(h.store.queue_list(None).unwrap().len(), 2);
    let only_a = h.store.queue_list(Some("a")).unwrap();
    assert_eq!(only_a.len(), 1);
    assert_eq!(only_a[0].recipients, ["rcpt0@example.net"]);
    assert_eq!(h.store.accounts().unwrap(), ["a", "b"]);
}

#[test]
fn state_dir_is_created_private_and_bad_dirs_name_their_path() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a/b/state");
    let store = Store::open(&dir).unwrap();
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    let db_mode = std::fs::metadata(store.db_path())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(db_mode, 0o600);
    drop(store);
    // A file where the directory should be.
    let file = tmp.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    let e = Store::open(&file).err().unwrap();
    assert!(e.to_string().contains(file.to_str().unwrap()), "{e}");
    assert!(e.to_string().contains("not a directory"), "{e}");
    // Reopening an existing store keeps its data.
    let mut again = Store::open(&dir).unwrap();
    assert_eq!(again.check_integrity().unwrap().accounts, 0);
}

#[test]
fn unwritable_dir_is_an_error_naming_the_path() {
    use std::os::unix::fs::PermissionsExt;
    if nix::unistd::geteuid().is_root() {
        // root passes access(2) checks on any mode; run this as an unprivileged user.
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ro");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o500)).unwrap();
        // Still check the error path we can reach as root: a path under a file.
        let under_file = tmp.path().join("f");
        std::fs::write(&under_file, b"").unwrap();
        let e = Store::open(under_file.join("state")).err().unwrap();
        assert!(e.to_string().contains("state directory"), "{e}");
        assert!(
            e.to_string()
                .contains(under_file.join("state").to_str().unwrap()),
            "{e}"
        );
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ro");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o500)).unwrap();
    let e = Store::open(&dir).err().unwrap();
    assert!(e.to_string().contains(dir.to_str().unwrap()), "{e}");
}

/// Submits a message to `n` recipients.
fn submit_to(
    store: &mut Store,
    l: &mailguard_store::Limits,
    n: usize,
    now: mailguard_store::Timestamp,
    mode: Mode,
) -> mailguard_store::Admission {
    let body = raw(n);
    let rcpts: Vec<String> = (0..n).map(|i| format!("r{i}@example.net")).collect();
    let o = origin();
    store
        .submit(
            A,
            l,
            Submission {
                raw: &body,
                envelope_from: "shop@example.org",
                recipients: &rcpts,
                origin: &o,
                spam: None,
            },
            now,
            mode,
        )
        .unwrap()
}

#[test]
fn limits_count_recipients_and_cap_them() {
    let mut h = harness();
    let l = limits("quota=100/1h burst=");
    // Three mails to 30 people: 90 of 100.
    for k in 0..3 {
        let a = submit_to(&mut h.store, &l, 30, t(k), Mode::Enforce);
        assert_eq!(a.action, Action::DeliverNow);
        h.store
            .record_delivery(a.id.unwrap(), &sent().into(), t(k))
            .unwrap();
    }
    // Ten more fit, eleven do not: queued until the first 30 leave the window.
    let q = submit_to(&mut h.store, &l, 11, t(10), Mode::Enforce);
    assert_eq!(q.action, Action::Queued { until: t(3600) });
    let ten = submit_to(&mut h.store, &l, 10, t(11), Mode::Enforce);
    assert_eq!(ten.action, Action::DeliverNow);
    h.store
        .record_delivery(ten.id.unwrap(), &sent().into(), t(11))
        .unwrap();
    // The runner releases the queued one by its 11 recipients too.
    assert!(h.store.due(t(3599), 10).unwrap().claimed.is_empty());
    let due = h.store.due(t(3600), 10).unwrap();
    assert_eq!(due.claimed.len(), 1);
    assert_eq!(due.claimed[0].recipients.len(), 11);
    // Counting messages instead: the same account's next 10 messages fit whatever
    // their recipients.
    let m = limits("quota=100/1h burst= count=messages");
    let mut h2 = harness();
    for k in 0..10 {
        let a = submit_to(&mut h2.store, &m, 50, t(k), Mode::Enforce);
        assert_eq!(a.action, Action::DeliverNow);
    }
    // The cap: 101 recipients are refused, nothing stored, counted as refused.
    let cap = limits("quota= burst=");
    let mut h3 = harness();
    let r = submit_to(&mut h3.store, &cap, 101, t(0), Mode::Enforce);
    assert!(matches!(r.action, Action::Refused(_)), "{:?}", r.action);
    assert_eq!(r.id, None);
    let s = h3.store.status_snapshot(A, t(1)).unwrap();
    assert_eq!(s.refused_total, 1);
    // Observe mode: delivered, the verdict says what enforce would have done.
    let o = submit_to(&mut h3.store, &cap, 101, t(2), Mode::Observe);
    assert_eq!(o.action, Action::DeliverNow);
    assert!(matches!(o.verdict, Action::Refused(_)), "{:?}", o.verdict);
    let shown = h3.store.queue_show(o.id.unwrap()).unwrap();
    assert!(
        shown.verdict.contains("101 recipients"),
        "{}",
        shown.verdict
    );
    assert_integrity(&mut h.store);
    assert_integrity(&mut h3.store);
}

#[test]
fn several_windows_each_exact_and_shown() {
    let mut h = harness();
    // 2 per minute and 3 per hour, counted in recipients (one each here).
    let l = limits("quota=2/1m,3/1h burst= count=messages");
    let mut ids = Vec::new();
    for (n, at) in [(0, 0), (1, 10)] {
        let a = submit(&mut h.store, A, &l, n, t(at), Mode::Enforce);
        assert_eq!(a.action, Action::DeliverNow);
        ids.push(a.id.unwrap());
    }
    // The minute is full: queued until 60.
    let q = submit(&mut h.store, A, &l, 2, t(20), Mode::Enforce);
    assert_eq!(q.action, Action::Queued { until: t(60) });
    for id in ids {
        h.store.record_delivery(id, &sent().into(), t(20)).unwrap();
    }
    let s = h.store.status_snapshot(A, t(30)).unwrap();
    let shown: Vec<(&str, String, u32, u32)> = s
        .windows
        .iter()
        .map(|w| (w.kind, w.limit.to_string(), w.used, w.remaining))
        .collect();
    assert_eq!(
        shown,
        [
            ("quota", "2/1m".to_owned(), 2, 0),
            ("quota", "3/1h".to_owned(), 2, 1)
        ]
    );
    assert_eq!(s.windows[0].next_free, Some(t(60)));
    let json = s.to_json();
    assert_eq!(json["windows"][1]["remaining"], 1);
    // At 60 the minute has room: the queued one goes (3 of 3 in the hour).
    let due = h.store.due(t(60), 10).unwrap();
    assert_eq!(due.claimed.len(), 1);
    h.store
        .record_delivery(due.claimed[0].id, &sent().into(), t(61))
        .unwrap();
    // At 200 the minute is empty but the hour is full: queued until the first leaves it.
    let q = submit(&mut h.store, A, &l, 3, t(200), Mode::Enforce);
    assert_eq!(q.action, Action::Queued { until: t(3600) });
    assert_integrity(&mut h.store);
}

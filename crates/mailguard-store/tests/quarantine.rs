//! The quarantine: refused spam kept with its verdict, released (queued, delivered and
//! counted as sent, recorded with who did it) or deleted, and the per-account cap.

mod common;

use common::*;
use mailguard_store::{
    MessageId, Mode, Outcome, SpamSummary, Status, Store, Submission, QUARANTINE_MAX_AGE,
};

const A: &str = "shop";

fn refuse(store: &mut Store, n: usize, secs: i64) -> MessageId {
    let verdict = SpamSummary {
        score: 12.5,
        rules: vec!["shouting-subject".into(), "raw-ip-link".into()],
        refuse: true,
    };
    let body = raw(n);
    let rcpts = vec!["x@example.net".to_string()];
    let o = origin();
    let sub = Submission {
        raw: &body,
        envelope_from: "a@b",
        recipients: &rcpts,
        origin: &o,
        spam: Some(&verdict),
    };
    let l = limits("quota= burst= spam=");
    store
        .submit(A, &l, sub, t(secs), Mode::Enforce)
        .unwrap()
        .id
        .unwrap()
}

#[test]
fn release_delivers_and_counts_and_records_who() {
    let mut h = harness();
    let one = refuse(&mut h.store, 0, 0);
    let two = refuse(&mut h.store, 1, 1);
    let list = h.store.quarantine_list(Some(A), 100).unwrap();
    assert_eq!(
        list.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![two, one]
    );
    assert!(
        list[0].verdict.contains("spam score 12.5"),
        "{}",
        list[0].verdict
    );
    assert_eq!(list[0].spam.as_ref().unwrap().rules.len(), 2);
    assert!(list[0].kept);
    let (shown, body) = h.store.quarantine_show(one).unwrap();
    assert_eq!(shown.id, one);
    assert!(body.is_some());
    assert_eq!(h.store.quarantine_totals(A).unwrap().0, 2);

    let released = h.store.quarantine_release(one, "admin", t(10)).unwrap();
    assert_eq!(released.id, one);
    // Out of the quarantine, into the queue, due now.
    assert!(h.store.quarantine_show(one).is_err());
    let due = h.store.due(t(11), 10).unwrap();
    assert_eq!(due.claimed.len(), 1, "{due:?}");
    h.store
        .record_delivery(one, &Outcome::Sent { rejected: vec![] }.into(), t(12))
        .unwrap();
    let snap = h.store.status_snapshot(A, t(13)).unwrap();
    assert_eq!(snap.sent_total, 1);
    assert_eq!(snap.refused_total, 2, "the refusal stays counted");

    h.store.quarantine_delete(two, "site-owner", t(14)).unwrap();
    assert!(h.store.quarantine_list(Some(A), 100).unwrap().is_empty());
    let log = h.store.quarantine_log(Some(A), 10).unwrap();
    assert_eq!(
        log.iter()
            .map(|r| (r.action.as_str(), r.actor.as_str(), r.message))
            .collect::<Vec<_>>(),
        vec![("delete", "site-owner", two), ("release", "admin", one)]
    );
    assert!(h.store.quarantine_release(two, "admin", t(15)).is_err());
    assert_integrity(&mut h.store);
}

#[test]
fn release_waits_for_a_green_account() {
    let mut h = harness();
    let id = refuse(&mut h.store, 0, 0);
    h.store.block(A, "root", t(1)).unwrap();
    let err = h.store.quarantine_release(id, "root", t(2)).unwrap_err();
    assert!(err.to_string().contains("unblock"), "{err}");
    h.store.unblock(A, "root", t(3)).unwrap();
    assert_eq!(
        h.store.status_snapshot(A, t(4)).unwrap().status,
        Status::Active
    );
    h.store.quarantine_release(id, "root", t(4)).unwrap();
}

#[test]
fn the_cap_drops_the_oldest_first() {
    let mut h = harness();
    let ids: Vec<MessageId> = (0..5).map(|i| refuse(&mut h.store, i, i as i64)).collect();
    let sizes: Vec<u64> = h
        .store
        .quarantine_list(Some(A), 10)
        .unwrap()
        .iter()
        .map(|e| e.size)
        .collect();
    // Room for the three newest.
    let cap = sizes[..3].iter().sum::<u64>();
    let dropped = h
        .store
        .quarantine_prune(cap, QUARANTINE_MAX_AGE, t(10))
        .unwrap();
    assert_eq!(
        dropped.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![ids[1], ids[0]]
    );
    // And by age: 31 days later everything goes.
    let later = t(31 * 86_400);
    let dropped = h
        .store
        .quarantine_prune(u64::MAX, QUARANTINE_MAX_AGE, later)
        .unwrap();
    assert_eq!(dropped.len(), 3);
    let log = h.store.quarantine_log(Some(A), 10).unwrap();
    assert!(log
        .iter()
        .all(|r| r.action == "drop" && r.actor == "mailguard"));
    assert_integrity(&mut h.store);
}

#[test]
fn what_the_spam_engine_refuses_is_quarantined_too() {
    let mut h = harness();
    let l = limits("quota= burst= spam=");
    let id = submit(&mut h.store, A, &l, 3, t(0), Mode::Enforce)
        .id
        .unwrap();
    // Claimed for delivery (at submit or by the runner); the engine refuses it.
    let _ = h.store.due(t(1), 10).unwrap();
    let verdict = SpamSummary {
        score: 21.0,
        rules: vec!["rspamd: BAYES_SPAM".into()],
        refuse: true,
    };
    h.store
        .record_engine_refusal(id, &verdict, "refuse: rspamd reject (score 21)", t(2))
        .unwrap();
    let list = h.store.quarantine_list(Some(A), 10).unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].id, id);
    assert!(list[0].verdict.contains("rspamd"), "{}", list[0].verdict);
    assert!(list[0].kept, "the body stays for review");
    h.store.quarantine_release(id, "root", t(3)).unwrap();
    let d = h.store.due(t(4), 10).unwrap();
    assert_eq!(d.claimed.len(), 1, "{d:?}");
    assert_eq!(d.claimed[0].id, id);
}

//! Group commit (`Store::submit_batch`): many messages in one transaction, each decided as
//! `submit` would decide it alone, one refused for its own reason leaving the others stored.

mod common;

use common::*;
use mailguard_store::{Action, Entry, Mode, Origin, SpamSummary, Submission};

fn entry<'a>(
    account: &'a str,
    l: &'a mailguard_store::Limits,
    body: &'a [u8],
    rcpts: &'a [String],
    o: &'a Origin,
    spam: Option<&'a SpamSummary>,
) -> Entry<'a> {
    Entry {
        account,
        limits: l,
        mode: Mode::Enforce,
        sub: Submission {
            raw: body,
            envelope_from: "shop@example.org",
            recipients: rcpts,
            origin: o,
            spam,
        },
    }
}

#[test]
fn a_batch_decides_each_message_as_alone_and_in_order() {
    let mut h = harness();
    let l = limits("quota=2/1h burst=");
    let bodies: Vec<Vec<u8>> = (0..5).map(raw).collect();
    let rcpts = vec!["x@example.net".to_string()];
    let o = origin();
    let entries: Vec<Entry<'_>> = bodies
        .iter()
        .map(|b| entry("shop", &l, b, &rcpts, &o, None))
        .collect();
    let results = h.store.submit_batch(&entries, t(0)).unwrap();
    let actions: Vec<&str> = results
        .iter()
        .map(|r| r.as_ref().unwrap().action.as_str())
        .collect();
    // The quota of 2 is exact inside one batch too: the first two are released.
    assert_eq!(actions, ["deliver", "deliver", "queue", "queue", "queue"]);
    let states: Vec<String> = h
        .store
        .queue_list(Some("shop"))
        .unwrap()
        .iter()
        .map(|e| e.state.as_str().to_owned())
        .collect();
    assert_eq!(
        states.iter().filter(|s| *s == "queued").count(),
        3,
        "{states:?}"
    );
    assert_eq!(
        states.iter().filter(|s| *s == "sending").count(),
        2,
        "{states:?}"
    );
    assert!(h.store.check_integrity().unwrap().is_ok());
}

#[test]
fn one_refused_message_leaves_the_rest_of_the_batch_stored() {
    let mut h = harness();
    // Room for two waiting messages in the whole queue.
    let mut l = limits("quota=1/1h burst=");
    l.queue_max_messages = 2;
    let bodies: Vec<Vec<u8>> = (0..3).map(raw).collect();
    let rcpts = vec!["x@example.net".to_string()];
    let o = origin();
    let spam = SpamSummary {
        score: 9.0,
        rules: vec!["executable-attachment".into()],
        refuse: true,
    };
    let entries = vec![
        entry("shop", &l, &bodies[0], &rcpts, &o, None),
        entry("shop", &l, &bodies[1], &rcpts, &o, Some(&spam)),
        entry("shop", &l, &bodies[2], &rcpts, &o, None),
        entry("blog", &l, &bodies[2], &rcpts, &o, None),
    ];
    let results = h.store.submit_batch(&entries, t(0)).unwrap();
    assert!(results[0].is_ok());
    // The store decides the spam refusal: kept for review, counted, never queued.
    assert_eq!(
        results[1].as_ref().unwrap().action,
        Action::Refused(mailguard_core::account::RefusedBecause::SpamScore)
    );
    assert!(results[2].is_ok());
    // The queue is full now: this one alone is refused, with the cap in its error.
    let err = results[3].as_ref().unwrap_err().to_string();
    assert!(err.contains("queue is full"), "{err}");
    let shop = h.store.status_snapshot("shop", t(0)).unwrap();
    assert_eq!((shop.queued, shop.refused_total), (2, 1));
    assert!(h.store.check_integrity().unwrap().is_ok());
}

#[test]
fn one_account_cannot_take_the_whole_queue() {
    let mut h = harness();
    // Quota 1: everything after the first message waits. Each account may have 2 waiting.
    let mut l = limits("quota=1/1h burst=");
    l.account_queue_max = Some(2);
    let bodies: Vec<Vec<u8>> = (0..4).map(raw).collect();
    let rcpts = vec!["x@example.net".to_string()];
    let o = origin();
    let entries: Vec<Entry<'_>> = bodies
        .iter()
        .map(|b| entry("shop", &l, b, &rcpts, &o, None))
        .chain(std::iter::once(entry(
            "blog", &l, &bodies[0], &rcpts, &o, None,
        )))
        .collect();
    let results = h.store.submit_batch(&entries, t(0)).unwrap();
    assert!(results[0].is_ok() && results[1].is_ok());
    for r in &results[2..4] {
        let e = r.as_ref().unwrap_err().to_string();
        assert!(
            e.contains("account shop has 2 messages waiting, its share of the queue is 2"),
            "{e}"
        );
    }
    // The other account still gets its mail in.
    assert!(results[4].is_ok(), "{:?}", results[4]);
    assert!(h.store.check_integrity().unwrap().is_ok());
}

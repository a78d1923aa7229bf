//! The shared harness: a fresh state directory per test and small message builders.
#![allow(dead_code)]

use mailguard_store::{Limits, Mode, Origin, Store, Submission, Timestamp};

pub struct Harness {
    pub dir: tempfile::TempDir,
    pub store: Store,
}

pub fn harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("state")).unwrap();
    Harness { dir, store }
}

pub fn t(secs: i64) -> Timestamp {
    // 2026-04-01T00:00:00Z + secs
    Timestamp::from_secs(1_775_001_600 + secs)
}

pub fn raw(n: usize) -> Vec<u8> {
    let mut m =
        format!("To: rcpt{n}@example.net\r\nSubject: Order {n}\r\nFrom: shop@example.org\r\n\r\n")
            .into_bytes();
    m.extend(std::iter::repeat_n(b'x', 200));
    m.extend_from_slice(b"\r\n");
    m
}

pub fn origin() -> Origin {
    Origin {
        file: Some("/var/www/shop/checkout.php".into()),
        line: Some(42),
        caller: Some("/var/www/shop/lib/notify.php:10".into()),
        vhost: Some("shop.example.org".into()),
        request_uri: Some("/checkout".into()),
        client_ip: Some("203.0.113.5".into()),
        sapi: Some("web".into()),
        ..Origin::default()
    }
}

pub fn limits(text: &str) -> Limits {
    text.parse().unwrap()
}

/// Submits message `n` for `account`.
pub fn submit(
    store: &mut Store,
    account: &str,
    l: &Limits,
    n: usize,
    now: Timestamp,
    mode: Mode,
) -> mailguard_store::Admission {
    let body = raw(n);
    let rcpts = vec![format!("rcpt{n}@example.net")];
    let o = origin();
    store
        .submit(
            account,
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

pub fn assert_integrity(store: &mut Store) {
    let r = store.check_integrity().unwrap();
    assert!(r.is_ok(), "integrity problems: {:#?}", r.problems);
}

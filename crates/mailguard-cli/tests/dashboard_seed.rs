//! Fills a state directory for the browser test (`tests/browser/run.sh`) through the
//! store API: `MAILGUARD_SEED_PART=past` writes 29 past days of history for one account,
//! `today` today's mail with a failure from two scripts (when real PHP mail() calls
//! cannot provide it), `quarantine` three messages refused as spam, `all` (the default)
//! everything.
//!
//! Ignored in normal runs; `run.sh` calls it with `MAILGUARD_SEED_DIR` set.

use std::time::Duration;

use mailguard_store::{
    now, Failure, Limits, MessageId, Mode, Origin, Outcome, SpamSummary, Store, Submission,
    Timestamp,
};

fn send(store: &mut Store, account: &str, file: &str, t: Timestamp, fail: Option<&str>) {
    let rcpt = vec![fail.unwrap_or("customer@example.org").to_owned()];
    let origin = Origin {
        file: Some(file.to_owned()),
        line: Some(42),
        sapi: Some("web".into()),
        vhost: Some("www.example.org".into()),
        ..Origin::default()
    };
    let adm = store
        .submit(
            account,
            &Limits::default(),
            Submission {
                raw: b"Subject: Your order\r\n\r\nThank you for your order.\r\n",
                envelope_from: "shop@example.org",
                recipients: &rcpt,
                origin: &origin,
                spam: None,
            },
            t,
            Mode::Enforce,
        )
        .expect("submit");
    let Some(id) = adm.id else { return };
    let outcome = match fail {
        None => Outcome::Sent { rejected: vec![] },
        Some(r) => Outcome::PermFail(vec![Failure {
            recipient: r.to_owned(),
            code: Some(550),
            enhanced: Some("5.1.1".into()),
            text: "5.1.1 <".to_owned() + r + ">: Recipient address rejected: User unknown",
        }]),
    };
    store
        .record_delivery(MessageId(id.0), &outcome.into(), t)
        .expect("record");
}

#[test]
#[ignore = "run by tests/browser/run.sh with MAILGUARD_SEED_DIR"]
fn seed_browser_state() {
    let dir = std::env::var("MAILGUARD_SEED_DIR").expect("MAILGUARD_SEED_DIR");
    let account = std::env::var("MAILGUARD_SEED_ACCOUNT").unwrap_or_else(|_| "site1".into());
    let part = std::env::var("MAILGUARD_SEED_PART").unwrap_or_else(|_| "all".into());
    assert!(
        ["past", "today", "quarantine", "all"].contains(&part.as_str()),
        "MAILGUARD_SEED_PART must be past, today, quarantine or all"
    );
    let mut store = Store::open(&dir).expect("open");
    let t = now();
    let day = Duration::from_secs(86_400);
    // Deterministic, uneven traffic: a few messages a day, some failures now and then.
    for d in (1..30u64).rev().filter(|_| part == "past" || part == "all") {
        let at = t.minus(day * d as u32);
        let sent = 3 + (d * 7 % 11);
        for i in 0..sent {
            send(
                &mut store,
                &account,
                "/var/www/shop/order.php",
                at.plus(Duration::from_secs(i * 60)),
                None,
            );
        }
        if d % 6 == 0 {
            send(
                &mut store,
                &account,
                "/var/www/shop/newsletter.php",
                at.plus(Duration::from_secs(3600)),
                Some("old-customer@example.net"),
            );
        }
    }
    if part == "today" || part == "all" {
        for i in 0..6u64 {
            send(
                &mut store,
                &account,
                "/var/www/contact.php",
                t.minus(Duration::from_secs(600 + i)),
                None,
            );
        }
        send(
            &mut store,
            &account,
            "/var/www/shop/newsletter.php",
            t.minus(Duration::from_secs(300)),
            Some("gone@example.net"),
        );
    }
    if part == "quarantine" || part == "all" {
        // Three messages refused as spam, kept in quarantine.
        let verdict = SpamSummary {
            score: 13.0,
            rules: vec!["raw-ip-link".into(), "shouting-subject".into()],
            refuse: true,
        };
        let rcpt = vec!["lead@example.net".to_owned()];
        let o = Origin {
            file: Some("/var/www/shop/promo.php".into()),
            line: Some(3),
            ..Origin::default()
        };
        for i in 0..3u64 {
            let raw = format!(
                "To: lead@example.net\r\nSubject: WIN NOW {i}\r\n\r\nReply to lead-{i}@example.org or open http://198.51.100.7/win\r\n"
            );
            store
                .submit(
                    &account,
                    &"quota= burst= spam=".parse().expect("limits"),
                    Submission {
                        raw: raw.as_bytes(),
                        envelope_from: "shop@example.org",
                        recipients: &rcpt,
                        origin: &o,
                        spam: Some(&verdict),
                    },
                    t.minus(Duration::from_secs(200 - i)),
                    Mode::Enforce,
                )
                .expect("refused spam");
        }
    }
}

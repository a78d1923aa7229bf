//! `mailguard run` against real SMTP servers (aiosmtpd, implicit TLS and STARTTLS with a
//! test CA): what the relay receives, and what the store records for every fault mode.

#[path = "runner_harness/mod.rs"]
mod harness;

use harness::{limits, message, run, run_once, Server, State};
use mailguard_store::{now, MessageState, Status};

fn state_of(state: &State, id: mailguard_store::MessageId) -> mailguard_store::QueueMessage {
    state.store().queue_show(id).unwrap()
}

#[test]
fn a_worker_keeps_its_session_for_the_next_message() {
    let server = Server::start("reuse", "implicit", "good", &[]);
    let state = State::new("reuse");
    let l = limits("0.1/20/24h");
    for n in 0..5 {
        state.submit_due(
            "shop",
            &l,
            &["customer@example.org"],
            &message("shop", n, "customer@example.org"),
        );
    }
    // One worker: the five go one after another over one TLS session (RSET between).
    let config = server.config(&state.dir, "[runner]\nconcurrency = 1");
    let out = run_once(&state, &config);
    assert!(out.contains("sent 5,"), "{out}");
    let got = server.messages();
    assert_eq!(got.len(), 5, "{out}");
    let conns: std::collections::BTreeSet<String> =
        got.iter().map(|(_, env)| env["conn"].to_string()).collect();
    assert_eq!(conns.len(), 1, "one session for all five: {conns:?}");
}

#[test]
fn implicit_tls_delivers_byte_exact_and_counts() {
    let server = Server::start("implicit", "implicit", "good", &[]);
    let state = State::new("implicit");
    let l = limits("0.1/20/24h");
    let mut ids = Vec::new();
    let mut raws = Vec::new();
    for n in 0..3 {
        let raw = message("shop", n, "customer@example.org");
        ids.push(state.submit_due("shop", &l, &["customer@example.org"], &raw));
        raws.push(raw);
    }
    let config = server.config(&state.dir, "");
    let out = run_once(&state, &config);
    assert!(
        out.contains("sent 3, temporary failures 0, permanent failures 0"),
        "{out}"
    );

    let mut got = server.messages();
    assert_eq!(got.len(), 3, "{out}");
    // Delivered in parallel: they may arrive in any order.
    got.sort_by(|a, b| a.0.cmp(&b.0));
    raws.sort();
    for (i, (eml, env)) in got.iter().enumerate() {
        assert_eq!(eml, &raws[i], "message {i} must arrive byte for byte");
        assert_eq!(env["mail_from"], "www@shop.example");
        assert_eq!(env["rcpt_tos"], serde_json::json!(["customer@example.org"]));
        assert_eq!(env["tls"], true);
    }
    let mut store = state.store();
    for id in &ids {
        assert_eq!(
            store.queue_show(*id).unwrap().entry.state,
            MessageState::Sent
        );
    }
    let snap = store.status_snapshot("shop", now()).unwrap();
    assert_eq!((snap.sent_total, snap.errors_total, snap.queued), (3, 0, 0));
    assert!(store.check_integrity().unwrap().is_ok());

    // Nothing due any more: a second run sends nothing again.
    let out = run_once(&state, &config);
    assert!(out.contains("sent 0,"), "{out}");
    assert_eq!(server.messages().len(), 3);
}

#[test]
fn starttls_delivers() {
    let server = Server::start("starttls", "starttls", "good", &[]);
    let state = State::new("starttls");
    let raw = message("blog", 1, "reader@example.org");
    let id = state.submit_due("blog", &limits("0.1/20/24h"), &["reader@example.org"], &raw);
    let out = run_once(&state, &server.config(&state.dir, ""));
    let got = server.messages();
    assert_eq!(got.len(), 1, "{out}");
    assert_eq!(got[0].0, raw);
    assert_eq!(got[0].1["tls"], true);
    assert_eq!(state_of(&state, id).entry.state, MessageState::Sent);
}

/// 4xx, a dropped connection and a stall: the message stays queued, attempt 1, next
/// attempt in the future, the reply kept as its last error; nothing counted as an error.
#[test]
fn temporary_failures_are_retried_later() {
    let cases: &[(&str, &[&str], &str)] = &[
        ("421", &["--mode", "421"], "421 4.3.2"),
        ("451", &["--mode", "451"], "451 4.3.0"),
        ("452", &["--mode", "452"], "452 4.5.3"),
        ("drop", &["--mode", "drop-mid-data"], ""),
        ("stall", &["--mode", "stall"], "timeout"),
    ];
    for (name, args, expect) in cases {
        let server = Server::start(&format!("temp-{name}"), "implicit", "good", args);
        let state = State::new(&format!("temp-{name}"));
        let id = state.submit_due(
            "shop",
            &limits("0.1/20/24h"),
            &["customer@example.org"],
            &message("shop", 1, "customer@example.org"),
        );
        let config = server.config(
            &state.dir,
            "command_timeout = \"2s\"\ndata_timeout = \"2s\"",
        );
        let before = now();
        let out = run_once(&state, &config);
        assert!(out.contains("temporary failures 1"), "{name}: {out}");
        let m = state_of(&state, id);
        assert_eq!(m.entry.state, MessageState::Queued, "{name}: {out}");
        assert_eq!(m.entry.attempts, 1, "{name}");
        assert!(
            m.entry.next_attempt.unwrap() > before,
            "{name}: the next attempt must be later"
        );
        let last = m.entry.last_error.clone().unwrap_or_default();
        assert!(
            last.contains(expect),
            "{name}: last error {last:?} lacks {expect:?}"
        );
        assert!(
            m.raw.is_some() && m.checksum_ok,
            "{name}: the body stays for the retry"
        );
        let mut store = state.store();
        assert_eq!(
            store.status_snapshot("shop", now()).unwrap().errors_total,
            0,
            "{name}"
        );
        assert!(store.errors("shop", 10, 0).unwrap().is_empty(), "{name}");
        assert!(server.messages().is_empty(), "{name}: nothing was accepted");
    }
}

/// 5xx at RCPT and at DATA: failed, one error log entry per recipient with code,
/// enhanced status and text, counted.
#[test]
fn permanent_failures_are_logged_per_recipient() {
    let cases: &[(&str, &[&str], u16, &str, &str)] = &[
        ("550", &["--mode", "550"], 550, "5.1.1", "User unknown"),
        (
            "554",
            &["--mode", "554"],
            554,
            "5.7.1",
            "Message rejected as spam",
        ),
    ];
    for (name, args, code, enhanced, text) in cases {
        let server = Server::start(&format!("perm-{name}"), "implicit", "good", args);
        let state = State::new(&format!("perm-{name}"));
        let id = state.submit_due(
            "shop",
            &limits("0.1/20/24h"),
            &["a@example.org", "b@example.org"],
            &message("shop", 1, "a@example.org, b@example.org"),
        );
        let out = run_once(&state, &server.config(&state.dir, ""));
        assert!(out.contains("permanent failures 1"), "{name}: {out}");
        assert_eq!(
            state_of(&state, id).entry.state,
            MessageState::Failed,
            "{name}"
        );
        let mut store = state.store();
        let mut errors = store.errors("shop", 10, 0).unwrap();
        errors.sort_by(|a, b| a.recipient.cmp(&b.recipient));
        assert_eq!(errors.len(), 2, "{name}: {errors:?}");
        for (e, rcpt) in errors.iter().zip(["a@example.org", "b@example.org"]) {
            assert_eq!(e.recipient, rcpt);
            assert_eq!(e.code, Some(*code), "{name}");
            assert_eq!(e.enhanced.as_deref(), Some(*enhanced), "{name}");
            assert!(e.text.contains(text), "{name}: {:?}", e.text);
            assert!(
                !e.text.starts_with(enhanced),
                "{name}: the enhanced status is not repeated in the text"
            );
            assert_eq!(e.message_id, Some(id));
            assert_eq!(e.origin.file.as_deref(), Some("/var/www/shop/contact.php"));
        }
        assert_eq!(
            store.status_snapshot("shop", now()).unwrap().errors_total,
            2
        );
        assert!(server.messages().is_empty());
        assert!(store.check_integrity().unwrap().is_ok());
    }
}

/// One recipient refused for good, one deferred, one accepted: the message is sent to
/// the accepted one, the refusal is logged, the deferred one waits in a message of its own.
#[test]
fn mixed_recipients_are_split() {
    let server = Server::start(
        "mixed",
        "implicit",
        "good",
        &[
            "--mode",
            "550",
            "--fault-at",
            "rcpt",
            "--only-rcpt",
            "gone@example.org",
        ],
    );
    let state = State::new("mixed");
    let rcpts = ["ok@example.org", "gone@example.org"];
    let raw = message("shop", 1, "ok@example.org, gone@example.org");
    let id = state.submit_due("shop", &limits("0.1/20/24h"), &rcpts, &raw);
    let out = run_once(&state, &server.config(&state.dir, ""));
    let got = server.messages();
    assert_eq!(got.len(), 1, "{out}");
    assert_eq!(got[0].0, raw);
    assert_eq!(got[0].1["rcpt_tos"], serde_json::json!(["ok@example.org"]));
    assert_eq!(state_of(&state, id).entry.state, MessageState::Sent);
    let mut store = state.store();
    let errors = store.errors("shop", 10, 0).unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!(
        (errors[0].recipient.as_str(), errors[0].code),
        ("gone@example.org", Some(550))
    );
    let snap = store.status_snapshot("shop", now()).unwrap();
    assert_eq!((snap.sent_total, snap.errors_total), (1, 1));

    // A deferred recipient (452 for one of two) gets a message of its own.
    let server = Server::start(
        "deferred",
        "implicit",
        "good",
        &["--mode", "452", "--only-rcpt", "later@example.org"],
    );
    let state = State::new("deferred");
    let id = state.submit_due(
        "shop",
        &limits("0.1/20/24h"),
        &["now@example.org", "later@example.org"],
        &raw,
    );
    let out = run_once(&state, &server.config(&state.dir, ""));
    assert_eq!(server.messages().len(), 1, "{out}");
    assert_eq!(
        server.messages()[0].1["rcpt_tos"],
        serde_json::json!(["now@example.org"])
    );
    let mut store = state.store();
    assert_eq!(
        store.queue_show(id).unwrap().entry.state,
        MessageState::Sent
    );
    let waiting = store.queue_list(Some("shop")).unwrap();
    assert_eq!(waiting.len(), 1, "{out}");
    assert_eq!(waiting[0].recipients, vec!["later@example.org".to_owned()]);
    assert_eq!(waiting[0].state, MessageState::Queued);
    assert!(waiting[0]
        .last_error
        .as_deref()
        .unwrap_or("")
        .starts_with("452 4.5.3"));
    let m = store.queue_show(waiting[0].id).unwrap();
    assert!(m.checksum_ok && m.raw.as_deref() == Some(&raw[..]));
}

/// A certificate that is expired, for another name, or not from a trusted CA is never
/// accepted: nothing goes past the handshake, the message stays queued.
#[test]
fn bad_certificates_are_never_accepted() {
    for stem in ["expired", "wronghost", "selfsigned"] {
        for tls in ["implicit", "starttls"] {
            let server = Server::start(&format!("cert-{stem}-{tls}"), tls, stem, &[]);
            let state = State::new(&format!("cert-{stem}-{tls}"));
            let id = state.submit_due(
                "shop",
                &limits("0.1/20/24h"),
                &["customer@example.org"],
                &message("shop", 1, "customer@example.org"),
            );
            let out = run_once(&state, &server.config(&state.dir, ""));
            assert!(out.contains("temporary failures 1"), "{stem}/{tls}: {out}");
            assert!(
                out.contains("ALERT"),
                "{stem}/{tls}: a TLS failure alerts the operator: {out}"
            );
            let m = state_of(&state, id);
            assert_eq!(m.entry.state, MessageState::Queued, "{stem}/{tls}");
            assert!(
                m.entry.last_error.unwrap_or_default().contains("tls"),
                "{stem}/{tls}"
            );
            assert!(
                server.messages().is_empty(),
                "{stem}/{tls}: nothing may be delivered"
            );
            let events = server.events();
            for cmd in ["MAIL", "RCPT", "DATA", "AUTH"] {
                assert!(
                    !events.iter().any(|e| e == cmd),
                    "{stem}/{tls}: {cmd} went through: {events:?}"
                );
            }
        }
    }
}

/// Failures over the bounce ratio turn the account to bounce; the notice goes at once to
/// the report-to address (and reaches the relay), and only once.
#[test]
fn bounce_ratio_trip_sends_one_notice() {
    let server = Server::start(
        "bounce-trip",
        "implicit",
        "good",
        &[
            "--mode",
            "550",
            "--fault-at",
            "rcpt",
            "--only-rcpt",
            "nobody@example.org",
        ],
    );
    let state = State::new("bounce-trip");
    let l = limits("0.1/2/24h");
    state
        .store()
        .set_report_to("shop", Some("owner@shop.example"), now())
        .unwrap();
    let ids: Vec<_> = (0..3)
        .map(|n| {
            state.submit_due(
                "shop",
                &l,
                &["nobody@example.org"],
                &message("shop", n, "nobody@example.org"),
            )
        })
        .collect();
    // One delivery at a time: with N in parallel, up to N-1 messages already handed to
    // the relay when the account turns red still complete.
    let config = server.config(&state.dir, "[runner]\nconcurrency = 1");
    let out = run_once(&state, &config);
    assert!(out.contains("notices 1"), "{out}");

    let mut store = state.store();
    let snap = store.status_snapshot("shop", now()).unwrap();
    assert_eq!(snap.status, Status::Bounce, "{out}");
    // The runner stopped taking the account's mail once it turned red.
    let failed = ids
        .iter()
        .filter(|id| store.queue_show(**id).unwrap().entry.state == MessageState::Failed)
        .count();
    assert_eq!(failed, 2, "{out}");
    assert_eq!(
        store.queue_show(ids[2]).unwrap().entry.state,
        MessageState::Held
    );

    let got = server.messages();
    assert_eq!(got.len(), 1, "only the notice is accepted: {out}");
    let (eml, env) = &got[0];
    assert_eq!(env["rcpt_tos"], serde_json::json!(["owner@shop.example"]));
    assert_eq!(env["mail_from"], "mailguard@hosting.test");
    let text = String::from_utf8_lossy(eml);
    assert!(
        text.contains("Subject: mailguard: shop is now bounce"),
        "{text}"
    );
    assert!(
        text.contains("/var/www/shop/contact.php:42"),
        "names the script: {text}"
    );
    assert!(text.contains("captcha"), "{text}");
    assert!(text.contains("Auto-Submitted: auto-generated"), "{text}");

    // A restart does not send it again.
    let out = run_once(&state, &config);
    assert!(out.contains("notices 0"), "{out}");
    assert_eq!(server.messages().len(), 1);
}

/// A spam-limit trip gets the "Abuse on hosting ACCOUNT" subject; an account without
/// report-to gets no notice but the trip is marked handled.
#[test]
fn spam_trip_notice_subject() {
    let server = Server::start("spam-trip", "implicit", "good", &[]);
    let state = State::new("spam-trip");
    let l: mailguard_core::limits::Limits = "quota= burst= spam=2/1h".parse().unwrap();
    let mut store = state.store();
    store
        .set_report_to("blog", Some("owner@blog.example"), now())
        .unwrap();
    let rcpts = vec!["x@example.org".to_owned()];
    let origin = mailguard_store::Origin {
        file: Some("/var/www/blog/wp-content/uploads/x.php".into()),
        line: Some(3),
        ..Default::default()
    };
    let spam = mailguard_store::SpamSummary {
        score: 12.0,
        rules: vec!["shouting-subject".into()],
        refuse: true,
    };
    for account in ["blog", "silent"] {
        for _ in 0..2 {
            store
                .submit(
                    account,
                    &l,
                    mailguard_store::Submission {
                        raw: b"Subject: BUY NOW\r\n\r\nx\r\n",
                        envelope_from: "",
                        recipients: &rcpts,
                        origin: &origin,
                        spam: Some(&spam),
                    },
                    now(),
                    mailguard_store::Mode::Enforce,
                )
                .unwrap();
        }
        assert_eq!(
            store.status_snapshot(account, now()).unwrap().status,
            Status::Spam
        );
    }
    drop(store);
    let out = run_once(&state, &server.config(&state.dir, ""));
    assert!(out.contains("notices 1"), "{out}");
    let got = server.messages();
    assert_eq!(got.len(), 1, "{out}");
    let text = String::from_utf8_lossy(&got[0].0);
    assert!(
        text.contains("Subject: Abuse on hosting blog\r\n"),
        "{text}"
    );
    assert!(
        text.contains("/var/www/blog/wp-content/uploads/x.php:3"),
        "{text}"
    );
    assert!(text.contains("purge"), "{text}");
    let out = run_once(&state, &server.config(&state.dir, ""));
    assert!(out.contains("notices 0"), "{out}");
}

#[test]
fn usage_and_config_errors_are_clear() {
    let state = State::new("usage");
    let out = run(&["run", "--bogus"]);
    assert_eq!(out.status.code(), Some(2));
    let missing = state.dir.join("nope.toml");
    let out = run(&[
        "run",
        "--once",
        "--state-dir",
        state.dir.to_str().unwrap(),
        "--config",
        missing.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", harness::text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope.toml"));
    std::fs::create_dir_all(&state.dir).unwrap();
    let bad = state.dir.join("bad.toml");
    std::fs::write(&bad, "[runner]\nintervall = \"1s\"\n").unwrap();
    let out = run(&[
        "run",
        "--once",
        "--state-dir",
        state.dir.to_str().unwrap(),
        "--config",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("runner.intervall"),
        "{}",
        harness::text(&out)
    );
}

//! `mailguard report`: the day's failures per account, printed with --dry-run and mailed
//! to the report-to address through the configured relay.

#[path = "runner_harness/mod.rs"]
mod harness;

use harness::{limits, message, run, text, Server, State};
use mailguard_store::{now, Failure, Outcome};

/// Two failures for `shop` (one 550, one 554), one sent message, nothing for `blog`.
fn fill(state: &State) {
    let l = limits("0.5/100/24h");
    let mut store = state.store();
    store
        .set_report_to("shop", Some("owner@shop.example"), now())
        .unwrap();
    store
        .set_report_to("blog", Some("owner@blog.example"), now())
        .unwrap();
    drop(store);
    let fail = |rcpt: &str, code: u16, enhanced: &str, text: &str| {
        let id = state.submit_at("shop", &l, &[rcpt], &message("shop", 1, rcpt), now());
        state
            .store()
            .record_delivery(
                id,
                &Outcome::PermFail(vec![Failure {
                    recipient: rcpt.to_owned(),
                    code: Some(code),
                    enhanced: Some(enhanced.to_owned()),
                    text: text.to_owned(),
                }])
                .into(),
                now(),
            )
            .unwrap();
    };
    fail("nobody@example.org", 550, "5.1.1", "User unknown");
    fail(
        "spamtrap@example.net",
        554,
        "5.7.1",
        "Message rejected as spam",
    );
    let id = state.submit_at(
        "shop",
        &l,
        &["ok@example.org"],
        &message("shop", 2, "ok@example.org"),
        now(),
    );
    state
        .store()
        .record_delivery(id, &Outcome::Sent { rejected: vec![] }.into(), now())
        .unwrap();
    let id = state.submit_at(
        "blog",
        &l,
        &["ok@example.org"],
        &message("blog", 1, "ok@example.org"),
        now(),
    );
    state
        .store()
        .record_delivery(id, &Outcome::Sent { rejected: vec![] }.into(), now())
        .unwrap();
}

#[test]
fn dry_run_lists_the_days_failures() {
    let state = State::new("report-dry");
    fill(&state);
    let day = now().day().to_string();
    let dir = state.dir.to_str().unwrap();
    let out = run(&[
        "report",
        "--state-dir",
        dir,
        "--account",
        "shop",
        "--day",
        &day,
        "--dry-run",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("To: owner@shop.example"), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "Subject: mailguard: 2 failed deliveries of shop on {day}"
        )),
        "{stdout}"
    );
    for needle in [
        "nobody@example.org  550 5.1.1  User unknown  /var/www/shop/contact.php:42",
        "spamtrap@example.net  554 5.7.1  Message rejected as spam",
    ] {
        assert!(stdout.contains(needle), "missing {needle:?} in {stdout}");
    }
    assert!(
        !stdout.contains("ok@example.org"),
        "only failures are listed: {stdout}"
    );

    // --all: only accounts with failures; blog had none.
    let out = run(&[
        "report",
        "--state-dir",
        dir,
        "--all",
        "--day",
        &day,
        "--dry-run",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.matches("Subject: ").count(), 1, "{stdout}");
    assert!(!stdout.contains("owner@blog.example"));

    // Another day: nothing to send, silent, exit 0 (cron friendly).
    let out = run(&["report", "--state-dir", dir, "--all", "--day", "2001-01-01"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        out.stdout.is_empty() && out.stderr.is_empty(),
        "{}",
        text(&out)
    );

    let out = run(&["report", "--state-dir", dir, "--day", "2001-02-30", "--all"]);
    assert_eq!(out.status.code(), Some(2));
    let out = run(&["report", "--state-dir", dir]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn the_report_reaches_the_relay() {
    let server = Server::start("report-send", "implicit", "good", &[]);
    let state = State::new("report-send");
    fill(&state);
    let config = server.config(&state.dir, "");
    let day = now().day().to_string();
    let out = run(&[
        "report",
        "--state-dir",
        state.dir.to_str().unwrap(),
        "--all",
        "--day",
        &day,
        "--config",
        config.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let got = server.messages();
    assert_eq!(got.len(), 1, "{}", text(&out));
    let (eml, env) = &got[0];
    assert_eq!(env["rcpt_tos"], serde_json::json!(["owner@shop.example"]));
    assert_eq!(env["mail_from"], "mailguard@hosting.test");
    let body = String::from_utf8_lossy(eml);
    assert!(
        body.contains("nobody@example.org  550 5.1.1  User unknown"),
        "{body}"
    );
    assert!(body.contains("spamtrap@example.net"), "{body}");
    assert!(body.contains("X-MailGuard-Notice: report"), "{body}");
}

//! `mailguard run` with a real spam engine in front of the relay (`[engine]`): the engine's
//! reject is a spam verdict like ours (kept for review, counted toward the spam status,
//! never relayed); an engine that cannot be asked lets mail go out on the guide rules
//! alone and says so. The real-engine test needs SpamAssassin's spamd, started by
//! tests/engine/run.sh (it sets MAILGUARD_SPAMD_ADDRESS and runs the ignored tests).

#[path = "runner_harness/mod.rs"]
mod harness;

use harness::{limits, message, run_once, Server, State};
use mailguard_store::{now, MessageState};

/// SpamAssassin's and rspamd's test string: always spam.
const GTUBE: &str = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X";

fn gtube(n: u32) -> Vec<u8> {
    format!(
        "To: customer@example.org\r\nSubject: offer {n}\r\nFrom: shop@shop.example\r\n\r\n{GTUBE}\r\n"
    )
    .into_bytes()
}

#[test]
#[ignore = "needs spamd: run tests/engine/run.sh"]
fn spamd_reject_is_kept_for_review_and_never_relayed() {
    let address = std::env::var("MAILGUARD_SPAMD_ADDRESS").expect("MAILGUARD_SPAMD_ADDRESS");
    let server = Server::start("engine-spamd", "implicit", "good", &[]);
    let state = State::new("engine-spamd");
    let l = limits("0.1/20/24h");
    let rcpt = ["customer@example.org"];
    let ham = state.submit_due("shop", &l, &rcpt, &message("shop", 1, rcpt[0]));
    let spam = state.submit_due("shop", &l, &rcpt, &gtube(2));
    let config = server.config(
        &state.dir,
        &format!("[engine]\nkind = \"spamd\"\naddress = \"{address}\"\ntimeout = \"20s\""),
    );
    let out = run_once(&state, &config);
    assert!(out.contains("spam engine: refused 1, unavailable"), "{out}");
    let mut store = state.store();
    assert_eq!(
        store.queue_show(ham).unwrap().entry.state,
        MessageState::Sent,
        "{out}"
    );
    let refused = store.queue_show(spam).unwrap();
    assert_eq!(refused.entry.state, MessageState::RefusedSpam, "{out}");
    assert_eq!(
        server.messages().len(),
        1,
        "only the ham reaches the relay: {out}"
    );
    let snap = store.status_snapshot("shop", now()).unwrap();
    assert_eq!(snap.refused_total, 1);
    assert!(store.check_integrity().unwrap().is_ok());
}

#[test]
fn an_engine_that_cannot_be_asked_lets_mail_go_on_the_guide_rules() {
    let server = Server::start("engine-down", "implicit", "good", &[]);
    let state = State::new("engine-down");
    let l = limits("0.1/20/24h");
    let rcpt = ["customer@example.org"];
    let id = state.submit_due("shop", &l, &rcpt, &message("shop", 1, rcpt[0]));
    // Nothing listens on port 1.
    let config = server.config(
        &state.dir,
        "[engine]\nkind = \"spamd\"\naddress = \"127.0.0.1:1\"\ntimeout = \"2s\"",
    );
    let out = run_once(&state, &config);
    assert!(
        out.contains("spam engine: refused 0, unavailable (relayed on the guide rules alone) 1"),
        "{out}"
    );
    assert_eq!(
        state.store().queue_show(id).unwrap().entry.state,
        MessageState::Sent
    );
    assert_eq!(server.messages().len(), 1);
}

#[test]
fn on_failure_hold_keeps_the_message_for_the_next_attempt() {
    let server = Server::start("engine-hold", "implicit", "good", &[]);
    let state = State::new("engine-hold");
    let l = limits("0.1/20/24h");
    let rcpt = ["customer@example.org"];
    let id = state.submit_due("shop", &l, &rcpt, &message("shop", 1, rcpt[0]));
    let config = server.config(
        &state.dir,
        "[engine]\nkind = \"spamd\"\naddress = \"127.0.0.1:1\"\ntimeout = \"2s\"\non_failure = \"hold\"",
    );
    let out = run_once(&state, &config);
    let entry = state.store().queue_show(id).unwrap().entry;
    assert_eq!(entry.state, MessageState::Queued, "{out}");
    assert_eq!(entry.attempts, 1, "{out}");
    assert!(server.messages().is_empty(), "{out}");
}

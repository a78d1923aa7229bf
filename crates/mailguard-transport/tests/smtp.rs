//! SMTP delivery against real servers on loopback: tests/servers/smtpd.py (aiosmtpd,
//! TLS, AUTH, fault modes) and Postfix's smtp-sink.

mod common;

use common::*;
use mailguard_transport::{DeliveryError, Kind, SmtpTransport, Stage, Transport};

fn send(
    config_lines: &str,
    rcpt: &[&str],
    raw: &[u8],
) -> Result<mailguard_transport::Delivered, DeliveryError> {
    let mut t = SmtpTransport::new(&smtp_config(config_lines)).expect("transport");
    t.send("bounces+T1@shop.example.com", &rcpts(rcpt), raw)
}

fn tls_lines(port: u16, security: &str, extra: &str) -> String {
    format!(
        "host = \"localhost\"\nport = {port}\nsecurity = \"{security}\"\n{}\n{extra}",
        ca_line()
    )
}

fn plain_lines(port: u16, extra: &str) -> String {
    format!("host = \"127.0.0.1\"\nport = {port}\nsecurity = \"none\"\n{extra}")
}

/// Nothing beyond the TLS negotiation reached the server: no AUTH, MAIL, RCPT or DATA,
/// and no message recorded.
fn assert_nothing_sent(server: &Server) {
    let events = server.event_names();
    for forbidden in ["AUTH", "MAIL", "RCPT", "DATA"] {
        assert!(
            !events.iter().any(|e| e == forbidden),
            "{forbidden} reached the server: {events:?}"
        );
    }
    assert!(server.messages().is_empty(), "a message was recorded");
}

fn assert_reply(e: &DeliveryError, code: u16, enhanced: &str, stage: Stage) {
    assert_eq!(e.kind(), Kind::Reply, "{e}");
    assert_eq!(e.code(), Some(code), "{e}");
    assert_eq!(
        e.enhanced_status().map(|s| s.to_string()).as_deref(),
        Some(enhanced),
        "{e}"
    );
    assert_eq!(e.stage(), stage, "{e}");
    assert_eq!(e.is_transient(), code < 500, "{e}");
    assert_eq!(e.is_permanent(), code >= 500, "{e}");
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

// ---------------------------------------------------------------- TLS and AUTH

#[test]
fn implicit_tls_delivers_the_exact_message() {
    let server = Server::tls("implicit-ok", "implicit", "good", &[]);
    let delivered = send(
        &tls_lines(server.port, "ssl", ""),
        &["rcpt@example.org"],
        &message("A1"),
    )
    .unwrap();
    assert_eq!(delivered.accepted, vec!["rcpt@example.org".to_string()]);
    assert!(delivered.refused.is_empty());
    assert!(delivered.reply.starts_with("250"), "{}", delivered.reply);
    let messages = server.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].0, message_as_received("A1"));
    assert!(messages[0].1.contains("\"tls\": true"), "{}", messages[0].1);
    assert!(
        messages[0]
            .1
            .contains("\"mail_from\": \"bounces+T1@shop.example.com\""),
        "{}",
        messages[0].1
    );
}

#[test]
fn starttls_upgrades_before_anything_is_sent() {
    let server = Server::tls("starttls-ok", "starttls", "good", &[]);
    send(
        &tls_lines(server.port, "starttls", ""),
        &["rcpt@example.org"],
        &message("B1"),
    )
    .unwrap();
    let events = server.events();
    let names: Vec<&str> = events.iter().map(|(e, _)| e.as_str()).collect();
    let starttls = names
        .iter()
        .position(|e| *e == "STARTTLS")
        .expect("STARTTLS used");
    let mail = names.iter().position(|e| *e == "MAIL").expect("MAIL sent");
    assert!(starttls < mail, "{names:?}");
    assert_eq!(server.messages()[0].0, message_as_received("B1"));
    assert!(server.messages()[0].1.contains("\"tls\": true"));
}

#[test]
fn auth_plain_over_implicit_tls() {
    let server = Server::tls(
        "auth-plain",
        "implicit",
        "good",
        &["--auth", "relayuser:s3cret"],
    );
    let lines = tls_lines(
        server.port,
        "ssl",
        "username = \"relayuser\"\npassword = \"s3cret\"",
    );
    send(&lines, &["rcpt@example.org"], &message("C1")).unwrap();
    assert!(server.events().contains(&("AUTH".into(), "PLAIN".into())));
    assert!(server.messages()[0]
        .1
        .contains("\"auth_user\": \"relayuser\""));
}

#[test]
fn auth_login_over_starttls() {
    let server = Server::tls(
        "auth-login",
        "starttls",
        "good",
        &["--auth", "relayuser:s3cret", "--auth-exclude", "PLAIN"],
    );
    let lines = tls_lines(
        server.port,
        "starttls",
        "username = \"relayuser\"\npassword = \"s3cret\"",
    );
    send(&lines, &["rcpt@example.org"], &message("C2")).unwrap();
    assert!(server.events().contains(&("AUTH".into(), "LOGIN".into())));
    assert!(server.messages()[0]
        .1
        .contains("\"auth_user\": \"relayuser\""));
}

#[test]
fn wrong_password_is_a_transient_auth_failure() {
    let server = Server::tls(
        "auth-wrong",
        "implicit",
        "good",
        &["--auth", "relayuser:s3cret"],
    );
    let lines = tls_lines(
        server.port,
        "ssl",
        "username = \"relayuser\"\npassword = \"wrong\"",
    );
    let e = send(&lines, &["rcpt@example.org"], &message("C3")).unwrap_err();
    assert_eq!(e.kind(), Kind::Auth, "{e}");
    assert_eq!(e.stage(), Stage::Auth);
    assert_eq!(e.code(), Some(535));
    assert!(
        e.is_transient(),
        "our credentials must never bounce the sender's mail"
    );
    assert!(server.messages().is_empty());
    assert!(!server.event_names().contains(&"MAIL".to_string()));
}

#[test]
fn bad_certificates_are_refused_before_any_byte_of_mail() {
    for (stem, why) in [
        ("wronghost", "certificate for another host name"),
        ("expired", "expired certificate"),
        ("selfsigned", "self-signed certificate"),
    ] {
        for (mode, security) in [("implicit", "ssl"), ("starttls", "starttls")] {
            let server = Server::tls(
                &format!("bad-{stem}-{mode}"),
                mode,
                stem,
                &["--auth", "relayuser:s3cret"],
            );
            let lines = tls_lines(
                server.port,
                security,
                "username = \"relayuser\"\npassword = \"s3cret\"",
            );
            let e = send(&lines, &["rcpt@example.org"], &message("D1")).unwrap_err();
            assert_eq!(e.kind(), Kind::Tls, "{why} over {mode}: {e}");
            assert!(e.is_transient(), "{why} over {mode}: {e}");
            assert_nothing_sent(&server);
        }
    }
}

#[test]
fn a_certificate_from_an_unknown_ca_is_refused() {
    // The good certificate, but the client does not know the test CA.
    let server = Server::tls("unknown-ca", "implicit", "good", &[]);
    let lines = format!(
        "host = \"localhost\"\nport = {}\nsecurity = \"ssl\"",
        server.port
    );
    let e = send(&lines, &["rcpt@example.org"], &message("D2")).unwrap_err();
    assert_eq!(e.kind(), Kind::Tls, "{e}");
    assert_nothing_sent(&server);
}

#[test]
fn starttls_not_offered_means_no_plaintext_fallback() {
    let server = Server::start("no-starttls", &["--tls", "none"]);
    let lines = tls_lines(server.port, "starttls", "");
    let e = send(&lines, &["rcpt@example.org"], &message("D3")).unwrap_err();
    assert_eq!(e.kind(), Kind::Tls, "{e}");
    assert_eq!(e.stage(), Stage::StartTls);
    assert!(e.is_transient());
    assert_nothing_sent(&server);
}

#[test]
fn a_tls_handshake_that_never_answers_times_out() {
    // A plain server that accepts and stays silent: the ClientHello gets no answer.
    let server = Server::start(
        "tls-stall",
        &["--tls", "none", "--mode", "stall", "--fault-at", "greeting"],
    );
    let lines = tls_lines(server.port, "ssl", "connect_timeout = \"1s\"");
    let e = send(&lines, &["rcpt@example.org"], &message("D4")).unwrap_err();
    assert_eq!(e.kind(), Kind::Timeout, "{e}");
    assert_eq!(e.stage(), Stage::Connect);
    assert!(e.is_transient());
}

// ---------------------------------------------------------------- fault modes

#[test]
fn fault_421_at_mail_from() {
    let server = Server::start("f421", &["--mode", "421"]);
    let e = send(
        &plain_lines(server.port, ""),
        &["rcpt@example.org"],
        &message("E1"),
    )
    .unwrap_err();
    assert_reply(&e, 421, "4.3.2", Stage::MailFrom);
    assert!(server.messages().is_empty());
}

#[test]
fn fault_451_after_data() {
    let server = Server::start("f451", &["--mode", "451"]);
    let e = send(
        &plain_lines(server.port, ""),
        &["rcpt@example.org"],
        &message("E2"),
    )
    .unwrap_err();
    assert_reply(&e, 451, "4.3.0", Stage::Message);
    assert!(
        !e.possibly_delivered(),
        "the relay answered: it did not take it"
    );
    assert!(server.messages().is_empty());
}

#[test]
fn fault_452_for_one_recipient_delivers_to_the_others() {
    let server = Server::start(
        "f452",
        &["--mode", "452", "--only-rcpt", "busy@example.org"],
    );
    let delivered = send(
        &plain_lines(server.port, ""),
        &["ok@example.org", "busy@example.org"],
        &message("E3"),
    )
    .unwrap();
    assert_eq!(delivered.accepted, vec!["ok@example.org".to_string()]);
    assert_eq!(delivered.refused.len(), 1);
    let refused = &delivered.refused[0];
    assert_reply(refused, 452, "4.5.3", Stage::RcptTo);
    assert_eq!(refused.recipient(), Some("busy@example.org"));
    let messages = server.messages();
    assert_eq!(messages.len(), 1);
    assert!(messages[0].1.contains("\"ok@example.org\""));
    assert!(!messages[0].1.contains("busy@example.org"));
}

#[test]
fn fault_452_for_every_recipient() {
    let server = Server::start("f452-all", &["--mode", "452"]);
    let e = send(
        &plain_lines(server.port, ""),
        &["a@example.org", "b@example.org"],
        &message("E4"),
    )
    .unwrap_err();
    assert_reply(&e, 452, "4.5.3", Stage::RcptTo);
    assert_eq!(e.per_recipient().len(), 2);
    assert_eq!(e.per_recipient()[1].recipient(), Some("b@example.org"));
    assert!(!server.event_names().contains(&"DATA".to_string()));
}

#[test]
fn fault_550_unknown_user() {
    let server = Server::start("f550", &["--mode", "550"]);
    let e = send(
        &plain_lines(server.port, ""),
        &["ghost@example.org"],
        &message("E5"),
    )
    .unwrap_err();
    assert_reply(&e, 550, "5.1.1", Stage::RcptTo);
    assert_eq!(e.recipient(), Some("ghost@example.org"));
    assert!(e.text().contains("User unknown"), "{}", e.text());
    assert!(server.messages().is_empty());
}

#[test]
fn fault_550_for_one_recipient_is_permanent_for_that_one_only() {
    let server = Server::start(
        "f550-one",
        &["--mode", "550", "--only-rcpt", "ghost@example.org"],
    );
    let delivered = send(
        &plain_lines(server.port, ""),
        &["ghost@example.org", "ok@example.org"],
        &message("E6"),
    )
    .unwrap();
    assert_eq!(delivered.accepted, vec!["ok@example.org".to_string()]);
    assert_reply(&delivered.refused[0], 550, "5.1.1", Stage::RcptTo);
    assert_eq!(server.messages().len(), 1);
}

#[test]
fn fault_550_at_mail_from_with_custom_reply() {
    let server = Server::start(
        "f550-mail",
        &[
            "--mode",
            "550",
            "--fault-at",
            "mail",
            "--reply",
            "550 5.7.1 Sender address rejected: not owned by user",
        ],
    );
    let e = send(
        &plain_lines(server.port, ""),
        &["rcpt@example.org"],
        &message("E7"),
    )
    .unwrap_err();
    assert_reply(&e, 550, "5.7.1", Stage::MailFrom);
    assert!(e.text().contains("not owned by user"));
}

#[test]
fn fault_554_after_data() {
    let server = Server::start("f554", &["--mode", "554"]);
    let e = send(
        &plain_lines(server.port, ""),
        &["rcpt@example.org"],
        &message("E8"),
    )
    .unwrap_err();
    assert_reply(&e, 554, "5.7.1", Stage::Message);
    assert!(server.messages().is_empty());
}

#[test]
fn connection_dropped_in_the_middle_of_data() {
    let server = Server::start("drop-mid", &["--mode", "drop-mid-data"]);
    // Big enough that the server closes while the client is still writing.
    let mut raw = message("F1");
    for i in 0..40_000 {
        raw.extend_from_slice(
            format!("filler line {i:06} ..........................\r\n").as_bytes(),
        );
    }
    let e = send(&plain_lines(server.port, ""), &["rcpt@example.org"], &raw).unwrap_err();
    assert!(e.is_transient(), "{e}");
    assert!(matches!(e.kind(), Kind::Connection | Kind::Protocol), "{e}");
    assert_eq!(e.stage(), Stage::Message, "{e}");
    assert!(server.event_names().contains(&"DATA-DROPPED".to_string()));
    assert!(server.messages().is_empty());
}

#[test]
fn connection_dropped_after_the_final_dot_may_have_delivered() {
    let server = Server::start("drop-after", &["--mode", "drop-after-data"]);
    let e = send(
        &plain_lines(server.port, ""),
        &["rcpt@example.org"],
        &message("F2"),
    )
    .unwrap_err();
    assert!(e.is_transient(), "{e}");
    assert_eq!(e.stage(), Stage::Message);
    assert!(e.possibly_delivered(), "{e}");
}

#[test]
fn stall_after_data_hits_the_data_timeout() {
    let server = Server::start("stall-data", &["--mode", "stall"]);
    let e = send(
        &plain_lines(server.port, "data_timeout = \"1s\""),
        &["rcpt@example.org"],
        &message("G1"),
    )
    .unwrap_err();
    assert_eq!(e.kind(), Kind::Timeout, "{e}");
    assert_eq!(e.stage(), Stage::Message);
    assert!(e.is_transient());
    assert!(e.possibly_delivered());
}

#[test]
fn stall_at_rcpt_hits_the_command_timeout() {
    let server = Server::start("stall-rcpt", &["--mode", "stall", "--fault-at", "rcpt"]);
    let e = send(
        &plain_lines(server.port, "command_timeout = \"1s\""),
        &["rcpt@example.org"],
        &message("G2"),
    )
    .unwrap_err();
    assert_eq!(e.kind(), Kind::Timeout, "{e}");
    assert_eq!(e.stage(), Stage::RcptTo);
    assert!(e.is_transient());
}

#[test]
fn stall_at_greeting_hits_the_connect_timeout() {
    let server = Server::start(
        "stall-greeting",
        &["--mode", "stall", "--fault-at", "greeting"],
    );
    let e = send(
        &plain_lines(server.port, "connect_timeout = \"1s\""),
        &["rcpt@example.org"],
        &message("G3"),
    )
    .unwrap_err();
    assert_eq!(e.kind(), Kind::Timeout, "{e}");
    assert_eq!(e.stage(), Stage::Connect);
}

#[test]
fn connection_refused_is_transient() {
    let port = free_port();
    let e = send(
        &plain_lines(port, ""),
        &["rcpt@example.org"],
        &message("G4"),
    )
    .unwrap_err();
    assert_eq!(e.kind(), Kind::Connection, "{e}");
    assert_eq!(e.stage(), Stage::Connect);
    assert!(e.is_transient());
}

#[test]
fn invalid_recipient_is_refused_locally_and_valid_ones_delivered() {
    let server = Server::start("bad-address", &[]);
    let delivered = send(
        &plain_lines(server.port, ""),
        &["not an address", "ok@example.org"],
        &message("G5"),
    )
    .unwrap();
    assert_eq!(delivered.accepted, vec!["ok@example.org".to_string()]);
    assert_eq!(delivered.refused[0].kind(), Kind::Address);
    assert!(delivered.refused[0].is_permanent());
    assert_eq!(server.messages().len(), 1);
}

#[test]
fn null_sender_and_eight_bit_body() {
    let server = Server::start("null-sender", &[]);
    let raw = "To: rcpt@example.org\r\nSubject: zażółć\r\n\r\nGęślą jaźń\r\n".as_bytes();
    let mut t = SmtpTransport::new(&smtp_config(&plain_lines(server.port, ""))).unwrap();
    t.send("", &rcpts(&["rcpt@example.org"]), raw).unwrap();
    let messages = server.messages();
    assert_eq!(messages[0].0, raw);
    assert!(
        messages[0].1.contains("\"mail_from\": \"<>\""),
        "{}",
        messages[0].1
    );
    assert!(messages[0].1.contains("BODY=8BITMIME"), "{}", messages[0].1);
}

// ---------------------------------------------------------------- smtp-sink

#[test]
fn smtp_sink_accepts() {
    let sink = Sink::start("sink-accept", &[]);
    let delivered = send(
        &plain_lines(sink.port, ""),
        &["rcpt@example.org"],
        &message("H1"),
    )
    .unwrap();
    assert!(delivered.reply.starts_with("250"), "{}", delivered.reply);
    let dumped = sink.dumped();
    assert_eq!(dumped.len(), 1);
    let text = String::from_utf8_lossy(&dumped[0]);
    assert!(
        text.contains("X-Mail-Args: <bounces+T1@shop.example.com>"),
        "{text}"
    );
    assert!(text.contains("X-Rcpt-Args: <rcpt@example.org>"), "{text}");
    assert!(text.contains("X-MailGuard-Id: H1"), "{text}");
    assert!(
        text.contains("\n.leading dot"),
        "dot-stuffing undone by the sink: {text}"
    );
}

#[test]
fn smtp_sink_hard_reject_at_rcpt() {
    let sink = Sink::start(
        "sink-550",
        &["-f", "RCPT", "-B", "550 5.1.1 No such user here"],
    );
    let e = send(
        &plain_lines(sink.port, ""),
        &["ghost@example.org"],
        &message("H2"),
    )
    .unwrap_err();
    assert_reply(&e, 550, "5.1.1", Stage::RcptTo);
    assert!(!sink
        .dumped()
        .iter()
        .any(|d| contains(d, b"X-MailGuard-Id: H2")));
}

#[test]
fn smtp_sink_421_and_disconnect_at_mail() {
    let sink = Sink::start("sink-421", &["-Q", "MAIL"]);
    let e = send(
        &plain_lines(sink.port, ""),
        &["rcpt@example.org"],
        &message("H3"),
    )
    .unwrap_err();
    assert!(e.is_transient(), "{e}");
    assert_eq!(e.code(), Some(421), "{e}");
    assert_eq!(e.stage(), Stage::MailFrom);
}

#[test]
fn smtp_sink_soft_reject_at_data() {
    let sink = Sink::start("sink-450", &["-r", "DATA"]);
    let e = send(
        &plain_lines(sink.port, ""),
        &["rcpt@example.org"],
        &message("H4"),
    )
    .unwrap_err();
    assert_reply(&e, 450, "4.3.0", Stage::Data);
    // smtp-sink dumps the envelope of a refused transaction, never its content.
    assert!(!sink
        .dumped()
        .iter()
        .any(|d| contains(d, b"X-MailGuard-Id: H4")));
}

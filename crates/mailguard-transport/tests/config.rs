//! mailguard.toml: defaults, validation, and the documented example.

use std::time::Duration;

use mailguard_transport::config::{parse_duration, DEFAULT_SENDMAIL_PATH};
use mailguard_transport::{Method, RetrySchedule, Security, SmtpConfig, Timeouts, TransportConfig};

fn parse(text: &str) -> Result<TransportConfig, mailguard_transport::ConfigError> {
    TransportConfig::from_toml_str(text)
}

fn smtp(text: &str) -> SmtpConfig {
    match parse(text).unwrap().method {
        Method::Smtp(s) => s,
        other => panic!("{other:?}"),
    }
}

fn error_key(text: &str) -> String {
    let e = parse(text).expect_err("must be refused");
    assert!(e.to_string().starts_with(&e.key), "{e}");
    e.key
}

#[test]
fn empty_file_means_stock_sendmail() {
    let c = parse("").unwrap();
    assert_eq!(c, TransportConfig::default());
    assert_eq!(
        c.method,
        Method::Sendmail {
            sendmail_path: DEFAULT_SENDMAIL_PATH.into()
        }
    );
    assert_eq!(c.retry, RetrySchedule::default());
    assert!(c.notices().is_empty());
}

#[test]
fn full_smtp_config() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    // Any well-formed certificate will do for parsing.
    std::fs::write(&ca, TEST_CERT).unwrap();
    let s = smtp(&format!(
        r#"
transport = "smtp"
other_section_key = "left to other parts of mailguard"
[smtp]
host = "relay.example.net"
port = 2465
security = "ssl"
username = "u"
password = "p4ss"
ca_file = {ca:?}
helo_name = "web01.example.com"
connect_timeout = "5s"
command_timeout = 60
data_timeout = "2m"
[retry]
base = "1m"
max = "2h"
jitter = 0.2
"#
    ));
    assert_eq!(s.host, "relay.example.net");
    assert_eq!(s.port, 2465);
    assert_eq!(s.security, Security::Ssl);
    let creds = s.credentials.as_ref().unwrap();
    assert_eq!(
        (creds.username.as_str(), creds.password.as_str()),
        ("u", "p4ss")
    );
    assert!(s.extra_ca_pem.is_some());
    assert_eq!(s.helo_name.as_deref(), Some("web01.example.com"));
    assert_eq!(
        s.timeouts,
        Timeouts {
            connect: Duration::from_secs(5),
            command: Duration::from_secs(60),
            data: Duration::from_secs(120)
        }
    );
    assert!(
        !format!("{s:?}").contains("p4ss"),
        "Debug shows the password"
    );
}

#[test]
fn port_follows_security() {
    assert_eq!(
        smtp("transport = \"smtp\"\n[smtp]\nhost = \"r.example\"").port,
        465
    );
    assert_eq!(
        smtp("transport = \"smtp\"\n[smtp]\nhost = \"r.example\"\nsecurity = \"starttls\"").port,
        587
    );
    assert_eq!(
        smtp("transport = \"smtp\"\n[smtp]\nhost = \"127.0.0.1\"\nsecurity = \"none\"").port,
        25
    );
}

#[test]
fn no_tls_only_on_loopback() {
    for host in [
        "smtp.example.com",
        "10.0.0.5",
        "192.0.2.1",
        "localhost.example.com",
        "::ffff:10.0.0.1",
    ] {
        let text = format!("transport = \"smtp\"\n[smtp]\nhost = {host:?}\nsecurity = \"none\"");
        assert_eq!(error_key(&text), "smtp.security", "{host}");
    }
    for host in ["localhost", "127.0.0.1", "127.1.2.3", "::1"] {
        let text = format!("transport = \"smtp\"\n[smtp]\nhost = {host:?}\nsecurity = \"none\"");
        let c = parse(&text).unwrap();
        let notices = c.notices();
        assert!(
            notices.iter().any(|n| n.contains("without TLS")),
            "{host}: {notices:?}"
        );
    }
}

#[test]
fn bad_values_name_their_key() {
    let smtp_with =
        |line: &str| format!("transport = \"smtp\"\n[smtp]\nhost = \"r.example\"\n{line}");
    assert_eq!(error_key("transport = \"carrier-pigeon\""), "transport");
    assert_eq!(error_key("transport = 1"), "transport");
    assert_eq!(error_key("transport = \"smtp\""), "smtp.host");
    assert_eq!(
        error_key("transport = \"smtp\"\n[smtp]\nport = 25"),
        "smtp.host"
    );
    assert_eq!(error_key("sendmail_path = \"\""), "sendmail_path");
    assert_eq!(error_key(&smtp_with("prot = 25")), "smtp.prot");
    assert_eq!(error_key(&smtp_with("port = 0")), "smtp.port");
    assert_eq!(error_key(&smtp_with("port = 70000")), "smtp.port");
    assert_eq!(error_key(&smtp_with("port = \"465\"")), "smtp.port");
    assert_eq!(
        error_key(&smtp_with("security = \"tls1.3\"")),
        "smtp.security"
    );
    assert_eq!(error_key(&smtp_with("username = \"u\"")), "smtp.password");
    assert_eq!(error_key(&smtp_with("password = \"p\"")), "smtp.username");
    assert_eq!(
        error_key(&smtp_with("ca_file = \"/nonexistent/ca.pem\"")),
        "smtp.ca_file"
    );
    assert_eq!(
        error_key(&smtp_with("ca_file = \"/etc/hostname\"")),
        "smtp.ca_file"
    );
    assert_eq!(
        error_key(&smtp_with("helo_name = \"bad name\"")),
        "smtp.helo_name"
    );
    assert_eq!(
        error_key(&smtp_with("connect_timeout = \"soon\"")),
        "smtp.connect_timeout"
    );
    assert_eq!(
        error_key(&smtp_with("data_timeout = 0")),
        "smtp.data_timeout"
    );
    assert_eq!(
        error_key(&smtp_with("command_timeout = \"0s\"")),
        "smtp.command_timeout"
    );
    assert_eq!(
        error_key("transport = \"smtp\"\n[smtp]\nhost = \"smtp://r.example:465\""),
        "smtp.host"
    );
    assert_eq!(
        error_key("[retry]\nbase = \"1h\"\nmax = \"1m\""),
        "retry.max"
    );
    assert_eq!(error_key("[retry]\njitter = 2.0"), "retry.jitter");
    assert_eq!(error_key("[retry]\nfactor = 3"), "retry.factor");
    assert_eq!(error_key("this is not toml"), "toml");
}

#[test]
fn durations() {
    assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
    assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
    assert_eq!(parse_duration("45"), Some(Duration::from_secs(45)));
    assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
    assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
    assert_eq!(parse_duration("2d"), Some(Duration::from_secs(172_800)));
    assert_eq!(parse_duration("1.5s"), None);
    assert_eq!(parse_duration("-1s"), None);
    assert_eq!(parse_duration("s"), None);
}

fn example() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/mailguard.toml"
    ))
    .unwrap()
}

#[test]
fn the_example_file_is_valid_and_its_defaults_are_the_real_ones() {
    // As shipped (everything commented out): the defaults.
    assert_eq!(parse(&example()).unwrap(), TransportConfig::default());

    // Every key uncommented: the documented values are the built-in defaults.
    let uncommented: String = example()
        .lines()
        .map(|l| match l.strip_prefix("# ") {
            Some(rest)
                if rest.split_once(" = ").is_some_and(|(k, _)| {
                    k.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                }) =>
            {
                rest
            }
            _ => l,
        })
        .filter(|l| !l.starts_with("ca_file"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(
        uncommented.contains("\ntransport = \"sendmail\"\n"),
        "{uncommented}"
    );
    let sendmail = parse(&uncommented).unwrap();
    assert_eq!(sendmail, TransportConfig::default());

    let as_smtp = uncommented.replace("\ntransport = \"sendmail\"\n", "\ntransport = \"smtp\"\n");
    let c = parse(&as_smtp).unwrap();
    assert_eq!(c.retry, RetrySchedule::default());
    let Method::Smtp(s) = c.method else { panic!() };
    assert_eq!(s.security, Security::Ssl);
    assert_eq!(s.port, Security::Ssl.default_port());
    assert_eq!(s.timeouts, Timeouts::default());
}

/// A throw-away self-signed certificate (only parsed, never trusted for anything).
const TEST_CERT: &str = "-----BEGIN CERTIFICATE-----
MIIBfzCCASWgAwIBAgIUbYerzvViWnduGhN0N2HHmnAeP/AwCgYIKoZIzj0EAwIw
FTETMBEGA1UEAwwKcGFyc2Utb25seTAeFw0yNjExMjcwMDU4MjFaFw0zNjExMjQw
MDU4MjFaMBUxEzARBgNVBAMMCnBhcnNlLW9ubHkwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAASslNSMigyxM+Qrcj3xoN0PCfpxWv6qyr8Agqqo3hN8RDQ8eEdMAdav
BUWB7J6fAA/3m1CuIwElpmcFDxrXwoWGo1MwUTAdBgNVHQ4EFgQUXLmFJePIYLGe
XB1NHGag7WRYCbcwHwYDVR0jBBgwFoAUXLmFJePIYLGeXB1NHGag7WRYCbcwDwYD
VR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNIADBFAiEArXDE3StAVWGBgRcBMMke
Td+rfQjcmhSux2Q1L88S4BQCIBLbRM1it9FnI0mRMspMveoHna5SrJfuqHNSSpc2
sb4x
-----END CERTIFICATE-----
";

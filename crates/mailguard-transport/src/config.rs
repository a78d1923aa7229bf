//! config: the transport part of the operator-owned `mailguard.toml`, read once into a
//! validated [`TransportConfig`].
//!
//! Relay credentials live in this file (root-owned, e.g. `/etc/mailguard/mailguard.toml`),
//! never in php.ini, where any script could read them with `ini_get()`. Every key, its
//! default and its meaning are in `examples/mailguard.toml`. Errors name the key.
//!
//! This module owns the top-level keys `transport` and `sendmail_path` and the tables
//! `[smtp]` and `[retry]`; inside those it rejects unknown keys (typos must not be
//! silently ignored). Other top-level keys belong to other parts of mailguard and are
//! left to them.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::{Table, Value};

use crate::retry::RetrySchedule;

/// The stock PHP default for `sendmail_path` on Linux.
pub const DEFAULT_SENDMAIL_PATH: &str = "/usr/sbin/sendmail -t -i";

/// The validated transport configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct TransportConfig {
    pub method: Method,
    pub retry: RetrySchedule,
}

/// How mail leaves the machine.
#[derive(Clone, Debug, PartialEq)]
pub enum Method {
    /// `transport = "sendmail"`: `sendmail_path` split into words and run without a
    /// shell, the sender as `-f ADDRESS` ([`crate::sendmail::sendmail_argv`]).
    Sendmail { sendmail_path: String },
    /// `transport = "smtp"`: a relay, through lettre.
    Smtp(SmtpConfig),
}

/// `[smtp]`.
#[derive(Clone, PartialEq)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub credentials: Option<Credentials>,
    /// PEM bytes of `ca_file`, read and checked at load time; trusted in addition to
    /// the built-in web PKI roots.
    pub extra_ca_pem: Option<Vec<u8>>,
    pub ca_file: Option<PathBuf>,
    /// The EHLO name; `None` means this machine's host name.
    pub helo_name: Option<String>,
    pub timeouts: Timeouts,
}

impl fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("credentials", &self.credentials)
            .field("ca_file", &self.ca_file)
            .field("helo_name", &self.helo_name)
            .field("timeouts", &self.timeouts)
            .finish()
    }
}

/// `smtp.username` / `smtp.password`. The password never shows in `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// `smtp.security`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Security {
    /// Implicit TLS from the first byte (port 465). Preferred: nothing travels in clear.
    Ssl,
    /// Plain connection upgraded with STARTTLS (port 587); refused if not offered.
    Starttls,
    /// No TLS at all: allowed only to a loopback host (a local MTA or test sink).
    None,
}

impl Security {
    pub fn as_str(&self) -> &'static str {
        match self {
            Security::Ssl => "ssl",
            Security::Starttls => "starttls",
            Security::None => "none",
        }
    }

    /// The port used when `smtp.port` is not set.
    pub fn default_port(&self) -> u16 {
        match self {
            Security::Ssl => 465,
            Security::Starttls => 587,
            Security::None => 25,
        }
    }
}

/// `smtp.connect_timeout`, `smtp.command_timeout`, `smtp.data_timeout`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP connect, the implicit-TLS handshake, the greeting and the first EHLO.
    pub connect: Duration,
    /// Each later command: STARTTLS (with its handshake), EHLO, AUTH, MAIL, RCPT, DATA, QUIT.
    pub command: Duration,
    /// Sending the message and waiting for the reply to the final dot.
    pub data: Duration,
}

impl Default for Timeouts {
    /// Postfix's and RFC 5321 §4.5.3.2's values: 30 s, 5 min, 10 min.
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(30),
            command: Duration::from_secs(300),
            data: Duration::from_secs(600),
        }
    }
}

impl Default for TransportConfig {
    /// What an install without a config file does: the stock sendmail pipe.
    fn default() -> Self {
        TransportConfig {
            method: Method::Sendmail {
                sendmail_path: DEFAULT_SENDMAIL_PATH.to_string(),
            },
            retry: RetrySchedule::default(),
        }
    }
}

/// A config that cannot be used; names the key (`smtp.port`) or the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

impl ConfigError {
    fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            key: key.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

impl std::error::Error for ConfigError {}

const SMTP_KEYS: &[&str] = &[
    "host",
    "port",
    "security",
    "username",
    "password",
    "ca_file",
    "helo_name",
    "connect_timeout",
    "command_timeout",
    "data_timeout",
];
const RETRY_KEYS: &[&str] = &["base", "max", "jitter"];

impl TransportConfig {
    /// Reads and validates the transport keys of a `mailguard.toml`.
    pub fn load(path: &Path) -> Result<TransportConfig, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new(path.display().to_string(), e.to_string()))?;
        Self::from_toml_str(&text).map_err(|e| ConfigError {
            message: format!("{} (in {})", e.message, path.display()),
            ..e
        })
    }

    /// Parses TOML text; see [`from_table`](Self::from_table).
    pub fn from_toml_str(text: &str) -> Result<TransportConfig, ConfigError> {
        let table: Table = text
            .parse()
            .map_err(|e: toml::de::Error| ConfigError::new("toml", e.to_string()))?;
        Self::from_table(&table)
    }

    /// Validates the transport keys of an already parsed file. A relative `ca_file`
    /// is taken relative to the working directory.
    pub fn from_table(table: &Table) -> Result<TransportConfig, ConfigError> {
        let method = match opt_str(table, "transport", "transport")?.unwrap_or("sendmail") {
            "sendmail" => {
                let sendmail_path = opt_str(table, "sendmail_path", "sendmail_path")?
                    .unwrap_or(DEFAULT_SENDMAIL_PATH);
                if sendmail_path.trim().is_empty() {
                    return Err(ConfigError::new("sendmail_path", "must not be empty"));
                }
                if sendmail_path.contains('\0') {
                    return Err(ConfigError::new("sendmail_path", "contains a NUL byte"));
                }
                Method::Sendmail {
                    sendmail_path: sendmail_path.to_string(),
                }
            }
            "smtp" => {
                let smtp = match table.get("smtp") {
                    Some(Value::Table(t)) => t,
                    Some(_) => return Err(ConfigError::new("smtp", "must be a table ([smtp])")),
                    None => {
                        return Err(ConfigError::new(
                            "smtp.host",
                            "transport = \"smtp\" needs an [smtp] table with host",
                        ))
                    }
                };
                Method::Smtp(SmtpConfig::from_table(smtp)?)
            }
            other => {
                return Err(ConfigError::new(
                    "transport",
                    format!("must be \"sendmail\" or \"smtp\", not {other:?}"),
                ))
            }
        };
        let retry = match table.get("retry") {
            None => RetrySchedule::default(),
            Some(Value::Table(t)) => retry_from_table(t)?,
            Some(_) => return Err(ConfigError::new("retry", "must be a table ([retry])")),
        };
        Ok(TransportConfig { method, retry })
    }

    /// Lines an operator should see at start-up (e.g. that mail goes unencrypted).
    pub fn notices(&self) -> Vec<String> {
        match &self.method {
            Method::Smtp(smtp) => smtp.notices(),
            Method::Sendmail { .. } => Vec::new(),
        }
    }
}

impl SmtpConfig {
    fn from_table(t: &Table) -> Result<SmtpConfig, ConfigError> {
        reject_unknown(t, "smtp", SMTP_KEYS)?;
        let host = opt_str(t, "host", "smtp.host")?
            .ok_or_else(|| ConfigError::new("smtp.host", "is required with transport = \"smtp\""))?
            .trim()
            .to_string();
        validate_host(&host)?;

        let security = match opt_str(t, "security", "smtp.security")?.unwrap_or("ssl") {
            "ssl" | "tls" => Security::Ssl,
            "starttls" => Security::Starttls,
            "none" => Security::None,
            other => {
                return Err(ConfigError::new(
                    "smtp.security",
                    format!("must be \"ssl\", \"starttls\" or \"none\", not {other:?}"),
                ))
            }
        };
        if security == Security::None && !is_loopback(&host) {
            return Err(ConfigError::new(
                "smtp.security",
                format!(
                    "\"none\" (no TLS) is allowed only for a loopback host \
                     (localhost, 127.0.0.0/8, ::1), not {host:?}; use \"ssl\" (port 465) \
                     or \"starttls\" (port 587)"
                ),
            ));
        }

        let port = match t.get("port") {
            None => security.default_port(),
            Some(Value::Integer(p)) if (1..=65535).contains(p) => *p as u16,
            Some(v) => {
                return Err(ConfigError::new(
                    "smtp.port",
                    format!("must be an integer from 1 to 65535, not {}", show(v)),
                ))
            }
        };

        let username = opt_str(t, "username", "smtp.username")?;
        let password = opt_str(t, "password", "smtp.password")?;
        let credentials = match (username, password) {
            (None, None) => None,
            (Some(u), Some(p)) if !u.is_empty() => Some(Credentials {
                username: u.to_string(),
                password: p.to_string(),
            }),
            (Some(_), Some(_)) => {
                return Err(ConfigError::new("smtp.username", "must not be empty"))
            }
            (Some(_), None) => {
                return Err(ConfigError::new(
                    "smtp.password",
                    "is required when smtp.username is set",
                ))
            }
            (None, Some(_)) => {
                return Err(ConfigError::new(
                    "smtp.username",
                    "is required when smtp.password is set",
                ))
            }
        };

        let ca_file = opt_str(t, "ca_file", "smtp.ca_file")?.map(PathBuf::from);
        let extra_ca_pem = match &ca_file {
            None => None,
            Some(path) => Some(read_ca_file(path)?),
        };

        let helo_name = opt_str(t, "helo_name", "smtp.helo_name")?.map(|h| h.trim().to_string());
        if let Some(h) = &helo_name {
            let ok = !h.is_empty()
                && h.len() <= 253
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
            if !ok {
                return Err(ConfigError::new(
                    "smtp.helo_name",
                    format!("must be a host name (letters, digits, '.', '-'), not {h:?}"),
                ));
            }
        }

        let defaults = Timeouts::default();
        let timeouts = Timeouts {
            connect: opt_duration(t, "connect_timeout", "smtp.connect_timeout")?
                .unwrap_or(defaults.connect),
            command: opt_duration(t, "command_timeout", "smtp.command_timeout")?
                .unwrap_or(defaults.command),
            data: opt_duration(t, "data_timeout", "smtp.data_timeout")?.unwrap_or(defaults.data),
        };

        Ok(SmtpConfig {
            host,
            port,
            security,
            credentials,
            extra_ca_pem,
            ca_file,
            helo_name,
            timeouts,
        })
    }

    /// Operator notices about this relay setup.
    pub fn notices(&self) -> Vec<String> {
        let mut notices = Vec::new();
        if self.security == Security::None {
            notices.push(format!(
                "mailguard: smtp.security = \"none\": mail to {}:{} travels without TLS \
                 (allowed because the host is loopback)",
                self.host, self.port
            ));
            if self.credentials.is_some() {
                notices.push(
                    "mailguard: smtp.username/password are sent without TLS (loopback only)"
                        .to_string(),
                );
            }
        }
        if self.security == Security::Starttls {
            // Research §5.1: STARTTLS has had injection bugs; 465 avoids the plaintext phase.
            notices.push(format!(
                "mailguard: smtp.security = \"starttls\" on {}:{}; \"ssl\" (port 465) is preferred",
                self.host, self.port
            ));
        }
        notices
    }
}

fn retry_from_table(t: &Table) -> Result<RetrySchedule, ConfigError> {
    reject_unknown(t, "retry", RETRY_KEYS)?;
    let defaults = RetrySchedule::default();
    let base = opt_duration(t, "base", "retry.base")?.unwrap_or(defaults.base);
    let max = opt_duration(t, "max", "retry.max")?.unwrap_or(defaults.max);
    if max < base {
        return Err(ConfigError::new(
            "retry.max",
            format!("must not be shorter than retry.base ({base:?}), is {max:?}"),
        ));
    }
    let jitter = match t.get("jitter") {
        None => defaults.jitter,
        Some(Value::Float(f)) if (0.0..=0.5).contains(f) => *f,
        Some(Value::Integer(0)) => 0.0,
        Some(v) => {
            return Err(ConfigError::new(
                "retry.jitter",
                format!(
                    "must be a fraction from 0.0 to 0.5 (0.1 = ±10 %), not {}",
                    show(v)
                ),
            ))
        }
    };
    Ok(RetrySchedule { base, max, jitter })
}

fn reject_unknown(t: &Table, table: &str, known: &[&str]) -> Result<(), ConfigError> {
    for key in t.keys() {
        if !known.contains(&key.as_str()) {
            return Err(ConfigError::new(
                format!("{table}.{key}"),
                format!("unknown key (known: {})", known.join(", ")),
            ));
        }
    }
    Ok(())
}

fn opt_str<'a>(t: &'a Table, key: &str, name: &str) -> Result<Option<&'a str>, ConfigError> {
    match t.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(v) => Err(ConfigError::new(
            name,
            format!("must be a string, not {}", v.type_str()),
        )),
    }
}

/// A duration: an integer number of seconds, or a string like `"500ms"`, `"30s"`,
/// `"5m"`, `"1h"`, `"2d"`. Zero is refused (it would mean "no timeout" to some APIs).
fn opt_duration(t: &Table, key: &str, name: &str) -> Result<Option<Duration>, ConfigError> {
    let d = match t.get(key) {
        None => return Ok(None),
        Some(Value::Integer(n)) if *n > 0 => Duration::from_secs(*n as u64),
        Some(Value::String(s)) => parse_duration(s).ok_or_else(|| {
            ConfigError::new(
                name,
                format!("{s:?} is not a duration (use e.g. \"30s\", \"500ms\", \"5m\", \"1h\")"),
            )
        })?,
        Some(v) => {
            return Err(ConfigError::new(
                name,
                format!("must be a positive duration like \"30s\", not {}", show(v)),
            ))
        }
    };
    if d.is_zero() {
        return Err(ConfigError::new(name, "must be greater than zero"));
    }
    Ok(Some(d))
}

/// `"500ms"`, `"30s"`, `"5m"`, `"1h"`, `"2d"`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let n: u64 = number.parse().ok()?;
    let d = match unit.trim() {
        "" | "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "m" | "min" => Duration::from_secs(n.checked_mul(60)?),
        "h" => Duration::from_secs(n.checked_mul(3600)?),
        "d" => Duration::from_secs(n.checked_mul(86400)?),
        _ => return None,
    };
    Some(d)
}

fn validate_host(host: &str) -> Result<(), ConfigError> {
    if host.is_empty() {
        return Err(ConfigError::new("smtp.host", "must not be empty"));
    }
    if host.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    let ok = host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if !ok {
        return Err(ConfigError::new(
            "smtp.host",
            format!(
                "{host:?} is not a host name or IP address (give the port in smtp.port, \
                 no scheme, no brackets)"
            ),
        ));
    }
    Ok(())
}

/// `localhost` or a loopback IP literal. Deliberately no DNS lookup: a name that
/// merely resolves to 127.0.0.1 today is not trusted to stay local.
pub fn is_loopback(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn read_ca_file(path: &Path) -> Result<Vec<u8>, ConfigError> {
    let pem = std::fs::read(path).map_err(|e| {
        ConfigError::new(
            "smtp.ca_file",
            format!("cannot read {}: {e}", path.display()),
        )
    })?;
    let text = String::from_utf8_lossy(&pem);
    if !text.contains("-----BEGIN CERTIFICATE-----") {
        return Err(ConfigError::new(
            "smtp.ca_file",
            format!("{} holds no PEM certificate", path.display()),
        ));
    }
    lettre::transport::smtp::client::Certificate::from_pem(&pem).map_err(|e| {
        ConfigError::new(
            "smtp.ca_file",
            format!("{} is not valid PEM: {e}", path.display()),
        )
    })?;
    Ok(pem)
}

/// A TOML value as an error message shows it.
fn show(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Integer(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Boolean(b) => b.to_string(),
        other => format!("a {}", other.type_str()),
    }
}

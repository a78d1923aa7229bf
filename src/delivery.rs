//! Which process delivers, per `mailguard.transport`, and the worker's own
//! immediate attempt:
//!
//! - `sendmail` (default): the worker pipes the message to `sendmail_path` at once,
//!   through stock `php_mail()` (byte-for-byte PHP); the runner retries what waits.
//! - `smtp`: the worker makes one immediate attempt to `mailguard.smtp_relay`
//!   (TLS on 465 by default, certificate always verified, no credentials: a script
//!   can read every INI value); a temporary failure leaves the message queued for
//!   the runner and mail() returns true; a permanent one returns false.
//! - `runner`: the worker only queues; `mailguard run` delivers with the operator's
//!   `/etc/mailguard/mailguard.toml`, the place for relay credentials.

use std::sync::Mutex;

use mailguard_core::message::Refusal;
use mailguard_transport::{SmtpTransport, Transport, TransportConfig};

use crate::php;

/// The delivery a worker makes for a message the store released at once.
pub enum Mode {
    Sendmail,
    Smtp(String),
    Runner,
}

fn bad(problem: impl ToString) -> Refusal {
    Refusal::BadSetting {
        name: "mailguard.transport",
        problem: problem.to_string(),
    }
}

/// Reads `mailguard.transport` and, for `smtp`, checks the relay settings.
pub fn mode() -> Result<Mode, Refusal> {
    let t = php::ini_string("mailguard.transport").unwrap_or_default();
    match t.trim() {
        "" | "sendmail" => Ok(Mode::Sendmail),
        "runner" => Ok(Mode::Runner),
        "smtp" => Ok(Mode::Smtp(smtp_toml()?)),
        other => Err(bad(format!(
            "\"{other}\" is not one of sendmail, smtp, runner"
        ))),
    }
}

/// The relay settings as the operator file's TOML, so one parser validates both.
fn smtp_toml() -> Result<String, Refusal> {
    let relay = php::ini_string("mailguard.smtp_relay").unwrap_or_default();
    let relay = relay.trim();
    if relay.is_empty() {
        return Err(Refusal::BadSetting {
            name: "mailguard.smtp_relay",
            problem: "mailguard.transport=smtp needs a relay, e.g. 127.0.0.1:465".into(),
        });
    }
    let (host, port) = match relay.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(':') => (
            h.trim_matches(['[', ']']),
            Some(p.parse::<u16>().map_err(|_| Refusal::BadSetting {
                name: "mailguard.smtp_relay",
                problem: format!("\"{p}\" is not a port"),
            })?),
        ),
        _ => (relay, None),
    };
    let security = php::ini_string("mailguard.smtp_security").unwrap_or_default();
    let security = if security.trim().is_empty() {
        "ssl".to_owned()
    } else {
        security
    };
    let mut toml = format!(
        "transport = \"smtp\"\n[smtp]\nhost = {host:?}\nsecurity = {:?}\n",
        security.trim()
    );
    if let Some(p) = port {
        toml.push_str(&format!("port = {p}\n"));
    }
    if let Some(ca) = php::ini_string("mailguard.smtp_ca_file").filter(|c| !c.trim().is_empty()) {
        toml.push_str(&format!("ca_file = {:?}\n", ca.trim()));
    }
    Ok(toml)
}

/// One SMTP transport per worker process, rebuilt when the settings change.
static SMTP: Mutex<Option<(String, SmtpTransport)>> = Mutex::new(None);

/// One immediate attempt over SMTP; the store's outcome for it.
pub fn smtp_attempt(
    toml: &str,
    envelope_from: &str,
    recipients: &[String],
    raw: &[u8],
) -> Result<mailguard_transport::Plan, Refusal> {
    let mut guard = SMTP.lock().unwrap_or_else(|p| p.into_inner());
    if guard.as_ref().map(|(t, _)| t.as_str()) != Some(toml) {
        let config = TransportConfig::from_toml_str(toml).map_err(|e| Refusal::BadSetting {
            name: "mailguard.smtp_relay",
            problem: e.to_string(),
        })?;
        let mailguard_transport::Method::Smtp(smtp) = &config.method else {
            return Err(bad("smtp settings did not describe an SMTP relay"));
        };
        let transport = SmtpTransport::new(smtp).map_err(|e| Refusal::BadSetting {
            name: "mailguard.smtp_relay",
            problem: e.to_string(),
        })?;
        *guard = Some((toml.to_owned(), transport));
    }
    let (_, transport) = guard.as_mut().expect("transport built above");
    let result = transport.send(envelope_from, recipients, raw);
    Ok(mailguard_transport::plan(recipients, result))
}

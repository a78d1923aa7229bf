//! mailguard-transport: how a queued message leaves the machine.
//!
//! - [`Transport`]: one small trait, `send(envelope_from, recipients, raw)`, answered
//!   by [`Delivered`] or a [`DeliveryError`] that says [`is_transient`] (retry) or
//!   [`is_permanent`] (record and give up), with code, enhanced status, text and
//!   recipient.
//! - [`SmtpTransport`]: a relay through lettre, implicit TLS on 465 preferred,
//!   STARTTLS on 587 allowed, plaintext only to loopback; certificates always verified.
//! - [`SendmailTransport`]: the stock PHP pipe with PHP's exact command and exit rules.
//! - [`TransportConfig`]: the `mailguard.toml` keys, read once and validated.
//! - [`RetrySchedule`]: the backoff between attempts.
//! - [`RecordingTransport`]: a scripted in-memory transport for tests.
//! - [`plan`]: a transport's answer turned into the queue's [`Plan`] ([`Outcome`] and
//!   the deferred recipients to split off); [`stock_pipe`] and [`reported_ok`].
//!
//! Nothing here starts a thread or opens a connection before `send` is called.
//!
//! [`is_transient`]: DeliveryError::is_transient
//! [`is_permanent`]: DeliveryError::is_permanent

pub mod config;
pub mod error;
pub mod outcome;
pub mod recording;
pub mod retry;
pub mod sendmail;
pub mod smtp;

pub use config::{ConfigError, Method, Security, SmtpConfig, Timeouts, TransportConfig};
pub use error::{Class, DeliveryError, EnhancedStatus, Kind, Stage};
pub use outcome::{plan, reported_ok, stock_pipe, Failure, Outcome, Plan, Split};
pub use recording::{RecordingTransport, SentMessage};
pub use retry::RetrySchedule;
pub use sendmail::SendmailTransport;
pub use smtp::SmtpTransport;

/// What the relay (or sendmail) accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivered {
    /// Recipients the relay accepted (for sendmail: empty, the command reads the headers).
    pub accepted: Vec<String>,
    /// Recipients refused at RCPT TO while others were accepted; each error says
    /// whether to retry that recipient (452) or record it as failed (550).
    pub refused: Vec<DeliveryError>,
    /// The final reply, e.g. `250 2.0.0 Ok: queued as 4Q1...`.
    pub reply: String,
}

/// Sends one message. `raw` is the complete message (headers, blank line, body) as
/// mail() built it; it is sent as it is, apart from line endings made CRLF for SMTP.
/// `envelope_from` may be empty (null reverse-path).
pub trait Transport {
    fn send(
        &mut self,
        envelope_from: &str,
        recipients: &[String],
        raw: &[u8],
    ) -> Result<Delivered, DeliveryError>;
}

/// The transport of a runner's delivery worker: as [`from_config`], with SMTP sessions
/// kept open between messages ([`SmtpTransport::reusing_sessions`]).
pub fn from_config_reusing_sessions(
    config: &TransportConfig,
) -> Result<Box<dyn Transport + Send>, ConfigError> {
    Ok(match &config.method {
        Method::Smtp(smtp) => Box::new(SmtpTransport::new(smtp)?.reusing_sessions()),
        Method::Sendmail { .. } => from_config(config)?,
    })
}

/// The transport a validated config asks for. Builds TLS settings; connects nothing.
pub fn from_config(config: &TransportConfig) -> Result<Box<dyn Transport + Send>, ConfigError> {
    Ok(match &config.method {
        Method::Sendmail { sendmail_path } => Box::new(SendmailTransport::new(sendmail_path)),
        Method::Smtp(smtp) => Box::new(SmtpTransport::new(smtp)?),
    })
}

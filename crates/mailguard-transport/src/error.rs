//! error: what a failed delivery attempt reports, and whether to retry it.

use std::fmt;

pub use mailguard_core::dsn::EnhancedStatus;

/// Whether a failure may go away by itself (retry later) or will not (bounce, log).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    Transient,
    Permanent,
}

/// What failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The server answered with a 4xx or 5xx reply.
    Reply,
    /// A connect, read or write took longer than its configured timeout.
    Timeout,
    /// Connection refused, reset or closed, name resolution failed.
    Connection,
    /// TLS handshake or certificate verification failed, or STARTTLS was not offered.
    Tls,
    /// Our credentials were refused or no common AUTH mechanism: the operator's problem,
    /// never the sender's, so it is transient (plus an alert).
    Auth,
    /// The server broke the protocol (unparsable reply).
    Protocol,
    /// An address cannot be put in an SMTP envelope.
    Address,
    /// The sendmail command failed (non-zero exit, signal, could not be started).
    Sendmail,
}

impl Kind {
    pub fn as_str(&self) -> &'static str {
        match self {
            Kind::Reply => "reply",
            Kind::Timeout => "timeout",
            Kind::Connection => "connection",
            Kind::Tls => "tls",
            Kind::Auth => "auth",
            Kind::Protocol => "protocol",
            Kind::Address => "address",
            Kind::Sendmail => "sendmail",
        }
    }
}

/// Where in the delivery the failure happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// TCP connect, implicit TLS handshake, greeting and the first EHLO.
    Connect,
    StartTls,
    Auth,
    MailFrom,
    RcptTo,
    /// The DATA command, before any message byte was sent.
    Data,
    /// Sending the message and waiting for the reply to the final dot.
    Message,
    /// Running the sendmail command.
    Sendmail,
}

impl Stage {
    pub fn as_str(&self) -> &'static str {
        match self {
            Stage::Connect => "connect",
            Stage::StartTls => "starttls",
            Stage::Auth => "auth",
            Stage::MailFrom => "mail-from",
            Stage::RcptTo => "rcpt-to",
            Stage::Data => "data",
            Stage::Message => "message",
            Stage::Sendmail => "sendmail",
        }
    }
}

/// A failed delivery attempt: [`is_transient`](Self::is_transient) means retry later,
/// [`is_permanent`](Self::is_permanent) means give up and record it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryError {
    pub(crate) class: Class,
    pub(crate) kind: Kind,
    pub(crate) stage: Stage,
    pub(crate) code: Option<u16>,
    pub(crate) enhanced: Option<EnhancedStatus>,
    pub(crate) text: String,
    pub(crate) recipient: Option<String>,
    pub(crate) possibly_delivered: bool,
    pub(crate) per_recipient: Vec<DeliveryError>,
}

impl DeliveryError {
    pub(crate) fn new(class: Class, kind: Kind, stage: Stage, text: impl Into<String>) -> Self {
        DeliveryError {
            class,
            kind,
            stage,
            code: None,
            enhanced: None,
            text: text.into(),
            recipient: None,
            possibly_delivered: false,
            per_recipient: Vec::new(),
        }
    }

    /// An error built from an SMTP reply: the class follows the code, the enhanced
    /// status is read from the start of the text.
    pub(crate) fn reply(stage: Stage, code: u16, text: &str) -> Self {
        let class = if code >= 500 {
            Class::Permanent
        } else {
            Class::Transient
        };
        let mut e = DeliveryError::new(class, Kind::Reply, stage, text.trim());
        e.code = Some(code);
        e.enhanced = EnhancedStatus::parse_prefix(text)
            .map(|(s, _)| s)
            .filter(|s| u16::from(s.class) == code / 100);
        e
    }

    /// Every recipient was refused: one error carrying them all. Transient when any
    /// of them is (the runner retries those and records the permanent ones).
    pub(crate) fn all_recipients_refused(refused: Vec<DeliveryError>) -> Self {
        let first = refused[0].clone();
        let class = if refused.iter().any(DeliveryError::is_transient) {
            Class::Transient
        } else {
            Class::Permanent
        };
        DeliveryError {
            class,
            per_recipient: refused,
            recipient: if first.per_recipient.is_empty() {
                first.recipient.clone()
            } else {
                None
            },
            ..first
        }
    }

    pub(crate) fn with_recipient(mut self, recipient: &str) -> Self {
        self.recipient = Some(recipient.to_string());
        self
    }

    pub fn is_transient(&self) -> bool {
        self.class == Class::Transient
    }

    pub fn is_permanent(&self) -> bool {
        self.class == Class::Permanent
    }

    pub fn class(&self) -> Class {
        self.class
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    pub fn stage(&self) -> Stage {
        self.stage
    }

    /// The SMTP reply code, when the server answered.
    pub fn code(&self) -> Option<u16> {
        self.code
    }

    /// The RFC 3463 enhanced status at the start of the reply text, when present and
    /// of the same class as the code.
    pub fn enhanced_status(&self) -> Option<EnhancedStatus> {
        self.enhanced
    }

    /// The server's reply text (lines joined by spaces), or our description.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The recipient this error is about, when it is about one.
    pub fn recipient(&self) -> Option<&str> {
        self.recipient.as_deref()
    }

    /// The whole message may have reached the server (the final dot was sent, then
    /// the reply was lost or late): a retry may deliver it twice (RFC 5321 §4.5.3.2.6,
    /// Postfix's "delivered twice" window). Log it; do not treat it as never sent.
    pub fn possibly_delivered(&self) -> bool {
        self.possibly_delivered
    }

    /// When every recipient was refused at RCPT TO: one error per recipient, each with
    /// its own class (a mix of 4xx and 5xx is possible). Empty otherwise.
    pub fn per_recipient(&self) -> &[DeliveryError] {
        &self.per_recipient
    }
}

impl fmt::Display for DeliveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let class = match self.class {
            Class::Transient => "temporary",
            Class::Permanent => "permanent",
        };
        write!(
            f,
            "{class} {} failure at {}",
            self.kind.as_str(),
            self.stage.as_str()
        )?;
        if let Some(r) = &self.recipient {
            write!(f, " for <{r}>")?;
        }
        f.write_str(": ")?;
        if let Some(code) = self.code {
            write!(f, "{code} ")?;
        }
        f.write_str(&self.text)?;
        if self.per_recipient.len() > 1 {
            write!(
                f,
                " (and {} more refused recipients)",
                self.per_recipient.len() - 1
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for DeliveryError {}

//! smtp: delivery to a relay through lettre's synchronous SMTP client.
//!
//! One connection per [`send`](crate::Transport::send), closed at the end: no pool and
//! no thread (the caller may be a php-fpm worker). Certificates are always verified
//! (web PKI roots plus `smtp.ca_file`); nothing here can turn that off. Each phase has
//! its own timeout (see [`Timeouts`]).
//!
//! lettre's `SmtpConnection` is driven command by command rather than through
//! `SmtpTransport::send_raw`, so that a refused recipient does not abort the others
//! (RFC 5321; research §1.9: 5xx at RCPT is permanent for that recipient only, 452
//! means "send to the accepted ones, retry the rest") and so that DATA gets its own
//! timeout.

use std::borrow::Cow;
use std::str::FromStr;
use std::time::{Duration, Instant};

use lettre::address::Address;
use lettre::transport::smtp::authentication::{Credentials as LettreCredentials, Mechanism};
use lettre::transport::smtp::client::{
    Certificate, CertificateStore, SmtpConnection, TlsParameters, TlsParametersBuilder,
};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt, Rset};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use lettre::transport::smtp::Error as SmtpError;

use crate::config::{ConfigError, Security, SmtpConfig, Timeouts};
use crate::error::{Class, DeliveryError, Kind, Stage};
use crate::{Delivered, Transport};

/// Delivery to the relay in an [`SmtpConfig`].
pub struct SmtpTransport {
    host: String,
    port: u16,
    security: Security,
    tls: Option<TlsParameters>,
    credentials: Option<LettreCredentials>,
    client_id: ClientId,
    timeouts: Timeouts,
    /// Keep the session open between messages (RSET before the next one); off by
    /// default: a PHP worker's immediate attempt closes its session at once.
    reuse: bool,
    session: Option<Session>,
}

/// An open session kept for the next message.
struct Session {
    conn: SmtpConnection,
    opened: Instant,
    last_used: Instant,
    messages: u32,
}

/// How long a kept session may sit idle (Postfix's `smtp_connection_cache_time_limit`
/// is 2 s; relays commonly time idle clients out after 30 s or more).
const SESSION_IDLE: Duration = Duration::from_secs(5);
/// How long one session may be reused in all (Postfix's `smtp_connection_reuse_time_limit`).
const SESSION_AGE: Duration = Duration::from_secs(300);
/// Messages per session before a fresh connection.
const SESSION_MESSAGES: u32 = 100;
/// The RSET that checks a kept session is answered quickly or the session is dropped.
const RSET_TIMEOUT: Duration = Duration::from_secs(10);

impl std::fmt::Debug for SmtpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpTransport")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("auth", &self.credentials.is_some())
            .field("timeouts", &self.timeouts)
            .finish()
    }
}

impl SmtpTransport {
    /// Prepares the TLS settings; connects nothing until [`send`](Transport::send).
    pub fn new(config: &SmtpConfig) -> Result<SmtpTransport, ConfigError> {
        let tls = match config.security {
            Security::None => None,
            Security::Ssl | Security::Starttls => {
                // CertificateStore::Default is webpki-roots with our lettre features.
                let mut builder = TlsParametersBuilder::new(config.host.clone())
                    .certificate_store(CertificateStore::Default);
                if let Some(pem) = &config.extra_ca_pem {
                    let cert = Certificate::from_pem(pem).map_err(|e| ConfigError {
                        key: "smtp.ca_file".into(),
                        message: e.to_string(),
                    })?;
                    builder = builder.add_root_certificate(cert);
                }
                Some(builder.build_rustls().map_err(|e| ConfigError {
                    key: "smtp.ca_file".into(),
                    message: format!("TLS setup failed: {e}"),
                })?)
            }
        };
        let client_id = match &config.helo_name {
            Some(name) => ClientId::Domain(name.clone()),
            None => ClientId::default(),
        };
        Ok(SmtpTransport {
            host: config.host.clone(),
            port: config.port,
            security: config.security,
            tls,
            credentials: config
                .credentials
                .as_ref()
                .map(|c| LettreCredentials::new(c.username.clone(), c.password.clone())),
            client_id,
            timeouts: config.timeouts,
            reuse: false,
            session: None,
        })
    }

    /// Keeps sessions open between messages: up to 100 messages or 300 s per session,
    /// idle at most 5 s, an RSET before each further message (dropped and reconnected
    /// when the RSET fails). For the runner's workers, which send message after message.
    pub fn reusing_sessions(mut self) -> SmtpTransport {
        self.reuse = true;
        self
    }

    /// A kept session that is still fresh and answers RSET, or a new one.
    fn session(&mut self) -> Result<(SmtpConnection, Instant, u32), DeliveryError> {
        if let Some(mut s) = self.session.take() {
            let fresh = s.last_used.elapsed() < SESSION_IDLE
                && s.opened.elapsed() < SESSION_AGE
                && s.messages < SESSION_MESSAGES;
            if fresh
                && s.conn.set_timeout(Some(RSET_TIMEOUT)).is_ok()
                && s.conn.command(Rset).is_ok()
                && s.conn.set_timeout(Some(self.timeouts.command)).is_ok()
            {
                return Ok((s.conn, s.opened, s.messages));
            }
            if !fresh {
                // Worn out: say goodbye, without waiting long for the answer. (A fresh
                // one that failed its RSET was closed by the relay, or is broken.)
                let _ = s.conn.set_timeout(Some(RSET_TIMEOUT));
                let _ = s.conn.quit();
            }
        }
        Ok((self.connect()?, Instant::now(), 0))
    }

    fn connect(&self) -> Result<SmtpConnection, DeliveryError> {
        let implicit = match self.security {
            Security::Ssl => self.tls.as_ref(),
            Security::Starttls | Security::None => None,
        };
        let mut conn = SmtpConnection::connect(
            (self.host.as_str(), self.port),
            Some(self.timeouts.connect),
            &self.client_id,
            implicit,
            None,
        )
        .map_err(|e| map_error(e, Stage::Connect))?;
        nodelay::set_for_peer(&self.host, self.port);
        set_timeout(&mut conn, self.timeouts.command, Stage::Connect)?;

        if self.security == Security::Starttls {
            let tls = self.tls.as_ref().expect("starttls has TLS parameters");
            if !conn.can_starttls() {
                // Never fall back to plaintext (research §1.9): defer and alert.
                conn.quit().ok();
                return Err(DeliveryError::new(
                    Class::Transient,
                    Kind::Tls,
                    Stage::StartTls,
                    format!(
                        "{}:{} does not offer STARTTLS; refusing to send in plaintext",
                        self.host, self.port
                    ),
                ));
            }
            conn.starttls(tls, &self.client_id)
                .map_err(|e| map_error(e, Stage::StartTls))?;
        }

        if let Some(credentials) = &self.credentials {
            conn.auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                .map_err(|e| {
                    let e = map_error(e, Stage::Auth);
                    close(&mut conn, &e);
                    e
                })?;
        }
        Ok(conn)
    }

    fn transaction(
        &self,
        conn: &mut SmtpConnection,
        envelope_from: &str,
        recipients: &[String],
        raw: &[u8],
    ) -> Result<Delivered, DeliveryError> {
        let from = parse_address(envelope_from, true).map_err(|e| e.at(Stage::MailFrom))?;
        let body = smtp_body(raw);

        let mut mail_options = Vec::new();
        let non_ascii_addresses =
            !envelope_from.is_ascii() || recipients.iter().any(|r| !r.is_ascii());
        if non_ascii_addresses {
            if !conn.server_info().supports_feature(Extension::SmtpUtfEight) {
                return Err(DeliveryError::new(
                    Class::Permanent,
                    Kind::Address,
                    Stage::MailFrom,
                    "an address is not ASCII and the relay does not offer SMTPUTF8",
                ));
            }
            mail_options.push(MailParameter::SmtpUtfEight);
        }
        // 8-bit bodies are sent as they are; BODY=8BITMIME is declared when offered.
        if !body.is_ascii() && conn.server_info().supports_feature(Extension::EightBitMime) {
            mail_options.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }

        conn.command(Mail::new(from, mail_options))
            .map_err(|e| map_error(e, Stage::MailFrom))?;

        let mut accepted = Vec::new();
        let mut refused = Vec::new();
        for recipient in recipients {
            let address = match parse_address(recipient, false) {
                Ok(Some(a)) => a,
                Ok(None) | Err(_) => {
                    refused.push(
                        DeliveryError::new(
                            Class::Permanent,
                            Kind::Address,
                            Stage::RcptTo,
                            format!("{recipient:?} is not a valid address"),
                        )
                        .with_recipient(recipient),
                    );
                    continue;
                }
            };
            match conn.command(Rcpt::new(address, vec![])) {
                Ok(_) => accepted.push(recipient.clone()),
                Err(e) => {
                    let e = map_error(e, Stage::RcptTo).with_recipient(recipient);
                    // 421: the server is closing the channel; anything but a reply: the
                    // connection is gone. Either way the whole attempt is over.
                    if e.kind() != Kind::Reply || e.code() == Some(421) {
                        return Err(e);
                    }
                    refused.push(e);
                }
            }
        }
        if accepted.is_empty() {
            return Err(if refused.is_empty() {
                DeliveryError::new(
                    Class::Permanent,
                    Kind::Address,
                    Stage::RcptTo,
                    "no recipients",
                )
            } else {
                DeliveryError::all_recipients_refused(refused)
            });
        }

        conn.command(Data).map_err(|e| map_error(e, Stage::Data))?;
        set_timeout(conn, self.timeouts.data, Stage::Message)?;
        let reply = conn
            .message(&body)
            .map_err(|e| map_error(e, Stage::Message))?;
        // Delivered: whatever happens to QUIT (or the session kept) no longer matters.
        let _ = set_timeout(conn, self.timeouts.command, Stage::Message);
        Ok(Delivered {
            accepted,
            refused,
            reply: format!(
                "{} {}",
                reply.code(),
                reply.message().collect::<Vec<_>>().join(" ")
            ),
        })
    }
}

impl Transport for SmtpTransport {
    fn send(
        &mut self,
        envelope_from: &str,
        recipients: &[String],
        raw: &[u8],
    ) -> Result<Delivered, DeliveryError> {
        if recipients.is_empty() {
            return Err(DeliveryError::new(
                Class::Permanent,
                Kind::Address,
                Stage::RcptTo,
                "no recipients",
            ));
        }
        let (mut conn, opened, messages) = self.session()?;
        let result = self.transaction(&mut conn, envelope_from, recipients, raw);
        match &result {
            Ok(_) if self.reuse => {
                self.session = Some(Session {
                    conn,
                    opened,
                    last_used: Instant::now(),
                    messages: messages + 1,
                });
            }
            Ok(_) => {
                let _ = conn.quit();
            }
            Err(e) => close(&mut conn, e),
        }
        result
    }
}

/// Ends a failed session: a polite QUIT while the connection still works (the server
/// answered), a plain close otherwise (waiting for QUIT on a dead or stalled server
/// would cost another full timeout).
fn close(conn: &mut SmtpConnection, error: &DeliveryError) {
    if error.kind() == Kind::Reply && error.code() != Some(421) {
        let _ = conn.quit();
    }
    // Dropping the connection closes the socket.
}

fn set_timeout(
    conn: &mut SmtpConnection,
    timeout: Duration,
    stage: Stage,
) -> Result<(), DeliveryError> {
    conn.set_timeout(Some(timeout))
        .map_err(|e| DeliveryError::new(Class::Transient, Kind::Connection, stage, e.to_string()))
}

/// `""` and `"<>"` are the null reverse-path (allowed for the sender only).
fn parse_address(s: &str, null_ok: bool) -> Result<Option<Address>, DeliveryError> {
    let s = s.trim();
    let s = s
        .strip_prefix('<')
        .and_then(|x| x.strip_suffix('>'))
        .unwrap_or(s);
    if s.is_empty() {
        return if null_ok {
            Ok(None)
        } else {
            Err(DeliveryError::new(
                Class::Permanent,
                Kind::Address,
                Stage::RcptTo,
                "empty address",
            ))
        };
    }
    Address::from_str(s).map(Some).map_err(|e| {
        DeliveryError::new(
            Class::Permanent,
            Kind::Address,
            Stage::MailFrom,
            format!("{s:?} is not a valid address: {e}"),
        )
    })
}

impl DeliveryError {
    fn at(mut self, stage: Stage) -> Self {
        self.stage = stage;
        self
    }
}

/// The message as SMTP needs it: every line ending CRLF (PHP hands over bare LFs with
/// `mail.mixed_lf_and_crlf` and in bodies; a bare LF followed by "." would escape
/// lettre's dot-stuffing, which only looks after CRLF), and without its last CRLF,
/// because lettre always appends `CRLF . CRLF`. Dot-stuffing itself is lettre's
/// (`ClientCodec`).
pub fn smtp_body(raw: &[u8]) -> Cow<'_, [u8]> {
    let needs_fix = raw.iter().enumerate().any(|(i, &b)| match b {
        b'\n' => i == 0 || raw[i - 1] != b'\r',
        b'\r' => raw.get(i + 1) != Some(&b'\n'),
        _ => false,
    });
    let body: Cow<'_, [u8]> = if needs_fix {
        let mut out = Vec::with_capacity(raw.len() + raw.len() / 32 + 2);
        let mut i = 0;
        while i < raw.len() {
            match raw[i] {
                b'\r' => {
                    out.extend_from_slice(b"\r\n");
                    if raw.get(i + 1) == Some(&b'\n') {
                        i += 1;
                    }
                }
                b'\n' => out.extend_from_slice(b"\r\n"),
                b => out.push(b),
            }
            i += 1;
        }
        Cow::Owned(out)
    } else {
        Cow::Borrowed(raw)
    };
    match body {
        Cow::Borrowed(b) => Cow::Borrowed(b.strip_suffix(b"\r\n").unwrap_or(b)),
        Cow::Owned(mut v) => {
            if v.ends_with(b"\r\n") {
                v.truncate(v.len() - 2);
            }
            Cow::Owned(v)
        }
    }
}

/// Classifies a lettre error: a reply by its code, everything else (timeouts, TLS,
/// connection, garbage) as transient.
fn map_error(err: SmtpError, stage: Stage) -> DeliveryError {
    if let Some(code) = err.status() {
        let code: u16 = code.to_string().parse().unwrap_or(0);
        let text = std::error::Error::source(&err)
            .map(|s| s.to_string())
            .unwrap_or_default();
        let mut e = DeliveryError::reply(stage, code, &text);
        if stage == Stage::Auth {
            // Our credentials, not the sender's fault: retry, and alert the operator.
            e.class = Class::Transient;
            e.kind = Kind::Auth;
        }
        return e;
    }

    let text = err.to_string();
    let (kind, timeout) = inspect_chain(&err);
    let kind = if timeout {
        Kind::Timeout
    } else if let Some(kind) = kind {
        kind
    } else if err.is_tls() {
        Kind::Tls
    } else if stage == Stage::Auth && err.is_client() {
        Kind::Auth
    } else if err.is_response() && !text.contains("incomplete response") {
        Kind::Protocol
    } else {
        Kind::Connection
    };
    let mut e = DeliveryError::new(Class::Transient, kind, stage, text);
    // A read that timed out or hit EOF after the whole message went out: the relay may
    // have it. Conservative: any timeout or EOF in this stage counts.
    if stage == Stage::Message && (timeout || (err.is_response() && kind == Kind::Connection)) {
        e.possibly_delivered = true;
    }
    e
}

/// Walks the error's sources: returns `Some(Kind::Tls)` when rustls is in the chain,
/// and whether an I/O timeout is (socket timeouts surface as WouldBlock on Linux).
fn inspect_chain(err: &SmtpError) -> (Option<Kind>, bool) {
    let mut kind = None;
    let mut timeout = false;
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(err);
    while let Some(current) = source {
        if current.downcast_ref::<rustls::Error>().is_some() {
            kind = Some(Kind::Tls);
        }
        if let Some(io) = current.downcast_ref::<std::io::Error>() {
            if matches!(
                io.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) {
                timeout = true;
            }
            // io::Error::source() skips the wrapped error itself; look at it directly.
            if let Some(inner) = io.get_ref() {
                if inner.downcast_ref::<rustls::Error>().is_some() {
                    kind = Some(Kind::Tls);
                }
            }
        }
        source = current.source();
    }
    (kind, timeout)
}

#[cfg(test)]
mod tests {
    use super::smtp_body;

    #[test]
    fn body_line_endings() {
        assert_eq!(&*smtp_body(b"a\r\nb\r\n"), b"a\r\nb");
        assert_eq!(&*smtp_body(b"a\nb\n"), b"a\r\nb");
        assert_eq!(&*smtp_body(b"a\rb"), b"a\r\nb");
        assert_eq!(&*smtp_body(b"a\n.\nb"), b"a\r\n.\r\nb");
        assert_eq!(&*smtp_body(b"a\r\n\r\n"), b"a\r\n");
        assert_eq!(&*smtp_body(b"no newline"), b"no newline");
        assert_eq!(&*smtp_body(b""), b"");
        assert_eq!(&*smtp_body(b"\n"), b"");
    }
}

/// TCP_NODELAY for lettre's connection. lettre writes the message and then the
/// final `\r\n.\r\n` in two writes; with Nagle's algorithm on, the second waits
/// for the relay's ACK of the first, which a relay with delayed ACKs sends only
/// after 40 ms: 40 ms added to every message. lettre does not expose its socket,
/// so the socket is found among this process's descriptors by its peer address.
mod nodelay {
    use std::collections::HashSet;
    use std::mem::ManuallyDrop;
    use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
    use std::os::fd::FromRawFd;

    pub fn set_for_peer(host: &str, port: u16) {
        let Ok(peers) = (host, port).to_socket_addrs() else {
            return;
        };
        let peers: HashSet<SocketAddr> = peers.collect();
        let Ok(fds) = std::fs::read_dir("/proc/self/fd") else {
            return;
        };
        for fd in fds.flatten() {
            let Some(fd) = fd.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
                continue;
            };
            let is_socket = std::fs::read_link(format!("/proc/self/fd/{fd}"))
                .is_ok_and(|t| t.to_string_lossy().starts_with("socket:"));
            if !is_socket {
                continue;
            }
            // SAFETY: `fd` is an open socket of this process; ManuallyDrop keeps the
            // borrowed descriptor from being closed, and only getpeername and
            // setsockopt(TCP_NODELAY) are called on it.
            let stream = ManuallyDrop::new(unsafe { TcpStream::from_raw_fd(fd) });
            if stream.peer_addr().is_ok_and(|p| peers.contains(&p)) {
                let _ = stream.set_nodelay(true);
            }
        }
    }
}

//! mailguard-proto: what crosses the submission socket between a guarded process (the PHP
//! extension in hardened mode, `mailguard sendmail`) and `mailguard serve`.
//!
//! The daemon learns *who* is calling from the kernel (`SO_PEERCRED`), never from these
//! messages: nothing here names an account, a limit, a verdict or a checksum. What a client
//! says about the message's origin is recorded as a claim.
//!
//! - [`Request`] / [`Response`]: one request and one response per connection.
//! - Framing ([`write_frame`], [`read_frame`]): `u32` header length and `u64` body length
//!   (big-endian), the JSON header, then the body (the message bytes of a submission).
//!   Both lengths are checked against the reader's limits before anything is allocated.
//! - [`call`]: the blocking client (connect, send, wait for the answer, with a timeout).

use std::fmt;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Where `mailguard serve` listens unless configured otherwise.
pub const DEFAULT_SOCKET: &str = "/run/mailguard/submit.sock";
/// The largest JSON header either side accepts (a sendmail command line with many
/// recipients fits; nothing legitimate comes close).
pub const MAX_HEADER: u32 = 8 << 20;
/// How long a client waits for the daemon's answer (a group commit under load takes
/// milliseconds; this only bounds a wedged daemon). Longer than the daemon's own wait
/// for its queue (20 s), so the client hears the daemon's answer.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(45);

/// What a client asks.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Check and queue the message in the frame's body.
    Submit(Box<Submit>),
    /// The caller's account: status, counters, limits.
    Status,
    /// Operator actions on the caller's account (the daemon decides whether the
    /// account may use them).
    Block,
    Unblock,
    Purge,
    Errors {
        limit: u32,
        offset: u32,
    },
    History {
        days: u32,
    },
}

/// One message handed in. The body of the frame is the message exactly as it would
/// be piped to `sendmail` (headers, blank line, body).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct Submit {
    /// How it came in: `mail`, `mb_send_mail`, `error_log`, `sendmail`.
    pub entry: String,
    /// mail()'s 5th parameter as the script gave it; the daemon checks it again.
    #[serde(default)]
    pub params: Option<String>,
    /// The envelope sender asked for with `sendmail -f` / `-r`; checked again.
    #[serde(default)]
    pub sender: Option<String>,
    /// Envelope recipients given on a sendmail command line.
    #[serde(default)]
    pub recipients: Vec<String>,
    /// Also take the recipients from the `To`, `Cc` and `Bcc` headers (mail(), `sendmail -t`).
    #[serde(default)]
    pub from_headers: bool,
    /// Where the client says the message comes from: recorded as a claim.
    #[serde(default)]
    pub origin: ClaimedOrigin,
}

/// The origin a client claims. Nothing in it is trusted for a decision that would
/// favour the sender; the daemon stores it marked as claimed, next to the uid and pid
/// the kernel reported.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct ClaimedOrigin {
    #[serde(default)]
    pub file: Option<String>,
    #[serde(default)]
    pub line: Option<u32>,
    #[serde(default)]
    pub caller: Option<String>,
    #[serde(default)]
    pub caller_file: Option<String>,
    #[serde(default)]
    pub vhost: Option<String>,
    #[serde(default)]
    pub request_uri: Option<String>,
    #[serde(default)]
    pub client_ip: Option<String>,
    #[serde(default)]
    pub sapi: Option<String>,
    #[serde(default)]
    pub from_eval: bool,
    /// The caller's file was modified in the last 24 hours.
    #[serde(default)]
    pub modified_recently: bool,
}

/// What the daemon did with a submitted message.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Disposition {
    /// Durably queued and released for delivery now.
    Accepted,
    /// Durably queued; over the quota, sent when the window frees.
    Queued,
    /// Durably queued; held (red account, or this message tripped the burst limit).
    Held,
    /// Not queued; `reason` says why and what to do.
    Refused,
}

impl Disposition {
    /// Whether mail() reports it as success (the message is on disk).
    pub fn is_stored(self) -> bool {
        self != Disposition::Refused
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Disposition::Accepted => "accepted",
            Disposition::Queued => "queued",
            Disposition::Held => "held",
            Disposition::Refused => "refused",
        }
    }
}

/// The daemon's answer.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Response {
    /// The verdict on a submission, for the account the kernel's uid maps to.
    Submitted {
        account: String,
        outcome: Disposition,
        #[serde(default)]
        reason: Option<String>,
        #[serde(default)]
        id: Option<i64>,
    },
    /// The answer to a query or an operator action.
    Value { value: serde_json::Value },
    /// The caller may not do this (no account for its uid, operator action not
    /// allowed for the account).
    Denied { reason: String },
    /// The request could not be served (malformed, the store failed); nothing was stored.
    Error { reason: String },
}

/// A frame that could not be read or is not acceptable.
#[derive(Debug)]
pub enum FrameError {
    Io(io::Error),
    /// A length over the reader's limit, or a header that is not a known message.
    Invalid(String),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Io(e) => write!(f, "{e}"),
            FrameError::Invalid(s) => f.write_str(s),
        }
    }
}

impl std::error::Error for FrameError {}

impl From<io::Error> for FrameError {
    fn from(e: io::Error) -> Self {
        FrameError::Io(e)
    }
}

/// Writes one frame: header lengths, the JSON of `header`, then `body`.
pub fn write_frame<T: Serialize>(w: &mut impl Write, header: &T, body: &[u8]) -> io::Result<()> {
    let json = serde_json::to_vec(header).map_err(io::Error::other)?;
    let mut head = Vec::with_capacity(12 + json.len());
    head.extend_from_slice(&(json.len() as u32).to_be_bytes());
    head.extend_from_slice(&(body.len() as u64).to_be_bytes());
    head.extend_from_slice(&json);
    if body.len() < 64 * 1024 {
        // One write for small messages: one segment on the socket.
        head.extend_from_slice(body);
        w.write_all(&head)?;
    } else {
        w.write_all(&head)?;
        w.write_all(body)?;
    }
    w.flush()
}

/// Reads one frame whose body is at most `max_body` bytes. A longer body is refused
/// before it is read.
pub fn read_frame<T: for<'de> Deserialize<'de>>(
    r: &mut impl Read,
    max_body: u64,
) -> Result<(T, Vec<u8>), FrameError> {
    read_frame_with(r, max_body, |_| Ok(()))
}

/// As [`read_frame`], with `admit` asked about the body's length before the body is
/// allocated and read (a reader's memory budget); its error refuses the frame.
pub fn read_frame_with<T: for<'de> Deserialize<'de>>(
    r: &mut impl Read,
    max_body: u64,
    admit: impl FnOnce(u64) -> Result<(), String>,
) -> Result<(T, Vec<u8>), FrameError> {
    let mut lens = [0u8; 12];
    r.read_exact(&mut lens)?;
    let header_len = u32::from_be_bytes(lens[..4].try_into().expect("4 bytes"));
    let body_len = u64::from_be_bytes(lens[4..].try_into().expect("8 bytes"));
    if header_len > MAX_HEADER {
        return Err(FrameError::Invalid(format!(
            "header of {header_len} bytes is over the {MAX_HEADER}-byte limit"
        )));
    }
    if body_len > max_body {
        return Err(FrameError::Invalid(format!(
            "message of {body_len} bytes is over the {max_body}-byte limit"
        )));
    }
    admit(header_len as u64 + body_len).map_err(FrameError::Invalid)?;
    let mut header = vec![0u8; header_len as usize];
    r.read_exact(&mut header)?;
    let value = serde_json::from_slice(&header)
        .map_err(|e| FrameError::Invalid(format!("not a mailguard message: {e}")))?;
    let mut body = vec![0u8; body_len as usize];
    r.read_exact(&mut body)?;
    Ok((value, body))
}

/// Why a client call failed. Its text names the socket, so the warning a script gets
/// tells the operator where to look.
#[derive(Debug)]
pub enum ClientError {
    /// No daemon at the socket (not running, wrong path, no permission).
    Connect { path: PathBuf, source: io::Error },
    /// The connection broke or timed out before the answer.
    Io { path: PathBuf, source: io::Error },
    /// The daemon answered something unreadable.
    Protocol { path: PathBuf, problem: String },
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Connect { path, source } => write!(
                f,
                "cannot reach the mailguard daemon at {}: {source}",
                path.display()
            ),
            ClientError::Io { path, source } => write!(
                f,
                "the mailguard daemon at {} did not answer: {source}",
                path.display()
            ),
            ClientError::Protocol { path, problem } => write!(
                f,
                "the mailguard daemon at {} answered something unreadable: {problem}",
                path.display()
            ),
        }
    }
}

impl std::error::Error for ClientError {}

/// A writer on a socket that never raises SIGPIPE in the caller (a PHP worker keeps
/// its own signal dispositions): `send(2)` with `MSG_NOSIGNAL`.
struct NoSigPipe<'a>(&'a UnixStream);

impl Write for NoSigPipe<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        loop {
            // SAFETY: a valid fd owned by the borrowed stream and a valid buffer.
            let n = unsafe {
                libc::send(
                    self.0.as_raw_fd(),
                    buf.as_ptr().cast(),
                    buf.len(),
                    libc::MSG_NOSIGNAL,
                )
            };
            if n >= 0 {
                return Ok(n as usize);
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// One request to the daemon at `path` and its answer.
pub fn call(
    path: &Path,
    request: &Request,
    body: &[u8],
    timeout: Duration,
) -> Result<Response, ClientError> {
    let stream = UnixStream::connect(path).map_err(|source| ClientError::Connect {
        path: path.to_path_buf(),
        source,
    })?;
    let io_err = |source| ClientError::Io {
        path: path.to_path_buf(),
        source,
    };
    stream.set_read_timeout(Some(timeout)).map_err(io_err)?;
    stream.set_write_timeout(Some(timeout)).map_err(io_err)?;
    let wrote = write_frame(&mut NoSigPipe(&stream), request, body);
    // A daemon that refuses early (busy, too large) answers and closes without reading
    // the rest: the write fails, and its answer says why.
    let mut reader = &stream;
    match read_frame::<Response>(&mut reader, 0) {
        Ok((response, _)) => Ok(response),
        Err(FrameError::Io(source)) => Err(io_err(wrote.err().unwrap_or(source))),
        Err(FrameError::Invalid(problem)) => Err(ClientError::Protocol {
            path: path.to_path_buf(),
            problem,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let req = Request::Submit(Box::new(Submit {
            entry: "mail".into(),
            params: Some("-f a@b.example".into()),
            from_headers: true,
            ..Submit::default()
        }));
        let mut buf = Vec::new();
        write_frame(&mut buf, &req, b"To: x@y\r\n\r\nhi\r\n").unwrap();
        let (back, body): (Request, Vec<u8>) = read_frame(&mut buf.as_slice(), 1 << 20).unwrap();
        assert_eq!(back, req);
        assert_eq!(body, b"To: x@y\r\n\r\nhi\r\n");
    }

    #[test]
    fn oversized_frames_are_refused_before_reading() {
        let mut buf = Vec::new();
        write_frame(&mut buf, &Request::Status, &[0u8; 100]).unwrap();
        match read_frame::<Request>(&mut buf.as_slice(), 99) {
            Err(FrameError::Invalid(t)) => assert!(t.contains("over the 99-byte limit"), "{t}"),
            other => panic!("{other:?}"),
        }
        let mut huge = Vec::new();
        huge.extend_from_slice(&(MAX_HEADER + 1).to_be_bytes());
        huge.extend_from_slice(&0u64.to_be_bytes());
        assert!(matches!(
            read_frame::<Request>(&mut huge.as_slice(), 0),
            Err(FrameError::Invalid(_))
        ));
    }

    #[test]
    fn unknown_operations_are_invalid() {
        let json = br#"{"op":"become_root"}"#;
        let mut buf = Vec::new();
        buf.extend_from_slice(&(json.len() as u32).to_be_bytes());
        buf.extend_from_slice(&0u64.to_be_bytes());
        buf.extend_from_slice(json);
        assert!(matches!(
            read_frame::<Request>(&mut buf.as_slice(), 0),
            Err(FrameError::Invalid(_))
        ));
    }

    #[test]
    fn a_missing_daemon_is_named() {
        let e = call(
            Path::new("/nonexistent/mailguard.sock"),
            &Request::Status,
            b"",
            Duration::from_secs(1),
        )
        .unwrap_err();
        assert!(e
            .to_string()
            .starts_with("cannot reach the mailguard daemon at /nonexistent/mailguard.sock"));
    }
}

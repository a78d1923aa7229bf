//! mailguard-engine: asks a real spam engine about one message before it is relayed.
//!
//! Two engines, both spoken to over a plain blocking TCP socket with one deadline for the
//! whole exchange (connect, send, read):
//!
//! - **rspamd**: `POST /checkv2` (HTTP/1.1, `Connection: close`) with the envelope in the
//!   `From` / `Rcpt` request headers; the JSON answer gives `score`, `required_score`,
//!   `action` and `symbols`. rspamd's `reject` action is our reject.
//! - **SpamAssassin spamd**: the spamc protocol, `SYMBOLS SPAMC/1.5`; the answer's
//!   `Spam: True ; 7.2 / 5.0` line gives the verdict and the body the rule names.
//!
//! Configured by the `[engine]` table of the operator file ([`EngineConfig::from_toml`]):
//!
//! ```toml
//! [engine]
//! kind = "rspamd"                   # or "spamd"
//! url = "http://127.0.0.1:11333"    # rspamd: http only (a local or LAN engine); path defaults to /checkv2
//! # address = "127.0.0.1:783"       # spamd
//! timeout = "5s"                    # whole exchange; "500ms", "5s", "1m" or a number of seconds
//! on_failure = "deliver"            # engine down, slow or unreadable: see OnFailure
//! # password = "..."                # rspamd controller/normal worker password, if set
//! # user = "mailguard"              # spamd: the user whose preferences apply
//! ```
//!
//! No extra crates: the HTTP/1.1 client is the few lines rspamd needs (Content-Length or
//! chunked answers), so nothing new enters the lock file of the extension's workspace.

use std::fmt;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// Largest answer read from an engine.
const MAX_ANSWER: usize = 4 * 1024 * 1024;

/// Which engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineKind {
    /// rspamd's normal worker (`/checkv2`), e.g. `127.0.0.1:11333`.
    Rspamd {
        host: String,
        port: u16,
        path: String,
    },
    /// SpamAssassin's spamd, e.g. `127.0.0.1:783`.
    Spamd { address: String },
}

/// What the caller does when the engine cannot answer (down, timeout, garbage).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    /// Deliver on the guide rules alone, and say so in the log ("engine unavailable:
    /// delivered on guide rules alone: <error>") and in the metrics. The default: a
    /// broken engine must not stop a shop's order mail.
    Deliver,
    /// Keep the message queued and ask again at the next run (temporary failure).
    Hold,
}

impl OnFailure {
    pub fn as_str(self) -> &'static str {
        match self {
            OnFailure::Deliver => "deliver",
            OnFailure::Hold => "hold",
        }
    }
}

/// The `[engine]` table, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    pub kind: EngineKind,
    pub timeout: Duration,
    pub on_failure: OnFailure,
    /// rspamd `Password` header.
    pub password: Option<String>,
    /// spamd `User` header.
    pub user: Option<String>,
}

impl EngineConfig {
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

    /// Reads the `[engine]` table of an operator file. `Ok(None)`: no `[engine]` table,
    /// no engine. Unknown keys and bad values are errors (a typo must not silently turn
    /// the engine off).
    pub fn from_toml(file: &toml::Table) -> Result<Option<EngineConfig>, String> {
        let Some(v) = file.get("engine") else {
            return Ok(None);
        };
        let t = v
            .as_table()
            .ok_or_else(|| "[engine] must be a table".to_string())?;
        const KEYS: &[&str] = &[
            "kind",
            "url",
            "address",
            "timeout",
            "on_failure",
            "password",
            "user",
        ];
        if let Some(k) = t.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(format!(
                "[engine]: unknown key '{k}' (known: {})",
                KEYS.join(", ")
            ));
        }
        let string = |key: &str| -> Result<Option<String>, String> {
            match t.get(key) {
                None => Ok(None),
                Some(toml::Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(format!("[engine] {key} must be a string")),
            }
        };
        let kind = string("kind")?.ok_or("[engine] needs kind = \"rspamd\" or \"spamd\"")?;
        let kind = match kind.as_str() {
            "rspamd" => {
                if t.contains_key("address") {
                    return Err("[engine] kind = \"rspamd\" takes url, not address".into());
                }
                let url = string("url")?.unwrap_or_else(|| "http://127.0.0.1:11333".into());
                let (host, port, path) = parse_http_url(&url)?;
                EngineKind::Rspamd { host, port, path }
            }
            "spamd" => {
                if t.contains_key("url") {
                    return Err("[engine] kind = \"spamd\" takes address, not url".into());
                }
                let address = string("address")?.unwrap_or_else(|| "127.0.0.1:783".into());
                if address
                    .rsplit_once(':')
                    .and_then(|(_, p)| p.parse::<u16>().ok())
                    .is_none()
                {
                    return Err(format!("[engine] address '{address}' must be host:port"));
                }
                EngineKind::Spamd { address }
            }
            other => {
                return Err(format!(
                    "[engine] kind '{other}' is not \"rspamd\" or \"spamd\""
                ))
            }
        };
        let timeout = match t.get("timeout") {
            None => Self::DEFAULT_TIMEOUT,
            Some(toml::Value::String(s)) => parse_duration(s)?,
            Some(toml::Value::Integer(n)) if *n > 0 => Duration::from_secs(*n as u64),
            Some(toml::Value::Float(x)) if *x > 0.0 && x.is_finite() => Duration::from_secs_f64(*x),
            Some(_) => return Err("[engine] timeout must be like \"5s\" or \"500ms\"".into()),
        };
        if timeout.is_zero() || timeout > Duration::from_secs(300) {
            return Err("[engine] timeout must be between 1ms and 300s".into());
        }
        let on_failure = match string("on_failure")?.as_deref() {
            None | Some("deliver") => OnFailure::Deliver,
            Some("hold") => OnFailure::Hold,
            Some(o) => {
                return Err(format!(
                    "[engine] on_failure '{o}' is not \"deliver\" or \"hold\""
                ))
            }
        };
        Ok(Some(EngineConfig {
            kind,
            timeout,
            on_failure,
            password: string("password")?,
            user: string("user")?,
        }))
    }
}

/// `5s`, `500ms`, `1m`, `2.5s`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let (num, mult) = if let Some(n) = t.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else {
        (t, 1.0)
    };
    let x: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("'{s}' is not a duration like \"5s\" or \"500ms\""))?;
    if !x.is_finite() || x <= 0.0 {
        return Err(format!("'{s}' is not a positive duration"));
    }
    Ok(Duration::from_secs_f64(x * mult))
}

/// `http://host[:port][/path]` → (host, port, path). https is refused: the engine is a
/// local or LAN service, and TLS would pull a TLS stack into this crate.
fn parse_http_url(url: &str) -> Result<(String, u16, String), String> {
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        format!("[engine] url '{url}' must start with http:// (https is not supported)")
    })?;
    let (authority, path) = match rest.find('/') {
        Some(p) => (&rest[..p], &rest[p..]),
        None => (rest, ""),
    };
    let (host, port) = if let Some(h) = authority.strip_prefix('[') {
        let (h, after) = h
            .split_once(']')
            .ok_or_else(|| format!("[engine] url '{url}': unclosed [ in host"))?;
        let port = match after.strip_prefix(':') {
            Some(p) => p
                .parse()
                .map_err(|_| format!("[engine] url '{url}': bad port"))?,
            None => 11333,
        };
        (format!("[{h}]"), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (
                h.to_string(),
                p.parse()
                    .map_err(|_| format!("[engine] url '{url}': bad port"))?,
            ),
            None => (authority.to_string(), 11333),
        }
    };
    if host.is_empty() || host == "[]" {
        return Err(format!("[engine] url '{url}' has no host"));
    }
    let path = if path.is_empty() || path == "/" {
        "/checkv2".to_string()
    } else {
        path.to_string()
    };
    Ok((host, port, path))
}

/// The engine's answer about one message.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineVerdict {
    /// The engine says refuse: rspamd's `reject` action; spamd's `Spam: True`.
    pub reject: bool,
    pub score: f64,
    /// The engine's threshold for that verdict (rspamd: `required_score`, the reject
    /// level; spamd: `required_score`, 5.0 by default).
    pub required: f64,
    /// The engine's rule names (rspamd symbols with their scores, spamd rule names):
    /// shown as the reasons of a refusal.
    pub symbols: Vec<String>,
    /// rspamd's action (`no action`, `greylist`, `add header`, `rewrite subject`,
    /// `soft reject`, `reject`); spamd: `spam` or `no action`.
    pub action: String,
}

impl EngineVerdict {
    /// The engine would at least mark the message (rspamd add header or worse; spamd spam).
    pub fn flagged(&self) -> bool {
        self.reject
            || matches!(
                self.action.as_str(),
                "add header" | "rewrite subject" | "spam"
            )
    }
}

/// Why the engine gave no verdict.
#[derive(Debug)]
pub enum EngineError {
    /// Could not connect (refused, no route, name not found).
    Connect(String),
    /// The deadline passed.
    Timeout,
    /// Reading or writing the socket failed.
    Io(std::io::Error),
    /// The engine answered something we cannot read, or an error status.
    Protocol(String),
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EngineError::Connect(e) => write!(f, "cannot connect to the spam engine: {e}"),
            EngineError::Timeout => write!(f, "the spam engine did not answer in time"),
            EngineError::Io(e) => write!(f, "spam engine connection failed: {e}"),
            EngineError::Protocol(e) => write!(f, "unreadable spam engine answer: {e}"),
        }
    }
}

impl std::error::Error for EngineError {}

impl From<std::io::Error> for EngineError {
    fn from(e: std::io::Error) -> Self {
        match e.kind() {
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => EngineError::Timeout,
            _ => EngineError::Io(e),
        }
    }
}

/// A configured engine.
#[derive(Debug, Clone)]
pub struct Engine {
    config: EngineConfig,
}

impl Engine {
    pub fn new(config: EngineConfig) -> Engine {
        Engine { config }
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Asks the engine about `raw` (the message as it will be relayed), sent by
    /// `envelope_from` to `recipients`. Blocks at most the configured timeout.
    pub fn check(
        &self,
        raw: &[u8],
        envelope_from: &str,
        recipients: &[String],
    ) -> Result<EngineVerdict, EngineError> {
        let deadline = Instant::now() + self.config.timeout;
        match &self.config.kind {
            EngineKind::Rspamd { host, port, path } => {
                let mut s = connect(&format!("{host}:{port}"), deadline)?;
                let mut req = format!(
                    "POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\
                     Content-Length: {}\r\nUser-Agent: mailguard\r\n",
                    raw.len()
                );
                let clean = |v: &str| v.replace(['\r', '\n'], "");
                if !envelope_from.is_empty() {
                    req.push_str(&format!("From: {}\r\n", clean(envelope_from)));
                }
                for r in recipients {
                    req.push_str(&format!("Rcpt: {}\r\n", clean(r)));
                }
                if let Some(p) = &self.config.password {
                    req.push_str(&format!("Password: {}\r\n", clean(p)));
                }
                // Outbound mail from a local script: say so, so rspamd skips inbound-only checks.
                req.push_str("IP: 127.0.0.1\r\nUser: mailguard\r\n\r\n");
                write_all(&mut s, req.as_bytes(), deadline)?;
                write_all(&mut s, raw, deadline)?;
                let answer = read_all(&mut s, deadline)?;
                let body = http_body(&answer)?;
                parse_rspamd(&body)
            }
            EngineKind::Spamd { address } => {
                let mut s = connect(address, deadline)?;
                let mut req = format!("SYMBOLS SPAMC/1.5\r\nContent-length: {}\r\n", raw.len());
                if let Some(u) = &self.config.user {
                    req.push_str(&format!("User: {}\r\n", u.replace(['\r', '\n'], "")));
                }
                req.push_str("\r\n");
                write_all(&mut s, req.as_bytes(), deadline)?;
                write_all(&mut s, raw, deadline)?;
                // Tell spamd the message is complete (it reads Content-length bytes anyway).
                let _ = s.shutdown(std::net::Shutdown::Write);
                let answer = read_all(&mut s, deadline)?;
                parse_spamd(&answer)
            }
        }
    }
}

fn left(deadline: Instant) -> Result<Duration, EngineError> {
    let now = Instant::now();
    if now >= deadline {
        return Err(EngineError::Timeout);
    }
    Ok((deadline - now).max(Duration::from_millis(1)))
}

fn connect(address: &str, deadline: Instant) -> Result<TcpStream, EngineError> {
    let addrs: Vec<SocketAddr> = address
        .to_socket_addrs()
        .map_err(|e| EngineError::Connect(format!("{address}: {e}")))?
        .collect();
    let mut last = format!("{address}: no address");
    for a in addrs {
        match TcpStream::connect_timeout(&a, left(deadline)?) {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return Err(EngineError::Timeout),
            Err(e) => last = format!("{a}: {e}"),
        }
    }
    Err(EngineError::Connect(last))
}

fn write_all(s: &mut TcpStream, mut data: &[u8], deadline: Instant) -> Result<(), EngineError> {
    while !data.is_empty() {
        s.set_write_timeout(Some(left(deadline)?))?;
        match s.write(data) {
            Ok(0) => {
                return Err(EngineError::Protocol(
                    "the engine closed the connection".into(),
                ))
            }
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

fn read_all(s: &mut TcpStream, deadline: Instant) -> Result<Vec<u8>, EngineError> {
    let mut out = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        s.set_read_timeout(Some(left(deadline)?))?;
        match s.read(&mut buf) {
            Ok(0) => return Ok(out),
            Ok(n) => {
                if out.len() + n > MAX_ANSWER {
                    return Err(EngineError::Protocol("answer too large".into()));
                }
                out.extend_from_slice(&buf[..n]);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The body of an HTTP/1.x answer (status must be 2xx; Content-Length, chunked or EOF).
fn http_body(answer: &[u8]) -> Result<Vec<u8>, EngineError> {
    let end = find(answer, b"\r\n\r\n")
        .ok_or_else(|| EngineError::Protocol("no HTTP header end".into()))?;
    let head = String::from_utf8_lossy(&answer[..end]);
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or_default();
    let code: u16 = status
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .filter(|_| status.starts_with("HTTP/1."))
        .ok_or_else(|| EngineError::Protocol(format!("bad status line '{status}'")))?;
    let body = &answer[end + 4..];
    let mut chunked = false;
    let mut length = None;
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            let (k, v) = (k.trim(), v.trim());
            if k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked") {
                chunked = true;
            } else if k.eq_ignore_ascii_case("content-length") {
                length = v.parse::<usize>().ok();
            }
        }
    }
    let body = if chunked {
        dechunk(body)?
    } else if let Some(n) = length {
        body.get(..n)
            .ok_or_else(|| EngineError::Protocol("answer shorter than its Content-Length".into()))?
            .to_vec()
    } else {
        body.to_vec()
    };
    if !(200..300).contains(&code) {
        let text: String = String::from_utf8_lossy(&body).chars().take(200).collect();
        return Err(EngineError::Protocol(format!("HTTP {code}: {text}")));
    }
    Ok(body)
}

fn dechunk(mut b: &[u8]) -> Result<Vec<u8>, EngineError> {
    let mut out = Vec::new();
    loop {
        let nl = find(b, b"\r\n").ok_or_else(|| EngineError::Protocol("bad chunk".into()))?;
        let size_text = String::from_utf8_lossy(&b[..nl]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| EngineError::Protocol("bad chunk size".into()))?;
        b = &b[nl + 2..];
        if size == 0 {
            return Ok(out);
        }
        let chunk = b
            .get(..size)
            .ok_or_else(|| EngineError::Protocol("truncated chunk".into()))?;
        out.extend_from_slice(chunk);
        b = b.get(size + 2..).unwrap_or_default();
    }
}

/// rspamd's `/checkv2` JSON.
pub fn parse_rspamd(body: &[u8]) -> Result<EngineVerdict, EngineError> {
    let v: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| EngineError::Protocol(format!("rspamd JSON: {e}")))?;
    if let Some(err) = v.get("error").and_then(|e| e.as_str()) {
        return Err(EngineError::Protocol(format!("rspamd: {err}")));
    }
    let score = v
        .get("score")
        .and_then(|s| s.as_f64())
        .ok_or_else(|| EngineError::Protocol("rspamd answer has no score".into()))?;
    let required = v
        .get("required_score")
        .and_then(|s| s.as_f64())
        .unwrap_or(15.0);
    let action = v
        .get("action")
        .and_then(|s| s.as_str())
        .unwrap_or("no action")
        .to_string();
    let mut symbols: Vec<(f64, String)> = v
        .get("symbols")
        .and_then(|s| s.as_object())
        .map(|m| {
            m.iter()
                .map(|(name, sym)| {
                    let sc = sym.get("score").and_then(|x| x.as_f64()).unwrap_or(0.0);
                    (sc, format!("{name}({sc:.2})"))
                })
                .collect()
        })
        .unwrap_or_default();
    // Strongest first: those are the reasons worth reading.
    symbols.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    Ok(EngineVerdict {
        reject: action == "reject",
        score,
        required,
        symbols: symbols.into_iter().map(|(_, s)| s).collect(),
        action,
    })
}

/// spamd's answer to `SYMBOLS`: `SPAMD/1.1 0 EX_OK`, a `Spam: True ; 7.2 / 5.0` header,
/// a blank line, comma-separated rule names.
pub fn parse_spamd(answer: &[u8]) -> Result<EngineVerdict, EngineError> {
    let text = String::from_utf8_lossy(answer);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .or_else(|| text.split_once("\n\n"))
        .unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines.next().unwrap_or_default();
    let mut words = status.split_whitespace();
    if !words.next().is_some_and(|w| w.starts_with("SPAMD/")) {
        return Err(EngineError::Protocol(format!(
            "bad spamd status '{status}'"
        )));
    }
    let code = words.next().unwrap_or("?");
    if code != "0" {
        return Err(EngineError::Protocol(format!("spamd: {status}")));
    }
    let spam = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("spam"))
        .map(|(_, v)| v.trim().to_string())
        .ok_or_else(|| EngineError::Protocol("spamd answer has no Spam header".into()))?;
    // "True ; 7.2 / 5.0"
    let (flag, nums) = spam
        .split_once(';')
        .ok_or_else(|| EngineError::Protocol(format!("bad Spam header '{spam}'")))?;
    let (s, r) = nums
        .split_once('/')
        .ok_or_else(|| EngineError::Protocol(format!("bad Spam header '{spam}'")))?;
    let score: f64 = s
        .trim()
        .parse()
        .map_err(|_| EngineError::Protocol(format!("bad score in '{spam}'")))?;
    let required: f64 = r
        .trim()
        .parse()
        .map_err(|_| EngineError::Protocol(format!("bad threshold in '{spam}'")))?;
    let reject = matches!(flag.trim().to_ascii_lowercase().as_str(), "true" | "yes");
    let symbols = body
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    Ok(EngineVerdict {
        reject,
        score,
        required,
        symbols,
        action: if reject { "spam" } else { "no action" }.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(s: &str) -> toml::Table {
        s.parse().unwrap()
    }

    #[test]
    fn config_reads_both_kinds() {
        assert_eq!(
            EngineConfig::from_toml(&table("[smtp]\nhost='x'")),
            Ok(None)
        );
        let c = EngineConfig::from_toml(&table(
            "[engine]\nkind='rspamd'\nurl='http://10.0.0.5:11333'\ntimeout='1500ms'",
        ))
        .unwrap()
        .unwrap();
        assert_eq!(
            c.kind,
            EngineKind::Rspamd {
                host: "10.0.0.5".into(),
                port: 11333,
                path: "/checkv2".into()
            }
        );
        assert_eq!(c.timeout, Duration::from_millis(1500));
        assert_eq!(c.on_failure, OnFailure::Deliver);
        let c = EngineConfig::from_toml(&table(
            "[engine]\nkind='spamd'\naddress='127.0.0.1:7830'\ntimeout=2\non_failure='hold'",
        ))
        .unwrap()
        .unwrap();
        assert_eq!(
            c.kind,
            EngineKind::Spamd {
                address: "127.0.0.1:7830".into()
            }
        );
        assert_eq!(c.timeout, Duration::from_secs(2));
        assert_eq!(c.on_failure, OnFailure::Hold);
    }

    #[test]
    fn config_errors_are_named() {
        for bad in [
            "[engine]\nkind='bogofilter'",
            "[engine]\nurl='http://x'",
            "[engine]\nkind='rspamd'\nurl='https://x'",
            "[engine]\nkind='rspamd'\ntimeout='soon'",
            "[engine]\nkind='rspamd'\non_failure='panic'",
            "[engine]\nkind='spamd'\naddress='nohost'",
            "[engine]\nkind='spamd'\nadress='127.0.0.1:783'",
            "engine = 3",
        ] {
            assert!(EngineConfig::from_toml(&table(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn answers_parse() {
        let v = parse_rspamd(
            br#"{"is_skipped":false,"score":16.5,"required_score":15.0,"action":"reject",
                "symbols":{"PHISHING":{"name":"PHISHING","score":4.5},"R_DKIM_NA":{"name":"R_DKIM_NA","score":0.0}}}"#,
        )
        .unwrap();
        assert!(v.reject && v.flagged());
        assert_eq!(v.symbols, vec!["PHISHING(4.50)", "R_DKIM_NA(0.00)"]);
        let v = parse_spamd(b"SPAMD/1.1 0 EX_OK\r\nContent-length: 20\r\nSpam: True ; 7.2 / 5.0\r\n\r\nEMPTY_MESSAGE,URIBL_X").unwrap();
        assert!(v.reject);
        assert_eq!((v.score, v.required), (7.2, 5.0));
        assert_eq!(v.symbols, vec!["EMPTY_MESSAGE", "URIBL_X"]);
        assert!(parse_spamd(b"SPAMD/1.0 76 Bad header line").is_err());
        let b = http_body(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n").unwrap();
        assert_eq!(b, b"abcde");
        assert!(http_body(b"HTTP/1.1 500 Oops\r\nContent-Length: 2\r\n\r\nno").is_err());
    }

    #[test]
    fn a_dead_engine_is_an_error_not_a_hang() {
        // A listener that never answers: the deadline ends the wait.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let e = Engine::new(EngineConfig {
            kind: EngineKind::Spamd {
                address: format!("127.0.0.1:{port}"),
            },
            timeout: Duration::from_millis(300),
            on_failure: OnFailure::Deliver,
            password: None,
            user: None,
        });
        let t = Instant::now();
        let r = e.check(b"To: a@b.example\r\n\r\nhi\r\n", "s@b.example", &[]);
        assert!(matches!(r, Err(EngineError::Timeout)), "{r:?}");
        assert!(t.elapsed() < Duration::from_secs(3));
        drop(l);
        // Nothing listening: a connect error.
        let r = e.check(b"x", "", &[]);
        assert!(matches!(r, Err(EngineError::Connect(_))), "{r:?}");
    }
}

//! The mail mailguard writes itself (rule-trip notices, daily error reports): the
//! operator config they are sent with, their text, and the bytes of the message.
//!
//! The config is the same `mailguard.toml` the transport reads; this module owns its
//! `[runner]` and `[report]` tables (unknown keys inside them are errors, as in `[smtp]`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use mailguard_core::limits::Limits;
use mailguard_core::rate::Timestamp;
use mailguard_store::{NoticeDue, Origin, OriginSource, Status, Store};
use mailguard_transport::config::{parse_duration, DEFAULT_SENDMAIL_PATH};
use mailguard_transport::{Method, Transport, TransportConfig};
use toml::{Table, Value};

/// The operator's config file when none is given.
pub const DEFAULT_CONFIG: &str = "/etc/mailguard/mailguard.toml";

/// Everything the runner and the report read from `mailguard.toml`.
pub struct Config {
    pub transport: TransportConfig,
    /// `[runner] interval`: the pause between two polls of the queue (default 1 s).
    pub interval: Duration,
    /// `[runner] batch`: messages claimed per poll (default 100).
    pub batch: usize,
    /// `[runner] concurrency`: deliveries under way at once (default 20).
    pub concurrency: usize,
    /// `[engine]`: a real spam engine asked about each message before it is relayed.
    pub engine: Option<mailguard_engine::EngineConfig>,
    /// `[report] from`: the sender of notices and reports (default `mailguard@HOST`).
    pub from: String,
    /// Lines the operator should see at start-up.
    pub notices: Vec<String>,
}

/// Reads the config. A missing file at the default path means the stock sendmail pipe
/// (said in a notice); a missing file that was named explicitly is an error (a typo must
/// not quietly change how mail leaves the machine).
/// Where `run` and `report` find the state directory and the operator's file:
/// `--state-dir DIR` and `--config FILE` (a missing default file means defaults; a
/// missing file named with `--config` is an error).
#[derive(Clone)]
pub struct Places {
    pub state_dir: PathBuf,
    config: Option<PathBuf>,
}

impl Default for Places {
    fn default() -> Self {
        Places {
            state_dir: PathBuf::from(mailguard_store::DEFAULT_STATE_DIR),
            config: None,
        }
    }
}

impl Places {
    /// Takes `--state-dir` or `--config` from `args`; false for any other key.
    pub fn take(&mut self, key: &str, args: &mut crate::args::Args<'_>) -> Result<bool, String> {
        match key {
            "--state-dir" => self.state_dir = PathBuf::from(args.value()?),
            "--config" => self.config = Some(PathBuf::from(args.value()?)),
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The operator file this run reads.
    pub fn config_path(&self) -> PathBuf {
        self.config
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG))
    }

    /// Whether `--config` named it (then a missing file is an error).
    pub fn config_given(&self) -> bool {
        self.config.is_some()
    }

    pub fn load_config(&self) -> Result<Config, String> {
        match &self.config {
            Some(path) => load_config(path, true),
            None => load_config(Path::new(DEFAULT_CONFIG), false),
        }
    }
}

pub fn load_config(path: &Path, explicit: bool) -> Result<Config, String> {
    let mut notices = Vec::new();
    let table: Table = match std::fs::read_to_string(path) {
        Ok(text) => text
            .parse()
            .map_err(|e| format!("{}: not valid TOML: {e}", path.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
            notices.push(format!(
                "mailguard: no config file {}: delivering through the stock sendmail pipe \"{DEFAULT_SENDMAIL_PATH}\"",
                path.display()
            ));
            Table::new()
        }
        Err(e) => {
            return Err(format!(
                "cannot read the config file {}: {e}",
                path.display()
            ))
        }
    };
    let transport = if table.is_empty() {
        TransportConfig::default()
    } else {
        TransportConfig::load(path).map_err(|e| e.to_string())?
    };
    notices.extend(transport.notices());
    let runner = sub_table(&table, "runner", &["interval", "batch", "concurrency"])?;
    let report = sub_table(&table, "report", &["from"])?;
    let interval = match runner.and_then(|t| t.get("interval")) {
        None => Duration::from_secs(1),
        Some(Value::String(s)) => parse_duration(s).filter(|d| !d.is_zero()).ok_or_else(|| {
            format!("runner.interval: {s:?} is not a duration like \"1s\" or \"500ms\"")
        })?,
        Some(Value::Integer(n)) if *n > 0 => Duration::from_secs(*n as u64),
        Some(v) => {
            return Err(format!(
                "runner.interval: must be a duration like \"1s\", not {v:?}"
            ))
        }
    };
    let batch = match runner.and_then(|t| t.get("batch")) {
        None => 100,
        Some(Value::Integer(n)) if (1..=10_000).contains(n) => *n as usize,
        Some(v) => {
            return Err(format!(
                "runner.batch: must be a whole number from 1 to 10000, not {v:?}"
            ))
        }
    };
    let engine = mailguard_engine::EngineConfig::from_toml(&table)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if let Some(e) = &engine {
        notices.push(format!(
            "mailguard: every message is checked by the spam engine {:?} before it is relayed (engine down: {})",
            e.kind,
            e.on_failure.as_str()
        ));
    }
    let concurrency = match runner.and_then(|t| t.get("concurrency")) {
        None => 20,
        Some(Value::Integer(n)) if (1..=200).contains(n) => *n as usize,
        Some(v) => {
            return Err(format!(
                "runner.concurrency: must be a whole number from 1 to 200, not {v:?}"
            ))
        }
    };
    let from = match report.and_then(|t| t.get("from")) {
        None => format!("mailguard@{}", host_name()),
        Some(Value::String(s)) if is_address(s) => s.trim().to_owned(),
        Some(v) => {
            return Err(format!(
                "report.from: must be an address like \"mailguard@example.com\", not {v:?}"
            ))
        }
    };
    Ok(Config {
        transport,
        interval,
        batch,
        concurrency,
        engine,
        from,
        notices,
    })
}

fn sub_table<'a>(t: &'a Table, name: &str, known: &[&str]) -> Result<Option<&'a Table>, String> {
    match t.get(name) {
        None => Ok(None),
        Some(Value::Table(sub)) => {
            if let Some(k) = sub.keys().find(|k| !known.contains(&k.as_str())) {
                return Err(format!(
                    "{name}.{k}: unknown key (known: {})",
                    known.join(", ")
                ));
            }
            Ok(Some(sub))
        }
        Some(_) => Err(format!("{name}: must be a table ([{name}])")),
    }
}

/// One plain `local@domain`, nothing that could break a header.
pub fn is_address(s: &str) -> bool {
    let s = s.trim();
    match s.rsplit_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && s.len() <= 254
                && s.bytes()
                    .all(|b| b.is_ascii_graphic() && !b"<>()[],;:\"\\".contains(&b))
        }
        None => false,
    }
}

pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| {
            !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.".contains(&b))
        })
        .unwrap_or_else(|| "localhost".to_owned())
}

/// Describes the transport for logs: `smtp smtp.example.com:465 (ssl)`.
pub fn describe(t: &TransportConfig) -> String {
    match &t.method {
        Method::Sendmail { sendmail_path } => format!("sendmail pipe \"{sendmail_path}\""),
        Method::Smtp(s) => format!("smtp {}:{} ({})", s.host, s.port, s.security.as_str()),
    }
}

/// A plain-text message of ours.
pub struct Mail {
    pub from: String,
    pub to: String,
    pub subject: String,
    /// Lines without line ends.
    pub body: Vec<String>,
    /// `X-MailGuard-Notice`: what kind of mail this is (`bounce-ratio`, `report`).
    pub kind: String,
}

impl Mail {
    /// The message bytes: CRLF line ends, UTF-8 body, `Auto-Submitted` so that
    /// vacation responders do not answer (RFC 3834).
    pub fn to_bytes(&self, now: Timestamp) -> Vec<u8> {
        let clean = |s: &str| s.replace(['\r', '\n'], " ");
        let domain = self
            .from
            .rsplit_once('@')
            .map(|(_, d)| d)
            .unwrap_or("localhost");
        let mut out = String::new();
        out.push_str(&format!("From: {}\r\n", clean(&self.from)));
        out.push_str(&format!("To: {}\r\n", clean(&self.to)));
        out.push_str(&format!(
            "Subject: {}\r\n",
            encode_header(&clean(&self.subject))
        ));
        out.push_str(&format!("Date: {}\r\n", rfc5322_date(now)));
        out.push_str(&format!(
            "Message-ID: <mailguard.{}.{}.{}@{}>\r\n",
            clean(&self.kind),
            now.0,
            std::process::id(),
            domain
        ));
        out.push_str("Auto-Submitted: auto-generated\r\n");
        out.push_str(&format!("X-MailGuard-Notice: {}\r\n", clean(&self.kind)));
        out.push_str("MIME-Version: 1.0\r\n");
        out.push_str("Content-Type: text/plain; charset=utf-8\r\n");
        out.push_str("Content-Transfer-Encoding: 8bit\r\n\r\n");
        for line in &self.body {
            // SMTP allows 998 octets per line; our lines hold paths and reply texts.
            let mut rest = clean(line);
            while rest.len() > 900 {
                let mut cut = 900;
                while !rest.is_char_boundary(cut) {
                    cut -= 1;
                }
                out.push_str(&rest[..cut]);
                out.push_str("\r\n");
                rest = format!("  {}", &rest[cut..]);
            }
            out.push_str(&rest);
            out.push_str("\r\n");
        }
        out.into_bytes()
    }

    /// Sends it through `transport` (envelope sender = `from`).
    pub fn send(&self, transport: &mut dyn Transport, now: Timestamp) -> Result<(), String> {
        transport
            .send(
                &self.from,
                std::slice::from_ref(&self.to),
                &self.to_bytes(now),
            )
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// RFC 2047 for a subject with non-ASCII characters (an account name could have some).
fn encode_header(s: &str) -> String {
    if s.is_ascii() {
        return s.to_owned();
    }
    let hex: String = s
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' => (b as char).to_string(),
            b' ' => "_".to_owned(),
            _ => format!("={b:02X}"),
        })
        .collect();
    format!("=?UTF-8?Q?{hex}?=")
}

/// `Tue, 14 May 2024 10:12:03 +0000`.
pub fn rfc5322_date(t: Timestamp) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let day = t.day();
    let (y, m, d) = day.ymd();
    let secs = t.0.rem_euclid(86_400_000) / 1000;
    format!(
        "{}, {d} {} {y:04} {:02}:{:02}:{:02} +0000",
        DAYS[day.0.rem_euclid(7) as usize],
        MONTHS[(m - 1) as usize],
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// What tripped, in words, and which mail to look at for the scripts.
fn trip_words(n: &NoticeDue) -> (&'static str, OriginSource, Duration) {
    let limits: Limits = n.limits.parse().unwrap_or_default();
    match n.to {
        Status::Spam => (
            "too many of its messages were refused as spam",
            OriginSource::RefusedSpam,
            limits
                .spam_refusals
                .map(|l| l.period)
                .unwrap_or(Duration::from_secs(3600)),
        ),
        Status::Bounce => (
            "too many of its messages failed (the bounce ratio was exceeded)",
            OriginSource::Failed,
            limits.bounce.window,
        ),
        _ => (
            "sent too many messages too quickly",
            OriginSource::Accepted,
            limits.burst.longest().unwrap_or(Duration::from_secs(60)),
        ),
    }
}

/// The notice for one rule trip: subject and body (SPEC §5, the guide's remedies).
pub fn trip_notice(store: &mut Store, n: &NoticeDue, from: &str, to: &str) -> Result<Mail, String> {
    let (why, source, window) = trip_words(n);
    // The rule's window before the trip, plus a little for mail accepted meanwhile.
    let origins = store
        .origins_between(
            &n.account,
            source,
            n.time.minus(window),
            n.time.plus(Duration::from_secs(60)),
            10,
        )
        .map_err(|e| e.to_string())?;
    let subject = match n.to {
        Status::Spam => format!("Abuse on hosting {}", n.account),
        to => format!("mailguard: {} is now {} ({why})", n.account, to.as_str()),
    };
    let mut body = vec![
        format!("Hello,"),
        String::new(),
        format!(
            "on {} mailguard changed the mail status of hosting account {} from {} to {}: {why}.",
            n.time,
            n.account,
            n.from.as_str(),
            n.to.as_str()
        ),
    ];
    if !n.detail.is_empty() {
        body.push(format!("What tripped: {} ({}).", n.detail, n.reason));
    }
    body.push(String::new());
    body.push(match n.to {
        Status::Spam => "New mail from the account's scripts is refused; queued mail waits and is never sent.".to_owned(),
        _ => "New mail from the account's scripts is accepted but held; queued mail waits (at most the hold time, then it expires as an error).".to_owned(),
    });
    body.push(String::new());
    if origins.is_empty() {
        body.push("No script could be named for the mail in question.".to_owned());
    } else {
        body.push("The scripts that sent the mail in question (messages, script):".to_owned());
        for (origin, count) in &origins {
            body.push(format!("  {count:>6}  {}", script_line(origin)));
        }
    }
    body.push(String::new());
    body.push("What to do:".to_owned());
    let remedies: &[&str] = match n.to {
        Status::Spam => &[
            "- If a robot used a contact form: protect every form that sends mail with a captcha.",
            "- If malicious files were put on the hosting: read the hosting's logs to find the hole and",
            "  the infected files, remove or fix them, and update the CMS (WordPress, Joomla,",
            "  PrestaShop, Drupal...), its plugins and themes; use official plugins and themes only.",
            "- Then purge the queue (mailguard purge): in this status a purge is mandatory, unblock",
            "  is refused. The purge deletes the queued mail and returns the account to active.",
        ],
        Status::Bounce => &[
            "- Check the addresses your scripts send to (mailguard errors lists the failed ones):",
            "  remove addresses that do not exist and protect forms with a captcha so robots cannot",
            "  feed them made-up addresses.",
            "- Then either unblock (status force: the allowed ratio is doubled, the queued mail is",
            "  sent) or purge (the queued mail is deleted, the account is active with the normal ratio).",
        ],
        _ => &[
            "- Find out why the scripts above sent so much so fast: protect forms with a captcha,",
            "  update the CMS, its plugins and themes, and remove infected files if any.",
            "- Then unblock (the held mail is sent) or purge (the held mail is deleted).",
        ],
    };
    body.extend(remedies.iter().map(|s| s.to_string()));
    body.push(String::new());
    body.push("-- ".to_owned());
    body.push("mailguard (this message was sent automatically)".to_owned());
    Ok(Mail {
        from: from.to_owned(),
        to: to.to_owned(),
        subject,
        body,
        kind: n.reason.clone(),
    })
}

/// `file:line via caller (vhost/uri)` without the client address.
pub fn script_line(o: &Origin) -> String {
    o.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_rfc5322() {
        // 2024-05-14T08:12:03Z was a Tuesday.
        assert_eq!(
            rfc5322_date(Timestamp(1_715_674_323_000)),
            "Tue, 14 May 2024 08:12:03 +0000"
        );
        assert_eq!(rfc5322_date(Timestamp(0)), "Thu, 1 Jan 1970 00:00:00 +0000");
    }

    #[test]
    fn mail_bytes_are_crlf_and_header_safe() {
        let m = Mail {
            from: "mailguard@example.com".into(),
            to: "owner@example.org".into(),
            subject: "evil\r\nBcc: x@y".into(),
            body: vec!["one".into(), "two\nthree".into()],
            kind: "report".into(),
        };
        let text = String::from_utf8(m.to_bytes(Timestamp(0))).unwrap();
        assert!(text.contains("Subject: evil  Bcc: x@y\r\n"));
        assert!(!text.contains("\r\nBcc:"));
        assert!(text.ends_with("\r\n\r\none\r\ntwo three\r\n"));
        assert!(!text.replace("\r\n", "").contains('\n'));
        assert_eq!(
            encode_header("Zażółć"),
            "=?UTF-8?Q?Za=C5=BC=C3=B3=C5=82=C4=87?="
        );
    }

    #[test]
    fn addresses() {
        assert!(is_address("mailguard@example.com"));
        assert!(!is_address("a@b>\r\nX: y"));
        assert!(!is_address("nobody"));
    }
}

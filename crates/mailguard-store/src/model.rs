//! The values that go in and out of the store: submissions, outcomes, reports.

use std::fmt;
use std::str::FromStr;

use mailguard_core::account::{Action, Trip};
pub use mailguard_core::outcome::{Failure, Outcome, Plan, Split};
use mailguard_core::rate::{Day, Timestamp};
use mailguard_core::status::Status;
use serde_json::{json, Value};

/// A queued message's id (never reused, also after deletion).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MessageId(pub i64);

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for MessageId {
    type Err = String;
    fn from_str(s: &str) -> Result<MessageId, String> {
        s.trim()
            .parse()
            .map(MessageId)
            .map_err(|_| format!("\"{s}\" is not a message id"))
    }
}

/// Where a message came from (SPEC §5). Every field is optional: CLI scripts have no vhost.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    /// The PHP file and line of the mail() call.
    pub file: Option<String>,
    pub line: Option<u32>,
    /// The first caller outside known mail libraries (PHPMailer, wp_mail, ...), `file:line`.
    pub caller: Option<String>,
    pub vhost: Option<String>,
    pub request_uri: Option<String>,
    pub client_ip: Option<String>,
    /// `web` or `cli` (`sendmail` for the sendmail entry point).
    pub sapi: Option<String>,
    /// In hardened mode: the caller's uid and pid as the kernel reported them
    /// (`SO_PEERCRED`), and `claimed` = the fields above are what the client said.
    pub uid: Option<u32>,
    pub pid: Option<u32>,
    pub claimed: bool,
}

impl Origin {
    pub fn to_json(&self) -> Value {
        json!({
            "file": self.file, "line": self.line, "caller": self.caller, "vhost": self.vhost,
            "request_uri": self.request_uri, "client_ip": self.client_ip, "sapi": self.sapi,
            "uid": self.uid, "pid": self.pid, "claimed": self.claimed,
        })
    }

    pub fn from_json(v: &Value) -> Origin {
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        Origin {
            file: s("file"),
            line: v.get("line").and_then(Value::as_u64).map(|n| n as u32),
            caller: s("caller"),
            vhost: s("vhost"),
            request_uri: s("request_uri"),
            client_ip: s("client_ip"),
            sapi: s("sapi"),
            uid: v.get("uid").and_then(Value::as_u64).map(|n| n as u32),
            pid: v.get("pid").and_then(Value::as_u64).map(|n| n as u32),
            claimed: v.get("claimed").and_then(Value::as_bool).unwrap_or(false),
        }
    }
}

impl fmt::Display for Origin {
    /// `/var/www/contact.php:42 via /var/www/wp-content/plugins/x.php:10 (web example.org/contact 203.0.113.5)`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, self.line) {
            (Some(file), Some(line)) => write!(f, "{file}:{line}")?,
            (Some(file), None) => write!(f, "{file}")?,
            _ => f.write_str("(unknown script)")?,
        }
        if let Some(c) = &self.caller {
            write!(f, " via {c}")?;
        }
        let extra: Vec<String> = [
            self.sapi.clone(),
            match (&self.vhost, &self.request_uri) {
                (Some(h), Some(u)) => Some(format!("{h}{u}")),
                (Some(h), None) => Some(h.clone()),
                (None, Some(u)) => Some(u.clone()),
                _ => None,
            },
            self.client_ip.clone(),
        ]
        .into_iter()
        .flatten()
        .collect();
        if !extra.is_empty() {
            write!(f, " ({})", extra.join(" "))?;
        }
        if let Some(uid) = self.uid {
            write!(f, " [uid {uid}")?;
            if let Some(pid) = self.pid {
                write!(f, " pid {pid}")?;
            }
            f.write_str(if self.claimed {
                ", script claimed]"
            } else {
                "]"
            })?;
        }
        Ok(())
    }
}

/// The spam scorer's verdict on a message, as much as the store keeps of it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SpamSummary {
    pub score: f64,
    /// The rule ids that hit.
    pub rules: Vec<String>,
    /// At or over the refuse threshold (in observe mode the message is still sent, and
    /// the refusal still counts toward the spam status as an observation).
    pub refuse: bool,
}

impl SpamSummary {
    /// What the store keeps of the scorer's verdict.
    pub fn of(v: &mailguard_core::spam::Verdict) -> SpamSummary {
        SpamSummary {
            score: f64::from(v.score),
            rules: v.hits.iter().map(|h| h.rule.as_str().to_owned()).collect(),
            refuse: v.level == mailguard_core::spam::Level::Refuse,
        }
    }

    pub fn to_json(&self) -> Value {
        json!({"score": self.score, "rules": self.rules, "refuse": self.refuse})
    }

    pub fn from_json(v: &Value) -> SpamSummary {
        SpamSummary {
            score: v.get("score").and_then(Value::as_f64).unwrap_or(0.0),
            rules: v
                .get("rules")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|r| r.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
            refuse: v.get("refuse").and_then(Value::as_bool).unwrap_or(false),
        }
    }
}

/// One message handed to the store, borrowed from the caller (no copy of the body).
#[derive(Debug, Clone, Copy)]
pub struct Submission<'a> {
    /// The bytes to deliver: headers and body as the transport will send them.
    pub raw: &'a [u8],
    pub envelope_from: &'a str,
    pub recipients: &'a [String],
    pub origin: &'a Origin,
    pub spam: Option<&'a SpamSummary>,
}

/// What the store did with a submission.
#[derive(Debug, Clone, PartialEq)]
pub struct Admission {
    /// The stored message; `None` when refused (nothing is queued then).
    pub id: Option<MessageId>,
    /// What happens now: `DeliverNow` means the message is claimed for this caller (state
    /// `sending`): deliver it and call [`crate::Store::record_delivery`].
    pub action: Action,
    /// What enforce mode does (differs from `action` only in observe mode).
    pub verdict: Action,
    /// The account's status after this message (a burst trip changes it).
    pub status_after: Status,
    /// A rule that tripped on this message (applied or, in observe mode, only recorded).
    pub trip: Option<Trip>,
}

/// The queue states of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageState {
    /// Waiting for its next attempt or for the quota window.
    Queued,
    /// Waiting for its account to turn green (unblock, purge) or to expire.
    Held,
    /// Claimed by a deliverer until its lease ends.
    Sending,
    Sent,
    /// Permanently failed (5xx).
    Failed,
    /// Not delivered within `hold`: counted as an error.
    Expired,
    /// Refused by the spam scorer; kept for review, never sent.
    RefusedSpam,
    /// Its stored bytes do not match their checksum: never sent, never deleted by the guard.
    Quarantined,
}

impl MessageState {
    pub const ALL: [MessageState; 8] = [
        MessageState::Queued,
        MessageState::Held,
        MessageState::Sending,
        MessageState::Sent,
        MessageState::Failed,
        MessageState::Expired,
        MessageState::RefusedSpam,
        MessageState::Quarantined,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MessageState::Queued => "queued",
            MessageState::Held => "held",
            MessageState::Sending => "sending",
            MessageState::Sent => "sent",
            MessageState::Failed => "failed",
            MessageState::Expired => "expired",
            MessageState::RefusedSpam => "refused-spam",
            MessageState::Quarantined => "quarantined",
        }
    }

    /// Waiting for delivery: counted against the queue cap and removed by a purge.
    pub fn is_waiting(self) -> bool {
        matches!(
            self,
            MessageState::Queued | MessageState::Held | MessageState::Sending
        )
    }
}

impl fmt::Display for MessageState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MessageState {
    type Err = String;
    fn from_str(s: &str) -> Result<MessageState, String> {
        MessageState::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| format!("\"{s}\" is not a message state"))
    }
}

/// What [`crate::Store::record_delivery`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum DeliveryRecord {
    Sent,
    /// Retried at `next_attempt` (attempt number `attempts` failed).
    Retry {
        next_attempt: Timestamp,
        attempts: u32,
    },
    Failed,
    /// The retry would end after `hold`: expired, counted as an error.
    Expired,
    /// The message was no longer waiting (purged, deleted, or already recorded): ignored.
    Ignored,
}

/// The bounce-ratio trip a delivery caused, if any, is reported with the record.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    pub record: DeliveryRecord,
    pub trip: Option<Trip>,
    /// The new message that took the recipients the plan split off (deferred by the
    /// relay), recorded in the same transaction.
    pub split: Option<MessageId>,
}

/// A message claimed by [`crate::Store::due`]: deliver it, then record the outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    pub id: MessageId,
    pub account: String,
    pub envelope_from: String,
    pub recipients: Vec<String>,
    pub raw: Vec<u8>,
    /// Attempts already made before this one.
    pub attempts: u32,
}

/// What [`crate::Store::due`] did besides claiming.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DueReport {
    pub claimed: Vec<Claimed>,
    /// Messages that expired in this pass.
    pub expired: u64,
    /// Messages whose checksum failed and were quarantined.
    pub quarantined: Vec<MessageId>,
    /// Messages whose sending lease ran out (their deliverer died) and went back to the queue.
    pub reclaimed: u64,
}

/// An account's state as the CLI, `MailGuard\status()` and the dashboard show it.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub account: String,
    pub status: Status,
    pub since: Option<Timestamp>,
    pub sent_total: u64,
    pub sent_today: u64,
    pub errors_total: u64,
    pub errors_today: u64,
    pub refused_total: u64,
    pub queued: u64,
    pub held: u64,
    pub quarantined: u64,
    /// The limits last used for this account, in their text form.
    pub limits: String,
    pub mode: String,
    pub report_to: Option<String>,
    /// Every window of the quota and the burst limit, with its use now.
    pub windows: Vec<WindowUse>,
}

/// One window of a rate limit and its use at the time of a snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowUse {
    /// `quota` or `burst`.
    pub kind: &'static str,
    pub limit: mailguard_core::rate::Limit,
    /// Entries in the window (recipients or messages, as the limits count).
    pub used: u32,
    /// How many more fit now.
    pub remaining: u32,
    /// When the oldest entry leaves the window, freeing the next slot (none when empty).
    pub next_free: Option<Timestamp>,
}

impl WindowUse {
    pub fn to_json(&self) -> Value {
        json!({
            "kind": self.kind,
            "limit": self.limit.to_string(),
            "used": self.used,
            "remaining": self.remaining,
            "next_free": self.next_free.map(|t| t.to_string()),
        })
    }
}

impl Snapshot {
    /// The keys of SPEC §7 / the brief: account, status, colour, counters, queue, limits, mode.
    pub fn to_json(&self) -> Value {
        json!({
            "account": self.account,
            "status": self.status.as_str(),
            "colour": self.status.colour().as_str(),
            "since": self.since.map(|t| t.to_string()),
            "sent_total": self.sent_total,
            "sent_today": self.sent_today,
            "errors_total": self.errors_total,
            "errors_today": self.errors_today,
            "refused_total": self.refused_total,
            "queued": self.queued,
            "held": self.held,
            "quarantined": self.quarantined,
            "limits": self.limits,
            "mode": self.mode,
            "report_to": self.report_to,
            "windows": self.windows.iter().map(WindowUse::to_json).collect::<Vec<_>>(),
        })
    }
}

/// One day of an account's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayStats {
    pub day: Day,
    pub sent: u64,
    pub errors: u64,
    pub refused: u64,
    pub held: u64,
}

/// One error log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorEntry {
    pub time: Timestamp,
    pub message_id: Option<MessageId>,
    pub recipient: String,
    pub code: Option<u16>,
    pub enhanced: Option<String>,
    pub text: String,
    pub origin: Origin,
}

impl ErrorEntry {
    /// The entry as the JSON API, the CLI and `MailGuard\\errors()` show it.
    pub fn to_json(&self) -> Value {
        json!({
            "time": self.time.to_string(),
            "message_id": self.message_id.map(|m| m.0),
            "recipient": self.recipient,
            "code": self.code,
            "enhanced": self.enhanced,
            "text": self.text,
            "origin": self.origin.to_json(),
        })
    }
}

impl DayStats {
    /// The day as the JSON API and `MailGuard\\history()` show it.
    pub fn to_json(&self) -> Value {
        json!({"day": self.day.to_string(), "sent": self.sent, "errors": self.errors,
               "refused": self.refused, "held": self.held})
    }
}

/// One recorded status transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransitionRecord {
    pub time: Timestamp,
    pub from: Status,
    pub to: Status,
    /// The event's string form (`burst-limit`, `unblock`, ...).
    pub reason: String,
    /// `rule:burst`, `operator:alice`, ...
    pub actor: String,
    pub detail: String,
    /// False for an observe-mode trip that was only recorded.
    pub applied: bool,
}

/// A message in the queue listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueEntry {
    pub id: MessageId,
    pub account: String,
    pub state: MessageState,
    pub envelope_from: String,
    pub recipients: Vec<String>,
    pub subject: String,
    pub size: u64,
    pub attempts: u32,
    pub created: Timestamp,
    pub next_attempt: Option<Timestamp>,
    pub expires: Timestamp,
    pub last_error: Option<String>,
}

/// One message in full.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueMessage {
    pub entry: QueueEntry,
    /// The stored bytes (`None` once sent: bodies are dropped after delivery).
    pub raw: Option<Vec<u8>>,
    /// Does `raw` match the checksum taken at submission?
    pub checksum_ok: bool,
    pub origin: Origin,
    pub spam: Option<SpamSummary>,
    /// What the guard decided and why (e.g. `queue until ...: over the quota 200/1h`).
    pub verdict: String,
}

/// The result of an operator action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub from: Status,
    pub to: Status,
    /// Messages affected: held, released or deleted.
    pub messages: u64,
}

impl Change {
    /// `{"from": "active", "to": "inactive", "messages": 0}`
    pub fn to_json(&self) -> Value {
        json!({ "from": self.from.as_str(), "to": self.to.as_str(), "messages": self.messages })
    }
}

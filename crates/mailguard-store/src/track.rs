//! `mailguard track`: each message's path, from its acceptance through every delivery
//! attempt (with the relay's reply) to delivered, failed or bounced, with its origin.
//!
//! Its own table `attempts` (schema version 5), written in the transaction that records
//! each attempt or bounce, and the column `messages.message_id_header`.

use mailguard_core::rate::Timestamp;
use rusqlite::{params, Row, Transaction};
use serde_json::{json, Value};

use crate::db::Store;
use crate::error::sql_in;
use crate::model::{MessageId, Origin};
use crate::Result;

pub(crate) fn log_attempt(
    tx: &Transaction<'_>,
    id: MessageId,
    now: Timestamp,
    result: &str,
    reply: &str,
) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO attempts (message_id, time, result, reply) VALUES (?1, ?2, ?3, ?4)",
        params![
            id.0,
            now.0,
            result,
            reply.chars().take(2000).collect::<String>()
        ],
    )?;
    Ok(())
}

/// Which messages to follow.
#[derive(Debug, Clone, Default)]
pub struct TrackQuery {
    /// One of the envelope recipients (case-insensitive, exact address).
    pub recipient: Option<String>,
    /// The `Message-ID` header, with or without its angle brackets.
    pub message_id: Option<String>,
    /// Accepted at or after this time.
    pub since: Option<Timestamp>,
    /// Only this account's messages.
    pub account: Option<String>,
}

/// One step of a message's path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackStep {
    pub time: Timestamp,
    /// `accepted`, `refused-spam`, `released`, `retry`, `sent`, `failed`, `expired`,
    /// `bounced`.
    pub what: String,
    pub detail: String,
}

/// One message and its path.
#[derive(Debug, Clone, PartialEq)]
pub struct Tracked {
    pub id: MessageId,
    pub account: String,
    pub envelope_from: String,
    pub recipients: Vec<String>,
    pub subject: String,
    pub message_id: Option<String>,
    /// The message's state now (`queued`, `sent`, `failed`, ...).
    pub state: String,
    pub origin: Origin,
    pub steps: Vec<TrackStep>,
}

impl Tracked {
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id.0,
            "account": self.account,
            "envelope_from": self.envelope_from,
            "recipients": self.recipients,
            "subject": self.subject,
            "message_id": self.message_id,
            "state": self.state,
            "origin": self.origin.to_json(),
            "steps": self.steps.iter().map(|s| json!({
                "time": s.time.to_string(), "what": s.what, "detail": s.detail,
            })).collect::<Vec<_>>(),
        })
    }
}

type Head = (Tracked, Timestamp, Option<i64>, String);

fn head(r: &Row<'_>) -> rusqlite::Result<Head> {
    let origin: String = r.get(8)?;
    Ok((
        Tracked {
            id: MessageId(r.get(0)?),
            account: r.get(1)?,
            envelope_from: r.get(2)?,
            recipients: serde_json::from_str(&r.get::<_, String>(3)?).unwrap_or_default(),
            subject: r.get(4)?,
            message_id: r.get(5)?,
            state: r.get(6)?,
            origin: Origin::from_json(&serde_json::from_str(&origin).unwrap_or(Value::Null)),
            steps: Vec::new(),
        },
        Timestamp(r.get(7)?),
        r.get(9)?,
        r.get(10)?,
    ))
}

impl Store {
    /// The messages matching `q` (newest first, at most `limit`), each with its path.
    pub fn track(&mut self, q: &TrackQuery, limit: u32) -> Result<Vec<Tracked>> {
        let sql = sql_in("tracking messages");
        let message_id = q.message_id.as_deref().map(|m| {
            m.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_owned()
        });
        // Recipients are a JSON list: match the quoted address, then check exactly.
        let like = q.recipient.as_deref().map(|r| {
            format!(
                "%\"{}\"%",
                r.trim()
                    .to_lowercase()
                    .replace('\\', "\\\\")
                    .replace('%', "\\%")
                    .replace('_', "\\_")
            )
        });
        self.read(|tx| {
            let mut st = tx
                .prepare(
                    "SELECT id, account, envelope_from, recipients, subject, message_id_header,
                            state, created, origin, released_at, verdict
                     FROM messages
                     WHERE (?1 IS NULL OR lower(recipients) LIKE ?1 ESCAPE '\\')
                       AND (?2 IS NULL OR message_id_header = ?2)
                       AND (?3 IS NULL OR created >= ?3)
                       AND (?4 IS NULL OR account = ?4)
                     ORDER BY id DESC LIMIT ?5",
                )
                .map_err(sql)?;
            let heads: Vec<Head> = st
                .query_map(
                    params![like, message_id, q.since.map(|t| t.0), q.account, limit],
                    head,
                )
                .map_err(sql)?
                .collect::<rusqlite::Result<_>>()
                .map_err(sql)?;
            let mut steps = tx
                .prepare(
                    "SELECT time, result, reply FROM attempts WHERE message_id = ?1 ORDER BY id",
                )
                .map_err(sql)?;
            let mut out = Vec::new();
            for (mut t, created, released, verdict) in heads {
                if let Some(r) = q.recipient.as_deref() {
                    if !t
                        .recipients
                        .iter()
                        .any(|x| x.eq_ignore_ascii_case(r.trim()))
                    {
                        continue;
                    }
                }
                let refused = t.state == "refused-spam";
                t.steps.push(TrackStep {
                    time: created,
                    what: if refused { "refused-spam" } else { "accepted" }.into(),
                    detail: verdict,
                });
                if let Some(at) = released.filter(|at| *at != created.0) {
                    t.steps.push(TrackStep {
                        time: Timestamp(at),
                        what: "released".into(),
                        detail: String::new(),
                    });
                }
                let rows = steps
                    .query_map([t.id.0], |r| {
                        Ok(TrackStep {
                            time: Timestamp(r.get(0)?),
                            what: r.get(1)?,
                            detail: r.get(2)?,
                        })
                    })
                    .map_err(sql)?;
                for s in rows {
                    t.steps.push(s.map_err(sql)?);
                }
                out.push(t);
            }
            Ok(out)
        })
    }
}

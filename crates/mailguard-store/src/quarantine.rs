//! The quarantine: messages refused as spam (by the guide's rules at submit, or by the
//! spam engine before relaying), kept in state `refused-spam` with their verdict and
//! reasons so that a false positive can be undone.
//!
//! - [`Store::quarantine_list`], [`Store::quarantine_show`]: the review;
//! - [`Store::quarantine_release`]: the message goes to the queue (delivered by the runner
//!   and counted as sent like any other), recorded with who released it; nothing is
//!   learnt from a release;
//! - [`Store::quarantine_delete`]: gone, recorded with who deleted it;
//! - [`Store::quarantine_prune`]: the per-account cap ([`QUARANTINE_MAX_BYTES`],
//!   [`QUARANTINE_MAX_AGE`]), oldest dropped first; the caller logs what was dropped.
//!
//! Its own table `quarantine_log` (schema version 4): who released or deleted what.

use std::time::Duration;

use mailguard_core::rate::Timestamp;
use rusqlite::{params, OptionalExtension, Row, Transaction};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::db::Store;
use crate::error::{sql_in, StoreError};
use crate::ledger;
use crate::model::{MessageId, Origin, SpamSummary};
use crate::Result;

/// Quarantined bytes kept per account; past it the oldest messages are dropped.
pub const QUARANTINE_MAX_BYTES: u64 = 100 * 1024 * 1024;
/// Quarantined messages older than this are dropped.
pub const QUARANTINE_MAX_AGE: Duration = Duration::from_secs(30 * 86_400);
/// How long a released message may wait in the queue before it expires.
const RELEASED_EXPIRY: Duration = Duration::from_secs(5 * 86_400);

/// One quarantined message, without its body.
#[derive(Debug, Clone, PartialEq)]
pub struct QuarantineEntry {
    pub id: MessageId,
    pub account: String,
    pub created: Timestamp,
    pub envelope_from: String,
    pub recipients: Vec<String>,
    pub subject: String,
    pub size: u64,
    /// The refusal, e.g. `refuse: spam score 12 (rule, rule)`.
    pub verdict: String,
    pub spam: Option<SpamSummary>,
    pub origin: Origin,
    /// Whether the body was kept (it is not past the disk reserve or the queue cap).
    pub kept: bool,
}

impl QuarantineEntry {
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id.0,
            "account": self.account,
            "created": self.created.to_string(),
            "envelope_from": self.envelope_from,
            "recipients": self.recipients,
            "subject": self.subject,
            "size": self.size,
            "verdict": self.verdict,
            "spam": self.spam.as_ref().map(SpamSummary::to_json),
            "origin": self.origin.to_json(),
            "kept": self.kept,
        })
    }
}

/// What a release or delete did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuarantineAction {
    Release,
    Delete,
    /// Dropped by the cap.
    Drop,
}

impl QuarantineAction {
    pub fn as_str(self) -> &'static str {
        match self {
            QuarantineAction::Release => "release",
            QuarantineAction::Delete => "delete",
            QuarantineAction::Drop => "drop",
        }
    }
}

const COLUMNS: &str = "id, account, created, envelope_from, recipients, subject, size, verdict,
     spam, origin, raw IS NOT NULL";

fn row(r: &Row<'_>) -> rusqlite::Result<QuarantineEntry> {
    let parse = |s: Option<String>| s.and_then(|s| serde_json::from_str::<Value>(&s).ok());
    Ok(QuarantineEntry {
        id: MessageId(r.get(0)?),
        account: r.get(1)?,
        created: Timestamp(r.get(2)?),
        envelope_from: r.get(3)?,
        recipients: serde_json::from_str(&r.get::<_, String>(4)?).unwrap_or_default(),
        subject: r.get(5)?,
        size: r.get::<_, i64>(6)? as u64,
        verdict: r.get(7)?,
        spam: parse(r.get(8)?).map(|v| SpamSummary::from_json(&v)),
        origin: Origin::from_json(&parse(Some(r.get(9)?)).unwrap_or(Value::Null)),
        kept: r.get(10)?,
    })
}

fn find(tx: &Transaction<'_>, id: MessageId) -> rusqlite::Result<Option<QuarantineEntry>> {
    tx.query_row(
        &format!("SELECT {COLUMNS} FROM messages WHERE id = ?1 AND state = 'refused-spam'"),
        [id.0],
        row,
    )
    .optional()
}

fn log(
    tx: &Transaction<'_>,
    e: &QuarantineEntry,
    action: QuarantineAction,
    actor: &str,
    now: Timestamp,
) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO quarantine_log (time, account, message_id, action, actor, subject)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![now.0, e.account, e.id.0, action.as_str(), actor, e.subject],
    )?;
    Ok(())
}

/// One line of `quarantine_log`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuarantineRecord {
    pub time: Timestamp,
    pub account: String,
    pub message: MessageId,
    pub action: String,
    pub actor: String,
    pub subject: String,
}

impl QuarantineRecord {
    pub fn to_json(&self) -> Value {
        json!({
            "time": self.time.to_string(),
            "account": self.account,
            "message": self.message.0,
            "action": self.action,
            "actor": self.actor,
            "subject": self.subject,
        })
    }
}

impl Store {
    /// The quarantined messages of one account (or all), newest first, at most `limit`.
    pub fn quarantine_list(
        &mut self,
        account: Option<&str>,
        limit: u32,
    ) -> Result<Vec<QuarantineEntry>> {
        let sql = sql_in("listing the quarantine");
        self.read(|tx| {
            let mut st = tx
                .prepare(&format!(
                    "SELECT {COLUMNS} FROM messages WHERE state = 'refused-spam'
                       AND (?1 IS NULL OR account = ?1) ORDER BY id DESC LIMIT ?2"
                ))
                .map_err(sql)?;
            let rows = st.query_map(params![account, limit], row).map_err(sql)?;
            rows.collect::<rusqlite::Result<_>>().map_err(sql)
        })
    }

    /// Quarantined messages of `account` (count, bytes).
    pub fn quarantine_totals(&mut self, account: &str) -> Result<(u64, u64)> {
        let sql = sql_in("counting the quarantine");
        self.read(|tx| {
            tx.query_row(
                "SELECT count(*), coalesce(sum(size), 0) FROM messages
                 WHERE state = 'refused-spam' AND account = ?1",
                [account],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
            )
            .map_err(sql)
        })
    }

    /// One quarantined message and its body (`None` when it was not kept).
    pub fn quarantine_show(&mut self, id: MessageId) -> Result<(QuarantineEntry, Option<Vec<u8>>)> {
        let sql = sql_in("reading a quarantined message");
        self.read(|tx| {
            let e = find(tx, id)
                .map_err(sql)?
                .ok_or(StoreError::NoSuchMessage(id))?;
            let raw = tx
                .query_row("SELECT raw FROM messages WHERE id = ?1", [id.0], |r| {
                    ledger::body(r, 0)
                })
                .map_err(sql)?;
            Ok((e, raw))
        })
    }

    /// Sends a quarantined message on: it joins the queue due now (the runner delivers
    /// it, and counts it as sent), recorded in `quarantine_log` with `actor`. Refused
    /// when its body was not kept or no longer matches its checksum, and while the
    /// account is not green (unblock first: a release must not get round a block).
    pub fn quarantine_release(
        &mut self,
        id: MessageId,
        actor: &str,
        now: Timestamp,
    ) -> Result<QuarantineEntry> {
        let sql = sql_in("releasing a quarantined message");
        self.write(|tx| {
            let e = find(tx, id)
                .map_err(sql)?
                .ok_or(StoreError::NoSuchMessage(id))?;
            let (raw, checksum): (Option<Vec<u8>>, Vec<u8>) = tx
                .query_row(
                    "SELECT raw, checksum FROM messages WHERE id = ?1",
                    [id.0],
                    |r| Ok((ledger::body(r, 0)?, r.get(1)?)),
                )
                .map_err(sql)?;
            if raw
                .as_ref()
                .is_none_or(|r| Sha256::digest(r).as_slice() != checksum.as_slice())
            {
                return Err(StoreError::BadData(format!(
                    "message {} cannot be released: its body was not kept (disk reserve or \
                     queue cap) or does not match its checksum",
                    id.0
                )));
            }
            let status = ledger::status_of(tx, &e.account)?;
            if let Some(s) = status.filter(|s| !s.is_green()) {
                return Err(StoreError::BadData(format!(
                    "account {} is {}: unblock it before releasing mail",
                    e.account,
                    s.as_str()
                )));
            }
            tx.execute(
                "UPDATE messages SET state = 'queued', next_attempt = ?2, attempts = 0,
                   lease_until = NULL, released_at = ?2, expires = ?3,
                   verdict = verdict || ' (released from quarantine by ' || ?4 || ')'
                 WHERE id = ?1",
                params![id.0, now.0, now.plus(RELEASED_EXPIRY).0, actor],
            )
            .map_err(sql)?;
            log(tx, &e, QuarantineAction::Release, actor, now).map_err(sql)?;
            Ok(e)
        })
    }

    /// Deletes a quarantined message, recorded with `actor`. Counters are kept: it was
    /// refused, and stays counted as refused.
    pub fn quarantine_delete(
        &mut self,
        id: MessageId,
        actor: &str,
        now: Timestamp,
    ) -> Result<QuarantineEntry> {
        let sql = sql_in("deleting a quarantined message");
        self.write(|tx| {
            let e = find(tx, id)
                .map_err(sql)?
                .ok_or(StoreError::NoSuchMessage(id))?;
            tx.execute("DELETE FROM messages WHERE id = ?1", [id.0])
                .map_err(sql)?;
            log(tx, &e, QuarantineAction::Delete, actor, now).map_err(sql)?;
            Ok(e)
        })
    }

    /// Applies the cap to every account: messages older than `max_age`, then the oldest
    /// past `max_bytes` per account, are deleted (logged as `drop` by `mailguard`).
    /// Returns what was dropped, for the caller's log.
    pub fn quarantine_prune(
        &mut self,
        max_bytes: u64,
        max_age: Duration,
        now: Timestamp,
    ) -> Result<Vec<QuarantineEntry>> {
        let sql = sql_in("applying the quarantine cap");
        let cutoff = Timestamp(now.0.saturating_sub(max_age.as_millis() as i64));
        self.write(|tx| {
            let mut st = tx
                .prepare(&format!(
                    "SELECT {COLUMNS} FROM messages WHERE state = 'refused-spam'
                     ORDER BY account, id DESC"
                ))
                .map_err(sql)?;
            let all: Vec<QuarantineEntry> = st
                .query_map([], row)
                .map_err(sql)?
                .collect::<rusqlite::Result<_>>()
                .map_err(sql)?;
            drop(st);
            let mut dropped = Vec::new();
            let (mut account, mut bytes) = (String::new(), 0u64);
            // Newest first within each account: everything past the cap is older.
            for e in all {
                if e.account != account {
                    account = e.account.clone();
                    bytes = 0;
                }
                bytes += e.size;
                if e.created < cutoff || bytes > max_bytes {
                    dropped.push(e);
                }
            }
            for e in &dropped {
                tx.execute("DELETE FROM messages WHERE id = ?1", [e.id.0])
                    .map_err(sql)?;
                log(tx, e, QuarantineAction::Drop, "mailguard", now).map_err(sql)?;
            }
            Ok(dropped)
        })
    }

    /// Who released, deleted or dropped what, newest first (one account or all).
    pub fn quarantine_log(
        &mut self,
        account: Option<&str>,
        limit: u32,
    ) -> Result<Vec<QuarantineRecord>> {
        let sql = sql_in("reading the quarantine log");
        self.read(|tx| {
            let mut st = tx
                .prepare(
                    "SELECT time, account, message_id, action, actor, subject FROM quarantine_log
                     WHERE ?1 IS NULL OR account = ?1 ORDER BY id DESC LIMIT ?2",
                )
                .map_err(sql)?;
            let rows = st
                .query_map(params![account, limit], |r| {
                    Ok(QuarantineRecord {
                        time: Timestamp(r.get(0)?),
                        account: r.get(1)?,
                        message: MessageId(r.get(2)?),
                        action: r.get(3)?,
                        actor: r.get(4)?,
                        subject: r.get(5)?,
                    })
                })
                .map_err(sql)?;
            rows.collect::<rusqlite::Result<_>>().map_err(sql)
        })
    }
}

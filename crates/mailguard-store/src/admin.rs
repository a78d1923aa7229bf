//! Operator actions and reports: block, unblock, purge, spam; status, history, error log,
//! transitions and the queue.

use mailguard_core::rate::{Day, Timestamp};
use mailguard_core::status::{transition, Event, Status};
use rusqlite::{params, OptionalExtension, Row, Transaction};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::db::Store;
use crate::delivery::parse_recipients;
use crate::error::StoreError;
use crate::ledger;
use crate::model::{
    Change, DayStats, ErrorEntry, MessageId, MessageState, Origin, QueueEntry, QueueMessage,
    Snapshot, SpamSummary, TransitionRecord,
};
use crate::Result;

fn sql(e: rusqlite::Error) -> StoreError {
    StoreError::BadData(e.to_string())
}

const ENTRY_COLUMNS: &str =
    "id, account, state, envelope_from, recipients, subject, size, attempts, created,
     next_attempt, expires, last_error";

fn entry(r: &Row<'_>) -> rusqlite::Result<QueueEntry> {
    let state: String = r.get(2)?;
    Ok(QueueEntry {
        id: MessageId(r.get(0)?),
        account: r.get(1)?,
        state: state.parse().unwrap_or(MessageState::Quarantined),
        envelope_from: r.get(3)?,
        recipients: parse_recipients(&r.get::<_, String>(4)?),
        subject: r.get(5)?,
        size: r.get::<_, i64>(6)? as u64,
        attempts: r.get(7)?,
        created: Timestamp(r.get(8)?),
        next_attempt: r.get::<_, Option<i64>>(9)?.map(Timestamp),
        expires: Timestamp(r.get(10)?),
        last_error: r.get(11)?,
    })
}

impl Store {
    /// Operator `block`: active/force → inactive; queued mail is held.
    pub fn block(&mut self, account: &str, actor: &str, now: Timestamp) -> Result<Change> {
        self.operator(account, Event::OperatorBlock, actor, now)
    }

    /// Operator `unblock`: inactive → active, bounce → force; held mail is re-dispatched.
    /// Refused in spam status (a purge is mandatory there).
    pub fn unblock(&mut self, account: &str, actor: &str, now: Timestamp) -> Result<Change> {
        self.operator(account, Event::OperatorUnblock, actor, now)
    }

    /// Operator `purge`: deletes every waiting message (queued, held, sending) of the
    /// account and returns it to active. The error log, counters, quarantined and
    /// refused-spam messages stay.
    pub fn purge(&mut self, account: &str, actor: &str, now: Timestamp) -> Result<Change> {
        self.operator(account, Event::OperatorPurge, actor, now)
    }

    /// Operator `spam`: the account is marked as sending spam (new mail refused).
    pub fn mark_spam(&mut self, account: &str, actor: &str, now: Timestamp) -> Result<Change> {
        self.operator(account, Event::OperatorSpam, actor, now)
    }

    fn operator(
        &mut self,
        account: &str,
        event: Event,
        actor: &str,
        now: Timestamp,
    ) -> Result<Change> {
        let actor = format!("operator:{actor}");
        self.write(|tx| {
            let from = ledger::ensure_account(tx, account, now)?;
            let t = transition(from, event).map_err(|refusal| StoreError::Refused {
                account: account.to_owned(),
                refusal,
            })?;
            let messages =
                ledger::apply_transition(tx, account, &t, &actor, "", now).map_err(sql)?;
            Ok(Change {
                from,
                to: t.to,
                messages,
            })
        })
    }

    /// Sets (or clears, with `None`) the address that receives the daily error report and
    /// the notices when the guard turns the account red.
    pub fn set_report_to(
        &mut self,
        account: &str,
        address: Option<&str>,
        now: Timestamp,
    ) -> Result<()> {
        self.write(|tx| {
            ledger::ensure_account(tx, account, now)?;
            tx.execute(
                "UPDATE accounts SET report_to = ?2 WHERE account = ?1",
                params![account, address],
            )
            .map_err(sql)?;
            Ok(())
        })
    }

    /// The account's status, counters, queue, limits and mode. An account never seen is
    /// reported as active with zero counters (nothing is written).
    pub fn status_snapshot(&mut self, account: &str, now: Timestamp) -> Result<Snapshot> {
        self.read(|tx| {
            type Row = (String, i64, Option<String>, String, String, i64, i64, i64);
            let row: Option<Row> = tx
                .query_row(
                    "SELECT status, since, report_to, limits, mode, sent_total, errors_total, refused_total
                     FROM accounts WHERE account = ?1",
                    [account],
                    |r| {
                        Ok((
                            r.get(0)?,
                            r.get(1)?,
                            r.get(2)?,
                            r.get(3)?,
                            r.get(4)?,
                            r.get(5)?,
                            r.get(6)?,
                            r.get(7)?,
                        ))
                    },
                )
                .optional()
                .map_err(sql)?;
            let Some((status, since, report_to, limits, mode, sent, errors, refused)) = row else {
                return Ok(Snapshot {
                    account: account.to_owned(),
                    status: Status::Active,
                    since: None,
                    sent_total: 0,
                    sent_today: 0,
                    errors_total: 0,
                    errors_today: 0,
                    refused_total: 0,
                    queued: 0,
                    held: 0,
                    quarantined: 0,
                    limits: String::new(),
                    mode: String::new(),
                    report_to: None,
                });
            };
            let today: (i64, i64) = tx
                .query_row(
                    "SELECT sent, errors FROM daily WHERE account = ?1 AND day = ?2",
                    params![account, now.day().to_string()],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(sql)?
                .unwrap_or((0, 0));
            let in_state = |states: &str| -> Result<u64> {
                tx.query_row(
                    &format!("SELECT count(*) FROM messages WHERE account = ?1 AND state IN ({states})"),
                    [account],
                    |r| r.get::<_, i64>(0),
                )
                .map(|n| n as u64)
                .map_err(sql)
            };
            Ok(Snapshot {
                account: account.to_owned(),
                status: status.parse().map_err(|e| StoreError::BadData(format!("{e}")))?,
                since: Some(Timestamp(since)),
                sent_total: sent as u64,
                sent_today: today.0 as u64,
                errors_total: errors as u64,
                errors_today: today.1 as u64,
                refused_total: refused as u64,
                queued: in_state("'queued', 'sending'")?,
                held: in_state("'held'")?,
                quarantined: in_state("'quarantined'")?,
                limits,
                mode,
                report_to,
            })
        })
    }

    /// The per-day counters of the last `days` days up to `now`'s day, oldest first,
    /// with days without mail as zeros.
    pub fn history(&mut self, account: &str, days: u32, now: Timestamp) -> Result<Vec<DayStats>> {
        let today = now.day();
        let first = Day(today.0 - days.saturating_sub(1) as i32);
        let stored: Vec<(String, DayStats)> = self.read(|tx| {
            let mut st = tx
                .prepare(
                    "SELECT day, sent, errors, refused, held FROM daily
                     WHERE account = ?1 AND day >= ?2 AND day <= ?3",
                )
                .map_err(sql)?;
            let rows = st
                .query_map(
                    params![account, first.to_string(), today.to_string()],
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            DayStats {
                                day: first,
                                sent: r.get::<_, i64>(1)? as u64,
                                errors: r.get::<_, i64>(2)? as u64,
                                refused: r.get::<_, i64>(3)? as u64,
                                held: r.get::<_, i64>(4)? as u64,
                            },
                        ))
                    },
                )
                .map_err(sql)?;
            rows.collect::<rusqlite::Result<_>>().map_err(sql)
        })?;
        Ok((first.0..=today.0)
            .map(|d| {
                let day = Day(d);
                let name = day.to_string();
                stored
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, s)| DayStats { day, ..*s })
                    .unwrap_or(DayStats {
                        day,
                        sent: 0,
                        errors: 0,
                        refused: 0,
                        held: 0,
                    })
            })
            .collect())
    }

    /// The error log, newest first.
    pub fn errors(&mut self, account: &str, limit: u32, offset: u32) -> Result<Vec<ErrorEntry>> {
        self.read(|tx| {
            let mut st = tx
                .prepare(
                    "SELECT time, message_id, recipient, code, enhanced, text, origin FROM errors
                     WHERE account = ?1 ORDER BY time DESC, id DESC LIMIT ?2 OFFSET ?3",
                )
                .map_err(sql)?;
            let rows = st
                .query_map(params![account, limit, offset], error_entry)
                .map_err(sql)?;
            rows.collect::<rusqlite::Result<_>>().map_err(sql)
        })
    }

    /// Every recorded transition of the account, oldest first.
    pub fn transitions(&mut self, account: &str) -> Result<Vec<TransitionRecord>> {
        self.read(|tx| {
            let mut st = tx
                .prepare(
                    "SELECT time, from_status, to_status, reason, actor, detail, applied FROM transitions
                     WHERE account = ?1 ORDER BY time, id",
                )
                .map_err(sql)?;
            let rows = st
                .query_map([account], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                        r.get::<_, String>(5)?,
                        r.get::<_, bool>(6)?,
                    ))
                })
                .map_err(sql)?;
            let mut out = Vec::new();
            for row in rows {
                let (time, from, to, reason, actor, detail, applied) = row.map_err(sql)?;
                let parse = |s: &str| -> Result<Status> {
                    s.parse().map_err(|e| StoreError::BadData(format!("transition: {e}")))
                };
                out.push(TransitionRecord {
                    time: Timestamp(time),
                    from: parse(&from)?,
                    to: parse(&to)?,
                    reason,
                    actor,
                    detail,
                    applied,
                });
            }
            Ok(out)
        })
    }

    /// Messages still in the queue (waiting, quarantined, refused as spam), or of one
    /// account, oldest first.
    pub fn queue_list(&mut self, account: Option<&str>) -> Result<Vec<QueueEntry>> {
        self.read(|tx| {
            let mut st = tx
                .prepare(&format!(
                    "SELECT {ENTRY_COLUMNS} FROM messages
                     WHERE state IN ('queued', 'held', 'sending', 'quarantined', 'refused-spam')
                       AND (?1 IS NULL OR account = ?1)
                     ORDER BY id"
                ))
                .map_err(sql)?;
            let rows = st.query_map([account], entry).map_err(sql)?;
            rows.collect::<rusqlite::Result<_>>().map_err(sql)
        })
    }

    /// One message in full, with its checksum verified.
    pub fn queue_show(&mut self, id: MessageId) -> Result<QueueMessage> {
        self.read(|tx| {
            let row = tx
                .query_row(
                    &format!("SELECT {ENTRY_COLUMNS}, raw, checksum, origin, spam, verdict FROM messages WHERE id = ?1"),
                    [id.0],
                    |r| {
                        Ok((
                            entry(r)?,
                            ledger::body(r, 12)?,
                            r.get::<_, Vec<u8>>(13)?,
                            r.get::<_, String>(14)?,
                            r.get::<_, Option<String>>(15)?,
                            r.get::<_, String>(16)?,
                        ))
                    },
                )
                .optional()
                .map_err(sql)?;
            let Some((entry, raw, checksum, origin, spam, verdict)) = row else {
                return Err(StoreError::NoSuchMessage(id));
            };
            let checksum_ok = raw
                .as_ref()
                .is_some_and(|raw| Sha256::digest(raw).as_slice() == checksum.as_slice());
            Ok(QueueMessage {
                entry,
                raw,
                checksum_ok,
                origin: Origin::from_json(&serde_json::from_str(&origin).unwrap_or(Value::Null)),
                spam: spam.and_then(|s| serde_json::from_str(&s).ok().map(|v| SpamSummary::from_json(&v))),
                verdict,
            })
        })
    }

    /// Deletes one message (any state: the operator's explicit decision, also for a
    /// quarantined one). Counters are not touched: a deleted message was never sent.
    pub fn queue_delete(&mut self, id: MessageId) -> Result<QueueEntry> {
        self.write(|tx| {
            let e = tx
                .query_row(
                    &format!("SELECT {ENTRY_COLUMNS} FROM messages WHERE id = ?1"),
                    [id.0],
                    entry,
                )
                .optional()
                .map_err(sql)?
                .ok_or(StoreError::NoSuchMessage(id))?;
            tx.execute("DELETE FROM messages WHERE id = ?1", [id.0])
                .map_err(sql)?;
            Ok(e)
        })
    }

    /// Every account the store knows, sorted.
    pub fn accounts(&mut self) -> Result<Vec<String>> {
        self.read(accounts)
    }
}

pub(crate) fn accounts(tx: &Transaction<'_>) -> Result<Vec<String>> {
    let mut st = tx
        .prepare("SELECT account FROM accounts ORDER BY account")
        .map_err(sql)?;
    let rows = st.query_map([], |r| r.get(0)).map_err(sql)?;
    rows.collect::<rusqlite::Result<_>>().map_err(sql)
}

/// One row of `SELECT time, message_id, recipient, code, enhanced, text, origin FROM errors`.
pub(crate) fn error_entry(r: &rusqlite::Row<'_>) -> rusqlite::Result<ErrorEntry> {
    let origin: String = r.get(6)?;
    Ok(ErrorEntry {
        time: Timestamp(r.get(0)?),
        message_id: r.get::<_, Option<i64>>(1)?.map(MessageId),
        recipient: r.get(2)?,
        code: r.get(3)?,
        enhanced: r.get(4)?,
        text: r.get(5)?,
        origin: Origin::from_json(&serde_json::from_str(&origin).unwrap_or(Value::Null)),
    })
}

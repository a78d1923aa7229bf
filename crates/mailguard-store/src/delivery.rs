//! The delivery side: claiming due messages (green accounts, within quota), recording
//! outcomes (counters, error log, retries, expiry) and the bounce-ratio rule.

use std::collections::HashMap;

use mailguard_core::account;
use mailguard_core::limits::{Limits, Mode};
use mailguard_core::rate::{mix64, SlidingLog, Timestamp};
use mailguard_core::status::Status;
use rusqlite::{params, OptionalExtension, Transaction};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::db::{Durability, Store, SENDING_LEASE};
use crate::error::StoreError;
use crate::ledger::{self, Count, Sql, LOG_RELEASED};
use crate::model::{
    Claimed, DeliveryRecord, DueReport, Failure, MessageId, Outcome, Plan, Recorded, Split,
};
use crate::Result;

fn sql(e: rusqlite::Error) -> StoreError {
    StoreError::BadData(e.to_string())
}

impl Store {
    /// Records how a delivery attempt of message `id` ended, in one transaction:
    /// first the plan's split (recipients the relay deferred go to a new queued message
    /// of their own, see below), then the outcome for the others: `Sent` counts a sent
    /// message and drops the stored body; `TempFail` schedules the next attempt with
    /// growing backoff and jitter (derived from the id), or expires the message if that
    /// would pass its `hold`; `PermFail` and expiry log each failed recipient as an
    /// error. Afterwards the bounce ratio is checked (→ `bounce`).
    ///
    /// The split-off message has the same bytes, origin and expiry, `attempts` 1 and its
    /// next attempt after the account's backoff; it is already released (it does not
    /// count against the quota again). Its id is returned in [`Recorded::split`]. Split
    /// and outcome commit together: a crash leaves neither (the message is delivered
    /// again after its lease: twice, never zero times).
    ///
    /// A message that is no longer waiting (purged, deleted, already recorded) is
    /// `Ignored` and nothing is split off, so reporting twice never counts twice.
    /// An [`Outcome`] converts into a plan without a split (`&outcome.into()`).
    pub fn record_delivery(
        &mut self,
        id: MessageId,
        plan: &Plan,
        now: Timestamp,
    ) -> Result<Recorded> {
        let outcome = &plan.outcome;
        // Relaxed: a delivery record lost in a power failure leaves the message
        // claimed; its lease runs out and it is delivered again (twice, never zero).
        self.write_with(Durability::Relaxed, |tx| {
            type Row = (String, String, u32, i64, String, String);
            let row: Option<Row> = tx
                .query_row(
                    "SELECT account, state, attempts, expires, recipients, origin FROM messages WHERE id = ?1",
                    [id.0],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
                )
                .optional()
                .map_err(sql)?;
            let ignored = Recorded { record: DeliveryRecord::Ignored, trip: None, split: None };
            let Some((account, state, attempts, expires, recipients, origin)) = row else {
                return Ok(ignored);
            };
            if !matches!(state.as_str(), "sending" | "queued" | "held") {
                return Ok(ignored);
            }
            let status = ledger::status_of(tx, &account)?.unwrap_or(Status::Active);
            let (limits, mode) = ledger::stored_limits(tx, &account)?;
            // Before the outcome: `Sent` drops the body the new message copies.
            let split = match &plan.split {
                Some(split) => Some(split_off(tx, id, split, &limits, now).map_err(sql)?),
                None => None,
            };
            let attempts = attempts + 1;
            let record = match outcome {
                Outcome::Sent { rejected } => {
                    tx.execute(
                        "UPDATE messages SET state = 'sent', raw = NULL, attempts = ?2, lease_until = NULL,
                         next_attempt = NULL, last_error = NULL WHERE id = ?1",
                        params![id.0, attempts],
                    )
                    .map_err(sql)?;
                    ledger::count(tx, &account, now, Count::Sent, Some(id)).map_err(sql)?;
                    for f in rejected {
                        log_error(tx, &account, id, f, &origin, now).map_err(sql)?;
                    }
                    DeliveryRecord::Sent
                }
                Outcome::TempFail { code, enhanced, text } => {
                    let delay = limits.retry.delay(attempts, mix64(id.0 as u64 ^ (u64::from(attempts) << 48)));
                    let next = now.plus(delay);
                    let reply = reply_text(*code, enhanced.as_deref(), text);
                    if next.0 >= expires {
                        let failure = Failure {
                            recipient: String::new(),
                            code: *code,
                            enhanced: enhanced.clone(),
                            text: format!("expired after {} attempts; last error: {reply}", attempts),
                        };
                        expire(tx, &account, id, &recipients, &origin, &failure, attempts, now).map_err(sql)?;
                        DeliveryRecord::Expired
                    } else {
                        let state = if status.is_green() { "queued" } else { "held" };
                        tx.execute(
                            "UPDATE messages SET state = ?2, attempts = ?3, next_attempt = ?4,
                             lease_until = NULL, last_error = ?5 WHERE id = ?1",
                            params![id.0, state, attempts, next.0, reply],
                        )
                        .map_err(sql)?;
                        if state == "held" {
                            ledger::count(tx, &account, now, Count::Held, Some(id)).map_err(sql)?;
                        }
                        DeliveryRecord::Retry { next_attempt: next, attempts }
                    }
                }
                Outcome::PermFail(failures) => {
                    let whole;
                    let failures: &[Failure] = if failures.is_empty() {
                        whole = [Failure {
                            recipient: "*".into(),
                            code: None,
                            enhanced: None,
                            text: "permanent failure".into(),
                        }];
                        &whole
                    } else {
                        failures
                    };
                    let last = failures.last().map(|f| reply_text(f.code, f.enhanced.as_deref(), &f.text));
                    tx.execute(
                        "UPDATE messages SET state = 'failed', attempts = ?2, lease_until = NULL,
                         next_attempt = NULL, last_error = ?3 WHERE id = ?1",
                        params![id.0, attempts, last],
                    )
                    .map_err(sql)?;
                    for f in failures {
                        log_error(tx, &account, id, f, &origin, now).map_err(sql)?;
                    }
                    DeliveryRecord::Failed
                }
            };
            let trip = bounce_check(tx, &account, status, &limits, mode, now)?;
            Ok(Recorded { record, trip, split })
        })
    }

    /// The runner's pass, in one transaction: expires messages past their `hold`, takes
    /// back claims whose lease ran out, then claims up to `max` due messages of green
    /// accounts, releasing new ones only within the account's quota (the rest get the
    /// time their window frees). Each claimed body is verified against its checksum; a
    /// mismatch is quarantined, never returned.
    pub fn due(&mut self, now: Timestamp, max: usize) -> Result<DueReport> {
        self.write(|tx| {
            let mut report = DueReport {
                expired: expire_due(tx, now).map_err(sql)?,
                ..DueReport::default()
            };
            report.reclaimed = tx
                .execute(
                    "UPDATE messages SET state = CASE WHEN a.status IN ('active', 'force') THEN 'queued' ELSE 'held' END,
                         next_attempt = ?1, lease_until = NULL
                     FROM accounts a
                     WHERE messages.account = a.account AND messages.state = 'sending' AND messages.lease_until <= ?1",
                    [now.0],
                )
                .map_err(sql)? as u64;
            let candidates: Vec<(i64, String, Option<i64>)> = {
                let mut st = tx
                    .prepare_cached(
                        "SELECT m.id, m.account, m.released_at FROM messages m JOIN accounts a ON a.account = m.account
                         WHERE m.state = 'queued' AND m.next_attempt <= ?1 AND a.status IN ('active', 'force')
                         ORDER BY m.next_attempt, m.id LIMIT ?2",
                    )
                    .map_err(sql)?;
                let rows = st
                    .query_map(params![now.0, (max.saturating_mul(4).max(16)) as i64], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                    })
                    .map_err(sql)?;
                rows.collect::<Sql<_>>().map_err(sql)?
            };
            // Per account: its limits and its quota log, extended as we release.
            let mut quota: HashMap<String, (Limits, Mode, Vec<Timestamp>)> = HashMap::new();
            for (id, account, released_at) in candidates {
                if report.claimed.len() >= max {
                    break;
                }
                if released_at.is_none() {
                    if !quota.contains_key(&account) {
                        let (limits, mode) = ledger::stored_limits(tx, &account)?;
                        let log = match &limits.quota {
                            Some(l) => ledger::read_log(tx, &account, LOG_RELEASED, l, now).map_err(sql)?,
                            None => Vec::new(),
                        };
                        quota.insert(account.clone(), (limits, mode, log));
                    }
                    let (limits, mode, log) = quota.get_mut(&account).expect("inserted above");
                    if let (Some(l), Mode::Enforce) = (&limits.quota, *mode) {
                        if let SlidingLog::Full { until } = l.check(log, now) {
                            tx.execute("UPDATE messages SET next_attempt = ?2 WHERE id = ?1", params![id, until.0])
                                .map_err(sql)?;
                            continue;
                        }
                    }
                    log.push(now);
                    ledger::log_event(tx, &account, LOG_RELEASED, now).map_err(sql)?;
                    tx.execute("UPDATE messages SET released_at = ?2 WHERE id = ?1", params![id, now.0])
                        .map_err(sql)?;
                }
                match claim(tx, MessageId(id), now).map_err(sql)? {
                    Some(c) => report.claimed.push(c),
                    None => report.quarantined.push(MessageId(id)),
                }
            }
            Ok(report)
        })
    }
}

/// Copies message `id` with only the recipients `split.recipients` into a new waiting
/// message (queued, or held if the account is red), due after the account's backoff.
fn split_off(
    tx: &Transaction<'_>,
    id: MessageId,
    split: &Split,
    limits: &Limits,
    now: Timestamp,
) -> Sql<MessageId> {
    let next = now.plus(limits.retry.delay(1, mix64(id.0 as u64 ^ 0x5917)));
    tx.execute(
        "INSERT INTO messages (account, envelope_from, recipients, subject, raw, size, checksum,
            state, attempts, next_attempt, released_at, created, expires, verdict, spam, origin, last_error)
         SELECT account, envelope_from, ?2, subject, raw, size, checksum,
            CASE WHEN (SELECT status FROM accounts a WHERE a.account = messages.account)
                 IN ('active', 'force') THEN 'queued' ELSE 'held' END,
            1, min(?3, expires), ?4, created, expires,
            verdict || ' (recipients deferred from message ' || id || ')', spam, origin, ?5
         FROM messages WHERE id = ?1",
        params![
            id.0,
            json!(split.recipients).to_string(),
            next.0,
            now.0,
            split.reply
        ],
    )?;
    Ok(MessageId(tx.last_insert_rowid()))
}

/// Marks one message `sending` and returns it, or quarantines it if its body is gone or
/// does not match its checksum.
fn claim(tx: &Transaction<'_>, id: MessageId, now: Timestamp) -> Sql<Option<Claimed>> {
    type Row = (String, String, String, Option<Vec<u8>>, Vec<u8>, u32);
    let (account, from, recipients, raw, checksum, attempts): Row = tx.query_row(
        "SELECT account, envelope_from, recipients, raw, checksum, attempts FROM messages WHERE id = ?1",
        [id.0],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, ledger::body(r, 3)?, r.get(4)?, r.get(5)?)),
    )?;
    let raw = match raw {
        Some(raw) if Sha256::digest(&raw).as_slice() == checksum.as_slice() => raw,
        _ => {
            tx.execute(
                "UPDATE messages SET state = 'quarantined', lease_until = NULL,
                 last_error = 'stored bytes do not match their checksum' WHERE id = ?1",
                [id.0],
            )?;
            return Ok(None);
        }
    };
    tx.execute(
        "UPDATE messages SET state = 'sending', lease_until = ?2 WHERE id = ?1",
        params![id.0, now.plus(SENDING_LEASE).0],
    )?;
    Ok(Some(Claimed {
        id,
        account,
        envelope_from: from,
        recipients: parse_recipients(&recipients),
        raw,
        attempts,
    }))
}

pub(crate) fn parse_recipients(json: &str) -> Vec<String> {
    serde_json::from_str::<Value>(json)
        .ok()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

fn reply_text(code: Option<u16>, enhanced: Option<&str>, text: &str) -> String {
    let mut s = String::new();
    if let Some(c) = code {
        s.push_str(&format!("{c} "));
    }
    if let Some(e) = enhanced {
        s.push_str(&format!("{e} "));
    }
    s.push_str(text);
    s
}

fn log_error(
    tx: &Transaction<'_>,
    account: &str,
    id: MessageId,
    f: &Failure,
    origin: &str,
    now: Timestamp,
) -> Sql<()> {
    tx.prepare_cached(
        "INSERT INTO errors (account, time, message_id, recipient, code, enhanced, text, origin)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        account,
        now.0,
        id.0,
        f.recipient,
        f.code,
        f.enhanced,
        f.text,
        origin
    ])?;
    ledger::count(tx, account, now, Count::Error, Some(id))
}

/// Expires one message: one error per recipient, with `failure`'s code and text.
#[allow(clippy::too_many_arguments)]
fn expire(
    tx: &Transaction<'_>,
    account: &str,
    id: MessageId,
    recipients: &str,
    origin: &str,
    failure: &Failure,
    attempts: u32,
    now: Timestamp,
) -> Sql<()> {
    tx.execute(
        "UPDATE messages SET state = 'expired', attempts = ?2, lease_until = NULL, next_attempt = NULL,
         last_error = ?3 WHERE id = ?1",
        params![id.0, attempts, failure.text],
    )?;
    let mut rcpts = parse_recipients(recipients);
    if rcpts.is_empty() {
        rcpts.push("*".into());
    }
    for r in rcpts {
        let f = Failure {
            recipient: r,
            ..failure.clone()
        };
        log_error(tx, account, id, &f, origin, now)?;
    }
    Ok(())
}

/// Expires every waiting message past its `expires` time.
fn expire_due(tx: &Transaction<'_>, now: Timestamp) -> Sql<u64> {
    type Row = (i64, String, String, String, u32, String, Option<String>);
    let rows: Vec<Row> = {
        let mut st = tx.prepare_cached(
            "SELECT id, account, recipients, origin, attempts, state, last_error FROM messages
             WHERE state IN ('queued', 'held') AND expires <= ?1",
        )?;
        let rows = st.query_map([now.0], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            ))
        })?;
        rows.collect::<Sql<_>>()?
    };
    for (id, account, recipients, origin, attempts, state, last_error) in &rows {
        let text = match (state.as_str(), last_error) {
            ("held", _) => "expired: held while the account was blocked, never sent".to_owned(),
            (_, Some(e)) => format!("expired after {attempts} attempts; last error: {e}"),
            (_, None) => format!("expired after {attempts} attempts"),
        };
        let f = Failure {
            recipient: String::new(),
            code: None,
            enhanced: None,
            text,
        };
        expire(
            tx,
            account,
            MessageId(*id),
            recipients,
            origin,
            &f,
            *attempts,
            now,
        )?;
    }
    Ok(rows.len() as u64)
}

/// The bounce-ratio rule over the ledger's rolling window.
pub(crate) fn bounce_check(
    tx: &Transaction<'_>,
    account: &str,
    status: Status,
    limits: &Limits,
    mode: Mode,
    now: Timestamp,
) -> Result<Option<account::Trip>> {
    if !status.is_green() {
        return Ok(None);
    }
    let since = now.minus(limits.bounce.window).0;
    let n = |kind: &str| -> Result<u64> {
        tx.query_row(
            "SELECT count(*) FROM ledger WHERE account = ?1 AND kind = ?2 AND time > ?3",
            params![account, kind, since],
            |r| r.get::<_, i64>(0),
        )
        .map(|n| n as u64)
        .map_err(sql)
    };
    let (sent, errors) = (n(Count::Sent.kind())?, n(Count::Error.kind())?);
    let trip = account::bounce_trip(status, sent, errors, limits, mode);
    if let Some(t) = &trip {
        ledger::record_trip(tx, account, t, now).map_err(sql)?;
    }
    Ok(trip)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Origin, Submission};

    const T0: Timestamp = Timestamp(1_750_000_000_000);

    fn submit(store: &mut Store, rcpts: &[&str]) -> MessageId {
        let rcpts: Vec<String> = rcpts.iter().map(|r| r.to_string()).collect();
        store
            .submit(
                "acct",
                &Limits::unlimited(),
                Submission {
                    raw: b"To: x\r\nSubject: s\r\n\r\nbody\r\n",
                    envelope_from: "shop@example.com",
                    recipients: &rcpts,
                    origin: &Origin::default(),
                    spam: None,
                },
                T0,
                Mode::Enforce,
            )
            .unwrap()
            .id
            .unwrap()
    }

    fn sent_and_split(late: &str) -> Plan {
        Plan {
            outcome: Outcome::Sent { rejected: vec![] },
            split: Some(Split {
                recipients: vec![late.to_owned()],
                reply: "452 4.5.3 later".to_owned(),
            }),
        }
    }

    #[test]
    fn split_and_outcome_commit_together_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        let id = submit(&mut s, &["a@example.org", "late@example.org"]);
        // Make the outcome's update fail after the split's insert, inside the transaction.
        let raw = rusqlite::Connection::open(s.db_path()).unwrap();
        raw.execute_batch(
            "CREATE TRIGGER no_sent BEFORE UPDATE OF state ON messages WHEN NEW.state = 'sent'
             BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;",
        )
        .unwrap();
        let err = s
            .record_delivery(id, &sent_and_split("late@example.org"), T0)
            .unwrap_err();
        assert!(err.to_string().contains("refused by the test"), "{err}");
        // Neither landed: no new message, the original still waits with its body.
        let q = s.queue_list(None).unwrap();
        assert_eq!(q.len(), 1);
        assert_eq!(q[0].id, id);
        assert!(q[0].state.is_waiting());
        assert!(s.check_integrity().unwrap().is_ok());

        raw.execute_batch("DROP TRIGGER no_sent").unwrap();
        let rec = s
            .record_delivery(id, &sent_and_split("late@example.org"), T0)
            .unwrap();
        assert_eq!(rec.record, DeliveryRecord::Sent);
        let new = rec.split.expect("the split-off message");
        assert_ne!(new, id);
        let m = s.queue_show(new).unwrap();
        assert_eq!(m.entry.state.as_str(), "queued");
        assert_eq!(m.entry.recipients, vec!["late@example.org".to_owned()]);
        assert!(
            m.checksum_ok,
            "the copy was taken before the body was dropped"
        );
        assert_eq!(s.queue_show(id).unwrap().entry.state.as_str(), "sent");
        assert_eq!(s.status_snapshot("acct", T0).unwrap().sent_total, 1);
        assert!(s.check_integrity().unwrap().is_ok());

        // Recorded already: ignored, and nothing is split off a second time.
        let again = s
            .record_delivery(id, &sent_and_split("late@example.org"), T0)
            .unwrap();
        assert_eq!((again.record, again.split), (DeliveryRecord::Ignored, None));
        let waiting: Vec<MessageId> = s.queue_list(None).unwrap().iter().map(|e| e.id).collect();
        assert_eq!(waiting, vec![new]);
    }
}

//! Delivery outcomes: recording how an attempt ended (counters, error log, retries,
//! expiry, recipients split off), and the bounce-ratio rule.

use mailguard_core::account;
use mailguard_core::limits::{Limits, Mode};
use mailguard_core::rate::{mix64, Timestamp};
use mailguard_core::status::Status;
use rusqlite::{params, OptionalExtension, Transaction};
use serde_json::json;

use crate::db::{Durability, Store};
use crate::error::sql_in;
use crate::ledger::{self, Count, Sql};
use crate::model::{
    DeliveryRecord, Failure, MessageId, Outcome, Plan, Recorded, SpamSummary, Split,
};
use crate::queue::parse_recipients;
use crate::Result;

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
        let sql = sql_in("recording a delivery's outcome");
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
            let (result, reply) = match (&record, outcome) {
                (DeliveryRecord::Sent, Outcome::Sent { rejected }) => (
                    "sent",
                    rejected
                        .iter()
                        .map(|f| format!("{} refused: {}", f.recipient, reply_text(f.code, f.enhanced.as_deref(), &f.text)))
                        .collect::<Vec<_>>()
                        .join("; "),
                ),
                (DeliveryRecord::Retry { .. }, Outcome::TempFail { code, enhanced, text }) => {
                    ("retry", reply_text(*code, enhanced.as_deref(), text))
                }
                (DeliveryRecord::Expired, Outcome::TempFail { code, enhanced, text }) => {
                    ("expired", reply_text(*code, enhanced.as_deref(), text))
                }
                (_, Outcome::PermFail(f)) => (
                    "failed",
                    f.iter()
                        .map(|f| format!("{}: {}", f.recipient, reply_text(f.code, f.enhanced.as_deref(), &f.text)))
                        .collect::<Vec<_>>()
                        .join("; "),
                ),
                _ => ("recorded", String::new()),
            };
            crate::track::log_attempt(tx, id, now, result, &reply).map_err(sql)?;
            let trip = bounce_check(tx, &account, status, &limits, mode, now)?;
            Ok(Recorded { record, trip, split })
        })
    }
}

impl Store {
    /// The spam engine (rspamd, spamd) refused message `id` before it was relayed: it
    /// becomes `refused-spam` (kept for review with the engine's verdict, never sent),
    /// counts as refused and toward the spam status, exactly as a refusal of the guide
    /// rules at submit does. Returns the rule trip, if the refusal turned the account to
    /// `spam`; `None` also when the message is no longer waiting (nothing counted).
    pub fn record_engine_refusal(
        &mut self,
        id: MessageId,
        spam: &SpamSummary,
        verdict: &str,
        now: Timestamp,
    ) -> Result<Option<account::Trip>> {
        let sql = sql_in("recording the spam engine's refusal");
        self.write(|tx| {
            let row: Option<(String, String)> = tx
                .query_row(
                    "SELECT account, state FROM messages WHERE id = ?1",
                    [id.0],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(sql)?;
            let Some((account, state)) = row else {
                return Ok(None);
            };
            if !matches!(state.as_str(), "sending" | "queued" | "held") {
                return Ok(None);
            }
            tx.execute(
                "UPDATE messages SET state = 'refused-spam', spam = ?2, verdict = ?3,
                 lease_until = NULL, next_attempt = NULL, expires = ?4 WHERE id = ?1",
                params![id.0, spam.to_json().to_string(), verdict, now.0],
            )
            .map_err(sql)?;
            let status = ledger::status_of(tx, &account)?.unwrap_or(Status::Active);
            let (limits, mode) = ledger::stored_limits(tx, &account)?;
            ledger::spam_refusal(tx, &account, status, (&limits, mode), id, now).map_err(sql)
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
            state, attempts, next_attempt, released_at, created, expires, verdict, spam, origin, last_error,
            message_id_header)
         SELECT account, envelope_from, ?2, subject, raw, size, checksum,
            CASE WHEN (SELECT status FROM accounts a WHERE a.account = messages.account)
                 IN ('active', 'force') THEN 'queued' ELSE 'held' END,
            1, min(?3, expires), ?4, created, expires,
            verdict || ' (recipients deferred from message ' || id || ')', spam, origin, ?5,
            message_id_header
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

pub(crate) fn reply_text(code: Option<u16>, enhanced: Option<&str>, text: &str) -> String {
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
pub(crate) fn expire(
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

/// The bounce-ratio rule over the ledger's rolling window.
pub(crate) fn bounce_check(
    tx: &Transaction<'_>,
    account: &str,
    status: Status,
    limits: &Limits,
    mode: Mode,
    now: Timestamp,
) -> Result<Option<account::Trip>> {
    let sql = sql_in("checking the bounce ratio");
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
        assert!(matches!(err, crate::StoreError::Sql { .. }), "{err:?}");
        assert!(std::error::Error::source(&err).is_some());
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

    #[test]
    fn split_off_keeps_the_deferred_recipients_queued() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        let id = crate::testing::submit(&mut s, "acct", &Limits::unlimited(), "a@example.org", T0);
        let plan = Plan {
            outcome: Outcome::Sent { rejected: vec![] },
            split: Some(Split {
                recipients: vec!["late@example.org".to_owned()],
                reply: "452 4.5.3 later".to_owned(),
            }),
        };
        let rec = s.record_delivery(id, &plan, T0).unwrap();
        assert_eq!(rec.record, DeliveryRecord::Sent);
        let new = rec.split.unwrap();
        let m = s.queue_show(new).unwrap();
        assert_eq!(m.entry.state.as_str(), "queued");
        assert_eq!(m.entry.recipients, vec!["late@example.org".to_owned()]);
        assert_eq!(m.entry.attempts, 1);
        assert!(m.entry.next_attempt.unwrap() > T0);
        assert!(m.checksum_ok);
        assert_eq!(m.entry.last_error.as_deref(), Some("452 4.5.3 later"));
    }
}

//! What the delivery runner, `mailguard bounce` and `mailguard report` need beyond the
//! delivery API: the runner's own claims (given back after a crash), notices for rule trips (and which were sent), the scripts
//! behind recent mail, matching and counting asynchronous bounces, and one day's errors.
//!
//! Two small tables of its own, created on first use: `runner_claims` (messages the
//! runner claimed and has not recorded yet) and `runner_notices` (rule transitions whose
//! notice was handled, so a restart never sends one twice).

use std::collections::HashMap;

use mailguard_core::account;
use mailguard_core::rate::{Day, Timestamp};
use mailguard_core::status::Status;
use rusqlite::{params, OptionalExtension, Transaction};
use serde_json::Value;

use crate::db::Store;
use crate::delivery::parse_recipients;
use crate::error::StoreError;
use crate::ledger::{self, Count};
use crate::model::{ErrorEntry, Failure, MessageId, Origin};
use crate::Result;

fn sql(e: rusqlite::Error) -> StoreError {
    StoreError::BadData(e.to_string())
}

const TABLES: &str = "
CREATE TABLE IF NOT EXISTS runner_claims (
    message_id INTEGER PRIMARY KEY,
    pid INTEGER NOT NULL,
    time INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS runner_notices (
    transition_id INTEGER PRIMARY KEY,
    account TEXT NOT NULL,
    time INTEGER NOT NULL,
    outcome TEXT NOT NULL
);
";

fn tables(tx: &Transaction<'_>) -> Result<()> {
    tx.execute_batch(TABLES).map_err(sql)
}

/// A rule transition to red whose notice has not been handled yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticeDue {
    /// The transition's row id: what [`Store::mark_notice`] records.
    pub transition_id: i64,
    pub account: String,
    pub time: Timestamp,
    pub from: Status,
    pub to: Status,
    /// `burst-limit`, `bounce-ratio`, `spam-limit`.
    pub reason: String,
    /// `rule:burst`, ...
    pub actor: String,
    pub detail: String,
    /// The account's report-to address now (`None`: nobody to tell).
    pub report_to: Option<String>,
    /// The account's limits text (to know the rule's window).
    pub limits: String,
}

/// Which messages [`Store::origins_between`] looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OriginSource {
    /// Every message accepted into the queue (burst).
    Accepted,
    /// The error log (bounce ratio).
    Failed,
    /// Messages refused as spam (spam limit).
    RefusedSpam,
}

/// How a bounce was matched to its message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchedBy {
    /// Our id (envelope id, VERP address or `X-MailGuard-Id`), confirmed by the recipient.
    Id,
    /// The most recent message sent to that recipient.
    Recipient,
}

/// The message a bounce belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BounceMatch {
    pub id: MessageId,
    pub account: String,
    pub by: MatchedBy,
}

/// What [`Store::record_bounce`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum BounceRecord {
    /// Logged and counted as an error; `trip` is the bounce-ratio trip it caused.
    Counted { trip: Option<account::Trip> },
    /// This recipient of this message already has an error logged (the same DSN fed
    /// twice, or a 5xx we recorded ourselves): not counted again.
    AlreadyCounted,
}

/// How a claimed message goes back to the queue (`?1` = now): due at once, held if
/// its account turned red meanwhile, no lease, no attempt counted.
const GIVE_BACK: &str =
    "state = CASE WHEN (SELECT status FROM accounts a WHERE a.account = messages.account)
                                  IN ('active', 'force') THEN 'queued' ELSE 'held' END,
                     next_attempt = ?1, lease_until = NULL";

impl Store {
    /// Records that the runner (process `pid`) claimed `ids`, and forgets claims whose
    /// message is no longer `sending` (recorded since). One transaction.
    pub fn note_runner_claims(
        &mut self,
        ids: &[MessageId],
        pid: u32,
        now: Timestamp,
    ) -> Result<()> {
        self.write(|tx| {
            tables(tx)?;
            tx.execute(
                "DELETE FROM runner_claims WHERE message_id NOT IN
                 (SELECT id FROM messages WHERE state = 'sending')",
                [],
            )
            .map_err(sql)?;
            for id in ids {
                tx.execute(
                    "INSERT OR REPLACE INTO runner_claims (message_id, pid, time) VALUES (?1, ?2, ?3)",
                    params![id.0, pid, now.0],
                )
                .map_err(sql)?;
            }
            Ok(())
        })
    }

    /// Gives back every message a runner claimed and did not record (it was killed, or
    /// it is stopping before attempting them): due again at once, without counting an
    /// attempt. Only the one runner of a state directory may call this (it holds the
    /// runner lock), so no live runner's claim is taken; claims of PHP workers (not in
    /// this table) wait for their lease as before. Returns how many were given back.
    pub fn release_runner_claims(&mut self, now: Timestamp) -> Result<u64> {
        self.write(|tx| {
            tables(tx)?;
            let n = tx
                .execute(
                    &format!(
                        "UPDATE messages SET {GIVE_BACK}
                         WHERE state = 'sending' AND id IN (SELECT message_id FROM runner_claims)"
                    ),
                    [now.0],
                )
                .map_err(sql)? as u64;
            tx.execute("DELETE FROM runner_claims", []).map_err(sql)?;
            Ok(n)
        })
    }

    /// Gives one message a PHP worker claimed at submit back to the queue, due at once,
    /// without counting an attempt: the worker leaves its delivery to the runner
    /// (`mailguard.transport = runner`). A message no longer `sending` is left alone.
    pub fn release_claim(&mut self, id: MessageId, now: Timestamp) -> Result<bool> {
        self.write(|tx| {
            let n = tx
                .execute(
                    &format!("UPDATE messages SET {GIVE_BACK} WHERE id = ?2 AND state = 'sending'"),
                    params![now.0, id.0],
                )
                .map_err(sql)?;
            Ok(n == 1)
        })
    }

    /// Gives every claimed message (`sending`) back to the queue, due at once, without
    /// counting an attempt. For `mailguard serve` at start: it is the only deliverer of
    /// its state directory, so anything still `sending` was under way when a daemon
    /// stopped, and must not wait for its lease to run out.
    pub fn release_all_claims(&mut self, now: Timestamp) -> Result<u64> {
        self.write(|tx| {
            tables(tx)?;
            let n = tx
                .execute(
                    &format!("UPDATE messages SET {GIVE_BACK} WHERE state = 'sending'"),
                    [now.0],
                )
                .map_err(sql)? as u64;
            tx.execute("DELETE FROM runner_claims", []).map_err(sql)?;
            Ok(n)
        })
    }

    /// Messages due now (queued, next attempt reached, green account) or whose sending
    /// lease ran out: what a runner pass would try, before quota deferrals. For progress.
    pub fn count_due(&mut self, now: Timestamp) -> Result<u64> {
        self.read(|tx| {
            tx.query_row(
                "SELECT count(*) FROM messages m JOIN accounts a ON a.account = m.account
                 WHERE a.status IN ('active', 'force')
                   AND ((m.state = 'queued' AND m.next_attempt <= ?1)
                        OR (m.state = 'sending' AND m.lease_until <= ?1))",
                [now.0],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(sql)
        })
    }

    /// Rule transitions to a red status since `since` (applied, not observe-mode) whose
    /// notice has not been handled yet, oldest first.
    pub fn pending_notices(&mut self, since: Timestamp) -> Result<Vec<NoticeDue>> {
        self.write(|tx| {
            tables(tx)?;
            let mut st = tx
                .prepare(
                    "SELECT t.id, t.account, t.time, t.from_status, t.to_status, t.reason, t.actor, t.detail,
                            a.report_to, a.limits
                     FROM transitions t JOIN accounts a ON a.account = t.account
                     WHERE t.actor LIKE 'rule:%' AND t.applied = 1
                       AND t.to_status IN ('inactive', 'bounce', 'spam') AND t.time > ?1
                       AND NOT EXISTS (SELECT 1 FROM runner_notices n WHERE n.transition_id = t.id)
                     ORDER BY t.id",
                )
                .map_err(sql)?;
            let rows = st
                .query_map([since.0], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                        r.get::<_, String>(5)?,
                        r.get::<_, String>(6)?,
                        r.get::<_, String>(7)?,
                        r.get::<_, Option<String>>(8)?,
                        r.get::<_, String>(9)?,
                    ))
                })
                .map_err(sql)?;
            let mut out = Vec::new();
            for row in rows {
                let (id, account, time, from, to, reason, actor, detail, report_to, limits) = row.map_err(sql)?;
                let parse = |s: &str| -> Result<Status> {
                    s.parse().map_err(|e| StoreError::BadData(format!("transition {id}: {e}")))
                };
                out.push(NoticeDue {
                    transition_id: id,
                    account,
                    time: Timestamp(time),
                    from: parse(&from)?,
                    to: parse(&to)?,
                    reason,
                    actor,
                    detail,
                    report_to: report_to.filter(|a| !a.trim().is_empty()),
                    limits,
                });
            }
            Ok(out)
        })
    }

    /// Records how the notice of transition `transition_id` was handled (`sent to ...`,
    /// `no report-to address`), so it is never sent again.
    pub fn mark_notice(
        &mut self,
        transition_id: i64,
        account: &str,
        outcome: &str,
        now: Timestamp,
    ) -> Result<()> {
        self.write(|tx| {
            tables(tx)?;
            tx.execute(
                "INSERT OR REPLACE INTO runner_notices (transition_id, account, time, outcome) VALUES (?1, ?2, ?3, ?4)",
                params![transition_id, account, now.0, outcome],
            )
            .map_err(sql)?;
            Ok(())
        })
    }

    /// The scripts behind an account's mail between `from` and `until` (inclusive), most
    /// frequent first, at most `limit`: each distinct origin (file, line, caller, vhost,
    /// request URI; not the client IP) with its number of messages.
    pub fn origins_between(
        &mut self,
        account: &str,
        source: OriginSource,
        from: Timestamp,
        until: Timestamp,
        limit: usize,
    ) -> Result<Vec<(Origin, u64)>> {
        let query = match source {
            OriginSource::Accepted => {
                "SELECT origin FROM messages WHERE account = ?1 AND created >= ?2 AND created <= ?3
                 AND state != 'refused-spam' ORDER BY id DESC LIMIT 10000"
            }
            OriginSource::RefusedSpam => {
                "SELECT origin FROM messages WHERE account = ?1 AND created >= ?2 AND created <= ?3
                 AND state = 'refused-spam' ORDER BY id DESC LIMIT 10000"
            }
            OriginSource::Failed => {
                "SELECT origin FROM errors WHERE account = ?1 AND time >= ?2 AND time <= ?3
                 ORDER BY id DESC LIMIT 10000"
            }
        };
        let texts: Vec<String> = self.read(|tx| {
            let mut st = tx.prepare(query).map_err(sql)?;
            let rows = st
                .query_map(params![account, from.0, until.0], |r| r.get(0))
                .map_err(sql)?;
            rows.collect::<rusqlite::Result<_>>().map_err(sql)
        })?;
        let mut counts: HashMap<String, (Origin, u64)> = HashMap::new();
        for text in texts {
            let mut origin = Origin::from_json(&serde_json::from_str(&text).unwrap_or(Value::Null));
            origin.client_ip = None;
            origin.sapi = None;
            let key = origin.to_json().to_string();
            counts.entry(key).or_insert((origin, 0)).1 += 1;
        }
        let mut out: Vec<(Origin, u64)> = counts.into_values().collect();
        out.sort_by(|a, b| {
            b.1.cmp(&a.1)
                .then_with(|| a.0.to_string().cmp(&b.0.to_string()))
        });
        out.truncate(limit);
        Ok(out)
    }

    /// Finds the sent message a bounce for `recipients` (the DSN's final and original
    /// recipient) belongs to: by `id` when given, the message was sent and one of
    /// `recipients` is among its recipients; otherwise the most recent message sent to
    /// one of them since `since`. `None` when neither matches.
    pub fn match_bounce(
        &mut self,
        id: Option<MessageId>,
        recipients: &[&str],
        since: Timestamp,
    ) -> Result<Option<BounceMatch>> {
        let wanted: Vec<String> = recipients
            .iter()
            .map(|r| r.trim().trim_matches(['<', '>']).to_ascii_lowercase())
            .filter(|r| !r.is_empty())
            .collect();
        let has = |json: &str| {
            parse_recipients(json)
                .iter()
                .any(|r| wanted.contains(&r.trim().trim_matches(['<', '>']).to_ascii_lowercase()))
        };
        self.read(|tx| {
            if let Some(id) = id {
                let row: Option<(String, String, String)> = tx
                    .query_row(
                        "SELECT account, state, recipients FROM messages WHERE id = ?1",
                        [id.0],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                    )
                    .optional()
                    .map_err(sql)?;
                if let Some((account, state, rcpts)) = row {
                    if state == "sent" && has(&rcpts) {
                        return Ok(Some(BounceMatch {
                            id,
                            account,
                            by: MatchedBy::Id,
                        }));
                    }
                }
            }
            let mut st = tx
                .prepare(
                    "SELECT m.id, m.account, m.recipients FROM ledger l JOIN messages m ON m.id = l.message_id
                     WHERE l.kind = 'sent' AND l.time > ?1 AND m.state = 'sent'
                     ORDER BY l.time DESC, l.id DESC LIMIT 100000",
                )
                .map_err(sql)?;
            let mut rows = st.query([since.0]).map_err(sql)?;
            while let Some(r) = rows.next().map_err(sql)? {
                let rcpts: String = r.get(2).map_err(sql)?;
                if has(&rcpts) {
                    return Ok(Some(BounceMatch {
                        id: MessageId(r.get(0).map_err(sql)?),
                        account: r.get(1).map_err(sql)?,
                        by: MatchedBy::Recipient,
                    }));
                }
            }
            Ok(None)
        })
    }

    /// Records an asynchronous bounce of message `id` like a 5xx: one error log entry
    /// (with the message's origin), the error counters, then the bounce-ratio rule. A
    /// recipient of a message that already has an error logged is not counted again.
    pub fn record_bounce(
        &mut self,
        id: MessageId,
        failure: &Failure,
        now: Timestamp,
    ) -> Result<BounceRecord> {
        self.write(|tx| {
            let (account, origin): (String, String) = tx
                .query_row("SELECT account, origin FROM messages WHERE id = ?1", [id.0], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()
                .map_err(sql)?
                .ok_or(StoreError::NoSuchMessage(id))?;
            let seen: bool = tx
                .query_row(
                    "SELECT EXISTS (SELECT 1 FROM errors WHERE message_id = ?1 AND lower(recipient) = lower(?2))",
                    params![id.0, failure.recipient],
                    |r| r.get(0),
                )
                .map_err(sql)?;
            if seen {
                return Ok(BounceRecord::AlreadyCounted);
            }
            tx.execute(
                "INSERT INTO errors (account, time, message_id, recipient, code, enhanced, text, origin)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    account,
                    now.0,
                    id.0,
                    failure.recipient,
                    failure.code,
                    failure.enhanced,
                    failure.text,
                    origin
                ],
            )
            .map_err(sql)?;
            ledger::count(tx, &account, now, Count::Error, Some(id)).map_err(sql)?;
            let trip = bounce_check(tx, &account, now)?;
            Ok(BounceRecord::Counted { trip })
        })
    }

    /// The error log entries of one UTC day, oldest first.
    pub fn errors_on(&mut self, account: &str, day: Day) -> Result<Vec<ErrorEntry>> {
        let (from, until) = (day.start().0, Day(day.0 + 1).start().0);
        self.read(|tx| {
            let mut st = tx
                .prepare(
                    "SELECT time, message_id, recipient, code, enhanced, text, origin FROM errors
                     WHERE account = ?1 AND time >= ?2 AND time < ?3 ORDER BY time, id",
                )
                .map_err(sql)?;
            let rows = st
                .query_map(params![account, from, until], crate::admin::error_entry)
                .map_err(sql)?;
            rows.collect::<rusqlite::Result<_>>().map_err(sql)
        })
    }
}

/// The bounce-ratio rule after a bounce: the same rule as a delivery's record, with
/// the account's stored status and limits.
fn bounce_check(
    tx: &Transaction<'_>,
    account: &str,
    now: Timestamp,
) -> Result<Option<account::Trip>> {
    let status = ledger::status_of(tx, account)?.unwrap_or(Status::Active);
    let (limits, mode) = ledger::stored_limits(tx, account)?;
    crate::delivery::bounce_check(tx, account, status, &limits, mode, now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{DeliveryRecord, Outcome, Plan, Split, Submission};
    use mailguard_core::limits::{Limits, Mode};
    use std::time::Duration;

    const T0: Timestamp = Timestamp(1_750_000_000_000);

    fn submit(
        store: &mut Store,
        account: &str,
        limits: &Limits,
        rcpt: &str,
        now: Timestamp,
    ) -> MessageId {
        let origin = Origin {
            file: Some("/var/www/form.php".into()),
            line: Some(7),
            ..Origin::default()
        };
        let rcpts = vec![rcpt.to_owned()];
        store
            .submit(
                account,
                limits,
                Submission {
                    raw: b"To: x\r\nSubject: s\r\n\r\nbody\r\n",
                    envelope_from: "shop@example.com",
                    recipients: &rcpts,
                    origin: &origin,
                    spam: None,
                },
                now,
                Mode::Enforce,
            )
            .unwrap()
            .id
            .unwrap()
    }

    #[test]
    fn runner_claims_are_given_back_and_only_those() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        let limits = Limits::unlimited();
        // Submitted long ago: the submitter's claim has run out, the runner takes it.
        let a = submit(&mut s, "acct", &limits, "a@example.org", T0);
        let b = submit(&mut s, "acct", &limits, "b@example.org", T0);
        let later = T0.plus(Duration::from_secs(3600));
        let due = s.due(later, 10).unwrap();
        assert_eq!(due.claimed.len(), 2);
        s.note_runner_claims(&[a], 1, later).unwrap();
        assert_eq!(s.release_runner_claims(later).unwrap(), 1);
        let q = s.queue_list(None).unwrap();
        let state = |id| q.iter().find(|e| e.id == id).unwrap().state.as_str();
        assert_eq!(state(a), "queued");
        assert_eq!(state(b), "sending");
        assert_eq!(s.release_runner_claims(later).unwrap(), 0);
    }

    #[test]
    fn split_off_keeps_the_deferred_recipients_queued() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        let id = submit(&mut s, "acct", &Limits::unlimited(), "a@example.org", T0);
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

    #[test]
    fn bounces_match_count_once_and_trip_the_ratio() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        let limits: Limits = "quota= burst= spam= bounce=0.1/2/24h".parse().unwrap();
        let a = submit(&mut s, "acct", &limits, "a@example.org", T0);
        let b = submit(&mut s, "acct", &limits, "B@Example.org", T0);
        for id in [a, b] {
            s.record_delivery(id, &Outcome::Sent { rejected: vec![] }.into(), T0)
                .unwrap();
        }
        let since = T0.minus(Duration::from_secs(86_400));
        // By id, confirmed by the recipient; a wrong recipient falls back to the search.
        let m = s
            .match_bounce(Some(a), &["a@example.org"], since)
            .unwrap()
            .unwrap();
        assert_eq!((m.id, m.by), (a, MatchedBy::Id));
        let m = s
            .match_bounce(Some(a), &["b@example.org"], since)
            .unwrap()
            .unwrap();
        assert_eq!((m.id, m.by), (b, MatchedBy::Recipient));
        assert_eq!(
            s.match_bounce(None, &["nobody@example.org"], since)
                .unwrap(),
            None
        );
        let f = Failure {
            recipient: "b@example.org".into(),
            code: Some(550),
            enhanced: Some("5.1.1".into()),
            text: "User unknown".into(),
        };
        let now = T0.plus(Duration::from_secs(60));
        assert!(matches!(
            s.record_bounce(b, &f, now).unwrap(),
            BounceRecord::Counted { trip: Some(_) }
        ));
        assert_eq!(
            s.record_bounce(b, &f, now).unwrap(),
            BounceRecord::AlreadyCounted
        );
        let snap = s.status_snapshot("acct", now).unwrap();
        assert_eq!((snap.errors_total, snap.status), (1, Status::Bounce));
        assert_eq!(s.errors_on("acct", now.day()).unwrap().len(), 1);
        assert!(s
            .errors_on("acct", Day(now.day().0 + 1))
            .unwrap()
            .is_empty());
        let pending = s.pending_notices(T0).unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].reason, "bounce-ratio");
        s.mark_notice(pending[0].transition_id, "acct", "sent", now)
            .unwrap();
        assert!(s.pending_notices(T0).unwrap().is_empty());
        let origins = s
            .origins_between("acct", OriginSource::Failed, since, now, 5)
            .unwrap();
        assert_eq!(origins.len(), 1);
        assert_eq!(origins[0].1, 1);
        assert_eq!(origins[0].0.file.as_deref(), Some("/var/www/form.php"));
        assert!(s.check_integrity().unwrap().is_ok());
    }
}

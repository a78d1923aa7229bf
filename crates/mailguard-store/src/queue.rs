//! The queue: claiming due messages for delivery (green accounts, within quota, bodies
//! checked against their checksum), the leases and claims that give a message back when
//! its deliverer dies or leaves it, and the operator's view of the queue (list, show,
//! delete).
//!
//! Its own table `runner_claims` (schema version 3): messages the runner claimed and
//! has not recorded yet.

use std::collections::HashMap;

use mailguard_core::limits::{Limits, Mode};
use mailguard_core::rate::{SlidingLog, Timestamp};
use rusqlite::{params, OptionalExtension, Row, Transaction};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::db::{Store, SENDING_LEASE};
use crate::delivery::expire;
use crate::error::{sql_in, StoreError};
use crate::ledger::{self, Sql, LOG_RELEASED};
use crate::model::{
    Claimed, DueReport, Failure, MessageId, MessageState, Origin, QueueEntry, QueueMessage,
    SpamSummary,
};
use crate::Result;

/// How a claimed message goes back to the queue (`?1` = now): due at once, held if
/// its account turned red meanwhile, no lease, no attempt counted.
const GIVE_BACK: &str =
    "state = CASE WHEN (SELECT status FROM accounts a WHERE a.account = messages.account)
                                  IN ('active', 'force') THEN 'queued' ELSE 'held' END,
                     next_attempt = ?1, lease_until = NULL";

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
    /// The runner's pass, in one transaction: expires messages past their `hold`, takes
    /// back claims whose lease ran out, then claims up to `max` due messages of green
    /// accounts, releasing new ones only within the account's quota (the rest get the
    /// time their window frees). Each claimed body is verified against its checksum; a
    /// mismatch is quarantined, never returned.
    pub fn due(&mut self, now: Timestamp, max: usize) -> Result<DueReport> {
        let sql = sql_in("claiming due messages");
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
            let candidates: Vec<(i64, String, Option<i64>, i64)> = {
                let mut st = tx
                    .prepare_cached(
                        "SELECT m.id, m.account, m.released_at,
                                CASE WHEN json_valid(m.recipients) THEN json_array_length(m.recipients) END
                         FROM messages m JOIN accounts a ON a.account = m.account
                         WHERE m.state = 'queued' AND m.next_attempt <= ?1 AND a.status IN ('active', 'force')
                         ORDER BY m.next_attempt, m.id LIMIT ?2",
                    )
                    .map_err(sql)?;
                let rows = st
                    .query_map(params![now.0, (max.saturating_mul(4).max(16)) as i64], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get::<_, Option<i64>>(3)?.unwrap_or(1)))
                    })
                    .map_err(sql)?;
                rows.collect::<Sql<_>>().map_err(sql)?
            };
            // Per account: its limits and its quota log, extended as we release.
            let mut quota: HashMap<String, (Limits, Mode, Vec<Timestamp>)> = HashMap::new();
            for (id, account, released_at, recipients) in candidates {
                if report.claimed.len() >= max {
                    break;
                }
                if released_at.is_none() {
                    if !quota.contains_key(&account) {
                        let (limits, mode) = ledger::stored_limits(tx, &account)?;
                        let log = ledger::read_windows(tx, &account, LOG_RELEASED, &limits.quota, now)
                            .map_err(sql)?;
                        quota.insert(account.clone(), (limits, mode, log));
                    }
                    let (limits, mode, log) = quota.get_mut(&account).expect("inserted above");
                    let weight = limits.counting.weight(recipients.max(0) as usize);
                    if *mode == Mode::Enforce {
                        if let SlidingLog::Full { until } = limits.quota.check_n(log, now, weight) {
                            tx.execute("UPDATE messages SET next_attempt = ?2 WHERE id = ?1", params![id, until.0])
                                .map_err(sql)?;
                            continue;
                        }
                    }
                    log.extend(std::iter::repeat_n(now, weight as usize));
                    ledger::log_events(tx, &account, LOG_RELEASED, now, weight).map_err(sql)?;
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

    /// Messages due now (queued, next attempt reached, green account) or whose sending
    /// lease ran out: what a runner pass would try, before quota deferrals. For progress.
    pub fn count_due(&mut self, now: Timestamp) -> Result<u64> {
        let sql = sql_in("counting due messages");
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

    /// Records that the runner (process `pid`) claimed `ids`, and forgets claims whose
    /// message is no longer `sending` (recorded since). One transaction.
    pub fn note_runner_claims(
        &mut self,
        ids: &[MessageId],
        pid: u32,
        now: Timestamp,
    ) -> Result<()> {
        let sql = sql_in("recording the runner's claims");
        self.write(|tx| {
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
        let sql = sql_in("giving back the runner's claims");
        self.write(|tx| {
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
        let sql = sql_in("giving back a claimed message");
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
        let sql = sql_in("giving back every claimed message");
        self.write(|tx| {
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

    /// Messages still in the queue (waiting, quarantined, refused as spam), or of one
    /// account, oldest first.
    pub fn queue_list(&mut self, account: Option<&str>) -> Result<Vec<QueueEntry>> {
        let sql = sql_in("listing the queue");
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
        let sql = sql_in("reading a queued message");
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
        let sql = sql_in("deleting a queued message");
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{submit, T0};
    use std::time::Duration;

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
}

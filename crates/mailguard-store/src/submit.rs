//! The accept path: one message in, checked and stored in one immediate transaction.

use mailguard_core::account::{self, Action, Logs};
use mailguard_core::limits::{Limits, Mode};
use mailguard_core::rate::Timestamp;
use mailguard_core::status::Status;
use rusqlite::{params, Transaction};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::db::{Store, SENDING_LEASE};
use crate::error::StoreError;
use crate::ledger::{self, Count, LOG_ACCEPTED, LOG_RELEASED, LOG_SPAM};
use crate::model::{Admission, MessageId, MessageState, Submission};
use crate::Result;

/// One message for [`Store::submit_batch`]: the account it is charged to, that account's
/// limits and mode, and the message.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    pub account: &'a str,
    pub limits: &'a Limits,
    pub mode: Mode,
    pub sub: Submission<'a>,
}

/// What is computed outside the transaction: the checksum, the subject for listings, and
/// whether the disk keeps its reserve with this message on it.
struct Prepared {
    checksum: Vec<u8>,
    subject: String,
    disk: Result<()>,
}

impl Store {
    /// Checks one message against the account's status, burst limit and quota, and stores
    /// it, all in one `BEGIN IMMEDIATE` transaction (exact across processes). On `Ok` with
    /// an id, the message is durable (committed with `synchronous=FULL`).
    ///
    /// - `DeliverNow`: released (counted in the quota log) and claimed for the caller:
    ///   deliver it, then call [`Store::record_delivery`]. If the caller dies first, the
    ///   runner takes it over when the claim's lease ends.
    /// - `Queued { until }`: over the quota; the runner releases it when the window frees.
    /// - `Held`: the account is red (or this message tripped the burst limit).
    /// - `Refused(SpamStatus)`: the account is in spam status; nothing is stored.
    /// - `Refused(SpamScore)`: the spam verdict says refuse and the mode is enforce: the
    ///   message is kept for review (state `refused-spam`, never sent) and counts toward the
    ///   spam status. This is the one place that decides a spam refusal.
    ///
    /// Errors: [`StoreError::QueueFull`] and [`StoreError::DiskReserve`] mean "refuse the
    /// message for now"; [`StoreError::Db`] means the store could not decide (also refuse:
    /// never bypass the guard).
    pub fn submit(
        &mut self,
        account: &str,
        limits: &Limits,
        sub: Submission<'_>,
        now: Timestamp,
        mode: Mode,
    ) -> Result<Admission> {
        let entry = Entry {
            account,
            limits,
            mode,
            sub,
        };
        let prepared = self.prepare(&entry);
        self.write(|tx| admit_entry(tx, &entry, prepared, now))
    }

    /// Group commit: every entry checked and stored as by [`Store::submit`], all in one
    /// transaction and one fsync. Each entry runs in its own savepoint, so one refused for
    /// its own reason (queue full, disk reserve) leaves the others stored. The outer
    /// `Err` means nothing of the batch was stored.
    pub fn submit_batch(
        &mut self,
        entries: &[Entry<'_>],
        now: Timestamp,
    ) -> Result<Vec<Result<Admission>>> {
        let prepared: Vec<Prepared> = entries.iter().map(|e| self.prepare(e)).collect();
        self.write(|tx| {
            let sp = |sql: &str| {
                tx.execute_batch(sql)
                    .map_err(|e| StoreError::BadData(format!("group commit: {e}")))
            };
            let mut out = Vec::with_capacity(entries.len());
            for (entry, prepared) in entries.iter().zip(prepared) {
                sp("SAVEPOINT entry")?;
                let result = admit_entry(tx, entry, prepared, now);
                if result.is_ok() {
                    sp("RELEASE entry")?;
                } else {
                    sp("ROLLBACK TO entry; RELEASE entry")?;
                }
                out.push(result);
            }
            Ok(out)
        })
    }

    fn prepare(&self, entry: &Entry<'_>) -> Prepared {
        let raw = entry.sub.raw;
        Prepared {
            checksum: Sha256::digest(raw).to_vec(),
            subject: subject_of(raw),
            disk: self.check_disk(entry.limits, raw.len() as u64),
        }
    }

    fn check_disk(&self, limits: &Limits, size: u64) -> Result<()> {
        let free = self.free_disk_bytes()?;
        // The body is written twice (WAL, then the database at checkpoint).
        let need = limits
            .disk_reserve_bytes
            .saturating_add(size.saturating_mul(2));
        if free < need {
            return Err(StoreError::DiskReserve {
                path: self.dir().to_path_buf(),
                free_bytes: free,
                reserve_bytes: limits.disk_reserve_bytes,
            });
        }
        Ok(())
    }
}

/// One entry inside the caller's transaction: the spam refusal, or the admission.
fn admit_entry(
    tx: &Transaction<'_>,
    entry: &Entry<'_>,
    prepared: Prepared,
    now: Timestamp,
) -> Result<Admission> {
    check_envelope(&entry.sub)?;
    let Entry {
        account,
        limits,
        mode,
        ..
    } = *entry;
    let sql = |e| StoreError::BadData(format!("account {account}: {e}"));
    let status = ledger::ensure_account(tx, account, now)?;
    ledger::remember_limits(tx, account, limits, mode).map_err(sql)?;
    ledger::prune_logs(tx, account, limits, now).map_err(sql)?;
    let refuse_spam = entry.sub.spam.is_some_and(|s| s.refuse);
    if refuse_spam && mode == Mode::Enforce {
        refused_spam(tx, entry, status, prepared, now)
    } else {
        prepared.disk?;
        admit(
            tx,
            entry,
            status,
            &prepared.checksum,
            &prepared.subject,
            now,
        )
    }
}

fn admit(
    tx: &Transaction<'_>,
    entry: &Entry<'_>,
    status: Status,
    checksum: &[u8],
    subject: &str,
    now: Timestamp,
) -> Result<Admission> {
    let Entry {
        account,
        limits,
        mode,
        sub,
    } = *entry;
    let sql = |e| StoreError::BadData(format!("submit for {account}: {e}"));
    let accepted =
        ledger::read_windows(tx, account, LOG_ACCEPTED, &limits.burst, now).map_err(sql)?;
    let released =
        ledger::read_windows(tx, account, LOG_RELEASED, &limits.quota, now).map_err(sql)?;
    let decision = account::admit(
        status,
        Logs {
            accepted: &accepted,
            released: &released,
        },
        limits,
        sub.recipients.len(),
        now,
        mode,
    );
    let weight = limits.counting.weight(sub.recipients.len());
    let mut trip = decision.trip.clone();
    if sub.spam.is_some_and(|s| s.refuse) {
        // Observe mode delivers what enforce would refuse; the refusal still counts
        // toward the (observed) spam status.
        trip = trip.or(observe_spam_refusal(tx, account, status, limits, now)?);
    }
    if let Action::Refused(_) = decision.action {
        ledger::count(tx, account, now, Count::Refused, None).map_err(sql)?;
        return Ok(Admission {
            id: None,
            action: decision.action,
            verdict: decision.verdict,
            status_after: status,
            trip: None,
        });
    }
    check_queue_cap(tx, limits, sub.raw.len() as u64)?;
    check_account_share(tx, account, limits)?;
    let (state, next_attempt, lease, released_at) = match decision.action {
        Action::DeliverNow => (
            MessageState::Sending,
            Some(now),
            Some(now.plus(SENDING_LEASE)),
            Some(now),
        ),
        Action::Queued { until } => (MessageState::Queued, Some(until), None, None),
        _ => (MessageState::Held, None, None, None),
    };
    let verdict = if decision.detail.is_empty() {
        decision.verdict.to_string()
    } else {
        format!("{}: {}", decision.verdict, decision.detail)
    };
    tx.execute(
        "INSERT INTO messages (account, envelope_from, recipients, subject, raw, size, checksum,
            state, next_attempt, lease_until, released_at, created, expires, verdict, spam, origin,
            message_id_header)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
        params![
            account,
            sub.envelope_from,
            json!(sub.recipients).to_string(),
            subject,
            sub.raw,
            sub.raw.len() as i64,
            checksum,
            state.as_str(),
            next_attempt.map(|t| t.0),
            lease.map(|t| t.0),
            released_at.map(|t| t.0),
            now.0,
            now.plus(limits.hold).0,
            verdict,
            sub.spam.map(|s| s.to_json().to_string()),
            sub.origin.to_json().to_string(),
            message_id_of(sub.raw),
        ],
    )
    .map_err(sql)?;
    let id = MessageId(tx.last_insert_rowid());
    ledger::log_events(tx, account, LOG_ACCEPTED, now, weight).map_err(sql)?;
    if decision.action == Action::DeliverNow {
        ledger::log_events(tx, account, LOG_RELEASED, now, weight).map_err(sql)?;
    }
    if state == MessageState::Held {
        ledger::count(tx, account, now, Count::Held, Some(id)).map_err(sql)?;
    }
    if let Some(t) = &trip {
        ledger::record_trip(tx, account, t, now).map_err(sql)?;
    }
    let status_after = ledger::status_of(tx, account)?.unwrap_or(status);
    Ok(Admission {
        id: Some(id),
        action: decision.action,
        verdict: decision.verdict,
        status_after,
        trip,
    })
}

/// A message the spam verdict refuses (enforce mode): kept for review in state
/// `refused-spam` (never sent), counted as refused, and counted toward the spam status
/// (by default the 5th refusal within an hour turns the account to `spam`).
fn refused_spam(
    tx: &Transaction<'_>,
    entry: &Entry<'_>,
    status: Status,
    prepared: Prepared,
    now: Timestamp,
) -> Result<Admission> {
    let Entry {
        account,
        limits,
        mode,
        sub,
    } = *entry;
    let sql = |e| StoreError::BadData(format!("spam refusal for {account}: {e}"));
    // Keeping the evidence must not fill the disk: past the reserve, or the queue
    // cap, only the counters and the metadata are kept.
    let keep_raw =
        prepared.disk.is_ok() && check_queue_cap(tx, limits, sub.raw.len() as u64).is_ok();
    let verdict = match sub.spam {
        Some(s) => format!("refuse: spam score {} ({})", s.score, s.rules.join(", ")),
        None => "refuse: spam".to_owned(),
    };
    tx.execute(
        "INSERT INTO messages (account, envelope_from, recipients, subject, raw, size, checksum,
            state, created, expires, verdict, spam, origin, message_id_header)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'refused-spam', ?8, ?8, ?9, ?10, ?11, ?12)",
        params![
            account,
            sub.envelope_from,
            json!(sub.recipients).to_string(),
            prepared.subject,
            if keep_raw { Some(sub.raw) } else { None },
            sub.raw.len() as i64,
            prepared.checksum,
            now.0,
            verdict,
            sub.spam.map(|s| s.to_json().to_string()),
            sub.origin.to_json().to_string(),
            message_id_of(sub.raw),
        ],
    )
    .map_err(sql)?;
    let id = MessageId(tx.last_insert_rowid());
    let trip = ledger::spam_refusal(tx, account, status, (limits, mode), id, now).map_err(sql)?;
    let status_after = ledger::status_of(tx, account)?.unwrap_or(status);
    let refused = Action::Refused(account::RefusedBecause::SpamScore);
    Ok(Admission {
        id: Some(id),
        action: refused,
        verdict: refused,
        status_after,
        trip,
    })
}

fn observe_spam_refusal(
    tx: &Transaction<'_>,
    account: &str,
    status: Status,
    limits: &Limits,
    now: Timestamp,
) -> Result<Option<account::Trip>> {
    let sql = |e| StoreError::BadData(format!("spam observation for {account}: {e}"));
    ledger::log_event(tx, account, LOG_SPAM, now).map_err(sql)?;
    let refusals = match &limits.spam_refusals {
        Some(l) => ledger::read_log(tx, account, LOG_SPAM, l, now).map_err(sql)?,
        None => return Ok(None),
    };
    Ok(account::spam_trip(
        status,
        &refusals,
        limits,
        now,
        Mode::Observe,
    ))
}

/// Envelope addresses are checked when stored (and again by the transport when used):
/// one plain address each, never something a command line could read as an option.
fn check_envelope(sub: &Submission<'_>) -> Result<()> {
    let bad = |address: &str, e: mailguard_core::address::AddressError| StoreError::BadAddress {
        address: address.chars().take(200).collect(),
        problem: e.to_string(),
    };
    mailguard_core::address::check_envelope_sender(sub.envelope_from)
        .map_err(|e| bad(sub.envelope_from, e))?;
    for r in sub.recipients {
        mailguard_core::address::check_recipient(r).map_err(|e| bad(r, e))?;
    }
    Ok(())
}

/// Refuses a message that would take the queue past its cap (messages or bytes).
fn check_queue_cap(tx: &Transaction<'_>, limits: &Limits, size: u64) -> Result<()> {
    let (messages, bytes): (i64, i64) = tx
        .query_row(
            "SELECT messages, bytes FROM queue_totals WHERE id = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(|e| StoreError::BadData(format!("queue size: {e}")))?;
    let (messages, bytes) = (messages as u64, bytes as u64);
    if messages + 1 > limits.queue_max_messages || bytes + size > limits.queue_max_bytes {
        return Err(StoreError::QueueFull {
            messages,
            bytes,
            max_messages: limits.queue_max_messages,
            max_bytes: limits.queue_max_bytes,
        });
    }
    Ok(())
}

/// Refuses a message that would take the account past its share of the queue.
fn check_account_share(tx: &Transaction<'_>, account: &str, limits: &Limits) -> Result<()> {
    let Some(max) = limits.account_queue_max else {
        return Ok(());
    };
    let messages: i64 = tx
        .query_row(
            "SELECT count(*) FROM messages WHERE account = ?1
             AND state IN ('queued', 'held', 'sending')",
            [account],
            |r| r.get(0),
        )
        .map_err(|e| StoreError::BadData(format!("queue share of {account}: {e}")))?;
    if messages as u64 >= max {
        return Err(StoreError::AccountQueueFull {
            account: account.to_owned(),
            messages: messages as u64,
            max,
        });
    }
    Ok(())
}

/// The Subject header of a raw message, unfolded, for listings (at most 200 characters).
pub(crate) fn subject_of(raw: &[u8]) -> String {
    header_of(raw, "subject").unwrap_or_default()
}

/// The `Message-ID` of a message, without its angle brackets (for `mailguard track`).
pub(crate) fn message_id_of(raw: &[u8]) -> Option<String> {
    header_of(raw, "message-id")
        .map(|v| {
            v.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_owned()
        })
        .filter(|v| !v.is_empty())
}

/// The first `name` header (case-insensitive), unfolded, at most 200 characters.
fn header_of(raw: &[u8], name: &str) -> Option<String> {
    let name = format!("{name}:");
    let head_end = find(raw, b"\r\n\r\n")
        .or_else(|| find(raw, b"\n\n"))
        .unwrap_or(raw.len());
    let head = String::from_utf8_lossy(&raw[..head_end]);
    let mut subject: Option<String> = None;
    for line in head.split('\n') {
        let line = line.trim_end_matches('\r');
        match &mut subject {
            Some(s) if line.starts_with([' ', '\t']) => {
                s.push(' ');
                s.push_str(line.trim());
            }
            Some(_) => break,
            None => {
                let n = name.len();
                if line.len() >= n
                    && line.is_char_boundary(n)
                    && line[..n].eq_ignore_ascii_case(&name)
                {
                    subject = Some(line[n..].trim().to_owned());
                }
            }
        }
    }
    subject.map(|s| s.chars().take(200).collect())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::subject_of;

    #[test]
    fn subjects_are_found_and_unfolded() {
        assert_eq!(
            subject_of(b"To: a@b\r\nSubject: Hello\r\n there\r\nX: y\r\n\r\nSubject: body"),
            "Hello there"
        );
        assert_eq!(subject_of(b"SUBJECT:x\n\nbody"), "x");
        assert_eq!(subject_of(b"To: a@b\r\n\r\nSubject: not a header"), "");
        assert_eq!(subject_of(b""), "");
    }
}

//! Counting and recording inside a write transaction: the ledger rows and the counters
//! derived from them (always changed together), sliding-log rows, accounts and transitions.

use mailguard_core::account::Trip;
use mailguard_core::limits::{Limits, Mode};
use mailguard_core::rate::{Limit, Timestamp, Windows};
use mailguard_core::status::{Status, Transition};
use rusqlite::{params, OptionalExtension, Transaction};

use crate::error::StoreError;
use crate::model::MessageId;

/// What the ledger counts. Each kind has its total column and its daily column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Count {
    Sent,
    Error,
    Refused,
    Held,
}

impl Count {
    pub(crate) const ALL: [Count; 4] = [Count::Sent, Count::Error, Count::Refused, Count::Held];

    pub(crate) fn kind(self) -> &'static str {
        match self {
            Count::Sent => "sent",
            Count::Error => "error",
            Count::Refused => "refused",
            Count::Held => "held",
        }
    }

    pub(crate) fn daily_column(self) -> &'static str {
        match self {
            Count::Sent => "sent",
            Count::Error => "errors",
            Count::Refused => "refused",
            Count::Held => "held",
        }
    }

    pub(crate) fn total_column(self) -> &'static str {
        match self {
            Count::Sent => "sent_total",
            Count::Error => "errors_total",
            Count::Refused => "refused_total",
            Count::Held => "held_total",
        }
    }
}

/// The kinds of sliding logs.
pub(crate) const LOG_ACCEPTED: &str = "accepted";
pub(crate) const LOG_RELEASED: &str = "released";
pub(crate) const LOG_SPAM: &str = "spam";

/// Observe-mode trips of one rule are recorded at most once per this many ms.
const OBSERVED_TRIP_EVERY_MS: i64 = 3_600_000;

pub(crate) type Sql<T> = rusqlite::Result<T>;

/// One ledger row plus its counters.
pub(crate) fn count(
    tx: &Transaction<'_>,
    account: &str,
    now: Timestamp,
    what: Count,
    id: Option<MessageId>,
) -> Sql<()> {
    let day = now.day().to_string();
    tx.execute(
        "INSERT INTO ledger (account, time, day, kind, message_id) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![account, now.0, day, what.kind(), id.map(|i| i.0)],
    )?;
    tx.execute(
        &format!(
            "INSERT INTO daily (account, day, {c}) VALUES (?1, ?2, 1)
             ON CONFLICT (account, day) DO UPDATE SET {c} = {c} + 1",
            c = what.daily_column()
        ),
        params![account, day],
    )?;
    tx.execute(
        &format!(
            "UPDATE accounts SET {c} = {c} + 1 WHERE account = ?1",
            c = what.total_column()
        ),
        params![account],
    )?;
    Ok(())
}

/// The account's status, creating the account (active) on first sight.
pub(crate) fn ensure_account(
    tx: &Transaction<'_>,
    account: &str,
    now: Timestamp,
) -> crate::Result<Status> {
    let db = |e| StoreError::sql(format!("creating or reading account {account}"), e);
    tx.execute(
        "INSERT INTO accounts (account, status, since, created) VALUES (?1, 'active', ?2, ?2)
         ON CONFLICT (account) DO NOTHING",
        params![account, now.0],
    )
    .map_err(db)?;
    let status: String = tx
        .query_row(
            "SELECT status FROM accounts WHERE account = ?1",
            [account],
            |r| r.get(0),
        )
        .map_err(db)?;
    status
        .parse()
        .map_err(|e| StoreError::BadData(format!("account {account}: {e}")))
}

/// The account's status without creating it.
pub(crate) fn status_of(tx: &Transaction<'_>, account: &str) -> crate::Result<Option<Status>> {
    let s: Option<String> = tx
        .query_row(
            "SELECT status FROM accounts WHERE account = ?1",
            [account],
            |r| r.get(0),
        )
        .optional()
        .map_err(|e| StoreError::sql(format!("reading the status of account {account}"), e))?;
    s.map(|s| {
        s.parse()
            .map_err(|e| StoreError::BadData(format!("account {account}: {e}")))
    })
    .transpose()
}

/// Remembers the limits and mode the account was last checked with (for the runner and
/// the reports), writing only when they changed.
pub(crate) fn remember_limits(
    tx: &Transaction<'_>,
    account: &str,
    limits: &Limits,
    mode: Mode,
) -> Sql<()> {
    tx.execute(
        "UPDATE accounts SET limits = ?2, mode = ?3
         WHERE account = ?1 AND (limits IS NOT ?2 OR mode IS NOT ?3)",
        params![account, limits.to_string(), mode.as_str()],
    )?;
    Ok(())
}

/// The limits and mode stored for an account (defaults when never set).
pub(crate) fn stored_limits(tx: &Transaction<'_>, account: &str) -> crate::Result<(Limits, Mode)> {
    let row: Option<(String, String)> = tx
        .query_row(
            "SELECT limits, mode FROM accounts WHERE account = ?1",
            [account],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(|e| StoreError::sql(format!("reading the limits of account {account}"), e))?;
    let Some((limits, mode)) = row else {
        return Ok((Limits::default(), Mode::Enforce));
    };
    let limits = limits
        .parse()
        .map_err(|e| StoreError::BadData(format!("limits of account {account}: {e}")))?;
    let mode = mode
        .parse()
        .map_err(|e| StoreError::BadData(format!("mode of account {account}: {e}")))?;
    Ok((limits, mode))
}

/// The timestamps of one sliding log inside `limit`'s window at `now`, ascending.
pub(crate) fn read_log(
    tx: &Transaction<'_>,
    account: &str,
    kind: &str,
    limit: &Limit,
    now: Timestamp,
) -> Sql<Vec<Timestamp>> {
    let mut st = tx.prepare_cached(
        "SELECT time FROM rate_log WHERE account = ?1 AND kind = ?2 AND time > ?3 ORDER BY time",
    )?;
    let rows = st.query_map(params![account, kind, limit.window_start(now).0], |r| {
        Ok(Timestamp(r.get(0)?))
    })?;
    rows.collect()
}

/// The timestamps of one sliding log inside the longest of `windows` at `now`, ascending
/// (empty when there is no window).
pub(crate) fn read_windows(
    tx: &Transaction<'_>,
    account: &str,
    kind: &str,
    windows: &Windows,
    now: Timestamp,
) -> Sql<Vec<Timestamp>> {
    match windows.longest() {
        Some(period) => read_log(tx, account, kind, &Limit { count: 1, period }, now),
        None => Ok(Vec::new()),
    }
}

pub(crate) fn log_event(
    tx: &Transaction<'_>,
    account: &str,
    kind: &str,
    now: Timestamp,
) -> Sql<()> {
    tx.prepare_cached("INSERT INTO rate_log (account, kind, time) VALUES (?1, ?2, ?3)")?
        .execute(params![account, kind, now.0])?;
    Ok(())
}

/// `n` entries at `now` (a message to `n` recipients when limits count recipients).
pub(crate) fn log_events(
    tx: &Transaction<'_>,
    account: &str,
    kind: &str,
    now: Timestamp,
    n: u32,
) -> Sql<()> {
    for _ in 0..n {
        log_event(tx, account, kind, now)?;
    }
    Ok(())
}

/// Drops sliding-log rows no window of `limits` can see any more.
pub(crate) fn prune_logs(
    tx: &Transaction<'_>,
    account: &str,
    limits: &Limits,
    now: Timestamp,
) -> Sql<()> {
    let cutoff = now.minus(limits.longest_window());
    tx.prepare_cached("DELETE FROM rate_log WHERE account = ?1 AND time <= ?2")?
        .execute(params![account, cutoff.0])?;
    Ok(())
}

/// Applies a transition: the status, its record, and its effect on the queue.
/// Returns how many messages were held, released or deleted.
pub(crate) fn apply_transition(
    tx: &Transaction<'_>,
    account: &str,
    t: &Transition,
    actor: &str,
    detail: &str,
    now: Timestamp,
) -> Sql<u64> {
    record_transition(tx, account, t, actor, detail, true, now)?;
    tx.execute(
        "UPDATE accounts SET status = ?2, since = ?3 WHERE account = ?1",
        params![account, t.to.as_str(), now.0],
    )?;
    let mut affected = 0u64;
    if t.purges_queue() {
        affected += tx.execute(
            "DELETE FROM messages WHERE account = ?1 AND state IN ('queued', 'held', 'sending')",
            [account],
        )? as u64;
    } else if t.holds_queued_mail() {
        let ids: Vec<i64> = {
            let mut st =
                tx.prepare("SELECT id FROM messages WHERE account = ?1 AND state = 'queued'")?;
            let rows = st.query_map([account], |r| r.get(0))?;
            rows.collect::<Sql<_>>()?
        };
        for id in &ids {
            tx.execute("UPDATE messages SET state = 'held' WHERE id = ?1", [id])?;
            count(tx, account, now, Count::Held, Some(MessageId(*id)))?;
        }
        affected += ids.len() as u64;
    } else if t.releases_held_mail() {
        affected += tx.execute(
            "UPDATE messages SET state = 'queued', next_attempt = ?2 WHERE account = ?1 AND state = 'held'",
            params![account, now.0],
        )? as u64;
    }
    Ok(affected)
}

pub(crate) fn record_transition(
    tx: &Transaction<'_>,
    account: &str,
    t: &Transition,
    actor: &str,
    detail: &str,
    applied: bool,
    now: Timestamp,
) -> Sql<()> {
    tx.execute(
        "INSERT INTO transitions (account, time, from_status, to_status, reason, actor, detail, applied)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            account,
            now.0,
            t.from.as_str(),
            t.to.as_str(),
            t.reason.as_str(),
            actor,
            detail,
            applied
        ],
    )?;
    Ok(())
}

/// Records a rule's trip: applied (status changes, queue held) or, in observe mode, only
/// written down.
/// One message refused as spam (by the guide rules at submit, or by the engine before
/// relaying): counted as refused, logged for the spam rule, and the rule's trip recorded
/// when the refusals now reach it (by default the 5th within an hour turns `spam`).
pub(crate) fn spam_refusal(
    tx: &Transaction<'_>,
    account: &str,
    status: Status,
    (limits, mode): (&Limits, Mode),
    id: MessageId,
    now: Timestamp,
) -> Sql<Option<Trip>> {
    count(tx, account, now, Count::Refused, Some(id))?;
    log_event(tx, account, LOG_SPAM, now)?;
    let refusals = match &limits.spam_refusals {
        Some(l) => read_log(tx, account, LOG_SPAM, l, now)?,
        None => Vec::new(),
    };
    let trip = mailguard_core::account::spam_trip(status, &refusals, limits, now, mode);
    if let Some(t) = &trip {
        record_trip(tx, account, t, now)?;
    }
    Ok(trip)
}

pub(crate) fn record_trip(
    tx: &Transaction<'_>,
    account: &str,
    trip: &Trip,
    now: Timestamp,
) -> Sql<()> {
    let actor = trip.transition.actor.to_string();
    if trip.applied {
        apply_transition(tx, account, &trip.transition, &actor, &trip.detail, now)?;
    } else {
        // Observe mode: one record per rule per hour, not one per message past the limit.
        let recent: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM transitions WHERE account = ?1 AND reason = ?2
             AND applied = 0 AND time > ?3)",
            params![
                account,
                trip.transition.reason.as_str(),
                now.0 - OBSERVED_TRIP_EVERY_MS
            ],
            |r| r.get(0),
        )?;
        if !recent {
            record_transition(
                tx,
                account,
                &trip.transition,
                &actor,
                &trip.detail,
                false,
                now,
            )?;
        }
    }
    Ok(())
}

/// A body column as bytes, whatever SQLite type it holds (a hand-edited TEXT value must
/// quarantine, not crash the runner).
pub(crate) fn body(r: &rusqlite::Row<'_>, idx: usize) -> Sql<Option<Vec<u8>>> {
    use rusqlite::types::ValueRef;
    Ok(match r.get_ref(idx)? {
        ValueRef::Null => None,
        ValueRef::Blob(b) | ValueRef::Text(b) => Some(b.to_vec()),
        ValueRef::Integer(_) | ValueRef::Real(_) => Some(Vec::new()),
    })
}

//! Accounts: the operator's actions on an account's status (block, unblock, purge,
//! spam), its report-to address, its status snapshot and its transitions.

use mailguard_core::rate::Timestamp;
use mailguard_core::status::{transition, Event, Status};
use rusqlite::{params, OptionalExtension, Transaction};

use crate::db::Store;
use crate::error::{sql_in, StoreError};
use crate::ledger;
use crate::model::{Change, Snapshot, TransitionRecord, WindowUse};
use crate::Result;

/// The use of every quota and burst window of `limits` (their text form) at `now`.
fn window_use(
    tx: &Transaction<'_>,
    account: &str,
    limits: &str,
    now: Timestamp,
) -> rusqlite::Result<Vec<WindowUse>> {
    let Ok(limits) = limits.parse::<mailguard_core::limits::Limits>() else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for (kind, log_kind, windows) in [
        ("quota", ledger::LOG_RELEASED, &limits.quota),
        ("burst", ledger::LOG_ACCEPTED, &limits.burst),
    ] {
        let log = ledger::read_windows(tx, account, log_kind, windows, now)?;
        for l in windows.iter() {
            let start = l.window_start(now);
            let oldest = log.iter().find(|t| **t > start);
            out.push(WindowUse {
                kind,
                limit: *l,
                used: l.used(&log, now),
                remaining: l.free(&log, now),
                next_free: oldest.map(|t| t.plus(l.period)),
            });
        }
    }
    Ok(out)
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
        let sql = sql_in("applying an operator action");
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
        let sql = sql_in("setting the report-to address");
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
        let sql = sql_in("reading the account's status");
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
                    windows: Vec::new(),
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
                windows: window_use(tx, account, &limits, now).map_err(sql)?,
                limits,
                mode,
                report_to,
            })
        })
    }

    /// Every recorded transition of the account, oldest first.
    pub fn transitions(&mut self, account: &str) -> Result<Vec<TransitionRecord>> {
        let sql = sql_in("reading the account's transitions");
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

    /// Every account the store knows, sorted.
    pub fn accounts(&mut self) -> Result<Vec<String>> {
        self.read(accounts)
    }
}

pub(crate) fn accounts(tx: &Transaction<'_>) -> Result<Vec<String>> {
    let sql = sql_in("listing the accounts");
    let mut st = tx
        .prepare("SELECT account FROM accounts ORDER BY account")
        .map_err(sql)?;
    let rows = st.query_map([], |r| r.get(0)).map_err(sql)?;
    rows.collect::<rusqlite::Result<_>>().map_err(sql)
}

//! Notices of rule trips: which transitions to red still need their notice to the
//! account's report-to address, and how each was handled (so a restart never sends one
//! twice).
//!
//! Its own table `runner_notices` (schema version 3): rule transitions whose notice was
//! handled.

use mailguard_core::rate::Timestamp;
use mailguard_core::status::Status;
use rusqlite::params;

use crate::db::Store;
use crate::error::{sql_in, StoreError};
use crate::Result;

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

impl Store {
    /// Rule transitions to a red status since `since` (applied, not observe-mode) whose
    /// notice has not been handled yet, oldest first.
    pub fn pending_notices(&mut self, since: Timestamp) -> Result<Vec<NoticeDue>> {
        let sql = sql_in("reading the pending notices");
        self.read(|tx| {
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
        let sql = sql_in("recording a notice as handled");
        self.write(|tx| {
            tx.execute(
                "INSERT OR REPLACE INTO runner_notices (transition_id, account, time, outcome) VALUES (?1, ?2, ?3, ?4)",
                params![transition_id, account, now.0, outcome],
            )
            .map_err(sql)?;
            Ok(())
        })
    }
}

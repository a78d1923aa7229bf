//! `check_integrity`: SQLite's own check, then every counter against the ledger rows it
//! summarises, the error log against its ledger rows, and stored states and bodies.

use rusqlite::params;
use sha2::{Digest, Sha256};

use crate::accounts::accounts;
use crate::db::Store;
use crate::error::sql_in;
use crate::ledger::Count;
use crate::model::MessageState;
use crate::Result;

/// What `check_integrity` found; `problems` is empty when all is well.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IntegrityReport {
    pub problems: Vec<String>,
    pub accounts: u64,
    pub messages: u64,
    pub ledger_rows: u64,
}

impl IntegrityReport {
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

impl Store {
    /// Verifies, in one read snapshot:
    /// - `PRAGMA integrity_check` is `ok`;
    /// - per account and kind, the total counter equals the number of ledger rows, and
    ///   each daily counter equals the ledger rows of that day (and no ledger day lacks
    ///   its daily row);
    /// - the error ledger equals the error log, per account;
    /// - the queue totals (kept by triggers for the queue cap) equal the waiting messages;
    /// - every message has a known state, and every waiting message's body matches its
    ///   checksum (a mismatch is reported; `due` quarantines it when it comes up).
    pub fn check_integrity(&mut self) -> Result<IntegrityReport> {
        let sql = sql_in("checking integrity");
        self.read(|tx| {
            let mut report = IntegrityReport::default();
            let verdicts: Vec<String> = {
                let mut st = tx.prepare("PRAGMA integrity_check").map_err(sql)?;
                let rows = st.query_map([], |r| r.get(0)).map_err(sql)?;
                rows.collect::<rusqlite::Result<_>>().map_err(sql)?
            };
            if verdicts != ["ok"] {
                report.problems.push(format!("sqlite integrity_check: {}", verdicts.join("; ")));
            }
            let totals: ((i64, i64), (i64, i64)) = tx
                .query_row(
                    "SELECT (SELECT messages FROM queue_totals WHERE id = 1),
                            (SELECT bytes FROM queue_totals WHERE id = 1),
                            count(*), coalesce(sum(size), 0)
                     FROM messages WHERE state IN ('queued', 'held', 'sending')",
                    [],
                    |r| Ok(((r.get(0)?, r.get(1)?), (r.get(2)?, r.get(3)?))),
                )
                .map_err(sql)?;
            if totals.0 != totals.1 {
                report.problems.push(format!(
                    "queue totals say {} messages, {} bytes, but {} messages of {} bytes wait",
                    totals.0 .0, totals.0 .1, totals.1 .0, totals.1 .1
                ));
            }
            let accounts = accounts(tx)?;
            report.accounts = accounts.len() as u64;
            for account in &accounts {
                for what in Count::ALL {
                    let rows: i64 = tx
                        .query_row(
                            "SELECT count(*) FROM ledger WHERE account = ?1 AND kind = ?2",
                            params![account, what.kind()],
                            |r| r.get(0),
                        )
                        .map_err(sql)?;
                    let total: i64 = tx
                        .query_row(
                            &format!("SELECT {} FROM accounts WHERE account = ?1", what.total_column()),
                            [account],
                            |r| r.get(0),
                        )
                        .map_err(sql)?;
                    if rows != total {
                        report.problems.push(format!(
                            "account {account}: {} is {total} but the ledger has {rows} {} rows",
                            what.total_column(),
                            what.kind()
                        ));
                    }
                    let mismatched: Vec<(String, i64, i64)> = {
                        let mut st = tx
                            .prepare(&format!(
                                "SELECT d.day, d.{c}, (SELECT count(*) FROM ledger l
                                     WHERE l.account = d.account AND l.day = d.day AND l.kind = ?2)
                                 FROM daily d WHERE d.account = ?1
                                 UNION ALL
                                 SELECT l.day, 0, count(*) FROM ledger l
                                 WHERE l.account = ?1 AND l.kind = ?2
                                   AND NOT EXISTS (SELECT 1 FROM daily d WHERE d.account = l.account AND d.day = l.day)
                                 GROUP BY l.day",
                                c = what.daily_column()
                            ))
                            .map_err(sql)?;
                        let rows = st
                            .query_map(params![account, what.kind()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                            .map_err(sql)?;
                        rows.collect::<rusqlite::Result<Vec<_>>>()
                            .map_err(sql)?
                            .into_iter()
                            .filter(|(_, counter, rows)| counter != rows)
                            .collect()
                    };
                    for (day, counter, rows) in mismatched {
                        report.problems.push(format!(
                            "account {account}: daily {} on {day} is {counter} but the ledger has {rows}",
                            what.daily_column()
                        ));
                    }
                }
                let (logged, counted): (i64, i64) = tx
                    .query_row(
                        "SELECT (SELECT count(*) FROM errors WHERE account = ?1),
                                (SELECT count(*) FROM ledger WHERE account = ?1 AND kind = 'error')",
                        [account],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .map_err(sql)?;
                if logged != counted {
                    report.problems.push(format!(
                        "account {account}: the error log has {logged} entries but the ledger {counted} errors"
                    ));
                }
            }
            let orphans: i64 = tx
                .query_row(
                    "SELECT count(*) FROM ledger WHERE account NOT IN (SELECT account FROM accounts)",
                    [],
                    |r| r.get(0),
                )
                .map_err(sql)?;
            if orphans != 0 {
                report.problems.push(format!("{orphans} ledger rows belong to no account"));
            }
            report.ledger_rows = tx
                .query_row("SELECT count(*) FROM ledger", [], |r| r.get::<_, i64>(0))
                .map_err(sql)? as u64;
            let mut st = tx
                .prepare("SELECT id, state, raw, checksum FROM messages")
                .map_err(sql)?;
            let mut rows = st.query([]).map_err(sql)?;
            while let Some(r) = rows.next().map_err(sql)? {
                report.messages += 1;
                let id: i64 = r.get(0).map_err(sql)?;
                let state: String = r.get(1).map_err(sql)?;
                match state.parse::<MessageState>() {
                    Err(e) => report.problems.push(format!("message {id}: {e}")),
                    Ok(s) if s.is_waiting() => {
                        let raw = crate::ledger::body(r, 2).map_err(sql)?;
                        let sum: Vec<u8> = r.get(3).map_err(sql)?;
                        let ok = raw.is_some_and(|raw| Sha256::digest(&raw).as_slice() == sum.as_slice());
                        if !ok {
                            report
                                .problems
                                .push(format!("message {id} ({state}): body does not match its checksum"));
                        }
                    }
                    Ok(_) => {}
                }
            }
            Ok(report)
        })
    }
}

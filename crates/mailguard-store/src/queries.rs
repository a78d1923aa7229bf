//! Read-only views for reports and the dashboard: an account's history, its error log
//! (paged, counted, by day), and which scripts sent its mail in a window.
//!
//! Each is one read transaction (a WAL snapshot: never waits for, nor blocks, a writer).

use std::collections::HashMap;

use mailguard_core::rate::{Day, Timestamp};
use rusqlite::params;
use serde_json::Value;

use crate::db::Store;
use crate::error::sql_in;
use crate::model::{DayStats, ErrorEntry, MessageId, Origin};
use crate::Result;

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

/// What one PHP script did in a window (`mailguard dashboard`'s "top scripts").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptActivity {
    /// The PHP file of the mail() call; `None` when the origin is unknown.
    pub file: Option<String>,
    /// Messages accepted into the queue (any state but refused-spam) in the window,
    /// still on record: a purge deletes waiting messages, and with them their count here.
    pub messages: u64,
    /// Of those, delivered.
    pub sent: u64,
    /// Error log entries (failed recipients, expiries) in the window.
    pub errors: u64,
    /// Messages refused by the spam scorer in the window.
    pub refused: u64,
}

impl Store {
    /// The per-day counters of the last `days` days up to `now`'s day, oldest first,
    /// with days without mail as zeros.
    pub fn history(&mut self, account: &str, days: u32, now: Timestamp) -> Result<Vec<DayStats>> {
        let sql = sql_in("reading the account's history");
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
        let sql = sql_in("reading the error log");
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

    /// How many entries the account's error log holds (the total behind
    /// [`Store::errors`]' pages).
    pub fn errors_count(&mut self, account: &str) -> Result<u64> {
        let sql = sql_in("counting the error log");
        self.read(|tx| {
            tx.query_row(
                "SELECT count(*) FROM errors WHERE account = ?1",
                [account],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(sql)
        })
    }

    /// The error log entries of one UTC day, oldest first.
    pub fn errors_on(&mut self, account: &str, day: Day) -> Result<Vec<ErrorEntry>> {
        let sql = sql_in("reading one day's error log");
        let (from, until) = (day.start().0, Day(day.0 + 1).start().0);
        self.read(|tx| {
            let mut st = tx
                .prepare(
                    "SELECT time, message_id, recipient, code, enhanced, text, origin FROM errors
                     WHERE account = ?1 AND time >= ?2 AND time < ?3 ORDER BY time, id",
                )
                .map_err(sql)?;
            let rows = st
                .query_map(params![account, from, until], error_entry)
                .map_err(sql)?;
            rows.collect::<rusqlite::Result<_>>().map_err(sql)
        })
    }

    /// The scripts that sent mail from `since` on (exclusive), most messages first (then
    /// most errors, then by file), at most `limit` of them. Messages, errors and refusals
    /// are grouped by the origin's PHP file.
    pub fn script_activity(
        &mut self,
        account: &str,
        since: Timestamp,
        limit: u32,
    ) -> Result<Vec<ScriptActivity>> {
        let sql = sql_in("reading the scripts that sent mail");
        self.read(|tx| {
            let mut st = tx
                .prepare(
                    "WITH m AS (
                         SELECT json_extract(origin, '$.file') AS file,
                                sum(state <> 'refused-spam') AS messages,
                                sum(state = 'sent') AS sent,
                                0 AS errors,
                                sum(state = 'refused-spam') AS refused
                         FROM messages
                         WHERE account = ?1 AND created > ?2 AND json_valid(origin)
                         GROUP BY 1
                         UNION ALL
                         SELECT json_extract(origin, '$.file'), 0, 0, count(*), 0
                         FROM errors
                         WHERE account = ?1 AND time > ?2 AND json_valid(origin)
                         GROUP BY 1
                     )
                     SELECT file, sum(messages), sum(sent), sum(errors), sum(refused)
                     FROM m GROUP BY file
                     ORDER BY sum(messages) DESC, sum(errors) DESC, sum(refused) DESC, file
                     LIMIT ?3",
                )
                .map_err(sql)?;
            let rows = st
                .query_map(params![account, since.0, limit], |r| {
                    Ok(ScriptActivity {
                        file: r.get(0)?,
                        messages: r.get::<_, i64>(1)? as u64,
                        sent: r.get::<_, i64>(2)? as u64,
                        errors: r.get::<_, i64>(3)? as u64,
                        refused: r.get::<_, i64>(4)? as u64,
                    })
                })
                .map_err(sql)?;
            rows.collect::<rusqlite::Result<_>>().map_err(sql)
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
        let sql = sql_in("reading the origins of recent mail");
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Failure, Limits, Mode, Origin, Outcome, SpamSummary, Submission};

    fn origin(file: &str) -> Origin {
        Origin {
            file: Some(file.to_owned()),
            line: Some(7),
            ..Origin::default()
        }
    }

    fn submit(store: &mut Store, account: &str, file: &str, now: Timestamp) -> crate::Admission {
        let rcpt = vec!["to@example.org".to_owned()];
        let o = origin(file);
        store
            .submit(
                account,
                &Limits::default(),
                Submission {
                    raw: b"Subject: hi\r\n\r\nbody\r\n",
                    envelope_from: "from@example.org",
                    recipients: &rcpt,
                    origin: &o,
                    spam: None,
                },
                now,
                Mode::Enforce,
            )
            .unwrap()
    }

    #[test]
    fn script_activity_groups_by_file_within_the_window() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let t0 = Timestamp::from_secs(1_800_000_000);
        let now = t0.plus(std::time::Duration::from_secs(48 * 3600));
        // Old mail (outside the 24 h window) must not count.
        submit(&mut store, "a", "/old.php", t0);
        for i in 0..3 {
            let adm = submit(&mut store, "a", "/contact.php", now.minus_secs(10 + i));
            let id = adm.id.unwrap();
            let outcome = if i == 0 {
                Outcome::PermFail(vec![Failure {
                    recipient: "to@example.org".into(),
                    code: Some(550),
                    enhanced: Some("5.1.1".into()),
                    text: "no such user".into(),
                }])
            } else {
                Outcome::Sent { rejected: vec![] }
            };
            // Claimed as DeliverNow or queued: record_delivery accepts both.
            store.record_delivery(id, &outcome.into(), now).unwrap();
        }
        submit(&mut store, "a", "/news.php", now.minus_secs(5));
        let rcpt = vec!["x@example.org".to_owned()];
        let o = origin("/news.php");
        let spam = SpamSummary {
            score: 9.0,
            rules: vec!["r".into()],
            refuse: true,
        };
        store
            .submit(
                "a",
                &Limits::default(),
                Submission {
                    raw: b"Subject: FREE\r\n\r\nx\r\n",
                    envelope_from: "from@example.org",
                    recipients: &rcpt,
                    origin: &o,
                    spam: Some(&spam),
                },
                now.minus_secs(4),
                Mode::Enforce,
            )
            .unwrap();
        // Another account's mail stays out.
        submit(&mut store, "b", "/contact.php", now.minus_secs(3));

        let since = now.minus(std::time::Duration::from_secs(24 * 3600));
        let top = store.script_activity("a", since, 10).unwrap();
        assert_eq!(
            top,
            vec![
                ScriptActivity {
                    file: Some("/contact.php".into()),
                    messages: 3,
                    sent: 2,
                    errors: 1,
                    refused: 0
                },
                ScriptActivity {
                    file: Some("/news.php".into()),
                    messages: 1,
                    sent: 0,
                    errors: 0,
                    refused: 1
                },
            ]
        );
        assert_eq!(store.script_activity("a", since, 1).unwrap().len(), 1);
        assert!(store
            .script_activity("nobody", since, 10)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn errors_count_counts_only_the_account() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let now = Timestamp::from_secs(1_800_000_000);
        assert_eq!(store.errors_count("a").unwrap(), 0);
        for (account, n) in [("a", 3), ("b", 1)] {
            for _ in 0..n {
                let id = submit(&mut store, account, "/f.php", now).id.unwrap();
                store
                    .record_delivery(id, &Outcome::PermFail(vec![]).into(), now)
                    .unwrap();
            }
        }
        assert_eq!(store.errors_count("a").unwrap(), 3);
        assert_eq!(store.errors_count("b").unwrap(), 1);
        assert_eq!(store.errors("a", 2, 2).unwrap().len(), 1);
    }

    trait MinusSecs {
        fn minus_secs(self, s: u64) -> Timestamp;
    }
    impl MinusSecs for Timestamp {
        fn minus_secs(self, s: u64) -> Timestamp {
            self.minus(std::time::Duration::from_secs(s))
        }
    }
}

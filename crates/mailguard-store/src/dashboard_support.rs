//! Reports the owner's dashboard needs beyond the CLI's: the size of the error log (for
//! paging) and which scripts sent mail in a recent window.
//!
//! Each is one read transaction (a WAL snapshot: never waits for, nor blocks, a writer).

use mailguard_core::rate::Timestamp;
use rusqlite::params;

use crate::db::Store;
use crate::error::StoreError;
use crate::Result;

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

fn sql(e: rusqlite::Error) -> StoreError {
    StoreError::BadData(e.to_string())
}

impl Store {
    /// How many entries the account's error log holds (the total behind
    /// [`Store::errors`]' pages).
    pub fn errors_count(&mut self, account: &str) -> Result<u64> {
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

    /// The scripts that sent mail from `since` on (exclusive), most messages first (then
    /// most errors, then by file), at most `limit` of them. Messages, errors and refusals
    /// are grouped by the origin's PHP file.
    pub fn script_activity(
        &mut self,
        account: &str,
        since: Timestamp,
        limit: u32,
    ) -> Result<Vec<ScriptActivity>> {
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

//! Asynchronous bounces (RFC 3464 DSNs fed to `mailguard bounce`): matching one to the
//! message it belongs to, and counting it like a 5xx, once per recipient, with the
//! bounce-ratio rule.

use mailguard_core::account;
use mailguard_core::rate::Timestamp;
use mailguard_core::status::Status;
use rusqlite::{params, OptionalExtension, Transaction};

use crate::db::Store;
use crate::error::{sql_in, StoreError};
use crate::ledger::{self, Count};
use crate::model::{Failure, MessageId};
use crate::queue::parse_recipients;
use crate::Result;

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

impl Store {
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
        let sql = sql_in("matching a bounce to its message");
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
        let sql = sql_in("recording a bounce");
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
            let reply = format!(
                "{}: {}",
                failure.recipient,
                crate::delivery::reply_text(failure.code, failure.enhanced.as_deref(), &failure.text)
            );
            crate::track::log_attempt(tx, id, now, "bounced", &reply).map_err(sql)?;
            let trip = bounce_check(tx, &account, now)?;
            Ok(BounceRecord::Counted { trip })
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
    use crate::model::Outcome;
    use crate::queries::OriginSource;
    use crate::testing::{submit, T0};
    use mailguard_core::limits::Limits;
    use mailguard_core::rate::Day;
    use std::time::Duration;

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

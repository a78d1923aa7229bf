//! The per-account admission policy: given the status, the sliding logs read inside the
//! store's transaction and the limits, what happens to one accepted message (SPEC §3,
//! steps 4 and 5), and when the guard's rules turn an account red.
//!
//! Detection and action are separate: [`admit`] always computes what `enforce` would do
//! (`verdict`) and then, in `observe` mode, lets the message through anyway.

use std::fmt;

use crate::limits::{Limits, Mode};
use crate::rate::{Limit, SlidingLog, Timestamp};
use crate::status::{transition, Event, NewMail, Status, Transition};

/// What happens to a message now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Released: hand it to the transport at once (it counts toward the quota now).
    DeliverNow,
    /// Over the quota: queued, released when the rolling window frees at `until`.
    Queued { until: Timestamp },
    /// Red status: accepted and held until unblock, purge or expiry.
    Held,
    /// Refused: mail() returns false.
    Refused(RefusedBecause),
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::DeliverNow => "deliver",
            Action::Queued { .. } => "queue",
            Action::Held => "hold",
            Action::Refused(_) => "refuse",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Queued { until } => write!(f, "queue until {until}"),
            Action::Refused(why) => write!(f, "refuse ({why})"),
            other => f.write_str(other.as_str()),
        }
    }
}

/// Why a message is refused by the account policy (size and spam score refusals are
/// decided before, by `message` and `spam`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusedBecause {
    /// The account is in spam status: new mail is refused until a purge.
    SpamStatus,
    /// The spam scorer put the message at or over the refuse threshold.
    SpamScore,
    /// More envelope recipients than the account's per-message cap.
    TooManyRecipients { count: u32, cap: u32 },
}

impl fmt::Display for RefusedBecause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RefusedBecause::SpamStatus => f.write_str(
                "the account is blocked for spam; remove the cause, then ask the operator to purge its queue",
            ),
            RefusedBecause::SpamScore => f.write_str(
                "the message looks like spam; it was kept for the operator to review",
            ),
            RefusedBecause::TooManyRecipients { count, cap } => write!(
                f,
                "it has {count} recipients (To, Cc and Bcc), over the limit of {cap} per message; \
                 send it in smaller groups or through a mailing-list service, or ask the operator \
                 to raise max_recipients"
            ),
        }
    }
}

/// The admission of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// What to do now (in observe mode: never more than the status itself imposes).
    pub action: Action,
    /// What `enforce` does with this message (equal to `action` in enforce mode).
    pub verdict: Action,
    /// A rule that tripped on this message; `applied` is false in observe mode.
    pub trip: Option<Trip>,
    /// The human reading of the verdict, e.g. "51 accepted in 1m, over the burst limit 50/1m".
    pub detail: String,
}

/// A rule-driven transition and whether it was applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trip {
    pub transition: Transition,
    pub applied: bool,
    pub detail: String,
}

/// The recipient cap on its own, for a refusal before the costlier checks (enforce mode:
/// the store's [`admit`] applies the same rule and records it in observe mode).
pub fn recipient_cap(recipients: usize, limits: &Limits) -> Option<RefusedBecause> {
    let cap = limits.max_recipients?;
    (recipients > cap as usize).then(|| RefusedBecause::TooManyRecipients {
        count: recipients.min(u32::MAX as usize) as u32,
        cap,
    })
}

/// The sliding logs of one account, ascending, read in the same transaction that will
/// record the outcome. With [`crate::limits::Counting::Recipients`] a message with `n`
/// recipients left `n` entries at its time.
#[derive(Debug, Clone, Copy, Default)]
pub struct Logs<'a> {
    /// Accepted messages (held or released): the burst log.
    pub accepted: &'a [Timestamp],
    /// Releases to the transport: the quota log.
    pub released: &'a [Timestamp],
}

/// Decides one new message with `recipients` envelope recipients. In `observe` mode
/// rules are evaluated and reported but never block; a red status set by an operator
/// still holds or refuses (observe never blocks on its own, but does not overrule an
/// operator).
pub fn admit(
    status: Status,
    logs: Logs<'_>,
    limits: &Limits,
    recipients: usize,
    now: Timestamp,
    mode: Mode,
) -> Decision {
    let enforce = mode == Mode::Enforce;
    if let Some(why) = recipient_cap(recipients, limits) {
        let refused = Action::Refused(why);
        if enforce {
            return Decision {
                action: refused,
                verdict: refused,
                trip: None,
                detail: why.to_string(),
            };
        }
        // Observe: what enforce would do is recorded; the rest decides the action.
        let mut d = admit(
            status,
            logs,
            &Limits {
                max_recipients: None,
                ..limits.clone()
            },
            recipients,
            now,
            mode,
        );
        d.verdict = refused;
        d.detail = why.to_string();
        return d;
    }
    let weight = limits.counting.weight(recipients);
    match status.new_mail() {
        NewMail::Refuse => {
            let a = Action::Refused(RefusedBecause::SpamStatus);
            return Decision {
                action: a,
                verdict: a,
                trip: None,
                detail: format!("status {status}"),
            };
        }
        NewMail::Hold => {
            return Decision {
                action: Action::Held,
                verdict: Action::Held,
                trip: None,
                detail: format!("status {status}"),
            };
        }
        NewMail::Accept => {}
    }
    // Exact: a single message to more recipients than the burst allows trips it too.
    if let Some((burst, used)) = limits.burst.exceeded(logs.accepted, now, weight) {
        let detail = format!(
            "{used} {} accepted within {}, over the burst limit {burst}",
            limits.counting,
            period_text(&burst)
        );
        let trip = transition(status, Event::BurstTripped).ok().map(|t| Trip {
            transition: t,
            applied: enforce,
            detail: detail.clone(),
        });
        return Decision {
            action: if enforce {
                Action::Held
            } else {
                Action::DeliverNow
            },
            verdict: Action::Held,
            trip,
            detail,
        };
    }
    if let SlidingLog::Full { until } = limits.quota.check_n(logs.released, now, weight) {
        let used: Vec<String> = limits
            .quota
            .iter()
            .map(|l| format!("{}/{}", l.used(logs.released, now), l))
            .collect();
        return Decision {
            action: if enforce {
                Action::Queued { until }
            } else {
                Action::DeliverNow
            },
            verdict: Action::Queued { until },
            trip: None,
            detail: format!(
                "{} + {weight} {} over the quota {}; the window frees at {until}",
                used.join(", "),
                limits.counting,
                limits.quota
            ),
        };
    }
    Decision {
        action: Action::DeliverNow,
        verdict: Action::DeliverNow,
        trip: None,
        detail: String::new(),
    }
}

fn period_text(l: &Limit) -> String {
    let s = l.to_string();
    s.split_once('/').map(|(_, p)| p.to_owned()).unwrap_or(s)
}

/// After a delivery outcome: does the bounce ratio turn the account to `bounce`?
/// `sent` and `errors` are the counts in the bounce window, including the new outcome.
pub fn bounce_trip(
    status: Status,
    sent: u64,
    errors: u64,
    limits: &Limits,
    mode: Mode,
) -> Option<Trip> {
    let rule = limits.bounce;
    if !rule.exceeded(sent, errors, status.bounce_ratio_doubled()) {
        return None;
    }
    let t = transition(status, Event::BounceRatioExceeded).ok()?;
    Some(Trip {
        transition: t,
        applied: mode == Mode::Enforce,
        detail: format!(
            "{errors} failed of {} deliveries within {}s, over the allowed ratio {}",
            sent + errors,
            rule.window.as_secs(),
            rule.allowed_ratio(status.bounce_ratio_doubled())
        ),
    })
}

/// After a spam refusal: do the refusals (including the new one) turn the account to
/// `spam`? The `count`-th refusal within the period trips.
pub fn spam_trip(
    status: Status,
    refusals: &[Timestamp],
    limits: &Limits,
    now: Timestamp,
    mode: Mode,
) -> Option<Trip> {
    let rule = limits.spam_refusals?;
    let used = rule.used(refusals, now);
    if used < rule.count {
        return None;
    }
    let t = transition(status, Event::SpamLimitExceeded).ok()?;
    Some(Trip {
        transition: t,
        applied: mode == Mode::Enforce,
        detail: format!(
            "{used} messages refused as spam within {}, limit {}",
            period_text(&rule),
            rule.count
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: i64) -> Timestamp {
        Timestamp::from_secs(s)
    }

    fn limits(quota: &str, burst: &str) -> Limits {
        format!("quota={quota} burst={burst}").parse().unwrap()
    }

    #[test]
    fn green_under_the_limits_delivers() {
        let d = admit(
            Status::Active,
            Logs::default(),
            &limits("2/1h", "3/1m"),
            1,
            ts(0),
            Mode::Enforce,
        );
        assert_eq!(d.action, Action::DeliverNow);
        assert_eq!(d.trip, None);
    }

    #[test]
    fn over_quota_queues_until_the_window_frees() {
        let released = [ts(10), ts(20)];
        let logs = Logs {
            accepted: &released,
            released: &released,
        };
        let d = admit(
            Status::Force,
            logs,
            &limits("2/1h", ""),
            1,
            ts(30),
            Mode::Enforce,
        );
        assert_eq!(d.action, Action::Queued { until: ts(3610) });
        let o = admit(
            Status::Force,
            logs,
            &limits("2/1h", ""),
            1,
            ts(30),
            Mode::Observe,
        );
        assert_eq!(o.action, Action::DeliverNow);
        assert_eq!(o.verdict, Action::Queued { until: ts(3610) });
    }

    #[test]
    fn burst_trips_to_inactive_and_holds_the_message() {
        let acc = [ts(1), ts(2), ts(3)];
        let logs = Logs {
            accepted: &acc,
            released: &[],
        };
        let d = admit(
            Status::Active,
            logs,
            &limits("", "3/1m"),
            1,
            ts(4),
            Mode::Enforce,
        );
        assert_eq!(d.action, Action::Held);
        let trip = d.trip.unwrap();
        assert!(trip.applied);
        assert_eq!(
            (trip.transition.from, trip.transition.to),
            (Status::Active, Status::Inactive)
        );
        assert!(
            d.detail.contains("4 recipients accepted within 1m"),
            "{}",
            d.detail
        );
        let o = admit(
            Status::Active,
            logs,
            &limits("", "3/1m"),
            1,
            ts(4),
            Mode::Observe,
        );
        assert_eq!(o.action, Action::DeliverNow);
        assert!(!o.trip.unwrap().applied);
        // Once the burst window moved on, it is fine again.
        let later = admit(
            Status::Active,
            logs,
            &limits("", "3/1m"),
            1,
            ts(61),
            Mode::Enforce,
        );
        assert_eq!(later.action, Action::DeliverNow);
    }

    #[test]
    fn recipients_count_and_are_capped() {
        let l = limits("10/1h", "");
        // Seven recipients already released: a message to three fits, to four waits.
        let seven = [ts(1), ts(1), ts(1), ts(1), ts(2), ts(2), ts(2)];
        let logs = Logs {
            accepted: &seven,
            released: &seven,
        };
        assert_eq!(
            admit(Status::Active, logs, &l, 3, ts(10), Mode::Enforce).action,
            Action::DeliverNow
        );
        let d = admit(Status::Active, logs, &l, 4, ts(10), Mode::Enforce);
        assert_eq!(d.action, Action::Queued { until: ts(3601) });
        assert!(d.detail.contains("7/10/1h + 4 recipients"), "{}", d.detail);
        let by_message: Limits = "quota=10/1h count=messages".parse().unwrap();
        assert_eq!(
            admit(Status::Active, logs, &by_message, 4, ts(10), Mode::Enforce).action,
            Action::DeliverNow
        );
        // The cap (default 100): refused in enforce, recorded in observe.
        let d = admit(
            Status::Active,
            Logs::default(),
            &Limits::default(),
            101,
            ts(0),
            Mode::Enforce,
        );
        let why = RefusedBecause::TooManyRecipients {
            count: 101,
            cap: 100,
        };
        assert_eq!(d.action, Action::Refused(why));
        assert!(d.detail.contains("101 recipients"), "{}", d.detail);
        assert!(d.detail.contains("limit of 100"), "{}", d.detail);
        let o = admit(
            Status::Active,
            Logs::default(),
            &Limits::default(),
            101,
            ts(0),
            Mode::Observe,
        );
        assert_eq!(
            (o.action, o.verdict),
            (Action::DeliverNow, Action::Refused(why))
        );
        assert_eq!(recipient_cap(100, &Limits::default()), None);
        assert_eq!(
            recipient_cap(
                1000,
                &Limits {
                    max_recipients: None,
                    ..Limits::default()
                }
            ),
            None
        );
        // Burst counts recipients too.
        let b = limits("", "5/1m");
        let d = admit(Status::Active, Logs::default(), &b, 6, ts(0), Mode::Enforce);
        assert_eq!(d.action, Action::Held);
        assert!(d.detail.contains("6 recipients accepted"), "{}", d.detail);
    }

    #[test]
    fn several_windows_each_apply() {
        // 2/1m and 3/1h: the minute frees at 60, but the hour is full until 3600.
        let l = limits("2/1m,3/1h", "");
        let three = [ts(0), ts(10), ts(70)];
        let logs = Logs {
            accepted: &three,
            released: &three,
        };
        let d = admit(Status::Active, logs, &l, 1, ts(80), Mode::Enforce);
        assert_eq!(d.action, Action::Queued { until: ts(3600) });
        assert!(d.detail.contains("1/2/1m, 3/3/1h"), "{}", d.detail);
        let b = limits("", "5/1m,6/1h");
        assert_eq!(
            admit(Status::Active, logs, &b, 3, ts(80), Mode::Enforce).action,
            Action::DeliverNow
        );
        let d = admit(Status::Active, logs, &b, 4, ts(80), Mode::Enforce);
        assert_eq!(d.action, Action::Held);
        assert!(
            d.detail
                .contains("7 recipients accepted within 1h, over the burst limit 6/1h"),
            "{}",
            d.detail
        );
    }

    #[test]
    fn red_statuses_hold_or_refuse_in_both_modes() {
        for mode in [Mode::Enforce, Mode::Observe] {
            for s in [Status::Inactive, Status::Bounce] {
                assert_eq!(
                    admit(s, Logs::default(), &Limits::default(), 1, ts(0), mode).action,
                    Action::Held
                );
            }
            assert_eq!(
                admit(
                    Status::Spam,
                    Logs::default(),
                    &Limits::default(),
                    1,
                    ts(0),
                    mode
                )
                .action,
                Action::Refused(RefusedBecause::SpamStatus)
            );
        }
    }

    #[test]
    fn bounce_and_spam_trips() {
        let l = Limits::default();
        assert_eq!(bounce_trip(Status::Active, 18, 2, &l, Mode::Enforce), None);
        let t = bounce_trip(Status::Active, 17, 3, &l, Mode::Enforce).unwrap();
        assert_eq!(t.transition.to, Status::Bounce);
        assert_eq!(bounce_trip(Status::Force, 17, 3, &l, Mode::Enforce), None);
        assert_eq!(
            bounce_trip(Status::Inactive, 0, 50, &l, Mode::Enforce),
            None,
            "already red"
        );
        let four = [ts(1), ts(2), ts(3), ts(4)];
        assert_eq!(
            spam_trip(Status::Active, &four, &l, ts(5), Mode::Enforce),
            None
        );
        let five = [ts(1), ts(2), ts(3), ts(4), ts(5)];
        let t = spam_trip(Status::Bounce, &five, &l, ts(5), Mode::Enforce).unwrap();
        assert_eq!(
            (t.transition.from, t.transition.to),
            (Status::Bounce, Status::Spam)
        );
        assert_eq!(
            spam_trip(Status::Active, &five, &l, ts(3602), Mode::Enforce),
            None,
            "window moved"
        );
        assert_eq!(
            spam_trip(Status::Spam, &five, &l, ts(5), Mode::Enforce),
            None
        );
    }
}

//! Rate arithmetic: sliding logs (quota, burst, spam refusals), the bounce ratio and the
//! retry backoff. Pure: every function takes the time it works on as a value.
//!
//! A sliding log answers "at most N in any rolling `period`" exactly: the caller hands in
//! the timestamps of past events (read and written in one serialized transaction, see
//! `mailguard-store`), and [`SlidingLog::check`] says whether one more fits now or when the
//! next slot frees. Fixed windows would allow 2N at a window edge and token buckets 2N-1
//! (research/reliability-and-queues.md §3.1).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A point in time: milliseconds since the Unix epoch (UTC). The store takes it from one
/// clock inside its write transaction; core never reads a clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub const fn from_millis(ms: i64) -> Timestamp {
        Timestamp(ms)
    }

    pub const fn from_secs(secs: i64) -> Timestamp {
        Timestamp(secs.saturating_mul(1000))
    }

    pub const fn as_millis(self) -> i64 {
        self.0
    }

    /// `self + d`, saturating at the end of time.
    pub fn plus(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(duration_ms(d)))
    }

    /// `self - d`, saturating at the start of time.
    pub fn minus(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_sub(duration_ms(d)))
    }

    /// The time from `earlier` to `self`, zero if `earlier` is later.
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0).max(0) as u64)
    }

    /// The UTC calendar day this instant falls on.
    pub fn day(self) -> Day {
        Day(self.0.div_euclid(86_400_000) as i32)
    }
}

impl fmt::Display for Timestamp {
    /// RFC 3339 in UTC with seconds: `2026-04-01T12:30:05Z`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs_of_day = self.0.rem_euclid(86_400_000) / 1000;
        write!(
            f,
            "{}T{:02}:{:02}:{:02}Z",
            self.day(),
            secs_of_day / 3600,
            secs_of_day / 60 % 60,
            secs_of_day % 60
        )
    }
}

fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// A UTC calendar day, counted in days since 1970-01-01. Displays as `YYYY-MM-DD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Day(pub i32);

impl Day {
    /// Year, month (1-12), day (1-31): Howard Hinnant's `civil_from_days`.
    pub fn ymd(self) -> (i32, u32, u32) {
        let z = self.0 as i64 + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let y = yoe + era * 400 + i64::from(m <= 2);
        (y as i32, m, d)
    }

    /// The first instant of the day.
    pub fn start(self) -> Timestamp {
        Timestamp(self.0 as i64 * 86_400_000)
    }
}

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = self.ymd();
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

/// "At most `count` in any rolling `period`", written `200/1h`, `50/1m`, `10/30s`, `1000/1d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub count: u32,
    pub period: Duration,
}

/// Why a limit does not parse. The message names the input and shows the syntax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitError {
    pub input: String,
    pub problem: &'static str,
}

impl fmt::Display for LimitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "\"{}\" is not a rate limit: {}; write COUNT/PERIOD with a unit s, m, h or d, \
             e.g. 200/1h, 50/1m, 10/30s, 1000/1d (empty for unlimited)",
            self.input, self.problem
        )
    }
}

impl std::error::Error for LimitError {}

/// Parses a limit setting; empty (or blank) means unlimited and gives `None`.
pub fn parse_limit(text: &str) -> Result<Option<Limit>, LimitError> {
    if text.trim().is_empty() {
        Ok(None)
    } else {
        text.parse().map(Some)
    }
}

impl FromStr for Limit {
    type Err = LimitError;

    fn from_str(text: &str) -> Result<Limit, LimitError> {
        let err = |problem| LimitError {
            input: text.to_owned(),
            problem,
        };
        let t = text.trim();
        let (count, period) = t.split_once('/').ok_or_else(|| err("missing \"/\""))?;
        let (count, period) = (count.trim(), period.trim());
        if count.is_empty() || !count.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err("the count must be a whole number"));
        }
        let count: u32 = count.parse().map_err(|_| err("the count is too large"))?;
        if count == 0 {
            return Err(err(
                "the count must be at least 1 (to stop an account, block it)",
            ));
        }
        let unit_ms: u64 = match period.bytes().last() {
            Some(b's') => 1000,
            Some(b'm') => 60_000,
            Some(b'h') => 3_600_000,
            Some(b'd') => 86_400_000,
            Some(_) => return Err(err("the period needs a unit s, m, h or d")),
            None => return Err(err("the period is missing")),
        };
        let amount = &period[..period.len() - 1];
        // "200/h" reads as 200/1h.
        let amount: u64 = if amount.is_empty() {
            1
        } else if amount.bytes().all(|b| b.is_ascii_digit()) {
            amount.parse().map_err(|_| err("the period is too long"))?
        } else {
            return Err(err(
                "the period must be a whole number followed by s, m, h or d",
            ));
        };
        if amount == 0 {
            return Err(err("the period must be longer than zero"));
        }
        let ms = amount
            .checked_mul(unit_ms)
            .filter(|ms| *ms <= 366 * 86_400_000)
            .ok_or_else(|| err("the period must be at most 366d"))?;
        Ok(Limit {
            count,
            period: Duration::from_millis(ms),
        })
    }
}

impl fmt::Display for Limit {
    /// The shortest exact form, the one `FromStr` reads back: `200/1h`, `10/90s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.period.as_millis() as u64;
        let (n, unit) = [
            (86_400_000, "d"),
            (3_600_000, "h"),
            (60_000, "m"),
            (1000, "s"),
        ]
        .into_iter()
        .find(|(u, _)| ms.is_multiple_of(*u))
        .map(|(u, s)| (ms / u, s))
        .unwrap_or((ms / 1000, "s"));
        write!(f, "{}/{}{}", self.count, n, unit)
    }
}

/// What a sliding log says about one more event now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlidingLog {
    /// One more fits in the rolling window; `used` events are already in it.
    Admit { used: u32 },
    /// The window is full; the next slot frees at `until` (the earliest time `check` admits).
    Full { until: Timestamp },
}

impl Limit {
    /// The earliest instant whose events still count at `now`: an event at `t` counts
    /// while `t > now - period`, so it stops counting at exactly `t + period`.
    pub fn window_start(&self, now: Timestamp) -> Timestamp {
        now.minus(self.period)
    }

    /// How many of `log` (ascending timestamps, older entries allowed) count at `now`.
    /// Entries after `now` (a clock step back) count too: they were admitted.
    pub fn used(&self, log: &[Timestamp], now: Timestamp) -> u32 {
        let start = self.window_start(now);
        let first = log.partition_point(|t| *t <= start);
        (log.len() - first).min(u32::MAX as usize) as u32
    }

    /// May `n` more events happen at `now` together (one message to `n` recipients),
    /// given the `log` of past ones (ascending)? `n` above the limit's count can never
    /// fit: it is admitted once the window is empty (the per-message recipient cap is
    /// what bounds it). `n = 0` always fits.
    pub fn check_n(&self, log: &[Timestamp], now: Timestamp, n: u32) -> SlidingLog {
        let start = self.window_start(now);
        let first = log.partition_point(|t| *t <= start);
        let live = &log[first..];
        let used = live.len();
        let limit = self.count as usize;
        let n = (n as usize).min(limit);
        if n == 0 || used + n <= limit {
            SlidingLog::Admit { used: used as u32 }
        } else {
            // `used + n - N` of the live events must leave the window; the last of those
            // to leave is live[used + n - N - 1].
            let until = live[used + n - limit - 1].plus(self.period);
            SlidingLog::Full {
                until: until.max(now.plus(Duration::from_millis(1))),
            }
        }
    }

    /// May one more event happen at `now`, given the `log` of past ones (ascending)?
    pub fn check(&self, log: &[Timestamp], now: Timestamp) -> SlidingLog {
        let start = self.window_start(now);
        let first = log.partition_point(|t| *t <= start);
        let live = &log[first..];
        let used = live.len();
        let limit = self.count as usize;
        if used < limit {
            SlidingLog::Admit { used: used as u32 }
        } else {
            // With `used` >= N live events, one more fits once `used - N + 1` of them have
            // left the window; the last of those to leave is live[used - N].
            let until = live[used - limit].plus(self.period);
            SlidingLog::Full {
                until: until.max(now.plus(Duration::from_millis(1))),
            }
        }
    }

    /// How many more events fit at `now`.
    pub fn free(&self, log: &[Timestamp], now: Timestamp) -> u32 {
        self.count.saturating_sub(self.used(log, now))
    }
}

/// Several windows of one limit, all applying at once: `200/1h, 1000/1d`. Each is an exact
/// sliding log over the same events; empty means unlimited.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Windows(pub Vec<Limit>);

impl Windows {
    /// One window.
    pub fn one(l: Limit) -> Windows {
        Windows(vec![l])
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Limit> {
        self.0.iter()
    }

    /// The longest window: how far back a log must be read.
    pub fn longest(&self) -> Option<Duration> {
        self.0.iter().map(|l| l.period).max()
    }

    /// May `n` more events happen at `now` in every window? Full: the earliest time all
    /// windows have room (windows only free up while nothing new is logged).
    pub fn check_n(&self, log: &[Timestamp], now: Timestamp, n: u32) -> SlidingLog {
        let mut until: Option<Timestamp> = None;
        let mut used = 0;
        for l in &self.0 {
            match l.check_n(log, now, n) {
                SlidingLog::Admit { used: u } => used = used.max(u),
                SlidingLog::Full { until: t } => until = Some(until.map_or(t, |u| u.max(t))),
            }
        }
        match until {
            Some(until) => SlidingLog::Full { until },
            None => SlidingLog::Admit { used },
        }
    }

    /// The first window that `n` more events at `now` would exceed (`used + n > count`,
    /// no clamping: what a burst limit asks), with its use including them.
    pub fn exceeded(&self, log: &[Timestamp], now: Timestamp, n: u32) -> Option<(Limit, u32)> {
        self.0.iter().find_map(|l| {
            let used = l.used(log, now).saturating_add(n);
            (used > l.count).then_some((*l, used))
        })
    }
}

impl fmt::Display for Windows {
    /// `200/1h, 1000/1d`; empty for unlimited.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, l) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{l}")?;
        }
        Ok(())
    }
}

/// Parses a limit setting with one or more windows separated by commas (`200/1h, 1000/1d`);
/// empty (or blank) means unlimited. Two windows of the same period are an error.
pub fn parse_windows(text: &str) -> Result<Windows, LimitError> {
    if text.trim().is_empty() {
        return Ok(Windows::default());
    }
    let mut out: Vec<Limit> = Vec::new();
    for part in text.split(',') {
        let l: Limit = part.parse()?;
        if out.iter().any(|o| o.period == l.period) {
            return Err(LimitError {
                input: text.to_owned(),
                problem: "two windows have the same period",
            });
        }
        out.push(l);
    }
    out.sort_by_key(|l| l.period);
    Ok(Windows(out))
}

/// When the share of failed deliveries turns an account to `bounce`.
///
/// The ratio is `errors / (sent + errors)` over the rolling `window`: the share of finished
/// deliveries that failed permanently or expired. It can trip only once `sent + errors`
/// reaches `min_outcomes`, so three errors out of five messages do not block a small site.
/// In `force` status the allowed ratio is doubled (OVH's Force, SPEC §2).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BounceRule {
    pub window: Duration,
    pub min_outcomes: u32,
    pub max_ratio: f64,
}

impl BounceRule {
    /// Defaults: a 24 h window, at least 20 outcomes, at most 10 % errors (20 % in force).
    pub const DEFAULT: BounceRule = BounceRule {
        window: Duration::from_secs(24 * 3600),
        min_outcomes: 20,
        max_ratio: 0.10,
    };

    /// The allowed ratio for an account in `force` (`doubled`) or not, capped at 1.
    pub fn allowed_ratio(&self, doubled: bool) -> f64 {
        let r = if doubled {
            self.max_ratio * 2.0
        } else {
            self.max_ratio
        };
        r.min(1.0)
    }

    /// Is the ratio of `errors` among `sent + errors` over the allowed one?
    pub fn exceeded(&self, sent: u64, errors: u64, doubled: bool) -> bool {
        let total = sent + errors;
        total >= u64::from(self.min_outcomes)
            && total > 0
            && errors as f64 > self.allowed_ratio(doubled) * total as f64
    }
}

impl Default for BounceRule {
    fn default() -> Self {
        BounceRule::DEFAULT
    }
}

/// Exponential retry backoff with jitter: `first`, then ×2 per attempt, capped at `cap`,
/// each delay moved by up to ±`jitter_percent` (research §1.8: 2 min, ×2, ±10 %, cap 60 min).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub first: Duration,
    pub cap: Duration,
    pub jitter_percent: u32,
}

impl Backoff {
    pub const DEFAULT: Backoff = Backoff {
        first: Duration::from_secs(120),
        cap: Duration::from_secs(3600),
        jitter_percent: 10,
    };

    /// The delay after the `failures`-th failed attempt (1 = the first failure).
    /// `jitter` is any 64-bit value (a hash of the message id and attempt, or a random
    /// number); the same input gives the same delay, which keeps this pure and testable.
    pub fn delay(&self, failures: u32, jitter: u64) -> Duration {
        let first = duration_ms(self.first).max(1);
        let cap = duration_ms(self.cap).max(first);
        let shift = failures.saturating_sub(1).min(40);
        let base = first.saturating_mul(1i64 << shift).min(cap);
        let spread = base * i64::from(self.jitter_percent.min(100)) / 100;
        let offset = if spread == 0 {
            0
        } else {
            (jitter % (2 * spread as u64 + 1)) as i64 - spread
        };
        Duration::from_millis((base + offset).max(1) as u64)
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::DEFAULT
    }
}

/// A deterministic 64-bit mix (splitmix64 finaliser) to derive jitter from ids.
pub fn mix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(secs: i64) -> Timestamp {
        Timestamp::from_secs(secs)
    }

    #[test]
    fn several_windows_apply_together() {
        let w = parse_windows(" 1000/1d, 3/1m ").unwrap();
        assert_eq!(w.to_string(), "3/1m, 1000/1d");
        assert_eq!(w.longest(), Some(Duration::from_secs(86_400)));
        assert!(parse_windows("").unwrap().is_empty());
        assert!(parse_windows("3/1m, 5/60s").is_err());
        assert!(parse_windows("3/1m,").is_err());
        let d = parse_windows("2/1m, 3/1h").unwrap();
        let log = [ts(0), ts(10)];
        // The minute is full: frees at 60.
        assert_eq!(
            d.check_n(&log, ts(20), 1),
            SlidingLog::Full { until: ts(60) }
        );
        let log = [ts(0), ts(10), ts(70)];
        // The minute has room at 75, the hour (3) does not: frees at 3600.
        assert_eq!(
            d.check_n(&log, ts(75), 1),
            SlidingLog::Full { until: ts(3600) }
        );
        assert_eq!(
            d.check_n(&log[..2], ts(75), 1),
            SlidingLog::Admit { used: 2 }
        );
        assert_eq!(
            d.exceeded(&log, ts(75), 1).map(|(l, u)| (l.count, u)),
            Some((3, 4))
        );
        assert_eq!(d.exceeded(&log[..1], ts(75), 1), None);
    }

    #[test]
    fn several_events_at_once_fit_or_wait_for_enough_slots() {
        let l: Limit = "10/1h".parse().unwrap();
        let log = [ts(0), ts(0), ts(0), ts(100), ts(100), ts(200)];
        assert_eq!(l.check_n(&log, ts(300), 4), SlidingLog::Admit { used: 6 });
        // 5 more need one slot: the first three (t=0) leave at 3600.
        assert_eq!(
            l.check_n(&log, ts(300), 5),
            SlidingLog::Full { until: ts(3600) }
        );
        // 8 more need four: the fourth to leave is t=100.
        assert_eq!(
            l.check_n(&log, ts(300), 8),
            SlidingLog::Full { until: ts(3700) }
        );
        // More than the whole limit: waits for an empty window.
        assert_eq!(
            l.check_n(&log, ts(300), 50),
            SlidingLog::Full { until: ts(3800) }
        );
        assert_eq!(l.check_n(&[], ts(300), 50), SlidingLog::Admit { used: 0 });
        assert_eq!(l.check_n(&log, ts(300), 0), SlidingLog::Admit { used: 6 });
        for (i, n) in [(0usize, 1u32), (3, 1), (6, 1)] {
            assert_eq!(
                l.check_n(&log[..i], ts(300), n),
                l.check(&log[..i], ts(300))
            );
        }
    }

    #[test]
    fn limits_parse_and_print() {
        for (text, count, secs, back) in [
            ("200/1h", 200, 3600, "200/1h"),
            ("50/1m", 50, 60, "50/1m"),
            ("10/30s", 10, 30, "10/30s"),
            ("1000/1d", 1000, 86400, "1000/1d"),
            (" 5 / 2h ", 5, 7200, "5/2h"),
            ("7/h", 7, 3600, "7/1h"),
            ("3/90s", 3, 90, "3/90s"),
            ("3/120m", 3, 7200, "3/2h"),
        ] {
            let l: Limit = text.parse().unwrap();
            assert_eq!(
                (l.count, l.period),
                (count, Duration::from_secs(secs)),
                "{text}"
            );
            assert_eq!(l.to_string(), back);
            assert_eq!(back.parse::<Limit>().unwrap(), l);
        }
        assert_eq!(parse_limit("").unwrap(), None);
        assert_eq!(parse_limit("  ").unwrap(), None);
        assert!(parse_limit("1/1s").unwrap().is_some());
    }

    #[test]
    fn bad_limits_say_why() {
        for (text, needle) in [
            ("200", "missing \"/\""),
            ("/1h", "whole number"),
            ("-5/1h", "whole number"),
            ("2.5/1h", "whole number"),
            ("0/1h", "at least 1"),
            ("99999999999/1h", "too large"),
            ("10/", "missing"),
            ("10/1", "unit"),
            ("10/1w", "unit"),
            ("10/0m", "longer than zero"),
            ("10/1.5h", "whole number"),
            ("10/400d", "at most 366d"),
            ("10/99999999999999999999s", "too long"),
        ] {
            let e = text.parse::<Limit>().unwrap_err();
            assert!(e.to_string().contains(needle), "{text}: {e}");
            assert!(e.to_string().contains(text), "{text}: {e}");
        }
    }

    #[test]
    fn sliding_log_admits_up_to_the_limit_then_names_the_free_time() {
        let l: Limit = "3/1m".parse().unwrap();
        assert_eq!(l.check(&[], ts(100)), SlidingLog::Admit { used: 0 });
        let log = [ts(10), ts(20), ts(30)];
        assert_eq!(l.check(&log[..2], ts(40)), SlidingLog::Admit { used: 2 });
        // Full: the oldest (10) leaves at 70.
        assert_eq!(l.check(&log, ts(40)), SlidingLog::Full { until: ts(70) });
        // At 70 the event at 10 no longer counts (t > now - period is strict).
        assert_eq!(l.check(&log, ts(70)), SlidingLog::Admit { used: 2 });
        assert_eq!(l.check(&log, ts(69)), SlidingLog::Full { until: ts(70) });
        // Old entries before the window are ignored.
        let log = [ts(0), ts(1), ts(50), ts(60), ts(65)];
        assert_eq!(l.check(&log, ts(100)), SlidingLog::Full { until: ts(110) });
        assert_eq!(l.used(&log, ts(100)), 3);
        assert_eq!(l.free(&log, ts(100)), 0);
        assert_eq!(l.free(&log, ts(111)), 1);
        assert_eq!(l.free(&log, ts(120)), 2);
        assert_eq!(l.free(&log, ts(125)), 3);
    }

    #[test]
    fn over_full_log_waits_for_enough_departures() {
        // A limit lowered from 5 to 2 with 5 in the window: two must leave... no, four.
        let l: Limit = "2/1m".parse().unwrap();
        let log = [ts(1), ts(2), ts(3), ts(4), ts(5)];
        // 5 live, N=2: need 4 gone, the 4th oldest (4) leaves at 64.
        assert_eq!(l.check(&log, ts(10)), SlidingLog::Full { until: ts(64) });
        assert_eq!(l.check(&log, ts(64)), SlidingLog::Admit { used: 1 });
    }

    #[test]
    fn future_entries_count_and_until_is_after_now() {
        let l: Limit = "1/1m".parse().unwrap();
        // A clock step back: the entry at 100 is in the future of now=50.
        match l.check(&[ts(100)], ts(50)) {
            SlidingLog::Full { until } => assert_eq!(until, ts(160)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bounce_ratio_needs_the_minimum_and_doubles_in_force() {
        let r = BounceRule::DEFAULT;
        assert!(!r.exceeded(0, 19, false), "under the minimum count");
        assert!(r.exceeded(0, 20, false));
        assert!(!r.exceeded(18, 2, false), "exactly 10 % is not over");
        assert!(r.exceeded(17, 3, false));
        assert!(!r.exceeded(17, 3, true), "15 % is allowed in force");
        assert!(
            !r.exceeded(16, 4, true),
            "exactly 20 % is not over in force"
        );
        assert!(r.exceeded(15, 5, true));
        let lax = BounceRule {
            max_ratio: 0.8,
            ..r
        };
        assert_eq!(lax.allowed_ratio(true), 1.0);
        assert!(
            !lax.exceeded(0, 100, true),
            "a ratio capped at 1 never trips"
        );
    }

    #[test]
    fn backoff_grows_caps_and_jitters_within_bounds() {
        let b = Backoff::DEFAULT;
        let no_jitter = Backoff {
            jitter_percent: 0,
            ..b
        };
        let secs: Vec<u64> = (1..=8)
            .map(|n| no_jitter.delay(n, 12345).as_secs())
            .collect();
        assert_eq!(secs, [120, 240, 480, 960, 1920, 3600, 3600, 3600]);
        assert_eq!(no_jitter.delay(0, 0).as_secs(), 120);
        assert_eq!(no_jitter.delay(u32::MAX, 0).as_secs(), 3600);
        let mut seen = std::collections::BTreeSet::new();
        for j in 0..2000u64 {
            let d = b.delay(1, mix64(j)).as_millis();
            assert!((108_000..=132_000).contains(&d), "{d}");
            seen.insert(d / 1000);
        }
        assert!(seen.len() > 10, "jitter spreads the delays: {seen:?}");
        assert_eq!(b.delay(3, 77), b.delay(3, 77));
    }

    #[test]
    fn timestamps_and_days_print_in_utc() {
        assert_eq!(Timestamp(0).to_string(), "1970-01-01T00:00:00Z");
        let t = Timestamp::from_secs(1_775_046_605); // 2026-04-01T12:30:05Z
        assert_eq!(t.to_string(), "2026-04-01T12:30:05Z");
        assert_eq!(t.day().to_string(), "2026-04-01");
        assert_eq!(
            Timestamp::from_secs(951_782_400).day().to_string(),
            "2000-02-29"
        );
        assert_eq!(Timestamp(-1).day().to_string(), "1969-12-31");
        assert_eq!(t.day().start().to_string(), "2026-04-01T00:00:00Z");
        assert_eq!(ts(10).since(ts(4)), Duration::from_secs(6));
        assert_eq!(ts(4).since(ts(10)), Duration::ZERO);
    }
}

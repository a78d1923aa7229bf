//! The per-account limits and the guard's mode: one typed value, parsed once from raw
//! settings, with one default per knob (listed in [`Limits::default`]).
//!
//! The text form (`quota=200/1h burst=50/1m ...`, see [`Limits`]'s `Display`) is what the
//! store keeps per account and what the CLI prints; `FromStr` reads it back.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::rate::{parse_limit, parse_windows, Backoff, BounceRule, Limit, Windows};

/// `observe` runs every check and records every verdict but blocks nothing; `enforce` acts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    Observe,
    Enforce,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Observe => "observe",
            Mode::Enforce => "enforce",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Mode {
    type Err = LimitsError;
    fn from_str(s: &str) -> Result<Mode, LimitsError> {
        match s.trim() {
            "observe" => Ok(Mode::Observe),
            "enforce" => Ok(Mode::Enforce),
            other => Err(LimitsError(format!(
                "mode \"{other}\" is neither \"observe\" nor \"enforce\""
            ))),
        }
    }
}

/// What the rate limits (quota, burst) count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Counting {
    /// Every envelope recipient counts: one mail to 50 people is 50 (the default).
    Recipients,
    /// Every message counts once, whatever its recipients.
    Messages,
}

impl Counting {
    pub fn as_str(self) -> &'static str {
        match self {
            Counting::Recipients => "recipients",
            Counting::Messages => "messages",
        }
    }

    /// How many slots of a rate limit one message with `recipients` recipients takes
    /// (at least one: a message with none still counts).
    pub fn weight(self, recipients: usize) -> u32 {
        match self {
            Counting::Messages => 1,
            Counting::Recipients => recipients.clamp(1, u32::MAX as usize) as u32,
        }
    }
}

impl fmt::Display for Counting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Counting {
    type Err = LimitsError;
    fn from_str(s: &str) -> Result<Counting, LimitsError> {
        match s.trim() {
            "recipients" => Ok(Counting::Recipients),
            "messages" => Ok(Counting::Messages),
            other => Err(LimitsError(format!(
                "count \"{other}\" is neither \"recipients\" nor \"messages\""
            ))),
        }
    }
}

/// The default cap on envelope recipients per message.
pub const DEFAULT_MAX_RECIPIENTS: u32 = 100;

/// Parses a recipient cap: a whole number of at least 1; empty (or blank) means no cap.
pub fn parse_max_recipients(text: &str) -> Result<Option<u32>, LimitsError> {
    let t = text.trim();
    if t.is_empty() {
        return Ok(None);
    }
    match t.parse::<u32>() {
        Ok(n) if n >= 1 => Ok(Some(n)),
        _ => Err(LimitsError(format!(
            "max_recipients \"{t}\" is not a whole number of at least 1 (empty for no cap)"
        ))),
    }
}

/// Everything that bounds one account's mail.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Releases per rolling window, one or more windows (`200/1h, 1000/1d`); over any of
    /// them mail is queued until every window has room. Empty = unlimited. Default `200/1h`.
    pub quota: Windows,
    /// Accepted per rolling window, one or more windows; the message past any of them
    /// turns the account inactive. Empty = unlimited. Default `50/1m`.
    pub burst: Windows,
    /// What quota and burst count: recipients (default) or messages.
    pub counting: Counting,
    /// Envelope recipients one message may have; over it the message is refused.
    /// `None` = no cap. Default 100.
    pub max_recipients: Option<u32>,
    /// When failed deliveries turn the account to `bounce`. Default 24 h, 20, 0.10.
    pub bounce: BounceRule,
    /// Spam refusals that turn the account to `spam`: the `count`-th refusal within
    /// `period` trips it. `None` = never. Default `5/1h`.
    pub spam_refusals: Option<Limit>,
    /// How long a message may wait (held or retried) before it expires as an error.
    /// Default 72 h (SPEC §2).
    pub hold: Duration,
    /// Retry schedule. Default 2 min, ×2, cap 60 min, ±10 %.
    pub retry: Backoff,
    /// Queue cap for the whole state directory: messages waiting (queued, held, sending).
    /// Default 10 000.
    pub queue_max_messages: u64,
    /// Queue cap in bytes of waiting messages. Default 1 GiB.
    pub queue_max_bytes: u64,
    /// The most messages one account may have waiting (queued, held, sending): its share
    /// of the queue, so one account cannot fill the queue every account shares. `None`
    /// (embedded mode's default: one site) is no share. Not part of the stored text: it
    /// applies when a message is accepted.
    pub account_queue_max: Option<u64>,
    /// Free disk space to keep in the state directory's file system; mail that would
    /// go below it is refused (Postfix's `queue_minfree`). Default 100 MiB.
    pub disk_reserve_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            quota: Windows::one(Limit {
                count: 200,
                period: Duration::from_secs(3600),
            }),
            burst: Windows::one(Limit {
                count: 50,
                period: Duration::from_secs(60),
            }),
            counting: Counting::Recipients,
            max_recipients: Some(DEFAULT_MAX_RECIPIENTS),
            bounce: BounceRule::DEFAULT,
            spam_refusals: Some(Limit {
                count: 5,
                period: Duration::from_secs(3600),
            }),
            hold: Duration::from_secs(72 * 3600),
            retry: Backoff::DEFAULT,
            queue_max_messages: 10_000,
            queue_max_bytes: 1 << 30,
            account_queue_max: None,
            disk_reserve_bytes: 100 << 20,
        }
    }
}

impl Limits {
    /// No quota, burst or spam limit: everything else at its default.
    pub fn unlimited() -> Limits {
        Limits {
            quota: Windows::default(),
            burst: Windows::default(),
            spam_refusals: None,
            ..Limits::default()
        }
    }

    /// The longest window any sliding log of these limits looks back over (at least a
    /// day, so `sent today` style questions always have their rows).
    pub fn longest_window(&self) -> Duration {
        [
            self.quota.longest(),
            self.burst.longest(),
            self.spam_refusals.map(|l| l.period),
            Some(self.bounce.window),
            Some(Duration::from_secs(86_400)),
        ]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or_default()
    }
}

/// A limits text that does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitsError(pub String);

impl fmt::Display for LimitsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LimitsError {}

fn opt_limit(l: &Option<Limit>) -> String {
    l.map(|l| l.to_string()).unwrap_or_default()
}

/// Seconds as the shortest exact `Ns`/`Nm`/`Nh`/`Nd` spelling.
fn secs_text(d: Duration) -> String {
    let s = d.as_secs();
    for (u, name) in [(86_400, "d"), (3600, "h"), (60, "m")] {
        if s != 0 && s.is_multiple_of(u) {
            return format!("{}{name}", s / u);
        }
    }
    format!("{s}s")
}

/// Parses `90s`, `2m`, `72h`, `3d` (a bare number is seconds).
pub fn parse_duration(text: &str) -> Result<Duration, LimitsError> {
    let t = text.trim();
    let err = || {
        LimitsError(format!(
            "\"{text}\" is not a duration: write a whole number with s, m, h or d, e.g. 72h"
        ))
    };
    let (digits, unit) = match t.as_bytes().last() {
        Some(b's') => (&t[..t.len() - 1], 1),
        Some(b'm') => (&t[..t.len() - 1], 60),
        Some(b'h') => (&t[..t.len() - 1], 3600),
        Some(b'd') => (&t[..t.len() - 1], 86_400),
        Some(b'0'..=b'9') => (t, 1),
        _ => return Err(err()),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err());
    }
    let n: u64 = digits.parse().map_err(|_| err())?;
    n.checked_mul(unit).map(Duration::from_secs).ok_or_else(err)
}

impl fmt::Display for Limits {
    /// `quota=200/1h burst=50/1m count=recipients max_recipients=100 bounce=0.1/20/24h
    /// spam=5/1h hold=72h retry=2m/1h/10 queue_messages=10000 queue_bytes=1073741824
    /// disk_reserve=104857600` (an empty limit means unlimited).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "quota={} burst={} count={} max_recipients={} bounce={}/{}/{} spam={} hold={} \
             retry={}/{}/{} queue_messages={} queue_bytes={} disk_reserve={}",
            self.quota.to_string().replace(' ', ""),
            self.burst.to_string().replace(' ', ""),
            self.counting,
            self.max_recipients
                .map(|n| n.to_string())
                .unwrap_or_default(),
            self.bounce.max_ratio,
            self.bounce.min_outcomes,
            secs_text(self.bounce.window),
            opt_limit(&self.spam_refusals),
            secs_text(self.hold),
            secs_text(self.retry.first),
            secs_text(self.retry.cap),
            self.retry.jitter_percent,
            self.queue_max_messages,
            self.queue_max_bytes,
            self.disk_reserve_bytes,
        )
    }
}

impl FromStr for Limits {
    type Err = LimitsError;

    /// Reads `key=value` pairs separated by white space; keys left out keep their default.
    fn from_str(text: &str) -> Result<Limits, LimitsError> {
        let mut l = Limits::default();
        let num = |k: &str, v: &str| -> Result<u64, LimitsError> {
            v.parse()
                .map_err(|_| LimitsError(format!("{k}: \"{v}\" is not a whole number")))
        };
        let lim = |v: &str| parse_limit(v).map_err(|e| LimitsError(e.to_string()));
        let windows = |v: &str| parse_windows(v).map_err(|e| LimitsError(e.to_string()));
        for pair in text.split_whitespace() {
            let (k, v) = pair
                .split_once('=')
                .ok_or_else(|| LimitsError(format!("\"{pair}\" is not key=value")))?;
            match k {
                "quota" => l.quota = windows(v)?,
                "burst" => l.burst = windows(v)?,
                "spam" => l.spam_refusals = lim(v)?,
                "count" => l.counting = v.parse()?,
                "max_recipients" => l.max_recipients = parse_max_recipients(v)?,
                "hold" => l.hold = parse_duration(v)?,
                "bounce" => {
                    let parts: Vec<&str> = v.split('/').collect();
                    let [ratio, min, window] = parts[..] else {
                        return Err(LimitsError(format!(
                            "bounce: \"{v}\" is not RATIO/MIN/WINDOW, e.g. 0.1/20/24h"
                        )));
                    };
                    let ratio: f64 = ratio
                        .parse()
                        .ok()
                        .filter(|r: &f64| (0.0..=1.0).contains(r))
                        .ok_or_else(|| {
                            LimitsError(format!(
                                "bounce: ratio \"{ratio}\" is not a number from 0 to 1"
                            ))
                        })?;
                    l.bounce = BounceRule {
                        max_ratio: ratio,
                        min_outcomes: num("bounce", min)?.min(u32::MAX as u64) as u32,
                        window: parse_duration(window)?,
                    };
                }
                "retry" => {
                    let parts: Vec<&str> = v.split('/').collect();
                    let [first, cap, jitter] = parts[..] else {
                        return Err(LimitsError(format!(
                            "retry: \"{v}\" is not FIRST/CAP/JITTER_PERCENT, e.g. 2m/1h/10"
                        )));
                    };
                    l.retry = Backoff {
                        first: parse_duration(first)?,
                        cap: parse_duration(cap)?,
                        jitter_percent: num("retry", jitter)?.min(100) as u32,
                    };
                }
                "queue_messages" => l.queue_max_messages = num(k, v)?,
                "queue_bytes" => l.queue_max_bytes = num(k, v)?,
                "disk_reserve" => l.disk_reserve_bytes = num(k, v)?,
                other => return Err(LimitsError(format!("unknown limit \"{other}\""))),
            }
        }
        Ok(l)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_form_round_trips() {
        let d = Limits::default();
        let text = d.to_string();
        assert_eq!(
            text,
            "quota=200/1h burst=50/1m count=recipients max_recipients=100 bounce=0.1/20/1d \
             spam=5/1h hold=3d retry=2m/1h/10 queue_messages=10000 queue_bytes=1073741824 disk_reserve=104857600"
        );
        assert_eq!(text.parse::<Limits>().unwrap(), d);
        let u = Limits::unlimited();
        assert_eq!(u.to_string().parse::<Limits>().unwrap(), u);
        let custom: Limits = "quota=10/30s burst= hold=90s bounce=0.25/5/2h"
            .parse()
            .unwrap();
        assert_eq!(custom.quota.to_string(), "10/30s");
        assert!(custom.burst.is_empty());
        let multi: Limits = "quota=200/1h,1000/1d burst=50/1m,10/5s".parse().unwrap();
        assert_eq!(multi.quota.to_string(), "200/1h, 1000/1d");
        assert_eq!(multi.burst.to_string(), "10/5s, 50/1m");
        assert_eq!(multi.longest_window(), Duration::from_secs(86_400));
        assert_eq!(multi.to_string().parse::<Limits>().unwrap(), multi);
        assert_eq!(custom.hold, Duration::from_secs(90));
        assert_eq!(custom.bounce.min_outcomes, 5);
        assert_eq!(custom.to_string().parse::<Limits>().unwrap(), custom);
        let m: Limits = "count=messages max_recipients=".parse().unwrap();
        assert_eq!((m.counting, m.max_recipients), (Counting::Messages, None));
        assert_eq!(m.to_string().parse::<Limits>().unwrap(), m);
        assert_eq!(Counting::Recipients.weight(50), 50);
        assert_eq!(Counting::Recipients.weight(0), 1);
        assert_eq!(Counting::Messages.weight(50), 1);
    }

    #[test]
    fn bad_text_is_explained() {
        for (t, needle) in [
            ("quota=abc", "not a rate limit"),
            ("hold=3w", "not a duration"),
            ("nonsense", "not key=value"),
            ("colour=red", "unknown limit"),
            ("bounce=2/1/1h", "from 0 to 1"),
            ("bounce=0.1/1", "RATIO/MIN/WINDOW"),
            ("retry=1m", "FIRST/CAP"),
            ("queue_bytes=-1", "whole number"),
            ("count=people", "neither"),
            ("max_recipients=0", "at least 1"),
        ] {
            let e = t.parse::<Limits>().unwrap_err().to_string();
            assert!(e.contains(needle), "{t}: {e}");
        }
        assert_eq!("observe".parse::<Mode>().unwrap(), Mode::Observe);
        assert!("off".parse::<Mode>().is_err());
    }

    #[test]
    fn longest_window_covers_every_log() {
        let l: Limits = "quota=1000/2d".parse().unwrap();
        assert_eq!(l.longest_window(), Duration::from_secs(2 * 86_400));
        assert_eq!(
            Limits::unlimited().longest_window(),
            Duration::from_secs(86_400)
        );
    }
}

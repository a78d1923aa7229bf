//! retry: the backoff between delivery attempts (growing, capped, with jitter).

use std::time::Duration;

/// `base × 2^(failures-1)`, capped at `max`, then spread by ±`jitter` (a fraction).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RetrySchedule {
    pub base: Duration,
    pub max: Duration,
    /// 0.1 means ±10 %.
    pub jitter: f64,
}

impl Default for RetrySchedule {
    /// First retry after 2 min, doubling, capped at 1 h, ±10 % (research R1).
    fn default() -> Self {
        RetrySchedule {
            base: Duration::from_secs(120),
            max: Duration::from_secs(3600),
            jitter: 0.1,
        }
    }
}

impl RetrySchedule {
    /// The wait before the next attempt after `failures` failed attempts (1 for the
    /// first failure). `unit` is a random sample in [0, 1) supplied by the caller, so
    /// that this stays a pure function: 0.5 gives the undisturbed value, 0 the lowest
    /// (−jitter) and values near 1 the highest (+jitter). The cap applies before the
    /// jitter, so spread is kept at the cap too.
    pub fn delay(&self, failures: u32, unit: f64) -> Duration {
        let exponent = failures.saturating_sub(1).min(62);
        let grown = self
            .base
            .checked_mul(1u32 << exponent.min(31))
            .unwrap_or(self.max);
        let capped = grown.min(self.max);
        let unit = if unit.is_finite() {
            unit.clamp(0.0, 1.0)
        } else {
            0.5
        };
        let factor = 1.0 + self.jitter * (2.0 * unit - 1.0);
        capped.mul_f64(factor.max(0.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    #[test]
    fn doubles_then_caps() {
        let r = RetrySchedule::default();
        let plain: Vec<_> = (1..=8).map(|n| r.delay(n, 0.5)).collect();
        assert_eq!(
            plain,
            vec![
                s(120),
                s(240),
                s(480),
                s(960),
                s(1920),
                s(3600),
                s(3600),
                s(3600)
            ]
        );
        assert_eq!(r.delay(0, 0.5), s(120));
        assert_eq!(r.delay(u32::MAX, 0.5), s(3600));
    }

    #[test]
    fn jitter_bounds() {
        let r = RetrySchedule::default();
        assert_eq!(r.delay(1, 0.0), s(108));
        assert_eq!(r.delay(1, 1.0), s(132));
        assert_eq!(r.delay(6, 0.0), s(3240));
        assert_eq!(r.delay(1, f64::NAN), s(120));
        let none = RetrySchedule {
            jitter: 0.0,
            ..RetrySchedule::default()
        };
        assert_eq!(none.delay(2, 0.99), s(240));
    }
}

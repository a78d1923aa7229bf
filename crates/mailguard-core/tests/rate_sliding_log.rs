//! Property tests of the sliding log: whatever the arrival pattern, no rolling window ever
//! holds more than the limit, every refusal names a time at which the log admits again,
//! and nothing is refused while there is room.

use std::time::Duration;

use mailguard_core::rate::{Limit, SlidingLog, Timestamp};
use proptest::prelude::*;

/// Feeds arrivals (gaps in ms) to a limiter that records only admitted events, as the
/// store does, and returns the admitted timestamps.
fn run(limit: Limit, gaps: &[u32]) -> (Vec<Timestamp>, usize) {
    let mut log: Vec<Timestamp> = Vec::new();
    let mut now = Timestamp(1_700_000_000_000);
    let mut refused = 0;
    for gap in gaps {
        now = now.plus(Duration::from_millis(u64::from(*gap)));
        match limit.check(&log, now) {
            SlidingLog::Admit { used } => {
                assert_eq!(used, limit.used(&log, now));
                assert!(used < limit.count);
                log.push(now);
            }
            SlidingLog::Full { until } => {
                refused += 1;
                assert!(until > now);
                assert_eq!(limit.free(&log, now), 0, "refused while there was room");
                // The slot really frees at `until`, and not a millisecond earlier.
                assert!(matches!(limit.check(&log, until), SlidingLog::Admit { .. }));
                let before = Timestamp(until.0 - 1);
                if before > now {
                    assert!(matches!(limit.check(&log, before), SlidingLog::Full { .. }));
                }
            }
        }
    }
    (log, refused)
}

/// The most events in any half-open rolling window (t - period, t].
fn max_in_any_window(log: &[Timestamp], period: Duration) -> usize {
    let p = period.as_millis() as i64;
    let mut best = 0;
    let mut start = 0;
    for end in 0..log.len() {
        while log[end].0 - log[start].0 >= p {
            start += 1;
        }
        best = best.max(end - start + 1);
    }
    best
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn no_window_ever_admits_more_than_the_limit(
        count in 1u32..20,
        period_ms in 1u64..5_000,
        gaps in prop::collection::vec(0u32..400, 1..400),
    ) {
        let limit = Limit { count, period: Duration::from_millis(period_ms) };
        let (log, _) = run(limit, &gaps);
        prop_assert!(max_in_any_window(&log, limit.period) <= count as usize);
    }

    #[test]
    fn greedy_and_edge_bursts_are_exact(count in 1u32..50, bursts in 1usize..6) {
        // Everything arrives in tight clumps just before and after window edges.
        let limit = Limit { count, period: Duration::from_secs(60) };
        let mut gaps = Vec::new();
        for _ in 0..bursts {
            gaps.extend(std::iter::repeat_n(0u32, 3 * count as usize));
            gaps.push(59_999);
            gaps.extend(std::iter::repeat_n(0u32, 3 * count as usize));
            gaps.push(1);
        }
        let (log, _) = run(limit, &gaps);
        prop_assert!(max_in_any_window(&log, limit.period) <= count as usize);
        prop_assert!(log.len() >= count as usize, "the first window is used in full");
    }

    #[test]
    fn limits_print_and_parse_back(count in 1u32..1_000_000, secs in 1u64..(366 * 86_400)) {
        let l = Limit { count, period: Duration::from_secs(secs) };
        prop_assert_eq!(l.to_string().parse::<Limit>().unwrap(), l);
    }

    #[test]
    fn garbage_never_panics(s in "\\PC{0,20}") {
        let _ = s.parse::<Limit>();
    }
}

#[test]
fn a_queue_drains_at_exactly_the_limit() {
    // 10 messages against 3/1m, each released as soon as the log admits it.
    let limit: Limit = "3/1m".parse().unwrap();
    let mut log = Vec::new();
    let mut now = Timestamp::from_secs(0);
    for _ in 0..10 {
        loop {
            match limit.check(&log, now) {
                SlidingLog::Admit { .. } => break,
                SlidingLog::Full { until } => now = until,
            }
        }
        log.push(now);
    }
    let secs: Vec<i64> = log.iter().map(|t| t.0 / 1000).collect();
    assert_eq!(secs, [0, 0, 0, 60, 60, 60, 120, 120, 120, 180]);
}

//! Fuzzes the spam scorer end to end (MIME parse, HTML walk, ZIP listing, rules): no panic,
//! no overflow, and a verdict whose score is the sum of its hits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailguard_core::spam::{score, SpamContext, Thresholds};

fuzz_target!(|data: &[u8]| {
    // The first byte picks the hosting context, so those paths are fuzzed too.
    let (ctx, raw) = match data.split_first() {
        Some((&b, rest)) if b & 1 == 1 => (
            SpamContext {
                origin_file: Some(
                    String::from_utf8_lossy(&rest[..rest.len().min(64)]).into_owned(),
                ),
                from_eval: b & 2 == 2,
                origin_modified_recently: b & 4 == 4,
            },
            rest,
        ),
        Some((_, rest)) => (SpamContext::default(), rest),
        None => (SpamContext::default(), data),
    };
    let v = score(raw, &ctx, &Thresholds::default());
    assert!(v.score.is_finite() && v.score >= 0.0);
    let sum: f32 = v.hits.iter().map(|h| h.points).sum();
    assert!((sum - v.score).abs() < 0.02);
    let _ = v.summary();
});

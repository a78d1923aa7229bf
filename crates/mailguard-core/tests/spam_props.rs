//! Property tests for the spam scorer: any bytes in, a bounded verdict out, no panic.

use mailguard_core::spam::{score, Level, Rule, SpamContext, Thresholds};
use proptest::prelude::*;

fn check_bounded(raw: &[u8], ctx: &SpamContext) {
    let th = Thresholds::default();
    let v = score(raw, ctx, &th);
    assert!(v.score.is_finite() && v.score >= 0.0, "score {}", v.score);
    // One hit per rule at most, each with finite, non-negative points.
    assert!(v.hits.len() <= Rule::ALL.len());
    let mut seen = Vec::new();
    for h in &v.hits {
        assert!(h.points.is_finite() && h.points >= 0.0);
        assert!(!seen.contains(&h.rule), "rule {} twice", h.rule);
        seen.push(h.rule);
        assert!(h.reason.len() < 1024, "reason too long: {}", h.reason.len());
    }
    let sum: f32 = v.hits.iter().map(|h| h.points).sum();
    assert!(
        (sum - v.score).abs() < 0.02,
        "score {} != sum {}",
        v.score,
        sum
    );
    let expected = if v.score >= th.refuse {
        Level::Refuse
    } else if v.score >= th.suspicious {
        Level::Suspicious
    } else {
        Level::Ham
    };
    assert_eq!(v.level, expected);
    assert!(v.summary().len() < 4096);
}

/// Fragments that steer random input into the parser's interesting corners.
fn fragment() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"To: a@b.example\r\n".to_vec()),
        Just(b"Subject: FREE STUFF FOR YOU NOW\r\n".to_vec()),
        Just(b"From: x\r\n".to_vec()),
        Just(b"Content-Type: multipart/mixed; boundary=\"b\"\r\n".to_vec()),
        Just(b"Content-Type: text/html\r\n".to_vec()),
        Just(b"Content-Transfer-Encoding: base64\r\n".to_vec()),
        Just(b"Content-Disposition: attachment; filename=\"a.exe\"\r\n".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"--b\r\n".to_vec()),
        Just(b"--b--\r\n".to_vec()),
        Just(b"<a href=\"http://0x7f.1/\">https://x</a><font size=7 color=#fff>".to_vec()),
        Just(b"<td bgcolor=white style='color:rgba(1,2,3,0);font-size:99em'>".to_vec()),
        Just(b"PK\x03\x04\x14\x00\x01\x00\x08\x00".to_vec()),
        Just(b"PK\x05\x06\x00\x00\x00\x00\xff\xff\xff\xff".to_vec()),
        Just(b"=?utf-8?b?w6k=?= &nbsp;&#x10FFFF;&#99999999;".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..64),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(raw in proptest::collection::vec(any::<u8>(), 0..4096)) {
        check_bounded(&raw, &SpamContext::default());
    }

    #[test]
    fn structured_noise_never_panics(
        parts in proptest::collection::vec(fragment(), 0..64),
        origin in proptest::option::of(".{0,80}"),
        from_eval in any::<bool>(),
    ) {
        let raw: Vec<u8> = parts.concat();
        check_bounded(&raw, &SpamContext { origin_file: origin, from_eval, ..SpamContext::default() });
    }

    #[test]
    fn arbitrary_text_bodies_never_panic(subject in "\\PC{0,80}", body in "\\PC{0,2000}", html in any::<bool>()) {
        let ct = if html { "text/html" } else { "text/plain" };
        let raw = format!("To: a@b.example\r\nSubject: {subject}\r\nContent-Type: {ct}; charset=utf-8\r\n\r\n{body}");
        check_bounded(raw.as_bytes(), &SpamContext::default());
    }
}

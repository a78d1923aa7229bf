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

// ---- MIME damage never buys a refuse payload a pass ---------------------------------

const PAYLOAD: &str = "<html><body><p>Dear customer,</p><p>We detected unusual activity on your PayPal \
account. Your account has been limited until you verify your account. Failure to verify within 24 \
hours will close it.</p><p><a href=\"http://198.51.100.23/login/verify.php\">https://www.paypal.com/signin</a></p>\
<p>PayPal Security Team</p></body></html>";

fn b64_lines(data: &[u8]) -> Vec<String> {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        s.push(T[(n >> 18) as usize & 63] as char);
        s.push(T[(n >> 12) as usize & 63] as char);
        s.push(if c.len() > 1 {
            T[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        s.push(if c.len() > 2 {
            T[n as usize & 63] as char
        } else {
            '='
        });
    }
    s.as_bytes()
        .chunks(76)
        .map(|l| String::from_utf8(l.to_vec()).unwrap())
        .collect()
}

/// Damage a mail client reads past.
#[derive(Debug, Clone)]
enum Damage {
    DropClosingBoundary,
    BadBase64Char(usize, u8),
    LfLineEndings,
    DateZone(bool, bool),
    UpperCaseHeaders,
    TrailingJunk(Vec<u8>),
    DropPreamble,
    StrayBlankLines(usize),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        Just(Damage::DropClosingBoundary),
        (
            0usize..400,
            prop::sample::select(b"!*#%&~`^{}|\\:;,.<>?".to_vec())
        )
            .prop_map(|(p, c)| Damage::BadBase64Char(p, c)),
        Just(Damage::LfLineEndings),
        (any::<bool>(), any::<bool>()).prop_map(|(first, ut)| Damage::DateZone(first, ut)),
        Just(Damage::UpperCaseHeaders),
        proptest::collection::vec(any::<u8>(), 0..64).prop_map(Damage::TrailingJunk),
        Just(Damage::DropPreamble),
        (1usize..5).prop_map(Damage::StrayBlankLines),
    ]
}

fn damaged(ops: &[Damage]) -> Vec<u8> {
    let mut lines = b64_lines(PAYLOAD.as_bytes());
    let mut close = true;
    let mut lf = false;
    let mut date: Option<(bool, bool)> = None;
    let mut upper = false;
    let mut junk = Vec::new();
    let mut preamble = true;
    let mut blank = 0;
    for op in ops {
        match op {
            Damage::DropClosingBoundary => close = false,
            Damage::BadBase64Char(p, c) => {
                let k = p % lines.len();
                let at = p % (lines[k].len() + 1);
                lines[k].insert(at, *c as char);
            }
            Damage::LfLineEndings => lf = true,
            Damage::DateZone(first, ut) => date = Some((*first, *ut)),
            Damage::UpperCaseHeaders => upper = true,
            Damage::TrailingJunk(j) => junk = j.clone(),
            Damage::DropPreamble => preamble = false,
            Damage::StrayBlankLines(n) => blank = *n,
        }
    }
    let zone = |ut: bool| if ut { "UT" } else { "X" };
    let mut h = vec!["To: victim@example.com".to_string()];
    if let Some((true, ut)) = date {
        h.push(format!("Date: Mon, 6 May 2024 10:00:00 {}", zone(ut)));
    }
    h.push("Subject: Important information about your account".into());
    h.push("From: PayPal <service@paypal-support-center.example>".into());
    h.push("MIME-Version: 1.0".into());
    h.push("Content-Type: multipart/alternative; boundary=\"b7\"".into());
    if let Some((false, ut)) = date {
        h.push(format!("Date: Mon, 6 May 2024 10:00:00 {}", zone(ut)));
    }
    let mut body = Vec::new();
    if preamble {
        body.push("This is a multi-part message in MIME format.".to_string());
    }
    body.push("--b7".into());
    body.push("Content-Type: text/plain; charset=UTF-8".into());
    body.push(String::new());
    body.push("Please see the HTML version.".into());
    for _ in 0..blank {
        body.push(String::new());
    }
    body.push("--b7".into());
    let (ct, cte) = if upper {
        (
            "CONTENT-TYPE: TEXT/HTML; CHARSET=UTF-8",
            "CONTENT-TRANSFER-ENCODING: BASE64",
        )
    } else {
        (
            "Content-Type: text/html; charset=UTF-8",
            "Content-Transfer-Encoding: base64",
        )
    };
    body.push(ct.into());
    body.push(cte.into());
    body.push(String::new());
    body.extend(lines);
    if close {
        body.push("--b7--".into());
    }
    let nl = if lf { "\n" } else { "\r\n" };
    let mut out = (h.join(nl) + nl + nl + &body.join(nl) + nl).into_bytes();
    out.extend_from_slice(&junk);
    out
}

#[test]
fn the_undamaged_payload_refuses() {
    let v = score(
        &damaged(&[]),
        &SpamContext::default(),
        &Thresholds::default(),
    );
    assert_eq!(v.level, Level::Refuse, "{}", v.summary());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn mime_damage_never_lowers_a_refuse_payload_below_suspicious(
        ops in proptest::collection::vec(damage(), 0..6),
    ) {
        let raw = damaged(&ops);
        let v = score(&raw, &SpamContext::default(), &Thresholds::default());
        prop_assert!(v.level >= Level::Suspicious, "{:?}: {}", ops, v.summary());
    }
}

// ---- the mail-parser 0.11.9 date-zone bug, and that the scorer reads past it ---------

#[test]
fn mail_parser_date_zone_bug_is_real_and_worked_around() {
    use mail_parser::MessageParser;
    // Date last with a two-letter zone: the parser eats the blank line, so the body's first
    // line is read as a header and the body is lost.
    // (LF endings, as PHP scripts often write; with CRLF a one-letter zone does the same.)
    let last = b"To: a@b.example\nSubject: Hello\nDate: Mon, 6 May 2024 10:00:00 UT\n\nBODY LINE one\nsecond line\n";
    let m = MessageParser::default().parse(&last[..]).unwrap();
    let body = m.body_text(0).map(|b| b.to_string()).unwrap_or_default();
    assert!(
        !body.contains("BODY LINE one"),
        "mail-parser fixed? body {body:?}"
    );
    // Date first with a one-letter zone: the Subject after it is swallowed.
    let first = b"To: a@b.example\r\nDate: Mon, 6 May 2024 10:00:00 X\r\nSubject: Hello there\r\n\r\nbody\r\n";
    let m = MessageParser::default().parse(&first[..]).unwrap();
    assert_ne!(m.subject(), Some("Hello there"), "mail-parser fixed?");
    // The scorer repairs the zone first: the subject and body are read.
    let (_, e) =
        mailguard_core::spam::explain(first, &SpamContext::default(), &Thresholds::default());
    assert!(
        e.notes.iter().any(|n| n.contains("date zone 'X'")),
        "{:?}",
        e.notes
    );
    let v = score(
        b"To: a@b.example\r\nDate: Mon, 6 May 2024 10:00:00 X\r\nSubject: \r\n\r\nbody\r\n",
        &SpamContext::default(),
        &Thresholds::default(),
    );
    assert!(v.hit(Rule::MissingSubject).is_some(), "{}", v.summary());
    let v = score(last, &SpamContext::default(), &Thresholds::default());
    assert!(v.hit(Rule::MalformedDate).is_none(), "{}", v.summary());
    assert!(v.hit(Rule::EmptyBody).is_none(), "{}", v.summary());
}

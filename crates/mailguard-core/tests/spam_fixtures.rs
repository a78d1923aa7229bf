//! Golden tests for the spam scorer: every `tests/fixtures/spam/{ham,spam}/*.eml` names its
//! expected verdict on its first line, which is stripped before scoring:
//!
//! `X-Expect: LEVEL [rules=a,b] [eval] [origin=PATH TO END OF LINE]`
//!
//! The fixtures are written by `tests/fixtures/spam/make_fixtures.py` (ham, spam) and
//! `make_fixtures_11.py` (hacked, evasion, misfire, transactional; `recent` in X-Expect
//! sets `origin_modified_recently`).

use std::fs;
use std::path::{Path, PathBuf};

use mailguard_core::spam::{self, Level, Rule, SpamContext, Thresholds, Verdict};

struct Fixture {
    name: String,
    kind: &'static str,
    level: Level,
    rules: Vec<Rule>,
    ctx: SpamContext,
    message: Vec<u8>,
}

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/spam")
}

fn load(kind: &'static str) -> Vec<Fixture> {
    let mut out = Vec::new();
    let mut paths: Vec<PathBuf> = fs::read_dir(fixture_dir().join(kind))
        .expect("fixture dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    paths.sort();
    for path in paths {
        let raw = fs::read(&path).expect("read fixture");
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let nl = raw
            .iter()
            .position(|&c| c == b'\n')
            .unwrap_or_else(|| panic!("{name}: no first line"));
        let first = String::from_utf8_lossy(&raw[..nl]).trim_end().to_string();
        let spec = first
            .strip_prefix("X-Expect:")
            .unwrap_or_else(|| panic!("{name}: first line must be X-Expect"))
            .trim()
            .to_string();
        let (spec, origin) = match spec.split_once("origin=") {
            Some((head, origin)) => (head.to_string(), Some(origin.trim().to_string())),
            None => (spec, None),
        };
        let mut words = spec.split_whitespace();
        let level: Level = words
            .next()
            .unwrap_or_else(|| panic!("{name}: no level"))
            .parse()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut rules = Vec::new();
        let mut from_eval = false;
        let mut recent = false;
        for w in words {
            if let Some(list) = w.strip_prefix("rules=") {
                for r in list.split(',') {
                    rules.push(r.parse().unwrap_or_else(|e| panic!("{name}: {e}")));
                }
            } else if w == "eval" {
                from_eval = true;
            } else if w == "recent" {
                recent = true;
            } else {
                panic!("{name}: unknown X-Expect word '{w}'");
            }
        }
        let message = raw[nl + 1..].to_vec();
        // The expectation line must not be part of what is scored.
        assert!(
            message.starts_with(b"To: "),
            "{name}: message must start with To:"
        );
        out.push(Fixture {
            name,
            kind,
            level,
            rules,
            ctx: SpamContext {
                origin_file: origin,
                from_eval,
                origin_modified_recently: recent,
            },
            message,
        });
    }
    out
}

fn describe(v: &Verdict) -> String {
    v.hits
        .iter()
        .map(|h| {
            format!(
                "    {:<24} {:>4.1}  {}",
                h.rule.as_str(),
                h.points,
                h.reason
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn check(fixtures: &[Fixture], th: &Thresholds) -> (Vec<String>, Vec<(String, Verdict)>) {
    let mut failures = Vec::new();
    let mut verdicts = Vec::new();
    for f in fixtures {
        let v = spam::score(&f.message, &f.ctx, th);
        println!(
            "{}/{:<42} {:>5.2} {:<10} {}",
            f.kind,
            f.name,
            v.score,
            v.level.as_str(),
            v.hits
                .iter()
                .map(|h| h.rule.as_str())
                .collect::<Vec<_>>()
                .join(",")
        );
        if v.level != f.level {
            failures.push(format!(
                "{}: expected {}, got {} ({})\n{}",
                f.name,
                f.level,
                v.level,
                v.summary(),
                describe(&v)
            ));
        }
        for r in &f.rules {
            // Listed is enough: a group cap may leave a hit no points, and it is still reported.
            if v.hit(*r).is_none() {
                failures.push(format!(
                    "{}: expected rule {r} to fire; got {}\n{}",
                    f.name,
                    v.summary(),
                    describe(&v)
                ));
            }
        }
        verdicts.push((f.name.clone(), v));
    }
    (failures, verdicts)
}

#[test]
fn ham_fixtures_pass_with_room_to_spare() {
    let th = Thresholds::default();
    let ham = load("ham");
    assert!(ham.len() >= 20, "only {} ham fixtures", ham.len());
    let (failures, verdicts) = check(&ham, &th);
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    let (name, max) = verdicts
        .iter()
        .map(|(n, v)| (n, v.score))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap();
    println!(
        "ham: {} fixtures, max score {max:.2} ({name}); refuse at {:.1}",
        ham.len(),
        th.refuse
    );
    // Room to spare: ham stays below the suspicious level, not just below refuse.
    assert!(
        max < th.suspicious,
        "ham {name} scored {max}, at or over suspicious"
    );
}

#[test]
fn spam_fixtures_are_flagged_by_the_rules_they_name() {
    let th = Thresholds::default();
    let spam = load("spam");
    assert!(spam.len() >= 25, "only {} spam fixtures", spam.len());
    let (failures, verdicts) = check(&spam, &th);
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    for (name, v) in &verdicts {
        assert!(v.level >= Level::Suspicious, "{name} not flagged");
    }
    let (name, min) = verdicts
        .iter()
        .map(|(n, v)| (n, v.score))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap();
    println!("spam: {} fixtures, min score {min:.2} ({name})", spam.len());
}

#[test]
fn every_rule_has_a_spam_fixture() {
    let mut spam = load("spam");
    spam.extend(load("hacked"));
    spam.extend(load("evasion"));
    let named: Vec<Rule> = spam.iter().flat_map(|f| f.rules.iter().copied()).collect();
    let missing: Vec<&str> = Rule::ALL
        .iter()
        .filter(|r| !named.contains(r))
        .map(|r| r.as_str())
        .collect();
    assert!(
        missing.is_empty(),
        "rules without a spam fixture: {missing:?}"
    );
}

#[test]
fn expectation_header_would_change_nothing() {
    // Scoring with the X-Expect line left in must not flip any verdict: it is an ordinary
    // extra header. (The harness strips it anyway; this guards the fixtures' meaning.)
    let th = Thresholds::default();
    for kind in ["ham", "spam"] {
        for f in load(kind) {
            let raw = fs::read(fixture_dir().join(kind).join(&f.name)).unwrap();
            let with = spam::score(&raw, &f.ctx, &th);
            let without = spam::score(&f.message, &f.ctx, &th);
            assert_eq!(with.level, without.level, "{}", f.name);
        }
    }
}

/// Every evasion wraps one refuse payload; each must still refuse.
#[test]
fn evasions_still_refuse() {
    let th = Thresholds::default();
    let set = load("evasion");
    assert!(set.len() >= 15, "only {} evasion fixtures", set.len());
    let (failures, verdicts) = check(&set, &th);
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    for (name, v) in &verdicts {
        assert_eq!(v.level, Level::Refuse, "{name}: {}", v.summary());
    }
}

/// Honest mail the earlier rules misjudged, and realistic transactional mail: ham.
#[test]
fn misfires_and_transactional_mail_are_ham() {
    let th = Thresholds::default();
    for kind in ["misfire", "transactional"] {
        let set = load(kind);
        assert!(set.len() >= 8, "only {} {kind} fixtures", set.len());
        let (failures, verdicts) = check(&set, &th);
        assert!(failures.is_empty(), "{}", failures.join("\n\n"));
        for (name, v) in &verdicts {
            assert_eq!(v.level, Level::Ham, "{name}: {}", v.summary());
        }
    }
}

/// Hacked-site spam (pharma, prize, phishing, white-on-white, mismatched links): at least
/// 90 % flagged and 60 % refused by the guide rules alone.
#[test]
fn hacked_site_spam_rates() {
    let th = Thresholds::default();
    let set = load("hacked");
    assert!(set.len() >= 15, "only {} hacked fixtures", set.len());
    let (failures, verdicts) = check(&set, &th);
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    let flagged = verdicts
        .iter()
        .filter(|(_, v)| v.level >= Level::Suspicious)
        .count();
    let refused = verdicts
        .iter()
        .filter(|(_, v)| v.level == Level::Refuse)
        .count();
    println!(
        "hacked: {} fixtures, flagged {flagged} ({:.0}%), refused {refused} ({:.0}%)",
        set.len(),
        flagged as f64 * 100.0 / set.len() as f64,
        refused as f64 * 100.0 / set.len() as f64
    );
    assert!(
        flagged * 10 >= set.len() * 9,
        "flagged {flagged} of {}",
        set.len()
    );
    assert!(
        refused * 10 >= set.len() * 6,
        "refused {refused} of {}",
        set.len()
    );
}

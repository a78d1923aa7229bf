//! Against real engines: run by `tests/engine/run.sh`, which starts rspamd and spamd from
//! Debian on loopback and passes their addresses in MAILGUARD_RSPAMD_URL and
//! MAILGUARD_SPAMD_ADDRESS. Ignored in a plain `cargo test`.
//!
//! Besides the protocol checks (GTUBE is refused, an order mail is not), it runs the
//! scorer's golden fixtures through each engine and prints the flagged and refused rates,
//! which go into bench/RESULTS.md.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mailguard_engine::{Engine, EngineConfig, EngineVerdict};

const GTUBE: &str = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X";

fn engines() -> Vec<(&'static str, Engine)> {
    let mut out = Vec::new();
    if let Ok(url) = std::env::var("MAILGUARD_RSPAMD_URL") {
        let t: toml::Table = format!("[engine]\nkind='rspamd'\nurl='{url}'\ntimeout='20s'")
            .parse()
            .unwrap();
        out.push((
            "rspamd",
            Engine::new(EngineConfig::from_toml(&t).unwrap().unwrap()),
        ));
    }
    if let Ok(addr) = std::env::var("MAILGUARD_SPAMD_ADDRESS") {
        let t: toml::Table = format!("[engine]\nkind='spamd'\naddress='{addr}'\ntimeout='30s'")
            .parse()
            .unwrap();
        out.push((
            "spamd",
            Engine::new(EngineConfig::from_toml(&t).unwrap().unwrap()),
        ));
    }
    assert!(
        !out.is_empty(),
        "set MAILGUARD_RSPAMD_URL and/or MAILGUARD_SPAMD_ADDRESS (tests/engine/run.sh does)"
    );
    out
}

/// The address in the first `name:` header of the message, as the envelope would carry it.
fn header_addr(raw: &[u8], name: &str) -> Option<String> {
    let text = String::from_utf8_lossy(raw);
    let head = text.split("\r\n\r\n").next().unwrap_or_default();
    let line = head.lines().find(|l| {
        l.len() > name.len() && l[..name.len() + 1].eq_ignore_ascii_case(&format!("{name}:"))
    })?;
    let v = &line[name.len() + 1..];
    let v = v
        .rsplit_once('<')
        .map_or(v, |(_, a)| a.trim_end_matches(['>', ' ']));
    Some(v.trim().to_string()).filter(|a| a.contains('@'))
}

fn check(e: &Engine, raw: &[u8]) -> EngineVerdict {
    // The envelope a relay would give: From and To of the message (a mismatch is rspamd's
    // FORGED_SENDER / FORGED_RECIPIENTS, which says nothing about the content).
    let from = header_addr(raw, "From").unwrap_or_else(|| "shop@shop.example".into());
    let to = header_addr(raw, "To").unwrap_or_else(|| "customer@example.com".into());
    let mut last = None;
    // The first message may meet a worker still loading its rules.
    for _ in 0..3 {
        match e.check(raw, &from, std::slice::from_ref(&to)) {
            Ok(v) => return v,
            Err(err) => {
                last = Some(err);
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    }
    panic!("engine failed: {}", last.unwrap());
}

#[test]
#[ignore = "needs rspamd/spamd: tests/engine/run.sh"]
fn gtube_is_refused_and_an_order_mail_is_not() {
    let spam = format!(
        "To: customer@example.com\r\nSubject: test\r\nFrom: shop@shop.example\r\n\
         Message-ID: <gtube@shop.example>\r\nDate: Mon, 6 May 2024 10:00:00 +0000\r\n\r\n{GTUBE}\r\n"
    );
    let ham = "To: customer@example.com\r\nSubject: Your order #4821 has been received\r\n\
               From: Shop <shop@shop.example>\r\nMessage-ID: <4821@shop.example>\r\n\
               Date: Mon, 6 May 2024 10:00:00 +0000\r\nMIME-Version: 1.0\r\n\
               Content-Type: text/plain; charset=UTF-8\r\n\r\n\
               Hi Anna,\r\n\r\nthank you for your order #4821. We will let you know when it ships.\r\n\r\nShop\r\n";
    for (name, e) in engines() {
        let v = check(&e, spam.as_bytes());
        println!("{name} GTUBE: {v:?}");
        assert!(v.reject, "{name}: GTUBE not refused: {v:?}");
        assert!(v.score >= v.required);
        assert!(!v.symbols.is_empty());
        let v = check(&e, ham.as_bytes());
        println!("{name} order mail: {v:?}");
        assert!(!v.reject, "{name}: order mail refused: {v:?}");
    }
}

fn fixtures(kind: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../mailguard-core/tests/fixtures/spam")
        .join(kind);
    let mut paths: Vec<PathBuf> = match fs::read_dir(&dir) {
        Ok(d) => d
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .collect(),
        Err(_) => return Vec::new(),
    };
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let raw = fs::read(&p).unwrap();
            // Drop the harness's X-Expect line.
            let nl = raw.iter().position(|&c| c == b'\n').map_or(0, |n| n + 1);
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                raw[nl..].to_vec(),
            )
        })
        .collect()
}

#[test]
#[ignore = "needs rspamd/spamd: tests/engine/run.sh"]
fn fixture_rates() {
    for (name, e) in engines() {
        for kind in [
            "hacked",
            "spam",
            "evasion",
            "transactional",
            "misfire",
            "ham",
        ] {
            let set = fixtures(kind);
            if set.is_empty() {
                continue;
            }
            let (mut flagged, mut refused) = (0, 0);
            for (file, raw) in &set {
                let v = check(&e, raw);
                if v.flagged() {
                    flagged += 1;
                }
                if v.reject {
                    refused += 1;
                }
                println!(
                    "{name} {kind}/{file:<44} {:>6.2}/{:<5.1} {:<16} {}",
                    v.score,
                    v.required,
                    v.action,
                    v.symbols
                        .iter()
                        .take(6)
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(" ")
                );
            }
            println!(
                "RATE {name} {kind}: {} messages, flagged {flagged} ({:.0}%), refused {refused} ({:.0}%)",
                set.len(),
                flagged as f64 * 100.0 / set.len() as f64,
                refused as f64 * 100.0 / set.len() as f64
            );
            if matches!(kind, "transactional" | "misfire") {
                assert_eq!(refused, 0, "{name} refused honest {kind} mail");
            }
        }
    }
}

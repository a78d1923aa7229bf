//! `mailguard bounce`: one RFC 3464 delivery-status notification on standard input (as an
//! MTA pipe delivers it), matched to the message it is about and counted like a 5xx.
//!
//! Exit codes follow sendmail's sysexits, which MTAs act on: 0 done (also for a DSN that
//! matched nothing: it is kept under the state directory), 64 usage, 65 (EX_DATAERR) not a
//! DSN (kept too, and the MTA reports it), 75 (EX_TEMPFAIL) the state cannot be written
//! now (the MTA tries again later). Nothing read is ever dropped silently.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mailguard_core::dsn::{self, EnhancedStatus, RecipientStatus};
use mailguard_store::{now, BounceRecord, Failure, MessageId, Store, DEFAULT_STATE_DIR};

const EX_OK: i32 = 0;
const EX_USAGE: i32 = 64;
const EX_DATAERR: i32 = 65;
const EX_TEMPFAIL: i32 = 75;

/// The largest bounce read (a DSN returns at most the original's headers, usually).
const MAX_INPUT: u64 = 64 << 20;
/// How far back a bounce may find the message it is about (relays give up after ~5 days).
const MATCH_WINDOW: Duration = Duration::from_secs(14 * 86_400);

const USAGE: &str = "\
usage: mailguard bounce [--state-dir DIR] < message
  reads one delivery-status notification (RFC 3464) from standard input, e.g. from an
  MTA alias: bounces: \"|/usr/bin/mailguard bounce --state-dir /var/lib/mailguard\"
exit: 0 recorded or kept, 65 not a DSN (kept), 75 try again later";

pub fn run(args: &[String]) -> i32 {
    let mut state_dir = PathBuf::from(DEFAULT_STATE_DIR);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                return EX_OK;
            }
            "--state-dir" => match it.next() {
                Some(d) => state_dir = PathBuf::from(d),
                None => {
                    eprintln!("mailguard bounce: --state-dir needs a value\n{USAGE}");
                    return EX_USAGE;
                }
            },
            s if s.starts_with("--state-dir=") => {
                state_dir = PathBuf::from(&s["--state-dir=".len()..])
            }
            other => {
                eprintln!("mailguard bounce: unknown argument {other}\n{USAGE}");
                return EX_USAGE;
            }
        }
    }
    let mut raw = Vec::new();
    if let Err(e) = std::io::stdin().take(MAX_INPUT + 1).read_to_end(&mut raw) {
        eprintln!("mailguard bounce: cannot read standard input: {e}");
        return EX_TEMPFAIL;
    }
    if raw.len() as u64 > MAX_INPUT {
        eprintln!("mailguard bounce: the input is larger than {MAX_INPUT} bytes: not a delivery-status notification");
        return EX_DATAERR;
    }
    if raw.iter().all(u8::is_ascii_whitespace) {
        eprintln!("mailguard bounce: the input is empty: expected a delivery-status notification (RFC 3464)");
        return EX_DATAERR;
    }
    handle(&state_dir, &raw)
}

fn handle(state_dir: &Path, raw: &[u8]) -> i32 {
    let report = match dsn::parse(raw) {
        Ok(r) => r,
        Err(e) => {
            let kept = keep(state_dir, "unparseable", raw);
            eprintln!("mailguard bounce: {e}{}", kept_text(&kept));
            return EX_DATAERR;
        }
    };
    let failed: Vec<&RecipientStatus> = report.failed().collect();
    if failed.is_empty() {
        let actions: Vec<&str> = report
            .recipients
            .iter()
            .map(|r| r.action.as_str())
            .collect();
        println!(
            "mailguard bounce: no failed recipient (actions: {}): nothing to count",
            actions.join(", ")
        );
        return EX_OK;
    }
    let mut store = match Store::open(state_dir) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("mailguard bounce: {e}");
            return EX_TEMPFAIL;
        }
    };
    let id: Option<MessageId> = report.message_id().and_then(|s| s.parse().ok());
    let t = now();
    let mut unmatched = Vec::new();
    for r in failed {
        let mut candidates = vec![r.final_recipient.as_str()];
        if let Some(o) = &r.original_recipient {
            candidates.push(o.as_str());
        }
        let found = match store.match_bounce(id, &candidates, t.minus(MATCH_WINDOW)) {
            Ok(f) => f,
            Err(e) => return store_failure(state_dir, raw, &e),
        };
        let Some(m) = found else {
            unmatched.push(r.final_recipient.clone());
            continue;
        };
        let failure = failure_of(r, report.reporting_mta.as_deref());
        match store.record_bounce(m.id, &failure, t) {
            Ok(BounceRecord::Counted { trip }) => {
                println!(
                    "mailguard bounce: message {} (account {}, matched by {}): <{}> {} recorded",
                    m.id,
                    m.account,
                    match m.by {
                        mailguard_store::MatchedBy::Id => "id",
                        mailguard_store::MatchedBy::Recipient => "recipient",
                    },
                    failure.recipient,
                    failure.enhanced.as_deref().unwrap_or("")
                );
                if let Some(trip) = trip {
                    println!(
                        "mailguard bounce: account {}: {} -> {} ({})",
                        m.account,
                        trip.transition.from.as_str(),
                        trip.transition.to.as_str(),
                        trip.detail
                    );
                }
            }
            Ok(BounceRecord::AlreadyCounted) => println!(
                "mailguard bounce: message {}: <{}> was already counted",
                m.id, failure.recipient
            ),
            Err(e) => return store_failure(state_dir, raw, &e),
        }
    }
    if !unmatched.is_empty() {
        let kept = keep(state_dir, "unmatched", raw);
        eprintln!(
            "mailguard bounce: no sent message matches the failed recipient(s) {}{}",
            unmatched.join(", "),
            kept_text(&kept)
        );
        if kept.is_err() {
            // Not recorded anywhere: let the MTA keep it and try again.
            return EX_TEMPFAIL;
        }
    }
    EX_OK
}

fn store_failure(state_dir: &Path, raw: &[u8], e: &mailguard_store::StoreError) -> i32 {
    let kept = keep(state_dir, "failed", raw);
    eprintln!("mailguard bounce: {e}{}", kept_text(&kept));
    EX_TEMPFAIL
}

/// The error log entry of one failed recipient: the diagnostic's code and enhanced
/// status (more precise than `Status` when both exist), and its text.
fn failure_of(r: &RecipientStatus, reporting_mta: Option<&str>) -> Failure {
    let code = r.smtp_code();
    let enhanced = r.diagnostic_status().unwrap_or(r.status);
    let mut text = match r.diagnostic.as_deref() {
        Some(d) => {
            let mut rest = d;
            if code.is_some() {
                rest = rest[3..].trim_start_matches(['-', ' ']);
            }
            if let Some((_, after)) = EnhancedStatus::parse_prefix(rest) {
                rest = after;
            }
            rest.trim().to_owned()
        }
        None => format!("delivery failed (status {})", r.status),
    };
    text.push_str(&format!(
        " [bounce from {}]",
        reporting_mta.unwrap_or("an unnamed MTA")
    ));
    Failure {
        recipient: r.final_recipient.clone(),
        code,
        enhanced: Some(enhanced.to_string()),
        text,
    }
}

/// Keeps the input under `<state dir>/bounces/<what>/`, written and fsynced before the
/// exit status says anything.
fn keep(state_dir: &Path, what: &str, raw: &[u8]) -> Result<PathBuf, String> {
    let dir = state_dir.join("bounces").join(what);
    fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let t = now();
    for n in 0..1000 {
        let path = dir.join(format!("{}-{}-{n}.eml", t.0, std::process::id()));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path);
        let mut file = match file {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(format!("cannot create {}: {e}", path.display())),
        };
        file.write_all(raw)
            .and_then(|_| file.sync_all())
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        if let Ok(d) = File::open(&dir) {
            let _ = d.sync_all();
        }
        return Ok(path);
    }
    Err(format!("no free file name in {}", dir.display()))
}

fn kept_text(kept: &Result<PathBuf, String>) -> String {
    match kept {
        Ok(p) => format!("; kept in {}", p.display()),
        Err(e) => format!("; and it could not be kept: {e}"),
    }
}

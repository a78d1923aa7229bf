//! The operator's account commands: status, block, unblock, purge, history, errors,
//! transitions, report-to, queue list/show/delete and quarantine list/show/release/delete,
//! all on one state directory.
//!
//! Each takes `--state-dir DIR` (default `/var/lib/mailguard`) and, where it concerns one
//! account, `--account NAME`. Output is for people; `status --json` is for scripts.

use std::io::Write;

use crate::args::{Arg, Args};

use mailguard_store::{now, MessageId, Store, StoreError, DEFAULT_STATE_DIR};

/// The commands this module answers.
pub const COMMANDS: [&str; 12] = [
    "integrity",
    "status",
    "block",
    "unblock",
    "purge",
    "history",
    "errors",
    "transitions",
    "report-to",
    "queue",
    "quarantine",
    "track",
];

const USAGE: &str = "\
usage:
  mailguard status      --account NAME [--json]     [--state-dir DIR]
  mailguard block       --account NAME [--actor WHO] [--state-dir DIR]
  mailguard unblock     --account NAME [--actor WHO] [--state-dir DIR]
  mailguard purge       --account NAME [--actor WHO] [--state-dir DIR]
  mailguard history     --account NAME [--days N]    [--state-dir DIR]
  mailguard errors      --account NAME [--limit N] [--offset N] [--state-dir DIR]
  mailguard transitions --account NAME               [--state-dir DIR]
  mailguard report-to   --account NAME (ADDRESS | --clear) [--state-dir DIR]
  mailguard queue list   [--account NAME]            [--state-dir DIR]
  mailguard queue show   ID [--raw]                  [--state-dir DIR]
  mailguard queue delete ID                          [--state-dir DIR]
  mailguard quarantine list [--account NAME] [--json] [--state-dir DIR]
  mailguard quarantine show ID [--raw] [--json]    [--state-dir DIR]
  mailguard quarantine release ID... [--actor WHO] [--state-dir DIR]
  mailguard quarantine delete  ID... [--actor WHO] [--state-dir DIR]
  mailguard track (--recipient ADDR | --message-id ID | --since 2h) [--account NAME]
                  [--limit N] [--json] [--state-dir DIR]
  mailguard integrity                                [--state-dir DIR]
(the default state directory is /var/lib/mailguard)";

/// Runs one command; returns the process exit code (0 ok, 1 failed, 2 usage).
pub fn run(cmd: &str, args: &[String]) -> i32 {
    let out = std::io::stdout();
    let mut out = out.lock();
    match run_to(cmd, args, &mut out) {
        Ok(()) => 0,
        Err(Fail::Usage(msg)) => {
            eprintln!("mailguard {cmd}: {msg}\n{USAGE}");
            2
        }
        Err(Fail::Store(e)) => {
            eprintln!("mailguard {cmd}: {e}");
            1
        }
        Err(Fail::Io(e)) => {
            eprintln!("mailguard {cmd}: {e}");
            1
        }
    }
}

#[derive(Debug)]
enum Fail {
    Usage(String),
    Store(StoreError),
    Io(std::io::Error),
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Fail {
        Fail::Store(e)
    }
}

impl From<std::io::Error> for Fail {
    fn from(e: std::io::Error) -> Fail {
        Fail::Io(e)
    }
}

/// Parsed options: `--key value` pairs, `--flag`s and positional words.
struct Opts {
    state_dir: String,
    account: Option<String>,
    actor: Option<String>,
    flags: Vec<String>,
    values: Vec<(String, String)>,
    words: Vec<String>,
}

const VALUE_OPTS: [&str; 10] = [
    "--recipient",
    "--message-id",
    "--since",
    "--state-dir",
    "--account",
    "--actor",
    "--days",
    "--limit",
    "--offset",
    "--format",
];
const FLAG_OPTS: [&str; 3] = ["--json", "--raw", "--clear"];

fn parse(args: &[String]) -> Result<Opts, Fail> {
    let mut o = Opts {
        state_dir: DEFAULT_STATE_DIR.to_owned(),
        account: None,
        actor: None,
        flags: Vec::new(),
        values: Vec::new(),
        words: Vec::new(),
    };
    let mut args = Args::new(args);
    while let Some(a) = args.next_arg() {
        let key = match a {
            Arg::Opt(k) => k,
            Arg::Word(w) => {
                o.words.push(w.to_owned());
                continue;
            }
        };
        if VALUE_OPTS.contains(&key) {
            let v = args.value().map_err(Fail::Usage)?;
            match key {
                "--state-dir" => o.state_dir = v,
                "--account" => o.account = Some(v),
                "--actor" => o.actor = Some(v),
                _ => o.values.push((key.to_owned(), v)),
            }
        } else if FLAG_OPTS.contains(&key) {
            o.flags.push(key.to_owned());
        } else {
            return Err(Fail::Usage(format!("unknown option {key}")));
        }
    }
    Ok(o)
}

impl Opts {
    fn account(&self) -> Result<&str, Fail> {
        match self.account.as_deref() {
            Some(a) if !a.is_empty() => Ok(a),
            _ => Err(Fail::Usage("--account NAME is required".into())),
        }
    }

    fn flag(&self, f: &str) -> bool {
        self.flags.iter().any(|x| x == f)
    }

    fn number(&self, key: &str, default: u32) -> Result<u32, Fail> {
        match self.values.iter().rev().find(|(k, _)| k == key) {
            None => Ok(default),
            Some((_, v)) => v
                .parse()
                .map_err(|_| Fail::Usage(format!("{key} wants a whole number, not \"{v}\""))),
        }
    }

    /// Who the transition record names: `--actor`, else the invoking user.
    fn actor(&self) -> String {
        self.actor
            .clone()
            .or_else(|| std::env::var("SUDO_USER").ok())
            .or_else(|| std::env::var("USER").ok())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| format!("uid{}", nix_uid()))
    }

    fn open(&self) -> Result<Store, Fail> {
        Ok(Store::open(&self.state_dir)?)
    }
}

fn nix_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    // The owner of /proc/self is the real user of this process.
    std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(u32::MAX)
}

fn run_to(cmd: &str, args: &[String], out: &mut dyn Write) -> Result<(), Fail> {
    let o = parse(args)?;
    let t = now();
    match cmd {
        "integrity" => {
            let report = o.open()?.check_integrity()?;
            writeln!(
                out,
                "{} accounts, {} messages, {} ledger rows",
                report.accounts, report.messages, report.ledger_rows
            )?;
            for p in &report.problems {
                writeln!(out, "problem: {p}")?;
            }
            if !report.is_ok() {
                return Err(Fail::Io(std::io::Error::other(format!(
                    "{} problem(s) found",
                    report.problems.len()
                ))));
            }
            writeln!(
                out,
                "ok: SQLite integrity_check passed and every counter equals its ledger"
            )?;
        }
        "status" => {
            let account = o.account()?;
            let s = o.open()?.status_snapshot(account, t)?;
            if o.flag("--json") {
                writeln!(
                    out,
                    "{}",
                    serde_json::to_string_pretty(&s.to_json()).unwrap_or_default()
                )?;
            } else {
                let colour = s.status.colour();
                writeln!(out, "account      {}", s.account)?;
                writeln!(
                    out,
                    "status       {} ({colour}){}",
                    s.status,
                    s.since.map(|t| format!(" since {t}")).unwrap_or_default()
                )?;
                writeln!(
                    out,
                    "sent         {} today, {} in total",
                    s.sent_today, s.sent_total
                )?;
                writeln!(
                    out,
                    "errors       {} today, {} in total",
                    s.errors_today, s.errors_total
                )?;
                writeln!(out, "refused      {} in total", s.refused_total)?;
                writeln!(
                    out,
                    "queue        {} queued, {} held, {} quarantined",
                    s.queued, s.held, s.quarantined
                )?;
                writeln!(
                    out,
                    "limits       {}",
                    if s.limits.is_empty() {
                        "(none recorded yet)"
                    } else {
                        &s.limits
                    }
                )?;
                for w in &s.windows {
                    writeln!(
                        out,
                        "{:<12} {}: {} used, {} left{}",
                        w.kind,
                        w.limit,
                        w.used,
                        w.remaining,
                        w.next_free
                            .map(|t| format!(", next slot frees at {t}"))
                            .unwrap_or_default()
                    )?;
                }
                writeln!(
                    out,
                    "mode         {}",
                    if s.mode.is_empty() {
                        "(none recorded yet)"
                    } else {
                        &s.mode
                    }
                )?;
                writeln!(
                    out,
                    "report to    {}",
                    s.report_to.as_deref().unwrap_or("(not set)")
                )?;
            }
        }
        "block" | "unblock" | "purge" => {
            let account = o.account()?;
            let actor = o.actor();
            let mut store = o.open()?;
            let c = match cmd {
                "block" => store.block(account, &actor, t)?,
                "unblock" => store.unblock(account, &actor, t)?,
                _ => store.purge(account, &actor, t)?,
            };
            let what = match cmd {
                "block" => "held",
                "unblock" => "released for delivery",
                _ => "deleted",
            };
            writeln!(
                out,
                "{account}: {} -> {} ({} messages {what})",
                c.from, c.to, c.messages
            )?;
        }
        "history" => {
            let account = o.account()?;
            let days = o.number("--days", 14)?.clamp(1, 3660);
            let rows = o.open()?.history(account, days, t)?;
            writeln!(
                out,
                "{:<10}  {:>8}  {:>8}  {:>8}  {:>8}",
                "day", "sent", "errors", "refused", "held"
            )?;
            for d in rows {
                writeln!(
                    out,
                    "{:<10}  {:>8}  {:>8}  {:>8}  {:>8}",
                    d.day.to_string(),
                    d.sent,
                    d.errors,
                    d.refused,
                    d.held
                )?;
            }
        }
        "errors" => {
            let account = o.account()?;
            let rows =
                o.open()?
                    .errors(account, o.number("--limit", 50)?, o.number("--offset", 0)?)?;
            if rows.is_empty() {
                writeln!(out, "{account}: no errors")?;
            }
            for e in rows {
                let code = [e.code.map(|c| c.to_string()), e.enhanced.clone()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" ");
                writeln!(
                    out,
                    "{}  {}  {}  {}",
                    e.time,
                    e.recipient,
                    if code.is_empty() { "-" } else { &code },
                    e.text
                )?;
                writeln!(
                    out,
                    "    message {}  from {}",
                    e.message_id
                        .map(|m| m.to_string())
                        .unwrap_or_else(|| "-".into()),
                    e.origin
                )?;
            }
        }
        "transitions" => {
            let account = o.account()?;
            let rows = o.open()?.transitions(account)?;
            if rows.is_empty() {
                writeln!(out, "{account}: no status changes recorded")?;
            }
            for r in rows {
                writeln!(
                    out,
                    "{}  {} -> {}  {}  by {}{}{}",
                    r.time,
                    r.from,
                    r.to,
                    r.reason,
                    r.actor,
                    if r.applied { "" } else { "  (observed only)" },
                    if r.detail.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", r.detail)
                    }
                )?;
            }
        }
        "report-to" => {
            let account = o.account()?;
            let address = match (o.words.first(), o.flag("--clear")) {
                (Some(a), false) => Some(a.as_str()),
                (None, true) => None,
                _ => return Err(Fail::Usage("give one ADDRESS or --clear".into())),
            };
            o.open()?.set_report_to(account, address, t)?;
            writeln!(
                out,
                "{account}: reports go to {}",
                address.unwrap_or("nobody")
            )?;
        }
        "queue" => queue(&o, out)?,
        "quarantine" => quarantine(&o, out)?,
        "track" => track(&o, out)?,
        other => return Err(Fail::Usage(format!("unknown command \"{other}\""))),
    }
    Ok(())
}

fn queue(o: &Opts, out: &mut dyn Write) -> Result<(), Fail> {
    let sub = o.words.first().map(String::as_str);
    let id = || -> Result<MessageId, Fail> {
        o.words
            .get(1)
            .ok_or_else(|| Fail::Usage("a message ID is required".into()))?
            .parse()
            .map_err(Fail::Usage)
    };
    match sub {
        Some("list") | None => {
            let rows = o.open()?.queue_list(o.account.as_deref())?;
            if rows.is_empty() {
                writeln!(out, "the queue is empty")?;
                return Ok(());
            }
            writeln!(
                out,
                "{:>8}  {:<14}  {:<12}  {:>8}  {:>3}  {:<20}  {:<30}  subject",
                "id", "account", "state", "bytes", "try", "next attempt", "recipients"
            )?;
            for e in rows {
                writeln!(
                    out,
                    "{:>8}  {:<14}  {:<12}  {:>8}  {:>3}  {:<20}  {:<30}  {}",
                    e.id.to_string(),
                    e.account,
                    e.state.as_str(),
                    e.size,
                    e.attempts,
                    e.next_attempt
                        .map(|t| t.to_string())
                        .unwrap_or_else(|| "-".into()),
                    e.recipients.join(","),
                    e.subject
                )?;
            }
        }
        Some("show") => {
            // The id first: a usage error must not depend on the state directory.
            let id = id()?;
            let m = o.open()?.queue_show(id)?;
            if o.flag("--raw") {
                out.write_all(m.raw.as_deref().unwrap_or_default())?;
                return Ok(());
            }
            let e = &m.entry;
            writeln!(out, "message      {}", e.id)?;
            writeln!(out, "account      {}", e.account)?;
            writeln!(out, "state        {}", e.state)?;
            writeln!(out, "from         {}", e.envelope_from)?;
            writeln!(out, "to           {}", e.recipients.join(", "))?;
            writeln!(out, "subject      {}", e.subject)?;
            writeln!(out, "size         {} bytes", e.size)?;
            writeln!(out, "created      {}", e.created)?;
            writeln!(out, "expires      {}", e.expires)?;
            writeln!(out, "attempts     {}", e.attempts)?;
            if let Some(n) = e.next_attempt {
                writeln!(out, "next attempt {n}")?;
            }
            if let Some(err) = &e.last_error {
                writeln!(out, "last error   {err}")?;
            }
            writeln!(out, "origin       {}", m.origin)?;
            writeln!(out, "verdict      {}", m.verdict)?;
            if let Some(s) = &m.spam {
                writeln!(
                    out,
                    "spam         score {} ({})",
                    s.score,
                    s.rules.join(", ")
                )?;
            }
            let body = match (&m.raw, m.checksum_ok) {
                (None, _) => "dropped after delivery",
                (Some(_), true) => "stored, checksum ok",
                (Some(_), false) => "stored, CHECKSUM MISMATCH (quarantined: never sent)",
            };
            writeln!(out, "body         {body}")?;
        }
        Some("delete") => {
            let id = id()?;
            let e = o.open()?.queue_delete(id)?;
            writeln!(
                out,
                "deleted message {} ({}, {}, {})",
                e.id, e.account, e.state, e.subject
            )?;
        }
        Some(other) => return Err(Fail::Usage(format!("unknown queue command \"{other}\""))),
    }
    Ok(())
}

/// `mailguard track`: each matching message's path (accepted, every attempt with the
/// relay's reply, sent / failed / expired, bounces), with its origin.
fn track(o: &Opts, out: &mut dyn Write) -> Result<(), Fail> {
    let value = |k: &str| {
        o.values
            .iter()
            .rev()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    let since = match value("--since") {
        None => None,
        Some(v) => {
            let d = mailguard_core::limits::parse_duration(&v).map_err(|e| {
                Fail::Usage(format!(
                    "--since {v}: {e} (a duration back from now: 30m, 2h, 7d)"
                ))
            })?;
            Some(now().minus(d))
        }
    };
    let q = mailguard_store::TrackQuery {
        recipient: value("--recipient"),
        message_id: value("--message-id"),
        since,
        account: o.account.clone(),
    };
    if q.recipient.is_none() && q.message_id.is_none() && q.since.is_none() {
        return Err(Fail::Usage(
            "give --recipient ADDR, --message-id ID or --since DURATION".into(),
        ));
    }
    let found = o
        .open()?
        .track(&q, o.number("--limit", 50)?.clamp(1, 10_000))?;
    if o.flag("--json") {
        let v: Vec<_> = found.iter().map(|t| t.to_json()).collect();
        writeln!(out, "{}", serde_json::Value::Array(v))?;
        return Ok(());
    }
    if found.is_empty() {
        writeln!(out, "no message matches")?;
    }
    for t in found {
        writeln!(
            out,
            "message {}  {}  {}  from {} to {}  \"{}\"{}",
            t.id,
            t.account,
            t.state,
            t.envelope_from,
            t.recipients.join(", "),
            t.subject,
            t.message_id
                .as_deref()
                .map(|m| format!("  <{m}>"))
                .unwrap_or_default()
        )?;
        writeln!(out, "  origin {}", t.origin)?;
        for s in &t.steps {
            writeln!(out, "  {}  {:<12}  {}", s.time, s.what, s.detail)?;
        }
    }
    Ok(())
}

/// `mailguard quarantine list|show|release|delete`: spam kept for review. Release and
/// delete take several IDs (a bulk action); each is done and reported on its own, and the
/// command fails (exit 1) if any of them failed.
fn quarantine(o: &Opts, out: &mut dyn Write) -> Result<(), Fail> {
    let ids = || -> Result<Vec<MessageId>, Fail> {
        let ids: Vec<MessageId> = o.words[1..]
            .iter()
            .map(|w| w.parse().map_err(Fail::Usage))
            .collect::<Result<_, _>>()?;
        if ids.is_empty() {
            return Err(Fail::Usage("at least one message ID is required".into()));
        }
        Ok(ids)
    };
    match o.words.first().map(String::as_str) {
        Some("list") | None => {
            let rows = o.open()?.quarantine_list(o.account.as_deref(), 10_000)?;
            if o.flag("--json") {
                let v: Vec<_> = rows.iter().map(|e| e.to_json()).collect();
                writeln!(out, "{}", serde_json::Value::Array(v))?;
                return Ok(());
            }
            if rows.is_empty() {
                writeln!(out, "the quarantine is empty")?;
                return Ok(());
            }
            writeln!(
                out,
                "{:>8}  {:<14}  {:<20}  {:>8}  {:<28}  {:<30}  subject",
                "id", "account", "refused", "bytes", "verdict", "recipients"
            )?;
            for e in rows {
                let score = e
                    .spam
                    .as_ref()
                    .map(|s| format!("score {} ({})", s.score, s.rules.join(",")))
                    .unwrap_or_else(|| e.verdict.clone());
                writeln!(
                    out,
                    "{:>8}  {:<14}  {:<20}  {:>8}  {:<28}  {:<30}  {}",
                    e.id.to_string(),
                    e.account,
                    e.created.to_string(),
                    e.size,
                    score,
                    e.recipients.join(","),
                    e.subject
                )?;
            }
        }
        Some("show") => {
            let id = *ids()?.first().expect("one ID at least");
            let (e, raw) = o.open()?.quarantine_show(id)?;
            if o.flag("--raw") {
                out.write_all(raw.as_deref().unwrap_or_default())?;
                return Ok(());
            }
            if o.flag("--json") {
                writeln!(out, "{}", e.to_json())?;
                return Ok(());
            }
            writeln!(out, "message      {}", e.id)?;
            writeln!(out, "account      {}", e.account)?;
            writeln!(out, "refused      {}", e.created)?;
            writeln!(out, "from         {}", e.envelope_from)?;
            writeln!(out, "to           {}", e.recipients.join(", "))?;
            writeln!(out, "subject      {}", e.subject)?;
            writeln!(out, "size         {} bytes", e.size)?;
            writeln!(out, "origin       {}", e.origin)?;
            writeln!(out, "verdict      {}", e.verdict)?;
            if let Some(s) = &e.spam {
                writeln!(
                    out,
                    "spam         score {} ({})",
                    s.score,
                    s.rules.join(", ")
                )?;
            }
            writeln!(
                out,
                "body         {}",
                if e.kept {
                    "kept (--raw prints it)"
                } else {
                    "not kept (disk reserve or queue cap)"
                }
            )?;
        }
        Some(sub @ ("release" | "delete")) => {
            let ids = ids()?;
            // As the transitions name an operator action.
            let actor = format!("operator:{}", o.actor());
            let mut store = o.open()?;
            let mut failed = None;
            for id in ids {
                let r = if sub == "release" {
                    store.quarantine_release(id, &actor, now())
                } else {
                    store.quarantine_delete(id, &actor, now())
                };
                match r {
                    Ok(e) => writeln!(
                        out,
                        "{} message {} ({}, {})",
                        if sub == "release" {
                            "released (queued for delivery)"
                        } else {
                            "deleted"
                        },
                        e.id,
                        e.account,
                        e.subject
                    )?,
                    Err(err) => {
                        writeln!(out, "message {id}: not {sub}d: {err}")?;
                        failed = Some(err);
                    }
                }
            }
            if let Some(err) = failed {
                return Err(Fail::Store(err));
            }
        }
        Some(other) => {
            return Err(Fail::Usage(format!(
                "unknown quarantine command \"{other}\""
            )))
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mailguard_store::{Limits, Mode, Origin, Submission};

    fn call(cmd: &str, args: &[&str]) -> Result<String, Fail> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let mut out = Vec::new();
        run_to(cmd, &args, &mut out)?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn track_follows_a_message_through_a_retry() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("state");
        let d = dir.to_str().unwrap();
        {
            let mut store = Store::open(&dir).unwrap();
            let l: Limits = "quota= burst=".parse().unwrap();
            let rcpt = vec!["a@example.net".to_string()];
            let o = Origin {
                file: Some("/var/www/form.php".into()),
                line: Some(7),
                ..Origin::default()
            };
            let raw = b"To: a@example.net\r\nSubject: Hi\r\nMessage-ID: <m1@x>\r\n\r\nbody\r\n";
            let sub = Submission {
                raw,
                envelope_from: "f@example.org",
                recipients: &rcpt,
                origin: &o,
                spam: None,
            };
            let id = store
                .submit("site1", &l, sub, now(), Mode::Enforce)
                .unwrap()
                .id
                .unwrap();
            let temp = mailguard_store::Outcome::TempFail {
                code: Some(421),
                enhanced: None,
                text: "busy".into(),
            };
            store.record_delivery(id, &temp.into(), now()).unwrap();
        }
        let out = call("track", &["--recipient", "a@example.net", "--state-dir", d]).unwrap();
        assert!(
            out.contains("message 1  site1  queued") && out.contains("<m1@x>"),
            "{out}"
        );
        assert!(out.contains("origin /var/www/form.php:7"), "{out}");
        assert!(
            out.contains("accepted") && out.contains("retry         421 busy"),
            "{out}"
        );
        let j: serde_json::Value = serde_json::from_str(
            &call(
                "track",
                &["--message-id", "m1@x", "--json", "--state-dir", d],
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(j[0]["steps"][1]["what"], "retry");
        let none = call(
            "track",
            &["--since", "1h", "--account", "other", "--state-dir", d],
        )
        .unwrap();
        assert_eq!(none, "no message matches\n");
        assert!(matches!(
            call("track", &["--state-dir", d]),
            Err(Fail::Usage(_))
        ));
        assert!(matches!(
            call("track", &["--since", "soon", "--state-dir", d]),
            Err(Fail::Usage(_))
        ));
    }

    #[test]
    fn quarantine_list_show_release_delete() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("state");
        let d = dir.to_str().unwrap();
        {
            let mut store = Store::open(&dir).unwrap();
            let l: Limits = "quota= burst= spam=".parse().unwrap();
            let rcpt = vec!["a@example.net".to_string()];
            let o = Origin::default();
            let verdict = mailguard_store::SpamSummary {
                score: 11.0,
                rules: vec!["raw-ip-link".into()],
                refuse: true,
            };
            for i in 0..3 {
                let raw = format!("To: a@example.net\r\nSubject: Offer {i}\r\n\r\nbody\r\n");
                let sub = Submission {
                    raw: raw.as_bytes(),
                    envelope_from: "f@example.org",
                    recipients: &rcpt,
                    origin: &o,
                    spam: Some(&verdict),
                };
                store
                    .submit("site1", &l, sub, now(), Mode::Enforce)
                    .unwrap();
            }
        }
        let list = call("quarantine", &["list", "--state-dir", d]).unwrap();
        assert!(
            list.contains("score 11 (raw-ip-link)") && list.contains("Offer 2"),
            "{list}"
        );
        let j: serde_json::Value = serde_json::from_str(
            &call("quarantine", &["list", "--json", "--state-dir", d]).unwrap(),
        )
        .unwrap();
        assert_eq!(j.as_array().unwrap().len(), 3);
        let show = call("quarantine", &["show", "1", "--state-dir", d]).unwrap();
        assert!(
            show.contains("verdict      refuse: spam score 11"),
            "{show}"
        );
        let raw = call("quarantine", &["show", "1", "--raw", "--state-dir", d]).unwrap();
        assert!(raw.contains("Subject: Offer 0"), "{raw}");
        let r = call(
            "quarantine",
            &["release", "1", "--actor", "alice", "--state-dir", d],
        )
        .unwrap();
        assert!(
            r.starts_with("released (queued for delivery) message 1"),
            "{r}"
        );
        let del = call("quarantine", &["delete", "2", "3", "--state-dir", d]).unwrap();
        assert_eq!(del.lines().count(), 2, "{del}");
        assert!(call("quarantine", &["release", "2", "--state-dir", d]).is_err());
        let empty = call("quarantine", &["list", "--state-dir", d]).unwrap();
        assert_eq!(empty, "the quarantine is empty\n");
        let log = Store::open(&dir).unwrap().quarantine_log(None, 10).unwrap();
        assert_eq!(log.len(), 3);
        assert_eq!(log[2].actor, "operator:alice");
        let q = call("queue", &["list", "--state-dir", d]).unwrap();
        assert!(q.contains("queued") && q.contains("Offer 0"), "{q}");
    }

    #[test]
    fn commands_work_end_to_end() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("state");
        let d = dir.to_str().unwrap();
        {
            let mut store = Store::open(&dir).unwrap();
            let l: Limits = "quota=1/1h burst=".parse().unwrap();
            let rcpt = vec!["a@example.net".to_string()];
            let o = Origin {
                file: Some("/var/www/form.php".into()),
                line: Some(7),
                ..Origin::default()
            };
            for _ in 0..2 {
                let raw = b"To: a@example.net\r\nSubject: Hi there\r\n\r\nbody\r\n";
                let sub = Submission {
                    raw,
                    envelope_from: "f@example.org",
                    recipients: &rcpt,
                    origin: &o,
                    spam: None,
                };
                store
                    .submit("site1", &l, sub, now(), Mode::Enforce)
                    .unwrap();
            }
        }
        let s = call("status", &["--state-dir", d, "--account", "site1"]).unwrap();
        assert!(s.contains("status       active (green)"), "{s}");
        assert!(s.contains("2 queued, 0 held"), "{s}");
        let j: serde_json::Value = serde_json::from_str(
            &call(
                "status",
                &["--state-dir", d, "--account", "site1", "--json"],
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(j["status"], "active");
        assert_eq!(j["queued"], 2);
        let b = call(
            "block",
            &["--state-dir", d, "--account=site1", "--actor", "alice"],
        )
        .unwrap();
        assert_eq!(b, "site1: active -> inactive (1 messages held)\n");
        let e = call("block", &["--state-dir", d, "--account", "site1"]).unwrap_err();
        assert!(
            matches!(e, Fail::Store(StoreError::Refused { .. })),
            "{e:?}"
        );
        let tr = call("transitions", &["--state-dir", d, "--account", "site1"]).unwrap();
        assert!(
            tr.contains("active -> inactive  block  by operator:alice"),
            "{tr}"
        );
        let q = call("queue", &["list", "--state-dir", d]).unwrap();
        assert!(q.contains("held") && q.contains("Hi there"), "{q}");
        let show = call("queue", &["show", "1", "--state-dir", d]).unwrap();
        assert!(show.contains("origin       /var/www/form.php:7"), "{show}");
        assert!(show.contains("checksum ok"), "{show}");
        let raw = call("queue", &["show", "1", "--raw", "--state-dir", d]).unwrap();
        assert!(raw.starts_with("To: a@example.net"), "{raw}");
        let del = call("queue", &["delete", "2", "--state-dir", d]).unwrap();
        assert!(del.starts_with("deleted message 2"), "{del}");
        let p = call("purge", &["--state-dir", d, "--account", "site1"]).unwrap();
        assert!(p.contains("inactive -> active (1 messages deleted)"), "{p}");
        let h = call(
            "history",
            &["--state-dir", d, "--account", "site1", "--days", "2"],
        )
        .unwrap();
        assert_eq!(h.lines().count(), 3, "{h}");
        let e = call("errors", &["--state-dir", d, "--account", "site1"]).unwrap();
        assert_eq!(e, "site1: no errors\n");
        let r = call(
            "report-to",
            &["--state-dir", d, "--account", "site1", "owner@example.org"],
        )
        .unwrap();
        assert!(r.contains("owner@example.org"));
    }

    #[test]
    fn usage_errors_are_reported() {
        assert!(matches!(call("status", &[]), Err(Fail::Usage(_))));
        assert!(matches!(call("status", &["--bogus"]), Err(Fail::Usage(_))));
        assert!(matches!(
            call("history", &["--account", "a", "--days", "x"]),
            Err(Fail::Usage(_))
        ));
        assert!(matches!(call("queue", &["show"]), Err(Fail::Usage(_))));
        assert!(matches!(call("queue", &["frob"]), Err(Fail::Usage(_))));
        // An unusable state directory names itself.
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("file");
        std::fs::write(&f, "").unwrap();
        match call(
            "status",
            &["--account", "a", "--state-dir", f.to_str().unwrap()],
        ) {
            Err(Fail::Store(e)) => assert!(e.to_string().contains(f.to_str().unwrap())),
            other => panic!("{other:?}"),
        }
    }
}

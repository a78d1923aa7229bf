//! `mailguard run`: the delivery runner. Claims due messages from the store, delivers
//! each through the configured transport, records every outcome before the next message,
//! and sends the notices of rule trips. One runner per state directory (a lock file).
//!
//! Never lose a message: an outcome is recorded before moving on; if recording fails the
//! runner stops with the error, and the claim goes back to the queue (at the next start
//! of the runner, or when its lease ends).

use crate::args::Args;
use crate::notice::Places;
use std::fs::{File, OpenOptions};
use std::io::{IsTerminal, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mailguard_store::{now, Claimed, DeliveryRecord, Failure, Outcome, Store, StoreError};
use mailguard_transport::{Kind, Transport};
use nix::fcntl::{Flock, FlockArg};

use crate::notice::{self, Config};

const USAGE: &str = "\
usage: mailguard run [--once] [--interval 1s] [--max N] [--state-dir DIR] [--config FILE]
  --once        deliver what is due now, print a summary, exit
  --interval D  pause between polls of the queue (default [runner] interval, or 1s)
  --max N       stop after N delivery attempts
  --state-dir   default /var/lib/mailguard
  --config      default /etc/mailguard/mailguard.toml (absent: the stock sendmail pipe)
SIGTERM or SIGINT: the message being delivered is finished and recorded, then exit 0.";

/// Rule transitions older than this get no notice any more (a runner that was down
/// for days should not mail about a state that was probably dealt with).
const NOTICE_HORIZON: Duration = Duration::from_secs(24 * 3600);
/// After a notice could not be sent, wait this long before trying again.
const NOTICE_RETRY: Duration = Duration::from_secs(60);
/// Fold the WAL back this often (and after this many messages).
const CHECKPOINT_EVERY: Duration = Duration::from_secs(60);
const CHECKPOINT_MESSAGES: u64 = 1000;

struct Opts {
    places: Places,
    once: bool,
    interval: Option<Duration>,
    max: Option<u64>,
}

fn parse(args: &[String]) -> Result<Opts, String> {
    let mut o = Opts {
        places: Places::default(),
        once: false,
        interval: None,
        max: None,
    };
    let mut args = Args::new(args);
    while let Some(key) = args.next_key() {
        if o.places.take(key, &mut args)? {
            continue;
        }
        let mut value = || args.value();
        match key {
            "--once" => o.once = true,
            "--interval" => {
                let v = value()?;
                o.interval = Some(
                    mailguard_transport::config::parse_duration(&v)
                        .filter(|d| !d.is_zero())
                        .ok_or_else(|| {
                            format!("--interval: {v:?} is not a duration like 1s or 500ms")
                        })?,
                );
            }
            "--max" => {
                let v = value()?;
                o.max = Some(
                    v.parse()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| format!("--max: {v:?} is not a positive whole number"))?,
                );
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(o)
}

/// Runs `mailguard run`; returns the exit code (0 done or stopped by a signal, 1 a
/// failure, 2 usage).
pub fn run(args: &[String]) -> i32 {
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return 0;
    }
    let opts = match parse(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("mailguard run: {e}\n{USAGE}");
            return 2;
        }
    };
    match Runner::start(&opts).and_then(|mut r| r.serve(&opts)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("mailguard run: {e}");
            1
        }
    }
}

/// What one run did, for the summary.
#[derive(Default, Debug)]
struct Tally {
    sent: u64,
    temp: u64,
    perm: u64,
    expired: u64,
    quarantined: u64,
    notices: u64,
}

impl Tally {
    fn attempts(&self) -> u64 {
        self.sent + self.temp + self.perm
    }
}

struct Runner {
    store: Store,
    transport: Box<dyn Transport + Send>,
    config: Config,
    /// Held for the life of the runner: one runner per state directory.
    _lock: Flock<File>,
    stop: Arc<AtomicBool>,
    tally: Tally,
    notice_after: Option<Instant>,
    last_checkpoint: Instant,
    since_checkpoint: u64,
}

impl Runner {
    fn start(opts: &Opts) -> Result<Runner, String> {
        let config = opts.places.load_config()?;
        for n in &config.notices {
            eprintln!("{n}");
        }
        let transport =
            mailguard_transport::from_config(&config.transport).map_err(|e| e.to_string())?;
        let mut store = Store::open(&opts.places.state_dir).map_err(|e| e.to_string())?;
        let lock = lock_runner(&opts.places.state_dir)?;
        let released = store
            .release_runner_claims(now())
            .map_err(|e| e.to_string())?;
        if released > 0 {
            eprintln!(
                "mailguard run: {released} message(s) claimed by a runner that stopped without recording them are due again (a relay may have received some: they may arrive twice)"
            );
        }
        let stop = Arc::new(AtomicBool::new(false));
        for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
            signal_hook::flag::register(sig, Arc::clone(&stop))
                .map_err(|e| format!("cannot handle signal {sig}: {e}"))?;
        }
        if !opts.once {
            eprintln!(
                "mailguard run: delivering from {} through the {}",
                opts.places.state_dir.display(),
                notice::describe(&config.transport)
            );
        }
        Ok(Runner {
            store,
            transport,
            config,
            _lock: lock,
            stop,
            tally: Tally::default(),
            notice_after: None,
            last_checkpoint: Instant::now(),
            since_checkpoint: 0,
        })
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    fn serve(&mut self, opts: &Opts) -> Result<(), String> {
        let interval = opts.interval.unwrap_or(self.config.interval);
        let show_bar = opts.once && std::io::stdout().is_terminal();
        let mut bar = if show_bar {
            Some(Bar::new(
                self.store.count_due(now()).map_err(|e| e.to_string())?,
            ))
        } else {
            None
        };
        let result = self.serve_loop(opts, interval, &mut bar);
        if let Some(b) = &mut bar {
            b.finish();
        }
        // Claimed but not attempted (stopped by a signal or --max): due again at once.
        let give_back = self.store.release_runner_claims(now());
        result?;
        give_back.map_err(|e| e.to_string())?;
        let _ = self.store.checkpoint();
        let t = &self.tally;
        println!(
            "sent {}, temporary failures {}, permanent failures {}, expired {}, quarantined {}, notices {}",
            t.sent, t.temp, t.perm, t.expired, t.quarantined, t.notices
        );
        Ok(())
    }

    fn serve_loop(
        &mut self,
        opts: &Opts,
        interval: Duration,
        bar: &mut Option<Bar>,
    ) -> Result<(), String> {
        loop {
            self.send_notices()?;
            if self.stopping() {
                return Ok(());
            }
            let batch = match opts.max {
                Some(max) => (max - self.tally.attempts()).min(self.config.batch as u64) as usize,
                None => self.config.batch,
            };
            let due = match self.store.due(now(), batch) {
                Ok(d) => d,
                Err(e) if e.is_transient() && !opts.once => {
                    eprintln!("mailguard run: {e}; trying again");
                    self.pause(interval);
                    continue;
                }
                Err(e) => return Err(e.to_string()),
            };
            self.tally.expired += due.expired;
            self.tally.quarantined += due.quarantined.len() as u64;
            for id in &due.quarantined {
                eprintln!(
                    "mailguard run: message {id} quarantined: its stored bytes do not match their checksum (never sent; see mailguard queue show {id})"
                );
            }
            if due.expired > 0 {
                self.log(&format!(
                    "{} message(s) expired (counted as errors)",
                    due.expired
                ));
            }
            let ids: Vec<_> = due.claimed.iter().map(|c| c.id).collect();
            if !ids.is_empty() {
                self.store
                    .note_runner_claims(&ids, std::process::id(), now())
                    .map_err(|e| e.to_string())?;
            }
            let claimed_any = !due.claimed.is_empty();
            for c in due.claimed {
                if self.stopping() {
                    return Ok(());
                }
                let turned_red = self.deliver(&c)?;
                if let Some(b) = bar {
                    b.show(&self.tally);
                }
                self.maybe_checkpoint();
                if turned_red {
                    // The rest of the batch may belong to the account that just turned
                    // red: give it back (held there, queued elsewhere) and claim anew.
                    self.store
                        .release_runner_claims(now())
                        .map_err(|e| e.to_string())?;
                    break;
                }
            }
            if opts.max.is_some_and(|m| self.tally.attempts() >= m) {
                return Ok(());
            }
            if opts.once {
                if !claimed_any {
                    self.send_notices()?;
                    return Ok(());
                }
                continue;
            }
            if !claimed_any {
                self.pause(interval);
            }
        }
    }

    /// Sleeps `d`, waking early for a stop signal.
    fn pause(&mut self, d: Duration) {
        let end = Instant::now() + d;
        while !self.stopping() {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            std::thread::sleep(left.min(Duration::from_millis(100)));
        }
        self.maybe_checkpoint();
    }

    fn maybe_checkpoint(&mut self) {
        if self.last_checkpoint.elapsed() >= CHECKPOINT_EVERY
            || self.since_checkpoint >= CHECKPOINT_MESSAGES
        {
            if let Err(e) = self.store.checkpoint() {
                eprintln!("mailguard run: checkpoint: {e}");
            }
            self.last_checkpoint = Instant::now();
            self.since_checkpoint = 0;
        }
    }

    /// A line for the log (stderr when a progress bar owns stdout).
    fn log(&self, line: &str) {
        if std::io::stdout().is_terminal() {
            eprintln!("{line}");
        } else {
            println!("{line}");
            let _ = std::io::stdout().flush();
        }
    }

    /// One message: send, record (before anything else), report. True when the outcome
    /// turned the account red.
    fn deliver(&mut self, c: &Claimed) -> Result<bool, String> {
        let result = self.transport.send(&c.envelope_from, &c.recipients, &c.raw);
        if let Err(e) = &result {
            if matches!(e.kind(), Kind::Tls | Kind::Auth) {
                eprintln!("mailguard run: ALERT: message {}: {e} (the operator must look at the relay settings)", c.id);
            }
        }
        let plan = mailguard_transport::plan(&c.recipients, result);
        let now = now();
        let rec = self
            .store
            .record_delivery(c.id, &plan, now)
            .map_err(|e| not_recorded(c, &e))?;
        if let (Some(split), Some(new)) = (&plan.split, rec.split) {
            self.log(&format!(
                "message {}: {} recipient(s) deferred ({}), retried as message {new}",
                c.id,
                split.recipients.len(),
                split.reply
            ));
        }
        self.since_checkpoint += 1;
        let line = match &rec.record {
            DeliveryRecord::Sent => {
                self.tally.sent += 1;
                match &plan.outcome {
                    Outcome::Sent { rejected } if !rejected.is_empty() => format!(
                        "message {} ({}): sent; refused: {}",
                        c.id,
                        c.account,
                        rejected.iter().map(failure_text).collect::<Vec<_>>().join("; ")
                    ),
                    _ => format!("message {} ({}): sent", c.id, c.account),
                }
            }
            DeliveryRecord::Retry { next_attempt, attempts } => {
                self.tally.temp += 1;
                format!(
                    "message {} ({}): attempt {attempts} failed, next at {next_attempt}: {}",
                    c.id,
                    c.account,
                    outcome_text(&plan.outcome)
                )
            }
            DeliveryRecord::Expired => {
                self.tally.temp += 1;
                self.tally.expired += 1;
                format!("message {} ({}): expired: {}", c.id, c.account, outcome_text(&plan.outcome))
            }
            DeliveryRecord::Failed => {
                self.tally.perm += 1;
                format!("message {} ({}): failed: {}", c.id, c.account, outcome_text(&plan.outcome))
            }
            DeliveryRecord::Ignored => format!(
                "message {} ({}): no longer waiting (purged or deleted meanwhile); outcome not counted",
                c.id, c.account
            ),
        };
        self.log(&line);
        if let Some(trip) = &rec.trip {
            self.log(&format!(
                "account {}: {} -> {} ({}){}",
                c.account,
                trip.transition.from.as_str(),
                trip.transition.to.as_str(),
                trip.detail,
                if trip.applied {
                    ""
                } else {
                    " [observe mode: not applied]"
                }
            ));
            // At once, not at the next poll.
            self.notice_after = None;
            self.send_notices()?;
        }
        Ok(rec.trip.is_some_and(|t| t.applied))
    }

    /// Sends the notices of rule trips not handled yet. A notice that cannot be sent is
    /// tried again later; one for an account without report-to is marked as handled.
    fn send_notices(&mut self) -> Result<(), String> {
        if self.notice_after.is_some_and(|t| Instant::now() < t) {
            return Ok(());
        }
        let t = now();
        let pending = self
            .store
            .pending_notices(t.minus(NOTICE_HORIZON))
            .map_err(|e| e.to_string())?;
        for n in pending {
            let outcome = match &n.report_to {
                None => "no report-to address".to_owned(),
                Some(to) => {
                    let mail = notice::trip_notice(&mut self.store, &n, &self.config.from, to)?;
                    match mail.send(self.transport.as_mut(), t) {
                        Ok(()) => {
                            self.tally.notices += 1;
                            self.log(&format!(
                                "account {}: notice \"{}\" sent to {to}",
                                n.account, mail.subject
                            ));
                            format!("sent to {to}")
                        }
                        Err(e) => {
                            eprintln!("mailguard run: account {}: the notice to {to} could not be sent: {e}; trying again later", n.account);
                            self.notice_after = Some(Instant::now() + NOTICE_RETRY);
                            continue;
                        }
                    }
                }
            };
            self.store
                .mark_notice(n.transition_id, &n.account, &outcome, t)
                .map_err(|e| {
                    format!(
                        "account {}: notice {outcome} but not recorded: {e}",
                        n.account
                    )
                })?;
        }
        Ok(())
    }
}

fn not_recorded(c: &Claimed, e: &StoreError) -> String {
    format!(
        "message {}: the outcome could not be recorded: {e}; stopping. The message stays claimed and is delivered again after a restart (possibly twice)",
        c.id
    )
}

fn lock_runner(dir: &Path) -> Result<Flock<File>, String> {
    let path = dir.join("runner.lock");
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|(_, e)| {
        format!(
            "another mailguard run is using {} ({}: {e}); one runner per state directory",
            dir.display(),
            path.display()
        )
    })
}

fn failure_text(f: &Failure) -> String {
    let mut s = format!("<{}> ", f.recipient);
    if let Some(c) = f.code {
        s.push_str(&format!("{c} "));
    }
    if let Some(e) = &f.enhanced {
        s.push_str(&format!("{e} "));
    }
    s.push_str(&f.text);
    s
}

fn outcome_text(o: &Outcome) -> String {
    match o {
        Outcome::Sent { .. } => "sent".to_owned(),
        Outcome::TempFail {
            code,
            enhanced,
            text,
        } => [
            code.map(|c| c.to_string()),
            enhanced.clone(),
            Some(text.clone()),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" "),
        Outcome::PermFail(fs) => fs.iter().map(failure_text).collect::<Vec<_>>().join("; "),
    }
}

/// The `--once` progress bar on a terminal.
struct Bar {
    total: u64,
}

impl Bar {
    fn new(total: u64) -> Bar {
        Bar { total }
    }

    fn show(&mut self, t: &Tally) {
        let done = t.attempts();
        self.total = self.total.max(done);
        let width = 30u64;
        let filled = (done * width).checked_div(self.total).unwrap_or(width);
        let mut out = std::io::stdout().lock();
        let _ = write!(
            out,
            "\r[{}{}] {done}/{} sent {} temp {} perm {}",
            "#".repeat(filled as usize),
            "-".repeat((width - filled) as usize),
            self.total,
            t.sent,
            t.temp,
            t.perm
        );
        let _ = out.flush();
    }

    fn finish(&mut self) {
        println!();
    }
}

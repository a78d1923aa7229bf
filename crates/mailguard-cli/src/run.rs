//! `mailguard run`: the delivery runner. Claims due messages from the store, delivers
//! them through the configured transport on up to `[runner] concurrency` parallel
//! sessions (default 20, Postfix's default per destination), records every outcome as it
//! arrives, and sends the notices of rule trips. One runner per state directory (a lock
//! file). `mailguard serve` runs the same runner in a thread, fed at once with the
//! messages its commits release.
//!
//! Never lose a message: an outcome is recorded before moving on; if recording fails the
//! runner stops with the error, and the claim goes back to the queue (at the next start
//! of the runner, or when its lease ends).

use crate::args::Args;
use crate::notice::Places;
use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{IsTerminal, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mailguard_engine::{Engine, EngineConfig, EngineVerdict, OnFailure};
use mailguard_store::{now, Claimed, DeliveryRecord, Failure, Outcome, Store, StoreError};
use mailguard_transport::{Delivered, DeliveryError, Kind, Plan, Transport, TransportConfig};
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
    match Runner::start(&opts, None, None, None).and_then(|mut r| r.serve(&opts)) {
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
    /// Refused by the spam engine before relaying.
    engine_refused: u64,
    /// Relayed on the guide rules alone because the engine could not be asked.
    engine_unavailable: u64,
}

impl Tally {
    fn attempts(&self) -> u64 {
        self.sent + self.temp + self.perm
    }
}

/// What a delivery worker hands back about one message.
enum Answer {
    /// What the transport answered (after the spam engine, if any, let it through).
    Relayed(Result<Delivered, DeliveryError>),
    /// The spam engine refused it: not relayed.
    EngineRefused(EngineVerdict),
    /// The engine could not be asked and `on_failure = "hold"`: tried again later.
    EngineDown(String),
}

/// A delivery worker's report: the message, the answer, and a line for the log (the
/// engine could not be asked and the message went out on the guide rules alone).
type Attempt = (Claimed, Answer, Option<String>);

/// Asks the engine about `c`; `Err` is the answer that ends the attempt without relaying
/// (refused, or held for the next attempt when the engine is down and `on_failure` says
/// hold); `Ok` carries the log line of an engine that could not be asked.
fn ask_engine(engine: &Engine, c: &Claimed) -> Result<Option<String>, Answer> {
    match engine.check(&c.raw, &c.envelope_from, &c.recipients) {
        Ok(v) if v.reject => Err(Answer::EngineRefused(v)),
        Ok(_) => Ok(None),
        Err(e) => match engine.config().on_failure {
            OnFailure::Deliver => Ok(Some(format!(
                "message {} ({}): spam engine unavailable, relayed on the guide rules alone: {e}",
                c.id, c.account
            ))),
            OnFailure::Hold => Err(Answer::EngineDown(format!(
                "held for the spam engine, which could not be asked: {e}"
            ))),
        },
    }
}

/// The delivery workers: each owns a transport (its own SMTP sessions), takes messages
/// from one shared queue and hands back the transport's answer. Recording stays with the
/// runner's thread, which owns the store.
struct Pool {
    size: usize,
    work: Option<Sender<Claimed>>,
    done: Receiver<Attempt>,
    threads: Vec<JoinHandle<()>>,
}

impl Pool {
    fn start(
        size: usize,
        config: &TransportConfig,
        engine: Option<&EngineConfig>,
    ) -> Result<Pool, String> {
        let (work, queue) = mpsc::channel::<Claimed>();
        let queue = Arc::new(Mutex::new(queue));
        let (done_tx, done) = mpsc::channel();
        let mut threads = Vec::with_capacity(size);
        for i in 0..size {
            let mut transport = mailguard_transport::from_config_reusing_sessions(config)
                .map_err(|e| e.to_string())?;
            let queue = Arc::clone(&queue);
            let done_tx = done_tx.clone();
            let engine = engine.cloned().map(Engine::new);
            let t = std::thread::Builder::new()
                .name(format!("deliver-{i}"))
                .spawn(move || loop {
                    let next = queue.lock().unwrap_or_else(|p| p.into_inner()).recv();
                    let Ok(c) = next else { return };
                    let checked = match &engine {
                        Some(engine) => ask_engine(engine, &c),
                        None => Ok(None),
                    };
                    let report = match checked {
                        Ok(note) => {
                            let result = transport.send(&c.envelope_from, &c.recipients, &c.raw);
                            (c, Answer::Relayed(result), note)
                        }
                        Err(answer) => (c, answer, None),
                    };
                    if done_tx.send(report).is_err() {
                        return;
                    }
                })
                .map_err(|e| format!("cannot start a delivery worker: {e}"))?;
            threads.push(t);
        }
        Ok(Pool {
            size,
            work: Some(work),
            done,
            threads,
        })
    }

    fn send(&self, c: Claimed) {
        if let Some(w) = &self.work {
            let _ = w.send(c);
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // Closing the queue ends each worker after its current message.
        self.work = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

struct Runner {
    store: Store,
    /// For the notices (the deliveries use the pool's transports).
    transport: Box<dyn Transport + Send>,
    pool: Pool,
    /// `mailguard serve`: messages its commits released, claimed for us already.
    feed: Option<Receiver<Claimed>>,
    config: Config,
    /// Held for the life of the runner: one runner per state directory.
    _lock: Flock<File>,
    stop: Arc<AtomicBool>,
    tally: Tally,
    notice_after: Option<Instant>,
    /// When the quarantine cap was last applied (at start, then every minute).
    last_prune: Option<Instant>,
    last_checkpoint: Instant,
    since_checkpoint: u64,
}

impl Runner {
    fn start(
        opts: &Opts,
        feed: Option<Receiver<Claimed>>,
        stop: Option<Arc<AtomicBool>>,
        lock: Option<Flock<File>>,
    ) -> Result<Runner, String> {
        let config = opts.places.load_config()?;
        for n in &config.notices {
            eprintln!("{n}");
        }
        let transport =
            mailguard_transport::from_config(&config.transport).map_err(|e| e.to_string())?;
        let mut store = Store::open(&opts.places.state_dir).map_err(|e| e.to_string())?;
        let lock = match lock {
            Some(l) => l,
            None => lock_runner(&opts.places.state_dir)?,
        };
        let released = store
            .release_runner_claims(now())
            .map_err(|e| e.to_string())?;
        if released > 0 {
            eprintln!(
                "mailguard run: {released} message(s) claimed by a runner that stopped without recording them are due again (a relay may have received some: they may arrive twice)"
            );
        }
        let stop = match stop {
            Some(s) => s,
            None => {
                let stop = Arc::new(AtomicBool::new(false));
                for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
                    signal_hook::flag::register(sig, Arc::clone(&stop))
                        .map_err(|e| format!("cannot handle signal {sig}: {e}"))?;
                }
                stop
            }
        };
        if !opts.once {
            eprintln!(
                "mailguard run: delivering from {} through the {}, {} in parallel",
                opts.places.state_dir.display(),
                notice::describe(&config.transport),
                config.concurrency
            );
        }
        let pool = Pool::start(
            config.concurrency,
            &config.transport,
            config.engine.as_ref(),
        )?;
        Ok(Runner {
            store,
            transport,
            pool,
            feed,
            config,
            _lock: lock,
            stop,
            tally: Tally::default(),
            last_prune: None,
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
        if self.config.engine.is_some() {
            println!(
                "spam engine: refused {}, unavailable (relayed on the guide rules alone) {}",
                t.engine_refused, t.engine_unavailable
            );
        }
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
            self.prune_quarantine();
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
            let mut work: VecDeque<Claimed> = due.claimed.into();
            work.extend(self.fed());
            let claimed_any = !work.is_empty();
            self.deliver_all(work, bar)?;
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

    /// Applies the quarantine cap (per account: 100 MB, 30 days), oldest dropped first,
    /// one log line per message dropped. A failure is logged and tried again later.
    fn prune_quarantine(&mut self) {
        if self
            .last_prune
            .is_some_and(|t| t.elapsed() < Duration::from_secs(60))
        {
            return;
        }
        self.last_prune = Some(Instant::now());
        match self.store.quarantine_prune(
            mailguard_store::QUARANTINE_MAX_BYTES,
            mailguard_store::QUARANTINE_MAX_AGE,
            now(),
        ) {
            Ok(dropped) => {
                for e in dropped {
                    self.log(&format!(
                        "quarantine: dropped message {} of {} ({} bytes, refused {}): past the \
                         cap of {} MB or {} days per account",
                        e.id,
                        e.account,
                        e.size,
                        e.created,
                        mailguard_store::QUARANTINE_MAX_BYTES >> 20,
                        mailguard_store::QUARANTINE_MAX_AGE.as_secs() / 86_400
                    ));
                }
            }
            Err(e) => eprintln!("mailguard run: quarantine cap: {e}"),
        }
    }

    /// What the daemon's commits released since the last look.
    fn fed(&mut self) -> Vec<Claimed> {
        match &self.feed {
            Some(feed) => feed.try_iter().collect(),
            None => Vec::new(),
        }
    }

    /// Delivers `work` on the pool, at most `concurrency` at a time, recording each answer
    /// as it arrives. When an outcome turns an account red, nothing more is started: the
    /// rest of the batch may belong to that account, so its claims go back (held there,
    /// queued elsewhere) once the deliveries under way are recorded.
    fn deliver_all(
        &mut self,
        mut work: VecDeque<Claimed>,
        bar: &mut Option<Bar>,
    ) -> Result<(), String> {
        let mut in_flight = 0usize;
        let mut turned_red = false;
        loop {
            while !turned_red && !self.stopping() && in_flight < self.pool.size {
                let Some(c) = work.pop_front() else { break };
                self.pool.send(c);
                in_flight += 1;
            }
            if in_flight == 0 {
                break;
            }
            let Ok((c, answer, note)) = self.pool.done.recv() else {
                return Err("the delivery workers stopped".into());
            };
            in_flight -= 1;
            if let Some(note) = note {
                self.tally.engine_unavailable += 1;
                eprintln!("mailguard run: {note}");
            }
            turned_red |= match answer {
                Answer::Relayed(result) => self.record(&c, result)?,
                Answer::EngineRefused(v) => self.record_engine_refusal(&c, &v)?,
                Answer::EngineDown(text) => self.record_plan(
                    &c,
                    Plan::from(Outcome::TempFail {
                        code: None,
                        enhanced: None,
                        text,
                    }),
                )?,
            };
            if let Some(b) = bar {
                b.show(&self.tally);
            }
            self.maybe_checkpoint();
            if !turned_red && work.len() < self.pool.size {
                work.extend(self.fed());
            }
        }
        if !work.is_empty() {
            let ids: Vec<_> = work.iter().map(|c| c.id).collect();
            for id in ids {
                self.store
                    .release_claim(id, now())
                    .map_err(|e| e.to_string())?;
            }
        }
        if turned_red {
            self.store
                .release_runner_claims(now())
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Sleeps `d`, waking early for a stop signal or a message fed by the daemon (which
    /// is then delivered at once).
    fn pause(&mut self, d: Duration) {
        let end = Instant::now() + d;
        while !self.stopping() {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let step = left.min(Duration::from_millis(100));
            let Some(feed) = &self.feed else {
                std::thread::sleep(step);
                continue;
            };
            match feed.recv_timeout(step) {
                Ok(c) => {
                    let mut work = VecDeque::from([c]);
                    work.extend(self.fed());
                    if let Err(e) = self.deliver_all(work, &mut None) {
                        eprintln!("mailguard run: {e}");
                        self.stop.store(true, Ordering::SeqCst);
                    }
                    break;
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => std::thread::sleep(step),
            }
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

    /// The engine refused `c`: kept for review as refused spam, counted toward the spam
    /// status. True when that turned the account red.
    fn record_engine_refusal(&mut self, c: &Claimed, v: &EngineVerdict) -> Result<bool, String> {
        let spam = mailguard_store::SpamSummary {
            score: v.score,
            rules: v.symbols.clone(),
            refuse: true,
        };
        let verdict = format!(
            "refuse: spam engine score {:.1} of {:.1} ({})",
            v.score,
            v.required,
            v.symbols.join(", ")
        );
        let trip = self
            .store
            .record_engine_refusal(c.id, &spam, &verdict, now())
            .map_err(|e| not_recorded(c, &e))?;
        self.tally.engine_refused += 1;
        self.log(&format!(
            "message {} ({}): refused by the spam engine (score {:.1}, {}), kept for review",
            c.id, c.account, v.score, v.action
        ));
        let Some(trip) = trip else { return Ok(false) };
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
        self.notice_after = None;
        self.send_notices()?;
        Ok(trip.applied)
    }

    /// One answer: record it (before anything else), report. True when the outcome
    /// turned the account red.
    fn record(
        &mut self,
        c: &Claimed,
        result: Result<Delivered, DeliveryError>,
    ) -> Result<bool, String> {
        if let Err(e) = &result {
            if matches!(e.kind(), Kind::Tls | Kind::Auth) {
                eprintln!("mailguard run: ALERT: message {}: {e} (the operator must look at the relay settings)", c.id);
            }
        }
        self.record_plan(c, mailguard_transport::plan(&c.recipients, result))
    }

    /// Records `plan` for `c` (before anything else) and reports it. True when the
    /// outcome turned the account red.
    fn record_plan(&mut self, c: &Claimed, plan: Plan) -> Result<bool, String> {
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

/// The runner of `mailguard serve`: a thread that delivers what is due and, at once,
/// what `feed` brings (messages the daemon's commits released, already claimed).
/// It stops when `stop` is set, after recording the deliveries under way.
pub fn spawn_for_daemon(
    places: &Places,
    feed: Receiver<Claimed>,
    stop: Arc<AtomicBool>,
    lock: Flock<File>,
) -> Result<JoinHandle<Result<(), String>>, String> {
    let opts = Opts {
        places: places.clone(),
        once: false,
        interval: None,
        max: None,
    };
    let mut runner = Runner::start(&opts, Some(feed), Some(stop), Some(lock))?;
    std::thread::Builder::new()
        .name("runner".into())
        .spawn(move || runner.serve(&opts))
        .map_err(|e| format!("cannot start the delivery thread: {e}"))
}

fn not_recorded(c: &Claimed, e: &StoreError) -> String {
    format!(
        "message {}: the outcome could not be recorded: {e}; stopping. The message stays claimed and is delivered again after a restart (possibly twice)",
        c.id
    )
}

/// The one-deliverer-per-state-directory lock (`runner.lock`).
pub fn lock_runner(dir: &Path) -> Result<Flock<File>, String> {
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

//! The account state as the shim reaches it: one lazily opened store per worker
//! process (never in the php-fpm master), the account and limits from the INI
//! settings, and the submission of one message. Policy stays in the core and the
//! store; this file only gathers inputs.

use std::path::PathBuf;
use std::sync::Mutex;

use mailguard_core::limits::{Limits, Mode};
use mailguard_core::message::Refusal;
use mailguard_core::rate::{parse_limit, parse_windows};
use mailguard_store::{now, Admission, Outcome, Snapshot, Store, StoreError, Submission};

use crate::php;

/// The default `mailguard.state_dir`: created by the operator (see README), shared
/// by the workers and the runner.
pub const DEFAULT_STATE_DIR: &str = mailguard_store::DEFAULT_STATE_DIR;

/// One store per process, opened on first use in that process. The lock is held
/// only around store calls, never across a call back into PHP.
static STORE: Mutex<Option<(PathBuf, Store)>> = Mutex::new(None);

/// The settings that say which account and limits apply to this request.
pub struct Settings {
    pub state_dir: PathBuf,
    pub account: String,
    pub mode: Mode,
    pub limits: Limits,
}

fn setting(name: &'static str) -> Option<String> {
    php::ini_string(name).map(|v| v.trim().to_owned())
}

fn bad(name: &'static str, problem: impl ToString) -> Refusal {
    Refusal::BadSetting {
        name,
        problem: problem.to_string(),
    }
}

impl Settings {
    /// Reads and validates every `mailguard.*` setting of the account.
    pub fn read() -> Result<Settings, Refusal> {
        let state_dir = setting("mailguard.state_dir")
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| DEFAULT_STATE_DIR.to_owned());
        let account = setting("mailguard.account")
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "default".to_owned());
        if !account
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.@".contains(&b))
        {
            return Err(bad(
                "mailguard.account",
                format!("\"{account}\" may only use letters, digits and - _ . @"),
            ));
        }
        let mode = setting("mailguard.mode")
            .unwrap_or_else(|| "enforce".to_owned())
            .parse::<Mode>()
            .map_err(|e| bad("mailguard.mode", e))?;
        let mut limits = Limits::default();
        if let Some(q) = setting("mailguard.rate_quota") {
            limits.quota = parse_windows(&q).map_err(|e| bad("mailguard.rate_quota", e))?;
        }
        if let Some(b) = setting("mailguard.rate_burst") {
            limits.burst = parse_windows(&b).map_err(|e| bad("mailguard.rate_burst", e))?;
        }
        if let Some(c) = setting("mailguard.rate_count").filter(|c| !c.is_empty()) {
            limits.counting = c.parse().map_err(|e| bad("mailguard.rate_count", e))?;
        }
        if let Some(n) = setting("mailguard.max_recipients") {
            limits.max_recipients = mailguard_core::limits::parse_max_recipients(&n)
                .map_err(|e| bad("mailguard.max_recipients", e))?;
        }
        if let Some(h) = setting("mailguard.hold") {
            limits.hold = parse_limit(&format!("1/{h}"))
                .ok()
                .flatten()
                .map(|l| l.period)
                .ok_or_else(|| {
                    bad(
                        "mailguard.hold",
                        format!("\"{h}\" is not a duration such as 72h, 3d or 90m"),
                    )
                })?;
        }
        if let Some(n) = setting("mailguard.queue_max_messages") {
            limits.queue_max_messages = n.parse().map_err(|_| {
                bad(
                    "mailguard.queue_max_messages",
                    format!("\"{n}\" is not a whole number"),
                )
            })?;
        }
        if let Some(b) = setting("mailguard.queue_max_bytes") {
            limits.queue_max_bytes = mailguard_core::message::Bytes::parse(&b)
                .map_err(|e| bad("mailguard.queue_max_bytes", e))?
                .0;
        }
        Ok(Settings {
            state_dir: PathBuf::from(state_dir),
            account,
            mode,
            limits,
        })
    }
}

fn store_refusal(e: StoreError) -> Refusal {
    Refusal::Store {
        problem: e.to_string(),
    }
}

/// Runs `f` on this process's store for `dir`, opening it if needed.
fn with_store<T>(
    dir: &PathBuf,
    f: impl FnOnce(&mut Store) -> Result<T, StoreError>,
) -> Result<T, Refusal> {
    let mut guard = STORE.lock().unwrap_or_else(|p| p.into_inner());
    if guard.as_ref().map(|(d, _)| d) != Some(dir) {
        *guard = None;
        let store = Store::open(dir).map_err(store_refusal)?;
        *guard = Some((dir.clone(), store));
    }
    let (_, store) = guard.as_mut().expect("store opened above");
    f(store).map_err(store_refusal)
}

/// Submits one message: durably stored before this returns `Ok`.
pub fn submit(settings: &Settings, sub: Submission<'_>) -> Result<Admission, Refusal> {
    with_store(&settings.state_dir, |s| {
        s.submit(
            &settings.account,
            &settings.limits,
            sub,
            now(),
            settings.mode,
        )
    })
}

/// Records how the immediate delivery attempt ended.
pub fn record(settings: &Settings, admission: &Admission, outcome: Outcome) -> Result<(), Refusal> {
    let Some(id) = admission.id else {
        return Ok(());
    };
    with_store(&settings.state_dir, |s| {
        s.record_delivery(id, &outcome.into(), now()).map(|_| ())
    })
}

/// Records an SMTP attempt's outcome and splits off recipients a relay deferred, in one
/// transaction.
pub fn record_plan(
    settings: &Settings,
    admission: &Admission,
    plan: mailguard_store::Plan,
) -> Result<(), Refusal> {
    let Some(id) = admission.id else {
        return Ok(());
    };
    with_store(&settings.state_dir, |s| {
        s.record_delivery(id, &plan, now()).map(|_| ())
    })
}

/// Gives a claimed message back to the queue for the runner.
pub fn release(settings: &Settings, id: mailguard_store::MessageId) -> Result<(), Refusal> {
    with_store(&settings.state_dir, |s| {
        s.release_claim(id, now()).map(|_| ())
    })
}

/// The account's counters and status, for `MailGuard\status()`.
pub fn snapshot(settings: &Settings) -> Result<Snapshot, Refusal> {
    with_store(&settings.state_dir, |s| {
        s.status_snapshot(&settings.account, now())
    })
}

/// Runs an operator action or report on this account's store.
pub fn control<T>(
    settings: &Settings,
    f: impl FnOnce(&mut Store, &str) -> Result<T, StoreError>,
) -> Result<T, Refusal> {
    with_store(&settings.state_dir, |s| f(s, &settings.account))
}

//! The PHP functions in the `MailGuard\` namespace. `status()` is for every script;
//! the operator functions (block, unblock, purge, errors, history) throw unless the
//! operator set `mailguard.allow_control=1` for the account (in hardened mode: unless the
//! operator file allows them for the account of the caller's uid; the daemon decides).

use ext_php_rs::boxed::ZBox;
use ext_php_rs::prelude::*;
use ext_php_rs::types::{ZendHashTable, Zval};
use mailguard_core::message::Refusal;
use mailguard_proto::Request;
use mailguard_store::{now, DayStats, ErrorEntry, Store, StoreError};
use serde_json::{json, Value};

use crate::state::{self, Settings};
use crate::{guard, hook, php};

/// A JSON value as a PHP value (objects become ordered associative arrays).
fn to_php(v: &Value) -> PhpResult<Zval> {
    let mut z = Zval::new();
    match v {
        Value::Null => z.set_null(),
        Value::Bool(b) => z.set_bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => z.set_long(i),
            None => z.set_double(n.as_f64().unwrap_or(0.0)),
        },
        Value::String(s) => z.set_string(s, false)?,
        Value::Array(items) => {
            let mut arr = ZendHashTable::new();
            for item in items {
                arr.push(to_php(item)?)?;
            }
            z.set_hashtable(arr);
        }
        Value::Object(map) => {
            let mut arr = ZendHashTable::new();
            for (k, item) in map {
                arr.insert(k.as_str(), to_php(item)?)?;
            }
            z.set_hashtable(arr);
        }
    }
    Ok(z)
}

fn to_array(v: Value) -> PhpResult<ZBox<ZendHashTable>> {
    let mut arr = ZendHashTable::new();
    if let Value::Object(map) = v {
        for (k, item) in map {
            arr.insert(k.as_str(), to_php(&item)?)?;
        }
    }
    Ok(arr)
}

fn exception(text: impl std::fmt::Display) -> PhpException {
    PhpException::from_message(format!("mailguard: {text}"))
}

fn names(pick: impl Fn(&php::Hook) -> bool) -> Vec<&'static str> {
    hook::ALL
        .iter()
        .filter(|h| pick(h))
        .map(|h| h.name())
        .collect()
}

pub fn hooked() -> Vec<&'static str> {
    names(|h| h.is_active())
}

pub fn disabled() -> Vec<&'static str> {
    names(|h| h.is_disabled())
}

/// `MailGuard\status(): array`: where this script stands. Never throws for a
/// state problem: the `error` key says what is wrong (mail() refuses meanwhile).
#[php_function]
#[php(name = "MailGuard\\status")]
pub fn status() -> PhpResult<ZBox<ZendHashTable>> {
    let mut out = json!({
        "enabled": guard::enabled(),
        "hooked": hooked(),
        "disabled": disabled(),
        "version": crate::VERSION,
    });
    let mut problems = Vec::new();
    match guard::max_message_size() {
        Ok(b) => out["max_message_size"] = json!(b.0),
        Err(e) => problems.push(e.to_string()),
    }
    let hardened = crate::daemon::socket();
    out["hardened"] = json!(hardened.is_some());
    if let Some(socket) = &hardened {
        out["socket"] = json!(socket.display().to_string());
        match crate::daemon::query(socket, &Request::Status) {
            Ok(Value::Object(map)) => {
                for (k, v) in map {
                    out[k] = v;
                }
            }
            Ok(_) => problems.push("the mailguard daemon answered something else".into()),
            Err(e) => problems.push(e),
        }
    } else {
        match Settings::read() {
            Err(e) => problems.push(e.to_string()),
            Ok(settings) => {
                out["account"] = json!(settings.account);
                out["mode"] = json!(settings.mode.as_str());
                out["state_dir"] = json!(settings.state_dir.display().to_string());
                let windows =
                    |w: &mailguard_core::rate::Windows| (!w.is_empty()).then(|| w.to_string());
                out["limits"] = json!({
                    "quota": windows(&settings.limits.quota),
                    "burst": windows(&settings.limits.burst),
                    "count": settings.limits.counting.as_str(),
                    "max_recipients": settings.limits.max_recipients,
                    "hold_seconds": settings.limits.hold.as_secs(),
                    "max_message_size": out.get("max_message_size").cloned().unwrap_or(Value::Null),
                });
                match state::snapshot(&settings) {
                    Ok(snap) => {
                        let Value::Object(map) = snap.to_json() else {
                            unreachable!()
                        };
                        for (k, v) in map {
                            if !matches!(k.as_str(), "limits" | "mode" | "account") {
                                out[k] = v;
                            }
                        }
                    }
                    Err(e) => problems.push(e.to_string()),
                }
            }
        }
    }
    if !problems.is_empty() {
        out["status"] = json!("unknown");
        out["error"] = json!(problems.join("; "));
    }
    to_array(out)
}

/// The settings, if the operator allowed control functions for this account.
fn control_settings() -> PhpResult<Settings> {
    if !php::ini_bool("mailguard.allow_control") {
        return Err(exception(
            "operator functions are disabled for scripts; the server operator can enable them \
             with mailguard.allow_control=1 for this account, or use the mailguard command",
        ));
    }
    Settings::read().map_err(|e| exception(refusal_text(&e)))
}

/// The text of a failed control call: the store's own words for its errors
/// (e.g. "unblock: the account is in spam status; ... purge"), not a mail refusal.
fn refusal_text(r: &Refusal) -> String {
    match r {
        Refusal::Store { problem } => problem.clone(),
        other => other.to_string(),
    }
}

/// Who acts, for the transition log: the script that called.
fn actor() -> String {
    let file = php::executed_file().unwrap_or_default();
    format!("php:{file}")
}

/// Hardened mode: the daemon decides whether the account may use operator functions
/// (the operator file's `allow_control`) and acts on the account of the caller's uid.
fn ask_daemon(request: Request) -> Option<PhpResult<ZBox<ZendHashTable>>> {
    let socket = crate::daemon::socket()?;
    Some(match crate::daemon::query(&socket, &request) {
        Ok(v) => to_array(v),
        Err(e) => Err(exception(e)),
    })
}

fn act(
    request: Request,
    f: impl FnOnce(&mut Store, &str, &str) -> Result<mailguard_store::Change, StoreError>,
) -> PhpResult<ZBox<ZendHashTable>> {
    if let Some(answer) = ask_daemon(request) {
        return answer;
    }
    let settings = control_settings()?;
    let who = actor();
    let change = state::control(&settings, |s, account| f(s, account, &who))
        .map_err(|e| exception(refusal_text(&e)))?;
    to_array(change.to_json())
}

/// `MailGuard\block(): array`: the account turns inactive; new and queued mail is held.
#[php_function]
#[php(name = "MailGuard\\block")]
pub fn block() -> PhpResult<ZBox<ZendHashTable>> {
    act(Request::Block, |s, a, who| s.block(a, who, now()))
}

/// `MailGuard\unblock(): array`: inactive → active, bounce → force; held mail is re-dispatched.
#[php_function]
#[php(name = "MailGuard\\unblock")]
pub fn unblock() -> PhpResult<ZBox<ZendHashTable>> {
    act(Request::Unblock, |s, a, who| s.unblock(a, who, now()))
}

/// `MailGuard\purge(): array`: deletes the account's queued mail and returns it to active.
#[php_function]
#[php(name = "MailGuard\\purge")]
pub fn purge() -> PhpResult<ZBox<ZendHashTable>> {
    act(Request::Purge, |s, a, who| s.purge(a, who, now()))
}

/// `MailGuard\errors(int $limit = 50, int $offset = 0): array`: the error log, newest first.
#[php_function]
#[php(name = "MailGuard\\errors")]
pub fn errors(limit: Option<i64>, offset: Option<i64>) -> PhpResult<ZBox<ZendHashTable>> {
    let (limit, offset) = (
        limit.unwrap_or(50).clamp(0, 10_000),
        offset.unwrap_or(0).clamp(0, u32::MAX as i64),
    );
    if let Some(answer) = ask_daemon(Request::Errors {
        limit: limit as u32,
        offset: offset as u32,
    }) {
        return answer;
    }
    let settings = control_settings()?;
    let entries = state::control(&settings, |s, a| s.errors(a, limit as u32, offset as u32))
        .map_err(|e| exception(refusal_text(&e)))?;
    let rows: Vec<Value> = entries.iter().map(ErrorEntry::to_json).collect();
    to_array(json!({ "errors": rows }))
}

/// `MailGuard\history(int $days = 30): array`: one row per day, oldest first.
#[php_function]
#[php(name = "MailGuard\\history")]
pub fn history(days: Option<i64>) -> PhpResult<ZBox<ZendHashTable>> {
    let days = days.unwrap_or(30).clamp(1, 3660) as u32;
    if let Some(answer) = ask_daemon(Request::History { days }) {
        return answer;
    }
    let settings = control_settings()?;
    let rows = state::control(&settings, |s, a| s.history(a, days, now()))
        .map_err(|e| exception(refusal_text(&e)))?;
    let rows: Vec<Value> = rows.iter().map(DayStats::to_json).collect();
    to_array(json!({ "days": rows }))
}

/// Adds the `MailGuard\` functions to the module.
pub trait RegisterApi {
    fn register_api(self) -> Self;
}

impl RegisterApi for ModuleBuilder<'_> {
    fn register_api(self) -> Self {
        self.function(wrap_function!(status))
            .function(wrap_function!(block))
            .function(wrap_function!(unblock))
            .function(wrap_function!(purge))
            .function(wrap_function!(errors))
            .function(wrap_function!(history))
    }
}

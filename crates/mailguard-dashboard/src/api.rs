//! The JSON API for hosting panels: the panel's data and actions under
//! `/api/accounts/{account}/...`, authenticated by `Authorization: Bearer NAME:SECRET`
//! only. Cookies are ignored here, so no browser can be tricked into a call: a
//! cross-site page cannot attach the header (that takes a CORS preflight this server
//! never approves), which is why the API needs no CSRF token.

use mailguard_store::{now, DayStats, ErrorEntry};
use serde_json::{json, Value};

use super::advice::{self, Action};
use super::app::{App, Fail};
use super::auth::{AuthFailure, Principal};
use super::http::{Request, Response};
use super::quarantine;

fn error(status: u16, message: &str) -> Response {
    Response::json(
        status,
        &json!({"error": {"status": status, "message": message}}),
    )
}

fn fail(f: &Fail) -> Response {
    let r = error(f.status(), &f.message());
    if f.status() == 503 {
        r.with_header("Retry-After", "5".to_owned())
    } else {
        r
    }
}

fn method_not_allowed(allow: &str) -> Response {
    error(405, &format!("this address takes {allow}")).with_header("Allow", allow.to_owned())
}

/// The bearer principal, or the 401/429 answer.
pub fn principal(app: &App, req: &Request) -> Result<Principal, Response> {
    let unauthorized = |msg: &str| {
        error(401, msg).with_header("WWW-Authenticate", "Bearer realm=\"mailguard\"".to_owned())
    };
    let Some(token) = req.bearer() else {
        return Err(unauthorized(
            "authentication required: send Authorization: Bearer NAME:SECRET",
        ));
    };
    match app.auth.check_bearer(token, req.peer) {
        Ok(p) => Ok(p),
        Err(AuthFailure::Invalid) => Err(unauthorized("wrong credentials")),
        Err(AuthFailure::Throttled) => Err(error(
            429,
            "too many failed attempts for this name; wait ten minutes",
        )),
    }
}

/// A bounded numeric query parameter.
fn number(req: &Request, key: &str, default: u32, min: u32, max: u32) -> Result<u32, Fail> {
    match req.query_value(key) {
        None => Ok(default),
        Some(v) => v
            .parse::<u32>()
            .ok()
            .filter(|n| (min..=max).contains(n))
            .ok_or_else(|| Fail::BadInput(format!("{key} must be a number from {min} to {max}"))),
    }
}

pub fn handle(app: &App, req: &Request, rest: &[&str]) -> Response {
    let p = match principal(app, req) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let m = req.method.as_str();
    let result = match rest {
        ["accounts"] if m == "GET" => accounts(app, &p),
        ["accounts"] => return method_not_allowed("GET"),
        ["accounts", a] | ["accounts", a, "status"] if m == "GET" => status(app, &p, a),
        ["accounts", a, "history"] if m == "GET" => history(app, &p, a, req),
        ["accounts", a, "errors"] if m == "GET" => errors(app, &p, a, req),
        ["accounts", a, "scripts"] if m == "GET" => scripts(app, &p, a, req),
        ["accounts", a, "transitions"] if m == "GET" => transitions(app, &p, a),
        ["accounts", _]
        | ["accounts", _, "status" | "history" | "errors" | "scripts" | "transitions"] => {
            return method_not_allowed("GET")
        }
        ["accounts", a, "track"] if m == "GET" => app
            .track(&p, a, req.query_value("q").unwrap_or(""))
            .map(|found| {
                json!({
                    "account": a,
                    "messages": found.iter().map(|t| t.to_json()).collect::<Vec<_>>(),
                })
            }),
        ["accounts", _, "track"] => return method_not_allowed("GET"),
        ["accounts", a, "quarantine"] if m == "GET" => quarantine_list(app, &p, a),
        ["accounts", a, "quarantine", what @ ("release" | "delete")] if m == "POST" => {
            quarantine_bulk(app, &p, a, what, req)
        }
        ["accounts", a, "quarantine", id] if m == "GET" && !matches!(*id, "release" | "delete") => {
            quarantine::parse_ids([*id])
                .and_then(|ids| quarantine::view(app, &p, a, ids[0]).map(|v| v.to_json()))
        }
        ["accounts", a, "quarantine", id, what @ ("release" | "delete")] if m == "POST" => {
            quarantine::parse_ids([*id])
                .and_then(|ids| quarantine::act(app, &p, a, &ids, *what == "release"))
        }
        ["accounts", _, "quarantine", "release" | "delete"]
        | ["accounts", _, "quarantine", _, "release" | "delete"] => {
            return method_not_allowed("POST")
        }
        ["accounts", _, "quarantine"] | ["accounts", _, "quarantine", _] => {
            return method_not_allowed("GET")
        }
        ["accounts", a, action] if Action::parse(action).is_some() => {
            if m != "POST" {
                return method_not_allowed("POST");
            }
            act(app, &p, a, action, req)
        }
        _ => return error(404, "no such API address; see the README for the routes"),
    };
    match result {
        Ok(v) => Response::json(200, &v),
        Err(f) => fail(&f),
    }
}

fn quarantine_list(app: &App, p: &Principal, a: &str) -> Result<Value, Fail> {
    let (rows, (count, bytes)) = quarantine::list(app, p, a)?;
    Ok(json!({
        "account": a,
        "count": count,
        "bytes": bytes,
        "messages": rows.iter().map(|e| e.to_json()).collect::<Vec<_>>(),
    }))
}

/// `{"ids": [1, 2, 3]}`: release or delete several at once.
fn quarantine_bulk(
    app: &App,
    p: &Principal,
    a: &str,
    what: &str,
    req: &Request,
) -> Result<Value, Fail> {
    let body: Value = serde_json::from_slice(&req.body)
        .map_err(|e| Fail::BadInput(format!("the body is not JSON: {e}")))?;
    let Some(list) = body.get("ids").and_then(Value::as_array) else {
        return Err(Fail::BadInput("give {\"ids\": [ID, ...]}".into()));
    };
    let texts: Vec<String> = list
        .iter()
        .map(|v| match v {
            Value::Number(n) => n.to_string(),
            other => other.to_string(),
        })
        .collect();
    let ids = quarantine::parse_ids(texts.iter().map(String::as_str))?;
    quarantine::act(app, p, a, &ids, what == "release")
}

fn accounts(app: &App, p: &Principal) -> Result<Value, Fail> {
    let mut out = Vec::new();
    for a in app.visible_accounts(p)? {
        out.push(app.snapshot(&a)?.to_json());
    }
    Ok(json!({ "accounts": out }))
}

fn status(app: &App, p: &Principal, a: &str) -> Result<Value, Fail> {
    app.authorize(p, a)?;
    let snap = app.snapshot(a)?;
    let mut v = snap.to_json();
    let advice = advice::for_status(snap.status);
    v["advice"] = json!({"meaning": advice.meaning, "what_to_do": advice.what_to_do});
    v["actions"] = Action::ALL
        .iter()
        .map(|act| {
            (
                act.as_str().to_owned(),
                match act.allowed(snap.status) {
                    Ok(()) => json!({"allowed": true}),
                    Err(why) => json!({"allowed": false, "why": why}),
                },
            )
        })
        .collect::<serde_json::Map<String, Value>>()
        .into();
    Ok(v)
}

fn history(app: &App, p: &Principal, a: &str, req: &Request) -> Result<Value, Fail> {
    app.authorize(p, a)?;
    let days = number(req, "days", 30, 1, 366)?;
    let t = now();
    let h = app.store(|s| s.history(a, days, t))?;
    Ok(json!({
        "account": a,
        "days": h.iter().map(DayStats::to_json).collect::<Vec<_>>(),
    }))
}

fn errors(app: &App, p: &Principal, a: &str, req: &Request) -> Result<Value, Fail> {
    app.authorize(p, a)?;
    let limit = number(req, "limit", 50, 1, 500)?;
    let offset = number(req, "offset", 0, 0, u32::MAX)?;
    let total = app.store(|s| s.errors_count(a))?;
    let list = app.store(|s| s.errors(a, limit, offset))?;
    Ok(json!({
        "account": a,
        "total": total,
        "limit": limit,
        "offset": offset,
        "errors": list.iter().map(ErrorEntry::to_json).collect::<Vec<_>>(),
    }))
}

fn scripts(app: &App, p: &Principal, a: &str, req: &Request) -> Result<Value, Fail> {
    app.authorize(p, a)?;
    let hours = number(req, "hours", 24, 1, 24 * 31)?;
    let limit = number(req, "limit", 20, 1, 100)?;
    let since = now().minus(std::time::Duration::from_secs(hours as u64 * 3600));
    let list = app.store(|s| s.script_activity(a, since, limit))?;
    Ok(json!({
        "account": a,
        "since": since.to_string(),
        "scripts": list.iter().map(|s| json!({
            "file": s.file, "messages": s.messages, "sent": s.sent,
            "errors": s.errors, "refused": s.refused,
        })).collect::<Vec<_>>(),
    }))
}

fn transitions(app: &App, p: &Principal, a: &str) -> Result<Value, Fail> {
    app.authorize(p, a)?;
    let list = app.store(|s| s.transitions(a))?;
    Ok(json!({
        "account": a,
        "transitions": list.iter().map(|t| json!({
            "time": t.time.to_string(), "from": t.from.as_str(), "to": t.to.as_str(),
            "reason": t.reason, "actor": t.actor, "detail": t.detail, "applied": t.applied,
        })).collect::<Vec<_>>(),
    }))
}

fn act(app: &App, p: &Principal, a: &str, action: &str, req: &Request) -> Result<Value, Fail> {
    let Some(action) = Action::parse(action) else {
        return Err(Fail::NotFound(format!("no action {action}")));
    };
    app.authorize(p, a)?;
    let body: Value = if req.body.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        serde_json::from_slice(&req.body)
            .map_err(|e| Fail::BadInput(format!("the body is not JSON: {e}")))?
    };
    let address = match action {
        Action::ReportTo => match body.get("address") {
            Some(Value::String(s)) => Some(s.as_str()),
            Some(Value::Null) => None,
            _ => {
                return Err(Fail::BadInput(
                    "report-to takes {\"address\": \"owner@example.org\"} (null clears it)".into(),
                ))
            }
        },
        _ => None,
    };
    app.perform(p, a, action, address)
}

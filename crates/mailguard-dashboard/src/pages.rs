//! The HTML pages: login, the operator's account list, the owner's panel, confirmation
//! pages and errors. Everything from the store or the request is escaped with [`esc`].

use mailguard_store::ScriptActivity;
use mailguard_store::{DayStats, ErrorEntry, Snapshot, TransitionRecord};

use super::advice::{self, Action};
use super::auth::{Principal, Role};
use super::chart;
use super::http::percent_encode;

/// Error log entries per page.
pub const ERRORS_PER_PAGE: u32 = 25;
/// Transitions shown on the page (newest first); the API has them all.
const TRANSITIONS_SHOWN: usize = 50;

/// HTML-escapes text for element content and quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters have no business on the page.
            c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// The account's URL path.
pub fn account_path(account: &str) -> String {
    format!("/accounts/{}", percent_encode(account))
}

/// Who is logged in, for the page header.
pub struct Viewer<'a> {
    pub principal: &'a Principal,
    pub csrf: &'a str,
}

fn layout(title: &str, viewer: Option<&Viewer<'_>>, body: &str) -> String {
    let who = match viewer {
        Some(v) => format!(
            "<div class=\"who\">{} <strong>{}</strong>\
             <form method=\"post\" action=\"/logout\" class=\"inline\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <button type=\"submit\" class=\"link\">Log out</button></form></div>",
            match v.principal.role {
                Role::Operator => "operator",
                Role::Account => "account",
            },
            esc(&v.principal.name),
            esc(v.csrf)
        ),
        None => String::new(),
    };
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · mailguard</title><link rel=\"stylesheet\" href=\"/static/style.css\">\
         <link rel=\"icon\" href=\"data:,\"></head>\
         <body><header><a class=\"brand\" href=\"/\">mailguard</a> <span class=\"sub\">e-mail scripts</span>{who}</header>\
         <main>{body}</main></body></html>\n",
        esc(title)
    )
}

pub fn login(login_token: &str, problem: Option<&str>) -> String {
    let problem = problem
        .map(|p| format!("<p class=\"problem\" id=\"login-problem\">{}</p>", esc(p)))
        .unwrap_or_default();
    layout(
        "Log in",
        None,
        &format!(
            "<section class=\"card narrow\"><h1>Log in</h1>{problem}\
             <form method=\"post\" action=\"/login\">\
             <input type=\"hidden\" name=\"login_token\" value=\"{}\">\
             <label>Account or operator name<input name=\"user\" id=\"user\" autocomplete=\"username\" required></label>\
             <label>Password<input name=\"password\" id=\"password\" type=\"password\" autocomplete=\"current-password\" required></label>\
             <button type=\"submit\" id=\"login\">Log in</button></form></section>",
            esc(login_token)
        ),
    )
}

fn light(status: mailguard_store::Status) -> String {
    let colour = status.colour().as_str();
    format!(
        "<span class=\"light {colour}\" id=\"status-light\" data-status=\"{}\" data-colour=\"{colour}\" \
         role=\"img\" aria-label=\"{colour}\"></span>",
        status.as_str()
    )
}

pub fn account_list(viewer: &Viewer<'_>, snapshots: &[Snapshot]) -> String {
    let mut rows = String::new();
    for s in snapshots {
        rows.push_str(&format!(
            "<tr><td>{}</td><td><a href=\"{}\">{}</a></td><td>{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            light_small(s.status),
            esc(&account_path(&s.account)),
            esc(&s.account),
            s.status.as_str(),
            s.sent_total,
            s.sent_today,
            s.errors_total,
            s.queued,
            s.held
        ));
    }
    if snapshots.is_empty() {
        rows.push_str("<tr><td colspan=\"8\">No account has sent mail yet.</td></tr>");
    }
    layout(
        "Accounts",
        Some(viewer),
        &format!(
            "<section class=\"card\"><h1>Accounts</h1><table id=\"accounts\"><thead><tr><th></th><th>account</th>\
             <th>status</th><th>sent</th><th>today</th><th>errors</th><th>queued</th><th>held</th></tr></thead>\
             <tbody>{rows}</tbody></table></section>"
        ),
    )
}

fn light_small(status: mailguard_store::Status) -> String {
    format!(
        "<span class=\"light small {}\" aria-label=\"{}\"></span>",
        status.colour().as_str(),
        status.colour().as_str()
    )
}

/// Everything the owner's panel shows.
pub struct Panel<'a> {
    pub snapshot: &'a Snapshot,
    pub history: &'a [DayStats],
    pub errors: &'a [ErrorEntry],
    pub errors_total: u64,
    /// 1-based page of the error log.
    pub page: u32,
    pub scripts: &'a [ScriptActivity],
    pub transitions: &'a [TransitionRecord],
    /// A fixed message after an action (never text from the request).
    pub notice: Option<&'static str>,
}

pub fn panel(viewer: &Viewer<'_>, p: &Panel<'_>) -> String {
    let s = p.snapshot;
    let base = account_path(&s.account);
    let advice = advice::for_status(s.status);
    let mut b = String::new();
    if viewer.principal.role == Role::Operator {
        b.push_str("<p class=\"crumbs\"><a href=\"/\">All accounts</a></p>");
    }
    b.push_str(&format!(
        "<h1>E-mail scripts of <span id=\"account\">{}</span></h1>",
        esc(&s.account)
    ));
    if let Some(n) = p.notice {
        b.push_str(&format!(
            "<p class=\"notice\" id=\"notice\" role=\"status\">{}</p>",
            esc(n)
        ));
    }
    // Status and counters.
    b.push_str(&format!(
        "<section class=\"card status {}\" id=\"status\"><div class=\"status-line\">{}\
         <div><div class=\"status-name\">Service status: <strong id=\"status-name\">{}</strong>{}</div>\
         <p class=\"meaning\" id=\"status-meaning\">{}</p><p class=\"todo\" id=\"status-advice\">{}</p></div></div>\
         <dl class=\"counters\">\
         <div><dt>Sent in total</dt><dd id=\"sent-total\">{}</dd></div>\
         <div><dt>Sent today</dt><dd id=\"sent-today\">{}</dd></div>\
         <div><dt>Errors in total</dt><dd id=\"errors-total\">{}</dd></div>\
         <div><dt>Refused in total</dt><dd id=\"refused-total\">{}</dd></div>\
         <div><dt>Queued</dt><dd id=\"queued\">{}</dd></div>\
         <div><dt>Held</dt><dd id=\"held\">{}</dd></div></dl>\
         <p class=\"report\">Daily error report to: <span id=\"report-to\">{}</span></p></section>",
        s.status.colour().as_str(),
        light(s.status),
        s.status.as_str(),
        s.since
            .map(|t| format!(" <span class=\"since\">since {}</span>", esc(&t.to_string())))
            .unwrap_or_default(),
        esc(advice.meaning),
        esc(advice.what_to_do),
        s.sent_total,
        s.sent_today,
        s.errors_total,
        s.refused_total,
        s.queued,
        s.held,
        s.report_to
            .as_deref()
            .map(esc)
            .unwrap_or_else(|| "(not set)".to_owned()),
    ));
    // Actions.
    b.push_str("<section class=\"card\" id=\"actions\"><h2>Actions</h2><div class=\"actions\">");
    for a in [Action::Block, Action::Unblock, Action::Purge] {
        match a.allowed(s.status) {
            Ok(()) => b.push_str(&format!(
                "<a class=\"button {}\" id=\"action-{}\" href=\"{}/{}\">{}</a>",
                if a == Action::Purge { "danger" } else { "" },
                a.as_str(),
                esc(&base),
                a.as_str(),
                a.title()
            )),
            Err(why) if a == Action::Unblock && s.status == mailguard_store::Status::Spam => b
                .push_str(&format!(
                    "<p class=\"explain\" id=\"unblock-explained\">Unblock is not available: {}</p>",
                    esc(&why)
                )),
            Err(_) => {}
        }
    }
    b.push_str(&format!(
        "</div><form method=\"get\" action=\"{}/report-to\" class=\"report-form\">\
         <label>Send the daily error report to <input type=\"email\" name=\"address\" id=\"report-address\" \
         value=\"{}\" placeholder=\"you@example.org\"></label>\
         <button type=\"submit\" id=\"action-report-to\">Change recipient…</button></form></section>",
        esc(&base),
        esc(s.report_to.as_deref().unwrap_or(""))
    ));
    // History.
    b.push_str(&format!(
        "<section class=\"card\" id=\"history\"><h2>The last {} days</h2>{}</section>",
        p.history.len(),
        chart::history_svg(p.history)
    ));
    // Scripts.
    b.push_str(
        "<section class=\"card\"><h2>Scripts that sent mail in the last 24 hours</h2>\
         <table id=\"scripts\"><thead><tr><th>script</th><th class=\"num\">messages</th><th class=\"num\">sent</th>\
         <th class=\"num\">errors</th><th class=\"num\">refused</th></tr></thead><tbody>",
    );
    for sc in p.scripts {
        b.push_str(&format!(
            "<tr><td class=\"path\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            esc(sc.file.as_deref().unwrap_or("(unknown script)")),
            sc.messages,
            sc.sent,
            sc.errors,
            sc.refused
        ));
    }
    if p.scripts.is_empty() {
        b.push_str("<tr><td colspan=\"5\">No mail in the last 24 hours.</td></tr>");
    }
    b.push_str("</tbody></table></section>");
    // Error log, paged.
    let pages = p.errors_total.div_ceil(ERRORS_PER_PAGE as u64).max(1);
    b.push_str(&format!(
        "<section class=\"card\" id=\"errors\"><h2>Error log <span class=\"count\">({} in total; kept after purge and unblock)</span></h2>\
         <table id=\"error-log\"><thead><tr><th>time</th><th>recipient</th><th>code</th><th>text</th><th>script</th></tr></thead><tbody>",
        p.errors_total
    ));
    for e in p.errors {
        let code = match (e.code, &e.enhanced) {
            (Some(c), Some(x)) => format!("{c} {x}"),
            (Some(c), None) => c.to_string(),
            (None, Some(x)) => x.clone(),
            (None, None) => String::new(),
        };
        b.push_str(&format!(
            "<tr><td class=\"time\">{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"path\">{}</td></tr>",
            esc(&e.time.to_string()),
            esc(&e.recipient),
            esc(&code),
            esc(&e.text),
            esc(&e.origin.to_string())
        ));
    }
    if p.errors.is_empty() {
        b.push_str("<tr><td colspan=\"5\">No errors on this page.</td></tr>");
    }
    b.push_str("</tbody></table><nav class=\"pager\">");
    if p.page > 1 {
        b.push_str(&format!(
            "<a id=\"errors-prev\" href=\"{}?page={}#errors\">← newer</a>",
            esc(&base),
            p.page - 1
        ));
    }
    b.push_str(&format!(" <span>page {} of {pages}</span> ", p.page));
    if (p.page as u64) < pages {
        b.push_str(&format!(
            "<a id=\"errors-next\" href=\"{}?page={}#errors\">older →</a>",
            esc(&base),
            p.page + 1
        ));
    }
    b.push_str("</nav></section>");
    // Transitions, newest first.
    b.push_str(
        "<section class=\"card\"><h2>Status changes</h2><table id=\"transitions\"><thead><tr><th>time</th>\
         <th>from</th><th>to</th><th>reason</th><th>by</th><th>detail</th></tr></thead><tbody>",
    );
    for t in p.transitions.iter().rev().take(TRANSITIONS_SHOWN) {
        b.push_str(&format!(
            "<tr{}><td class=\"time\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            if t.applied { "" } else { " class=\"observed\" title=\"observe mode: recorded, not applied\"" },
            esc(&t.time.to_string()),
            t.from.as_str(),
            t.to.as_str(),
            esc(&t.reason),
            esc(&t.actor),
            esc(&t.detail)
        ));
    }
    if p.transitions.is_empty() {
        b.push_str("<tr><td colspan=\"6\">No status change yet.</td></tr>");
    }
    b.push_str("</tbody></table></section>");
    layout(&s.account, Some(viewer), &b)
}

/// The confirmation step of an action: what it does, and a POST form with the CSRF token
/// and a checkbox that must be ticked.
pub fn confirm(
    viewer: &Viewer<'_>,
    account: &str,
    action: Action,
    status: mailguard_store::Status,
    address: Option<&str>,
) -> String {
    let base = account_path(account);
    let target = match (action, address) {
        (Action::ReportTo, Some("")) | (Action::ReportTo, None) => {
            "<p>The report recipient will be <strong>cleared</strong> (no daily report).</p>"
                .to_owned()
        }
        (Action::ReportTo, Some(a)) => format!(
            "<p>New recipient: <strong id=\"confirm-address\">{}</strong></p>",
            esc(a)
        ),
        _ => String::new(),
    };
    layout(
        action.title(),
        Some(viewer),
        &format!(
            "<section class=\"card narrow\" id=\"confirm\"><h1>{}?</h1><p>Account <strong>{}</strong>, now {}.</p>\
             <p>{}</p>{target}\
             <form method=\"post\" action=\"{}/{}\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <input type=\"hidden\" name=\"address\" value=\"{}\">\
             <label class=\"check\"><input type=\"checkbox\" name=\"confirm\" value=\"yes\" id=\"confirm-check\" required> Yes, {}</label>\
             <button type=\"submit\" id=\"confirm-button\" class=\"{}\">Confirm</button> <a href=\"{}\" id=\"cancel\">Cancel</a>\
             </form></section>",
            action.title(),
            esc(account),
            status.as_str(),
            esc(&action.consequence(status)),
            esc(&base),
            action.as_str(),
            esc(viewer.csrf),
            esc(address.unwrap_or("")),
            esc(&action.title().to_lowercase()),
            if action == Action::Purge { "danger" } else { "" },
            esc(&base)
        ),
    )
}

/// An error page with a way back.
pub fn problem(viewer: Option<&Viewer<'_>>, title: &str, text: &str, back: &str) -> String {
    layout(
        title,
        viewer,
        &format!(
            "<section class=\"card narrow\"><h1>{}</h1><p class=\"problem\" id=\"problem\">{}</p><p><a href=\"{}\">Back</a></p></section>",
            esc(title),
            esc(text),
            esc(back)
        ),
    )
}

pub const STYLE: &str = r#":root { --green: #1e9e4a; --red: #d22d2d; --amber: #d9890b; --ink: #1d2430; --muted: #5d6878; --line: #dde2ea; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); background: #f3f5f8; }
header { display: flex; align-items: center; gap: .6em; padding: .7em 1.5em; background: #1d2430; color: #fff; }
header a.brand { color: #fff; font-weight: 700; text-decoration: none; font-size: 1.1em; }
header .sub { color: #aab4c3; }
header .who { margin-left: auto; color: #cfd6e0; }
main { max-width: 1000px; margin: 1.2em auto; padding: 0 1em; }
h1 { font-size: 1.4em; margin: .2em 0 .6em; }
h2 { font-size: 1.1em; margin: 0 0 .6em; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 1em 1.2em; margin-bottom: 1em; }
.card.narrow { max-width: 520px; margin-left: auto; margin-right: auto; }
.card.status.green { border-left: 6px solid var(--green); }
.card.status.red { border-left: 6px solid var(--red); }
.status-line { display: flex; gap: 1em; align-items: flex-start; }
.light { display: inline-block; width: 42px; height: 42px; border-radius: 50%; flex: none; border: 2px solid rgba(0,0,0,.15); }
.light.small { width: 14px; height: 14px; vertical-align: middle; }
.light.green { background: radial-gradient(circle at 35% 35%, #8ff0b0, var(--green)); }
.light.red { background: radial-gradient(circle at 35% 35%, #ff9c9c, var(--red)); }
.status-name { font-size: 1.15em; }
.since { color: var(--muted); font-size: .85em; }
.meaning { margin: .3em 0 .2em; }
.todo { margin: 0; color: var(--muted); }
dl.counters { display: grid; grid-template-columns: repeat(6, 1fr); gap: .6em; margin: 1em 0 .4em; }
dl.counters div { background: #f6f8fb; border-radius: 6px; padding: .5em .7em; }
dt { color: var(--muted); font-size: .8em; }
dd { margin: 0; font-size: 1.5em; font-weight: 600; }
.report { color: var(--muted); margin: .4em 0 0; }
.actions { display: flex; gap: .6em; flex-wrap: wrap; align-items: center; margin-bottom: .8em; }
a.button, button { display: inline-block; padding: .45em 1em; border-radius: 6px; border: 1px solid #2c5fb3; background: #2f6bd0; color: #fff; text-decoration: none; font: inherit; cursor: pointer; }
a.button.danger, button.danger { background: var(--red); border-color: #a51f1f; }
button.link { background: none; border: none; color: #cfe0ff; padding: 0 0 0 .8em; text-decoration: underline; }
form.inline { display: inline; }
.explain { color: var(--red); margin: 0; }
.report-form label { margin-right: .5em; }
input[type=email], input[name=user], input[type=password] { font: inherit; padding: .35em .5em; border: 1px solid #b9c2cf; border-radius: 5px; }
label { display: block; margin: .5em 0; }
.report-form label, label.check { display: inline-block; }
table { width: 100%; border-collapse: collapse; font-size: .9em; }
th, td { text-align: left; padding: .35em .5em; border-bottom: 1px solid var(--line); vertical-align: top; overflow-wrap: anywhere; }
th { color: var(--muted); font-weight: 600; white-space: nowrap; }
td.num, th.num { text-align: right; }
td.path { font-family: ui-monospace, monospace; font-size: .9em; }
td.time { white-space: nowrap; }
tr.observed { color: var(--muted); font-style: italic; }
.pager { margin-top: .6em; color: var(--muted); }
.count { color: var(--muted); font-weight: 400; font-size: .85em; }
.notice { background: #e8f4ff; border: 1px solid #b8d8f5; padding: .6em 1em; border-radius: 6px; }
.problem { color: var(--red); }
.crumbs { margin: 0 0 .3em; }
svg.chart { width: 100%; height: auto; }
svg .grid { stroke: #e4e8ee; stroke-width: 1; }
svg .axis, svg .legend { fill: #5d6878; font-size: 11px; font-family: system-ui, sans-serif; }
svg .bar.sent { fill: var(--green); }
svg .bar.errors { fill: var(--red); }
svg .bar.refused { fill: var(--amber); }
@media (max-width: 700px) { dl.counters { grid-template-columns: repeat(2, 1fr); } }
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_quotes_and_controls() {
        assert_eq!(
            esc("<script>\"a\"&'b'\u{1b}</script>"),
            "&lt;script&gt;&quot;a&quot;&amp;&#39;b&#39;\u{FFFD}&lt;/script&gt;"
        );
        assert_eq!(account_path("a b"), "/accounts/a%20b");
    }
}

//! The HTML pages: login, the operator's account list, the owner's panel, confirmation
//! pages and errors, as [`maud`] templates: every value spliced in is HTML-escaped by the
//! template itself (nothing is assembled with `format!`), and text from the store or the
//! request also has its control characters replaced ([`clean`]).

use mailguard_store::ScriptActivity;
use mailguard_store::{
    DayStats, ErrorEntry, QuarantineEntry, QuarantineRecord, Snapshot, Status, TransitionRecord,
    QUARANTINE_MAX_AGE, QUARANTINE_MAX_BYTES,
};
use maud::{html, Markup, DOCTYPE};

use super::advice::{self, Action};
use super::auth::{Principal, Role};
use super::chart;
use super::http::percent_encode;

/// Error log entries per page.
pub const ERRORS_PER_PAGE: u32 = 25;
/// Transitions shown on the page (newest first); the API has them all.
const TRANSITIONS_SHOWN: usize = 50;

/// Text from the store or the request, with control characters (other than newline and
/// tab) replaced: they have no business on the page. Escaping is the template's job.
pub fn clean(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() && c != '\n' && c != '\t' {
                '\u{FFFD}'
            } else {
                c
            }
        })
        .collect()
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

fn layout(title: &str, viewer: Option<&Viewer<'_>>, body: Markup) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (clean(title)) " · mailguard" }
                link rel="stylesheet" href="/static/style.css";
                link rel="icon" href="data:,";
            }
            body {
                header {
                    a.brand href="/" { "mailguard" } " " span.sub { "e-mail scripts" }
                    @if let Some(v) = viewer {
                        div.who {
                            (match v.principal.role { Role::Operator => "operator", Role::Account => "account" })
                            " " strong { (clean(&v.principal.name)) }
                            form.inline method="post" action="/logout" {
                                input type="hidden" name="csrf" value=(v.csrf);
                                button.link type="submit" { "Log out" }
                            }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
    .into_string()
        + "\n"
}

pub fn login(login_token: &str, problem: Option<&str>) -> String {
    layout(
        "Log in",
        None,
        html! {
            section.card.narrow {
                h1 { "Log in" }
                @if let Some(p) = problem { p.problem #login-problem { (clean(p)) } }
                form method="post" action="/login" {
                    input type="hidden" name="login_token" value=(login_token);
                    label { "Account or operator name" input name="user" #user autocomplete="username" required; }
                    label { "Password" input name="password" #password type="password" autocomplete="current-password" required; }
                    button type="submit" #login { "Log in" }
                }
            }
        },
    )
}

fn light(status: Status) -> Markup {
    let colour = status.colour().as_str();
    html! {
        span class={ "light " (colour) } #status-light data-status=(status.as_str())
            data-colour=(colour) role="img" aria-label=(colour) {}
    }
}

fn light_small(status: Status) -> Markup {
    let colour = status.colour().as_str();
    html! { span class={ "light small " (colour) } aria-label=(colour) {} }
}

pub fn account_list(viewer: &Viewer<'_>, snapshots: &[Snapshot]) -> String {
    layout(
        "Accounts",
        Some(viewer),
        html! {
            section.card {
                h1 { "Accounts" }
                table #accounts {
                    thead { tr { th {} th { "account" } th { "status" } th { "sent" } th { "today" } th { "errors" } th { "queued" } th { "held" } } }
                    tbody {
                        @for s in snapshots {
                            tr {
                                td { (light_small(s.status)) }
                                td { a href=(account_path(&s.account)) { (clean(&s.account)) } }
                                td { (s.status.as_str()) }
                                td.num { (s.sent_total) }
                                td.num { (s.sent_today) }
                                td.num { (s.errors_total) }
                                td.num { (s.queued) }
                                td.num { (s.held) }
                            }
                        }
                        @if snapshots.is_empty() {
                            tr { td colspan="8" { "No account has sent mail yet." } }
                        }
                    }
                }
            }
        },
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

fn error_code(e: &ErrorEntry) -> String {
    match (e.code, &e.enhanced) {
        (Some(c), Some(x)) => format!("{c} {x}"),
        (Some(c), None) => c.to_string(),
        (None, Some(x)) => x.clone(),
        (None, None) => String::new(),
    }
}

pub fn panel(viewer: &Viewer<'_>, p: &Panel<'_>) -> String {
    let s = p.snapshot;
    let base = account_path(&s.account);
    let advice = advice::for_status(s.status);
    let pages = p.errors_total.div_ceil(ERRORS_PER_PAGE as u64).max(1);
    let body = html! {
        @if viewer.principal.role == Role::Operator {
            p.crumbs { a href="/" { "All accounts" } }
        }
        h1 { "E-mail scripts of " span #account { (clean(&s.account)) } }
        @if let Some(n) = p.notice {
            p.notice #notice role="status" { (n) }
        }
        // Status and counters.
        section class={ "card status " (s.status.colour().as_str()) } #status {
            div.status-line {
                (light(s.status))
                div {
                    div.status-name {
                        "Service status: " strong #status-name { (s.status.as_str()) }
                        @if let Some(t) = s.since { " " span.since { "since " (t.to_string()) } }
                    }
                    p.meaning #status-meaning { (advice.meaning) }
                    p.todo #status-advice { (advice.what_to_do) }
                }
            }
            dl.counters {
                div { dt { "Sent in total" } dd #sent-total { (s.sent_total) } }
                div { dt { "Sent today" } dd #sent-today { (s.sent_today) } }
                div { dt { "Errors in total" } dd #errors-total { (s.errors_total) } }
                div { dt { "Refused in total" } dd #refused-total { (s.refused_total) } }
                div { dt { "Queued" } dd #queued { (s.queued) } }
                div { dt { "Held" } dd #held { (s.held) } }
            }
            p.report { "Daily error report to: " span #report-to { (s.report_to.as_deref().map(clean).unwrap_or_else(|| "(not set)".to_owned())) } }
        }
        // Actions.
        section.card #actions {
            h2 { "Actions" }
            div.actions {
                @for a in [Action::Block, Action::Unblock, Action::Purge] {
                    @match a.allowed(s.status) {
                        Ok(()) => {
                            a class={ "button " @if a == Action::Purge { "danger" } } id={ "action-" (a.as_str()) }
                                href={ (base) "/" (a.as_str()) } { (a.title()) }
                        }
                        Err(why) if a == Action::Unblock && s.status == Status::Spam => {
                            p.explain #unblock-explained { "Unblock is not available: " (why) }
                        }
                        Err(_) => {}
                    }
                }
            }
            p { a #quarantine-link href={ (base) "/quarantine" } { "Quarantine: refused spam kept for review" } }
            form.report-form method="get" action={ (base) "/track" } {
                label { "Track a message: recipient address or Message-ID "
                    input type="search" name="q" #track-q placeholder="customer@example.net"; }
                button type="submit" #track-button { "Track" }
            }
            form.report-form method="get" action={ (base) "/report-to" } {
                label { "Send the daily error report to "
                    input type="email" name="address" #report-address
                        value=(clean(s.report_to.as_deref().unwrap_or(""))) placeholder="you@example.org";
                }
                button type="submit" #action-report-to { "Change recipient…" }
            }
        }
        // History.
        section.card #history {
            h2 { "The last " (p.history.len()) " days" }
            (chart::history_svg(p.history))
        }
        // Scripts.
        section.card {
            h2 { "Scripts that sent mail in the last 24 hours" }
            table #scripts {
                thead { tr { th { "script" } th.num { "messages" } th.num { "sent" } th.num { "errors" } th.num { "refused" } } }
                tbody {
                    @for sc in p.scripts {
                        tr {
                            td.path { (clean(sc.file.as_deref().unwrap_or("(unknown script)"))) }
                            td.num { (sc.messages) } td.num { (sc.sent) } td.num { (sc.errors) } td.num { (sc.refused) }
                        }
                    }
                    @if p.scripts.is_empty() { tr { td colspan="5" { "No mail in the last 24 hours." } } }
                }
            }
        }
        // Error log, paged.
        section.card #errors {
            h2 { "Error log " span.count { "(" (p.errors_total) " in total; kept after purge and unblock)" } }
            table #error-log {
                thead { tr { th { "time" } th { "recipient" } th { "code" } th { "text" } th { "script" } } }
                tbody {
                    @for e in p.errors {
                        tr {
                            td.time { (e.time.to_string()) }
                            td { (clean(&e.recipient)) }
                            td { (clean(&error_code(e))) }
                            td { (clean(&e.text)) }
                            td.path { (clean(&e.origin.to_string())) }
                        }
                    }
                    @if p.errors.is_empty() { tr { td colspan="5" { "No errors on this page." } } }
                }
            }
            nav.pager {
                @if p.page > 1 { a #errors-prev href={ (base) "?page=" (p.page - 1) "#errors" } { "← newer" } }
                " " span { "page " (p.page) " of " (pages) } " "
                @if (p.page as u64) < pages { a #errors-next href={ (base) "?page=" (p.page + 1) "#errors" } { "older →" } }
            }
        }
        // Transitions, newest first.
        section.card {
            h2 { "Status changes" }
            table #transitions {
                thead { tr { th { "time" } th { "from" } th { "to" } th { "reason" } th { "by" } th { "detail" } } }
                tbody {
                    @for t in p.transitions.iter().rev().take(TRANSITIONS_SHOWN) {
                        tr class=[(!t.applied).then_some("observed")]
                            title=[(!t.applied).then_some("observe mode: recorded, not applied")] {
                            td.time { (t.time.to_string()) }
                            td { (t.from.as_str()) }
                            td { (t.to.as_str()) }
                            td { (clean(&t.reason)) }
                            td { (clean(&t.actor)) }
                            td { (clean(&t.detail)) }
                        }
                    }
                    @if p.transitions.is_empty() { tr { td colspan="6" { "No status change yet." } } }
                }
            }
        }
    };
    layout(&s.account, Some(viewer), body)
}

/// The confirmation step of an action: what it does, and a POST form with the CSRF token
/// and a checkbox that must be ticked.
pub fn confirm(
    viewer: &Viewer<'_>,
    account: &str,
    action: Action,
    status: Status,
    address: Option<&str>,
) -> String {
    let base = account_path(account);
    layout(
        action.title(),
        Some(viewer),
        html! {
            section.card.narrow #confirm {
                h1 { (action.title()) "?" }
                p { "Account " strong { (clean(account)) } ", now " (status.as_str()) "." }
                p { (action.consequence(status)) }
                @match (action, address) {
                    (Action::ReportTo, Some("") | None) => {
                        p { "The report recipient will be " strong { "cleared" } " (no daily report)." }
                    }
                    (Action::ReportTo, Some(a)) => {
                        p { "New recipient: " strong #confirm-address { (clean(a)) } }
                    }
                    _ => {}
                }
                form method="post" action={ (base) "/" (action.as_str()) } {
                    input type="hidden" name="csrf" value=(viewer.csrf);
                    input type="hidden" name="address" value=(address.unwrap_or(""));
                    label.check {
                        input type="checkbox" name="confirm" value="yes" #confirm-check required;
                        " Yes, " (action.title().to_lowercase())
                    }
                    button type="submit" #confirm-button class=[(action == Action::Purge).then_some("danger")] { "Confirm" }
                    " " a href=(base) #cancel { "Cancel" }
                }
            }
        },
    )
}

/// The account's quarantine: counters, the list with checkboxes for bulk release and
/// delete, and who released or deleted what.
pub fn quarantine(
    viewer: &Viewer<'_>,
    snap: &Snapshot,
    rows: &[QuarantineEntry],
    (count, bytes): (u64, u64),
    log: &[QuarantineRecord],
    notice: Option<&'static str>,
) -> String {
    let base = account_path(&snap.account);
    layout(
        "Quarantine",
        Some(viewer),
        html! {
            p.crumbs { a href=(base) { "← " (clean(&snap.account)) } }
            h1 { "Quarantine of " (clean(&snap.account)) }
            @if let Some(n) = notice { p.notice #notice role="status" { (n) } }
            section.card {
                p { "Mail refused as spam is kept here for review (at most "
                    (QUARANTINE_MAX_BYTES >> 20) " MB or " (QUARANTINE_MAX_AGE.as_secs() / 86_400)
                    " days per account; the oldest goes first). Releasing a message queues it for \
                    delivery and counts it as sent; it teaches the filter nothing." }
                dl.counters {
                    div { dt { "In quarantine" } dd #quarantine-count { (count) } }
                    div { dt { "Quarantined bytes" } dd #quarantine-bytes { (bytes) } }
                    div { dt { "Refused in total" } dd #refused-total { (snap.refused_total) } }
                    div { dt { "Queued" } dd #queued { (snap.queued) } }
                    div { dt { "Sent in total" } dd #sent-total { (snap.sent_total) } }
                    div { dt { "Status" } dd #status-name { (snap.status.as_str()) } }
                }
            }
            section.card {
                form method="post" action={ (base) "/quarantine" } #quarantine-form {
                    input type="hidden" name="csrf" value=(viewer.csrf);
                    table #quarantine {
                        thead { tr { th {} th { "refused" } th { "to" } th { "subject" } th { "verdict" } th { "script" } th.num { "bytes" } } }
                        tbody {
                            @for e in rows {
                                tr data-id=(e.id.0) {
                                    td { input type="checkbox" name="id" value=(e.id.0) id={ "pick-" (e.id.0) } aria-label={ "message " (e.id.0) }; }
                                    td.time { a href={ (base) "/quarantine/" (e.id.0) } id={ "show-" (e.id.0) } { (e.created.to_string()) } }
                                    td { (clean(&e.recipients.join(", "))) }
                                    td { (clean(&e.subject)) }
                                    td { (verdict_text(e)) }
                                    td.path { (clean(&e.origin.to_string())) }
                                    td.num { (e.size) }
                                }
                            }
                            @if rows.is_empty() { tr { td colspan="7" { "Nothing in quarantine." } } }
                        }
                    }
                    @if !rows.is_empty() {
                        div.actions {
                            button type="submit" name="action" value="release" #release-selected { "Release selected" }
                            button.danger type="submit" name="action" value="delete" #delete-selected { "Delete selected" }
                        }
                    }
                }
            }
            section.card {
                h2 { "Released and deleted" }
                table #quarantine-log {
                    thead { tr { th { "time" } th { "action" } th { "message" } th { "subject" } th { "by" } } }
                    tbody {
                        @for r in log {
                            tr { td.time { (r.time.to_string()) } td { (r.action) } td { (r.message.0) } td { (clean(&r.subject)) } td { (clean(&r.actor)) } }
                        }
                        @if log.is_empty() { tr { td colspan="5" { "Nothing released or deleted yet." } } }
                    }
                }
            }
        },
    )
}

fn verdict_text(e: &QuarantineEntry) -> String {
    match &e.spam {
        Some(s) => clean(&format!("score {} ({})", s.score, s.rules.join(", "))),
        None => clean(&e.verdict),
    }
}

/// One quarantined message.
pub fn quarantined(viewer: &Viewer<'_>, account: &str, view: &super::quarantine::View) -> String {
    let base = account_path(account);
    let e = &view.entry;
    layout(
        "Quarantined message",
        Some(viewer),
        html! {
            p.crumbs { a href={ (base) "/quarantine" } { "← Quarantine" } }
            h1 { "Message " (e.id.0) }
            section.card #quarantined {
                p { "Refused " (e.created.to_string()) " from " span.path { (clean(&e.origin.to_string())) } }
                p #verdict { "Verdict: " strong { (clean(&e.verdict)) } }
                @if let Some(s) = &e.spam {
                    ul #reasons { @for r in &s.rules { li { (clean(r)) } } }
                }
                h2 { "Headers" }
                table #headers { tbody { @for (k, v) in &view.headers { tr { th { (clean(k)) } td { (clean(v)) } } } } }
                @if view.full {
                    h2 { "The whole message (operator)" }
                    pre #message { (clean(&view.text)) }
                } @else {
                    h2 { "Preview (addresses, links and long numbers masked)" }
                    pre #preview { (clean(&view.text)) }
                }
                @if !e.kept { p.problem { "The body was not kept (disk reserve or queue cap): it cannot be released." } }
                form method="post" action={ (base) "/quarantine" } {
                    input type="hidden" name="csrf" value=(viewer.csrf);
                    input type="hidden" name="id" value=(e.id.0);
                    div.actions {
                        @if e.kept { button type="submit" name="action" value="release" #release { "Release (deliver it)" } }
                        button.danger type="submit" name="action" value="delete" #delete { "Delete" }
                    }
                }
            }
        },
    )
}

/// The path of each message found by the search.
pub fn track(
    viewer: &Viewer<'_>,
    account: &str,
    q: &str,
    found: &[mailguard_store::Tracked],
) -> String {
    let base = account_path(account);
    layout(
        "Track",
        Some(viewer),
        html! {
            p.crumbs { a href=(base) { "← " (clean(account)) } }
            h1 { "Track mail of " (clean(account)) }
            section.card {
                form.report-form method="get" action={ (base) "/track" } {
                    label { "Recipient address or Message-ID "
                        input type="search" name="q" #track-q value=(clean(q)) placeholder="customer@example.net"; }
                    button type="submit" #track-button { "Track" }
                }
                p.count { @if q.trim().is_empty() { "The last 24 hours." } @else { (found.len()) " message(s)." } }
            }
            @for t in found {
                section.card.tracked data-id=(t.id.0) {
                    h2 { "Message " (t.id.0) " · " (t.state) }
                    p { "From " (clean(&t.envelope_from)) " to " (clean(&t.recipients.join(", "))) ": “" (clean(&t.subject)) "”"
                        @if let Some(m) = &t.message_id { " · <" (clean(m)) ">" } }
                    p { "Origin: " span.path { (clean(&t.origin.to_string())) } }
                    table.track-steps {
                        thead { tr { th { "time" } th { "step" } th { "reply or detail" } } }
                        tbody { @for s in &t.steps { tr { td.time { (s.time.to_string()) } td { (s.what) } td { (clean(&s.detail)) } } } }
                    }
                }
            }
            @if found.is_empty() { section.card { p #track-none { "No message matches." } } }
        },
    )
}

/// An error page with a way back.
pub fn problem(viewer: Option<&Viewer<'_>>, title: &str, text: &str, back: &str) -> String {
    layout(
        title,
        viewer,
        html! {
            section.card.narrow {
                h1 { (clean(title)) }
                p.problem #problem { (clean(text)) }
                p { a href=(back) { "Back" } }
            }
        },
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
pre { white-space: pre-wrap; overflow-wrap: anywhere; background: #f6f8fb; padding: .6em; border-radius: 6px; max-height: 30em; overflow: auto; }
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
    fn templates_escape_markup_and_quotes_and_clean_controls() {
        let out = problem(None, "t", "<script>\"a\"&'b'\u{1b}</script>", "/\"x");
        assert!(
            out.contains("&lt;script&gt;&quot;a&quot;&amp;'b'\u{FFFD}&lt;/script&gt;"),
            "{out}"
        );
        assert!(out.contains("href=\"/&quot;x\""), "{out}");
        assert_eq!(account_path("a b"), "/accounts/a%20b");
    }
}

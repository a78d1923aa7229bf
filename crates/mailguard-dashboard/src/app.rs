//! The dashboard application: routing, the HTML side (login, sessions, CSRF-checked
//! forms), store access and the actions shared with the API.
//!
//! Store access: each server thread keeps its own [`Store`] (one SQLite connection);
//! every call is one short transaction (reads are WAL snapshots that never block the
//! extension or the runner; writes are the store's own `BEGIN IMMEDIATE` operator
//! actions). A connection that failed is dropped and reopened on the next request.

use std::cell::RefCell;
use std::path::PathBuf;

use mailguard_store::{now, Snapshot, Store, StoreError};
use serde_json::{json, Value};

use super::advice::Action;
use super::auth::{secrets_equal, Attempt, Auth, AuthFailure, Principal, Session};
use super::http::{form_value, Request, Response};
use super::pages::{self, Viewer, ERRORS_PER_PAGE};
use super::quarantine;

pub const SESSION_COOKIE: &str = "mg_session";
const LOGIN_COOKIE: &str = "mg_login";
/// Set at a successful login: this browser logged in as this name before, so the login
/// throttle checks its password even while someone else's failures throttle the name.
const DEVICE_COOKIE: &str = "mg_device";

/// Configuration and state of one running dashboard.
pub struct App {
    pub state_dir: PathBuf,
    pub auth: Auth,
    /// Add `Secure` to cookies (set when the dashboard is served over HTTPS by a proxy).
    pub secure_cookie: bool,
    /// The one peer address that may read `/metrics` without credentials.
    pub metrics_scrape: Option<std::net::IpAddr>,
    /// The `Host` values accepted (lower case, with the port); any other is refused.
    pub hosts: Vec<String>,
}

thread_local! {
    static STORE: RefCell<Option<Store>> = const { RefCell::new(None) };
}

/// Why an action or a report could not be done; each maps to one HTTP status.
#[derive(Debug)]
pub enum Fail {
    BadInput(String),
    Forbidden(String),
    NotFound(String),
    /// The status machine refused (e.g. unblock in spam status).
    Refused(String),
    Store(StoreError),
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Fail {
        match e {
            StoreError::Refused { .. } => Fail::Refused(e.to_string()),
            e => Fail::Store(e),
        }
    }
}

impl Fail {
    pub fn status(&self) -> u16 {
        match self {
            Fail::BadInput(_) => 400,
            Fail::Forbidden(_) => 403,
            Fail::NotFound(_) => 404,
            Fail::Refused(_) => 409,
            Fail::Store(e) if e.is_transient() => 503,
            Fail::Store(_) => 500,
        }
    }

    pub fn message(&self) -> String {
        match self {
            Fail::BadInput(m) | Fail::Forbidden(m) | Fail::NotFound(m) | Fail::Refused(m) => {
                m.clone()
            }
            Fail::Store(e) => e.to_string(),
        }
    }
}

/// A report-to address: one plain `local@domain`, no spaces, lists or display names.
pub fn check_address(a: &str) -> Result<(), Fail> {
    let bad = |why: &str| Err(Fail::BadInput(format!("report-to address: {why}")));
    if a.len() > 254 {
        return bad("longer than 254 characters");
    }
    if a.chars()
        .any(|c| c.is_control() || c.is_whitespace() || "<>,;\"()[]\\".contains(c))
    {
        return bad("must be one plain address like owner@example.org");
    }
    match a.split_once('@') {
        Some((local, domain))
            if !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && !domain.starts_with('.')
                && !domain.ends_with('.') =>
        {
            Ok(())
        }
        _ => bad("must be one plain address like owner@example.org"),
    }
}

impl App {
    /// Runs `f` on this thread's store connection.
    pub fn store<T>(&self, f: impl FnOnce(&mut Store) -> Result<T, StoreError>) -> Result<T, Fail> {
        STORE.with(|cell| {
            let mut slot = cell.borrow_mut();
            if slot.is_none() {
                *slot = Some(Store::open(&self.state_dir)?);
            }
            let Some(store) = slot.as_mut() else {
                unreachable!("the store was just opened")
            };
            let r = f(store);
            if matches!(r, Err(StoreError::Db { .. } | StoreError::StateDir { .. })) {
                *slot = None;
            }
            r.map_err(Fail::from)
        })
    }

    /// The accounts `p` may see: all for an operator, its own for an owner.
    pub fn visible_accounts(&self, p: &Principal) -> Result<Vec<String>, Fail> {
        let all = self.store(|s| s.accounts())?;
        Ok(match p.role {
            super::auth::Role::Operator => all,
            super::auth::Role::Account => vec![p.name.clone()],
        })
    }

    /// Access check: the owner of A never reaches B (403, whether B exists or not); an
    /// operator gets 404 for an account the store does not know. An owner's own account
    /// may not be in the store yet (no mail so far): it shows as active with zeros.
    pub fn authorize(&self, p: &Principal, account: &str) -> Result<(), Fail> {
        if !p.may_access(account) {
            return Err(Fail::Forbidden(format!(
                "{} may not see or act on account {account}",
                p.name
            )));
        }
        if p.role == super::auth::Role::Operator
            && !self.store(|s| s.accounts())?.iter().any(|a| a == account)
        {
            return Err(Fail::NotFound(format!("no account {account}")));
        }
        Ok(())
    }

    pub fn snapshot(&self, account: &str) -> Result<Snapshot, Fail> {
        self.store(|s| s.status_snapshot(account, now()))
    }

    /// Does `action` on `account` as `p` (already authorized); returns what happened.
    pub fn perform(
        &self,
        p: &Principal,
        account: &str,
        action: Action,
        address: Option<&str>,
    ) -> Result<Value, Fail> {
        let actor = p.actor();
        let t = now();
        let change = match action {
            Action::Block => self.store(|s| s.block(account, &actor, t))?,
            Action::Unblock => self.store(|s| s.unblock(account, &actor, t))?,
            Action::Purge => self.store(|s| s.purge(account, &actor, t))?,
            Action::ReportTo => {
                let address = address.map(str::trim).filter(|a| !a.is_empty());
                if let Some(a) = address {
                    check_address(a)?;
                }
                self.store(|s| s.set_report_to(account, address, t))?;
                return Ok(
                    json!({"account": account, "action": "report-to", "report_to": address}),
                );
            }
        };
        Ok(json!({
            "account": account,
            "action": action.as_str(),
            "from": change.from.as_str(),
            "to": change.to.as_str(),
            "messages": change.messages,
        }))
    }

    /// Is `Host` one this dashboard was configured for? (A missing Host, allowed in
    /// HTTP/1.0, is refused too: DNS rebinding pages always send one, proxies as well.)
    pub fn host_allowed(&self, host: Option<&str>) -> bool {
        host.map(|h| h.trim().to_ascii_lowercase())
            .is_some_and(|h| self.hosts.contains(&h))
    }

    pub(crate) fn html_problem(
        &self,
        viewer: Option<&Viewer<'_>>,
        status: u16,
        title: &str,
        text: &str,
    ) -> Response {
        Response::html(status, pages::problem(viewer, title, text, "/"))
    }

    fn cookie(&self, name: &str, value: &str, max_age: Option<u64>) -> String {
        format!(
            "{name}={value}; Path=/; HttpOnly; SameSite=Strict{}{}",
            max_age
                .map(|a| format!("; Max-Age={a}"))
                .unwrap_or_default(),
            if self.secure_cookie { "; Secure" } else { "" }
        )
    }

    fn session(&self, req: &Request) -> Option<Session> {
        self.auth.session(&req.cookie(SESSION_COOKIE)?)
    }

    /// Defence in depth before the CSRF token: refuse a form post that the browser marks
    /// as coming from another site (`Sec-Fetch-Site`) or that names a foreign `Origin`.
    /// `Origin: null` is what our own forms send under `Referrer-Policy: no-referrer`,
    /// so it tells nothing and the token decides.
    fn same_origin(req: &Request) -> bool {
        if let Some(site) = req.header("sec-fetch-site") {
            if !matches!(site, "same-origin" | "none") {
                return false;
            }
        }
        match (req.header("origin"), req.header("host")) {
            (None | Some("null"), _) => true,
            (Some(o), Some(host)) => {
                o.strip_prefix("http://")
                    .or_else(|| o.strip_prefix("https://"))
                    == Some(host)
            }
            (Some(_), None) => false,
        }
    }

    /// The session of a state-changing form post, with its CSRF token checked.
    fn checked_post(&self, req: &Request) -> Result<(Session, Vec<(String, String)>), Response> {
        let Some(s) = self.session(req) else {
            return Err(Response::redirect("/login"));
        };
        let form = req.form();
        let token = form_value(&form, "csrf").unwrap_or("");
        if !Self::same_origin(req) || !secrets_equal(token, &s.csrf) {
            let v = Viewer {
                principal: &s.principal,
                csrf: &s.csrf,
            };
            return Err(self.html_problem(
                Some(&v),
                403,
                "Request refused",
                "The form's security token is missing or wrong (the page may be old, or the \
                 request came from another site). Reload the page and try again.",
            ));
        }
        Ok((s, form))
    }

    pub(crate) fn login_page(&self, problem: Option<&str>, status: u16) -> Response {
        let token = super::auth::hex(&super::auth::random_bytes::<32>());
        Response::html(status, pages::login(&token, problem))
            .with_header("Set-Cookie", self.cookie(LOGIN_COOKIE, &token, Some(900)))
    }

    pub(crate) fn login(&self, req: &Request) -> Response {
        let form = req.form();
        // Login CSRF: the form's token must match the cookie set with the form.
        let token = form_value(&form, "login_token").unwrap_or("");
        let cookie = req.cookie(LOGIN_COOKIE).unwrap_or_default();
        if token.is_empty() || !secrets_equal(token, &cookie) || !Self::same_origin(req) {
            return self.login_page(Some("The login form expired; please try again."), 403);
        }
        let user = form_value(&form, "user").unwrap_or("").trim();
        let password = form_value(&form, "password").unwrap_or("");
        let attempt = match req.cookie(DEVICE_COOKIE) {
            Some(d) if self.auth.device_trusted(&d, user) => Attempt::Trusted,
            _ => Attempt::Form,
        };
        match self.auth.check_password(user, password, req.peer, attempt) {
            Ok(c) => {
                let (id, _) = self.auth.start_session(&c);
                let device = self.auth.device_cookie(&c);
                Response::redirect("/")
                    .with_header("Set-Cookie", self.cookie(SESSION_COOKIE, &id, None))
                    .with_header(
                        "Set-Cookie",
                        self.cookie(DEVICE_COOKIE, &device, Some(30 * 86400)),
                    )
                    .with_header("Set-Cookie", self.cookie(LOGIN_COOKIE, "", Some(0)))
            }
            Err(AuthFailure::Invalid) => self.login_page(Some("Wrong name or password."), 401),
            Err(AuthFailure::Throttled) => {
                self.login_page(Some("Too many failed attempts; wait ten minutes."), 429)
            }
        }
    }

    pub(crate) fn logout(&self, req: &Request) -> Response {
        match self.checked_post(req) {
            Ok(_) => {
                if let Some(id) = req.cookie(SESSION_COOKIE) {
                    self.auth.end_session(&id);
                }
                Response::redirect("/login")
                    .with_header("Set-Cookie", self.cookie(SESSION_COOKIE, "", Some(0)))
            }
            Err(r) => r,
        }
    }

    pub(crate) fn index(&self, req: &Request) -> Response {
        let Some(s) = self.session(req) else {
            return Response::redirect("/login");
        };
        if s.principal.role == super::auth::Role::Account {
            return Response::redirect(&pages::account_path(&s.principal.name));
        }
        let v = Viewer {
            principal: &s.principal,
            csrf: &s.csrf,
        };
        let snaps: Result<Vec<Snapshot>, Fail> = self
            .visible_accounts(&s.principal)
            .and_then(|all| all.iter().map(|a| self.snapshot(a)).collect());
        match snaps {
            Ok(snaps) => Response::html(200, pages::account_list(&v, &snaps)),
            Err(e) => self.html_problem(
                Some(&v),
                e.status(),
                "Cannot show the accounts",
                &e.message(),
            ),
        }
    }

    pub(crate) fn panel(&self, req: &Request, account: &str) -> Response {
        let Some(s) = self.session(req) else {
            return Response::redirect("/login");
        };
        let v = Viewer {
            principal: &s.principal,
            csrf: &s.csrf,
        };
        let page = req
            .query_value("page")
            .and_then(|p| p.parse::<u32>().ok())
            .filter(|p| (1..=100_000).contains(p))
            .unwrap_or(1);
        let notice = req.query_value("done").and_then(|d| match d {
            "block" => Some("Sending is blocked."),
            "unblock" => Some("Sending is unblocked."),
            "purge" => Some("The queue was purged."),
            "report-to" => Some("The report recipient was changed."),
            _ => None,
        });
        let result = (|| -> Result<Response, Fail> {
            self.authorize(&s.principal, account)?;
            let t = now();
            let snapshot = self.snapshot(account)?;
            let history = self.store(|st| st.history(account, 30, t))?;
            let errors_total = self.store(|st| st.errors_count(account))?;
            let errors =
                self.store(|st| st.errors(account, ERRORS_PER_PAGE, (page - 1) * ERRORS_PER_PAGE))?;
            let scripts = self.store(|st| {
                st.script_activity(account, t.minus(std::time::Duration::from_secs(86_400)), 20)
            })?;
            let transitions = self.store(|st| st.transitions(account))?;
            Ok(Response::html(
                200,
                pages::panel(
                    &v,
                    &pages::Panel {
                        snapshot: &snapshot,
                        history: &history,
                        errors: &errors,
                        errors_total,
                        page,
                        scripts: &scripts,
                        transitions: &transitions,
                        notice,
                    },
                ),
            ))
        })();
        result.unwrap_or_else(|e| {
            self.html_problem(
                Some(&v),
                e.status(),
                "Cannot show this account",
                &e.message(),
            )
        })
    }

    pub(crate) fn confirm(&self, req: &Request, account: &str, action: &str) -> Response {
        let Some(s) = self.session(req) else {
            return Response::redirect("/login");
        };
        let v = Viewer {
            principal: &s.principal,
            csrf: &s.csrf,
        };
        let Some(action) = Action::parse(action) else {
            return self.html_problem(Some(&v), 404, "Not found", "There is no such action.");
        };
        let result = (|| -> Result<Response, Fail> {
            self.authorize(&s.principal, account)?;
            let snap = self.snapshot(account)?;
            action.allowed(snap.status).map_err(Fail::Refused)?;
            let address = req.query_value("address").map(str::trim);
            if let Some(a) = address.filter(|a| !a.is_empty()) {
                check_address(a)?;
            }
            Ok(Response::html(
                200,
                pages::confirm(&v, account, action, snap.status, address),
            ))
        })();
        result.unwrap_or_else(|e| {
            self.html_problem(Some(&v), e.status(), action.title(), &e.message())
        })
    }

    pub(crate) fn act(&self, req: &Request, account: &str, action: &str) -> Response {
        let (s, form) = match self.checked_post(req) {
            Ok(x) => x,
            Err(r) => return r,
        };
        let v = Viewer {
            principal: &s.principal,
            csrf: &s.csrf,
        };
        let Some(action) = Action::parse(action) else {
            return self.html_problem(Some(&v), 404, "Not found", "There is no such action.");
        };
        let result = (|| -> Result<Response, Fail> {
            self.authorize(&s.principal, account)?;
            if form_value(&form, "confirm") != Some("yes") {
                return Err(Fail::BadInput(
                    "Tick the confirmation box to confirm the action.".into(),
                ));
            }
            self.perform(&s.principal, account, action, form_value(&form, "address"))?;
            Ok(Response::redirect(&format!(
                "{}?done={}",
                pages::account_path(account),
                action.as_str()
            )))
        })();
        result.unwrap_or_else(|e| {
            self.html_problem(Some(&v), e.status(), action.title(), &e.message())
        })
    }
}

impl App {
    /// What the panel's search and the API's `track` look up in `account`: an address
    /// (with `@`) as a recipient, anything else as a Message-ID; empty: the last 24 hours.
    pub fn track(
        &self,
        p: &Principal,
        account: &str,
        q: &str,
    ) -> Result<Vec<mailguard_store::Tracked>, Fail> {
        self.authorize(p, account)?;
        let q = q.trim();
        if q.len() > 320 {
            return Err(Fail::BadInput(
                "the search is longer than 320 characters".into(),
            ));
        }
        let mut query = mailguard_store::TrackQuery {
            account: Some(account.to_owned()),
            ..mailguard_store::TrackQuery::default()
        };
        if q.is_empty() {
            query.since = Some(now().minus(std::time::Duration::from_secs(86_400)));
        } else if q.contains('@') && !q.starts_with('<') {
            query.recipient = Some(q.to_owned());
        } else {
            query.message_id = Some(q.to_owned());
        }
        self.store(|s| s.track(&query, 50))
    }

    /// The search page: each matching message's path.
    pub(crate) fn track_page(&self, req: &Request, account: &str) -> Response {
        let Some(s) = self.session(req) else {
            return Response::redirect("/login");
        };
        let v = Viewer {
            principal: &s.principal,
            csrf: &s.csrf,
        };
        let q = req.query_value("q").unwrap_or("");
        match self.track(&s.principal, account, q) {
            Ok(found) => Response::html(200, pages::track(&v, account, q, &found)),
            Err(e) => self.html_problem(Some(&v), e.status(), "Track", &e.message()),
        }
    }

    /// The quarantine page: the account's refused spam, with bulk release and delete.
    pub(crate) fn quarantine_page(&self, req: &Request, account: &str) -> Response {
        let Some(s) = self.session(req) else {
            return Response::redirect("/login");
        };
        let v = Viewer {
            principal: &s.principal,
            csrf: &s.csrf,
        };
        let notice = match req.query_value("done") {
            Some("release") => Some("Released: the messages are queued for delivery."),
            Some("delete") => Some("Deleted."),
            Some("partly") => Some("Some messages could not be released or deleted (see the log)."),
            _ => None,
        };
        let result = (|| -> Result<Response, Fail> {
            let (rows, totals) = quarantine::list(self, &s.principal, account)?;
            let snap = self.snapshot(account)?;
            let log = self.store(|st| st.quarantine_log(Some(account), 20))?;
            Ok(Response::html(
                200,
                pages::quarantine(&v, &snap, &rows, totals, &log, notice),
            ))
        })();
        result
            .unwrap_or_else(|e| self.html_problem(Some(&v), e.status(), "Quarantine", &e.message()))
    }

    /// One quarantined message: headers, verdict, preview (owner) or message (operator).
    pub(crate) fn quarantine_message(&self, req: &Request, account: &str, id: &str) -> Response {
        let Some(s) = self.session(req) else {
            return Response::redirect("/login");
        };
        let v = Viewer {
            principal: &s.principal,
            csrf: &s.csrf,
        };
        let result = (|| -> Result<Response, Fail> {
            let ids = quarantine::parse_ids([id])?;
            let view = quarantine::view(self, &s.principal, account, ids[0])?;
            Ok(Response::html(200, pages::quarantined(&v, account, &view)))
        })();
        result.unwrap_or_else(|e| {
            self.html_problem(Some(&v), e.status(), "Quarantined message", &e.message())
        })
    }

    /// The bulk form (and each message's buttons): `action` release or delete, `id` once
    /// per message.
    pub(crate) fn quarantine_post(&self, req: &Request, account: &str) -> Response {
        let (s, form) = match self.checked_post(req) {
            Ok(x) => x,
            Err(r) => return r,
        };
        let v = Viewer {
            principal: &s.principal,
            csrf: &s.csrf,
        };
        let result = (|| -> Result<Response, Fail> {
            let release = match form_value(&form, "action") {
                Some("release") => true,
                Some("delete") => false,
                _ => return Err(Fail::BadInput("Choose release or delete.".into())),
            };
            let ids = quarantine::parse_ids(
                form.iter()
                    .filter(|(k, _)| k == "id")
                    .map(|(_, v)| v.as_str()),
            )?;
            if ids.is_empty() {
                return Err(Fail::BadInput("Tick at least one message.".into()));
            }
            let r = quarantine::act(self, &s.principal, account, &ids, release)?;
            let all = r["done"].as_u64() == Some(ids.len() as u64);
            let done = match (all, release) {
                (false, _) => "partly",
                (true, true) => "release",
                (true, false) => "delete",
            };
            Ok(Response::redirect(&format!(
                "{}/quarantine?done={done}",
                pages::account_path(account)
            )))
        })();
        result
            .unwrap_or_else(|e| self.html_problem(Some(&v), e.status(), "Quarantine", &e.message()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert!(check_address("owner@example.org").is_ok());
        for bad in [
            "",
            "a",
            "@x",
            "a@",
            "a b@x",
            "a@x,b@y",
            "<a@x>",
            "a@b@c",
            "a@.x",
            "a@x\r\nBcc: y",
        ] {
            assert!(check_address(bad).is_err(), "{bad}");
        }
    }
}

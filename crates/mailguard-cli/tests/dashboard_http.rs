//! `mailguard dashboard` over real HTTP: the binary on a free loopback port, a temp state
//! directory filled through the store API, every route, auth failures, CSRF, each
//! action's effect on the store, escaping of hostile data and the metrics format.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

use mailguard_store::{
    now, Failure, Limits, Mode, Origin, Outcome, Status, Store, Submission, Timestamp,
};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_mailguard");
const HOSTILE: &str = "<script>alert(1)</script>";
const SITE1_PW: &str = "site1-password-long";
const SITE2_PW: &str = "site2-password-long";
const ADMIN_PW: &str = "admin-password-long";

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn cookies(&self) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn cookie(&self, name: &str) -> Option<String> {
        self.cookies()
            .into_iter()
            .filter_map(|c| c.split(';').next())
            .filter_map(|c| c.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_owned())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

struct Dashboard {
    child: Child,
    addr: String,
    dir: tempfile::TempDir,
    /// Holds the credentials file, apart from the state directory (as /etc/mailguard).
    _etc: tempfile::TempDir,
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn passwd(auth_file: &std::path::Path, role: &str, name: &str, pw: &str) {
    let mut c = Command::new(BIN)
        .args([
            "dashboard",
            "passwd",
            role,
            name,
            "--iterations",
            "1000",
            "--auth-file",
        ])
        .arg(auth_file)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    writeln!(c.stdin.take().unwrap(), "{pw}").unwrap();
    assert!(c.wait().unwrap().success());
}

fn origin(file: &str) -> Origin {
    Origin {
        file: Some(file.to_owned()),
        line: Some(12),
        sapi: Some("web".into()),
        ..Origin::default()
    }
}

fn submit(store: &mut Store, account: &str, file: &str, t: Timestamp) -> Option<i64> {
    let rcpt = vec!["someone@example.org".to_owned()];
    let o = origin(file);
    store
        .submit(
            account,
            &Limits::default(),
            Submission {
                raw: b"Subject: hello\r\n\r\nbody\r\n",
                envelope_from: "site@example.org",
                recipients: &rcpt,
                origin: &o,
                spam: None,
            },
            t,
            Mode::Enforce,
        )
        .unwrap()
        .id
        .map(|i| i.0)
}

/// site1: 3 sent, 2 failed (one with hostile recipient, text and script path), 1 held
/// after a block and unblock; site2: 1 sent.
fn fill(dir: &std::path::Path) {
    let mut store = Store::open(dir).unwrap();
    let t = now();
    for _ in 0..3 {
        let id = submit(&mut store, "site1", "/var/www/contact.php", t).unwrap();
        store
            .record_delivery(
                mailguard_store::MessageId(id),
                &Outcome::Sent { rejected: vec![] }.into(),
                t,
            )
            .unwrap();
    }
    for (rcpt, text, file) in [
        (
            "nobody@example.org",
            "mailbox unavailable",
            "/var/www/news.php",
        ),
        (HOSTILE, HOSTILE, HOSTILE),
    ] {
        let id = submit(&mut store, "site1", file, t).unwrap();
        store
            .record_delivery(
                mailguard_store::MessageId(id),
                &Outcome::PermFail(vec![Failure {
                    recipient: rcpt.into(),
                    code: Some(550),
                    enhanced: Some("5.1.1".into()),
                    text: text.into(),
                }])
                .into(),
                t,
            )
            .unwrap();
    }
    let id = submit(&mut store, "site2", "/srv/b/index.php", t).unwrap();
    store
        .record_delivery(
            mailguard_store::MessageId(id),
            &Outcome::Sent { rejected: vec![] }.into(),
            t,
        )
        .unwrap();
}

fn start_with(extra: &[&str]) -> Dashboard {
    let etc = tempfile::tempdir().unwrap();
    let auth = etc.path().join("dashboard-auth");
    passwd(&auth, "--account", "site1", SITE1_PW);
    passwd(&auth, "--account", "site2", SITE2_PW);
    passwd(&auth, "--operator", "admin", ADMIN_PW);
    let (d, _) = start_on(etc, Stdio::inherit(), extra);
    d
}

/// Starts the dashboard on a filled state directory with the credentials in
/// `etc/dashboard-auth`; also returns its stderr when `stderr` is piped.
fn start_on(
    etc: tempfile::TempDir,
    stderr: Stdio,
    extra: &[&str],
) -> (Dashboard, Option<std::process::ChildStderr>) {
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path());
    let mut child = Command::new(BIN)
        .args(["dashboard", "--listen", "127.0.0.1:0", "--state-dir"])
        .arg(dir.path())
        .arg("--auth-file")
        .arg(etc.path().join("dashboard-auth"))
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("mailguard dashboard: listening on http://")
        .and_then(|a| a.strip_suffix('/'))
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
        .to_owned();
    let stderr = child.stderr.take();
    (
        Dashboard {
            child,
            addr,
            dir,
            _etc: etc,
        },
        stderr,
    )
}

fn start() -> Dashboard {
    start_with(&[])
}

impl Dashboard {
    fn store(&self) -> Store {
        Store::open(self.dir.path()).unwrap()
    }

    fn status(&self, account: &str) -> Status {
        self.store().status_snapshot(account, now()).unwrap().status
    }

    fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
        let mut s = TcpStream::connect(&self.addr).unwrap();
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
            req.push_str(&format!("Host: {}\r\n", self.addr));
        }
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        req.push_str(body);
        s.write_all(req.as_bytes()).unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).unwrap();
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect();
        Reply {
            status,
            headers,
            body: body.to_owned(),
        }
    }

    fn get(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        self.request("GET", path, headers, "")
    }

    /// Logs in through the form; returns the session cookie header value.
    fn login(&self, user: &str, pw: &str) -> String {
        let form = self.get("/login", &[]);
        assert_eq!(form.status, 200);
        let token = form.cookie("mg_login").expect("login cookie");
        assert!(form.body.contains(&format!("value=\"{token}\"")));
        let r = self.request(
            "POST",
            "/login",
            &[
                ("Cookie", &format!("mg_login={token}")),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            &format!("login_token={token}&user={user}&password={pw}"),
        );
        assert_eq!(r.status, 303, "{}", r.body);
        let set = r
            .cookies()
            .into_iter()
            .find(|c| c.starts_with("mg_session="))
            .expect("session cookie")
            .to_owned();
        assert!(
            set.contains("HttpOnly") && set.contains("SameSite=Strict"),
            "{set}"
        );
        format!("mg_session={}", r.cookie("mg_session").unwrap())
    }

    /// The CSRF token of the session, read from a page.
    fn csrf(&self, cookie: &str, page: &str) -> String {
        let r = self.get(page, &[("Cookie", cookie)]);
        assert_eq!(r.status, 200, "{}", r.body);
        let at = r.body.find("name=\"csrf\" value=\"").expect("csrf field") + 19;
        r.body[at..at + 64].to_owned()
    }

    fn post_form(&self, path: &str, cookie: &str, body: &str) -> Reply {
        self.request(
            "POST",
            path,
            &[
                ("Cookie", cookie),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            body,
        )
    }

    fn api(&self, method: &str, path: &str, token: &str, body: &str) -> Reply {
        let auth = format!("Bearer {token}");
        self.request(
            method,
            path,
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            body,
        )
    }
}

fn assert_security_headers(r: &Reply) {
    let csp = r.header("content-security-policy").expect("CSP");
    for part in [
        "default-src 'none'",
        "style-src 'self'",
        "img-src 'self' data:",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(part), "{csp}");
    }
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(r.header("referrer-policy"), Some("no-referrer"));
    assert_eq!(r.header("x-frame-options"), Some("DENY"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
}

#[test]
fn login_panel_and_escaping() {
    let d = start();
    let r = d.get("/", &[]);
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some("/login"));
    assert_security_headers(&r);
    assert_eq!(d.get("/accounts/site1", &[]).status, 303);

    // Wrong password, missing login token.
    let form = d.get("/login", &[]);
    let token = form.cookie("mg_login").unwrap();
    let wrong = d.post_form(
        "/login",
        &format!("mg_login={token}"),
        &format!("login_token={token}&user=site1&password=nope"),
    );
    assert_eq!(wrong.status, 401);
    assert!(wrong.cookie("mg_session").is_none());
    let no_token = d.post_form("/login", "", &format!("user=site1&password={SITE1_PW}"));
    assert_eq!(no_token.status, 403);
    assert!(no_token.cookie("mg_session").is_none());
    let bogus = d.get("/", &[("Cookie", "mg_session=00ff")]);
    assert_eq!(bogus.status, 303);

    let c = d.login("site1", SITE1_PW);
    let home = d.get("/", &[("Cookie", &c)]);
    assert_eq!(home.status, 303);
    assert_eq!(home.header("location"), Some("/accounts/site1"));

    let p = d.get("/accounts/site1", &[("Cookie", &c)]);
    assert_eq!(p.status, 200);
    assert_security_headers(&p);
    let b = &p.body;
    assert!(b.contains(
        "id=\"status-light\" class=\"light green\" data-status=\"active\" data-colour=\"green\""
    ));
    assert!(b.contains("<dd id=\"sent-total\">3</dd>"), "{b}");
    assert!(b.contains("<dd id=\"sent-today\">3</dd>"));
    assert!(b.contains("<dd id=\"errors-total\">2</dd>"));
    assert!(b.contains("<dd id=\"queued\">0</dd>"));
    assert!(b.contains("<dd id=\"held\">0</dd>"));
    assert!(b.contains("<svg id=\"history-chart\""));
    assert_eq!(b.matches("class=\"bar sent\" data-day").count(), 30);
    assert!(b.contains("data-value=\"3\""));
    assert!(b.contains("/var/www/contact.php"));
    assert!(b.contains("mailbox unavailable"));
    assert!(b.contains("550 5.1.1"));
    assert!(b.contains("2 in total"));
    // Hostile recipient, error text and script path appear only escaped.
    assert!(
        !b.contains(HOSTILE),
        "raw markup from the store on the page"
    );
    assert!(b.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!b.contains("<script"));
    assert!(
        !b.contains("src=") && !b.contains("<script"),
        "no external or inline scripts"
    );
    assert!(b.contains("Sending works"));
    assert!(b.contains("id=\"action-block\""));
    assert!(!b.contains("id=\"action-unblock\""));

    // Another account: refused, with or without it existing.
    assert_eq!(d.get("/accounts/site2", &[("Cookie", &c)]).status, 403);
    assert_eq!(d.get("/accounts/ghost", &[("Cookie", &c)]).status, 403);
    assert_eq!(
        d.get("/accounts/site2/block", &[("Cookie", &c)]).status,
        403
    );

    let css = d.get("/static/style.css", &[]);
    assert_eq!(css.status, 200);
    assert!(css.header("content-type").unwrap().starts_with("text/css"));
    assert_eq!(d.get("/nowhere", &[("Cookie", &c)]).status, 404);
    let m = d.request("DELETE", "/accounts/site1", &[("Cookie", &c)], "");
    assert_eq!(m.status, 405);

    // Paging of the error log.
    let p2 = d.get("/accounts/site1?page=2", &[("Cookie", &c)]);
    assert_eq!(p2.status, 200);
    assert!(p2.body.contains("No errors on this page."));

    // Logout ends the session (and needs the CSRF token).
    let csrf = d.csrf(&c, "/accounts/site1");
    assert_eq!(d.post_form("/logout", &c, "csrf=wrong").status, 403);
    let out = d.post_form("/logout", &c, &format!("csrf={csrf}"));
    assert_eq!(out.status, 303);
    assert_eq!(d.get("/accounts/site1", &[("Cookie", &c)]).status, 303);
}

#[test]
fn html_actions_need_session_csrf_and_confirmation() {
    let d = start();
    let c = d.login("site1", SITE1_PW);
    let confirm = d.get("/accounts/site1/block", &[("Cookie", &c)]);
    assert_eq!(confirm.status, 200);
    assert!(confirm.body.contains("id=\"confirm-check\""));
    let csrf = d.csrf(&c, "/accounts/site1/block");

    // No session, no token, a wrong token, a foreign Origin, no confirmation: nothing changes.
    let r = d.post_form(
        "/accounts/site1/block",
        "",
        &format!("csrf={csrf}&confirm=yes"),
    );
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some("/login"));
    assert_eq!(
        d.post_form("/accounts/site1/block", &c, "confirm=yes")
            .status,
        403
    );
    let wrong = format!("csrf={}&confirm=yes", "0".repeat(64));
    assert_eq!(d.post_form("/accounts/site1/block", &c, &wrong).status, 403);
    let foreign = d.request(
        "POST",
        "/accounts/site1/block",
        &[
            ("Cookie", &c),
            ("Origin", "http://evil.example"),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        &format!("csrf={csrf}&confirm=yes"),
    );
    assert_eq!(foreign.status, 403);
    let cross = d.request(
        "POST",
        "/accounts/site1/block",
        &[
            ("Cookie", &c),
            ("Sec-Fetch-Site", "cross-site"),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        &format!("csrf={csrf}&confirm=yes"),
    );
    assert_eq!(cross.status, 403);
    assert_eq!(
        d.post_form("/accounts/site1/block", &c, &format!("csrf={csrf}"))
            .status,
        400
    );
    assert_eq!(d.status("site1"), Status::Active);

    // Another account's action with a valid token of this session.
    assert_eq!(
        d.post_form(
            "/accounts/site2/block",
            &c,
            &format!("csrf={csrf}&confirm=yes")
        )
        .status,
        403
    );
    assert_eq!(d.status("site2"), Status::Active);

    // Block, with held mail; then unblock releases it.
    let ok = d.post_form(
        "/accounts/site1/block",
        &c,
        &format!("csrf={csrf}&confirm=yes"),
    );
    assert_eq!(ok.status, 303, "{}", ok.body);
    assert_eq!(ok.header("location"), Some("/accounts/site1?done=block"));
    assert_eq!(d.status("site1"), Status::Inactive);
    let mut store = d.store();
    submit(&mut store, "site1", "/var/www/contact.php", now()).unwrap();
    assert_eq!(store.status_snapshot("site1", now()).unwrap().held, 1);
    let page = d.get("/accounts/site1?done=block", &[("Cookie", &c)]);
    assert!(page.body.contains("data-colour=\"red\""));
    assert!(page.body.contains("Sending is blocked."));
    assert!(page.body.contains("<dd id=\"held\">1</dd>"));
    assert!(page.body.contains("id=\"action-unblock\""));
    // Blocking twice is refused by the status machine.
    assert_eq!(
        d.post_form(
            "/accounts/site1/block",
            &c,
            &format!("csrf={csrf}&confirm=yes")
        )
        .status,
        409
    );
    assert_eq!(
        d.post_form(
            "/accounts/site1/unblock",
            &c,
            &format!("csrf={csrf}&confirm=yes")
        )
        .status,
        303
    );
    let snap = store.status_snapshot("site1", now()).unwrap();
    assert_eq!(snap.status, Status::Active);
    assert_eq!(snap.held, 0);
    let t = store.transitions("site1").unwrap();
    assert_eq!(t.len(), 2);
    assert_eq!(t[0].reason, "block");
    assert_eq!(t[0].actor, "operator:dashboard:account:site1");
    let page = d.get("/accounts/site1", &[("Cookie", &c)]);
    assert!(page.body.contains("operator:dashboard:account:site1"));

    // Report recipient: confirm page, bad address, good address, cleared.
    let rc = d.get(
        "/accounts/site1/report-to?address=owner%40example.org",
        &[("Cookie", &c)],
    );
    assert_eq!(rc.status, 200);
    assert!(rc.body.contains("owner@example.org"));
    let bad = d.post_form(
        "/accounts/site1/report-to",
        &c,
        &format!("csrf={csrf}&confirm=yes&address=a%40b%2C+c%40d"),
    );
    assert_eq!(bad.status, 400);
    let good = d.post_form(
        "/accounts/site1/report-to",
        &c,
        &format!("csrf={csrf}&confirm=yes&address=owner%40example.org"),
    );
    assert_eq!(good.status, 303);
    let snap = store.status_snapshot("site1", now()).unwrap();
    assert_eq!(snap.report_to.as_deref(), Some("owner@example.org"));
    d.post_form(
        "/accounts/site1/report-to",
        &c,
        &format!("csrf={csrf}&confirm=yes&address="),
    );
    assert_eq!(
        store.status_snapshot("site1", now()).unwrap().report_to,
        None
    );

    // Purge deletes waiting mail.
    store.block("site1", "test", now()).unwrap();
    submit(&mut store, "site1", "/var/www/contact.php", now()).unwrap();
    submit(&mut store, "site1", "/var/www/contact.php", now()).unwrap();
    // The message released by the unblock above (no runner here) is held again too.
    assert_eq!(store.status_snapshot("site1", now()).unwrap().held, 3);
    let purge = d.post_form(
        "/accounts/site1/purge",
        &c,
        &format!("csrf={csrf}&confirm=yes"),
    );
    assert_eq!(purge.status, 303);
    let snap = store.status_snapshot("site1", now()).unwrap();
    assert_eq!(
        (snap.status, snap.held, snap.queued),
        (Status::Active, 0, 0)
    );
    assert_eq!(
        snap.errors_total,
        2,
        "the error log survives a purge: {:?}",
        store.errors("site1", 10, 0).unwrap()
    );

    // A token from another session does not work in this one.
    let c2 = d.login("site1", SITE1_PW);
    let csrf2 = d.csrf(&c2, "/accounts/site1");
    assert_ne!(csrf, csrf2);
    assert_eq!(
        d.post_form(
            "/accounts/site1/block",
            &c,
            &format!("csrf={csrf2}&confirm=yes")
        )
        .status,
        403
    );
}

#[test]
fn spam_status_hides_unblock_and_requires_purge() {
    let d = start();
    d.store().mark_spam("site1", "test", now()).unwrap();
    let c = d.login("site1", SITE1_PW);
    let p = d.get("/accounts/site1", &[("Cookie", &c)]);
    assert!(p.body.contains("data-status=\"spam\" data-colour=\"red\""));
    assert!(!p.body.contains("id=\"action-unblock\""));
    assert!(p.body.contains("id=\"unblock-explained\""));
    assert!(p.body.contains("captcha"));
    assert!(p.body.contains("id=\"action-purge\""));
    assert_eq!(
        d.get("/accounts/site1/unblock", &[("Cookie", &c)]).status,
        409
    );
    let csrf = d.csrf(&c, "/accounts/site1");
    let r = d.post_form(
        "/accounts/site1/unblock",
        &c,
        &format!("csrf={csrf}&confirm=yes"),
    );
    assert_eq!(r.status, 409);
    assert_eq!(d.status("site1"), Status::Spam);
    let api = d.api(
        "POST",
        "/api/accounts/site1/unblock",
        &format!("site1:{SITE1_PW}"),
        "",
    );
    assert_eq!(api.status, 409);
    assert!(api.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("purge"));
    let r = d.post_form(
        "/accounts/site1/purge",
        &c,
        &format!("csrf={csrf}&confirm=yes"),
    );
    assert_eq!(r.status, 303);
    assert_eq!(d.status("site1"), Status::Active);
}

#[test]
fn operator_sees_and_acts_on_every_account() {
    let d = start();
    let c = d.login("admin", ADMIN_PW);
    let home = d.get("/", &[("Cookie", &c)]);
    assert_eq!(home.status, 200);
    assert!(home.body.contains("href=\"/accounts/site1\""));
    assert!(home.body.contains("href=\"/accounts/site2\""));
    assert_eq!(d.get("/accounts/site2", &[("Cookie", &c)]).status, 200);
    assert_eq!(d.get("/accounts/ghost", &[("Cookie", &c)]).status, 404);
    let csrf = d.csrf(&c, "/accounts/site2");
    let r = d.post_form(
        "/accounts/site2/block",
        &c,
        &format!("csrf={csrf}&confirm=yes"),
    );
    assert_eq!(r.status, 303);
    assert_eq!(d.status("site2"), Status::Inactive);
    let t = d.store().transitions("site2").unwrap();
    assert_eq!(t[0].actor, "operator:dashboard:operator:admin");
}

#[test]
fn api_routes_auth_and_actions() {
    let d = start();
    let s1 = format!("site1:{SITE1_PW}");
    let admin = format!("admin:{ADMIN_PW}");

    let none = d.get("/api/accounts/site1/status", &[]);
    assert_eq!(none.status, 401);
    assert!(none
        .header("www-authenticate")
        .unwrap()
        .starts_with("Bearer"));
    assert!(none.json()["error"]["message"].is_string());
    assert_security_headers(&none);
    assert_eq!(
        d.api("GET", "/api/accounts/site1/status", "site1:wrong", "")
            .status,
        401
    );
    assert_eq!(
        d.api("GET", "/api/accounts/site1/status", SITE1_PW, "")
            .status,
        401
    );
    // A session cookie is no API credential.
    let c = d.login("site1", SITE1_PW);
    assert_eq!(
        d.get("/api/accounts/site1/status", &[("Cookie", &c)])
            .status,
        401
    );
    assert_eq!(
        d.api("GET", "/api/accounts/site2/status", &s1, "").status,
        403
    );
    assert_eq!(
        d.api("POST", "/api/accounts/site2/block", &s1, "").status,
        403
    );
    assert_eq!(d.status("site2"), Status::Active);
    assert_eq!(
        d.api("GET", "/api/accounts/ghost/status", &admin, "")
            .status,
        404
    );

    let list = d.api("GET", "/api/accounts", &s1, "").json();
    assert_eq!(list["accounts"].as_array().unwrap().len(), 1);
    let list = d.api("GET", "/api/accounts", &admin, "").json();
    assert_eq!(list["accounts"].as_array().unwrap().len(), 2);

    let st = d.api("GET", "/api/accounts/site1/status", &s1, "");
    assert_eq!(st.status, 200);
    assert_eq!(st.header("content-type"), Some("application/json"));
    let st = st.json();
    assert_eq!(st["status"], "active");
    assert_eq!(st["colour"], "green");
    assert_eq!(st["sent_total"], 3);
    assert_eq!(st["errors_total"], 2);
    assert_eq!(st["actions"]["unblock"]["allowed"], false);
    assert_eq!(st["actions"]["block"]["allowed"], true);
    assert!(st["advice"]["what_to_do"].is_string());
    // Every window of the quota and burst, with its use (issue 13).
    let w = &st["windows"];
    assert_eq!(w[0]["kind"], "quota");
    assert_eq!(w[0]["limit"], "200/1h");
    assert_eq!(w[1]["kind"], "burst");
    assert_eq!(w[1]["limit"], "50/1m");
    assert!(w[0]["remaining"].as_u64().unwrap() <= 200, "{w}");

    let h = d
        .api("GET", "/api/accounts/site1/history?days=30", &s1, "")
        .json();
    let days = h["days"].as_array().unwrap();
    assert_eq!(days.len(), 30);
    assert_eq!(days[29]["sent"], 3);
    assert_eq!(days[29]["errors"], 2);
    assert_eq!(
        d.api("GET", "/api/accounts/site1/history?days=0", &s1, "")
            .status,
        400
    );
    assert_eq!(
        d.api("GET", "/api/accounts/site1/history?days=x", &s1, "")
            .status,
        400
    );

    let e = d
        .api(
            "GET",
            "/api/accounts/site1/errors?limit=1&offset=0",
            &s1,
            "",
        )
        .json();
    assert_eq!(e["total"], 2);
    assert_eq!(e["errors"].as_array().unwrap().len(), 1);
    let e2 = d
        .api(
            "GET",
            "/api/accounts/site1/errors?limit=1&offset=1",
            &s1,
            "",
        )
        .json();
    assert_ne!(e["errors"][0], e2["errors"][0]);
    let all = d.api("GET", "/api/accounts/site1/errors", &s1, "").json();
    let hostile = all["errors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["recipient"] == HOSTILE)
        .expect("hostile entry is returned verbatim in JSON");
    assert_eq!(hostile["code"], 550);
    assert_eq!(hostile["origin"]["file"], HOSTILE);

    let sc = d.api("GET", "/api/accounts/site1/scripts", &s1, "").json();
    let scripts = sc["scripts"].as_array().unwrap();
    assert_eq!(scripts[0]["file"], "/var/www/contact.php");
    assert_eq!(scripts[0]["messages"], 3);
    assert_eq!(scripts[0]["sent"], 3);
    assert!(scripts
        .iter()
        .any(|s| s["file"] == "/var/www/news.php" && s["errors"] == 1));

    // Actions: block, block again (409), GET on an action (405), unblock, report-to.
    let b = d.api("POST", "/api/accounts/site1/block", &s1, "{}");
    assert_eq!(b.status, 200, "{}", b.body);
    assert_eq!(b.json()["to"], "inactive");
    assert_eq!(d.status("site1"), Status::Inactive);
    assert_eq!(
        d.api("POST", "/api/accounts/site1/block", &s1, "").status,
        409
    );
    let g = d.api("GET", "/api/accounts/site1/block", &s1, "");
    assert_eq!(g.status, 405);
    assert_eq!(g.header("allow"), Some("POST"));
    assert_eq!(
        d.api("POST", "/api/accounts/site1/status", &s1, "").status,
        405
    );
    let u = d.api("POST", "/api/accounts/site1/unblock", &admin, "");
    assert_eq!(u.json()["to"], "active");
    let tr = d
        .api("GET", "/api/accounts/site1/transitions", &s1, "")
        .json();
    let tr = tr["transitions"].as_array().unwrap();
    assert_eq!(tr.len(), 2);
    assert_eq!(tr[1]["actor"], "operator:dashboard:operator:admin");

    assert_eq!(
        d.api("POST", "/api/accounts/site1/report-to", &s1, "{nope")
            .status,
        400
    );
    assert_eq!(
        d.api(
            "POST",
            "/api/accounts/site1/report-to",
            &s1,
            r#"{"address":"a@b\r\nBcc: x@y"}"#
        )
        .status,
        400
    );
    assert_eq!(
        d.api("POST", "/api/accounts/site1/report-to", &s1, "{}")
            .status,
        400
    );
    let ok = d.api(
        "POST",
        "/api/accounts/site1/report-to",
        &s1,
        r#"{"address":"owner@example.org"}"#,
    );
    assert_eq!(ok.status, 200);
    assert_eq!(
        d.store()
            .status_snapshot("site1", now())
            .unwrap()
            .report_to
            .as_deref(),
        Some("owner@example.org")
    );
    d.api(
        "POST",
        "/api/accounts/site1/report-to",
        &s1,
        r#"{"address":null}"#,
    );
    assert_eq!(
        d.store().status_snapshot("site1", now()).unwrap().report_to,
        None
    );

    let p = d.api("POST", "/api/accounts/site1/purge", &s1, "");
    assert_eq!(p.status, 200);
    assert_eq!(p.json()["to"], "active");
    assert_eq!(d.api("GET", "/api/nothing", &s1, "").status, 404);
}

#[test]
fn metrics_need_credentials_and_are_prometheus_text() {
    let d = start();
    d.store().block("site2", "test", now()).unwrap();
    assert_eq!(d.get("/metrics", &[]).status, 401);
    let r = d.api("GET", "/metrics", &format!("admin:{ADMIN_PW}"), "");
    assert_eq!(r.status, 200);
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let m = &r.body;
    assert!(m.contains("# TYPE mailguard_account_status gauge"));
    assert!(m.contains(
        "mailguard_account_status{account=\"site1\",status=\"active\",colour=\"green\"} 1"
    ));
    assert!(m.contains(
        "mailguard_account_status{account=\"site2\",status=\"inactive\",colour=\"red\"} 1"
    ));
    assert!(m.contains(
        "mailguard_account_status{account=\"site2\",status=\"active\",colour=\"green\"} 0"
    ));
    assert!(m.contains("mailguard_sent_total{account=\"site1\"} 3"));
    assert!(m.contains("mailguard_errors_total{account=\"site1\"} 2"));
    assert!(m.contains("mailguard_refused_total{account=\"site1\"} 0"));
    assert!(m.contains("mailguard_queued{account=\"site1\"} 0"));
    assert!(m.contains("mailguard_held{account=\"site2\"} 0"));
    // Every sample line is NAME{labels} VALUE.
    for line in m.lines().filter(|l| !l.starts_with('#')) {
        let (series, value) = line.rsplit_once(' ').unwrap();
        assert!(
            series.starts_with("mailguard_") && series.ends_with('}'),
            "{line}"
        );
        value.parse::<f64>().unwrap();
    }
    // An owner's credential shows only that account.
    let own = d.api("GET", "/metrics", &format!("site1:{SITE1_PW}"), "");
    assert!(own.body.contains("account=\"site1\""));
    assert!(!own.body.contains("account=\"site2\""));
}

#[test]
fn metrics_are_open_only_to_the_configured_scrape_address() {
    // A scrape address that is not ours: loopback peers still need a credential.
    let d = start_with(&["--metrics-scrape", "192.0.2.7"]);
    assert_eq!(d.get("/metrics", &[]).status, 401);
    let ok = d.api("GET", "/metrics", &format!("admin:{ADMIN_PW}"), "");
    assert_eq!(ok.status, 200);
    // Another Host is refused before anything else, with or without credentials.
    let evil = d.request(
        "GET",
        "/metrics",
        &[
            ("Host", "evil.example"),
            ("Authorization", &format!("Bearer admin:{ADMIN_PW}")),
        ],
        "",
    );
    assert_eq!(evil.status, 421, "{}", evil.body);
    assert!(!evil.body.contains("mailguard_"));
    assert_eq!(d.get("/", &[("Host", "evil.example")]).status, 421);
    // The API stays closed.
    assert_eq!(d.get("/api/accounts", &[]).status, 401);
}

#[test]
fn command_line_refusals() {
    let out = Command::new(BIN)
        .args([
            "dashboard",
            "--listen",
            "0.0.0.0:0",
            "--state-dir",
            "/nonexistent",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--allow-remote"));

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dashboard-auth");
    let mut c = Command::new(BIN)
        .args(["dashboard", "passwd", "--account", "a", "--auth-file"])
        .arg(&file)
        .stdin(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    writeln!(c.stdin.take().unwrap(), "short").unwrap();
    assert_eq!(c.wait().unwrap().code(), Some(1));

    let out = Command::new(BIN)
        .args([
            "dashboard",
            "passwd",
            "--operator",
            "ops",
            "--generate",
            "--iterations",
            "1000",
            "--auth-file",
        ])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success());
    let secret = String::from_utf8(out.stdout).unwrap();
    assert_eq!(secret.trim().len(), 40);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o640);
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("operator ops pbkdf2-sha256$1000$"));
    assert!(!text.contains(secret.trim()), "the secret is stored hashed");

    // The state directory is no place for credentials: passwd refuses it by name.
    let out = Command::new(BIN)
        .args([
            "dashboard",
            "passwd",
            "--account",
            "a",
            "--generate",
            "--state-dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--auth-file"));
    assert!(!dir.path().join("dashboard-auth.tmp").exists());

    // A missing directory for the default or given file is named.
    let out = Command::new(BIN)
        .args([
            "dashboard",
            "passwd",
            "--account",
            "a",
            "--generate",
            "--auth-file",
        ])
        .arg(dir.path().join("nonexistent/dashboard-auth"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
}

/// Reads `stderr` on a thread; the lines so far are in the returned buffer.
fn collect(stderr: std::process::ChildStderr) -> std::sync::Arc<std::sync::Mutex<String>> {
    let buf = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let b = std::sync::Arc::clone(&buf);
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let mut b = b.lock().unwrap();
            b.push_str(&line);
            b.push('\n');
        }
    });
    buf
}

fn wait_for(buf: &std::sync::Mutex<String>, text: &str) -> String {
    for _ in 0..200 {
        let b = buf.lock().unwrap().clone();
        if b.contains(text) {
            return b;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    panic!("{text:?} never appeared on stderr: {}", buf.lock().unwrap());
}

#[test]
fn a_malformed_credentials_line_is_logged_and_skipped() {
    let etc = tempfile::tempdir().unwrap();
    let auth = etc.path().join("dashboard-auth");
    passwd(&auth, "--operator", "admin", ADMIN_PW);
    // What a script that could write the old STATE_DIR/dashboard-auth would append,
    // a broken line, then a good credential on the next line.
    let mut text = std::fs::read_to_string(&auth).unwrap();
    text.push_str("operator intruder\n");
    std::fs::write(&auth, &text).unwrap();
    passwd(&auth, "--account", "site1", SITE1_PW);
    let text = std::fs::read_to_string(&auth).unwrap();
    let roles: Vec<&str> = text.lines().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(
        roles,
        ["#", "operator", "operator", "account"],
        "passwd kept the broken line"
    );

    let (d, stderr) = start_on(etc, Stdio::piped(), &[]);
    let log = collect(stderr.unwrap());
    let file = auth.display().to_string();
    let seen = wait_for(&log, "line 3");
    assert!(
        seen.contains(&format!("{file} line 3: expected \"operator NAME HASH\"")),
        "{seen}"
    );
    assert!(seen.contains("skipped"), "{seen}");

    // The credential on the next line, and the one before, still log in.
    let cookie = d.login("site1", SITE1_PW);
    let r = d.get("/accounts/site1", &[("Cookie", &cookie)]);
    assert_eq!(r.status, 200, "{}", r.body);
    d.login("admin", ADMIN_PW);
    let r = d.api("GET", "/api/accounts", &format!("admin:{ADMIN_PW}"), "");
    assert_eq!(r.status, 200, "{}", r.body);
    // The broken line is nobody.
    assert_eq!(d.api("GET", "/api/accounts", "intruder:", "").status, 401);
    // Reported once while it stays, not on every request.
    let log = log.lock().unwrap().clone();
    assert_eq!(log.matches("line 3").count(), 1, "{log}");
}

#[test]
fn a_credentials_file_others_can_write_is_named_in_a_warning() {
    use std::os::unix::fs::PermissionsExt;
    let etc = tempfile::tempdir().unwrap();
    let auth = etc.path().join("dashboard-auth");
    passwd(&auth, "--operator", "admin", ADMIN_PW);
    std::fs::set_permissions(&auth, std::fs::Permissions::from_mode(0o666)).unwrap();
    let (d, stderr) = start_on(etc, Stdio::piped(), &[]);
    let log = collect(stderr.unwrap());
    let seen = wait_for(&log, "writable by");
    assert!(
        seen.contains(&format!(
            "warning: {} is writable by its group and every user",
            auth.display()
        )),
        "{seen}"
    );
    // Still serves: a warning, not a refusal.
    d.login("admin", ADMIN_PW);
}

/// Three refused-spam messages for site1 (ids returned, oldest first).
fn quarantine3(d: &Dashboard) -> Vec<i64> {
    let mut store = d.store();
    let verdict = mailguard_store::SpamSummary {
        score: 14.0,
        rules: vec!["raw-ip-link".into(), HOSTILE.into()],
        refuse: true,
    };
    let rcpt = vec!["victim@example.net".to_owned()];
    let o = origin("/var/www/spam.php");
    let l: Limits = "quota= burst= spam=".parse().unwrap();
    (0..3)
        .map(|i| {
            let raw = format!(
                "To: victim@example.net\r\nSubject: Win {i} {HOSTILE}\r\n\r\nWrite to boss@example.org or see http://198.51.100.7/win, card 4111111111111111.\r\n"
            );
            store
                .submit(
                    "site1",
                    &l,
                    Submission {
                        raw: raw.as_bytes(),
                        envelope_from: "site@example.org",
                        recipients: &rcpt,
                        origin: &o,
                        spam: Some(&verdict),
                    },
                    now(),
                    Mode::Enforce,
                )
                .unwrap()
                .id
                .unwrap()
                .0
        })
        .collect()
}

#[test]
fn quarantine_api_owner_sees_a_redacted_preview_operator_the_message() {
    let d = start();
    let ids = quarantine3(&d);
    let s1 = format!("site1:{SITE1_PW}");
    let admin = format!("admin:{ADMIN_PW}");
    let l = d.api("GET", "/api/accounts/site1/quarantine", &s1, "");
    assert_eq!(l.status, 200, "{}", l.body);
    assert_eq!(l.json()["count"], 3);
    assert_eq!(l.json()["messages"][0]["spam"]["rules"][0], "raw-ip-link");
    // Another owner: refused.
    let s2 = format!("site2:{SITE2_PW}");
    assert_eq!(
        d.api("GET", "/api/accounts/site1/quarantine", &s2, "")
            .status,
        403
    );
    let path = format!("/api/accounts/site1/quarantine/{}", ids[0]);
    let own = d.api("GET", &path, &s1, "").json();
    let preview = own["preview"].as_str().unwrap();
    assert!(
        preview.contains("[address]") && preview.contains("[link]") && preview.contains("[number]"),
        "{preview}"
    );
    assert!(
        !preview.contains("boss@") && !preview.contains("4111111111111111"),
        "{preview}"
    );
    assert!(own.get("message").is_none());
    let full = d.api("GET", &path, &admin, "").json();
    assert!(full["message"]
        .as_str()
        .unwrap()
        .contains("boss@example.org"));
    // A message of another account is not found through this one.
    assert_eq!(
        d.api("GET", "/api/accounts/site2/quarantine/1", &admin, "")
            .status,
        404
    );
    // Release one, bulk delete the others; who did it is recorded.
    let r = d.api("POST", &format!("{path}/release"), &s1, "");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["done"], 1);
    let b = d.api(
        "POST",
        "/api/accounts/site1/quarantine/delete",
        &admin,
        &format!("{{\"ids\": [{}, {}, 999999]}}", ids[1], ids[2]),
    );
    assert_eq!(b.status, 200, "{}", b.body);
    assert_eq!(b.json()["done"], 2);
    assert_eq!(b.json()["results"][2]["ok"], false);
    assert_eq!(
        d.api("GET", "/api/accounts/site1/quarantine", &s1, "")
            .json()["count"],
        0
    );
    let log = d.store().quarantine_log(Some("site1"), 10).unwrap();
    assert_eq!(log.len(), 3);
    assert_eq!(log[2].actor, "dashboard:account:site1");
    assert_eq!(log[0].actor, "dashboard:operator:admin");
    assert_eq!(
        d.api("GET", "/api/accounts/site1/quarantine/release", &s1, "")
            .status,
        405
    );
}

#[test]
fn quarantine_page_bulk_release_and_delete() {
    let d = start();
    let ids = quarantine3(&d);
    let c = d.login("site1", SITE1_PW);
    let page = d.get("/accounts/site1/quarantine", &[("Cookie", &c)]);
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("<dd id=\"quarantine-count\">3</dd>"),
        "{}",
        page.body
    );
    assert!(
        !page.body.contains(HOSTILE),
        "raw markup from the store on the page"
    );
    let msg = d.get(
        &format!("/accounts/site1/quarantine/{}", ids[0]),
        &[("Cookie", &c)],
    );
    assert!(msg.body.contains("id=\"preview\""), "{}", msg.body);
    assert!(!msg.body.contains("boss@example.org"));
    let csrf = d.csrf(&c, "/accounts/site1/quarantine");
    // Without the CSRF token: refused.
    let bad = d.post_form(
        "/accounts/site1/quarantine",
        &c,
        &format!("action=release&id={}", ids[0]),
    );
    assert_eq!(bad.status, 403);
    let r = d.post_form(
        "/accounts/site1/quarantine",
        &c,
        &format!("csrf={csrf}&action=release&id={}", ids[0]),
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let r = d.post_form(
        "/accounts/site1/quarantine",
        &c,
        &format!("csrf={csrf}&action=delete&id={}&id={}", ids[1], ids[2]),
    );
    assert_eq!(r.status, 303);
    let page = d.get("/accounts/site1/quarantine?done=delete", &[("Cookie", &c)]);
    assert!(
        page.body.contains("<dd id=\"quarantine-count\">0</dd>"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("<dd id=\"queued\">1</dd>"),
        "{}",
        page.body
    );
    assert!(page.body.contains("dashboard:account:site1"));
    // The operator sees the whole message.
    let ids = quarantine3(&d);
    let a = d.login("admin", ADMIN_PW);
    let msg = d.get(
        &format!("/accounts/site1/quarantine/{}", ids[0]),
        &[("Cookie", &a)],
    );
    assert!(msg.body.contains("id=\"message\"") && msg.body.contains("boss@example.org"));
}

#[test]
fn track_search_shows_each_message_path_in_the_account_only() {
    let d = start();
    let c = d.login("site1", SITE1_PW);
    let page = d.get(
        "/accounts/site1/track?q=someone%40example.org",
        &[("Cookie", &c)],
    );
    assert_eq!(page.status, 200, "{}", page.body);
    // site1's 5 messages to that address, not site2's.
    assert_eq!(
        page.body.matches("class=\"card tracked\"").count(),
        5,
        "{}",
        page.body
    );
    assert!(page.body.contains("<td>sent</td>") && page.body.contains("<td>failed</td>"));
    assert!(page.body.contains("mailbox unavailable"));
    assert!(
        !page.body.contains(HOSTILE),
        "raw markup from the store on the page"
    );
    assert!(page.body.contains("/var/www/news.php"));
    // The last 24 hours without a search; another account's page is refused.
    let all = d.get("/accounts/site1/track", &[("Cookie", &c)]);
    assert!(all.body.contains("The last 24 hours."));
    assert_eq!(
        d.get("/accounts/site2/track?q=x", &[("Cookie", &c)]).status,
        403
    );
    // The API: the same paths as JSON.
    let j = d
        .api(
            "GET",
            "/api/accounts/site1/track?q=someone%40example.org",
            &format!("site1:{SITE1_PW}"),
            "",
        )
        .json();
    let news = j["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["origin"]["file"] == "/var/www/news.php")
        .expect("the news.php message");
    let steps = &news["steps"];
    assert_eq!(steps[0]["what"], "accepted");
    assert_eq!(steps[1]["what"], "failed");
    assert!(steps[1]["detail"]
        .as_str()
        .unwrap()
        .contains("550 5.1.1 mailbox unavailable"));
}

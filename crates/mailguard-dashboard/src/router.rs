//! Routing: which handler answers a request. Above the handlers: [`App`] (state and the
//! HTML side), [`api`] (JSON), [`metrics`] (Prometheus); none of them imports this module
//! or each other's routing, so the dependencies run one way: router → api, metrics → app.

use super::api;
use super::app::App;
use super::http::{Request, Response};
use super::metrics;
use super::pages;

/// Answers one request (the `Host` check first, then by path and method).
pub fn handle(app: &App, req: &Request) -> Response {
    let hosts = req
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("host"));
    if hosts.count() != 1 || !app.host_allowed(req.header("host")) {
        return Response::text(
            421,
            "text/plain; charset=utf-8",
            "this server does not answer for that host name\n".into(),
        );
    }
    let Some(seg) = req.segments() else {
        return app.html_problem(None, 400, "Bad request", "The address is not valid UTF-8.");
    };
    let seg: Vec<&str> = seg.iter().map(String::as_str).collect();
    let m = req.method.as_str();
    match (seg.as_slice(), m) {
        (["api", rest @ ..], _) => api::handle(app, req, rest),
        (["metrics"], "GET") => metrics::handle(app, req),
        (["static", "style.css"], "GET") => {
            Response::new(200, "text/css; charset=utf-8", pages::STYLE)
        }
        (["login"], "GET") => app.login_page(None, 200),
        (["login"], "POST") => app.login(req),
        (["logout"], "POST") => app.logout(req),
        ([], "GET") => app.index(req),
        (["accounts", a], "GET") => app.panel(req, a),
        (["accounts", a, "track"], "GET") => app.track_page(req, a),
        (["accounts", a, "quarantine"], "GET") => app.quarantine_page(req, a),
        (["accounts", a, "quarantine"], "POST") => app.quarantine_post(req, a),
        (["accounts", a, "quarantine", id], "GET") => app.quarantine_message(req, a, id),
        (["accounts", a, action], "GET") => app.confirm(req, a, action),
        (["accounts", a, action], "POST") => app.act(req, a, action),
        (["metrics"] | ["static", "style.css"] | ["login"] | [] | ["accounts", _], _)
        | (["logout"] | ["accounts", _, _] | ["accounts", _, "quarantine", _], _) => {
            let allow = match seg.as_slice() {
                ["login"] => "GET, POST",
                ["logout"] => "POST",
                ["accounts", _, _] => "GET, POST",
                _ => "GET",
            };
            app.html_problem(
                None,
                405,
                "Method not allowed",
                "This address does not take that method.",
            )
            .with_header("Allow", allow.to_owned())
        }
        _ => app.html_problem(None, 404, "Not found", "There is no such page."),
    }
}

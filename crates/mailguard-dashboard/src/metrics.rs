//! `/metrics` in the Prometheus text format (version 0.0.4): per account, the status as a
//! labelled gauge and the counters and queue sizes.
//!
//! Access: a bearer credential (an operator gets every account, an owner only their own),
//! or no credential at all when the dashboard runs with `--metrics-open` and the scraper
//! connects from loopback.

use mailguard_store::{Snapshot, Status};

use super::api;
use super::app::App;
use super::auth::Principal;
use super::http::{Request, Response};

/// Escapes a label value (`\`, `"` and newlines).
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A per-account sample family: name, type, help, value.
type Family = (
    &'static str,
    &'static str,
    &'static str,
    fn(&Snapshot) -> u64,
);

pub fn render(snaps: &[Snapshot]) -> String {
    let mut out = String::new();
    let mut family =
        |name: &str, kind: &str, help: &str, lines: &mut dyn Iterator<Item = String>| {
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
            for l in lines {
                out.push_str(&l);
                out.push('\n');
            }
        };
    family(
        "mailguard_account_status",
        "gauge",
        "1 for the account's current status (green: active, force; red: inactive, bounce, spam), 0 for the others.",
        &mut snaps.iter().flat_map(|s| {
            Status::ALL.into_iter().map(move |st| {
                format!(
                    "mailguard_account_status{{account=\"{}\",status=\"{}\",colour=\"{}\"}} {}",
                    label(&s.account),
                    st.as_str(),
                    st.colour().as_str(),
                    u8::from(s.status == st)
                )
            })
        }),
    );
    let counters: [Family; 6] = [
        (
            "mailguard_sent_total",
            "counter",
            "Messages delivered since the account was created.",
            |s| s.sent_total,
        ),
        (
            "mailguard_errors_total",
            "counter",
            "Failed recipients and expired messages since the account was created.",
            |s| s.errors_total,
        ),
        (
            "mailguard_refused_total",
            "counter",
            "mail() calls refused since the account was created.",
            |s| s.refused_total,
        ),
        (
            "mailguard_sent_today",
            "gauge",
            "Messages delivered today (UTC).",
            |s| s.sent_today,
        ),
        (
            "mailguard_queued",
            "gauge",
            "Messages waiting for delivery (queued or being sent).",
            |s| s.queued,
        ),
        (
            "mailguard_held",
            "gauge",
            "Messages held while the account is red.",
            |s| s.held,
        ),
    ];
    for (name, kind, help, get) in counters {
        family(
            name,
            kind,
            help,
            &mut snaps
                .iter()
                .map(|s| format!("{name}{{account=\"{}\"}} {}", label(&s.account), get(s))),
        );
    }
    out
}

pub fn handle(app: &App, req: &Request) -> Response {
    let open = req.bearer().is_none()
        && app.metrics_scrape.is_some()
        && req.peer.is_some()
        && req.peer == app.metrics_scrape;
    let accounts = if open {
        app.store(|s| s.accounts())
    } else {
        let p: Principal = match api::principal(app, req) {
            Ok(p) => p,
            Err(r) => return r,
        };
        app.visible_accounts(&p)
    };
    let snaps: Result<Vec<Snapshot>, _> =
        accounts.and_then(|all| all.iter().map(|a| app.snapshot(a)).collect());
    match snaps {
        Ok(snaps) => Response::text(
            200,
            "text/plain; version=0.0.4; charset=utf-8",
            render(&snaps),
        ),
        Err(e) => Response::text(
            e.status(),
            "text/plain; charset=utf-8",
            format!("# error: {}\n", e.message()),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped_and_one_status_is_set() {
        let s = Snapshot {
            account: "we\"ird\\\n".into(),
            status: Status::Bounce,
            since: None,
            sent_total: 3,
            sent_today: 1,
            errors_total: 2,
            errors_today: 0,
            refused_total: 4,
            queued: 5,
            held: 6,
            quarantined: 0,
            limits: String::new(),
            mode: String::new(),
            report_to: None,
            windows: Vec::new(),
        };
        let text = render(&[s]);
        assert!(text.contains(
            "mailguard_account_status{account=\"we\\\"ird\\\\\\n\",status=\"bounce\",colour=\"red\"} 1"
        ));
        assert_eq!(text.matches("mailguard_account_status{").count(), 5);
        let set: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("mailguard_account_status{") && l.ends_with(" 1"))
            .collect();
        assert_eq!(set.len(), 1, "{set:?}");
        assert!(text.contains("mailguard_held{account=\"we\\\"ird\\\\\\n\"} 6"));
        assert!(text.contains("# TYPE mailguard_sent_total counter"));
    }

    #[test]
    fn only_the_scrape_address_reads_without_credentials() {
        use crate::auth::{Auth, CredentialsFile};
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        std::fs::create_dir(&state).unwrap();
        mailguard_store::Store::open(&state).unwrap();
        let scraper: std::net::IpAddr = "192.0.2.7".parse().unwrap();
        let app = App {
            state_dir: state,
            auth: Auth::new(CredentialsFile::new(dir.path().join("auth"))),
            secure_cookie: false,
            metrics_scrape: Some(scraper),
            hosts: vec!["127.0.0.1:1".into()],
        };
        let req = |peer: &str, headers: Vec<(String, String)>| {
            Request::new(
                "GET",
                "/metrics",
                headers,
                vec![],
                Some(peer.parse().unwrap()),
            )
        };
        assert_eq!(handle(&app, &req("192.0.2.7", vec![])).status, 200);
        assert_eq!(handle(&app, &req("192.0.2.8", vec![])).status, 401);
        assert_eq!(handle(&app, &req("127.0.0.1", vec![])).status, 401);
        // A Bearer credential is checked, even from the scrape address.
        let bearer = vec![("Authorization".into(), "Bearer x:y".into())];
        assert_eq!(handle(&app, &req("192.0.2.7", bearer)).status, 401);
    }
}

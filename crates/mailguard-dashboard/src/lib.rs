//! `mailguard dashboard`: the account owner's web panel (status light, counters, 30-day
//! chart, error log, top scripts, transitions; block / unblock / purge / report-to), its
//! JSON API for hosting panels, and `/metrics` for Prometheus; plus `dashboard passwd`,
//! which writes the credentials it accepts.
//!
//! The server ([`server`]: hyper on a small tokio runtime, every resource bounded) runs
//! the application on a few blocking workers; each request reads
//! the store in short transactions, so the extension and the runner never wait on it.
//!
//! - [`http`]: request/response values, security headers, form and cookie parsing
//! - [`auth`]: credentials file, sessions, CSRF tokens, bearer tokens
//! - [`router`]: which handler answers; [`app`]: state and the HTML side; [`api`]: JSON;
//!   [`metrics`]: Prometheus (dependencies run one way: router → api, metrics → app)
//! - [`server`]: the bounded HTTP server
//! - [`pages`], [`chart`], [`advice`]: what the owner sees

mod advice;
mod api;
mod app;
pub mod args;
mod auth;
mod chart;
mod http;
mod metrics;
mod pages;
mod quarantine;
mod router;
mod server;

use args::Args;
use std::io::BufRead;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;

use mailguard_store::{Store, DEFAULT_STATE_DIR};

use app::App;
use auth::{Auth, CredentialsFile, Role};

const USAGE: &str = "\
usage:
  mailguard dashboard [--listen ADDR:PORT] [--state-dir DIR] [--auth-file FILE]
                      [--allow-remote] [--secure-cookie] [--host NAME[:PORT]]
                      [--metrics-scrape IP] [--threads N] [--max-connections N]
  mailguard dashboard passwd (--account NAME | --operator NAME) [--generate]
                      [--iterations N] [--auth-file FILE]

--listen          default 127.0.0.1:8025; a loopback address unless --allow-remote
                  (port 0 picks a free port; the address is printed on stdout)
--auth-file       the credentials, default /etc/mailguard/dashboard-auth; passwd
                  writes it root:GROUP 0640 (keeping the group of an existing file).
                  Never put it in the state directory: PHP scripts can write there
--allow-remote    listen on a non-loopback address: only behind a TLS proxy, as the
                  dashboard itself speaks plain HTTP
--secure-cookie   mark the session cookie Secure (when served over HTTPS)
--host            the name the panel is reached by (as the browser or proxy sends it
                  in Host); requests naming another host are refused. The listen
                  address and localhost:PORT are always accepted
--metrics-scrape  serve /metrics without credentials to this one (non-loopback) peer
                  address; anyone else needs an operator's or owner's credential
--threads         application workers (store reads, password checks), default 4
--max-connections open connections at most, default 256 (slow peers are cut after
                  10 s without a complete request head)
passwd            reads the password from the first line of stdin (at least 12
                  characters), or with --generate makes one and prints it; an account
                  owner sees only that account, an operator sees all
(the default state directory is /var/lib/mailguard)";

/// Runs `mailguard dashboard ...`; returns the exit code (0 ok, 1 failed, 2 usage).
pub fn run(args: &[String]) -> i32 {
    let result = match args.first().map(String::as_str) {
        Some("passwd") => passwd(&args[1..]),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            return 0;
        }
        _ => serve(args),
    };
    match result {
        Ok(()) => 0,
        Err(Fail::Usage(m)) => {
            eprintln!("mailguard dashboard: {m}\n{USAGE}");
            2
        }
        Err(Fail::Run(m)) => {
            eprintln!("mailguard dashboard: {m}");
            1
        }
    }
}

enum Fail {
    Usage(String),
    Run(String),
}

/// `--key value` / `--key=value` options and `--flag`s.
struct Opts {
    values: Vec<(String, String)>,
    flags: Vec<String>,
}

fn parse(args: &[String], values: &[&str], flags: &[&str]) -> Result<Opts, Fail> {
    let mut o = Opts {
        values: Vec::new(),
        flags: Vec::new(),
    };
    let mut args = Args::new(args);
    while let Some(key) = args.next_key() {
        if values.contains(&key) {
            let v = args.value().map_err(Fail::Usage)?;
            o.values.push((key.to_owned(), v));
        } else if flags.contains(&key) && !args.has_inline_value() {
            o.flags.push(key.to_owned());
        } else {
            return Err(Fail::Usage(format!("unknown argument {key}")));
        }
    }
    Ok(o)
}

impl Opts {
    fn value(&self, key: &str) -> Option<&str> {
        self.values
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn flag(&self, key: &str) -> bool {
        self.flags.iter().any(|f| f == key)
    }

    fn state_dir(&self) -> PathBuf {
        PathBuf::from(self.value("--state-dir").unwrap_or(DEFAULT_STATE_DIR))
    }

    fn auth_file(&self) -> CredentialsFile {
        CredentialsFile::new(self.value("--auth-file").unwrap_or(auth::DEFAULT_AUTH_FILE))
    }
}

/// Warns on stderr about who may write or read the credentials file.
fn warn_about_permissions(file: &CredentialsFile) {
    for w in file.permission_warnings(nix::unistd::geteuid().is_root()) {
        eprintln!("mailguard dashboard: warning: {w}");
    }
}

fn passwd(args: &[String]) -> Result<(), Fail> {
    let o = parse(
        args,
        &[
            "--account",
            "--operator",
            "--iterations",
            "--state-dir",
            "--auth-file",
        ],
        &["--generate"],
    )?;
    if o.value("--state-dir").is_some() {
        return Err(Fail::Usage(format!(
            "passwd no longer writes into the state directory (a PHP script could add an \
             operator there); the credentials are in --auth-file, default {}",
            auth::DEFAULT_AUTH_FILE
        )));
    }
    let (role, name) = match (o.value("--account"), o.value("--operator")) {
        (Some(a), None) => (Role::Account, a),
        (None, Some(op)) => (Role::Operator, op),
        _ => {
            return Err(Fail::Usage(
                "give exactly one of --account NAME or --operator NAME".into(),
            ))
        }
    };
    if !auth::valid_name(name) {
        return Err(Fail::Usage(format!(
            "\"{name}\" is not a valid name (letters, digits, . _ - @; at most 128)"
        )));
    }
    let iterations = match o.value("--iterations") {
        None => auth::DEFAULT_ITERATIONS,
        Some(v) => v
            .parse::<u32>()
            .ok()
            .filter(|n| *n >= auth::MIN_ITERATIONS)
            .ok_or_else(|| {
                Fail::Usage(format!(
                    "--iterations must be a number of at least {}",
                    auth::MIN_ITERATIONS
                ))
            })?,
    };
    let secret = if o.flag("--generate") {
        auth::hex(&auth::random_bytes::<20>())
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| Fail::Run(format!("cannot read the password from stdin: {e}")))?;
        let pw = line.trim_end_matches(['\r', '\n']).to_owned();
        if pw.chars().count() < 12 {
            return Err(Fail::Run(
                "the password (first line of stdin) must have at least 12 characters".into(),
            ));
        }
        if pw.contains(char::is_control) {
            return Err(Fail::Run(
                "the password must not contain control characters".into(),
            ));
        }
        pw
    };
    let file = o.auth_file();
    if let Some(dir) = file.path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.is_dir() {
            return Err(Fail::Run(format!(
                "{}: the directory does not exist; create it (e.g. `install -d -m 0755 {}`) \
                 or name another file with --auth-file",
                dir.display(),
                dir.display()
            )));
        }
    }
    file.set(role, name, auth::hash_password(&secret, iterations))
        .map_err(Fail::Run)?;
    // Reports any malformed line left in the file (kept as it was, and skipped).
    let _ = file.load();
    warn_about_permissions(&file);
    if o.flag("--generate") {
        println!("{secret}");
    }
    eprintln!(
        "mailguard dashboard: {} {name} written to {}{}",
        role.as_str(),
        file.path.display(),
        if o.flag("--generate") {
            " (password on stdout, shown once)"
        } else {
            ""
        }
    );
    Ok(())
}

/// The listen address, refusing a non-loopback one without `--allow-remote`.
fn listen_addr(text: &str, allow_remote: bool) -> Result<SocketAddr, Fail> {
    let addrs: Vec<SocketAddr> = text
        .to_socket_addrs()
        .map_err(|e| Fail::Usage(format!("--listen {text}: {e} (expected ADDRESS:PORT)")))?
        .collect();
    let Some(addr) = addrs.first().copied() else {
        return Err(Fail::Usage(format!("--listen {text}: no address")));
    };
    if !allow_remote && !addrs.iter().all(|a| a.ip().is_loopback()) {
        return Err(Fail::Usage(format!(
            "--listen {text} is not a loopback address. The dashboard speaks plain HTTP, so \
             passwords and session cookies would cross the network unencrypted: keep it on \
             127.0.0.1 behind a TLS reverse proxy (then use --secure-cookie), or pass \
             --allow-remote if the network path is protected otherwise"
        )));
    }
    Ok(addr)
}

fn serve(args: &[String]) -> Result<(), Fail> {
    let o = parse(
        args,
        &[
            "--listen",
            "--state-dir",
            "--auth-file",
            "--threads",
            "--host",
            "--metrics-scrape",
            "--max-connections",
        ],
        &["--allow-remote", "--secure-cookie", "--metrics-open"],
    )?;
    if o.flag("--metrics-open") {
        return Err(Fail::Usage(
            "--metrics-open is gone: it showed every account to every local user. Use \
             --metrics-scrape IP (a remote scraper's address) or give the scraper an \
             operator's Bearer credential"
                .into(),
        ));
    }
    let metrics_scrape = o.value("--metrics-scrape").map(scrape_addr).transpose()?;
    let max_connections = match o.value("--max-connections") {
        None => server::Limits::default().max_connections,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=10_000).contains(n))
            .ok_or_else(|| {
                Fail::Usage("--max-connections must be a number from 1 to 10000".into())
            })?,
    };
    let addr = listen_addr(
        o.value("--listen").unwrap_or("127.0.0.1:8025"),
        o.flag("--allow-remote"),
    )?;
    let threads = match o.value("--threads") {
        None => 4,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=64).contains(n))
            .ok_or_else(|| Fail::Usage("--threads must be a number from 1 to 64".into()))?,
    };
    let state_dir = o.state_dir();
    // Fail early on an unusable state directory (and create the database if new).
    Store::open(&state_dir).map_err(|e| Fail::Run(e.to_string()))?;
    let file = o.auth_file();
    // Malformed lines are reported (and skipped) by load itself.
    match file.load() {
        Err(e) => return Err(Fail::Run(e)),
        Ok(c) if c.is_empty() => eprintln!(
            "mailguard dashboard: warning: {} has no credentials yet, nobody can log in; \
             add some with `mailguard dashboard passwd --account NAME --auth-file {}`",
            file.path.display(),
            file.path.display()
        ),
        Ok(_) => {}
    }
    warn_about_permissions(&file);
    let old = state_dir.join("dashboard-auth");
    if old.exists() && old != file.path {
        eprintln!(
            "mailguard dashboard: warning: {} is no longer read: any PHP script sharing the \
             state directory could add a line to it. Review its lines, move it to {} \
             (root-owned, mode 0640) and delete it",
            old.display(),
            file.path.display()
        );
    }
    let listener = std::net::TcpListener::bind(addr)
        .map_err(|e| Fail::Run(format!("cannot listen on {addr}: {e}")))?;
    let local = listener.local_addr().unwrap_or(addr);
    let mut hosts = vec![local.to_string(), format!("localhost:{}", local.port())];
    if let Some(h) = o.value("--host") {
        hosts.push(h.to_ascii_lowercase());
    }
    let app = Arc::new(App {
        state_dir,
        auth: Auth::new(file),
        secure_cookie: o.flag("--secure-cookie"),
        metrics_scrape,
        hosts,
    });
    let limits = server::Limits {
        workers: threads,
        max_connections,
        ..server::Limits::default()
    };
    println!("mailguard dashboard: listening on http://{local}/");
    server::run(listener, app, limits).map_err(|e| Fail::Run(format!("server: {e}")))
}

/// `--metrics-scrape IP`: the one peer address that may read `/metrics` without
/// credentials. A loopback address is refused: every local user shares it.
fn scrape_addr(text: &str) -> Result<IpAddr, Fail> {
    let ip: IpAddr = text
        .parse()
        .map_err(|_| Fail::Usage(format!("--metrics-scrape {text}: not an IP address")))?;
    if ip.is_loopback() || ip.is_unspecified() {
        return Err(Fail::Usage(format!(
            "--metrics-scrape {text}: every local user can connect from {text}, so /metrics \
             would be open to all of them; give a local scraper an operator's Bearer \
             credential instead, or name the remote scraper's own address"
        )));
    }
    Ok(ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_refuses_remote_without_the_flag() {
        assert!(listen_addr("127.0.0.1:0", false).is_ok());
        assert!(listen_addr("[::1]:8025", false).is_ok());
        assert!(matches!(
            listen_addr("0.0.0.0:8025", false),
            Err(Fail::Usage(_))
        ));
        assert!(listen_addr("0.0.0.0:8025", true).is_ok());
        assert!(listen_addr("nonsense", false).is_err());
    }
}

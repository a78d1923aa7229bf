//! The dashboard under the attacks a local user can mount on loopback (issue 14), each
//! against the real binary, with the server's own memory (VmHWM, the peak resident set)
//! and thread count read from /proc while it happens:
//!
//! - a 300 MB request header line, and 100,000 header lines;
//! - 800 slow connections that never finish their request head;
//! - 20,000 failed logins with distinct 15 KB user names;
//! - brute force on the owner's name: the owner still gets in (device cookie, Bearer,
//!   open session);
//! - a wrong password takes as long for an unknown name as for a known one (within 2x).
//!
//! Run with `--nocapture` to see the figures.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_mailguard");
/// The tests of this file run one at a time: each measures the server's memory, threads
/// or timing, which another test's load would disturb.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
const OWNER_PW: &str = "owner-password-long";

struct Dashboard {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
    _one_at_a_time: std::sync::MutexGuard<'static, ()>,
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(iterations: u32, extra: &[&str]) -> Dashboard {
    let guard = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let auth = dir.path().join("dashboard-auth");
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    let mut c = Command::new(BIN)
        .args(["dashboard", "passwd", "--account", "site1", "--iterations"])
        .arg(iterations.to_string())
        .arg("--auth-file")
        .arg(&auth)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    writeln!(c.stdin.take().unwrap(), "{OWNER_PW}").unwrap();
    assert!(c.wait().unwrap().success());
    let mut child = Command::new(BIN)
        .args(["dashboard", "--listen", "127.0.0.1:0", "--state-dir"])
        .arg(&state)
        .arg("--auth-file")
        .arg(&auth)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
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
    Dashboard {
        child,
        addr,
        _dir: dir,
        _one_at_a_time: guard,
    }
}

/// A field of /proc/PID/status, in its unit (kB for memory).
fn proc_status(pid: u32, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

struct Reply {
    status: u16,
    headers: String,
}

impl Dashboard {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn peak_kb(&self) -> u64 {
        proc_status(self.pid(), "VmHWM")
    }

    fn threads(&self) -> u64 {
        proc_status(self.pid(), "Threads")
    }

    fn raw(&self, request: &[u8]) -> Reply {
        let mut s = TcpStream::connect(&self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        s.write_all(request).unwrap();
        let mut raw = Vec::new();
        let _ = s.read_to_end(&mut raw);
        let text = String::from_utf8_lossy(&raw).into_owned();
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        Reply {
            status,
            headers: text.split("\r\n\r\n").next().unwrap_or("").to_owned(),
        }
    }

    fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.addr,
            body.len()
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        req.push_str(body);
        self.raw(req.as_bytes())
    }

    fn bearer(&self, token: &str) -> Reply {
        self.request(
            "GET",
            "/api/accounts",
            &[("Authorization", &format!("Bearer {token}"))],
            "",
        )
    }

    /// A login form post with a valid login token; `cookies` are added.
    fn login(&self, user: &str, pw: &str, cookies: &str) -> Reply {
        let token = "ab".repeat(32);
        let cookie = format!("mg_login={token}{cookies}");
        self.request(
            "POST",
            "/login",
            &[
                ("Cookie", &cookie),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            &format!("login_token={token}&user={user}&password={pw}"),
        )
    }

    fn answers(&self) -> bool {
        self.request("GET", "/login", &[], "").status == 200
    }
}

/// Reads until the server closes (true) or stays silent for a second (false).
fn closed_by_server(s: &mut TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let mut b = [0u8; 1024];
    loop {
        match s.read(&mut b) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false
            }
            Err(_) => return true,
        }
    }
}

fn set_cookie(r: &Reply, name: &str) -> Option<String> {
    r.headers
        .lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
        .filter_map(|(_, v)| v.trim().split(';').next())
        .find(|c| c.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

#[test]
fn a_300_mb_header_line_is_refused_without_being_buffered() {
    let d = start(1000, &[]);
    assert!(d.answers());
    let before = d.peak_kb();
    let mut s = TcpStream::connect(&d.addr).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ")
        .unwrap();
    let chunk = vec![b'a'; 1 << 20];
    let mut sent = 0usize;
    while sent < 300 << 20 {
        match s.write(&chunk) {
            Ok(n) => sent += n,
            Err(_) => break,
        }
    }
    let mut reply = Vec::new();
    let _ = s.read_to_end(&mut reply);
    let after = d.peak_kb();
    eprintln!(
        "300 MB header line: the server took {} KB before refusing ({:?}); peak RSS {} KB -> {} KB",
        sent / 1024,
        String::from_utf8_lossy(&reply)
            .lines()
            .next()
            .unwrap_or("closed"),
        before,
        after
    );
    assert!(sent < 300 << 20, "the whole 300 MB line was read");
    assert!(
        after - before < 8 * 1024,
        "peak RSS grew by {} KB",
        after - before
    );
    assert!(d.answers());
}

#[test]
fn one_hundred_thousand_header_lines_are_refused() {
    let d = start(1000, &[]);
    assert!(d.answers());
    let before = d.peak_kb();
    let mut req = b"GET /login HTTP/1.1\r\nHost: x\r\n".to_vec();
    for i in 0..100_000 {
        req.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
    }
    req.extend_from_slice(b"\r\n");
    let mut s = TcpStream::connect(&d.addr).unwrap();
    let _ = s.write_all(&req);
    let mut reply = Vec::new();
    let _ = s.read_to_end(&mut reply);
    let first = String::from_utf8_lossy(&reply)
        .lines()
        .next()
        .unwrap_or("")
        .to_owned();
    let after = d.peak_kb();
    eprintln!("100,000 header lines: {first:?}; peak RSS {before} KB -> {after} KB");
    assert!(!first.contains(" 200 "), "{first}");
    // 64 header lines at most: 65 are refused too.
    let mut req = b"GET /login HTTP/1.1\r\nHost: x\r\n".to_vec();
    for i in 0..65 {
        req.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
    }
    req.extend_from_slice(b"\r\n");
    assert_eq!(d.raw(&req).status, 431);
    assert!(
        after - before < 8 * 1024,
        "peak RSS grew by {} KB",
        after - before
    );
    assert!(d.answers());
}

#[test]
fn eight_hundred_slow_connections_use_a_fixed_number_of_threads() {
    let d = start(1000, &[]);
    assert!(d.answers());
    let idle_threads = d.threads();
    let before = d.peak_kb();
    let mut conns = Vec::new();
    for _ in 0..800 {
        let mut s = TcpStream::connect(&d.addr).unwrap();
        let _ = s.write_all(b"GET / HTTP/1.1\r\nHost: ");
        conns.push(s);
    }
    std::thread::sleep(Duration::from_millis(500));
    let busy_threads = d.threads();
    let after = d.peak_kb();
    eprintln!(
        "800 slow connections: {idle_threads} threads idle, {busy_threads} with them open; \
         peak RSS {before} KB -> {after} KB"
    );
    assert!(busy_threads <= 12, "{busy_threads} threads");
    assert!(
        after - before < 16 * 1024,
        "peak RSS grew by {} KB",
        after - before
    );
    // The slow ones are cut at the 10 s head timeout; the server answers again.
    let t = Instant::now();
    std::thread::sleep(Duration::from_secs(11));
    let closed = conns
        .iter_mut()
        .map(closed_by_server)
        .filter(|c| *c)
        .count();
    eprintln!(
        "after {:?}: {closed} of 800 slow connections closed by the server",
        t.elapsed()
    );
    assert_eq!(closed, 800);
    assert!(d.answers());
}

#[test]
fn twenty_thousand_long_user_names_do_not_grow_memory() {
    let d = start(1000, &[]);
    assert!(d.answers());
    let before = d.peak_kb();
    let long = "n".repeat(15 * 1024);
    let t = Instant::now();
    std::thread::scope(|sc| {
        for w in 0..4 {
            let (d, long) = (&d, &long);
            sc.spawn(move || {
                for i in (w..20_000).step_by(4) {
                    let r = d.login(&format!("{long}{i}"), "wrong", "");
                    assert!(r.status == 401 || r.status == 429, "{}", r.status);
                }
            });
        }
    });
    let after = d.peak_kb();
    eprintln!(
        "20,000 failed logins with 15 KB names in {:?}: peak RSS {before} KB -> {after} KB, \
         {} threads",
        t.elapsed(),
        d.threads()
    );
    assert!(
        after - before < 16 * 1024,
        "peak RSS grew by {} KB",
        after - before
    );
    assert!(d.answers());
}

#[test]
fn the_owner_gets_in_during_someone_elses_brute_force() {
    let d = start(1000, &[]);
    // The owner logged in from this browser before: it keeps a device cookie.
    let first = d.login("site1", OWNER_PW, "");
    assert_eq!(first.status, 303, "{}", first.headers);
    let device = set_cookie(&first, "mg_device").expect("device cookie");
    let session = set_cookie(&first, "mg_session").expect("session cookie");
    // Someone else guesses, by form and by Bearer.
    for i in 0..30 {
        let r = d.login("site1", &format!("guess{i}"), "");
        assert!(r.status == 401 || r.status == 429);
        let r = d.bearer(&format!("site1:guess{i}"));
        assert!(r.status == 401 || r.status == 429);
    }
    // A browser with no history is held off while it lasts...
    assert_eq!(d.login("site1", OWNER_PW, "").status, 429);
    // and so is one with a forged device cookie.
    assert_eq!(
        d.login("site1", OWNER_PW, "; mg_device=site1.99999999999.00")
            .status,
        429
    );
    // ...but the owner's browser, Bearer credential and open session are not.
    let again = d.login("site1", OWNER_PW, &format!("; {device}"));
    assert_eq!(again.status, 303, "{}", again.headers);
    assert_eq!(d.bearer(&format!("site1:{OWNER_PW}")).status, 200);
    assert_eq!(
        d.request("GET", "/accounts/site1", &[("Cookie", &session)], "")
            .status,
        200
    );
    // A wrong password stays wrong with the device cookie (the owner's login above reset
    // the name's count, so it is checked and refused as wrong).
    assert_eq!(
        d.login("site1", "guess-again", &format!("; {device}"))
            .status,
        401
    );
}

#[test]
fn a_wrong_password_takes_as_long_for_an_unknown_name() {
    // A real work factor (the debug build makes it slow enough to measure).
    let d = start(50_000, &[]);
    let once = |token: &str| {
        let t = Instant::now();
        let r = d.bearer(token);
        assert!(r.status == 401 || r.status == 429, "{}", r.status);
        t.elapsed()
    };
    // Interleaved, so that a change of the machine's load hits both alike.
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    for _ in 0..9 {
        known.push(once("site1:wrong-password"));
        unknown.push(once("nobody:wrong-password"));
    }
    known.sort();
    unknown.sort();
    let (known, unknown) = (known[4], unknown[4]);
    let ratio = known.as_secs_f64().max(unknown.as_secs_f64())
        / known.as_secs_f64().min(unknown.as_secs_f64());
    eprintln!("wrong password: known name {known:?}, unknown name {unknown:?} (median of 9, interleaved), ratio {ratio:.2}");
    assert!(ratio < 2.0, "known {known:?} vs unknown {unknown:?}");
    // And both cost the real work, not a token amount.
    assert!(unknown > Duration::from_millis(2), "{unknown:?}");
}

#[test]
fn a_body_that_never_arrives_is_cut_and_a_large_one_refused() {
    let d = start(1000, &[]);
    let t = Instant::now();
    let mut s = TcpStream::connect(&d.addr).unwrap();
    s.write_all(
        format!(
            "POST /login HTTP/1.1\r\nHost: {}\r\nContent-Length: 100\r\n\r\nuser=a",
            d.addr
        )
        .as_bytes(),
    )
    .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut reply = Vec::new();
    let _ = s.read_to_end(&mut reply);
    let first = String::from_utf8_lossy(&reply)
        .lines()
        .next()
        .unwrap_or("")
        .to_owned();
    eprintln!(
        "a body that stops after 6 of 100 bytes: {first:?} after {:?}",
        t.elapsed()
    );
    assert!(first.contains(" 408 "), "{first}");
    assert!(t.elapsed() < Duration::from_secs(15));
    // Declared larger than 16 KB: refused before reading it.
    let big = d.request("POST", "/login", &[], &"a".repeat(17 * 1024));
    assert_eq!(big.status, 413);
    // A 17 KB header line: refused.
    let long = "v".repeat(17 * 1024);
    let r = d.request("GET", "/login", &[("X-Long", &long)], "");
    assert_eq!(r.status, 431);
}

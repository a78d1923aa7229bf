//! The harness of the runner, bounce and report tests: real SMTP servers on loopback
//! (tests/servers/smtpd.py, aiosmtpd) with a test CA generated once per run
//! (tests/servers/gencerts.py), a fresh state directory per test filled through the store
//! API, and the built `mailguard` binary.
//!
//! A missing python3, aiosmtpd or cryptography fails the test with the install line;
//! nothing is skipped silently.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use mailguard_core::limits::{Limits, Mode};
use mailguard_store::{now, MessageId, Origin, Store, Submission, Timestamp, SENDING_LEASE};

pub const INSTALL: &str = "python3 -m pip install -r tests/servers/requirements.txt";

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root")
}

fn python() -> &'static str {
    static CHECKED: OnceLock<()> = OnceLock::new();
    CHECKED.get_or_init(|| {
        let out = Command::new("python3")
            .args(["-c", "import aiosmtpd, cryptography"])
            .output()
            .unwrap_or_else(|e| panic!("python3 is needed for these tests: {e}"));
        assert!(
            out.status.success(),
            "these tests need the Python packages aiosmtpd and cryptography (install: {INSTALL}): {}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
    "python3"
}

/// A fresh directory for one test, under cargo's per-target tmp dir.
pub fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("cli-runner-{}", std::process::id()))
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The CA and server certificates of this test run.
pub fn certs() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = scratch("certs");
        let out = Command::new(python())
            .arg(repo_root().join("tests/servers/gencerts.py"))
            .arg("--out")
            .arg(&dir)
            .output()
            .expect("run gencerts.py");
        assert!(
            out.status.success(),
            "gencerts.py failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        dir
    })
}

/// A running tests/servers/smtpd.py.
pub struct Server {
    child: Child,
    pub port: u16,
    pub record: PathBuf,
    pub tls: String,
}

impl Server {
    /// Starts smtpd.py with TLS mode `tls` (`implicit`, `starttls`), the certificate
    /// `cert_stem` of the test CA, and `extra` arguments (`--mode 451`...).
    pub fn start(name: &str, tls: &str, cert_stem: &str, extra: &[&str]) -> Server {
        let dir = scratch(&format!("server-{name}"));
        let record = dir.join("record");
        let stderr_log = dir.join("server.stderr");
        let mut child = Command::new(python())
            .arg(repo_root().join("tests/servers/smtpd.py"))
            .args(["--port", "0", "--record"])
            .arg(&record)
            .args(["--tls", tls, "--cert"])
            .arg(certs().join(format!("{cert_stem}.pem")))
            .arg("--key")
            .arg(certs().join(format!("{cert_stem}.key")))
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr_log).unwrap())
            .spawn()
            .expect("start smtpd.py");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .strip_prefix("READY ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "smtpd.py did not start (stdout {line:?}): {}",
                    std::fs::read_to_string(&stderr_log).unwrap_or_default()
                )
            });
        Server {
            child,
            port,
            record,
            tls: tls.to_owned(),
        }
    }

    /// The recorded messages: (raw bytes as received, envelope JSON), in order.
    pub fn messages(&self) -> Vec<(Vec<u8>, serde_json::Value)> {
        let mut names: Vec<String> = std::fs::read_dir(&self.record)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with("msg-") && n.ends_with(".json"))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
            .iter()
            .map(|n| {
                let json = std::fs::read_to_string(self.record.join(n)).unwrap();
                let eml = std::fs::read(self.record.join(n.replace(".json", ".eml"))).unwrap();
                (eml, serde_json::from_str(&json).unwrap())
            })
            .collect()
    }

    /// The SMTP command names received (`MAIL`, `RCPT`, `DATA`, ...).
    pub fn events(&self) -> Vec<String> {
        std::fs::read_to_string(self.record.join("events.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|v| v.get("event").and_then(|e| e.as_str()).map(str::to_owned))
            .collect()
    }

    /// A config file for this server (`extra` lines go into `[smtp]`).
    pub fn config(&self, dir: &Path, extra: &str) -> PathBuf {
        let security = if self.tls == "implicit" {
            "ssl"
        } else {
            "starttls"
        };
        let text = format!(
            "transport = \"smtp\"\n\n[smtp]\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"{security}\"\nca_file = {:?}\nhelo_name = \"web01.test\"\n{extra}\n\n[report]\nfrom = \"mailguard@hosting.test\"\n",
            self.port,
            certs().join("ca.pem").display().to_string()
        );
        let path = dir.join("mailguard.toml");
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A state directory of one test.
pub struct State {
    pub dir: PathBuf,
}

impl State {
    pub fn new(name: &str) -> State {
        let dir = scratch(name).join("state");
        State { dir }
    }

    pub fn store(&self) -> Store {
        Store::open(&self.dir).unwrap()
    }

    /// Submits a message as a PHP worker that died before delivering it: its claim has
    /// run out, so it is the runner's to deliver.
    pub fn submit_due(
        &self,
        account: &str,
        limits: &Limits,
        rcpts: &[&str],
        raw: &[u8],
    ) -> MessageId {
        let when = now().minus(SENDING_LEASE + Duration::from_secs(60));
        self.submit_at(account, limits, rcpts, raw, when)
    }

    pub fn submit_at(
        &self,
        account: &str,
        limits: &Limits,
        rcpts: &[&str],
        raw: &[u8],
        when: Timestamp,
    ) -> MessageId {
        let rcpts: Vec<String> = rcpts.iter().map(|s| s.to_string()).collect();
        let origin = Origin {
            file: Some(format!("/var/www/{account}/contact.php")),
            line: Some(42),
            caller: Some(format!(
                "/var/www/{account}/wp-content/plugins/form/send.php:7"
            )),
            vhost: Some(format!("{account}.example")),
            request_uri: Some("/contact".into()),
            client_ip: Some("203.0.113.5".into()),
            sapi: Some("web".into()),
            ..Origin::default()
        };
        self.store()
            .submit(
                account,
                limits,
                Submission {
                    raw,
                    envelope_from: &format!("www@{account}.example"),
                    recipients: &rcpts,
                    origin: &origin,
                    spam: None,
                },
                when,
                Mode::Enforce,
            )
            .unwrap()
            .id
            .expect("stored")
    }
}

/// Limits for the tests: no rate limits; the bounce rule as given (e.g. `0.1/2/24h`).
pub fn limits(bounce: &str) -> Limits {
    format!("quota= burst= spam= bounce={bounce}")
        .parse()
        .unwrap()
}

/// A message as mail() builds it, CRLF only (so the relay stores exactly these bytes),
/// with a line starting with a dot (dot-stuffing must be undone by the relay).
pub fn message(account: &str, n: u32, to: &str) -> Vec<u8> {
    format!(
        "To: {to}\r\nSubject: order {n} from {account}\r\nFrom: shop@{account}.example\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n\
         Thank you for order {n}.\r\n.a line with a leading dot\r\nZa\u{17c}\u{f3}\u{142}\u{107} g\u{119}\u{15b}l\u{105} ja\u{17a}\u{144}\r\n"
    )
    .into_bytes()
}

pub fn mailguard() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mailguard"))
}

/// Runs `mailguard ARGS` to its end.
pub fn run(args: &[&str]) -> Output {
    let out = mailguard()
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    out
}

/// Runs `mailguard ARGS` with `input` on stdin.
pub fn run_with_input(args: &[&str], input: &[u8]) -> Output {
    let mut child = mailguard()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

/// `mailguard run --once` for this state directory and config; asserts exit 0.
pub fn run_once(state: &State, config: &Path) -> String {
    let out = run(&[
        "run",
        "--once",
        "--state-dir",
        state.dir.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
    ]);
    let text = format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "mailguard run --once failed: {text}");
    text
}

/// Waits until `cond` holds (a generous deadline: this is no timing assertion, only a
/// guard against a hung test).
pub fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !cond() {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

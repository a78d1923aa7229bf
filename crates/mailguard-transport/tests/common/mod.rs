//! Shared harness for the transport tests: real servers on loopback, started by the
//! tests as child processes (tests/servers/smtpd.py, Postfix's smtp-sink), and a test
//! CA generated once per test run (tests/servers/gencerts.py).
//!
//! A missing python3, aiosmtpd, cryptography or smtp-sink fails the test with the
//! install line; nothing is skipped silently.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use mailguard_transport::{Method, SmtpConfig, TransportConfig};

pub const INSTALL: &str = "python3 -m pip install -r tests/servers/requirements.txt";

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root")
}

pub fn servers_dir() -> PathBuf {
    repo_root().join("tests/servers")
}

fn python() -> &'static str {
    static CHECKED: OnceLock<()> = OnceLock::new();
    CHECKED.get_or_init(|| {
        let out = Command::new("python3")
            .args(["-c", "import aiosmtpd, cryptography"])
            .output()
            .unwrap_or_else(|e| panic!("python3 is needed for the transport tests: {e}"));
        assert!(
            out.status.success(),
            "the transport tests need the Python packages aiosmtpd and cryptography \
             (install: {INSTALL}): {}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
    "python3"
}

/// A directory for this run, under cargo's per-target tmp dir.
pub fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("transport-{}", std::process::id()))
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
            .arg(servers_dir().join("gencerts.py"))
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

pub fn cert(stem: &str) -> (PathBuf, PathBuf) {
    (
        certs().join(format!("{stem}.pem")),
        certs().join(format!("{stem}.key")),
    )
}

/// A running tests/servers/smtpd.py.
pub struct Server {
    child: Child,
    pub port: u16,
    pub record: PathBuf,
    stderr_log: PathBuf,
}

impl Server {
    /// Starts smtpd.py with `args` (plus --port 0 --record DIR) and waits for READY.
    pub fn start(name: &str, args: &[&str]) -> Server {
        let dir = scratch(name);
        let record = dir.join("record");
        let stderr_log = dir.join("server.stderr");
        let mut child = Command::new(python())
            .arg(servers_dir().join("smtpd.py"))
            .args(["--port", "0", "--record"])
            .arg(&record)
            .args(args)
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
                    "smtpd.py {args:?} did not start (stdout {line:?}): {}",
                    std::fs::read_to_string(&stderr_log).unwrap_or_default()
                )
            });
        Server {
            child,
            port,
            record,
            stderr_log,
        }
    }

    /// Starts a server with the given TLS mode and certificate stem.
    pub fn tls(name: &str, tls: &str, cert_stem: &str, extra: &[&str]) -> Server {
        let (cert, key) = cert(cert_stem);
        let mut args = vec![
            "--tls".to_string(),
            tls.to_string(),
            "--cert".to_string(),
            cert.display().to_string(),
            "--key".to_string(),
            key.display().to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        Server::start(name, &refs)
    }

    /// The SMTP commands the server received, as (event, argument) pairs.
    pub fn events(&self) -> Vec<(String, String)> {
        let text = std::fs::read_to_string(self.record.join("events.jsonl")).unwrap_or_default();
        text.lines()
            .map(|l| (json_field(l, "event"), json_field(l, "arg")))
            .collect()
    }

    pub fn event_names(&self) -> Vec<String> {
        self.events().into_iter().map(|(e, _)| e).collect()
    }

    /// The recorded messages: (raw .eml bytes, envelope JSON text), in order.
    pub fn messages(&self) -> Vec<(Vec<u8>, String)> {
        let mut names: Vec<_> = std::fs::read_dir(&self.record)
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
                (eml, json)
            })
            .collect()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_log).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The string value of `"key": "..."` in one JSON line (enough for our own records).
fn json_field(line: &str, key: &str) -> String {
    let needle = format!("\"{key}\": \"");
    let Some(start) = line.find(&needle) else {
        return String::new();
    };
    let rest = &line[start + needle.len()..];
    let mut out = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            }
            '"' => break,
            c => out.push(c),
        }
    }
    out
}

/// A running Postfix smtp-sink on loopback, dumping messages into `dump`.
pub struct Sink {
    child: Child,
    pub port: u16,
    pub dump: PathBuf,
}

impl Sink {
    pub fn start(name: &str, extra: &[&str]) -> Sink {
        let sink = "/usr/sbin/smtp-sink";
        assert!(
            Path::new(sink).exists(),
            "{sink} is missing: install the Debian package postfix (apt-get install postfix)"
        );
        let dump = scratch(name).join("dump");
        std::fs::create_dir_all(&dump).unwrap();
        // smtp-sink drops to -u's user when run as root; that user must write the dump.
        std::fs::set_permissions(&dump, std::os::unix::fs::PermissionsExt::from_mode(0o777))
            .unwrap();
        let root = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
            .unwrap_or(false);
        let port = free_port();
        let mut cmd = Command::new(sink);
        if root {
            cmd.args(["-u", "nobody"]);
        }
        cmd.arg("-d")
            .arg(dump.join("msg."))
            .args(extra)
            .arg(format!("127.0.0.1:{port}"))
            .arg("16")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start smtp-sink");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                let mut err = String::new();
                child.stderr.take().unwrap().read_to_string(&mut err).ok();
                panic!("smtp-sink exited ({status}): {err}");
            }
            assert!(
                Instant::now() < deadline,
                "smtp-sink did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Sink { child, port, dump }
    }

    pub fn dumped(&self) -> Vec<Vec<u8>> {
        let mut files: Vec<_> = std::fs::read_dir(&self.dump)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .collect();
        files.sort();
        // smtp-sink removes the dump file of a session that ended without a
        // message (e.g. rejected at RCPT), possibly between the listing and the read.
        files
            .iter()
            .filter_map(|p| match std::fs::read(p) {
                Ok(bytes) => Some(bytes),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => panic!("{}: {e}", p.display()),
            })
            .collect()
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nobody listens on right now (the small race with other processes is fine
/// for smtp-sink, which cannot pick its own port and report it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An [`SmtpConfig`] from TOML lines for the `[smtp]` table (so the tests go through
/// the same validation as an operator's file).
pub fn smtp_config(smtp_lines: &str) -> SmtpConfig {
    let text = format!("transport = \"smtp\"\n[smtp]\n{smtp_lines}\n");
    match TransportConfig::from_toml_str(&text)
        .unwrap_or_else(|e| panic!("config {text:?}: {e}"))
        .method
    {
        Method::Smtp(s) => s,
        other => panic!("not smtp: {other:?}"),
    }
}

pub fn ca_line() -> String {
    format!(
        "ca_file = {:?}",
        certs().join("ca.pem").display().to_string()
    )
}

/// A small message as mail() builds it (bare LF in the body on purpose, and a line
/// starting with a dot).
pub fn message(id: &str) -> Vec<u8> {
    format!(
        "To: rcpt@example.org\r\nSubject: test {id}\r\nFrom: shop@example.com\r\n\
         X-MailGuard-Id: {id}\r\n\r\nLine one\n.leading dot\r\nLast line\r\n"
    )
    .into_bytes()
}

/// What a compliant relay stores for [`message`]: CRLF everywhere, dot unstuffed.
pub fn message_as_received(id: &str) -> Vec<u8> {
    format!(
        "To: rcpt@example.org\r\nSubject: test {id}\r\nFrom: shop@example.com\r\n\
         X-MailGuard-Id: {id}\r\n\r\nLine one\r\n.leading dot\r\nLast line\r\n"
    )
    .into_bytes()
}

pub fn rcpts(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

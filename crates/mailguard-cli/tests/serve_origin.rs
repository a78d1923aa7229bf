//! Traceable mail in hardened mode: `mailguard serve` stamps `X-Mailguard-Origin`
//! (account from the caller's uid, script and client IP as the PHP worker reported them)
//! on every message before it relays it, after removing any same-named header the script
//! wrote; `[serve] origin_header = false` turns it off. The relay here is a sendmail
//! command that keeps what it is given.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mailguard_proto::{ClaimedOrigin, Request, Response, Submit};

const BIN: &str = env!("CARGO_BIN_EXE_mailguard");

struct Daemon {
    child: Child,
    socket: PathBuf,
    out: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(serve_extra: &str) -> Daemon {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("relayed");
    std::fs::create_dir(&out).unwrap();
    let relay = dir.path().join("relay.sh");
    std::fs::write(
        &relay,
        format!(
            "#!/bin/sh\ncat > {}/msg.$$.tmp && mv {}/msg.$$.tmp {}/msg.$$.eml\n",
            out.display(),
            out.display(),
            out.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&relay, std::fs::Permissions::from_mode(0o755)).unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).unwrap();
    let socket = dir.path().join("submit.sock");
    let config = dir.path().join("mailguard.toml");
    std::fs::write(
        &config,
        format!(
            "transport = \"sendmail\"\nsendmail_path = \"{}\"\n\n[accounts]\nmap = \"uid\"\n\n[serve]\n{serve_extra}\n",
            relay.display()
        ),
    )
    .unwrap();
    let child = Command::new(BIN)
        .args(["serve", "--socket"])
        .arg(&socket)
        .arg("--state-dir")
        .arg(&state)
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while !socket.exists() {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "the daemon did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Daemon {
        child,
        socket,
        out,
        _dir: dir,
    }
}

fn send(d: &Daemon, body: &[u8]) {
    let request = Request::Submit(Box::new(Submit {
        entry: "mail".into(),
        from_headers: true,
        origin: ClaimedOrigin {
            file: Some("/var/www/lib/mailer.php".into()),
            caller_file: Some("/var/www/contact.php".into()),
            client_ip: Some("203.0.113.9".into()),
            sapi: Some("fpm-fcgi".into()),
            ..ClaimedOrigin::default()
        },
        ..Submit::default()
    }));
    let r = mailguard_proto::call(&d.socket, &request, body, Duration::from_secs(20)).unwrap();
    assert!(matches!(r, Response::Submitted { .. }), "{r:?}");
}

fn relayed(out: &Path) -> String {
    let t = Instant::now();
    loop {
        let done: Vec<_> = std::fs::read_dir(out)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .collect();
        if let Some(p) = done.first() {
            return std::fs::read_to_string(p).unwrap();
        }
        assert!(t.elapsed() < Duration::from_secs(30), "nothing relayed");
        std::thread::sleep(Duration::from_millis(50));
    }
}

const FORGED: &[u8] = b"To: someone@example.net\r\nSubject: hello\r\nX-Mailguard-Origin: account=victim; script=/elsewhere.php\r\n\r\nbody\r\n";

#[test]
fn the_daemon_stamps_the_origin_and_drops_a_forged_one() {
    let d = start("");
    send(&d, FORGED);
    let m = relayed(&d.out);
    let uid = nix::unistd::getuid().as_raw();
    assert!(
        m.starts_with(&format!(
            "X-Mailguard-Origin: account=uid-{uid}; script=/var/www/contact.php; client=203.0.113.9\r\n"
        )),
        "{m}"
    );
    assert!(
        !m.contains("victim") && !m.contains("/elsewhere.php"),
        "{m}"
    );
    assert_eq!(m.matches("X-Mailguard-Origin").count(), 1, "{m}");
    assert!(m.ends_with("\r\n\r\nbody\r\n"), "{m}");
}

#[test]
fn the_operator_can_turn_the_stamp_off() {
    let d = start("origin_header = false");
    send(&d, FORGED);
    let m = relayed(&d.out);
    assert!(m.starts_with("To: someone@example.net\r\n"), "{m}");
    assert!(
        m.contains("account=victim"),
        "the script's own bytes are relayed as they are"
    );
}

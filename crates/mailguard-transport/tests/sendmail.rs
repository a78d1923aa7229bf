//! The stock sendmail pipe: same command, same bytes, same exit-status rules as PHP 8.2.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use mailguard_transport::{Kind, SendmailTransport, Stage, Transport};

const RAW: &[u8] = b"To: a@example.org\r\nSubject: s\r\n\r\nline1\nline2\r\n.\r\n";

/// A fake sendmail that records its argv (one `[arg]` per line) and its stdin.
fn recorder(dir: &Path) -> PathBuf {
    let script = dir.join("fake-sendmail");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nfor a in \"$@\"; do printf '[%s]\\n' \"$a\"; done > {dir}/argv\ncat > {dir}/stdin\n",
            dir = dir.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

#[test]
fn message_goes_to_stdin_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut t = SendmailTransport::new(format!("cat > {}", out.display()));
    let delivered = t.send_php(None, RAW).unwrap();
    assert!(delivered.reply.contains("exited 0"));
    assert_eq!(
        std::fs::read(&out).unwrap(),
        RAW,
        "bytes must reach sendmail as PHP wrote them"
    );
}

#[test]
fn extra_parameters_are_escaped_like_php() {
    let dir = tempfile::tempdir().unwrap();
    let script = recorder(dir.path());
    let pwned = dir.path().join("pwned");
    let mut t = SendmailTransport::new(format!("{} -t -i", script.display()));
    let extra = format!(
        "-fuser@example.com -oi; touch {} | cat `id` $HOME",
        pwned.display()
    );
    t.send_php(Some(extra.as_bytes()), RAW).unwrap();
    let argv = std::fs::read_to_string(dir.path().join("argv")).unwrap();
    assert_eq!(
        argv,
        format!(
            "[-t]\n[-i]\n[-fuser@example.com]\n[-oi;]\n[touch]\n[{}]\n[|]\n[cat]\n[`id`]\n[$HOME]\n",
            pwned.display()
        )
    );
    assert!(!pwned.exists(), "the shell ran an injected command");
    assert_eq!(std::fs::read(dir.path().join("stdin")).unwrap(), RAW);
}

#[test]
fn paired_quotes_pass_as_in_php() {
    let dir = tempfile::tempdir().unwrap();
    let script = recorder(dir.path());
    let mut t = SendmailTransport::new(script.display().to_string());
    t.send_php(Some(b"-f'a b@example.org'"), RAW).unwrap();
    let argv = std::fs::read_to_string(dir.path().join("argv")).unwrap();
    assert_eq!(argv, "[-fa b@example.org]\n");
    assert_eq!(
        t.command_line(Some(b"")),
        format!("{} ", script.display()).into_bytes(),
        "an empty 5th argument still adds the space, as in PHP"
    );
}

#[test]
fn trait_send_passes_the_envelope_sender_as_its_own_word() {
    let dir = tempfile::tempdir().unwrap();
    let script = recorder(dir.path());
    let mut t = SendmailTransport::new(format!("{} -t -i", script.display()));
    t.send(
        "bounces+X1@shop.example.com",
        &["ignored@example.org".into()],
        RAW,
    )
    .unwrap();
    let argv = std::fs::read_to_string(dir.path().join("argv")).unwrap();
    assert_eq!(argv, "[-t]\n[-i]\n[-f]\n[bounces+X1@shop.example.com]\n");
    t.send("", &[], RAW).unwrap();
    let argv = std::fs::read_to_string(dir.path().join("argv")).unwrap();
    assert_eq!(argv, "[-t]\n[-i]\n");
}

#[test]
fn exit_75_is_a_temporary_failure_not_a_success() {
    let mut t = SendmailTransport::new("cat >/dev/null; exit 75");
    let e = t.send_php(None, RAW).unwrap_err();
    assert!(e.is_transient(), "{e}");
    assert_eq!(e.kind(), Kind::Sendmail);
    assert_eq!(e.stage(), Stage::Sendmail);
    assert!(e.text().contains("75"), "{e}");
}

#[test]
fn other_exit_codes_are_permanent_with_the_code() {
    let mut t = SendmailTransport::new("cat >/dev/null; exit 1");
    let e = t.send_php(None, RAW).unwrap_err();
    assert!(e.is_permanent(), "{e}");
    assert!(e.text().contains("status 1"), "{e}");

    let mut t = SendmailTransport::new("/nonexistent/sendmail -t -i 2>/dev/null");
    let e = t.send_php(None, RAW).unwrap_err();
    assert!(e.is_permanent(), "{e}");
    assert!(e.text().contains("127"), "{e}");
}

#[test]
fn killed_by_a_signal_is_transient() {
    let mut t = SendmailTransport::new("cat >/dev/null; kill -9 $$");
    let e = t.send_php(None, RAW).unwrap_err();
    assert!(e.is_transient(), "{e}");
    assert!(e.text().contains("signal 9"), "{e}");
}

#[test]
fn exit_0_without_reading_the_message_is_not_a_success() {
    // Far more than a pipe buffer: the write must fail once the command is gone.
    let big = vec![b'x'; 4 << 20];
    let mut t = SendmailTransport::new("exit 0");
    let e = t.send_php(None, &big).unwrap_err();
    assert!(e.is_transient(), "{e}");
    assert!(e.text().contains("without reading"), "{e}");
}

//! The runner's sendmail (`Transport::send`): no shell, the envelope sender checked and
//! passed as its own argv word (CVE-2016-10033), exit statuses judged as before.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use mailguard_transport::sendmail::sendmail_argv;
use mailguard_transport::{Kind, SendmailTransport, Stage, Transport};

const RAW: &[u8] = b"To: a@example.org\r\nSubject: s\r\n\r\nbody\r\n";

/// A program at `dir/name` that records its argv (one word per line) in `dir/argv`
/// and its standard input in `dir/message`, then runs `tail` (shell text).
fn program(dir: &Path, name: &str, tail: &str) -> PathBuf {
    let script = dir.join(name);
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" > '{dir}/argv'\ncat > '{dir}/message'\n{tail}\n",
            dir = dir.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

fn argv(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("argv"))
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn an_injected_option_in_the_sender_is_refused_and_nothing_runs() {
    let dir = tempfile::tempdir().unwrap();
    let script = program(dir.path(), "sendmail", "");
    let mut t = SendmailTransport::new(format!("{} -t -i", script.display()));
    for sender in [
        "x@y.example -X/tmp/owned",
        "u -C/any/config@host.example",
        "x@y.example\t-oQ/tmp",
        "x@y.example\n-be",
        "-X/tmp/owned@y.example",
        "'x@y.example -X/tmp/owned'",
        "x@y.example;touch /tmp/owned",
    ] {
        let e = t
            .send(sender, &["a@example.org".into()], RAW)
            .expect_err(sender);
        assert!(e.is_permanent(), "{sender:?}: {e}");
        assert_eq!(e.kind(), Kind::Address, "{sender:?}: {e}");
        assert_eq!(e.stage(), Stage::Sendmail);
        assert!(e.text().contains("envelope sender"), "{e}");
        assert!(e.text().contains("was not run"), "{e}");
        assert!(
            !dir.path().join("argv").exists() && !dir.path().join("message").exists(),
            "{sender:?}: the program ran"
        );
    }
}

#[test]
fn a_valid_sender_arrives_as_exactly_dash_f_and_the_address() {
    let dir = tempfile::tempdir().unwrap();
    let script = program(dir.path(), "sendmail", "");
    let mut t = SendmailTransport::new(format!("{} -t -i", script.display()));
    let delivered = t
        .send("x@y.example", &["a@example.org".into()], RAW)
        .unwrap();
    assert!(delivered.reply.contains("exited 0"), "{}", delivered.reply);
    assert_eq!(argv(dir.path()), ["-t", "-i", "-f", "x@y.example"]);
    assert_eq!(std::fs::read(dir.path().join("message")).unwrap(), RAW);

    // Characters a shell would act on are plain bytes of one word here.
    t.send("o'brien+$HOME|x@y.example", &[], RAW).unwrap();
    assert_eq!(
        argv(dir.path()),
        ["-t", "-i", "-f", "o'brien+$HOME|x@y.example"]
    );

    // The null reverse-path adds nothing.
    t.send("", &[], RAW).unwrap();
    assert_eq!(argv(dir.path()), ["-t", "-i"]);
}

#[test]
fn sendmail_path_words_are_split_like_a_shell_without_one() {
    let dir = tempfile::tempdir().unwrap();
    let spaced = dir.path().join("with space");
    std::fs::create_dir(&spaced).unwrap();
    let script = program(&spaced, "send mail", "");
    let mut t = SendmailTransport::new(format!(
        "'{}' -t -i -oi \"-Fthe shop\" -X\\ y",
        script.display()
    ));
    t.send("x@y.example", &[], RAW).unwrap();
    assert_eq!(
        argv(&spaced),
        ["-t", "-i", "-oi", "-Fthe shop", "-X y", "-f", "x@y.example"]
    );

    assert_eq!(
        sendmail_argv("/usr/sbin/sendmail -t -i").unwrap(),
        ["/usr/sbin/sendmail", "-t", "-i"]
    );
    assert_eq!(sendmail_argv("a '$b;c' \\|").unwrap(), ["a", "$b;c", "|"]);
    for needs_a_shell in [
        "cat > /tmp/x",
        "sendmail -t; touch /tmp/x",
        "sendmail -t | tee",
        "sendmail $OPTS",
        "sendmail \"$OPTS\"",
        "sendmail `opts`",
        "sendmail -t &",
        "(sendmail)",
    ] {
        let e = sendmail_argv(needs_a_shell).unwrap_err();
        assert!(e.contains("needs a shell"), "{needs_a_shell}: {e}");
    }
    assert!(sendmail_argv("sendmail 'unclosed").is_err());
    assert!(sendmail_argv("   ").is_err());
}

#[test]
fn a_sendmail_path_that_needs_a_shell_is_not_run() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut t = SendmailTransport::new(format!("cat > {}", out.display()));
    let e = t.send("x@y.example", &[], RAW).unwrap_err();
    assert!(e.is_transient(), "{e}");
    assert_eq!(e.kind(), Kind::Sendmail);
    assert!(e.text().contains("needs a shell"), "{e}");
    assert!(!out.exists());
}

#[test]
fn exit_statuses_are_judged_as_before() {
    let dir = tempfile::tempdir().unwrap();

    let t75 = program(dir.path(), "s75", "exit 75");
    let e = SendmailTransport::new(t75.display().to_string())
        .send("x@y.example", &[], RAW)
        .unwrap_err();
    assert!(e.is_transient(), "{e}");
    assert_eq!(e.kind(), Kind::Sendmail);
    assert!(e.text().contains("status 75"), "{e}");

    let t1 = program(dir.path(), "s1", "exit 1");
    let e = SendmailTransport::new(t1.display().to_string())
        .send("x@y.example", &[], RAW)
        .unwrap_err();
    assert!(e.is_permanent(), "{e}");
    assert!(e.text().contains("status 1"), "{e}");

    let killed = program(dir.path(), "s9", "kill -9 $$");
    let e = SendmailTransport::new(killed.display().to_string())
        .send("x@y.example", &[], RAW)
        .unwrap_err();
    assert!(e.is_transient(), "{e}");
    assert!(e.text().contains("signal 9"), "{e}");

    let e = SendmailTransport::new("/nonexistent/sendmail -t -i")
        .send("x@y.example", &[], RAW)
        .unwrap_err();
    assert!(e.is_permanent(), "{e}");
    assert!(e.text().contains("command not found"), "{e}");

    let not_executable = dir.path().join("plain");
    std::fs::write(&not_executable, "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(&not_executable, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = SendmailTransport::new(not_executable.display().to_string())
        .send("x@y.example", &[], RAW)
        .unwrap_err();
    assert!(e.is_permanent(), "{e}");
    assert!(e.text().contains("not executable"), "{e}");
}

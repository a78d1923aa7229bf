//! sendmail: two ways to run the configured `sendmail_path` with the message on
//! standard input, both judged by the raw wait status as PHP 8.2 does.
//!
//! - [`SendmailTransport::send_php`], the stock PHP pipe of an immediate `mail()`:
//!   `/bin/sh -c "<sendmail_path> <escaped extra>"`, the same command string as stock
//!   `mail()` (research php-mail-semantics §4, §7): the extra parameters are escaped
//!   with PHP's `escapeshellcmd()` rules ([`escape_shell_cmd`]) and appended after one
//!   space.
//! - [`Transport::send`] (the runner, queued and retried mail): never a shell. The
//!   operator's `sendmail_path` is split into words ([`sendmail_argv`]), the envelope
//!   sender is checked again ([`mailguard_core::address::check_envelope_sender`]) and
//!   passed as the two words `-f`, `ADDRESS`, and the program is executed directly.
//!   `escapeshellcmd()` leaves spaces alone, so through the shell a sender such as
//!   `x@y.example -X/any/file` would have put `-X` on sendmail's command line
//!   (CVE-2016-10033).
//!
//! Success iff the raw wait status is 0. Exit 75 (EX_TEMPFAIL) and death by a signal
//! are transient; any other exit is permanent, as are a program that is not found or
//! not executable (the shell's 127 and 126).
//!
//! SIGPIPE: if the command exits without reading all of its input, the write fails
//! with EPIPE only where SIGPIPE is ignored (Rust binaries such as the runner, PHP's
//! CLI); elsewhere the process gets the signal, exactly as stock `mail()` would.

use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, Stdio};

use mailguard_core::address;

use crate::error::{Class, DeliveryError, Kind, Stage};
use crate::{Delivered, Transport};

/// EX_TEMPFAIL from sysexits.h.
pub const EX_TEMPFAIL: i32 = 75;

/// Delivery through the configured `sendmail_path`.
#[derive(Clone, Debug)]
pub struct SendmailTransport {
    sendmail_path: String,
}

impl SendmailTransport {
    pub fn new(sendmail_path: impl Into<String>) -> SendmailTransport {
        SendmailTransport {
            sendmail_path: sendmail_path.into(),
        }
    }

    pub fn sendmail_path(&self) -> &str {
        &self.sendmail_path
    }

    /// The shell command stock PHP would run: `sendmail_path`, then, when `extra` is
    /// given (even empty), one space and `escapeshellcmd(extra)`.
    pub fn command_line(&self, extra: Option<&[u8]>) -> Vec<u8> {
        let mut cmd = self.sendmail_path.as_bytes().to_vec();
        if let Some(extra) = extra {
            cmd.push(b' ');
            cmd.extend_from_slice(&escape_shell_cmd(extra));
        }
        cmd
    }

    /// Stock `mail()` delivery: runs [`command_line`](Self::command_line) through
    /// `/bin/sh -c`, writes `raw` to its standard input unchanged and judges the wait
    /// status. `extra` is the 5th mail() argument (or `mail.force_extra_parameters`),
    /// not yet escaped.
    pub fn send_php(
        &mut self,
        extra: Option<&[u8]>,
        raw: &[u8],
    ) -> Result<Delivered, DeliveryError> {
        let cmd = self.command_line(extra);
        let child = Command::new("/bin/sh")
            .arg0("sh")
            .arg("-c")
            .arg(OsStr::from_bytes(&cmd))
            .stdin(Stdio::piped())
            .spawn()
            .map_err(|e| {
                DeliveryError::new(
                    Class::Transient,
                    Kind::Sendmail,
                    Stage::Sendmail,
                    format!(
                        "could not execute mail delivery program '{}': {e}",
                        self.sendmail_path
                    ),
                )
            })?;
        self.feed_and_judge(child, raw)
    }

    /// Writes `raw` to the child's standard input and judges its wait status.
    fn feed_and_judge(&self, mut child: Child, raw: &[u8]) -> Result<Delivered, DeliveryError> {
        let mut stdin = child.stdin.take().expect("stdin is piped");
        let write_error = stdin.write_all(raw).and_then(|_| stdin.flush()).err();
        drop(stdin);
        let status = child.wait().map_err(|e| {
            DeliveryError::new(
                Class::Transient,
                Kind::Sendmail,
                Stage::Sendmail,
                format!("waiting for '{}' failed: {e}", self.sendmail_path),
            )
        })?;

        if status.into_raw() == 0 {
            if let Some(e) = write_error {
                // Stock PHP's pclose() returns -1 here, so mail() says false: the
                // command did not take the whole message.
                return Err(DeliveryError::new(
                    Class::Transient,
                    Kind::Sendmail,
                    Stage::Sendmail,
                    format!(
                        "'{}' exited 0 without reading the whole message ({e})",
                        self.sendmail_path
                    ),
                ));
            }
            return Ok(Delivered {
                accepted: Vec::new(),
                refused: Vec::new(),
                reply: format!("'{}' exited 0", self.sendmail_path),
            });
        }
        if let Some(signal) = status.signal() {
            return Err(DeliveryError::new(
                Class::Transient,
                Kind::Sendmail,
                Stage::Sendmail,
                format!("'{}' was killed by signal {signal}", self.sendmail_path),
            ));
        }
        let code = status.code().unwrap_or(-1);
        let (class, what) = match code {
            EX_TEMPFAIL => (Class::Transient, " (EX_TEMPFAIL: temporary failure)"),
            126 => (Class::Permanent, " (command not executable)"),
            127 => (Class::Permanent, " (command not found)"),
            _ => (Class::Permanent, ""),
        };
        Err(DeliveryError::new(
            class,
            Kind::Sendmail,
            Stage::Sendmail,
            format!("'{}' exited with status {code}{what}", self.sendmail_path),
        ))
    }
}

impl Transport for SendmailTransport {
    /// Runs `sendmail_path`, split into words by [`sendmail_argv`], without a shell,
    /// adding the two words `-f` and the envelope sender when one is given. The sender
    /// is checked first ([`address::check_envelope_sender`]): one that is not a plain
    /// address is a permanent failure and nothing is executed. The recipients are not
    /// passed: as with stock PHP, the command (`sendmail -t`) reads them from the
    /// message headers.
    fn send(
        &mut self,
        envelope_from: &str,
        _recipients: &[String],
        raw: &[u8],
    ) -> Result<Delivered, DeliveryError> {
        if let Err(e) = address::check_envelope_sender(envelope_from) {
            return Err(DeliveryError::new(
                Class::Permanent,
                Kind::Address,
                Stage::Sendmail,
                format!(
                    "envelope sender {:?} refused, '{}' was not run: {e}",
                    envelope_from, self.sendmail_path
                ),
            ));
        }
        let mut argv = sendmail_argv(&self.sendmail_path).map_err(|problem| {
            // The operator's setting, not the message: keep the mail and retry, as when
            // the program cannot be started.
            DeliveryError::new(
                Class::Transient,
                Kind::Sendmail,
                Stage::Sendmail,
                format!("sendmail_path '{}' {problem}", self.sendmail_path),
            )
        })?;
        if !envelope_from.is_empty() {
            argv.push("-f".to_owned());
            argv.push(envelope_from.to_owned());
        }
        let child = Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(Stdio::piped())
            .spawn()
            .map_err(|e| self.exec_error(&argv[0], e))?;
        self.feed_and_judge(child, raw)
    }
}

impl SendmailTransport {
    /// A program that could not be started, classified as the shell's exit status
    /// would have been: not found (127) and not executable (126) are permanent,
    /// anything else (out of processes, memory) transient.
    fn exec_error(&self, program: &str, e: std::io::Error) -> DeliveryError {
        /// ENOEXEC on Linux: no `#!` line and not a binary.
        const ENOEXEC: i32 = 8;
        let (class, what) = match e.kind() {
            std::io::ErrorKind::NotFound => (Class::Permanent, " (command not found)"),
            std::io::ErrorKind::PermissionDenied => (Class::Permanent, " (command not executable)"),
            _ if e.raw_os_error() == Some(ENOEXEC) => {
                (Class::Permanent, " (command not executable)")
            }
            _ => (Class::Transient, ""),
        };
        DeliveryError::new(
            class,
            Kind::Sendmail,
            Stage::Sendmail,
            format!(
                "could not execute mail delivery program '{program}' of '{}': {e}{what}",
                self.sendmail_path
            ),
        )
    }
}

/// The words of an operator's `sendmail_path`, split as a POSIX shell would split
/// them (quotes and backslashes, by [`shell_words::split`]) but without running a
/// shell. A setting that needs one (a pipe, a redirection, `;`, `&`, `$` or a
/// backquote outside single quotes) is refused with the reason rather than executed
/// with those characters as arguments: point `sendmail_path` at a wrapper script.
pub fn sendmail_argv(sendmail_path: &str) -> Result<Vec<String>, String> {
    if let Some(c) = shell_syntax(sendmail_path) {
        return Err(format!(
            "needs a shell ('{}'); the runner executes it without one, so put the command \
             in a script and name the script",
            c.escape_default()
        ));
    }
    let argv = shell_words::split(sendmail_path).map_err(|e| format!("cannot be split: {e}"))?;
    if argv.is_empty() {
        return Err("is empty".to_owned());
    }
    Ok(argv)
}

/// The first character outside single quotes that only a shell would act on.
fn shell_syntax(command: &str) -> Option<char> {
    let (mut single, mut double, mut escaped) = (false, false, false);
    for c in command.chars() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\'' if !double => single = !single,
            _ if single => {}
            '\\' => escaped = true,
            '"' => double = !double,
            '$' | '`' => return Some(c),
            '|' | '&' | ';' | '<' | '>' | '(' | ')' | '\n' if !double => return Some(c),
            _ => {}
        }
    }
    None
}

/// PHP's `escapeshellcmd()` on Unix in a UTF-8 locale (ext/standard/exec.c,
/// `php_escape_shell_cmd`): a backslash before each of ``#&;`|*?~<>^()[]{}$\``, LF
/// and 0xFF; quotes escaped only when unpaired; valid multibyte UTF-8 copied; bytes
/// that are not valid UTF-8 dropped.
pub fn escape_shell_cmd(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() * 2);
    // Position of the quote that closes the currently open one, as PHP's `p`.
    let mut pending: Option<u8> = None;
    let mut x = 0;
    while x < input.len() {
        let b = input[x];
        let len = utf8_len(&input[x..]);
        match len {
            None => {
                x += 1;
                continue;
            }
            Some(n) if n > 1 => {
                out.extend_from_slice(&input[x..x + n]);
                x += n;
                continue;
            }
            Some(_) => {}
        }
        match b {
            b'"' | b'\'' => {
                match pending {
                    None => {
                        if input[x + 1..].contains(&b) {
                            pending = Some(b);
                        } else {
                            out.push(b'\\');
                        }
                    }
                    Some(q) if q == b => pending = None,
                    Some(_) => out.push(b'\\'),
                }
                out.push(b);
            }
            b'#' | b'&' | b';' | b'`' | b'|' | b'*' | b'?' | b'~' | b'<' | b'>' | b'^' | b'('
            | b')' | b'[' | b']' | b'{' | b'}' | b'$' | b'\\' | b'\n' => {
                out.push(b'\\');
                out.push(b);
            }
            _ => out.push(b),
        }
        x += 1;
    }
    out
}

/// mblen() in a UTF-8 locale: the length of the character at the start, or None for
/// an invalid or truncated sequence.
fn utf8_len(s: &[u8]) -> Option<usize> {
    let n = match s[0] {
        0x00..=0x7f => 1,
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => return None,
    };
    if s.len() < n {
        return None;
    }
    std::str::from_utf8(&s[..n]).ok().map(|_| n)
}

#[cfg(test)]
mod tests {
    use super::escape_shell_cmd;

    fn esc(s: &[u8]) -> String {
        String::from_utf8(escape_shell_cmd(s)).unwrap()
    }

    #[test]
    fn like_php_escapeshellcmd() {
        assert_eq!(esc(b"-fuser@example.com"), "-fuser@example.com");
        assert_eq!(esc(b"-f a;b|c"), "-f a\\;b\\|c");
        assert_eq!(
            esc(b"$HOME `x` *?~<>^()[]{}\\#&"),
            "\\$HOME \\`x\\` \\*\\?\\~\\<\\>\\^\\(\\)\\[\\]\\{\\}\\\\\\#\\&"
        );
        // Paired quotes are left alone, unpaired ones escaped.
        assert_eq!(esc(b"-f'a b'"), "-f'a b'");
        assert_eq!(esc(b"it's"), "it\\'s");
        assert_eq!(esc(b"\"q"), "\\\"q");
        assert_eq!(esc(b"'a\"b'"), "'a\\\"b'");
        assert_eq!(esc(b"a\nb"), "a\\\nb");
        // Invalid UTF-8 (including 0xFF) is dropped, valid multibyte kept.
        assert_eq!(esc(b"a\xe9b\xffc"), "abc");
        assert_eq!(esc("zażółć".as_bytes()), "zażółć");
        // The observed PHP 8.2 argv example from the research notes, as one string.
        assert_eq!(
            esc(b"-f'a b' -oi; rm -rf / | cat `x` $HOME *?~<>^()[]{}\\ #&\n\xff\"q"),
            "-f'a b' -oi\\; rm -rf / \\| cat \\`x\\` \\$HOME \\*\\?\\~\\<\\>\\^\\(\\)\\[\\]\\{\\}\\\\ \\#\\&\\\n\\\"q"
        );
    }
}

//! `mailguard sendmail`: a sendmail-compatible entry point for hardened mode. Installed
//! as the `sendmail` guarded users see (or called as `mailguard sendmail`), it hands the
//! message on standard input to `mailguard serve`, so `popen("/usr/sbin/sendmail -t")`,
//! Perl and Python CGI scripts and cron jobs go through the same account (the kernel's
//! uid), the same limits and the same checks as mail().
//!
//! Accepted: `-t`, `-i`, `-oi`, `-f ADDR`/`-fADDR`, `-r ADDR`, `-F NAME`, and harmless
//! options sendmail implementations take (`-oem`, `-odi`, `-B 8BITMIME`, `-v`...), then
//! recipients. Anything that would change how the MTA runs (`-C`, `-X`, `-O`, `-bs`,
//! `-bd`, `-q`...) is refused. The daemon checks the sender and recipients again.
//!
//! Exit status (sysexits): 0 stored; 64 usage; 65 unreadable input; 69 refused by
//! policy (the reason on stderr); 75 the daemon could not be reached or could not store it
//! (try again later).

use std::io::Read;
use std::path::PathBuf;

use mailguard_proto::{Request, Response, Submit, DEFAULT_SOCKET, DEFAULT_TIMEOUT};

const EX_USAGE: i32 = 64;
const EX_DATAERR: i32 = 65;
const EX_UNAVAILABLE: i32 = 69;
const EX_TEMPFAIL: i32 = 75;
/// Read no more than this from standard input; the daemon applies the account's limit.
const MAX_INPUT: u64 = 64 << 20;

/// What the command line asked for.
#[derive(Debug, Default, PartialEq)]
struct Line {
    from_headers: bool,
    /// `-i` / `-oi`: a lone `.` line does not end the message.
    ignore_dots: bool,
    sender: Option<String>,
    recipients: Vec<String>,
}

fn parse(args: &[String]) -> Result<Line, String> {
    let mut l = Line::default();
    let mut i = 0;
    let mut only_recipients = false;
    while i < args.len() {
        let a = args[i].as_str();
        i += 1;
        if only_recipients || !a.starts_with('-') || a == "-" {
            l.recipients.extend(
                a.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned),
            );
            continue;
        }
        let mut value = |flag: &str, inline: &str| -> Result<String, String> {
            if !inline.is_empty() {
                return Ok(inline.to_owned());
            }
            let v = args
                .get(i)
                .cloned()
                .ok_or_else(|| format!("{flag} needs a value"))?;
            i += 1;
            Ok(v)
        };
        match a {
            "--" => only_recipients = true,
            "-t" => l.from_headers = true,
            "-i" | "-oi" => l.ignore_dots = true,
            "-v" | "-m" | "-n" | "-U" | "-bm" | "-Am" | "-Ac" => {}
            _ if a.starts_with("-f") => l.sender = Some(value("-f", &a[2..])?),
            _ if a.starts_with("-r") => l.sender = Some(value("-r", &a[2..])?),
            _ if a.starts_with("-F") => {
                value("-F", &a[2..])?;
            }
            _ if a.starts_with("-B") => {
                value("-B", &a[2..])?;
            }
            _ if a.starts_with("-N") || a.starts_with("-R") || a.starts_with("-V") => {
                value(&a[..2], &a[2..])?;
            }
            // Delivery mode and error mode (-odi, -odb, -oem, -oep...): the daemon decides.
            _ if a.starts_with("-od") || a.starts_with("-oe") => {}
            other => {
                return Err(format!(
                    "option {other} is not allowed here (only -t, -i, -f/-r ADDR, -F NAME and delivery-mode options; \
                     options that change how the mail system runs, such as -C, -X, -O, -b..., -q, are refused)"
                ))
            }
        }
    }
    Ok(l)
}

/// Reads the message: to the end of input, or (without `-i`) to a line that is a lone dot.
fn read_message(ignore_dots: bool) -> Result<Vec<u8>, String> {
    let mut raw = Vec::new();
    std::io::stdin()
        .lock()
        .take(MAX_INPUT + 1)
        .read_to_end(&mut raw)
        .map_err(|e| format!("cannot read the message on standard input: {e}"))?;
    if raw.len() as u64 > MAX_INPUT {
        return Err(format!("the message is over {MAX_INPUT} bytes"));
    }
    if !ignore_dots {
        let mut at = 0;
        while at < raw.len() {
            let end = raw[at..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(raw.len(), |p| at + p);
            let line = &raw[at..end];
            if line == b"." || line == b".\r" {
                raw.truncate(at);
                break;
            }
            at = end + 1;
        }
    }
    Ok(raw)
}

/// The daemon's socket: `MAILGUARD_SOCKET` (for tests and unusual installs), else the
/// default. Whatever the caller sets, its mail can only reach a daemon that checks it.
fn socket() -> PathBuf {
    std::env::var_os("MAILGUARD_SOCKET")
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET))
}

/// Runs the entry point; returns the exit status.
pub fn run(args: &[String]) -> i32 {
    if args.iter().any(|a| a == "--help") {
        println!(
            "usage: mailguard sendmail [-t] [-i] [-f ADDR] [-F NAME] [RECIPIENT...] < message"
        );
        return 0;
    }
    let line = match parse(args) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("sendmail (mailguard): {e}");
            return EX_USAGE;
        }
    };
    if !line.from_headers && line.recipients.is_empty() {
        eprintln!("sendmail (mailguard): no recipients given (name them, or use -t to read To, Cc and Bcc)");
        return EX_USAGE;
    }
    let raw = match read_message(line.ignore_dots) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sendmail (mailguard): {e}");
            return EX_DATAERR;
        }
    };
    let request = Request::Submit(Box::new(Submit {
        entry: "sendmail".into(),
        params: None,
        sender: line.sender,
        recipients: line.recipients,
        from_headers: line.from_headers,
        origin: Default::default(),
    }));
    let path = socket();
    match mailguard_proto::call(&path, &request, &raw, DEFAULT_TIMEOUT) {
        Ok(Response::Submitted {
            outcome, reason, ..
        }) => {
            if outcome.is_stored() {
                0
            } else {
                eprintln!(
                    "sendmail (mailguard): {}",
                    reason.unwrap_or_else(|| "message refused".into())
                );
                EX_UNAVAILABLE
            }
        }
        Ok(Response::Denied { reason }) => {
            eprintln!("sendmail (mailguard): message refused: {reason}");
            EX_UNAVAILABLE
        }
        Ok(Response::Error { reason }) => {
            eprintln!("sendmail (mailguard): not stored, try again later: {reason}");
            EX_TEMPFAIL
        }
        Ok(Response::Value { .. }) => {
            eprintln!("sendmail (mailguard): the daemon answered something else");
            EX_TEMPFAIL
        }
        Err(e) => {
            eprintln!("sendmail (mailguard): not stored, try again later: {e}");
            EX_TEMPFAIL
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn the_usual_command_lines() {
        let l = parse(&args("-t -i")).unwrap();
        assert!(l.from_headers && l.ignore_dots && l.recipients.is_empty());
        let l = parse(&args("-i -FCronDaemon -B8BITMIME -oem root")).unwrap();
        assert_eq!(l.recipients, ["root"]);
        let l = parse(&args(
            "-f bounce@shop.example -oi -- a@x.example,b@x.example",
        ))
        .unwrap();
        assert_eq!(l.sender.as_deref(), Some("bounce@shop.example"));
        assert_eq!(l.recipients, ["a@x.example", "b@x.example"]);
        let l = parse(&args("-rme@shop.example x@y.example")).unwrap();
        assert_eq!(l.sender.as_deref(), Some("me@shop.example"));
    }

    #[test]
    fn options_that_change_the_mta_are_refused() {
        for bad in [
            "-C/tmp/cf",
            "-X/tmp/log",
            "-O QueueDirectory=/tmp",
            "-bs",
            "-bd",
            "-q1m",
            "-be",
        ] {
            assert!(parse(&args(&format!("-t {bad}"))).is_err(), "{bad}");
        }
        assert!(parse(&args("-f")).is_err());
    }
}

//! check: `mailguard check FILE.eml|-` scores one message with the spam rules and prints
//! the score, every rule hit with its reason, and the verdict.
//!
//! Exit codes: 0 ham or suspicious, 1 refuse, 2 usage or read error.

use std::io::{Read, Write};

use mailguard_core::spam::{self, Level, SpamContext, Thresholds};

const USAGE: &str = "usage: mailguard check [--explain] [--origin PHP_FILE] [--eval] [--recent] \
[--suspicious N] [--refuse N] FILE.eml|-

Scores one message (as PHP's mail() hands it to sendmail) with the spam rules.
  --origin PHP_FILE   the script that sent it (hosting signal: uploads/hidden folders)
  --explain           also show how each MIME part was decoded and which rule groups read
                      it, the repairs made before parsing, and each hit rule's group and meaning
  --eval              the message was sent from eval()'d code
  --recent            the sending script was modified in the last 24 hours
  --suspicious N      suspicious threshold (default 4.0)
  --refuse N          refuse threshold (default 6.0)
Exit status: 0 ham or suspicious, 1 refuse, 2 usage or read error.";

/// Runs `mailguard check`; `args` are the words after `check`. Returns the exit code.
pub fn run(args: &[String]) -> i32 {
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    run_with(
        args,
        &mut std::io::stdin().lock(),
        &mut stdout.lock(),
        &mut stderr.lock(),
    )
}

fn run_with(
    args: &[String],
    stdin: &mut dyn Read,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let mut ctx = SpamContext::default();
    let mut th = Thresholds::default();
    let mut file: Option<&str> = None;
    let mut explain = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-h" | "--help" => {
                let _ = writeln!(out, "{USAGE}");
                return 0;
            }
            "--eval" => ctx.from_eval = true,
            "--recent" => ctx.origin_modified_recently = true,
            "--explain" => explain = true,
            "--origin" | "--suspicious" | "--refuse" => {
                let Some(v) = it.next() else {
                    let _ = writeln!(err, "mailguard check: {a} needs a value\n{USAGE}");
                    return 2;
                };
                match a.as_str() {
                    "--origin" => ctx.origin_file = Some(v.clone()),
                    _ => match v.parse::<f32>() {
                        Ok(n) if n.is_finite() => {
                            if a == "--refuse" {
                                th.refuse = n;
                            } else {
                                th.suspicious = n;
                            }
                        }
                        _ => {
                            let _ = writeln!(err, "mailguard check: {a}: '{v}' is not a number");
                            return 2;
                        }
                    },
                }
            }
            s if s.starts_with("--") => {
                let _ = writeln!(err, "mailguard check: unknown option {s}\n{USAGE}");
                return 2;
            }
            s => {
                if file.replace(s).is_some() {
                    let _ = writeln!(err, "mailguard check: one message at a time\n{USAGE}");
                    return 2;
                }
            }
        }
    }
    let Some(file) = file else {
        let _ = writeln!(err, "{USAGE}");
        return 2;
    };
    let mut raw = Vec::new();
    let read = if file == "-" {
        stdin.read_to_end(&mut raw).map(|_| ())
    } else {
        std::fs::File::open(file).and_then(|mut f| f.read_to_end(&mut raw).map(|_| ()))
    };
    if let Err(e) = read {
        let _ = writeln!(err, "mailguard check: cannot read {file}: {e}");
        return 2;
    }
    let (v, how) = spam::explain(&raw, &ctx, &th);
    if explain {
        let _ = writeln!(out, "parts:");
        if how.parts.is_empty() {
            let _ = writeln!(out, "  (none: the message could not be parsed)");
        }
        for p in &how.parts {
            let _ = writeln!(
                out,
                "  {:<6} {} ({}, {} bytes)\n         decoded: {}\n         read as: {}\n         read by: {}",
                p.path,
                p.content_type,
                p.transfer_encoding,
                p.bytes,
                p.decoded,
                p.read_as,
                if p.read_by.is_empty() {
                    "-".to_string()
                } else {
                    p.read_by.join(", ")
                }
            );
        }
        if !how.notes.is_empty() {
            let _ = writeln!(out, "repairs and damage:");
            for n in &how.notes {
                let _ = writeln!(out, "  {n}");
            }
        }
    }
    let _ = writeln!(
        out,
        "score: {:.2} (suspicious at {:.1}, refuse at {:.1})",
        v.score, th.suspicious, th.refuse
    );
    if v.hits.is_empty() {
        let _ = writeln!(out, "rules: none hit");
    } else {
        let _ = writeln!(out, "rules:");
        for h in &v.hits {
            let _ = writeln!(
                out,
                "  {:<24} {:>4.1}  {}",
                h.rule.as_str(),
                h.points,
                h.reason
            );
            if explain {
                let _ = writeln!(
                    out,
                    "  {:<24} {:>4}  [{} group, weight {:.2}] {}",
                    "",
                    "",
                    h.rule.group().as_str(),
                    h.rule.weight(),
                    h.rule.description()
                );
            }
        }
    }
    let _ = writeln!(out, "verdict: {}", v.level);
    match v.level {
        Level::Refuse => 1,
        Level::Ham | Level::Suspicious => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(args: &[&str], stdin: &[u8]) -> (i32, String, String) {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = run_with(&args, &mut &stdin[..], &mut out, &mut err);
        (
            code,
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    #[test]
    fn ham_from_stdin() {
        let (code, out, _) = check(
            &["-"],
            b"To: a@example.com\r\nSubject: Your order 12 has shipped\r\nFrom: Shop <s@shop.example>\r\n\r\nThanks for your order.\r\n",
        );
        assert_eq!(code, 0);
        assert!(out.contains("verdict: ham"), "{out}");
        assert!(out.contains("rules: none hit"), "{out}");
    }

    #[test]
    fn refuse_exits_one_and_names_rules() {
        let (code, out, _) = check(
            &["--eval", "--origin", "/www/wp-content/uploads/x.php", "-"],
            b"To: a@example.com\r\nSubject: hi\r\n\r\nbody text here\r\n",
        );
        assert_eq!(code, 1, "{out}");
        assert!(out.contains("eval-origin"), "{out}");
        assert!(out.contains("suspicious-script-path"), "{out}");
        assert!(out.contains("verdict: refuse"), "{out}");
    }

    #[test]
    fn explain_shows_parts_and_decoding() {
        let msg = b"To: a@example.com\r\nSubject: Notice\r\nDate: Mon, 6 May 2024 10:00:00 UT\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/alternative; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n\
--b\r\nContent-Type: text/html\r\nContent-Transfer-Encoding: base64\r\n\r\nPHA+aGVsbG8g!d29ybGQ8L3A+\r\n";
        let (code, out, _) = check(&["--explain", "-"], msg);
        assert_eq!(code, 0, "{out}");
        assert!(out.contains("parts:"), "{out}");
        assert!(out.contains("text/html (base64"), "{out}");
        assert!(out.contains("lenient base64 fallback"), "{out}");
        assert!(out.contains("read by: body, links"), "{out}");
        assert!(out.contains("date zone 'UT'"), "{out}");
        assert!(out.contains("never closed"), "{out}");
        assert!(out.contains("[mime group, weight"), "{out}");
    }

    #[test]
    fn usage_errors_exit_two() {
        assert_eq!(check(&[], b"").0, 2);
        assert_eq!(check(&["--refuse", "x", "-"], b"").0, 2);
        assert_eq!(check(&["--bogus", "-"], b"").0, 2);
        assert_eq!(check(&["/nonexistent/file.eml"], b"").0, 2);
        assert_eq!(check(&["--help"], b"").0, 0);
    }
}

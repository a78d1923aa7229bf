//! The checks a message handed in over the submission socket gets from the daemon,
//! whatever the client already checked: the client may be a compromised script that
//! talks to the socket directly, so nothing it says is taken on trust.
//!
//! [`check`] turns what arrived (the bytes, the 5th parameter or sendmail's `-f`, the
//! recipients named on a command line) into the envelope the daemon stores: the size
//! against the account's limit, the 5th parameter (only `-f address`), the sender and
//! every recipient as one plain address each ([`crate::address`]), and the recipients of
//! `To`/`Cc`/`Bcc` when asked (`mail()`, `sendmail -t`).

use crate::address;
use crate::message::{self, Bytes, Refusal};

/// What a client handed in, before any of it is trusted.
#[derive(Debug, Clone, Copy)]
pub struct Intake<'a> {
    /// The message as it would be piped to sendmail.
    pub raw: &'a [u8],
    /// mail()'s 5th parameter, as the script gave it.
    pub params: Option<&'a str>,
    /// sendmail's `-f` / `-r`.
    pub sender: Option<&'a str>,
    /// Recipients named on a sendmail command line.
    pub recipients: &'a [String],
    /// Take the recipients from the message's `To`, `Cc` and `Bcc` too.
    pub from_headers: bool,
    /// The sender when the client names none: the caller's user at this host, from the
    /// kernel's uid (never from the client's environment).
    pub default_sender: &'a str,
    /// The account's size limit for headers plus body.
    pub max_size: Bytes,
}

/// The envelope to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub sender: String,
    pub recipients: Vec<String>,
}

/// Every check of an intake, in the order of SPEC §3 (size, 5th parameter), then the
/// envelope. The first failure is the refusal, with the text the script will see.
pub fn check(i: &Intake<'_>) -> Result<Envelope, Refusal> {
    message::check_size(i.raw.len() as u64, i.max_size)?;
    let from_params = match i.params {
        Some(p) => message::check_extra_params(p)?,
        None => None,
    };
    let sender = match (from_params, i.sender) {
        (Some(p), _) => p,
        (None, Some(s)) => s.to_owned(),
        (None, None) => i.default_sender.to_owned(),
    };
    address::check_envelope_sender(&sender).map_err(|e| Refusal::Policy {
        reason: format!(
            "the envelope sender \"{}\" is not one plain address ({e}); give it as -f user@example.org",
            printable(&sender)
        ),
    })?;
    let mut recipients: Vec<String> = Vec::new();
    if i.from_headers {
        recipients = message::envelope_recipients(i.raw);
    }
    let mut seen: std::collections::HashSet<String> =
        recipients.iter().map(|r| r.to_ascii_lowercase()).collect();
    for r in i.recipients {
        if seen.insert(r.to_ascii_lowercase()) {
            recipients.push(r.clone());
        }
    }
    for r in &recipients {
        address::check_recipient(r).map_err(|e| Refusal::Policy {
            reason: format!(
                "the recipient \"{}\" is not one plain address ({e}); nothing was sent",
                printable(r)
            ),
        })?;
    }
    if recipients.is_empty() {
        return Err(Refusal::Policy {
            reason: "the message names no recipient (no To, Cc or Bcc address); nothing was sent"
                .to_owned(),
        });
    }
    Ok(Envelope { sender, recipients })
}

pub use crate::message::header_block;

fn printable(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .take(200)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn intake<'a>(raw: &'a [u8], rcpts: &'a [String]) -> Intake<'a> {
        Intake {
            raw,
            params: None,
            sender: None,
            recipients: rcpts,
            from_headers: true,
            default_sender: "shop@web01.example",
            max_size: Bytes(1 << 20),
        }
    }

    const MSG: &[u8] = b"To: a@example.org\r\nSubject: x\r\nCc: B <b@example.org>\r\nBcc: c@example.org\r\n\r\nTo: not@header.example\r\n";

    #[test]
    fn recipients_come_from_the_headers_only() {
        let e = check(&intake(MSG, &[])).unwrap();
        assert_eq!(
            e.recipients,
            ["a@example.org", "b@example.org", "c@example.org"]
        );
        assert_eq!(e.sender, "shop@web01.example");
    }

    #[test]
    fn the_fifth_parameter_is_checked_again() {
        let mut i = intake(MSG, &[]);
        i.params = Some("-f x@y.example -X/tmp/log");
        assert!(matches!(check(&i), Err(Refusal::ForbiddenParameter { .. })));
        i.params = Some("-fowner@shop.example");
        assert_eq!(check(&i).unwrap().sender, "owner@shop.example");
        // The same harmless options as the worker's check, nothing more.
        i.params = Some("-n -oi -r owner@shop.example -odb");
        assert_eq!(check(&i).unwrap().sender, "owner@shop.example");
        for bad in ["-oQ/tmp", "-bd", "-d0", "-C/etc/x"] {
            i.params = Some(bad);
            assert!(check(&i).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_sender_with_options_is_refused() {
        let mut i = intake(MSG, &[]);
        i.sender = Some("x@y.example -C/etc/passwd");
        let e = check(&i).unwrap_err().to_string();
        assert!(e.contains("not one plain address"), "{e}");
        i.sender = None;
        i.default_sender = "u -C/x@host";
        assert!(check(&i).is_err());
    }

    #[test]
    fn command_line_recipients_are_checked_and_deduplicated() {
        let rcpts = vec!["A@example.org".to_owned(), "d@example.org".to_owned()];
        let e = check(&intake(MSG, &rcpts)).unwrap();
        assert_eq!(e.recipients.len(), 4);
        let bad = vec!["-oQ/tmp@x".to_owned()];
        let mut i = intake(b"Subject: x\r\n\r\nbody", &bad);
        i.from_headers = false;
        assert!(check(&i).is_err());
    }

    #[test]
    fn no_recipient_and_oversize_are_refused() {
        let mut i = intake(b"Subject: x\r\n\r\nbody", &[]);
        assert!(check(&i).unwrap_err().to_string().contains("no recipient"));
        i.raw = MSG;
        i.max_size = Bytes(10);
        assert!(matches!(check(&i), Err(Refusal::TooLarge { .. })));
    }

    #[test]
    fn header_block_ends_at_the_first_empty_line() {
        assert_eq!(
            header_block(b"A: 1\r\nB: 2\r\n\r\nbody"),
            b"A: 1\r\nB: 2\r\n"
        );
        assert_eq!(header_block(b"A: 1\n\nbody"), b"A: 1\n");
        assert_eq!(header_block(b"A: 1"), b"A: 1");
    }
}

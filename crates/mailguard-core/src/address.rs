//! Envelope addresses: the sender (`MAIL FROM`, sendmail's `-f`) and the recipients.
//!
//! An address that reaches a command line or an SMTP envelope must be one address and
//! nothing else (CVE-2016-10033: `x@y.example -X/any/file` as a sender puts `-X` on
//! sendmail's command line). The rules are RFC 5321's `Mailbox`, narrowed to what a
//! program can pass on safely:
//!
//! - `local@domain`, ASCII only, at most [`MAX_ADDRESS`] bytes in all and
//!   [`MAX_LOCAL_PART`] in the local part;
//! - the local part is a `Dot-string`: atoms of `atext` (letters, digits and
//!   ``!#$%&'*+-/=?^_`{|}~``) joined by single dots; a `Quoted-string` local part is
//!   refused, and so is a leading `-` (an option to sendmail);
//! - the domain is dot-separated labels (letters, digits, inner hyphens, at most
//!   [`MAX_LABEL`] each) or an address literal `[192.0.2.1]` / `[IPv6:2001:db8::1]`;
//! - never white space, control characters, `<>`, `"`, `\`, `,`, `;`, `()`, `:`.
//!
//! The sender may also be empty: the null reverse-path `<>` of bounces.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// RFC 5321 §4.5.3.1.1.
pub const MAX_LOCAL_PART: usize = 64;
/// RFC 5321's 256-byte path less its angle brackets (RFC 3696 errata 1690).
pub const MAX_ADDRESS: usize = 254;
/// RFC 1035 §2.3.4.
pub const MAX_LABEL: usize = 63;

/// Why an address is refused. [`fmt::Display`] says it in words, without the address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddressError {
    /// A recipient must not be empty (only the sender may be the null reverse-path).
    Empty,
    /// Longer than [`MAX_ADDRESS`] bytes.
    TooLong { len: usize },
    /// A space, tab, newline or other white space.
    WhiteSpace,
    /// A control character (other than white space).
    ControlCharacter,
    /// A byte outside ASCII.
    NonAscii,
    /// Starts with `-`, which sendmail reads as an option.
    LeadingDash,
    /// No `@`.
    NoAt,
    /// Nothing before the `@`.
    EmptyLocalPart,
    /// Local part longer than [`MAX_LOCAL_PART`] bytes.
    LocalPartTooLong { len: usize },
    /// `"..."@domain`.
    QuotedLocalPart,
    /// A character a `Dot-string` local part cannot have.
    ForbiddenInLocalPart(char),
    /// A dot at the start or end of the local part, or two in a row.
    LocalPartDots,
    /// Nothing after the `@`.
    EmptyDomain,
    /// A domain label that is empty, too long, or has a character or hyphen out of place.
    BadDomain { problem: &'static str },
    /// `[...]` that is neither an IPv4 nor an `IPv6:` literal.
    BadAddressLiteral,
}

impl fmt::Display for AddressError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddressError::Empty => f.write_str("the address is empty"),
            AddressError::TooLong { len } => {
                write!(f, "it is {len} bytes long, over the {MAX_ADDRESS}-byte limit")
            }
            AddressError::WhiteSpace => f.write_str(
                "it contains white space (one address only; options such as -X or -C are never accepted)",
            ),
            AddressError::ControlCharacter => f.write_str("it contains a control character"),
            AddressError::NonAscii => f.write_str(
                "it contains non-ASCII characters (write an international domain in its xn-- form)",
            ),
            AddressError::LeadingDash => {
                f.write_str("it starts with '-', which sendmail would read as an option")
            }
            AddressError::NoAt => f.write_str("it is not of the form local@domain (no '@')"),
            AddressError::EmptyLocalPart => f.write_str("nothing before the '@'"),
            AddressError::LocalPartTooLong { len } => write!(
                f,
                "the part before the '@' is {len} bytes long, over the {MAX_LOCAL_PART}-byte limit"
            ),
            AddressError::QuotedLocalPart => {
                f.write_str("a quoted local part (\"...\"@domain) is not accepted")
            }
            AddressError::ForbiddenInLocalPart(c) => {
                write!(f, "the part before the '@' contains '{c}'")
            }
            AddressError::LocalPartDots => f.write_str(
                "the part before the '@' starts or ends with a dot, or has two dots in a row",
            ),
            AddressError::EmptyDomain => f.write_str("nothing after the '@'"),
            AddressError::BadDomain { problem } => write!(f, "the domain {problem}"),
            AddressError::BadAddressLiteral => f.write_str(
                "the address literal after the '@' is neither [IPv4] nor [IPv6:address]",
            ),
        }
    }
}

impl std::error::Error for AddressError {}

/// An envelope sender: empty (the null reverse-path) or a valid [`check_mailbox`].
pub fn check_envelope_sender(addr: &str) -> Result<(), AddressError> {
    if addr.is_empty() {
        Ok(())
    } else {
        check_mailbox(addr)
    }
}

/// A recipient: a valid mailbox, never empty. Unlike the sender it may carry UTF-8
/// letters (RFC 6531 internationalised addresses, `ü@bücher.example`): a recipient is
/// one argv entry or one `RCPT TO`, and the SMTP transport asks the relay for SMTPUTF8.
/// White space, control characters and a leading `-` stay refused.
pub fn check_recipient(addr: &str) -> Result<(), AddressError> {
    check(addr, true)
}

/// `local@domain` by the rules in the module text.
pub fn check_mailbox(addr: &str) -> Result<(), AddressError> {
    check(addr, false)
}

fn check(addr: &str, utf8: bool) -> Result<(), AddressError> {
    if addr.is_empty() {
        return Err(AddressError::Empty);
    }
    // Character classes first: they are what an injection attempt trips over, and the
    // most useful thing to tell.
    if addr.chars().any(char::is_whitespace) {
        return Err(AddressError::WhiteSpace);
    }
    if addr.chars().any(char::is_control) {
        return Err(AddressError::ControlCharacter);
    }
    if !utf8 && !addr.is_ascii() {
        return Err(AddressError::NonAscii);
    }
    if addr.starts_with('-') {
        return Err(AddressError::LeadingDash);
    }
    if addr.len() > MAX_ADDRESS {
        return Err(AddressError::TooLong { len: addr.len() });
    }
    if addr.starts_with('"') {
        return Err(AddressError::QuotedLocalPart);
    }
    let (local, domain) = addr.rsplit_once('@').ok_or(AddressError::NoAt)?;
    check_local_part(local)?;
    check_domain(domain)
}

/// A byte of a UTF-8 letter: allowed where [`check_recipient`] takes UTF-8 (the checks
/// above already refused non-ASCII white space and control characters).
fn utf8_byte(b: u8) -> bool {
    b >= 0x80
}

fn is_atext(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b)
}

fn check_local_part(local: &str) -> Result<(), AddressError> {
    if local.is_empty() {
        return Err(AddressError::EmptyLocalPart);
    }
    if local.len() > MAX_LOCAL_PART {
        return Err(AddressError::LocalPartTooLong { len: local.len() });
    }
    if let Some(c) = local
        .bytes()
        .find(|&b| b != b'.' && !is_atext(b) && !utf8_byte(b))
    {
        return Err(AddressError::ForbiddenInLocalPart(char::from(c)));
    }
    if local.split('.').any(str::is_empty) {
        return Err(AddressError::LocalPartDots);
    }
    Ok(())
}

fn check_domain(domain: &str) -> Result<(), AddressError> {
    if domain.is_empty() {
        return Err(AddressError::EmptyDomain);
    }
    if let Some(literal) = domain.strip_prefix('[') {
        let inner = literal
            .strip_suffix(']')
            .ok_or(AddressError::BadAddressLiteral)?;
        let ok = match inner.get(..5) {
            Some(tag) if tag.eq_ignore_ascii_case("IPv6:") => {
                inner[5..].parse::<Ipv6Addr>().is_ok()
            }
            _ => is_dotted_quad(inner),
        };
        return if ok {
            Ok(())
        } else {
            Err(AddressError::BadAddressLiteral)
        };
    }
    let bad = |problem| Err(AddressError::BadDomain { problem });
    for label in domain.split('.') {
        if label.is_empty() {
            return bad("starts or ends with a dot, or has two dots in a row");
        }
        if label.len() > MAX_LABEL {
            return bad("has a label longer than 63 characters");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || utf8_byte(b))
        {
            return bad("may only have letters, digits, hyphens and dots");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return bad("has a label that starts or ends with a hyphen");
        }
    }
    Ok(())
}

/// RFC 5321's IPv4-address-literal: four decimal numbers 0-255 (no sign, no spaces).
fn is_dotted_quad(s: &str) -> bool {
    s.split('.').count() == 4
        && s.split('.')
            .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
        && s.parse::<Ipv4Addr>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn recipients_may_be_internationalised_senders_not() {
        assert_eq!(check_recipient("jürgen@bücher.example"), Ok(()));
        assert_eq!(check_recipient("用户@例子.广告"), Ok(()));
        assert_eq!(
            check_mailbox("jürgen@bücher.example"),
            Err(AddressError::NonAscii)
        );
        assert_eq!(
            check_recipient("jürgen @x.example"),
            Err(AddressError::WhiteSpace)
        );
        assert_eq!(
            check_recipient("a\u{2028}b@x.example"),
            Err(AddressError::WhiteSpace)
        );
        assert_eq!(
            check_recipient("-ü@x.example"),
            Err(AddressError::LeadingDash)
        );
    }

    #[test]
    fn ordinary_addresses_pass() {
        for a in [
            "user@example.com",
            "bounces+X1@shop.example.com",
            "first.last@sub.example.co.uk",
            "o'brien@example.ie",
            "a@b",
            "www-data@ip-10-0-0-1",
            "SRS0=HHH=TT=example.org=user@forwarder.example",
            "x@[192.0.2.1]",
            "x@[IPv6:2001:db8::1]",
            "x@[ipv6:::1]",
            "!#$%&'*+/=?^_`{|}~-@xn--bcher-kva.example",
        ] {
            assert_eq!(check_mailbox(a), Ok(()), "{a}");
            assert_eq!(check_envelope_sender(a), Ok(()), "{a}");
            assert_eq!(check_recipient(a), Ok(()), "{a}");
        }
    }

    #[test]
    fn the_null_reverse_path_is_a_sender_only() {
        assert_eq!(check_envelope_sender(""), Ok(()));
        assert_eq!(check_recipient(""), Err(AddressError::Empty));
    }

    #[test]
    fn injection_attempts_are_refused() {
        use AddressError::*;
        for (a, e) in [
            ("x@y.example -X/any/file", WhiteSpace),
            ("u -C/any/config@host.example", WhiteSpace),
            ("x@y.example\t-X/f", WhiteSpace),
            ("x@y.example\n-X/f", WhiteSpace),
            ("x@y.example\u{a0}-X", WhiteSpace),
            ("x@y.example\0", ControlCharacter),
            ("x\x7f@y.example", ControlCharacter),
            ("-X/any/file@y.example", LeadingDash),
            ("-fx@y.example", LeadingDash),
            ("-", LeadingDash),
            ("zażółć@example.pl", NonAscii),
            ("x@bücher.example", NonAscii),
            ("\"a b\"@example.com", WhiteSpace),
            ("\"ab\"@example.com", QuotedLocalPart),
            ("a\\b@example.com", ForbiddenInLocalPart('\\')),
            ("<a@example.com>", ForbiddenInLocalPart('<')),
            (
                "a@example.com>",
                BadDomain {
                    problem: "may only have letters, digits, hyphens and dots",
                },
            ),
            ("a,b@example.com", ForbiddenInLocalPart(',')),
            ("a;b@example.com", ForbiddenInLocalPart(';')),
            ("a(b)@example.com", ForbiddenInLocalPart('(')),
            ("a:b@example.com", ForbiddenInLocalPart(':')),
            ("a\"b@example.com", ForbiddenInLocalPart('"')),
            ("a@b@example.com", ForbiddenInLocalPart('@')),
            ("user", NoAt),
            ("@example.com", EmptyLocalPart),
            ("user@", EmptyDomain),
            (".a@example.com", LocalPartDots),
            ("a.@example.com", LocalPartDots),
            ("a..b@example.com", LocalPartDots),
            (
                "a@example..com",
                BadDomain {
                    problem: "starts or ends with a dot, or has two dots in a row",
                },
            ),
            (
                "a@example.com.",
                BadDomain {
                    problem: "starts or ends with a dot, or has two dots in a row",
                },
            ),
            (
                "a@-example.com",
                BadDomain {
                    problem: "has a label that starts or ends with a hyphen",
                },
            ),
            (
                "a@exa_mple.com",
                BadDomain {
                    problem: "may only have letters, digits, hyphens and dots",
                },
            ),
            (
                "a@example.com;",
                BadDomain {
                    problem: "may only have letters, digits, hyphens and dots",
                },
            ),
            ("a@[192.0.2.1", BadAddressLiteral),
            ("a@[192.0.2.256]", BadAddressLiteral),
            ("a@[192.0.2]", BadAddressLiteral),
            ("a@[2001:db8::1]", BadAddressLiteral),
            ("a@[IPv6:nonsense]", BadAddressLiteral),
            ("a@[tag:x]", BadAddressLiteral),
        ] {
            assert_eq!(check_envelope_sender(a), Err(e.clone()), "{a:?}");
            if e != NonAscii {
                assert_eq!(check_recipient(a), Err(e), "{a:?}");
            }
        }
    }

    #[test]
    fn length_limits() {
        let local = "l".repeat(MAX_LOCAL_PART);
        assert_eq!(check_mailbox(&format!("{local}@example.com")), Ok(()));
        assert_eq!(
            check_mailbox(&format!("{local}l@example.com")),
            Err(AddressError::LocalPartTooLong { len: 65 })
        );
        let label = "d".repeat(MAX_LABEL);
        assert_eq!(check_mailbox(&format!("a@{label}.example")), Ok(()));
        assert!(matches!(
            check_mailbox(&format!("a@{label}d.example")),
            Err(AddressError::BadDomain { .. })
        ));
        // 1 + 1 + 63*3 + 3 dots + 60 = 254
        let domain = format!("{label}.{label}.{label}.{}", "e".repeat(60));
        let at_limit = format!("a@{domain}");
        assert_eq!(at_limit.len(), MAX_ADDRESS);
        assert_eq!(check_mailbox(&at_limit), Ok(()));
        assert_eq!(
            check_mailbox(&format!("ab@{domain}")),
            Err(AddressError::TooLong { len: 255 })
        );
    }

    #[test]
    fn errors_read_as_sentences() {
        let e = check_envelope_sender("x@y.example -X/any/file").unwrap_err();
        assert!(e.to_string().contains("white space"), "{e}");
        let e = check_envelope_sender("-oQ/tmp@y").unwrap_err();
        assert!(e.to_string().contains("option"), "{e}");
    }

    fn atom() -> impl Strategy<Value = String> {
        "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,10}"
    }

    fn valid_address() -> impl Strategy<Value = String> {
        (
            "[A-Za-z0-9_+=]",
            prop::collection::vec(atom(), 0..4),
            prop::collection::vec("[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", 1..5),
        )
            .prop_map(|(first, atoms, labels)| {
                let mut local = first;
                for a in atoms {
                    local.push('.');
                    local.push_str(&a);
                }
                local.truncate(MAX_LOCAL_PART);
                let local = local.trim_end_matches('.').to_owned();
                format!("{local}@{}", labels.join("."))
            })
    }

    proptest! {
        #[test]
        fn generated_mailboxes_pass(a in valid_address()) {
            prop_assert_eq!(check_envelope_sender(&a), Ok(()));
            prop_assert_eq!(check_recipient(&a), Ok(()));
        }

        /// Whatever passes is one argv-safe word: no white space or control
        /// character, no leading '-', none of the characters that end an address in a
        /// header or a shell word list, one '@', within the limits.
        #[test]
        fn anything_accepted_is_one_plain_word(s in "\\PC{0,80}|[ -~]{0,80}|[a-z@. -]{0,30}") {
            if check_envelope_sender(&s).is_ok() && !s.is_empty() {
                prop_assert!(!s.chars().any(|c| c.is_whitespace() || c.is_control()));
                prop_assert!(s.is_ascii());
                prop_assert!(!s.starts_with('-'));
                prop_assert!(s.len() <= MAX_ADDRESS);
                let (local, domain) = s.rsplit_once('@').unwrap();
                prop_assert!(!local.is_empty() && local.len() <= MAX_LOCAL_PART);
                prop_assert!(!local.contains(['<', '>', '"', '\\', ',', ';', '(', ')', ':', '@', '[', ']']));
                prop_assert!(!domain.contains(['<', '>', '"', '\\', ',', ';', '@']));
            }
        }

        /// An option appended after white space is refused however it is spelled.
        #[test]
        fn an_appended_option_is_always_refused(
            a in valid_address(),
            ws in "[ \t\n\r\u{0b}\u{0c}\u{a0}\u{2003}]{1,3}",
            opt in "-[A-Za-z][ -~]{0,20}",
        ) {
            let injected = format!("{a}{ws}{opt}");
            prop_assert_eq!(check_envelope_sender(&injected), Err(AddressError::WhiteSpace));
            prop_assert!(check_recipient(&injected).is_err());
            prop_assert_eq!(check_envelope_sender(&format!("{opt}@example.com")).is_err(), true);
        }
    }
}

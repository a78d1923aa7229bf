//! headers: one pass over the raw header block for the RFC 5322 faults a sender controls.
//! Missing Date, Message-ID and From are not faults here: the local MTA adds them later.

use super::{Findings, Rule};

/// Header bytes examined; a longer header block is not scanned further.
const MAX_HEADER_BYTES: usize = 1024 * 1024;
const MAX_FIELDS: usize = 1000;

/// One header field, unfolded.
#[derive(Debug)]
pub(super) struct Field<'a> {
    pub name: &'a [u8],
    pub value: Vec<u8>,
}

impl Field<'_> {
    pub fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name.as_bytes())
    }
}

/// What the scan found.
#[derive(Debug, Default)]
pub(super) struct RawHeaders<'a> {
    pub fields: Vec<Field<'a>>,
    /// A line that is neither `name: value` nor a continuation (first one, shortened).
    pub broken_line: Option<String>,
    pub broken_lines: usize,
    /// A field name with characters outside printable US-ASCII.
    pub bad_name: Option<String>,
    pub longest_line: usize,
    pub long_lines: usize,
    /// First control character (NUL, other C0, DEL, bare CR) and the field it is in.
    pub control: Option<(u8, String)>,
}

/// Scans the header block: everything before the first empty line.
pub(super) fn scan(raw: &[u8]) -> RawHeaders<'_> {
    let mut h = RawHeaders::default();
    let limit = raw.len().min(MAX_HEADER_BYTES);
    let mut pos = 0;
    while pos < limit {
        let nl = raw[pos..limit].iter().position(|&c| c == b'\n');
        let end = nl.map_or(limit, |p| pos + p);
        let mut line = &raw[pos..end];
        pos = end + 1;
        if line.last() == Some(&b'\r') {
            line = &line[..line.len() - 1];
        }
        if line.is_empty() {
            break;
        }
        if line.len() > 998 {
            h.long_lines += 1;
            h.longest_line = h.longest_line.max(line.len());
        }
        if h.control.is_none() {
            if let Some(&c) = line
                .iter()
                .find(|&&c| (c < 0x20 && c != b'\t') || c == 0x7f)
            {
                let name = line.split(|&c| c == b':').next().unwrap_or_default();
                h.control = Some((c, shorten(name, 40)));
            }
        }
        if line[0] == b' ' || line[0] == b'\t' {
            match h.fields.last_mut() {
                Some(f) => {
                    if f.value.len() < 64 * 1024 {
                        f.value.push(b' ');
                        f.value.extend_from_slice(trim(line));
                    }
                }
                None => note_broken(&mut h, line),
            }
            continue;
        }
        let Some(colon) = line.iter().position(|&c| c == b':') else {
            note_broken(&mut h, line);
            continue;
        };
        let name = trim_end(&line[..colon]);
        if name.is_empty() {
            note_broken(&mut h, line);
            continue;
        }
        if h.bad_name.is_none() && name.iter().any(|&c| !(33..=126).contains(&c)) {
            h.bad_name = Some(shorten(name, 40));
        }
        if h.fields.len() < MAX_FIELDS {
            h.fields.push(Field {
                name,
                value: trim(&line[colon + 1..]).to_vec(),
            });
        }
    }
    h
}

fn note_broken(h: &mut RawHeaders<'_>, line: &[u8]) {
    h.broken_lines += 1;
    if h.broken_line.is_none() {
        h.broken_line = Some(shorten(line, 60));
    }
}

fn trim(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    trim_end(&b[start..])
}

fn trim_end(b: &[u8]) -> &[u8] {
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(0, |p| p + 1);
    &b[..end]
}

/// A printable excerpt for a reason string.
pub(super) fn shorten(b: &[u8], max: usize) -> String {
    let s: String = String::from_utf8_lossy(b)
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .take(max + 1)
        .collect();
    if s.chars().count() > max {
        format!("{}…", s.chars().take(max).collect::<String>())
    } else {
        s
    }
}

/// Fields that RFC 5322 §3.6 allows at most once, with how bad a duplicate is
/// (rspamd's multipliers: a second From is worse than a second To).
pub(super) const SINGLETONS: &[(&str, f32)] = &[
    ("From", 1.0),
    ("Sender", 1.0),
    ("Reply-To", 1.0),
    ("Subject", 0.7),
    ("Message-ID", 0.7),
    ("In-Reply-To", 0.7),
    ("References", 0.3),
    ("To", 0.2),
    ("Cc", 0.1),
    ("Bcc", 0.1),
    ("Date", 0.1),
];

/// Why a From value is not a valid mailbox-list, or `None` when it is.
/// `sender_present` allows several mailboxes (RFC 5322 §3.6.2).
pub(super) fn from_fault(value: &[u8], sender_present: bool) -> Option<String> {
    let v = String::from_utf8_lossy(value);
    let v = strip_comments(&v);
    if v.trim().is_empty() {
        return Some("From header is empty".into());
    }
    let boxes = split_top_level(&v);
    if boxes.len() > 1 && !sender_present {
        return Some(format!(
            "From lists {} mailboxes but there is no Sender header",
            boxes.len()
        ));
    }
    for mb in boxes {
        let mb = mb.trim();
        let addr = if let Some(lt) = mb.rfind('<') {
            let Some(gt) = mb[lt..].find('>') else {
                return Some(format!(
                    "From address is missing its closing '>': {}",
                    cut(mb)
                ));
            };
            &mb[lt + 1..lt + gt]
        } else {
            mb
        };
        if let Some(why) = addr_spec_fault(addr.trim()) {
            return Some(format!("From {}: {}", why, cut(mb)));
        }
    }
    None
}

fn cut(s: &str) -> String {
    shorten(s.as_bytes(), 60)
}

fn strip_comments(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut depth = 0u32;
    let mut quoted = false;
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            escaped = false;
            if depth == 0 {
                out.push(c);
            }
            continue;
        }
        match c {
            '\\' => {
                escaped = true;
                if depth == 0 {
                    out.push(c);
                }
            }
            '"' if depth == 0 => {
                quoted = !quoted;
                out.push(c);
            }
            '(' if !quoted => depth = depth.saturating_add(1),
            ')' if !quoted && depth > 0 => depth -= 1,
            c if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

fn split_top_level(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut quoted, mut angle, mut escaped) = (false, false, false);
    let mut start = 0;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '"' => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            ',' if !quoted && !angle => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out.retain(|m| !m.trim().is_empty());
    out
}

/// Why `local@domain` is not a usable address, or `None`.
fn addr_spec_fault(addr: &str) -> Option<&'static str> {
    if addr.is_empty() {
        return Some("has no address");
    }
    let Some(at) = addr.rfind('@') else {
        return Some("address has no '@'");
    };
    let (local, domain) = (&addr[..at], &addr[at + 1..]);
    if local.is_empty() {
        return Some("address has an empty local part");
    }
    let quoted_local = local.len() >= 2 && local.starts_with('"') && local.ends_with('"');
    if !quoted_local {
        const ATEXT: &str = "!#$%&'*+-/=?^_`{|}~.";
        if local
            .chars()
            .any(|c| !(c.is_alphanumeric() || ATEXT.contains(c) || !c.is_ascii()))
        {
            return Some("address has characters not allowed in a local part");
        }
        if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
            return Some("address has a misplaced dot in its local part");
        }
    }
    if domain.starts_with('[') && domain.ends_with(']') {
        return None; // domain literal
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 {
        return Some("address domain has no dot");
    }
    for l in &labels {
        if l.is_empty() || l.len() > 63 {
            return Some("address domain has an empty or overlong label");
        }
        if l.starts_with('-') || l.ends_with('-') {
            return Some("address domain label starts or ends with '-'");
        }
        if l.chars().any(|c| !(c.is_alphanumeric() || c == '-')) {
            return Some("address domain has characters not allowed in a host name");
        }
    }
    None
}

/// `<left@right>` without white space, after trimming.
pub(super) fn message_id_ok(value: &[u8]) -> bool {
    let v = trim(value);
    v.len() >= 5
        && v[0] == b'<'
        && v[v.len() - 1] == b'>'
        && !v.iter().any(|c| c.is_ascii_whitespace())
        && {
            let inner = &v[1..v.len() - 1];
            inner
                .iter()
                .position(|&c| c == b'@')
                .is_some_and(|p| p > 0 && p + 1 < inner.len())
        }
}

pub(super) fn rules(h: &RawHeaders<'_>, f: &mut Findings) {
    if let Some(line) = &h.broken_line {
        f.hit(
            Rule::BrokenHeader,
            format!(
                "{} line(s) in the header block are not 'Name: value', e.g. '{line}'",
                h.broken_lines
            ),
        );
    }
    if let Some(name) = &h.bad_name {
        f.add(
            Rule::BrokenHeader,
            2.0 / 3.0,
            format!("header name '{name}' has characters outside printable ASCII"),
        );
    }
    if h.long_lines > 0 {
        f.hit(
            Rule::LongHeaderLine,
            format!(
                "{} header line(s) over 998 octets (longest {})",
                h.long_lines, h.longest_line
            ),
        );
    }
    if let Some((c, name)) = &h.control {
        let what = match c {
            0 => "a NUL byte".to_string(),
            b'\r' => "a bare CR".to_string(),
            c => format!("control character 0x{c:02x}"),
        };
        f.hit(
            Rule::HeaderControlChar,
            format!("header '{name}' contains {what}"),
        );
    }
    for field in &h.fields {
        if field.value.iter().any(|&c| c >= 0x80) {
            let name = shorten(field.name, 30);
            if std::str::from_utf8(&field.value).is_ok() {
                f.add(
                    Rule::Header8bit,
                    1.0 / 3.0,
                    format!("header '{name}' has raw UTF-8 instead of RFC 2047 encoding"),
                );
            } else {
                f.hit(
                    Rule::Header8bit,
                    format!("header '{name}' has raw 8-bit bytes that are not valid UTF-8"),
                );
            }
        }
    }
    for &(name, mult) in SINGLETONS {
        let n = h.fields.iter().filter(|x| x.is(name)).count();
        if n > 1 {
            f.add(
                Rule::DuplicateHeader,
                1.0 * mult,
                format!("{name} appears {n} times; RFC 5322 allows it once"),
            );
        }
    }
    let sender = h.fields.iter().any(|x| x.is("Sender"));
    if let Some(from) = h.fields.iter().find(|x| x.is("From")) {
        if let Some(why) = from_fault(&from.value, sender) {
            f.hit(Rule::MalformedFrom, why);
        }
    }
    if let Some(mid) = h.fields.iter().find(|x| x.is("Message-ID")) {
        if !message_id_ok(&mid.value) {
            f.hit(
                Rule::MalformedMessageId,
                format!(
                    "Message-ID '{}' is not <left@right>",
                    shorten(&mid.value, 50)
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_finds_faults() {
        let raw = b"To: a@b.example\r\nSubject: hi\r\n there\r\nthis is not a header\r\nX\x01Bad: v\r\nFrom: x\0y@b.example\r\n\r\nbody";
        let h = scan(raw);
        assert_eq!(h.fields.len(), 4);
        assert_eq!(h.fields[1].value, b"hi there");
        assert_eq!(h.broken_lines, 1);
        assert!(h.bad_name.is_some());
        assert_eq!(h.control.as_ref().map(|c| c.0), Some(1));
    }

    #[test]
    fn from_validation() {
        assert_eq!(
            from_fault(b"Website <SendingEmail@address.tld>", false),
            None
        );
        assert_eq!(from_fault(b"info@example.com", false), None);
        assert_eq!(
            from_fault(b"\"Doe, John\" <j.doe@example.co.uk>", false),
            None
        );
        assert_eq!(
            from_fault(b"=?UTF-8?B?xZrDs8WCdw==?= <a@b.pl>", false),
            None
        );
        assert!(from_fault(b"My Shop", false).is_some());
        assert!(from_fault(b"a@b.example, c@d.example", false).is_some());
        assert_eq!(from_fault(b"a@b.example, c@d.example", true), None);
        assert!(from_fault(b"Shop <shop@localhost>", false).is_some());
        assert!(from_fault(b"<>", false).is_some());
        assert!(from_fault(b"x <a b@c.example>", false).is_some());
    }

    #[test]
    fn message_ids() {
        assert!(message_id_ok(b"<abc.123@mail.example.com>"));
        assert!(!message_id_ok(b"abc@example.com"));
        assert!(!message_id_ok(b"<no at sign>"));
    }
}

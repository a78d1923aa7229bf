//! repair: reading past what a mail client reads past. Fixes applied to the input before
//! `mail-parser` sees it, and tolerant decoders for the parts it gives up on.
//!
//! - **Date zones** (mail-parser 0.11.9): in a Date, Resent-Date or Received date whose
//!   zone is one or two letters (`UT`, `Z`, a military `X`), the parser's zone reader takes
//!   three bytes whatever they are, so it eats the line end: with Date last it swallows
//!   the blank line before the body (the body is read as headers), with Date first the next
//!   header (often the Subject). Such a zone is rewritten to its numeric form before
//!   parsing (`UT`/`GMT`/`Z` → `+0000`, military letters → `-0000`, "unknown" per RFC 5322
//!   §4.3). mail-parser 1.0 fixes it but needs a newer rustc.
//! - **base64 / quoted-printable**: invalid characters are skipped, `==` and stray `=` are
//!   kept literally, as clients do.

use std::borrow::Cow;

/// Date-bearing fields whose value the date parser reads.
fn is_date_field(name: &[u8]) -> bool {
    name.eq_ignore_ascii_case(b"date")
        || name.eq_ignore_ascii_case(b"resent-date")
        || name.eq_ignore_ascii_case(b"received")
        || name.eq_ignore_ascii_case(b"delivery-date")
}

/// Returns the input with one- and two-letter date zones made numeric, and a note per
/// rewrite. Borrowed (no copy) when nothing needed fixing, which is almost always.
pub(super) fn fix_date_zones(raw: &[u8]) -> (Cow<'_, [u8]>, Vec<String>) {
    let mut edits: Vec<(usize, usize, &'static [u8], String)> = Vec::new();
    let mut pos = 0;
    // The field being read: (name is date-bearing) — continuation lines belong to it.
    let mut in_date = false;
    // Start and end of the last line of the current date field's value.
    let mut last_line: Option<(usize, usize)> = None;
    let finish = |last: Option<(usize, usize)>, edits: &mut Vec<_>| {
        if let Some((s, e)) = last {
            if let Some(edit) = zone_edit(raw, s, e) {
                edits.push(edit);
            }
        }
    };
    while pos < raw.len() && edits.len() < 64 {
        let end = raw[pos..]
            .iter()
            .position(|&c| c == b'\n')
            .map_or(raw.len(), |p| pos + p);
        let line = &raw[pos..end];
        let first = line.first().copied();
        if matches!(first, Some(b' ' | b'\t')) && in_date {
            last_line = Some((pos, end));
        } else {
            if in_date {
                finish(last_line.take(), &mut edits);
            }
            in_date = false;
            // A cheap first-byte test keeps the scan of a 10 MB body fast.
            if matches!(first, Some(b'D' | b'd' | b'R' | b'r')) {
                if let Some(colon) = line.iter().take(20).position(|&c| c == b':') {
                    if is_date_field(&line[..colon]) {
                        in_date = true;
                        last_line = Some((pos + colon + 1, end));
                    }
                }
            }
        }
        pos = end + 1;
    }
    if in_date {
        finish(last_line.take(), &mut edits);
    }
    if edits.is_empty() {
        return (Cow::Borrowed(raw), Vec::new());
    }
    let mut out = Vec::with_capacity(raw.len() + edits.len() * 4);
    let mut at = 0;
    let mut notes = Vec::new();
    for (s, e, with, note) in edits {
        out.extend_from_slice(&raw[at..s]);
        out.extend_from_slice(with);
        at = e;
        notes.push(note);
    }
    out.extend_from_slice(&raw[at..]);
    (Cow::Owned(out), notes)
}

/// If the line `raw[s..e]` ends (before white space and CR) with a one- or two-letter
/// word after a time, the replacement for that word.
fn zone_edit(raw: &[u8], s: usize, e: usize) -> Option<(usize, usize, &'static [u8], String)> {
    let line = &raw[s..e];
    let trimmed_len = line
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(0, |p| p + 1);
    let body = &line[..trimmed_len];
    let word_start = body
        .iter()
        .rposition(|c| !c.is_ascii_alphabetic())
        .map_or(0, |p| p + 1);
    let word = &body[word_start..];
    if word.is_empty() || word.len() > 2 || word_start == 0 {
        return None;
    }
    if !body[word_start - 1].is_ascii_whitespace() {
        return None;
    }
    // Only after a time (hh:mm), as the zone of a date.
    let before = &body[..word_start];
    if !before.contains(&b':') {
        return None;
    }
    let upper = word.to_ascii_uppercase();
    let with: &'static [u8] = match upper.as_slice() {
        b"UT" | b"Z" => b"+0000",
        _ => b"-0000",
    };
    // Replace the word and the trailing white space (it is what the parser would eat).
    let note = format!(
        "date zone '{}' rewritten as {} before parsing (mail-parser 0.11.9 reads three bytes for a zone)",
        String::from_utf8_lossy(word),
        String::from_utf8_lossy(with)
    );
    let cr_end = if raw[s..e].last() == Some(&b'\r') {
        e - 1
    } else {
        e
    };
    Some((s + word_start, cr_end.max(s + trimmed_len), with, note))
}

/// What a tolerant decode skipped.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Damage {
    /// Characters that are not part of the encoding, skipped.
    pub skipped: usize,
}

/// base64 as clients decode it: the alphabet (and the URL-safe one) is read, everything
/// else skipped; `=` ends a quantum.
pub(super) fn base64_lenient(data: &[u8]) -> (Vec<u8>, Damage) {
    let mut out = Vec::with_capacity(data.len() / 4 * 3);
    let mut d = Damage::default();
    let mut acc: u32 = 0;
    let mut n = 0u8;
    for &c in data {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' => {
                match n {
                    2 => out.push((acc >> 4) as u8),
                    3 => {
                        out.push((acc >> 10) as u8);
                        out.push((acc >> 2) as u8);
                    }
                    _ => {}
                }
                acc = 0;
                n = 0;
                continue;
            }
            b' ' | b'\t' | b'\r' | b'\n' => continue,
            _ => {
                d.skipped += 1;
                continue;
            }
        };
        acc = (acc << 6) | u32::from(v);
        n += 1;
        if n == 4 {
            out.extend_from_slice(&[(acc >> 16) as u8, (acc >> 8) as u8, acc as u8]);
            acc = 0;
            n = 0;
        }
    }
    match n {
        2 => out.push((acc >> 4) as u8),
        3 => {
            out.push((acc >> 10) as u8);
            out.push((acc >> 2) as u8);
        }
        _ => {}
    }
    (out, d)
}

/// quoted-printable as clients decode it: `=XX` decoded, soft line breaks joined, any
/// other `=` kept as it is.
pub(super) fn qp_lenient(data: &[u8]) -> (Vec<u8>, Damage) {
    let mut out = Vec::with_capacity(data.len());
    let mut d = Damage::default();
    let hex = |c: u8| (c as char).to_digit(16).map(|v| v as u8);
    let mut i = 0;
    while i < data.len() {
        let c = data[i];
        if c != b'=' {
            out.push(c);
            i += 1;
            continue;
        }
        // Soft line break: "=" then optional white space then (CR)LF.
        let mut j = i + 1;
        while j < data.len() && (data[j] == b' ' || data[j] == b'\t') {
            j += 1;
        }
        if j < data.len() && data[j] == b'\n' {
            i = j + 1;
            continue;
        }
        if j + 1 < data.len() && data[j] == b'\r' && data[j + 1] == b'\n' {
            i = j + 2;
            continue;
        }
        match (
            data.get(i + 1).and_then(|&c| hex(c)),
            data.get(i + 2).and_then(|&c| hex(c)),
        ) {
            (Some(h), Some(l)) => {
                out.push(h << 4 | l);
                i += 3;
            }
            _ => {
                d.skipped += 1;
                out.push(b'=');
                i += 1;
            }
        }
    }
    (out, d)
}

/// Text of decoded bytes in a declared charset; unknown charsets read as UTF-8 when valid,
/// else as windows-1252 (what clients fall back to). Returns the text and how it was read.
pub(super) fn to_text(bytes: &[u8], charset: Option<&str>) -> (String, String) {
    if let Some(cs) = charset {
        let lower = cs.trim().to_ascii_lowercase();
        if !matches!(lower.as_str(), "utf-8" | "utf8" | "us-ascii" | "ascii") {
            if let Some(dec) =
                mail_parser::decoders::charsets::map::charset_decoder(lower.as_bytes())
            {
                return (dec(bytes), format!("charset {lower}"));
            }
        }
    }
    match std::str::from_utf8(bytes) {
        Ok(s) => (
            s.to_string(),
            match charset {
                Some(cs)
                    if !matches!(
                        cs.trim().to_ascii_lowercase().as_str(),
                        "utf-8" | "utf8" | "us-ascii" | "ascii"
                    ) =>
                {
                    format!("unknown charset '{cs}' read as UTF-8")
                }
                _ => "UTF-8".to_string(),
            },
        ),
        Err(_) => (
            bytes.iter().map(|&b| cp1252(b)).collect(),
            format!(
                "{} read as windows-1252",
                charset.map_or("undeclared charset".to_string(), |c| format!(
                    "unknown charset '{c}'"
                ))
            ),
        ),
    }
}

fn cp1252(b: u8) -> char {
    const HIGH: [char; 32] = [
        '€', '\u{81}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{8d}', 'Ž',
        '\u{8f}', '\u{90}', '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{9d}',
        'ž', 'Ÿ',
    ];
    if (0x80..0xa0).contains(&b) {
        HIGH[usize::from(b - 0x80)]
    } else {
        char::from(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_zones_become_numeric() {
        let raw =
            b"To: a@b.example\r\nSubject: s\r\nDate: Mon, 6 May 2024 10:00:00 UT\r\n\r\nbody\r\n";
        let (fixed, notes) = fix_date_zones(raw);
        assert_eq!(
            &fixed[..],
            &b"To: a@b.example\r\nSubject: s\r\nDate: Mon, 6 May 2024 10:00:00 +0000\r\n\r\nbody\r\n"[..]
        );
        assert_eq!(notes.len(), 1);
        let raw = b"Date: Mon, 6 May 2024\n 10:00:00 X\nSubject: s\n\nb";
        let (fixed, _) = fix_date_zones(raw);
        assert_eq!(
            &fixed[..],
            &b"Date: Mon, 6 May 2024\n 10:00:00 -0000\nSubject: s\n\nb"[..]
        );
        // Nothing to do: borrowed.
        for ok in [
            &b"Date: Mon, 6 May 2024 10:00:00 +0200\r\n\r\nx"[..],
            b"Date: Mon, 6 May 2024 10:00:00 EST\r\n\r\nx",
            b"Dear friend: hi\r\n",
            b"Date: Mon, 6 May 2024 10:00:00 +0000 (UTC)\r\n",
        ] {
            assert!(matches!(fix_date_zones(ok).0, Cow::Borrowed(_)));
        }
    }

    #[test]
    fn lenient_decoders() {
        let (b, d) = base64_lenient(b"PGI+aGk8L2I+\r\n!!*");
        assert_eq!(b, b"<b>hi</b>");
        assert_eq!(d.skipped, 3);
        let (b, d) = base64_lenient(b"PGI+a#Gk8L2I+");
        assert_eq!(b, b"<b>hi</b>");
        assert_eq!(d.skipped, 1);
        let (q, d) = qp_lenient(b"a=3Db==c=\r\nd =XY");
        assert_eq!(q, b"a=b==cd =XY");
        assert_eq!(d.skipped, 3);
        assert_eq!(to_text(b"caf\xe9", Some("x-unknown")).0, "café");
        assert_eq!(to_text("żółw".as_bytes(), Some("x-bogus")).0, "żółw");
    }
}

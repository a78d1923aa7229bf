//! read: the message as a mail client renders it. `mail-parser` builds the MIME tree;
//! where it gives up on a part (bad base64 or quoted-printable characters, a missing
//! closing boundary) the part's raw bytes are decoded here leniently and read by their
//! declared type, as clients do. HTML is read wherever it is: body, alternative, attached
//! file, or inside a `message/rfc822` part. What each part was and how it was read is
//! kept for `mailguard check --explain`.
//!
//! Bounded: the first [`MAX_PARTS`] leaf parts are read in full (later ones by name and
//! declared type only); at most [`MAX_TEXT_BYTES`] per text part and [`MAX_TEXT_TOTAL`] in
//! all; the walk is iterative (a chain of nested messages is as deep as the sender likes).

use mail_parser::{Message, MessageParser, MimeHeaders, PartType};

use super::{
    attach, html, repair, text, Findings, Rule, MAX_PARTS, MAX_TEXT_BYTES, MAX_TEXT_TOTAL,
};

/// How one part was read: the `--explain` view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartReport {
    /// Position in the tree, e.g. `1`, `2.1` (a part of an attached message).
    pub path: String,
    pub content_type: String,
    /// Declared Content-Transfer-Encoding (or `7bit`).
    pub transfer_encoding: String,
    /// How the bytes were decoded: `mail-parser`, or the lenient fallback and why.
    pub decoded: String,
    /// What it was read as: body text, body HTML, HTML attachment, attachment, message.
    pub read_as: String,
    /// The rule groups that read it.
    pub read_by: Vec<&'static str>,
    /// Decoded size in bytes.
    pub bytes: usize,
}

/// What the body walk gathered for the rules.
#[derive(Debug, Default)]
pub(super) struct Body {
    pub parts: usize,
    text_budget: usize,
    pub attachments: usize,
    /// Image parts shown in the message (inline or referenced), and the largest of them.
    pub inline_images: usize,
    pub biggest_inline_image: usize,
    /// Image files attached (a photo a contact form forwards).
    pub attached_images: usize,
    pub visible: usize,
    pub max_words: usize,
    pub worst_white: Option<(usize, usize)>,
    pub raw_run: Option<String>,
    pub html_images: usize,
    pub html_big_images: usize,
    pub max_font_px: f32,
    pub chars_ge_36px: usize,
    pub chars_ge_48px: usize,
    pub low_contrast: usize,
    pub links: Vec<html::Link>,
    pub urls: Vec<String>,
    pub words_normalised: String,
    /// Text parts read by the lenient fallback, with why.
    pub damage: Vec<String>,
    /// Text parts that could not be read at all.
    pub unreadable: Vec<String>,
}

/// The whole reading.
#[derive(Debug, Default)]
pub(super) struct Reading {
    pub subject: Option<String>,
    pub date_ok: Option<bool>,
    pub body: Body,
    pub parts: Vec<PartReport>,
    pub notes: Vec<String>,
}

pub(super) fn read(raw: &[u8], f: &mut Findings) -> Reading {
    let (fixed, notes) = repair::fix_date_zones(raw);
    let mut r = Reading {
        notes,
        ..Reading::default()
    };
    let parsed = MessageParser::default().parse(&fixed[..]);
    if let Some(m) = &parsed {
        r.subject = m.subject().map(str::to_string);
        r.date_ok = m.date().map(|d| d.is_valid());
        missing_closing_boundaries(&fixed, m, &mut r.body);
        walk(m, &mut r, f);
    }
    if let Some(m) = parsed {
        drop_flat(m);
    }
    r
}

/// A multipart whose `--boundary--` never comes: clients show the parts anyway.
fn missing_closing_boundaries(raw: &[u8], m: &Message<'_>, b: &mut Body) {
    for part in m.parts.iter().take(MAX_PARTS) {
        if !matches!(part.body, PartType::Multipart(_)) {
            continue;
        }
        let Some(bound) = part.content_type().and_then(|c| c.attribute("boundary")) else {
            continue;
        };
        let close = format!("--{bound}--");
        let start = (part.offset_body as usize).min(raw.len());
        if !contains(&raw[start..], close.as_bytes()) {
            b.damage
                .push(format!("multipart boundary '{bound}' is never closed"));
        }
    }
}

/// Substring search: scan for the first byte, then compare (no per-position memcmp call).
fn contains(hay: &[u8], needle: &[u8]) -> bool {
    let Some((&first, rest)) = needle.split_first() else {
        return false;
    };
    let mut i = 0;
    while i + needle.len() <= hay.len() {
        match hay[i..=hay.len() - needle.len()]
            .iter()
            .position(|&c| c == first)
        {
            Some(p) => {
                i += p;
                if &hay[i + 1..i + needle.len()] == rest {
                    return true;
                }
                i += 1;
            }
            None => return false,
        }
    }
    false
}

fn walk(root: &Message<'_>, r: &mut Reading, f: &mut Findings) {
    let mut stack: Vec<(&Message<'_>, String)> = vec![(root, String::new())];
    while let Some((m, prefix)) = stack.pop() {
        for (id, part) in m.parts.iter().enumerate() {
            let path = if prefix.is_empty() {
                format!("{id}")
            } else {
                format!("{prefix}.{id}")
            };
            let ct = part
                .content_type()
                .map(|c| {
                    format!("{}/{}", c.ctype(), c.subtype().unwrap_or_default())
                        .to_ascii_lowercase()
                })
                .unwrap_or_else(|| "text/plain".to_string());
            let cte = part
                .content_transfer_encoding()
                .unwrap_or("7bit")
                .to_ascii_lowercase();
            match &part.body {
                PartType::Multipart(_) => continue,
                PartType::Message(inner) => {
                    r.body.attachments += 1;
                    r.parts.push(PartReport {
                        path: path.clone(),
                        content_type: ct,
                        transfer_encoding: cte,
                        decoded: "mail-parser".into(),
                        read_as: "attached message: its parts are read like the body".into(),
                        read_by: vec![],
                        bytes: inner.raw_message().len(),
                    });
                    stack.push((inner, path));
                    continue;
                }
                _ => r.body.parts += 1,
            }
            let full = r.body.parts <= MAX_PARTS;
            let attachment_disp = part
                .content_disposition()
                .is_some_and(|d| d.is_attachment());
            let listed = m.text_body.contains(&(id as u32)) || m.html_body.contains(&(id as u32));
            let charset = part
                .content_type()
                .and_then(|c| c.attribute("charset"))
                .map(str::to_string);
            // The part's bytes: mail-parser's decode, or the lenient one when it gave up.
            let mut decoded = "mail-parser".to_string();
            let fallback: Option<Vec<u8>>;
            let data: &[u8] = if part.is_encoding_problem && full {
                let raw = m.raw_message();
                let s = (part.offset_body as usize).min(raw.len());
                let e = (part.offset_end as usize).clamp(s, raw.len());
                let bytes = &raw[s..e];
                let (out, dmg) = match cte.as_str() {
                    "base64" => repair::base64_lenient(bytes),
                    "quoted-printable" => repair::qp_lenient(bytes),
                    _ => (bytes.to_vec(), repair::Damage::default()),
                };
                decoded = format!(
                    "lenient {cte} fallback (mail-parser gave up{})",
                    if dmg.skipped > 0 {
                        format!("; {} bad character(s) skipped", dmg.skipped)
                    } else {
                        String::new()
                    }
                );
                if ct.starts_with("text/") {
                    r.body.damage.push(format!(
                        "part {path} ({ct}, {cte}) needed the lenient decoder{}",
                        if dmg.skipped > 0 {
                            format!(", {} bad character(s)", dmg.skipped)
                        } else {
                            String::new()
                        }
                    ));
                }
                fallback = Some(out);
                fallback.as_deref().unwrap_or_default()
            } else {
                match &part.body {
                    PartType::Text(t) | PartType::Html(t) => t.as_bytes(),
                    PartType::Binary(d) | PartType::InlineBinary(d) => d,
                    _ => &[],
                }
            };
            let is_html = ct == "text/html"
                || matches!(part.body, PartType::Html(_)) && !part.is_encoding_problem;
            let is_plain = ct == "text/plain" && !is_html;
            let name = part.attachment_name();
            let html_file = name.is_some_and(|n| {
                let n = n.to_ascii_lowercase();
                n.ends_with(".html") || n.ends_with(".htm") || n.ends_with(".xhtml")
            });
            let known_cte = matches!(
                cte.as_str(),
                "7bit" | "8bit" | "binary" | "base64" | "quoted-printable"
            );
            let mut report = PartReport {
                path: path.clone(),
                content_type: ct.clone(),
                transfer_encoding: cte.clone(),
                decoded,
                read_as: String::new(),
                read_by: Vec::new(),
                bytes: data.len(),
            };
            if (is_html || is_plain || html_file) && !known_cte && full {
                r.body.unreadable.push(format!(
                    "part {path} ({ct}) has the unknown transfer encoding '{cte}'"
                ));
                report.read_as = "unreadable text (unknown transfer encoding)".into();
                report.read_by = vec!["mime"];
                r.parts.push(report);
                continue;
            }
            if (is_html || html_file) && full {
                let (t, how) = text_of(part, data, charset.as_deref());
                if looks_binary(&t) {
                    r.body
                        .unreadable
                        .push(format!("part {path} ({ct}) decodes to binary junk"));
                    report.read_as = "unreadable HTML (binary junk)".into();
                    report.read_by = vec!["mime"];
                } else {
                    let body_part = !attachment_disp && (listed || name.is_none());
                    read_html(&t, &mut r.body, body_part);
                    report.read_as = format!(
                        "{} ({how})",
                        if body_part {
                            "body HTML"
                        } else {
                            "HTML attachment, rendered as a client opens it"
                        }
                    );
                    report.read_by = vec!["body", "links", "lexicon", "porn", "combination"];
                }
                r.parts.push(report);
                continue;
            }
            if is_plain
                && full
                && (listed
                    || !attachment_disp
                    || name.is_some_and(|n| n.to_ascii_lowercase().ends_with(".txt")))
            {
                let (t, how) = text_of(part, data, charset.as_deref());
                if looks_binary(&t) {
                    r.body
                        .unreadable
                        .push(format!("part {path} ({ct}) decodes to binary junk"));
                    report.read_as = "unreadable text (binary junk)".into();
                    report.read_by = vec!["mime"];
                } else {
                    let body_part = listed && !attachment_disp;
                    read_plain(&t, &mut r.body, body_part);
                    report.read_as = format!(
                        "{} ({how})",
                        if body_part {
                            "body text"
                        } else {
                            "text attachment"
                        }
                    );
                    report.read_by = if body_part {
                        vec!["body", "links", "lexicon", "porn", "combination"]
                    } else {
                        vec!["links", "lexicon", "porn", "combination"]
                    };
                }
                r.parts.push(report);
                continue;
            }
            // Anything else: an attachment (or an inline image).
            if name.is_some() || !matches!(part.body, PartType::InlineBinary(_)) {
                r.body.attachments += 1;
            }
            if ct.starts_with("image/") {
                let inline = !attachment_disp
                    && (part.content_id().is_some()
                        || matches!(part.body, PartType::InlineBinary(_))
                        || name.is_none());
                if inline {
                    r.body.inline_images += 1;
                    r.body.biggest_inline_image = r.body.biggest_inline_image.max(data.len());
                } else {
                    r.body.attached_images += 1;
                }
            }
            attach::inspect(
                &attach::Part {
                    name,
                    content_type: ct,
                    data: if full { data } else { &[] },
                },
                f,
            );
            report.read_as = if full {
                "attachment: name, type, content and archive members inspected".into()
            } else {
                format!("attachment past the first {MAX_PARTS} parts: name and type only")
            };
            report.read_by = vec!["attachments"];
            r.parts.push(report);
        }
    }
}

/// The text of a text part: mail-parser's own (already charset-decoded) when it read the
/// part, else the fallback bytes in the declared charset.
fn text_of(
    part: &mail_parser::MessagePart<'_>,
    data: &[u8],
    charset: Option<&str>,
) -> (String, String) {
    if !part.is_encoding_problem {
        if let PartType::Text(t) | PartType::Html(t) = &part.body {
            return (t.to_string(), "charset decoded by mail-parser".into());
        }
    }
    repair::to_text(data, charset)
}

/// More than a tenth control characters (not white space): not text a client shows.
fn looks_binary(t: &str) -> bool {
    let mut n = 0usize;
    let mut bad = 0usize;
    for c in t.chars().take(4096) {
        n += 1;
        if c.is_control() && !matches!(c, '\n' | '\r' | '\t' | '\x0c') || c == '\u{fffd}' {
            bad += 1;
        }
    }
    n >= 16 && bad * 10 > n
}

/// Drops a parsed message without recursion: mail-parser 0.11.9's tree of nested
/// message/rfc822 parts is dropped recursively and overflows the stack a few thousand
/// levels down (found by `tests/spam_bounds.rs`).
fn drop_flat(root: Message<'_>) {
    let mut stack = vec![root];
    while let Some(mut m) = stack.pop() {
        for part in &mut m.parts {
            if matches!(part.body, PartType::Message(_)) {
                if let PartType::Message(inner) =
                    std::mem::replace(&mut part.body, PartType::Multipart(Vec::new()))
                {
                    stack.push(inner);
                }
            }
        }
    }
}

/// The slice of a text part that fits the per-part and total budgets (on a char boundary).
fn budgeted<'a>(t: &'a str, b: &mut Body) -> &'a str {
    let room = MAX_TEXT_BYTES.min(MAX_TEXT_TOTAL.saturating_sub(b.text_budget));
    let mut end = t.len().min(room);
    while !t.is_char_boundary(end) {
        end -= 1;
    }
    b.text_budget += end;
    &t[..end]
}

fn read_plain(t: &str, b: &mut Body, layout: bool) {
    let t = budgeted(t, b);
    if layout {
        let l = text::plain_layout(t);
        b.visible += l.visible;
        b.max_words = b.max_words.max(l.words);
        note_white(b, l.white, l.visible);
        if l.max_blank_lines >= 30 {
            b.raw_run = Some(format!("{} blank lines in a row", l.max_blank_lines));
        } else if l.max_space_run >= 200 {
            b.raw_run = Some(format!("{} spaces in a row", l.max_space_run));
        }
    }
    text::text_urls(t, &mut b.urls, html::MAX_URLS);
    if b.words_normalised.len() < html::MAX_TEXT_CHARS {
        let room = html::MAX_TEXT_CHARS - b.words_normalised.len();
        let mut end = t.len().min(room);
        while !t.is_char_boundary(end) {
            end -= 1;
        }
        text::normalise_words(&t[..end], &mut b.words_normalised);
    }
}

fn read_html(h: &str, b: &mut Body, layout: bool) {
    let h = budgeted(h, b);
    let r = html::render(h);
    if layout {
        b.visible += r.visible;
        b.max_words = b.max_words.max(r.words);
        note_white(b, r.white, r.visible);
        if r.max_break_run >= 30 {
            b.raw_run = Some(format!("{} line breaks in a row", r.max_break_run));
        }
        b.html_images += r.images;
        b.html_big_images += r.big_images;
    } else {
        // An attached page still counts as something to read.
        b.visible += r.visible.min(1);
    }
    b.max_font_px = b.max_font_px.max(r.max_font_px);
    b.chars_ge_36px += r.chars_ge_36px;
    b.chars_ge_48px += r.chars_ge_48px;
    b.low_contrast += r.low_contrast;
    text::text_urls(&r.text, &mut b.urls, html::MAX_URLS);
    if b.words_normalised.len() < html::MAX_TEXT_CHARS {
        text::normalise_words(&r.text, &mut b.words_normalised);
    }
    b.links.extend(r.links);
    b.urls.extend(r.urls);
}

fn note_white(b: &mut Body, white: usize, visible: usize) {
    let total = white + visible;
    if total < 40 {
        return;
    }
    let worse = match b.worst_white {
        Some((w, v)) => white * (w + v) > w * total,
        None => true,
    };
    if worse {
        b.worst_white = Some((white, visible));
    }
}

/// `mime-damage` and `unreadable-part`.
pub(super) fn rules(b: &Body, f: &mut Findings) {
    if let Some(first) = b.damage.first() {
        f.hit(
            Rule::MimeDamage,
            if b.damage.len() > 1 {
                format!("{first} (and {} more)", b.damage.len() - 1)
            } else {
                first.clone()
            },
        );
    }
    if let Some(first) = b.unreadable.first() {
        f.hit(
            Rule::UnreadablePart,
            format!("{first}: a reader sees junk or nothing, the filter sees no free pass"),
        );
    }
}

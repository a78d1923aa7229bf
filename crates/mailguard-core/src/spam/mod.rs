//! spam: the outbound spam scorer. One named [`Rule`] per point of the hosting guide, each
//! with a weight, a group cap and a reason; [`score`] turns a raw message (as mail() pipes
//! it to sendmail) plus the caller's [`SpamContext`] into a [`Verdict`].
//!
//! Definitions and weights follow `research/spam-heuristics.md` §1-3 and §6: no content rule
//! is worth more than about 3 and a group is capped, so at least two independent signals
//! are needed to flag ordinary mail; only dangerous payloads (programs, macros) and PHP
//! code run through `eval()` come close to the refuse threshold alone.
//!
//! Parsing is bounded: the MIME tree comes from `mail-parser` (linear even on a 50,000-level
//! multipart nesting bomb); our walk over it is iterative; the first [`MAX_PARTS`] leaf parts
//! are inspected in full and later ones by name and declared type only; at most
//! [`MAX_TEXT_BYTES`] of each text part and [`MAX_TEXT_TOTAL`] in all are read; ZIP archives
//! are listed from their central directory with member, depth and inflate caps.

mod attach;
mod headers;
mod html;
mod links;
mod style;
mod text;
mod zip;

use std::fmt;
use std::str::FromStr;

use mail_parser::{MessageParser, MimeHeaders, PartType};

/// Leaf parts inspected per message (attachments and text).
pub const MAX_PARTS: usize = 200;
/// Bytes of one text part that are read.
pub const MAX_TEXT_BYTES: usize = 256 * 1024;
/// Bytes of text read over the whole message.
pub const MAX_TEXT_TOTAL: usize = 1024 * 1024;
/// Bytes of ZIP members inflated over the whole message.
const INFLATE_BUDGET: usize = 16 * 1024 * 1024;

/// Where a message came from, as the caller (the extension) knows it: never read from the
/// message itself, which the script controls.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpamContext {
    /// The PHP file that called mail(), e.g. `/home/acme/www/wp-content/uploads/x.php`.
    /// PHP names eval()'d code `file.php(12) : eval()'d code`, which counts as eval too.
    pub origin_file: Option<String>,
    /// mail() was called from code run through eval() or create_function().
    pub from_eval: bool,
}

/// Score limits. Defaults: suspicious at 4.0, refuse at 6.0 (rspamd's greylist and
/// add-header levels; the research note §6.2).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// At or above: the message is sent but recorded as suspicious.
    pub suspicious: f32,
    /// At or above: mail() refuses the message.
    pub refuse: f32,
}

impl Thresholds {
    pub const DEFAULT_SUSPICIOUS: f32 = 4.0;
    pub const DEFAULT_REFUSE: f32 = 6.0;
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            suspicious: Self::DEFAULT_SUSPICIOUS,
            refuse: Self::DEFAULT_REFUSE,
        }
    }
}

/// The outcome class of a score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Ham,
    Suspicious,
    Refuse,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Ham => "ham",
            Level::Suspicious => "suspicious",
            Level::Refuse => "refuse",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Level {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Level::Ham, Level::Suspicious, Level::Refuse]
            .into_iter()
            .find(|l| l.as_str() == s)
            .ok_or_else(|| UnknownName(s.to_string()))
    }
}

/// A string that names no rule, group or level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownName(pub String);

impl fmt::Display for UnknownName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown name '{}'", self.0)
    }
}

impl std::error::Error for UnknownName {}

/// Families of rules; each family's total is capped so one family cannot flag a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Group {
    Subject,
    Body,
    Links,
    Headers,
    Porn,
    Attachments,
    Hosting,
}

impl Group {
    pub fn as_str(self) -> &'static str {
        match self {
            Group::Subject => "subject",
            Group::Body => "body",
            Group::Links => "links",
            Group::Headers => "headers",
            Group::Porn => "porn",
            Group::Attachments => "attachments",
            Group::Hosting => "hosting",
        }
    }

    /// The most this group adds to a score (`None`: uncapped, for dangerous payloads).
    pub fn cap(self) -> Option<f32> {
        match self {
            Group::Subject => Some(3.0),
            Group::Body => Some(4.0),
            Group::Links => Some(4.0),
            Group::Headers => Some(5.0),
            Group::Porn => Some(5.0),
            Group::Attachments | Group::Hosting => None,
        }
    }
}

macro_rules! rules {
    ($( $(#[$doc:meta])* $variant:ident = $id:literal, $group:ident, $weight:literal; )*) => {
        /// Rule ids: one enum, one string form (kebab-case) for logs, CLI and dashboard.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Rule {
            $( $(#[$doc])* $variant, )*
        }

        impl Rule {
            /// Every rule, in report order.
            pub const ALL: &'static [Rule] = &[$(Rule::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self { $(Rule::$variant => $id,)* }
            }

            pub fn group(self) -> Group {
                match self { $(Rule::$variant => Group::$group,)* }
            }

            /// The usual weight; some rules score a weaker or stronger variant (see reasons).
            pub fn weight(self) -> f32 {
                match self { $(Rule::$variant => $weight,)* }
            }
        }
    };
}

rules! {
    /// ≥ 70 % of ≥ 10 subject letters upper-case (after `Re:` and `[tag]`), several words.
    ShoutingSubject = "shouting-subject", Subject, 1.5;
    /// Three or more shouted words of four letters or more (when the whole is not shouting).
    CapsWordsSubject = "caps-words-subject", Subject, 0.75;
    /// No Subject header, or a blank one.
    MissingSubject = "missing-subject", Subject, 1.5;
    /// The subject opens with Hi, Hello, Hey, FREE, BUY, BUYING, Cheap, Dear friend
    /// (1.5 when written in capitals).
    SubjectOpener = "subject-opener", Subject, 1.0;
    /// No visible text, image or attachment (2.0 when there is an attachment).
    EmptyBody = "empty-body", Body, 3.0;
    /// An image over 1 MiB and fewer than 30 visible words (1.0: a large `<img>`, < 20 words).
    ImageOnly = "image-only", Body, 3.0;
    /// Over 70 % of the visible text is white space (`<br>` and `&nbsp;` counted), or
    /// 30 blank lines / 200 spaces in a row.
    WhitespaceAbuse = "whitespace-abuse", Body, 2.0;
    /// Visible text at ≥ 48 px (1.5) or ≥ 36 px (0.5); +1 when such text is > 30 % of it.
    LargeFont = "large-font", Body, 1.5;
    /// Visible text in (nearly) the background colour: ≥ 30 characters and ≥ 10 % of the
    /// text (3.0), or ≥ 30 characters (1.0).
    LowContrastText = "low-contrast-text", Body, 3.0;
    /// A link to a bare public IP in any spelling (3.0 when its text names a site; 0.5 for
    /// a private or local IP).
    RawIpLink = "raw-ip-link", Links, 2.0;
    /// A link no reader can follow: no scheme, unparsable, no real host, user@host,
    /// javascript:/data: (2.0), hidden direction characters (3.0).
    MalformedLink = "malformed-link", Links, 1.0;
    /// Link text shows `https://…` but the link is `http://`.
    HttpsTextHttpLink = "https-text-http-link", Links, 1.5;
    /// A From that is not a valid mailbox list.
    MalformedFrom = "malformed-from", Headers, 2.0;
    /// A header-block line that is not a field, or a field name with illegal characters.
    BrokenHeader = "broken-header", Headers, 3.0;
    /// A header allowed once appears twice (3.0 × how bad: From 1.0 … To 0.2, Date 0.1).
    DuplicateHeader = "duplicate-header", Headers, 3.0;
    /// Raw 8-bit bytes in headers instead of RFC 2047 (0.5 when valid UTF-8).
    Header8bit = "header-8bit", Headers, 1.5;
    /// NUL, other control characters or a bare CR in the header block.
    HeaderControlChar = "header-control-char", Headers, 1.5;
    /// A header line over 998 octets (RFC 5322 §2.1.1).
    LongHeaderLine = "long-header-line", Headers, 1.0;
    /// A Date header the script wrote that cannot be parsed (a missing one is fine).
    MalformedDate = "malformed-date", Headers, 1.5;
    /// A Message-ID the script wrote that is not `<left@right>` (a missing one is fine).
    MalformedMessageId = "malformed-message-id", Headers, 1.0;
    /// Explicit phrases: one in the subject (2.5), three distinct in the body (2.5), two (1.0).
    PornPhrases = "porn-phrases", Porn, 2.5;
    /// A program or script attachment, by name, declared type or content.
    ExecutableAttachment = "executable-attachment", Attachments, 6.0;
    /// A program or script inside a ZIP attachment.
    ExecutableInArchive = "executable-in-archive", Attachments, 6.0;
    /// A macro-enabled or macro-carrying Office document (6.0 when the macro auto-runs).
    MacroDocument = "macro-document", Attachments, 4.0;
    /// `invoice.pdf.exe`, or invisible / right-to-left characters in a file name.
    DisguisedFilename = "disguised-filename", Attachments, 2.0;
    /// A password-protected archive.
    EncryptedArchive = "encrypted-archive", Attachments, 2.0;
    /// An archive inside an archive.
    ArchiveInArchive = "archive-in-archive", Attachments, 2.0;
    /// An archive that cannot be looked into (RAR, 7z, CAB, or too many members).
    OpaqueArchive = "opaque-archive", Attachments, 1.5;
    /// mail() was called from eval()'d code.
    EvalOrigin = "eval-origin", Hosting, 4.0;
    /// The calling script lives in an uploads, temporary or hidden folder.
    SuspiciousScriptPath = "suspicious-script-path", Hosting, 2.0;
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Rule {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Rule::ALL
            .iter()
            .copied()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownName(s.to_string()))
    }
}

/// One rule that fired, with the points it added (after its group's cap) and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub rule: Rule,
    pub points: f32,
    pub reason: String,
}

/// The scorer's answer: a decision value, never an error.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// The sum of the hits' points.
    pub score: f32,
    pub level: Level,
    pub hits: Vec<Hit>,
}

impl Verdict {
    /// The hit of `rule`, if it fired.
    pub fn hit(&self, rule: Rule) -> Option<&Hit> {
        self.hits.iter().find(|h| h.rule == rule)
    }

    /// One line for the PHP warning and logs, e.g.
    /// `spam score 7.5 (refuse at 6.0): executable-attachment 6.0, shouting-subject 1.5`.
    pub fn summary(&self) -> String {
        let mut s = format!("spam score {:.1} ({})", self.score, self.level);
        if self.hits.is_empty() {
            s.push_str(": no rule hit");
            return s;
        }
        s.push(':');
        for (k, h) in self.hits.iter().enumerate() {
            if k > 0 {
                s.push(',');
            }
            s.push_str(&format!(" {} {:.1}", h.rule, h.points));
        }
        s
    }
}

/// Hits as they are found: one per rule, the strongest kept.
#[derive(Debug)]
pub(crate) struct Findings {
    hits: Vec<Hit>,
    inflate_budget: usize,
}

impl Default for Findings {
    fn default() -> Self {
        Findings {
            hits: Vec::new(),
            inflate_budget: INFLATE_BUDGET,
        }
    }
}

impl Findings {
    fn add(&mut self, rule: Rule, points: f32, reason: String) {
        match self.hits.iter_mut().find(|h| h.rule == rule) {
            Some(h) if points > h.points => {
                h.points = points;
                h.reason = reason;
            }
            Some(_) => {}
            None => self.hits.push(Hit {
                rule,
                points,
                reason,
            }),
        }
    }

    fn into_verdict(mut self, th: &Thresholds) -> Verdict {
        self.hits.sort_by_key(|h| h.rule);
        for g in [
            Group::Subject,
            Group::Body,
            Group::Links,
            Group::Headers,
            Group::Porn,
        ] {
            let Some(cap) = g.cap() else { continue };
            let mut left = cap;
            // The strongest hits keep their points; later ones share what the cap leaves.
            let mut idx: Vec<usize> = (0..self.hits.len())
                .filter(|&i| self.hits[i].rule.group() == g)
                .collect();
            idx.sort_by(|&a, &b| self.hits[b].points.total_cmp(&self.hits[a].points));
            for i in idx {
                let h = &mut self.hits[i];
                if h.points > left {
                    h.reason
                        .push_str(&format!(" ({} group capped at {cap:.1})", g.as_str()));
                    h.points = left;
                }
                left -= h.points;
            }
        }
        // f32's sum starts at -0.0; `+ 0.0` keeps an empty verdict at 0.0.
        let score = (self.hits.iter().map(|h| h.points).sum::<f32>() * 100.0).round() / 100.0 + 0.0;
        let level = if score >= th.refuse {
            Level::Refuse
        } else if score >= th.suspicious {
            Level::Suspicious
        } else {
            Level::Ham
        };
        Verdict {
            score,
            level,
            hits: self.hits,
        }
    }
}

/// Scores one message: `raw_message` is the full RFC 5322 message (CRLF or LF headers, a
/// blank line, the body) exactly as mail() hands it to sendmail.
pub fn score(raw_message: &[u8], ctx: &SpamContext, th: &Thresholds) -> Verdict {
    let mut f = Findings::default();
    let raw_headers = headers::scan(raw_message);
    header_rules(&raw_headers, &mut f);
    origin_rules(ctx, &mut f);

    let parsed = MessageParser::default().parse(raw_message);
    let subject = parsed
        .as_ref()
        .and_then(|m| m.subject())
        .map(str::to_string);
    let has_subject_field = raw_headers.fields.iter().any(|h| h.is("Subject"));
    subject_rules(subject.as_deref(), has_subject_field, &mut f);
    if let Some(date) = raw_headers.fields.iter().find(|h| h.is("Date")) {
        let ok = parsed
            .as_ref()
            .and_then(|m| m.date())
            .is_some_and(|d| d.is_valid());
        if !ok {
            f.add(
                Rule::MalformedDate,
                1.5,
                format!(
                    "Date header cannot be parsed: '{}'",
                    headers::shorten(&date.value, 50)
                ),
            );
        }
    }

    let mut body = Body::default();
    if let Some(m) = &parsed {
        walk(m, &mut body, &mut f);
    }
    if let Some(m) = parsed {
        drop_flat(m);
    }
    body_rules(&body, subject.as_deref(), &mut f);
    f.into_verdict(th)
}

fn header_rules(h: &headers::RawHeaders<'_>, f: &mut Findings) {
    if let Some(line) = &h.broken_line {
        f.add(
            Rule::BrokenHeader,
            3.0,
            format!(
                "{} line(s) in the header block are not 'Name: value', e.g. '{line}'",
                h.broken_lines
            ),
        );
    }
    if let Some(name) = &h.bad_name {
        f.add(
            Rule::BrokenHeader,
            2.0,
            format!("header name '{name}' has characters outside printable ASCII"),
        );
    }
    if h.long_lines > 0 {
        f.add(
            Rule::LongHeaderLine,
            1.0,
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
        f.add(
            Rule::HeaderControlChar,
            1.5,
            format!("header '{name}' contains {what}"),
        );
    }
    for field in &h.fields {
        if field.value.iter().any(|&c| c >= 0x80) {
            let name = headers::shorten(field.name, 30);
            if std::str::from_utf8(&field.value).is_ok() {
                f.add(
                    Rule::Header8bit,
                    0.5,
                    format!("header '{name}' has raw UTF-8 instead of RFC 2047 encoding"),
                );
            } else {
                f.add(
                    Rule::Header8bit,
                    1.5,
                    format!("header '{name}' has raw 8-bit bytes that are not valid UTF-8"),
                );
            }
        }
    }
    for &(name, mult) in headers::SINGLETONS {
        let n = h.fields.iter().filter(|x| x.is(name)).count();
        if n > 1 {
            f.add(
                Rule::DuplicateHeader,
                3.0 * mult,
                format!("{name} appears {n} times; RFC 5322 allows it once"),
            );
        }
    }
    let sender = h.fields.iter().any(|x| x.is("Sender"));
    if let Some(from) = h.fields.iter().find(|x| x.is("From")) {
        if let Some(why) = headers::from_fault(&from.value, sender) {
            f.add(Rule::MalformedFrom, 2.0, why);
        }
    }
    if let Some(mid) = h.fields.iter().find(|x| x.is("Message-ID")) {
        if !headers::message_id_ok(&mid.value) {
            f.add(
                Rule::MalformedMessageId,
                1.0,
                format!(
                    "Message-ID '{}' is not <left@right>",
                    headers::shorten(&mid.value, 50)
                ),
            );
        }
    }
}

fn subject_rules(subject: Option<&str>, has_field: bool, f: &mut Findings) {
    let s = subject.unwrap_or_default();
    if s.trim().is_empty() {
        let why = if has_field {
            "the subject is empty"
        } else {
            "there is no Subject header"
        };
        f.add(Rule::MissingSubject, 1.5, why.to_string());
        return;
    }
    let quoted: String = s.chars().take(60).collect();
    if let Some((upper, letters)) = text::shouting(s) {
        f.add(
            Rule::ShoutingSubject,
            1.5,
            format!("subject is shouting: {upper} of {letters} letters upper-case in '{quoted}'"),
        );
    } else {
        let words = text::caps_words(s);
        if words.len() >= 3 {
            f.add(
                Rule::CapsWordsSubject,
                0.75,
                format!(
                    "subject has {} shouted words ({})",
                    words.len(),
                    words.join(", ")
                ),
            );
        }
    }
    if let Some((word, shouted)) = text::opener(s) {
        let (points, how) = if shouted && matches!(word, "free" | "buy" | "buying") {
            (1.5, " in capitals")
        } else {
            (1.0, "")
        };
        f.add(
            Rule::SubjectOpener,
            points,
            format!("subject opens with '{word}'{how}: '{quoted}'"),
        );
    }
}

fn origin_rules(ctx: &SpamContext, f: &mut Findings) {
    let file = ctx.origin_file.as_deref().unwrap_or_default();
    let lower = file.to_ascii_lowercase().replace('\\', "/");
    if ctx.from_eval
        || lower.contains("eval()'d code")
        || lower.contains("runtime-created function")
    {
        f.add(
            Rule::EvalOrigin,
            4.0,
            format!(
                "mail() was called from eval()'d code{}",
                if file.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", headers::shorten(file.as_bytes(), 100))
                }
            ),
        );
    }
    // The script's own path, without PHP's "(12) : eval()'d code" suffix.
    let path = lower.split(" : ").next().unwrap_or_default();
    let path = path
        .rsplit_once('(')
        .filter(|(_, rest)| rest.ends_with(')'))
        .map_or(path, |(p, _)| p);
    if path.is_empty() {
        return;
    }
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let dirs = &segments[..segments.len().saturating_sub(1)];
    let hidden = segments
        .iter()
        .find(|s| s.starts_with('.') && **s != "." && **s != "..");
    let wp_static = segments.windows(2).any(|w| {
        matches!(
            (w[0], w[1]),
            ("wp-includes", "css" | "fonts" | "js" | "images")
                | ("wp-admin", "css" | "js" | "images")
        )
    });
    let upload = dirs
        .iter()
        .find(|s| matches!(**s, "uploads" | "upload" | "tmp"))
        .copied()
        .or_else(|| {
            segments
                .windows(3)
                .any(|w| w[0] == "sites" && w[2] == "files")
                .then_some("sites/*/files")
        })
        .or_else(|| path.starts_with("/dev/shm/").then_some("/dev/shm"));
    let why = if let Some(h) = hidden {
        Some(format!("a hidden file or folder ('{h}')"))
    } else if let Some(u) = upload {
        Some(format!("an uploads or temporary folder ('{u}')"))
    } else if wp_static {
        Some("a WordPress static-asset folder, where no mail script belongs".to_string())
    } else {
        None
    };
    if let Some(why) = why {
        f.add(
            Rule::SuspiciousScriptPath,
            2.0,
            format!(
                "the sending script {} is in {why}",
                headers::shorten(file.as_bytes(), 100)
            ),
        );
    }
}

/// What the body walk gathered.
#[derive(Debug, Default)]
struct Body {
    parts: usize,
    text_budget: usize,
    attachments: usize,
    image_parts: usize,
    /// The largest image part (decoded bytes).
    biggest_image: usize,
    visible: usize,
    max_words: usize,
    /// (white, visible) per text part, and the worst raw run seen.
    worst_white: Option<(usize, usize)>,
    raw_run: Option<String>,
    html_images: usize,
    html_big_images: usize,
    max_font_px: f32,
    chars_ge_36px: usize,
    chars_ge_48px: usize,
    low_contrast: usize,
    links: Vec<html::Link>,
    urls: Vec<String>,
    words_normalised: String,
}

/// Visits every part of the message and of attached messages, with an explicit stack (a
/// chain of nested message/rfc822 parts is as deep as the sender likes). The first
/// [`MAX_PARTS`] leaf parts are inspected in full; past that only names and declared types
/// are checked, which costs O(1) per part, so a pile of junk parts cannot hide a program.
fn walk(root: &mail_parser::Message<'_>, b: &mut Body, f: &mut Findings) {
    let mut stack = vec![(root, true)];
    while let Some((m, top)) = stack.pop() {
        for (id, part) in m.parts.iter().enumerate() {
            match &part.body {
                PartType::Multipart(_) => continue,
                PartType::Message(inner) => {
                    b.attachments += 1;
                    stack.push((inner, false));
                    continue;
                }
                _ => b.parts += 1,
            }
            let full = b.parts <= MAX_PARTS;
            let is_body = top
                && (m.text_body.contains(&(id as u32)) || m.html_body.contains(&(id as u32)))
                && !part
                    .content_disposition()
                    .is_some_and(|d| d.is_attachment());
            if is_body {
                match &part.body {
                    PartType::Text(t) if full => read_plain(t, b),
                    PartType::Html(h) if full => read_html(h, b),
                    _ => {}
                }
                continue;
            }
            let ct = part
                .content_type()
                .map(|c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or_default()))
                .unwrap_or_else(|| "text/plain".to_string());
            let data: &[u8] = match &part.body {
                PartType::Text(t) | PartType::Html(t) => t.as_bytes(),
                PartType::Binary(d) | PartType::InlineBinary(d) => d,
                _ => &[],
            };
            if part.attachment_name().is_some() || !matches!(part.body, PartType::InlineBinary(_)) {
                b.attachments += 1;
            }
            if ct.to_ascii_lowercase().starts_with("image/") {
                b.image_parts += 1;
                b.biggest_image = b.biggest_image.max(data.len());
            }
            attach::inspect(
                &attach::Part {
                    name: part.attachment_name(),
                    content_type: ct,
                    data: if full { data } else { &[] },
                },
                f,
            );
        }
    }
}

/// Drops a parsed message without recursion: mail-parser 0.11.9's tree of nested
/// message/rfc822 parts is dropped recursively and overflows the stack a few thousand
/// levels down (found by `tests/spam_bounds.rs`).
fn drop_flat(root: mail_parser::Message<'_>) {
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

fn read_plain(t: &str, b: &mut Body) {
    let t = budgeted(t, b);
    let l = text::plain_layout(t);
    b.visible += l.visible;
    b.max_words = b.max_words.max(l.words);
    note_white(b, l.white, l.visible);
    if l.max_blank_lines >= 30 {
        b.raw_run = Some(format!("{} blank lines in a row", l.max_blank_lines));
    } else if l.max_space_run >= 200 {
        b.raw_run = Some(format!("{} spaces in a row", l.max_space_run));
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

fn read_html(h: &str, b: &mut Body) {
    let h = budgeted(h, b);
    let r = html::render(h);
    b.visible += r.visible;
    b.max_words = b.max_words.max(r.words);
    note_white(b, r.white, r.visible);
    if r.max_break_run >= 30 {
        b.raw_run = Some(format!("{} line breaks in a row", r.max_break_run));
    }
    b.html_images += r.images;
    b.html_big_images += r.big_images;
    b.max_font_px = b.max_font_px.max(r.max_font_px);
    b.chars_ge_36px += r.chars_ge_36px;
    b.chars_ge_48px += r.chars_ge_48px;
    b.low_contrast += r.low_contrast;
    text::text_urls(&r.text, &mut b.urls, html::MAX_URLS);
    text::normalise_words(&r.text, &mut b.words_normalised);
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

fn body_rules(b: &Body, subject: Option<&str>, f: &mut Findings) {
    let has_image = b.image_parts > 0 || b.html_images > 0;
    if b.visible == 0 && !has_image {
        let (points, why) = if b.attachments > 0 {
            (2.0, "the message has no text, only attachments")
        } else {
            (3.0, "the message body is empty")
        };
        f.add(Rule::EmptyBody, points, why.to_string());
    }
    if b.biggest_image > 1024 * 1024 && b.max_words < 30 {
        f.add(
            Rule::ImageOnly,
            3.0,
            format!(
                "an image of {:.1} MiB with only {} visible word(s)",
                b.biggest_image as f32 / 1_048_576.0,
                b.max_words
            ),
        );
    } else if b.html_big_images > 0 && b.max_words < 20 {
        f.add(
            Rule::ImageOnly,
            1.0,
            format!(
                "the HTML is essentially an image ({} visible word(s))",
                b.max_words
            ),
        );
    }
    if let Some((white, visible)) = b.worst_white {
        if white * 10 > (white + visible) * 7 {
            f.add(
                Rule::WhitespaceAbuse,
                2.0,
                format!(
                    "{}% of the visible text is white space",
                    white * 100 / (white + visible)
                ),
            );
        }
    }
    if let Some(run) = &b.raw_run {
        f.add(Rule::WhitespaceAbuse, 2.0, format!("the text has {run}"));
    }
    let big_share = b.visible > 0 && b.chars_ge_36px * 10 > b.visible * 3;
    let font = if b.max_font_px >= 48.0 && b.chars_ge_48px >= 3 {
        Some(1.5)
    } else if b.max_font_px >= 36.0 && b.chars_ge_36px >= 3 {
        Some(0.5)
    } else {
        None
    };
    if let Some(points) = font {
        let extra = if big_share { 1.0 } else { 0.0 };
        f.add(
            Rule::LargeFont,
            points + extra,
            format!(
                "text set in a {:.0} px font{}",
                b.max_font_px,
                if big_share {
                    format!(
                        ", {}% of the visible text at 36 px or more",
                        b.chars_ge_36px * 100 / b.visible
                    )
                } else {
                    String::new()
                }
            ),
        );
    }
    if b.low_contrast >= 30 {
        let share = b.low_contrast * 100 / b.visible.max(1);
        let points = if share >= 10 { 3.0 } else { 1.0 };
        f.add(
            Rule::LowContrastText,
            points,
            format!(
                "{} visible characters ({share}% of the text) are in the background colour",
                b.low_contrast
            ),
        );
    }
    links::raw_ip(&b.links, &b.urls, f);
    let text_urls: Vec<String> = b
        .urls
        .iter()
        .filter(|u| u.contains("://"))
        .cloned()
        .collect();
    links::malformed(&b.links, &text_urls, f);
    links::https_over_http(&b.links, f);

    let mut subj = String::new();
    text::normalise_words(subject.unwrap_or_default(), &mut subj);
    let in_subject = text::porn_terms(&subj);
    let in_body = text::porn_terms(&b.words_normalised);
    let mut points: f32 = 0.0;
    if !in_subject.is_empty() {
        points += 2.5;
    }
    points += match in_body.len() {
        0 | 1 => 0.0,
        2 => 1.0,
        _ => 2.5,
    };
    if points > 0.0 {
        let mut terms: Vec<&str> = in_subject.clone();
        terms.extend(in_body.iter().filter(|t| !in_subject.contains(t)));
        f.add(
            Rule::PornPhrases,
            points,
            format!(
                "explicit phrases ({} in the subject, {} distinct in the body): {}",
                in_subject.len(),
                in_body.len(),
                terms.iter().take(4).copied().collect::<Vec<_>>().join(", ")
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_ids_round_trip() {
        for &r in Rule::ALL {
            assert_eq!(r.as_str().parse::<Rule>(), Ok(r));
            assert!(r
                .as_str()
                .bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-'));
        }
        assert!("nope".parse::<Rule>().is_err());
        assert_eq!("refuse".parse::<Level>(), Ok(Level::Refuse));
    }

    #[test]
    fn caps_share_the_group_total() {
        let mut f = Findings::default();
        f.add(Rule::BrokenHeader, 3.0, "a".into());
        f.add(Rule::DuplicateHeader, 3.0, "b".into());
        f.add(Rule::MalformedFrom, 2.0, "c".into());
        let v = f.into_verdict(&Thresholds::default());
        assert_eq!(v.score, 5.0);
        assert_eq!(v.level, Level::Suspicious);
        // Every rule that fired is still reported, even when the cap leaves it nothing.
        assert_eq!(v.hits.len(), 3);
        assert_eq!(v.hit(Rule::MalformedFrom).map(|h| h.points), Some(0.0));
        assert!(v
            .hit(Rule::MalformedFrom)
            .unwrap()
            .reason
            .contains("capped"));
    }

    #[test]
    fn summary_names_the_rules() {
        let v = score(
            b"To: a@example.com\r\nSubject: FREE MONEY FOR EVERYONE TODAY\r\n\r\nhello there\r\n",
            &SpamContext {
                origin_file: None,
                from_eval: true,
            },
            &Thresholds::default(),
        );
        assert_eq!(
            v.summary(),
            "spam score 7.0 (refuse): shouting-subject 1.5, subject-opener 1.5, eval-origin 4.0"
        );
        let ham = score(
            b"To: a@example.com\r\nSubject: Hi\r\n\r\nok\r\n",
            &SpamContext::default(),
            &Thresholds::default(),
        );
        assert!(
            ham.summary().ends_with("(ham): subject-opener 1.0"),
            "{}",
            ham.summary()
        );
    }

    #[test]
    fn hosting_paths() {
        let hit = |p: &str| {
            let mut f = Findings::default();
            origin_rules(
                &SpamContext {
                    origin_file: Some(p.into()),
                    from_eval: false,
                },
                &mut f,
            );
            f.hits.iter().map(|h| h.rule).collect::<Vec<_>>()
        };
        assert_eq!(
            hit("/home/a/www/wp-content/uploads/2024/05/x.php"),
            [Rule::SuspiciousScriptPath]
        );
        assert_eq!(
            hit("/home/a/www/.cache/mailer.php"),
            [Rule::SuspiciousScriptPath]
        );
        assert_eq!(hit("/tmp/x.php"), [Rule::SuspiciousScriptPath]);
        assert_eq!(
            hit("/home/a/www/index.php(3) : eval()'d code"),
            [Rule::EvalOrigin]
        );
        assert!(hit("/home/a/www/wp-content/themes/shop/contact.php").is_empty());
        assert!(hit("/home/a/www/wp-includes/pluggable.php").is_empty());
        assert!(hit("/home/a/www/upload.php").is_empty());
    }
}

//! dsn: RFC 3464 delivery-status notifications (asynchronous bounces) and RFC 3463
//! enhanced status codes.
//!
//! [`parse`] reads a bounce as an MTA delivers it (a `multipart/report;
//! report-type=delivery-status` message) and returns a [`Dsn`]: the per-recipient
//! results ([`RecipientStatus`]: Final-Recipient, Action, Status, Diagnostic-Code) and
//! the ways to find which of our messages bounced ([`Dsn::message_id`]):
//!
//! 1. the `Original-Envelope-Id` field (set when the relay was given an ENVID);
//! 2. the VERP-like envelope sender we used, `<prefix>+<id>@domain` (default prefix
//!    `bounces`), which a bounce is addressed to: looked for in the bounce's
//!    `Delivered-To`, `X-Original-To`, `Envelope-To` and `To` headers, then in the
//!    returned message's `Return-Path`;
//! 3. an `X-MailGuard-Id` header in the returned message (`message/rfc822` or
//!    `text/rfc822-headers` part).
//!
//! Pure: no I/O. Accepts CRLF or LF line ends and any bytes (invalid UTF-8 is
//! replaced, never a panic). Handles base64 and quoted-printable report parts and a
//! report nested one or more levels inside another multipart (as forwarded bounces are).

use std::fmt;
use std::str::FromStr;

/// An RFC 3463 enhanced status code, `class.subject.detail`, e.g. `5.1.1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EnhancedStatus {
    /// 2 (success), 4 (persistent transient failure) or 5 (permanent failure).
    pub class: u8,
    pub subject: u16,
    pub detail: u16,
}

impl EnhancedStatus {
    /// Parses exactly `class.subject.detail` (class 2, 4 or 5; subject and detail 1 to 3 digits).
    pub fn parse(s: &str) -> Option<EnhancedStatus> {
        let mut parts = s.split('.');
        let (class, subject, detail) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let class = match class {
            "2" => 2,
            "4" => 4,
            "5" => 5,
            _ => return None,
        };
        let number = |p: &str| -> Option<u16> {
            if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            p.parse().ok()
        };
        Some(EnhancedStatus {
            class,
            subject: number(subject)?,
            detail: number(detail)?,
        })
    }

    /// The enhanced status a reply text starts with (`"5.1.1 User unknown"`), and the
    /// rest of the text after it.
    pub fn parse_prefix(text: &str) -> Option<(EnhancedStatus, &str)> {
        let text = text.trim_start();
        let end = text
            .find(|c: char| c.is_ascii_whitespace())
            .unwrap_or(text.len());
        let status = EnhancedStatus::parse(&text[..end])?;
        Some((status, text[end..].trim_start()))
    }

    pub fn is_success(&self) -> bool {
        self.class == 2
    }

    pub fn is_transient(&self) -> bool {
        self.class == 4
    }

    pub fn is_permanent(&self) -> bool {
        self.class == 5
    }
}

impl fmt::Display for EnhancedStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

impl FromStr for EnhancedStatus {
    type Err = DsnError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EnhancedStatus::parse(s).ok_or_else(|| DsnError::BadStatus(s.to_string()))
    }
}

/// The `Action` field of a per-recipient block (RFC 3464 §2.3.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Failed,
    Delayed,
    Delivered,
    Relayed,
    Expanded,
}

impl Action {
    pub fn as_str(&self) -> &'static str {
        match self {
            Action::Failed => "failed",
            Action::Delayed => "delayed",
            Action::Delivered => "delivered",
            Action::Relayed => "relayed",
            Action::Expanded => "expanded",
        }
    }

    fn parse(s: &str) -> Option<Action> {
        // RFC 3464 allows a comment after the action ("failed (bad mailbox)").
        let word = strip_comments(s);
        let word = word.split_whitespace().next().unwrap_or("");
        Some(match word.to_ascii_lowercase().as_str() {
            "failed" => Action::Failed,
            "delayed" => Action::Delayed,
            "delivered" => Action::Delivered,
            "relayed" => Action::Relayed,
            "expanded" => Action::Expanded,
            _ => return None,
        })
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One per-recipient block of the report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecipientStatus {
    /// The address from `Final-Recipient`, without its `rfc822;` type and angle brackets.
    pub final_recipient: String,
    /// The address from `Original-Recipient`, when present.
    pub original_recipient: Option<String>,
    pub action: Action,
    pub status: EnhancedStatus,
    /// `Remote-MTA` without its `dns;` type.
    pub remote_mta: Option<String>,
    /// The type of the diagnostic (`smtp`, `x-unix`...), lower case.
    pub diagnostic_type: Option<String>,
    /// The diagnostic without its type, unfolded: `550 5.1.1 <x@y>: User unknown`.
    pub diagnostic: Option<String>,
}

impl RecipientStatus {
    /// The SMTP reply code the diagnostic starts with, when its type is `smtp`.
    pub fn smtp_code(&self) -> Option<u16> {
        if self.diagnostic_type.as_deref() != Some("smtp") {
            return None;
        }
        let diagnostic = self.diagnostic.as_deref()?;
        let code = diagnostic.get(..3)?;
        let rest = &diagnostic[3..];
        if !code.bytes().all(|b| b.is_ascii_digit())
            || !(rest.is_empty() || rest.starts_with([' ', '-']))
        {
            return None;
        }
        code.parse().ok().filter(|c| (200..600).contains(c))
    }

    /// The enhanced status inside the diagnostic (`550 5.1.1 ...` gives 5.1.1), which
    /// can be more precise than the `Status` field some MTAs fill with `5.0.0`.
    pub fn diagnostic_status(&self) -> Option<EnhancedStatus> {
        let diagnostic = self.diagnostic.as_deref()?;
        let after_code = match self.smtp_code() {
            Some(_) => diagnostic[3..].trim_start_matches(['-', ' ']),
            None => diagnostic,
        };
        EnhancedStatus::parse_prefix(after_code).map(|(status, _)| status)
    }
}

/// A parsed delivery-status notification.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dsn {
    /// `Original-Envelope-Id` (xtext-decoded).
    pub envelope_id: Option<String>,
    /// `Reporting-MTA` without its `dns;` type.
    pub reporting_mta: Option<String>,
    /// `Arrival-Date`, as written.
    pub arrival_date: Option<String>,
    /// The id found in the VERP-like address the bounce was sent to.
    pub verp_id: Option<String>,
    /// The `X-MailGuard-Id` header of the returned message.
    pub header_id: Option<String>,
    /// One entry per recipient block, in order.
    pub recipients: Vec<RecipientStatus>,
}

impl Dsn {
    /// Our message id, from the most reliable source present: envelope id, then the
    /// VERP address, then the returned message's header.
    pub fn message_id(&self) -> Option<&str> {
        self.envelope_id
            .as_deref()
            .or(self.verp_id.as_deref())
            .or(self.header_id.as_deref())
    }

    /// The recipients whose delivery failed for good (`Action: failed`).
    pub fn failed(&self) -> impl Iterator<Item = &RecipientStatus> {
        self.recipients
            .iter()
            .filter(|r| r.action == Action::Failed)
    }
}

/// Why a message could not be read as a DSN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DsnError {
    /// No `multipart/report; report-type=delivery-status` part anywhere.
    NotAReport,
    /// A report without a `message/delivery-status` part.
    NoDeliveryStatus,
    /// A delivery-status part without any per-recipient block.
    NoRecipients,
    /// A per-recipient block lacks a required field (`Final-Recipient`, `Action`, `Status`).
    MissingField(&'static str),
    /// An `Action` value outside RFC 3464's list.
    BadAction(String),
    /// A `Status` value that is not an enhanced status code.
    BadStatus(String),
}

impl fmt::Display for DsnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DsnError::NotAReport => f.write_str(
                "not a delivery-status notification (no multipart/report; report-type=delivery-status)",
            ),
            DsnError::NoDeliveryStatus => {
                f.write_str("the report has no message/delivery-status part")
            }
            DsnError::NoRecipients => {
                f.write_str("the delivery-status part has no per-recipient block")
            }
            DsnError::MissingField(name) => {
                write!(f, "a per-recipient block has no {name} field")
            }
            DsnError::BadAction(v) => write!(f, "unknown Action value {v:?}"),
            DsnError::BadStatus(v) => write!(f, "Status {v:?} is not an enhanced status code"),
        }
    }
}

impl std::error::Error for DsnError {}

/// What [`parse_with`] looks for besides the report itself.
#[derive(Clone, Debug)]
pub struct DsnOptions {
    /// The local-part prefix of our VERP-like envelope senders: with `bounces`, the
    /// address `bounces+ID@domain` yields `ID`.
    pub verp_prefix: String,
    /// The header the returned message carries our id in.
    pub id_header: String,
}

impl Default for DsnOptions {
    fn default() -> Self {
        DsnOptions {
            verp_prefix: "bounces".to_string(),
            id_header: "X-MailGuard-Id".to_string(),
        }
    }
}

/// Parses a DSN with the default [`DsnOptions`].
pub fn parse(raw: &[u8]) -> Result<Dsn, DsnError> {
    parse_with(raw, &DsnOptions::default())
}

/// The id in a VERP-like address `<prefix>+<id>@domain` (angle brackets and a display
/// name allowed), or `None` when the address does not have that form. Ids are limited
/// to `[A-Za-z0-9._=-]`, so a forged address cannot smuggle anything else.
pub fn verp_id(address: &str, prefix: &str) -> Option<String> {
    let address = angle_addr(address);
    let (local, domain) = address.rsplit_once('@')?;
    if domain.is_empty() {
        return None;
    }
    let (head, id) = local.split_once('+')?;
    if !head.eq_ignore_ascii_case(prefix) || id.is_empty() || id.len() > 128 {
        return None;
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'=' | b'-'))
    {
        return None;
    }
    Some(id.to_string())
}

/// Parses a DSN.
pub fn parse_with(raw: &[u8], options: &DsnOptions) -> Result<Dsn, DsnError> {
    let entity = Entity::parse(raw);
    let mut dsn = Dsn::default();

    for name in ["Delivered-To", "X-Original-To", "Envelope-To", "To"] {
        for value in entity.headers.all(name) {
            if dsn.verp_id.is_none() {
                dsn.verp_id = value
                    .split(',')
                    .find_map(|a| verp_id(a, &options.verp_prefix));
            }
        }
    }

    let report = find_report(&entity, 0).ok_or(DsnError::NotAReport)?;
    let mut status_part = None;
    for part in report.parts() {
        match part.content_type().as_str() {
            "message/delivery-status" | "message/global-delivery-status"
                if status_part.is_none() =>
            {
                status_part = Some(part.decoded_body());
            }
            "message/rfc822"
            | "text/rfc822-headers"
            | "message/global"
            | "message/global-headers" => {
                let returned = Entity::parse(&part.decoded_body());
                if dsn.header_id.is_none() {
                    dsn.header_id = returned
                        .headers
                        .first(&options.id_header)
                        .map(|v| v.trim().to_string())
                        .filter(|v| !v.is_empty());
                }
                if dsn.verp_id.is_none() {
                    dsn.verp_id = returned
                        .headers
                        .first("Return-Path")
                        .and_then(|v| verp_id(v, &options.verp_prefix));
                }
            }
            _ => {}
        }
    }
    let status_body = status_part.ok_or(DsnError::NoDeliveryStatus)?;
    let text = String::from_utf8_lossy(&status_body);
    let mut groups = field_groups(&text).into_iter();
    if let Some(per_message) = groups.next() {
        dsn.envelope_id = per_message
            .get("Original-Envelope-Id")
            .map(|v| xtext_decode(v.trim()));
        dsn.reporting_mta = per_message.get("Reporting-MTA").map(strip_type);
        dsn.arrival_date = per_message.get("Arrival-Date").map(str::to_string);
    }
    for group in groups {
        dsn.recipients.push(recipient_status(&group)?);
    }
    if dsn.recipients.is_empty() {
        return Err(DsnError::NoRecipients);
    }
    Ok(dsn)
}

fn recipient_status(group: &Headers) -> Result<RecipientStatus, DsnError> {
    let final_recipient = group
        .get("Final-Recipient")
        .map(|v| angle_addr(&strip_type(v)).to_string())
        .filter(|v| !v.is_empty())
        .ok_or(DsnError::MissingField("Final-Recipient"))?;
    let action_text = group
        .get("Action")
        .ok_or(DsnError::MissingField("Action"))?;
    let action =
        Action::parse(action_text).ok_or_else(|| DsnError::BadAction(action_text.to_string()))?;
    let status_text = group
        .get("Status")
        .ok_or(DsnError::MissingField("Status"))?;
    let status_word = strip_comments(status_text);
    let status_word = status_word.split_whitespace().next().unwrap_or("");
    let status = EnhancedStatus::parse(status_word)
        .ok_or_else(|| DsnError::BadStatus(status_text.to_string()))?;
    let (diagnostic_type, diagnostic) = match group.get("Diagnostic-Code") {
        Some(v) => match v.split_once(';') {
            Some((kind, rest)) => (
                Some(kind.trim().to_ascii_lowercase()),
                Some(rest.trim().to_string()),
            ),
            None => (None, Some(v.trim().to_string())),
        },
        None => (None, None),
    };
    Ok(RecipientStatus {
        final_recipient,
        original_recipient: group
            .get("Original-Recipient")
            .map(|v| angle_addr(&strip_type(v)).to_string()),
        action,
        status,
        remote_mta: group.get("Remote-MTA").map(strip_type),
        diagnostic_type,
        diagnostic,
    })
}

/// `rfc822; user@example.org` gives `user@example.org`.
fn strip_type(value: &str) -> String {
    match value.split_once(';') {
        Some((_, rest)) => rest.trim().to_string(),
        None => value.trim().to_string(),
    }
}

/// `Name <a@b>` or `<a@b>` gives `a@b`; a bare address is returned trimmed.
fn angle_addr(value: &str) -> &str {
    let value = value.trim();
    match (value.rfind('<'), value.rfind('>')) {
        (Some(open), Some(close)) if open < close => value[open + 1..close].trim(),
        _ => value,
    }
}

/// Removes RFC 5322 comments: `5.1.1 (bad mailbox)` gives `5.1.1 `.
fn strip_comments(value: &str) -> String {
    let mut depth = 0usize;
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '(' => depth += 1,
            ')' if depth > 0 => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// RFC 3461 xtext: `+XX` is the byte with hex value XX.
fn xtext_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'+' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Header fields in order; names compared without case.
#[derive(Debug, Default)]
struct Headers {
    fields: Vec<(String, String)>,
}

impl Headers {
    fn first(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.first(name)
    }

    fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.fields
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Parses unfolded header lines; runs of white space in values collapse to one
    /// space, which is what unfolding a long Diagnostic-Code should give.
    fn from_lines<'a>(lines: impl Iterator<Item = &'a str>) -> Headers {
        let mut fields: Vec<(String, String)> = Vec::new();
        for line in lines {
            if line.starts_with([' ', '\t']) {
                if let Some((_, value)) = fields.last_mut() {
                    value.push(' ');
                    value.push_str(line.trim());
                }
                continue;
            }
            if let Some((name, value)) = line.split_once(':') {
                let name = name.trim();
                if !name.is_empty() && !name.contains(' ') {
                    fields.push((name.to_string(), value.trim().to_string()));
                }
            }
        }
        for (_, value) in &mut fields {
            *value = value.split_whitespace().collect::<Vec<_>>().join(" ");
        }
        Headers { fields }
    }
}

/// The blank-line separated field groups of a delivery-status body.
fn field_groups(text: &str) -> Vec<Headers> {
    let mut groups = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            if !current.is_empty() {
                groups.push(Headers::from_lines(current.drain(..)));
            }
        } else {
            current.push(line);
        }
    }
    if !current.is_empty() {
        groups.push(Headers::from_lines(current.into_iter()));
    }
    groups
}

/// A MIME entity: its headers and its raw body.
struct Entity {
    headers: Headers,
    body: Vec<u8>,
}

impl Entity {
    fn parse(raw: &[u8]) -> Entity {
        // The header block ends at the first empty line (CRLF or LF).
        let mut pos = 0;
        let mut end = raw.len();
        let mut body_start = raw.len();
        while pos < raw.len() {
            let line_end = raw[pos..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(raw.len(), |i| pos + i);
            let line = &raw[pos..line_end];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.is_empty() {
                end = pos;
                body_start = (line_end + 1).min(raw.len());
                break;
            }
            pos = line_end + 1;
        }
        let head = String::from_utf8_lossy(&raw[..end.min(raw.len())]);
        let headers = Headers::from_lines(
            head.split('\n')
                .map(|l| l.strip_suffix('\r').unwrap_or(l))
                .filter(|l| !l.is_empty()),
        );
        Entity {
            headers,
            body: raw[body_start..].to_vec(),
        }
    }

    /// The media type, lower case, without parameters; `text/plain` when absent.
    fn content_type(&self) -> String {
        self.headers
            .first("Content-Type")
            .map(|v| {
                v.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            })
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "text/plain".to_string())
    }

    fn content_type_param(&self, param: &str) -> Option<String> {
        let value = self.headers.first("Content-Type")?;
        for piece in value.split(';').skip(1) {
            if let Some((name, v)) = piece.split_once('=') {
                if name.trim().eq_ignore_ascii_case(param) {
                    return Some(v.trim().trim_matches('"').to_string());
                }
            }
        }
        None
    }

    /// The body with its Content-Transfer-Encoding undone (base64 and quoted-printable).
    fn decoded_body(&self) -> Vec<u8> {
        let encoding = self
            .headers
            .first("Content-Transfer-Encoding")
            .map(|v| v.trim().to_ascii_lowercase())
            .unwrap_or_default();
        match encoding.as_str() {
            "base64" => base64_decode(&self.body),
            "quoted-printable" => qp_decode(&self.body),
            _ => self.body.clone(),
        }
    }

    /// The parts of a multipart body (empty when this is not multipart).
    fn parts(&self) -> Vec<Entity> {
        let Some(boundary) = self.content_type_param("boundary") else {
            return Vec::new();
        };
        let delimiter = format!("--{boundary}");
        let mut parts = Vec::new();
        let mut current: Option<Vec<u8>> = None;
        for line in self.body.split_inclusive(|&b| b == b'\n') {
            let bare = line
                .strip_suffix(b"\n")
                .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
                .unwrap_or(line);
            let bare_trimmed = trim_end_ascii(bare);
            if bare_trimmed.starts_with(delimiter.as_bytes()) {
                let rest = &bare_trimmed[delimiter.len()..];
                if rest.is_empty() || rest == b"--" {
                    if let Some(mut body) = current.take() {
                        // The line break before a delimiter belongs to the delimiter.
                        if body.ends_with(b"\n") {
                            body.pop();
                            if body.ends_with(b"\r") {
                                body.pop();
                            }
                        }
                        parts.push(Entity::parse(&body));
                    }
                    if rest == b"--" {
                        break;
                    }
                    current = Some(Vec::new());
                    continue;
                }
            }
            if let Some(body) = current.as_mut() {
                body.extend_from_slice(line);
            }
        }
        parts
    }
}

fn trim_end_ascii(mut s: &[u8]) -> &[u8] {
    while let [rest @ .., last] = s {
        if last.is_ascii_whitespace() {
            s = rest;
        } else {
            break;
        }
    }
    s
}

/// The first `multipart/report; report-type=delivery-status` entity, searching nested
/// multiparts depth first (bounded, so a hostile message cannot recurse for ever).
fn find_report(entity: &Entity, depth: usize) -> Option<Entity> {
    let media = entity.content_type();
    let report_type = entity
        .content_type_param("report-type")
        .map(|v| v.to_ascii_lowercase());
    if media == "multipart/report"
        && matches!(
            report_type.as_deref(),
            Some("delivery-status") | Some("global-delivery-status")
        )
    {
        return Some(Entity {
            headers: Headers {
                fields: entity.headers.fields.clone(),
            },
            body: entity.body.clone(),
        });
    }
    if depth >= 8 {
        return None;
    }
    if media.starts_with("multipart/") {
        for part in entity.parts() {
            if let Some(found) = find_report(&part, depth + 1) {
                return Some(found);
            }
        }
    }
    if media == "message/rfc822" {
        return find_report(&Entity::parse(&entity.decoded_body()), depth + 1);
    }
    None
}

fn base64_decode(input: &[u8]) -> Vec<u8> {
    fn value(b: u8) -> Option<u32> {
        Some(match b {
            b'A'..=b'Z' => (b - b'A') as u32,
            b'a'..=b'z' => (b - b'a' + 26) as u32,
            b'0'..=b'9' => (b - b'0' + 52) as u32,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        })
    }
    let mut out = Vec::with_capacity(input.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for &b in input {
        if b == b'=' {
            break;
        }
        let Some(v) = value(b) else { continue };
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

fn qp_decode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] == b'=' {
            // Soft line break.
            if input[i + 1..].starts_with(b"\r\n") {
                i += 3;
                continue;
            }
            if input[i + 1..].starts_with(b"\n") {
                i += 2;
                continue;
            }
            if i + 2 < input.len() {
                let hex = std::str::from_utf8(&input[i + 1..i + 3]).ok();
                if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    out.push(b);
                    i += 3;
                    continue;
                }
            }
        }
        out.push(input[i]);
        i += 1;
    }
    out
}

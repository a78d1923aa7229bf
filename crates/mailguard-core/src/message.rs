//! The message as PHP's mail() hands it over: stock sanitising, the bytes it pipes,
//! the size limit and the 5th parameter (`$additional_params`).
//!
//! Everything here mirrors PHP 8.2's `ext/standard/mail.c` byte for byte
//! (`research/php-mail-semantics.md` §2-§4); the checks on top of it are mailguard's.

use std::fmt;

/// A byte count with PHP's size syntax (`10M`, `512K`, `1G`, plain bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Bytes(pub u64);

impl Bytes {
    /// Parses PHP's size syntax as `zend_atol` does for INI values: an integer,
    /// optionally followed by one of `K`, `M`, `G` (any case), powers of 1024.
    /// Unlike PHP, anything else is an error instead of a silent guess.
    pub fn parse(text: &str) -> Result<Bytes, SizeSyntaxError> {
        let t = text.trim();
        let err = || SizeSyntaxError(text.to_owned());
        let (digits, factor) = match t.as_bytes().last() {
            Some(b'k' | b'K') => (&t[..t.len() - 1], 1u64 << 10),
            Some(b'm' | b'M') => (&t[..t.len() - 1], 1u64 << 20),
            Some(b'g' | b'G') => (&t[..t.len() - 1], 1u64 << 30),
            Some(_) => (t, 1),
            None => return Err(err()),
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err());
        }
        let n: u64 = digits.parse().map_err(|_| err())?;
        n.checked_mul(factor).map(Bytes).ok_or_else(err)
    }
}

impl fmt::Display for Bytes {
    /// The shortest exact PHP spelling: `10M`, `1536K`, `1000`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        for (unit, shift) in [("G", 30), ("M", 20), ("K", 10)] {
            if n != 0 && n.is_multiple_of(1u64 << shift) {
                return write!(f, "{}{unit}", n >> shift);
            }
        }
        write!(f, "{n}")
    }
}

/// A size setting that is not in PHP's size syntax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SizeSyntaxError(pub String);

impl fmt::Display for SizeSyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "\"{}\" is not a size: use a whole number of bytes, optionally followed by K, M or G (e.g. 10M)",
            self.0
        )
    }
}

/// The default `mailguard.max_message_size`.
pub const DEFAULT_MAX_MESSAGE_SIZE: Bytes = Bytes(10 << 20);

/// Why mailguard refuses a message. Each refusal knows its one-line warning text,
/// which says why and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Headers plus body are over the size limit.
    TooLarge { size: u64, limit: Bytes },
    /// `$additional_params` carries something other than `-f address`.
    ForbiddenParameter { given: String },
    /// A mailguard setting could not be read; the guard refuses rather than guess.
    BadSetting { name: &'static str, problem: String },
    /// mailguard itself failed (a contained panic); nothing was sent.
    Internal { what: String },
    /// The state or queue cannot take the message (unusable state directory, queue
    /// cap, disk reserve); `problem` says which and names the path.
    Store { problem: String },
    /// The account's status or a rule refuses new mail; `reason` says what to do.
    Policy { reason: String },
    /// The spam verdict refuses the message (`summary`: score and rules); it was kept
    /// for review and counts toward the account's spam status.
    Spam { summary: String },
    /// The hardened-mode daemon refused it: its own words, shown as they are.
    Relayed { text: String },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::TooLarge { size, limit } => write!(
                f,
                "message refused: it is {size} bytes, over the {limit} ({} bytes) limit for headers and body; \
                 keep attachments under about {} because base64 encoding grows them by a third, \
                 or send a link instead",
                limit.0,
                Bytes(limit.0 * 3 / 4).approx()
            ),
            Refusal::ForbiddenParameter { given } => write!(
                f,
                "message refused: the 5th parameter of mail() may only carry {ALLOWED_OPTIONS}, \
                 got \"{}\"; options that change files, configuration or mode (-X, -C, -O, -o..., \
                 -b..., -d...) are not allowed (CVE-2016-10033)",
                printable(given)
            ),
            Refusal::BadSetting { name, problem } => {
                write!(f, "message refused: setting {name} is invalid: {problem}; ask the server operator to fix php.ini")
            }
            Refusal::Store { problem } => write!(
                f,
                "message refused: the mail queue cannot take it: {problem}; nothing was sent, \
                 ask the server operator"
            ),
            Refusal::Policy { reason } => write!(f, "message refused: {reason}"),
            Refusal::Relayed { text } => f.write_str(text),
            Refusal::Spam { summary } => write!(
                f,
                "message refused: it looks like spam ({summary}); it was kept for the operator to review. \
                 If this is legitimate mail, change what the rules name, or ask the operator"
            ),
            Refusal::Internal { what } => write!(
                f,
                "message refused: internal error ({what}); nothing was sent, please report this to the server operator"
            ),
        }
    }
}

/// A user-given text for a warning: control characters shown as `\n`, `\xNN`.
fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

impl Bytes {
    /// A human approximation in MB with one decimal (`7.5 MB`), for advice texts.
    pub fn approx(self) -> String {
        let mb = self.0 as f64 / (1u64 << 20) as f64;
        if mb >= 1.0 {
            format!("{mb:.1} MB")
        } else if self.0 >= 1024 {
            format!("{:.0} KB", self.0 as f64 / 1024.0)
        } else {
            format!("{} bytes", self.0)
        }
    }
}

/// The size check: headers plus body must be at most `limit` bytes.
pub fn check_size(size: u64, limit: Bytes) -> Result<(), Refusal> {
    if size > limit.0 {
        Err(Refusal::TooLarge { size, limit })
    } else {
        Ok(())
    }
}

/// The options the 5th parameter may carry, as the refusal names them.
pub const ALLOWED_OPTIONS: &str = "the envelope sender (-f or -r address) and the harmless \
     sendmail options -i, -oi, -t, -n, -v, -odb, -odi, -odq, -N dsn, -V envid, -B 8BITMIME";

/// The 5th-parameter check (CVE-2016-10033). The parameter is split on blanks as the
/// shell that runs `sendmail_path` will split it; every word must be one of the harmless
/// options real scripts pass and stock accepts:
///
/// - the envelope sender `-f` / `-r`, spelled `-faddr`, `-f addr`, `-f'addr'` or
///   `-f "addr"` (at most one): a plain addr-spec, no white space, quotes, shell
///   metacharacters or leading `-` ([`crate::address::check_mailbox`]);
/// - `-i`, `-oi` (a lone dot does not end the message), `-t` (recipients from the
///   headers), `-n` (no aliasing), `-v` (verbose), `-odb` / `-odi` / `-odq` (delivery
///   mode: background, interactive, queue);
/// - `-N dsn` (`never` or a comma list of `success`, `failure`, `delay`), `-V envid`
///   (an xtext word of letters, digits and `.+=@_-`), `-B 7BIT|8BITMIME`, each with its
///   value attached or as the next word.
///
/// Everything else is refused: `-X` (log file), `-C` (configuration), `-O` / `-o...`
/// (options), `-b...` (mode: daemon, test, initialise...), `-d` (debug), `-q`, and any
/// word that is not an option. An empty or blank string is nothing. Returns the
/// envelope sender, if one was given.
pub fn check_extra_params(params: &str) -> Result<Option<String>, Refusal> {
    let refuse = || Refusal::ForbiddenParameter {
        given: params.to_owned(),
    };
    let words = shell_words(params).ok_or_else(refuse)?;
    let mut sender: Option<String> = None;
    let mut i = 0;
    // The value of `-X value` / `-Xvalue`: attached, else the next word.
    let value = |w: &str, i: &mut usize| -> Option<String> {
        if w.len() > 2 {
            Some(w[2..].to_owned())
        } else {
            *i += 1;
            words.get(*i).map(|(v, _)| v.clone())
        }
    };
    while i < words.len() {
        let (w, quoted) = &words[i];
        if *quoted && !(w.starts_with("-f") || w.starts_with("-r")) {
            return Err(refuse());
        }
        match w.as_str() {
            "-i" | "-oi" | "-t" | "-n" | "-v" | "-odb" | "-odi" | "-odq" => {}
            _ if w.starts_with("-f") || w.starts_with("-r") => {
                let addr = value(w, &mut i).ok_or_else(refuse)?;
                if sender.is_some() || !is_plain_address(&addr) {
                    return Err(refuse());
                }
                sender = Some(addr);
            }
            _ if w.starts_with("-N") => {
                let dsn = value(w, &mut i).ok_or_else(refuse)?;
                let ok = dsn.eq_ignore_ascii_case("never")
                    || dsn.split(',').all(|d| {
                        ["success", "failure", "delay"]
                            .iter()
                            .any(|k| d.eq_ignore_ascii_case(k))
                    });
                if !ok {
                    return Err(refuse());
                }
            }
            _ if w.starts_with("-V") => {
                let id = value(w, &mut i).ok_or_else(refuse)?;
                let ok = !id.is_empty()
                    && id.len() <= 100
                    && !id.starts_with('-')
                    && id
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b".+=@_-".contains(&b));
                if !ok {
                    return Err(refuse());
                }
            }
            _ if w.starts_with("-B") => {
                let body = value(w, &mut i).ok_or_else(refuse)?;
                if !(body.eq_ignore_ascii_case("8BITMIME") || body.eq_ignore_ascii_case("7BIT")) {
                    return Err(refuse());
                }
            }
            _ => return Err(refuse()),
        }
        i += 1;
    }
    Ok(sender)
}

/// Splits the parameter into words on blanks (space, tab); a word may be or contain a
/// quoted part (`'...'` or `"..."`, no escapes), whose quotes are removed. Returns each
/// word and whether it had quotes; `None` for an unterminated quote or an empty quoted
/// word. A line break or other control character refuses the whole parameter (a
/// shell would read it as a new command).
fn shell_words(params: &str) -> Option<Vec<(String, bool)>> {
    let mut words = Vec::new();
    let mut word = String::new();
    let (mut in_word, mut quoted) = (false, false);
    let mut chars = params.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => {
                if in_word {
                    words.push((std::mem::take(&mut word), quoted));
                }
                (in_word, quoted) = (false, false);
            }
            '\'' | '"' => {
                let mut inner = String::new();
                loop {
                    match chars.next() {
                        None => return None,
                        Some(q) if q == c => break,
                        Some(x) => inner.push(x),
                    }
                }
                if inner.is_empty() {
                    return None;
                }
                word.push_str(&inner);
                (in_word, quoted) = (true, true);
            }
            c if c.is_control() => return None,
            c => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push((word, quoted));
    }
    Some(words)
}

/// One address and nothing else, by the rules every envelope address follows
/// ([`crate::address::check_mailbox`]).
fn is_plain_address(addr: &str) -> bool {
    crate::address::check_mailbox(addr).is_ok()
}

/// The checks that run on every message before anything is queued, in SPEC
/// order: the size limit, then the 5th parameter (`user_params`: the 5th
/// argument when PHP would use it, i.e. no `mail.force_extra_parameters`).
/// Returns the envelope sender the 5th parameter set, if any.
pub fn precheck(
    out: &Outgoing,
    limit: Bytes,
    user_params: Option<&[u8]>,
) -> Result<Option<String>, Refusal> {
    check_size(out.size(), limit)?;
    match user_params {
        None => Ok(None),
        Some(raw) => match std::str::from_utf8(raw) {
            Ok(text) => check_extra_params(text),
            Err(_) => Err(Refusal::ForbiddenParameter {
                given: String::from_utf8_lossy(raw).into_owned(),
            }),
        },
    }
}

/// The recipient addresses of a message: `$to` plus the `To`, `Cc` and `Bcc` header
/// lines (folded lines joined), as `sendmail -t` would find them. Display names,
/// comments and group syntax are dropped; what remains is each addr-spec, a quoted local
/// part kept whole (`"a, b"@example.com` is one address). Duplicates (ASCII case
/// ignored) are left out. Linear in the input: one pass, a hash set for duplicates.
pub fn recipients(to: &[u8], headers: &[u8]) -> Vec<String> {
    let mut found = Found::default();
    found.list(to);
    found.headers(headers);
    found.out
}

/// The envelope recipients of a raw message as it is piped to sendmail (the bytes
/// [`Outgoing::bytes_with_x_header`] builds, or what a client handed in): the `To`, `Cc`
/// and `Bcc` lines of its header block. This is the list that is delivered and counted:
/// whatever reached the header block (also through `error_log()`'s unsanitised `$to`)
/// is in it.
pub fn envelope_recipients(raw: &[u8]) -> Vec<String> {
    recipients(b"", header_block(raw))
}

/// The header block of a raw message: everything before the first empty line.
pub fn header_block(raw: &[u8]) -> &[u8] {
    let mut at = 0;
    while at < raw.len() {
        let end = raw[at..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(raw.len(), |p| at + p);
        let line = &raw[at..end];
        if line.is_empty() || line == b"\r" {
            return &raw[..at];
        }
        at = end + 1;
    }
    raw
}

/// The addresses found so far, and a case-insensitive index of them for de-duplication:
/// a keyed hash (std's random SipHash keys: no crafted collisions) of the lower-cased
/// address to its place in `out`; the rare other address with the same hash goes to
/// `more`. No copy of an address is made beyond the one returned.
#[derive(Default)]
struct Found {
    out: Vec<String>,
    seen: std::collections::HashMap<u64, u32, BuildNoHash>,
    more: Vec<(u64, u32)>,
    keys: std::collections::hash_map::RandomState,
}

/// The map's keys are already hashes.
#[derive(Default, Clone, Copy)]
struct BuildNoHash;

impl std::hash::BuildHasher for BuildNoHash {
    type Hasher = NoHash;
    fn build_hasher(&self) -> NoHash {
        NoHash(0)
    }
}

struct NoHash(u64);

impl std::hash::Hasher for NoHash {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, w: u64) {
        self.0 = w;
    }
}

impl Found {
    /// Adds `addr` unless an equal one (ASCII case ignored) is there already.
    fn add(&mut self, addr: &[u8]) {
        use std::hash::{BuildHasher, Hasher};
        let mut h = self.keys.build_hasher();
        for chunk in addr.chunks(8) {
            let mut w = [0u8; 8];
            for (d, s) in w.iter_mut().zip(chunk) {
                *d = s.to_ascii_lowercase();
            }
            h.write_u64(u64::from_le_bytes(w));
        }
        h.write_usize(addr.len());
        let hash = h.finish();
        let same = |i: u32, out: &[String]| out[i as usize].as_bytes().eq_ignore_ascii_case(addr);
        let next = self.out.len() as u32;
        match self.seen.entry(hash) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(next);
            }
            std::collections::hash_map::Entry::Occupied(o) => {
                if same(*o.get(), &self.out)
                    || self
                        .more
                        .iter()
                        .any(|&(mh, i)| mh == hash && same(i, &self.out))
                {
                    return;
                }
                self.more.push((hash, next));
            }
        }
        self.out.push(String::from_utf8_lossy(addr).into_owned());
    }

    /// The `To`, `Cc` and `Bcc` fields of a header block, continuation lines included.
    fn headers(&mut self, headers: &[u8]) {
        let mut in_field = false;
        let mut field: Vec<u8> = Vec::new();
        for line in headers.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.first().is_some_and(|b| matches!(b, b' ' | b'\t')) {
                if in_field {
                    field.push(b' ');
                    field.extend_from_slice(line);
                }
                continue;
            }
            if in_field {
                self.list(&field);
                field.clear();
            }
            in_field = false;
            if let Some(colon) = line.iter().position(|&b| b == b':') {
                let name = line[..colon].trim_ascii();
                if [&b"to"[..], b"cc", b"bcc"]
                    .iter()
                    .any(|n| name.eq_ignore_ascii_case(n))
                {
                    in_field = true;
                    field.extend_from_slice(&line[colon + 1..]);
                }
            }
        }
        if in_field {
            self.list(&field);
        }
    }

    /// One address list (RFC 5322 `address-list`, leniently): items split on `,` or `;`
    /// outside quotes, comments and angle brackets; a group's `name:` dropped; in an
    /// item, the `<...>` address, else the first word with an `@` (a quoted string is
    /// part of its word). One pass over the bytes; each address is a slice of `list`.
    fn list(&mut self, list: &[u8]) {
        let mut it = Item::default();
        let mut i = 0;
        while i < list.len() {
            let b = list[i];
            if it.comment > 0 {
                match b {
                    b'\\' => i += 1,
                    b'(' => it.comment += 1,
                    b')' => it.comment -= 1,
                    _ => {}
                }
                i += 1;
                continue;
            }
            if it.quoted {
                if b == b'\\' {
                    i += 1;
                } else if b == b'"' {
                    it.quoted = false;
                }
                i += 1;
                continue;
            }
            if let Some(start) = it.angle_open {
                if b == b'>' {
                    it.angle = Some((start, i));
                    it.angle_open = None;
                } else if b == b'"' {
                    it.quoted = true;
                }
                i += 1;
                continue;
            }
            match b {
                b'"' => {
                    it.word_start.get_or_insert(i);
                    it.quoted = true;
                }
                b'(' => {
                    it.end_word(list, i);
                    it.comment = 1;
                }
                b'<' => {
                    it.end_word(list, i);
                    it.angle_open = Some(i + 1);
                }
                b',' | b';' => {
                    it.end_word(list, i);
                    self.finish(list, &it);
                    it = Item::default();
                }
                b':' if it.angle.is_none() && it.addr.is_none() && !it.word_has_at(list, i) => {
                    // "Group: a@b, c@d;": the group's name is no address.
                    it = Item::default();
                }
                b' ' | b'\t' | b'\r' | b'\n' => it.end_word(list, i),
                _ => {
                    it.word_start.get_or_insert(i);
                }
            }
            i += 1;
        }
        it.end_word(list, list.len());
        if let Some(start) = it.angle_open {
            it.angle = Some((start, list.len()));
        }
        self.finish(list, &it);
    }

    fn finish(&mut self, list: &[u8], it: &Item) {
        let Some((start, end)) = it.angle.or(it.addr) else {
            return;
        };
        let addr = list[start..end].trim_ascii();
        if !addr.contains(&b'@') {
            return;
        }
        self.add(addr);
    }
}

/// One item of an address list while it is read: ranges into the list.
#[derive(Default)]
struct Item {
    /// Where the current word outside angle brackets began.
    word_start: Option<usize>,
    /// The first word with an `@`.
    addr: Option<(usize, usize)>,
    /// The `<...>` address (the last one wins).
    angle: Option<(usize, usize)>,
    angle_open: Option<usize>,
    quoted: bool,
    comment: u32,
}

impl Item {
    fn word_has_at(&self, list: &[u8], end: usize) -> bool {
        self.word_start
            .is_some_and(|s| list[s..end].contains(&b'@'))
    }

    fn end_word(&mut self, list: &[u8], end: usize) {
        if let Some(s) = self.word_start.take() {
            if self.addr.is_none() && list[s..end].contains(&b'@') {
                self.addr = Some((s, end));
            }
        }
    }
}

/// Stock sanitising of `$to` and `$subject` (`PHP_FUNCTION(mail)`): trailing C
/// white space is cut, then every control byte becomes a space, except a CRLF
/// followed by SP/HT, which is kept with the white space after it (folding).
pub fn sanitize_field(input: &[u8]) -> Vec<u8> {
    let mut end = input.len();
    while end > 0 && matches!(input[end - 1], b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r') {
        end -= 1;
    }
    let src = &input[..end];
    let mut out = Vec::with_capacity(src.len());
    let mut i = 0;
    while i < src.len() {
        let b = src[i];
        if b == b'\r'
            && src.get(i + 1) == Some(&b'\n')
            && matches!(src.get(i + 2), Some(b' ' | b'\t'))
        {
            out.extend_from_slice(b"\r\n");
            i += 2;
            while i < src.len() && matches!(src[i], b' ' | b'\t') {
                out.push(src[i]);
                i += 1;
            }
            continue;
        }
        out.push(if b < 0x20 || b == 0x7f { b' ' } else { b });
        i += 1;
    }
    out
}

/// Stock treatment of a string `$additional_headers`: right trim of
/// `" \t\n\r\v\0"` (not `\f`); empty means no header block.
pub fn trim_headers(headers: &[u8]) -> &[u8] {
    let mut end = headers.len();
    while end > 0 && matches!(headers[end - 1], b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0) {
        end -= 1;
    }
    &headers[..end]
}

/// Stock `php_mail_detect_multiple_crlf()`: whether the header block that
/// php_mail() would write (the `X-PHP-Originating-Script` line first, when
/// `x_header`) has leading, doubled or malformed line breaks. Stock mail() then
/// warns "Multiple or malformed newlines found in additional_header" and returns
/// false; mailguard lets that happen before anything is queued.
pub fn malformed_newlines(headers: &[u8], x_header: bool) -> bool {
    if headers.is_empty() && !x_header {
        return false;
    }
    // The X header's own bytes are "X-PHP-Originating-Script: uid:file" plus a
    // separator: only its first byte and the separator matter to the scan.
    let mut block = Vec::with_capacity(headers.len() + 3);
    if x_header {
        block.push(b'X');
        if !headers.is_empty() {
            block.extend_from_slice(b"\r\n");
        }
    }
    block.extend_from_slice(headers);
    let at = |i: usize| block.get(i).copied().unwrap_or(0);
    // C's `char` is signed here: bytes of 0x80 and up compare below 33.
    let first = at(0);
    if !(33..=126).contains(&first) || first == b':' {
        return true;
    }
    let mut i = 0;
    while i < block.len() {
        match at(i) {
            b'\r' => {
                let (n1, n2) = (at(i + 1), at(i + 2));
                if n1 == 0 || n1 == b'\r' || (n1 == b'\n' && matches!(n2, 0 | b'\n' | b'\r')) {
                    return true;
                }
                i += 2;
            }
            b'\n' => {
                if matches!(at(i + 1), 0 | b'\r' | b'\n') {
                    return true;
                }
                i += 2;
            }
            _ => i += 1,
        }
    }
    false
}

/// The pieces of one message after stock validation and sanitising.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    pub to: &'a [u8],
    pub subject: &'a [u8],
    pub message: &'a [u8],
    /// The user header block (already trimmed or built from the array); empty is none.
    pub headers: &'a [u8],
    /// `mail.mixed_lf_and_crlf`: the separators mail() writes are `\n` instead of `\r\n`.
    pub mixed_lf: bool,
}

impl Outgoing<'_> {
    fn sep(&self) -> &'static [u8] {
        if self.mixed_lf {
            b"\n"
        } else {
            b"\r\n"
        }
    }

    /// The bytes stock mail() writes to sendmail, without the optional
    /// `X-PHP-Originating-Script` header (which PHP adds itself, after the checks).
    pub fn bytes(&self) -> Vec<u8> {
        self.bytes_with_x_header(None)
    }

    /// The bytes stock mail() writes to sendmail; with `x_header` (the value of
    /// `X-PHP-Originating-Script`, e.g. `33:contact.php`) placed first in the header
    /// block, as php_mail() does when `mail.add_x_header` is on.
    pub fn bytes_with_x_header(&self, x_header: Option<&[u8]>) -> Vec<u8> {
        let sep = self.sep();
        let mut out = Vec::with_capacity(self.size() as usize + 64);
        for part in [
            b"To: " as &[u8],
            self.to,
            sep,
            b"Subject: ",
            self.subject,
            sep,
        ] {
            out.extend_from_slice(part);
        }
        if let Some(x) = x_header {
            out.extend_from_slice(b"X-PHP-Originating-Script: ");
            out.extend_from_slice(x);
            out.extend_from_slice(sep);
        }
        if !self.headers.is_empty() {
            out.extend_from_slice(self.headers);
            out.extend_from_slice(sep);
        }
        for part in [sep, self.message, sep] {
            out.extend_from_slice(part);
        }
        out
    }

    /// The length of [`Outgoing::bytes`], without building them: what the size limit counts.
    pub fn size(&self) -> u64 {
        let sep = self.sep().len();
        let headers = if self.headers.is_empty() {
            0
        } else {
            self.headers.len() + sep
        };
        (4 + self.to.len()
            + sep
            + 9
            + self.subject.len()
            + sep
            + headers
            + sep
            + self.message.len()
            + sep) as u64
    }
}

/// The header that says who sent a message (account, script, client IP), stamped where
/// the script cannot forge it.
pub const ORIGIN_HEADER: &str = "X-Mailguard-Origin";

/// The value of [`ORIGIN_HEADER`]: `account=NAME; script=PATH; client=IP`, each part
/// printable ASCII without `;` (anything else becomes `?`) and at most 200 characters,
/// parts that are unknown left out.
pub fn origin_header_value(account: &str, script: Option<&str>, client: Option<&str>) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .take(200)
            .map(|c| {
                if c.is_ascii_graphic() && c != ';' || c == ' ' {
                    c
                } else {
                    '?'
                }
            })
            .collect()
    };
    let mut v = format!("account={}", clean(account));
    if let Some(s) = script.filter(|s| !s.is_empty()) {
        v.push_str("; script=");
        v.push_str(&clean(s));
    }
    if let Some(c) = client.filter(|c| !c.is_empty()) {
        v.push_str("; client=");
        v.push_str(&clean(c));
    }
    v
}

/// `raw` with every [`ORIGIN_HEADER`] line of its header block removed (any case, with
/// its folded continuation lines) and one `X-Mailguard-Origin: value` put first, with the
/// line ending the message uses. The body is untouched.
pub fn stamp_origin(raw: &[u8], value: &str) -> Vec<u8> {
    let crlf = raw
        .iter()
        .position(|&b| b == b'\n')
        .is_none_or(|i| i > 0 && raw[i - 1] == b'\r');
    let sep: &[u8] = if crlf { b"\r\n" } else { b"\n" };
    // The header block ends at the first empty line.
    let mut end = raw.len();
    let mut at = 0;
    while at < raw.len() {
        let line_end = raw[at..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(raw.len(), |i| at + i + 1);
        let line = &raw[at..line_end];
        if line == b"\n" || line == b"\r\n" {
            end = at;
            break;
        }
        at = line_end;
    }
    let mut out = Vec::with_capacity(raw.len() + value.len() + 24);
    out.extend_from_slice(ORIGIN_HEADER.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.replace(['\r', '\n'], " ").as_bytes());
    out.extend_from_slice(sep);
    let mut at = 0;
    let mut dropping = false;
    while at < end {
        let line_end = raw[at..end]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(end, |i| at + i + 1);
        let line = &raw[at..line_end];
        let continuation = matches!(line.first(), Some(b' ' | b'\t'));
        if !continuation {
            let name = line.split(|&b| b == b':').next().unwrap_or_default();
            dropping = line.contains(&b':')
                && name
                    .trim_ascii()
                    .eq_ignore_ascii_case(ORIGIN_HEADER.as_bytes());
        }
        if !dropping {
            out.extend_from_slice(line);
        }
        at = line_end;
    }
    out.extend_from_slice(&raw[end..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_like_php() {
        assert_eq!(Bytes::parse("10M"), Ok(Bytes(10 * 1024 * 1024)));
        assert_eq!(Bytes::parse("512k"), Ok(Bytes(512 * 1024)));
        assert_eq!(Bytes::parse(" 1G "), Ok(Bytes(1 << 30)));
        assert_eq!(Bytes::parse("1000"), Ok(Bytes(1000)));
        for bad in [
            "",
            "M",
            "10MB",
            "-1",
            "1.5M",
            "ten",
            "99999999999999999999G",
        ] {
            assert!(Bytes::parse(bad).is_err(), "{bad:?} should be refused");
        }
        assert_eq!(Bytes(10 << 20).to_string(), "10M");
        assert_eq!(Bytes(1536 << 10).to_string(), "1536K");
        assert_eq!(Bytes(1000).to_string(), "1000");
        assert_eq!(Bytes(0).to_string(), "0");
    }

    #[test]
    fn size_limit_is_inclusive() {
        let limit = Bytes(100);
        assert!(check_size(100, limit).is_ok());
        let err = check_size(101, limit).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("101 bytes"), "{text}");
        assert!(text.contains("base64"), "{text}");
        let default = Refusal::TooLarge {
            size: 1,
            limit: DEFAULT_MAX_MESSAGE_SIZE,
        };
        assert!(default.to_string().contains("7.5 MB"), "{default}");
    }

    #[test]
    fn only_harmless_options_pass() {
        for (ok, addr) in [
            ("", None),
            ("   ", None),
            ("-fuser@example.com", Some("user@example.com")),
            ("-f user@example.com", Some("user@example.com")),
            ("-f'user@example.com'", Some("user@example.com")),
            (
                "-f \"bounce+x=y@example.com\"",
                Some("bounce+x=y@example.com"),
            ),
            (" -fa.b@sub.example.org ", Some("a.b@sub.example.org")),
            ("-r user@example.com", Some("user@example.com")),
            ("-n", None),
            ("-oi", None),
            ("-i -t", None),
            ("-v -odb", None),
            ("-odq", None),
            ("-odi -fuser@example.com -oi", Some("user@example.com")),
            ("-N success,failure -V ab.12+x -B 8BITMIME", None),
            ("-Nnever -Vid1 -B7BIT", None),
        ] {
            assert_eq!(
                check_extra_params(ok),
                Ok(addr.map(str::to_owned)),
                "{ok:?}"
            );
        }
        for bad in [
            "-X/var/www/shell.php",
            "-OQueueDirectory=/tmp -X/var/www/x.php",
            "-C/etc/passwd",
            "-be",
            "-bd",
            "-bi",
            "-oQ/tmp",
            "-oA/tmp/aliases",
            "-odd",
            "-d0-99.100",
            "-q",
            "-f",
            "-f ''",
            "-fuser@example.com -X/tmp/x",
            "-fa@b.c -fc@d.e",
            "-f'a b'@example.com",
            "-f\"a\\\" -X/tmp/x @example.com\"",
            "-f-X@example.com",
            "-fuser@example.com;id",
            "-fnoatsign",
            "user@example.com",
            "-f'user@example.com",
            "-N sometimes",
            "-N",
            "-V -X/tmp/x",
            "-V a;b",
            "-B 9BIT",
            "'-X/tmp/x'",
            "-i\n-X/tmp/x",
            "-t -- -X/tmp/x",
        ] {
            assert!(
                matches!(
                    check_extra_params(bad),
                    Err(Refusal::ForbiddenParameter { .. })
                ),
                "{bad:?} should be refused"
            );
        }
    }

    #[test]
    fn fields_are_sanitised_like_stock() {
        assert_eq!(sanitize_field(b"a@b,\n c@d"), b"a@b,  c@d");
        assert_eq!(
            sanitize_field(b"Sub\tj\x01e\nct\r\n folded\r\n\t\ttab\x7f  \n\t "),
            b"Sub j e ct\r\n folded\r\n\t\ttab ".to_vec()
        );
        assert_eq!(sanitize_field(b"x\r\n"), b"x");
        assert_eq!(sanitize_field(b"a\x0cb\x0c"), b"a b");
        assert_eq!(sanitize_field(b""), b"");
    }

    #[test]
    fn recipients_come_from_to_and_headers() {
        let r = recipients(
            b"Anna <anna@example.com>, bob@example.com",
            b"From: x@y\r\nCc: \"Doe, J\" <j@example.com>,\r\n k@example.com\r\nBCC: hidden@example.com\r\nReply-To: r@example.com",
        );
        assert_eq!(
            r,
            [
                "anna@example.com",
                "bob@example.com",
                "j@example.com",
                "k@example.com",
                "hidden@example.com"
            ]
        );
        assert_eq!(
            recipients(b"undisclosed-recipients:;", b""),
            Vec::<String>::new()
        );
        assert_eq!(recipients(b"a@b, A@B", b"To: a@b"), ["a@b"]);
    }

    #[test]
    fn quoted_local_parts_comments_and_groups() {
        let r = recipients(
            br#""a, b"@example.com, "John Doe" <"john doe"@example.com>, c@example.com (Carl, x@no.example)"#,
            b"Cc: Team: d@example.com, E <e@example.com>;, f@example.com\r\nBcc: \"q\\\" x\"@example.com",
        );
        assert_eq!(
            r,
            [
                "\"a, b\"@example.com",
                "\"john doe\"@example.com",
                "c@example.com",
                "d@example.com",
                "e@example.com",
                "f@example.com",
                "\"q\\\" x\"@example.com",
            ]
        );
    }

    #[test]
    fn injected_header_lines_are_envelope_recipients() {
        // error_log()'s $to is not sanitised: a line break in it makes a Bcc header that
        // sendmail -t reads, so it is an envelope recipient and counts.
        let m = Outgoing {
            to: b"admin@example.com\r\nBcc: x@evil.example, y@evil.example",
            subject: b"PHP error_log message",
            message: b"m",
            headers: b"Cc: c@example.com",
            mixed_lf: false,
        };
        assert_eq!(
            envelope_recipients(&m.bytes()),
            [
                "admin@example.com",
                "x@evil.example",
                "y@evil.example",
                "c@example.com"
            ]
        );
        assert_eq!(envelope_recipients(b"To: a@b\r\n\r\nTo: body@x"), ["a@b"]);
    }

    #[test]
    fn many_addresses_are_read_in_linear_time() {
        let list: Vec<String> = (0..200_000)
            .map(|i| format!("user{i}@example.com"))
            .collect();
        let to = list.join(", ");
        let start = std::time::Instant::now();
        let r = recipients(to.as_bytes(), b"");
        assert_eq!(r.len(), 200_000);
        // Quadratic de-duplication took 36 s here; linear is well under a second even
        // unoptimised on a busy machine.
        assert!(start.elapsed() < std::time::Duration::from_secs(20));
    }

    #[test]
    fn malformed_newlines_like_stock() {
        for ok in [
            &b"X-A: 1"[..],
            b"X-A: 1\r\nX-B: 2",
            b"X-A: a\r\n folded",
            b"HEAD1: a\rHEAD2: b",
            b"",
        ] {
            assert!(
                !malformed_newlines(ok, false),
                "{:?}",
                String::from_utf8_lossy(ok)
            );
        }
        for bad in [
            &b" X-Lead: 1"[..],
            b"X-A: 1\r\n\r\nX-B: 2",
            b"X-A: 1\n\nX",
            b":x",
            b"\xc3\xa9: x",
            b"X\r\r",
        ] {
            assert!(
                malformed_newlines(bad, false),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        // With the X header first, a leading space folds into it, as in stock.
        assert!(!malformed_newlines(b" X-A: 1", true));
        assert!(!malformed_newlines(b"", true));
    }

    #[test]
    fn headers_are_right_trimmed_only() {
        assert_eq!(trim_headers(b" X-A: 1\r\n\n\x00\x0b "), b" X-A: 1");
        assert_eq!(trim_headers(b"X-A: 1\x0c"), b"X-A: 1\x0c");
        assert_eq!(trim_headers(b"\r\n"), b"");
    }

    #[test]
    fn bytes_match_stock_layout() {
        let m = Outgoing {
            to: b"a@b",
            subject: b"s",
            message: b"m",
            headers: b"",
            mixed_lf: false,
        };
        assert_eq!(m.bytes(), b"To: a@b\r\nSubject: s\r\n\r\nm\r\n");
        assert_eq!(m.size(), m.bytes().len() as u64);
        let m = Outgoing {
            headers: b"From: f@x\r\nX-A: 1",
            mixed_lf: true,
            ..m
        };
        assert_eq!(
            m.bytes(),
            b"To: a@b\nSubject: s\nFrom: f@x\r\nX-A: 1\n\nm\n"
        );
        assert_eq!(m.size(), m.bytes().len() as u64);
    }

    #[test]
    fn origin_stamp_replaces_forged_headers_and_keeps_the_body() {
        let raw = b"To: a@x\r\nx-mailguard-origin: account=other\r\n  ; script=/fake\r\nSubject: s\r\nX-Mailguard-Origin : forged\r\n\r\nX-Mailguard-Origin: in the body\r\n";
        let v = origin_header_value("site1", Some("/var/www/a.php"), Some("203.0.113.9"));
        assert_eq!(
            v,
            "account=site1; script=/var/www/a.php; client=203.0.113.9"
        );
        let out = stamp_origin(raw, &v);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "X-Mailguard-Origin: account=site1; script=/var/www/a.php; client=203.0.113.9\r\n\
             To: a@x\r\nSubject: s\r\n\r\nX-Mailguard-Origin: in the body\r\n"
        );
        // LF-only messages stay LF; a value cannot inject a header.
        let out = stamp_origin(
            b"To: a\n\nbody\n",
            &origin_header_value("a;b\r\nBcc: x", None, None),
        );
        assert_eq!(
            out,
            b"X-Mailguard-Origin: account=a?b??Bcc: x\nTo: a\n\nbody\n"
        );
        // No header block at all: the stamp is the only header.
        assert_eq!(
            stamp_origin(b"", "account=a"),
            b"X-Mailguard-Origin: account=a\r\n"
        );
    }
}

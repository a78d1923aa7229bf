//! rules: the rule table. Every rule's id, group, weight and description live here and
//! nowhere else; detection (the other files of this module) says *which* rule fired, why,
//! and how strongly (a factor, 1.0 for the plain case), and [`super::Findings`] turns that
//! into points: `weight × factor`, then each group's total capped at its `max` — rspamd's
//! `symbols { weight; description }` and group `max_score`.

use std::fmt;
use std::str::FromStr;

use super::UnknownName;

/// Families of rules; a capped family cannot flag a message on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Group {
    Subject,
    Body,
    Mime,
    Links,
    Lexicon,
    Porn,
    Combination,
    Headers,
    Attachments,
    Hosting,
}

/// (group, id, max) — the group table.
const GROUPS: &[(Group, &str, Option<f32>, &str)] = &[
    (
        Group::Subject,
        "subject",
        Some(3.0),
        "how the subject line is written",
    ),
    (
        Group::Body,
        "body",
        Some(4.0),
        "what the reader sees: emptiness, layout, fonts, colours",
    ),
    (
        Group::Mime,
        "mime",
        Some(3.0),
        "MIME damage a mail client reads past",
    ),
    (
        Group::Links,
        "links",
        Some(5.0),
        "where the links go and what they show",
    ),
    (
        Group::Lexicon,
        "lexicon",
        Some(5.0),
        "pharma, prize-scam and phishing phrases",
    ),
    (Group::Porn, "porn", Some(5.0), "explicit phrases"),
    (
        Group::Combination,
        "combination",
        Some(4.0),
        "signals that are strong together",
    ),
    (
        Group::Headers,
        "headers",
        Some(5.0),
        "RFC 5322 faults the script made",
    ),
    (
        Group::Attachments,
        "attachments",
        None,
        "programs, macros, archives",
    ),
    (
        Group::Hosting,
        "hosting",
        None,
        "where the sending script lives and how it ran",
    ),
];

impl Group {
    pub const ALL: &'static [Group] = &[
        Group::Subject,
        Group::Body,
        Group::Mime,
        Group::Links,
        Group::Lexicon,
        Group::Porn,
        Group::Combination,
        Group::Headers,
        Group::Attachments,
        Group::Hosting,
    ];

    fn row(self) -> &'static (Group, &'static str, Option<f32>, &'static str) {
        GROUPS
            .iter()
            .find(|g| g.0 == self)
            .expect("every group has a row")
    }

    pub fn as_str(self) -> &'static str {
        self.row().1
    }

    /// The most this group adds to a score (`None`: uncapped, for dangerous payloads).
    pub fn cap(self) -> Option<f32> {
        self.row().2
    }

    pub fn description(self) -> &'static str {
        self.row().3
    }
}

macro_rules! rules {
    ($( $(#[$doc:meta])* $variant:ident = $id:literal, $group:ident, $weight:literal, $desc:literal; )*) => {
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

            /// The points of a plain hit; detection scales it by a factor for weaker or
            /// stronger variants (named in the description).
            pub fn weight(self) -> f32 {
                match self { $(Rule::$variant => $weight,)* }
            }

            /// What the rule means, for the CLI and the dashboard.
            pub fn description(self) -> &'static str {
                match self { $(Rule::$variant => $desc,)* }
            }
        }
    };
}

rules! {
    ShoutingSubject = "shouting-subject", Subject, 1.5,
        "≥ 70 % of ≥ 10 subject letters upper-case (after Re: and [tag]), several words";
    CapsWordsSubject = "caps-words-subject", Subject, 0.75,
        "three or more shouted words of four letters or more (brands and the sender's own name excepted)";
    MissingSubject = "missing-subject", Subject, 1.5,
        "no Subject header, or a blank one";
    SubjectOpener = "subject-opener", Subject, 1.0,
        "the subject opens with Hi, Hello, Hey, FREE, BUY, BUYING, Cheap, Dear friend (×1.5 in capitals)";
    EmptyBody = "empty-body", Body, 3.0,
        "no visible text, image or attachment (×2/3 when there is an attachment)";
    ImageOnly = "image-only", Body, 3.0,
        "an inline image over 1 MiB and fewer than 30 visible words (×1/3: HTML that is one big <img>, < 20 words)";
    WhitespaceAbuse = "whitespace-abuse", Body, 2.0,
        "over 70 % of the visible text is white space, or 30 blank lines / 200 spaces in a row (trailing blank lines not counted)";
    LargeFont = "large-font", Body, 1.5,
        "visible text at ≥ 48 px (×1/3 at ≥ 36 px); more when such text is > 30 % of it";
    LowContrastText = "low-contrast-text", Body, 3.0,
        "visible text in (nearly) the background colour: ≥ 30 characters and ≥ 10 % of the text (×1/3 below 10 %); text over a background image is not judged";
    MimeDamage = "mime-damage", Mime, 0.5,
        "MIME a mail client reads past: a missing closing boundary, bad base64 or quoted-printable characters (read anyway, as clients do)";
    UnreadablePart = "unreadable-part", Mime, 2.0,
        "a text part that cannot be read even by the raw fallback (unknown transfer encoding, binary junk)";
    RawIpLink = "raw-ip-link", Links, 2.0,
        "a link to a bare public IP in any spelling (×1.5 when its text names a site, in any range; ×1/4 for a private or local IP)";
    MalformedLink = "malformed-link", Links, 1.0,
        "a link no reader can follow: no scheme, unparsable, no real host (×2: a domain posing as user@, javascript:/data:; ×3: hidden direction characters)";
    HttpsTextHttpLink = "https-text-http-link", Links, 1.5,
        "link text shows https://… but the link is http://";
    LinkTextMismatch = "link-text-mismatch", Links, 2.5,
        "link text shows one site, the link goes to another (×1.4 when the shown site is a known brand or the target is a raw IP)";
    RedirectorLink = "redirector-link", Links, 1.5,
        "a link through a URL shortener or a free-hosting / redirector domain that hides where it leads";
    PharmaPhrases = "pharma-phrases", Lexicon, 3.0,
        "pharmacy-spam phrases (EN FR PL DE ES IT): three distinct in subject + body (×1/3 one, ×2/3 two, ×1.5 five or more; subject phrases count twice)";
    PrizeScamPhrases = "prize-scam-phrases", Lexicon, 3.0,
        "prize, lottery and easy-money phrases (EN FR PL DE ES IT): three distinct (×1/3 one, ×2/3 two, ×1.5 five or more; subject phrases count twice)";
    PhishingPhrases = "phishing-phrases", Lexicon, 3.0,
        "account-suspended / verify-now phrases (EN FR PL DE ES IT): three distinct (×1/3 one, ×2/3 two, ×1.5 five or more; subject phrases count twice)";
    PornPhrases = "porn-phrases", Porn, 2.5,
        "explicit phrases: one in the subject, three distinct in the body (×0.4 two)";
    CredentialLure = "credential-lure", Combination, 3.0,
        "credential words (sign in, password, verify…) together with a mismatched or raw-IP link";
    MalformedFrom = "malformed-from", Headers, 2.0,
        "a From that is not a valid mailbox list";
    BrokenHeader = "broken-header", Headers, 3.0,
        "a header-block line that is not a field (×2/3: a field name with illegal characters)";
    DuplicateHeader = "duplicate-header", Headers, 3.0,
        "a header allowed once appears twice (× how bad: From 1.0 … To 0.2, Date 0.1)";
    Header8bit = "header-8bit", Headers, 1.5,
        "raw 8-bit bytes in headers instead of RFC 2047 (×1/3 when valid UTF-8)";
    HeaderControlChar = "header-control-char", Headers, 1.5,
        "NUL, other control characters or a bare CR in the header block";
    LongHeaderLine = "long-header-line", Headers, 1.0,
        "a header line over 998 octets (RFC 5322 §2.1.1)";
    MalformedDate = "malformed-date", Headers, 1.5,
        "a Date header the script wrote that cannot be parsed (a missing one is fine)";
    MalformedMessageId = "malformed-message-id", Headers, 1.0,
        "a Message-ID the script wrote that is not <left@right> (a missing one is fine)";
    ExecutableAttachment = "executable-attachment", Attachments, 6.0,
        "a program or script attachment, by name, declared type or content";
    ExecutableInArchive = "executable-in-archive", Attachments, 6.0,
        "a program or script inside a ZIP attachment";
    MacroDocument = "macro-document", Attachments, 4.0,
        "a macro-enabled or macro-carrying Office document (×1.5 when the macro auto-runs)";
    DisguisedFilename = "disguised-filename", Attachments, 2.0,
        "invoice.pdf.exe, or invisible / right-to-left characters in a file name";
    EncryptedArchive = "encrypted-archive", Attachments, 2.0,
        "a password-protected archive";
    ArchiveInArchive = "archive-in-archive", Attachments, 2.0,
        "an archive inside an archive";
    OpaqueArchive = "opaque-archive", Attachments, 1.5,
        "an archive that cannot be looked into (RAR, 7z, CAB, or too many members)";
    EvalOrigin = "eval-origin", Hosting, 4.0,
        "mail() was called from eval()'d code";
    SuspiciousScriptPath = "suspicious-script-path", Hosting, 2.0,
        "the calling script lives in an uploads, cache, temporary or hidden folder";
    RandomScriptName = "random-script-name", Hosting, 1.0,
        "the calling script has a random-looking file name (x7f3k9q2.php)";
    ScriptModifiedRecently = "script-modified-recently", Hosting, 1.0,
        "the calling script was modified in the last 24 hours (as the caller saw it)";
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

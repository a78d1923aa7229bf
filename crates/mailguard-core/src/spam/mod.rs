//! spam: the outbound spam scorer. One named [`Rule`] per point of the hosting guide and
//! per signal hacked sites really send, each with a weight, a group cap and a reason;
//! [`score`] turns a raw message (as mail() pipes it to sendmail) plus the caller's
//! [`SpamContext`] into a [`Verdict`].
//!
//! Layout: `rules.rs` is the rule table (weights, groups, group caps, descriptions) and the
//! only place points are decided; `read.rs` (with `repair.rs`) reads the message as a mail
//! client renders it; one file per rule family detects (`subject`, `body`, `links`,
//! `lexicon`, `headers`, `attach`, `hosting`, and the combination rule here) and reports
//! *which* rule fired, why and how strongly; [`Findings`] scores.
//!
//! Definitions and weights follow `research/spam-heuristics.md` §1-3 and §6: no content rule
//! is worth more than about 3.5 and a group is capped, so at least two independent signals
//! are needed to flag ordinary mail; only dangerous payloads (programs, macros) and PHP
//! code run through `eval()` come close to the refuse threshold alone.

mod attach;
mod body;
mod headers;
mod hosting;
mod html;
mod lexicon;
mod links;
mod read;
mod repair;
mod rules;
mod style;
mod subject;
mod text;
mod zip;

use std::fmt;
use std::str::FromStr;

pub use read::PartReport;
pub use rules::{Group, Rule};

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
    /// The caller stat()ed `origin_file` and it was modified in the last 24 hours (a
    /// dropped or edited script). The scorer has no clock and reads no file: it is told.
    pub origin_modified_recently: bool,
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

/// One detection: the rule, how strongly (× its table weight), and why.
#[derive(Debug)]
pub(crate) struct Found {
    pub rule: Rule,
    pub factor: f32,
    pub reason: String,
}

impl Found {
    pub fn points(&self) -> f32 {
        self.rule.weight() * self.factor
    }
}

/// Detections as they are made: one per rule, the strongest kept. Detection code says
/// which rule and how strongly; the points come from the rule table in [`Findings::into_verdict`].
#[derive(Debug)]
pub(crate) struct Findings {
    hits: Vec<Found>,
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
    /// `rule` fired at `factor` × its weight (1.0: the plain case; the rule's description
    /// names its weaker and stronger variants).
    fn add(&mut self, rule: Rule, factor: f32, reason: String) {
        let factor = if factor.is_finite() {
            factor.max(0.0)
        } else {
            0.0
        };
        match self.hits.iter_mut().find(|h| h.rule == rule) {
            Some(h) if factor > h.factor => {
                h.factor = factor;
                h.reason = reason;
            }
            Some(_) => {}
            None => self.hits.push(Found {
                rule,
                factor,
                reason,
            }),
        }
    }

    /// `rule` fired, plain.
    fn hit(&mut self, rule: Rule, reason: String) {
        self.add(rule, 1.0, reason);
    }

    /// Points from the table: weight × factor, then each group capped at its max (the
    /// strongest hits keep their points; later ones share what the cap leaves).
    fn into_verdict(self, th: &Thresholds) -> Verdict {
        let mut hits: Vec<Hit> = self
            .hits
            .into_iter()
            .map(|h| Hit {
                points: (h.points() * 100.0).round() / 100.0,
                rule: h.rule,
                reason: h.reason,
            })
            .collect();
        hits.sort_by_key(|h| h.rule);
        for &g in Group::ALL {
            let Some(cap) = g.cap() else { continue };
            let mut left = cap;
            let mut idx: Vec<usize> = (0..hits.len())
                .filter(|&i| hits[i].rule.group() == g)
                .collect();
            idx.sort_by(|&a, &b| hits[b].points.total_cmp(&hits[a].points));
            for i in idx {
                let h = &mut hits[i];
                if h.points > left {
                    h.reason
                        .push_str(&format!(" ({} group capped at {cap:.1})", g.as_str()));
                    h.points = left;
                }
                left -= h.points;
            }
        }
        // f32's sum starts at -0.0; `+ 0.0` keeps an empty verdict at 0.0.
        let score = (hits.iter().map(|h| h.points).sum::<f32>() * 100.0).round() / 100.0 + 0.0;
        let level = if score >= th.refuse {
            Level::Refuse
        } else if score >= th.suspicious {
            Level::Suspicious
        } else {
            Level::Ham
        };
        Verdict { score, level, hits }
    }
}

/// How the message was read: for `mailguard check --explain`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Explanation {
    /// Repairs made before parsing and damage read past (date zones, missing boundaries).
    pub notes: Vec<String>,
    /// Every part, in tree order: what it is, how it was decoded, who read it.
    pub parts: Vec<PartReport>,
}

/// Scores one message: `raw_message` is the full RFC 5322 message (CRLF or LF headers, a
/// blank line, the body) exactly as mail() hands it to sendmail.
pub fn score(raw_message: &[u8], ctx: &SpamContext, th: &Thresholds) -> Verdict {
    run(raw_message, ctx, th).0
}

/// [`score`], and how each part was read and which rule groups read it.
pub fn explain(raw_message: &[u8], ctx: &SpamContext, th: &Thresholds) -> (Verdict, Explanation) {
    run(raw_message, ctx, th)
}

fn run(raw_message: &[u8], ctx: &SpamContext, th: &Thresholds) -> (Verdict, Explanation) {
    let mut f = Findings::default();
    let raw_headers = headers::scan(raw_message);
    headers::rules(&raw_headers, &mut f);
    hosting::rules(ctx, &mut f);

    let reading = read::read(raw_message, &mut f);
    let has_subject_field = raw_headers.fields.iter().any(|h| h.is("Subject"));
    let from_value = raw_headers
        .fields
        .iter()
        .find(|h| h.is("From"))
        .map(|h| String::from_utf8_lossy(&h.value).into_owned())
        .unwrap_or_default();
    let from_name = from_value.split('<').next().unwrap_or_default();
    let own_site = from_value
        .rsplit('@')
        .next()
        .filter(|_| from_value.contains('@'))
        .map(|d| links::site_of(d.trim_end_matches(['>', ' ', '"'])));
    subject::rules(
        reading.subject.as_deref(),
        has_subject_field,
        from_name,
        &mut f,
    );
    if let Some(date) = raw_headers.fields.iter().find(|h| h.is("Date")) {
        if reading.date_ok != Some(true) {
            f.hit(
                Rule::MalformedDate,
                format!(
                    "Date header cannot be parsed: '{}'",
                    headers::shorten(&date.value, 50)
                ),
            );
        }
    }
    let b = &reading.body;
    read::rules(b, &mut f);
    body::rules(b, &mut f);
    links::raw_ip(&b.links, &b.urls, &mut f);
    let text_urls: Vec<String> = b
        .urls
        .iter()
        .filter(|u| u.contains("://"))
        .cloned()
        .collect();
    links::malformed(&b.links, &text_urls, &mut f);
    links::https_over_http(&b.links, &mut f);
    let mismatched = links::mismatch(&b.links, own_site.as_deref(), &mut f);
    links::redirectors(&b.links, &b.urls, &mut f);

    let mut subj = String::new();
    text::normalise_words(reading.subject.as_deref().unwrap_or_default(), &mut subj);
    let in_subject = lexicon::find(&subj);
    let in_body = lexicon::find(&b.words_normalised);
    lexicon::rules(&in_subject, &in_body, &mut f);
    porn_rules(&subj, &b.words_normalised, &mut f);

    // Combination: credential words with a link that lies about where it goes.
    let lure: Vec<&str> = in_subject
        .lure
        .iter()
        .chain(&in_body.lure)
        .chain(&in_subject.phishing)
        .chain(&in_body.phishing)
        .copied()
        .collect();
    let ip = links::deceptive_ip(&b.links);
    if !lure.is_empty() && (mismatched || ip) {
        f.hit(
            Rule::CredentialLure,
            format!(
                "credential words ({}) next to a link that {}",
                lure.iter().take(3).copied().collect::<Vec<_>>().join(", "),
                if mismatched {
                    "shows one site and goes to another"
                } else {
                    "goes to a bare IP"
                }
            ),
        );
    }
    let explanation = Explanation {
        notes: reading
            .notes
            .iter()
            .chain(&b.damage)
            .chain(&b.unreadable)
            .cloned()
            .collect(),
        parts: reading.parts,
    };
    (f.into_verdict(th), explanation)
}

fn porn_rules(subj: &str, body: &str, f: &mut Findings) {
    let in_subject = text::porn_terms(subj);
    let in_body = text::porn_terms(body);
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
            points / Rule::PornPhrases.weight(),
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
        f.hit(Rule::BrokenHeader, "a".into());
        f.hit(Rule::DuplicateHeader, "b".into());
        f.hit(Rule::MalformedFrom, "c".into());
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
                from_eval: true,
                ..SpamContext::default()
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
    fn the_table_drives_the_points() {
        for &r in Rule::ALL {
            let mut f = Findings::default();
            f.hit(r, "x".into());
            let v = f.into_verdict(&Thresholds::default());
            let expect = match r.group().cap() {
                Some(cap) => r.weight().min(cap),
                None => r.weight(),
            };
            assert_eq!(v.score, expect, "{r}");
            assert!(!r.description().is_empty());
        }
    }

    #[test]
    fn hosting_paths() {
        let hit = |p: &str| {
            let mut f = Findings::default();
            hosting::rules(
                &SpamContext {
                    origin_file: Some(p.into()),
                    ..SpamContext::default()
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

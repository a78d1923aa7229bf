//! text: the rules that read words: the subject, plain-text layout, and explicit phrases.

use std::sync::OnceLock;

use aho_corasick::AhoCorasick;

/// Strips reply/forward prefixes and a leading `[Site Name]` tag, as SpamAssassin and the
/// research note do before any subject test.
pub(super) fn core_subject(subject: &str) -> &str {
    let mut s = subject.trim();
    for _ in 0..8 {
        let before = s;
        if let Some(rest) = s.strip_prefix('[') {
            if let Some(end) = rest.find(']').filter(|&e| e <= 80) {
                s = rest[end + 1..].trim_start();
            }
        }
        if let Some(colon) = s.find(':').filter(|&c| c <= 8) {
            let word = s[..colon].trim();
            const PREFIXES: &[&str] = &[
                "re", "fw", "fwd", "aw", "wg", "sv", "vs", "vb", "vl", "tr", "odp", "pd", "antwort",
            ];
            if PREFIXES.iter().any(|p| word.eq_ignore_ascii_case(p)) {
                s = s[colon + 1..].trim_start();
            }
        }
        if s == before {
            break;
        }
    }
    s
}

fn is_latin(c: char) -> bool {
    c.is_ascii_alphabetic()
        || ('\u{c0}'..='\u{24f}').contains(&c)
        || ('\u{1e00}'..='\u{1eff}').contains(&c)
}

/// `shouting-subject`: at least 70 % of ≥ 10 letters upper-case, more than one word, Latin
/// script only (a CJK subject is "no decision"). Returns (upper, letters).
pub(super) fn shouting(subject: &str) -> Option<(usize, usize)> {
    let s = core_subject(subject);
    // Control characters mean an undecoded charset (ISO-2022 escapes): no decision.
    if !s.contains(char::is_whitespace) || s.contains(char::is_control) {
        return None;
    }
    let mut upper = 0usize;
    let mut letters = 0usize;
    for c in s.chars().filter(|c| c.is_alphabetic()) {
        if !is_latin(c) {
            return None;
        }
        letters += 1;
        if c.is_uppercase() {
            upper += 1;
        }
    }
    (letters >= 10 && upper * 10 >= letters * 7).then_some((upper, letters))
}

// Upper-case words that are ordinary in transactional subjects.
const ACRONYMS: &[&str] = &[
    "ASAP", "HTML", "HTTP", "HTTPS", "NASA", "UEFA", "FIFA", "IBAN", "SEPA", "GDPR", "RODO",
    "NOTE", "INFO", "FYI", "JSON", "NIP", "REGON", "PESEL", "VAT", "FAQ", "HTML", "ATTN", "RSVP",
    "PDF", "CSV", "XML", "UTC", "CEST", "GMT",
];

// Brands written in capitals by their owners: a subject naming them is not shouting.
const BRANDS: &[&str] = &[
    "IKEA",
    "LEGO",
    "NIKE",
    "ASUS",
    "SONY",
    "BOSCH",
    "ADIDAS",
    "PUMA",
    "FIAT",
    "VOLVO",
    "AUDI",
    "TESLA",
    "SAMSUNG",
    "INPOST",
    "ORLEN",
    "ZARA",
    "MANGO",
    "LIDL",
    "ALDI",
    "ROSSMANN",
    "HEBE",
    "DECATHLON",
    "ALLEGRO",
    "BLIK",
    "PAYU",
    "PKO",
    "MBANK",
    "SEPHORA",
    "GUESS",
    "LACOSTE",
    "DHL",
    "UPS",
    "FEDEX",
    "GLS",
    "DPD",
    "TNT",
    "NASDAQ",
    "HBO",
    "BMW",
    "KIA",
    "SEAT",
    "SKODA",
    "DACIA",
    "OPEL",
    "MINI",
    "CASIO",
    "CANON",
    "NIKON",
    "LENOVO",
    "ACER",
    "DELL",
    "INTEL",
    "NVIDIA",
    "XIAOMI",
    "HUAWEI",
    "OPPO",
    "REALME",
    "HONOR",
    "PHILIPS",
    "BRAUN",
    "DYSON",
    "TEFAL",
    "SMEG",
    "MIELE",
    "AEG",
    "BEKO",
    "GORENJE",
    "ELECTROLUX",
    "WHIRLPOOL",
    "DELONGHI",
    "LEVIS",
    "CROCS",
    "VANS",
    "CONVERSE",
    "REEBOK",
    "ASICS",
    "FILA",
    "KAPPA",
    "UMBRO",
    "UNIQLO",
    "PRIMARK",
    "RESERVED",
    "CROPP",
    "SINSAY",
    "MOHITO",
    "CCC",
    "EOBUWIE",
    "MODIVO",
    "ZALANDO",
    "EMPIK",
    "MEDIA",
    "EXPERT",
    "EURO",
    "RTV",
    "AGD",
    "OBI",
    "LEROY",
    "MERLIN",
    "CASTORAMA",
    "JYSK",
    "KIK",
    "PEPCO",
    "ACTION",
    "TEDI",
    "NETTO",
    "KAUFLAND",
    "AUCHAN",
    "CARREFOUR",
    "TESCO",
    "SPAR",
    "EDEKA",
    "REWE",
    "PENNY",
    "FNAC",
    "DARTY",
    "BOULANGER",
    "MEDIAMARKT",
    "SATURN",
    "OTTO",
    "TCHIBO",
    "WORDPRESS",
    "WOOCOMMERCE",
    "PRESTASHOP",
    "SHOPIFY",
    "MAGENTO",
    "JOOMLA",
    "DRUPAL",
];

/// `caps-words-subject`: three or more shouted words of four or more letters.
pub(super) fn caps_words(subject: &str) -> Vec<&str> {
    core_subject(subject)
        .split(|c: char| !c.is_alphabetic())
        .filter(|w| {
            w.chars().count() >= 4
                && w.chars().all(|c| c.is_uppercase() && is_latin(c))
                && !ACRONYMS.contains(w)
                && !BRANDS.contains(w)
        })
        .collect()
}

/// `subject-opener`: the subject opens with a greeting or a sales word.
/// Returns the opener and whether it was written in capitals.
pub(super) fn opener(subject: &str) -> Option<(&'static str, bool)> {
    const OPENERS: &[&str] = &[
        "dear friend",
        "hi",
        "hello",
        "hey",
        "free",
        "buying",
        "buy",
        "cheap",
    ];
    let s = core_subject(subject);
    let lower = s.to_lowercase();
    for &o in OPENERS {
        if let Some(rest) = lower.strip_prefix(o) {
            if rest.chars().next().is_none_or(|c| !c.is_alphanumeric()) {
                let shouted = s[..o.len()].chars().any(char::is_uppercase)
                    && !s[..o.len()].chars().any(char::is_lowercase);
                return Some((o, shouted));
            }
        }
    }
    None
}

/// Layout of a text/plain part as its reader sees it.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct PlainLayout {
    pub visible: usize,
    pub white: usize,
    pub words: usize,
    pub max_blank_lines: usize,
    pub max_space_run: usize,
}

pub(super) fn plain_layout(text: &str) -> PlainLayout {
    // Blank lines and spaces after the last word (or before the first) are not layout a
    // reader sees: scripts end messages with "\n\n\n" all the time.
    let text =
        text.trim_matches(|c: char| c.is_whitespace() || matches!(c, '\u{200b}' | '\u{feff}'));
    let mut l = PlainLayout::default();
    let mut in_word = false;
    let mut line_has_text = false;
    let mut blank_run = 0usize;
    let mut space_run = 0usize;
    for c in text.chars() {
        match c {
            '\r' => {} // CRLF is one line break.
            '\n' => {
                l.white += 1;
                in_word = false;
                space_run = 0;
                if line_has_text {
                    blank_run = 0;
                } else {
                    blank_run += 1;
                    l.max_blank_lines = l.max_blank_lines.max(blank_run);
                }
                line_has_text = false;
            }
            '\u{200b}' | '\u{200c}' | '\u{200d}' | '\u{feff}' => {}
            c if c.is_whitespace() => {
                l.white += 1;
                in_word = false;
                space_run += 1;
                l.max_space_run = l.max_space_run.max(space_run);
            }
            _ => {
                l.visible += 1;
                space_run = 0;
                line_has_text = true;
                if !in_word {
                    in_word = true;
                    l.words += 1;
                }
            }
        }
    }
    l
}

// Explicit phrases only: single ambiguous words ("sex", "xxx", "dick") hit ordinary mail.
const PORN_PHRASES: &[&str] = &[
    "free porn",
    "porn video",
    "porn videos",
    "porn star",
    "porn stars",
    "xxx video",
    "xxx videos",
    "xxx pics",
    "xxx movies",
    "hardcore porn",
    "teen sex",
    "teen porn",
    "live sex",
    "sex cam",
    "sex cams",
    "sex chat",
    "sex video",
    "sex videos",
    "sex tonight",
    "anal sex",
    "lesbian sex",
    "oral sex",
    "nude pics",
    "nude photos",
    "nude girls",
    "naked girls",
    "naked teens",
    "hot naked",
    "see me naked",
    "horny",
    "horny girls",
    "horny housewives",
    "blowjob",
    "blowjobs",
    "cumshot",
    "cumshots",
    "cum shot",
    "cum shots",
    "milf",
    "milfs",
    "pussy pics",
    "wet pussy",
    "fuck buddy",
    "fuckbuddy",
    "adult dating",
    "hot singles",
    "webcam girls",
    "erotic video",
    "erotic videos",
    "sexy singles",
    "hook up tonight",
    "penis enlargement",
    "bigger penis",
];

fn porn_automaton() -> &'static AhoCorasick {
    static AC: OnceLock<AhoCorasick> = OnceLock::new();
    AC.get_or_init(|| {
        let padded: Vec<String> = PORN_PHRASES.iter().map(|p| format!(" {p} ")).collect();
        AhoCorasick::new(padded).expect("static phrase list builds")
    })
}

/// Folds case, leetspeak and punctuation so `Fr33 P0RN!!` reads `free porn`.
pub(super) fn normalise_words(text: &str, out: &mut String) {
    out.push(' ');
    let mut last_space = true;
    for c in text.chars() {
        let c = match c {
            '0' => 'o',
            '1' => 'i',
            '3' => 'e',
            '4' | '@' => 'a',
            '5' | '$' => 's',
            '7' => 't',
            c => c,
        };
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
            last_space = false;
        } else if !c.is_ascii() && c.is_alphanumeric() {
            for l in c.to_lowercase() {
                match fold(l) {
                    Some(f) => out.push_str(f),
                    None => out.push(l),
                }
            }
            last_space = false;
        } else if !last_space {
            out.push(' ');
            last_space = true;
        }
    }
    if !last_space {
        out.push(' ');
    }
}

/// Latin letters with diacritics as their base letters, so `zablokowane` matches
/// `zablokowane` whether or not the spammer typed the accents.
fn fold(c: char) -> Option<&'static str> {
    Some(match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ą' | 'ā' => "a",
        'ç' | 'ć' | 'č' => "c",
        'è' | 'é' | 'ê' | 'ë' | 'ę' | 'ě' | 'ē' => "e",
        'ì' | 'í' | 'î' | 'ï' => "i",
        'ł' => "l",
        'ñ' | 'ń' | 'ň' => "n",
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' => "o",
        'ś' | 'š' => "s",
        'ß' => "ss",
        'ù' | 'ú' | 'û' | 'ü' | 'ů' => "u",
        'ý' | 'ÿ' => "y",
        'ź' | 'ż' | 'ž' => "z",
        'œ' => "oe",
        'æ' => "ae",
        _ => return None,
    })
}

/// Distinct explicit phrases found in already normalised text.
pub(super) fn porn_terms(normalised: &str) -> Vec<&'static str> {
    let mut seen = [false; PORN_PHRASES.len()];
    let mut found = Vec::new();
    for m in porn_automaton().find_overlapping_iter(normalised) {
        let k = m.pattern().as_usize();
        if !seen[k] {
            seen[k] = true;
            found.push(PORN_PHRASES[k]);
        }
    }
    found
}

/// `http://`, `https://` and `ftp://` URLs written out in text (never bare IPs: the
/// WordPress reset mail prints the requester's IP on purpose).
pub(super) fn text_urls(text: &str, out: &mut Vec<String>, max: usize) {
    let lower = text.to_ascii_lowercase();
    let mut from = 0;
    while out.len() < max {
        let Some(p) = lower[from..].find("://") else {
            break;
        };
        let at = from + p;
        let scheme_start = lower[..at]
            .char_indices()
            .rev()
            .find(|(_, c)| !c.is_ascii_alphabetic())
            .map_or(0, |(q, c)| q + c.len_utf8());
        let scheme = &lower[scheme_start..at];
        let end = text[at..]
            .find(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"' | '\'' | '`'))
            .map_or(text.len(), |q| at + q);
        if matches!(scheme, "http" | "https" | "ftp") {
            let url = text[scheme_start..end]
                .trim_end_matches(['.', ',', ';', ':', '!', '?', ')', ']', '}']);
            out.push(url.chars().take(2048).collect());
        }
        from = end.max(at + 3);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_prefixes_strip() {
        assert_eq!(core_subject("Re: [ACME Shop] Fwd: Hello"), "Hello");
        assert_eq!(core_subject("Order #123"), "Order #123");
    }

    #[test]
    fn shouting_is_a_ratio_not_three_capitals() {
        assert!(shouting("[ACME] Password Reset").is_none());
        assert!(shouting("Your PDF invoice from ACME LLC").is_none());
        assert!(shouting("CLAIM YOUR PRIZE NOW").is_some());
        assert!(shouting("WINNER").is_none()); // one word
        assert!(shouting("注文の確認 ORDER").is_none());
        assert!(caps_words("Your IKEA and LEGO order from BOSCH").is_empty());
    }

    #[test]
    fn openers() {
        assert_eq!(opener("FREE iPhone for you"), Some(("free", true)));
        assert_eq!(opener("Hi Jane, your order shipped"), Some(("hi", false)));
        assert_eq!(opener("Highlights of the week"), None);
        assert_eq!(opener("Re: buying your domain"), Some(("buying", false)));
    }

    #[test]
    fn porn_needs_phrases() {
        let mut n = String::new();
        normalise_words("Fr33 P0RN and LIVE-SEX cams; sex education", &mut n);
        assert_eq!(porn_terms(&n), vec!["free porn", "live sex", "sex cams"]);
        let mut m = String::new();
        normalise_words("Sex, lies and videotape; Dick Smith, cum laude", &mut m);
        assert!(porn_terms(&m).is_empty());
    }

    #[test]
    fn urls_from_text() {
        let mut v = Vec::new();
        text_urls(
            "Go to <https://example.com/wp-login.php?a=1&b=2> or http://0x7f.1/x. IP 1.2.3.4",
            &mut v,
            10,
        );
        assert_eq!(
            v,
            vec![
                "https://example.com/wp-login.php?a=1&b=2",
                "http://0x7f.1/x"
            ]
        );
    }
}

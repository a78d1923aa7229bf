//! lexicon: pharma, prize-scam and phishing phrases in the hosting guide's six languages,
//! as data (`lexicon.txt`), matched in one Aho-Corasick pass over the folded subject and
//! body text. Also the credential words the `credential-lure` combination reads.

use std::sync::OnceLock;

use aho_corasick::AhoCorasick;

use super::{Findings, Rule};

const DATA: &str = include_str!("lexicon.txt");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Family {
    Pharma,
    Prize,
    Phishing,
    Lure,
}

struct Lexicon {
    ac: AhoCorasick,
    phrases: Vec<(Family, &'static str, String)>,
}

fn lexicon() -> &'static Lexicon {
    static L: OnceLock<Lexicon> = OnceLock::new();
    L.get_or_init(|| {
        let mut phrases = Vec::new();
        for line in DATA.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut it = line.splitn(3, ' ');
            let (Some(fam), Some(lang), Some(phrase)) = (it.next(), it.next(), it.next()) else {
                continue;
            };
            let fam = match fam {
                "pharma" => Family::Pharma,
                "prize" => Family::Prize,
                "phishing" => Family::Phishing,
                "lure" => Family::Lure,
                _ => continue,
            };
            // Fold the phrase exactly as the text is folded.
            let mut norm = String::new();
            super::text::normalise_words(phrase, &mut norm);
            phrases.push((fam, lang, norm));
        }
        let ac =
            AhoCorasick::new(phrases.iter().map(|p| p.2.as_str())).expect("static lexicon builds");
        Lexicon { ac, phrases }
    })
}

/// Distinct phrases of each family found in folded text (`text::normalise_words`).
#[derive(Debug, Default)]
pub(super) struct Found {
    pub pharma: Vec<&'static str>,
    pub prize: Vec<&'static str>,
    pub phishing: Vec<&'static str>,
    pub lure: Vec<&'static str>,
}

pub(super) fn find(normalised: &str) -> Found {
    let l = lexicon();
    let mut seen = vec![false; l.phrases.len()];
    let mut out = Found::default();
    for m in l.ac.find_overlapping_iter(normalised) {
        let k = m.pattern().as_usize();
        if seen[k] {
            continue;
        }
        seen[k] = true;
        let (fam, _, phrase) = &l.phrases[k];
        let p: &'static str = phrase.trim();
        match fam {
            Family::Pharma => out.pharma.push(p),
            Family::Prize => out.prize.push(p),
            Family::Phishing => out.phishing.push(p),
            Family::Lure => out.lure.push(p),
        }
    }
    out
}

/// The three phrase rules. A phrase in the subject counts twice (it is what the
/// recipient reads first); five or more (subject counted twice) score ×1.5.
pub(super) fn rules(subject: &Found, body: &Found, f: &mut Findings) {
    for (rule, what, s, b) in [
        (
            Rule::PharmaPhrases,
            "pharmacy-spam",
            &subject.pharma,
            &body.pharma,
        ),
        (
            Rule::PrizeScamPhrases,
            "prize / easy-money",
            &subject.prize,
            &body.prize,
        ),
        (
            Rule::PhishingPhrases,
            "account-phishing",
            &subject.phishing,
            &body.phishing,
        ),
    ] {
        let mut terms: Vec<&str> = s.clone();
        terms.extend(b.iter().filter(|t| !s.contains(t)));
        let weight = terms.len() + s.len();
        if weight == 0 {
            continue;
        }
        // Many distinct phrases of one family leave no doubt (a pharma list).
        let factor = match weight {
            1 => 1.0 / 3.0,
            2 => 2.0 / 3.0,
            3 | 4 => 1.0,
            _ => 1.5,
        };
        f.add(
            rule,
            factor,
            format!(
                "{what} phrases ({} in the subject, {} distinct in all): {}",
                s.len(),
                terms.len(),
                terms.iter().take(5).copied().collect::<Vec<_>>().join(", ")
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        let mut n = String::new();
        super::super::text::normalise_words(s, &mut n);
        n
    }

    #[test]
    fn six_languages_and_folding() {
        let f = find(&norm("Cheap V1AGRA & Cialis — NO PRESCRIPTION needed!"));
        assert_eq!(f.pharma, vec!["viagra", "cialis", "no prescription"]);
        let f = find(&norm(
            "Twoje konto zostało zablokowane. Zaloguj się i potwierdź tożsamość",
        ));
        assert_eq!(
            f.phishing,
            vec!["konto zostalo zablokowane", "potwierdz tozsamosc"]
        );
        assert_eq!(f.lure, vec!["zaloguj"]);
        let f = find(&norm(
            "Ihr Konto wurde gesperrt. Bestätigen Sie Ihre Identität",
        ));
        assert_eq!(f.phishing.len(), 2, "{:?}", f.phishing);
        let f = find(&norm("Félicitations vous avez gagné un iPhone gratuit"));
        assert!(f.prize.contains(&"vous avez gagne"));
        let f = find(&norm("¡Has ganado! Reclama tu premio"));
        assert_eq!(f.prize, vec!["has ganado", "reclama tu premio"]);
        let f = find(&norm("Il tuo account è stato sospeso"));
        assert_eq!(f.phishing, vec!["il tuo account e stato sospeso"]);
        // Honest mail: nothing.
        let f = find(&norm(
            "Your order #4821 has shipped. Sign in to your account to track it. Free shipping over 50 EUR.",
        ));
        assert!(f.pharma.is_empty() && f.prize.is_empty() && f.phishing.is_empty());
    }
}

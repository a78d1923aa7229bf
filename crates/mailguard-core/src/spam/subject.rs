//! subject: shouting, shouted words, a missing subject, greeting and sales openers.

use super::{text, Findings, Rule};

/// `from_name`: the From display name; its words are the sender's own name and never
/// count as shouting (`ACME SHOP` writing about an `ACME SHOP` order).
pub(super) fn rules(subject: Option<&str>, has_field: bool, from_name: &str, f: &mut Findings) {
    let s = subject.unwrap_or_default();
    if s.trim().is_empty() {
        let why = if has_field {
            "the subject is empty"
        } else {
            "there is no Subject header"
        };
        f.hit(Rule::MissingSubject, why.to_string());
        return;
    }
    let quoted: String = s.chars().take(60).collect();
    if let Some((upper, letters)) = text::shouting(s) {
        f.hit(
            Rule::ShoutingSubject,
            format!("subject is shouting: {upper} of {letters} letters upper-case in '{quoted}'"),
        );
    } else {
        let own: Vec<String> = from_name
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| w.len() >= 2)
            .map(str::to_uppercase)
            .collect();
        let words: Vec<&str> = text::caps_words(s)
            .into_iter()
            .filter(|w| !own.iter().any(|o| o == w))
            .collect();
        if words.len() >= 3 {
            f.hit(
                Rule::CapsWordsSubject,
                format!(
                    "subject has {} shouted words ({})",
                    words.len(),
                    words.join(", ")
                ),
            );
        }
    }
    if let Some((word, shouted)) = text::opener(s) {
        let capitals = shouted && matches!(word, "free" | "buy" | "buying");
        f.add(
            Rule::SubjectOpener,
            if capitals { 1.5 } else { 1.0 },
            format!(
                "subject opens with '{word}'{}: '{quoted}'",
                if capitals { " in capitals" } else { "" }
            ),
        );
    }
}

//! hosting: where the script that called mail() lives and how it ran. These come from
//! the caller ([`SpamContext`]), never from the message, which the script controls.

use super::{headers, Findings, Rule, SpamContext};

pub(super) fn rules(ctx: &SpamContext, f: &mut Findings) {
    let file = ctx.origin_file.as_deref().unwrap_or_default();
    let lower = file.to_ascii_lowercase().replace('\\', "/");
    if ctx.from_eval
        || lower.contains("eval()'d code")
        || lower.contains("runtime-created function")
    {
        f.hit(
            Rule::EvalOrigin,
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
    let shown = headers::shorten(file.as_bytes(), 100);
    if ctx.origin_modified_recently {
        f.hit(
            Rule::ScriptModifiedRecently,
            format!("the sending script {shown} was modified in the last 24 hours"),
        );
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
        .find(|s| {
            matches!(
                **s,
                "uploads" | "upload" | "tmp" | "temp" | "cache" | "caches"
            )
        })
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
        Some(format!("an uploads, cache or temporary folder ('{u}')"))
    } else if wp_static {
        Some("a WordPress static-asset folder, where no mail script belongs".to_string())
    } else {
        None
    };
    if let Some(why) = why {
        f.hit(
            Rule::SuspiciousScriptPath,
            format!("the sending script {shown} is in {why}"),
        );
    }
    if let Some(name) = segments.last() {
        if let Some(why) = random_name(name) {
            f.hit(
                Rule::RandomScriptName,
                format!("the sending script's name '{name}' looks random ({why})"),
            );
        }
    }
}

/// Why a file name looks machine-made: `x7f3k9q2.php`, `a1b2c3d4e5.php`, `0xdeadbeef.php`.
/// Ordinary names (`contact-form.php`, `class-wp-mailer.php`, `index2.php`) pass.
pub(super) fn random_name(name: &str) -> Option<String> {
    let stem = name.rsplit_once('.').map_or(name, |(s, _)| s);
    let stem = stem.trim_start_matches('.');
    if stem.len() < 6 || !stem.chars().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    let digits = stem.chars().filter(char::is_ascii_digit).count();
    let letters = stem.len() - digits;
    // Letter/digit alternations: a word with a number at the end alternates once.
    let b = stem.as_bytes();
    let switches = b
        .windows(2)
        .filter(|w| w[0].is_ascii_digit() != w[1].is_ascii_digit())
        .count();
    if digits >= 2 && letters >= 2 && switches >= 3 {
        return Some(format!("{switches} letter/digit alternations"));
    }
    // A long run of consonants no language writes, or a hex blob.
    if stem.len() >= 8 && stem.chars().all(|c| c.is_ascii_hexdigit()) && digits >= 2 {
        return Some("a hexadecimal string".into());
    }
    let vowels = stem.chars().filter(|c| "aeiouyAEIOUY".contains(*c)).count();
    if letters >= 7 && digits == 0 && vowels * 8 < letters {
        return Some("almost no vowels".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_names() {
        for r in [
            "x7f3k9q2.php",
            "a1b2c3d4.php",
            "3f9a1c0b7e.php",
            "wqxzrtkpl.php",
        ] {
            assert!(random_name(r).is_some(), "{r}");
        }
        for ok in [
            "contact-form.php",
            "class-wp-mail.php",
            "index2.php",
            "wp-login.php",
            "sendmail.php",
            "mailer2024.php",
            "functions.php",
            "PHPMailer.php",
        ] {
            assert!(random_name(ok).is_none(), "{ok}");
        }
    }
}

//! body: what the reader sees — an empty message, one big image, white space, huge fonts,
//! text in the background colour. Detection only; the points are the rule table's.

use super::read::Body;
use super::{Findings, Rule};

pub(super) fn rules(b: &Body, f: &mut Findings) {
    let has_image = b.inline_images > 0 || b.attached_images > 0 || b.html_images > 0;
    if b.visible == 0 && !has_image {
        if b.attachments > 0 {
            f.add(
                Rule::EmptyBody,
                2.0 / 3.0,
                "the message has no text, only attachments".into(),
            );
        } else {
            f.hit(Rule::EmptyBody, "the message body is empty".into());
        }
    }
    // The guide's "only an image over 1 MB with few words": an image the message shows,
    // not a photo a contact form forwards as an attachment.
    if b.biggest_inline_image > 1024 * 1024 && b.max_words < 30 {
        f.hit(
            Rule::ImageOnly,
            format!(
                "an inline image of {:.1} MiB with only {} visible word(s)",
                b.biggest_inline_image as f32 / 1_048_576.0,
                b.max_words
            ),
        );
    } else if b.html_big_images > 0 && b.max_words < 20 {
        f.add(
            Rule::ImageOnly,
            1.0 / 3.0,
            format!(
                "the HTML is essentially an image ({} visible word(s))",
                b.max_words
            ),
        );
    }
    if let Some((white, visible)) = b.worst_white {
        if white * 10 > (white + visible) * 7 {
            f.hit(
                Rule::WhitespaceAbuse,
                format!(
                    "{}% of the visible text is white space",
                    white * 100 / (white + visible)
                ),
            );
        }
    }
    if let Some(run) = &b.raw_run {
        f.hit(Rule::WhitespaceAbuse, format!("the text has {run}"));
    }
    let big_share = b.visible > 0 && b.chars_ge_36px * 10 > b.visible * 3;
    // 1.5 / 0.5 points, +1 when big text is over 30 % of what is shown.
    let font = if b.max_font_px >= 48.0 && b.chars_ge_48px >= 3 {
        Some(1.0)
    } else if b.max_font_px >= 36.0 && b.chars_ge_36px >= 3 {
        Some(1.0 / 3.0)
    } else {
        None
    };
    if let Some(factor) = font {
        let extra = if big_share { 2.0 / 3.0 } else { 0.0 };
        f.add(
            Rule::LargeFont,
            factor + extra,
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
        let factor = if share >= 10 { 1.0 } else { 1.0 / 3.0 };
        f.add(
            Rule::LowContrastText,
            factor,
            format!(
                "{} visible characters ({share}% of the text) are in the background colour",
                b.low_contrast
            ),
        );
    }
}

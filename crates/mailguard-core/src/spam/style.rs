//! style: the little CSS the scorer understands: colours, font sizes, and "is this hidden".

/// An sRGB colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Rgb(pub u8, pub u8, pub u8);

pub(super) const BLACK: Rgb = Rgb(0, 0, 0);
pub(super) const WHITE: Rgb = Rgb(255, 255, 255);

/// What a colour value says: a colour, "keep the parent's", or "see-through".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Paint {
    Colour(Rgb),
    Inherit,
    Transparent,
}

/// SpamAssassin's brightness-weighted distance (`HTML.pm`); the maximum is about 191.
/// Below [`LOW_CONTRAST_DISTANCE`] text is unreadable on its background.
pub(super) fn distance(a: Rgb, b: Rgb) -> f32 {
    let dr = 0.2126 * (f32::from(a.0) - f32::from(b.0));
    let dg = 0.7152 * (f32::from(a.1) - f32::from(b.1));
    let db = 0.0722 * (f32::from(a.2) - f32::from(b.2));
    (dr * dr + dg * dg + db * db).sqrt()
}

pub(super) const LOW_CONTRAST_DISTANCE: f32 = 12.0;

// The CSS named colours that show up in mail templates (and in spam hiding text).
const NAMED: &[(&str, Rgb)] = &[
    ("black", Rgb(0, 0, 0)),
    ("white", Rgb(255, 255, 255)),
    ("red", Rgb(255, 0, 0)),
    ("green", Rgb(0, 128, 0)),
    ("blue", Rgb(0, 0, 255)),
    ("yellow", Rgb(255, 255, 0)),
    ("gray", Rgb(128, 128, 128)),
    ("grey", Rgb(128, 128, 128)),
    ("silver", Rgb(192, 192, 192)),
    ("maroon", Rgb(128, 0, 0)),
    ("purple", Rgb(128, 0, 128)),
    ("fuchsia", Rgb(255, 0, 255)),
    ("magenta", Rgb(255, 0, 255)),
    ("lime", Rgb(0, 255, 0)),
    ("olive", Rgb(128, 128, 0)),
    ("navy", Rgb(0, 0, 128)),
    ("teal", Rgb(0, 128, 128)),
    ("aqua", Rgb(0, 255, 255)),
    ("cyan", Rgb(0, 255, 255)),
    ("orange", Rgb(255, 165, 0)),
    ("pink", Rgb(255, 192, 203)),
    ("gold", Rgb(255, 215, 0)),
    ("brown", Rgb(165, 42, 42)),
    ("darkblue", Rgb(0, 0, 139)),
    ("darkred", Rgb(139, 0, 0)),
    ("darkgreen", Rgb(0, 100, 0)),
    ("darkgray", Rgb(169, 169, 169)),
    ("darkgrey", Rgb(169, 169, 169)),
    ("dimgray", Rgb(105, 105, 105)),
    ("dimgrey", Rgb(105, 105, 105)),
    ("lightgray", Rgb(211, 211, 211)),
    ("lightgrey", Rgb(211, 211, 211)),
    ("gainsboro", Rgb(220, 220, 220)),
    ("whitesmoke", Rgb(245, 245, 245)),
    ("snow", Rgb(255, 250, 250)),
    ("ivory", Rgb(255, 255, 240)),
    ("ghostwhite", Rgb(248, 248, 255)),
    ("floralwhite", Rgb(255, 250, 240)),
    ("azure", Rgb(240, 255, 255)),
    ("mintcream", Rgb(245, 255, 250)),
    ("honeydew", Rgb(240, 255, 240)),
    ("aliceblue", Rgb(240, 248, 255)),
    ("seashell", Rgb(255, 245, 238)),
    ("linen", Rgb(250, 240, 230)),
    ("oldlace", Rgb(253, 245, 230)),
    ("beige", Rgb(245, 245, 220)),
    ("lavender", Rgb(230, 230, 250)),
    ("lightyellow", Rgb(255, 255, 224)),
    ("cornsilk", Rgb(255, 248, 220)),
    ("lightblue", Rgb(173, 216, 230)),
    ("lightgreen", Rgb(144, 238, 144)),
    ("steelblue", Rgb(70, 130, 180)),
    ("royalblue", Rgb(65, 105, 225)),
    ("crimson", Rgb(220, 20, 60)),
    ("tomato", Rgb(255, 99, 71)),
];

/// `value` without surrounding white space and a trailing `!important`.
fn strip_important(value: &str) -> &str {
    let v = value.trim();
    v.strip_suffix("!important").map_or(v, str::trim_end)
}

/// Parses one colour value: `#rgb`, `#rrggbb`, `rgb()`/`rgba()`, a named colour,
/// `transparent`, `inherit`/`currentcolor`. Legacy attributes also allow a bare `rrggbb`.
pub(super) fn parse_colour(value: &str) -> Option<Paint> {
    let v = strip_important(value);
    if v.is_empty() {
        return None;
    }
    let lower = v.to_ascii_lowercase();
    match lower.as_str() {
        "transparent" => return Some(Paint::Transparent),
        "inherit" | "currentcolor" | "initial" | "unset" => return Some(Paint::Inherit),
        _ => {}
    }
    if let Some(hex) = lower.strip_prefix('#') {
        return parse_hex(hex).map(Paint::Colour);
    }
    if let Some(args) = lower
        .strip_prefix("rgba(")
        .or_else(|| lower.strip_prefix("rgb("))
    {
        let args = args.trim_end_matches(')');
        let parts: Vec<&str> = args
            .split([',', ' ', '/'])
            .filter(|s| !s.is_empty())
            .collect();
        if parts.len() < 3 {
            return None;
        }
        let mut c = [0u8; 3];
        for (slot, p) in c.iter_mut().zip(&parts) {
            *slot = if let Some(pct) = p.strip_suffix('%') {
                (pct.parse::<f32>().ok()?.clamp(0.0, 100.0) * 2.55) as u8
            } else {
                p.parse::<f32>().ok()?.clamp(0.0, 255.0) as u8
            };
        }
        if let Some(alpha) = parts.get(3) {
            let a = if let Some(pct) = alpha.strip_suffix('%') {
                pct.parse::<f32>().ok()? / 100.0
            } else {
                alpha.parse::<f32>().ok()?
            };
            if a < 0.04 {
                return Some(Paint::Transparent);
            }
        }
        return Some(Paint::Colour(Rgb(c[0], c[1], c[2])));
    }
    if let Some((_, rgb)) = NAMED.iter().find(|(n, _)| *n == lower) {
        return Some(Paint::Colour(*rgb));
    }
    // Legacy HTML attributes: bgcolor="ffffff".
    if lower.len() == 6 {
        return parse_hex(&lower).map(Paint::Colour);
    }
    None
}

fn parse_hex(hex: &str) -> Option<Rgb> {
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let d = |i: usize| u8::from_str_radix(&hex[i..i + 1], 16).ok();
    let dd = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).ok();
    match hex.len() {
        3 | 4 => Some(Rgb(d(0)? * 17, d(1)? * 17, d(2)? * 17)),
        6 | 8 => Some(Rgb(dd(0)?, dd(2)?, dd(4)?)),
        _ => None,
    }
}

/// Parses a CSS font size into pixels, relative to the parent's size.
pub(super) fn parse_font_size(value: &str, parent_px: f32) -> Option<f32> {
    let v = strip_important(value).to_ascii_lowercase();
    let keyword = match v.as_str() {
        "xx-small" => Some(9.0),
        "x-small" => Some(10.0),
        "small" => Some(13.0),
        "medium" => Some(16.0),
        "large" => Some(18.0),
        "x-large" => Some(24.0),
        "xx-large" => Some(32.0),
        "xxx-large" => Some(48.0),
        "larger" => Some(parent_px * 1.2),
        "smaller" => Some(parent_px / 1.2),
        _ => None,
    };
    if keyword.is_some() {
        return keyword;
    }
    let split = v
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+'))
        .unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let n: f32 = num.parse().ok()?;
    if !n.is_finite() {
        return None;
    }
    let px = match unit.trim() {
        "px" | "" => n,
        "pt" => n * 4.0 / 3.0,
        "em" => n * parent_px,
        "rem" => n * 16.0,
        "%" => n * parent_px / 100.0,
        "pc" => n * 16.0,
        "in" => n * 96.0,
        "cm" => n * 96.0 / 2.54,
        "mm" => n * 96.0 / 25.4,
        "vw" | "vh" => n * 8.0,
        _ => return None,
    };
    Some(px.clamp(0.0, 10_000.0))
}

/// The legacy `<font size=N>` scale, 1 to 7, with `+n`/`-n` relative to the base size 3.
pub(super) fn legacy_font_px(value: &str) -> Option<f32> {
    let v = value.trim();
    let n: i32 = if let Some(rel) = v.strip_prefix('+') {
        3 + rel.trim().parse::<i32>().ok()?
    } else if let Some(rel) = v.strip_prefix('-') {
        3 - rel.trim().parse::<i32>().ok()?
    } else {
        v.parse().ok()?
    };
    Some(match n.clamp(1, 7) {
        1 => 10.0,
        2 => 13.0,
        3 => 16.0,
        4 => 18.0,
        5 => 24.0,
        6 => 32.0,
        _ => 48.0,
    })
}

/// What one `style` attribute sets.
#[derive(Debug, Default, Clone, PartialEq)]
pub(super) struct Declared {
    pub colour: Option<Paint>,
    pub background: Option<Paint>,
    pub font_px: Option<f32>,
    pub hidden: bool,
    /// A `background-image` / `background: url()` is set.
    pub background_image: bool,
}

/// Reads the declarations of a `style` attribute that matter here.
pub(super) fn parse_style(style: &str, parent_px: f32, urls: &mut Vec<String>) -> Declared {
    let mut d = Declared::default();
    for decl in style.split(';') {
        let Some((prop, value)) = decl.split_once(':') else {
            continue;
        };
        let prop = prop.trim().to_ascii_lowercase();
        let value = value.trim();
        if value.len() > 512 {
            continue;
        }
        let lower = value.to_ascii_lowercase();
        let lower = strip_important(&lower);
        match prop.as_str() {
            "color" => d.colour = parse_colour(value).or(d.colour),
            "background-color" => d.background = parse_colour(value).or(d.background),
            "background" => {
                d.background_image |= lower.contains("url(") || lower.contains("gradient(");
                collect_css_urls(value, urls);
                if let Some(p) = first_colour_token(value) {
                    d.background = Some(p);
                }
            }
            "background-image" => {
                d.background_image |= lower.contains("url(") || lower.contains("gradient(");
                collect_css_urls(value, urls);
            }
            "font-size" => {
                if let Some(px) = parse_font_size(value, parent_px) {
                    d.font_px = Some(px);
                }
            }
            "font" => {
                // `font: bold 60px/1.2 Arial`: the size is the token with a unit.
                for tok in lower.split_whitespace() {
                    let size = tok.split('/').next().unwrap_or(tok);
                    if size.starts_with(|c: char| c.is_ascii_digit())
                        || size.ends_with("large")
                        || size.ends_with("small")
                    {
                        if let Some(px) = parse_font_size(size, parent_px) {
                            d.font_px = Some(px);
                            break;
                        }
                    }
                }
            }
            "display" if lower == "none" => d.hidden = true,
            "visibility" if lower == "hidden" || lower == "collapse" => d.hidden = true,
            "mso-hide" if lower == "all" => d.hidden = true,
            "opacity" if lower.parse::<f32>().is_ok_and(|o| o < 0.1) => d.hidden = true,
            "max-height" | "height" if lower == "0" || lower == "0px" => d.hidden = true,
            _ => {}
        }
    }
    if d.font_px.is_some_and(|px| px <= 1.0) {
        d.hidden = true;
    }
    d
}

fn first_colour_token(value: &str) -> Option<Paint> {
    // rgb(...) may contain spaces: try it first.
    let lower = value.to_ascii_lowercase();
    if let Some(start) = lower.find("rgb") {
        if let Some(end) = lower[start..].find(')') {
            return parse_colour(&lower[start..=start + end]);
        }
    }
    lower
        .split_whitespace()
        .filter(|t| !t.starts_with("url("))
        .find_map(|t| match parse_colour(t) {
            Some(Paint::Colour(c)) => Some(Paint::Colour(c)),
            Some(Paint::Transparent) => Some(Paint::Transparent),
            _ => None,
        })
}

/// Collects the targets of CSS `url(...)`.
pub(super) fn collect_css_urls(value: &str, urls: &mut Vec<String>) {
    let mut rest = value;
    while let Some(i) = rest.to_ascii_lowercase().find("url(") {
        let after = &rest[i + 4..];
        let end = after.find(')').unwrap_or(after.len());
        let target = after[..end].trim().trim_matches(['"', '\'']);
        if !target.is_empty() && urls.len() < super::html::MAX_URLS {
            urls.push(target.to_string());
        }
        rest = &after[end..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_parse() {
        assert_eq!(parse_colour("#fff"), Some(Paint::Colour(WHITE)));
        assert_eq!(
            parse_colour("#FeFeFe"),
            Some(Paint::Colour(Rgb(254, 254, 254)))
        );
        assert_eq!(
            parse_colour("rgb(10, 20, 30)"),
            Some(Paint::Colour(Rgb(10, 20, 30)))
        );
        assert_eq!(parse_colour("rgba(0,0,0,0)"), Some(Paint::Transparent));
        assert_eq!(parse_colour("White"), Some(Paint::Colour(WHITE)));
        assert_eq!(parse_colour("bogus"), None);
        assert!(distance(WHITE, Rgb(250, 250, 250)) < LOW_CONTRAST_DISTANCE);
        assert!(distance(WHITE, BLACK) > 150.0);
    }

    #[test]
    fn font_sizes_parse() {
        assert_eq!(parse_font_size("48px", 16.0), Some(48.0));
        assert_eq!(parse_font_size("36pt", 16.0), Some(48.0));
        assert_eq!(parse_font_size("3em", 16.0), Some(48.0));
        assert_eq!(parse_font_size("300%", 16.0), Some(48.0));
        assert_eq!(parse_font_size("xx-large", 16.0), Some(32.0));
        assert_eq!(legacy_font_px("7"), Some(48.0));
        assert_eq!(legacy_font_px("+4"), Some(48.0));
        assert_eq!(legacy_font_px("2"), Some(13.0));
    }

    #[test]
    fn style_hides_preheader() {
        let mut urls = Vec::new();
        let d = parse_style(
            "display:none;font-size:1px;color:#ffffff;background:url('http://x/y.png') #000",
            16.0,
            &mut urls,
        );
        assert!(d.hidden);
        assert_eq!(d.colour, Some(Paint::Colour(WHITE)));
        assert_eq!(d.background, Some(Paint::Colour(BLACK)));
        assert_eq!(urls, vec!["http://x/y.png".to_string()]);
    }
}

//! html: a tolerant, single-pass HTML reader that renders what a mail reader would show
//! (visible text, font sizes, colours) and collects links and images. Not a browser: no
//! `<style>` sheets, no layout. Every loop is bounded by the input length and a stack cap.

use super::style::{self, Paint, Rgb, BLACK, WHITE};

/// Elements nest at most this deep; deeper ones inherit their parent's style.
const MAX_DEPTH: usize = 64;
/// Links and URLs kept for the link rules.
pub(super) const MAX_URLS: usize = 512;
/// Anchor text kept per link.
const MAX_ANCHOR_CHARS: usize = 256;
/// Visible text kept for the word-list rules.
pub(super) const MAX_TEXT_CHARS: usize = 64 * 1024;

/// One `<a href>` (or `<area href>`) with the text it shows.
#[derive(Debug, Clone, Default)]
pub(super) struct Link {
    pub href: String,
    pub text: String,
}

/// What an HTML part looks like to its reader.
#[derive(Debug, Default)]
pub(super) struct Rendered {
    /// Visible non-white-space characters.
    pub visible: usize,
    /// White space as the reader sees it: collapsed runs, `&nbsp;`, and explicit breaks.
    pub white: usize,
    pub words: usize,
    /// Longest run of explicit line breaks with no visible text between them.
    pub max_break_run: usize,
    pub max_font_px: f32,
    pub chars_ge_36px: usize,
    pub chars_ge_48px: usize,
    /// Visible characters whose colour is (nearly) the background colour.
    pub low_contrast: usize,
    pub images: usize,
    /// Images that are not small icons (width + height ≥ 400, or no size given).
    pub big_images: usize,
    pub links: Vec<Link>,
    /// Other URLs: `src`, `action`, `background`, CSS `url()`.
    pub urls: Vec<String>,
    /// The visible text, collapsed, up to [`MAX_TEXT_CHARS`].
    pub text: String,
}

#[derive(Clone, Copy)]
struct Frame {
    tag: [u8; 12],
    font_px: f32,
    fg: Rgb,
    bg: Rgb,
    hidden: bool,
    /// Under a background image: contrast cannot be judged (white hero text on a photo).
    bg_image: bool,
    link: Option<usize>,
}

impl Frame {
    fn is(&self, name: &[u8]) -> bool {
        tag_key(name) == self.tag
    }
}

fn tag_key(name: &[u8]) -> [u8; 12] {
    let mut k = [0u8; 12];
    for (d, s) in k.iter_mut().zip(name) {
        *d = s.to_ascii_lowercase();
    }
    k
}

/// Tag names: (tags an opening closes, tags that stop the search).
type TagList = &'static [&'static [u8]];

const VOID: &[&[u8]] = &[
    b"area",
    b"base",
    b"br",
    b"col",
    b"embed",
    b"hr",
    b"img",
    b"input",
    b"link",
    b"meta",
    b"param",
    b"source",
    b"track",
    b"wbr",
    b"basefont",
    b"frame",
    b"keygen",
];
const BREAKS: &[&[u8]] = &[b"br", b"p", b"div", b"tr", b"li"];
const BLOCKS: &[&[u8]] = &[
    b"br",
    b"p",
    b"div",
    b"tr",
    b"td",
    b"th",
    b"li",
    b"table",
    b"h1",
    b"h2",
    b"h3",
    b"h4",
    b"h5",
    b"h6",
    b"ul",
    b"ol",
    b"center",
    b"blockquote",
    b"hr",
    b"body",
    b"section",
];
// `noscript`, `xml` and `object` are not here: a mail client runs no script and loads no
// object, so it shows their content (and an unclosed one must not hide the whole body).
const HIDDEN_TAGS: &[&[u8]] = &[b"head", b"title", b"template"];
/// Elements that may stand in `<head>`; anything else closes it, as browsers do.
const HEAD_CONTENT: &[&[u8]] = &[
    b"meta",
    b"link",
    b"title",
    b"style",
    b"script",
    b"base",
    b"basefont",
    b"noscript",
    b"head",
    b"html",
    b"o:officedocumentsettings",
    b"xml",
];

struct Renderer {
    out: Rendered,
    stack: Vec<Frame>,
    overflow: usize,
    in_word: bool,
    pending_space: bool,
    break_run: usize,
}

/// Renders one HTML part. The caller bounds the input length.
pub(super) fn render(html: &str) -> Rendered {
    let root = Frame {
        tag: [0; 12],
        font_px: 16.0,
        fg: BLACK,
        bg: WHITE,
        hidden: false,
        bg_image: false,
        link: None,
    };
    let mut r = Renderer {
        out: Rendered::default(),
        stack: vec![root],
        overflow: 0,
        in_word: false,
        pending_space: false,
        break_run: 0,
    };
    r.run(html.as_bytes(), html);
    r.out
}

impl Renderer {
    fn top(&self) -> &Frame {
        self.stack.last().expect("root frame is never popped")
    }

    fn run(&mut self, b: &[u8], s: &str) {
        let mut i = 0;
        while i < b.len() {
            if b[i] != b'<' {
                let end = memchr(b'<', &b[i..]).map_or(b.len(), |p| i + p);
                self.text(&s[i..end]);
                i = end;
                continue;
            }
            let rest = &b[i + 1..];
            if rest.starts_with(b"!--") {
                i = find(&b[i + 4..], b"-->").map_or(b.len(), |p| i + 4 + p + 3);
            } else if rest.first() == Some(&b'!') || rest.first() == Some(&b'?') {
                i = memchr(b'>', rest).map_or(b.len(), |p| i + 1 + p + 1);
            } else if rest.first() == Some(&b'/') {
                let name_end = rest[1..]
                    .iter()
                    .position(|c| !c.is_ascii_alphanumeric())
                    .map_or(rest.len(), |p| p + 1);
                let name = &rest[1..name_end];
                i = memchr(b'>', rest).map_or(b.len(), |p| i + 1 + p + 1);
                if !name.is_empty() {
                    self.end_tag(name);
                }
            } else if rest.first().is_some_and(u8::is_ascii_alphabetic) {
                i = self.start_tag(b, s, i + 1);
            } else {
                self.text("<");
                i += 1;
            }
        }
        self.out.max_break_run = self.out.max_break_run.max(self.break_run);
    }

    /// Parses a start tag beginning at `at` (just after `<`); returns where parsing resumes.
    fn start_tag(&mut self, b: &[u8], s: &str, at: usize) -> usize {
        let mut i = at;
        while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'-' || b[i] == b':') {
            i += 1;
        }
        let name = tag_key(&b[at..i]);
        let name = &name[..name.iter().position(|&c| c == 0).unwrap_or(12)];
        let mut attrs: Vec<(&[u8], String)> = Vec::new();
        loop {
            while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b'/') {
                i += 1;
            }
            if i >= b.len() {
                break;
            }
            if b[i] == b'>' {
                i += 1;
                break;
            }
            let an_start = i;
            while i < b.len() && !b[i].is_ascii_whitespace() && !matches!(b[i], b'=' | b'>' | b'/')
            {
                i += 1;
            }
            let an = &b[an_start..i];
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            let mut value = String::new();
            if i < b.len() && b[i] == b'=' {
                i += 1;
                while i < b.len() && b[i].is_ascii_whitespace() {
                    i += 1;
                }
                if i < b.len() && (b[i] == b'"' || b[i] == b'\'') {
                    let q = b[i];
                    let end = memchr(q, &b[i + 1..]).map_or(b.len(), |p| i + 1 + p);
                    value = decode_entities(&s[i + 1..end]);
                    i = (end + 1).min(b.len());
                } else {
                    let start = i;
                    while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'>' {
                        i += 1;
                    }
                    value = decode_entities(&s[start..i]);
                }
            }
            if an.is_empty() {
                i += 1;
            } else if attrs.len() < 32 {
                attrs.push((an, value));
            }
        }
        // Raw-text elements: their content is never shown.
        if name == b"script" || name == b"style" || name == b"title" {
            let close: &[u8] = match name {
                b"script" => b"</script",
                b"style" => b"</style",
                _ => b"</title",
            };
            let end = match find_ci(&b[i..], close) {
                Some(p) => i + p,
                // An unclosed <title> ends at the next tag (clients show what follows);
                // an unclosed script or style hides the rest, in a client too.
                None if name == b"title" => {
                    return memchr(b'<', &b[i..]).map_or(b.len(), |p| i + p)
                }
                None => b.len(),
            };
            return memchr(b'>', &b[end..]).map_or(b.len(), |p| end + p + 1);
        }
        self.open(name, &attrs);
        i
    }

    fn attr<'a>(attrs: &'a [(&[u8], String)], name: &[u8]) -> Option<&'a str> {
        attrs
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Closes an open `<head>` (and what is inside it), as a browser does when body
    /// content starts.
    fn close_head(&mut self) {
        if let Some(k) = (1..self.stack.len()).find(|&k| self.stack[k].is(b"head")) {
            self.stack.truncate(k);
        }
    }

    fn open(&mut self, name: &[u8], attrs: &[(&[u8], String)]) {
        if !HEAD_CONTENT.contains(&name) {
            self.close_head();
        }
        // Implicitly closed elements (sloppy templates rarely close td/tr/li/p).
        let closes_at: Option<(TagList, TagList)> = match name {
            b"td" | b"th" => Some((&[b"td", b"th"], &[b"tr", b"table"])),
            b"tr" => Some((&[b"tr"], &[b"table", b"tbody", b"thead"])),
            b"li" => Some((&[b"li"], &[b"ul", b"ol"])),
            b"p" => Some((&[b"p"], &[b"div", b"td", b"table", b"body"])),
            _ => None,
        };
        if let Some((same, limit)) = closes_at {
            for k in (1..self.stack.len()).rev() {
                let f = &self.stack[k];
                if limit.iter().any(|l| f.is(l)) {
                    break;
                }
                if same.iter().any(|s| f.is(s)) {
                    self.stack.truncate(k);
                    break;
                }
            }
        }
        if BLOCKS.contains(&name) {
            self.in_word = false;
            self.pending_space = false;
        }
        let parent = *self.top();
        if BREAKS.contains(&name) && !parent.hidden {
            self.out.white += 1;
            self.break_run += 1;
        }
        let mut f = parent;
        f.tag = tag_key(name);
        let mut urls = std::mem::take(&mut self.out.urls);
        if HIDDEN_TAGS.contains(&name) || Self::attr(attrs, b"hidden").is_some() {
            f.hidden = true;
        }
        f.font_px = match name {
            b"h1" => parent.font_px * 2.0,
            b"h2" => parent.font_px * 1.5,
            b"h3" => parent.font_px * 1.17,
            b"h5" => parent.font_px * 0.83,
            b"h6" => parent.font_px * 0.67,
            b"big" => parent.font_px * 1.2,
            b"small" => parent.font_px * 0.83,
            _ => parent.font_px,
        };
        let mut fg = None;
        let mut bg = None;
        if name == b"font" {
            if let Some(px) = Self::attr(attrs, b"size").and_then(style::legacy_font_px) {
                f.font_px = px;
            }
            fg = Self::attr(attrs, b"color").and_then(style::parse_colour);
        }
        if name == b"body" {
            fg = Self::attr(attrs, b"text").and_then(style::parse_colour);
        }
        if matches!(
            name,
            b"body" | b"table" | b"tr" | b"td" | b"th" | b"marquee" | b"tbody" | b"div"
        ) {
            bg = Self::attr(attrs, b"bgcolor").and_then(style::parse_colour);
            if let Some(u) = Self::attr(attrs, b"background") {
                push_url(&mut urls, u);
                f.bg_image = true;
            }
        }
        if let Some(css) = Self::attr(attrs, b"style") {
            let before = urls.len();
            let d = style::parse_style(css, f.font_px, &mut urls);
            if urls.len() > before || d.background_image {
                f.bg_image = true;
            }
            fg = d.colour.or(fg);
            bg = d.background.or(bg);
            if let Some(px) = d.font_px {
                f.font_px = px;
            }
            f.hidden |= d.hidden;
        }
        match bg {
            Some(Paint::Colour(c)) => f.bg = c,
            Some(Paint::Inherit | Paint::Transparent) | None => {}
        }
        match fg {
            Some(Paint::Colour(c)) => f.fg = c,
            // Transparent text shows the background through it.
            Some(Paint::Transparent) => f.fg = f.bg,
            Some(Paint::Inherit) | None => {}
        }
        match name {
            b"a" | b"area" => {
                if let Some(href) = Self::attr(attrs, b"href") {
                    if self.out.links.len() < MAX_URLS {
                        let text = if name == b"area" {
                            Self::attr(attrs, b"alt").unwrap_or_default().to_string()
                        } else {
                            String::new()
                        };
                        self.out.links.push(Link {
                            href: href.to_string(),
                            text,
                        });
                        f.link = Some(self.out.links.len() - 1);
                    }
                }
            }
            b"img" => {
                if let Some(src) = Self::attr(attrs, b"src") {
                    push_url(&mut urls, src);
                }
                if !f.hidden {
                    self.out.images += 1;
                    let dim = |n: &[u8]| {
                        Self::attr(attrs, n)
                            .and_then(|v| v.trim().trim_end_matches("px").parse::<u32>().ok())
                    };
                    match (dim(b"width"), dim(b"height")) {
                        (Some(w), Some(h)) if w.saturating_add(h) < 400 => {}
                        (Some(w), None) | (None, Some(w)) if w < 200 => {}
                        _ => self.out.big_images += 1,
                    }
                    if let (Some(k), Some(alt)) = (parent.link, Self::attr(attrs, b"alt")) {
                        append_capped(&mut self.out.links[k].text, alt);
                    }
                    self.break_run = 0;
                }
            }
            b"form" => {
                if let Some(a) = Self::attr(attrs, b"action") {
                    push_url(&mut urls, a);
                }
            }
            b"iframe" | b"embed" | b"frame" | b"input" => {
                if let Some(src) = Self::attr(attrs, b"src") {
                    push_url(&mut urls, src);
                }
            }
            _ => {}
        }
        self.out.urls = urls;
        if VOID.contains(&name) {
            return;
        }
        if self.stack.len() >= MAX_DEPTH {
            self.overflow += 1;
            return;
        }
        self.stack.push(f);
    }

    fn end_tag(&mut self, name: &[u8]) {
        let key = tag_key(name);
        let lower = &key[..key.iter().position(|&c| c == 0).unwrap_or(key.len())];
        if BLOCKS.contains(&lower) {
            self.in_word = false;
            self.pending_space = false;
        }
        if self.overflow > 0 {
            self.overflow -= 1;
            return;
        }
        if let Some(k) = (1..self.stack.len())
            .rev()
            .find(|&k| self.stack[k].tag == key)
        {
            self.stack.truncate(k);
        }
    }

    fn text(&mut self, raw: &str) {
        // Text in <head> means the body has begun (a browser closes head here too).
        if self.top().hidden
            && raw.trim().chars().next().is_some()
            && self.stack.iter().any(|f| f.is(b"head"))
            && !self
                .stack
                .iter()
                .any(|f| f.is(b"title") || f.is(b"template"))
        {
            self.close_head();
        }
        let f = *self.top();
        if f.hidden {
            return;
        }
        let decoded;
        let t: &str = if raw.contains('&') {
            decoded = decode_entities(raw);
            &decoded
        } else {
            raw
        };
        let low = !f.bg_image && style::distance(f.fg, f.bg) < style::LOW_CONTRAST_DISTANCE;
        let mut visible = 0usize;
        for c in t.chars() {
            match c {
                ' ' | '\t' | '\r' | '\n' | '\x0c' => {
                    // Runs of ordinary white space collapse to one space.
                    if !self.pending_space {
                        self.pending_space = true;
                        self.out.white += 1;
                    }
                    self.in_word = false;
                }
                '\u{200b}' | '\u{200c}' | '\u{200d}' | '\u{feff}' | '\u{ad}' => {}
                c if c.is_whitespace() => {
                    // &nbsp; and friends do not collapse.
                    self.out.white += 1;
                    self.in_word = false;
                    if self.out.text.len() < MAX_TEXT_CHARS {
                        self.out.text.push(' ');
                    }
                }
                c => {
                    if self.pending_space && self.out.text.len() < MAX_TEXT_CHARS {
                        self.out.text.push(' ');
                    }
                    self.pending_space = false;
                    if !self.in_word {
                        self.out.words += 1;
                        self.in_word = true;
                    }
                    visible += 1;
                    if self.out.text.len() < MAX_TEXT_CHARS {
                        self.out.text.push(c);
                    }
                }
            }
        }
        if let Some(k) = f.link {
            append_capped(&mut self.out.links[k].text, t);
        }
        if visible == 0 {
            return;
        }
        self.out.max_break_run = self.out.max_break_run.max(self.break_run);
        self.break_run = 0;
        self.out.visible += visible;
        if f.font_px > self.out.max_font_px {
            self.out.max_font_px = f.font_px;
        }
        if f.font_px >= 36.0 {
            self.out.chars_ge_36px += visible;
        }
        if f.font_px >= 48.0 {
            self.out.chars_ge_48px += visible;
        }
        if low {
            self.out.low_contrast += visible;
        }
    }
}

fn push_url(urls: &mut Vec<String>, u: &str) {
    if urls.len() < MAX_URLS && !u.trim().is_empty() {
        urls.push(u.chars().take(2048).collect());
    }
}

fn append_capped(dst: &mut String, src: &str) {
    for c in src.chars() {
        if dst.len() >= MAX_ANCHOR_CHARS {
            break;
        }
        dst.push(c);
    }
}

pub(super) fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&c| c == needle)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn find_ci(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle))
}

/// Decodes the character references that matter for rendering. Unknown names stay as text.
pub(super) fn decode_entities(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(p) = rest.find('&') {
        out.push_str(&rest[..p]);
        rest = &rest[p..];
        let body_end = rest[1..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '#'))
            .map_or(rest.len(), |q| q + 1);
        let body = &rest[1..body_end];
        let decoded = if body.len() > 10 || body.is_empty() {
            None
        } else if let Some(num) = body.strip_prefix('#') {
            let n = if let Some(hex) = num.strip_prefix(['x', 'X']) {
                u32::from_str_radix(hex, 16).ok()
            } else {
                num.parse::<u32>().ok()
            };
            Some(n.and_then(char::from_u32).unwrap_or('\u{fffd}'))
        } else {
            match body.to_ascii_lowercase().as_str() {
                "nbsp" => Some('\u{a0}'),
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "ensp" => Some('\u{2002}'),
                "emsp" => Some('\u{2003}'),
                "thinsp" => Some('\u{2009}'),
                "zwnj" => Some('\u{200c}'),
                "zwj" => Some('\u{200d}'),
                "shy" => Some('\u{ad}'),
                "copy" => Some('©'),
                "reg" => Some('®'),
                "hellip" => Some('…'),
                "mdash" => Some('—'),
                "ndash" => Some('–'),
                "euro" => Some('€'),
                _ => None,
            }
        };
        match decoded {
            Some(c) => {
                out.push(c);
                let consumed = if rest[body_end..].starts_with(';') {
                    body_end + 1
                } else {
                    body_end
                };
                rest = &rest[consumed..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_visible_text_only() {
        let r = render(
            "<html><head><title>T</title><style>p{color:red}</style></head><body>\
             <div style=\"display:none\">preheader hidden</div><p>Hello <b>world</b></p>\
             <script>var x = '<p>no</p>';</script></body></html>",
        );
        assert_eq!(r.text.trim(), "Hello world");
        assert_eq!(r.words, 2);
        assert_eq!(r.visible, 10);
    }

    #[test]
    fn tracks_fonts_colours_links() {
        let r = render(
            "<body bgcolor=#ffffff><font size=7>BIG</font>\
             <span style='color:#fefefe'>invisible words here</span>\
             <table><tr><td bgcolor=#0073aa><a href='http://x.example/' style='color:#fff'>https://bank.example</a>\
             <td>next</table><img src='http://1.2.3.4/a.png' width=600 height=300></body>",
        );
        assert_eq!(r.max_font_px, 48.0);
        assert_eq!(r.chars_ge_48px, 3);
        assert_eq!(r.low_contrast, "invisiblewordshere".len());
        assert_eq!(r.links.len(), 1);
        assert_eq!(r.links[0].text, "https://bank.example");
        assert_eq!(r.big_images, 1);
        assert_eq!(r.urls, vec!["http://1.2.3.4/a.png".to_string()]);
    }

    #[test]
    fn head_closes_at_body_and_noscript_shows() {
        for html in [
            "<html><head><body><p>Name: Anna Nowak</p><p>Message: please call me back</p>",
            "<html><head><meta charset=utf-8><p>Name: Anna Nowak</p><p>Message: please call me back</p>",
            "<html><body><noscript><p>Name: Anna Nowak</p><p>Message: please call me back</p>",
            "<html><body><object><p>Name: Anna Nowak</p><p>Message: please call me back</p>",
            "<xml><p>Name: Anna Nowak</p><p>Message: please call me back</p>",
            "<head>Name: Anna Nowak Message: please call me back",
        ] {
            let r = render(html);
            assert!(r.words >= 8, "{html}: {}", r.text);
        }
        assert_eq!(render("<title>T<p>shown text").text.trim(), "shown text");
    }

    #[test]
    fn background_image_text_is_not_low_contrast() {
        let r = render(
            "<table><tr><td background='https://x.example/hero.jpg' bgcolor='#ffffff' style='color:#ffffff'>\
             Summer collection is here, discover it now in our shop</td></tr></table>\
             <div style=\"background:url(https://x.example/b.jpg) #fff;color:#fff\">More white hero text over a photo</div>",
        );
        assert_eq!(r.low_contrast, 0);
    }

    #[test]
    fn entities_and_breaks_count_as_white_space() {
        let r = render("a<br><br>&nbsp;&nbsp;b");
        assert_eq!(r.visible, 2);
        assert_eq!(r.white, 4);
        assert_eq!(decode_entities("&amp;&#65;&#x42;&bogus;"), "&AB&bogus;");
    }
}

//! The HTTP layer: a plain request/response pair independent of the server crate, the
//! security headers every answer carries, and query, form and cookie parsing.

use std::net::IpAddr;

/// The largest request body read (forms and JSON bodies are tiny).
pub const MAX_BODY: usize = 16 * 1024;

/// One request, read in full.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// The path, percent-decoded per segment by [`Request::segments`]; raw here.
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub peer: Option<IpAddr>,
}

impl Request {
    /// Splits `target` (`/a/b?x=1`) into path and query.
    pub fn new(
        method: &str,
        target: &str,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        peer: Option<IpAddr>,
    ) -> Request {
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p, parse_urlencoded(q)),
            None => (target, Vec::new()),
        };
        Request {
            method: method.to_ascii_uppercase(),
            path: path.to_owned(),
            query,
            headers,
            body,
            peer,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The path's segments, percent-decoded (`None` if one is not UTF-8 after decoding).
    pub fn segments(&self) -> Option<Vec<String>> {
        self.path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| String::from_utf8(percent_decode(s, false)).ok())
            .collect()
    }

    pub fn query_value(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("cookie"))
            .flat_map(|(_, v)| v.split(';'))
            .filter_map(|c| c.trim().split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.trim().to_owned())
    }

    /// The form fields of an `application/x-www-form-urlencoded` body.
    pub fn form(&self) -> Vec<(String, String)> {
        parse_urlencoded(&String::from_utf8_lossy(&self.body))
    }

    /// The `Authorization: Bearer ...` credential, if any.
    pub fn bearer(&self) -> Option<&str> {
        let v = self.header("authorization")?;
        let (scheme, token) = v.trim().split_once(' ')?;
        scheme
            .eq_ignore_ascii_case("bearer")
            .then_some(token.trim())
    }
}

pub fn form_value<'a>(form: &'a [(String, String)], key: &str) -> Option<&'a str> {
    form.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// One answer. Every answer gets [`SECURITY_HEADERS`] when it is sent.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Sent with every response: nothing external, no framing, no sniffing, no referrer,
/// nothing cached (the pages carry account data and CSRF tokens).
pub const SECURITY_HEADERS: [(&str, &str); 6] = [
    (
        "Content-Security-Policy",
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'",
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
    ("Cache-Control", "no-store"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
];

impl Response {
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: body.into(),
        }
    }

    pub fn html(status: u16, body: String) -> Response {
        Response::new(status, "text/html; charset=utf-8", body)
    }

    pub fn json(status: u16, value: &serde_json::Value) -> Response {
        let mut body = serde_json::to_vec_pretty(value).unwrap_or_default();
        body.push(b'\n');
        Response::new(status, "application/json", body)
    }

    pub fn text(status: u16, content_type: &str, body: String) -> Response {
        Response::new(status, content_type, body)
    }

    /// `303 See Other` to a same-site path (after a POST, the browser GETs the page).
    pub fn redirect(location: &str) -> Response {
        let mut r = Response::new(303, "text/plain; charset=utf-8", "see other\n");
        r.headers.push(("Location".into(), location.into()));
        r
    }

    pub fn with_header(mut self, name: &str, value: String) -> Response {
        self.headers.push((name.into(), value));
        self
    }
}

/// Decodes `%XX` escapes (and `+` as space when `plus` is set). Bad escapes stay as-is.
pub fn percent_decode(s: &str, plus: bool) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => match (hex_val(b[i + 1]), hex_val(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' if plus => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    out
}

fn hex_val(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// `a=1&b=x+y` → pairs, decoded (invalid UTF-8 replaced).
pub fn parse_urlencoded(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                String::from_utf8_lossy(&percent_decode(k, true)).into_owned(),
                String::from_utf8_lossy(&percent_decode(v, true)).into_owned(),
            )
        })
        .collect()
}

/// Percent-encodes everything but unreserved characters (for paths and query values).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_forms_and_paths() {
        assert_eq!(
            parse_urlencoded("a=1&b=x+y%21&c&d=%zz"),
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "x y!".into()),
                ("c".into(), "".into()),
                ("d".into(), "%zz".into()),
            ]
        );
        assert_eq!(percent_decode("a+b%2Fc%", false), b"a+b/c%");
        let r = Request::new("get", "/accounts/a%20b/x?page=2", vec![], vec![], None);
        assert_eq!(r.segments().unwrap(), vec!["accounts", "a b", "x"]);
        assert_eq!(r.query_value("page"), Some("2"));
        assert_eq!(percent_encode("a b/é"), "a%20b%2F%C3%A9");
    }

    #[test]
    fn reads_cookies_and_bearer() {
        let r = Request::new(
            "GET",
            "/",
            vec![
                ("Cookie".into(), "x=1; mg_session=abc ".into()),
                ("Authorization".into(), "Bearer  site1:secret".into()),
            ],
            vec![],
            None,
        );
        assert_eq!(r.cookie("mg_session").as_deref(), Some("abc"));
        assert_eq!(r.cookie("nope"), None);
        assert_eq!(r.bearer(), Some("site1:secret"));
    }
}

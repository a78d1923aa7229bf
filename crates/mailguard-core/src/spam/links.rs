//! links: raw-IP hosts in every spelling, links no mail reader can follow, and link text
//! that shows `https://` over an `http://` target.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use url::{Host, Url};

use super::html::Link;
use super::{Findings, Rule};

/// The host of an absolute http(s)/ftp URL when it is an IP address, in whatever spelling
/// (dotted, decimal `3232235777`, hex `0x7f.1`, octal `0300.0250.0.1`, `[v6]`): the WHATWG
/// parser in `url` normalises them all.
pub(super) fn ip_host(url: &str) -> Option<IpAddr> {
    let u = Url::parse(clean(url).as_str()).ok()?;
    if !matches!(u.scheme(), "http" | "https" | "ftp") {
        return None;
    }
    match u.host()? {
        Host::Ipv4(a) => Some(IpAddr::V4(a)),
        Host::Ipv6(a) => Some(IpAddr::V6(a)),
        Host::Domain(_) => None,
    }
}

/// Browsers drop ASCII tab and newline anywhere in a URL and C0/space at its ends.
fn clean(url: &str) -> String {
    url.trim_matches(|c: char| c <= ' ')
        .chars()
        .filter(|&c| !matches!(c, '\t' | '\n' | '\r'))
        .collect()
}

/// Private, loopback, link-local, CGNAT, documentation, benchmark, multicast, reserved
/// (`Ipv4Addr::is_global` is unstable, so the table is ours).
pub(super) fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => v4_public(a),
        IpAddr::V6(a) => {
            if let Some(v4) = a.to_ipv4_mapped() {
                return v4_public(v4);
            }
            let s = a.segments();
            !(a.is_loopback()
                || a.is_unspecified()
                || a.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local
                || (s[0] & 0xffc0) == 0xfe80 // link-local
                || (s[0] == 0x2001 && s[1] == 0x0db8)) // documentation
                && a != Ipv6Addr::LOCALHOST
        }
    }
}

fn v4_public(a: Ipv4Addr) -> bool {
    let [o1, o2, o3, _] = a.octets();
    !(o1 == 0
        || o1 == 10
        || o1 == 127
        || (o1 == 100 && (64..128).contains(&o2))
        || (o1 == 169 && o2 == 254)
        || (o1 == 172 && (16..32).contains(&o2))
        || (o1 == 192 && o2 == 0 && o3 == 0)
        || (o1 == 192 && o2 == 0 && o3 == 2)
        || (o1 == 192 && o2 == 168)
        || (o1 == 198 && (o2 == 18 || o2 == 19))
        || (o1 == 198 && o2 == 51 && o3 == 100)
        || (o1 == 203 && o2 == 0 && o3 == 113)
        || o1 >= 224)
}

fn shown(s: &str) -> String {
    let s: String = s
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if s.chars().count() > 70 {
        format!("{}…", s.chars().take(70).collect::<String>())
    } else {
        s
    }
}

/// Text that names a site: `paypal.com`, `www.bank`, `https://…`.
fn looks_like_a_name(text: &str) -> bool {
    let t = text.trim().to_ascii_lowercase();
    t.starts_with("http") || t.starts_with("www.") || {
        t.split(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '-'))
            .any(|w| {
                w.rsplit_once('.').is_some_and(|(l, tld)| {
                    !l.is_empty() && tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic())
                })
            })
    }
}

/// `raw-ip-link` over the HTML links, other HTML URLs and URLs written in text.
pub(super) fn raw_ip(links: &[Link], urls: &[String], f: &mut Findings) {
    let all = links
        .iter()
        .map(|l| (l.href.as_str(), Some(l.text.as_str())))
        .chain(urls.iter().map(|u| (u.as_str(), None)));
    for (url, text) in all {
        let Some(ip) = ip_host(url) else { continue };
        if is_public(ip) {
            if text.is_some_and(looks_like_a_name) {
                f.add(
                    Rule::RawIpLink,
                    3.0,
                    format!(
                        "link text '{}' names a site but the link goes to the bare IP {ip} ({})",
                        shown(text.unwrap_or_default().trim()),
                        shown(url)
                    ),
                );
            } else {
                f.add(
                    Rule::RawIpLink,
                    2.0,
                    format!(
                        "link to the bare public IP {ip} instead of a domain name ({})",
                        shown(url)
                    ),
                );
            }
        } else {
            f.add(
                Rule::RawIpLink,
                0.5,
                format!("link to the private or local IP {ip} ({})", shown(url)),
            );
        }
    }
}

/// How bad one link is, if it is broken.
fn link_fault(href: &str, text: &str) -> Option<(f32, &'static str)> {
    if href.chars().any(|c| {
        matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
    }) {
        return Some((3.0, "hides invisible or direction-changing characters"));
    }
    let h = clean(href);
    if h.is_empty() || h == "#" {
        return looks_like_a_name(text).then_some((1.0, "shows an address but leads nowhere"));
    }
    if h.starts_with('#') {
        return None;
    }
    let lower = h.to_ascii_lowercase();
    let scheme = lower.split_once(':').map(|(s, _)| s).filter(|s| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    });
    let Some(scheme) = scheme else {
        return Some((
            1.0,
            "has no scheme (a relative link means nothing in an e-mail)",
        ));
    };
    match scheme {
        "javascript" | "vbscript" | "data" | "file" => {
            return Some((
                2.0,
                "uses a scheme mail readers block (javascript:, data:, file:)",
            ))
        }
        "mailto" | "tel" | "sms" | "cid" | "callto" | "skype" | "whatsapp" | "geo" | "tg"
        | "viber" | "facetime" | "maps" | "webcal" => return None,
        "http" | "https" | "ftp" => {}
        _ => return Some((1.0, "has an unknown scheme")),
    }
    let Ok(u) = Url::parse(&h) else {
        return Some((1.0, "cannot be parsed as a URL"));
    };
    if !u.username().is_empty() || u.password().is_some() {
        return Some((2.0, "carries a user name before the host (user@host trick)"));
    }
    match u.host() {
        None => Some((1.0, "has no host")),
        Some(Host::Domain(d)) => {
            let d = d.trim_end_matches('.');
            let Some((_, tld)) = d.rsplit_once('.') else {
                return Some((1.0, "has a host without a domain (no dot)"));
            };
            let ok_tld = (tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic()))
                || tld.starts_with("xn--");
            (!ok_tld).then_some((1.0, "has a host whose top-level domain cannot exist"))
        }
        Some(_) => None,
    }
}

/// `malformed-link` over the HTML links and text URLs.
pub(super) fn malformed(links: &[Link], text_urls: &[String], f: &mut Findings) {
    let all = links
        .iter()
        .map(|l| (l.href.as_str(), l.text.as_str()))
        .chain(text_urls.iter().map(|u| (u.as_str(), "")));
    for (href, text) in all {
        if let Some((points, why)) = link_fault(href, text) {
            f.add(
                Rule::MalformedLink,
                points,
                format!("link '{}' {why}", shown(href)),
            );
        }
    }
}

/// `https-text-http-link`: the reader sees `https://…`, the link is plain `http://`.
pub(super) fn https_over_http(links: &[Link], f: &mut Findings) {
    for l in links {
        let text = l.text.trim_start();
        let shows_https = text
            .get(..8)
            .is_some_and(|p| p.eq_ignore_ascii_case("https://"));
        let goes_http = clean(&l.href)
            .get(..7)
            .is_some_and(|p| p.eq_ignore_ascii_case("http://"));
        if shows_https && goes_http {
            f.add(
                Rule::HttpsTextHttpLink,
                1.5,
                format!(
                    "link text shows '{}' but the link is the insecure '{}'",
                    shown(text.trim()),
                    shown(&l.href)
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_ip_spelling() {
        let v4 = |s: &str| ip_host(s).map(|ip| ip.to_string());
        assert_eq!(v4("http://91.134.22.7/x").as_deref(), Some("91.134.22.7"));
        assert_eq!(v4("http://1535514119/").as_deref(), Some("91.134.22.7"));
        assert_eq!(
            v4("http://0x5b.0x86.0x16.0x7/").as_deref(),
            Some("91.134.22.7")
        );
        assert_eq!(
            v4("http://0133.0206.026.07/").as_deref(),
            Some("91.134.22.7")
        );
        assert_eq!(v4("HTTPS://0x5b861607/").as_deref(), Some("91.134.22.7"));
        assert_eq!(
            v4("http://[2a00:1450::1]/").as_deref(),
            Some("2a00:1450::1")
        );
        assert_eq!(v4("http://example.com/"), None);
        assert!(!is_public("192.168.1.1".parse().unwrap()));
        assert!(!is_public("203.0.113.9".parse().unwrap()));
        assert!(is_public("91.134.22.7".parse().unwrap()));
    }

    #[test]
    fn link_faults() {
        assert!(link_fault("https://example.com/a?b=c", "x").is_none());
        assert!(link_fault("mailto:a@example.com", "x").is_none());
        assert!(link_fault("#top", "x").is_none());
        assert_eq!(
            link_fault("javascript:alert(1)", "x").map(|f| f.0),
            Some(2.0)
        );
        assert_eq!(
            link_fault("http://exa mple.com/", "x").map(|f| f.0),
            Some(1.0)
        );
        assert_eq!(link_fault("www.example.com", "x").map(|f| f.0), Some(1.0));
        assert_eq!(
            link_fault("http://paypal.com@evil.example/", "x").map(|f| f.0),
            Some(2.0)
        );
        assert_eq!(link_fault("http://intranet/", "x").map(|f| f.0), Some(1.0));
        assert_eq!(link_fault("", "www.bank.example").map(|f| f.0), Some(1.0));
        assert_eq!(
            link_fault("https://exam\u{202e}ple.com", "x").map(|f| f.0),
            Some(3.0)
        );
    }
}

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

/// `raw-ip-link` over the HTML links, other HTML URLs and URLs written in text. A link
/// whose text names a site but goes to a bare IP is the strong variant in any range
/// (documentation and private ranges included: the reader is misled either way).
pub(super) fn raw_ip(links: &[Link], urls: &[String], f: &mut Findings) {
    let all = links
        .iter()
        .map(|l| (l.href.as_str(), Some(l.text.as_str())))
        .chain(urls.iter().map(|u| (u.as_str(), None)));
    for (url, text) in all {
        let Some(ip) = ip_host(url) else { continue };
        if text.is_some_and(looks_like_a_name) {
            f.add(
                Rule::RawIpLink,
                1.5,
                format!(
                    "link text '{}' names a site but the link goes to the bare IP {ip} ({})",
                    shown(text.unwrap_or_default().trim()),
                    shown(url)
                ),
            );
        } else if is_public(ip) {
            f.hit(
                Rule::RawIpLink,
                format!(
                    "link to the bare public IP {ip} instead of a domain name ({})",
                    shown(url)
                ),
            );
        } else {
            f.add(
                Rule::RawIpLink,
                0.25,
                format!("link to the private or local IP {ip} ({})", shown(url)),
            );
        }
    }
}

/// True when any link goes to a bare IP that a reader would not expect: a public one, or
/// any one behind text that names a site.
pub(super) fn deceptive_ip(links: &[Link]) -> bool {
    links
        .iter()
        .any(|l| ip_host(&l.href).is_some_and(|ip| is_public(ip) || looks_like_a_name(&l.text)))
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
    // `http://paypal.com@evil.example/`: a domain posing as the user name. An honest
    // `ftp://user@ftp.host/` or `https://user:pass@staging.host/` is not a trick.
    let user = u.username();
    if scheme != "ftp"
        && user.contains('.')
        && user
            .rsplit('.')
            .next()
            .is_some_and(|t| t.len() >= 2 && t.chars().all(|c| c.is_ascii_alphabetic()))
    {
        return Some((
            2.0,
            "puts a domain before '@' so the real host hides behind it (user@host trick)",
        ));
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
            f.hit(
                Rule::HttpsTextHttpLink,
                format!(
                    "link text shows '{}' but the link is the insecure '{}'",
                    shown(text.trim()),
                    shown(&l.href)
                ),
            );
        }
    }
}

/// Second-level labels under which registrations happen (`shop.co.uk`, `firma.com.pl`):
/// a small public-suffix table, enough to tell two sites apart.
const SECOND_LEVEL: &[&str] = &[
    "co", "com", "net", "org", "gov", "edu", "ac", "or", "ne", "go", "gob", "gouv", "biz", "info",
    "waw", "krakow", "wroclaw", "gda", "poznan", "lodz",
];

/// The registrable domain (eTLD+1, approximately) of a host.
pub(super) fn site_of(host: &str) -> String {
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    let labels: Vec<&str> = h.split('.').collect();
    let n = labels.len();
    if n <= 2 {
        return h;
    }
    let keep = if SECOND_LEVEL.contains(&labels[n - 2]) && labels[n - 1].len() == 2 {
        3
    } else {
        2
    };
    labels[n - keep..].join(".")
}

/// The host a piece of link text shows: `https://www.paypal.com/signin`,
/// `www.bank.example`, `paypal.com`. Only text that is an address (one word).
fn shown_host(text: &str) -> Option<String> {
    let t = text
        .trim()
        .trim_end_matches(['.', ',', ';', ':', '!', '?', ')']);
    if t.is_empty() || t.contains(char::is_whitespace) || t.contains('@') && !t.contains("://") {
        return None;
    }
    let with_scheme = if t.contains("://") {
        t.to_string()
    } else {
        format!("http://{t}")
    };
    let u = Url::parse(&clean(&with_scheme)).ok()?;
    match u.host()? {
        Host::Domain(d) => {
            let d = d.trim_end_matches('.');
            let (_, tld) = d.rsplit_once('.')?;
            (tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic())
                || tld.starts_with("xn--"))
            .then(|| d.to_string())
        }
        Host::Ipv4(a) => Some(a.to_string()),
        Host::Ipv6(a) => Some(a.to_string()),
    }
}

/// Brands phishers pose as (payment, banks, parcels, mail, shops, the hosting guide's
/// markets: EN, FR, PL, DE, ES, IT). Matched as a label of the shown host.
pub(super) const BRANDS: &[&str] = &[
    "paypal",
    "apple",
    "icloud",
    "microsoft",
    "office365",
    "outlook",
    "live",
    "hotmail",
    "google",
    "gmail",
    "amazon",
    "netflix",
    "facebook",
    "instagram",
    "whatsapp",
    "linkedin",
    "dropbox",
    "docusign",
    "adobe",
    "ebay",
    "alibaba",
    "aliexpress",
    "spotify",
    "steam",
    "binance",
    "coinbase",
    "blockchain",
    "metamask",
    "revolut",
    "wise",
    "stripe",
    "visa",
    "mastercard",
    "americanexpress",
    "amex",
    "chase",
    "wellsfargo",
    "bankofamerica",
    "citibank",
    "hsbc",
    "barclays",
    "lloydsbank",
    "natwest",
    "santander",
    "bbva",
    "caixabank",
    "bnpparibas",
    "societegenerale",
    "creditagricole",
    "labanquepostale",
    "laposte",
    "ameli",
    "impots",
    "caf",
    "orange",
    "free",
    "sfr",
    "bouyguestelecom",
    "chronopost",
    "colissimo",
    "pko",
    "pkobp",
    "ipko",
    "mbank",
    "ing",
    "pekao",
    "bnpparibas",
    "millennium",
    "aliorbank",
    "allegro",
    "olx",
    "inpost",
    "poczta-polska",
    "dpd",
    "gls",
    "dhl",
    "ups",
    "fedex",
    "usps",
    "royalmail",
    "hermes",
    "evri",
    "sparkasse",
    "commerzbank",
    "deutsche-bank",
    "postbank",
    "volksbank",
    "dkb",
    "n26",
    "deutschepost",
    "correos",
    "posteitaliane",
    "poste",
    "intesasanpaolo",
    "unicredit",
    "bancoposte",
    "agenziaentrate",
    "hmrc",
    "irs",
    "gov",
    "booking",
    "airbnb",
    "wordpress",
    "godaddy",
    "ovh",
    "cpanel",
    "webmail",
    "roundcube",
    "zimbra",
];

fn brand_in(host: &str) -> Option<&'static str> {
    let site = site_of(host);
    let name = site.split('.').next().unwrap_or_default();
    BRANDS.iter().copied().find(|b| *b == name).or_else(|| {
        host.split(['.', '-'])
            .find_map(|l| BRANDS.iter().copied().find(|b| b.len() >= 4 && *b == l))
    })
}

/// Click-tracking and mailing services whose links legitimately show another address.
const TRACKERS: &[&str] = &[
    "list-manage.com",
    "mailchimp.com",
    "mcusercontent.com",
    "sendgrid.net",
    "mandrillapp.com",
    "mailgun.org",
    "mailgun.net",
    "sparkpostmail.com",
    "hubspotlinks.com",
    "hs-sites.com",
    "mlsend.com",
    "mailerlite.com",
    "sendibt2.com",
    "sendibt3.com",
    "brevo.com",
    "sendinblue.com",
    "exacttarget.com",
    "awstrack.me",
    "rs6.net",
    "cmail19.com",
    "cmail20.com",
    "createsend.com",
    "klaviyo.com",
    "getresponse.com",
    "freshmail.pl",
    "salesmanago.com",
    "substack.com",
    "mailjet.com",
    "mjt.lu",
    "safelinks.protection.outlook.com",
    "urldefense.com",
    "google.com",
];

/// `link-text-mismatch`: the text shows one site, the link goes to another. `own_site`:
/// the From domain's site (a shop's links to its own other domains are not phishing).
pub(super) fn mismatch(links: &[Link], own_site: Option<&str>, f: &mut Findings) -> bool {
    let mut found = false;
    for l in links {
        let Some(shown_h) = shown_host(&l.text) else {
            continue;
        };
        let href = clean(&l.href);
        let Ok(u) = Url::parse(&href) else { continue };
        if !matches!(u.scheme(), "http" | "https") {
            continue;
        }
        let (target, target_ip) = match u.host() {
            Some(Host::Domain(d)) => (d.trim_end_matches('.').to_string(), false),
            Some(Host::Ipv4(a)) => (a.to_string(), true),
            Some(Host::Ipv6(a)) => (a.to_string(), true),
            None => continue,
        };
        let (ss, ts) = (site_of(&shown_h), site_of(&target));
        if ss == ts {
            continue;
        }
        if !target_ip
            && (TRACKERS
                .iter()
                .any(|t| ts == *t || target.ends_with(&format!(".{t}")))
                || own_site == Some(ts.as_str()))
        {
            continue;
        }
        let brand = brand_in(&shown_h);
        let (factor, why) = match (brand, target_ip) {
            (_, true) => (1.4, format!("the bare IP {target}")),
            (Some(b), false) => (1.4, format!("{target}, which is not {b}")),
            (None, false) => (1.0, target.clone()),
        };
        f.add(
            Rule::LinkTextMismatch,
            factor,
            format!(
                "link text shows '{}' but the link goes to {why}",
                shown(l.text.trim()),
            ),
        );
        found = true;
    }
    found
}

/// URL shorteners and free-hosting / redirector domains: the reader cannot see where the
/// link ends.
const REDIRECTORS: &[&str] = &[
    "bit.ly",
    "bitly.com",
    "tinyurl.com",
    "t.co",
    "goo.gl",
    "ow.ly",
    "is.gd",
    "v.gd",
    "buff.ly",
    "rebrand.ly",
    "cutt.ly",
    "shorturl.at",
    "tiny.cc",
    "rb.gy",
    "t.ly",
    "bl.ink",
    "s.id",
    "qr.ae",
    "adf.ly",
    "shorte.st",
    "soo.gd",
    "clck.ru",
    "u.to",
    "short.io",
    "tiny.one",
    "x.gd",
    "lnkd.in",
    "trib.al",
    "l.ead.me",
    "urlz.fr",
    "000webhostapp.com",
    "weebly.com",
    "wixsite.com",
    "blogspot.com",
    "firebaseapp.com",
    "web.app",
    "netlify.app",
    "herokuapp.com",
    "glitch.me",
    "r2.dev",
    "pages.dev",
    "workers.dev",
    "ngrok.io",
    "ngrok-free.app",
    "duckdns.org",
    "ddns.net",
    "no-ip.org",
    "repl.co",
    "vercel.app",
    "ipfs.io",
    "dweb.link",
    "storage.googleapis.com",
    "sites.google.com",
    "forms.gle",
    "webflow.io",
    "square.site",
    "godaddysites.com",
    "yolasite.com",
    "jimdosite.com",
    "framer.website",
    "surge.sh",
    "wcomhost.com",
    "zyrosite.com",
    "mystrikingly.com",
];

pub(super) fn redirectors(links: &[Link], urls: &[String], f: &mut Findings) {
    let all = links
        .iter()
        .map(|l| l.href.as_str())
        .chain(urls.iter().map(String::as_str));
    let mut seen: Vec<String> = Vec::new();
    for href in all {
        let Ok(u) = Url::parse(&clean(href)) else {
            continue;
        };
        if !matches!(u.scheme(), "http" | "https") {
            continue;
        }
        let Some(Host::Domain(d)) = u.host() else {
            continue;
        };
        let d = d.trim_end_matches('.').to_ascii_lowercase();
        if let Some(r) = REDIRECTORS
            .iter()
            .find(|r| d == **r || d.ends_with(&format!(".{r}")))
        {
            if !seen.iter().any(|s| s == r) {
                seen.push(r.to_string());
            }
        }
    }
    if !seen.is_empty() {
        f.hit(
            Rule::RedirectorLink,
            format!(
                "link(s) through a shortener or free host that hides the destination: {}",
                seen.join(", ")
            ),
        );
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
        assert!(link_fault("ftp://user@ftp.example.com/pub/", "x").is_none());
        assert!(link_fault("https://user:secret@staging.example.com/", "x").is_none());
        assert_eq!(link_fault("http://intranet/", "x").map(|f| f.0), Some(1.0));
        assert_eq!(link_fault("", "www.bank.example").map(|f| f.0), Some(1.0));
        assert_eq!(
            link_fault("https://exam\u{202e}ple.com", "x").map(|f| f.0),
            Some(3.0)
        );
    }
}

#[cfg(test)]
mod mismatch_tests {
    use super::*;

    fn run(text: &str, href: &str) -> Option<f32> {
        let mut f = Findings::default();
        mismatch(
            &[Link {
                href: href.into(),
                text: text.into(),
            }],
            Some("shop.example"),
            &mut f,
        );
        f.hits.first().map(|h| h.points())
    }

    #[test]
    fn shown_and_real_sites() {
        assert_eq!(site_of("www.shop.co.uk"), "shop.co.uk");
        assert_eq!(site_of("a.b.firma.com.pl"), "firma.com.pl");
        assert_eq!(
            run(
                "https://www.paypal.com/signin",
                "http://198.51.100.23/login/"
            ),
            Some(3.5)
        );
        assert_eq!(
            run(
                "https://bank.example/signin",
                "http://bank-example.secure-login-verify.example/"
            ),
            Some(2.5)
        );
        assert_eq!(
            run("www.paypal.com", "https://paypal.com.verify-id.example/"),
            Some(3.5)
        );
        assert_eq!(
            run("https://www.shop.example/", "https://shop.example/track"),
            None
        );
        assert_eq!(run("Track your order", "https://evil.example/"), None);
        assert_eq!(
            run(
                "https://shop.example/",
                "https://x.list-manage.com/track?u=1"
            ),
            None
        );
        assert_eq!(
            run("https://blog.example/", "https://shop.example/r?u=blog"),
            None
        );
    }
}

//! The quarantine as the panel and the API show it: the owner sees the headers, the
//! verdict with its reasons and a redacted preview (addresses, links and long numbers
//! masked: the recipient's data is not the sender's to read); an operator sees the whole
//! message. Release and delete, one or many at a time, are recorded with who did it.

use mailguard_store::{MessageId, QuarantineEntry, StoreError};
use serde_json::{json, Value};

use super::app::{App, Fail};
use super::auth::{Principal, Role};

/// Entries shown (newest first).
pub const SHOWN: u32 = 200;
/// Characters of body text in the owner's preview.
const PREVIEW_CHARS: usize = 600;
/// Bytes of the whole message an operator sees inline.
const FULL_BYTES: usize = 256 * 1024;

fn store_fail(e: StoreError) -> Fail {
    match e {
        StoreError::NoSuchMessage(id) => {
            Fail::NotFound(format!("no quarantined message {id} in this account"))
        }
        StoreError::BadData(m) => Fail::Refused(m),
        e => Fail::from(e),
    }
}

/// The quarantined messages of `account` and its totals (count, bytes).
pub fn list(
    app: &App,
    p: &Principal,
    account: &str,
) -> Result<(Vec<QuarantineEntry>, (u64, u64)), Fail> {
    app.authorize(p, account)?;
    let rows = app.store(|s| s.quarantine_list(Some(account), SHOWN))?;
    let totals = app.store(|s| s.quarantine_totals(account))?;
    Ok((rows, totals))
}

/// One message of `account`, with what `p` may see of its content.
pub struct View {
    pub entry: QuarantineEntry,
    /// The headers (name, value) of the message.
    pub headers: Vec<(String, String)>,
    /// Owner: the redacted preview of the body. Operator: the whole message.
    pub text: String,
    pub full: bool,
}

pub fn view(app: &App, p: &Principal, account: &str, id: MessageId) -> Result<View, Fail> {
    app.authorize(p, account)?;
    let (entry, raw) = app.store(|s| s.quarantine_show(id)).map_err(unwrap_store)?;
    if entry.account != account {
        return Err(store_fail(StoreError::NoSuchMessage(id)));
    }
    let raw = raw.unwrap_or_default();
    let (head, body) = split(&raw);
    let headers = parse_headers(head);
    let full = p.role == Role::Operator;
    let text = if full {
        String::from_utf8_lossy(&raw[..raw.len().min(FULL_BYTES)]).replace("\r\n", "\n")
    } else {
        redact(&String::from_utf8_lossy(body).replace("\r\n", "\n"))
    };
    Ok(View {
        entry,
        headers,
        text,
        full,
    })
}

impl View {
    pub fn to_json(&self) -> Value {
        let mut v = self.entry.to_json();
        v["headers"] = self
            .headers
            .iter()
            .map(|(k, v)| json!([k, v]))
            .collect::<Vec<_>>()
            .into();
        v[if self.full { "message" } else { "preview" }] = json!(self.text);
        v
    }
}

/// Releases (`release`) or deletes each of `ids` in `account`; one result per ID.
pub fn act(
    app: &App,
    p: &Principal,
    account: &str,
    ids: &[MessageId],
    release: bool,
) -> Result<Value, Fail> {
    app.authorize(p, account)?;
    if ids.is_empty() || ids.len() > SHOWN as usize {
        return Err(Fail::BadInput(format!(
            "give from 1 to {SHOWN} message IDs"
        )));
    }
    let actor = p.actor();
    let t = mailguard_store::now();
    let mut results = Vec::new();
    let mut done = 0;
    for &id in ids {
        // Only this account's messages: another's is "no such message".
        let mine = app
            .store(|s| s.quarantine_show(id))
            .ok()
            .is_some_and(|(e, _)| e.account == account);
        let r = if !mine {
            Err(store_fail(StoreError::NoSuchMessage(id)))
        } else if release {
            app.store(|s| s.quarantine_release(id, &actor, t))
                .map_err(unwrap_store)
        } else {
            app.store(|s| s.quarantine_delete(id, &actor, t))
                .map_err(unwrap_store)
        };
        results.push(match r {
            Ok(_) => {
                done += 1;
                json!({"id": id.0, "ok": true})
            }
            Err(f) => json!({"id": id.0, "ok": false, "error": f.message()}),
        });
    }
    Ok(json!({
        "account": account,
        "action": if release { "release" } else { "delete" },
        "done": done,
        "results": results,
    }))
}

fn unwrap_store(f: Fail) -> Fail {
    match f {
        Fail::Store(e) => store_fail(e),
        f => f,
    }
}

/// IDs from a form or JSON list, each a positive number.
pub fn parse_ids<'a>(values: impl IntoIterator<Item = &'a str>) -> Result<Vec<MessageId>, Fail> {
    values
        .into_iter()
        .map(|v| {
            v.trim()
                .parse::<i64>()
                .ok()
                .filter(|n| *n > 0)
                .map(MessageId)
                .ok_or_else(|| Fail::BadInput(format!("\"{v}\" is not a message ID")))
        })
        .collect()
}

/// The header block and the body of a message.
fn split(raw: &[u8]) -> (&[u8], &[u8]) {
    for sep in [&b"\r\n\r\n"[..], b"\n\n"] {
        if let Some(at) = raw.windows(sep.len()).position(|w| w == sep) {
            return (&raw[..at], &raw[at + sep.len()..]);
        }
    }
    (raw, &[])
}

/// Headers with their folded lines joined (at most 100).
fn parse_headers(head: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(head);
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = out.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
        } else if let Some((k, v)) = line.split_once(':') {
            out.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    out.truncate(100);
    out
}

/// The owner's preview: the start of the body with addresses, links and long numbers
/// (account, card, phone numbers) masked.
pub fn redact(body: &str) -> String {
    let mut out = String::new();
    for word in body.split_inclusive(char::is_whitespace) {
        let (w, space) = match word.char_indices().last() {
            Some((i, c)) if c.is_whitespace() => (&word[..i], &word[i..]),
            _ => (word, ""),
        };
        let lower = w.to_ascii_lowercase();
        let masked = if w.contains('@') {
            "[address]".to_owned()
        } else if lower.contains("://") || lower.starts_with("www.") {
            "[link]".to_owned()
        } else if w.chars().filter(char::is_ascii_digit).count() >= 6 {
            "[number]".to_owned()
        } else {
            w.to_owned()
        };
        out.push_str(&masked);
        out.push_str(space);
        if out.chars().count() >= PREVIEW_CHARS {
            out = out.chars().take(PREVIEW_CHARS).collect();
            out.push('…');
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_preview_masks_addresses_links_and_numbers() {
        let r = redact("Dear bob@example.org,\nvisit https://x.example/win or www.y.example now; call +44 20 79460000, IBAN DE89370400440532013000.\n");
        assert!(!r.contains("bob@"), "{r}");
        assert!(!r.contains("x.example") && !r.contains("y.example"), "{r}");
        assert!(!r.contains("79460000") && !r.contains("0532013000"), "{r}");
        assert!(
            r.starts_with("Dear [address]\nvisit [link] or [link] now; call +44 20 [number]"),
            "{r}"
        );
        assert!(redact(&"a ".repeat(1000)).ends_with('…'));
    }

    #[test]
    fn headers_unfold() {
        let (h, b) = split(b"Subject: a\r\n b\r\nTo: x@y\r\n\r\nbody");
        assert_eq!(
            parse_headers(h),
            vec![
                ("Subject".into(), "a b".into()),
                ("To".into(), "x@y".into())
            ]
        );
        assert_eq!(b, b"body");
    }
}

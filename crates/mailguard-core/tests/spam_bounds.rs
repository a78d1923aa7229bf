//! The scorer on hostile sizes and shapes: each must finish and give a sane verdict.
//! No timing asserts here (the machines are shared); timings live in `benches/spam.rs`.

use mailguard_core::spam::{score, Level, Rule, SpamContext, Thresholds};

fn b64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len() * 4 / 3 + data.len() / 57 * 2 + 8);
    for (k, c) in data.chunks(3).enumerate() {
        if k > 0 && k % 19 == 0 {
            out.push_str("\r\n");
        }
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        out.push(T[(n >> 18) as usize & 63] as char);
        out.push(T[(n >> 12) as usize & 63] as char);
        out.push(if c.len() > 1 {
            T[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if c.len() > 2 {
            T[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

fn run(raw: &[u8]) -> mailguard_core::spam::Verdict {
    score(raw, &SpamContext::default(), &Thresholds::default())
}

#[test]
fn ten_megabyte_attachment_message() {
    let pdf = vec![b'%'; 7 * 1024 * 1024];
    let raw = format!(
        "To: a@example.com\r\nSubject: Quarterly report\r\nFrom: Reports <r@example.com>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"x\"\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\nThe report is attached.\r\n\
         --x\r\nContent-Type: application/pdf; name=\"r.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\
         Content-Disposition: attachment; filename=\"r.pdf\"\r\n\r\n{}\r\n--x--\r\n",
        b64(&pdf)
    );
    assert!(raw.len() > 9 * 1024 * 1024);
    let v = run(raw.as_bytes());
    assert_eq!(v.level, Level::Ham, "{}", v.summary());
}

#[test]
fn ten_megabyte_text_and_html_bodies() {
    let line = "The quick brown fox jumps over the lazy dog, again and again and again.\r\n";
    let text = line.repeat(10 * 1024 * 1024 / line.len());
    let raw = format!("To: a@example.com\r\nSubject: Log\r\n\r\n{text}");
    assert_eq!(run(raw.as_bytes()).level, Level::Ham);
    let html = "<div><p style='color:#000;font-size:14px'>Hello <a href='https://example.com/'>link</a></p>".repeat(10 * 1024 * 1024 / 90);
    let raw =
        format!("To: a@example.com\r\nSubject: Page\r\nContent-Type: text/html\r\n\r\n{html}");
    let v = run(raw.as_bytes());
    assert!(v.level <= Level::Suspicious, "{}", v.summary());
}

#[test]
fn ten_megabyte_of_tags_and_unclosed_elements() {
    for unit in [
        "<td>",
        "</nope>",
        "<font size=7>",
        "<a href=x>",
        "<!--",
        "&#",
        "<p style='",
    ] {
        let body = unit.repeat(10 * 1024 * 1024 / unit.len());
        let raw =
            format!("To: a@example.com\r\nSubject: x\r\nContent-Type: text/html\r\n\r\n{body}");
        let v = run(raw.as_bytes());
        assert!(v.score.is_finite(), "{unit}");
    }
}

#[test]
fn deep_multipart_nesting_bomb() {
    let depth = 50_000;
    let mut raw = String::from("To: a@example.com\r\nSubject: nest\r\nMIME-Version: 1.0\r\n");
    for k in 0..depth {
        raw.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=\"b{k}\"\r\n\r\n--b{k}\r\n"
        ));
    }
    raw.push_str("Content-Type: text/plain\r\n\r\nhello\r\n");
    for k in (0..depth).rev() {
        raw.push_str(&format!("--b{k}--\r\n"));
    }
    let v = run(raw.as_bytes());
    assert!(v.score.is_finite());
}

#[test]
fn nesting_bomb_with_prefix_boundaries_and_no_closings() {
    let mut raw = String::from("To: a@example.com\r\nSubject: nest\r\nMIME-Version: 1.0\r\n");
    for k in 0..20_000 {
        let b = "a".repeat(1 + k % 50);
        raw.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=\"{b}\"\r\n\r\n--{b}\r\n"
        ));
    }
    let v = run(raw.as_bytes());
    assert!(v.score.is_finite());
}

#[test]
fn nested_message_rfc822_chain() {
    // 10,000 attached messages inside each other (this overflowed the stack when mail-parser's
    // tree was dropped recursively), with a program at the bottom.
    let mut raw = String::from("To: a@example.com\r\nSubject: fwd\r\n");
    for _ in 0..10_000 {
        raw.push_str("Content-Type: message/rfc822\r\n\r\nSubject: inner\r\n");
    }
    raw.push_str(
        "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"q\"\r\n\r\n--q\r\n\
         Content-Type: application/octet-stream; name=\"deep.exe\"\r\n\r\nxx\r\n--q--\r\n",
    );
    let v = run(raw.as_bytes());
    assert!(
        v.hit(Rule::ExecutableAttachment).is_some(),
        "{}",
        v.summary()
    );
}

#[test]
fn many_parts_and_many_attachments() {
    let mut raw = String::from(
        "To: a@example.com\r\nSubject: parts\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"p\"\r\n\r\n",
    );
    for k in 0..20_000 {
        raw.push_str(&format!(
            "--p\r\nContent-Type: application/octet-stream; name=\"f{k}.txt\"\r\n\r\nxx\r\n"
        ));
    }
    raw.push_str(
        "--p\r\nContent-Type: application/octet-stream; name=\"late.exe\"\r\n\r\nxx\r\n--p--\r\n",
    );
    let v = run(raw.as_bytes());
    // Parts past the cap are checked by name only: junk parts cannot hide a program.
    assert!(
        v.hit(Rule::ExecutableAttachment).is_some(),
        "{}",
        v.summary()
    );
}

#[test]
fn zip_with_huge_member_count_and_deflate_bomb() {
    // A central directory claiming 65535 entries, and one 'deflated' member of zeros.
    let mut zip = Vec::new();
    zip.extend_from_slice(b"PK\x03\x04\x14\x00\x00\x00\x08\x00\x00\x00\x00\x00\x00\x00\x00\x00");
    let bomb = {
        // Deflate stream: fixed Huffman, long runs of zero (a few KB -> many MB).
        let mut v = vec![0x63u8, 0x00];
        v.extend(std::iter::repeat_n(0u8, 4096));
        v
    };
    zip.extend_from_slice(&(bomb.len() as u32).to_le_bytes());
    zip.extend_from_slice(&u32::MAX.to_le_bytes());
    zip.extend_from_slice(&16u16.to_le_bytes());
    zip.extend_from_slice(&0u16.to_le_bytes());
    zip.extend_from_slice(b"x/vbaProject.bin");
    zip.extend_from_slice(&bomb);
    zip.extend_from_slice(b"PK\x05\x06\0\0\0\0\xff\xff\xff\xff\0\0\0\0\0\0\0\0\0\0");
    let raw = format!(
        "To: a@example.com\r\nSubject: z\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"z\"\r\n\r\n\
         --z\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--z\r\nContent-Type: application/zip; name=\"a.zip\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{}\r\n--z--\r\n",
        b64(&zip)
    );
    assert!(run(raw.as_bytes()).score.is_finite());
}

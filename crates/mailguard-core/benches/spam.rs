//! Spam scorer timings: a typical 5 KB message, and 1 MB / 10 MB ones to show linearity.
//! Target (SPEC §10): ≤ 50 µs for 5 KB; linear up to 10 MB.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use mailguard_core::spam::{score, SpamContext, Thresholds};

/// An order confirmation of about 5 KB: text + HTML alternative, links, inline styles.
fn typical_5kb() -> Vec<u8> {
    let mut rows = String::new();
    for k in 0..12 {
        rows.push_str(&format!(
            "<tr><td style=\"color:#636363;border:1px solid #e5e5e5;padding:12px\">Product {k}</td>\
             <td style=\"padding:12px\">1</td><td style=\"padding:12px\">{k}9,00&nbsp;zł</td></tr>"
        ));
    }
    let html = format!(
        "<html><body style=\"background:#f7f7f7\"><table width=\"600\" style=\"background-color:#ffffff\">\
         <tr><td style=\"background-color:#96588a;color:#ffffff\"><h1 style=\"font-size:30px\">Thank you for your order</h1></td></tr>\
         <tr><td><p>Hi Tomasz, we have received your order #4821 and it is now being processed.</p>\
         <table>{rows}</table><p>Track it at <a href=\"https://shop.example.com/track/4821\">shop.example.com</a>.</p>\
         <img src=\"https://shop.example.com/logo.png\" width=\"180\" height=\"60\" alt=\"Shop\"></td></tr></table></body></html>"
    );
    let text =
        "Hi Tomasz,\r\n\r\nwe have received your order #4821 and it is now being processed.\r\n\
                Track it at https://shop.example.com/track/4821\r\n\r\nThank you!\r\n"
            .repeat(4);
    format!(
        "To: tomasz@example.pl\r\nSubject: Your Shop order has been received!\r\n\
         From: Shop <shop@shop.example.com>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/alternative; boundary=\"b\"\r\n\r\n\
         --b\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n{text}\r\n\
         --b\r\nContent-Type: text/html; charset=UTF-8\r\n\r\n{html}\r\n--b--\r\n"
    )
    .into_bytes()
}

/// A message with a text part and a base64 attachment, `size` bytes in all.
fn with_attachment(size: usize) -> Vec<u8> {
    let head = "To: a@example.com\r\nSubject: Quarterly report\r\nFrom: Reports <r@example.com>\r\n\
                MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"x\"\r\n\r\n\
                --x\r\nContent-Type: text/plain\r\n\r\nThe report is attached.\r\n\
                --x\r\nContent-Type: application/pdf; name=\"r.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\
                Content-Disposition: attachment; filename=\"r.pdf\"\r\n\r\n";
    let mut out = head.as_bytes().to_vec();
    let line = b"JVBERi0xLjQKJcfsj6IKNSAwIG9iago8PC9MZW5ndGggNiAwIFIvRmlsdGVyIC9GbGF0ZURlY29k\r\n";
    while out.len() + line.len() + 8 < size {
        out.extend_from_slice(line);
    }
    out.extend_from_slice(b"--x--\r\n");
    out
}

/// An HTML newsletter of `size` bytes (the HTML walk is the costly path; it reads at most
/// 256 KiB per part, so past that the cost is the MIME parse).
fn big_html(size: usize) -> Vec<u8> {
    let head =
        "To: a@example.com\r\nSubject: News\r\nContent-Type: text/html; charset=UTF-8\r\n\r\n";
    let unit = "<div><p style=\"color:#333;font-size:14px\">Spring has arrived in the garden, \
                <a href=\"https://garden.example/news\">read more</a></p></div>\r\n";
    let mut out = head.to_string();
    while out.len() + unit.len() < size {
        out.push_str(unit);
    }
    out.into_bytes()
}

fn bench(c: &mut Criterion) {
    let ctx = SpamContext::default();
    let th = Thresholds::default();
    let mut g = c.benchmark_group("spam_score");
    let cases = [
        ("typical_5kb", typical_5kb()),
        ("attachment_1mb", with_attachment(1024 * 1024)),
        ("attachment_10mb", with_attachment(10 * 1024 * 1024)),
        ("html_1mb", big_html(1024 * 1024)),
        ("html_10mb", big_html(10 * 1024 * 1024)),
    ];
    for (name, msg) in &cases {
        g.throughput(Throughput::Bytes(msg.len() as u64));
        if msg.len() > 100_000 {
            g.sample_size(20);
        } else {
            g.sample_size(100);
        }
        g.bench_function(*name, |b| b.iter(|| score(black_box(msg), &ctx, &th)));
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
